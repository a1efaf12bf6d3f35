"""Assemble docs/BENCHMARKS.md from the fragments the benchmark scripts write to docs/benchmarks/.

Each `benchmarks/bench_<area>.py` writes `docs/benchmarks/<area>.md` with its machine, command, date
and figures; this script only concatenates them (in a fixed reading order) under one table of contents.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAGMENTS = ROOT / "docs" / "benchmarks"
INCLUDED = {"simulation_investigation"}
ORDER = ["summary", "offline", "torch", "hybrid", "ingest", "seed", "training", "train_all", "serving", "simulation"]

HEADER = """# Benchmarks

Every figure below is produced by a script in `benchmarks/` (`make bench` runs them all and rebuilds this
file with `python scripts/benchmarks_merge.py`). Each section names its machine, command and date.
Unless a section says otherwise, figures were measured on the project's 2-core CPU machine while other
jobs were running on it, so absolute times are inflated and noisy; ratios against a baseline measured in
the same run are the figures to compare. No GPU was available in the sessions that produced these.

"""


def main() -> None:
    names = [n for n in ORDER if (FRAGMENTS / f"{n}.md").exists()]
    # simulation_investigation.md is appended to simulation.md by bench_simulation.py itself.
    names += sorted(p.stem for p in FRAGMENTS.glob("*.md") if p.stem not in ORDER and p.stem not in INCLUDED)
    parts = [HEADER, "## Contents\n"]
    bodies = []
    for name in names:
        text = (FRAGMENTS / f"{name}.md").read_text().strip()
        title = text.splitlines()[0].lstrip("# ").strip() if text else name
        anchor = "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c == "-")
        parts.append(f"- [{title}](#{anchor})")
        # Demote the fragment's headings one level so they nest under this page's title.
        bodies.append("\n".join(("#" + line) if line.startswith("#") else line for line in text.splitlines()))
    out = "\n".join(parts) + "\n\n" + "\n\n".join(bodies) + "\n"
    (ROOT / "docs" / "BENCHMARKS.md").write_text(out)
    print(f"docs/BENCHMARKS.md: {len(names)} sections ({', '.join(names)})")


if __name__ == "__main__":
    main()

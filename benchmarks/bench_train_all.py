"""`train --all` on the demo shop: before and after the engine choice, measured in the same run.

Run:  .venv/bin/python benchmarks/bench_train_all.py [--demo-db PATH] [--rounds 1]

The demo shop is `seed_demo --seed 42` at its default size (10,000 customers, 500 products, 60 days) in a
SQLite database, as `make demo` builds it (a temporary one is seeded when --demo-db is not given; seeding
is not timed here, see seed.md). Each round times, alternating, with an empty model registry each time:

- before: what `train --all` did before the engine choice: the engines the default widgets needed with the
  personalized strategy pinned to EASE (ease, itemknn, content, pop), each run reading and splitting the
  events itself (`training_run_execute(data=None)`, the unchanged per-run path);
- after:  `python manage.py train --all` as `make demo` runs it now: every candidate of the personalized
  engine choice (ease, itemknn, hybrid) plus what the other widgets need, the events read and split once
  for all runs, and the winner of the held-out evaluation recorded.

Writes docs/benchmarks/train_all.md (phase timings per engine, the choice and its figures).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import cpu_model, nproc

ROOT = Path(__file__).resolve().parent.parent


def _django(db_path: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "recsite.settings.base"
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="recsite-bench-media-")
    os.environ["DEBUG"] = "False"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("RECSITE_PERSONALIZED_ENGINE", None)
    import django

    django.setup()


def _reset() -> None:
    from recommender.models import EngineChoice, ModelVersion, TrainingRun

    TrainingRun.objects.all().delete()
    ModelVersion.objects.all().delete()
    EngineChoice.objects.all().delete()


def _runs() -> dict:
    from recommender.models import TrainingRun

    out = {}
    for run in TrainingRun.objects.order_by("id"):
        v = run.model_version
        out[run.engine] = {
            "status": run.status,
            "timings": run.timings,
            "metrics": {k: (v.metrics or {}).get(k) for k in ("ndcg@10", "hr@10")} if v else {},
            "error": run.error[-300:],
        }
    return out


def child(db_path: str, mode: str) -> dict:
    _django(db_path)
    from django.conf import settings
    from django.core.management import call_command

    from catalog.models import Event
    from recommender.models import EngineChoice
    from recommender.services import widget_defaults_ensure
    from recommender.training import engines_needed_by_widgets, training_run_create, training_run_execute

    call_command("migrate", verbosity=0)
    seed_s = None
    if not Event.objects.exists():
        t0 = time.perf_counter()
        call_command("seed_demo", "--seed", "42", "--no-progress", verbosity=0)
        seed_s = time.perf_counter() - t0
    widget_defaults_ensure()
    _reset()
    t0 = time.perf_counter()
    if mode == "before":
        settings.RECSITE_STRATEGY_ENGINES = {"personalized": "ease"}
        engines = engines_needed_by_widgets()
        for engine in engines:
            training_run_execute(run_id=training_run_create(engine=engine, enqueue=False).pk)
    else:
        call_command("train", "--all", "--no-progress", stdout=io.StringIO())
    total = time.perf_counter() - t0
    choice = EngineChoice.objects.filter(strategy="personalized").first()
    return {
        "mode": mode,
        "total_s": total,
        "seed_s": seed_s,
        "runs": _runs(),
        "choice": None
        if choice is None
        else {"engine": choice.engine, "decision": choice.decision, "figures": choice.figures},
    }


def _child(db_path: str, mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--demo-db", db_path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    if out.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-db", default=None, help="an already seeded SQLite file (seeded when missing)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", choices=["before", "after"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    db = args.demo_db or f"{tempfile.mkdtemp(prefix='recsite-bench-demo-')}/demo.sqlite3"
    if args.child:
        print(json.dumps(child(db, args.child)))
        return
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for r in range(args.rounds):
        for mode in ("before", "after"):
            res = _child(db, mode)
            results[mode].append(res)
            print(f"round {r + 1} {mode}: {res['total_s']:.1f} s", flush=True)
    _write(results, args)


def _write(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    before = [r["total_s"] for r in results["before"]]
    after = [r["total_s"] for r in results["after"]]
    last_b, last_a = results["before"][-1], results["after"][-1]
    lines = [
        "## `train --all` on the demo shop: before and after the engine choice",
        "",
        "- Command: `.venv/bin/python benchmarks/bench_train_all.py"
        + (f" --rounds {args.rounds}" if args.rounds != 1 else "")
        + "` (demo shop: `seed_demo --seed 42`, 10,000 customers, 500 products, 60 days; SQLite as `make demo`)",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {nproc()} CPUs, {cpu_model()}; Python {platform.python_version()}. Shared, busy machine: "
        "absolute times are noisy, the ratio is measured in the same run (alternating, empty registry each time).",
        "",
        "Before: the engines the default widgets needed with personalized pinned to EASE, each run reading and "
        "splitting the events itself. After: `train --all` now, every candidate of the personalized engine "
        "choice (the hybrid included), events read and split once for all runs.",
        "",
        "| | engines | wall time (s), each round | best (s) | best / before |",
        "|---|---|---|---:|---:|",
        f"| before | {', '.join(last_b['runs'])} | {', '.join(f'{t:.1f}' for t in before)} | {min(before):.1f} | 1.00 |",
        f"| after | {', '.join(last_a['runs'])} | {', '.join(f'{t:.1f}' for t in after)} | {min(after):.1f} | "
        f"{min(after) / min(before):.2f} |",
        "",
        "Phase timings of the last round (seconds; `data` is the events read, which the after run does once):",
        "",
        "| run | engine | data | split | fit | evaluate | refit | save | total | NDCG@10 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, res in (("before", last_b), ("after", last_a)):
        for engine, run in res["runs"].items():
            t = run["timings"]
            nd = run["metrics"].get("ndcg@10")
            lines.append(
                f"| {label} | {engine} | "
                + " | ".join(
                    f"{t.get(k, 0):.1f}"
                    for k in ("data", "split", "fit", "evaluate", "refit", "save", "total")
                )
                + f" | {nd:.4f} |"
                if run["status"] == "succeeded"
                else f"| {label} | {engine} | failed: {run['error'][-100:]!r} |" + " |" * 8
            )
    data_before = sum(r["timings"].get("data", 0.0) for r in last_b["runs"].values())
    runs_after = sum(r["timings"].get("total", 0.0) for r in last_a["runs"].values())
    hyb = last_a["runs"].get("hybrid", {}).get("timings", {})
    lines += [
        "",
        f"Where the time went (last round): before, reading the events took {data_before:.1f} s of "
        f"{last_b['total_s']:.1f} s ({len(last_b['runs'])} reads, one per run); after, the runs themselves took "
        f"{runs_after:.1f} s of {last_a['total_s']:.1f} s (the rest is the one read and split, and start-up), of "
        f"which the hybrid {hyb.get('total', 0.0):.1f} s (fit {hyb.get('fit', 0.0):.1f} s: base engines, "
        f"candidate features and LightGBM on the training part; evaluate {hyb.get('evaluate', 0.0):.1f} s; "
        f"refit {hyb.get('refit', 0.0):.1f} s, base engines only).",
    ]
    choice = last_a.get("choice")
    if choice:
        lines += [
            "",
            f"Engine choice after `train --all`: **{choice['engine'] or 'none'}**. {choice['decision']}",
            "",
        ]
        lines += [
            "| candidate | version | NDCG@10 | HR@10 | training (s) | status |",
            "|---|---|---:|---:|---:|---|",
        ]
        for name, f in choice["figures"].items():
            lines.append(
                f"| {name} | v{f.get('version', '—')} | {f.get('ndcg@10', float('nan')):.4f} | "
                f"{f.get('hr@10', float('nan')):.4f} | {f.get('train_seconds', float('nan')):.1f} | "
                f"{f.get('status', 'compared')} |"
            )
    out = ROOT / "docs" / "benchmarks" / "train_all.md"
    out.write_text("\n".join(lines) + "\n")
    (Path(tempfile.gettempdir()) / "bench_train_all.json").write_text(json.dumps(results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

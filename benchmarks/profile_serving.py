"""Where an in-process `recommendations_get` of a cached personalized list spends its time (cProfile).

    .venv/bin/python benchmarks/profile_serving.py --database-url postgres://.../db --redis-url redis://.../n
        [--calls 300] [--label after] [--code-root DIR]

Needs a database prepared by `benchmarks/bench_serving.py --prepare-only` (widget `bench-personalized`,
item-kNN trained, batch candidates precomputed). Settings are the server's (`recsite.settings.serve`,
memos on). Prints the median / p95 of `calls` timed calls (no profiler), then the functions that took the
most time under cProfile (wall-clock medians include waiting for PostgreSQL / Redis to be scheduled; the
CPU median, `time.thread_time`, is this process's own work), and writes docs/benchmarks/serving/profile-<label>.json. `--code-root` runs
another checkout's code (e.g. the version before the serving refactor, extracted with `git archive`)
against the same database, for a before/after comparison in the same conditions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks" / "serving"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--label", default="after")
    ap.add_argument("--code-root", default=str(ROOT))
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    code = Path(args.code_root).resolve()
    sys.path.insert(0, str(code))
    os.chdir(code)
    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        DJANGO_SETTINGS_MODULE="recsite.settings.serve",
        LOG_LEVEL="WARNING",
        OMP_NUM_THREADS="1",
    )
    import django

    django.setup()
    from django.core.cache import cache

    from catalog.models import Customer
    from recommender.models import ModelVersion
    from recommender.serving import recommendations_get, widget_enabled_get

    widget = widget_enabled_get("bench-personalized")
    version = ModelVersion.objects.get(engine="itemknn", status="active")
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[:20000])
    cached = [c for c in ids if cache.get(f"rs:cand:v{version.pk}:c{c}") is not None][:300]
    if not cached:
        raise SystemExit("no precomputed customers: run bench_serving.py --prepare-only first")
    customers = list(Customer.objects.filter(pk__in=cached))
    rng = random.Random(3)

    def call() -> None:
        recommendations_get(widget=widget, customer=rng.choice(customers), k=8, log=False)

    for _ in range(50):
        call()
    times, cpu = [], []
    for _ in range(args.calls):
        t0, c0 = time.perf_counter(), time.thread_time()
        call()
        cpu.append((time.thread_time() - c0) * 1000)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.calls):
        call()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    by_tottime = out.getvalue()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
    record = {
        "label": args.label,
        "code": str(code),
        "calls": args.calls,
        "median_ms": statistics.median(times),
        "cpu_median_ms": statistics.median(cpu),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
        "load": os.getloadavg(),
        "tottime": by_tottime,
        "cumulative": out.getvalue(),
    }
    print(
        f"{args.label}: median {record['median_ms']:.3f} ms (CPU {record['cpu_median_ms']:.3f} ms), "
        f"p95 {record['p95_ms']:.3f} ms, load {record['load'][0]:.1f}"
    )
    print(by_tottime)
    print(record["cumulative"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"profile-{args.label}.json").write_text(json.dumps(record, indent=1))
    profile_report()


FINDINGS = """\
Where the time went (cProfile of the version before the refactor, same database, same load; the raw
listings are in docs/benchmarks/serving/profile-*.json):

- Round trips dominated: per cached personalized call one SQL query (the shopper's recent events) and two
  Redis reads: the batch candidates, and the running-experiment generation token that the experiments hook
  read on every request. On a loaded two-core machine each round trip is mostly waiting for PostgreSQL or
  Redis to be scheduled, so wall-clock time is several times the CPU time.
- Of the CPU: Django building a new `redis.Redis` client for every cache operation (its constructor fills
  a table of ~170 response callbacks), compiling the history query through the ORM on every call, and
  (smaller) parsing all ~100 batch rows (reason strings, dicts) although at most n = 40 can join the pool.

What changed: the experiments' generation is polled together with serving's (one cache read per second per
process, `recommender.serving.cache.generations_poll`), the Redis backend keeps one client per connection
pool (`recsite.cache.RedisCache`), the history query is compiled once per process and shape
(`recommender.serving.shopper.recent_events`), and only the first n unseen batch rows are parsed. The
decision trace costs the request only the references it keeps (`TraceDraft`); it is built and serialised in
the impression writer's thread.
"""


def profile_report() -> None:
    """docs/benchmarks/serving/profile.md from the before / after records (included in serving.md)."""
    recs = {
        p.stem.removeprefix("profile-"): json.loads(p.read_text()) for p in RESULTS.glob("profile-*.json")
    }
    if not recs:
        return
    lines = [
        "### Profile: in-process `recommendations_get` of a cached personalized list",
        "",
        "Command: `.venv/bin/python benchmarks/profile_serving.py --database-url ... --redis-url ... --label after` "
        "(and `--label before --code-root <the previous version, git archive 7e6a591>`), on the 2k-product bench "
        "database prepared by bench_serving.py, server settings (memos on), no impression write. Wall-clock "
        "medians include waiting for PostgreSQL / Redis; the CPU median is this process's own work per call.",
        "",
        "| Version | Calls | Median (ms) | CPU median (ms) | p95 (ms) | 1-min load |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label in sorted(recs, key=lambda k: (k != "before", k)):
        r = recs[label]
        lines.append(
            f"| {label} | {r['calls']} | {r['median_ms']:.2f} | {r.get('cpu_median_ms', float('nan')):.2f} | "
            f"{r['p95_ms']:.2f} | {r['load'][0]:.1f} |"
        )
    lines += ["", FINDINGS.strip()]
    for label in sorted(recs, key=lambda k: (k != "before", k)):
        top = "\n".join(recs[label]["tottime"].strip().splitlines()[:22])
        lines += [
            "",
            f"<details><summary>cProfile, {label}, by own time</summary>",
            "",
            "```",
            top,
            "```",
            "</details>",
        ]
    (RESULTS / "profile.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--report"]:
        profile_report()
    else:
        main()

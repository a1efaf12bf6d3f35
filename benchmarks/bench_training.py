"""Training pipeline: events -> InteractionData at scale, and `train` on the demo shop.

Run:  .venv/bin/python benchmarks/bench_training.py [--events 1000000] [--backends sqlite,postgres]
                                                   [--demo-db PATH | --no-demo]

Part 1, data building (per backend, in a child process: settings are fixed at start-up). A throw-away
database (SQLite: a temporary file; PostgreSQL: database `recsite_bench_training`, dropped afterwards)
gets 500 products, 20,000 customers and `--events` events written with raw SQL (executemany / COPY:
bulk_create would take longer than everything measured here). Mix: 55% view, 15% click, 10% dwell,
7% add_to_cart, 3% purchase, 5% search, 5% rate; 40% of events from anonymous visitors; ~8 events per
session. Then, alternating, twice each:

- `recommender.data.interaction_data_from_events()`: the whole build (matrix, sequences, sessions,
  item features, id maps);
- baseline: only READING the same rows the straightforward way, `values_list(...).iterator()` through
  the ORM with the timestamp as a datetime (Django's per-row converters), building nothing.

Then one training run each of `pop` and `itemknn` through `training_run_execute` (phase timings).

Part 2, the demo shop: `seed_demo` at its default size (10,000 customers, 500 products, 60 days,
seed 42) into a temporary SQLite database (or `--demo-db` to reuse one), then `training_run_execute`
for every engine the default widgets need: phase timings, device, and the held-out metrics, with
ratios against `pop` measured in the same run.

Writes docs/benchmarks/training.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from _machine import cpu_model as _cpu_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "recsite_bench_training"
N_PRODUCTS = 500
N_CUSTOMERS = 20_000
MIX = [
    ("view", 0.55),
    ("click", 0.15),
    ("dwell", 0.10),
    ("add_to_cart", 0.07),
    ("purchase", 0.03),
    ("search", 0.05),
    ("rate", 0.05),
]


def _django(db_url: str, media: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "recsite.settings.base"
    os.environ["DATABASE_URL"] = db_url
    os.environ["MEDIA_ROOT"] = media
    os.environ["DEBUG"] = "False"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(sql)


# ----------------------------------------------------------------------------------------------------
# part 1: data building at scale


def _events_insert(n_events: int, seed: int = 0) -> None:
    import numpy as np
    from django.db import connection, transaction
    from django.utils import timezone

    from catalog.models import Customer, Event, Product

    rng = np.random.default_rng(seed)
    product_ids = np.array(Product.objects.order_by("id").values_list("id", flat=True))
    customer_ids = np.array(Customer.objects.order_by("id").values_list("id", flat=True))
    popularity = 1.0 / np.arange(1, len(product_ids) + 1) ** 0.8
    popularity /= popularity.sum()
    types = [t for t, _ in MIX]
    probs = np.array([p for _, p in MIX])
    kinds = rng.choice(len(types), size=n_events, p=probs / probs.sum())
    n_sessions = n_events // 8
    session_of = np.sort(rng.integers(0, n_sessions, size=n_events))
    session_customer = np.where(
        rng.random(n_sessions) < 0.6, rng.choice(customer_ids, size=n_sessions), -1
    )  # 40% anonymous
    session_visitor = rng.integers(0, n_sessions // 2 + 1, size=n_sessions)  # visitors return
    now = timezone.now().timestamp()
    session_start = now - rng.uniform(0, 60 * 86400, size=n_sessions)
    stamps = session_start[session_of] + rng.uniform(0, 1800, size=n_events)
    products = rng.choice(product_ids, size=n_events, p=popularity)
    ratings = rng.integers(1, 6, size=n_events)
    received = datetime.now(tz=UTC)
    rows = []
    for i in range(n_events):
        kind = types[kinds[i]]
        s = session_of[i]
        cust = int(session_customer[s])
        rows.append(
            (
                uuid.uuid4(),
                kind,
                None if kind == "search" else int(products[i]),
                None if cust < 0 else cust,
                f"v{session_visitor[s]}",
                f"s{s}",
                datetime.fromtimestamp(float(stamps[i]), tz=UTC),
                1,
                "shoes" if kind == "search" else "",
                float(ratings[i]) if kind == "rate" else None,
                "{}",
                received,
            )
        )
    cols = (
        "event_id, type, product_id, customer_id, visitor_id, session_id, timestamp, quantity, query, rating, "
        "context, received_at"
    )
    table = Event._meta.db_table
    # One transaction: in autocommit mode SQLite would commit (fsync) after every executemany row.
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.connection.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            sqlite_rows = [
                (r[0].hex, *r[1:6], r[6].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[7:11], r[11].isoformat(" "))
                for r in rows
            ]
            for start in range(0, len(sqlite_rows), 50_000):
                cursor.executemany(
                    f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * 12)})",
                    sqlite_rows[start : start + 50_000],
                )


def _baseline_read() -> int:
    """The straightforward read: ORM values_list with datetimes, building nothing."""
    from catalog.models import Event

    qs = Event.objects.filter(
        product__isnull=False, type__in=["view", "click", "add_to_cart", "purchase", "rate"]
    ).order_by()
    n = 0
    for _ in qs.values_list(
        "id", "customer_id", "visitor_id", "session_id", "product_id", "type", "timestamp", "rating"
    ).iterator(chunk_size=50_000):
        n += 1
    return n


def _vendor(connection) -> str:
    if connection.vendor == "sqlite":
        return f"SQLite {'.'.join(map(str, connection.Database.sqlite_version_info))}"
    v = connection.pg_version
    return f"PostgreSQL {v // 10000}.{v % 100}"


def child_scale(backend: str, n_events: int) -> dict:
    media = tempfile.mkdtemp(prefix="recsite-bench-media-")
    if backend == "sqlite":
        db_url = f"sqlite:///{tempfile.mkdtemp(prefix='recsite-bench-')}/bench.sqlite3"
    else:
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_BENCH_DB}")
        _pg_admin(f"CREATE DATABASE {PG_BENCH_DB}")
        db_url = f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
    _django(db_url, media)
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import connection

    from catalog.models import Brand, Category, Customer, Event, Product
    from recommender.data import interaction_data_from_events
    from recommender.training import training_run_create, training_run_execute

    call_command("migrate", verbosity=0)
    cats = [Category.objects.create(name=f"Category {i}", slug=f"cat-{i}") for i in range(20)]
    brands = [Brand.objects.create(name=f"Brand {i}", slug=f"brand-{i}") for i in range(30)]
    Product.objects.bulk_create(
        Product(
            sku=f"SKU-{i:05d}",
            title=f"Product {i}",
            slug=f"product-{i}",
            description="Bench product",
            category=cats[i % 20],
            brand=brands[i % 30],
            price=Decimal("10.00") + i,
            attributes={"color": ["red", "blue", "green"][i % 3]},
        )
        for i in range(N_PRODUCTS)
    )
    Customer.objects.bulk_create(Customer(external_id=f"c{i}") for i in range(N_CUSTOMERS))
    t0 = time.perf_counter()
    _events_insert(n_events)
    insert_s = time.perf_counter() - t0
    total_events = Event.objects.count()

    build, base = [], []
    shop = None
    for _ in range(2):
        t0 = time.perf_counter()
        rows = _baseline_read()
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        shop = interaction_data_from_events()
        build.append(time.perf_counter() - t0)
    runs = {}
    for engine in ("pop", "itemknn"):
        run = training_run_execute(run_id=training_run_create(engine=engine, enqueue=False).pk)
        runs[engine] = {"status": run.status, "timings": run.timings, "error": run.error[-300:]}
    result = {
        "backend": backend,
        "vendor": _vendor(connection),
        "events_total": total_events,
        "events_weighted": shop.n_events,
        "rows_read": rows,
        "users": shop.data.n_users,
        "sessions": len(shop.data.sessions),
        "insert_s": insert_s,
        "build_s": build,
        "baseline_s": base,
        "runs": runs,
    }
    if backend == "postgres":
        connection.close()
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
    return result


# ----------------------------------------------------------------------------------------------------
# part 2: the demo shop


def child_demo(db_path: str | None) -> dict:
    media = tempfile.mkdtemp(prefix="recsite-bench-media-")
    path = db_path or f"{tempfile.mkdtemp(prefix='recsite-bench-demo-')}/demo.sqlite3"
    _django(f"sqlite:///{path}", media)
    from django.core.management import call_command

    from catalog.models import Event
    from recommender.services import widget_defaults_ensure
    from recommender.training import engines_needed_by_widgets, training_run_create, training_run_execute

    call_command("migrate", verbosity=0)
    seed_s = None
    if not Event.objects.exists():
        t0 = time.perf_counter()
        call_command("seed_demo", "--seed", "42", verbosity=0)
        seed_s = time.perf_counter() - t0
    widget_defaults_ensure()
    engines = engines_needed_by_widgets()
    runs = {}
    for engine in engines:
        run = training_run_execute(run_id=training_run_create(engine=engine, enqueue=False).pk)
        v = run.model_version
        runs[engine] = {
            "status": run.status,
            "device": run.device,
            "timings": run.timings,
            "metrics": v.metrics if v else {},
            "snapshot": {k: run.data_snapshot.get(k) for k in ("events", "users", "items")},
            "evaluation": {
                k: run.data_snapshot.get("evaluation", {}).get(k)
                for k in ("cut", "test_users", "test_events")
            },
            "error": run.error[-300:],
        }
    return {"db": path if db_path else "temporary", "seed_s": seed_s, "engines": engines, "runs": runs}


# ----------------------------------------------------------------------------------------------------
# parent


def _child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True, env={**os.environ}
    )
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pg_up() -> bool:
    try:
        _pg_admin("SELECT 1")
        return True
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--demo-db", default=None, help="reuse an already seeded SQLite database file")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--child", choices=["scale", "demo"], help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "scale":
        print(json.dumps(child_scale(args.backend, args.events)))
        return
    if args.child == "demo":
        print(json.dumps(child_demo(args.demo_db)))
        return

    command = "python benchmarks/bench_training.py " + " ".join(sys.argv[1:])
    scale = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "postgres" and not _pg_up():
            print("PostgreSQL not reachable: skipped")
            continue
        print(f"== data building, {backend}, {args.events:,} events")
        r = _child(["--child", "scale", "--backend", backend, "--events", str(args.events)])
        print(json.dumps(r, indent=1))
        scale.append(r)
    demo = None
    if not args.no_demo:
        print("== demo shop: seed_demo + every default engine")
        demo = _child(["--child", "demo"] + (["--demo-db", args.demo_db] if args.demo_db else []))
        print(json.dumps(demo, indent=1))

    lines = [
        "## Training pipeline (events -> InteractionData -> train -> evaluate -> registry)",
        "",
        f"- Command: `.venv/bin/{command.strip()}`",
        f"- Date: {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} CPUs (`nproc` = {os.cpu_count()}), {_cpu_model()}; Python "
        f"{platform.python_version()}. Shared, busy 2-core machine (other engineers' jobs running): absolute "
        "times are noisy; ratios are measured in the same run.",
        "",
    ]
    if scale:
        lines += [
            "### Building engine data from events",
            "",
            "Full build = `interaction_data_from_events()` (weighted CSR, time-ordered sequences, sessions, item "
            "features, id maps). Baseline = only reading the same rows through the ORM iterator with datetimes "
            "(`values_list(...).iterator()`), building nothing. Best of 2, alternating.",
            "",
            "| Backend | events in table | weighted product events | users | sessions | full build (s) | "
            "baseline read only (s) | build / read | `pop` run total (s) | `itemknn` run total (s) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in scale:
            b, base = min(r["build_s"]), min(r["baseline_s"])
            lines.append(
                f"| {r['vendor']} | {r['events_total']:,} | {r['events_weighted']:,} | {r['users']:,} | "
                f"{r['sessions']:,} | {b:.1f} | {base:.1f} | **{b / base:.2f}x** | "
                f"{r['runs']['pop']['timings'].get('total', float('nan')):.1f} | "
                f"{r['runs']['itemknn']['timings'].get('total', float('nan')):.1f} |"
            )
        lines.append("")
        for r in scale:
            lines.append(
                f"- {r['vendor']}: build runs {', '.join(f'{x:.1f}' for x in r['build_s'])} s; baseline "
                f"{', '.join(f'{x:.1f}' for x in r['baseline_s'])} s; run phases (s): "
                + "; ".join(
                    f"{e}: " + ", ".join(f"{k} {v}" for k, v in run["timings"].items())
                    for e, run in r["runs"].items()
                )
            )
        lines.append("")
    if demo:
        runs = demo["runs"]
        pop = runs.get("pop", {})
        pop_total = pop.get("timings", {}).get("total")
        pop_ndcg = pop.get("metrics", {}).get("ndcg@10")
        ev = next(iter(runs.values()))
        lines += [
            "### `train --all` on the demo shop (seed_demo defaults: 10,000 customers, 500 products, 60 days)",
            "",
            f"Engines the default widgets need: {', '.join(demo['engines'])}. Data: "
            f"{ev['snapshot']['events']:,} weighted events, {ev['snapshot']['users']:,} shoppers; held-out "
            f"split: events after {ev['evaluation']['cut']} ({ev['evaluation']['test_events']:,} events), "
            f"{ev['evaluation']['test_users']:,} test shoppers (items new to them after the cut). Each run "
            "fits twice (on the training part to evaluate, then on all events to serve)."
            + (f" seed_demo took {demo['seed_s']:.0f} s." if demo.get("seed_s") else ""),
            "",
            "| Engine | device | data (s) | fit (s) | evaluate (s) | refit (s) | total (s) | total / pop | "
            "NDCG@10 | HR@10 | recall@10 | coverage@10 | NDCG@10 / pop |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for engine, run in runs.items():
            t, m = run["timings"], run["metrics"]
            if run["status"] != "succeeded":
                lines.append(f"| {engine} | failed: {run['error'][-120:]!r} |" + " |" * 11)
                continue
            lines.append(
                f"| {engine} | {run['device']} | {t.get('data', 0):.1f} | {t.get('fit', 0):.1f} | "
                f"{t.get('evaluate', 0):.1f} | {t.get('refit', 0):.1f} | {t.get('total', 0):.1f} | "
                f"{(t.get('total', 0) / pop_total) if pop_total else float('nan'):.2f} | "
                f"{m.get('ndcg@10', float('nan')):.4f} | {m.get('hr@10', float('nan')):.4f} | "
                f"{m.get('recall@10', float('nan')):.4f} | {m.get('coverage@10', float('nan')):.3f} | "
                f"{(m.get('ndcg@10', 0) / pop_ndcg) if pop_ndcg else float('nan'):.2f} |"
            )
        lines.append("")
    out = ROOT / "docs" / "benchmarks" / "training.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

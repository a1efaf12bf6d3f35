"""Event ingestion throughput: POST /api/v1/events (batches of 500) vs a raw Event.objects.bulk_create.

Run:  .venv/bin/python benchmarks/bench_ingest.py [--events 20000] [--rounds 3] [--backends sqlite,postgres]

For each backend a child process (settings are fixed at start-up) builds a throw-away database
(SQLite: a temporary file; PostgreSQL: database `recsite_bench`, dropped afterwards), migrates it,
seeds 500 products and 200 customers, and then alternates, per round:

- API: the events go through Django's test Client in-process (full middleware stack, DRF, API-key
  authentication, the events throttle, JSON parsing, validation in catalog.services.events_record,
  product/customer/known-id look-ups, bulk insert, JSON answer). Bodies are JSON-encoded before the
  clock starts (that is the client's work). No network or server process: this measures the server's
  CPU/database cost per event, not socket overhead.
- raw: `Event.objects.bulk_create(objs, batch_size=500)` of the same kind of events (fresh ids), with the
  model instances built before the clock starts: the database's insert ceiling. A second raw figure
  includes building the instances from already-parsed values.

The events table is emptied between phases; the reported rate is the median over rounds. Writes
docs/benchmarks/ingest.md. DEBUG is off (no query logging).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "recsite_bench"
REDIS_BENCH_URL = "redis://127.0.0.1:6379/12"
BATCH = 500
N_PRODUCTS = 500
N_CUSTOMERS = 200


# ----------------------------------------------------------------------------------------------------
# child: one backend


def child(backend: str, n_events: int, rounds: int, profile: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "recsite.settings.base"
    os.environ["DEBUG"] = "False"
    os.environ["THROTTLE_EVENTS"] = "100000000/min"  # throttle stays in the path, never trips
    os.environ["LOG_LEVEL"] = "WARNING"
    tmpdir = tempfile.mkdtemp(prefix="recsite-bench-")
    if backend == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{tmpdir}/bench.sqlite3"
        os.environ.pop("REDIS_URL", None)
    else:
        _pg_recreate()
        os.environ["DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_BENCH_DB
        os.environ["REDIS_URL"] = REDIS_BENCH_URL
    os.environ["MEDIA_ROOT"] = tmpdir

    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from rest_framework_api_key.models import APIKey

    from catalog.models import Brand, Category, Customer, Event, Product

    try:
        call_command("migrate", verbosity=0, interactive=False)
        cache.clear()
        category = Category.objects.create(name="Bench", slug="bench")
        brand = Brand.objects.create(name="Bench", slug="bench")
        Product.objects.bulk_create(
            [
                Product(
                    sku=f"B-{i:05d}",
                    title=f"Product {i}",
                    slug=f"p-{i}",
                    category=category,
                    brand=brand,
                    price=i % 300 + 1,
                )
                for i in range(N_PRODUCTS)
            ]
        )
        Customer.objects.bulk_create([Customer(external_id=f"bench-{i}") for i in range(N_CUSTOMERS)])
        product_ids = list(Product.objects.values_list("pk", flat=True))
        customer_pk = dict(Customer.objects.values_list("external_id", "pk"))
        _, key = APIKey.objects.create_key(name="bench")
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}")
        rng = random.Random(7)

        def api_phase(events: list[dict]) -> float:
            bodies = [json.dumps(events[i : i + BATCH]).encode() for i in range(0, len(events), BATCH)]
            start = time.perf_counter()
            for body in bodies:
                response = client.post("/api/v1/events", data=body, content_type="application/json")
                if response.status_code != 200:
                    raise SystemExit(f"API answered {response.status_code}: {response.content[:500]!r}")
            return time.perf_counter() - start

        def raw_objects(events: list[dict]) -> list:
            return [
                Event(
                    event_id=uuid.UUID(e["event_id"]),
                    type=e["type"],
                    product_id=e.get("product_id"),
                    customer_id=customer_pk[e["customer"]] if "customer" in e else None,
                    visitor_id=e["visitor_id"],
                    session_id=e["session_id"],
                    timestamp=datetime.fromisoformat(e["timestamp"]),
                    quantity=e.get("quantity", 1),
                    price=e.get("price"),
                    value=e.get("value"),
                    dwell_ms=e.get("dwell_ms"),
                    query=e.get("query", ""),
                    impression_id=uuid.UUID(e["impression_id"]) if "impression_id" in e else None,
                    context=e["context"],
                )
                for e in events
            ]

        def raw_phase(events: list[dict]) -> tuple[float, float]:
            objs = raw_objects(events)
            start = time.perf_counter()
            Event.objects.bulk_create(objs, batch_size=BATCH)
            insert_only = time.perf_counter() - start
            events2 = [{**e, "event_id": str(uuid.uuid4())} for e in events]
            start = time.perf_counter()
            Event.objects.bulk_create(raw_objects(events2), batch_size=BATCH)
            with_build = time.perf_counter() - start
            return insert_only, with_build

        def clear_events() -> None:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM catalog_event")

        # warm-up: code paths, caches, prepared statements
        api_phase(_events(rng, product_ids, list(customer_pk), BATCH))
        raw_phase(_events(rng, product_ids, list(customer_pk), BATCH))
        clear_events()

        api_rates, raw_rates, raw_build_rates, dup_rates = [], [], [], []
        for r in range(rounds):
            events = _events(rng, product_ids, list(customer_pk), n_events)
            raw_events = _events(rng, product_ids, list(customer_pk), n_events)
            phases = ["api", "raw"] if r % 2 == 0 else ["raw", "api"]  # alternate to cancel drift
            for phase in phases:
                if phase == "api":
                    api_rates.append(n_events / api_phase(events))
                    assert Event.objects.count() == n_events
                    dup_rates.append(n_events / api_phase(events))  # every event a duplicate now
                    assert Event.objects.count() == n_events
                else:
                    insert_only, with_build = raw_phase(raw_events)
                    raw_rates.append(n_events / insert_only)
                    raw_build_rates.append(n_events / with_build)
                clear_events()

        profile_text = ""
        if profile:
            import cProfile
            import io
            import pstats

            events = _events(rng, product_ids, list(customer_pk), n_events)
            profiler = cProfile.Profile()
            profiler.enable()
            api_phase(events)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
            profile_text = out.getvalue()
            clear_events()

        versions = {"vendor": connection.vendor, "server": _server_version(connection)}
        return {
            "backend": backend,
            "db": versions,
            "cache": "redis" if os.environ.get("REDIS_URL") else "locmem",
            "events": n_events,
            "rounds": rounds,
            "api": api_rates,
            "api_duplicates": dup_rates,
            "raw": raw_rates,
            "raw_with_build": raw_build_rates,
            "profile": profile_text,
        }
    finally:
        from django.db import connections

        connections.close_all()
        if backend == "postgres":
            _pg_drop()


def _events(rng: random.Random, product_ids: list[int], customers: list[str], n: int) -> list[dict]:
    """A realistic mix: mostly views, some clicks (half from recommendations), carts, purchases, searches."""
    now = datetime.now(UTC)
    kinds = (
        ["view"] * 60
        + ["click"] * 15
        + ["dwell"] * 10
        + ["add_to_cart"] * 7
        + ["search"] * 5
        + ["purchase"] * 3
    )
    out = []
    for i in range(n):
        kind = rng.choice(kinds)
        visitor = f"visitor-{rng.randrange(5000):05d}"
        e: dict = {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "visitor_id": visitor,
            "session_id": f"s-{visitor}-{i // 20}",
            "timestamp": (now - timedelta(seconds=rng.randrange(86400 * 30))).isoformat(),
            "context": {
                "page": f"/products/{i % 997}/",
                "device": rng.choice(["desktop", "mobile"]),
                "referrer": "",
            },
        }
        if rng.random() < 0.5:
            e["customer"] = rng.choice(customers)
        if kind == "search":
            e["query"] = rng.choice(["usb cable", "camera", "4k tv", "headphones", "laptop stand"])
        else:
            e["product_id"] = rng.choice(product_ids)
        if kind == "click" and rng.random() < 0.5:
            e["impression_id"] = str(uuid.uuid4())
        if kind == "dwell":
            e["dwell_ms"] = rng.randrange(500, 120_000)
        if kind in ("add_to_cart", "purchase"):
            e["quantity"] = rng.randrange(1, 3)
            e["price"] = f"{rng.randrange(100, 100_000) / 100:.2f}"
        out.append(e)
    return out


def _pg_recreate() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")


def _pg_drop() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")


def _server_version(connection) -> str:
    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return f"PostgreSQL {cursor.fetchone()[0]}"


# ----------------------------------------------------------------------------------------------------
# parent: run the children, print, write the Markdown fragment


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=20_000, help="events per phase per round (default 20000)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one API phase and print the top"
    )
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks/ingest.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = child(args.child, args.events, args.rounds, args.profile)
        print("RESULT " + json.dumps(result))
        return

    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            backend,
            "--events",
            str(args.events),
            "--rounds",
            str(args.rounds),
        ]
        if args.profile:
            cmd.append("--profile")
        print(f"== {backend}: {' '.join(cmd[1:])}", flush=True)
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            raise SystemExit(f"{backend} run failed (exit {proc.returncode})")
        result = json.loads(line[len("RESULT ") :])
        results.append(result)
        _print_result(result)

    if not args.no_write:
        path = ROOT / "docs" / "benchmarks" / "ingest.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_markdown(results, args))
        print(f"wrote {path.relative_to(ROOT)}")


def _summary(result: dict) -> dict:
    api = statistics.median(result["api"])
    raw = statistics.median(result["raw"])
    raw_build = statistics.median(result["raw_with_build"])
    dup = statistics.median(result["api_duplicates"])
    return {
        "api": api,
        "raw": raw,
        "raw_build": raw_build,
        "dup": dup,
        "ratio": api / raw,
        "ratio_build": api / raw_build,
    }


def _print_result(result: dict) -> None:
    s = _summary(result)
    print(
        f"  {result['db']['server']}, cache {result['cache']}: API {s['api']:,.0f} ev/s, "
        f"raw bulk_create {s['raw']:,.0f} ev/s (with building instances {s['raw_build']:,.0f}), "
        f"ratio {s['ratio']:.0%} ({s['ratio_build']:.0%}); re-sent duplicates {s['dup']:,.0f} ev/s"
    )
    print(
        "  per round  API:",
        ", ".join(f"{x:,.0f}" for x in result["api"]),
        " raw:",
        ", ".join(f"{x:,.0f}" for x in result["raw"]),
    )
    if result.get("profile"):
        print(result["profile"])


def _markdown(results: list[dict], args: argparse.Namespace) -> str:
    cmd = ".venv/bin/python benchmarks/bench_ingest.py"
    if args.events != 20_000 or args.rounds != 3 or args.backends != "sqlite,postgres":
        cmd += f" --events {args.events} --rounds {args.rounds} --backends {args.backends}"
    lines = [
        "## Event ingestion (POST /api/v1/events vs raw bulk_create)",
        "",
        f"- Command: `{cmd}`",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} CPUs (`nproc` = {_nproc()}), {_cpu_model()}; Python {platform.python_version()}. "
        "Shared, busy 2-core machine (other jobs running): absolute rates are noisy, the ratio measured in the "
        "same run is the figure to read.",
        f"- Workload: {args.events:,} events per phase, {args.rounds} rounds (median reported), batches of {BATCH}; "
        "mix 60% view, 15% click (half with impression_id), 10% dwell, 7% add_to_cart, 5% search, 3% purchase; "
        "half carry a customer (looked up by external_id), all a context object.",
        "- API path: Django test Client in-process (middleware, DRF, API-key auth, throttle, JSON parse, "
        "validation, 3 look-up queries, one bulk insert per request, JSON answer); no sockets. Raw: "
        "`Event.objects.bulk_create(objs, batch_size=500)` with instances built beforehand (second figure: "
        "building them included).",
        "",
        "| Backend | API events/s | raw bulk_create events/s | API / raw (target >= 50%) | raw incl. building instances | API / that | re-sent duplicates events/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        s = _summary(result)
        lines.append(
            f"| {result['db']['server']} (cache: {result['cache']}) | {s['api']:,.0f} | {s['raw']:,.0f} | "
            f"**{s['ratio']:.0%}** | {s['raw_build']:,.0f} | {s['ratio_build']:.0%} | {s['dup']:,.0f} |"
        )
    lines.append("")
    lines.append("Per-round rates (events/s):")
    lines.append("")
    for result in results:
        lines.append(
            f"- {result['db']['server']}: API {', '.join(f'{x:,.0f}' for x in result['api'])}; "
            f"raw {', '.join(f'{x:,.0f}' for x in result['raw'])}"
        )
    lines.append("")
    return "\n".join(lines)


def _nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


if __name__ == "__main__":
    main()

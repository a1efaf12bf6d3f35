"""Serving benchmark: a load generator against the `make serve` stack on PostgreSQL + Redis.

    .venv/bin/python benchmarks/bench_serving.py [--scale large|default|small] [--reuse] [--concurrency 4,16]
        [--requests 3000] [--seconds 45] [--workers 2] [--port 8765] [--customers 20000]

What it does (all on 127.0.0.1):

1. Setup (skipped with --reuse when the database already holds a seeded shop): a throw-away PostgreSQL
   database `recsite_bench_serving` (dropped and re-created), `migrate`, `seed_demo --scale <scale>`,
   `train --engine itemknn --engine pop` and `precompute_recommendations` for the benchmark's
   personalized widget (Redis db 11, flushed first). Three benchmark widgets use `itemknn` (it trains in
   seconds at 50,000 products; EASE's dense 50k x 50k inverse would need ~10 GB).
2. Starts the server exactly as `make serve` does (gunicorn + uvicorn workers, recsite.settings.serve,
   buffered impression writer), throttles raised so the load generator measures serving, not 429s.
3. For each concurrency level and scenario, the same run: warm-up, then up to --requests requests or
   --seconds seconds with an asyncio + httpx client; throughput, p50/p95/p99 latency, errors:
      health        GET /api/v1/health                                    (the ceiling)
      personalized  GET /api/v1/recommendations/bench-personalized?customer=<cached customer>
      session       GET /api/v1/recommendations/bench-session?visitor=<new>&session_items=<3 clicks>
      similar       GET /api/v1/recommendations/bench-similar?product=<product>
4. RSS of every worker after the load; writes docs/benchmarks/serving.md.

Also measured in the benchmark process (same settings as the server): SQL queries and Redis round trips
per request of each endpoint (Django test client, CaptureQueriesContext and a counting wrapper on the
Redis client), and the in-process latency of `recommendations_get` alone. `--compare-memo-off` first runs
every level against a server with the per-process memos off (RECSITE_SERVING_MEMO_SECONDS=0,
RECSITE_SERVING_ATTRS_SECONDS=0, RECSITE_API_KEY_CACHE_SECONDS=0), so their effect is measured in the same
run under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DB_NAME = "recsite_bench_serving"
PG = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/11"
OUT = ROOT / "docs" / "benchmarks" / "serving.md"

ENV = {
    **os.environ,
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "REDIS_URL": REDIS,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "THROTTLE_ANON": "100000000/min",
    "THROTTLE_USER": "100000000/min",
    "THROTTLE_RECOMMENDATIONS": "100000000/min",
    "LOG_LEVEL": "WARNING",
}


def sh(*args: str, env: dict | None = None, log: str | None = None) -> float:
    """Run a command in the repository; returns seconds; raises on failure (output shown)."""
    started = time.perf_counter()
    print("$", " ".join(args), flush=True)
    result = subprocess.run(args, cwd=ROOT, env=env or ENV, capture_output=True, text=True)
    if log:
        (Path("/tmp") / log).write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:])
        raise SystemExit(f"command failed: {' '.join(args)}")
    return time.perf_counter() - started


def django_setup() -> None:
    os.environ.update(
        {k: v for k, v in ENV.items() if k not in os.environ or k in ("DATABASE_URL", "REDIS_URL")}
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "recsite.settings.serve"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --------------------------------------------------------------------------------------------- setup


def setup(scale: str, overrides: list[str]) -> dict:
    timings = {}
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    timings["migrate"] = sh(
        PY,
        "manage.py",
        "migrate",
        "--noinput",
        env={**ENV, "DJANGO_SETTINGS_MODULE": "recsite.settings.serve"},
    )
    timings["seed_demo"] = sh(
        PY, "manage.py", "seed_demo", "--scale", scale, *overrides, "--no-progress", log="bench_seed.log"
    )
    return timings


def prepare(customers_cap: int) -> dict:
    """Benchmark widgets, training, batch precompute; returns what the load generator needs."""
    timings: dict[str, float] = {}
    django_setup()
    from rest_framework_api_key.models import APIKey

    from catalog.models import Customer, Event, Product
    from recommender.models import ModelVersion, Widget

    for slug, strategy in (
        ("bench-personalized", "personalized"),
        ("bench-session", "session_based"),
        ("bench-similar", "similar_items"),
    ):
        Widget.objects.update_or_create(
            slug=slug,
            defaults={
                "title": slug,
                "placement": "home",
                "strategy": strategy,
                "engine": "itemknn",
                "num_items": 8,
                "fallback_strategy": "popular",
                "enabled": True,
            },
        )
    if not ModelVersion.objects.filter(engine="itemknn", status="active").exists():
        timings["train itemknn+pop"] = sh(
            PY,
            "manage.py",
            "train",
            "--engine",
            "itemknn",
            "--engine",
            "pop",
            "--no-progress",
            log="bench_train.log",
        )
    version = ModelVersion.objects.get(engine="itemknn", status="active")
    timings["precompute"] = sh(
        PY,
        "manage.py",
        "precompute_recommendations",
        "--model-version",
        str(version.pk),
        "--limit",
        str(customers_cap),
        log="bench_precompute.log",
    )
    from recommender.batch import active_customer_ids
    from recommender.serving import ServingTrace, recommendations_get, serving_state_reset

    cached_ids = active_customer_ids(limit=customers_cap)
    customers = list(Customer.objects.filter(pk__in=cached_ids).values_list("external_id", flat=True))
    # How often the personalized widget really is served from the batch cache (sampled in-process).
    widget = Widget.objects.get(slug="bench-personalized")
    serving_state_reset()
    sample = random.Random(1).sample(
        list(Customer.objects.filter(pk__in=cached_ids)), min(100, len(cached_ids))
    )
    hits = 0
    for c in sample:
        trace: list[ServingTrace] = []
        recommendations_get(widget=widget, customer=c, log=False, trace=trace)
        hits += trace[0].cached
    # Session clicks: products people actually click (so the live path has co-occurrence to work with).
    popular = list(
        Event.objects.filter(type="view").values_list("product_id", flat=True).order_by("-id")[:20000]
    )
    products = list(Product.objects.filter(is_active=True).values_list("pk", flat=True))
    inproc = inprocess_latency(customers=sample, clicked=popular or products)
    _, key = APIKey.objects.create_key(name=f"bench-{int(time.time())}")
    trips = round_trips(api_key=key, customers=customers, clicked=popular or products)
    return {
        "timings": timings,
        "customers": customers,
        "cache_hit_sample": (hits, len(sample)),
        "clicked": popular or products,
        "products": products,
        "api_key": key,
        "n_products": len(products),
        "n_customers": Customer.objects.count(),
        "n_events": Event.objects.count(),
        "version": version.pk,
        "inprocess": inproc,
        "round_trips": trips,
    }


def round_trips(*, api_key: str, customers: list[str], clicked: list[int], n: int = 50) -> dict:
    """Mean SQL queries and Redis round trips per request of each endpoint (after a warm-up), through the
    whole Django stack in this process: what one request costs in waits on other processes."""
    import redis.client
    from django.core.cache.backends.redis import RedisCacheClient
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    calls: list[str] = []
    originals = {}
    for name in ("get", "get_many", "set", "set_many", "add", "incr", "delete", "delete_many", "touch"):
        originals[name] = getattr(RedisCacheClient, name)

        def counted(self, *a, _name=name, **k):
            calls.append(_name)
            return originals[_name](self, *a, **k)

        setattr(RedisCacheClient, name, counted)
    pipeline_execute = redis.client.Pipeline.execute

    def pipeline_counted(self, *a, **k):
        calls.append("pipeline")
        return pipeline_execute(self, *a, **k)

    redis.client.Pipeline.execute = pipeline_counted
    rng = random.Random(11)
    urls = {
        "health": lambda: "/api/v1/health",
        "personalized (cached)": lambda: (
            f"/api/v1/recommendations/bench-personalized?customer={rng.choice(customers)}&k=8"
        ),
        "session-based (live)": lambda: (
            f"/api/v1/recommendations/bench-session?visitor=rt{rng.getrandbits(40):x}&k=8"
            f"&session_items={','.join(str(rng.choice(clicked)) for _ in range(3))}"
        ),
        "similar items (live)": lambda: (
            f"/api/v1/recommendations/bench-similar?product={rng.choice(clicked)}&k=8"
        ),
    }
    out = {}
    try:
        with override_settings(ALLOWED_HOSTS=["testserver"]):
            client = Client(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
            for name, make in urls.items():
                for _ in range(10):
                    client.get(make())
                sql, cache_ops = [], []
                for _ in range(n):
                    calls.clear()
                    with CaptureQueriesContext(connection) as ctx:
                        status = client.get(make()).status_code
                    if status != 200:
                        raise SystemExit(f"{name}: HTTP {status} while counting round trips")
                    sql.append(len(ctx.captured_queries))
                    cache_ops.append(len(calls))
                out[name] = (statistics.fmean(sql), statistics.fmean(cache_ops))
                print(f"round trips {name}: SQL {out[name][0]:.2f}, Redis {out[name][1]:.2f}", flush=True)
    finally:
        for name, fn in originals.items():
            setattr(RedisCacheClient, name, fn)
        redis.client.Pipeline.execute = pipeline_execute
    return out


def inprocess_latency(
    *, customers: list, clicked: list[int], n: int = 200
) -> dict[str, tuple[float, float, float]]:
    """recommendations_get called directly (no HTTP, no JSON, no impression write), one after another:
    (median, p95) in ms per scenario after a warm-up, and the share of product-attribute lookups the
    per-process memo answered. Separates serving cost from server and contention."""
    from catalog.models import Product
    from recommender import serving
    from recommender.serving import recommendations_get

    rng = random.Random(7)
    # as the endpoint gets them: enabled rules prefetched, through the per-process widget memo
    widgets = {
        slug: serving.widget_enabled_get(slug)
        for slug in ("bench-personalized", "bench-session", "bench-similar")
    }
    products = Product.objects.in_bulk(list(set(clicked[:2000])))
    pids = list(products)
    calls = {
        "personalized (cached)": lambda: recommendations_get(
            widget=widgets["bench-personalized"], customer=rng.choice(customers), k=8, log=False
        ),
        "session-based (live)": lambda: recommendations_get(
            widget=widgets["bench-session"],
            visitor=f"inproc{rng.getrandbits(40):x}",
            session_items=[rng.choice(clicked) for _ in range(3)],
            k=8,
            log=False,
        ),
        "similar items (live)": lambda: recommendations_get(
            widget=widgets["bench-similar"], product=products[rng.choice(pids)], k=8, log=False
        ),
    }
    import gc

    pauses: list[float] = []  # full (generation 2) garbage collections during the timed calls, in ms
    started: list[float] = []

    def gc_watch(phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            pauses.append((time.perf_counter() - started[0]) * 1000)

    out = {}
    gc.callbacks.append(gc_watch)
    for name, call in calls.items():
        for _ in range(20):
            call()
        times = []
        serving.attrs_memo_stats.update(hits=0, misses=0)
        for _ in range(n):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        looked_up = serving.attrs_memo_stats["hits"] + serving.attrs_memo_stats["misses"]
        hit_rate = serving.attrs_memo_stats["hits"] / looked_up if looked_up else 0.0
        out[name] = (statistics.median(times), times[int(0.95 * (len(times) - 1))], hit_rate)
        print(
            f"in-process {name}: median {out[name][0]:.1f} ms, p95 {out[name][1]:.1f} ms, "
            f"attribute memo hits {100 * hit_rate:.0f}%",
            flush=True,
        )
    gc.callbacks.remove(gc_watch)
    out["gc"] = (len(pauses), max(pauses, default=0.0), len(gc.get_objects()))
    print(f"in-process full GC: {out['gc'][0]} collections, longest {out['gc'][1]:.1f} ms", flush=True)
    return out


# --------------------------------------------------------------------------------------------- server


def server_start(port: int, workers: int, extra_env: dict | None = None) -> subprocess.Popen:
    env = {**ENV, "DJANGO_SETTINGS_MODULE": "recsite.settings.serve", **(extra_env or {})}
    sh(PY, "manage.py", "collectstatic", "--noinput", "-v", "0", env=env)
    cmd = [
        str(Path(PY).parent / "gunicorn"),
        "recsite.asgi:application",
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    import httpx

    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("server did not come up in 90 s")


def worker_rss(master_pid: int) -> list[float]:
    """RSS in MiB of each gunicorn worker (children of the master)."""
    out = subprocess.run(
        ["ps", "-o", "pid=,rss=", "--ppid", str(master_pid)], capture_output=True, text=True
    ).stdout
    return [int(line.split()[1]) / 1024 for line in out.strip().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------- load


async def run_scenario(
    name: str,
    make_url,
    *,
    port: int,
    headers: dict,
    concurrency: int,
    max_requests: int,
    seconds: float,
    warmup: int,
) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=30
    ) as client:
        # warm-up: every worker loads models, fills its lists and connections
        for _ in range(warmup):
            await client.get(make_url())
        latencies: list[float] = []
        errors: dict[int | str, int] = {}
        sent = 0
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal sent
            while sent < max_requests and time.perf_counter() < stop_at:
                sent += 1
                url = make_url()
                t0 = time.perf_counter()
                try:
                    r = await client.get(url)
                    status: int | str = r.status_code
                    if (
                        status == 200 and name != "health" and not r.json().get("items")
                    ):  # health has no items
                        status = "empty"
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors[status] = errors.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] * 1000

    return {
        "name": name,
        "requests": len(lat),
        "seconds": elapsed,
        "rps": len(lat) / elapsed,
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "mean": statistics.fmean(lat) * 1000,
        "errors": errors,
    }


# --------------------------------------------------------------------------------------------- main


def seed_overrides(args: argparse.Namespace) -> list[str]:
    out = []
    for flag, value in (
        ("--products", args.seed_products),
        ("--customers", args.seed_customers),
        ("--days", args.seed_days),
    ):
        if value is not None:
            out += [flag, str(value)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="large", choices=["small", "default", "large"])
    ap.add_argument("--reuse", action="store_true", help="reuse the seeded recsite_bench_serving database")
    ap.add_argument(
        "--concurrency", default="4,16", help="comma-separated levels, each a full round of scenarios"
    )
    ap.add_argument("--requests", type=int, default=3000, help="per scenario, at most")
    ap.add_argument("--seconds", type=float, default=45.0, help="per scenario, at most")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--customers", type=int, default=20000, help="customers precomputed and requested")
    ap.add_argument("--seed-products", type=int, help="seed_demo --products (overrides the scale)")
    ap.add_argument("--seed-customers", type=int, help="seed_demo --customers (overrides the scale)")
    ap.add_argument("--seed-days", type=int, help="seed_demo --days (overrides the scale)")
    ap.add_argument(
        "--compare-memo-off",
        action="store_true",
        help="first run every level with the per-process memos off (same run, same load) for comparison",
    )
    args = ap.parse_args()
    try:
        args.levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    except ValueError:
        ap.error("--concurrency takes whole numbers separated by commas, e.g. 4,16")
    if not args.levels or min(args.levels) < 1 or args.requests < 1 or args.seconds <= 0 or args.workers < 1:
        ap.error("concurrency, requests, seconds and workers must be positive")

    timings: dict[str, float] = {}
    if not args.reuse:
        timings.update(setup(args.scale, seed_overrides(args)))
    info = prepare(args.customers)
    timings.update(info["timings"])
    if not info["customers"]:
        raise SystemExit("no active customers were precomputed; is the database seeded?")

    rng = random.Random(42)
    customers, clicked = info["customers"], info["clicked"]
    scenarios = {
        "health": lambda: "/api/v1/health",
        "personalized (cached)": lambda: (
            f"/api/v1/recommendations/bench-personalized?customer={rng.choice(customers)}&k=8"
        ),
        "session-based (live)": lambda: (
            "/api/v1/recommendations/bench-session?visitor=bench"
            f"{rng.getrandbits(40):x}&k=8&session_items={','.join(str(rng.choice(clicked)) for _ in range(3))}"
        ),
        "similar items (live)": lambda: (
            f"/api/v1/recommendations/bench-similar?product={rng.choice(clicked)}&k=8"
        ),
    }
    headers = {"Authorization": f"Api-Key {info['api_key']}"}
    configs = [("memos on (as shipped)", {})]
    if args.compare_memo_off:
        configs.insert(
            0,
            (
                "memos off",
                {
                    "RECSITE_SERVING_MEMO_SECONDS": "0",
                    "RECSITE_SERVING_ATTRS_SECONDS": "0",
                    "RECSITE_API_KEY_CACHE_SECONDS": "0",
                },
            ),
        )
    runs: list[tuple[str, list[tuple[int, list[dict], float]], list[float]]] = []
    for label, extra_env in configs:
        levels, rss = run_levels(args, scenarios, headers, extra_env, label)
        runs.append((label, levels, rss))
    report(args, info, timings, runs)


def run_levels(args, scenarios, headers, extra_env, label):
    """Start the server, run every concurrency level's scenarios, stop it; (levels, worker RSS)."""
    proc = server_start(args.port, args.workers, extra_env)
    levels: list[tuple[int, list[dict], float]] = []  # (concurrency, results, load average before)
    rss: list[float] = []
    try:
        for concurrency in args.levels:
            load_before = os.getloadavg()[0]
            results = []
            for name, make_url in scenarios.items():
                res = asyncio.run(
                    run_scenario(
                        name,
                        make_url,
                        port=args.port,
                        headers=headers,
                        concurrency=concurrency,
                        max_requests=args.requests,
                        seconds=args.seconds,
                        warmup=max(20, args.workers * 10),
                    )
                )
                results.append(res)
                print(
                    f"[{label}] c={concurrency:<3d} {name:24s} {res['requests']:6d} req {res['rps']:8.1f} req/s  "
                    f"p50 {res['p50']:7.1f} ms  p95 {res['p95']:7.1f} ms  p99 {res['p99']:7.1f} ms  "
                    f"errors {res['errors'] or 0}",
                    flush=True,
                )
            levels.append((concurrency, results, load_before))
        rss = worker_rss(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return levels, rss


# Figures of the previous version of the serving path (before the per-process memos, the single-round-trip
# throttle and the pk-only product lookup), measured by this script at 2026-11-21 23:36 UTC with the same
# data and command (load average 12.7 when concurrency 4 started). Quoted for comparison only, clearly
# labelled: a different run under a different load.
BEFORE = {
    "when": "2026-11-21 23:36 UTC, same command, 1-minute load average 12.7 at the start",
    "round_trips": {
        "health": (1, 1),
        "personalized (cached)": (5, 4),
        "session-based (live)": (6, 4),
        "similar items (live)": (5, 4),
    },
    4: {
        "health": (149.3, 80.4),
        "personalized (cached)": (44.4, 233.7),
        "session-based (live)": (45.6, 286.5),
        "similar items (live)": (42.3, 220.0),
    },
    "inprocess": {
        "personalized (cached)": 16.5,
        "session-based (live)": 21.2,
        "similar items (live)": 16.0,
    },
}


def report(args, info, timings, runs) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = os.getloadavg()
    hits, sampled = info["cache_hit_sample"]
    seed_flags = "".join(
        f" --seed-{f[2:]} {v}"
        for f, v in zip(seed_overrides(args)[::2], seed_overrides(args)[1::2], strict=True)
    )
    lines = [
        "## Serving (REST API under load)",
        "",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: `nproc` = {os.cpu_count()}, {cpu}; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. "
        "**A shared, busy 2-core machine**: other engineers' tests, trainings and benchmarks ran at the same time, and "
        "the load generator shares the two cores with the server, PostgreSQL and Redis, so absolute figures are "
        "pessimistic and noisy; the ratios to the health endpoint, measured in the same run, are the comparable numbers.",
        f"- Command: `.venv/bin/python benchmarks/bench_serving.py --scale {args.scale} --concurrency {args.concurrency} "
        f"--requests {args.requests} --seconds {args.seconds:g} --workers {args.workers} --customers {args.customers}"
        f"{seed_flags}{' --reuse' if args.reuse else ''}{' --compare-memo-off' if args.compare_memo_off else ''}`",
        f"- Server: the `make serve` command line (gunicorn, {args.workers} uvicorn workers, `recsite.settings.serve`: "
        "PostgreSQL through a psycopg pool, Redis cache and throttle counters, buffered impression writer); throttles "
        "raised for the run, API-key authentication on every request.",
        f"- Data: `seed_demo --scale {args.scale}{seed_flags.replace('--seed-', '--')}`: {info['n_products']:,} active products, "
        f"{info['n_customers']:,} customers, {info['n_events']:,} events. Engine `itemknn` (model version {info['version']}) "
        f"for all three widgets, 8 items per request. Batch precompute for {len(info['customers']):,} active customers; "
        f"sampled cache hit rate of the personalized widget: {hits}/{sampled}.",
        "- Setup timings: " + (", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) or "reused database"),
        "",
        f"At most {args.requests} requests or {args.seconds:g} s per scenario, after a warm-up; one table per fixed "
        "concurrency (number of requests in flight).",
    ]
    if args.compare_memo_off:
        lines += [
            "",
            '"Memos off" is this version with the per-process memos (versions, widgets, product attributes, API '
            "keys) turned off by environment, run first under the same conditions; it still has the other changes "
            "(single-round-trip throttle, pk-only product lookup, heap freeze), so it is not the previous version: "
            "that one's figures are quoted further down.",
        ]
    verdicts = []
    shipped = runs[-1][1]
    for label, levels, _ in runs:
        for concurrency, results, load_before in levels:
            by = {r["name"]: r for r in results}
            health = by["health"]
            lines += [
                "",
                f"### {label[0].upper()}{label[1:]}, concurrency {concurrency} "
                f"(1-minute load average {load_before:.1f} when it started)",
                "",
                "| Endpoint | Requests | Throughput (req/s) | vs health | p50 (ms) | p95 (ms) | p99 (ms) | Errors |",
                "|---|---:|---:|---:|---:|---:|---:|---|",
            ]
            for r in results:
                errs = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
                lines.append(
                    f"| {r['name']} | {r['requests']} | {r['rps']:.1f} | {r['rps'] / health['rps']:.2f}x | "
                    f"{r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {errs} |"
                )
    for concurrency, results, _ in shipped:
        by = {r["name"]: r for r in results}
        health, pers, sess = by["health"], by["personalized (cached)"], by["session-based (live)"]
        verdicts += [
            f"- concurrency {concurrency}: cached personalized p99 ≤ 50 ms **{'met' if pers['p99'] <= 50 else 'missed'}** "
            f"({pers['p99']:.1f} ms; the health endpoint's own p99 in the same run: {health['p99']:.1f} ms, "
            f"p50 {health['p50']:.1f} vs {pers['p50']:.1f} ms); ≥ 50% of health throughput **{'met' if pers['rps'] >= 0.5 * health['rps'] else 'missed'}** "
            f"({100 * pers['rps'] / health['rps']:.0f}%); live session-based p99 ≤ 150 ms"
            f"{' (50,000 products)' if info['n_products'] >= 50_000 else ''} **{'met' if sess['p99'] <= 150 else 'missed'}** "
            f"({sess['p99']:.1f} ms)",
        ]
    trips = info["round_trips"]
    lines += [
        "",
        "Memory per worker (RSS after the load): "
        + "; ".join(f"{label}: {', '.join(f'{m:.0f} MiB' for m in rss) or 'n/a'}" for label, _, rss in runs)
        + ".",
        "",
        "Measured in the benchmark process with the server's settings (memos on), before the server started: "
        "round trips per request (mean of 50 requests through the whole Django stack after a warm-up; SQL counted "
        "with CaptureQueriesContext, Redis with a counting wrapper on the cache client, a pipeline counted once) and "
        "the in-process cost of `recommendations_get` alone (no HTTP, JSON or impression write; called one at a time; "
        'the machine was just as busy). The "before" columns are the previous version\'s figures '
        f"({BEFORE['when']}).",
        "",
        "| Scenario | SQL queries | Redis round trips | before: SQL / Redis | `recommendations_get` median (ms) | p95 (ms) | before: median (ms) | attribute memo hits |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    gc_count, gc_max, gc_tracked = info["inprocess"]["gc"]
    for name, (sql, ops) in trips.items():
        b_sql, b_ops = BEFORE["round_trips"].get(name, ("", ""))
        med, p95, hit_rate = info["inprocess"].get(name, (None, None, None))
        b_med = BEFORE["inprocess"].get(name)
        lines.append(
            f"| {name} | {sql:.2f} | {ops:.2f} | {b_sql} / {b_ops} | "
            f"{'' if med is None else f'{med:.1f}'} | {'' if p95 is None else f'{p95:.1f}'} | "
            f"{'' if b_med is None else f'{b_med:.1f}'} | {'' if hit_rate is None else f'{100 * hit_rate:.0f}%'} |"
        )
    lines += [
        "",
        f"Full garbage collections during those in-process calls: {gc_count}, the longest {gc_max:.1f} ms; "
        f"{gc_tracked:,} objects left for the collector to track after the heap freeze (`RECSITE_GC_FREEZE`). "
        "Before the freeze, an ad-hoc script on the same data (30 s of `recommendations_get` calls with a gc callback) measured about "
        "270,000 tracked objects and full collections of 160-200 ms.",
    ]
    before4 = BEFORE[4]
    now4 = next((results for c, results, _ in shipped if c == 4), None)
    if now4 is not None:
        by = {r["name"]: r for r in now4}
        lines += [
            "",
            f"Concurrency 4 against the previous version ({BEFORE['when']}; a different run under a different "
            "load, so compare the ratios to health more than the absolute figures):",
            "",
            "| Endpoint | before: req/s (vs health) | now: req/s (vs health) | before: p99 (ms) | now: p99 (ms) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, (b_rps, b_p99) in before4.items():
            r = by[name]
            lines.append(
                f"| {name} | {b_rps:.1f} ({b_rps / before4['health'][0]:.2f}x) | "
                f"{r['rps']:.1f} ({r['rps'] / by['health']['rps']:.2f}x) | {b_p99:.1f} | {r['p99']:.1f} |"
            )
    lines += [
        "",
        "Targets (memos on, as shipped):",
        *verdicts,
        "",
        "What changed, and the bounds it brings (all per worker process):",
        "",
        "- The active model version of each engine and the widget configuration with its rules are memoised for "
        "`RECSITE_SERVING_MEMO_SECONDS` (default 5 s), the rules' product attributes for "
        "`RECSITE_SERVING_ATTRS_SECONDS` (default 30 s). A promotion or rollback bumps the "
        "registry generation and a widget or rule save bumps a widget generation; each process polls both in one "
        "Redis read at most once a second, so a promotion or a merchandiser's edit shows in every worker within about "
        "1 s (at once in the process that saved it), and within the TTL if Redis is down. Stock, price and "
        "active-flag changes can take up to 30 s to reach the rules (an item that just sold out can still be "
        "recommended for that long; the product page and the cart read the database). The in-process table's last "
        "column is how often the attribute memo answered during those 200 calls, which start from a nearly cold "
        "memo; a worker that has served for a while answers more from memory.",
        "- A verified API key is remembered (sha256 of the key) for `RECSITE_API_KEY_CACHE_SECONDS` (default 30 s): "
        "no query and no hash per request; expiry is re-checked every request, a revocation saved in the same "
        "process applies at once, in other processes within the TTL; wrong keys are never remembered.",
        "- The recommendations throttle is a fixed-window counter on Redis (one pipelined INCR + EXPIRE) instead of "
        "DRF's list of every request time in the window (a read and a rewrite of a list that grows with the rate: "
        "about 3,000 timestamps per request at this benchmark's rate).",
        "- The `product` and `session_items` parameters are checked against the attribute memo (the endpoint passes "
        "a pk-only product to serving, which reads nothing else of it); reason-label titles come from the same memo.",
        "- Each worker freezes its heap out of the garbage collector's reach (`gc.freeze`) at its first request and "
        "after each model version it loads (`RECSITE_GC_FREEZE`, on under `make serve`), so full collections scan "
        "only request-time objects; the attribute memo stores plain tuples, which the collector does not track.",
        "- Impressions stay off the request path (the buffered writer, one bulk insert per worker every 0.5 s).",
        "- Through the server the cached personalized widget (about 3 SQL + 3 Redis round trips per request, "
        "measured above) is no faster than the live ones although its in-process cost is the lowest: round trips, "
        "not computation, set the pace here, since on two oversubscribed cores each one is a wait for another "
        "process (PostgreSQL, Redis) to be scheduled; the scenarios also run one after another, so load changes "
        "between them show. The p99 target is missed by that margin: the health endpoint alone (1 SQL + 1 Redis "
        "round trip, no recommender) already used most of the 50 ms budget at p99 in the same run.",
        "- What remains per cached personalized request: the customer row and the shopper's recent events (one "
        "indexed query each; neither can be memoised without serving stale consent or history), the batch candidates, "
        "the experiments hook's generation read (`experiments.selectors`, owned by the experiments app) and the "
        "throttle counter.",
        "- p99 at concurrency 16 is queueing: two workers on two shared cores with the load generator, PostgreSQL and "
        "other engineers' jobs cannot keep 16 requests in flight without waiting.",
    ]
    if seed_overrides(args) and args.scale == "large":
        lines += [
            "- The catalogue is the large one (50,000 products); customers and days were reduced from 100,000 / 60 "
            "because seeding the full large scale on this shared machine had not finished after 15 minutes.",
        ]
    lines.append("")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

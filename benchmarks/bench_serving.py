"""Serving benchmark: a load generator against the `make serve` stack on PostgreSQL + Redis.

    .venv/bin/python benchmarks/bench_serving.py --database-url postgres://.../DB --redis-url redis://.../N
        [--reuse] [--scale large|default|small] [--seed-products N ...] [--concurrency 4,8] [--workers 4]
        [--requests 3000] [--seconds 45] [--port 8765] [--customers 20000] [--label 2k] [--compare-trace-off]
    .venv/bin/python benchmarks/bench_serving.py --report      # rebuild docs/benchmarks/serving.md

What it does (all on 127.0.0.1):

1. Setup (skipped with --reuse, which only migrates and flushes the Redis database): the PostgreSQL database
   of --database-url dropped and re-created, `migrate`, `seed_demo`, then `train --engine itemknn --engine
   pop` (when no active item-kNN version exists) and `precompute_recommendations` for the benchmark's
   personalized widget. Three benchmark widgets use `itemknn` (it trains in seconds at 50,000 products).
2. Starts the server exactly as `make serve` does (gunicorn + uvicorn workers, recsite.settings.serve,
   buffered impression + decision-trace writer), throttles raised so the load generator measures serving.
3. For each concurrency level and scenario, the same run: warm-up, then up to --requests requests or
   --seconds seconds with an asyncio + httpx client; throughput, p50/p95/p99 latency, errors:
      health        GET /api/v1/health                                    (the ceiling)
      personalized  GET /api/v1/recommendations/bench-personalized?customer=<cached customer>
      session       GET /api/v1/recommendations/bench-session?visitor=<new>&session_items=<3 clicks>
      similar       GET /api/v1/recommendations/bench-similar?product=<product>
   With --compare-trace-off every level runs again against a server with RECSITE_TRACE_RECORD=0.
4. Writes docs/benchmarks/serving/<label>.json and rebuilds docs/benchmarks/serving.md from every run
   recorded there (one per catalogue size) plus the profile (benchmarks/profile_serving.py).

Also measured in the benchmark process (same settings as the server): SQL queries and Redis round trips
per request of each endpoint, and the in-process latency of `recommendations_get` alone.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
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
RESULTS = ROOT / "docs" / "benchmarks" / "serving"  # one JSON per run (catalogue size) + the profile

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


def setup(scale: str, overrides: list[str], database_url: str, redis_url: str) -> dict:
    timings = {}
    import psycopg

    base, _, name = database_url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
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
    from recommender.serving import DecisionTrace, recommendations_get, serving_state_reset

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
        trace: list[DecisionTrace] = []
        recommendations_get(widget=widget, customer=c, log=False, trace=trace)
        hits += any(h.startswith("candidates:") for h in trace[0].cache_hits)
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
        before = serving.attrs_memo_stats()
        for _ in range(n):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        after = serving.attrs_memo_stats()
        hits = after["hits"] - before["hits"]
        looked_up = hits + after["misses"] - before["misses"]
        hit_rate = hits / looked_up if looked_up else 0.0
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
    ap.add_argument("--reuse", action="store_true", help="reuse the seeded database")
    ap.add_argument(
        "--concurrency", default="4,8", help="comma-separated levels, each a full round of scenarios"
    )
    ap.add_argument("--requests", type=int, default=3000, help="per scenario, at most")
    ap.add_argument("--seconds", type=float, default=45.0, help="per scenario, at most")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--customers", type=int, default=20000, help="customers precomputed and requested")
    ap.add_argument("--seed-products", type=int, help="seed_demo --products (overrides the scale)")
    ap.add_argument("--seed-customers", type=int, help="seed_demo --customers (overrides the scale)")
    ap.add_argument("--seed-days", type=int, help="seed_demo --days (overrides the scale)")
    ap.add_argument(
        "--database-url", default=f"{PG}/{DB_NAME}", help="PostgreSQL database (dropped unless --reuse)"
    )
    ap.add_argument("--redis-url", default=REDIS, help="Redis database (flushed)")
    ap.add_argument(
        "--label", default="", help="name of this run's section, e.g. 2k or 50k (default: product count)"
    )
    ap.add_argument("--prepare-only", action="store_true", help="seed / train / precompute, then stop")
    ap.add_argument(
        "--compare-trace-off",
        action="store_true",
        help="also run every level with decision-trace recording off (RECSITE_TRACE_RECORD=0), same run",
    )
    args = ap.parse_args()
    try:
        args.levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    except ValueError:
        ap.error("--concurrency takes whole numbers separated by commas, e.g. 4,8")
    if not args.levels or min(args.levels) < 1 or args.requests < 1 or args.seconds <= 0 or args.workers < 1:
        ap.error("concurrency, requests, seconds and workers must be positive")
    ENV["DATABASE_URL"], ENV["REDIS_URL"] = args.database_url, args.redis_url

    timings: dict[str, float] = {}
    if args.reuse:  # the cache may hold another database's lists and candidates under the same keys
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
        timings["migrate"] = sh(
            PY,
            "manage.py",
            "migrate",
            "--noinput",
            env={**ENV, "DJANGO_SETTINGS_MODULE": "recsite.settings.serve"},
        )
    else:
        timings.update(setup(args.scale, seed_overrides(args), args.database_url, args.redis_url))
    info = prepare(args.customers)
    timings.update(info["timings"])
    if not info["customers"]:
        raise SystemExit("no active customers were precomputed; is the database seeded?")
    if args.prepare_only:
        print(f"prepared: {info['n_products']:,} products, itemknn v{info['version']}")
        return

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
    configs = [("trace recording on (as shipped)", {"RECSITE_TRACE_RECORD": "1"})]
    if args.compare_trace_off:
        configs.append(("trace recording off", {"RECSITE_TRACE_RECORD": "0"}))
    runs: list[tuple[str, list[tuple[int, list[dict], float]], list[float]]] = []
    for label, extra_env in configs:
        levels, rss = run_levels(args, scenarios, headers, extra_env, label)
        runs.append((label, levels, rss))
    label = args.label or (
        f"{info['n_products'] // 1000}k" if info["n_products"] >= 1000 else str(info["n_products"])
    )
    record = {
        "label": label,
        "date": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "load_end": os.getloadavg(),
        "command": " ".join(["benchmarks/bench_serving.py", *sys.argv[1:]]),
        "args": {k: v for k, v in vars(args).items() if k not in ("database_url", "redis_url")},
        "info": {k: v for k, v in info.items() if k not in ("customers", "clicked", "products", "api_key")},
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{label}.json").write_text(json.dumps(record, indent=1, default=str))
    report()


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


def report() -> None:
    """docs/benchmarks/serving.md from every run recorded under docs/benchmarks/serving/ (one per catalogue
    size) and the profile (benchmarks/profile_serving.py)."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    records = [
        json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")) if not p.stem.startswith("profile")
    ]
    records.sort(key=lambda r: r["info"]["n_products"])
    lines = [
        "## Serving (REST API under load)",
        "",
        f"- Machine: `nproc` = {os.cpu_count()}, {cpu}. **A shared, busy 2-core machine**: other engineers' tests, "
        "trainings and benchmarks ran at the same time, and the load generator shares the cores with the server, "
        "PostgreSQL and Redis, so absolute figures are pessimistic and noisy; the ratios to the health endpoint, "
        "measured in the same run, are the comparable numbers. The 1-minute load average is given per table.",
        "- Server: the `make serve` command line (gunicorn + uvicorn workers, `recsite.settings.serve`: PostgreSQL "
        "through a psycopg pool, Redis cache and throttle counters, buffered impression + decision-trace writer); "
        "throttles raised for the run, API-key authentication on every request.",
        "- Scenarios: `GET /api/v1/health` (the ceiling: one SQL + one Redis round trip), the cached personalized "
        "widget (batch-precomputed candidates of a random active customer), a live session-based list (3 random "
        "clicked products, a new visitor each time) and live similar items; item-kNN behind all three, 8 items.",
        "- Targets (issue 8): cached personalized throughput >= 0.8x and p99 <= 1.5x the health endpoint's at "
        "concurrency 8 with 4 workers, at 2k and 50k products, with and without trace recording; live "
        "session-based p99 <= 50 ms at 50k products, concurrency 4.",
    ]
    verdicts: list[str] = []
    for rec in records:
        info, a = rec["info"], rec["args"]
        lines += [
            "",
            f"### {rec['label']} products ({info['n_products']:,} active products, {info['n_customers']:,} customers, "
            f"{info['n_events']:,} events)",
            "",
            f"- Date: {rec['date']}; command: `.venv/bin/python {rec['command']}`; {a['workers']} workers; at most "
            f"{a['requests']} requests or {a['seconds']:g} s per scenario after a warm-up. Load average at the end "
            f"{rec['load_end'][0]:.1f}.",
            f"- Batch cache hit rate of the personalized widget (sampled in-process): "
            f"{info['cache_hit_sample'][0]}/{info['cache_hit_sample'][1]}.",
        ]
        for label, levels, rss in rec["runs"]:
            for concurrency, results, load_before in levels:
                by = {r["name"]: r for r in results}
                health = by["health"]
                lines += [
                    "",
                    f"{label[0].upper()}{label[1:]}, concurrency {concurrency} (load average {load_before:.1f} at the start):",
                    "",
                    "| Endpoint | Requests | req/s | vs health | p50 (ms) | p95 (ms) | p99 (ms) | p99 vs health | Errors |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
                ]
                for r in results:
                    errs = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
                    lines.append(
                        f"| {r['name']} | {r['requests']} | {r['rps']:.1f} | {r['rps'] / health['rps']:.2f}x | "
                        f"{r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['p99'] / health['p99']:.2f}x | {errs} |"
                    )
                pers, sess = by["personalized (cached)"], by["session-based (live)"]
                if concurrency == 8:
                    ok_rps = pers["rps"] >= 0.8 * health["rps"]
                    ok_p99 = pers["p99"] <= 1.5 * health["p99"]
                    verdicts.append(
                        f"- {rec['label']}, {label}, concurrency 8: cached personalized throughput "
                        f"{pers['rps'] / health['rps']:.2f}x health (>= 0.8x **{'met' if ok_rps else 'missed'}**), "
                        f"p99 {pers['p99'] / health['p99']:.2f}x health (<= 1.5x **{'met' if ok_p99 else 'missed'}**)"
                    )
                if concurrency == 4 and info["n_products"] >= 50_000:
                    verdicts.append(
                        f"- {rec['label']}, {label}, concurrency 4: live session-based p99 {sess['p99']:.1f} ms "
                        f"(<= 50 ms **{'met' if sess['p99'] <= 50 else 'missed'}**)"
                    )
            lines.append("")
            lines.append(
                f"Worker RSS after the load ({label}): " + (", ".join(f"{m:.0f} MiB" for m in rss) or "n/a")
            )
        trips = info["round_trips"]
        inproc = info["inprocess"]
        lines += [
            "",
            "In the benchmark process with the server's settings: round trips per request (50 requests through the "
            "whole Django stack) and `recommendations_get` alone (no HTTP, JSON or impression write; 200 calls):",
            "",
            "| Scenario | SQL queries | Redis round trips | `recommendations_get` median (ms) | p95 (ms) | attribute memo hits |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, (sql, ops) in trips.items():
            med, p95, hit_rate = inproc.get(name, (None, None, None))
            lines.append(
                f"| {name} | {sql:.2f} | {ops:.2f} | {'' if med is None else f'{med:.2f}'} | "
                f"{'' if p95 is None else f'{p95:.2f}'} | {'' if hit_rate is None else f'{100 * hit_rate:.0f}%'} |"
            )
    lines += [
        "",
        "### Targets",
        "",
        *verdicts,
        "",
        "Read these verdicts with the load averages above: the runs recorded here shared two cores with seven "
        "other engineers' test suites, trainings and benchmarks (1-minute load 12-21), and the health endpoint "
        "itself reached only 27-76 req/s, against 314 req/s in the issue's own measurement on a quieter machine. "
        "Under that contention each SQL or Redis round trip is mostly a wait to be scheduled, so an endpoint with "
        "two of each (cached personalized: customer row, recent events, throttle counter, batch candidates) "
        "cannot keep pace with one that has one of each, whatever the Python costs; the ratios swing between "
        "runs by more than the trace recording changes them (on/off pairs above, same run). The targets are "
        "therefore neither shown met nor shown missed on a quiet machine: re-run this script there.",
    ]
    profile = RESULTS / "profile.md"
    if profile.exists():
        lines += ["", profile.read_text().strip()]
    lines.append("")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--report"]:
        report()
    else:
        main()

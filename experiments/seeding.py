"""Seeding the demo shop: the Django writes for the pure simulator in `experiments.simulator`
(`manage.py seed_demo`). It lives in experiments because it drives the simulator: catalog never imports
experiments (DESIGN.md, import contracts in pyproject.toml). Catalog-only helpers it uses (deleting the
demo data, the demo logins) stay in `catalog.services.seed`.

`demo_data_seed(customers=..., products=..., days=..., seed=...)` generates a catalog, a customer
population and `days` of simulated visits ending at `end` (default: today 00:00 UTC), and bulk-inserts
everything: categories, brands, products, customers, visitors, shopping sessions, events, orders and
order lines. Facts worth knowing:

* Deterministic: the same arguments (and `end`) give the same rows, including every event UUID, SKU,
  session id and timestamp; only auto ids and `Event.received_at` differ between runs.
* Events go straight in with `Event.objects.bulk_create` (trusted generated data; not the ingestion
  API), streamed in chunks so memory stays flat at the large scale. One transaction for the lot
  (fast on SQLite; on failure nothing half-seeded remains).
* Idempotent: when catalog data already exists nothing is written and `SeedResult.seeded` is False,
  unless `reset=True`, which first deletes catalog and behaviour data (`demo_data_delete`).
* Recommendation slots during the simulated visits show the items most popular in the shopper's
  demographic segment (the "traditional" environment of the reference study), so clicks on
  recommendations appear as `click` events whose context names the placement and slot. No
  `recommender.Impression` rows are written: the seeded history predates the recommender, and
  impressions need a widget and a serving request id.
* Demo logins are not created here (`manage.py demo_admin` does that); no auth users are made for
  the simulated customers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.db import transaction
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone
from django.utils.text import slugify

from catalog.models import (
    Brand,
    Category,
    Customer,
    Event,
    Order,
    OrderLine,
    Product,
    ShoppingSession,
    Visitor,
)
from catalog.services.seed import demo_data_delete, demo_data_present
from experiments.simulator.catalog import Catalog, catalog_generate
from experiments.simulator.recommenders import SegmentPopular
from experiments.simulator.shoppers import (
    AGE_BANDS,
    DEVICES,
    GENDERS,
    REGIONS,
    Population,
    SessionLog,
    ShopperModel,
    population_generate,
    sessions_schedule,
)


@dataclass(frozen=True)
class SeedScale:
    customers: int
    products: int
    days: int


SCALES: dict[str, SeedScale] = {
    "small": SeedScale(customers=300, products=80, days=14),
    "default": SeedScale(customers=10_000, products=500, days=60),
    "large": SeedScale(customers=100_000, products=50_000, days=60),
}
MAX_CUSTOMERS = 5_000_000
MAX_PRODUCTS = 2_000_000
MAX_DAYS = 3650


@dataclass(frozen=True)
class SeedResult:
    """What `demo_data_seed` did. `seeded` is False when data existed and nothing was written."""

    seeded: bool
    message: str
    categories: int = 0
    brands: int = 0
    products: int = 0
    customers: int = 0
    visitors: int = 0
    sessions: int = 0
    events: int = 0
    orders: int = 0
    order_lines: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return (
            self.categories
            + self.brands
            + self.products
            + self.customers
            + self.visitors
            + self.sessions
            + self.events
            + self.orders
            + self.order_lines
        )


class Progress:
    """The progress interface the seeder reports to (a tqdm bar fits it); this one does nothing."""

    def update(self, n: int) -> None:  # noqa: D102
        pass

    def close(self) -> None:  # noqa: D102
        pass


ProgressFactory = Callable[[int, str], Progress]


def seed_arguments_check(*, customers: int, products: int, days: int, seed: int) -> None:
    """Raise ValueError with a readable message for arguments the seeder cannot use."""
    problems = []
    if not isinstance(customers, int) or customers < 0 or customers > MAX_CUSTOMERS:
        problems.append(f"customers must be a whole number from 0 to {MAX_CUSTOMERS:,} (got {customers})")
    if not isinstance(products, int) or products < 1 or products > MAX_PRODUCTS:
        problems.append(f"products must be a whole number from 1 to {MAX_PRODUCTS:,} (got {products})")
    if not isinstance(days, int) or days < 1 or days > MAX_DAYS:
        problems.append(f"days must be a whole number from 1 to {MAX_DAYS} (got {days})")
    if not isinstance(seed, int) or seed < 0 or seed >= 2**32:
        problems.append(f"seed must be a whole number from 0 to {2**32 - 1} (got {seed})")
    if problems:
        raise ValueError("; ".join(problems))


@contextmanager
def _explicit_times(*fields) -> Iterator[None]:
    """Let bulk inserts store the generated times: turn off auto_now/auto_now_add on `fields` meanwhile.

    (bulk_create calls each field's pre_save, which would stamp "now" over a product's launch date.)
    """
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, now, now_add in saved:
            f.auto_now, f.auto_now_add = now, now_add


def _uuids(rng: np.random.Generator, n: int) -> list[uuid.UUID]:
    raw = rng.bytes(16 * n)
    return [uuid.UUID(bytes=raw[16 * i : 16 * i + 16], version=4) for i in range(n)]


def _price(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


class _Writer:
    """Buffers generated rows and writes them in chunks (sessions, events, orders, lines)."""

    def __init__(self, *, batch_size: int) -> None:
        self.batch_size = batch_size
        self.sessions: list[ShoppingSession] = []
        self.events: list[Event] = []
        self.orders: list[Order] = []
        self.order_lines: list[list[tuple[int, int, Decimal]]] = []
        self.counts = {"sessions": 0, "events": 0, "orders": 0, "order_lines": 0}

    def flush(self) -> None:
        ShoppingSession.objects.bulk_create(self.sessions, batch_size=self.batch_size)
        Event.objects.bulk_create(self.events, batch_size=self.batch_size)
        Order.objects.bulk_create(self.orders, batch_size=self.batch_size)
        lines = [
            OrderLine(order_id=order.pk, product_id=pid, quantity=qty, unit_price=price)
            for order, order_lines in zip(self.orders, self.order_lines)
            for pid, qty, price in order_lines
        ]
        OrderLine.objects.bulk_create(lines, batch_size=self.batch_size)
        self.counts["sessions"] += len(self.sessions)
        self.counts["events"] += len(self.events)
        self.counts["orders"] += len(self.orders)
        self.counts["order_lines"] += len(lines)
        self.sessions, self.events, self.orders, self.order_lines = [], [], [], []


def demo_data_seed(
    *,
    customers: int,
    products: int,
    days: int,
    seed: int = 42,
    end: datetime | None = None,
    reset: bool = False,
    progress: ProgressFactory | None = None,
    log: Callable[[str], None] | None = None,
    chunk_events: int = 25_000,
    batch_size: int = 2_000,
) -> SeedResult:
    """Seed the demo shop (see the module docstring). `end` is when the simulated window closes
    (default: today 00:00 UTC); `progress(total, description)` makes a progress bar; `log(line)`
    receives a status line after every chunk written."""
    seed_arguments_check(customers=customers, products=products, days=days, seed=seed)
    if end is None:
        end = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elif timezone.is_naive(end):
        raise ValueError("end must be timezone-aware")
    make_progress = progress or (lambda total, desc: Progress())
    say = log or (lambda line: None)
    t0 = time.perf_counter()

    with transaction.atomic():
        if demo_data_present():
            if not reset:
                return SeedResult(
                    seeded=False,
                    message=(
                        f"Already seeded: {Product.objects.count():,} products, {Customer.objects.count():,} "
                        f"customers, {Event.objects.count():,} events. Nothing done; use --reset to delete "
                        "catalog and behaviour data and seed again."
                    ),
                )
            demo_data_delete()

        start = end - timedelta(days=days)
        catalog = catalog_generate(n_products=products, seed=seed, window_days=days)
        population = population_generate(catalog=catalog, n_customers=customers, seed=seed)
        starts, who = sessions_schedule(population=population, days=days, seed=seed)
        id_rng = np.random.default_rng(np.random.SeedSequence([seed, 5]))

        n_categories, n_brands, product_ids, product_prices = _catalog_insert(catalog, start, batch_size)
        say(f"catalog: {products:,} products")
        customer_ids, visitors = _customers_insert(population, start, starts, who, id_rng, batch_size, seed)
        say(f"customers: {customers:,}")

        n_sessions = _sessions_simulate(
            catalog=catalog,
            population=population,
            starts=starts,
            who=who,
            seed=seed,
            start=start,
            product_ids=product_ids,
            product_prices=product_prices,
            customer_ids=customer_ids,
            visitors=visitors,
            id_rng=id_rng,
            make_progress=make_progress,
            say=say,
            chunk_events=chunk_events,
            batch_size=batch_size,
            t0=t0,
        )
        # a visitor was last seen at the end of its latest session
        latest = (
            ShoppingSession.objects.filter(visitor=OuterRef("pk"))
            .values("visitor")
            .annotate(m=Max("last_seen"))
            .values("m")
        )
        Visitor.objects.filter(pk__in=ShoppingSession.objects.values("visitor_id")).update(
            last_seen=Subquery(latest)
        )

        from recommender.services import widget_defaults_ensure

        widget_defaults_ensure()

    counts = n_sessions
    return SeedResult(
        seeded=True,
        message=(
            f"Seeded {products:,} products, {customers:,} customers, {counts['sessions']:,} sessions, "
            f"{counts['events']:,} events, {counts['orders']:,} orders over {days} days ending "
            f"{end:%Y-%m-%d %H:%M} UTC (seed {seed})."
        ),
        categories=n_categories,
        brands=n_brands,
        products=products,
        customers=customers,
        visitors=sum(len(v) for v in visitors),
        sessions=counts["sessions"],
        events=counts["events"],
        orders=counts["orders"],
        order_lines=counts["order_lines"],
        seconds=time.perf_counter() - t0,
    )


def _catalog_insert(
    catalog: Catalog, start: datetime, batch_size: int
) -> tuple[int, int, list[int], list[Decimal]]:
    """Categories (parents first), brands, products; returns counts, product pks and prices by index."""
    node_pk: list[int | None] = [None] * len(catalog.categories)
    for level in range(3):
        idx = [i for i, node in enumerate(catalog.categories) if node.level == level]
        objs = [
            Category(
                name=catalog.categories[i].name,
                slug=catalog.categories[i].slug,
                parent_id=node_pk[catalog.categories[i].parent]
                if catalog.categories[i].parent >= 0
                else None,
                description=catalog.categories[i].description,
            )
            for i in idx
        ]
        Category.objects.bulk_create(objs, batch_size=batch_size)
        for i, obj in zip(idx, objs):
            node_pk[i] = obj.pk
    brands = Brand.objects.bulk_create(
        [Brand(name=b.name, slug=b.slug, price_tier=b.tier) for b in catalog.brands], batch_size=batch_size
    )
    brand_pk = [b.pk for b in brands]
    leaf_pk = [node_pk[i] for i in catalog.leaf_category.tolist()]
    prices = [_price(p) for p in catalog.price.tolist()]
    created = [start + timedelta(days=d) for d in catalog.created_day.tolist()]
    objs = [
        Product(
            sku=catalog.skus[i],
            title=catalog.titles[i],
            slug=slugify(catalog.titles[i])[:280],
            description=catalog.descriptions[i],
            category_id=leaf_pk[leaf],
            brand_id=brand_pk[brand],
            price=prices[i],
            currency="USD",
            stock=stock,
            attributes=catalog.attributes[i],
            is_active=True,
            created_at=created[i],
        )
        for i, (leaf, brand, stock) in enumerate(
            zip(catalog.leaf.tolist(), catalog.brand.tolist(), catalog.stock.tolist())
        )
    ]
    with _explicit_times(Product._meta.get_field("created_at")):
        Product.objects.bulk_create(objs, batch_size=batch_size)
    return len(node_pk), len(brand_pk), [p.pk for p in objs], prices


def _customers_insert(
    population: Population,
    start: datetime,
    starts: np.ndarray,
    who: np.ndarray,
    id_rng: np.random.Generator,
    batch_size: int,
    seed: int,
) -> tuple[list[int], list[list[str]]]:
    """Customers and their visitors (1, or 2 for a second device); returns customer pks and visitor ids."""
    n = population.n
    rng = np.random.default_rng(np.random.SeedSequence([seed, 6]))
    first = np.full(n, np.inf)
    np.minimum.at(first, who, starts)
    # 70% had an account before the window; the rest signed up in it (just before their first visit)
    before = rng.random(n) < 0.7
    created_s = np.where(
        before | ~np.isfinite(first),
        -rng.uniform(60, 730 * 86400, n),
        np.where(np.isfinite(first), first - rng.uniform(60, 3600, n), 0.0),
    )
    consent = rng.choice(["basic", "full", "none"], size=n, p=[0.62, 0.33, 0.05])
    unknown_demo = rng.random(n) < 0.08  # some never told us their demographics
    two_devices = rng.random(n) < 0.3
    objs = []
    for i in range(n):
        objs.append(
            Customer(
                external_id=f"c{i:06d}",
                age_band="" if unknown_demo[i] else AGE_BANDS[population.age_band[i]],
                gender="" if unknown_demo[i] else GENDERS[population.gender[i]],
                region=REGIONS[population.region[i]],
                consent=str(consent[i]),
                created_at=start + timedelta(seconds=float(created_s[i])),
            )
        )
    created_field = Customer._meta.get_field("created_at")
    with _explicit_times(created_field):
        Customer.objects.bulk_create(objs, batch_size=batch_size)
    customer_ids = [c.pk for c in objs]
    ids = _uuids(id_rng, n + int(two_devices.sum()))
    visitors: list[list[str]] = []
    vobjs = []
    k = 0
    for i in range(n):
        vids = []
        for _ in range(2 if two_devices[i] else 1):
            vid = ids[k].hex
            k += 1
            vids.append(vid)
            vobjs.append(
                Visitor(
                    id=vid,
                    customer_id=customer_ids[i],
                    created_at=objs[i].created_at,
                    last_seen=objs[i].created_at,
                )
            )
        visitors.append(vids)
    fields = (Visitor._meta.get_field("created_at"), Visitor._meta.get_field("last_seen"))
    with _explicit_times(*fields):
        Visitor.objects.bulk_create(vobjs, batch_size=batch_size)
    return customer_ids, visitors


def _sessions_simulate(
    *,
    catalog: Catalog,
    population: Population,
    starts: np.ndarray,
    who: np.ndarray,
    seed: int,
    start: datetime,
    product_ids: list[int],
    product_prices: list[Decimal],
    customer_ids: list[int],
    visitors: list[list[str]],
    id_rng: np.random.Generator,
    make_progress: ProgressFactory,
    say: Callable[[str], None],
    chunk_events: int,
    batch_size: int,
    t0: float,
) -> dict[str, int]:
    model = ShopperModel(catalog)
    rec = SegmentPopular(catalog=catalog, population=population)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4]))
    main_device = population.device.tolist()
    writer = _Writer(batch_size=batch_size)
    bar = make_progress(len(starts), "Simulating shoppers")
    pending = 0
    td = timedelta
    try:
        for s_start, u in zip(starts.tolist(), who.tolist()):
            log: SessionLog = model.session(
                population=population, customer=u, start=s_start, rng=rng, recommend=rec
            )
            rec.observe(log)
            _session_rows(
                log,
                writer,
                start,
                td,
                product_ids,
                product_prices,
                customer_ids[u],
                visitors[u],
                main_device[u],
                id_rng,
            )
            pending += 1
            if pending >= 250:
                bar.update(pending)
                pending = 0
            if len(writer.events) >= chunk_events:
                writer.flush()
                say(
                    f"progress sessions={writer.counts['sessions']}/{len(starts)} events={writer.counts['events']} "
                    f"elapsed={time.perf_counter() - t0:.1f}s"
                )
        writer.flush()
        bar.update(pending)
    finally:
        bar.close()
    say(
        f"progress sessions={writer.counts['sessions']}/{len(starts)} events={writer.counts['events']} "
        f"elapsed={time.perf_counter() - t0:.1f}s"
    )
    return writer.counts


def _session_rows(
    log: SessionLog,
    writer: _Writer,
    start: datetime,
    td: type[timedelta],
    product_ids: list[int],
    product_prices: list[Decimal],
    customer_id: int,
    vids: list[str],
    main_device: int,
    id_rng: np.random.Generator,
) -> None:
    """Turn one simulated visit into a ShoppingSession, its Events and its Order (if any)."""
    ids = _uuids(id_rng, len(log.events) + 1)
    session_id = ids[0].hex
    visitor_id = vids[0] if log.device == DEVICES[main_device] or len(vids) == 1 else vids[1]
    began = start + td(seconds=log.start)
    writer.sessions.append(
        ShoppingSession(
            id=session_id,
            visitor_id=visitor_id,
            customer_id=customer_id,
            started_at=began,
            last_seen=start + td(seconds=log.start + log.duration),
            device=log.device,
        )
    )
    device = log.device
    for e, eid in zip(log.events, ids[1:]):
        item = e.item
        kind = e.type
        price = value = rating = dwell = None
        if kind == "search":
            context = {"page": "search", "device": device}
        elif kind == "click":
            context = {"source": e.source, "device": device}
            if e.placement:
                context["placement"] = e.placement
                context["position"] = e.position
        elif kind == "view":
            context = {"page": "product", "source": e.source, "device": device}
            if e.placement:
                context["placement"] = e.placement
                context["position"] = e.position
        else:
            context = {"device": device}
        if kind in ("add_to_cart", "remove_from_cart", "purchase"):
            price = product_prices[item]
            if kind == "purchase":
                value = price * e.quantity
        elif kind == "dwell":
            dwell = e.dwell_ms
        elif kind == "rate":
            rating = e.rating
        writer.events.append(
            Event(
                event_id=eid,
                type=kind,
                product_id=product_ids[item] if item >= 0 else None,
                customer_id=customer_id,
                visitor_id=visitor_id,
                session_id=session_id,
                timestamp=start + td(seconds=e.t),
                quantity=e.quantity,
                price=price,
                value=value,
                dwell_ms=dwell,
                query=e.query,
                rating=rating,
                context=context,
            )
        )
    if log.order:
        lines = [(product_ids[item], qty, product_prices[item]) for item, qty, _ in log.order]
        total = sum((price * qty for _, qty, price in lines), Decimal("0"))
        purchased_at = max(e.t for e in log.events if e.type == "purchase")
        writer.orders.append(
            Order(
                customer_id=customer_id,
                visitor_id=visitor_id,
                session_id=session_id,
                total=total,
                currency="USD",
                created_at=start + td(seconds=purchased_at),
            )
        )
        writer.order_lines.append(lines)

"""Running many visits and summarising them (pure).

Metric definitions (the ones the reference study reports; the A/B simulator must use the same):

* conversion_rate: share of sessions with a purchase.
* aov: mean order total (USD) over sessions with a purchase (one order per purchasing session).
* ctr: recommendation clicks / recommendation *lists* shown (one impression = one widget render with
  up to `rec_slots` items; in the database that is one `Impression.request_id`). `item_ctr` is the
  same clicks over individual item slots shown (one `Impression` row each), about ctr / slots.
* session_duration: mean seconds from a session's first page to the end of its last page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from .catalog import catalog_generate
from .recommenders import SegmentPopular
from .shoppers import (
    Population,
    Recommend,
    SessionLog,
    ShopperModel,
    ShopperParams,
    population_generate,
    sessions_schedule,
)

# The reference study's "traditional" arm; calibration targets with the tolerance the test allows.
PAPER_TRADITIONAL = {"conversion_rate": 0.045, "aov": 50.0, "ctr": 0.12, "session_duration": 180.0}


@dataclass(frozen=True)
class SimMetrics:
    sessions: int
    orders: int
    conversion_rate: float
    aov: float
    ctr: float
    item_ctr: float
    session_duration: float
    add_to_cart_rate: float
    revenue_per_session: float
    events: int

    def as_dict(self) -> dict:
        return asdict(self)


def metrics_compute(logs: Iterable[SessionLog]) -> SimMetrics:
    """Summarise session logs (see the module docstring for the definitions)."""
    n = orders = imps = slots = clicks = events = carted = 0
    revenue = duration = 0.0
    for log in logs:
        n += 1
        events += len(log.events)
        duration += log.duration
        if log.order:
            orders += 1
            revenue += log.order_total
        if any(e.type == "add_to_cart" for e in log.events):
            carted += 1
        for imp in log.impressions:
            imps += 1
            slots += len(imp.items)
            clicks += imp.clicked >= 0
    return SimMetrics(
        sessions=n,
        orders=orders,
        conversion_rate=orders / n if n else 0.0,
        aov=revenue / orders if orders else 0.0,
        ctr=clicks / imps if imps else 0.0,
        item_ctr=clicks / slots if slots else 0.0,
        session_duration=duration / n if n else 0.0,
        add_to_cart_rate=carted / n if n else 0.0,
        revenue_per_session=revenue / n if n else 0.0,
        events=events,
    )


def sessions_run(
    *,
    model: ShopperModel,
    population: Population,
    starts: np.ndarray,
    customers: np.ndarray,
    rng: np.random.Generator,
    recommend: Recommend | None = None,
    observe: Callable[[SessionLog], None] | None = None,
) -> Iterator[SessionLog]:
    """Play the scheduled visits in order, yielding each log; `observe(log)` is called after each
    visit (e.g. `SegmentPopular.observe`, or a bandit's update)."""
    for start, customer in zip(starts.tolist(), customers.tolist()):
        log = model.session(
            population=population, customer=customer, start=start, rng=rng, recommend=recommend
        )
        if observe is not None:
            observe(log)
        yield log


def traditional_simulate(
    *,
    n_customers: int = 2000,
    n_products: int = 500,
    days: float = 30.0,
    seed: int = 0,
    max_sessions: int | None = None,
    params: ShopperParams | None = None,
) -> SimMetrics:
    """Simulate the "traditional" environment (segment-popularity recommendations) and summarise it.

    This is the calibration run: with the default parameters it should land near `PAPER_TRADITIONAL`.
    """
    catalog = catalog_generate(n_products=n_products, seed=seed, window_days=days)
    population = population_generate(catalog=catalog, n_customers=n_customers, seed=seed)
    model = ShopperModel(catalog, params)
    starts, customers = sessions_schedule(population=population, days=days, seed=seed)
    if max_sessions is not None:
        starts, customers = starts[:max_sessions], customers[:max_sessions]
    rec = SegmentPopular(catalog=catalog, population=population)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4]))
    return metrics_compute(
        sessions_run(
            model=model,
            population=population,
            starts=starts,
            customers=customers,
            rng=rng,
            recommend=rec,
            observe=rec.observe,
        )
    )

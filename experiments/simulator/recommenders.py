"""Reference recommenders for the simulator (pure): the study's "traditional" environment.

`SegmentPopular` shows the items most popular within the shopper's demographic segment (age band x
gender), the reference study's environment A. Popularity is learned from what the simulated
shoppers do (views 1, add-to-cart 3, purchases 5 points; halved every `half_life_days`), starting
from a weak prior so that day one is not empty. It is refreshed once per simulated day, as a nightly
batch job would be. It never recommends a product before its launch day, the product on screen,
or anything already in the cart.
"""

from __future__ import annotations

import numpy as np

from .catalog import Catalog
from .shoppers import N_SEGMENTS, Population, SessionContext, SessionLog

EVENT_WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}


class SegmentPopular:
    """Callable recommender: `rec(ctx) -> list[product index]`; feed it logs with `observe(log)`."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        population: Population,
        half_life_days: float = 14.0,
        prior_weight: float = 2.0,
        pool: int = 40,
    ) -> None:
        self.catalog = catalog
        self.segment_of = population.segment.copy()
        self.decay = 0.5 ** (1.0 / half_life_days)
        # prior: a little mass on items that look broadly appealing, no segment knowledge
        prior = np.exp(0.8 * catalog.appeal)
        self.counts = np.tile(prior / prior.sum() * prior_weight * catalog.n_products**0.5, (N_SEGMENTS, 1))
        self.pool = pool
        self.day = -1
        self._top: list[np.ndarray] = []
        self.refresh(0.0)

    def refresh(self, day: float) -> None:
        """Recompute each segment's top list for `day` (decaying counts for the days passed)."""
        d = int(day)
        if self._top and d == self.day:
            return
        if self.day >= 0 and d > self.day:
            self.counts *= self.decay ** (d - self.day)
        self.day = d
        available = self.catalog.created_day <= d  # launched by the start of the day
        scores = np.where(available[None, :], self.counts, -np.inf)
        m = min(self.pool, self.catalog.n_products)
        top = np.argpartition(-scores, m - 1, axis=1)[:, :m]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        self._top = [[i for i in row[o].tolist() if available[i]] for row, o in zip(top, order)]

    def observe(self, log: SessionLog) -> None:
        seg = self.segment_of[log.customer]
        for e in log.events:
            w = EVENT_WEIGHTS.get(e.type)
            if w is not None:
                self.counts[seg, e.item] += w

    def __call__(self, ctx: SessionContext) -> list[int]:
        self.refresh(ctx.t / 86400.0)
        exclude = set(ctx.cart)
        exclude.add(ctx.product)
        out = []
        for i in self._top[ctx.segment]:
            if i not in exclude:
                out.append(i)
                if len(out) == ctx.k:
                    break
        return out

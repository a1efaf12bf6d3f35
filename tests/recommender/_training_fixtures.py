"""Shared helpers for the training / registry tests: a tiny engine (registered by patching REGISTRY,
never shipped) and a small deterministic shop with events spread over time."""

from __future__ import annotations

import pickle
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalog.models import Event
from recommender import engines
from recommender.engines.base import InteractionData, default_exclude, top_k
from tests.factories import BrandFactory, CategoryFactory, CustomerFactory, ProductFactory


class TinyPop:
    """Popularity by summed weight. `reverse=True` recommends the LEAST popular items (a worse model)."""

    name = "tinypop"

    def __init__(self, reverse: bool = False, fail: bool = False) -> None:
        self.reverse, self.fail = reverse, fail
        self.counts = np.zeros(0, dtype=np.float32)
        self.fit_data: InteractionData | None = None

    def fit(self, data: InteractionData) -> TinyPop:
        if self.fail:
            raise RuntimeError("boom: this engine always fails")
        self.counts = np.asarray(data.matrix.sum(axis=0)).ravel().astype(np.float32)
        self.fit_data = data
        return self

    def recommend(self, histories, k, exclude=None, users=None):
        score = -self.counts if self.reverse else self.counts
        scores = np.tile(score, (len(histories), 1))
        return top_k(scores, k, default_exclude(histories, exclude))

    def similar_items(self, item_ids, k):
        return self.recommend([np.asarray([i]) for i in item_ids], k)

    def save(self, path: Path) -> None:
        Path(path).write_bytes(pickle.dumps({"counts": self.counts, "reverse": self.reverse}))

    @classmethod
    def load(cls, path: Path) -> TinyPop:
        blob = pickle.loads(Path(path).read_bytes())
        eng = cls(reverse=blob["reverse"])
        eng.counts = blob["counts"]
        return eng

    def get_params(self) -> dict[str, Any]:
        return {"reverse": self.reverse, "fail": self.fail}


@pytest.fixture
def tiny_engine(monkeypatch):
    monkeypatch.setitem(engines.REGISTRY, "tinypop", "tests.recommender._training_fixtures:TinyPop")
    return "tinypop"


def shop_create(*, n_customers: int = 40, n_products: int = 12, days: int = 20, seed: int = 0) -> dict:
    """Products with skewed popularity and customers viewing/buying them over `days` days.

    Deterministic. Returns {"products": [...], "customers": [...], "start": datetime}.
    """
    from django.utils import timezone

    rng = np.random.default_rng(seed)
    cat = CategoryFactory()
    brand = BrandFactory()
    products = [ProductFactory(category=cat, brand=brand) for _ in range(n_products)]
    customers = [CustomerFactory() for _ in range(n_customers)]
    start = timezone.now() - timedelta(days=days + 1)
    p = 1.0 / np.arange(1, n_products + 1)
    p /= p.sum()
    events = []
    for c in customers:
        n = int(rng.integers(4, 9))
        items = rng.choice(n_products, size=n, p=p)
        times = np.sort(rng.uniform(0, days * 86400, size=n))
        session = uuid.uuid4().hex
        for it, t in zip(items, times):
            kind = Event.Type.PURCHASE if rng.random() < 0.2 else Event.Type.VIEW
            events.append(
                Event(
                    event_id=uuid.uuid4(),
                    type=kind,
                    product=products[int(it)],
                    customer=c,
                    visitor_id="",
                    session_id=session,
                    timestamp=start + timedelta(seconds=float(t)),
                )
            )
    Event.objects.bulk_create(events)
    return {"products": products, "customers": customers, "start": start}

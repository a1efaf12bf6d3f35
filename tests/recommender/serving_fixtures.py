"""Shared helpers for the serving / widget tests: a tiny shop with three clusters of co-viewed products,
a real `itemknn` model version trained on it (artifact + id maps in storage, as training stores them),
and an engine that always raises (registered by patching REGISTRY inside tests; never shipped)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from catalog.models import Customer, Event, Product
from recommender import engines, serving
from recommender.engines import engine_create
from recommender.engines.base import InteractionData
from recommender.models import ModelVersion, Widget
from tests.factories import BrandFactory, CategoryFactory, CustomerFactory, EventFactory, ProductFactory

ALL_MODEL_STRATEGIES = {
    "personalized": "itemknn",
    "similar_items": "itemknn",
    "bought_together": "itemknn",
    "session_based": "itemknn",
}


class RaisingEngine:
    """Loads fine, then raises on every call (a model bug in production)."""

    name = "raising"

    def fit(self, data):
        return self

    def recommend(self, histories, k, exclude=None, users=None):
        raise RuntimeError("engine bug: recommend exploded")

    def similar_items(self, item_ids, k):
        raise RuntimeError("engine bug: similar_items exploded")

    def save(self, path: Path) -> None:
        Path(path).write_bytes(b"raising")

    @classmethod
    def load(cls, path: Path) -> RaisingEngine:
        return cls()

    def get_params(self) -> dict:
        return {}


@pytest.fixture(autouse=True)
def _serving_fresh():
    """Loaded models, memoised lists and the cache breaker are per process: start every test clean."""
    serving.serving_state_reset()
    yield
    serving.serving_state_reset()


@pytest.fixture
def model_strategies(settings):
    settings.RECSITE_STRATEGY_ENGINES = dict(ALL_MODEL_STRATEGIES)
    return settings


@pytest.fixture
def raising_engine(monkeypatch):
    monkeypatch.setitem(engines.REGISTRY, "raising", "tests.recommender.serving_fixtures:RaisingEngine")
    return "raising"


@dataclass
class Shop:
    products: list[Product]
    clusters: list[list[Product]]
    customers: list[Customer]
    categories: list
    brands: list


def shop_create(*, per_cluster: int = 6) -> Shop:
    """3 clusters (one category and brand each) of `per_cluster` products; 9 customers, 3 per cluster,
    each viewing 3 products of their cluster (so itemknn learns the clusters). Cluster 0 is the most
    viewed overall (trending)."""
    now = timezone.now()
    cats = [CategoryFactory(name=f"Cat {i}") for i in range(3)]
    brands = [BrandFactory(name=f"Brand {i}") for i in range(3)]
    clusters = [
        [
            ProductFactory(
                category=cats[c], brand=brands[c], price=Decimal(10 + 10 * j), title=f"C{c} item {j}"
            )
            for j in range(per_cluster)
        ]
        for c in range(3)
    ]
    products = [p for cl in clusters for p in cl]
    customers = []
    events = []
    for c, cluster in enumerate(clusters):
        for u in range(3):
            cust = CustomerFactory()
            customers.append(cust)
            for j in range(3):
                p = cluster[(u + j) % per_cluster]
                events.append(
                    Event(
                        type="view",
                        product=p,
                        customer=cust,
                        visitor_id=f"visitor-{cust.pk}",
                        timestamp=now - timedelta(hours=10 - j - c),
                    )
                )
    # Extra views make cluster 0 trending.
    for p in clusters[0]:
        for _ in range(3):
            events.append(
                Event(type="view", product=p, visitor_id="crowd-visitor", timestamp=now - timedelta(hours=1))
            )
    Event.objects.bulk_create(events)
    return Shop(products=products, clusters=clusters, customers=customers, categories=cats, brands=brands)


def model_version_make(
    *,
    engine: str = "itemknn",
    shop: Shop | None = None,
    sequences: list[list[int]] | None = None,
    product_ids: list[int] | None = None,
    status: str = ModelVersion.Status.ACTIVE,
    params: dict | None = None,
) -> ModelVersion:
    """Train `engine` on the shop's customers' sequences (product ids) and store it like training does."""
    if shop is not None:
        product_ids = [p.pk for p in shop.products]
        sequences = []
        for cust in shop.customers:
            seq = list(
                Event.objects.filter(customer=cust).order_by("timestamp").values_list("product_id", flat=True)
            )
            sequences.append(seq)
    assert product_ids is not None and sequences is not None
    index = {p: i for i, p in enumerate(product_ids)}
    data = InteractionData.from_sequences(
        [[index[p] for p in s] for s in sequences], len(product_ids), item_ids=np.asarray(product_ids)
    )
    model = engine_create(engine, **(params or {})).fit(data)
    version = ModelVersion.objects.create(engine=engine, status=status, promoted_at=timezone.now())
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "artifact"
        model.save(path)
        version.artifact.save(f"{engine}-{version.pk}.bin", ContentFile(path.read_bytes()), save=False)
    buf = io.BytesIO()
    user_keys = np.asarray(
        [f"c:{c.pk}" for c in shop.customers] if shop else [f"u{i}" for i in range(len(sequences))]
    )
    np.savez(buf, product_ids=np.asarray(product_ids, dtype=np.int64), user_keys=user_keys)
    version.id_maps.save(f"{engine}-{version.pk}-ids.npz", ContentFile(buf.getvalue()), save=False)
    version.save()
    return version


def widget_make(slug: str = "w", strategy: str = "personalized", **kw) -> Widget:
    defaults = {"title": slug.title(), "placement": "home", "num_items": 4, "fallback_strategy": "trending"}
    return Widget.objects.create(slug=slug, strategy=strategy, **{**defaults, **kw})


def view(
    product: Product, *, customer: Customer | None = None, visitor: str = "", minutes_ago: int = 0
) -> Event:
    return EventFactory(
        product=product,
        customer=customer,
        visitor_id=visitor or (f"visitor-{customer.pk}" if customer else "anon"),
        timestamp=timezone.now() - timedelta(minutes=minutes_ago),
    )

"""Stage 2, candidate sources: one strategy's scored products for this shopper (`candidates_get`).

- Model strategies (personalized, session-based, similar items, bought together) ask the strategy's
  engine (`recommender.strategies`) on the shopper's history; the personalized strategy of a known
  customer first reads the batch-precomputed list of their model version from the cache
  (`recommender.batch`), a cache hit.
- Lists aggregated from events (trending, popular, segment-popular) are weighted by the one table of
  event weights (`catalog.event_weights`) and shared through the cache.
- Bandit strategies re-rank a base strategy's candidates through a registered `ServingHook`.

Each returns a `CandidateSource` (None when the strategy cannot serve this request: untrained, no history,
no consent); an engine that raises degrades to None with a warning, never an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.db.models import Case, FloatField, Q, Sum, Value, When
from django.utils import timezone

from catalog.event_weights import POPULARITY_WEIGHTS
from catalog.models import Customer, Event, Product

from ..models import Widget
from ..services import LoadedModel
from ..strategies import strategy_engine
from .attributes import product_titles
from .cache import cache_get, shared_list
from .hooks import serving_hooks
from .loading import (
    active_version,
    because_items,
    model_load,
    model_recommend,
    model_similar,
    model_version_for,
    product_indices,
    scored_products,
    user_key_customer,
)
from .shopper import Shopper

logger = logging.getLogger("recommender.serving")

PERSONAL_STRATEGIES = frozenset({"personalized", "session_based", "recently_viewed", "segment_popular"})
MODEL_STRATEGIES = frozenset({"personalized", "session_based", "similar_items", "bought_together"})
BANDIT_STRATEGIES = frozenset({"epsilon_greedy", "thompson", "linucb"})
LIST_SIZE = 200


@dataclass
class CandidateSource:
    """One strategy's answer. `items` are (product id, raw score), best first; `reasons` per product
    override `default_reason` ("{category}" in it is filled per item); `because` maps a product to the
    history item that drove it, when the source knows."""

    name: str  # engine or list name recorded on impressions
    items: list[tuple[int, float]]
    reasons: dict[int, str] = field(default_factory=dict)
    default_reason: str = ""
    model_version_id: int | None = None
    cached: bool = False  # served from the batch-precomputed cache
    propensities: dict[int, float] = field(default_factory=dict)  # bandit strategies: per product
    strategy: str = ""
    because: dict[int, int] = field(default_factory=dict)
    # reason for items with a `because` product and no own reason, "{}" = that product's title; resolved by
    # the ranking stage with the attributes it loads anyway (no query of its own)
    because_reason: str = ""


def candidates_cache_key(*, model_version_id: int, customer_id: int) -> str:
    """Batch-precomputed candidates of one customer under one model version (promotion changes the key)."""
    return f"rs:cand:v{model_version_id}:c{customer_id}"


# --------------------------------------------------------------------------------------------------
# Lists aggregated from events (shared through the cache)


def weighted_counts(qs: Any, n: int) -> list[tuple[int, float]]:
    """Top-n products by event-type-weighted counts, summed in SQL (type IN (...) uses the (type, timestamp)
    index for the time window)."""
    weight = Case(
        *[When(type=t, then=Value(w)) for t, w in POPULARITY_WEIGHTS.items()],
        default=Value(0.0),
        output_field=FloatField(),
    )
    rows = (
        qs.filter(type__in=list(POPULARITY_WEIGHTS), product__isnull=False)
        .values("product_id")
        .annotate(s=Sum(weight))
        .order_by("-s", "product_id")[:n]
    )
    return [(int(r["product_id"]), float(r["s"])) for r in rows]


def trending_list(n: int = LIST_SIZE) -> list[tuple[int, float]]:
    """Most engaged-with products in the last 3 days (weighted by event type), widening to 30 days."""

    def compute() -> list[tuple[int, float]]:
        now = timezone.now()
        for days in (3, 30):
            rows = weighted_counts(Event.objects.filter(timestamp__gte=now - timedelta(days=days)), n)
            if len(rows) >= min(n, 20):
                return rows
        return rows

    return shared_list(f"rs:list:trending:{n}", compute)


def popular_list(n: int = LIST_SIZE) -> list[tuple[int, float]]:
    """Popularity: the active `popular` engine's ranking (the pop engine, no database scan) when one is
    trained, else weighted event counts of the last 90 days; topped up with the newest products."""
    engine = strategy_engine("popular")
    version = active_version(engine) if engine else None
    if version is not None:
        loaded = model_load(version)
        if loaded is not None:
            try:
                ids, scores = loaded.engine.recommend([np.zeros(0, dtype=np.int64)], n)
                rows = scored_products(loaded, np.asarray(ids)[0], np.asarray(scores)[0])
                if rows:
                    return rows
            except Exception:
                logger.warning("popularity engine %s raised; counting events instead", version, exc_info=True)

    def compute() -> list[tuple[int, float]]:
        rows = weighted_counts(Event.objects.filter(timestamp__gte=timezone.now() - timedelta(days=90)), n)
        if len(rows) < n:
            seen = {p for p, _ in rows}
            extra = (
                Product.objects.filter(is_active=True, stock__gt=0)
                .exclude(pk__in=seen)
                .order_by("-created_at", "-id")
                .values_list("pk", flat=True)[: n - len(rows)]
            )
            rows += [(int(p), 0.0) for p in extra]
        return rows

    return shared_list(f"rs:list:popular:{n}", compute)


def segment_of(customer: Customer | None) -> tuple[str, str, str] | None:
    """(age band, gender, region) when the customer consented to demographics and has any; else None."""
    if customer is None or customer.consent != Customer.Consent.FULL:
        return None
    seg = (customer.age_band or "", customer.gender or "", customer.region or "")
    return seg if any(seg) else None


def segment_popular_list(segment: tuple[str, str, str], n: int = LIST_SIZE) -> list[tuple[int, float]]:
    """Popular among customers of the same age band, gender and region (the known parts), last 180 days."""

    def compute() -> list[tuple[int, float]]:
        age, gender, region = segment
        q = Q(timestamp__gte=timezone.now() - timedelta(days=180))
        if age:
            q &= Q(customer__age_band=age)
        if gender:
            q &= Q(customer__gender=gender)
        if region:
            q &= Q(customer__region=region)
        return weighted_counts(Event.objects.filter(q), n)

    key = "rs:list:segment:" + "|".join(segment).replace(" ", "_") + f":{n}"
    return shared_list(key, compute)


# --------------------------------------------------------------------------------------------------
# One strategy


def candidates_get(
    strategy: str, *, widget: Widget, shopper: Shopper, product: Product | None, n: int, warnings: list[str]
) -> CandidateSource | None:
    """Candidates of one strategy (None when it cannot serve this request, e.g. untrained or no product)."""
    src = _candidates(strategy, widget=widget, shopper=shopper, product=product, n=n, warnings=warnings)
    if src is not None:
        src.strategy = strategy
    return src


def _candidates(
    strategy: str, *, widget: Widget, shopper: Shopper, product: Product | None, n: int, warnings: list[str]
) -> CandidateSource | None:
    if strategy in PERSONAL_STRATEGIES and not shopper.personal:
        return None
    if strategy == "trending":
        return CandidateSource("trending", trending_list(max(n, LIST_SIZE)), default_reason="Trending now")
    if strategy == "popular":
        return CandidateSource(
            "popular", popular_list(max(n, LIST_SIZE)), default_reason="Popular in {category}"
        )
    if strategy == "segment_popular":
        seg = segment_of(shopper.customer)
        if seg is None:
            return None
        return CandidateSource(
            "segment_popular",
            segment_popular_list(seg, max(n, LIST_SIZE)),
            default_reason="Popular with shoppers like you",
        )
    if strategy == "recently_viewed":
        recent = [p for p in dict.fromkeys(reversed(shopper.history)) if product is None or p != product.pk]
        if not recent:
            return None
        return CandidateSource(
            "recently_viewed",
            [(p, 1.0 / (1 + i)) for i, p in enumerate(recent)],
            default_reason="You viewed this recently",
        )
    if strategy in BANDIT_STRATEGIES:
        return _bandit_candidates(
            strategy, widget=widget, shopper=shopper, product=product, n=n, warnings=warnings
        )
    if strategy not in MODEL_STRATEGIES:
        warnings.append(f"unknown strategy {strategy!r}")
        return None
    version = model_version_for(widget=widget, strategy=strategy)
    if version is None:
        warnings.append(f"no trained model for {strategy}")
        return None
    if strategy == "personalized" and shopper.customer is not None:
        cached = _batch_candidates(version_id=version.pk, engine=version.engine, shopper=shopper, n=n)
        if cached is not None:
            return cached
    loaded = model_load(version)
    if loaded is None:
        warnings.append(f"model version {version.pk} ({version.engine}) unavailable")
        return None
    try:
        return _model_candidates(strategy, loaded=loaded, shopper=shopper, product=product, n=n)
    except Exception as exc:  # an engine that raises must not take the widget down
        logger.warning(
            "engine %s (version %s) raised for %s; using fallbacks",
            loaded.engine_name,
            loaded.version_id,
            strategy,
            exc_info=True,
        )
        warnings.append(f"engine {loaded.engine_name} failed: {exc}")
        return None


def _batch_candidates(*, version_id: int, engine: str, shopper: Shopper, n: int) -> CandidateSource | None:
    """The customer's batch-precomputed list under this version (its first n items the shopper has not
    interacted with since the batch ran), or None on a miss."""
    assert shopper.customer is not None
    cached = cache_get(candidates_cache_key(model_version_id=version_id, customer_id=shopper.customer.pk))
    if not cached:
        return None
    seen = set(shopper.history)  # clicked since the batch ran: not recommended again
    rows = []
    for row in cached["items"]:
        if row[0] not in seen:
            rows.append(row)
            if len(rows) >= n:  # only the first n can join the pool (ranking.source_new_items)
                break
    items = [(int(row[0]), float(row[1])) for row in rows]
    # Entries carry (product, score, because product[, because title]); the title saves a query.
    reasons = {int(row[0]): f"Because you viewed {row[3]}" for row in rows if len(row) > 3 and row[3]}
    because = {int(row[0]): int(row[2]) for row in rows if len(row) > 2 and row[2] is not None}
    return CandidateSource(
        engine,
        items,
        reasons,
        "Recommended for you",
        model_version_id=version_id,
        cached=True,
        because=because,
        because_reason="Because you viewed {}",
    )


def _bandit_candidates(
    strategy: str, *, widget: Widget, shopper: Shopper, product: Product | None, n: int, warnings: list[str]
) -> CandidateSource | None:
    """Bandit strategies: a registered hook's policy re-ranks the base strategy's candidates and each
    position's propensity goes on its impression."""
    hooks = serving_hooks()
    if not hooks:
        warnings.append(f"no serving hook handles the bandit strategy {strategy!r}")
        return None
    params = widget.params or {}
    base = None
    for base_strategy in (str(params.get("base") or "personalized"), "popular"):
        if base_strategy in BANDIT_STRATEGIES:
            continue
        base = candidates_get(
            base_strategy, widget=widget, shopper=shopper, product=product, n=n, warnings=warnings
        )
        if base is not None and base.items:
            break
    if base is None or not base.items:
        return None
    pool = [p for p, _ in base.items if product is None or p != product.pk]
    slate = None
    for hook in hooks:
        slate = hook.slate_order(strategy=strategy, widget=widget, pool=pool, customer=shopper.customer)
        if slate is not None:
            break
    if slate is None:
        warnings.append(f"no serving hook handles the bandit strategy {strategy!r}")
        return None
    size = len(slate.items)
    return CandidateSource(
        slate.name,
        [(p, float(size - i)) for i, p in enumerate(slate.items)],
        {p: base.reasons[p] for p in slate.items if p in base.reasons},
        base.default_reason,
        model_version_id=base.model_version_id,
        propensities=dict(zip(slate.items, slate.propensities, strict=True)),
        because={p: base.because[p] for p in slate.items if p in base.because},
        because_reason=base.because_reason,
    )


def history_drivers(loaded: LoadedModel, *, history: list[int], candidates: list[int]) -> dict[int, int]:
    """product id -> the history product that raises its score most, for "Because you viewed X": the
    engine's own attribution (`recommender.explain.driver_items`: exact for the linear engines), else the
    most similar recent history item (`because_items`)."""
    try:
        from ..explain import driver_items

        idx = product_indices(loaded, history)
        known = [p for p in candidates if p in loaded.product_index]
        drivers = driver_items(
            engine_name=loaded.engine_name,
            engine=loaded.engine,
            history_idx=idx,
            item_idx=[loaded.product_index[p] for p in known],
        )
        if drivers:
            ids = loaded.product_ids
            by_index = dict(zip((loaded.product_index[p] for p in known), known, strict=True))
            return {by_index[i]: int(ids[h]) for i, h in drivers.items() if i in by_index}
    except Exception:  # an explainer problem must not cost the list: fall back to similarity
        logger.warning("driver items failed for %s; using similarity", loaded.engine_name, exc_info=True)
    return because_items(loaded, history=history, candidates=candidates)


def _model_candidates(
    strategy: str, *, loaded: LoadedModel, shopper: Shopper, product: Product | None, n: int
) -> CandidateSource | None:
    src = CandidateSource(loaded.engine_name, [], model_version_id=loaded.version_id)
    if strategy in ("personalized", "session_based"):
        history = shopper.history
        if product is not None:
            history = history + [product.pk]
        if not any(p in loaded.product_index for p in history):
            return None  # nothing the model knows about this shopper yet
        user_key = user_key_customer(shopper.customer.pk) if shopper.customer is not None else None
        src.items = model_recommend(loaded, history=history, n=n, user_key=user_key)
        src.because = history_drivers(loaded, history=history, candidates=[p for p, _ in src.items])
        verb = "viewed" if strategy == "personalized" else "looked at"
        src.because_reason = f"Because you {verb} {{}}"
        src.default_reason = "Recommended for you" if strategy == "personalized" else "Based on your browsing"
        return src
    if strategy == "similar_items":
        anchor = product.pk if product is not None else (shopper.history[-1] if shopper.history else None)
        if anchor is None:
            return None
        # Similarities of 0 are "no evidence", not similar: leave those slots to the fallbacks.
        src.items = [(p, sc) for p, sc in model_similar(loaded, product_ids=[anchor], n=n)[0] if sc > 0]
        src.default_reason = f"Similar to {product_titles([anchor]).get(anchor, 'this product')}"
        src.because = dict.fromkeys((p for p, _ in src.items), anchor)
        return src
    if strategy == "bought_together":
        anchors = [product.pk] if product is not None else list(dict.fromkeys(reversed(sorted(shopper.cart))))
        anchors = anchors or list(dict.fromkeys(reversed(shopper.history)))[:3]
        if not anchors:
            return None
        rows = model_similar(loaded, product_ids=anchors[:5], n=n)
        titles = product_titles(anchors[:5])
        merged: dict[int, tuple[float, int]] = {}
        for anchor, row in zip(anchors[:5], rows, strict=False):
            for pid, score in row:
                if score <= 0:
                    continue
                if pid not in merged or score > merged[pid][0]:
                    merged[pid] = (score, anchor)
        exclude = set(anchors)
        src.items = sorted(((p, s) for p, (s, _) in merged.items() if p not in exclude), key=lambda x: -x[1])[
            :n
        ]
        src.reasons = {p: f"Often bought with {titles.get(a, 'your items')}" for p, (_, a) in merged.items()}
        src.because = {p: a for p, (_, a) in merged.items()}
        src.default_reason = "Often bought together"
        return src
    return None

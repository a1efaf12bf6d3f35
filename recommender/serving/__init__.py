"""Real-time serving: candidates -> business rules -> rerank -> fallbacks -> impression log.

`recommendations_get` is the one entry point (template tag fragments, REST, chatbot, admin preview):

1. **Shopper context**: the customer's / visitor's recent events (one indexed, capped query) plus the
   request's `session_items`; consent `none` means no personal data is read and the widget serves a
   non-personalized strategy.
2. **Candidates** of the widget's strategy: batch-precomputed per (model version, customer) from the
   cache (`recommender.batch`), else live from the engine's `recommend` / `similar_items` on the
   shopper's history; engine artifacts are loaded once per process per model version and kept in
   memory. Trending / popular / segment-popular lists are aggregated from events and cached.
3. **Business rules** (`recommender.rules`, pure) over the candidates' attributes (one query).
4. **Fallbacks** until k items: the widget's fallback strategy, then trending, then popular.
5. **Impressions** logged in one `bulk_create` per request (or handed to a buffered background writer
   when `RECSITE_IMPRESSIONS_ASYNC` is on, as under `make serve`); propensity 1.0 (deterministic policy).

Resilience: a dead cache, a missing or corrupt artifact, or an engine that raises degrades to the next
fallback with a logged warning; the function only raises for programming errors in its arguments.
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, transaction
from django.db.models import Case, FloatField, Q, Sum, Value, When
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from catalog.models import Category, Customer, Event, OrderLine, Product

from recommender.models import Impression, ModelVersion, Widget, WidgetRule
from recommender.rules import Candidate, ProductAttrs, RuleContext, RuleOutcome, RuleSpec, rules_apply
from recommender.services import (
    REGISTRY_GENERATION_KEY,
    LoadedModel,
    model_version_active,
    model_version_load,
    model_version_loaded_clear,
)
from recommender.strategies import strategy_engine

logger = logging.getLogger(__name__)

HISTORY_CAP = 50  # most recent events read per shopper
CANDIDATE_FACTOR = 4  # over-fetch so filters still leave k items
MIN_CANDIDATES = 40
LIST_TTL = 300  # seconds trending / popular lists stay cached
CACHE_RETRY_SECONDS = 30  # after a cache error, skip the cache for this long (circuit breaker)
MODEL_RETRY_SECONDS = 60  # after an artifact fails to load, do not retry for this long

PERSONAL_STRATEGIES = frozenset({"personalized", "session_based", "recently_viewed", "segment_popular"})
MODEL_STRATEGIES = frozenset({"personalized", "session_based", "similar_items", "bought_together"})
BANDIT_STRATEGIES = frozenset({"epsilon_greedy", "thompson", "linucb"})
EVENT_WEIGHTS = {"view": 1.0, "click": 1.0, "dwell": 1.0, "rate": 2.0, "add_to_cart": 3.0, "purchase": 5.0}


@dataclass(frozen=True)
class Recommendation:
    """One recommended product, as it crosses app boundaries (templates, REST, chatbot, experiments)."""

    product_id: int
    score: float
    reason: str
    impression_id: uuid.UUID | None
    engine: str
    position: int
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServingTrace:
    """What the admin preview shows besides the items: where candidates came from and what rules removed."""

    strategy: str
    sources: tuple[str, ...]
    model_version_id: int | None
    cached: bool
    removed: tuple[tuple[int, str, str], ...]  # (product id, engine, rule label)
    warnings: tuple[str, ...]


@dataclass
class _Shopper:
    customer: Customer | None
    visitor: str
    personal: bool  # personal data may be used (consent)
    history: list[int] = field(default_factory=list)  # product ids, oldest first (events + session items)
    purchased: frozenset[int] = frozenset()
    cart: frozenset[int] = frozenset()


# --------------------------------------------------------------------------------------------------
# Cache access with a circuit breaker: a dead Redis costs one timeout per CACHE_RETRY_SECONDS, not per call.

_cache_down_until = 0.0
_memo: dict[str, tuple[float, Any]] = {}  # process-local copy of shared lists (used while the cache is down)


def _cache_failed(op: str, key: str) -> None:
    global _cache_down_until
    _cache_down_until = time.monotonic() + CACHE_RETRY_SECONDS
    logger.warning(
        "cache %s %s failed; serving without the cache for %ss", op, key, CACHE_RETRY_SECONDS, exc_info=True
    )


def cache_get(key: str) -> Any:
    if time.monotonic() < _cache_down_until:
        return None
    try:
        return cache.get(key)
    except Exception:
        _cache_failed("get", key)
        return None


def cache_get_many(keys: list[str]) -> dict[str, Any]:
    if time.monotonic() < _cache_down_until:
        return {}
    try:
        return cache.get_many(keys)
    except Exception:
        _cache_failed("get_many", keys[0] if keys else "")
        return {}


def cache_set(key: str, value: Any, timeout: int | None = None) -> bool:
    if time.monotonic() < _cache_down_until:
        return False
    try:
        cache.set(key, value, timeout)
        return True
    except Exception:
        _cache_failed("set", key)
        return False


def cache_set_many(values: dict[str, Any], timeout: int | None = None) -> bool:
    if time.monotonic() < _cache_down_until:
        return False
    try:
        cache.set_many(values, timeout)
        return True
    except Exception:
        _cache_failed("set_many", next(iter(values), ""))
        return False


def serving_state_reset() -> None:
    """Forget loaded models, memoised lists and the cache circuit breaker (tests, after a deploy)."""
    global _cache_down_until
    _cache_down_until = 0.0
    _memo.clear()
    with _models_lock:
        _model_failures.clear()
    model_version_loaded_clear()
    _categories_memo.clear()
    serving_memo_clear()


# --------------------------------------------------------------------------------------------------
# Per-process memo of the hot path's reads (the active model version of an engine, the widget with its
# rules, product attributes): no SQL or cache read for them per request in the steady state. Bounds, documented in docs/benchmarks/serving.md:
# - a version or widget entry lives at most RECSITE_SERVING_MEMO_SECONDS (default 5), a product's
#   attributes at most RECSITE_SERVING_ATTRS_SECONDS (default 30); 0 turns a memo off, as the test settings
#   do so tests see every write at once;
# - the active versions are dropped as soon as the registry generation (bumped by every promotion and
#   rollback, recommender.services) changes; each process polls it at most once per
#   GENERATION_POLL_SECONDS, so a promotion shows in every worker within about a second (within the TTL
#   when the cache is down);
# - product attributes (stock, price, active, category, brand) may be up to their TTL old, so an item
#   that sells out or is deactivated can still be served for up to 30 s (the product page and the cart
#   read the database). The longer TTL is what makes the memo pay: measured on the 50k-product benchmark,
#   30 s serves ~96% of a cached personalized request's attribute lookups from memory, 5 s ~63%.

GENERATION_POLL_SECONDS = 1.0
ATTRS_MEMO_MAX = 100_000  # entries; beyond this the memo is purged (measured: 50,000 entries take 30 MiB)

WIDGET_GENERATION_KEY = "rs:widgets:generation"  # bumped when a widget or one of its rules is saved

_versions_memo: dict[str, tuple[float, ModelVersion | None]] = {}
_attrs_memo: dict[int, tuple[float, tuple[Any, ...]]] = {}  # pid -> (until, ProductAttrs fields in order)
_ATTR_FIELDS = tuple(f.name for f in dataclasses.fields(ProductAttrs))
_widgets_memo: dict[str, tuple[float, Widget | None]] = {}
attrs_memo_stats = {"hits": 0, "misses": 0}  # product-attribute lookups served from / missing the memo
# [registry generation, widget generation, monotonic time they were read]
_generation_seen: list[Any] = [None, None, 0.0]


def serving_memo_seconds() -> float:
    return float(getattr(settings, "RECSITE_SERVING_MEMO_SECONDS", 5.0))


def serving_attrs_seconds() -> float:
    return float(getattr(settings, "RECSITE_SERVING_ATTRS_SECONDS", 30.0))


def serving_memo_clear() -> None:
    """Forget the memoised active versions, widgets and product attributes of this process."""
    _versions_memo.clear()
    _attrs_memo.clear()
    _widgets_memo.clear()
    _generation_seen[:] = [None, None, 0.0]


def _generations_check(now: float) -> None:
    """Drop memoised versions / widgets when the registry / widget generation changed (both read in one
    cache round trip, at most once per GENERATION_POLL_SECONDS per process)."""
    if now - _generation_seen[2] < GENERATION_POLL_SECONDS:
        return
    got = cache_get_many([REGISTRY_GENERATION_KEY, WIDGET_GENERATION_KEY])  # {} when the cache is down
    registry, widgets = got.get(REGISTRY_GENERATION_KEY), got.get(WIDGET_GENERATION_KEY)
    if registry != _generation_seen[0]:
        _versions_memo.clear()
    if widgets != _generation_seen[1]:
        _widgets_memo.clear()
    _generation_seen[:] = [registry, widgets, now]


def widget_enabled_get(slug: str) -> Widget | None:
    """`recommender.selectors.widget_get_enabled` (the widget with its enabled rules), memoised per process:
    a save of the widget or of a rule shows at once in the saving process and within about a second in
    the others (widget generation), within the memo's TTL when the cache is down."""
    from recommender.selectors import widget_get_enabled

    ttl = serving_memo_seconds()
    if ttl <= 0:
        return widget_get_enabled(slug=slug)
    now = time.monotonic()
    _generations_check(now)
    hit = _widgets_memo.get(slug)
    if hit is not None and hit[0] > now:
        return hit[1]
    widget = widget_get_enabled(slug=slug)
    if len(_widgets_memo) >= 1000:  # unknown slugs are memoised too; keep the dict bounded
        _widgets_memo.clear()
    _widgets_memo[slug] = (now + ttl, widget)
    return widget


def _widget_generation_bump() -> None:
    _widgets_memo.clear()
    if time.monotonic() < _cache_down_until:
        return  # cache down: other processes see the change within the memo's TTL
    try:
        try:
            cache.incr(WIDGET_GENERATION_KEY)
        except ValueError:  # key missing
            cache.set(WIDGET_GENERATION_KEY, 1, timeout=None)
    except Exception:
        _cache_failed("incr", WIDGET_GENERATION_KEY)


def _widget_changed(sender: Any, instance: Any, **_: Any) -> None:
    """post_save / post_delete of a Widget or WidgetRule: forget this process's memo now, and once the
    transaction commits drop the widget's shared cache entry and bump the generation other processes poll."""
    _widgets_memo.clear()
    try:
        slug = instance.slug if sender is Widget else Widget.objects.get(pk=instance.widget_id).slug
    except Exception:  # the widget is being deleted with its rules: nothing left to serve
        slug = None

    def forget() -> None:
        if slug is not None and time.monotonic() >= _cache_down_until:
            from recommender.selectors import widget_cache_key

            try:
                cache.delete(widget_cache_key(slug))
            except Exception:  # trips the breaker: one warning, no timeout per save while it is down
                _cache_failed("delete", widget_cache_key(slug))

    def committed() -> None:
        forget()  # again: a request between the save and the commit may have cached the old row
        _widget_generation_bump()

    forget()
    transaction.on_commit(committed)


for _model in (Widget, WidgetRule):
    post_save.connect(_widget_changed, sender=_model, dispatch_uid=f"serving-memo-save-{_model.__name__}")
    post_delete.connect(_widget_changed, sender=_model, dispatch_uid=f"serving-memo-delete-{_model.__name__}")


def active_version(engine: str) -> ModelVersion | None:
    """`model_version_active`, memoised per process within the bounds above."""
    ttl = serving_memo_seconds()
    if ttl <= 0:
        return model_version_active(engine=engine)
    now = time.monotonic()
    _generations_check(now)
    hit = _versions_memo.get(engine)
    if hit is not None and hit[0] > now:
        return hit[1]
    version = model_version_active(engine=engine)
    _versions_memo[engine] = (now + ttl, version)
    return version


def candidates_cache_key(*, model_version_id: int, customer_id: int) -> str:
    """Batch-precomputed candidates of one customer under one model version (promotion changes the key)."""
    return f"rs:cand:v{model_version_id}:c{customer_id}"


def _shared_list(key: str, compute: Any, ttl: int = LIST_TTL) -> Any:
    """A list shared across workers through the cache; recomputed on a miss. While the cache is down a
    process-local copy (at most 60 s old) stands in, so an outage does not recompute it per request."""
    value = cache_get(key)
    if value is not None:
        return value
    now = time.monotonic()
    if now < _cache_down_until:
        hit = _memo.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
    value = compute()
    if not cache_set(key, value, ttl):
        _memo[key] = (now + min(ttl, 60), value)
    return value


# --------------------------------------------------------------------------------------------------
# Models: the active (or pinned) version of an engine, loaded once per process.


_model_failures: dict[int, float] = {}
_models_lock = threading.Lock()


def user_key_customer(customer_id: int) -> str:
    # Same format as recommender.data.user_key_customer; not imported from there because that module
    # pulls in pandas, which would cost every web worker ~40 MB for one f-string.
    return f"c:{customer_id}"


def _to_idx(loaded: LoadedModel, product_ids: Iterable[int]) -> np.ndarray:
    index = loaded.product_index
    return np.asarray([index[p] for p in product_ids if p in index], dtype=np.int64)


def _to_pids(loaded: LoadedModel, idx: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    """(product id, score) for item indices in range with finite scores, vectorised (hot path)."""
    ids = loaded.product_ids
    m = min(len(idx), len(scores))
    idx = np.asarray(idx[:m], dtype=np.int64)
    scores = np.asarray(scores[:m], dtype=np.float64)
    ok = (idx >= 0) & (idx < len(ids)) & np.isfinite(scores)
    return list(zip(ids[idx[ok]].tolist(), scores[ok].tolist(), strict=True))


def model_version_for(*, widget: Widget, strategy: str) -> ModelVersion | None:
    """The widget's pinned version, else the active version of the strategy's engine (None if untrained)."""
    own = strategy == widget.strategy
    if own and widget.model_version_id:
        return widget.model_version
    engine = strategy_engine(strategy, override=widget.engine if own else "")
    if not engine:
        return None
    return active_version(engine)


def model_load(version: ModelVersion) -> LoadedModel | None:
    """The loaded engine of `version` (kept in memory per process by recommender.services), or None with a
    warning when the artifact is missing or corrupt; a failed version is not retried for MODEL_RETRY_SECONDS."""
    with _models_lock:
        failed_at = _model_failures.get(version.pk)
        if failed_at is not None and time.monotonic() - failed_at < MODEL_RETRY_SECONDS:
            return None
    try:
        loaded = model_version_load(version=version)
    except Exception:
        with _models_lock:
            _model_failures[version.pk] = time.monotonic()
        logger.warning(
            "model version %s (%s) failed to load; using fallbacks", version.pk, version.engine, exc_info=True
        )
        return None
    if getattr(settings, "RECSITE_GC_FREEZE", False) and loaded.version_id not in _heap_frozen_after:
        _heap_frozen_after.add(loaded.version_id)
        _heap_freeze()
    return loaded


_heap_frozen_after: set[int] = set()


def _heap_freeze() -> None:
    """Move what is alive now (Django, the libraries, the model just loaded) out of the garbage collector's
    reach (gc.freeze), so full collections scan only objects made since. Under `make serve`
    (RECSITE_GC_FREEZE): measured on the benchmark machine, a worker's full collection otherwise paused it
    160-200 ms every few seconds to half a minute, which lands in the p99. Once per model version loaded."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    logger.info(
        "froze %s objects out of the garbage collector in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )


def model_recommend(
    loaded: LoadedModel,
    *,
    history: Sequence[int],
    n: int,
    exclude: Iterable[int] = (),
    user_key: str | None = None,
) -> list[tuple[int, float]]:
    """Top-n (product id, score) for one history of product ids (unknown products ignored)."""
    hist = _to_idx(loaded, history)
    excl = _to_idx(loaded, set(history) | set(exclude))
    users = None
    if user_key is not None and user_key in loaded.user_index:
        users = np.asarray([loaded.user_index[user_key]], dtype=np.int64)
    ids, scores = loaded.engine.recommend([hist], n, exclude=[excl], users=users)
    return _to_pids(loaded, np.asarray(ids)[0], np.asarray(scores)[0])


def model_similar(
    loaded: LoadedModel, *, product_ids: Sequence[int], n: int
) -> list[list[tuple[int, float]]]:
    """Per product (known to the model), its n most similar products with scores; unknown -> []."""
    known = [p for p in product_ids if p in loaded.product_index]
    if not known:
        return [[] for _ in product_ids]
    ids, scores = loaded.engine.similar_items(_to_idx(loaded, known), n)
    rows = {p: _to_pids(loaded, np.asarray(ids)[i], np.asarray(scores)[i]) for i, p in enumerate(known)}
    return [[x for x in rows.get(p, []) if x[0] != p] for p in product_ids]


def because_items(
    loaded: LoadedModel, *, history: Sequence[int], candidates: Sequence[int], depth: int = 3
) -> dict[int, int]:
    """For each candidate, the recent history item it is most similar to (for "Because you viewed X")."""
    recent = list(dict.fromkeys(reversed(history)))[:depth]
    if not recent or not candidates:
        return {}
    wanted = set(candidates)
    best: dict[int, tuple[float, int]] = {}
    try:
        neighbours = model_similar(loaded, product_ids=recent, n=200)
    except Exception:
        return {}
    for source, row in zip(recent, neighbours, strict=False):
        for pid, score in row:
            if pid in wanted and (pid not in best or score > best[pid][0]):
                best[pid] = (score, source)
    return {pid: src for pid, (_, src) in best.items()}


# --------------------------------------------------------------------------------------------------
# Non-model candidate lists (aggregated from events, cached).


def _weighted_counts(qs: Any, n: int) -> list[tuple[int, float]]:
    """Top-n products by event-type-weighted counts, summed in SQL (type IN (...) uses the (type, timestamp)
    index for the time window)."""
    weight = Case(
        *[When(type=t, then=Value(w)) for t, w in EVENT_WEIGHTS.items()],
        default=Value(0.0),
        output_field=FloatField(),
    )
    rows = (
        qs.filter(type__in=list(EVENT_WEIGHTS), product__isnull=False)
        .values("product_id")
        .annotate(s=Sum(weight))
        .order_by("-s", "product_id")[:n]
    )
    return [(int(r["product_id"]), float(r["s"])) for r in rows]


def trending_list(n: int = 200) -> list[tuple[int, float]]:
    """Most engaged-with products in the last 3 days (weighted by event type), widening to 30 days."""

    def compute() -> list[tuple[int, float]]:
        now = timezone.now()
        for days in (3, 30):
            rows = _weighted_counts(Event.objects.filter(timestamp__gte=now - timedelta(days=days)), n)
            if len(rows) >= min(n, 20):
                return rows
        return rows

    return _shared_list(f"rs:list:trending:{n}", compute)


def popular_list(n: int = 200) -> list[tuple[int, float]]:
    """Popularity: the active `popular` engine's ranking (the pop engine, no database scan) when one is
    trained, else weighted event counts of the last 90 days; topped up with the newest products."""
    engine = strategy_engine("popular")
    version = active_version(engine) if engine else None
    if version is not None:
        loaded = model_load(version)
        if loaded is not None:
            try:
                ids, scores = loaded.engine.recommend([np.zeros(0, dtype=np.int64)], n)
                rows = _to_pids(loaded, np.asarray(ids)[0], np.asarray(scores)[0])
                if rows:
                    return rows
            except Exception:
                logger.warning("popularity engine %s raised; counting events instead", version, exc_info=True)

    def compute() -> list[tuple[int, float]]:
        rows = _weighted_counts(Event.objects.filter(timestamp__gte=timezone.now() - timedelta(days=90)), n)
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

    return _shared_list(f"rs:list:popular:{n}", compute)


def segment_of(customer: Customer | None) -> tuple[str, str, str] | None:
    """(age band, gender, region) when the customer consented to demographics and has any; else None."""
    if customer is None or customer.consent != Customer.Consent.FULL:
        return None
    seg = (customer.age_band or "", customer.gender or "", customer.region or "")
    return seg if any(seg) else None


def segment_popular_list(segment: tuple[str, str, str], n: int = 200) -> list[tuple[int, float]]:
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
        return _weighted_counts(Event.objects.filter(q), n)

    key = "rs:list:segment:" + "|".join(segment).replace(" ", "_") + f":{n}"
    return _shared_list(key, compute)


# --------------------------------------------------------------------------------------------------
# Shopper context


def _shopper_load(
    *,
    customer: Customer | None,
    visitor: str | None,
    session_items: Sequence[int],
    context: dict[str, Any],
    need_purchases: bool,
) -> _Shopper:
    personal = customer is None or customer.consent != Customer.Consent.NONE
    shopper = _Shopper(customer=customer, visitor=visitor or "", personal=personal)
    cart = context.get("cart") or ()
    shopper.cart = frozenset(int(p) for p in cart)
    if not personal:
        return shopper
    who = Q()
    if customer is not None:
        who |= Q(customer=customer)
    if visitor:
        who |= Q(visitor_id=visitor)
    history: list[int] = []
    purchased: set[int] = set()
    if who:
        rows = list(
            Event.objects.filter(who, product__isnull=False)
            .order_by("-timestamp", "-id")
            .values_list("product_id", "type")[:HISTORY_CAP]
        )
        for pid, etype in reversed(rows):
            if etype == "remove_from_cart":
                continue
            history.append(pid)
            if etype == "purchase":
                purchased.add(pid)
        if need_purchases:  # older purchases than the capped history: one indexed query
            orders = Q(order__customer=customer) if customer is not None else Q(order__visitor_id=visitor)
            purchased.update(OrderLine.objects.filter(orders).values_list("product_id", flat=True)[:1000])
    history.extend(int(p) for p in session_items)
    shopper.history = history
    shopper.purchased = frozenset(purchased)
    return shopper


# --------------------------------------------------------------------------------------------------
# Candidates per strategy


@dataclass
class _Source:
    name: str  # engine or list name recorded on impressions
    items: list[tuple[int, float]]
    reasons: dict[int, str] = field(default_factory=dict)
    default_reason: str = ""
    model_version_id: int | None = None
    cached: bool = False
    propensities: dict[int, float] = field(default_factory=dict)  # bandit strategies: per product


_categories_memo: dict[str, tuple[float, dict[int, tuple[int | None, str]]]] = {}


def _categories(needed: Iterable[int] = ()) -> dict[int, tuple[int | None, str]]:
    """category id -> (parent id, name): one query per process per minute, or at once when a needed
    category is not known yet (a new category is never served with a truncated path)."""
    hit = _categories_memo.get("all")
    if hit is not None and hit[0] > time.monotonic() and all(c in hit[1] for c in needed):
        return hit[1]
    cats = {
        pk: (parent, name) for pk, parent, name in Category.objects.values_list("pk", "parent_id", "name")
    }
    _categories_memo["all"] = (time.monotonic() + 60, cats)
    return cats


def category_path(category_id: int, cats: dict[int, tuple[int | None, str]]) -> tuple[int, ...]:
    path, node, seen = [], category_id, set()
    while node is not None and node not in seen:
        seen.add(node)
        path.append(node)
        node = cats.get(node, (None, ""))[0]
    return tuple(reversed(path))


def product_attrs_load(product_ids: Iterable[int] = (), skus: Iterable[str] = ()) -> dict[int, ProductAttrs]:
    """Attributes the rules need, for the given products and SKUs: one query (plus the memoised category
    tree) for those not in the per-process memo (see serving_attrs_seconds); none when all are memoised."""
    ids, skus = list(set(product_ids)), list(set(skus))
    if not ids and not skus:
        return {}
    ttl = serving_attrs_seconds()
    out: dict[int, ProductAttrs] = {}
    now = time.monotonic()
    if ttl > 0:
        missing = []
        for pid in ids:
            hit = _attrs_memo.get(pid)
            if hit is not None and hit[0] > now:
                out[pid] = ProductAttrs(*hit[1])
            else:
                missing.append(pid)
        ids = missing
        attrs_memo_stats["hits"] += len(out)
        attrs_memo_stats["misses"] += len(ids)
        if not ids and not skus:
            return out
    loaded = _product_attrs_query(ids, skus)
    out.update(loaded)
    if ttl > 0:
        if len(_attrs_memo) + len(loaded) > ATTRS_MEMO_MAX:
            for pid in [p for p, (until, _) in _attrs_memo.items() if until <= now]:
                _attrs_memo.pop(pid, None)
            if len(_attrs_memo) + len(loaded) > ATTRS_MEMO_MAX:
                _attrs_memo.clear()
        until = now + ttl
        # Kept as plain tuples of str / int / float: the garbage collector stops tracking those, so a
        # full memo does not lengthen its pauses (ProductAttrs instances, with their __dict__, would).
        _attrs_memo.update(
            {pid: (until, tuple(getattr(a, f) for f in _ATTR_FIELDS)) for pid, a in loaded.items()}
        )
    return out


def _product_attrs_query(ids: list[int], skus: list[str]) -> dict[int, ProductAttrs]:
    rows = list(
        Product.objects.filter(Q(pk__in=ids) | Q(sku__in=skus)).values_list(
            "pk",
            "sku",
            "title",
            "category_id",
            "brand_id",
            "price",
            "stock",
            "is_active",
            "created_at",
            "currency",
            "image",
        )
    )
    cats = _categories({r[3] for r in rows})
    out = {}
    for pk, sku, title, cat, brand, price, stock, active, created, currency, image in rows:
        out[pk] = ProductAttrs(
            product_id=pk,
            sku=sku,
            title=title,
            category_id=cat,
            category_name=cats.get(cat, (None, ""))[1],
            category_path=category_path(cat, cats),
            brand_id=brand,
            price=float(price),
            stock=stock,
            is_active=active,
            created_ts=created.timestamp() if created else 0.0,
            currency=currency,
            image=image,
        )
    return out


def _titles(product_ids: Iterable[int]) -> dict[int, str]:
    """Product titles for reason labels, through the attributes memo (no query when all are memoised)."""
    return {pid: a.title for pid, a in product_attrs_load(product_ids).items()}


def _candidates(
    strategy: str, *, widget: Widget, shopper: _Shopper, product: Product | None, n: int, warnings: list[str]
) -> _Source | None:
    """Candidates of one strategy (None when it cannot serve this request, e.g. untrained or no product)."""
    if strategy in PERSONAL_STRATEGIES and not shopper.personal:
        return None
    if strategy == "trending":
        return _Source("trending", trending_list(max(n, 200)), default_reason="Trending now")
    if strategy == "popular":
        return _Source("popular", popular_list(max(n, 200)), default_reason="Popular in {category}")
    if strategy == "segment_popular":
        seg = segment_of(shopper.customer)
        if seg is None:
            return None
        return _Source(
            "segment_popular",
            segment_popular_list(seg, max(n, 200)),
            default_reason="Popular with shoppers like you",
        )
    if strategy == "recently_viewed":
        recent = [p for p in dict.fromkeys(reversed(shopper.history)) if product is None or p != product.pk]
        if not recent:
            return None
        return _Source(
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
        cached = cache_get(candidates_cache_key(model_version_id=version.pk, customer_id=shopper.customer.pk))
        if cached:
            seen = set(shopper.history)  # clicked since the batch ran: not recommended again
            items = [(int(row[0]), float(row[1])) for row in cached["items"] if row[0] not in seen]
            # Entries carry (product, score, because product, because title); the title saves a query.
            reasons = {
                int(row[0]): f"Because you viewed {row[3]}"
                for row in cached["items"]
                if len(row) > 3 and row[3]
            }
            missing = {
                int(row[0]): int(row[2]) for row in cached["items"] if len(row) == 3 and row[2] is not None
            }
            if missing:
                titles = _titles(missing.values())
                reasons.update(
                    {p: f"Because you viewed {titles[b]}" for p, b in missing.items() if b in titles}
                )
            return _Source(
                version.engine,
                items,
                reasons,
                "Recommended for you",
                model_version_id=version.pk,
                cached=True,
            )
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


def _bandit_candidates(
    strategy: str, *, widget: Widget, shopper: _Shopper, product: Product | None, n: int, warnings: list[str]
) -> _Source | None:
    """Bandit strategies (experiments.bandit_serving): the policy re-ranks the base strategy's candidates
    and each position's propensity goes on its impression."""
    from experiments.bandit_serving import DEFAULT_POOL, bandit_slate

    params = widget.params or {}
    base = None
    for base_strategy in (str(params.get("base") or "personalized"), "popular"):
        if base_strategy in BANDIT_STRATEGIES:
            continue
        base = _candidates(
            base_strategy, widget=widget, shopper=shopper, product=product, n=n, warnings=warnings
        )
        if base is not None and base.items:
            break
    if base is None or not base.items:
        return None
    pool = [p for p, _ in base.items if product is None or p != product.pk][
        : int(params.get("pool") or DEFAULT_POOL)
    ]
    slate = bandit_slate(strategy=strategy, widget=widget, pool=pool, customer=shopper.customer)
    size = len(slate.items)
    return _Source(
        slate.name,
        [(p, float(size - i)) for i, p in enumerate(slate.items)],
        {p: base.reasons[p] for p in slate.items if p in base.reasons},
        base.default_reason,
        model_version_id=base.model_version_id,
        propensities=dict(zip(slate.items, slate.propensities, strict=True)),
    )


def _model_candidates(
    strategy: str, *, loaded: LoadedModel, shopper: _Shopper, product: Product | None, n: int
) -> _Source | None:
    src = _Source(loaded.engine_name, [], model_version_id=loaded.version_id)
    if strategy in ("personalized", "session_based"):
        history = shopper.history
        if product is not None:
            history = history + [product.pk]
        if not _to_idx(loaded, history).size:
            return None  # nothing the model knows about this shopper yet
        user_key = user_key_customer(shopper.customer.pk) if shopper.customer is not None else None
        src.items = model_recommend(loaded, history=history, n=n, user_key=user_key)
        because = because_items(loaded, history=history, candidates=[p for p, _ in src.items])
        titles = _titles(because.values())
        verb = "viewed" if strategy == "personalized" else "looked at"
        src.reasons = {p: f"Because you {verb} {titles[b]}" for p, b in because.items() if b in titles}
        src.default_reason = "Recommended for you" if strategy == "personalized" else "Based on your browsing"
        return src
    if strategy == "similar_items":
        anchor = product.pk if product is not None else (shopper.history[-1] if shopper.history else None)
        if anchor is None:
            return None
        # Similarities of 0 are "no evidence", not similar: leave those slots to the fallbacks.
        src.items = [(p, sc) for p, sc in model_similar(loaded, product_ids=[anchor], n=n)[0] if sc > 0]
        src.default_reason = f"Similar to {_titles([anchor]).get(anchor, 'this product')}"
        return src
    if strategy == "bought_together":
        anchors = [product.pk] if product is not None else list(dict.fromkeys(reversed(sorted(shopper.cart))))
        anchors = anchors or list(dict.fromkeys(reversed(shopper.history)))[:3]
        if not anchors:
            return None
        rows = model_similar(loaded, product_ids=anchors[:5], n=n)
        titles = _titles(anchors[:5])
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
        src.default_reason = "Often bought together"
        return src
    return None


# --------------------------------------------------------------------------------------------------
# Impressions


class _ImpressionWriter:
    """Buffers impressions and writes them with bulk_create from one daemon thread (flushes every 0.5 s)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[list[Impression]] = queue.Queue(maxsize=10_000)
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def put(self, rows: list[Impression]) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="impression-writer", daemon=True)
                self.thread.start()
                atexit.register(self.flush)
        try:
            self.queue.put_nowait(rows)
        except queue.Full:  # never block a request on the log; say so loudly
            logger.warning("impression buffer full; writing %s impressions inline", len(rows))
            Impression.objects.bulk_create(rows)

    def _drain(self) -> list[Impression]:
        rows: list[Impression] = []
        while True:
            try:
                rows.extend(self.queue.get_nowait())
            except queue.Empty:
                return rows

    def flush(self) -> None:
        rows = self._drain()
        if rows:
            try:
                Impression.objects.bulk_create(rows, batch_size=1000)
            except Exception:
                logger.exception("writing %s buffered impressions failed", len(rows))

    def _run(self) -> None:
        while True:
            time.sleep(0.5)
            close_old_connections()
            self.flush()


_writer = _ImpressionWriter()


def impressions_write(rows: list[Impression]) -> None:
    """One bulk insert per request, or the buffered background writer when RECSITE_IMPRESSIONS_ASYNC."""
    if not rows:
        return
    if getattr(settings, "RECSITE_IMPRESSIONS_ASYNC", False):
        _writer.put(rows)
    else:
        Impression.objects.bulk_create(rows)


# --------------------------------------------------------------------------------------------------
# The entry point


def widget_rules(widget: Widget) -> list[RuleSpec]:
    rules = getattr(widget, "_prefetched_objects_cache", {}).get("rules")
    if rules is None:
        rules = WidgetRule.objects.filter(widget=widget, enabled=True).order_by("position", "id")
    return [RuleSpec(kind=r.kind, params=r.params or {}, position=r.position) for r in rules if r.enabled]


def _fill_reason(template: str, attrs: ProductAttrs | None) -> str:
    if "{category}" in template:
        return (
            template.format(category=attrs.category_name)
            if attrs and attrs.category_name
            else "Popular right now"
        )
    return template


def recommendations_get(
    *,
    widget: Widget | str,
    customer: Customer | None = None,
    visitor: str | None = None,
    product: Product | None = None,
    session_items: Sequence[int] = (),
    k: int | None = None,
    request_id: uuid.UUID | None = None,
    context: dict[str, Any] | None = None,
    log: bool = True,
    trace: list[ServingTrace] | None = None,
    attrs_out: dict[int, ProductAttrs] | None = None,
) -> list[Recommendation]:
    """Up to k recommendations of `widget` (a Widget or its slug) for this shopper (k defaults to the
    widget's num_items). Disabled widgets are served too (callers decide; the admin preview needs it).

    context: optional {"cart": product ids, "experiment": slug, "variant": name, "propensities":
    {product id: p}}. `log=False` skips the impression log (admin preview). When `trace` is a list,
    a ServingTrace is appended (sources, model version, rules' removals, warnings). When `attrs_out` is a
    dict, the returned products' attributes (sku, title, price, currency, image, ...) are put in it, so
    callers that render items need no second product query.
    """
    if not _heap_frozen_after and getattr(settings, "RECSITE_GC_FREEZE", False):
        _heap_frozen_after.add(0)  # once per process, at its first request (see _heap_freeze)
        _heap_freeze()
    if isinstance(widget, str):
        widget = Widget.objects.get(slug=widget)  # DoesNotExist for an unknown slug: a caller's bug
    context = context or {}
    # A/B experiments: a running experiment on this widget may swap in the shopper's variant
    # (strategy, engine, model version, params, rules) and tags the impressions (experiments.serving).
    from experiments.serving import experiment_apply

    applied = experiment_apply(widget=widget, customer=customer, visitor=visitor, context=context, log=log)
    widget, context = applied.widget, applied.context
    k = int(k or widget.num_items)
    if not 1 <= k <= 100:
        raise ValueError(f"k must be between 1 and 100, got {k}")
    request_id = request_id or uuid.uuid4()
    rules = applied.rules if applied.rules is not None else widget_rules(widget)
    kinds = {r.kind for r in rules}
    warnings: list[str] = []
    shopper = _shopper_load(
        customer=customer,
        visitor=visitor,
        session_items=[int(p) for p in session_items],
        context=context,
        need_purchases="exclude_purchased" in kinds,
    )
    if not context.get("cart") and session_items and widget.placement in ("cart", "checkout"):
        shopper.cart = frozenset(int(p) for p in session_items)
    n = max(MIN_CANDIDATES, k * CANDIDATE_FACTOR)

    strategy = widget.strategy
    chain = [strategy, widget.fallback_strategy, "trending", "popular"]
    if not shopper.personal and strategy in PERSONAL_STRATEGIES:
        warnings.append("customer has not consented to personalization")
    pins = [p["sku"] for r in rules if r.kind == "pin_skus" for p in r.params.get("pins", ())]
    exclude_self = {product.pk} if product is not None else set()

    pool: list[Candidate] = []
    sources: list[_Source] = []
    attrs: dict[int, ProductAttrs] = {}
    outcome = RuleOutcome(kept=[])
    pinned_ids: dict[str, int] = {}
    ctx = RuleContext(
        purchased=shopper.purchased if shopper.personal else frozenset(),
        cart=shopper.cart,
        now_ts=time.time(),
        k=k,
    )
    tried: set[str] = set()
    for tier, strat in enumerate(chain):
        if strat in tried or not strat:
            continue
        tried.add(strat)
        try:
            src = _candidates(strat, widget=widget, shopper=shopper, product=product, n=n, warnings=warnings)
        except Exception as exc:  # e.g. a list computation failing: try the next fallback
            logger.warning(
                "widget %s: strategy %s failed; trying the next fallback", widget.slug, strat, exc_info=True
            )
            warnings.append(f"{strat} failed: {exc}")
            continue
        if src is None or not src.items:
            continue
        sources.append(src)
        have = {c.product_id for c in pool}
        new = [(p, s) for p, s in src.items if p not in have and p not in exclude_self][:n]
        if not new:
            continue
        need = [p for p, _ in new if p not in attrs]
        attrs.update(product_attrs_load(need, skus=pins if not pinned_ids and pins else ()))
        if pins and not pinned_ids:
            pinned_ids = {a.sku: pid for pid, a in attrs.items() if a.sku in set(pins)}
        for p, s in new:
            reason = src.reasons.get(p) or _fill_reason(src.default_reason, attrs.get(p))
            pool.append(Candidate(product_id=p, score=s, engine=src.name, reason=reason, tier=tier))
        outcome = rules_apply(pool, rules, attrs, ctx, pinned_ids=pinned_ids)
        if len(outcome.kept) >= k:
            break
    if pins and not pinned_ids and not pool:
        attrs.update(product_attrs_load((), skus=pins))
        pinned_ids = {a.sku: pid for pid, a in attrs.items() if a.sku in set(pins)}
        outcome = rules_apply(pool, rules, attrs, ctx, pinned_ids=pinned_ids)

    chosen = outcome.kept[:k]
    if attrs_out is not None:
        attrs_out.update({c.product_id: attrs[c.product_id] for c in chosen if c.product_id in attrs})
    version_by_engine = {s.name: s.model_version_id for s in sources}
    now = timezone.now()
    propensities = context.get("propensities") or {}
    for s in sources:
        if s.propensities:
            propensities = {**s.propensities, **propensities}
    recs, rows = [], []
    for position, cand in enumerate(chosen):
        impression_id = uuid.uuid4() if log else None
        score = float(cand.score)
        recs.append(
            Recommendation(
                product_id=cand.product_id,
                score=score,
                reason=cand.reason,
                impression_id=impression_id,
                engine=cand.engine,
                position=position,
                rules=cand.rules,
            )
        )
        if log:
            rows.append(
                Impression(
                    id=impression_id,
                    request_id=request_id,
                    widget=widget,
                    model_version_id=version_by_engine.get(cand.engine),
                    product_id=cand.product_id,
                    customer=customer,
                    visitor_id=(visitor or "")[:64],
                    position=position,
                    score=score,
                    propensity=float(propensities.get(cand.product_id, 1.0)),
                    engine=cand.engine[:32],
                    reason=cand.reason[:160],
                    experiment=str(context.get("experiment", ""))[:64],
                    variant=str(context.get("variant", ""))[:64],
                    created_at=now,
                )
            )
    if log:
        try:
            impressions_write(rows)
        except Exception:  # the log must not cost the shopper their recommendations
            logger.warning("impression log failed for widget %s", widget.slug, exc_info=True)
    for w in warnings:
        logger.info("widget %s: %s", widget.slug, w)
    if trace is not None:
        trace.append(
            ServingTrace(
                strategy=strategy,
                sources=tuple(s.name + (" (cached)" if s.cached else "") for s in sources),
                model_version_id=next((s.model_version_id for s in sources if s.model_version_id), None),
                cached=any(s.cached for s in sources),
                removed=tuple((c.product_id, c.engine, label) for c, label in outcome.removed),
                warnings=tuple(warnings),
            )
        )
    return recs

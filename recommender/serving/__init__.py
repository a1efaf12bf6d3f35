"""Real-time serving: one module per stage (see `pipeline` for the order they run in).

    shopper.py      stage 1: who is asking and what they did (history, purchases, cart, consent)
    candidates.py   stage 2: one strategy's scored products (engines, batch cache, lists, bandit slates)
    ranking.py      stage 3: sources -> one pool ordered by (tier, score), reason labels
    rules.py        stage 4: the widget's business rules (pure `recommender.rules`) with their effects
    slots.py        stage 5: the first k take the slots -> `Recommendation`s and impression rows
    impressions.py  stage 6: impressions + decision trace, bulk-written (buffered under `make serve`)
    pipeline.py     `recommendations_get`, the stages top-down
    trace.py        the `DecisionTrace` contract (pure); tracing.py builds it from the pipeline's data
    hooks.py        `ServingHook`: how experiments change serving without recommender importing them
    widgets.py, loading.py, attributes.py, cache.py
                    widget config, model versions and loaded engines, product attributes, the shared cache
                    with its circuit breaker: per-process memos on `recsite.memo.Memo`

The public names below are re-exported lazily (PEP 562), so importing the pure `recommender.serving.trace`
does not import Django.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # pipeline
    "recommendations_get": "pipeline",
    "serving_state_reset": "state",
    # data crossing boundaries
    "Recommendation": "slots",
    "ProductAttrs": "attributes",
    "DecisionTrace": "trace",
    # hooks
    "ServingHook": "hooks",
    "Slate": "hooks",
    "VariantApplied": "hooks",
    "serving_hook_register": "hooks",
    "serving_hook_unregister": "hooks",
    "serving_hooks": "hooks",
    # stages and helpers other modules use
    "HISTORY_CAP": "shopper",
    "Shopper": "shopper",
    "shopper_load": "shopper",
    "CandidateSource": "candidates",
    "candidates_cache_key": "candidates",
    "candidates_get": "candidates",
    "popular_list": "candidates",
    "trending_list": "candidates",
    "segment_popular_list": "candidates",
    "product_attrs_load": "attributes",
    "product_titles": "attributes",
    "attrs_memo_stats": "attributes",
    "impressions_write": "impressions",
    "impression_writer": "impressions",
    "ImpressionBatch": "slots",
    "widget_enabled_get": "widgets",
    "widget_get_enabled": "widgets",
    "widget_cache_key": "widgets",
    "widget_cache_forget": "widgets",
    "widget_rules": "widgets",
    "active_version": "loading",
    "model_version_for": "loading",
    "model_load": "loading",
    "model_recommend": "loading",
    "model_similar": "loading",
    "product_indices": "loading",
    "scored_products": "loading",
    "user_key_customer": "loading",
    "cache_get": "cache",
    "cache_get_many": "cache",
    "cache_set": "cache",
    "cache_set_many": "cache",
    "GENERATION_POLL_SECONDS": "cache",
    "WIDGET_GENERATION_KEY": "cache",
}

__all__ = [
    "CandidateSource",
    "DecisionTrace",
    "GENERATION_POLL_SECONDS",
    "HISTORY_CAP",
    "ImpressionBatch",
    "ProductAttrs",
    "Recommendation",
    "ServingHook",
    "Shopper",
    "Slate",
    "VariantApplied",
    "WIDGET_GENERATION_KEY",
    "active_version",
    "attrs_memo_stats",
    "cache_get",
    "cache_get_many",
    "cache_set",
    "cache_set_many",
    "candidates_cache_key",
    "candidates_get",
    "impression_writer",
    "impressions_write",
    "model_load",
    "model_recommend",
    "model_similar",
    "model_version_for",
    "popular_list",
    "product_attrs_load",
    "product_indices",
    "product_titles",
    "recommendations_get",
    "scored_products",
    "segment_popular_list",
    "serving_hook_register",
    "serving_hook_unregister",
    "serving_hooks",
    "serving_state_reset",
    "shopper_load",
    "trending_list",
    "user_key_customer",
    "widget_cache_forget",
    "widget_cache_key",
    "widget_enabled_get",
    "widget_get_enabled",
    "widget_rules",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from .attributes import ProductAttrs, attrs_memo_stats, product_attrs_load, product_titles
    from .cache import (
        GENERATION_POLL_SECONDS,
        WIDGET_GENERATION_KEY,
        cache_get,
        cache_get_many,
        cache_set,
        cache_set_many,
    )
    from .candidates import (
        CandidateSource,
        candidates_cache_key,
        candidates_get,
        popular_list,
        segment_popular_list,
        trending_list,
    )
    from .hooks import (
        ServingHook,
        Slate,
        VariantApplied,
        serving_hook_register,
        serving_hook_unregister,
        serving_hooks,
    )
    from .impressions import impression_writer, impressions_write
    from .loading import (
        active_version,
        model_load,
        model_recommend,
        model_similar,
        model_version_for,
        product_indices,
        scored_products,
        user_key_customer,
    )
    from .pipeline import recommendations_get
    from .shopper import HISTORY_CAP, Shopper, shopper_load
    from .slots import ImpressionBatch, Recommendation
    from .state import serving_state_reset
    from .trace import DecisionTrace
    from .widgets import (
        widget_cache_forget,
        widget_cache_key,
        widget_enabled_get,
        widget_get_enabled,
        widget_rules,
    )

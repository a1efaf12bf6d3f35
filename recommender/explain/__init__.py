"""Why did an engine score an item the way it did, for this shopper? One answer shape for every engine.

Pure Python (numpy / scipy / shap; torch only through a torch engine). No Django imports. Every explainer
returns `ItemAttribution`s (`recommender.explain.attribution`):

    engine                      method            contributions                       additive
    hybrid                      tree-shap         ranker features (TreeSHAP)          yes (ranker raw score)
    itemknn, ease               exact-linear      history items (Shapley values)      yes (engine score)
    content, als, bpr           exact-linear      history items (exact decomposition) yes (engine score)
    sasrec, gru4rec, two_tower  occlusion         history items (leave-one-out drop)  no
    pop                         list-statistics   the popularity statistic            yes (engine score)

`attributions_compute` dispatches on the engine name; `driver_items` is the cheap question serving asks
for reason labels ("Because you viewed X": the history item that raises this item's score most).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .attribution import Contribution, ItemAttribution
from .history import EVENT_VERBS, history_drivers, linear_attributions, linear_supported
from .hybrid import Explanation, explain, explain_many, explanation_summary, hybrid_attributions
from .lists import LIST_STATISTICS, list_attribution, pop_attributions
from .sequential import occlusion_attributions, occlusion_drivers

SEQUENTIAL_ENGINES = frozenset({"sasrec", "gru4rec", "two_tower"})

# Base engines of the hybrid whose history terms name the items behind its candidates, in preference order.
_HYBRID_DRIVER_ORDER = ("itemknn", "ease", "als", "content", "bpr")


def attributions_compute(
    *,
    engine_name: str,
    engine: Any,
    history_idx: Sequence[int] | np.ndarray,
    item_idx: Sequence[int] | np.ndarray,
    history_events: Sequence[str] = (),
    user_idx: int | None = None,
    item_ids: np.ndarray | None = None,
    item_label: Any = None,
    event_weights: Mapping[str, float] | None = None,
) -> list[ItemAttribution]:
    """One `ItemAttribution` per item of `item_idx` (same order) for a shopper with `history_idx`.

    history_idx:    item indices, oldest first, exactly what the engine was given (unknown products dropped)
    history_events: event type per history entry ("view", "purchase", ...), aligned, or empty
    user_idx:       the shopper's user index in the engine, for engines that use it (pop segment, hybrid)
    item_ids:       item index -> external id (product pk); indices are reported when None
    item_label:     callable external id -> display name ("Ceramic Heater"), optional
    event_weights:  event type -> weight, to label an item by its strongest event (purchase over view)

    Raises ValueError for an unknown engine name or an item index outside the catalogue.
    """
    items = np.asarray(item_idx, dtype=np.int64).ravel()
    history = np.asarray(history_idx, dtype=np.int64).ravel()
    labels = {"item_ids": item_ids, "item_label": item_label}
    events = {"history_events": history_events, "event_weights": event_weights}
    if engine_name == "hybrid":
        return hybrid_attributions(engine, history, items, user=user_idx, item_ids=item_ids)
    if linear_supported(engine_name, engine):
        return linear_attributions(engine_name, engine, history, items, **events, **labels)
    if engine_name in SEQUENTIAL_ENGINES:
        return occlusion_attributions(engine, history, items, **events, **labels)
    if engine_name == "pop":
        return pop_attributions(engine, items, history_idx=history, user=user_idx, item_ids=item_ids)
    if engine_name == "bpr":  # fold_in="learned": the score comes from trained user factors, not the history
        users = None if user_idx is None else np.asarray([user_idx], dtype=np.int64)
        scores = np.asarray(engine.score([history], users=users), dtype=np.float64)[0, items]
        return [
            ItemAttribution(
                product_id=int(item_ids[it]) if item_ids is not None else int(it),
                score=float(s),
                base_value=0.0,
                contributions=(
                    Contribution(name="Learned shopper profile (BPR user factors)", value=float(s)),
                ),
                method="list-statistics",
                score_kind="engine score",
                summary="Scored from the shopper's learned profile; no single history item is separable.",
            )
            for it, s in zip(items, scores, strict=True)
        ]
    raise ValueError(f"no explainer for engine {engine_name!r}")


def driver_items(
    *,
    engine_name: str,
    engine: Any,
    history_idx: Sequence[int] | np.ndarray,
    item_idx: Sequence[int] | np.ndarray,
) -> dict[int, int]:
    """item index -> the history item index that raises that item's score most, for reason labels
    ("Because you viewed <that item>"). Items no history item raises are absent (serving then shows its
    generic reason). Exact for the linear engines; for the hybrid, the history term of its first linear base
    engine; for the torch sequence engines, leave-one-out occlusion (m + 2 forward passes); {} for
    popularity. Cheap enough for serving: no engine scoring for the linear engines."""
    items = np.asarray(item_idx, dtype=np.int64).ravel()
    history = np.asarray(history_idx, dtype=np.int64).ravel()
    if not len(items) or not len(history):
        return {}
    if linear_supported(engine_name, engine):
        return history_drivers(engine_name, engine, history, items)
    if engine_name == "hybrid":
        bases = getattr(engine, "engines_", {}) or {}
        for name in _HYBRID_DRIVER_ORDER:
            if name in bases and linear_supported(name, bases[name]):
                return history_drivers(name, bases[name], history, items)
        return {}
    if engine_name in SEQUENTIAL_ENGINES:
        return occlusion_drivers(engine, history, items)
    return {}


__all__ = [
    "EVENT_VERBS",
    "LIST_STATISTICS",
    "SEQUENTIAL_ENGINES",
    "Contribution",
    "Explanation",
    "ItemAttribution",
    "attributions_compute",
    "driver_items",
    "explain",
    "explain_many",
    "explanation_summary",
    "hybrid_attributions",
    "linear_attributions",
    "list_attribution",
    "occlusion_attributions",
    "pop_attributions",
]

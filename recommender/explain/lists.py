"""Popularity-type reasons: the popularity engine and serving's lists (trending, popular, segment). Pure.

These scores are list statistics, not functions of the shopper's history, so the explanation is the reason
and the figures behind it: the statistic (a count of weighted events in a time window, a share of the
bestseller's), the rank in the list, the segment. One contribution carries the whole score, so the
additivity contract holds trivially (base_value 0 + the statistic = score); `method` is
"list-statistics" and the summary names the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .attribution import Contribution, ItemAttribution

# What each of serving's list sources counts (DecisionTrace SourceScore.source -> statistic, reason).
LIST_STATISTICS: dict[str, tuple[str, str]] = {
    "trending": ("Weighted events, last 3 days (widened to 30 when sparse)", "Trending now"),
    "popular": ("Popularity score", "Popular in the shop"),
    "segment_popular": (
        "Weighted events by shoppers of the same segment, last 180 days",
        "Popular with shoppers like you",
    ),
    "recently_viewed": ("Recency (1 / (1 + views since))", "The shopper viewed it recently"),
}


def list_attribution(
    *,
    product_id: int,
    source: str,
    score: float,
    rank: int | None = None,
    n_listed: int | None = None,
    segment: str = "",
    statistic: str = "",
    reason: str = "",
) -> ItemAttribution:
    """The figures behind an item taken from a list (score = the list's own statistic for the item)."""
    default_stat, default_reason = LIST_STATISTICS.get(source, (f"{source} score", f"Chosen by {source}"))
    statistic = statistic or default_stat
    reason = reason or default_reason
    parts = [f"{reason}: {statistic.lower()} {score:.4g}"]
    if rank is not None:
        parts.append(f"rank {rank}" + (f" of {n_listed}" if n_listed else ""))
    if segment:
        parts.append(f"segment {segment}")
    return ItemAttribution(
        product_id=int(product_id),
        score=float(score),
        base_value=0.0,
        contributions=(Contribution(name=statistic, value=float(score)),),
        method="list-statistics",
        score_kind=f"{source} list score",
        summary="; ".join(parts) + ".",
    )


def pop_attributions(
    engine: Any,
    item_idx: Sequence[int] | np.ndarray,
    *,
    history_idx: Sequence[int] | np.ndarray = (),
    user: int | None = None,
    item_ids: np.ndarray | None = None,
) -> list[ItemAttribution]:
    """The popularity engine's score for each item with its rank and mode ("global": distinct shoppers
    relative to the bestseller; "trending": time-decayed counts; "segment"; "category": popularity x the
    history's share of the item's category)."""
    items = np.asarray(item_idx, dtype=np.int64).ravel()
    n_items = len(engine.popularity_)
    bad = items[(items < 0) | (items >= n_items)]
    if len(bad):
        raise ValueError(f"item index {int(bad[0])} is outside the catalogue (0..{n_items - 1})")
    users = None if user is None else np.asarray([user], dtype=np.int64)
    scores = np.asarray(
        engine.score([np.asarray(history_idx, dtype=np.int64)], users=users), dtype=np.float64
    )[0]
    base_pop = np.asarray(engine.popularity_, dtype=np.float64)
    segment = ""
    seg_of = engine.user_segment_
    if engine.mode == "segment" and user is not None and seg_of is not None and 0 <= user < len(seg_of):
        s = int(seg_of[user])
        base_pop = np.asarray(engine.segment_pop_[s], dtype=np.float64)
        segment = f"{engine.segment_key} = {engine.segment_labels_[s]}"
    # rank among the items the engine may recommend (history items are excluded from its lists)
    hist = np.asarray(history_idx, dtype=np.int64).ravel()
    ranked = np.where(np.isin(np.arange(n_items), hist), -np.inf, scores)
    ranks = 1 + (ranked[None, :] > ranked[:, None]).sum(axis=1)  # ties share a rank ("1, 2, 2, 4")
    n_rankable = n_items - len(np.unique(hist[(hist >= 0) & (hist < n_items)]))
    what = {
        "global": "Shoppers who interacted with it, relative to the bestseller",
        "trending": f"Time-decayed interactions (half-life {engine.half_life_days:g} days), relative to the top item",
        "segment": "Shoppers of the segment who interacted with it, relative to the segment's top item",
        "category": "Popularity x the shopper's interest in its category",
    }[engine.mode]
    out = []
    for it in items:
        pid = int(item_ids[it]) if item_ids is not None else int(it)
        summary = f"Popularity rank {int(ranks[it])} of {n_rankable} ({engine.mode}): {what.lower()} {scores[it]:.3g}"
        if engine.mode == "category" and base_pop[it] > 0:
            summary += f" (popularity {base_pop[it]:.3g} x category weight {scores[it] / base_pop[it]:.3g})"
        if segment:
            summary += f"; {segment}"
        out.append(
            ItemAttribution(
                product_id=pid,
                score=float(scores[it]),
                base_value=0.0,
                contributions=(Contribution(name=what, value=float(scores[it])),),
                method="list-statistics",
                score_kind="engine score",
                summary=summary + ".",
            )
        )
    return out

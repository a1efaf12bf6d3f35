"""Leave-one-out occlusion for the torch sequence engines (SASRec, GRU4Rec, two-tower). Pure (numpy; the
engine brings torch).

A sequence model's score is not a sum over the history, so no exact additive split exists cheaply. For
each distinct history item j we remove *every* occurrence of j and re-score:

    delta_j = score(history) - score(history without j)

delta_j > 0: the item pushed the score up. These deltas need not add up to anything (interactions between
items, position shifts), so the attribution says `additive=False`; base_value is the score of an empty
history (what the model predicts knowing nothing), reported for reference. Cost: one batched forward pass
over m + 2 histories (m distinct history items).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .attribution import Contribution, ItemAttribution
from .history import ItemLabel, history_label, history_weights


def occlusion_attributions(
    engine: Any,
    history_idx: Sequence[int] | np.ndarray,
    item_idx: Sequence[int] | np.ndarray,
    *,
    history_events: Sequence[str] = (),
    event_weights: Mapping[str, float] | None = None,
    item_ids: np.ndarray | None = None,
    item_label: ItemLabel | None = None,
) -> list[ItemAttribution]:
    """Occlusion deltas of `engine.score_items` (any engine scoring histories -> (n, n_items))."""
    h = np.asarray(history_idx, dtype=np.int64).ravel()
    n_items = int(engine.n_items)
    items = np.asarray(item_idx, dtype=np.int64).ravel()
    bad = items[(items < 0) | (items >= n_items)]
    if len(bad):
        raise ValueError(f"item index {int(bad[0])} is outside the catalogue (0..{n_items - 1})")
    h = h[(h >= 0) & (h < n_items)]
    hw = history_weights(h, n_items, 1.0, history_events=history_events, event_weights=event_weights)
    variants = [h, np.zeros(0, dtype=np.int64)] + [h[h != j] for j in hw.items]
    scores = np.asarray(engine.score_items(variants), dtype=np.float64)[:, items]  # (m + 2, k)
    full, empty, without = scores[0], scores[1], scores[2:]

    def ext(i: int) -> int:
        return int(item_ids[i]) if item_ids is not None else int(i)

    out = []
    for col, it in enumerate(items):
        contribs = sorted(
            (
                Contribution(
                    name=history_label(ext(j), ev, item_label),
                    value=float(full[col] - without[row, col]),
                    product_id=ext(j),
                    event=ev,
                )
                for row, (j, ev) in enumerate(zip(hw.items, hw.events, strict=True))
            ),
            key=lambda c: -abs(c.value),
        )
        out.append(
            ItemAttribution(
                product_id=ext(int(it)),
                score=float(full[col]),
                base_value=float(empty[col]),
                contributions=tuple(contribs),
                method="occlusion",
                score_kind="engine score; contributions are leave-one-out drops, not additive",
                additive=False,
                summary=_summary(contribs),
            )
        )
    return out


def _summary(contribs: Sequence[Contribution]) -> str:
    if not contribs:
        return "No history the model knows: the score is the model's prior for an unknown shopper."
    top = max(contribs, key=lambda c: c.value)
    if top.value <= 0:
        return "No single history item raises the score: removing any one of them does not lower it."
    return (
        f"Removing '{top.name}' from the history lowers the score most ({-top.value:+.3g}); "
        "the sequence model weighs the items together, so the drops do not add up to the score."
    )


def occlusion_drivers(
    engine: Any, history_idx: Sequence[int] | np.ndarray, item_idx: Sequence[int]
) -> dict[int, int]:
    """For each item, the history item whose removal lowers its score most (when any does)."""
    out = {}
    for att in occlusion_attributions(engine, history_idx, item_idx):
        best = max(att.contributions, key=lambda c: c.value, default=None)
        if best is not None and best.value > 0 and best.product_id is not None:
            out[att.product_id] = best.product_id
    return out

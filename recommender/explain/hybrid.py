"""Why did the hybrid engine rank an item where it did? TreeSHAP attributions over its LightGBM ranker.

Pure Python (shap / numpy). No Django imports. Support staff read the result in the admin, so the
feature names are the hybrid's human-readable names and `Explanation.summary` is one plain sentence.

Additivity (tested): base_value + sum(contribution) == raw_score, the ranker's raw (log-odds-like)
score for the (history, item) pair, up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.ranker import feature_phrase

from .attribution import Contribution, ItemAttribution


@dataclass(frozen=True)
class Explanation:
    """SHAP attribution of one (shopper history, item) score.

    base_value:    the ranker's expected raw score over its training rows
    contributions: (feature name, feature value, contribution), largest |contribution| first;
                   value is NaN when the feature is unknown for this pair
    raw_score:     the ranker's raw score for the pair
    sources:       the base engines (display labels) whose top-N proposed the item, best rank first
    depth:         N, the number of candidates asked from each base engine (a rank of N + 1 = "not proposed")
    """

    item: int
    base_value: float
    contributions: tuple[tuple[str, float, float], ...]
    raw_score: float
    sources: tuple[str, ...] = ()
    depth: int = 0

    def value_text(self, feature: str, value: float) -> str:
        """A feature value as support staff should read it ("unknown", "not in its top 100", "12.5")."""
        if math.isnan(value):
            return "unknown" if not feature.endswith(" score") else "not proposed by this model"
        if feature.startswith("Rank in ") and self.depth and value > self.depth:
            return f"not in its top {self.depth}"
        return f"{value:.3g}"

    def summary(self, *, max_reasons: int = 3, min_contribution: float = 0.01) -> str:
        """One line, e.g. "Ranked high mainly because: similar to the shopper's last item (+0.80), popular
        recently (+0.30); held back by: its price (-0.12)"."""
        return explanation_summary(self, max_reasons=max_reasons, min_contribution=min_contribution)

    def as_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "base_value": self.base_value,
            "raw_score": self.raw_score,
            "contributions": [
                {
                    "feature": n,
                    "value": None if math.isnan(v) else v,
                    "value_text": self.value_text(n, v),
                    "contribution": c,
                }
                for n, v, c in self.contributions
            ],
            "sources": list(self.sources),
            "summary": self.summary(),
        }


def _shap_matrix(explainer: Any, X: np.ndarray) -> tuple[np.ndarray, float]:
    values = explainer.shap_values(X)
    if isinstance(values, list):  # older shap returns one array per output
        values = values[0]
    values = np.asarray(values, dtype=np.float64).reshape(len(X), -1)
    base = np.asarray(explainer.expected_value, dtype=np.float64).ravel()
    return values, float(base[0])


def explain_many(
    engine: Any,
    history: Sequence[int] | np.ndarray,
    items: Sequence[int] | np.ndarray,
    *,
    user: int | None = None,
) -> list[Explanation]:
    """Explanations for several items of one shopper's history (one feature/SHAP pass).

    `engine` is a fitted `HybridEngine` (anything with features_for / booster_ / feature_names_ /
    explainer()). Items need not be among the engine's candidates: engine scores are then "missing".
    Raises ValueError for an item index outside the catalogue.
    """
    explainer = engine.explainer()  # raises RuntimeError when the engine is not fitted
    items_arr = np.asarray(list(items), dtype=np.int64)
    n_items = int(engine.n_items_)
    bad = items_arr[(items_arr < 0) | (items_arr >= n_items)]
    if len(bad):
        raise ValueError(f"item index {int(bad[0])} is outside the catalogue (0..{n_items - 1})")
    hist = np.asarray(list(history), dtype=np.int64)
    users = None if user is None else np.array([user], dtype=np.int64)
    X = engine.features_for([hist], [items_arr], users)
    shap_values, base = _shap_matrix(explainer, X)
    raw = np.asarray(engine.booster_.predict(X, raw_score=True), dtype=np.float64).ravel()
    names = list(engine.feature_names_)
    depth = int(getattr(engine, "n_candidates", 0))
    rank_cols = [(f, n[len("Rank in ") :]) for f, n in enumerate(names) if n.startswith("Rank in ")]
    out = []
    for j, item in enumerate(items_arr):
        order = np.argsort(-np.abs(shap_values[j]), kind="stable")
        contribs = tuple((names[f], float(X[j, f]), float(shap_values[j, f])) for f in order)
        proposed = sorted((float(X[j, f]), label) for f, label in rank_cols if X[j, f] <= depth)
        out.append(
            Explanation(
                item=int(item),
                base_value=base,
                contributions=contribs,
                raw_score=float(raw[j]),
                sources=tuple(label for _, label in proposed),
                depth=depth,
            )
        )
    return out


def explain(
    engine: Any, history: Sequence[int] | np.ndarray, item: int, *, user: int | None = None
) -> Explanation:
    """Why `engine` (a fitted HybridEngine) scores `item` as it does for a shopper with `history`."""
    return explain_many(engine, history, [item], user=user)[0]


def explanation_summary(exp: Explanation, *, max_reasons: int = 3, min_contribution: float = 0.01) -> str:
    """Plain-language one-liner from the largest positive (and, if any, negative) contributions."""
    pos = [(n, c) for n, _, c in exp.contributions if c >= min_contribution]
    neg = [(n, c) for n, _, c in exp.contributions if c <= -min_contribution]
    pos = sorted(pos, key=lambda p: -p[1])[:max_reasons]
    neg = sorted(neg, key=lambda p: p[1])[: max(1, max_reasons - 1)]
    high = exp.raw_score >= exp.base_value
    parts = []
    if high and pos:
        parts.append(
            "Ranked high mainly because: " + ", ".join(f"{feature_phrase(n)} ({c:+.2f})" for n, c in pos)
        )
        if neg:
            parts.append("held back by: " + ", ".join(f"{n} ({c:+.2f})" for n, c in neg))
    elif not high and neg:
        parts.append("Ranked low mainly because of: " + ", ".join(f"{n} ({c:+.2f})" for n, c in neg))
        if pos:
            parts.append("helped by: " + ", ".join(f"{feature_phrase(n)} ({c:+.2f})" for n, c in pos))
    else:
        return "Scored about average: no single signal stands out."
    return "; ".join(parts)


def hybrid_attributions(
    engine: Any,
    history: Sequence[int] | np.ndarray,
    items: Sequence[int] | np.ndarray,
    *,
    user: int | None = None,
    item_ids: np.ndarray | None = None,
) -> list[ItemAttribution]:
    """`explain_many` in the common `ItemAttribution` shape (score_kind "ranker raw score").

    Contributions are the ranker's named features (largest |SHAP| first) with the feature's value for the
    pair; `base_value + sum(contributions) == score`, the ranker's raw score (TreeSHAP is exact for
    trees). `item_ids` maps item indices to external ids (identity when None).
    """
    out = []
    for exp in explain_many(engine, history, items, user=user):
        out.append(
            ItemAttribution(
                product_id=int(item_ids[exp.item]) if item_ids is not None else int(exp.item),
                score=exp.raw_score,
                base_value=exp.base_value,
                contributions=tuple(
                    Contribution(name=n, value=c, feature_value=None if math.isnan(v) else v)
                    for n, v, c in exp.contributions
                ),
                method="tree-shap",
                score_kind="ranker raw score",
                summary=exp.summary()
                + (
                    f" Proposed by: {', '.join(exp.sources)}."
                    if exp.sources
                    else " No base model proposed it."
                ),
            )
        )
    return out

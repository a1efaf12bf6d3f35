"""The common shape of an explanation, whatever the engine. Pure (no Django).

Every explainer in `recommender.explain` returns `ItemAttribution`s: a base value plus named, signed
contributions that add up to a stated score (`score_kind` says which quantity: "engine score" for the
additive engines, "ranker raw score" for the hybrid's TreeSHAP, "occlusion" deltas for the torch engines,
"list score" for popularity-type fallbacks). Additivity contract, tested per engine:

    abs(base_value + sum(c.value for c in contributions) - score) <= 1e-6 * max(1, abs(score))

unless `additive` is False (occlusion / integrated-gradient approximations), which the JSON then says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Contribution:
    """One reason. `product_id` is set when the reason is a history item ("because you viewed X"),
    `feature_value` when it is a ranker feature; `event` is the history event type when known."""

    name: str
    value: float
    product_id: int | None = None
    feature_value: float | None = None
    event: str = ""


@dataclass(frozen=True)
class ItemAttribution:
    product_id: int
    score: float
    base_value: float
    contributions: tuple[Contribution, ...]  # largest |value| first
    method: str  # "exact-linear", "tree-shap", "occlusion", "integrated-gradients", "list-statistics"
    score_kind: str  # which quantity base_value + sum(contributions) equals
    additive: bool = True
    summary: str = ""  # one plain-language sentence for support staff

    def as_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "score": self.score,
            "base_value": self.base_value,
            "method": self.method,
            "score_kind": self.score_kind,
            "additive": self.additive,
            "summary": self.summary,
            "contributions": [
                {
                    "name": c.name,
                    "value": c.value,
                    "product_id": c.product_id,
                    "feature_value": c.feature_value,
                    "event": c.event,
                }
                for c in self.contributions
            ],
        }

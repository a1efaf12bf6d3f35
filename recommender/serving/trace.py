"""The decision trace: why a served list looks the way it does. Pure (no Django, no ORM).

Every call of `recommendations_get` builds one frozen `DecisionTrace`. It records, per item, where the
item came from (candidate sources with raw scores and ranks), the ranker's named features when a ranker
ran, every rule's effect with positions before and after, the final slot and the reason label; and for
the list as a whole the model versions, experiment and variant, fallbacks taken, cache hits and the time
each stage took. Items a rule removed stay in the trace (`removed`), with the rule that removed them.

Attributions (SHAP values, history-item contributions) are *not* computed on the serving path: they are
recomputed deterministically from the stored model versions and the stored `history` when someone asks
(`recommender.explain`). The trace therefore keeps exactly the inputs that recomputation needs.

`to_json()` gives a compact, JSON-safe dict (short keys are not used: readability wins, rows are small);
`DecisionTrace.from_json(d)` restores it. The round trip is lossless (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RuleEffectKind = Literal["filtered", "boosted", "demoted", "pinned", "capped", "reordered"]

TRACE_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SourceScore:
    """One candidate source's opinion of an item: the strategy or engine, its raw score, its 1-based rank."""

    source: str  # strategy or engine name, e.g. "ease", "trending", "segment_popular"
    score: float
    rank: int
    model_version_id: int | None = None


@dataclass(frozen=True)
class RuleEffect:
    """What one business rule did to one item. Positions are 0-based; None means "not in the list"."""

    rule: str  # rule kind, e.g. "boost_brands"
    label: str  # human-readable label, e.g. "Boost brands ×3"
    effect: RuleEffectKind
    position_before: int | None
    position_after: int | None
    detail: str = ""


@dataclass(frozen=True)
class ItemTrace:
    """One item's path through the pipeline.

    score:    the ranking score the list was ordered by (after rules' boosts)
    features: the ranker's named feature values, when a ranker ran (name, value)
    slot:     final 0-based position, None when removed
    """

    product_id: int
    score: float
    engine: str
    sources: tuple[SourceScore, ...] = ()
    features: tuple[tuple[str, float], ...] = ()
    rules: tuple[RuleEffect, ...] = ()
    slot: int | None = None
    reason: str = ""
    tier: int = 0  # 0 = the widget's own strategy, 1.. = fallbacks
    removed_by: str = ""  # label of the rule that removed the item, when removed


@dataclass(frozen=True)
class DecisionTrace:
    """One served list. `history` is the shopper input the engines saw (product ids, oldest first),
    `history_events` the matching event types ("view", "purchase", ...; same length, may be empty)."""

    request_id: str
    widget: str
    strategy: str
    k: int
    items: tuple[ItemTrace, ...]
    removed: tuple[ItemTrace, ...] = ()
    customer_id: int | None = None
    visitor: str = ""
    product_id: int | None = None  # the anchor product for similar / bought-together widgets
    history: tuple[int, ...] = ()
    history_events: tuple[str, ...] = ()
    model_versions: tuple[tuple[str, int], ...] = ()  # (engine, model version id)
    experiment: str = ""
    variant: str = ""
    fallbacks: tuple[str, ...] = ()  # strategies used after the widget's own one
    cache_hits: tuple[str, ...] = ()  # e.g. ("candidates", "attrs")
    stage_ms: tuple[tuple[str, float], ...] = ()  # (stage name, milliseconds), in pipeline order
    warnings: tuple[str, ...] = ()
    created_ts: float = 0.0  # unix seconds
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": TRACE_SCHEMA_VERSION,
            "request_id": self.request_id,
            "widget": self.widget,
            "strategy": self.strategy,
            "k": self.k,
            "items": [_item_json(i) for i in self.items],
            "removed": [_item_json(i) for i in self.removed],
            "customer_id": self.customer_id,
            "visitor": self.visitor,
            "product_id": self.product_id,
            "history": list(self.history),
            "history_events": list(self.history_events),
            "model_versions": [list(p) for p in self.model_versions],
            "experiment": self.experiment,
            "variant": self.variant,
            "fallbacks": list(self.fallbacks),
            "cache_hits": list(self.cache_hits),
            "stage_ms": [[n, round(ms, 4)] for n, ms in self.stage_ms],
            "warnings": list(self.warnings),
            "created_ts": self.created_ts,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DecisionTrace:
        return cls(
            request_id=str(d["request_id"]),
            widget=d["widget"],
            strategy=d["strategy"],
            k=int(d["k"]),
            items=tuple(_item_from(i) for i in d.get("items", ())),
            removed=tuple(_item_from(i) for i in d.get("removed", ())),
            customer_id=d.get("customer_id"),
            visitor=d.get("visitor", ""),
            product_id=d.get("product_id"),
            history=tuple(int(p) for p in d.get("history", ())),
            history_events=tuple(d.get("history_events", ())),
            model_versions=tuple((str(e), int(v)) for e, v in d.get("model_versions", ())),
            experiment=d.get("experiment", ""),
            variant=d.get("variant", ""),
            fallbacks=tuple(d.get("fallbacks", ())),
            cache_hits=tuple(d.get("cache_hits", ())),
            stage_ms=tuple((str(n), float(ms)) for n, ms in d.get("stage_ms", ())),
            warnings=tuple(d.get("warnings", ())),
            created_ts=float(d.get("created_ts", 0.0)),
            meta=dict(d.get("meta", {})),
        )

    def item(self, product_id: int) -> ItemTrace | None:
        """The item's trace, shown or removed."""
        for it in self.items + self.removed:
            if it.product_id == product_id:
                return it
        return None


def _item_json(i: ItemTrace) -> dict[str, Any]:
    return {
        "product_id": i.product_id,
        "score": i.score,
        "engine": i.engine,
        "sources": [[s.source, s.score, s.rank, s.model_version_id] for s in i.sources],
        "features": [list(f) for f in i.features],
        "rules": [
            [r.rule, r.label, r.effect, r.position_before, r.position_after, r.detail] for r in i.rules
        ],
        "slot": i.slot,
        "reason": i.reason,
        "tier": i.tier,
        "removed_by": i.removed_by,
    }


def _item_from(d: dict[str, Any]) -> ItemTrace:
    return ItemTrace(
        product_id=int(d["product_id"]),
        score=float(d["score"]),
        engine=d.get("engine", ""),
        sources=tuple(SourceScore(s[0], float(s[1]), int(s[2]), s[3]) for s in d.get("sources", ())),
        features=tuple((str(n), float(v)) for n, v in d.get("features", ())),
        rules=tuple(RuleEffect(r[0], r[1], r[2], r[3], r[4], r[5]) for r in d.get("rules", ())),
        slot=d.get("slot"),
        reason=d.get("reason", ""),
        tier=int(d.get("tier", 0)),
        removed_by=d.get("removed_by", ""),
    )

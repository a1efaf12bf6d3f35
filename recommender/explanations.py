"""Explain a stored decision trace: why each item of a served list (and each item a rule removed) scored
as it did, recomputed from the model versions the list was served with.

`trace_explain(trace=...)` loads each model version named in the trace (`recommender.services.
model_version_load`, the loader serving uses, with its per-process cache), maps the trace's product ids to
the version's item indices through the version's own id maps, and asks `recommender.explain.
attributions_compute` for an `ItemAttribution` per item (pure code: exact history attributions, TreeSHAP,
occlusion or popularity figures depending on the engine). Items that came from a list (trending, popular,
segment, recently viewed, bandits) or from a similarity strategy are explained by the figures the trace
recorded. `TraceExplanation.as_json()` is what `python manage.py explain --json` prints and what the
support console renders.

For every item, `base_value + sum(contributions) == score` (within 1e-6 relative) when `additive` is
true; `score_kind` names the quantity (the engine's score, the hybrid ranker's raw score, a list's
statistic). `ranking_score` is the score the served list was ordered by (after rules' boosts), which can
differ from `score`; the rules that moved the item are listed beside it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catalog.models import Product
from recommender.engines import REGISTRY
from recommender.explain import Contribution, ItemAttribution, attributions_compute, list_attribution
from recommender.models import ModelVersion
from recommender.serving.trace import DecisionTrace, ItemTrace, RuleEffect, SourceScore

logger = logging.getLogger(__name__)

SIMILARITY_STRATEGIES = frozenset({"similar_items", "bought_together"})
SCORE_MISMATCH_TOLERANCE = 1e-4  # relative; beyond it the recomputed score is flagged


@dataclass(frozen=True)
class ExplainedItem:
    """One item of a served list with its attribution.

    position:      0-based slot in the served list (None for an item a rule removed)
    score:         the quantity the contributions explain (`score_kind`); base_value + sum = score
    ranking_score: the score the list was ordered by (after rules), as recorded in the trace
    """

    product_id: int
    sku: str
    title: str
    position: int | None
    score: float
    ranking_score: float
    base_value: float
    contributions: tuple[Contribution, ...]
    method: str
    score_kind: str
    additive: bool
    summary: str
    engine: str
    model_version: int | None
    sources: tuple[SourceScore, ...] = ()
    rules: tuple[RuleEffect, ...] = ()
    reason: str = ""
    removed_by: str = ""
    tier: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "sku": self.sku,
            "title": self.title,
            "position": self.position,
            "score": _num(self.score),
            "ranking_score": _num(self.ranking_score),
            "base_value": _num(self.base_value),
            "contributions": [
                {
                    "name": c.name,
                    "value": _num(c.value),
                    "product_id": c.product_id,
                    "event": c.event,
                    "feature_value": _num(c.feature_value),
                }
                for c in self.contributions
            ],
            "method": self.method,
            "score_kind": self.score_kind,
            "additive": self.additive,
            "summary": self.summary,
            "engine": self.engine,
            "model_version": self.model_version,
            "sources": [
                {
                    "source": s.source,
                    "score": _num(s.score),
                    "rank": s.rank,
                    "model_version": s.model_version_id,
                }
                for s in self.sources
            ],
            "rules": [
                {
                    "rule": r.rule,
                    "label": r.label,
                    "effect": r.effect,
                    "position_before": r.position_before,
                    "position_after": r.position_after,
                    "detail": r.detail,
                }
                for r in self.rules
            ],
            "reason": self.reason,
            "removed_by": self.removed_by,
            "tier": self.tier,
        }


@dataclass(frozen=True)
class HistoryEntry:
    product_id: int
    sku: str
    title: str
    event: str


@dataclass(frozen=True)
class TraceExplanation:
    """A served list explained item by item (`trace_explain`)."""

    request_id: str
    widget: str
    strategy: str
    model_versions: tuple[tuple[str, int], ...]
    items: tuple[ExplainedItem, ...]
    removed: tuple[ExplainedItem, ...] = ()
    customer_id: int | None = None
    visitor: str = ""
    product_id: int | None = None
    history: tuple[HistoryEntry, ...] = ()
    experiment: str = ""
    variant: str = ""
    fallbacks: tuple[str, ...] = ()
    created_ts: float = 0.0
    warnings: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        """The JSON `manage.py explain --json` prints (plain types only; non-finite numbers become null)."""
        return {
            "request_id": self.request_id,
            "widget": self.widget,
            "strategy": self.strategy,
            "model_versions": [{"engine": e, "version": v} for e, v in self.model_versions],
            "customer_id": self.customer_id,
            "visitor": self.visitor,
            "product_id": self.product_id,
            "experiment": self.experiment,
            "variant": self.variant,
            "fallbacks": list(self.fallbacks),
            "created_ts": self.created_ts,
            "history": [
                {"product_id": h.product_id, "sku": h.sku, "title": h.title, "event": h.event}
                for h in self.history
            ],
            "items": [i.as_json() for i in self.items],
            "removed": [i.as_json() for i in self.removed],
            "warnings": list(self.warnings),
        }


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------------------ service


@dataclass
class _Plan:
    """Which engine (and version) explains one item, or None for list / similarity items."""

    item: ItemTrace
    engine: str
    version_id: int | None


def _plan(item: ItemTrace, versions: dict[str, int]) -> _Plan:
    if item.engine in versions:
        return _Plan(item, item.engine, versions[item.engine])
    for s in item.sources:
        if s.source == item.engine and s.model_version_id is not None:
            return _Plan(item, item.engine, int(s.model_version_id))
    return _Plan(item, item.engine, None)


def _source_of(item: ItemTrace) -> SourceScore | None:
    for s in item.sources:
        if s.source == item.engine:
            return s
    return item.sources[0] if item.sources else None


def trace_explain(*, trace: DecisionTrace, event_weights: dict[str, float] | None = None) -> TraceExplanation:
    """Attributions for every shown and removed item of `trace` (see the module docstring).

    Never raises for a missing or unreadable model version: its items keep the served figures, with a
    warning saying why they are not attributed.
    """
    from recommender.data import DEFAULT_EVENT_WEIGHTS

    weights = dict(DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
    versions = dict(trace.model_versions)
    all_items = list(trace.items) + list(trace.removed)
    history = [int(p) for p in trace.history]
    events = list(trace.history_events) if len(trace.history_events) == len(history) else [""] * len(history)
    pids = {it.product_id for it in all_items} | set(history)
    if trace.product_id is not None:
        pids.add(int(trace.product_id))
    products = {p.pk: p for p in Product.objects.filter(pk__in=pids).only("id", "sku", "title")}
    warnings: list[str] = list(trace.warnings)

    def label(pid: int) -> str:
        p = products.get(int(pid))
        return p.title if p is not None else f"product {pid} (deleted)"

    segment = ""
    if trace.customer_id is not None and any(it.engine == "segment_popular" for it in all_items):
        from catalog.models import Customer

        c = Customer.objects.filter(pk=trace.customer_id).values("age_band", "gender", "region").first()
        segment = " / ".join(v for v in (c or {}).values() if v)

    plans = [_plan(it, versions) for it in all_items]
    attributions: dict[int, ItemAttribution] = {}  # id(item trace) -> attribution
    by_version: dict[int, list[_Plan]] = {}
    for plan in plans:
        similarity = trace.strategy in SIMILARITY_STRATEGIES and plan.item.tier == 0
        if plan.version_id is not None and plan.engine in REGISTRY and not similarity:
            by_version.setdefault(plan.version_id, []).append(plan)
        else:
            attributions[id(plan.item)] = _list_attribution(
                plan.item, trace, label, similarity=similarity, segment=segment
            )

    for version_id, group in by_version.items():
        try:
            attributions.update(
                _model_attributions(
                    version_id,
                    group,
                    trace=trace,
                    history=history,
                    events=events,
                    weights=weights,
                    label=label,
                )
            )
        except Exception as exc:  # a deleted artifact, a version from an incompatible engine build...
            logger.warning("explaining with model version %s failed", version_id, exc_info=True)
            warnings.append(
                f"model version {version_id} could not be used ({exc}); its items show the served scores"
            )
            for plan in group:
                attributions[id(plan.item)] = _unavailable(plan.item, version_id, str(exc))

    for plan in plans:
        att = attributions[id(plan.item)]
        served = _source_of(plan.item)
        if (
            plan.version_id is not None
            and att.method != "list-statistics"
            and served is not None
            and served.source == plan.engine
            and abs(att.score - served.score) > SCORE_MISMATCH_TOLERANCE * max(1.0, abs(served.score))
        ):
            warnings.append(
                f"product {plan.item.product_id}: recomputed {plan.engine} score {att.score:.6g} differs from the "
                f"served {served.score:.6g} (the history or the model changed since)"
            )

    def explained(it: ItemTrace) -> ExplainedItem:
        att = attributions[id(it)]
        p = products.get(it.product_id)
        return ExplainedItem(
            product_id=it.product_id,
            sku=p.sku if p is not None else "",
            title=p.title if p is not None else "",
            position=it.slot,
            score=att.score,
            ranking_score=it.score,
            base_value=att.base_value,
            contributions=att.contributions,
            method=att.method,
            score_kind=att.score_kind,
            additive=att.additive,
            summary=att.summary,
            engine=it.engine,
            model_version=_plan(it, versions).version_id,
            sources=it.sources,
            rules=it.rules,
            reason=it.reason,
            removed_by=it.removed_by,
            tier=it.tier,
        )

    return TraceExplanation(
        request_id=trace.request_id,
        widget=trace.widget,
        strategy=trace.strategy,
        model_versions=tuple(trace.model_versions),
        items=tuple(explained(it) for it in trace.items),
        removed=tuple(explained(it) for it in trace.removed),
        customer_id=trace.customer_id,
        visitor=trace.visitor,
        product_id=trace.product_id,
        history=tuple(
            HistoryEntry(
                product_id=pid,
                sku=products[pid].sku if pid in products else "",
                title=label(pid),
                event=ev,
            )
            for pid, ev in zip(history, events, strict=True)
        ),
        experiment=trace.experiment,
        variant=trace.variant,
        fallbacks=trace.fallbacks,
        created_ts=trace.created_ts,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _model_attributions(
    version_id: int,
    group: Sequence[_Plan],
    *,
    trace: DecisionTrace,
    history: list[int],
    events: list[str],
    weights: dict[str, float],
    label: Any,
) -> dict[int, ItemAttribution]:
    from recommender.services import model_version_load

    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        raise LookupError(f"model version {version_id} no longer exists")
    loaded = model_version_load(version=version)
    index = loaded.product_index
    known = [(index[p], ev) for p, ev in zip(history, events, strict=True) if p in index]
    hist_idx = np.asarray([i for i, _ in known], dtype=np.int64)
    hist_events = [ev for _, ev in known]
    user_idx = loaded.user_index.get(f"c:{trace.customer_id}") if trace.customer_id is not None else None
    if user_idx is None and trace.visitor:
        user_idx = loaded.user_index.get(f"v:{trace.visitor}")
    out: dict[int, ItemAttribution] = {}
    explainable = [plan for plan in group if plan.item.product_id in index]
    for plan in group:
        if plan.item.product_id not in index:
            out[id(plan.item)] = _unavailable(
                plan.item, version_id, "the product is newer than this model version"
            )
    if explainable:
        atts = attributions_compute(
            engine_name=loaded.engine_name,
            engine=loaded.engine,
            history_idx=hist_idx,
            history_events=hist_events,
            item_idx=[index[plan.item.product_id] for plan in explainable],
            user_idx=user_idx,
            item_ids=loaded.product_ids,
            item_label=label,
            event_weights=weights,
        )
        for plan, att in zip(explainable, atts, strict=True):
            out[id(plan.item)] = att
    return out


def _list_attribution(
    item: ItemTrace, trace: DecisionTrace, label: Any, *, similarity: bool, segment: str = ""
) -> ItemAttribution:
    src = _source_of(item)
    score = src.score if src is not None else item.score
    rank = src.rank if src is not None else None
    if similarity:
        anchor = trace.product_id
        anchor_text = label(anchor) if anchor is not None else "the shopper's recent items"
        what = "Similarity" if trace.strategy == "similar_items" else "Bought together with"
        return ItemAttribution(
            product_id=item.product_id,
            score=float(score),
            base_value=0.0,
            contributions=(
                Contribution(name=f"{what} {anchor_text}", value=float(score), product_id=anchor),
            ),
            method="list-statistics",
            score_kind=f"{item.engine} similarity score",
            summary=(
                f"{'Similar to' if trace.strategy == 'similar_items' else 'Often bought with'} {anchor_text}: "
                f"{item.engine} score {score:.4g}" + (f", rank {rank}" if rank else "") + "."
            ),
        )
    return list_attribution(
        product_id=item.product_id,
        source=item.engine,
        score=float(score),
        rank=rank,
        segment=segment if item.engine == "segment_popular" else "",
    )


def _unavailable(item: ItemTrace, version_id: int, why: str) -> ItemAttribution:
    src = _source_of(item)
    score = src.score if src is not None else item.score
    return ItemAttribution(
        product_id=item.product_id,
        score=float(score),
        base_value=float(score),
        contributions=(),
        method="list-statistics",
        score_kind=f"served {item.engine} score (not attributed)",
        summary=f"Not attributed: model version {version_id} cannot explain it ({why}).",
    )

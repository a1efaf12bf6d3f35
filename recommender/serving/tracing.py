"""Builds the `DecisionTrace` of a served list from what the pipeline already holds (`TraceDraft`).

The request path only collects references (the sources, the final rule outcome, the shopper's history,
stage timings): no per-item work. `TraceDraft.build()` turns them into the frozen trace; under `make serve`
that happens in the impression writer's thread, together with the JSON serialisation, so recording traces
costs the request almost nothing. The admin preview (and any caller passing `trace=[]`) builds at once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..rules import Candidate, RuleEffect, RuleOutcome
from .candidates import CandidateSource
from .trace import DecisionTrace, ItemTrace, SourceScore


@dataclass
class TraceDraft:
    request_id: uuid.UUID
    widget: str
    strategy: str
    k: int
    sources: list[tuple[int, CandidateSource]]  # (tier, source) in the order they were asked
    outcome: RuleOutcome
    chosen: Sequence[Candidate]
    customer_id: int | None = None
    visitor: str = ""
    product_id: int | None = None
    history: Sequence[int] = ()
    history_events: Sequence[str] = ()
    experiment: str = ""
    variant: str = ""
    cache_hits: list[str] = field(default_factory=list)
    stage_ms: list[tuple[str, float]] = field(default_factory=list)
    warnings: Sequence[str] = ()
    created_ts: float = 0.0

    def build(self) -> DecisionTrace:
        return trace_build(self)


def _source_ranks(
    sources: list[tuple[int, CandidateSource]], wanted: set[int]
) -> dict[int, list[SourceScore]]:
    """Every source's opinion of the wanted items (1-based rank in that source, raw score)."""
    out: dict[int, list[SourceScore]] = defaultdict(list)
    for _, src in sources:
        label = src.name
        for rank, (pid, score) in enumerate(src.items, start=1):
            if pid in wanted:
                out[pid].append(SourceScore(label, float(score), rank, src.model_version_id))
    return out


def trace_build(d: TraceDraft) -> DecisionTrace:
    chosen_ids = [c.product_id for c in d.chosen]
    removed = d.outcome.removed
    wanted = set(chosen_ids) | {c.product_id for c, _ in removed}
    ranks = _source_ranks(d.sources, wanted)
    effects: dict[int, list[RuleEffect]] = defaultdict(list)
    for pid, effect in d.outcome.effects:
        if pid in wanted:
            effects[pid].append(effect)
    items = tuple(
        ItemTrace(
            product_id=c.product_id,
            score=float(c.score),
            engine=c.engine,
            sources=tuple(ranks.get(c.product_id, ())),
            rules=tuple(effects.get(c.product_id, ())),
            slot=slot,
            reason=c.reason,
            tier=c.tier,
        )
        for slot, c in enumerate(d.chosen)
    )
    gone = tuple(
        ItemTrace(
            product_id=c.product_id,
            score=float(c.score),
            engine=c.engine,
            sources=tuple(ranks.get(c.product_id, ())),
            rules=tuple(effects.get(c.product_id, ())),
            slot=None,
            reason=c.reason,
            tier=c.tier,
            removed_by=label,
        )
        for c, label in removed
    )
    versions: dict[str, int] = {}
    because: dict[str, int] = {}
    for _, src in d.sources:
        if src.model_version_id is not None:
            versions.setdefault(src.name, int(src.model_version_id))
        for pid in wanted:
            b = src.because.get(pid)
            if b is not None and str(pid) not in because:
                because[str(pid)] = int(b)
    meta: dict[str, Any] = {}
    if because:
        meta["because"] = because  # product id -> the history product that drove it (reason labels)
    return DecisionTrace(
        request_id=str(d.request_id),
        widget=d.widget,
        strategy=d.strategy,
        k=d.k,
        items=items,
        removed=gone,
        customer_id=d.customer_id,
        visitor=d.visitor,
        product_id=d.product_id,
        history=tuple(int(p) for p in d.history),
        history_events=tuple(d.history_events),
        model_versions=tuple(versions.items()),
        experiment=d.experiment,
        variant=d.variant,
        fallbacks=tuple(src.strategy or src.name for tier, src in d.sources if tier > 0),
        cache_hits=tuple(d.cache_hits),
        stage_ms=tuple(d.stage_ms),
        warnings=tuple(d.warnings),
        created_ts=d.created_ts,
        meta=meta,
    )

"""Stage 5, slotting: the first k survivors of the rules take the widget's slots, in order, as
`Recommendation`s (what crosses app boundaries), each with its impression row when the list is logged.

Propensity: 1.0 (a deterministic policy) unless a bandit slate or the caller's context gives the
probability the policy showed that item there (off-policy evaluation reads it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalog.models import Customer

from ..models import Impression, Widget
from ..rules import Candidate


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
class ImpressionBatch:
    """The impressions of one served list, as plain values: the `Impression` model instances are made by
    `rows()` in the impression writer (its background thread under `make serve`), not on the request path.
    items: (impression id, product id, position, score, propensity, engine, reason, model version id)."""

    request_id: uuid.UUID
    widget_id: int
    customer_id: int | None
    visitor_id: str
    experiment: str
    variant: str
    created_at: datetime
    items: tuple[tuple[uuid.UUID, int, int, float, float, str, str, int | None], ...]

    def rows(self) -> list[Impression]:
        return [
            Impression(
                id=iid,
                request_id=self.request_id,
                widget_id=self.widget_id,
                model_version_id=version_id,
                product_id=pid,
                customer_id=self.customer_id,
                visitor_id=self.visitor_id,
                position=position,
                score=score,
                propensity=propensity,
                engine=engine,
                reason=reason,
                experiment=self.experiment,
                variant=self.variant,
                created_at=self.created_at,
            )
            for iid, pid, position, score, propensity, engine, reason, version_id in self.items
        ]


def slots_fill(
    chosen: Sequence[Candidate],
    *,
    log: bool,
    request_id: uuid.UUID,
    widget: Widget,
    customer: Customer | None,
    visitor: str | None,
    version_by_engine: Mapping[str, int | None],
    propensities: Mapping[int, float],
    context: Mapping[str, Any],
    now: datetime,
) -> tuple[list[Recommendation], ImpressionBatch | None]:
    """The recommendations in slot order and, when `log`, their impressions (see ImpressionBatch)."""
    recs: list[Recommendation] = []
    items = []
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
            items.append(
                (
                    impression_id,
                    cand.product_id,
                    position,
                    score,
                    float(propensities.get(cand.product_id, 1.0)),
                    cand.engine[:32],
                    cand.reason[:160],
                    version_by_engine.get(cand.engine),
                )
            )
    if not log:
        return recs, None
    batch = ImpressionBatch(
        request_id=request_id,
        widget_id=widget.pk,
        customer_id=customer.pk if customer is not None else None,
        visitor_id=(visitor or "")[:64],
        experiment=str(context.get("experiment", ""))[:64],
        variant=str(context.get("variant", ""))[:64],
        created_at=now,
        items=tuple(items),
    )
    return recs, batch

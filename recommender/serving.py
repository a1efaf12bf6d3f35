"""Real-time serving: candidates -> business rules -> rerank -> fallbacks -> impression log.

(First cut: popularity candidates only; the full pipeline follows.)
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from catalog.models import Customer, Event, Product

from .models import Impression, Widget

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recommendation:
    product_id: int
    score: float
    reason: str
    impression_id: uuid.UUID | None
    engine: str
    position: int
    rules: tuple[str, ...] = ()


def recommendations_get(
    *,
    widget: Widget,
    customer: Customer | None = None,
    visitor: str | None = None,
    product: Product | None = None,
    session_items: tuple[int, ...] | list[int] = (),
    k: int | None = None,
    request_id: uuid.UUID | None = None,
    context: dict[str, Any] | None = None,
) -> list[Recommendation]:
    k = int(k or widget.num_items)
    since = timezone.now() - timedelta(days=30)
    rows = (
        Event.objects.filter(timestamp__gte=since, product__is_active=True, product__stock__gt=0)
        .values("product_id")
        .annotate(n=Count("id"))
        .order_by("-n")[: k + 1]
    )
    exclude = {product.pk} if product is not None else set()
    picked = [(r["product_id"], float(r["n"])) for r in rows if r["product_id"] not in exclude][:k]
    if len(picked) < k:
        extra = Product.objects.filter(is_active=True, stock__gt=0).exclude(pk__in=[p for p, _ in picked] + list(exclude))
        picked += [(pk, 0.0) for pk in extra.values_list("pk", flat=True)[: k - len(picked)]]
    request_id = request_id or uuid.uuid4()
    now = timezone.now()
    recs, rows_out = [], []
    for pos, (pid, score) in enumerate(picked):
        imp = Impression(
            request_id=request_id, widget=widget, product_id=pid, customer=customer, visitor_id=visitor or "",
            position=pos, score=score, propensity=1.0, engine="popular", reason="Trending now", created_at=now,
        )
        rows_out.append(imp)
        recs.append(Recommendation(pid, score, "Trending now", imp.id, "popular", pos))
    Impression.objects.bulk_create(rows_out)
    return recs

"""Recommender reads: widget attribution by day, the live preview with explanations, stored decision traces."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from catalog.models import Customer, Event, Order, OrderLine, Product

from . import serving
from .models import DecisionTraceRecord, Impression, Widget
from .serving import widgets as serving_widgets
from .serving.trace import DecisionTrace, ItemTrace

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- attribution


@dataclass(frozen=True)
class WidgetDayStats:
    day: date
    impressions: int
    clicks: int  # impressions with at least one click event carrying their id
    add_to_carts: int  # impressions with an add-to-cart event carrying their id
    conversions: int  # impressions with a placed order line carrying their id
    revenue: Decimal  # sum of those order lines (unit price x quantity)

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def add_to_cart_rate(self) -> float:
        return self.add_to_carts / self.impressions if self.impressions else 0.0

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class WidgetAttribution:
    widget_id: int
    days: tuple[WidgetDayStats, ...]

    def total(self) -> WidgetDayStats:
        return WidgetDayStats(
            day=self.days[-1].day if self.days else timezone.now().date(),
            impressions=sum(d.impressions for d in self.days),
            clicks=sum(d.clicks for d in self.days),
            add_to_carts=sum(d.add_to_carts for d in self.days),
            conversions=sum(d.conversions for d in self.days),
            revenue=sum((d.revenue for d in self.days), Decimal("0")),
        )


def widget_attribution(*, widget: Widget, days: int = 30) -> WidgetAttribution:
    """Per day over the last `days` days: impressions, clicks, add-to-carts, conversions and attributed
    revenue of `widget`. ONE aggregate query (correlated EXISTS / SUM subqueries on the indexed
    impression_id columns), grouped by the impression's day."""
    since = timezone.now() - timedelta(days=days)
    clicked = Exists(Event.objects.filter(impression_id=OuterRef("id"), type=Event.Type.CLICK))
    carted = Exists(Event.objects.filter(impression_id=OuterRef("id"), type=Event.Type.ADD_TO_CART))
    placed = OrderLine.objects.filter(impression_id=OuterRef("id"), order__status=Order.Status.PLACED)
    converted = Exists(placed)
    money = DecimalField(max_digits=14, decimal_places=2)
    revenue = Subquery(
        placed.values("impression_id")
        .annotate(r=Sum(F("unit_price") * F("quantity"), output_field=money))
        .values("r")[:1],
        output_field=money,
    )
    one = Value(1, output_field=IntegerField())
    zero = Value(0, output_field=IntegerField())
    rows = (
        Impression.objects.filter(widget=widget, created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            impressions=Count("id"),
            clicks=Sum(Case(When(clicked, then=one), default=zero)),
            add_to_carts=Sum(Case(When(carted, then=one), default=zero)),
            conversions=Sum(Case(When(converted, then=one), default=zero)),
            revenue=Sum(Coalesce(revenue, Value(Decimal("0"), output_field=money)), output_field=money),
        )
        .order_by("day")
    )
    out = []
    for r in rows:
        out.append(
            WidgetDayStats(
                day=r["day"],
                impressions=r["impressions"],
                clicks=r["clicks"] or 0,
                add_to_carts=r["add_to_carts"] or 0,
                conversions=r["conversions"] or 0,
                revenue=Decimal(r["revenue"] or 0).quantize(Decimal("0.01")),
            )
        )
    return WidgetAttribution(widget_id=widget.pk, days=tuple(out))


# ---------------------------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class PreviewItem:
    rec: serving.Recommendation
    product: Product
    explanation: str = ""
    contributions: tuple[tuple[str, float, float], ...] = ()
    trace: ItemTrace | None = None  # sources with ranks, every rule's effect with positions


@dataclass(frozen=True)
class Preview:
    items: tuple[PreviewItem, ...]
    removed: tuple[tuple[Product | None, str, str], ...]  # (product, engine, rule)
    trace: DecisionTrace
    customer: Customer | None
    product: Product | None

    @property
    def sources(self) -> list[str]:
        """Candidate sources in the order they were asked ("ease (cached)", "trending", ...)."""
        names = list(dict.fromkeys(s.source for i in self.trace.items for s in i.sources))
        hits = {h.split(":", 1)[1] for h in self.trace.cache_hits if h.startswith("candidates:")}
        return [f"{n} (cached)" if n in hits else n for n in names]

    @property
    def model_version_id(self) -> int | None:
        return self.trace.model_versions[0][1] if self.trace.model_versions else None

    @property
    def cached(self) -> bool:
        return any(h.startswith("candidates:") for h in self.trace.cache_hits)


def widget_preview(
    *,
    widget: Widget,
    customer: Customer | None = None,
    visitor: str | None = None,
    product: Product | None = None,
    session_items: tuple[int, ...] = (),
    k: int | None = None,
    explain: bool = True,
) -> Preview:
    """What this shopper would get from `widget` now (no impressions logged), with its decision trace (the
    rules that touched each item and how, what the rules removed) and SHAP explanations for items the
    hybrid engine ranked."""
    traces: list[DecisionTrace] = []
    recs = serving.recommendations_get(
        widget=widget,
        customer=customer,
        visitor=visitor,
        product=product,
        session_items=session_items,
        k=k,
        log=False,
        trace=traces,
        context={"cart": session_items} if widget.placement in ("cart", "checkout") else None,
    )
    trace = traces[0]
    removed_ids = [i.product_id for i in trace.removed]
    products = Product.objects.select_related("category", "brand").in_bulk(
        [r.product_id for r in recs] + removed_ids
    )
    explanations: dict[int, Any] = {}
    if explain and any(r.engine == "hybrid" for r in recs):
        explanations = _hybrid_explanations(widget=widget, customer=customer, recs=recs, trace=trace)
    items = []
    for r in recs:
        if r.product_id not in products:
            continue
        exp = explanations.get(r.product_id)
        items.append(
            PreviewItem(
                rec=r,
                product=products[r.product_id],
                explanation=exp.summary() if exp is not None else "",
                contributions=tuple(exp.contributions[:6]) if exp is not None else (),
                trace=trace.item(r.product_id),
            )
        )
    removed = tuple((products.get(i.product_id), i.engine, i.removed_by) for i in trace.removed)
    return Preview(items=tuple(items), removed=removed, trace=trace, customer=customer, product=product)


def _hybrid_explanations(
    *, widget: Widget, customer: Customer | None, recs: list, trace: DecisionTrace
) -> dict[int, Any]:
    """SHAP explanations (recommender.explain) of the hybrid-ranked items, keyed by product id, for the
    history the engines saw (the trace's)."""
    try:
        from .explain import explain_many
    except ImportError:
        return {}
    version = serving.model_version_for(widget=widget, strategy=widget.strategy)
    if version is None or version.engine != "hybrid":
        return {}
    loaded = serving.model_load(version)
    if loaded is None:
        return {}
    hist_idx = serving.product_indices(loaded, trace.history)
    wanted = [r.product_id for r in recs if r.engine == "hybrid" and r.product_id in loaded.product_index]
    if not wanted:
        return {}
    user = loaded.user_index.get(serving.user_key_customer(customer.pk)) if customer is not None else None
    try:
        exps = explain_many(
            loaded.engine, hist_idx, np.asarray([loaded.product_index[p] for p in wanted]), user=user
        )
    except Exception:
        logger.warning("SHAP explanation failed for widget %s", widget.slug, exc_info=True)
        return {}
    return dict(zip(wanted, exps, strict=False))


# ---------------------------------------------------------------------------------------------- widgets
# The enabled widget as serving reads it lives with serving (recommender.serving.widgets); re-exported here
# for the views and the admin. (serving never imports this module: no cycle.)

widget_get_enabled = serving_widgets.widget_get_enabled
widget_cache_key = serving_widgets.widget_cache_key
widget_cache_forget = serving_widgets.widget_cache_forget


# ---------------------------------------------------------------------------------------------- decision traces


def decision_trace_get(*, request_id: uuid.UUID | str) -> DecisionTrace | None:
    """The stored decision trace of one served list (its impressions' `request_id`), or None when it was
    never recorded (RECSITE_TRACE_RECORD off, an admin preview) or has been purged. A malformed id is None too."""
    try:
        rid = uuid.UUID(str(request_id))
    except (TypeError, ValueError, AttributeError):
        return None
    row = DecisionTraceRecord.objects.filter(request_id=rid).values_list("trace", flat=True).first()
    return DecisionTrace.from_json(row) if row is not None else None


def decision_traces_list(
    *,
    customer_id: int | None = None,
    visitor: str | None = None,
    widget: str | None = None,
    limit: int = 50,
) -> list[DecisionTrace]:
    """Stored decision traces, newest first, of a customer and/or a visitor (either matches when both are
    given), optionally of one widget (slug); at most `limit` (1..1000). With neither customer nor visitor,
    the newest traces of the widget (or of all widgets)."""
    limit = max(1, min(int(limit), 1000))
    qs = DecisionTraceRecord.objects.all()
    who = Q()
    if customer_id is not None:
        who |= Q(customer_id=customer_id)
    if visitor:
        who |= Q(visitor_id=visitor[:64])
    if who:
        qs = qs.filter(who)
    if widget:
        qs = qs.filter(widget__slug=widget)
    rows = qs.order_by("-created_at", "-id").values_list("trace", flat=True)[:limit]
    return [DecisionTrace.from_json(t) for t in rows]

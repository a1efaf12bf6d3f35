"""Reads for the support console (no writes). Every function takes keyword arguments, returns plain frozen
dataclasses / dicts, and raises `ShopperNotFound` / `ValueError` with a message a support person can act on.

Explanations come from `recommender.explanations.trace_explain(trace=...)`; "what they would see now" is
`recommendations_get(..., log=False, trace=[...])` for the same widget, shopper and anchor product,
explained the same way. Neither writes impressions or traces.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import Count, Q
from django.urls import reverse

from catalog.models import Customer, Event, Order, Product
from catalog.selectors import customer_get
from recommender.models import DecisionTraceRecord, Impression, ModelVersion, Widget
from recommender.selectors import decision_trace_get
from recommender.serving.trace import DecisionTrace, ItemTrace, SourceScore

from .timeline import TimelineEntry, timeline_sources

log = logging.getLogger(__name__)

LOOKUP_KINDS: dict[str, str] = {
    "auto": "anything (email, customer, order number, impression id)",
    "email": "email address",
    "customer": "customer id or external id",
    "order": "order number",
    "impression": "impression or request id",
}
_DIGITS = re.compile(r"#?(\d{1,18})")


class ShopperNotFound(LookupError):
    """Nothing matched; str() is the message to show."""


@dataclass(frozen=True)
class ShopperRef:
    """One shopper a lookup found: a customer, or an anonymous browser (visitor id)."""

    customer_id: int | None
    visitor_id: str
    label: str
    matched_by: str
    request_id: str = ""  # set when the match was an impression / request id

    @property
    def key(self) -> tuple[int | None, str]:
        return (self.customer_id, "" if self.customer_id else self.visitor_id)


@dataclass(frozen=True)
class Shopper:
    customer: Customer | None
    visitor_ids: tuple[str, ...]  # the customer's browsers, or the one anonymous visitor
    emails: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.customer is not None:
            return f"customer {self.customer.external_id} (#{self.customer.pk})"
        return f"anonymous visitor {self.visitor_ids[0]}"


# ------------------------------------------------------------------------------------------ lookup


def shoppers_find(*, query: str, kind: str = "auto", limit: int = 20) -> list[ShopperRef]:
    """Shoppers matching `query` read as `kind` (see LOOKUP_KINDS). Raises ValueError for an empty query,
    an unknown kind or a query that cannot be of that kind, ShopperNotFound when nothing matches."""
    q = (query or "").strip()
    if not q:
        raise ValueError("Type an email, a customer id, an order number or an impression id.")
    if len(q) > 254:
        raise ValueError("That is too long for any id or email (254 characters at most).")
    if kind not in LOOKUP_KINDS:
        raise ValueError(f"Unknown lookup kind {kind!r}; choose one of: {', '.join(LOOKUP_KINDS)}.")
    digits = _DIGITS.fullmatch(q)
    as_uuid = _uuid(q)
    if kind == "email" and "@" not in q:
        raise ValueError(f"{q!r} is not an email address (it has no @).")
    if kind == "order" and not digits:
        raise ValueError(f"An order number is digits, e.g. 1042 or #1042 (got {q!r}).")
    if kind == "impression" and as_uuid is None:
        raise ValueError(
            f"An impression or request id looks like 6d3c9d2e-1c3b-4c57-9d63-5c9f2f1a0b11 (got {q!r})."
        )
    found: list[ShopperRef] = []
    if kind in ("auto", "email") and "@" in q:
        found += _by_email(q)
    if kind in ("auto", "customer"):
        found += _by_customer(q, digits)
    if kind in ("auto", "order") and digits:
        found += _by_order(int(digits.group(1)))
    if kind in ("auto", "impression") and as_uuid is not None:
        found += _by_impression(as_uuid)
    unique: dict[tuple[int | None, str], ShopperRef] = {}
    for ref in found:
        unique.setdefault(ref.key, ref)
    if not unique:
        raise ShopperNotFound(f"No shopper matches {q!r} as {LOOKUP_KINDS[kind]}.")
    return list(unique.values())[:limit]


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _customer_ref(customer: Customer, matched_by: str, request_id: str = "") -> ShopperRef:
    return ShopperRef(
        customer.pk, "", f"customer {customer.external_id} (#{customer.pk})", matched_by, request_id
    )


def _visitor_ref(visitor_id: str, matched_by: str, request_id: str = "") -> ShopperRef:
    return ShopperRef(None, visitor_id, f"anonymous visitor {visitor_id}", matched_by, request_id)


def _by_email(email: str) -> list[ShopperRef]:
    out = [_customer_ref(c, "account email") for c in Customer.objects.filter(user__email__iexact=email)[:20]]
    orders = Order.objects.filter(email__iexact=email).select_related("customer").order_by("-created_at")[:50]
    for o in orders:
        if o.customer is not None:
            out.append(_customer_ref(o.customer, f"email on order #{o.pk}"))
        elif o.visitor_id:
            out.append(_visitor_ref(o.visitor_id, f"email on order #{o.pk}"))
    return out


def _by_customer(text: str, digits: re.Match | None) -> list[ShopperRef]:
    by_external = customer_get(external_id=text)
    out = [_customer_ref(by_external, "external id")] if by_external is not None else []
    if digits:
        out += [_customer_ref(c, "customer id") for c in Customer.objects.filter(pk=int(digits.group(1)))]
    return out


def _by_order(number: int) -> list[ShopperRef]:
    order = Order.objects.filter(pk=number).select_related("customer").first()
    if order is None:
        return []
    if order.customer is not None:
        return [_customer_ref(order.customer, f"order #{order.pk}")]
    if order.visitor_id:
        return [_visitor_ref(order.visitor_id, f"order #{order.pk}")]
    return []


def _by_impression(value: uuid.UUID) -> list[ShopperRef]:
    row = (
        Impression.objects.filter(Q(pk=value) | Q(request_id=value))
        .select_related("customer")
        .order_by("position")
        .first()
    )
    if row is not None:
        rid = str(row.request_id)
        if row.customer is not None:
            return [_customer_ref(row.customer, f"impression {value}", rid)]
        if row.visitor_id:
            return [_visitor_ref(row.visitor_id, f"impression {value}", rid)]
    rec = DecisionTraceRecord.objects.filter(request_id=value).select_related("customer").first()
    if rec is not None:
        if rec.customer is not None:
            return [_customer_ref(rec.customer, f"request {value}", str(value))]
        if rec.visitor_id:
            return [_visitor_ref(rec.visitor_id, f"request {value}", str(value))]
    return []


def shopper_get(*, customer_id: int | None = None, visitor: str = "") -> Shopper:
    """The shopper behind a console URL. Raises ShopperNotFound."""
    if customer_id is not None:
        customer = Customer.objects.filter(pk=customer_id).select_related("user").first()
        if customer is None:
            raise ShopperNotFound(f"No customer #{customer_id} (deleted, or a mistyped address).")
        visitors = tuple(customer.visitors.values_list("id", flat=True)[:50])
        emails = {customer.user.email} if customer.user and customer.user.email else set()
        emails |= set(customer.orders.exclude(email="").values_list("email", flat=True).distinct()[:5])
        return Shopper(customer, visitors, tuple(sorted(emails)))
    visitor = (visitor or "").strip()[:64]
    if not visitor:
        raise ShopperNotFound("Give a customer or a visitor id.")
    known = (
        Event.objects.filter(visitor_id=visitor).exists()
        or Impression.objects.filter(visitor_id=visitor).exists()
        or Order.objects.filter(visitor_id=visitor).exists()
        or DecisionTraceRecord.objects.filter(visitor_id=visitor).exists()
    )
    if not known:
        raise ShopperNotFound(f"No activity recorded for visitor {visitor!r}.")
    emails = tuple(
        Order.objects.filter(visitor_id=visitor).exclude(email="").values_list("email", flat=True)[:5]
    )
    return Shopper(None, (visitor,), tuple(sorted(set(emails))))


# ---------------------------------------------------------------------------------------- timeline


def _owner(customer_id: int | None, visitors: Sequence[str]) -> Q | None:
    """Rows of this customer or these browsers; None when neither is given (never "everybody's")."""
    if customer_id is None and not visitors:
        return None
    return (Q(customer_id=customer_id) if customer_id is not None else Q()) | (
        Q(visitor_id__in=list(visitors)) if visitors else Q()
    )


def _events(customer_id: int | None, visitors: Sequence[str], limit: int) -> list[TimelineEntry]:
    q = _owner(customer_id, visitors)
    if q is None:
        return []
    rows = Event.objects.filter(q).select_related("product").order_by("-timestamp", "-id")[:limit]
    out = []
    for e in rows:
        what = e.product.title if e.product_id else f"“{e.query}”"
        detail = f"from recommendation {e.impression_id}" if e.impression_id else ""
        out.append(
            TimelineEntry(
                e.timestamp,
                "event",
                f"{e.get_type_display()}: {what}",
                detail,
                reverse("admin:catalog_event_change", args=[e.pk]),
            )
        )
    return out


def _orders(customer_id: int | None, visitors: Sequence[str], limit: int) -> list[TimelineEntry]:
    q = _owner(customer_id, visitors)
    if q is None:
        return []
    rows = Order.objects.filter(q).annotate(n_lines=Count("lines")).order_by("-created_at")[:limit]
    return [
        TimelineEntry(
            o.created_at,
            "order",
            f"Order #{o.pk}: {o.total} {o.currency}, {o.n_lines} line{'s' if o.n_lines != 1 else ''}",
            o.get_status_display(),
            reverse("admin:catalog_order_change", args=[o.pk]),
        )
        for o in rows
    ]


def _recommendations(customer_id: int | None, visitors: Sequence[str], limit: int) -> list[TimelineEntry]:
    q = _owner(customer_id, visitors)
    if q is None:
        return []
    return [
        TimelineEntry(
            s.at,
            "recommendations",
            f"Shown {len(s.product_ids)} item{'s' if len(s.product_ids) != 1 else ''} in {s.widget_title or s.widget}",
            ("trace stored" if s.traced else "no stored trace")
            + (f"; experiment {s.experiment}/{s.variant}" if s.experiment else ""),
            reverse("support:trace", args=[s.request_id]),
            s.request_id,
        )
        for s in _lists(q, limit)
    ]


BUILTIN_SOURCES = (
    ("events", "catalog.view_event", _events),
    ("orders", "catalog.view_order", _orders),
    ("recommendations", "recommender.view_impression", _recommendations),
)


def shopper_timeline(
    *, shopper: Shopper, permissions: Iterable[str] | None = None, limit: int = 100
) -> list[TimelineEntry]:
    """Events, orders, recommendation lists and every registered source's entries (chat), newest first,
    at most `limit` of each kind. `permissions`: the viewer's permission names (None: all); sources the
    viewer may not see are left out."""
    allowed = None if permissions is None else set(permissions)
    customer_id = shopper.customer.pk if shopper.customer is not None else None
    sources = [(n, p, f) for n, p, f in BUILTIN_SOURCES] + [
        (s.name, s.permission, s.fetch) for s in timeline_sources()
    ]
    entries: list[TimelineEntry] = []
    for _name, permission, fetch in sources:
        if allowed is not None and permission not in allowed:
            continue
        entries.extend(fetch(customer_id, shopper.visitor_ids, limit))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries


@dataclass(frozen=True)
class ShownList:
    """One recommendation list a shopper was shown (its impressions share a request id)."""

    request_id: str
    widget: str
    widget_title: str
    at: datetime
    product_ids: tuple[int, ...]  # in slot order
    traced: bool
    experiment: str = ""
    variant: str = ""


def _lists(q: Q, limit: int) -> list[ShownList]:
    rows = (
        Impression.objects.filter(q)
        .order_by("-created_at", "request_id", "position")
        .values_list(
            "request_id",
            "widget__slug",
            "widget__title",
            "created_at",
            "product_id",
            "position",
            "experiment",
            "variant",
        )[: limit * 24]
    )
    grouped: dict[uuid.UUID, list[tuple]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    ids = list(grouped)[:limit]
    traced = set(DecisionTraceRecord.objects.filter(request_id__in=ids).values_list("request_id", flat=True))
    out = []
    for rid in ids:
        items = sorted(grouped[rid], key=lambda r: r[5])
        first = items[0]
        out.append(
            ShownList(
                str(rid),
                first[1],
                first[2],
                first[3],
                tuple(r[4] for r in items),
                rid in traced,
                first[6],
                first[7],
            )
        )
    return out


def shopper_lists(*, shopper: Shopper, limit: int = 50) -> list[ShownList]:
    """The recommendation lists the shopper was shown, newest first."""
    q = _owner(shopper.customer.pk if shopper.customer is not None else None, shopper.visitor_ids)
    return [] if q is None else _lists(q, max(1, min(int(limit), 500)))


# ---------------------------------------------------------------------------------- explained traces


@dataclass(frozen=True)
class ExplainedTrace:
    """A decision trace with its explanation (`trace_explain(...).as_json()`), or the reason there is none."""

    trace: DecisionTrace
    explanation: dict[str, Any] | None
    error: str = ""


def trace_explanation(*, trace: DecisionTrace) -> ExplainedTrace:
    """Explain a trace with `recommender.explanations.trace_explain`. An explainer failure (a model version
    whose artifact is gone, say) is reported in `error` and logged; the trace itself is still shown."""
    try:
        from recommender.explanations import trace_explain
    except ImportError:
        return ExplainedTrace(
            trace, None, "Explanations are not available: recommender.explanations is missing."
        )
    try:
        return ExplainedTrace(trace, trace_explain(trace=trace).as_json())
    except Exception as exc:  # shown on the page instead of a 500
        log.warning("explaining trace %s failed: %s", trace.request_id, exc, exc_info=True)
        return ExplainedTrace(trace, None, f"Could not explain this list: {exc}")


def trace_then_get(*, request_id: str) -> ExplainedTrace:
    """The stored trace of a served list, explained. Raises ShopperNotFound with the reason when there is
    no stored trace."""
    if _uuid(str(request_id)) is None:
        raise ShopperNotFound(f"{request_id!r} is not a request id (it looks like 6d3c9d2e-1c3b-...).")
    trace = decision_trace_get(request_id=request_id)
    if trace is None:
        shown = Impression.objects.filter(request_id=request_id).exists()
        raise ShopperNotFound(
            f"No decision trace is stored for request {request_id}: "
            + (
                "it was shown before traces were recorded, or its trace was purged after the retention period."
                if shown
                else "no list with this request id was shown."
            )
        )
    return trace_explanation(trace=trace)


def trace_now_get(*, trace: DecisionTrace) -> ExplainedTrace:
    """What the same shopper would see now in the same widget (same anchor product and k), explained the
    same way. Logs nothing. Raises ShopperNotFound when the widget is gone."""
    from recommender.serving import recommendations_get

    widget = Widget.objects.filter(slug=trace.widget).first()
    if widget is None:
        raise ShopperNotFound(f"Widget {trace.widget!r} no longer exists, so there is no list to show now.")
    customer = Customer.objects.filter(pk=trace.customer_id).first() if trace.customer_id else None
    product = Product.objects.filter(pk=trace.product_id).first() if trace.product_id else None
    collected: list[DecisionTrace] = []
    recommendations_get(
        widget=widget,
        customer=customer,
        visitor=trace.visitor or None,
        product=product,
        k=max(1, min(int(trace.k or widget.num_items), 100)),
        log=False,
        trace=collected,
    )
    if not collected:
        raise ShopperNotFound("Serving returned no decision trace for the list shown now.")
    return trace_explanation(trace=collected[-1])


def products_brief(*, product_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """{product id: {"sku", "title", "url"}} for display."""
    ids = {int(p) for p in product_ids if p is not None}
    return {
        p["id"]: {
            "sku": p["sku"],
            "title": p["title"],
            "url": reverse("admin:catalog_product_change", args=[p["id"]]),
        }
        for p in Product.objects.filter(pk__in=ids).values("id", "sku", "title")
    }


def trace_items_view(*, explained: ExplainedTrace) -> list[dict[str, Any]]:
    """One row per shown item, in slot order, joining the trace (sources, rules, reason) with the
    explanation item (base value, contributions, summary) and the product's sku / title."""
    trace = explained.trace
    by_pid = {int(i["product_id"]): i for i in (explained.explanation or {}).get("items", ())}
    removed_by_pid = {
        int(i["product_id"]): i
        for i in (explained.explanation or {}).get("removed", ())
        if isinstance(i, dict) and "product_id" in i
    }
    history_ids = list(trace.history)
    products = products_brief(product_ids=[i.product_id for i in trace.items + trace.removed] + history_ids)
    rows = []
    for item in sorted(trace.items, key=lambda i: (i.slot is None, i.slot or 0)):
        rows.append(_row(item, by_pid.get(item.product_id), products))
    removed = [_row(item, removed_by_pid.get(item.product_id), products) for item in trace.removed]
    return rows + removed


def _row(item: Any, exp: dict[str, Any] | None, products: dict[int, dict[str, Any]]) -> dict[str, Any]:
    contributions = list((exp or {}).get("contributions", ()))
    history = [
        c for c in contributions if c.get("product_id") is not None and c.get("product_id") in products
    ]
    return {
        "product_id": item.product_id,
        "product": products.get(
            item.product_id, {"sku": "?", "title": f"product {item.product_id} (deleted)", "url": ""}
        ),
        "slot": item.slot,
        "score": item.score,
        "engine": item.engine,
        "reason": item.reason,
        "tier": item.tier,
        "removed_by": item.removed_by,
        "sources": item.sources,
        "rules": item.rules,
        "features": item.features,
        "explanation": exp,
        "contributions": contributions,
        "history": [{**c, "product": products[c["product_id"]]} for c in history],
    }


def trace_compare(*, then: ExplainedTrace, now: ExplainedTrace | None) -> list[dict[str, Any]]:
    """Slot by slot: the product shown then and the one shown now (ids, or None past the end)."""
    a = [i.product_id for i in sorted(then.trace.items, key=lambda i: i.slot or 0)]
    b = [i.product_id for i in sorted(now.trace.items, key=lambda i: i.slot or 0)] if now else []
    products = products_brief(product_ids=a + b)
    rows = []
    for slot in range(max(len(a), len(b))):
        pa = a[slot] if slot < len(a) else None
        pb = b[slot] if slot < len(b) else None
        rows.append(
            {
                "slot": slot,
                "then": products.get(pa) if pa else None,
                "now": products.get(pb) if pb else None,
                "same": pa == pb,
                "still_shown": pa in b if pa else False,
            }
        )
    return rows


# ----------------------------------------------------------------------------- global, per model version


@dataclass
class FeatureStat:
    name: str
    mean_abs: float = 0.0
    mean: float = 0.0
    n: int = 0
    points: list[tuple[float, float | None]] = field(default_factory=list)  # (contribution, feature value)


@dataclass
class ModelAttributions:
    """Attributions of one model version's items over a sample of lists (stored, or recomputed)."""

    version: ModelVersion
    n_lists: int
    n_items: int
    features: list[FeatureStat]  # largest mean |contribution| first
    methods: tuple[str, ...] = ()
    score_kinds: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    source: str = ""  # "stored lists" or "recent shoppers (recomputed)"


HISTORY_GROUP = "history item"


def _group_name(c: dict[str, Any]) -> str:
    """Contributions of history items are grouped by event type: each history item is a different
    "feature" per shopper, so their mean only means something per kind of interaction."""
    if c.get("product_id") is not None:
        event = c.get("event") or ""
        return f"{HISTORY_GROUP} ({event})" if event else HISTORY_GROUP
    return str(c.get("name", "?"))


SOURCES = {"auto", "traces", "shoppers"}


def model_version_attributions(
    *, version: ModelVersion, sample: int = 100, source: str = "auto", scan: int = 5000
) -> ModelAttributions:
    """Mean |contribution| per feature (and every contribution, for the summary plot) of the items this
    version proposed, over up to `sample` lists:

    * source "traces": the newest stored lists that used the version (scanning at most `scan` traces);
      items a fallback filled in are left out;
    * source "shoppers": the version's top 10 recomputed now for the `sample` customers with the most
      recent activity (their histories as serving reads them): for a version that served nobody yet;
    * "auto": stored lists, or recent shoppers when no stored list used the version.

    Raises ValueError for an unknown source."""
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; choose one of: {', '.join(sorted(SOURCES))}.")
    sample = max(1, min(int(sample), 1000))
    res = ModelAttributions(version, 0, 0, [])
    if source in ("auto", "traces"):
        rows = DecisionTraceRecord.objects.order_by("-created_at", "-id").values_list("trace", flat=True)[
            :scan
        ]
        used = (
            DecisionTrace.from_json(raw)
            for raw in rows
            if any(int(v) == version.pk for _e, v in raw.get("model_versions", ()))
        )
        res = _aggregate(version, used, sample, "stored lists")
    if source == "shoppers" or (source == "auto" and res.n_lists == 0):
        res = _aggregate(version, _recomputed_traces(version, sample), sample, "recent shoppers (recomputed)")
    return res


def _recomputed_traces(version: ModelVersion, n: int) -> Iterable[DecisionTrace]:
    """Traces of the version's top 10 for the n most recently active customers (personalisation allowed),
    built as serving would record them, so that `trace_explain` explains them the same way."""
    from recommender.services import ModelArtifactError, model_version_load
    from recommender.serving import shopper_load

    try:
        loaded = model_version_load(version=version)
    except ModelArtifactError as exc:
        log.warning("cannot load %s for explanations: %s", version, exc)
        return
    recent = (
        Event.objects.filter(customer__isnull=False)
        .exclude(customer__consent=Customer.Consent.NONE)
        .order_by("-timestamp")
        .values_list("customer_id", flat=True)[: n * 50]
    )
    seen: list[int] = []
    for cid in recent:
        if cid not in seen:
            seen.append(cid)
        if len(seen) >= n:
            break
    for customer in Customer.objects.filter(pk__in=seen):
        shopper = shopper_load(
            customer=customer, visitor=None, session_items=(), context={}, need_purchases=False
        )
        pairs = [(loaded.product_index.get(p), e) for p, e in zip(shopper.history, shopper.history_events)]
        pairs = [(i, e) for i, e in pairs if i is not None]
        if not pairs:
            continue
        hist = np.asarray([i for i, _ in pairs], dtype=np.int64)
        user = loaded.user_index.get(f"c:{customer.pk}")
        users = None if user is None else np.asarray([user], dtype=np.int64)
        try:
            idx, scores = loaded.engine.recommend([hist], 10, exclude=[hist], users=users)
        except Exception as exc:  # an engine that cannot score this history: skip the shopper, say why
            log.warning("%s could not recommend for customer %s: %s", version, customer.pk, exc)
            continue
        items = tuple(
            ItemTrace(
                product_id=int(loaded.product_ids[i]),
                score=float(sc),
                engine=version.engine,
                sources=(SourceScore(version.engine, float(sc), rank + 1, version.pk),),
                slot=rank,
            )
            for rank, (i, sc) in enumerate(zip(np.asarray(idx[0]).tolist(), np.asarray(scores[0]).tolist()))
            if i >= 0 and math.isfinite(sc)
        )
        yield DecisionTrace(
            request_id=str(uuid.uuid4()),
            widget="",
            strategy="personalized",
            k=10,
            items=items,
            customer_id=customer.pk,
            history=tuple(int(loaded.product_ids[i]) for i, _ in pairs),
            history_events=tuple(e for _, e in pairs),
            model_versions=((version.engine, version.pk),),
        )


def _aggregate(
    version: ModelVersion, traces: Iterable[DecisionTrace], sample: int, source: str
) -> ModelAttributions:
    stats: dict[str, FeatureStat] = {}
    n_lists = n_items = 0
    methods: set[str] = set()
    kinds: set[str] = set()
    errors: list[str] = []
    for trace in traces:
        if n_lists >= sample:
            break
        explained = trace_explanation(trace=trace)
        if explained.explanation is None:
            if explained.error not in errors:
                errors.append(explained.error)
            continue
        n_lists += 1
        for exp in explained.explanation.get("items", ()):
            item = trace.item(int(exp["product_id"]))
            if item is None or not _from_version(item, version):
                continue
            n_items += 1
            methods.add(str(exp.get("method", "")))
            kinds.add(str(exp.get("score_kind", "")))
            for c in exp.get("contributions", ()):
                value = c.get("value")
                if not isinstance(value, int | float) or not math.isfinite(value):
                    continue  # an attribution the explainer could not compute (JSON null)
                value = float(value)
                st = stats.setdefault(_group_name(c), FeatureStat(_group_name(c)))
                st.n += 1
                st.mean_abs += abs(value)
                st.mean += value
                fv = c.get("feature_value")
                st.points.append(
                    (value, float(fv) if isinstance(fv, int | float) and math.isfinite(fv) else None)
                )
    for st in stats.values():
        st.mean_abs /= max(1, n_items)  # absent = 0 contribution for that item
        st.mean /= max(1, n_items)
    features = sorted(stats.values(), key=lambda s: -s.mean_abs)
    return ModelAttributions(
        version,
        n_lists,
        n_items,
        features,
        tuple(sorted(methods - {""})),
        tuple(sorted(kinds - {""})),
        tuple(errors),
        source,
    )


def _from_version(item: Any, version: ModelVersion) -> bool:
    if any(s.model_version_id == version.pk for s in item.sources):
        return True
    if any(s.model_version_id is not None for s in item.sources):
        return False
    return item.tier == 0 and item.engine == version.engine


# ------------------------------------------------------------------------------------ explain command


def customer_trace_get(
    *, customer_external_id: str, widget_slug: str, impression_id: str = ""
) -> DecisionTrace:
    """The decision trace behind `manage.py explain`: the stored trace of the list that contained
    `impression_id` (which must have been shown to this customer in this widget), or, without an
    impression, the list the customer would be shown now (served with log=False). Raises ShopperNotFound
    with the reason for an unknown customer, widget or impression, or a trace that is not stored."""
    customer = customer_get(external_id=customer_external_id)
    if customer is None:
        raise ShopperNotFound(f"No customer with external id {customer_external_id!r}.")
    widget = Widget.objects.filter(slug=widget_slug).first()
    if widget is None:
        slugs = ", ".join(Widget.objects.order_by("slug").values_list("slug", flat=True)[:30]) or "none yet"
        raise ShopperNotFound(f"No widget {widget_slug!r}. Widgets: {slugs}.")
    if not impression_id:
        from recommender.serving import recommendations_get

        collected: list[DecisionTrace] = []
        recommendations_get(widget=widget, customer=customer, log=False, trace=collected)
        if not collected:
            raise ShopperNotFound("Serving returned no decision trace.")
        return collected[-1]
    value = _uuid(impression_id)
    if value is None:
        raise ShopperNotFound(
            f"--impression must be an impression id like 6d3c9d2e-1c3b-4c57-9d63-5c9f2f1a0b11 (got {impression_id!r})."
        )
    impression = Impression.objects.filter(pk=value).select_related("widget", "customer").first()
    if impression is None:
        raise ShopperNotFound(f"No impression {impression_id}.")
    if impression.customer_id != customer.pk:
        shown_to = impression.customer.external_id if impression.customer else "an anonymous visitor"
        raise ShopperNotFound(
            f"Impression {impression_id} was not shown to customer {customer_external_id!r} (it was shown to {shown_to})."
        )
    if impression.widget_id != widget.pk:
        raise ShopperNotFound(
            f"Impression {impression_id} belongs to widget {impression.widget.slug!r}, not {widget_slug!r}."
        )
    trace = decision_trace_get(request_id=impression.request_id)
    if trace is None:
        raise ShopperNotFound(
            f"No decision trace is stored for impression {impression_id} (request {impression.request_id}): it "
            "was shown before traces were recorded, or its trace was purged after the retention period."
        )
    return trace

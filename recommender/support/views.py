"""Admin views of the support console: thin adapters over recommender.support.selectors.

Mounted at /admin/support/ (recsite/urls.py), each wrapped in `admin.site.admin_view` (login, staff,
CSRF, no caching) and checking its own permissions (recsite/roles.py). Bad or unknown input gives the page
again with a message saying what to type, never a 500.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe

from recommender.models import ModelVersion
from recsite.roles import VIEW_EXPLANATIONS

from . import charts
from .selectors import (
    LOOKUP_KINDS,
    SOURCES,
    ExplainedTrace,
    ShopperNotFound,
    model_version_attributions,
    products_brief,
    shopper_get,
    shopper_lists,
    shopper_timeline,
    shoppers_find,
    trace_compare,
    trace_items_view,
    trace_now_get,
    trace_then_get,
)

SHOPPER_PERMS = (VIEW_EXPLANATIONS, "catalog.view_customer")
MODEL_PERMS = (VIEW_EXPLANATIONS, "recommender.view_modelversion")
# Lists explained per model page by default: a hybrid's TreeSHAP over recomputed lists costs about 0.25 s
# a list on the demo machine (measured, small demo), so 30 keeps the page under 10 s.
DEFAULT_SAMPLE = 30


def _guard(request: HttpRequest, perms: tuple[str, ...]) -> None:
    if not request.user.has_perms(perms):
        raise PermissionDenied


def _render(
    request: HttpRequest, template: str, title: str, status: int = 200, **context: Any
) -> HttpResponse:
    ctx = {**admin.site.each_context(request), "title": title, **context}
    return TemplateResponse(request, f"admin/support/{template}", ctx, status=status)


def _shopper_url(customer_id: int | None, visitor: str) -> str:
    if customer_id is not None:
        return reverse("support:customer", args=[customer_id])
    return reverse("support:visitor", args=[visitor])


# ------------------------------------------------------------------------------------------ shoppers


def lookup_view(request: HttpRequest) -> HttpResponse:
    _guard(request, SHOPPER_PERMS)
    query = request.GET.get("q", "").strip()
    kind = request.GET.get("kind", "auto")
    error, matches = "", []
    if "q" in request.GET:
        try:
            matches = shoppers_find(query=query, kind=kind)
        except (ValueError, ShopperNotFound) as exc:
            error = str(exc)
        else:
            if len(matches) == 1:
                m = matches[0]
                url = _shopper_url(m.customer_id, m.visitor_id)
                return HttpResponseRedirect(f"{url}?rid={m.request_id}" if m.request_id else url)
    rows = [{"ref": m, "url": _shopper_url(m.customer_id, m.visitor_id)} for m in matches]
    return _render(
        request,
        "lookup.html",
        "Support: find a shopper",
        status=200,
        query=query,
        kind=kind,
        kinds=LOOKUP_KINDS.items(),
        error=error,
        matches=rows,
    )


def _shopper_page(request: HttpRequest, *, customer_id: int | None = None, visitor: str = "") -> HttpResponse:
    _guard(request, SHOPPER_PERMS)
    try:
        shopper = shopper_get(customer_id=customer_id, visitor=visitor)
    except ShopperNotFound as exc:
        return _render(
            request,
            "lookup.html",
            "Support: find a shopper",
            status=404,
            error=str(exc),
            kinds=LOOKUP_KINDS.items(),
        )
    perms = request.user.get_all_permissions() if not request.user.is_superuser else None
    lists = shopper_lists(shopper=shopper, limit=50)
    titles = products_brief(product_ids={p for s in lists for p in s.product_ids})
    return _render(
        request,
        "shopper.html",
        f"Support: {shopper.label}",
        shopper=shopper,
        lists=[
            {"list": s, "products": [titles.get(p, {"title": f"#{p}"}) for p in s.product_ids]} for s in lists
        ],
        timeline=shopper_timeline(shopper=shopper, permissions=perms, limit=100),
        highlight=request.GET.get("rid", ""),
        customer_url=(
            reverse("admin:catalog_customer_change", args=[shopper.customer.pk]) if shopper.customer else ""
        ),
    )


def customer_view(request: HttpRequest, customer_id: int) -> HttpResponse:
    return _shopper_page(request, customer_id=customer_id)


def visitor_view(request: HttpRequest, visitor: str) -> HttpResponse:
    return _shopper_page(request, visitor=visitor)


# --------------------------------------------------------------------------------------------- traces


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _explained_block(explained: ExplainedTrace, *, prefix: str) -> dict[str, Any]:
    rows = trace_items_view(explained=explained)
    for row in rows:
        exp = row["explanation"]
        contributions = [
            (c.get("name", "?"), float(c["value"])) for c in row["contributions"] if _finite(c.get("value"))
        ]
        if exp is not None and contributions and _finite(exp.get("base_value")):
            row["waterfall"] = mark_safe(
                charts.waterfall_svg(
                    base_value=float(exp["base_value"]),
                    contributions=contributions,
                    score=float(exp["score"]) if _finite(exp.get("score")) else None,
                    title=f"{row['product']['title']} ({exp.get('score_kind') or 'score'})",
                )
            )
        row["anchor"] = f"{prefix}-{row['product_id']}"
    trace = explained.trace
    history = products_brief(product_ids=trace.history)
    events = list(trace.history_events) + [""] * (len(trace.history) - len(trace.history_events))
    return {
        "trace": trace,
        "explanation": explained.explanation,
        "error": explained.error,
        "warnings": (explained.explanation or {}).get("warnings", ()),
        "rows": rows,
        "history": [
            {
                "product_id": p,
                "event": e,
                "product": history.get(p, {"title": f"#{p}", "sku": "?", "url": ""}),
            }
            for p, e in zip(reversed(trace.history), reversed(events))
        ][:30],
    }


def trace_view(request: HttpRequest, request_id: str) -> HttpResponse:
    _guard(request, SHOPPER_PERMS)
    try:
        then = trace_then_get(request_id=request_id)
    except ShopperNotFound as exc:
        return _render(request, "trace.html", "Support: decision trace", status=404, not_found=str(exc))
    now, now_error = None, ""
    try:
        now = trace_now_get(trace=then.trace)
    except ShopperNotFound as exc:
        now_error = str(exc)
    trace = then.trace
    return _render(
        request,
        "trace.html",
        f"Support: why {trace.widget} showed these items",
        then=_explained_block(then, prefix="then"),
        now=_explained_block(now, prefix="now") if now else None,
        now_error=now_error,
        compare=trace_compare(then=then, now=now),
        shopper_url=_shopper_url(trace.customer_id, trace.visitor)
        if (trace.customer_id or trace.visitor)
        else "",
        shown_at=datetime.fromtimestamp(trace.created_ts, tz=UTC) if trace.created_ts else None,
    )


# ------------------------------------------------------------------------------------- model versions


def _sample(request: HttpRequest) -> tuple[int, str, str]:
    """(sample, source, warning) from the query string; bad values fall back to the defaults, with a warning."""
    raw = request.GET.get("sample", str(DEFAULT_SAMPLE))
    source = request.GET.get("source", "auto")
    warnings = []
    if source not in SOURCES:
        warnings.append(f"source must be one of {', '.join(sorted(SOURCES))} (got {source!r}); using auto.")
        source = "auto"
    if raw.isdigit() and 10 <= int(raw) <= 1000:
        sample = int(raw)
    else:
        sample = DEFAULT_SAMPLE
        warnings.append(
            f"sample must be a whole number from 10 to 1000 (got {raw!r}); using {DEFAULT_SAMPLE}."
        )
    return sample, source, " ".join(warnings)


def _model_block(version: ModelVersion, sample: int, source: str) -> dict[str, Any]:
    res = model_version_attributions(version=version, sample=sample, source=source)
    return {
        "version": version,
        "res": res,
        "bars": mark_safe(
            charts.bars_svg(
                [(f.name, f.mean_abs) for f in res.features], title="mean |contribution| per feature"
            )
        ),
        "swarm": mark_safe(
            charts.beeswarm_svg(
                [(f.name, f.points) for f in res.features], title="every contribution (summary plot)"
            )
        ),
    }


def model_view(request: HttpRequest, pk: int) -> HttpResponse:
    _guard(request, MODEL_PERMS)
    version = ModelVersion.objects.filter(pk=pk).first()
    if version is None:
        return _render(
            request, "model.html", "Model explanations", status=404, not_found=f"No model version {pk}."
        )
    sample, source, warning = _sample(request)
    return _render(
        request,
        "model.html",
        f"Model explanations: v{version.pk} ({version.engine})",
        blocks=[_model_block(version, sample, source)],
        warning=warning,
        sample=sample,
        source=source,
        versions=ModelVersion.objects.order_by("-id").values_list("id", "engine", "status")[:100],
    )


def model_compare_view(request: HttpRequest) -> HttpResponse:
    _guard(request, MODEL_PERMS)
    sample, source, warning = _sample(request)
    raw = [request.GET.get("a", ""), request.GET.get("b", "")]
    versions_all = ModelVersion.objects.order_by("-id").values_list("id", "engine", "status")[:100]
    if not all(r.strip().isdigit() for r in raw):
        return _render(
            request,
            "model.html",
            "Compare model explanations",
            status=200 if raw == ["", ""] else 400,
            not_found="" if raw == ["", ""] else "Pick two model versions (a and b are version numbers).",
            versions=versions_all,
            blocks=[],
            compare=True,
            sample=sample,
            source=source,
        )
    ids = [int(r) for r in raw]
    versions = {v.pk: v for v in ModelVersion.objects.filter(pk__in=ids)}
    missing = [str(i) for i in ids if i not in versions]
    if missing:
        return _render(
            request,
            "model.html",
            "Compare model explanations",
            status=404,
            not_found=f"No model version {', '.join(missing)}.",
            versions=versions_all,
            blocks=[],
            compare=True,
            sample=sample,
            source=source,
        )
    return _render(
        request,
        "model.html",
        f"Compare model explanations: v{ids[0]} and v{ids[1]}",
        blocks=[_model_block(versions[i], sample, source) for i in ids],
        warning=warning,
        versions=versions_all,
        compare=True,
        a=ids[0],
        b=ids[1],
        sample=sample,
        source=source,
    )


site = admin.site
lookup = site.admin_view(lookup_view)
customer = site.admin_view(customer_view)
visitor = site.admin_view(visitor_view)
trace = site.admin_view(trace_view)
model = site.admin_view(model_view)
model_compare = site.admin_view(model_compare_view)

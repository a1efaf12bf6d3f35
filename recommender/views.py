"""Widget HTML fragments for HTMX (storefront) and the admin preview endpoint. Thin adapters."""

from __future__ import annotations

import logging
import uuid

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from catalog.models import Customer, Product
from catalog.selectors import customer_for_user_get

from . import serving
from .selectors import widget_get_enabled

logger = logging.getLogger(__name__)

CARD_TEMPLATES = ["catalog/_product_card.html", "recommender/_card.html"]
MAX_SESSION_ITEMS = 50


class BadRequest(ValueError):
    """A query parameter a page author got wrong (answered with 400 and the message)."""


def parse_k(raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    try:
        k = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"k must be a whole number between 1 and 100, got {raw!r}.") from None
    if not 1 <= k <= 100:
        raise BadRequest(f"k must be between 1 and 100, got {k}.")
    return k


def parse_id_list(raw: str | None, *, name: str = "session_items") -> tuple[int, ...]:
    if not raw:
        return ()
    ids = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise BadRequest(f"{name} must be comma-separated product ids, got {part!r}.")
        ids.append(int(part))
    if len(ids) > MAX_SESSION_ITEMS:
        raise BadRequest(f"{name} accepts at most {MAX_SESSION_ITEMS} ids, got {len(ids)}.")
    return tuple(ids)


def request_customer(request: HttpRequest) -> Customer | None:
    return customer_for_user_get(user=getattr(request, "user", None))


def cart_items(request: HttpRequest) -> tuple[int, ...]:
    cart = request.session.get("cart", {}) if hasattr(request, "session") else {}
    if not isinstance(cart, dict):
        return ()
    return tuple(int(pk) for pk in cart if str(pk).isdigit())


@require_GET
def widget_fragment(request: HttpRequest, slug: str) -> HttpResponse:
    """The items of widget `slug` as an HTML fragment (swapped in by HTMX). Failures render nothing."""
    widget = widget_get_enabled(slug=slug)
    if widget is None:
        return HttpResponse("", status=404, headers={"X-RS-Error": f"No enabled widget {slug!r}."})
    try:
        k = parse_k(request.GET.get("k"))
        session_items = parse_id_list(request.GET.get("session_items"))
        product_id = parse_id_list(request.GET.get("product"), name="product")
    except BadRequest as exc:
        return HttpResponse("", status=400, headers={"X-RS-Error": str(exc)})
    product = None
    if product_id:
        product = Product.objects.filter(pk=product_id[0]).first()
        if product is None:
            return HttpResponse("", status=404, headers={"X-RS-Error": f"No product {product_id[0]}."})
    try:
        cart = cart_items(request)
        request_id = uuid.uuid4()
        recs = serving.recommendations_get(
            widget=widget,
            customer=request_customer(request),
            visitor=getattr(request, "visitor_id", "") or None,
            product=product,
            session_items=session_items or cart,
            k=k,
            request_id=request_id,
            context={"cart": cart, "session_id": getattr(request, "shopping_session_id", "")},
        )
        products = Product.objects.select_related("category", "brand").in_bulk([r.product_id for r in recs])
        items = [{"rec": r, "product": products[r.product_id]} for r in recs if r.product_id in products]
        html = render_to_string(
            "recommender/_widget.html",
            {
                "widget": widget,
                "items": items,
                "request_id": request_id,
                "show_title": request.GET.get("title") != "0",
                "card_templates": CARD_TEMPLATES,
            },
            request=request,
        )
    except Exception:  # a broken widget must never break the page around it
        logger.warning("widget %s fragment failed; rendering nothing", slug, exc_info=True)
        html = ""
    return HttpResponse(html)

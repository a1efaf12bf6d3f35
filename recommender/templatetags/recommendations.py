"""`{% recommendation_slot "<widget-slug>" product=product %}`: a lazily loaded recommendation widget.

The tag renders only a small skeleton with an HTMX trigger; the items arrive from the fragment view
(`recommender:widget_fragment`) after the page has loaded, so a slow widget never blocks a page.

    {% load recommendations %}
    {% recommendation_slot "pdp-similar" product=product %}
    {% recommendation_slot "cart-cross-sell" session_items=cart_product_ids k=4 %}
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()

SKELETON_CARDS = 4


def _id_of(value: object) -> int | None:
    """A product (or its id, or its id as text) -> its id; anything else -> None."""
    if value is None or value == "":
        return None
    pk = getattr(value, "pk", value)
    try:
        return int(pk)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@register.inclusion_tag("recommender/_slot.html")
def recommendation_slot(
    slug: str,
    product: object = None,
    session_items: Iterable[object] | None = None,
    k: int | None = None,
    title: bool = True,
) -> dict:
    """Placeholder for the widget `slug`; the shopper (customer / visitor) is read from the request later."""
    try:
        url = reverse("recommender:widget_fragment", args=[slug])
    except NoReverseMatch:  # an invalid slug must not break the page that includes it
        return {"url": "", "slug": slug, "skeleton": range(0)}
    query: dict[str, object] = {}
    product_id = _id_of(product)
    if product_id is not None:
        query["product"] = product_id
    items = [i for i in (_id_of(x) for x in (session_items or ())) if i is not None]
    if items:
        query["session_items"] = ",".join(str(i) for i in items[:50])
    if k:
        query["k"] = k
    if not title:
        query["title"] = 0
    if query:
        url = f"{url}?{urlencode(query)}"
    return {"url": url, "slug": slug, "skeleton": range(min(int(k or SKELETON_CARDS), SKELETON_CARDS))}

"""Storefront views (thin: read through selectors, write through services, render)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import cache_control

from .models import Product


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("RecSite storefront")


@cache_control(max_age=86400, public=True)
def product_image(request: HttpRequest, pk: int) -> HttpResponse:
    """A generated SVG placeholder: the category's colour and the product's initials."""
    product = get_object_or_404(Product.objects.select_related("category"), pk=pk)
    hue = (product.category_id * 47) % 360
    initials = "".join(w[0] for w in product.title.split()[:2]).upper()
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240">'
        f'<rect width="320" height="240" fill="hsl({hue},45%,88%)"/>'
        f'<text x="160" y="135" font-family="sans-serif" font-size="56" text-anchor="middle" '
        f'fill="hsl({hue},40%,35%)">{initials}</text></svg>'
    )
    return HttpResponse(svg, content_type="image/svg+xml")

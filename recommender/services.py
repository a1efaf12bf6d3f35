"""Recommender writes: widgets, model registry, training runs."""

from django.db import transaction

from .models import Widget

DEFAULT_WIDGETS: tuple[dict, ...] = (
    {"slug": "home-personalized", "title": "Recommended for you", "placement": "home", "strategy": "personalized"},
    {"slug": "home-trending", "title": "Trending now", "placement": "home", "strategy": "trending"},
    {"slug": "pdp-similar", "title": "Similar products", "placement": "product", "strategy": "similar_items"},
    {
        "slug": "pdp-bought-together",
        "title": "Frequently bought together",
        "placement": "product",
        "strategy": "bought_together",
    },
    {"slug": "cart-cross-sell", "title": "You may also like", "placement": "cart", "strategy": "bought_together"},
)


@transaction.atomic
def widget_defaults_ensure() -> list[Widget]:
    """Create the default storefront widgets that do not exist yet; never changes existing ones."""
    widgets = []
    for spec in DEFAULT_WIDGETS:
        widget, _ = Widget.objects.get_or_create(slug=spec["slug"], defaults=spec)
        widgets.append(widget)
    return widgets

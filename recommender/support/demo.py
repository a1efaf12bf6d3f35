"""Past visits for the demo: serve the storefront's widgets to a few customers the way their visits would,
so that the support console has stored lists (impressions + decision traces) to explain out of the box.

The seeded history predates the recommender (catalog.services.seed writes no impressions), so without
this a fresh `make demo` shows every shopper with "no recommendation lists shown yet".
"""

from __future__ import annotations

from django.db.models import Count, F

from catalog.models import Customer, Event, Product
from recommender.models import Widget


def demo_visits_serve(*, customers: int = 10) -> tuple[int, int]:
    """Serve every enabled home widget, and every product-page widget anchored on the shopper's last
    viewed product, to the customers with a login (the demo shoppers) and then the ones with the most
    orders, up to `customers` (1-200). Impressions and traces are logged as for a real request.
    Returns (customers visited, lists served). Raises ValueError for a bad count."""
    from recommender.serving import recommendations_get

    if not 1 <= customers <= 200:
        raise ValueError(f"customers must be from 1 to 200 (got {customers}).")
    home = list(Widget.objects.filter(enabled=True, placement=Widget.Placement.HOME).order_by("slug"))
    product_widgets = list(
        Widget.objects.filter(enabled=True, placement=Widget.Placement.PRODUCT).order_by("slug")
    )
    chosen = list(
        Customer.objects.exclude(consent=Customer.Consent.NONE)
        .annotate(n_orders=Count("orders"))
        .order_by(F("user").asc(nulls_last=True), "-n_orders", "external_id")[:customers]
    )
    served = 0
    for customer in chosen:
        for widget in home:
            recommendations_get(widget=widget, customer=customer)
            served += 1
        last = (
            Event.objects.filter(customer=customer, product__isnull=False)
            .order_by("-timestamp")
            .values_list("product_id", flat=True)
            .first()
        )
        product = Product.objects.filter(pk=last).first() if last else None
        if product is not None:
            for widget in product_widgets:
                recommendations_get(widget=widget, customer=customer, product=product)
                served += 1
    return len(chosen), served

"""Checkout: turn a session cart into an Order with OrderLines, decrement stock and record purchase
events, all in one transaction (no payment step in the demo shop)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Order, OrderLine, Product

from .customers import Shopper
from .events import events_record

logger = logging.getLogger(__name__)


class CheckoutError(ValueError):
    """The order cannot be placed. `problems` are messages a shopper can act on, one per issue."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


def _impression(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def order_place(
    *,
    cart: Mapping[str, int],
    impressions: Mapping[str, str] | None = None,
    shopper: Shopper,
    name: str,
    email: str,
) -> Order:
    """Place an order for `cart` ({"<product id>": quantity}).

    In one transaction: re-reads the products, refuses unknown/inactive products and quantities above
    the stock (CheckoutError listing every problem), decrements stock with a guarded F() update (so two
    concurrent checkouts can never sell the same last unit), creates the Order and its lines, and
    records one `purchase` event per line carrying the recommendation impression id when there is one.
    """
    impressions = impressions or {}
    wanted: dict[int, int] = {}
    for key, qty in cart.items():
        try:
            pid, quantity = int(key), int(qty)
        except (TypeError, ValueError):
            continue
        if quantity > 0:
            wanted[pid] = quantity
    if not wanted:
        raise CheckoutError(["Your cart is empty: add something before checking out."])

    now = timezone.now()
    with transaction.atomic():
        products = Product.objects.select_for_update().in_bulk(list(wanted))
        problems = []
        for pid, quantity in wanted.items():
            product = products.get(pid)
            if product is None or not product.is_active:
                problems.append("A product in your cart is not sold any more; please remove it.")
            elif product.stock <= 0:
                problems.append(f"“{product.title}” is out of stock; please remove it from your cart.")
            elif quantity > product.stock:
                problems.append(
                    f"Only {product.stock} of “{product.title}” left in stock (your cart has {quantity})."
                )
        currencies = {p.currency for p in products.values()}
        if not problems and len(currencies) > 1:
            problems.append(
                "Your cart mixes currencies; please order items priced in different currencies separately."
            )
        if problems:
            raise CheckoutError(problems)

        for pid, quantity in wanted.items():
            # Guarded decrement: updates nothing when another checkout took the stock meanwhile.
            updated = Product.objects.filter(pk=pid, stock__gte=quantity).update(stock=F("stock") - quantity)
            if updated != 1:
                raise CheckoutError([f"“{products[pid].title}” sold out while you were checking out."])

        total = sum((products[pid].price * q for pid, q in wanted.items()), Decimal("0"))
        order = Order.objects.create(
            customer=shopper.customer,
            visitor_id=shopper.visitor_id,
            session_id=shopper.session_id,
            total=total,
            currency=currencies.pop(),
            email=email,
            name=name.strip(),
            created_at=now,
        )
        lines = [
            OrderLine(
                order=order,
                product_id=pid,
                quantity=quantity,
                unit_price=products[pid].price,
                impression_id=_impression(impressions.get(str(pid))),
            )
            for pid, quantity in wanted.items()
        ]
        OrderLine.objects.bulk_create(lines)

        events = []
        for line in lines:
            event = {
                "event_id": str(uuid.uuid4()),
                "type": "purchase",
                "product_id": line.product_id,
                "timestamp": now,
                "quantity": line.quantity,
                "price": line.unit_price,
                **shopper.event_fields(),
            }
            event.setdefault("context", {})
            event["context"] = {**event["context"], "order_id": order.pk}
            if line.impression_id:
                event["impression_id"] = str(line.impression_id)
            events.append(event)
        result = events_record(events=events)
        if result.rejected:
            logger.warning(
                "order %s: %d purchase events rejected: %s",
                order.pk,
                result.rejected,
                [r.errors for r in result.results if r.status == "rejected"],
            )
    return order

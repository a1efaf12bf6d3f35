"""The session cart: add, change, remove, clear. Each change records its event server-side
(add_to_cart / remove_from_cart through `events_record`), so carts are tracked even with JavaScript
off; the tracking snippet therefore never sends these two types itself.

The cart lives in the Django session as {"<product id>": quantity} under CART_SESSION_KEY, and the
recommendation impression that led to each product under IMPRESSIONS_SESSION_KEY (so a purchase can be
attributed to the recommendation that was clicked).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from catalog.models import Product

from .customers import Shopper
from .events import EventsRecordResult, events_record

logger = logging.getLogger(__name__)

CART_SESSION_KEY = "cart"
IMPRESSIONS_SESSION_KEY = "cart_impressions"
MAX_LINE_QUANTITY = 99
MAX_CART_LINES = 50


class CartError(ValueError):
    """A cart change that cannot be made; the message is shown to the shopper."""


class ProductUnavailable(CartError):
    """The product does not exist or is no longer sold."""


@dataclass(frozen=True)
class CartChange:
    product_id: int
    quantity: int  # the line's quantity after the change (0: removed)
    delta: int  # positive: added, negative: removed
    recorded: EventsRecordResult | None


def cart_read(*, session: MutableMapping[str, Any]) -> dict[str, int]:
    """The session cart, cleaned of anything malformed (a tampered or stale session never breaks a page)."""
    raw = session.get(CART_SESSION_KEY, {})
    cart: dict[str, int] = {}
    if isinstance(raw, dict):
        for key, qty in raw.items():
            try:
                pid, quantity = int(key), int(qty)
            except (TypeError, ValueError):
                continue
            if pid > 0 and quantity > 0:
                cart[str(pid)] = min(quantity, MAX_LINE_QUANTITY)
    return cart


def cart_impressions_read(*, session: MutableMapping[str, Any]) -> dict[str, str]:
    raw = session.get(IMPRESSIONS_SESSION_KEY, {})
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _write(session: MutableMapping[str, Any], cart: dict[str, int], impressions: dict[str, str]) -> None:
    # Assigning new dicts (not mutating the stored ones) marks the session modified.
    session[CART_SESSION_KEY] = cart
    session[IMPRESSIONS_SESSION_KEY] = {k: v for k, v in impressions.items() if k in cart}


def _clean_impression(value: str | uuid.UUID | None) -> str | None:
    if value in (None, ""):
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None  # a malformed id from a page must not block the purchase; attribution is lost only


def _product(product_id: int) -> Product:
    product = (
        Product.objects.filter(pk=product_id, is_active=True).only("id", "title", "price", "stock").first()
    )
    if product is None:
        raise ProductUnavailable("Sorry, that product is not available any more.")
    return product


def _record(
    *, event_type: str, product: Product, quantity: int, shopper: Shopper, impression_id: str | None
) -> EventsRecordResult:
    event = {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "product_id": product.pk,
        "timestamp": timezone.now(),
        "quantity": quantity,
        "price": product.price,
        **shopper.event_fields(),
    }
    if impression_id:
        event["impression_id"] = impression_id
    result = events_record(events=[event])
    if result.rejected:
        # Never silent: the cart change stands, but the lost event is logged with its reason.
        logger.warning(
            "%s event for product %s rejected: %s", event_type, product.pk, result.results[0].errors
        )
    return result


def _check_quantity(quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise CartError("Quantity must be a whole number.")
    if quantity < 1 or quantity > MAX_LINE_QUANTITY:
        raise CartError(f"Quantity must be between 1 and {MAX_LINE_QUANTITY}.")
    return quantity


def cart_item_add(
    *,
    session: MutableMapping[str, Any],
    product_id: int,
    quantity: int = 1,
    shopper: Shopper,
    impression_id: str | uuid.UUID | None = None,
) -> CartChange:
    """Add `quantity` of a product; refuses more than the stock. Records an add_to_cart event."""
    _check_quantity(quantity)
    product = _product(product_id)
    cart = cart_read(session=session)
    impressions = cart_impressions_read(session=session)
    key = str(product.pk)
    current = cart.get(key, 0)
    if key not in cart and len(cart) >= MAX_CART_LINES:
        raise CartError(
            f"Your cart is full ({MAX_CART_LINES} different products). Check out or remove some first."
        )
    new_quantity = current + quantity
    if new_quantity > MAX_LINE_QUANTITY:
        raise CartError(f"You can buy at most {MAX_LINE_QUANTITY} of one product per order.")
    if product.stock <= 0:
        raise CartError(f"Sorry, “{product.title}” is out of stock.")
    if new_quantity > product.stock:
        already = f" (you already have {current} in your cart)" if current else ""
        raise CartError(f"Only {product.stock} of “{product.title}” left in stock{already}.")
    impression = _clean_impression(impression_id)
    cart[key] = new_quantity
    if impression:
        impressions[key] = impression
    _write(session, cart, impressions)
    recorded = _record(
        event_type="add_to_cart",
        product=product,
        quantity=quantity,
        shopper=shopper,
        impression_id=impression or impressions.get(key),
    )
    return CartChange(product_id=product.pk, quantity=new_quantity, delta=quantity, recorded=recorded)


def cart_item_update(
    *, session: MutableMapping[str, Any], product_id: int, quantity: int, shopper: Shopper
) -> CartChange:
    """Set a line's quantity (0 removes it). Records add_to_cart or remove_from_cart for the difference."""
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or quantity < 0
        or quantity > MAX_LINE_QUANTITY
    ):
        raise CartError(f"Quantity must be a whole number between 0 and {MAX_LINE_QUANTITY}.")
    cart = cart_read(session=session)
    key = str(product_id)
    if key not in cart:
        raise CartError("That product is not in your cart.")
    if quantity == 0:
        return cart_item_remove(session=session, product_id=product_id, shopper=shopper)
    current = cart[key]
    if quantity == current:
        return CartChange(product_id=product_id, quantity=current, delta=0, recorded=None)
    impressions = cart_impressions_read(session=session)
    try:
        product = _product(product_id)
    except ProductUnavailable:
        _write(session, {k: v for k, v in cart.items() if k != key}, impressions)
        raise ProductUnavailable(
            "That product is not sold any more; it was removed from your cart."
        ) from None
    if quantity > current and quantity > product.stock:
        raise CartError(f"Only {product.stock} of “{product.title}” left in stock.")
    cart[key] = quantity
    _write(session, cart, impressions)
    delta = quantity - current
    recorded = _record(
        event_type="add_to_cart" if delta > 0 else "remove_from_cart",
        product=product,
        quantity=abs(delta),
        shopper=shopper,
        impression_id=impressions.get(key),
    )
    return CartChange(product_id=product.pk, quantity=quantity, delta=delta, recorded=recorded)


def cart_item_remove(*, session: MutableMapping[str, Any], product_id: int, shopper: Shopper) -> CartChange:
    """Remove a line. Records remove_from_cart (unless the product no longer exists at all)."""
    cart = cart_read(session=session)
    key = str(product_id)
    if key not in cart:
        raise CartError("That product is not in your cart.")
    impressions = cart_impressions_read(session=session)
    removed = cart.pop(key)
    impression = impressions.get(key)
    _write(session, cart, impressions)
    product = Product.objects.filter(pk=product_id).only("id", "title", "price").first()
    recorded = None
    if product is not None:
        recorded = _record(
            event_type="remove_from_cart",
            product=product,
            quantity=removed,
            shopper=shopper,
            impression_id=impression,
        )
    return CartChange(product_id=product_id, quantity=0, delta=-removed, recorded=recorded)


def cart_clear(*, session: MutableMapping[str, Any]) -> None:
    """Empty the cart (after checkout; records nothing: the purchase events say what happened)."""
    session[CART_SESSION_KEY] = {}
    session[IMPRESSIONS_SESSION_KEY] = {}

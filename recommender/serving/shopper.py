"""Stage 1, the shopper context: who is asking and what they did.

The customer's / visitor's most recent events (one indexed, capped query) plus the request's
`session_items`, their purchases (older ones too, one more indexed query, only when a rule needs them) and
the cart. Consent `none` means no personal data is read: the shopper's history stays empty and the
personal strategies step aside for the fallbacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from catalog.models import Customer, Event, OrderLine

HISTORY_CAP = 50  # most recent events read per shopper
SESSION_EVENT = "session"  # history_events label of the request's own session items


@dataclass
class Shopper:
    """The shopper as the engines see them. `history` is product ids, oldest first (events, then the
    request's session items); `history_events` the matching event types, same length."""

    customer: Customer | None
    visitor: str
    personal: bool  # personal data may be used (consent)
    history: list[int] = field(default_factory=list)
    history_events: list[str] = field(default_factory=list)
    purchased: frozenset[int] = frozenset()
    cart: frozenset[int] = frozenset()


def shopper_load(
    *,
    customer: Customer | None,
    visitor: str | None,
    session_items: Sequence[int],
    context: dict[str, Any],
    need_purchases: bool,
) -> Shopper:
    """The shopper context (see the module docstring); `need_purchases` also reads their order lines."""
    personal = customer is None or customer.consent != Customer.Consent.NONE
    shopper = Shopper(customer=customer, visitor=visitor or "", personal=personal)
    cart = context.get("cart") or ()
    shopper.cart = frozenset(int(p) for p in cart)
    if not personal:
        return shopper
    who = Q()
    if customer is not None:
        who |= Q(customer=customer)
    if visitor:
        who |= Q(visitor_id=visitor)
    history: list[int] = []
    events: list[str] = []
    purchased: set[int] = set()
    if who:
        rows = list(
            Event.objects.filter(who, product__isnull=False)
            .order_by("-timestamp", "-id")
            .values_list("product_id", "type")[:HISTORY_CAP]
        )
        for pid, etype in reversed(rows):
            if etype == "remove_from_cart":
                continue
            history.append(pid)
            events.append(etype)
            if etype == "purchase":
                purchased.add(pid)
        if need_purchases:  # older purchases than the capped history: one indexed query
            orders = Q(order__customer=customer) if customer is not None else Q(order__visitor_id=visitor)
            purchased.update(OrderLine.objects.filter(orders).values_list("product_id", flat=True)[:1000])
    for p in session_items:
        history.append(int(p))
        events.append(SESSION_EVENT)
    shopper.history = history
    shopper.history_events = events
    shopper.purchased = frozenset(purchased)
    return shopper

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

from django.db import connections
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


# The history query is the one query of a cached request; Django builds and compiles it in about as long
# as the database takes to answer it (profiled: docs/benchmarks/serving.md), so its SQL is compiled by the
# ORM once per process and shape (customer, visitor, both) and then only executed with new parameters.
_SENTINEL_CUSTOMER = -918273645
_SENTINEL_VISITOR = "\x01recsite-sentinel"
_compiled: dict[tuple[bool, bool], tuple[str, tuple[int, ...]]] = {}


def _history_query(*, by_customer: bool, by_visitor: bool) -> tuple[str, tuple[int, ...]]:
    """(SQL, which parameter goes where: 0 = customer id, 1 = visitor id) of the history query."""
    shape = (by_customer, by_visitor)
    hit = _compiled.get(shape)
    if hit is not None:
        return hit
    who = Q()
    if by_customer:
        who |= Q(customer_id=_SENTINEL_CUSTOMER)
    if by_visitor:
        who |= Q(visitor_id=_SENTINEL_VISITOR)
    qs = (
        Event.objects.filter(who, product__isnull=False)
        .order_by("-timestamp", "-id")
        .values_list("product_id", "type")[:HISTORY_CAP]
    )
    sql, params = qs.query.sql_with_params()
    slots = []
    for p in params:
        if p == _SENTINEL_CUSTOMER:
            slots.append(0)
        elif p == _SENTINEL_VISITOR:
            slots.append(1)
        else:  # a parameter this shortcut does not know: compile per call instead
            raise ValueError(f"unexpected parameter {p!r} in the history query")
    _compiled[shape] = (sql, tuple(slots))
    return _compiled[shape]


def recent_events(*, customer_id: int | None, visitor: str) -> list[tuple[int, str]]:
    """The shopper's HISTORY_CAP most recent product events, newest first: (product id, event type)."""
    sql, slots = _history_query(by_customer=customer_id is not None, by_visitor=bool(visitor))
    values = (customer_id, visitor)
    with connections[Event.objects.db].cursor() as cursor:
        cursor.execute(sql, [values[i] for i in slots])
        return [(int(pid), etype) for pid, etype in cursor.fetchall()]


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
        rows = recent_events(customer_id=customer.pk if customer is not None else None, visitor=visitor or "")
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

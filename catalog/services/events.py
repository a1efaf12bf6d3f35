"""Event ingestion: validate a batch of behaviour events and store the good ones in one bulk insert.

Contract (see docs/API.md for the wire format):

- ``events_record(events=[...])`` takes dicts with the REST field names and returns an
  ``EventsRecordResult`` naming, per input position, ``accepted``, ``duplicate`` or ``rejected`` (with
  one message per offending field). Nothing is dropped silently.
- Idempotent: an ``event_id`` that is already stored, or that appeared earlier in the same batch and
  was accepted there, is a ``duplicate`` and adds nothing.
- Cost: three reads whatever the batch size (known event ids, products, customers) and one
  ``bulk_create``; validation is plain Python (no DRF serializer per event, which would cost more
  than the insert itself).
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from catalog.models import Customer, Event, Product

EventStatus = Literal["accepted", "duplicate", "rejected"]

EVENT_TYPES: tuple[str, ...] = tuple(Event.Type.values)
PRODUCT_TYPES = Event.PRODUCT_TYPES
FIELDS = frozenset(
    {
        "event_id",
        "type",
        "product_id",
        "sku",
        "customer",
        "visitor_id",
        "session_id",
        "timestamp",
        "quantity",
        "price",
        "value",
        "dwell_ms",
        "query",
        "rating",
        "impression_id",
        "context",
    }
)
ID_MAX_LENGTH = 64
QUERY_MAX_LENGTH = 255
QUANTITY_MAX = 1_000_000
DWELL_MS_MAX = 24 * 3600 * 1000  # a day; longer is a client bug, not a reading
CONTEXT_MAX_CHARS = 4096
PRICE_MAX = Decimal("9999999999.99")  # max_digits=12, decimal_places=2
VALUE_MAX = Decimal("999999999999.99")  # max_digits=14, decimal_places=2
CENT = Decimal("0.01")
REQUIRED = "This field is required."


@dataclass(frozen=True)
class EventResult:
    """The outcome for the event at position `index` of the input."""

    index: int
    event_id: str | None
    status: EventStatus
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventsRecordResult:
    accepted: int
    duplicates: int
    rejected: int
    results: tuple[EventResult, ...]

    @property
    def all_rejected(self) -> bool:
        return bool(self.results) and self.rejected == len(self.results)


class _Invalid(Exception):
    """One field's problem; carries the message shown to the client."""


@dataclass
class _Clean:
    """A validated event whose product and customer references are not resolved yet."""

    index: int
    event_id: uuid.UUID
    values: dict[str, Any]
    product_id: int | None
    sku: str | None
    customer: str | None


def events_record(*, events: Sequence[Mapping[str, Any]]) -> EventsRecordResult:
    """Validate `events` (API field names) and bulk-insert the valid, not-yet-stored ones.

    Returns one EventResult per input event, in input order. Raises nothing for bad events; a database
    failure propagates (nothing of the batch is stored then: one transaction).
    Called inside an outer transaction (e.g. checkout), the events commit or roll back with it.
    """
    now = timezone.now()
    latest = now + timedelta(seconds=settings.RECSITE_EVENT_MAX_FUTURE_SKEW_SECONDS)

    outcomes: list[EventResult | None] = [None] * len(events)
    cleaned: list[_Clean] = []
    for index, raw in enumerate(events):
        clean, event_id, errors = _validate(index, raw, now=now, latest=latest)
        if clean is None:
            outcomes[index] = EventResult(index, event_id, "rejected", errors)
        else:
            cleaned.append(clean)

    # Read 1: which of these ids are stored already.
    stored: set[uuid.UUID] = set()
    if cleaned:
        stored = set(
            Event.objects.filter(event_id__in=[c.event_id for c in cleaned]).values_list(
                "event_id", flat=True
            )
        )
    fresh = [c for c in cleaned if c.event_id not in stored]
    for c in cleaned:
        if c.event_id in stored:
            outcomes[c.index] = EventResult(c.index, str(c.event_id), "duplicate", {})

    products_by_id, products_by_sku = _products_lookup(fresh)  # read 2
    customers = _customers_lookup(fresh)  # read 3

    to_create: list[Event] = []
    seen: set[uuid.UUID] = set()
    for c in fresh:
        event_id = str(c.event_id)
        if c.event_id in seen:
            outcomes[c.index] = EventResult(c.index, event_id, "duplicate", {})
            continue
        errors: dict[str, str] = {}
        product_pk = None
        if c.product_id is not None:
            known_sku = products_by_id.get(c.product_id)
            if known_sku is None:
                errors["product_id"] = f"Unknown product {c.product_id}."
            elif c.sku is not None and c.sku != known_sku:
                errors["sku"] = f"SKU {c.sku!r} does not match product {c.product_id} (SKU {known_sku!r})."
            else:
                product_pk = c.product_id
        elif c.sku is not None:
            product_pk = products_by_sku.get(c.sku)
            if product_pk is None:
                errors["sku"] = f"Unknown product SKU {c.sku!r}."
        customer_pk = None
        if c.customer is not None:
            customer_pk = customers.get(c.customer)
            if customer_pk is None:
                errors["customer"] = f"Unknown customer {c.customer!r}."
        if errors:
            outcomes[c.index] = EventResult(c.index, event_id, "rejected", errors)
            continue
        seen.add(c.event_id)
        row = c.values
        row["event_id"] = c.event_id
        row["product_id"] = product_pk
        row["customer_id"] = customer_pk
        # Positional construction is Django's fast path (what the ORM uses for rows it reads); keyword
        # construction costs about as much as the INSERT itself. Columns come from the model's metadata.
        to_create.append(Event(*[row.get(name) for name in _event_attnames()]))
        outcomes[c.index] = EventResult(c.index, event_id, "accepted", {})

    if to_create:
        # ignore_conflicts: a concurrent request that stored the same event_id between our read and this
        # insert must not fail the whole batch; the event is then stored once, which is what the client
        # asked for (both requests report it as accepted). bulk_create runs all its INSERT statements
        # (SQLite splits by bound-parameter limit) in one transaction itself.
        Event.objects.bulk_create(to_create, batch_size=500, ignore_conflicts=True)

    results = tuple(o for o in outcomes if o is not None)
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for r in results:
        counts[r.status] += 1
    return EventsRecordResult(
        accepted=counts["accepted"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"],
        results=results,
    )


@functools.cache
def _event_attnames() -> tuple[str, ...]:
    """Event's concrete columns in model order; absent ones are None (id: assigned by the database;
    received_at: auto_now_add fills it on insert)."""
    return tuple(f.attname for f in Event._meta.concrete_fields)


def _products_lookup(fresh: list[_Clean]) -> tuple[dict[int, str], dict[str, int]]:
    ids = {c.product_id for c in fresh if c.product_id is not None}
    skus = {c.sku for c in fresh if c.product_id is None and c.sku is not None}
    if not ids and not skus:
        return {}, {}
    by_id: dict[int, str] = {}
    by_sku: dict[str, int] = {}
    for pk, sku in Product.objects.filter(Q(pk__in=ids) | Q(sku__in=skus)).values_list("pk", "sku"):
        by_id[pk] = sku
        by_sku[sku] = pk
    return by_id, by_sku


def _customers_lookup(fresh: list[_Clean]) -> dict[str, int]:
    external_ids = {c.customer for c in fresh if c.customer is not None}
    if not external_ids:
        return {}
    return dict(Customer.objects.filter(external_id__in=external_ids).values_list("external_id", "pk"))


def _validate(
    index: int, raw: Any, *, now: datetime, latest: datetime
) -> tuple[_Clean | None, str | None, dict[str, str]]:
    """Check one event's shape and values. Returns (clean or None, event_id as given, errors)."""
    if not isinstance(raw, Mapping):
        return None, None, {"event": f"Each event must be a JSON object, got {_json_type(raw)}."}
    errors: dict[str, str] = {}

    event_id = None
    event_id_raw = raw.get("event_id")
    shown_id = str(event_id_raw)[:64] if event_id_raw is not None else None
    try:
        event_id = _uuid(event_id_raw, required=True)
    except _Invalid as e:
        errors["event_id"] = str(e)

    event_type = raw.get("type")
    if event_type is None or event_type == "":
        errors["type"] = REQUIRED
    elif not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        errors["type"] = (
            f"Unknown event type {str(event_type)[:40]!r}; expected one of: {', '.join(EVENT_TYPES)}."
        )
        event_type = None

    parsed: dict[str, Any] = {}
    for name, value in raw.items():
        parser = _PARSERS.get(name)
        if parser is None:
            if name not in FIELDS:  # event_id and type have no parser: checked above
                errors[str(name)[:64]] = "Unknown field."
            continue
        if value is None:
            continue
        try:
            parsed[name] = parser(value, latest) if name == "timestamp" else parser(value)
        except _Invalid as e:
            errors[name] = str(e)

    product_id = parsed.get("product_id")
    sku = parsed.get("sku") or None
    customer = parsed.get("customer") or None
    visitor_id = parsed.get("visitor_id", "")
    query = parsed.get("query", "")

    # Requirements that depend on the type.
    if (
        event_type in PRODUCT_TYPES
        and product_id is None
        and sku is None
        and "product_id" not in errors
        and "sku" not in errors
    ):
        errors["product_id"] = f"A {event_type} event needs product_id or sku."
    if event_type == "search" and not query and "query" not in errors:
        errors["query"] = "A search event needs a non-empty query."
    if event_type == "rate" and "rating" not in parsed and "rating" not in errors:
        errors["rating"] = "A rate event needs a rating between 0 and 5."
    if event_type == "dwell" and "dwell_ms" not in parsed and "dwell_ms" not in errors:
        errors["dwell_ms"] = "A dwell event needs dwell_ms."
    if customer is None and not visitor_id and "customer" not in errors and "visitor_id" not in errors:
        errors["visitor_id"] = "Give customer or visitor_id (who did this)."

    if errors:
        return None, shown_id, errors

    quantity = parsed.get("quantity", 1)
    price = parsed.get("price")
    value = parsed.get("value")
    if value is None and price is not None and event_type == "purchase":
        value = min((price * quantity).quantize(CENT), VALUE_MAX)
    values = dict(
        type=event_type,
        visitor_id=visitor_id,
        session_id=parsed.get("session_id", ""),
        timestamp=parsed.get("timestamp", now),
        quantity=quantity,
        price=price,
        value=value,
        dwell_ms=parsed.get("dwell_ms"),
        query=query,
        rating=parsed.get("rating"),
        impression_id=parsed.get("impression_id"),
        context=parsed.get("context", {}),
    )
    assert event_id is not None
    return _Clean(index, event_id, values, product_id, sku, customer), str(event_id), {}


# --- field parsers: each returns the clean value or raises _Invalid with a message a person can act on ---


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    return type(value).__name__


def _uuid(value: Any, *, required: bool) -> uuid.UUID | None:
    if value is None or value == "":
        if required:
            raise _Invalid(REQUIRED + " Send a client-generated UUID (it makes re-sends idempotent).")
        return None
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise _Invalid(f"Must be a UUID string, got {_json_type(value)}.")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _Invalid(f"{value[:64]!r} is not a valid UUID.") from None


def _int(value: Any, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        else:
            raise _Invalid(f"Must be a whole number, got {_json_type(value)}.")
    if value < minimum or value > maximum:
        raise _Invalid(f"Must be between {minimum} and {maximum}.")
    return value


def _text(value: Any, *, max_length: int) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"Must be a string, got {_json_type(value)}.")
    value = value.strip()
    if len(value) > max_length:
        raise _Invalid(f"At most {max_length} characters (got {len(value)}).")
    return value


def _decimal(value: Any, *, maximum: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _Invalid(f"Must be a number, got {_json_type(value)}.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Invalid(f"{str(value)[:40]!r} is not a number.") from None
    if not number.is_finite():
        raise _Invalid("Must be a finite number.")
    if number < 0 or number > maximum:
        raise _Invalid(f"Must be between 0 and {maximum}.")
    return number.quantize(CENT)


def _rating(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"Must be a number between 0 and 5, got {_json_type(value)}.")
    if not math.isfinite(value) or not 0 <= value <= 5:
        raise _Invalid("Must be between 0 and 5.")
    return float(value)


def _context(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid(
            f'Must be an object such as {{"page": "...", "device": "...", "referrer": "..."}}, got {_json_type(value)}.'
        )
    try:
        size = len(json.dumps(value, separators=(",", ":")))
    except (TypeError, ValueError):
        raise _Invalid("Must be JSON-serialisable.") from None
    if size > CONTEXT_MAX_CHARS:
        raise _Invalid(f"At most {CONTEXT_MAX_CHARS} characters of JSON (got {size}).")
    return dict(value)


def _timestamp(value: Any, *, latest: datetime) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Invalid(
                f"{value[:40]!r} is not an ISO-8601 date-time (e.g. 2026-01-31T12:00:00Z)."
            ) from None
    else:
        raise _Invalid(f"Must be an ISO-8601 string, got {_json_type(value)}.")
    if timezone.is_naive(moment):
        raise _Invalid("Needs a time-zone offset (e.g. 2026-01-31T12:00:00Z or +01:00).")
    if moment > latest:
        skew = settings.RECSITE_EVENT_MAX_FUTURE_SKEW_SECONDS
        raise _Invalid(f"Is in the future (more than {skew} s ahead of the server clock).")
    return moment


def _id_text(value: Any) -> str:
    return _text(value, max_length=ID_MAX_LENGTH)


# One parser per optional field (event_id and type are checked first, by hand). Module-level so that
# validating an event builds no closures: this loop runs once per field of every event.
_PARSERS: dict[str, Any] = {
    "product_id": lambda v: _int(v, minimum=1, maximum=2**63 - 1),
    "sku": lambda v: _text(v, max_length=64),
    "customer": _id_text,
    "visitor_id": _id_text,
    "session_id": _id_text,
    "quantity": lambda v: _int(v, minimum=1, maximum=QUANTITY_MAX),
    "price": lambda v: _decimal(v, maximum=PRICE_MAX),
    "value": lambda v: _decimal(v, maximum=VALUE_MAX),
    "dwell_ms": lambda v: _int(v, minimum=0, maximum=DWELL_MS_MAX),
    "query": lambda v: _text(v, max_length=QUERY_MAX_LENGTH),
    "rating": _rating,
    "impression_id": lambda v: _uuid(v, required=False),
    "context": _context,
    "timestamp": lambda v, latest: _timestamp(v, latest=latest),
}

"""catalog.services.events_record: validation, idempotency, mixed batches, query count."""

import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Event
from catalog.services import EventResult, EventsRecordResult, events_record
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _event(**overrides):
    base = {"event_id": str(uuid.uuid4()), "type": "view", "visitor_id": "visitor-123456"}
    base.update(overrides)
    return base


def test_records_a_valid_event_with_all_fields():
    # given
    product = ProductFactory()
    customer = CustomerFactory(external_id="c-1")
    impression = uuid.uuid4()
    event = _event(
        type="purchase",
        product_id=product.pk,
        customer="c-1",
        session_id="sess-1",
        timestamp="2026-01-02T03:04:05Z",
        quantity=2,
        price="19.99",
        impression_id=str(impression),
        context={"page": "/p/1", "device": "mobile", "referrer": ""},
    )
    # when
    result = events_record(events=[event])
    # then
    assert isinstance(result, EventsRecordResult)
    assert result == EventsRecordResult(
        accepted=1,
        duplicates=0,
        rejected=0,
        results=(EventResult(index=0, event_id=event["event_id"], status="accepted", errors={}),),
    )
    stored = Event.objects.get(event_id=event["event_id"])
    assert stored.product == product and stored.customer == customer
    assert stored.timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert stored.quantity == 2 and stored.price == Decimal("19.99")
    assert stored.value == Decimal("39.98")  # price x quantity when no value is given
    assert stored.impression_id == impression
    assert stored.context["device"] == "mobile"


def test_sku_resolves_to_product_and_timestamp_defaults_to_now():
    product = ProductFactory(sku="CAM-1")
    before = timezone.now()
    result = events_record(events=[_event(sku="CAM-1")])
    assert result.accepted == 1
    stored = Event.objects.get()
    assert stored.product_id == product.pk
    assert before <= stored.timestamp <= timezone.now()


def test_resending_the_same_events_adds_nothing():
    product = ProductFactory()
    batch = [_event(product_id=product.pk) for _ in range(3)]
    first = events_record(events=batch)
    second = events_record(events=batch)
    assert (first.accepted, first.duplicates) == (3, 0)
    assert (second.accepted, second.duplicates, second.rejected) == (0, 3, 0)
    assert [r.status for r in second.results] == ["duplicate"] * 3
    assert Event.objects.count() == 3


def test_duplicate_inside_one_batch_is_stored_once():
    product = ProductFactory()
    event = _event(product_id=product.pk)
    result = events_record(events=[event, dict(event)])
    assert [r.status for r in result.results] == ["accepted", "duplicate"]
    assert Event.objects.count() == 1


def test_mixed_batch_stores_the_good_and_names_the_bad():
    product = ProductFactory()
    good1 = _event(product_id=product.pk)
    bad = _event(product_id=999_999)
    good2 = _event(type="search", query="usb cable")
    result = events_record(events=[good1, bad, good2])
    assert (result.accepted, result.rejected) == (2, 1)
    assert result.results[1] == EventResult(
        1, bad["event_id"], "rejected", {"product_id": "Unknown product 999999."}
    )
    assert set(Event.objects.values_list("event_id", flat=True)) == {
        uuid.UUID(good1["event_id"]),
        uuid.UUID(good2["event_id"]),
    }


@pytest.mark.parametrize(
    "overrides, field, fragment",
    [
        ({"event_id": None}, "event_id", "required"),
        ({"event_id": "not-a-uuid"}, "event_id", "not a valid UUID"),
        ({"type": "teleport"}, "type", "Unknown event type"),
        ({"type": None}, "type", "required"),
        ({"product_id": None}, "product_id", "needs product_id or sku"),
        ({"product_id": "abc"}, "product_id", "whole number"),
        ({"product_id": None, "sku": "NOPE"}, "sku", "Unknown product SKU"),
        ({"visitor_id": None}, "visitor_id", "Give customer or visitor_id"),
        ({"customer": "ghost"}, "customer", "Unknown customer"),
        ({"timestamp": "yesterday"}, "timestamp", "ISO-8601"),
        ({"timestamp": "2026-01-01T00:00:00"}, "timestamp", "time-zone"),
        ({"quantity": 0}, "quantity", "between 1"),
        ({"quantity": True}, "quantity", "whole number"),
        ({"price": "-1"}, "price", "between 0"),
        ({"price": "NaN"}, "price", "finite"),
        ({"price": [1]}, "price", "Must be a number"),
        ({"type": "search", "query": "  "}, "query", "non-empty query"),
        ({"type": "rate"}, "rating", "needs a rating"),
        ({"type": "rate", "rating": 6}, "rating", "between 0 and 5"),
        ({"type": "dwell"}, "dwell_ms", "needs dwell_ms"),
        ({"dwell_ms": -5}, "dwell_ms", "between 0"),
        ({"impression_id": "x"}, "impression_id", "not a valid UUID"),
        ({"context": "home"}, "context", "Must be an object"),
        ({"context": {"blob": "x" * 5000}}, "context", "At most"),
        ({"visitor_id": "v" * 65}, "visitor_id", "At most 64"),
        ({"colour": "red"}, "colour", "Unknown field"),
    ],
)
def test_bad_input_is_rejected_with_the_field_named(overrides, field, fragment):
    product = ProductFactory()
    event = {"product_id": product.pk, **_event()}
    event.update(overrides)
    event = {k: v for k, v in event.items() if v is not None}
    result = events_record(events=[event])
    assert result.rejected == 1, result
    assert fragment in result.results[0].errors[field], result.results[0].errors
    assert Event.objects.count() == 0


def test_future_timestamp_beyond_skew_is_rejected_but_small_skew_is_fine(settings):
    settings.RECSITE_EVENT_MAX_FUTURE_SKEW_SECONDS = 60
    product = ProductFactory()
    soon = (timezone.now() + timedelta(seconds=30)).isoformat()
    later = (timezone.now() + timedelta(seconds=600)).isoformat()
    result = events_record(
        events=[_event(product_id=product.pk, timestamp=soon), _event(product_id=product.pk, timestamp=later)]
    )
    assert [r.status for r in result.results] == ["accepted", "rejected"]
    assert "future" in result.results[1].errors["timestamp"]


def test_sku_that_contradicts_product_id_is_rejected():
    product = ProductFactory(sku="A-1")
    ProductFactory(sku="B-2")
    result = events_record(events=[_event(product_id=product.pk, sku="B-2")])
    assert "does not match" in result.results[0].errors["sku"]


def test_non_object_entries_are_rejected_individually():
    product = ProductFactory()
    result = events_record(events=["view", 3, None, _event(product_id=product.pk)])
    assert [r.status for r in result.results] == ["rejected", "rejected", "rejected", "accepted"]
    assert "JSON object" in result.results[0].errors["event"]


def test_query_count_does_not_grow_with_batch_size():
    # given: products referenced by id and by sku, and customers
    products = ProductFactory.create_batch(5)
    customers = CustomerFactory.create_batch(3)
    batch = [
        _event(
            product_id=products[i % 5].pk if i % 2 else None,
            sku=None if i % 2 else products[i % 5].sku,
            customer=customers[i % 3].external_id,
        )
        for i in range(200)
    ]
    batch = [{k: v for k, v in e.items() if v is not None} for e in batch]
    # when
    with CaptureQueriesContext(connection) as ctx:
        result = events_record(events=batch)
    # then: known ids, products, customers, then the insert (plus savepoint/transaction statements)
    assert result.accepted == 200
    selects = [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    inserts = [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(selects) == 3
    # one INSERT per backend batch (SQLite caps bound parameters per statement; PostgreSQL takes all 200)
    fields = [f for f in Event._meta.concrete_fields if not f.primary_key]
    per_statement = min(500, connection.ops.bulk_batch_size(fields, batch))
    assert len(inserts) == math.ceil(200 / per_statement)
    assert Event.objects.count() == 200


def test_empty_batch_is_a_no_op():
    assert events_record(events=[]) == EventsRecordResult(0, 0, 0, ())


def test_every_documented_field_has_a_parser():
    from catalog.services.events import _PARSERS, FIELDS

    assert set(_PARSERS) | {"event_id", "type"} == set(FIELDS)


def test_stored_event_gets_received_at_and_defaults():
    product = ProductFactory()
    before = timezone.now()
    events_record(events=[_event(product_id=product.pk)])
    stored = Event.objects.get()
    assert stored.received_at >= before
    assert (stored.quantity, stored.context, stored.query, stored.session_id) == (1, {}, "", "")
    assert stored.price is None and stored.rating is None and stored.impression_id is None

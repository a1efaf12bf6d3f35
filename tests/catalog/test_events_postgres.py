"""Event ingestion on PostgreSQL (run by `make test`'s second pass, with DATABASE_URL/REDIS_URL set)."""

import json
import threading
import uuid

import pytest
from django.db import connection, connections
from django.test import Client
from rest_framework_api_key.models import APIKey

from catalog.models import Event
from catalog.services import events_record
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.realservices


def _event(product, **fields):
    return {
        "event_id": str(uuid.uuid4()),
        "type": "view",
        "product_id": product.pk,
        "visitor_id": "v-12345678",
        **fields,
    }


@pytest.mark.django_db
def test_full_batch_mixed_and_resent_on_postgres():
    assert connection.vendor == "postgresql"
    products = ProductFactory.create_batch(3)
    CustomerFactory(external_id="pg-cust")
    _, key = APIKey.objects.create_key(name="pg")
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}")
    batch = [_event(products[i % 3], customer="pg-cust", price="10.50", type="purchase") for i in range(499)]
    batch.append(_event(products[0], product_id=10**9))  # unknown product
    response = client.post("/api/v1/events", data=json.dumps(batch), content_type="application/json")
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (499, 1)
    assert body["results"][499]["errors"]["product_id"].startswith("Unknown product")
    assert Event.objects.filter(customer__external_id="pg-cust", value="10.50").count() == 499

    again = client.post("/api/v1/events", data=json.dumps(batch[:499]), content_type="application/json")
    assert again.status_code == 200 and again.json()["duplicates"] == 499
    assert Event.objects.count() == 499


@pytest.mark.django_db(transaction=True)
def test_concurrent_resends_store_each_event_once():
    # given: the same batch sent by several clients at the same moment (e.g. a retry racing the original)
    product = ProductFactory()
    batch = [_event(product) for _ in range(200)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        try:
            barrier.wait()
            events_record(events=batch)
        except BaseException as e:  # collected and re-raised in the test thread
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then: no request failed on the unique constraint, and every event is stored exactly once
    assert errors == []
    assert Event.objects.count() == 200

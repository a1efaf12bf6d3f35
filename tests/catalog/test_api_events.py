"""POST /api/v1/events: answers per event, status codes, and every bad body."""

import json

import pytest

from catalog.models import Event
from tests.catalog.api_fixtures import api_client_fixture, api_key_fixture, new_event  # noqa: F401
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"


def _post(client, body, content_type="application/json", **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data=data, content_type=content_type, **extra)


def test_single_event_object_is_accepted(api_client):
    product = ProductFactory()
    event = new_event(product_id=product.pk)
    response = _post(api_client, event)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "results": [{"index": 0, "event_id": event["event_id"], "status": "accepted", "errors": {}}],
    }
    assert Event.objects.filter(event_id=event["event_id"], product=product).exists()


def test_batch_resent_is_answered_as_duplicates(api_client):
    product = ProductFactory()
    batch = [new_event(product_id=product.pk) for _ in range(5)]
    assert _post(api_client, batch).json()["accepted"] == 5
    again = _post(api_client, batch)
    assert again.status_code == 200
    assert again.json()["duplicates"] == 5 and again.json()["accepted"] == 0
    assert Event.objects.count() == 5


def test_mixed_batch_is_207_and_stores_the_good_ones(api_client):
    product = ProductFactory()
    good = new_event(product_id=product.pk)
    bad = new_event(type="teleport", product_id=product.pk)
    response = _post(api_client, [good, bad])
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][1]["status"] == "rejected"
    assert "Unknown event type" in body["results"][1]["errors"]["type"]
    assert list(Event.objects.values_list("event_id", flat=True).order_by()) == [
        Event._meta.get_field("event_id").to_python(good["event_id"])
    ]


def test_all_rejected_is_400_with_error_and_results(api_client):
    response = _post(api_client, [new_event(product_id=123456), new_event(type="search")])
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith("The 2 events were rejected")
    assert body["results"][0]["errors"] == {"product_id": "Unknown product 123456."}
    assert "query" in body["results"][1]["errors"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "fields, field, fragment",
    [
        ({"type": "teleport"}, "type", "Unknown event type"),
        ({"product_id": 987654}, "product_id", "Unknown product"),
        ({"event_id": None}, "event_id", "required"),
        ({"type": None}, "type", "required"),
        ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp", "future"),
    ],
)
def test_bad_event_gets_400_naming_the_field(api_client, fields, field, fragment):
    product = ProductFactory()
    event = {k: v for k, v in {**new_event(product_id=product.pk), **fields}.items() if v is not None}
    response = _post(api_client, event)
    assert response.status_code == 400
    assert fragment in response.json()["results"][0]["errors"][field]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('{"event_id": ', "JSON parse error"),
        ("not json at all", "JSON parse error"),
        ('"a string"', "must be a JSON object"),
        ("42", "must be a JSON object"),
        ("[]", "Empty batch"),
        ("{}", "Empty body"),
        ('{"events": {"type": "view"}}', "'events' must be a list"),
        ('{"events": [], "extra": 1}', "Unknown top-level keys"),
    ],
)
def test_unusable_body_is_400_in_the_error_shape(api_client, body, fragment):
    response = _post(api_client, body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert fragment in payload["error"], payload
    assert "detail" in payload
    assert Event.objects.count() == 0


def test_non_object_items_in_a_list_are_rejected_individually(api_client):
    product = ProductFactory()
    response = _post(api_client, [new_event(product_id=product.pk), "view", 7])
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert "JSON object" in results[1]["errors"]["event"]


def test_batch_of_exactly_the_limit_is_accepted_and_one_more_is_413(api_client, settings):
    settings.RECSITE_EVENT_BATCH_MAX = 20
    product = ProductFactory()
    ok = _post(api_client, [new_event(product_id=product.pk) for _ in range(20)])
    assert ok.status_code == 200 and ok.json()["accepted"] == 20
    too_many = _post(api_client, [new_event(product_id=product.pk) for _ in range(21)])
    assert too_many.status_code == 413
    assert "over the limit of 20" in too_many.json()["error"]
    assert Event.objects.count() == 20


def test_default_limit_is_500(api_client):
    product = ProductFactory()
    response = _post(api_client, [new_event(product_id=product.pk) for _ in range(501)])
    assert response.status_code == 413
    assert Event.objects.count() == 0


def test_oversized_body_is_413_before_parsing(api_client):
    body = (
        json.dumps([new_event(product_id=1, query="x" * 100) for _ in range(1)])[:-1]
        + ", "
        + " " * (5 << 20)
        + "]"
    )
    response = _post(api_client, body)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]


def test_form_encoded_body_is_415(api_client):
    response = api_client.post(URL, data={"type": "view"})
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["error"]


def test_get_is_405(api_client):
    response = api_client.get(URL)
    assert response.status_code == 405
    assert response.json()["error"]

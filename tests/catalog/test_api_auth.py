"""POST /api/v1/events authentication: browser session + CSRF (anonymous too), API keys, throttling."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework_api_key.models import APIKey

from catalog.models import Event
from tests.catalog.api_fixtures import api_client_fixture, api_key_fixture, browser_fixture, new_event  # noqa: F401
from tests.factories import CustomerFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"


def _post(client, body, content_type="application/json", path=URL, **extra):
    return client.post(path, data=json.dumps(body), content_type=content_type, **extra)


# --- browser (session + CSRF) ---


def test_anonymous_post_without_csrf_is_403_with_a_clear_message():
    product = ProductFactory()
    client = Client(enforce_csrf_checks=True)
    response = _post(client, new_event(product_id=product.pk))
    assert response.status_code == 403
    error = response.json()["error"]
    assert "CSRF check failed" in error and "X-CSRFToken" in error and "Api-Key" in error
    assert Event.objects.count() == 0


def test_anonymous_post_with_cookie_but_wrong_token_is_403(browser):
    client, _token = browser
    response = _post(client, new_event(product_id=ProductFactory().pk), HTTP_X_CSRFTOKEN="x" * 64)
    assert response.status_code == 403
    assert Event.objects.count() == 0


def test_anonymous_post_with_csrf_header_is_accepted_and_uses_the_visitor_cookie(browser):
    client, token = browser
    client.cookies["rs_vid"] = "cookievisitor01"
    client.cookies["rs_sid"] = "cookiesession01"
    product = ProductFactory()
    event = new_event(product_id=product.pk)
    del event["visitor_id"]
    response = _post(client, event, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    stored = Event.objects.get()
    assert (stored.visitor_id, stored.session_id, stored.customer_id) == (
        "cookievisitor01",
        "cookiesession01",
        None,
    )


def test_csrf_token_in_query_parameter_works_for_beacons(browser):
    client, token = browser
    product = ProductFactory()
    response = _post(client, [new_event(product_id=product.pk)], path=f"{URL}?csrfmiddlewaretoken={token}")
    assert response.status_code == 200, response.content


def test_sendbeacon_text_plain_envelope_with_token_in_body(browser):
    # navigator.sendBeacon(url, JSON.stringify({...})) sends text/plain and cannot set headers
    client, token = browser
    product = ProductFactory()
    body = {
        "csrfmiddlewaretoken": token,
        "events": [new_event(product_id=product.pk, type="dwell", dwell_ms=4200)],
    }
    response = _post(client, body, content_type="text/plain;charset=UTF-8")
    assert response.status_code == 200, response.content
    assert Event.objects.get().dwell_ms == 4200


def test_token_in_body_of_a_single_event_object(browser):
    client, token = browser
    product = ProductFactory()
    response = _post(client, {**new_event(product_id=product.pk), "csrfmiddlewaretoken": token})
    assert response.status_code == 200, response.content


def test_logged_in_user_without_csrf_is_403():
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = _post(client, new_event(product_id=ProductFactory().pk))
    assert response.status_code == 403


def test_logged_in_customer_gets_events_attributed_and_cannot_claim_another(browser):
    client, token = browser
    user = UserFactory()
    me = CustomerFactory(user=user, external_id="me")
    CustomerFactory(external_id="someone-else")
    client.force_login(user)
    product = ProductFactory()
    mine = new_event(product_id=product.pk)
    claims_other = new_event(product_id=product.pk, customer="someone-else")
    response = _post(client, [mine, claims_other], HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 207, response.content
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1]
    assert results[0]["status"] == "accepted"
    assert "cannot choose the customer" in results[1]["errors"]["customer"]
    assert list(Event.objects.values_list("customer_id", flat=True)) == [me.pk]


# --- API keys ---


def test_api_key_needs_no_csrf_and_may_name_the_customer(api_client):
    customer = CustomerFactory(external_id="crm-77")
    response = _post(api_client, new_event(product_id=ProductFactory().pk, customer="crm-77"))
    assert response.status_code == 200, response.content
    assert Event.objects.get().customer == customer


@pytest.mark.parametrize("header", ["Api-Key nope.nothing", "Api-Key ", "Api-Key garbage-without-dot"])
def test_bad_api_key_is_401_and_does_not_fall_back_to_the_session(header):
    client = Client(HTTP_AUTHORIZATION=header)  # CSRF checks off: a browser fallback would succeed
    response = _post(client, new_event(product_id=ProductFactory().pk))
    assert response.status_code in (401, 403)
    if header.strip() != "Api-Key":
        assert response.status_code == 401
        assert response.json()["error"] == "Invalid, expired or revoked API key."
        assert response["WWW-Authenticate"] == "Api-Key"
    assert Event.objects.count() == 0


def test_revoked_and_expired_keys_are_401():
    revoked, revoked_key = APIKey.objects.create_key(name="old")
    revoked.revoked = True
    revoked.save()
    _, expired_key = APIKey.objects.create_key(name="exp", expiry_date=timezone.now() - timedelta(days=1))
    product = ProductFactory()
    for key in (revoked_key, expired_key):
        response = _post(Client(HTTP_AUTHORIZATION=f"Api-Key {key}"), new_event(product_id=product.pk))
        assert response.status_code == 401, key
    assert Event.objects.count() == 0


def test_other_authorization_schemes_are_treated_as_a_browser_request():
    response = _post(Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION="Bearer abc"), new_event())
    assert response.status_code == 403


# --- throttling ---


def _rates(settings, events_rate):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "events": events_rate,
        },
    }


def test_events_are_throttled_per_api_key(settings, api_client):
    _rates(settings, "2/min")
    product = ProductFactory()
    codes = [_post(api_client, new_event(product_id=product.pk)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    throttled = _post(api_client, new_event(product_id=product.pk))
    assert "throttled" in throttled.json()["error"].lower()
    assert int(throttled["Retry-After"]) > 0
    # a second key has its own budget
    _, other = APIKey.objects.create_key(name="other")
    assert (
        _post(Client(HTTP_AUTHORIZATION=f"Api-Key {other}"), new_event(product_id=product.pk)).status_code
        == 200
    )
    assert Event.objects.count() == 3


def test_anonymous_browsers_are_throttled_by_ip(settings, browser):
    _rates(settings, "1/min")
    client, token = browser
    product = ProductFactory()
    first = _post(client, new_event(product_id=product.pk), HTTP_X_CSRFTOKEN=token)
    second = _post(client, new_event(product_id=product.pk), HTTP_X_CSRFTOKEN=token)
    assert (first.status_code, second.status_code) == (200, 429)

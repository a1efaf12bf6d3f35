"""GET /api/v1/recommendations/<widget_slug>: shape, shopper resolution, bad inputs, throttling, schema."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from recommender.models import Impression
from tests.catalog.api_fixtures import api_client_fixture, api_key_fixture  # noqa: F401
from tests.factories import CustomerFactory, UserFactory
from tests.recommender.serving_fixtures import (  # noqa: F401
    _serving_fresh,
    model_strategies,
    model_version_make,
    shop_create,
    widget_make,
)

pytestmark = pytest.mark.django_db


def url(slug: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("recommender_api:recommendations", args=[slug]) + (f"?{query}" if query else "")


def test_items_carry_product_fields_reason_and_impression(api_client, model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)
    widget_make("home-personalized", strategy="personalized", num_items=3)
    customer = shop.customers[0]
    response = api_client.get(url("home-personalized", customer=customer.external_id, k=2))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["widget"] == "home-personalized"
    assert len(body["items"]) == 2
    item = body["items"][0]
    assert set(item) == {
        "product_id",
        "sku",
        "title",
        "price",
        "currency",
        "url",
        "image",
        "score",
        "reason",
        "impression_id",
        "engine",
        "position",
    }
    assert item["url"] == f"/products/{item['product_id']}/"
    assert item["image"] == f"/products/{item['product_id']}/image.svg"
    assert item["reason"].startswith("Because you viewed")
    imp = Impression.objects.get(id=item["impression_id"])
    assert imp.customer_id == customer.pk
    assert str(imp.request_id) == body["request_id"]


def test_visitor_session_items_and_product(api_client, model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)
    widget_make("pdp", strategy="similar_items", num_items=2)
    widget_make("sess", strategy="session_based", num_items=2)
    anchor = shop.clusters[1][0]
    r = api_client.get(url("pdp", product=anchor.pk))
    assert r.status_code == 200
    assert {i["product_id"] for i in r.json()["items"]} == {p.pk for p in shop.clusters[1][1:3]}
    r = api_client.get(url("sess", visitor="v-123", session_items=f"{anchor.pk}"))
    assert r.status_code == 200
    assert Impression.objects.filter(visitor_id="v-123").count() == 2


def test_browser_uses_login_session_and_cannot_pick_a_customer():
    shop_create()
    widget_make("home-trending", strategy="trending", num_items=2)
    user = UserFactory()
    customer = CustomerFactory(user=user)
    browser = Client()
    browser.force_login(user)
    r = browser.get(url("home-trending"))
    assert r.status_code == 200
    assert Impression.objects.filter(customer=customer).count() == 2
    r = browser.get(url("home-trending", customer=customer.external_id))
    assert r.status_code == 403
    assert "cannot choose the customer" in r.json()["error"]


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"k": "0"}, 400, "between 1 and 100"),
        ({"k": "101"}, 400, "between 1 and 100"),
        ({"k": "ten"}, 400, "whole number"),
        ({"k": "2.5"}, 400, "whole number"),
        ({"product": "abc"}, 400, "product must be"),
        ({"product": "1,2"}, 400, "one product id"),
        ({"session_items": "1,,x"}, 400, "session_items must be"),
        ({"session_items": ",".join(str(i) for i in range(1, 60))}, 400, "at most 50"),
        ({"visitor": "bad visitor!"}, 400, "visitor must be"),
        ({"colour": "red"}, 400, "Unknown parameter(s): colour"),
        ({"customer": "nobody"}, 404, "Unknown customer 'nobody'"),
        ({"product": "999999"}, 404, "Unknown product 999999"),
        ({"session_items": "999998"}, 404, "Unknown product(s) in session_items: 999998"),
    ],
)
def test_bad_inputs_are_clear_4xx(api_client, params, status, fragment):
    shop_create()
    widget_make("home-trending", strategy="trending")
    r = api_client.get(url("home-trending", **params))
    assert r.status_code == status, r.content
    assert fragment in r.json()["error"]
    assert not Impression.objects.exists()


def test_unknown_and_disabled_widgets_are_404(api_client):
    widget_make("off", strategy="trending", enabled=False)
    for slug in ("nope", "off"):
        r = api_client.get(url(slug))
        assert r.status_code == 404
        assert "No enabled widget" in r.json()["error"]


def test_invalid_api_key_is_rejected():
    widget_make("home-trending", strategy="trending")
    r = Client(HTTP_AUTHORIZATION="Api-Key not-a-key").get(url("home-trending"))
    assert r.status_code in (401, 403)


def test_throttled(api_client, settings):
    shop_create()
    widget_make("home-trending", strategy="trending", num_items=1)
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "recommendations": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    codes = [api_client.get(url("home-trending")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_schema_documents_the_endpoint(client):
    r = client.get(reverse("api-schema") + "?format=json")
    assert r.status_code == 200
    op = r.json()["paths"]["/api/v1/recommendations/{widget_slug}"]["get"]
    assert op["operationId"] == "recommendations_get"
    names = {p["name"] for p in op["parameters"]}
    assert {"customer", "visitor", "product", "k", "session_items"} <= names
    assert {"200", "400", "404"} <= set(op["responses"])


def test_request_ids_differ_per_request(api_client):
    shop_create()
    widget_make("home-trending", strategy="trending", num_items=1)
    a = api_client.get(url("home-trending")).json()["request_id"]
    b = api_client.get(url("home-trending")).json()["request_id"]
    assert uuid.UUID(a) != uuid.UUID(b)


def test_cached_request_query_count_does_not_grow_with_k(api_client, model_strategies):
    """No N+1: the same queries for 2 or 8 items (k=8 here also reads the trending fallback list once)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog.models import Product
    from recommender.batch import candidates_precompute

    shop = shop_create()
    version = model_version_make(shop=shop)
    widget_make("home-personalized", strategy="personalized")
    customer = shop.customers[0]
    candidates_precompute(version=version, customer_ids=[customer.pk])
    api_client.get(url("home-personalized", customer=customer.external_id, k=2))  # warm the category memo
    counts = {}
    for k in (2, 8):
        with CaptureQueriesContext(connection) as ctx:
            r = api_client.get(url("home-personalized", customer=customer.external_id, k=k))
        assert r.status_code == 200 and len(r.json()["items"]) == k
        counts[k] = len(ctx.captured_queries)
        item = r.json()["items"][0]
        assert item["price"] == str(Product.objects.get(pk=item["product_id"]).price)
    assert counts[2] <= 8, counts
    assert counts[8] <= counts[2] + 3, (
        counts
    )  # + trending list (two windows) + the fallback items' attributes


def test_widget_configuration_is_read_through_the_cache_and_admin_saves_refresh_it(api_client, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recommender.models import Widget, WidgetRule
    from tests.factories import UserFactory

    shop_create()
    widget = widget_make("home-trending", strategy="trending", num_items=3)
    api_client.get(url("home-trending"))
    with CaptureQueriesContext(connection) as ctx:
        assert api_client.get(url("home-trending")).status_code == 200
    assert not [q for q in ctx.captured_queries if "recommender_widget" in q["sql"]]
    # a change saved through the admin shows at once
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    data = {
        "slug": "home-trending",
        "title": "Hot",
        "placement": "home",
        "enabled": "on",
        "strategy": "trending",
        "engine": "",
        "model_version": "",
        "num_items": 1,
        "fallback_strategy": "popular",
        "params": "{}",
        "rules-TOTAL_FORMS": "0",
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
    }
    assert client.post(reverse("admin:recommender_widget_change", args=[widget.pk]), data).status_code == 302
    body = api_client.get(url("home-trending")).json()
    assert body["title"] == "Hot" and len(body["items"]) == 1
    # disabling it in the admin makes it 404 at once
    data.pop("enabled")
    client.post(reverse("admin:recommender_widget_change", args=[widget.pk]), data)
    assert api_client.get(url("home-trending")).status_code == 404
    assert Widget.objects.filter(pk=widget.pk, enabled=False).exists() and not WidgetRule.objects.exists()

"""Catalog admin: every page renders for a superuser, lists cost a fixed number of queries, timelines."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from catalog.models import (
    Brand,
    Category,
    Customer,
    Event,
    Order,
    OrderLine,
    Product,
    ShoppingSession,
    Visitor,
)
from tests.factories import (
    CustomerFactory,
    EventFactory,
    OrderLineFactory,
    ProductFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
MODELS = [Category, Brand, Product, Customer, Visitor, ShoppingSession, Event, Order, OrderLine]


@pytest.fixture
def admin_client() -> Client:
    user = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def shop(db) -> dict:
    customer = CustomerFactory(external_id="cust-timeline", region="north")
    visitor = Visitor.objects.create(id="visitor-abc123", customer=customer)
    now = timezone.now()
    session = ShoppingSession.objects.create(
        id="session-abc123",
        visitor=visitor,
        customer=customer,
        started_at=now,
        last_seen=now,
        device="mobile",
    )
    product = ProductFactory(title="Mirrorless Camera X100", stock=0)
    line = OrderLineFactory(order__customer=customer, product=product)
    old = EventFactory(customer=customer, product=product, timestamp=now - timedelta(days=2), type="view")
    new = EventFactory(
        customer=customer, product=product, timestamp=now - timedelta(hours=1), type="add_to_cart"
    )
    # an event from the customer's browser before login (no customer on it)
    EventFactory(customer=None, visitor_id="visitor-abc123", product=product, type="click", timestamp=now)
    return {
        "customer": customer,
        "visitor": visitor,
        "session": session,
        "product": product,
        "line": line,
        "events": (old, new),
    }


def test_every_catalog_model_is_registered():
    for model in MODELS:
        assert site.is_registered(model), model.__name__


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_page_render(admin_client, shop, model):
    obj = model.objects.first()
    assert obj is not None
    changelist = admin_client.get(reverse(f"admin:catalog_{model._meta.model_name}_changelist"))
    assert changelist.status_code == 200
    change = admin_client.get(reverse(f"admin:catalog_{model._meta.model_name}_change", args=[obj.pk]))
    assert change.status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_search_and_filters_do_not_error(admin_client, shop, model):
    url = reverse(f"admin:catalog_{model._meta.model_name}_changelist")
    for term in ["x", "cust-timeline", str(uuid.uuid4()), "123"]:
        response = admin_client.get(url, {"q": term})
        assert response.status_code == 200, (model, term)


def test_add_pages_render_where_adding_is_allowed(admin_client):
    for model in [Category, Brand, Product, Customer, Order]:
        response = admin_client.get(reverse(f"admin:catalog_{model._meta.model_name}_add"))
        assert response.status_code == 200, model
    # events are facts recorded by the API, not typed in
    assert admin_client.get(reverse("admin:catalog_event_add")).status_code == 403


def test_customer_page_shows_timeline_newest_first_and_orders(admin_client, shop):
    customer = shop["customer"]
    response = admin_client.get(reverse("admin:catalog_customer_change", args=[customer.pk]))
    html = response.content.decode()
    assert "Mirrorless Camera X100" in html
    assert "Add to cart" in html and "View" in html and "Click" in html  # includes the pre-login click
    assert html.index("Add to cart") < html.index("<td>View</td>")  # newest first
    assert f"#{shop['line'].order_id}" in html
    assert f"customer__exact={customer.pk}" in html


def test_customer_timeline_is_capped(admin_client, shop, settings):
    customer = shop["customer"]
    product = shop["product"]
    now = timezone.now()
    Event.objects.bulk_create(
        [
            Event(type="view", product=product, customer=customer, timestamp=now - timedelta(minutes=i))
            for i in range(80)
        ]
    )
    html = admin_client.get(reverse("admin:catalog_customer_change", args=[customer.pk])).content.decode()
    timeline = html[html.index('class="rs-timeline"') :]
    timeline = timeline[: timeline.index("</table>")]
    assert timeline.count("<tr>") == 1 + 50  # header + capped rows


def test_event_filter_link_from_customer_page_works(admin_client, shop):
    customer = shop["customer"]
    response = admin_client.get(reverse("admin:catalog_event_changelist"), {"customer__exact": customer.pk})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 2


def test_product_filters(admin_client, shop):
    ProductFactory(stock=100, price="600.00")
    url = reverse("admin:catalog_product_changelist")
    out = admin_client.get(url, {"stock_level": "out"})
    assert [p.pk for p in out.context["cl"].result_list] == [shop["product"].pk]
    expensive = admin_client.get(url, {"price_band": "500-"})
    assert [str(p.price) for p in expensive.context["cl"].result_list] == ["600.00"]
    active = admin_client.get(url, {"is_active__exact": "1"})
    assert active.context["cl"].result_count == 2


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("model", [Product, Event, Order, OrderLine, Customer, Category, Brand])
def test_changelist_query_count_does_not_grow_with_rows(admin_client, shop, model):
    url = reverse(f"admin:catalog_{model._meta.model_name}_changelist")
    few = _count_queries(admin_client, url)
    for _ in range(5):
        customer = CustomerFactory()
        OrderLineFactory(order__customer=customer)
        EventFactory(customer=customer)
    many = _count_queries(admin_client, url)
    assert many == few, f"{model.__name__}: {few} queries with few rows, {many} with more"


def test_order_change_page_query_count_does_not_grow_with_lines(admin_client):
    line = OrderLineFactory()
    url = reverse("admin:catalog_order_change", args=[line.order_id])
    few = _count_queries(admin_client, url)
    for _ in range(4):
        OrderLineFactory(order=line.order)
    assert _count_queries(admin_client, url) == few


def test_product_bulk_actions(admin_client, shop):
    url = reverse("admin:catalog_product_changelist")
    pk = shop["product"].pk
    admin_client.post(url, {"action": "deactivate", "_selected_action": [pk]})
    assert Product.objects.get(pk=pk).is_active is False
    admin_client.post(url, {"action": "activate", "_selected_action": [pk]})
    assert Product.objects.get(pk=pk).is_active is True


def test_customer_change_page_query_count_does_not_grow_with_activity(admin_client, shop):
    customer = shop["customer"]
    url = reverse("admin:catalog_customer_change", args=[customer.pk])
    few = _count_queries(admin_client, url)
    for _ in range(5):
        EventFactory(customer=customer)  # each on its own new product
        OrderLineFactory(order__customer=customer)
    assert _count_queries(admin_client, url) == few

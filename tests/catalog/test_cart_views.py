"""Cart pages through the test client: posts, messages, events recorded server-side."""

import uuid

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from catalog.models import Event, Product
from tests.factories import CustomerFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _visit(client) -> str:
    client.get(reverse("catalog:home"))
    return client.cookies["rs_vid"].value


def test_add_to_cart_post_records_event_with_the_visitor_cookie(client):
    product = ProductFactory(title="Kettle", stock=5)
    visitor = _visit(client)
    response = client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": "2"})
    assert response.status_code == 302 and response["Location"] == reverse("catalog:cart")
    event = Event.objects.get(type="add_to_cart")
    assert (event.product_id, event.quantity, event.visitor_id) == (product.pk, 2, visitor)
    assert event.session_id == client.cookies["rs_sid"].value
    assert event.context["source"] == "server"
    cart = client.get(reverse("catalog:cart"))
    assert "Kettle" in cart.content.decode()
    assert cart.context["cart"].count == 2
    assert cart.context["cart_count"] == 2


def test_add_carries_impression_id_from_the_form(client):
    product = ProductFactory()
    impression = uuid.uuid4()
    client.post(
        reverse("catalog:cart_add", args=[product.pk]), {"quantity": "1", "impression_id": str(impression)}
    )
    assert Event.objects.get().impression_id == impression


def test_logged_in_add_is_attributed_to_the_customer(client):
    user = UserFactory()
    customer = CustomerFactory(user=user)
    client.force_login(user)
    product = ProductFactory()
    client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": "1"})
    assert Event.objects.get().customer == customer


@pytest.mark.parametrize("quantity", ["0", "-3", "abc", "", "100", "1.5"])
def test_bad_quantity_gives_a_message_and_no_event(client, quantity):
    product = ProductFactory()
    response = client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": quantity})
    assert response.status_code == 302 and response["Location"] == reverse(
        "catalog:product", args=[product.pk]
    )
    assert any("Could not add to cart" in m for m in _messages(response))
    assert not Event.objects.exists()


def test_bad_impression_id_in_form_is_a_message_not_a_500(client):
    product = ProductFactory()
    response = client.post(
        reverse("catalog:cart_add", args=[product.pk]), {"quantity": "1", "impression_id": "zzz"}
    )
    assert response.status_code == 302
    assert not Event.objects.exists()


def test_over_stock_gives_the_stock_message(client):
    product = ProductFactory(title="Kettle", stock=1)
    response = client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": "3"}, follow=True)
    assert "Only 1 of “Kettle” left in stock" in response.content.decode()
    assert not Event.objects.exists()


def test_unknown_product_add_is_404(client):
    assert client.post(reverse("catalog:cart_add", args=[424242]), {"quantity": "1"}).status_code == 404


def test_next_redirect_is_kept_on_site_only(client):
    product = ProductFactory()
    url = reverse("catalog:cart_add", args=[product.pk])
    stay = client.post(url, {"quantity": "1", "next": "/c/somewhere/?page=2"})
    assert stay["Location"] == "/c/somewhere/?page=2"
    evil = client.post(url, {"quantity": "1", "next": "https://evil.example/"})
    assert evil["Location"] == reverse("catalog:cart")


def test_update_and_remove_through_the_cart_page(client):
    product = ProductFactory(stock=10)
    client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": "1"})
    client.post(reverse("catalog:cart_update", args=[product.pk]), {"quantity": "4"})
    assert client.get(reverse("catalog:cart")).context["cart"].count == 4
    client.post(reverse("catalog:cart_remove", args=[product.pk]))
    assert client.get(reverse("catalog:cart")).context["cart"].is_empty
    assert list(Event.objects.order_by("id").values_list("type", "quantity")) == [
        ("add_to_cart", 1),
        ("add_to_cart", 3),
        ("remove_from_cart", 4),
    ]


@pytest.mark.parametrize("quantity", ["abc", "-1", "1000", ""])
def test_bad_update_quantity_gives_a_message(client, quantity):
    product = ProductFactory()
    client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": "1"})
    response = client.post(reverse("catalog:cart_update", args=[product.pk]), {"quantity": quantity})
    assert response.status_code == 302
    assert any(m.startswith("Quantity:") for m in _messages(response))
    assert client.get(reverse("catalog:cart")).context["cart"].count == 1


def test_update_or_remove_of_a_product_not_in_the_cart(client):
    response = client.post(reverse("catalog:cart_update", args=[555]), {"quantity": "1"})
    assert "not in your cart" in " ".join(_messages(response))
    response = client.post(reverse("catalog:cart_remove", args=[555]))
    assert "not in your cart" in " ".join(_messages(response))


def test_cart_shows_stock_problems_and_drops_vanished_products(client):
    product = ProductFactory(title="Kettle", stock=5)
    gone = ProductFactory(title="Old radio")
    client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": "4"})
    client.post(reverse("catalog:cart_add", args=[gone.pk]), {"quantity": "1"})
    Product.objects.filter(pk=product.pk).update(stock=2)
    Product.objects.filter(pk=gone.pk).update(is_active=False)
    response = client.get(reverse("catalog:cart"))
    html = response.content.decode()
    assert "Only 2 left in stock" in html
    assert [line.product.title for line in response.context["cart"].lines] == ["Kettle"]
    assert "not sold any more" in html
    assert response.context["cart"].has_problems
    # the vanished product is dropped from the session, so the notice shows once
    again = client.get(reverse("catalog:cart"))
    assert "not sold any more" not in again.content.decode()


def test_cart_page_has_cross_sell_slot_with_cart_items(client):
    product = ProductFactory()
    client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": "1"})
    html = client.get(reverse("catalog:cart")).content.decode()
    assert 'data-rs-widget="cart-cross-sell"' in html
    assert f"session_items={product.pk}" in html

"""Checkout and order pages through the test client."""

import pytest
from django.urls import reverse

from catalog.models import Event, Order, Product
from tests.factories import CustomerFactory, OrderFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def _add(client, product, quantity=1):
    client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": str(quantity)})


def test_checkout_places_order_records_purchase_and_empties_cart(client):
    product = ProductFactory(title="Kettle", stock=4)
    _add(client, product, 2)
    visitor = client.cookies["rs_vid"].value
    page = client.get(reverse("catalog:checkout"))
    assert page.status_code == 200 and "Kettle" in page.content.decode()
    response = client.post(reverse("catalog:checkout"), {"name": "Ada", "email": "ada@example.com"})
    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("catalog:order", args=[order.pk])
    assert (order.name, order.email, order.visitor_id) == ("Ada", "ada@example.com", visitor)
    assert Product.objects.get(pk=product.pk).stock == 2
    purchase = Event.objects.get(type="purchase")
    assert (purchase.product_id, purchase.quantity, purchase.visitor_id) == (product.pk, 2, visitor)
    assert client.get(reverse("catalog:cart")).context["cart"].is_empty
    confirmation = client.get(response["Location"])
    assert confirmation.status_code == 200 and f"Order #{order.pk}" in confirmation.content.decode()


def test_empty_cart_checkout_redirects_with_a_message(client):
    response = client.get(reverse("catalog:checkout"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("catalog:cart")
    assert "Your cart is empty" in response.content.decode()
    response = client.post(
        reverse("catalog:checkout"), {"name": "Ada", "email": "ada@example.com"}, follow=True
    )
    assert "Your cart is empty" in response.content.decode()
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "data, error",
    [
        ({"name": "", "email": "ada@example.com"}, "This field is required"),
        ({"name": "   ", "email": "ada@example.com"}, "This field is required"),
        ({"name": "Ada", "email": "not-an-email"}, "Enter a valid email address"),
        ({"name": "A" * 200, "email": "ada@example.com"}, "at most 120 characters"),
    ],
)
def test_invalid_checkout_form_re_renders_with_errors(client, data, error):
    product = ProductFactory()
    _add(client, product)
    response = client.post(reverse("catalog:checkout"), data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Order.objects.exists()


def test_out_of_stock_at_checkout_shows_the_problem(client):
    product = ProductFactory(title="Kettle", stock=3)
    _add(client, product, 3)
    Product.objects.filter(pk=product.pk).update(stock=1)
    response = client.post(reverse("catalog:checkout"), {"name": "Ada", "email": "ada@example.com"})
    assert response.status_code == 200
    assert "Only 1 of “Kettle” left in stock (your cart has 3)." in response.content.decode()
    assert not Order.objects.exists() and not Event.objects.filter(type="purchase").exists()
    assert Product.objects.get(pk=product.pk).stock == 1


def test_logged_in_checkout_links_customer_and_prefills(client):
    user = UserFactory(first_name="Grace", last_name="Hopper")
    customer = CustomerFactory(user=user)
    client.force_login(user)
    product = ProductFactory()
    _add(client, product)
    page = client.get(reverse("catalog:checkout"))
    assert page.context["form"].initial == {"name": "Grace Hopper", "email": user.email}
    client.post(reverse("catalog:checkout"), {"name": "Grace Hopper", "email": user.email})
    order = Order.objects.get()
    assert order.customer == customer
    assert Event.objects.get(type="purchase").customer == customer
    assert client.get(reverse("catalog:order", args=[order.pk])).status_code == 200


def test_order_page_is_private(client):
    other = OrderFactory()
    assert client.get(reverse("catalog:order", args=[other.pk])).status_code == 404
    assert client.get(reverse("catalog:order", args=[987654])).status_code == 404
    user = UserFactory()
    CustomerFactory(user=user)
    client.force_login(user)
    assert client.get(reverse("catalog:order", args=[other.pk])).status_code == 404


def test_checkout_rejects_other_methods(client):
    assert client.put(reverse("catalog:checkout")).status_code == 405

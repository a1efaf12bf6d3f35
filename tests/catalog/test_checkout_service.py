"""catalog.services.order_place: order, lines, stock and purchase events in one transaction."""

import uuid
from decimal import Decimal
from unittest import mock

import pytest

from catalog.models import Event, Order, OrderLine, Product
from catalog.services import CheckoutError, Shopper, order_place
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper():
    return Shopper(visitor_id="visitor-0001", session_id="session-0001", context={"page": "/checkout/"})


def test_order_creates_lines_decrements_stock_and_records_purchases(shopper):
    kettle = ProductFactory(price=Decimal("20.00"), stock=5)
    toaster = ProductFactory(price=Decimal("35.50"), stock=1)
    impression = uuid.uuid4()
    order = order_place(
        cart={str(kettle.pk): 2, str(toaster.pk): 1},
        impressions={str(toaster.pk): str(impression)},
        shopper=shopper,
        name="Ada Lovelace",
        email="ada@example.com",
    )
    assert order.total == Decimal("75.50")
    assert (order.name, order.email, order.visitor_id, order.customer) == (
        "Ada Lovelace",
        "ada@example.com",
        "visitor-0001",
        None,
    )
    lines = {line.product_id: line for line in OrderLine.objects.filter(order=order)}
    assert (lines[kettle.pk].quantity, lines[kettle.pk].unit_price, lines[kettle.pk].impression_id) == (
        2,
        Decimal("20.00"),
        None,
    )
    assert lines[toaster.pk].impression_id == impression
    assert Product.objects.get(pk=kettle.pk).stock == 3
    assert Product.objects.get(pk=toaster.pk).stock == 0
    purchases = {e.product_id: e for e in Event.objects.filter(type="purchase")}
    assert set(purchases) == {kettle.pk, toaster.pk}
    assert (purchases[kettle.pk].quantity, purchases[kettle.pk].value) == (2, Decimal("40.00"))
    assert purchases[toaster.pk].impression_id == impression
    assert purchases[kettle.pk].context["order_id"] == order.pk
    assert purchases[kettle.pk].visitor_id == "visitor-0001"


def test_customer_order_is_linked(shopper):
    customer = CustomerFactory()
    product = ProductFactory()
    order = order_place(
        cart={str(product.pk): 1},
        shopper=Shopper(visitor_id="v-12345678", customer=customer),
        name="A",
        email="a@example.com",
    )
    assert order.customer == customer
    assert Event.objects.get(type="purchase").customer == customer


def test_empty_cart_is_refused(shopper):
    with pytest.raises(CheckoutError, match="cart is empty"):
        order_place(cart={}, shopper=shopper, name="A", email="a@example.com")
    with pytest.raises(CheckoutError):
        order_place(cart={"x": "y", "3": 0}, shopper=shopper, name="A", email="a@example.com")


def test_out_of_stock_refuses_the_whole_order_and_changes_nothing(shopper):
    fine = ProductFactory(title="Kettle", stock=5)
    scarce = ProductFactory(title="Toaster", stock=1)
    gone = ProductFactory(title="Radio", stock=0)
    with pytest.raises(CheckoutError) as excinfo:
        order_place(
            cart={str(fine.pk): 1, str(scarce.pk): 2, str(gone.pk): 1},
            shopper=shopper,
            name="A",
            email="a@example.com",
        )
    assert excinfo.value.problems == [
        "Only 1 of “Toaster” left in stock (your cart has 2).",
        "“Radio” is out of stock; please remove it from your cart.",
    ]
    assert not Order.objects.exists() and not Event.objects.exists()
    assert Product.objects.get(pk=fine.pk).stock == 5


def test_unknown_or_inactive_product_is_refused(shopper):
    inactive = ProductFactory(is_active=False)
    for cart in ({"999999": 1}, {str(inactive.pk): 1}):
        with pytest.raises(CheckoutError, match="not sold any more"):
            order_place(cart=cart, shopper=shopper, name="A", email="a@example.com")
    assert not Order.objects.exists()


def test_stock_taken_by_a_concurrent_checkout_rolls_everything_back(shopper):
    # given: the stock check passes, but another checkout takes the last unit before our guarded update
    first = ProductFactory(stock=5)
    contested = ProductFactory(title="Last one", stock=1)
    real_filter = Product.objects.filter

    def racing_filter(*args, **kwargs):
        if kwargs.get("stock__gte") is not None and kwargs.get("pk") == contested.pk:
            Product.objects.filter(pk=contested.pk).update(stock=0)  # the other shopper wins
            return real_filter(*args, **kwargs)
        return real_filter(*args, **kwargs)

    # when
    with (
        mock.patch.object(Product.objects, "filter", side_effect=racing_filter),
        pytest.raises(CheckoutError, match="sold out while you were checking out"),
    ):
        order_place(
            cart={str(first.pk): 2, str(contested.pk): 1}, shopper=shopper, name="A", email="a@example.com"
        )
    # then: the first product's decrement was rolled back too
    assert Product.objects.get(pk=first.pk).stock == 5
    assert not Order.objects.exists() and not Event.objects.filter(type="purchase").exists()


def test_mixed_currencies_are_refused(shopper):
    usd = ProductFactory(currency="USD")
    eur = ProductFactory(currency="EUR")
    with pytest.raises(CheckoutError, match="currencies"):
        order_place(cart={str(usd.pk): 1, str(eur.pk): 1}, shopper=shopper, name="A", email="a@example.com")


def test_bad_impression_in_session_does_not_block_the_order(shopper):
    product = ProductFactory()
    order = order_place(
        cart={str(product.pk): 1},
        impressions={str(product.pk): "garbage"},
        shopper=shopper,
        name="A",
        email="a@example.com",
    )
    assert order.lines.get().impression_id is None
    assert Event.objects.get(type="purchase").impression_id is None

"""catalog.services.cart: session cart changes and their server-side events."""

import uuid

import pytest

from catalog.models import Event, Product
from catalog.services import (
    CartError,
    ProductUnavailable,
    Shopper,
    cart_clear,
    cart_item_add,
    cart_item_remove,
    cart_item_update,
    cart_read,
)
from catalog.services.cart import MAX_LINE_QUANTITY
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper():
    return Shopper(
        visitor_id="visitor-0001", session_id="session-0001", context={"page": "/p/", "device": "desktop"}
    )


def test_add_records_add_to_cart_event_with_price_and_identity(shopper):
    product = ProductFactory(stock=5)
    session = {}
    change = cart_item_add(session=session, product_id=product.pk, quantity=2, shopper=shopper)
    assert change.quantity == 2 and change.delta == 2
    assert cart_read(session=session) == {str(product.pk): 2}
    event = Event.objects.get()
    assert (event.type, event.product_id, event.quantity, event.price) == (
        "add_to_cart",
        product.pk,
        2,
        product.price,
    )
    assert (event.visitor_id, event.session_id, event.customer_id) == ("visitor-0001", "session-0001", None)
    assert event.context["page"] == "/p/"


def test_add_for_a_customer_links_the_event(shopper):
    customer = CustomerFactory()
    product = ProductFactory()
    logged_in = Shopper(visitor_id="visitor-0001", session_id="s", customer=customer)
    cart_item_add(session={}, product_id=product.pk, quantity=1, shopper=logged_in)
    assert Event.objects.get().customer == customer


def test_adding_twice_accumulates_and_carries_the_impression(shopper):
    product = ProductFactory(stock=5)
    impression = uuid.uuid4()
    session = {}
    cart_item_add(
        session=session, product_id=product.pk, quantity=1, shopper=shopper, impression_id=impression
    )
    cart_item_add(session=session, product_id=product.pk, quantity=2, shopper=shopper)
    assert cart_read(session=session)[str(product.pk)] == 3
    # the second add (no impression given) still carries the remembered one
    assert list(Event.objects.values_list("impression_id", flat=True)) == [impression, impression]


def test_malformed_impression_id_is_ignored_not_fatal(shopper):
    product = ProductFactory()
    cart_item_add(session={}, product_id=product.pk, quantity=1, shopper=shopper, impression_id="not-a-uuid")
    assert Event.objects.get().impression_id is None


@pytest.mark.parametrize("quantity", [0, -1, MAX_LINE_QUANTITY + 1, "2", 1.5, True])
def test_bad_quantity_is_refused_and_records_nothing(shopper, quantity):
    product = ProductFactory()
    session = {}
    with pytest.raises(CartError):
        cart_item_add(session=session, product_id=product.pk, quantity=quantity, shopper=shopper)
    assert cart_read(session=session) == {}
    assert not Event.objects.exists()


def test_more_than_stock_is_refused_with_a_clear_message(shopper):
    product = ProductFactory(title="Kettle", stock=3)
    session = {}
    cart_item_add(session=session, product_id=product.pk, quantity=2, shopper=shopper)
    with pytest.raises(
        CartError, match="Only 3 of “Kettle” left in stock \\(you already have 2 in your cart\\)"
    ):
        cart_item_add(session=session, product_id=product.pk, quantity=2, shopper=shopper)
    assert cart_read(session=session)[str(product.pk)] == 2
    assert Event.objects.count() == 1


def test_out_of_stock_is_refused(shopper):
    product = ProductFactory(title="Kettle", stock=0)
    with pytest.raises(CartError, match="out of stock"):
        cart_item_add(session={}, product_id=product.pk, quantity=1, shopper=shopper)


@pytest.mark.parametrize("make_missing", ["unknown", "inactive"])
def test_unknown_or_inactive_product_is_unavailable(shopper, make_missing):
    product_id = 987654
    if make_missing == "inactive":
        product_id = ProductFactory(is_active=False).pk
    with pytest.raises(ProductUnavailable):
        cart_item_add(session={}, product_id=product_id, quantity=1, shopper=shopper)


def test_update_records_the_difference_as_add_or_remove(shopper):
    product = ProductFactory(stock=10)
    session = {}
    cart_item_add(session=session, product_id=product.pk, quantity=2, shopper=shopper)
    up = cart_item_update(session=session, product_id=product.pk, quantity=5, shopper=shopper)
    down = cart_item_update(session=session, product_id=product.pk, quantity=1, shopper=shopper)
    same = cart_item_update(session=session, product_id=product.pk, quantity=1, shopper=shopper)
    assert (up.delta, down.delta, same.delta) == (3, -4, 0)
    assert list(Event.objects.order_by("id").values_list("type", "quantity")) == [
        ("add_to_cart", 2),
        ("add_to_cart", 3),
        ("remove_from_cart", 4),
    ]
    assert cart_read(session=session)[str(product.pk)] == 1


def test_update_to_zero_removes(shopper):
    product = ProductFactory()
    session = {}
    cart_item_add(session=session, product_id=product.pk, quantity=2, shopper=shopper)
    cart_item_update(session=session, product_id=product.pk, quantity=0, shopper=shopper)
    assert cart_read(session=session) == {}
    assert Event.objects.order_by("id").last().type == "remove_from_cart"


def test_update_above_stock_and_of_unknown_line_are_refused(shopper):
    product = ProductFactory(stock=3)
    session = {}
    cart_item_add(session=session, product_id=product.pk, quantity=1, shopper=shopper)
    with pytest.raises(CartError, match="Only 3"):
        cart_item_update(session=session, product_id=product.pk, quantity=4, shopper=shopper)
    with pytest.raises(CartError, match="not in your cart"):
        cart_item_update(session=session, product_id=product.pk + 1, quantity=1, shopper=shopper)
    with pytest.raises(CartError):
        cart_item_update(session=session, product_id=product.pk, quantity=-2, shopper=shopper)


def test_remove_records_the_removed_quantity(shopper):
    product = ProductFactory()
    session = {}
    cart_item_add(session=session, product_id=product.pk, quantity=3, shopper=shopper)
    change = cart_item_remove(session=session, product_id=product.pk, shopper=shopper)
    assert change.delta == -3
    event = Event.objects.order_by("id").last()
    assert (event.type, event.quantity) == ("remove_from_cart", 3)
    with pytest.raises(CartError):
        cart_item_remove(session=session, product_id=product.pk, shopper=shopper)


def test_remove_of_a_deleted_product_still_empties_the_line(shopper):
    product = ProductFactory()
    session = {"cart": {str(product.pk): 1, "999999": 2}}
    cart_item_remove(session=session, product_id=999999, shopper=shopper)
    assert cart_read(session=session) == {str(product.pk): 1}


def test_tampered_session_cart_is_cleaned():
    session = {"cart": {"abc": 1, "5": "x", "7": -1, "8": 3, "9": 10_000}}
    assert cart_read(session=session) == {"8": 3, "9": MAX_LINE_QUANTITY}
    assert cart_read(session={"cart": ["not", "a", "dict"]}) == {}


def test_clear_empties_cart_and_records_nothing(shopper):
    product = ProductFactory()
    session = {}
    cart_item_add(session=session, product_id=product.pk, quantity=1, shopper=shopper)
    cart_clear(session=session)
    assert cart_read(session=session) == {}
    assert Event.objects.count() == 1


def test_stock_is_not_reserved_by_the_cart(shopper):
    product = ProductFactory(stock=2)
    cart_item_add(session={}, product_id=product.pk, quantity=2, shopper=shopper)
    assert Product.objects.get(pk=product.pk).stock == 2

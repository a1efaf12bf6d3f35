from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from catalog.models import Category, Event
from tests.factories import CategoryFactory, CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


def test_sku_is_unique():
    # given
    ProductFactory(sku="ABC-1")
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory(sku="ABC-1")


def test_price_cannot_be_negative():
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory(price=Decimal("-1.00"))


def test_category_tree_ancestors_root_first():
    root = CategoryFactory(name="Electronics")
    child = CategoryFactory(name="Cameras", parent=root)
    leaf = Category.objects.create(name="Lenses", slug="lenses", parent=child)
    assert [c.name for c in leaf.ancestors()] == ["Electronics", "Cameras", "Lenses"]


def test_event_needs_product_unless_search():
    customer = CustomerFactory()
    Event.objects.create(type="search", query="tv", customer=customer, timestamp="2026-01-01T00:00:00Z")
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(type="view", customer=customer, timestamp="2026-01-01T00:00:00Z")


def test_event_needs_customer_or_visitor():
    product = ProductFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(type="view", product=product, timestamp="2026-01-01T00:00:00Z")

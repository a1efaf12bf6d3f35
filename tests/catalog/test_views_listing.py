"""Category listing and search: subcategories, filters, sort, pagination, bad parameters."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog import selectors
from catalog.models import Event, Product
from catalog.views import PAGE_SIZE
from tests.factories import BrandFactory, CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    root = CategoryFactory(name="Kitchen", slug="kitchen")
    kettles = CategoryFactory(name="Kettles", slug="kettles", parent=root)
    coffee = CategoryFactory(name="Coffee machines", slug="coffee-machines", parent=root)
    other = CategoryFactory(name="Audio", slug="audio")
    brew = BrandFactory(name="Brewster", slug="brewster")
    kairo = BrandFactory(name="Kairo", slug="kairo")
    p = {
        "cheap_kettle": ProductFactory(
            title="Kairo kettle", category=kettles, brand=kairo, price=Decimal("19.00")
        ),
        "steel_kettle": ProductFactory(
            title="Brewster steel kettle", category=kettles, brand=brew, price=Decimal("59.00")
        ),
        "espresso": ProductFactory(
            title="Brewster espresso machine",
            category=coffee,
            brand=brew,
            price=Decimal("399.00"),
            description="Makes great crema.",
        ),
        "speaker": ProductFactory(title="Kairo speaker", category=other, brand=kairo, price=Decimal("49.00")),
    }
    return {
        "root": root,
        "kettles": kettles,
        "coffee": coffee,
        "other": other,
        "brew": brew,
        "kairo": kairo,
        **p,
    }


def _titles(response) -> list[str]:
    return [p.title for p in response.context["products"]]


def test_category_lists_products_of_subcategories_and_links_them(client, shop):
    response = client.get(reverse("catalog:category", args=["kitchen"]))
    assert response.status_code == 200
    assert sorted(_titles(response)) == ["Brewster espresso machine", "Brewster steel kettle", "Kairo kettle"]
    html = response.content.decode()
    assert reverse("catalog:category", args=["kettles"]) in html
    assert reverse("catalog:category", args=["coffee-machines"]) in html


def test_brand_and_price_filters(client, shop):
    url = reverse("catalog:category", args=["kitchen"])
    assert _titles(client.get(url, {"brand": "brewster", "price_max": "100"})) == ["Brewster steel kettle"]
    assert sorted(_titles(client.get(url, {"price_min": "50"}))) == [
        "Brewster espresso machine",
        "Brewster steel kettle",
    ]
    both = client.get(url, {"brand": ["brewster", "kairo"], "sort": "price_asc"})
    assert _titles(both) == ["Kairo kettle", "Brewster steel kettle", "Brewster espresso machine"]


def test_swapped_price_range_is_understood(client, shop):
    response = client.get(
        reverse("catalog:category", args=["kitchen"]), {"price_min": "100", "price_max": "50"}
    )
    assert _titles(response) == ["Brewster steel kettle"]


def test_in_stock_filter(client, shop):
    Product.objects.filter(pk=shop["cheap_kettle"].pk).update(stock=0)
    response = client.get(reverse("catalog:category", args=["kettles"]), {"in_stock": "on"})
    assert _titles(response) == ["Brewster steel kettle"]


@pytest.mark.parametrize(
    "params, notice",
    [
        ({"price_min": "abc"}, "Minimum price ignored"),
        ({"price_max": "-5"}, "Maximum price ignored"),
        ({"price_min": "1e999"}, "Minimum price ignored"),
        ({"price_min": "NaN"}, "Minimum price ignored"),
        ({"sort": "random"}, "Sort order ignored"),
        ({"brand": "no-such-brand"}, "unknown brand"),
        ({"page": "abc"}, "There is no page abc"),
        ({"page": "999"}, "There is no page 999"),
        ({"page": "-1"}, "There is no page -1"),
    ],
)
def test_bad_parameters_are_ignored_with_a_message(client, shop, params, notice):
    response = client.get(reverse("catalog:category", args=["kitchen"]), params)
    assert response.status_code == 200
    assert len(_titles(response)) == 3  # the bad parameter did not filter anything away
    assert any(notice in n for n in response.context["notices"]), response.context["notices"]


def test_sort_by_price_newest_and_popularity(client, shop):
    url = reverse("catalog:category", args=["kitchen"])
    assert _titles(client.get(url, {"sort": "price_desc"}))[0] == "Brewster espresso machine"
    Product.objects.filter(pk=shop["cheap_kettle"].pk).update(created_at=timezone.now() + timedelta(days=1))
    assert _titles(client.get(url, {"sort": "newest"}))[0] == "Kairo kettle"
    now = timezone.now()
    Event.objects.bulk_create(
        [
            Event(
                event_id=uuid.uuid4(),
                type="purchase",
                product=shop["steel_kettle"],
                visitor_id="v1",
                timestamp=now,
            )
        ]
        + [
            Event(
                event_id=uuid.uuid4(), type="view", product=shop["espresso"], visitor_id="v1", timestamp=now
            )
        ]
    )
    # purchases weigh more than views
    assert _titles(client.get(url, {"sort": "popular"})) == [
        "Brewster steel kettle",
        "Brewster espresso machine",
        "Kairo kettle",
    ]


def test_pagination(client, shop):
    for i in range(PAGE_SIZE + 3):
        ProductFactory(title=f"Kettle {i:02d}", category=shop["kettles"], price=Decimal("10.00") + i)
    url = reverse("catalog:category", args=["kettles"])
    first = client.get(url, {"sort": "price_asc"})
    assert len(first.context["products"]) == PAGE_SIZE
    second = client.get(url, {"sort": "price_asc", "page": "2"})
    assert len(second.context["products"]) == PAGE_SIZE + 5 - PAGE_SIZE
    assert not set(_titles(first)) & set(_titles(second))
    assert "page=2" in first.content.decode()
    # popularity sort paginates too (it sorts ids in Python)
    popular_two = client.get(url, {"sort": "popular", "page": "2"})
    assert len(popular_two.context["products"]) == 5


def test_search_matches_title_description_brand_and_category(client, shop):
    url = reverse("catalog:search")
    assert _titles(client.get(url, {"q": "crema"})) == ["Brewster espresso machine"]
    assert sorted(_titles(client.get(url, {"q": "brewster"}))) == [
        "Brewster espresso machine",
        "Brewster steel kettle",
    ]
    assert sorted(_titles(client.get(url, {"q": "kettles"}))) == ["Brewster steel kettle", "Kairo kettle"]
    assert _titles(client.get(url, {"q": "kairo speaker"})) == ["Kairo speaker"]


def test_search_page_carries_the_query_for_tracking_and_filters_by_brand(client, shop):
    response = client.get(reverse("catalog:search"), {"q": "kettle", "brand": "kairo"})
    assert _titles(response) == ["Kairo kettle"]
    assert 'data-rs-search="kettle"' in response.content.decode()


def test_search_with_no_results_and_empty_query(client, shop):
    none = client.get(reverse("catalog:search"), {"q": "zeppelin"})
    assert none.status_code == 200 and "No products match" in none.content.decode()
    empty = client.get(reverse("catalog:search"), {"q": "   "})
    assert empty.status_code == 200
    assert empty.context["products"] == []
    assert "data-rs-search" not in empty.content.decode()


def test_overlong_query_is_refused_politely(client, shop):
    response = client.get(reverse("catalog:search"), {"q": "x" * 500})
    assert response.status_code == 200
    assert any("Search text ignored" in n for n in response.context["notices"])


def test_products_popular_skips_inactive_out_of_stock_and_excluded(shop):
    now = timezone.now()
    Event.objects.bulk_create(
        [
            Event(event_id=uuid.uuid4(), type="purchase", product=p, visitor_id="v", timestamp=now)
            for p in (shop["espresso"], shop["speaker"], shop["steel_kettle"])
        ]
    )
    Product.objects.filter(pk=shop["speaker"].pk).update(stock=0)
    Product.objects.filter(pk=shop["espresso"].pk).update(is_active=False)
    popular = selectors.products_popular(limit=2, exclude_ids=[shop["cheap_kettle"].pk])
    assert popular[0] == shop["steel_kettle"]
    assert (
        shop["speaker"] not in popular
        and shop["espresso"] not in popular
        and shop["cheap_kettle"] not in popular
    )


def test_new_category_shows_up_despite_the_cached_tree(client, shop):
    client.get(reverse("catalog:category", args=["kitchen"]))  # caches the tree
    toasters = CategoryFactory(name="Toasters", slug="toasters", parent=shop["root"])
    ProductFactory(title="Kairo toaster", category=toasters)
    assert _titles(client.get(reverse("catalog:category", args=["toasters"]))) == ["Kairo toaster"]


def test_listing_query_count_does_not_grow_with_products(client, shop, django_assert_max_num_queries):
    url = reverse("catalog:category", args=["kettles"])
    client.get(url)  # warm the category tree and popularity caches
    with django_assert_max_num_queries(12) as few:
        client.get(url, {"sort": "price_asc"})
    for i in range(30):
        ProductFactory(title=f"Kettle {i}", category=shop["kettles"], brand=BrandFactory())
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        response = client.get(url, {"sort": "price_asc"})
    assert len(response.context["products"]) == PAGE_SIZE
    assert len(many.captured_queries) == len(few.captured_queries)


def test_menu_shows_second_level_when_the_shop_has_few_roots(client, shop):
    # two roots (Kitchen, Audio): the menu lists Kitchen's subcategories instead
    assert [n.slug for n in selectors.category_menu_get()] == ["coffee-machines", "kettles"]
    for i in range(3):
        CategoryFactory(name=f"Root {i}", slug=f"root-{i}")
    from django.core.cache import cache

    cache.clear()
    menu = [n.slug for n in selectors.category_menu_get()]
    assert "kitchen" in menu and "audio" in menu and "kettles" not in menu
    html = client.get(reverse("catalog:home")).content.decode()
    assert reverse("catalog:category", args=["root-0"]) in html

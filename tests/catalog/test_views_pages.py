"""Every storefront page renders, and bad URLs/parameters give 404s or friendly messages, never 500."""

from decimal import Decimal

import pytest
from django.urls import reverse

from catalog.models import Product
from tests.factories import BrandFactory, CategoryFactory, CustomerFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    root = CategoryFactory(name="Cameras", slug="cameras")
    child = CategoryFactory(name="Lenses", slug="lenses", parent=root)
    brand = BrandFactory(name="Lumora", slug="lumora")
    camera = ProductFactory(
        title="Lumora Z5 camera",
        category=root,
        brand=brand,
        price=Decimal("899.00"),
        attributes={"sensor": "full frame", "weight_g": 650, "wireless": True, "ports": ["usb-c", "hdmi"]},
    )
    lens = ProductFactory(title="Lumora 50mm lens", category=child, brand=brand, price=Decimal("299.00"))
    return {"root": root, "child": child, "brand": brand, "camera": camera, "lens": lens}


def test_home_renders_categories_new_arrivals_and_recommendation_slots(client, shop):
    response = client.get(reverse("catalog:home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cameras" in html and "Lumora Z5 camera" in html
    # Lazily loaded recommendation widgets (HTMX placeholders from the `recommendations` tag).
    assert 'data-rs-widget="home-personalized"' in html
    assert 'data-rs-widget="home-trending"' in html
    # The tracking snippet and vendored htmx are served locally, with the visitor ids on <body>.
    assert "js/tracking.js" in html and "vendor/htmx.min.js" in html
    assert f'data-rs-visitor="{client.cookies["rs_vid"].value}"' in html
    assert 'data-rs-page="home"' in html


def test_home_renders_on_an_empty_shop(client):
    response = client.get(reverse("catalog:home"))
    assert response.status_code == 200
    assert "seed_demo" in response.content.decode()


def test_product_page_shows_price_stock_attributes_and_tracking_attributes(client, shop):
    camera = shop["camera"]
    response = client.get(reverse("catalog:product", args=[camera.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "$899.00" in html
    assert "In stock" not in html and "Only 10 left" in html  # factory stock is 10
    assert "Sensor" in html and "full frame" in html and "usb-c, hdmi" in html and "Yes" in html
    assert f'data-rs-product="{camera.pk}"' in html  # tracking.js records the view from this
    assert reverse("catalog:cart_add", args=[camera.pk]) in html
    assert 'data-rs-widget="pdp-similar"' in html and 'data-rs-widget="pdp-bought-together"' in html
    assert "Cameras" in html  # breadcrumb


def test_out_of_stock_product_has_no_add_to_cart_form(client, shop):
    Product.objects.filter(pk=shop["camera"].pk).update(stock=0)
    html = client.get(reverse("catalog:product", args=[shop["camera"].pk])).content.decode()
    assert "Out of stock" in html
    assert 'id="add-to-cart"' not in html


@pytest.mark.parametrize(
    "path", ["/products/999999/", "/products/99999999999999999999999/", "/c/no-such-category/"]
)
def test_unknown_product_or_category_is_404(client, shop, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "We couldn't find that page" in response.content.decode()  # the shop's own 404 page


def test_inactive_product_is_404(client, shop):
    Product.objects.filter(pk=shop["camera"].pk).update(is_active=False)
    assert client.get(reverse("catalog:product", args=[shop["camera"].pk])).status_code == 404


def test_product_image_is_svg(client, shop):
    response = client.get(reverse("catalog:product_image", args=[shop["camera"].pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"LZ" in response.content


def test_cart_and_auth_pages_render(client, shop):
    for name in ("catalog:cart", "catalog:login", "catalog:signup", "catalog:search"):
        assert client.get(reverse(name)).status_code == 200, name


def test_account_requires_login(client):
    response = client.get(reverse("catalog:account"))
    assert response.status_code == 302
    assert reverse("catalog:login") in response["Location"]


def test_account_page_renders_for_logged_in_user(client):
    user = UserFactory()
    CustomerFactory(user=user)
    client.force_login(user)
    response = client.get(reverse("catalog:account"))
    assert response.status_code == 200
    assert "Privacy choices" in response.content.decode()


def test_product_card_marks_recommended_links_with_impression(rf, shop):
    from django.template.loader import render_to_string

    html = render_to_string(
        "catalog/_product_card.html",
        {
            "product": shop["lens"],
            "impression_id": "0d7e8f1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
            "reason": "Because you viewed a camera",
        },
        request=rf.get("/"),
    )
    assert 'data-rs-impression="0d7e8f1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"' in html
    assert f'data-rs-product="{shop["lens"].pk}"' in html
    assert "Because you viewed a camera" in html
    assert 'name="impression_id" value="0d7e8f1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"' in html


def test_plain_product_card_has_no_impression(rf, shop):
    from django.template.loader import render_to_string

    html = render_to_string("catalog/_product_card.html", {"product": shop["lens"]}, request=rf.get("/"))
    assert "data-rs-impression" not in html


def test_post_to_a_page_is_405_not_500(client, shop):
    assert client.post(reverse("catalog:home")).status_code == 405
    assert client.get(reverse("catalog:cart_add", args=[shop["camera"].pk])).status_code == 405

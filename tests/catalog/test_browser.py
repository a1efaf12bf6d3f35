"""One end-to-end run in headless Chromium: home -> product -> add to cart, and the events arrive.

The view (and the click on the home page) come from static/js/tracking.js through POST /api/v1/events
(fetch or sendBeacon); the add_to_cart comes from the server-side cart service.
"""

import time
from decimal import Decimal

import pytest

from catalog.models import Event
from tests.factories import BrandFactory, CategoryFactory, ProductFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


@pytest.fixture
def browser(chromium_paths):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_home_product_add_to_cart_records_view_click_and_add_to_cart(live_server, browser):
    from selenium.webdriver.common.by import By

    # given
    category = CategoryFactory(name="Cameras", slug="cameras")
    camera = ProductFactory(
        title="Lumora Z5 camera", category=category, brand=BrandFactory(), price=Decimal("899.00"), stock=5
    )

    # when: home -> product page (clicking its card) -> add to cart
    browser.get(live_server.url + "/")
    visitor_id = browser.get_cookie("rs_vid")["value"]
    browser.find_element(By.CSS_SELECTOR, f'a.card-link[data-rs-product="{camera.pk}"]').click()
    _wait_for(lambda: browser.find_elements(By.ID, "add-to-cart"))
    assert "Lumora Z5 camera" in browser.find_element(By.TAG_NAME, "h1").text
    quantity = browser.find_element(By.ID, "qty")
    quantity.clear()
    quantity.send_keys("2")
    browser.find_element(By.ID, "add-to-cart").click()
    _wait_for(lambda: "/cart/" in browser.current_url)

    # then: the cart shows it, and every event arrived, from this browser's visitor id
    assert "Lumora Z5 camera" in browser.find_element(By.CSS_SELECTOR, ".cart-table").text
    cart_event = _wait_for(lambda: Event.objects.filter(type="add_to_cart", product=camera).first())
    assert cart_event is not None and cart_event.quantity == 2 and cart_event.visitor_id == visitor_id
    view = _wait_for(lambda: Event.objects.filter(type="view", product=camera).first())
    assert view is not None, "tracking.js did not deliver the product view"
    assert view.visitor_id == visitor_id
    assert view.context.get("page_type") == "product" and view.price == Decimal("899.00")
    click = _wait_for(lambda: Event.objects.filter(type="click", product=camera).first())
    assert click is not None and click.context.get("page") == "/"
    # the split holds: the browser never sends cart events itself
    assert Event.objects.filter(type="add_to_cart").count() == 1

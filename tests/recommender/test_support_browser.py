"""Headless Chromium: a Support user logs into the admin, finds a shopper from the header link, opens the
explanation of a list the shopper was shown and sees each item's contributions (waterfall + table)."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group

from recommender.models import DecisionTraceRecord, WidgetRule
from recommender.serving import recommendations_get
from recsite.roles import SUPPORT, roles_sync
from tests.catalog.test_browser import browser  # noqa: F401
from tests.factories import UserFactory
from tests.recommender.serving_fixtures import (  # noqa: F401
    _serving_fresh,
    model_strategies,
    model_version_make,
    shop_create,
    widget_make,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def test_support_user_looks_up_a_shopper_and_opens_an_explanation(live_server, browser, model_strategies):  # noqa: F811
    from selenium.webdriver.common.by import By

    # given: the role groups (a transactional test starts from an empty database), a shop with a trained
    # item-kNN model, and one list served (and traced) to a customer
    roles_sync()
    shop = shop_create()
    model_version_make(engine="itemknn", shop=shop)
    widget = widget_make("home-picks", strategy="personalized", num_items=4)
    WidgetRule.objects.create(
        widget=widget, kind="boost_brands", params={"brands": [shop.brands[1].pk], "factor": 3}
    )
    customer = shop.customers[0]
    recommendations_get(widget=widget, customer=customer)
    assert DecisionTraceRecord.objects.filter(customer=customer).exists()
    user = UserFactory(username="support-browser", is_staff=True)
    user.groups.set([Group.objects.get(name=SUPPORT)])

    # when: log in, follow the header link, look the shopper up, open the list's explanation
    browser.get(live_server.url + "/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys("support-browser")
    browser.find_element(By.ID, "id_password").send_keys("pass-word-123")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    link = _wait_for(lambda: browser.find_elements(By.ID, "rs-support-link"))
    assert link, "the Support user sees the support console link in the admin header"
    link[0].click()
    _wait_for(lambda: browser.find_elements(By.ID, "id_q"))
    browser.find_element(By.ID, "id_q").send_keys(customer.external_id)
    browser.find_element(By.CSS_SELECTOR, "#rs-support-lookup input[type=submit]").click()
    _wait_for(lambda: browser.find_elements(By.ID, "rs-lists"))
    assert customer.external_id in browser.find_element(By.ID, "rs-shopper").text
    browser.find_element(By.CSS_SELECTOR, "a.rs-open-trace").click()
    _wait_for(lambda: browser.find_elements(By.ID, "rs-then"))

    # then: a waterfall and the contributions of each shown item (history items that drove it)
    then = browser.find_element(By.ID, "rs-then")
    assert then.find_elements(By.CSS_SELECTOR, "svg.rs-waterfall"), "a SHAP-style waterfall per item"
    table_text = " ".join(t.text for t in then.find_elements(By.CSS_SELECTOR, "table.rs-contributions"))
    assert "viewed" in table_text, table_text
    assert (
        "Boost brands" in then.text or "Trending" in then.text or "History items that drove it" in then.text
    )
    assert browser.find_elements(By.ID, "rs-then-now"), "then beside now"

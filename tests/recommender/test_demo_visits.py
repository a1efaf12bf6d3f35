"""demo_visits: past lists for the support console out of the box (impressions + traces logged)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from recommender.models import DecisionTraceRecord, Impression
from tests.factories import UserFactory
from tests.recommender.serving_fixtures import (  # noqa: F401
    _serving_fresh,
    model_strategies,
    model_version_make,
    shop_create,
    widget_make,
)

pytestmark = pytest.mark.django_db


def test_demo_visits_logs_lists_for_the_demo_shoppers_first(model_strategies):
    shop = shop_create()
    model_version_make(engine="itemknn", shop=shop)
    widget_make("home-picks", strategy="personalized")
    widget_make("pdp-similar", strategy="similar_items", placement="product")
    widget_make("off", strategy="trending", enabled=False)
    with_login = shop.customers[5]
    with_login.user = UserFactory(username="shopper1")
    with_login.save()
    out = StringIO()
    call_command("demo_visits", "--customers", "2", stdout=out)
    assert "Served 4 recommendation lists to 2 customers" in out.getvalue()
    assert DecisionTraceRecord.objects.count() == 4
    assert DecisionTraceRecord.objects.filter(customer=with_login).count() == 2
    assert set(Impression.objects.values_list("widget__slug", flat=True)) == {"home-picks", "pdp-similar"}


@pytest.mark.parametrize("n", ["0", "201"])
def test_demo_visits_bad_count(n):
    with pytest.raises(CommandError, match="customers must be from 1 to 200"):
        call_command("demo_visits", "--customers", n, stdout=StringIO())

"""Attribution: clicks and purchases carrying impression ids, summed per widget and day in one query."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Order
from recommender.models import Impression
from recommender.selectors import widget_attribution
from recommender.serving import recommendations_get
from tests.factories import EventFactory, OrderFactory, OrderLineFactory
from tests.recommender.serving_fixtures import _serving_fresh, shop_create, widget_make  # noqa: F401

pytestmark = pytest.mark.django_db


def test_clicks_carts_purchases_and_revenue_attributed_by_day():
    # given two requests today and one yesterday
    shop_create()
    widget = widget_make(strategy="trending", num_items=4)
    other = widget_make(slug="other", strategy="trending", num_items=4)
    today = recommendations_get(widget=widget) + recommendations_get(widget=widget)
    old = recommendations_get(widget=widget)
    yesterday = timezone.now() - timedelta(days=1)
    Impression.objects.filter(id__in=[r.impression_id for r in old]).update(created_at=yesterday)
    noise = recommendations_get(widget=other)
    # clicks: 3 impressions today (one clicked twice), 1 yesterday; one add-to-cart; one purchase today
    for r in today[:3]:
        EventFactory(type="click", product_id=r.product_id, impression_id=r.impression_id)
    EventFactory(type="click", product_id=today[0].product_id, impression_id=today[0].impression_id)
    EventFactory(type="click", product_id=old[0].product_id, impression_id=old[0].impression_id)
    EventFactory(type="add_to_cart", product_id=today[1].product_id, impression_id=today[1].impression_id)
    OrderLineFactory(
        order=OrderFactory(),
        product_id=today[1].product_id,
        quantity=2,
        unit_price=Decimal("12.50"),
        impression_id=today[1].impression_id,
    )
    # a cancelled order and another widget's click do not count
    OrderLineFactory(
        order=OrderFactory(status=Order.Status.CANCELLED),
        product_id=today[2].product_id,
        unit_price=Decimal("99"),
        impression_id=today[2].impression_id,
    )
    EventFactory(type="click", product_id=noise[0].product_id, impression_id=noise[0].impression_id)
    # when
    with CaptureQueriesContext(connection) as ctx:
        stats = widget_attribution(widget=widget, days=7)
    # then
    assert len(ctx.captured_queries) == 1
    assert [d.day for d in stats.days] == [yesterday.date(), timezone.now().date()]
    y, t = stats.days
    assert (y.impressions, y.clicks, y.add_to_carts, y.conversions, y.revenue) == (
        4,
        1,
        0,
        0,
        Decimal("0.00"),
    )
    assert (t.impressions, t.clicks, t.add_to_carts, t.conversions, t.revenue) == (
        8,
        3,
        1,
        1,
        Decimal("25.00"),
    )
    assert t.ctr == pytest.approx(3 / 8)
    assert t.conversion_rate == pytest.approx(1 / 8)
    total = stats.total()
    assert (total.impressions, total.clicks, total.revenue) == (12, 4, Decimal("25.00"))


def test_no_impressions_no_rows():
    widget = widget_make(strategy="trending")
    stats = widget_attribution(widget=widget)
    assert stats.days == ()
    assert stats.total().impressions == 0 and stats.total().ctr == 0.0


def test_impression_ids_from_the_fragment_reach_the_tracking_markup(client):
    shop_create()
    widget = widget_make(slug="home-trending", strategy="trending", num_items=2)
    html = client.get(f"/widgets/{widget.slug}/").content.decode()
    for imp in Impression.objects.filter(widget=widget):
        assert f'data-rs-impression="{imp.id}"' in html


@pytest.mark.realservices
def test_attribution_query_on_postgres():
    shop_create()
    widget = widget_make(strategy="trending", num_items=3)
    recs = recommendations_get(widget=widget)
    EventFactory(type="click", product_id=recs[0].product_id, impression_id=recs[0].impression_id)
    OrderLineFactory(
        order=OrderFactory(),
        product_id=recs[0].product_id,
        quantity=3,
        unit_price=Decimal("2.00"),
        impression_id=recs[0].impression_id,
    )
    (day,) = widget_attribution(widget=widget).days
    assert (day.impressions, day.clicks, day.conversions, day.revenue) == (3, 1, 1, Decimal("6.00"))

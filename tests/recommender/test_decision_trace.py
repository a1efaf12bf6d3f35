"""The decision trace of a served list: what it holds, its JSON round trip, removed items with the rule
that removed them, and that it is stored with the impressions (inline and through the buffered writer)."""

from __future__ import annotations

import json

import pytest

from catalog.models import Product
from recommender.models import DecisionTraceRecord, Impression, WidgetRule
from recommender.selectors import decision_trace_get, decision_traces_list
from recommender.serving import impression_writer, recommendations_get
from recommender.serving.trace import DecisionTrace
from tests.recommender.serving_fixtures import (  # noqa: F401
    _serving_fresh,
    model_strategies,
    model_version_make,
    shop_create,
    view,
    widget_make,
)

pytestmark = pytest.mark.django_db


def test_trace_of_a_personalized_list_holds_sources_history_and_versions(model_strategies):
    # given a shopper who viewed two products of cluster 0 and a trained item-kNN model
    shop = shop_create()
    version = model_version_make(shop=shop)
    customer = shop.customers[0]
    widget = widget_make(strategy="personalized", num_items=4)
    # when
    traces: list[DecisionTrace] = []
    recs = recommendations_get(widget=widget, customer=customer, log=False, trace=traces)
    # then
    (t,) = traces
    assert [i.product_id for i in t.items] == [r.product_id for r in recs]
    assert [i.slot for i in t.items] == list(range(len(recs)))
    assert [i.reason for i in t.items] == [r.reason for r in recs]
    assert t.model_versions == (("itemknn", version.pk),)
    assert t.customer_id == customer.pk and t.widget == widget.slug and t.k == 4
    assert t.history and len(t.history) == len(t.history_events)
    assert set(t.history_events) <= {"view", "click", "add_to_cart", "purchase", "session"}
    first = t.items[0]
    assert first.sources[0].source == "itemknn" and first.sources[0].rank >= 1
    assert first.sources[0].model_version_id == version.pk
    # reason labels name the history item that drives the score (recommender.explain.driver_items)
    because = t.meta["because"]
    assert because and set(because.values()) <= set(t.history)
    titles = dict(Product.objects.values_list("pk", "title"))
    for item in t.items:
        if str(item.product_id) in because:
            assert item.reason == f"Because you viewed {titles[because[str(item.product_id)]]}"
    assert [name for name, _ in t.stage_ms][:2] == ["variant", "shopper"]
    assert all(ms >= 0 for _, ms in t.stage_ms)


def test_trace_json_round_trip_is_lossless_and_json_safe(model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=3)
    WidgetRule.objects.create(
        widget=widget, kind="boost_brands", params={"brands": [shop.brands[0].pk], "factor": 2}
    )
    traces: list[DecisionTrace] = []
    recommendations_get(widget=widget, customer=shop.customers[1], log=False, trace=traces)
    data = json.loads(json.dumps(traces[0].to_json()))
    assert DecisionTrace.from_json(data) == traces[0]


def test_items_removed_by_a_rule_stay_in_the_trace_with_that_rule():
    # given trending products, one of them sold out, and an in-stock rule
    shop = shop_create()
    for p in shop.clusters[0]:
        view(p)
    sold_out = shop.clusters[0][0]
    Product.objects.filter(pk=sold_out.pk).update(stock=0)
    widget = widget_make(strategy="trending", num_items=3)
    WidgetRule.objects.create(widget=widget, kind="in_stock", params={})
    # when
    traces: list[DecisionTrace] = []
    recs = recommendations_get(widget=widget, log=False, trace=traces)
    # then the sold-out item is not served, but the trace keeps it with the rule and where it stood
    assert sold_out.pk not in [r.product_id for r in recs]
    removed = traces[0].item(sold_out.pk)
    assert removed is not None and removed.slot is None
    assert removed.removed_by == "In stock only"
    assert [(e.rule, e.effect, e.position_after) for e in removed.rules] == [("in_stock", "filtered", None)]
    assert removed.sources and removed.sources[0].source == "trending"


def test_trace_is_stored_with_the_impressions_and_read_back_by_the_selectors(model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)
    customer = shop.customers[0]
    widget = widget_make(strategy="personalized", num_items=3)
    recs = recommendations_get(widget=widget, customer=customer, visitor="v-9")
    request_id = Impression.objects.get(pk=recs[0].impression_id).request_id
    stored = decision_trace_get(request_id=request_id)
    assert stored is not None
    assert [i.product_id for i in stored.items] == [r.product_id for r in recs]
    assert stored.request_id == str(request_id)
    assert [t.request_id for t in decision_traces_list(customer_id=customer.pk)] == [str(request_id)]
    assert [t.request_id for t in decision_traces_list(visitor="v-9", widget=widget.slug)] == [
        str(request_id)
    ]


def test_buffered_writer_stores_impressions_and_trace_together(settings):
    settings.RECSITE_IMPRESSIONS_ASYNC = True
    shop_create()
    widget = widget_make(strategy="popular", num_items=2)
    recs = recommendations_get(widget=widget, visitor="v-async")
    assert not Impression.objects.exists() and not DecisionTraceRecord.objects.exists()
    impression_writer.flush()  # the background thread does this within 0.5 s
    assert Impression.objects.filter(pk__in=[r.impression_id for r in recs]).count() == 2
    (row,) = DecisionTraceRecord.objects.all()
    assert row.visitor_id == "v-async" and row.widget_id == widget.pk
    assert [i["product_id"] for i in row.trace["items"]] == [r.product_id for r in recs]


def test_trace_recording_can_be_turned_off_without_losing_impressions(settings):
    settings.RECSITE_TRACE_RECORD = False
    shop_create()
    widget = widget_make(strategy="popular", num_items=2)
    recs = recommendations_get(widget=widget, visitor="v-off")
    assert Impression.objects.filter(pk__in=[r.impression_id for r in recs]).count() == 2
    assert not DecisionTraceRecord.objects.exists()


def test_preview_logs_neither_impressions_nor_traces():
    shop_create()
    widget = widget_make(strategy="popular", num_items=2)
    traces: list[DecisionTrace] = []
    assert recommendations_get(widget=widget, log=False, trace=traces)
    assert traces and not Impression.objects.exists() and not DecisionTraceRecord.objects.exists()

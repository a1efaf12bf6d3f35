"""recommendations_get: strategies, live and cached candidates, fallbacks, consent, impressions."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Customer
from recommender import serving
from recommender.batch import candidates_precompute
from recommender.models import Impression, ModelVersion
from recommender.services import model_version_promote
from recommender.serving import DecisionTrace, Recommendation, candidates_cache_key, recommendations_get
from tests.factories import CustomerFactory, OrderFactory, OrderLineFactory
from tests.recommender.serving_fixtures import (  # noqa: F401  (fixtures)
    _serving_fresh,
    model_strategies,
    model_version_make,
    shop_create,
    view,
    widget_make,
)

pytestmark = pytest.mark.django_db


def _ids(recs: list[Recommendation]) -> list[int]:
    return [r.product_id for r in recs]


def test_recommendation_is_frozen():
    rec = Recommendation(1, 0.5, "Trending now", None, "trending", 0)
    with pytest.raises(AttributeError):
        rec.score = 1.0  # type: ignore[misc]


def test_untrained_personalized_widget_falls_back_to_trending_and_fills_k():
    # given no trained model at all
    shop = shop_create()
    widget = widget_make(strategy="personalized", num_items=5)
    # when
    trace: list[DecisionTrace] = []
    recs = recommendations_get(widget=widget, customer=shop.customers[0], trace=trace)
    # then k items, from the fallback chain, each labelled
    assert len(recs) == 5
    assert {r.engine for r in recs} <= {"trending", "popular"}
    assert recs[0].reason == "Trending now"
    assert [r.position for r in recs] == list(range(5))
    assert any("no trained model" in w for w in trace[0].warnings)


def test_fallbacks_fill_k_beyond_what_trending_has():
    # given a catalogue bigger than the set of products anyone engaged with
    shop = shop_create()
    widget = widget_make(strategy="trending", fallback_strategy="trending", num_items=12)
    cluster0 = {p.pk for p in shop.clusters[0]}
    # when only cluster 0 was touched recently... (all 18 were touched; ask for 12, trending alone suffices)
    recs = recommendations_get(widget=widget, k=12)
    assert len(recs) == 12
    assert set(_ids(recs)[:6]) == cluster0  # most engaged first


def test_personalized_live_uses_the_model_and_explains(model_strategies):
    # given an itemknn model trained on cluster co-views
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=2)
    customer = shop.customers[3]  # a cluster-1 shopper (viewed items 0-2; others viewed 3 and 4)
    # when
    trace: list[DecisionTrace] = []
    recs = recommendations_get(widget=widget, customer=customer, trace=trace)
    # then the items come from their cluster, and none is already viewed
    viewed = set(customer.events.values_list("product_id", flat=True))
    cluster1 = {p.pk for p in shop.clusters[1]}
    assert len(recs) == 2
    assert recs[0].engine == "itemknn"
    assert set(_ids(recs)) <= cluster1
    assert not set(_ids(recs)) & viewed
    assert recs[0].reason.startswith("Because you viewed C1 item")
    assert not trace[0].cache_hits


def test_personalized_cached_batch_is_served_and_keyed_by_version(model_strategies):
    # given a batch precompute for the active version
    shop = shop_create()
    v1 = model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=3)
    customer = shop.customers[0]
    result = candidates_precompute(version=v1, customer_ids=[customer.pk])
    assert result.customers == 1
    key1 = candidates_cache_key(model_version_id=v1.pk, customer_id=customer.pk)
    # when
    trace: list[DecisionTrace] = []
    recs = recommendations_get(widget=widget, customer=customer, trace=trace)
    # then served from the cache, same items as the live model would give
    assert bool(trace[0].cache_hits)
    assert trace[0].model_versions[0][1] == v1.pk
    serving.serving_state_reset()
    from django.core.cache import cache

    cache.delete(key1)
    live_trace: list[DecisionTrace] = []
    live = recommendations_get(widget=widget, customer=customer, trace=live_trace)
    assert not live_trace[0].cache_hits
    assert _ids(recs) == _ids(live)
    assert recs[0].reason == live[0].reason
    # and a promotion changes the key: the new version is served, never the old list
    v2 = model_version_make(shop=shop, status=ModelVersion.Status.CANDIDATE)
    model_version_promote(version=v2)
    key2 = candidates_cache_key(model_version_id=v2.pk, customer_id=customer.pk)
    assert key2 != key1
    trace2: list[DecisionTrace] = []
    recommendations_get(widget=widget, customer=customer, trace=trace2)
    assert trace2[0].model_versions[0][1] == v2.pk
    assert Impression.objects.filter(model_version=v2).exists()


def test_cached_list_drops_items_viewed_since_the_batch(model_strategies):
    shop = shop_create()
    v1 = model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=2)
    customer = shop.customers[0]
    candidates_precompute(version=v1, customer_ids=[customer.pk])
    first = recommendations_get(widget=widget, customer=customer)
    # when the shopper views the top item after the batch ran
    view(shop.products[first[0].product_id - shop.products[0].pk], customer=customer)
    again = recommendations_get(widget=widget, customer=customer)
    assert first[0].product_id not in _ids(again)


def test_pinned_model_version_is_served_instead_of_active(model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)  # active
    pinned = model_version_make(shop=shop, status=ModelVersion.Status.RETIRED)
    widget = widget_make(strategy="personalized", model_version=pinned)
    trace: list[DecisionTrace] = []
    recommendations_get(widget=widget, customer=shop.customers[0], trace=trace)
    assert trace[0].model_versions[0][1] == pinned.pk


def test_consent_none_never_personalizes(model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=3)
    customer = shop.customers[3]
    Customer.objects.filter(pk=customer.pk).update(consent=Customer.Consent.NONE)
    customer.refresh_from_db()
    trace: list[DecisionTrace] = []
    recs = recommendations_get(widget=widget, customer=customer, trace=trace)
    assert len(recs) == 3
    assert {r.engine for r in recs} == {"trending"}
    assert not any(r.reason.startswith("Because") for r in recs)
    assert any("consent" in w for w in trace[0].warnings)


def test_session_based_anonymous_changes_as_they_click(model_strategies):
    # given an anonymous visitor with no history
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="session_based", num_items=2, fallback_strategy="popular")
    visitor = uuid.uuid4().hex
    before = recommendations_get(widget=widget, visitor=visitor)
    assert {r.engine for r in before} <= {"popular", "trending"}
    # when they click a cluster-2 product
    view(shop.clusters[2][0], visitor=visitor)
    after = recommendations_get(widget=widget, visitor=visitor)
    # then their recommendations follow that click at once
    cluster2 = {p.pk for p in shop.clusters[2]}
    assert after[0].engine == "itemknn"
    assert set(_ids(after)) <= cluster2
    assert after[0].reason == f"Because you looked at {shop.clusters[2][0].title}"
    # and session items passed by the page count too (no event stored yet)
    other = recommendations_get(
        widget=widget, visitor=uuid.uuid4().hex, session_items=[shop.clusters[1][0].pk]
    )
    assert set(_ids(other)) <= {p.pk for p in shop.clusters[1]}


def test_similar_items_needs_a_product(model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="similar_items", placement="product", num_items=3)
    anchor = shop.clusters[1][0]
    recs = recommendations_get(widget=widget, product=anchor)
    # anchor was co-viewed with two products only: those two first, then a fallback fills k
    assert anchor.pk not in _ids(recs)
    assert len(recs) == 3
    assert [r.engine for r in recs] == ["itemknn", "itemknn", "trending"]
    assert set(_ids(recs)[:2]) == {p.pk for p in shop.clusters[1][1:3]}
    assert recs[0].reason == f"Similar to {anchor.title}"
    # without a product (and no history) it falls back, still k items, never the product itself
    fallback = recommendations_get(widget=widget)
    assert len(fallback) == 3
    assert {r.engine for r in fallback} <= {"trending", "popular"}


def test_bought_together_from_cart_items(model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="bought_together", placement="cart", num_items=3)
    cart = [shop.clusters[2][0].pk]
    recs = recommendations_get(widget=widget, session_items=cart, context={"cart": cart})
    model_items = [r.product_id for r in recs if r.engine == "itemknn"]
    assert set(model_items) == {p.pk for p in shop.clusters[2][1:3]}
    assert len(recs) == 3 and not set(_ids(recs)) & set(cart)
    assert recs[0].reason == f"Often bought with {shop.clusters[2][0].title}"


def test_recently_viewed_lists_history_newest_first():
    shop = shop_create()
    widget = widget_make(strategy="recently_viewed", num_items=2, fallback_strategy="popular")
    customer = CustomerFactory()
    view(shop.products[0], customer=customer, minutes_ago=10)
    view(shop.products[5], customer=customer, minutes_ago=5)
    recs = recommendations_get(widget=widget, customer=customer)
    assert _ids(recs) == [shop.products[5].pk, shop.products[0].pk]
    assert recs[0].reason == "You viewed this recently"


def test_segment_popular_uses_the_shoppers_segment():
    shop = shop_create()
    widget = widget_make(strategy="segment_popular", num_items=2)
    # cluster-2 shoppers are women aged 25-34 in the north (full consent)
    for c in shop.customers[6:9]:
        Customer.objects.filter(pk=c.pk).update(age_band="25-34", gender="f", region="north", consent="full")
    shopper = CustomerFactory(age_band="25-34", gender="f", region="north", consent="full")
    recs = recommendations_get(widget=widget, customer=shopper)
    assert set(_ids(recs)) <= {p.pk for p in shop.clusters[2]}
    assert recs[0].engine == "segment_popular"
    # basic consent: no demographics -> not segment based
    basic = CustomerFactory(age_band="25-34", gender="f", region="north", consent="basic")
    assert {r.engine for r in recommendations_get(widget=widget, customer=basic)} <= {"trending", "popular"}


def test_popular_reason_names_the_category():
    shop = shop_create()
    widget = widget_make(strategy="popular", num_items=1)
    recs = recommendations_get(widget=widget)
    assert recs[0].reason == f"Popular in {shop.products[0].category.name}"


def test_current_product_is_never_recommended_on_its_own_page():
    shop = shop_create()
    widget = widget_make(strategy="trending", num_items=10)
    top = recommendations_get(widget=widget, log=False)[0].product_id
    recs = recommendations_get(widget=widget, product=shop.products[[p.pk for p in shop.products].index(top)])
    assert top not in _ids(recs)


def test_impressions_logged_in_one_bulk_insert_with_propensity(model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=4)
    customer = shop.customers[0]
    request_id = uuid.uuid4()
    with CaptureQueriesContext(connection) as ctx:
        recs = recommendations_get(
            widget=widget,
            customer=customer,
            visitor="v-1",
            request_id=request_id,
            context={"experiment": "exp-1", "variant": "B"},
        )
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
    # one bulk insert of the impressions, one of the list's decision trace
    assert [q["sql"].split('"')[1] for q in inserts] == [
        "recommender_impression",
        "recommender_decisiontracerecord",
    ]
    rows = {i.id: i for i in Impression.objects.filter(request_id=request_id)}
    assert set(rows) == {r.impression_id for r in recs}
    for rec in recs:
        row = rows[rec.impression_id]
        assert row.position == rec.position
        assert row.product_id == rec.product_id
        assert row.propensity == 1.0
        assert row.customer_id == customer.pk and row.visitor_id == "v-1"
        assert (row.experiment, row.variant) == ("exp-1", "B")
        assert row.engine == rec.engine and row.reason == rec.reason
    assert rows[recs[0].impression_id].model_version.engine == "itemknn"


def test_preview_mode_logs_nothing():
    shop_create()
    widget = widget_make(strategy="trending")
    recs = recommendations_get(widget=widget, log=False)
    assert recs and all(r.impression_id is None for r in recs)
    assert not Impression.objects.exists()


def test_buffered_impression_writer(settings):
    settings.RECSITE_IMPRESSIONS_ASYNC = True
    shop_create()
    widget = widget_make(strategy="trending", num_items=3)
    recs = recommendations_get(widget=widget)
    serving.impression_writer.flush()  # the background thread would do this within 0.5 s
    assert Impression.objects.filter(id__in=[r.impression_id for r in recs]).count() == 3


def test_exclude_purchased_reads_orders_beyond_the_history_cap():
    shop = shop_create()
    widget = widget_make(strategy="trending", num_items=18)
    customer = CustomerFactory()
    bought = shop.clusters[0][0]
    OrderLineFactory(order=OrderFactory(customer=customer), product=bought)
    from recommender.models import WidgetRule

    WidgetRule.objects.create(widget=widget, kind="exclude_purchased")
    recs = recommendations_get(widget=widget, customer=customer)
    assert bought.pk not in _ids(recs)
    assert len(recs) == 17


def test_bad_k_is_a_programming_error():
    widget = widget_make(strategy="trending")
    with pytest.raises(ValueError):
        recommendations_get(widget=widget, k=101)


@pytest.mark.realservices
def test_cached_candidates_round_trip_through_redis_and_postgres(model_strategies):
    """The batch cache on the real Redis, the history query on PostgreSQL (make test's second pass)."""
    from django.core.cache import cache

    shop = shop_create()
    v1 = model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=2)
    customer = shop.customers[0]
    result = candidates_precompute(version=v1, customer_ids=[c.pk for c in shop.customers])
    assert result.customers == len(shop.customers) and result.cache_ok
    key = candidates_cache_key(model_version_id=v1.pk, customer_id=customer.pk)
    assert cache.get(key)["items"]
    trace: list[DecisionTrace] = []
    recs = recommendations_get(widget=widget, customer=customer, trace=trace)
    assert bool(trace[0].cache_hits) and len(recs) == 2
    cache.delete_many(
        [candidates_cache_key(model_version_id=v1.pk, customer_id=c.pk) for c in shop.customers]
    )


def test_precompute_command_and_task(model_strategies):
    from io import StringIO

    from django.core.cache import cache
    from django.core.management import CommandError, call_command

    from recommender.tasks import batch_inference_task

    # nothing trained yet: an actionable message, not a traceback
    out = StringIO()
    call_command("precompute_recommendations", stdout=out)
    assert "Run `manage.py train --all` first" in out.getvalue()
    shop = shop_create()
    version = model_version_make(shop=shop)
    widget_make(strategy="personalized")
    out = StringIO()
    call_command("precompute_recommendations", stdout=out)
    assert f"itemknn v{version.pk}: {len(shop.customers)} customers cached" in out.getvalue()
    assert cache.get(candidates_cache_key(model_version_id=version.pk, customer_id=shop.customers[0].pk))
    (result,) = batch_inference_task.delay(model_version_id=version.pk).get()
    assert result["customers"] == len(shop.customers)
    with pytest.raises(CommandError, match="No model version 999999"):
        call_command("precompute_recommendations", "--model-version", "999999")
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        call_command("precompute_recommendations", "--limit", "0")


def test_popular_uses_the_trained_pop_engine_when_there_is_one():
    shop = shop_create()
    widget = widget_make(strategy="popular", num_items=2)
    by_events = recommendations_get(widget=widget, log=False)
    assert by_events[0].product_id in {p.pk for p in shop.clusters[0]}  # the crowd viewed cluster 0
    # a pop model whose training data says the last product is the most popular
    last = shop.products[-1].pk
    model_version_make(
        engine="pop",
        product_ids=[p.pk for p in shop.products],
        sequences=[[last], [last], [last], [shop.products[0].pk]],
    )
    serving.serving_state_reset()
    by_model = recommendations_get(widget=widget, log=False)
    assert by_model[0].product_id == last
    assert by_model[0].engine == "popular"

"""Per-process memos of the serving hot path (recommender.serving, recsite.api): what they save and how
fast a write shows through them (promotion, widget/rule edits, stock, API-key revocation).

The test settings turn the memos off (RECSITE_SERVING_MEMO_SECONDS = 0); these tests turn them on and
move a fake monotonic clock to check the documented bounds."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from recommender import serving
from recommender.batch import candidates_precompute
from recommender.models import ModelVersion, Widget, WidgetRule
from recommender.services import model_version_promote
from recommender.serving import DecisionTrace, recommendations_get
from tests.catalog.api_fixtures import api_client_fixture, api_key_fixture  # noqa: F401
from tests.recommender.serving_fixtures import (  # noqa: F401
    _serving_fresh,
    model_strategies,
    model_version_make,
    shop_create,
    widget_make,
)

pytestmark = pytest.mark.django_db


class Clock:
    """Stands in for the `time` module inside recsite.memo: monotonic() is moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:  # the impression writer's thread sleeps through this module
        time.sleep(seconds)


@pytest.fixture
def clock(monkeypatch, settings):
    settings.RECSITE_SERVING_MEMO_SECONDS = 5.0
    settings.RECSITE_SERVING_ATTRS_SECONDS = 30.0
    fake = Clock()
    monkeypatch.setattr("recsite.memo.time", fake)  # the clock of every per-process memo
    serving.serving_state_reset()
    return fake


def url(slug: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("recommender_api:recommendations", args=[slug]) + (f"?{query}" if query else "")


def _served_version(widget, customer) -> int | None:
    trace: list[DecisionTrace] = []
    recommendations_get(widget=widget, customer=customer, trace=trace, log=False)
    return trace[0].model_versions[0][1]


def test_promotion_shows_within_the_generation_poll_interval(
    clock, model_strategies, django_capture_on_commit_callbacks
):
    shop = shop_create()
    v1 = model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=3)
    customer = shop.customers[0]
    assert _served_version(widget, customer) == v1.pk
    # when v2 is promoted (in another process: the registry generation is bumped on commit)
    v2 = model_version_make(shop=shop, status=ModelVersion.Status.CANDIDATE)
    with django_capture_on_commit_callbacks(execute=True):
        model_version_promote(version=v2)
    # then this process keeps serving v1 only until it next polls the generation (at most 1 s)
    clock.now += 0.5
    assert _served_version(widget, customer) == v1.pk
    clock.now += serving.GENERATION_POLL_SECONDS
    assert _served_version(widget, customer) == v2.pk


def test_a_promotion_without_the_generation_bump_shows_within_the_ttl(clock, model_strategies):
    shop = shop_create()
    v1 = model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=3)
    customer = shop.customers[0]
    assert _served_version(widget, customer) == v1.pk
    # when the active version changes behind the registry's back (no generation bump, e.g. cache down)
    v2 = model_version_make(shop=shop, status=ModelVersion.Status.CANDIDATE)
    ModelVersion.objects.filter(pk=v1.pk).update(status=ModelVersion.Status.RETIRED)
    ModelVersion.objects.filter(pk=v2.pk).update(status=ModelVersion.Status.ACTIVE)
    clock.now += 2
    assert _served_version(widget, customer) == v1.pk
    clock.now += 3.1  # past RECSITE_SERVING_MEMO_SECONDS
    assert _served_version(widget, customer) == v2.pk


def test_active_version_is_not_queried_again_within_the_ttl(clock, model_strategies):
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=3)
    customer = shop.customers[0]
    _served_version(widget, customer)
    with CaptureQueriesContext(connection) as ctx:
        _served_version(widget, customer)
    assert not [q for q in ctx.captured_queries if "recommender_modelversion" in q["sql"]]
    assert not [q for q in ctx.captured_queries if 'FROM "catalog_product"' in q["sql"]]


def test_cached_personalized_request_makes_two_queries_when_warm(clock, api_client, model_strategies):
    """Customer + recent events; API key, widget, active version, product attributes come from memos."""
    shop = shop_create()
    version = model_version_make(shop=shop)
    widget_make("home-personalized", strategy="personalized", num_items=3)
    customer = shop.customers[0]
    candidates_precompute(version=version, customer_ids=[customer.pk])
    with override_api_key_cache(30):
        assert api_client.get(url("home-personalized", customer=customer.external_id)).status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            r = api_client.get(url("home-personalized", customer=customer.external_id))
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    reads = sorted(
        q["sql"].split('FROM "')[1].split('"')[0]
        for q in ctx.captured_queries
        if q["sql"].startswith("SELECT")
    )
    # impressions and the list's decision trace are written inline under the test settings (the buffered
    # writer under `make serve`)
    writes = [q["sql"].split(" (")[0] for q in ctx.captured_queries if not q["sql"].startswith("SELECT")]
    assert reads == ["catalog_customer", "catalog_event"], reads
    assert writes == [
        'INSERT INTO "recommender_impression"',
        'INSERT OR IGNORE INTO "recommender_decisiontracerecord"'
        if connection.vendor == "sqlite"
        else 'INSERT INTO "recommender_decisiontracerecord"',
    ], writes


def test_widget_rule_saved_shows_at_once_here_and_within_a_second_elsewhere(clock, api_client):
    shop = shop_create()
    widget = widget_make("home-trending", strategy="trending", num_items=4)
    before = [i["product_id"] for i in api_client.get(url("home-trending")).json()["items"]]
    assert before
    brand = shop.products[before[0] - shop.products[0].pk].brand_id
    # saved through the ORM (the admin does the same): this process sees it on the next request
    WidgetRule.objects.create(widget=widget, kind="exclude_brands", params={"brands": [brand]}, position=0)
    after = api_client.get(url("home-trending")).json()["items"]
    assert after and all(
        shop.products[i["product_id"] - shop.products[0].pk].brand_id != brand for i in after
    )
    # another process's save (no signal here; it bumps the shared widget generation on commit)
    Widget.objects.filter(pk=widget.pk).update(title="Hot now")
    serving.widget_enabled_get("home-trending")  # memoised copy still has the old title
    from django.core.cache import cache

    from recommender.selectors import widget_cache_forget

    widget_cache_forget(slugs=["home-trending"])
    cache.set(serving.WIDGET_GENERATION_KEY, (cache.get(serving.WIDGET_GENERATION_KEY) or 0) + 1, None)
    assert api_client.get(url("home-trending")).json()["title"] == "Home-Trending"
    clock.now += serving.GENERATION_POLL_SECONDS + 0.1
    assert api_client.get(url("home-trending")).json()["title"] == "Hot now"


def test_disabling_a_widget_in_this_process_404s_at_once(clock, api_client):
    shop_create()
    widget = widget_make("home-trending", strategy="trending", num_items=2)
    assert api_client.get(url("home-trending")).status_code == 200
    widget.enabled = False
    widget.save()
    assert api_client.get(url("home-trending")).status_code == 404


def test_stock_change_shows_within_the_ttl(clock):
    from catalog.models import Product

    shop_create()
    widget = widget_make("home-trending", strategy="trending", num_items=20)
    WidgetRule.objects.create(widget=widget, kind="in_stock", params={}, position=0)
    first = [r.product_id for r in recommendations_get(widget=widget, log=False)]
    sold_out = first[0]
    Product.objects.filter(pk=sold_out).update(stock=0)
    clock.now += 29
    assert sold_out in [r.product_id for r in recommendations_get(widget=widget, log=False)]
    clock.now += 1.1  # past RECSITE_SERVING_ATTRS_SECONDS: the attributes are read again
    assert sold_out not in [r.product_id for r in recommendations_get(widget=widget, log=False)]


class override_api_key_cache:
    def __init__(self, seconds: float) -> None:
        from django.test import override_settings

        self._override = override_settings(RECSITE_API_KEY_CACHE_SECONDS=seconds)

    def __enter__(self):
        from recsite.api import api_key_memo_clear

        api_key_memo_clear()
        self._override.enable()

    def __exit__(self, *exc):
        from recsite.api import api_key_memo_clear

        self._override.disable()
        api_key_memo_clear()


def test_api_key_check_is_remembered_and_revocation_applies_at_once(api_client, api_key):
    from rest_framework_api_key.models import APIKey

    shop_create()
    widget_make("home-trending", strategy="trending", num_items=2)
    with override_api_key_cache(30):
        assert api_client.get(url("home-trending")).status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            assert api_client.get(url("home-trending")).status_code == 200
        assert not [q for q in ctx.captured_queries if "api_key" in q["sql"]]
        # revoking it (admin or ORM save) is seen on the very next request of this process
        key = APIKey.objects.get_from_key(api_key)
        key.revoked = True
        key.save()
        r = api_client.get(url("home-trending"))
        assert r.status_code == 401 and "revoked" in r.json()["error"]


def test_wrong_api_keys_are_never_remembered():
    from django.test import Client

    from recsite.api import api_key_memo

    with override_api_key_cache(30):
        bad = Client(HTTP_AUTHORIZATION="Api-Key nope.nothing")
        for _ in range(2):
            assert bad.get(url("home-trending")).status_code == 401
        assert len(api_key_memo) == 0


@pytest.mark.realservices
def test_throttle_is_a_fixed_window_counter_on_redis(api_client, settings):
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("needs the Redis cache (REDIS_URL)")
    shop_create()
    widget_make("home-trending", strategy="trending", num_items=2)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "recommendations": "3/min",
        },
    }
    codes = [api_client.get(url("home-trending")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = api_client.get(url("home-trending"))
    assert r.status_code == 429 and 0 < int(r["Retry-After"]) <= 61
    # counted in one windowed counter key (INCR), not DRF's list of request times
    from recommender.api.views import _redis_client

    keys = _redis_client(caches["default"]).keys("*throttle_recommendations_*")
    assert keys and all(b":w" in k for k in keys), keys


def test_gc_freeze_runs_once_per_process_and_per_model_version(monkeypatch, settings, model_strategies):
    """Under `make serve` (RECSITE_GC_FREEZE) the live heap is frozen at the first request and after each
    newly loaded model version, never per request (the gc module is stubbed: tests must not freeze)."""

    class FakeGC:
        def __init__(self) -> None:
            self.freezes = 0

        def collect(self) -> int:
            return 0

        def freeze(self) -> None:
            self.freezes += 1

        def get_freeze_count(self) -> int:
            return 0

    fake = FakeGC()
    monkeypatch.setattr("recommender.serving.loading.gc", fake)
    monkeypatch.setattr("recommender.serving.loading._heap_frozen_after", set())
    settings.RECSITE_GC_FREEZE = True
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=3)
    for customer in shop.customers[:3]:
        assert recommendations_get(widget=widget, customer=customer, log=False)
    assert fake.freezes == 2  # the first request, then the first load of the model version
    settings.RECSITE_GC_FREEZE = False
    monkeypatch.setattr("recommender.serving.loading._heap_frozen_after", set())
    recommendations_get(widget=widget, customer=shop.customers[0], log=False)
    assert fake.freezes == 2

"""Serving degrades, never fails: a dead Redis, a missing or corrupt artifact, an engine that raises."""

import logging

import pytest
from django.core.cache import caches
from django.urls import reverse

from recommender import serving
from recommender.models import Impression, ModelVersion
from recommender.serving import DecisionTrace, recommendations_get
from tests.catalog.api_fixtures import api_client_fixture, api_key_fixture  # noqa: F401
from tests.recommender.serving_fixtures import (  # noqa: F401
    ALL_MODEL_STRATEGIES,
    _serving_fresh,
    model_strategies,
    model_version_make,
    raising_engine,
    shop_create,
    widget_make,
)

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}


@pytest.fixture
def dead_redis(settings):
    settings.CACHES = DEAD_REDIS  # Django's setting_changed handler rebuilds the cache handler
    with pytest.raises(Exception):  # noqa: B017 - proves the cache really is unreachable
        caches["default"].get("probe")
    serving.serving_state_reset()
    yield
    serving.serving_state_reset()


def test_dead_redis_serves_live_with_a_warning(dead_redis, model_strategies, caplog):
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=3)
    with caplog.at_level(logging.WARNING, logger="recommender.serving"):
        trace: list[DecisionTrace] = []
        recs = recommendations_get(widget=widget, customer=shop.customers[0], trace=trace)
        again = recommendations_get(widget=widget, customer=shop.customers[0])
    assert len(recs) == 3 and len(again) == 3
    assert recs[0].engine == "itemknn"
    assert not trace[0].cache_hits
    warnings = [r for r in caplog.records if "cache" in r.getMessage()]
    assert len(warnings) == 1  # the circuit breaker: one failure, then the cache is skipped for a while


def test_dead_redis_api_and_fragment_never_500(dead_redis, api_client, client):
    shop_create()
    widget_make("home-trending", strategy="trending", num_items=2)
    r = api_client.get(reverse("recommender_api:recommendations", args=["home-trending"]))
    assert r.status_code == 200, r.content
    assert len(r.json()["items"]) == 2
    r = client.get(reverse("recommender:widget_fragment", args=["home-trending"]))
    assert r.status_code == 200
    assert r.content.count(b"data-rs-impression=") >= 2
    assert Impression.objects.count() == 4


def test_corrupt_artifact_falls_back_and_warns(model_strategies, caplog):
    # given an active version whose artifact file was damaged on disk
    shop = shop_create()
    version = model_version_make(shop=shop)
    with open(version.artifact.path, "wb") as f:
        f.write(b"\x00garbage, not a model\xff" * 10)
    widget = widget_make(strategy="personalized", num_items=3)
    # when
    with caplog.at_level(logging.WARNING, logger="recommender.serving"):
        trace: list[DecisionTrace] = []
        recs = recommendations_get(widget=widget, customer=shop.customers[0], trace=trace)
    # then the fallback serves k items and the failure is logged
    assert len(recs) == 3
    assert {r.engine for r in recs} <= {"trending", "popular"}
    assert any("failed to load" in r.getMessage() for r in caplog.records)
    assert any("unavailable" in w for w in trace[0].warnings)


def test_missing_artifact_falls_back(model_strategies):
    shop = shop_create()
    version = model_version_make(shop=shop)
    version.artifact.storage.delete(version.artifact.name)
    widget = widget_make(strategy="similar_items", num_items=2)
    recs = recommendations_get(widget=widget, product=shop.products[0])
    assert len(recs) == 2
    assert {r.engine for r in recs} <= {"trending", "popular"}


def test_raising_engine_falls_back(settings, raising_engine, caplog):
    shop = shop_create()
    settings.RECSITE_STRATEGY_ENGINES = {s: "raising" for s in ALL_MODEL_STRATEGIES}
    model_version_make(engine="raising", shop=shop)
    assert ModelVersion.objects.get().engine == "raising"
    for strategy in ALL_MODEL_STRATEGIES:
        widget = widget_make(slug=strategy.replace("_", "-"), strategy=strategy, num_items=2)
        with caplog.at_level(logging.WARNING, logger="recommender.serving"):
            recs = recommendations_get(
                widget=widget,
                customer=shop.customers[0],
                product=shop.products[0],
                session_items=[shop.products[1].pk],
            )
        assert len(recs) == 2, strategy
        assert {r.engine for r in recs} <= {"trending", "popular"}, strategy
    assert any("raised" in r.getMessage() for r in caplog.records)


def test_raising_engine_through_the_api_is_not_a_500(settings, raising_engine, api_client):
    shop = shop_create()
    settings.RECSITE_STRATEGY_ENGINES = {"similar_items": "raising"}
    model_version_make(engine="raising", shop=shop)
    widget_make("pdp-similar", strategy="similar_items", num_items=2)
    r = api_client.get(
        reverse("recommender_api:recommendations", args=["pdp-similar"]) + f"?product={shop.products[0].pk}"
    )
    assert r.status_code == 200
    assert len(r.json()["items"]) == 2


def test_failing_impression_log_still_returns_items(monkeypatch, caplog):
    shop_create()
    widget = widget_make(strategy="trending", num_items=2)

    def broken(rows, **_):
        raise RuntimeError("database refused the insert")

    monkeypatch.setattr("recommender.serving.pipeline.impressions_write", broken)
    with caplog.at_level(logging.WARNING, logger="recommender.serving"):
        recs = recommendations_get(widget=widget)
    assert len(recs) == 2
    assert any("impression log failed" in r.getMessage() for r in caplog.records)

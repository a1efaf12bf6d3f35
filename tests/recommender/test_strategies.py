"""Strategy -> engine mapping (the one place training and serving read it from)."""

from types import SimpleNamespace

import pytest

from recommender.strategies import FALLBACK_ENGINE, engines_needed, strategy_engine, widget_engines

pytestmark = pytest.mark.django_db  # the personalized engine is the shop's EngineChoice when one exists


def _widget(strategy, engine="", fallback="trending"):
    return SimpleNamespace(strategy=strategy, engine=engine, fallback_strategy=fallback)


def test_defaults():
    assert strategy_engine("personalized") == "ease"
    assert strategy_engine("similar_items") == "content"
    assert strategy_engine("bought_together") == "itemknn"
    assert strategy_engine("session_based") == "itemknn"
    assert strategy_engine("trending") == strategy_engine("popular") == "pop"
    assert strategy_engine("recently_viewed") is None
    assert strategy_engine("no-such-strategy") == FALLBACK_ENGINE


def test_widget_override_and_settings_override(settings):
    assert strategy_engine("personalized", override="sasrec") == "sasrec"
    settings.RECSITE_STRATEGY_ENGINES = {"personalized": "hybrid"}
    assert strategy_engine("personalized") == "hybrid"
    assert widget_engines(_widget("personalized", fallback="recently_viewed")) == ["hybrid"]


def test_engines_needed_dedupes_adds_fallback_and_skips_unknown():
    widgets = [
        _widget("personalized"),
        _widget("bought_together"),
        _widget("similar_items", engine="typo-engine"),
        _widget("recently_viewed", fallback="recently_viewed"),
    ]
    # the personalized widget needs every candidate of its engine choice (compared at training time)
    assert engines_needed(widgets) == ["ease", "pop", "itemknn", "hybrid"]
    assert engines_needed([]) == ["pop"]

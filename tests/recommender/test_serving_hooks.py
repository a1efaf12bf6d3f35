"""Serving hooks: how experiments change serving although recommender never imports experiments."""

from __future__ import annotations

import copy

import pytest

from experiments.serving import ExperimentServingHook
from recommender.serving import recommendations_get
from recommender.serving.hooks import (
    Slate,
    VariantApplied,
    serving_hook_register,
    serving_hook_unregister,
    serving_hooks,
)
from recommender.serving.trace import DecisionTrace
from tests.recommender.serving_fixtures import _serving_fresh, shop_create, view, widget_make  # noqa: F401


def test_experiments_register_their_hook_when_django_starts():
    assert any(isinstance(h, ExperimentServingHook) for h in serving_hooks())


def test_registering_the_same_kind_of_hook_twice_keeps_one():
    before = serving_hooks()
    serving_hook_register(ExperimentServingHook())
    assert len(serving_hooks()) == len(before)
    assert sum(isinstance(h, ExperimentServingHook) for h in serving_hooks()) == 1


def test_an_object_without_the_interface_is_refused():
    with pytest.raises(TypeError, match="ServingHook"):
        serving_hook_register(object())  # type: ignore[arg-type]


class SwapToPopular:
    """A hook that serves every widget as `popular` and tags the impressions."""

    def variant_apply(self, *, widget, customer, visitor, context, log):
        w = copy.copy(widget)
        w.strategy = "popular"
        return VariantApplied(
            widget=w, rules=None, context={**context, "experiment": "hook-test", "variant": "B"}
        )

    def slate_order(self, *, strategy, widget, pool, customer):
        return None


class ReverseBandit:
    """A bandit hook that orders the pool backwards, each slot with propensity 0.5."""

    def variant_apply(self, *, widget, customer, visitor, context, log):
        return VariantApplied(widget=widget, rules=None, context=context)

    def slate_order(self, *, strategy, widget, pool, customer):
        items = tuple(reversed(pool[:5]))
        return Slate(name=f"bandit:{strategy}", items=items, propensities=(0.5,) * len(items))


@pytest.mark.django_db
def test_a_registered_hook_changes_the_widget_and_tags_the_trace():
    shop = shop_create()
    for p in shop.clusters[1]:
        view(p)
    widget = widget_make(strategy="recently_viewed", num_items=3, fallback_strategy="")
    hook = SwapToPopular()
    serving_hook_register(hook)
    try:
        traces: list[DecisionTrace] = []
        recs = recommendations_get(widget=widget, visitor="someone", log=False, trace=traces)
    finally:
        serving_hook_unregister(hook)
    assert recs and all(r.engine == "popular" for r in recs)
    assert (traces[0].strategy, traces[0].experiment, traces[0].variant) == ("popular", "hook-test", "B")


@pytest.mark.django_db
def test_bandit_strategies_are_ordered_by_a_hook_and_fall_back_without_one(monkeypatch):
    shop = shop_create()
    for p in shop.clusters[0]:
        view(p)
    widget = widget_make(strategy="thompson", num_items=3, params={"base": "trending"})
    hook = ReverseBandit()
    monkeypatch.setattr("recommender.serving.hooks._hooks", [hook])
    recs = recommendations_get(widget=widget, log=False)
    assert [r.engine for r in recs] == ["bandit:thompson"] * 3
    # without any hook the bandit strategy cannot serve: the fallbacks do, and the trace says why
    monkeypatch.setattr("recommender.serving.hooks._hooks", [])
    traces: list[DecisionTrace] = []
    recs = recommendations_get(widget=widget, log=False, trace=traces)
    assert recs and all(r.engine != "bandit:thompson" for r in recs)
    assert any("no serving hook" in w for w in traces[0].warnings)
    assert traces[0].fallbacks

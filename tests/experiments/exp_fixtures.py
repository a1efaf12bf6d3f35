"""Helpers for the experiments tests: a widget, an experiment with variants, a tiny shop."""

from __future__ import annotations

import pytest

from experiments import bandit_serving, selectors
from experiments.models import Experiment, Variant
from recommender import serving
from recommender.models import Widget
from tests.factories import ProductFactory


@pytest.fixture(autouse=True)
def _fresh_state():
    serving.serving_state_reset()
    selectors.experiments_memo_clear()
    bandit_serving.bandit_state_reset()
    yield
    serving.serving_state_reset()
    selectors.experiments_memo_clear()
    bandit_serving.bandit_state_reset()


def widget_make(slug: str = "home-test", strategy: str = "popular", **kw) -> Widget:
    return Widget.objects.create(
        slug=slug,
        title=slug,
        placement=kw.pop("placement", "home"),
        strategy=strategy,
        fallback_strategy=kw.pop("fallback_strategy", "popular"),
        num_items=kw.pop("num_items", 4),
        **kw,
    )


def experiment_make(
    *, slug: str = "exp", widgets=(), variants=(("A", True, 1, {}), ("B", False, 1, {})), **kw
) -> Experiment:
    exp = Experiment.objects.create(slug=slug, name=slug, **kw)
    exp.widgets.set(list(widgets))
    for name, is_control, weight, extra in variants:
        Variant.objects.create(experiment=exp, name=name, is_control=is_control, weight=weight, **extra)
    return exp


def products_make(n: int = 12):
    return [ProductFactory(stock=5) for _ in range(n)]

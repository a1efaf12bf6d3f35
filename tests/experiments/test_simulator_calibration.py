"""Calibration: the "traditional" environment lands near the reference study's figures, and the
metric definitions are what the docstring says."""

import pytest

from experiments.simulator.metrics import PAPER_TRADITIONAL, metrics_compute, traditional_simulate
from experiments.simulator.shoppers import RecImpression, SessionLog, SimEvent

# The constants were calibrated at the study's size (10,000 customers, 500 products, 60 days; mean of
# seeds 0, 1, 42: conversion 4.54%, AOV $48.5, CTR 11.9%, 180 s). This check runs a smaller shop over the
# same 60 days (~7,000 sessions, ~300 orders), so the bands cover sampling noise (conversion SE ~0.25 pp,
# AOV SE ~$4), seed-to-seed catalog spread and the smaller shop's thinner popularity data (it lands at
# AOV ~$43). Breaking the calibration (e.g. a bias constant off by one logit) lands outside.
BANDS = {"conversion_rate": 0.015, "aov": 12.0, "ctr": 0.03, "session_duration": 25.0}


@pytest.mark.slow
def test_traditional_environment_is_calibrated_to_the_study():
    m = traditional_simulate(n_customers=1500, n_products=500, days=60, seed=2024)
    assert m.sessions > 5000
    for name, target in PAPER_TRADITIONAL.items():
        value = getattr(m, name)
        assert abs(value - target) <= BANDS[name], f"{name}={value:.4f}, target {target} ± {BANDS[name]}"


def _log(*, events=(), impressions=(), order=(), duration=100.0):
    return SessionLog(
        customer=0,
        start=0.0,
        duration=duration,
        device="mobile",
        events=tuple(events),
        impressions=tuple(impressions),
        order=tuple(order),
    )


def test_metric_definitions():
    logs = [
        _log(
            events=[SimEvent("add_to_cart", 1, 1.0), SimEvent("purchase", 1, 2.0, quantity=2, price=10.0)],
            impressions=[
                RecImpression("home", 0.0, (1, 2, 3, 4), 0),
                RecImpression("product", 1.0, (5, 6), -1),
            ],
            order=[(1, 2, 10.0), (2, 1, 30.0)],
            duration=300.0,
        ),
        _log(impressions=[RecImpression("home", 0.0, (1, 2, 3, 4), -1)], duration=60.0),
        _log(duration=30.0),
        _log(events=[SimEvent("add_to_cart", 3, 1.0)], order=[(3, 1, 20.0)], duration=210.0),
    ]
    m = metrics_compute(logs)
    assert m.sessions == 4 and m.orders == 2
    assert m.conversion_rate == pytest.approx(0.5)
    assert m.aov == pytest.approx((50.0 + 20.0) / 2)
    assert m.ctr == pytest.approx(1 / 3)  # one click over three lists shown
    assert m.item_ctr == pytest.approx(1 / 10)  # over ten item slots
    assert m.session_duration == pytest.approx(150.0)
    assert m.add_to_cart_rate == pytest.approx(0.5)
    assert m.revenue_per_session == pytest.approx(70.0 / 4)


def test_metrics_of_nothing_are_zero():
    m = metrics_compute([])
    assert m.sessions == 0 and m.conversion_rate == 0 and m.aov == 0 and m.ctr == 0

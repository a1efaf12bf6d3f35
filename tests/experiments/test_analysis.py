"""experiments.analysis on planted data: winners, SRM, metric definitions, query count; A/A false positives."""

import uuid
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Customer, Event
from experiments import stats
from experiments.analysis import experiment_results
from experiments.models import Exposure
from experiments.services import experiment_start
from recommender.models import Impression
from tests.experiments.exp_fixtures import _fresh_state, experiment_make, products_make, widget_make  # noqa: F401

pytestmark = pytest.mark.django_db


def _plant(
    exp, widget, products, *, variant, n, clicks, buys, start, order_value=Decimal("50.00"), prefix=None
):
    """n subjects in `variant`, one session and one 4-item list each; the first `clicks` click, the first
    `buys` buy for `order_value`."""
    v = exp.variants.get(name=variant)
    prefix = prefix or variant
    customers = Customer.objects.bulk_create([Customer(external_id=f"{prefix}-{i}") for i in range(n)])
    Exposure.objects.bulk_create(
        [
            Exposure(experiment=exp, variant=v, subject_id=c.external_id, first_exposed_at=start)
            for c in customers
        ]
    )
    imps, events = [], []
    for i, c in enumerate(customers):
        t = start + timedelta(hours=1 + i % 200)
        sid = uuid.uuid4().hex
        req = uuid.uuid4()
        row = [
            Impression(
                id=uuid.uuid4(),
                request_id=req,
                widget=widget,
                product=products[(i + j) % len(products)],
                customer=c,
                position=j,
                experiment=exp.slug,
                variant=variant,
                created_at=t,
            )
            for j in range(4)
        ]
        imps += row
        events.append(Event(type="view", product=products[0], customer=c, session_id=sid, timestamp=t))
        events.append(
            Event(
                type="dwell",
                product=products[0],
                customer=c,
                session_id=sid,
                dwell_ms=20_000,
                timestamp=t + timedelta(seconds=20),
            )
        )
        if i < clicks:
            events.append(
                Event(
                    type="click",
                    product=row[0].product,
                    customer=c,
                    session_id=sid,
                    impression_id=row[0].id,
                    timestamp=t + timedelta(seconds=30),
                )
            )
        if i < buys:
            events.append(
                Event(
                    type="add_to_cart",
                    product=products[1],
                    customer=c,
                    session_id=sid,
                    timestamp=t + timedelta(seconds=60),
                )
            )
            events.append(
                Event(
                    type="purchase",
                    product=products[1],
                    customer=c,
                    session_id=sid,
                    price=order_value,
                    value=order_value,
                    timestamp=t + timedelta(seconds=120),
                )
            )
    Impression.objects.bulk_create(imps)
    Event.objects.bulk_create(events)


def _setup(**kw):
    products = products_make(8)
    w = widget_make()
    exp = experiment_start(
        experiment=experiment_make(widgets=[w], **kw), now=timezone.now() - timedelta(days=20)
    )
    return exp, w, products


def test_planted_better_variant_wins_on_ctr_and_conversion_is_flat():
    exp, w, products = _setup(primary_metric="ctr", minimum_detectable_effect=0.3)
    start = exp.started_at
    _plant(exp, w, products, variant="A", n=1000, clicks=100, buys=40, start=start)  # CTR 10%
    _plant(exp, w, products, variant="B", n=1000, clicks=150, buys=40, start=start)  # CTR 15%
    res = experiment_results(experiment=exp)
    ctr_a, ctr_b = res.stats["ctr"]["A"], res.stats["ctr"]["B"]
    assert (ctr_a.n, ctr_a.successes, ctr_b.successes) == (1000, 100, 150)
    c = res.comparison("ctr", "B")
    assert c.relative == pytest.approx(0.5)
    assert c.significant and c.p_holm < 0.05 and c.prob_beat_control > 0.99
    conv = res.comparison("conversion_rate", "B")
    assert not conv.significant and conv.effect == pytest.approx(0.0)
    assert res.verdict.startswith("B wins on CTR, +50.0% [")
    assert "conversion flat" in res.verdict
    assert not res.srm.mismatch
    assert set(res.daily) == {"A", "B"} and res.daily["B"][-1][1] == pytest.approx(0.15)
    assert (
        res.sequential["B"].reject and res.sequential["B"].p_value < 0.05
    )  # always-valid p over daily looks


def test_metric_definitions_on_a_small_experiment():
    exp, w, products = _setup()
    start = exp.started_at
    _plant(exp, w, products, variant="A", n=10, clicks=2, buys=5, start=start, order_value=Decimal("40.00"))
    _plant(exp, w, products, variant="B", n=10, clicks=4, buys=2, start=start, order_value=Decimal("70.00"))
    res = experiment_results(experiment=exp)
    s = res.stats
    assert s["conversion_rate"]["A"].value == pytest.approx(0.5)
    assert s["add_to_cart_rate"]["B"].value == pytest.approx(0.2)
    assert s["aov"]["A"].value == pytest.approx(40.0) and s["aov"]["B"].value == pytest.approx(70.0)
    assert s["revenue_per_visitor"]["A"].value == pytest.approx(20.0)  # 5 x 40 over 10 subjects
    assert s["session_duration"]["A"].value == pytest.approx(
        (5 * 120 + 5 * 20) / 10
    )  # buyers last 120 s, others 20 s
    assert s["dwell"]["A"].value == pytest.approx(20.0)
    assert s["ctr"]["B"].value == pytest.approx(0.4)
    names = [g.name for g in res.guardrails]
    assert names == ["coverage", "diversity", "popularity_share", "latency"]
    assert res.guardrails[0].values["A"] == pytest.approx(8 / 8)  # all 8 products shown


def test_srm_is_flagged_on_a_planted_imbalance():
    exp, w, products = _setup()
    start = exp.started_at
    _plant(exp, w, products, variant="A", n=1000, clicks=100, buys=10, start=start)
    _plant(exp, w, products, variant="B", n=800, clicks=80, buys=8, start=start)
    res = experiment_results(experiment=exp)
    assert res.srm.mismatch and res.srm.p_value < 1e-5
    assert res.verdict.startswith("SAMPLE RATIO MISMATCH")
    assert any("Sample ratio mismatch" in w for w in res.warnings)


def test_query_count_does_not_grow_with_subjects_or_variants(django_assert_max_num_queries):
    exp, w, products = _setup(variants=(("A", True, 1, {}), ("B", False, 1, {}), ("C", False, 1, {})))
    for v in "ABC":
        _plant(exp, w, products, variant=v, n=60, clicks=6, buys=3, start=exp.started_at)
    with django_assert_max_num_queries(14):
        res = experiment_results(experiment=exp)
    assert len(res.comparisons) == 2 * 7  # every metric but the (unobservable) 14-day return, for B and C
    assert {c.variant for c in res.comparisons} == {"B", "C"}


def test_repeated_aa_splits_of_simulated_sessions_flag_at_about_the_nominal_rate():
    # given one population of simulated shoppers (the pure shopper model, segment-popular recommendations)
    from experiments.simulator.catalog import catalog_generate
    from experiments.simulator.metrics import sessions_run
    from experiments.simulator.recommenders import SegmentPopular
    from experiments.simulator.shoppers import ShopperModel, population_generate, sessions_schedule

    catalog = catalog_generate(n_products=80, seed=3, window_days=10)
    pop = population_generate(catalog=catalog, n_customers=600, seed=3)
    starts, who = sessions_schedule(population=pop, days=10, seed=3)
    rec = SegmentPopular(catalog=catalog, population=pop)
    logs = list(
        sessions_run(
            model=ShopperModel(catalog),
            population=pop,
            starts=starts,
            customers=who,
            rng=np.random.default_rng(3),
            recommend=rec,
            observe=rec.observe,
        )
    )
    lists = np.array([imp.clicked >= 0 for log in logs for imp in log.impressions], dtype=float)
    assert lists.size > 1000
    # when it is split into two identical arms 400 times at random
    rng = np.random.default_rng(0)
    flagged = 0
    reps = 400
    for _ in range(reps):
        mask = rng.random(lists.size) < 0.5
        a, b = lists[mask], lists[~mask]
        flagged += stats.two_proportion_ztest(int(a.sum()), a.size, int(b.sum()), b.size).p_value < 0.05
    # then about 5% of the A/A tests report a difference (binomial 95% band for 400 reps: 2.9%-7.4%)
    assert 0.025 <= flagged / reps <= 0.08

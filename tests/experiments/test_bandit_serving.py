"""The experiment hook and bandit strategies, through recommender.serving.recommendations_get."""

import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.services.events import events_record
from experiments.bandit_serving import bandit_state
from experiments.models import Exposure
from experiments.services import experiment_pause, experiment_start, variant_assign
from recommender.models import Impression
from recommender.serving import recommendations_get
from tests.experiments.exp_fixtures import _fresh_state, experiment_make, products_make, widget_make  # noqa: F401
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _customers_by_variant(exp, n=60):
    out = {}
    for i in range(n):
        c = CustomerFactory(external_id=f"shopper-{i}")
        out.setdefault(variant_assign(experiment=exp, subject_id=c.external_id).label, []).append(c)
    return out


def test_running_experiment_applies_variant_overrides_and_tags_impressions(settings):
    products = products_make(10)
    cheap = [ProductFactory(price=Decimal("1.00"), stock=5) for _ in range(3)]
    w = widget_make(strategy="popular", num_items=4)
    exp = experiment_start(
        experiment=experiment_make(
            widgets=[w],
            variants=(
                ("A", True, 1, {}),
                ("B", False, 1, {"rules": [{"kind": "price_range", "params": {"max": 5}}]}),
            ),
        )
    )
    groups = _customers_by_variant(exp)
    a, b = groups["A"][0], groups["B"][0]
    recs_a = recommendations_get(widget=w, customer=a)
    recs_b = recommendations_get(widget=w, customer=b)
    assert {r.product_id for r in recs_b} <= {p.pk for p in cheap}  # B's rule override applied
    assert any(r.product_id in {p.pk for p in products} for r in recs_a)  # A unchanged
    tags = set(Impression.objects.values_list("experiment", "variant"))
    assert tags == {("exp", "A"), ("exp", "B")}
    recommendations_get(widget=w, customer=a)  # second request: exposure not duplicated
    assert Exposure.objects.filter(experiment=exp).count() == 2
    w.refresh_from_db()
    assert w.strategy == "popular"  # the stored widget is never modified by an override


def test_variant_strategy_override_and_paused_experiment():
    products = products_make(8)
    w = widget_make(strategy="popular", num_items=3)
    exp = experiment_start(
        experiment=experiment_make(
            widgets=[w], variants=(("A", True, 1, {}), ("B", False, 1, {"strategy": "recently_viewed"}))
        )
    )
    b = _customers_by_variant(exp)["B"][0]
    seen = [products[5].pk, products[6].pk]
    recs = recommendations_get(widget=w, customer=b, session_items=seen)
    assert [r.product_id for r in recs[:2]] == seen[::-1]  # most recent first
    experiment_pause(experiment=exp)
    recommendations_get(widget=w, customer=b)
    assert Impression.objects.filter(experiment="").count() == 3  # paused: served untagged, as configured


def test_preview_without_logging_writes_no_exposure():
    products_make(5)
    w = widget_make()
    exp = experiment_start(experiment=experiment_make(widgets=[w]))
    c = CustomerFactory()
    recommendations_get(widget=w, customer=c, log=False)
    assert not Exposure.objects.filter(experiment=exp).exists()


def _click(customer, rec):
    res = events_record(
        events=[
            {
                "event_id": str(uuid.uuid4()),
                "type": "click",
                "product_id": rec.product_id,
                "customer": customer.external_id,
                "impression_id": str(rec.impression_id),
                "timestamp": timezone.now(),
            }
        ]
    )
    assert res.accepted == 1


def test_epsilon_greedy_logs_propensities_and_learns_from_clicks(settings):
    settings.RECSITE_BANDIT_SYNC_SECONDS = 0
    products_make(10)
    w = widget_make(
        strategy="epsilon_greedy", num_items=4, params={"epsilon": 0.2, "base": "popular", "pool": 6}
    )
    c = CustomerFactory()
    recs = recommendations_get(widget=w, customer=c)
    assert len(recs) == 4 and all(r.engine == "bandit:epsilon_greedy@0.2" for r in recs)
    props = list(Impression.objects.order_by("position").values_list("propensity", flat=True))
    assert all(0 < p <= 1 for p in props)
    # propensity at a position is eps/m (+ 1 - eps for the greedy pick): pool of 6 -> m = 6, 5, 4, 3
    for pos, p in enumerate(props):
        m = 6 - pos
        assert p == pytest.approx(0.2 / m) or p == pytest.approx(0.2 / m + 0.8)
    # a product clicked again and again becomes the greedy first choice
    target = recs[-1]
    for _ in range(8):
        _click(c, target)
    state = bandit_state(widget=w, strategy="epsilon_greedy", params=w.params)
    assert state.policy.clicks[target.product_id] == 8
    assert state.pulls == 4
    firsts = [recommendations_get(widget=w, customer=c)[0].product_id for _ in range(20)]
    assert firsts.count(target.product_id) >= 12  # greedy with probability 0.8 + 0.2/6
    greedy_p = 0.8 + 0.2 / 6
    logged = Impression.objects.filter(position=0, product_id=target.product_id).values_list(
        "propensity", flat=True
    )
    assert all(p == pytest.approx(greedy_p) for p in logged)
    # another exploration rate is another policy (its own state, learning from its own impressions)
    other = bandit_state(widget=w, strategy="epsilon_greedy", params={**w.params, "epsilon": 0.3})
    assert other.pulls == 0 and other is not state


@pytest.mark.parametrize("strategy", ["thompson", "linucb"])
def test_other_bandits_serve_and_fall_back_gracefully(strategy, settings):
    settings.RECSITE_BANDIT_SYNC_SECONDS = 0
    products_make(6)
    w = widget_make(strategy=strategy, num_items=3, params={"base": "popular"})
    c = CustomerFactory(age_band="25-34", gender="f")
    recs = recommendations_get(widget=w, customer=c)
    assert len(recs) == 3
    assert all(r.engine == f"bandit:{strategy}" for r in recs)
    _click(c, recs[0])
    state = bandit_state(widget=w, strategy=strategy, params=w.params)
    assert state.clicks == 1 and state.pulls == 3


def test_bandit_state_is_separate_per_variant(settings):
    settings.RECSITE_BANDIT_SYNC_SECONDS = 0
    products_make(6)
    w = widget_make(strategy="popular", num_items=3)
    exp = experiment_start(
        experiment=experiment_make(
            widgets=[w],
            variants=(
                ("A", True, 1, {"strategy": "epsilon_greedy", "params": {"epsilon": 0.1, "base": "popular"}}),
                (
                    "B",
                    False,
                    1,
                    {"strategy": "epsilon_greedy", "params": {"epsilon": 0.1, "base": "popular"}},
                ),
            ),
        )
    )
    groups = _customers_by_variant(exp)
    recs = recommendations_get(widget=w, customer=groups["A"][0])
    recommendations_get(widget=w, customer=groups["B"][0])
    assert set(Impression.objects.values_list("variant", "engine")) == {
        ("A", "bandit:epsilon_greedy@0.1"),
        ("B", "bandit:epsilon_greedy@0.1"),
    }
    _click(groups["A"][0], recs[0])
    from experiments.serving import experiment_apply

    wa = experiment_apply(widget=w, customer=groups["A"][0], context={}, log=False).widget
    wb = experiment_apply(widget=w, customer=groups["B"][0], context={}, log=False).widget
    sa = bandit_state(widget=wa, strategy="epsilon_greedy", params=wa.params)
    sb = bandit_state(widget=wb, strategy="epsilon_greedy", params=wb.params)
    assert sa.clicks == 1 and sb.clicks == 0
    assert sa.pulls == 3 and sb.pulls == 3


@pytest.mark.realservices
def test_experiment_and_bandit_on_postgres_and_redis(settings):
    # the generation counter (cache.incr), pickled bandit state and exposure inserts with
    # ignore_conflicts against the real services
    settings.RECSITE_BANDIT_SYNC_SECONDS = 0
    products_make(6)
    w = widget_make(strategy="popular", num_items=3)
    exp = experiment_start(
        experiment=experiment_make(
            widgets=[w],
            variants=(
                ("A", True, 1, {}),
                (
                    "B",
                    False,
                    1,
                    {"strategy": "epsilon_greedy", "params": {"epsilon": 0.2, "base": "popular"}},
                ),
            ),
        )
    )
    groups = _customers_by_variant(exp)
    b = groups["B"][0]
    recs = recommendations_get(widget=w, customer=b)
    recommendations_get(widget=w, customer=b)
    assert Exposure.objects.filter(experiment=exp, subject_id=b.external_id).count() == 1
    _click(b, recs[0])
    from django.core.cache import cache

    from experiments import bandit_serving
    from experiments.serving import experiment_apply

    wb = experiment_apply(widget=w, customer=b, context={}, log=False).widget
    bandit_serving.bandit_state_reset()  # force a read from Redis
    state = bandit_state(widget=wb, strategy="epsilon_greedy", params=wb.params)
    assert state.clicks == 1 and state.pulls == 6
    key, _, _ = bandit_serving.state_key(widget=wb, strategy="epsilon_greedy", params=wb.params)
    assert cache.get(key).clicks == 1
    experiment_pause(experiment=exp)
    recommendations_get(widget=w, customer=b)
    assert Impression.objects.filter(experiment="").count() == 3


def test_warm_experiment_lookup_costs_no_query_and_status_changes_show_at_once():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    products_make(4)
    w = widget_make()
    exp = experiment_start(experiment=experiment_make(widgets=[w]))
    c = CustomerFactory()
    recommendations_get(widget=w, customer=c)
    with CaptureQueriesContext(connection) as ctx:
        recommendations_get(widget=w, customer=c)
    assert not [q for q in ctx.captured_queries if "experiments_" in q["sql"]]
    experiment_pause(experiment=exp)  # new generation token: the next request sees it
    recommendations_get(widget=w, customer=c)
    assert Impression.objects.filter(experiment="").count() == 4

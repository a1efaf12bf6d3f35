"""Admin pages: experiment form with the calculator, lifecycle buttons, results page, calculator page."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from catalog.models import Event
from experiments.models import Experiment
from experiments.services import experiment_start
from recommender.models import Impression
from tests.experiments.exp_fixtures import _fresh_state, experiment_make, products_make, widget_make  # noqa: F401
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


def _impressions(
    widget, products, n_lists=40, clicked=4, engine="popular", propensity=1.0, exp="", variant=""
):
    c = CustomerFactory()
    now = timezone.now()
    rows, events = [], []
    for i in range(n_lists):
        req = uuid.uuid4()
        for pos in range(3):
            imp = Impression(
                id=uuid.uuid4(),
                request_id=req,
                widget=widget,
                product=products[pos],
                customer=c,
                position=pos,
                engine=engine,
                propensity=propensity,
                experiment=exp,
                variant=variant,
                created_at=now - timedelta(hours=3 * i),
            )
            rows.append(imp)
            if pos == 0 and i < clicked:
                events.append(
                    Event(
                        type="click",
                        product=products[pos],
                        customer=c,
                        impression_id=imp.id,
                        session_id=f"s{i}",
                        timestamp=now - timedelta(hours=3 * i),
                    )
                )
    Impression.objects.bulk_create(rows)
    Event.objects.bulk_create(events)


def test_change_form_shows_calculator_from_recent_data_and_ope_note(staff):
    products = products_make(4)
    w = widget_make()
    _impressions(w, products)  # CTR 10% over 40 lists
    exp = experiment_make(widgets=[w], primary_metric="ctr", minimum_detectable_effect=0.1)
    resp = staff.get(reverse("admin:experiments_experiment_change", args=[exp.pk]))
    assert resp.status_code == 200
    text = resp.content.decode()
    assert "Baseline CTR: 10.00% over the last 30 days (40 recommendation lists)" in text
    assert "per arm" in text
    assert "Not estimable: no impressions logged by an exploring" in text  # propensity 1 logs only
    assert ">Start</button>" in text


def test_ope_estimate_shown_before_start_from_bandit_logs(staff):
    products = products_make(4)
    w = widget_make(strategy="epsilon_greedy")
    # greedy picks logged with p = 0.8 + 0.2/3 at position 0
    _impressions(
        w, products, n_lists=60, clicked=6, engine="bandit:epsilon_greedy@0.2", propensity=0.8 + 0.2 / 3
    )
    exp = experiment_make(widgets=[w])
    text = staff.get(reverse("admin:experiments_experiment_change", args=[exp.pk])).content.decode()
    assert "expected CTR" in text and "vs current" in text and "epsilon-greedy, epsilon 0.1" in text


def test_lifecycle_buttons_start_pause_stop_and_report_errors(staff):
    w = widget_make()
    exp = experiment_make(widgets=[w])
    url = lambda a: reverse("admin:experiments_experiment_lifecycle", args=[exp.pk, a])  # noqa: E731
    resp = staff.post(url("start"), follow=True)
    assert "is now running" in resp.content.decode()
    exp.refresh_from_db()
    assert exp.status == "running" and exp.allocation
    staff.post(url("pause"))
    staff.post(url("stop"))
    exp.refresh_from_db()
    assert exp.status == "stopped"
    resp = staff.post(url("start"), follow=True)
    assert "cannot restart" in resp.content.decode()
    resp = staff.post(url("explode"), follow=True)
    assert "Unknown action" in resp.content.decode()
    resp = staff.get(url("start"), follow=True)  # GET changes nothing
    assert resp.status_code == 200 and Experiment.objects.get(pk=exp.pk).status == "stopped"
    bad = experiment_make(slug="bad", widgets=[], variants=(("A", False, 1, {}), ("B", False, 1, {})))
    resp = staff.post(reverse("admin:experiments_experiment_lifecycle", args=[bad.pk, "start"]), follow=True)
    text = resp.content.decode()
    assert "Mark exactly one variant as the control" in text and "Choose at least one target widget" in text


def test_inline_with_two_controls_is_a_form_error_not_a_500(staff):
    w = widget_make()
    data = {
        "slug": "two-controls",
        "name": "Two controls",
        "hypothesis": "",
        "widgets": [w.pk],
        "traffic_share": 1,
        "holdout_share": 0,
        "primary_metric": "ctr",
        "guardrail_metrics": "[]",
        "minimum_detectable_effect": 0.05,
        "alpha": 0.05,
        "variants-TOTAL_FORMS": 2,
        "variants-INITIAL_FORMS": 0,
        "variants-MIN_NUM_FORMS": 0,
        "variants-MAX_NUM_FORMS": 1000,
        "variants-0-name": "A",
        "variants-0-is_control": "on",
        "variants-0-weight": 1,
        "variants-0-params": "{}",
        "variants-0-rules": "[]",
        "variants-1-name": "B",
        "variants-1-is_control": "on",
        "variants-1-weight": 1,
        "variants-1-params": "{}",
        "variants-1-rules": "[]",
    }
    resp = staff.post(reverse("admin:experiments_experiment_add"), data)
    assert resp.status_code == 200
    assert "Exactly one variant may be the control; 2 are marked" in resp.content.decode()
    assert not Experiment.objects.filter(slug="two-controls").exists()
    data["variants-1-is_control"] = ""
    data["guardrail_metrics"] = '["speed"]'
    resp = staff.post(reverse("admin:experiments_experiment_add"), data)
    assert "Unknown guardrail(s) speed" in resp.content.decode()
    data["guardrail_metrics"] = '["coverage"]'
    resp = staff.post(reverse("admin:experiments_experiment_add"), data)
    assert resp.status_code == 302 and Experiment.objects.get(slug="two-controls").variants.count() == 2


def test_results_page_renders_table_verdict_and_svg_charts(staff):
    products = products_make(4)
    w = widget_make()
    exp = experiment_start(
        experiment=experiment_make(widgets=[w], primary_metric="ctr"), now=timezone.now() - timedelta(days=5)
    )
    from experiments.models import Exposure
    from experiments.services import variant_assign

    for i in range(30):
        a = variant_assign(experiment=exp, subject_id=f"cust-r{i}")
        Exposure.objects.create(
            experiment=exp, variant_id=a.variant_id, subject_id=a.subject_id, first_exposed_at=timezone.now()
        )
    _impressions(w, products, n_lists=20, clicked=2, exp=exp.slug, variant="A")
    _impressions(w, products, n_lists=20, clicked=6, exp=exp.slug, variant="B")
    resp = staff.get(reverse("admin:experiments_experiment_results", args=[exp.pk]))
    assert resp.status_code == 200
    text = resp.content.decode()
    assert 'id="results-table"' in text and 'id="verdict"' in text
    assert 'aria-label="Cumulative metric per variant"' in text and "<polyline" in text
    assert 'aria-label="Relative effect with confidence interval"' in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no CDN
    assert "sample-ratio check" in text
    assert 'id="sequential"' in text and "always-valid p" in text


def test_calculator_page_computes_and_rejects_bad_input(staff):
    url = reverse("admin:experiments_experiment_calculator")
    resp = staff.get(
        url, {"baseline": 0.045, "mde": 0.1, "alpha": 0.05, "power": 0.8, "arms": 2, "daily": 1000}
    )
    text = resp.content.decode()
    assert resp.status_code == 200 and 'id="calculator-result"' in text
    from experiments.stats import sample_size_proportions

    n = sample_size_proportions(0.045, 0.1)
    assert f"{n:,}" in text
    resp = staff.get(url, {"baseline": 2, "mde": 0.1, "alpha": 0.05, "power": 0.8, "arms": 2})
    assert resp.status_code == 200 and "calculator-result" not in resp.content.decode()
    assert "less than or equal to 0.9999" in resp.content.decode()
    resp = staff.get(url, {"baseline": 0.95, "mde": 0.2, "alpha": 0.05, "power": 0.8, "arms": 2})
    assert "must stay between 0 and 1" in resp.content.decode()

import pytest
from django.core.exceptions import ValidationError

from experiments.assignment import N_BUCKETS
from experiments.models import Experiment, Exposure, Variant
from experiments.selectors import ExperimentSnapshot, experiment_for_widget
from experiments.services import (
    experiment_pause,
    experiment_start,
    experiment_stop,
    experiment_weights_update,
    exposures_log,
    variant_assign,
)
from tests.experiments.exp_fixtures import _fresh_state, experiment_make, widget_make  # noqa: F401

pytestmark = pytest.mark.django_db


def test_start_builds_allocation_and_serving_sees_it():
    w = widget_make()
    exp = experiment_make(widgets=[w])
    exp = experiment_start(experiment=exp)
    assert exp.status == Experiment.Status.RUNNING
    assert exp.started_at is not None
    assert len(exp.allocation) == N_BUCKETS
    ids = set(exp.variants.values_list("pk", flat=True))
    assert set(exp.allocation) == ids
    snap = experiment_for_widget(widget_id=w.pk)
    assert snap is not None and snap.slug == "exp"


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ((("A", False, 1, {}), ("B", False, 1, {})), "none is marked"),
        ((("A", True, 1, {}),), "at least two variants"),
        (
            (("A", True, 1, {}), ("B", False, 1, {"params": {"epsilon": 2}})),
            "epsilon must be a number between 0 and 1",
        ),
        ((("A", True, 1, {}), ("B", False, 1, {"strategy": "nonsense"})), "unknown strategy"),
    ],
)
def test_start_rejects_bad_setups_with_clear_messages(variants, message):
    exp = experiment_make(widgets=[widget_make()], variants=variants)
    with pytest.raises(ValidationError) as err:
        experiment_start(experiment=exp)
    assert any(message in m for m in err.value.messages), err.value.messages
    exp.refresh_from_db()
    assert exp.status == Experiment.Status.DRAFT and exp.allocation == []


def test_two_controls_and_zero_weight_are_reported():
    # the database constraints stop two controls / weight 0 at save time; the validator names both
    exp = experiment_make(widgets=[widget_make()])
    a, b = list(exp.variants.all())
    b.is_control = True
    b.weight = 0
    from experiments.services import experiment_validate

    with pytest.raises(ValidationError) as err:
        experiment_validate(experiment=exp, variants=[a, b])
    text = " ".join(err.value.messages)
    assert "Exactly one variant may be the control; 2 are marked" in text
    assert "weight 0" in text


def test_start_needs_a_widget_and_no_clash():
    exp = experiment_make(slug="nowidget")
    with pytest.raises(ValidationError, match="target widget"):
        experiment_start(experiment=exp)
    w = widget_make()
    experiment_start(experiment=experiment_make(slug="first", widgets=[w]))
    with pytest.raises(ValidationError, match="already in running experiment 'first'"):
        experiment_start(experiment=experiment_make(slug="second", widgets=[w]))


def test_pause_resume_stop_lifecycle():
    exp = experiment_start(experiment=experiment_make(widgets=[widget_make()]))
    alloc = list(exp.allocation)
    exp = experiment_pause(experiment=exp)
    assert exp.status == "paused"
    assert experiment_for_widget(widget_id=exp.widgets.first().pk) is None
    with pytest.raises(ValidationError, match="Only a running experiment can be paused"):
        experiment_pause(experiment=exp)
    exp = experiment_start(experiment=exp)  # resume keeps the allocation
    assert exp.allocation == alloc
    exp = experiment_stop(experiment=exp)
    assert exp.status == "stopped" and exp.stopped_at
    with pytest.raises(ValidationError, match="cannot restart"):
        experiment_start(experiment=exp)
    with pytest.raises(ValidationError, match="Only a running or paused"):
        experiment_stop(experiment=exp)


def test_assignment_is_sticky_through_the_service_and_respects_weights():
    exp = experiment_start(experiment=experiment_make(widgets=[widget_make()]))
    snap = ExperimentSnapshot.from_model(exp)
    first = {f"v{i}": variant_assign(experiment=snap, subject_id=f"v{i}").variant for i in range(2000)}
    again = {f"v{i}": variant_assign(experiment=exp, subject_id=f"v{i}").variant for i in range(0, 2000, 10)}
    assert again == {k: v for k, v in first.items() if k in again}  # from the model too, same answers
    share_b = sum(v == "B" for v in first.values()) / len(first)
    assert 0.45 < share_b < 0.55


def test_weight_change_keeps_most_assignments():
    exp = experiment_start(experiment=experiment_make(widgets=[widget_make()]))
    snap = ExperimentSnapshot.from_model(exp)
    before = {f"s{i}": variant_assign(experiment=snap, subject_id=f"s{i}").variant for i in range(3000)}
    experiment_weights_update(experiment=exp, weights={"A": 2, "B": 3})  # 50/50 -> 40/60
    exp.refresh_from_db()
    snap = ExperimentSnapshot.from_model(exp)
    after = {s: variant_assign(experiment=snap, subject_id=s).variant for s in before}
    moved = sum(before[s] != after[s] for s in before) / len(before)
    assert 0.05 < moved < 0.15  # ~10% move, all from A to B
    assert all(after[s] == "B" for s in before if before[s] == "B")
    with pytest.raises(ValidationError, match="Unknown variant"):
        experiment_weights_update(experiment=exp, weights={"Z": 1})
    with pytest.raises(ValidationError, match="whole number >= 1"):
        experiment_weights_update(experiment=exp, weights={"A": 0})


def test_traffic_share_and_holdout():
    exp = experiment_start(
        experiment=experiment_make(widgets=[widget_make()], traffic_share=0.5, holdout_share=0.2)
    )
    snap = ExperimentSnapshot.from_model(exp)
    out = [variant_assign(experiment=snap, subject_id=f"x{i}") for i in range(4000)]
    part = [a for a in out if a.participating]
    assert 0.45 < len(part) / len(out) < 0.55
    hold = [a for a in part if a.holdout]
    assert 0.15 < len(hold) / len(part) < 0.25
    assert all(a.variant is None and a.label == "holdout" for a in hold)
    with pytest.raises(ValueError):
        variant_assign(experiment=exp, subject_id="")


def test_exposures_are_logged_once_in_bulk():
    exp = experiment_start(experiment=experiment_make(widgets=[widget_make()]))
    assigns = [variant_assign(experiment=exp, subject_id=f"c{i}") for i in range(50)]
    exposures_log(assignments=assigns)
    exposures_log(assignments=assigns)  # re-exposure: ignored
    assert Exposure.objects.filter(experiment=exp).count() == 50
    by_variant = dict(Variant.objects.filter(experiment=exp).values_list("name", "pk"))
    for a in assigns:
        assert (
            Exposure.objects.get(experiment=exp, subject_id=a.subject_id).variant_id == by_variant[a.variant]
        )

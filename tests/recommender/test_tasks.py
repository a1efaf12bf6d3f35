"""Celery tasks: routing (torch engines -> `training` queue), enqueue on commit, nightly and
new-events retraining triggers, stale-run reaping, the beat schedule."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from recommender import tasks
from recommender.engines import TORCH_ENGINES
from recommender.models import TrainingRun, Widget
from recommender.training import training_run_create, training_run_task, training_runs_reap_stale
from recsite.celery import app
from tests.factories import EventFactory
from tests.recommender._training_fixtures import shop_create, tiny_engine  # noqa: F401

pytestmark = pytest.mark.django_db


def _queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name, (), {})["queue"].name


def test_torch_engines_route_to_the_training_queue():
    assert "sasrec" in TORCH_ENGINES
    assert training_run_task("sasrec") is tasks.training_run_execute_torch_task
    assert training_run_task("ease") is tasks.training_run_execute_task
    assert _queue(tasks.training_run_execute_torch_task.name) == "training"
    assert _queue(tasks.training_run_execute_task.name) == "default"


@pytest.mark.parametrize(("engine", "task_attr"), [("gru4rec", "torch"), ("pop", "default")])
def test_create_enqueues_the_right_task_on_commit(
    engine, task_attr, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        tasks.training_run_execute_torch_task, "delay", lambda rid: sent.append(("torch", rid))
    )
    monkeypatch.setattr(tasks.training_run_execute_task, "delay", lambda rid: sent.append(("default", rid)))
    monkeypatch.setattr("recommender.training.engine_params_validate", lambda *, engine, params: params or {})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = training_run_create(engine=engine)
    assert sent == []  # nothing is sent before the transaction commits
    for callback in callbacks:
        callback()
    assert sent == [(task_attr, run.pk)]


def test_task_executes_the_run_eagerly(tiny_engine, django_capture_on_commit_callbacks):
    shop_create()
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_create(engine=tiny_engine)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert tasks.training_run_execute_task.delay(run.pk).get() == "succeeded"  # idempotent re-delivery


def _widgets(*specs):
    Widget.objects.all().delete()
    for slug, strategy, engine, enabled in specs:
        Widget.objects.create(
            slug=slug,
            title=slug,
            placement="home",
            strategy=strategy,
            engine=engine,
            enabled=enabled,
            fallback_strategy="trending",
        )


def test_nightly_creates_runs_for_engines_enabled_widgets_need(monkeypatch):
    # given
    _widgets(
        ("a", "personalized", "", True), ("b", "similar_items", "", False), ("c", "bought_together", "", True)
    )
    created = []
    monkeypatch.setattr(
        "recommender.training.training_run_create",
        lambda **kw: (
            created.append(kw) or TrainingRun.objects.create(engine=kw["engine"], trigger=kw["trigger"])
        ),
    )
    # when
    ids = tasks.retrain_nightly_task()
    # then: personalized -> every candidate of the engine choice (ease, itemknn, hybrid), bought_together ->
    # itemknn, trending fallback -> pop; disabled skipped
    assert sorted(kw["engine"] for kw in created) == ["ease", "hybrid", "itemknn", "pop"]
    assert all(kw["trigger"] == TrainingRun.Trigger.SCHEDULE for kw in created)
    assert len(ids) == 4
    # a second nightly while those runs are queued adds nothing
    created.clear()
    assert tasks.retrain_nightly_task() == [] and created == []


def test_retrain_when_new_events_exceed_threshold(tiny_engine, settings, django_capture_on_commit_callbacks):
    # given: a widget served by the tiny engine, trained once
    _widgets(("a", "personalized", tiny_engine, True))
    settings.RECSITE_STRATEGY_ENGINES = {"trending": tiny_engine}
    settings.RECSITE_RETRAIN_EVENT_THRESHOLD = 5
    shop_create(n_customers=5)
    with django_capture_on_commit_callbacks(execute=True):
        first = training_run_create(engine=tiny_engine)
    first.refresh_from_db()
    assert first.status == TrainingRun.Status.SUCCEEDED
    # when: few new events -> nothing for the tiny engine
    for _ in range(5):
        EventFactory()
    with django_capture_on_commit_callbacks(execute=False):
        runs = tasks.retrain_if_events_task()
    # (pop, the always-trained fallback, has never been trained here, so every event counts for it)
    assert [TrainingRun.objects.get(pk=r).engine for r in runs] == ["pop"]
    TrainingRun.objects.filter(pk__in=runs).delete()
    # when: one more -> over the threshold
    EventFactory()
    with django_capture_on_commit_callbacks(execute=True):
        runs = tasks.retrain_if_events_task()
    new = TrainingRun.objects.filter(pk__in=runs, engine=tiny_engine).get()
    assert new.trigger == TrainingRun.Trigger.EVENTS and new.status == TrainingRun.Status.SUCCEEDED
    assert new.params == {"reverse": False, "fail": False}  # the active version's recipe


def test_stale_running_runs_are_marked_failed():
    stale = TrainingRun.objects.create(
        engine="pop", status=TrainingRun.Status.RUNNING, started_at=timezone.now() - timedelta(days=1)
    )
    fresh = TrainingRun.objects.create(
        engine="pop", status=TrainingRun.Status.RUNNING, started_at=timezone.now()
    )
    never_started = TrainingRun.objects.create(engine="ease")
    TrainingRun.objects.filter(pk=never_started.pk).update(created_at=timezone.now() - timedelta(days=1))
    just_queued = TrainingRun.objects.create(engine="ease")
    assert training_runs_reap_stale(older_than=timedelta(hours=6)) == 2
    for run in (stale, fresh, never_started, just_queued):
        run.refresh_from_db()
    assert stale.status == TrainingRun.Status.FAILED and "Interrupted" in stale.error
    assert never_started.status == TrainingRun.Status.FAILED and "Never started" in never_started.error
    assert fresh.status == TrainingRun.Status.RUNNING and just_queued.status == TrainingRun.Status.QUEUED


def test_beat_schedules():
    from django.conf import settings

    nightly = PeriodicTask.objects.get(task="recommender.tasks.retrain_nightly_task")
    assert nightly.enabled and nightly.crontab.hour == "3"
    entry = settings.CELERY_BEAT_SCHEDULE["recommender-retrain-if-events"]
    assert entry["task"] == tasks.retrain_if_events_task.name

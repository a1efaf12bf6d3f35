"""Training runs: a run creates an evaluated version, auto-promotion within tolerance, failures leave
serving intact, idempotency, progress."""

import pytest
from django.core.exceptions import ValidationError

from recommender.models import ModelVersion, TrainingRun
from recommender.services import model_version_active, model_version_load
from recommender.training import (
    NO_EVENTS_MESSAGE,
    engine_params_validate,
    promotion_decide,
    training_run_create,
    training_run_execute,
)
from tests.recommender._training_fixtures import shop_create, tiny_engine  # noqa: F401

pytestmark = pytest.mark.django_db


def _train(engine: str, **params) -> TrainingRun:
    run = training_run_create(engine=engine, params=params, enqueue=False)
    return training_run_execute(run_id=run.pk)


def test_run_succeeds_creates_evaluated_version_and_promotes_first(tiny_engine, settings):
    # given
    settings.RECSITE_EVAL_TEST_FRACTION = 0.2
    shop_create()
    seen = []
    run = training_run_create(engine=tiny_engine, enqueue=False)
    # when
    run = training_run_execute(run_id=run.pk, progress=lambda p, m: seen.append(p))
    # then
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.progress == 100 and seen[-1] == 100 and seen == sorted(seen)
    version = run.model_version
    assert version.status == ModelVersion.Status.ACTIVE
    assert model_version_active(engine=tiny_engine) == version
    assert 0 < version.metrics["ndcg@10"] <= 1 and 0 < version.metrics["hr@10"] <= 1
    assert version.metrics["users"] > 0
    assert run.device == "cpu"
    assert {"data", "split", "fit", "evaluate", "refit", "save", "total"} <= set(run.timings)
    assert run.data_snapshot["events"] > 0 and run.data_snapshot["evaluation"]["test_users"] > 0
    loaded = model_version_load(version=version)
    assert len(loaded.product_ids) == 12


def test_worse_version_stays_candidate_and_active_is_kept(tiny_engine, settings):
    # given: an active, good version
    settings.RECSITE_EVAL_TEST_FRACTION = 0.2
    shop_create()
    good = _train(tiny_engine).model_version
    assert good.status == ModelVersion.Status.ACTIVE
    # when: a run whose model recommends the least popular items
    run = _train(tiny_engine, reverse=True)
    # then
    assert run.status == TrainingRun.Status.SUCCEEDED
    bad = run.model_version
    assert bad.status == ModelVersion.Status.CANDIDATE
    assert model_version_active(engine=tiny_engine) == good
    baseline = run.data_snapshot["evaluation"]["baseline"]
    assert baseline["version"] == good.pk and baseline["method"] == "refit"
    assert bad.metrics["ndcg@10"] < baseline["ndcg@10"]
    assert "kept as candidate" in run.progress_message


def test_same_recipe_retrain_is_promoted(tiny_engine, settings):
    settings.RECSITE_EVAL_TEST_FRACTION = 0.2
    shop_create()
    first = _train(tiny_engine).model_version
    run = _train(tiny_engine)
    first.refresh_from_db()
    assert run.model_version.status == ModelVersion.Status.ACTIVE
    assert first.status == ModelVersion.Status.RETIRED
    assert run.data_snapshot["evaluation"]["baseline"]["method"] == "same_recipe"


def test_active_artifact_trained_before_the_cut_is_scored_as_is(tiny_engine, settings):
    # given: the active version only saw events before the new run's cut (its snapshot says so)
    settings.RECSITE_EVAL_TEST_FRACTION = 0.2
    shop_create()
    old = _train(tiny_engine).model_version
    ModelVersion.objects.filter(pk=old.pk).update(
        data_snapshot={**old.data_snapshot, "last_event_at": "2000-01-01T00:00:00+00:00"}
    )
    # when
    run = _train(tiny_engine, reverse=True)
    # then: same model family scored from the stored artifact on the same users
    baseline = run.data_snapshot["evaluation"]["baseline"]
    assert baseline["method"] == "artifact"
    assert baseline["users"] == run.model_version.metrics["users"]
    assert baseline["ndcg@10"] > run.model_version.metrics["ndcg@10"]


@pytest.mark.parametrize(
    ("new", "old", "tolerance", "promote"),
    [(0.099, 0.1, 0.02, True), (0.097, 0.1, 0.02, False), (0.2, 0.1, 0.0, True), (0.0999, 0.1, 0.0, False)],
)
def test_promotion_tolerance(new, old, tolerance, promote):
    decided, reason = promotion_decide(
        metrics={"ndcg@10": new},
        baseline={"ndcg@10": old, "version": 1},
        has_active=True,
        tolerance=tolerance,
        metric="ndcg@10",
    )
    assert decided is promote
    assert ("promoted" if promote else "kept as candidate") in reason


def test_promotion_without_comparison():
    assert promotion_decide(metrics={}, baseline=None, has_active=False)[0] is True
    assert promotion_decide(metrics={}, baseline=None, has_active=True)[0] is False
    assert (
        promotion_decide(metrics={"ndcg@10": 1}, baseline=None, has_active=False, auto_promote=False)[0]
        is False
    )


def test_no_promote_flag_keeps_candidate(tiny_engine):
    shop_create()
    run = training_run_create(engine=tiny_engine, auto_promote=False, enqueue=False)
    run = training_run_execute(run_id=run.pk)
    assert run.model_version.status == ModelVersion.Status.CANDIDATE
    assert model_version_active(engine=tiny_engine) is None


def test_failing_engine_marks_run_failed_and_serving_intact(tiny_engine):
    # given
    shop_create()
    good = _train(tiny_engine).model_version
    versions = ModelVersion.objects.count()
    # when
    run = _train(tiny_engine, fail=True)
    # then
    assert run.status == TrainingRun.Status.FAILED
    assert "boom" in run.error and run.finished_at is not None
    assert run.model_version is None
    assert ModelVersion.objects.count() == versions
    assert model_version_active(engine=tiny_engine) == good
    assert model_version_load(version=good).engine is not None


def test_failure_while_saving_removes_stored_files(tiny_engine, monkeypatch):
    shop_create()
    from recommender import training

    def broken_save(self):
        raise OSError("disk full")

    from django.core.files.storage import default_storage

    def files():
        return set(default_storage.listdir("models")[1]) if default_storage.exists("models") else set()

    before = files()
    monkeypatch.setattr(ModelVersion, "save", broken_save)
    run = training_run_create(engine=tiny_engine, enqueue=False)
    run = training_run_execute(run_id=run.pk)
    assert run.status == TrainingRun.Status.FAILED and "disk full" in run.error
    assert files() == before
    assert training.model_version_active(engine=tiny_engine) is None


def test_interrupted_run_is_marked_failed_and_reraised(tiny_engine, monkeypatch):
    shop_create()
    from tests.recommender._training_fixtures import TinyPop

    def interrupt(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(TinyPop, "fit", interrupt)
    run = training_run_create(engine=tiny_engine, enqueue=False)
    with pytest.raises(KeyboardInterrupt):
        training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and run.error.startswith("Interrupted")


def test_no_events_fails_with_actionable_message(tiny_engine):
    run = _train(tiny_engine)
    assert run.status == TrainingRun.Status.FAILED
    assert run.error == NO_EVENTS_MESSAGE


def test_execute_is_idempotent(tiny_engine):
    shop_create()
    run = _train(tiny_engine)
    finished_at, versions = run.finished_at, ModelVersion.objects.count()
    again = training_run_execute(run_id=run.pk)
    assert again.status == TrainingRun.Status.SUCCEEDED and again.finished_at == finished_at
    assert ModelVersion.objects.count() == versions
    assert training_run_execute(run_id=999_999) is None


def test_running_run_is_not_executed_twice(tiny_engine):
    shop_create()
    run = training_run_create(engine=tiny_engine, enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING)
    assert training_run_execute(run_id=run.pk).status == TrainingRun.Status.RUNNING
    assert ModelVersion.objects.count() == 0


def test_too_few_events_to_evaluate_still_trains_first_version(tiny_engine):
    from tests.factories import EventFactory

    EventFactory()
    run = _train(tiny_engine)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.model_version.status == ModelVersion.Status.ACTIVE
    assert run.model_version.metrics == {}
    assert "skipped" in run.data_snapshot["evaluation"]


def test_create_validates_engine_and_params(tiny_engine):
    with pytest.raises(ValidationError, match="Unknown engine 'nope'"):
        training_run_create(engine="nope", enqueue=False)
    with pytest.raises(ValidationError, match="Unknown parameter.*colour"):
        training_run_create(engine=tiny_engine, params={"colour": 1}, enqueue=False)
    with pytest.raises(ValidationError, match="JSON object"):
        engine_params_validate(engine=tiny_engine, params=[1, 2])
    assert TrainingRun.objects.count() == 0


def test_real_pop_engine_through_the_pipeline(settings):
    # the shipped popularity engine, end to end: evaluated, stored, loadable, serving real products
    settings.RECSITE_EVAL_TEST_FRACTION = 0.2
    shop = shop_create()
    run = _train("pop")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    version = run.model_version
    assert version.status == ModelVersion.Status.ACTIVE and version.metrics["hr@10"] > 0
    loaded = model_version_load(version=version)
    ids, _ = loaded.engine.recommend([[]], 3)
    assert {int(loaded.product_ids[i]) for i in ids[0] if i >= 0} <= {p.pk for p in shop["products"]}


def test_admin_started_run_uses_a_thread_when_celery_is_eager(tiny_engine, settings, monkeypatch):
    from recommender import training

    settings.RECSITE_TRAINING_IN_THREAD = True
    started = []

    class FakeThread:
        def __init__(self, target, args, name, daemon):
            started.append((name, daemon))
            self.target, self.args = target, args

        def start(self):
            self.target(*self.args)

    monkeypatch.setattr(training.threading, "Thread", FakeThread)
    monkeypatch.setattr(training.connection, "close", lambda: None)  # the test's connection stays open
    shop_create()
    training._enqueue(training_run_create(engine=tiny_engine, enqueue=False).pk, tiny_engine)
    run = TrainingRun.objects.get()
    assert started == [(f"training-run-{run.pk}", True)]
    assert TrainingRun.objects.get().status == TrainingRun.Status.SUCCEEDED


def test_device_comes_from_the_engine_fit_info(tiny_engine, monkeypatch):
    # a torch engine trained on a GPU reports it in fit_info (no GPU here: simulated)
    from tests.recommender._training_fixtures import TinyPop

    original_fit = TinyPop.fit

    def fit_on_gpu(self, data):
        original_fit(self, data)
        self.fit_info = {"device": "cuda:0"}
        return self

    monkeypatch.setattr(TinyPop, "fit", fit_on_gpu)
    shop_create()
    assert _train(tiny_engine).device == "cuda"


@pytest.mark.realservices
def test_pipeline_on_postgres_and_redis(tiny_engine, settings, django_capture_on_commit_callbacks):
    # the whole path on the production services: events read with SQL epochs, select_for_update
    # promotion, the registry generation counter in Redis
    from recommender.services import registry_generation

    settings.RECSITE_EVAL_TEST_FRACTION = 0.2
    shop_create()
    before = registry_generation()
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_create(engine=tiny_engine)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.model_version.status == ModelVersion.Status.ACTIVE and run.model_version.metrics["users"] > 0
    assert registry_generation() == before + 1
    worse = _train(tiny_engine, reverse=True)
    assert worse.model_version.status == ModelVersion.Status.CANDIDATE

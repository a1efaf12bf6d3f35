"""`manage.py train`: progress bar, engines, --all, --no-promote, bad input, no data."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from recommender.models import ModelVersion, TrainingRun, Widget
from tests.recommender._training_fixtures import shop_create, tiny_engine  # noqa: F401

pytestmark = pytest.mark.django_db


def _call(*args):
    out, err = StringIO(), StringIO()
    call_command("train", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_train_one_engine_shows_progress_and_promotes(tiny_engine):
    shop_create()
    out, err = _call("--engine", tiny_engine)
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.SUCCEEDED and run.trigger == TrainingRun.Trigger.COMMAND
    assert run.model_version.status == ModelVersion.Status.ACTIVE
    assert "100%" in err and tiny_engine in err  # the tqdm bar reached the end
    assert f"v{run.model_version.pk} active" in out and "ndcg@10" in out


def test_no_promote_and_params(tiny_engine):
    shop_create()
    _call("--engine", tiny_engine, "--no-promote", "--params", '{"reverse": true}')
    version = ModelVersion.objects.get()
    assert version.status == ModelVersion.Status.CANDIDATE and version.params["reverse"] is True


def test_all_trains_what_enabled_widgets_need(tiny_engine, settings):
    shop_create()
    settings.RECSITE_STRATEGY_ENGINES = {"trending": tiny_engine}
    Widget.objects.all().delete()
    Widget.objects.create(
        slug="t", title="T", placement="home", strategy="trending", fallback_strategy="trending"
    )
    _call("--all", "--no-progress")
    assert sorted(TrainingRun.objects.values_list("engine", flat=True)) == ["pop", tiny_engine]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--engine", "nope"), "Unknown engine(s): nope"),
        ((), "--all"),
        (("--engine", "pop,ease", "--params", "{}"), "exactly one"),
        (("--engine", "pop", "--params", "{bad"), "not valid JSON"),
        (("--engine", "pop", "--params", "[1]"), "JSON object"),
    ],
)
def test_bad_arguments(args, message):
    with pytest.raises(CommandError) as exc:
        _call(*args)
    assert message in str(exc.value)
    assert TrainingRun.objects.count() == 0


def test_unknown_params_are_reported(tiny_engine):
    shop_create()
    with pytest.raises(CommandError, match="Unknown parameter"):
        _call("--engine", tiny_engine, "--params", '{"colour": 1}')


def test_no_events_says_run_seed_demo(tiny_engine):
    with pytest.raises(CommandError, match="seed_demo"):
        _call("--engine", tiny_engine)
    assert TrainingRun.objects.count() == 0


def test_failed_run_exits_with_error(tiny_engine):
    shop_create()
    with pytest.raises(CommandError, match=r"Training failed for: tinypop \(run #\d+"):
        _call("--engine", tiny_engine, "--params", '{"fail": true}')
    assert TrainingRun.objects.get().status == TrainingRun.Status.FAILED

"""Engine choice: the personalized strategy is served by the engine that wins the shop's own held-out
evaluation; a merchandiser can override it; `train --all` trains every candidate, the hybrid included."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from recommender import engines
from recommender.models import EngineChoice, ModelVersion, TrainingRun, Widget
from recommender.strategies import engines_needed, strategy_engine
from recommender.training import (
    engine_choice_decide,
    engine_choice_override,
    training_input_load,
    training_run_execute,
)
from tests.factories import UserFactory
from tests.recommender._training_fixtures import TinyPop, shop_create

pytestmark = pytest.mark.django_db


class TinyReverse(TinyPop):
    """Recommends the least popular items: a worse engine on the same data."""

    name = "tinyrev"

    def __init__(self, reverse: bool = True, fail: bool = False) -> None:
        super().__init__(reverse=reverse, fail=fail)


@pytest.fixture
def two_engines(monkeypatch, settings):
    monkeypatch.setitem(engines.REGISTRY, "tinypop", "tests.recommender._training_fixtures:TinyPop")
    monkeypatch.setitem(engines.REGISTRY, "tinyrev", "tests.recommender.test_engine_choice:TinyReverse")
    settings.RECSITE_ENGINE_CHOICE_CANDIDATES = {"personalized": ["tinyrev", "tinypop"]}
    settings.RECSITE_STRATEGY_ENGINES = {}
    return settings


def _train(engine: str, data=None) -> TrainingRun:
    run = TrainingRun.objects.create(engine=engine)
    run = training_run_execute(run_id=run.pk, data=data)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    return run


def test_the_engine_that_wins_the_held_out_evaluation_serves_personalized(two_engines):
    # given a shop where popularity predicts the future and its reverse does not
    shop_create(n_customers=40, n_products=12)
    assert strategy_engine("personalized") == "ease"  # nothing decided yet: the default
    data = training_input_load()
    # when both candidates are trained on the same events (each run re-decides)
    _train("tinyrev", data)
    _train("tinypop", data)
    # then
    choice = EngineChoice.objects.get(strategy="personalized")
    assert choice.engine == "tinypop" and choice.effective_engine == "tinypop"
    assert strategy_engine("personalized") == "tinypop"
    good, bad = choice.figures["tinypop"], choice.figures["tinyrev"]
    assert good["ndcg@10"] > bad["ndcg@10"]
    assert good["cut"] == bad["cut"] and "status" not in good and "status" not in bad
    assert good["version"] == ModelVersion.objects.get(engine="tinypop", status="active").pk
    assert choice.decision.startswith("tinypop wins on NDCG@10") and "tinyrev" in choice.decision
    # a widget's own engine still wins over the shop's choice
    assert strategy_engine("personalized", override="tinyrev") == "tinyrev"


def test_engines_evaluated_on_another_period_are_not_compared(two_engines):
    shop_create(n_customers=30, n_products=10)
    _train("tinypop")
    ModelVersion.objects.filter(engine="tinypop").update(
        data_snapshot={"evaluation": {"cut": "2020-01-01T00:00:00+00:00", "test_users": 3}}
    )
    _train("tinyrev")  # evaluated on today's split: the only engine of the newest, largest group...
    choice = EngineChoice.objects.get(strategy="personalized")
    # ...groups tie on size (one engine each): the newest cut wins, the old figure is not compared
    assert choice.engine == "tinyrev"
    assert "another period" in choice.figures["tinypop"]["status"]


def test_a_merchandiser_override_wins_until_cleared(two_engines):
    shop_create(n_customers=30, n_products=10)
    data = training_input_load()
    _train("tinypop", data)
    _train("tinyrev", data)
    assert strategy_engine("personalized") == "tinypop"
    # when
    engine_choice_override(strategy="personalized", engine="tinyrev", user="merch")
    # then: the override serves, and a new evaluation does not undo it
    assert strategy_engine("personalized") == "tinyrev"
    engine_choice_decide(strategy="personalized")
    choice = EngineChoice.objects.get(strategy="personalized")
    assert (choice.engine, choice.override, choice.override_by) == ("tinypop", "tinyrev", "merch")
    assert strategy_engine("personalized") == "tinyrev"
    # clearing follows the evaluation again
    engine_choice_override(strategy="personalized", engine="", user="merch")
    assert strategy_engine("personalized") == "tinypop"


def test_overrides_are_validated(two_engines):
    with pytest.raises(ValidationError, match="Unknown engine 'nope'"):
        engine_choice_override(strategy="personalized", engine="nope")
    with pytest.raises(ValidationError, match="no active model version"):
        engine_choice_override(strategy="personalized", engine="tinypop")
    with pytest.raises(ValidationError, match="has no engine choice"):
        engine_choice_override(strategy="trending", engine="pop")


def test_no_evaluation_means_the_default_serves(two_engines):
    choice = engine_choice_decide(strategy="personalized")
    assert choice.engine == "" and "default engine" in choice.decision
    assert strategy_engine("personalized") == "ease"
    assert choice.figures["tinypop"]["status"].startswith("not trained")


def test_settings_pin_beats_the_choice_and_is_not_expanded_to_candidates(two_engines):
    two_engines.RECSITE_STRATEGY_ENGINES = {"personalized": "ease"}
    widget = Widget(slug="p", strategy="personalized", fallback_strategy="trending")
    assert engines_needed([widget]) == ["ease", "pop"]
    two_engines.RECSITE_STRATEGY_ENGINES = {}
    assert engines_needed([widget]) == ["ease", "pop", "tinyrev", "tinypop"]


def test_train_all_trains_the_hybrid_and_reports_the_choice(settings):
    # given the default candidates (ease, itemknn, hybrid) and one personalized widget
    settings.RECSITE_STRATEGY_ENGINES = {}
    settings.RECSITE_ENGINE_CHOICE_CANDIDATES = {}
    shop_create(n_customers=40, n_products=12)
    Widget.objects.create(slug="home", title="For you", placement="home", strategy="personalized")
    out = io.StringIO()
    # when
    call_command("train", "--all", "--no-progress", stdout=out)
    # then
    runs = {r.engine: r for r in TrainingRun.objects.all()}
    assert set(runs) == {"ease", "itemknn", "hybrid", "pop"}
    assert all(r.status == TrainingRun.Status.SUCCEEDED for r in runs.values())
    hybrid = ModelVersion.objects.get(engine="hybrid", status="active")
    assert hybrid.params["n_candidates"] == 50  # the shop recipe (training.SHOP_ENGINE_PARAMS)
    # served by the ranker that was evaluated, its base engines refitted on every event
    from recommender.services import model_version_load

    loaded = model_version_load(version=hybrid)
    assert loaded.engine.fit_info_["serving_refit_on"]["users"] == len(loaded.user_keys)
    # one read of the events for all runs: every run saw the same high-water mark and held-out cut
    assert len({r.data_snapshot["events_high_water"] for r in runs.values()}) == 1
    assert len({r.data_snapshot["evaluation"]["cut"] for r in runs.values()}) == 1
    choice = EngineChoice.objects.get(strategy="personalized")
    assert set(choice.figures) == {"ease", "itemknn", "hybrid"}
    assert choice.engine in {"ease", "itemknn", "hybrid"}
    assert choice.engine == max(
        choice.figures, key=lambda n: (choice.figures[n]["ndcg@10"], -["ease", "itemknn", "hybrid"].index(n))
    )
    assert f"personalized engine: {choice.engine}" in out.getvalue()
    assert strategy_engine("personalized") == choice.engine


def test_admin_shows_the_figures_and_lets_a_merchandiser_override(client, two_engines):
    shop_create(n_customers=30, n_products=10)
    data = training_input_load()
    _train("tinypop", data)
    _train("tinyrev", data)
    choice = EngineChoice.objects.get(strategy="personalized")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/recommender/enginechoice/{choice.pk}/change/"
    page = client.get(url).content.decode()
    assert "tinypop wins on NDCG@10" in page and "rs-figures" in page and "Automatic" in page
    # a bad choice is refused with a message, nothing changes
    r = client.post(url, {"override": "nope"})
    assert r.status_code == 200 and "Select a valid choice" in r.content.decode()
    assert EngineChoice.objects.get(pk=choice.pk).override == ""
    # a good one is saved through the service
    r = client.post(url, {"override": "tinyrev"})
    assert r.status_code == 302
    assert strategy_engine("personalized") == "tinyrev"
    assert EngineChoice.objects.get(pk=choice.pk).override_by
    # the action clears it
    r = client.post(
        "/admin/recommender/enginechoice/",
        {"action": "follow_evaluation", "_selected_action": [choice.pk]},
    )
    assert r.status_code == 302 and strategy_engine("personalized") == "tinypop"
    assert "Follow the held-out evaluation" in client.get("/admin/recommender/enginechoice/").content.decode()
    # the model registry says which active version the choice serves
    versions = client.get("/admin/recommender/modelversion/").content.decode()
    assert "personalized (evaluation winner)" in versions

"""`manage.py simulate`: bad inputs, and small end-to-end runs in the throw-away database."""

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from experiments.simulation import ArmSpec, Scenario, scenario_get, simulation_run
from experiments.simulator.catalog import catalog_generate


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "no-such-slug"], "Unknown experiment 'no-such-slug'"),
        (["--scenario", "bogus"], "Unknown scenario 'bogus'; known scenarios: aa, paper-2025"),
        ([], "Give --scenario NAME"),
        (["--scenario", "aa", "--customers", "0"], "--customers must be between 10 and 1,000,000; got 0"),
        (["--scenario", "aa", "--steps", "-5"], "--steps must be between"),
        (["--scenario", "aa", "--runs", "0"], "--runs must be between"),
        (["--scenario", "aa", "--epsilon", "0.7"], "--epsilon must be in [0, 0.5)"),
        (["--scenario", "aa", "--out", "/no/such/dir/report.json"], "does not exist"),
    ],
)
def test_bad_inputs_are_clear_errors(args, message):
    with pytest.raises(CommandError) as err:
        call_command("simulate", *args, "--no-progress")
    assert message in str(err.value)


@pytest.mark.django_db
def test_experiment_that_cannot_run_is_refused():
    from experiments.models import Experiment

    Experiment.objects.create(slug="draft", name="Draft")  # no variants, no widgets
    with pytest.raises(CommandError, match="cannot run: An experiment needs at least two variants"):
        call_command("simulate", "--experiment", "draft", "--no-progress")


def test_scenarios_are_defined_as_the_study_describes():
    paper = scenario_get("paper-2025", epsilon=0.1)
    assert paper.control == "traditional" and paper.treatment == "ai-driven"
    assert sorted(paper.sensitivity.values()) == [0.1, 0.2, 0.3]
    ai = next(a for a in paper.arms if a.name == "ai-driven")
    assert (
        ai.strategy == "epsilon_greedy"
        and ai.params["epsilon"] == 0.1
        and ai.params["base"] == "personalized"
    )
    aa = scenario_get("aa")
    assert [a.strategy for a in aa.arms] == ["", ""]  # both the widget's traditional strategy


def test_simulate_aa_end_to_end_in_a_throwaway_database(tmp_path, django_db_blocker, capsys):
    out = tmp_path / "aa.json"
    with django_db_blocker.unblock():
        call_command(
            "simulate",
            "--scenario",
            "aa",
            "--customers",
            "150",
            "--products",
            "40",
            "--steps",
            "36",
            "--history-days",
            "3",
            "--runs",
            "2",
            "--seed",
            "3",
            "--out",
            str(out),
            "--no-progress",
        )
    text = capsys.readouterr().out
    assert "Throw-away database:" in text and "Table 1" in text and "Table 2" in text and "Table 4" in text
    report = json.loads(out.read_text())
    assert set(report["arms"]) == {"A", "B"}
    for metric in ("ctr", "conversion_rate", "aov", "session_duration"):
        assert set(report["arms"]["A"][metric]) >= {"mean", "sd"}
        assert set(report["tests"][metric]) >= {"t", "df", "p"}
    assert len(report["runs"]) == 2 and report["runs"][0]["seed"] == 3 and report["runs"][1]["seed"] == 4
    for run in report["runs"]:
        db = run["db_analysis"]
        assert db["rejected_events"] == 0
        # the storefront's analytics (impressions + click events in the database) agree with the visits
        for arm in ("A", "B"):
            assert db["variants"][arm]["ctr"] == pytest.approx(run["arms"][arm]["ctr"])
    # the demo shop's own database was not touched
    with django_db_blocker.unblock():
        from experiments.models import Experiment

        assert not Experiment.objects.filter(slug="sim-aa").exists()


def test_planted_better_variant_wins_end_to_end(django_db_blocker):
    # given a control that shows one unappealing product and a treatment with the eight most appealing
    cat = catalog_generate(n_products=60, seed=5, window_days=3)
    order = np.argsort(cat.appeal)

    def pins(idx):
        return (
            {
                "kind": "pin_skus",
                "params": {"pins": [{"sku": cat.skus[i], "position": p + 1} for p, i in enumerate(idx)]},
            },
        )

    scenario = Scenario(
        name="planted",
        description="planted",
        control="A",
        treatment="B",
        primary_metric="ctr",
        arms=(
            ArmSpec("A", True, 1, params={"num_items": 1}, rules=pins(order[:1])),
            ArmSpec("B", False, 1, rules=pins(order[-8:])),
        ),
    )
    # when shoppers visit through the real serving path
    with django_db_blocker.unblock():
        report = simulation_run(
            scenario=scenario, customers=400, products=60, steps=120, runs=1, seed=5, history_days=3
        )
    # then B's click-through rate is higher, significantly
    assert report["arms"]["B"]["ctr"]["mean"] > report["arms"]["A"]["ctr"]["mean"]
    assert report["tests"]["ctr"]["t"] > 0 and report["tests"]["ctr"]["p"] < 0.05
    db = report["runs"][0]["db_analysis"]["variants"]
    assert db["B"]["ctr"] == pytest.approx(report["arms"]["B"]["ctr"]["mean"])


@pytest.mark.django_db
def test_simulate_an_existing_experiment_by_slug(tmp_path):
    # given an experiment configured in the shop's admin (this database)
    from experiments.models import Experiment, Variant
    from recommender.models import Widget

    w = Widget.objects.create(slug="home-x", title="Home", placement="home", strategy="popular")
    exp = Experiment.objects.create(slug="bigger-list", name="Bigger list", primary_metric="ctr")
    exp.widgets.set([w])
    Variant.objects.create(experiment=exp, name="control", is_control=True, params={"num_items": 2})
    Variant.objects.create(experiment=exp, name="eight", params={"num_items": 8})
    out = tmp_path / "r.json"
    # when it is simulated (in a throw-away copy)
    call_command(
        "simulate",
        "--experiment",
        "bigger-list",
        "--customers",
        "120",
        "--products",
        "40",
        "--steps",
        "24",
        "--history-days",
        "2",
        "--out",
        str(out),
        "--no-progress",
    )
    # then the report names its variants and the shop's experiment is untouched
    report = json.loads(out.read_text())
    assert report["control"] == "control" and report["treatment"] == "eight"
    assert set(report["arms"]) == {"control", "eight"}
    exp.refresh_from_db()
    assert exp.status == "draft" and not exp.exposures.exists()


def test_simulate_paper_2025_end_to_end_small(tmp_path, django_db_blocker, capsys):
    out = tmp_path / "paper.json"
    with django_db_blocker.unblock():
        call_command(
            "simulate",
            "--scenario",
            "paper-2025",
            "--customers",
            "150",
            "--products",
            "40",
            "--steps",
            "36",
            "--history-days",
            "3",
            "--seed",
            "9",
            "--out",
            str(out),
            "--no-progress",
        )
    text = capsys.readouterr().out
    assert "Table 3 - sensitivity to the exploration rate" in text
    report = json.loads(out.read_text())
    assert set(report["arms"]) == {"traditional", "ai-driven", "ai-eps-0.2", "ai-eps-0.3"}
    assert list(report["sensitivity"]) == ["0.1", "0.2", "0.3"]
    assert report["runs"][0]["db_analysis"]["rejected_events"] == 0
    # each bandit arm's logs give an off-policy estimate for the other two exploration rates
    assert {(o["logged_epsilon"], o["candidate_epsilon"]) for o in report["ope"]} == {
        (0.1, 0.2),
        (0.1, 0.3),
        (0.2, 0.1),
        (0.2, 0.3),
        (0.3, 0.1),
        (0.3, 0.2),
    }
    assert all(o["n"] > 0 for o in report["ope"])

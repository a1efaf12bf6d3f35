"""trace_explain: a stored decision trace explained from the model versions it names, on a small trained shop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.explanations import trace_explain
from recommender.models import ModelVersion, TrainingRun
from recommender.services import model_version_load
from recommender.serving.trace import DecisionTrace, ItemTrace, RuleEffect, SourceScore
from recommender.training import training_run_execute
from tests.factories import CustomerFactory
from tests.recommender._training_fixtures import shop_create

pytestmark = pytest.mark.django_db


def _train(engine: str, **params) -> ModelVersion:
    run = TrainingRun.objects.create(engine=engine, params=params)
    run = training_run_execute(run_id=run.pk)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    return run.model_version


def _additive(item: dict) -> bool:
    total = item["base_value"] + sum(c["value"] for c in item["contributions"])
    return abs(total - item["score"]) <= 1e-6 * max(1.0, abs(item["score"]))


def _served_trace(version: ModelVersion, customer, *, k: int = 4) -> DecisionTrace:
    """What serving records: the history (product ids, oldest first) and the engine's own top-k scores."""
    from catalog.models import Event

    rows = list(
        Event.objects.filter(customer=customer).order_by("timestamp", "id").values_list("product_id", "type")
    )
    history = [p for p, _ in rows]
    loaded = model_version_load(version=version)
    hist_idx = np.asarray([loaded.product_index[p] for p in history], dtype=np.int64)
    user = loaded.user_index.get(f"c:{customer.pk}")
    ids, scores = loaded.engine.recommend(
        [hist_idx], k + 1, users=None if user is None else np.asarray([user])
    )
    pids = [int(loaded.product_ids[i]) for i in ids[0] if i >= 0]
    sc = [float(s) for s in scores[0][: len(pids)]]
    items = tuple(
        ItemTrace(
            product_id=p,
            score=s,
            engine=version.engine,
            sources=(SourceScore(version.engine, s, r, version.pk),),
            slot=r - 1,
            reason="Recommended for you",
        )
        for r, (p, s) in enumerate(zip(pids[:k], sc[:k], strict=True), start=1)
    )
    removed = (
        ItemTrace(
            product_id=pids[k],
            score=sc[k],
            engine=version.engine,
            sources=(SourceScore(version.engine, sc[k], k + 1, version.pk),),
            rules=(RuleEffect("exclude_brands", "Exclude brands", "filtered", k, None),),
            removed_by="Exclude brands",
        ),
    )
    return DecisionTrace(
        request_id="7b0c1d6e-0000-4000-8000-000000000001",
        widget="home-for-you",
        strategy="personalized",
        k=k,
        items=items,
        removed=removed,
        customer_id=customer.pk,
        history=tuple(history),
        history_events=tuple(t for _, t in rows),
        model_versions=((version.engine, version.pk),),
    )


@pytest.mark.parametrize(("engine", "params"), [("ease", {}), ("itemknn", {}), ("als", {"factors": 8})])
def test_every_item_of_a_served_list_is_explained_additively_by_its_history(engine, params):
    # given a small shop, a trained model and a list it served to one customer
    shop = shop_create(n_customers=30, n_products=10)
    version = _train(engine, **params)
    customer = shop["customers"][0]
    trace = _served_trace(version, customer)
    # when
    out = trace_explain(trace=trace).as_json()
    # then: the JSON has the agreed shape and every item adds up to its engine score
    json.dumps(out)
    assert out["widget"] == "home-for-you"
    assert out["model_versions"] == [{"engine": engine, "version": version.pk}]
    assert len(out["items"]) == 4 and len(out["removed"]) == 1
    served = {i.product_id: i.score for i in trace.items + trace.removed}
    history = set(trace.history)
    for item in out["items"] + out["removed"]:
        assert {
            "product_id",
            "sku",
            "position",
            "score",
            "base_value",
            "contributions",
            "sources",
            "rules",
        } <= set(item)
        assert item["method"] == "exact-linear" and item["additive"] is True
        assert item["score"] == pytest.approx(served[item["product_id"]], rel=1e-5, abs=1e-6)
        assert _additive(item)
        history_terms = [c for c in item["contributions"] if c["product_id"] is not None]
        assert {c["product_id"] for c in history_terms} == history
        assert all(c["event"] in ("view", "purchase") for c in history_terms)
        assert item["sku"] and item["summary"]
    assert out["items"][0]["position"] == 0 and out["removed"][0]["position"] is None
    assert out["removed"][0]["removed_by"] == "Exclude brands"
    assert out["removed"][0]["rules"][0]["effect"] == "filtered"
    # history items are named by title and event ("viewed <title>" / "bought <title>")
    titles = {p.pk: p.title for p in shop["products"]}
    term = next(c for c in out["items"][0]["contributions"] if c["product_id"] is not None)
    assert term["name"] in (f"viewed {titles[term['product_id']]}", f"bought {titles[term['product_id']]}")
    assert not out["warnings"]


def test_hybrid_items_carry_tree_shap_over_ranker_features():
    shop = shop_create(n_customers=40, n_products=12)
    version = _train("hybrid", lgbm_params={"n_estimators": 20, "min_child_samples": 2}, n_candidates=10)
    trace = _served_trace(version, shop["customers"][1], k=3)
    out = trace_explain(trace=trace).as_json()
    for item in out["items"]:
        assert item["method"] == "tree-shap" and item["score_kind"] == "ranker raw score"
        assert _additive(item)
        assert all(c["product_id"] is None for c in item["contributions"])  # features, not history items
        assert item["summary"]


def test_list_items_and_a_missing_model_version_are_reported_not_raised():
    shop = shop_create(n_customers=10, n_products=6)
    version = _train("ease")
    p0, p1 = shop["products"][:2]
    trace = DecisionTrace(
        request_id="r-2",
        widget="home",
        strategy="personalized",
        k=2,
        items=(
            ItemTrace(
                product_id=p0.pk,
                score=0.3,
                engine="ease",
                sources=(SourceScore("ease", 0.3, 1, 99999),),
                slot=0,
            ),
            ItemTrace(
                product_id=p1.pk,
                score=12.0,
                engine="trending",
                sources=(SourceScore("trending", 12.0, 3),),
                slot=1,
                tier=1,
            ),
        ),
        removed=(
            ItemTrace(
                product_id=p1.pk,
                score=4.0,
                engine="segment_popular",
                sources=(SourceScore("segment_popular", 4.0, 2),),
                removed_by="At most 1 per brand",
                tier=1,
            ),
        ),
        customer_id=CustomerFactory(age_band="25-34", gender="f", region="").pk,
        history=(p1.pk,),
        history_events=("view",),
        model_versions=(("ease", 99999),),  # deleted since
        fallbacks=("trending",),
    )
    out = trace_explain(trace=trace).as_json()
    missing, trending = out["items"]
    assert missing["method"] == "list-statistics" and missing["contributions"] == []
    assert "Not attributed" in missing["summary"] and _additive(missing)
    assert any("99999" in w for w in out["warnings"])
    assert trending["method"] == "list-statistics" and trending["score"] == 12.0 and _additive(trending)
    assert "rank 3" in trending["summary"] and "Trending" in trending["summary"]
    (segment,) = out["removed"]
    assert "segment 25-34 / f" in segment["summary"] and "rank 2" in segment["summary"] and _additive(segment)
    assert version.pk  # the real version was not needed


@pytest.mark.parametrize("engine", ["itemknn", "hybrid"])
def test_a_list_served_by_the_pipeline_is_explained_with_the_scores_it_was_served_with(engine, settings):
    # given a trained engine serving a personalized widget
    from recommender.models import Widget
    from recommender.serving import recommendations_get, serving_state_reset

    settings.RECSITE_STRATEGY_ENGINES = {"personalized": engine}
    shop = shop_create(n_customers=40, n_products=12)
    params = (
        {"n_candidates": 10, "lgbm_params": {"n_estimators": 20, "min_child_samples": 2}}
        if engine == "hybrid"
        else {}
    )
    version = _train(engine, **params)
    serving_state_reset()
    widget = Widget.objects.create(
        slug="for-you", title="For you", placement="home", strategy="personalized", num_items=4
    )
    collected: list[DecisionTrace] = []
    # when
    recs = recommendations_get(widget=widget, customer=shop["customers"][2], log=False, trace=collected)
    out = trace_explain(trace=collected[-1]).as_json()
    # then: the model's items are attributed from the same history, to the score they were served with
    assert recs and out["model_versions"][0] == {"engine": engine, "version": version.pk}
    model_items = [i for i in out["items"] if i["engine"] == engine]
    assert model_items
    for item in model_items:
        source = next(s for s in item["sources"] if s["source"] == engine)
        assert item["score"] == pytest.approx(source["score"], rel=1e-5, abs=1e-6)
        assert _additive(item)
    assert not [w for w in out["warnings"] if "differs from the served" in w]

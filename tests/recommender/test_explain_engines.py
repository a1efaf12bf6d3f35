"""Attributions for every engine: additive ones add up to the engine's own recommend() score; the torch
occlusion finds the history item that decides the next item; popularity reports its figures."""

from __future__ import annotations

import re

import numpy as np
import pytest

from recommender.engines import engine_create
from recommender.explain import (
    Contribution,
    ItemAttribution,
    attributions_compute,
    driver_items,
    list_attribution,
)
from tests.recommender.classic_synth import clusters_data, pairs_data

EVENT_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}


def _additive_ok(att: ItemAttribution) -> bool:
    total = att.base_value + sum(c.value for c in att.contributions)
    return abs(total - att.score) <= 1e-6 * max(1.0, abs(att.score))


def _relative_error(att: ItemAttribution) -> float:
    total = att.base_value + sum(c.value for c in att.contributions)
    return abs(total - att.score) / max(abs(att.score), 1e-12)


@pytest.fixture(scope="module")
def clusters():
    data, _ = clusters_data(n_users=200, seed=1)
    return data


ADDITIVE = [
    ("itemknn", {}),
    ("itemknn", {"mode": "sequence", "history_decay": 0.5, "self_weight": 0.5}),
    ("ease", {"l2": 20.0}),
    ("ease", {"l2": 60.0, "history_decay": 0.85}),
    ("content", {}),
    ("content", {"popularity_blend": 0.1, "history_decay": 0.5}),
    ("als", {"factors": 8, "iterations": 5}),
    ("als", {"factors": 16, "iterations": 5, "history_decay": 0.7, "regularization": 1.0, "alpha": 20.0}),
    ("bpr", {"factors": 8, "iterations": 20}),
    ("bpr", {"factors": 8, "iterations": 20, "fold_in": "least_squares"}),
]


@pytest.mark.parametrize(("name", "params"), ADDITIVE, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ADDITIVE)])
def test_history_contributions_add_up_to_the_engines_recommend_score(clusters, name, params):
    # given a fitted engine and a few shoppers' histories (with repeats and mixed events)
    engine = engine_create(name, **params).fit(clusters)
    rng = np.random.default_rng(0)
    checked = 0
    for u in range(6):
        seq = np.asarray(clusters.sequences[u])
        history = np.concatenate([seq, seq[:1]])  # a repeated item: the engine keeps its latest weight
        events = [str(e) for e in rng.choice(["view", "click", "purchase"], len(history))]
        ids, scores = engine.recommend([history], 5)
        ids, scores = ids[:, ids[0] >= 0], scores[:, ids[0] >= 0]  # item-kNN pads with -1
        # when
        atts = attributions_compute(
            engine_name=name,
            engine=engine,
            history_idx=history,
            history_events=events,
            item_idx=ids[0],
            event_weights=EVENT_WEIGHTS,
        )
        # then: the score is the engine's own, and base + contributions reproduce it
        for att, item, score in zip(atts, ids[0], scores[0], strict=True):
            assert att.product_id == int(item)
            assert att.score == pytest.approx(float(score), rel=1e-6, abs=1e-7)
            assert att.additive and att.method == "exact-linear"
            assert _additive_ok(att), (att.score, att.base_value, [c.value for c in att.contributions])
            named = [c for c in att.contributions if c.product_id is not None]
            assert {c.product_id for c in named} == set(history.tolist())
            assert all(c.event in ("view", "click", "purchase") for c in named)
            checked += 1
    assert checked >= 24


def test_a_purchase_labels_the_item_over_a_view_and_contributions_are_ordered(clusters):
    engine = engine_create("ease", l2=20.0).fit(clusters)
    history = np.asarray([0, 1, 2, 0])
    events = ["purchase", "view", "view", "view"]  # item 0 viewed after it was bought
    att = attributions_compute(
        engine_name="ease",
        engine=engine,
        history_idx=history,
        history_events=events,
        item_idx=[3],
        event_weights=EVENT_WEIGHTS,
        item_ids=np.arange(100, 130),
        item_label=lambda pid: f"P{pid}",
    )[0]
    by_item = {c.product_id: c for c in att.contributions}
    assert att.product_id == 103
    assert by_item[100].event == "purchase" and by_item[100].name == "bought P100"
    assert by_item[101].name == "viewed P101"
    values = [abs(c.value) for c in att.contributions]
    assert values == sorted(values, reverse=True)
    assert "Mainly because the shopper" in att.summary


def test_ease_contributions_are_exactly_the_weighted_b_rows(clusters):
    # a hand check of one term: contribution of history item j to item i is w_j * B[j, i]
    engine = engine_create("ease", l2=20.0, history_decay=0.5).fit(clusters)
    att = attributions_compute(engine_name="ease", engine=engine, history_idx=[4, 7], item_idx=[5])[0]
    by_item = {c.product_id: c for c in att.contributions}
    assert by_item[7].feature_value == 1.0 and by_item[4].feature_value == 0.5
    assert by_item[4].value == pytest.approx(0.5 * float(engine.B_[4, 5]))
    assert by_item[7].value == pytest.approx(float(engine.B_[7, 5]))


def test_driver_items_name_the_history_item_that_pushes_the_item_up():
    # pairs data: item 2k is followed by 2k+1, so the driver of 2k+1 is 2k whatever else was seen
    data = pairs_data(n_users=300)
    engine = engine_create("itemknn", mode="sequence", window=1, backward=0.0).fit(data)
    drivers = driver_items(
        engine_name="itemknn", engine=engine, history_idx=[25, 4, 31, 10], item_idx=[5, 11]
    )
    assert drivers == {5: 4, 11: 10}
    # and the driver is the largest positive contribution of the full attribution
    for item, driver in drivers.items():
        att = attributions_compute(
            engine_name="itemknn", engine=engine, history_idx=[25, 4, 31, 10], item_idx=[item]
        )[0]
        assert max(att.contributions, key=lambda c: c.value).product_id == driver
    assert driver_items(engine_name="itemknn", engine=engine, history_idx=[], item_idx=[5]) == {}
    assert driver_items(engine_name="pop", engine=None, history_idx=[1], item_idx=[5]) == {}


def test_hybrid_driver_items_come_from_a_linear_base_engine():
    data = pairs_data(n_users=300)
    hybrid = engine_create(
        "hybrid",
        base_engines=("itemknn", "pop"),
        base_params={"itemknn": {"mode": "sequence", "window": 1, "backward": 0.0}},
        n_candidates=10,
        lgbm_params={"n_estimators": 10, "min_child_samples": 5},
    ).fit(data)
    assert driver_items(engine_name="hybrid", engine=hybrid, history_idx=[25, 4], item_idx=[5]) == {5: 4}
    atts = attributions_compute(engine_name="hybrid", engine=hybrid, history_idx=[25, 4], item_idx=[5, 30])
    for att in atts:
        assert att.method == "tree-shap" and att.score_kind == "ranker raw score"
        assert _additive_ok(att)
        assert all(c.product_id is None for c in att.contributions)
    assert atts[0].summary


@pytest.mark.parametrize("mode", ["global", "trending", "category", "segment"])
def test_popularity_reports_its_figures(clusters, mode):
    params = {"mode": mode} if mode != "segment" else {"mode": mode, "segment_key": "segment"}
    engine = engine_create("pop", **params).fit(clusters)
    ids, scores = engine.recommend([np.asarray([0, 1])], 3, users=np.asarray([0]))
    atts = attributions_compute(
        engine_name="pop", engine=engine, history_idx=[0, 1], item_idx=ids[0], user_idx=0
    )
    ranks = []
    for att, score in zip(atts, scores[0], strict=True):
        assert att.method == "list-statistics"
        assert att.score == pytest.approx(float(score), rel=1e-6)
        assert _additive_ok(att)
        ranks.append(int(re.search(r"rank (\d+) of 28 ", att.summary).group(1)))  # 2 history items excluded
    assert ranks[0] == 1 and ranks == sorted(ranks)
    if mode == "segment":
        assert "segment = s" in atts[0].summary


def test_list_attribution_carries_reason_rank_and_figures():
    att = list_attribution(product_id=7, source="trending", score=42.0, rank=3, n_listed=200)
    assert att.as_dict()["contributions"][0]["value"] == 42.0
    assert _additive_ok(att)
    assert "Trending now" in att.summary and "rank 3 of 200" in att.summary and "42" in att.summary
    seg = list_attribution(product_id=7, source="segment_popular", score=5.0, rank=1, segment="25-34 / f")
    assert "segment 25-34 / f" in seg.summary


def test_bad_inputs_get_clear_errors(clusters):
    engine = engine_create("ease").fit(clusters)
    with pytest.raises(ValueError, match="outside the catalogue"):
        attributions_compute(engine_name="ease", engine=engine, history_idx=[1], item_idx=[999])
    with pytest.raises(ValueError, match="no explainer for engine 'nope'"):
        attributions_compute(engine_name="nope", engine=engine, history_idx=[1], item_idx=[2])


def test_empty_history_scores_nothing_personal(clusters):
    engine = engine_create("ease").fit(clusters)
    (att,) = attributions_compute(engine_name="ease", engine=engine, history_idx=[], item_idx=[3])
    assert att.contributions == () and att.score == 0.0 and _additive_ok(att)
    assert "No history" in att.summary


def test_contribution_is_a_frozen_value():
    c = Contribution(name="viewed X", value=0.4, product_id=1, event="view")
    with pytest.raises(AttributeError):
        c.value = 1.0  # type: ignore[misc]


def _key_data(n_users: int = 300, seed: int = 0):
    """Every sequence holds one key item k (0..4) somewhere among 0-2 noise items before and after it
    (10..19), and ends with k + 5: the next item is decided by the key alone, wherever it stands."""
    from recommender.engines.base import InteractionData

    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_users):
        k = int(rng.integers(5))
        before = [int(x) for x in rng.choice(np.arange(10, 20), int(rng.integers(3)), replace=False)]
        after = [int(x) for x in rng.choice(np.arange(10, 20), int(rng.integers(3)), replace=False)]
        seqs.append([*before, k, *after, k + 5])
    return InteractionData.from_sequences(seqs, 20)


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_occlusion_finds_the_history_item_that_decides_the_next_item(name):
    # given a tiny sequence model trained where the first item decides the last
    params = {
        "hidden": 16,
        "epochs": 20,
        "lr": 0.01,
        "val_fraction": 0.0,
        "dropout": 0.0,
        "loss": "ce",
        "num_threads": 1,
        "max_len": 8,
    }
    params.update({"layers": 1, "heads": 1} if name == "sasrec" else {"use_sessions": False})
    engine = engine_create(name, **params).fit(_key_data())
    for k, history in enumerate(([0, 12, 17], [12, 1, 17], [12, 17, 2], [3, 17], [11, 4])):
        history = np.asarray(history)
        ids, scores = engine.recommend([history], 1)
        assert ids[0, 0] == k + 5  # the model learned the rule
        # when
        (att,) = attributions_compute(
            engine_name=name,
            engine=engine,
            history_idx=history,
            item_idx=[k + 5],
            history_events=["view"] * len(history),
        )
        # then: removing the key item lowers the target's score most; the noise items barely matter
        assert att.method == "occlusion" and att.additive is False
        assert att.score == pytest.approx(float(scores[0, 0]), rel=1e-5)
        assert {c.product_id for c in att.contributions} == set(history.tolist())
        top = att.contributions[0]
        assert top.product_id == k and top.value > 0
        others = [c.value for c in att.contributions[1:]]
        assert max(abs(v) for v in others) < 0.5 * top.value
        assert driver_items(engine_name=name, engine=engine, history_idx=history, item_idx=[k + 5]) == {
            k + 5: k
        }
        assert "viewed item" in att.summary

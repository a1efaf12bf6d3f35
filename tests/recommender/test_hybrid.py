"""The hybrid engine: planted pattern, no leakage, save/load, named features, fallbacks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import ranker as rk
from recommender.engines import REGISTRY, ItemFeatures, engine_create
from recommender.engines.base import InteractionData
from recommender.engines.hybrid import HybridEngine
from tests.recommender import hybrid_fakes

FAST_LGBM = {"n_estimators": 60, "learning_rate": 0.2, "min_child_samples": 5, "num_leaves": 7}


@pytest.fixture(autouse=True)
def fake_engines(monkeypatch):
    monkeypatch.setitem(REGISTRY, "fake_pop", "tests.recommender.hybrid_fakes:FakePop")
    monkeypatch.setitem(REGISTRY, "fake_cooc", "tests.recommender.hybrid_fakes:FakeCooc")
    hybrid_fakes.FIT_LOG.clear()


def chain_sequences(n_users: int, n_items: int, seed: int = 0) -> list[np.ndarray]:
    """Planted pattern: item a is always followed by item (a + 1) % n_items; random start and length."""
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_users):
        start, length = rng.integers(n_items), rng.integers(5, 10)
        seqs.append((start + np.arange(length)) % n_items)
    return seqs


def loo(seqs):
    """Leave-one-out: (training part i1..i(n-2), validation histories/targets, test histories/targets)."""
    train = [s[:-2] for s in seqs]
    return (
        train,
        ([s[:-2] for s in seqs], np.array([s[-2] for s in seqs])),
        ([s[:-1] for s in seqs], [s[-1] for s in seqs]),
    )


def hybrid(**kw) -> HybridEngine:
    params = {
        "base_engines": ("fake_pop", "fake_cooc"),
        "n_candidates": 40,
        "lgbm_params": FAST_LGBM,
        "early_stopping_rounds": 10,
    }
    params.update(kw)
    return HybridEngine(**params)


def test_registry_creates_the_hybrid():
    eng = engine_create("hybrid", base_engines=("fake_pop",))
    assert isinstance(eng, HybridEngine)
    assert eng.get_params()["base_engines"] == ["fake_pop"]


def test_planted_transition_pattern_is_learned():
    # given: a deterministic chain a -> a+1 that neither base engine models (popularity, co-occurrence sets)
    n_items = 40
    seqs = chain_sequences(400, n_items)
    train, valid, (test_h, test_t) = loo(seqs)
    data = InteractionData.from_sequences(train, n_items)
    # when
    eng = hybrid().fit(data, valid=valid)
    ids, scores = eng.recommend(test_h, 5)
    # then: the next item of the chain is ranked first almost always, far above what the base engines do
    hit1 = np.mean(ids[:, 0] == np.array(test_t))
    base_ids, _ = eng.engines_["fake_pop"].recommend(test_h, 5)
    assert hit1 >= 0.9
    assert np.mean(base_ids[:, 0] == np.array(test_t)) < 0.2
    top_feature = eng.feature_importance()[0][0]
    assert top_feature in {rk.FEATURE_FOLLOWS_LAST, rk.FEATURE_FOLLOWS_RECENT}
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first


def pair_sequences(n_users: int, n_cat: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Items 2c and 2c+1 form category c; shoppers buy whole pairs: x, partner(x), y, partner(y), ..."""
    seqs = []
    for _ in range(n_users):
        firsts = rng.choice(2 * n_cat, size=rng.integers(3, 6), replace=False)
        firsts = firsts[np.unique(firsts // 2, return_index=True)[1]]  # at most one item per category
        rng.shuffle(firsts)
        seqs.append(np.column_stack([firsts, firsts ^ 1]).ravel())
    return seqs


def test_planted_category_pattern_is_learned():
    # given: the next item after an unpaired x is the one other item of x's category
    rng = np.random.default_rng(1)
    n_cat = 40
    n_items = 2 * n_cat
    feats = ItemFeatures(
        category=np.arange(n_items) // 2,
        price=np.where(rng.random(n_items) < 0.2, np.nan, rng.uniform(1, 20, n_items)),
    )
    # training part = whole pairs (the validation and test items of leave-one-out come after them)
    data = InteractionData.from_sequences(pair_sequences(500, n_cat, rng), n_items, item_features=feats)
    # held-out shoppers: pairs, then one unpaired item; the target is its partner
    test = pair_sequences(200, n_cat, np.random.default_rng(99))
    test_h, test_t = [s[:-1] for s in test], np.array([s[-1] for s in test])
    # when
    eng = hybrid(n_candidates=n_items).fit(data)
    ids, _ = eng.recommend(test_h, 3)
    # then: the partner is ranked first; the category feature is among the three most important
    assert np.mean(ids[:, 0] == test_t) >= 0.9
    top3 = [n for n, _ in eng.feature_importance()[:3]]
    assert rk.FEATURE_SAME_CATEGORY_LAST in top3, top3


def test_holdout_last_removes_only_each_users_last_interaction():
    seqs = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5, 4])]
    data = InteractionData.from_sequences(seqs, 6, timestamps=[[1, 2, 3], [4], [5, 6, 7]])
    split = rk.interactions_holdout_last(data)
    assert split.users.tolist() == [0, 2]
    assert split.labels.tolist() == [2, 4]
    assert [h.tolist() for h in split.histories] == [[0, 1], [4, 5]]
    m = split.prefix.matrix.toarray()
    assert m[0, 2] == 0 and m[0, 0] == 1  # label gone
    assert m[1, 3] == 1  # single-interaction user untouched
    assert m[2, 4] == 1  # label item also earlier in the history: the earlier interaction stays
    assert [len(t) for t in split.prefix.timestamps] == [2, 1, 2]


def test_no_leakage_ranker_labels_and_base_fits_never_see_validation_or_test(monkeypatch):
    # given: every user's validation and test items are items that occur nowhere in training
    rng = np.random.default_rng(3)
    n_common, n_users = 30, 120
    seqs = []
    for u in range(n_users):
        hist = rng.choice(n_common, size=rng.integers(4, 8), replace=False)
        seqs.append(np.concatenate([hist, [n_common + 2 * u, n_common + 2 * u + 1]]))
    n_items = n_common + 2 * n_users
    held_out = set(range(n_common, n_items))
    train, valid, _ = loo(seqs)
    data = InteractionData.from_sequences(train, n_items)
    recorded = []
    original = rk.ranker_groups_build

    def spy(cands, X, labels, users, *, max_negatives, rng):
        recorded.append((max_negatives, np.concatenate([np.atleast_1d(t) for t in labels])))
        return original(cands, X, labels, users, max_negatives=max_negatives, rng=rng)

    monkeypatch.setattr(rk, "ranker_groups_build", spy)
    # when
    hybrid(max_negatives=10).fit(data, valid=valid)
    # then: training labels are exactly each user's last TRAINING item, never a validation/test item
    train_labels = np.concatenate([lab for neg, lab in recorded if neg is not None])
    assert train_labels.tolist() == [int(s[-1]) for s in train]
    assert not set(train_labels.tolist()) & held_out
    # validation targets appear only in the early-stopping groups (max_negatives=None calls)
    valid_labels = np.concatenate([lab for neg, lab in recorded if neg is None])
    assert set(valid_labels.tolist()) <= set(np.asarray(valid[1]).tolist())
    # the label stage's base engines were fitted without the labels; nothing ever saw a held-out item
    first_fit = hybrid_fakes.FIT_LOG[0]
    assert [s.tolist() for s in first_fit] == [s[:-1].tolist() for s in train]
    for fit in hybrid_fakes.FIT_LOG:
        assert not set(np.concatenate(fit).tolist()) & held_out


def test_save_load_round_trip_gives_identical_scores(tmp_path):
    n_items = 30
    seqs = chain_sequences(150, n_items, seed=5)
    train, _, (test_h, _) = loo(seqs)
    eng = hybrid().fit(InteractionData.from_sequences(train, n_items))
    ids, scores = eng.recommend(test_h, 10)
    path = tmp_path / "hybrid.bin"
    eng.save(path)
    loaded = HybridEngine.load(path)
    ids2, scores2 = loaded.recommend(test_h, 10)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(scores, scores2)
    assert loaded.feature_names_ == eng.feature_names_
    assert loaded.get_params() == eng.get_params()
    # explanations survive the round trip too
    from recommender.explain import explain

    a, b = explain(eng, test_h[0], int(ids[0, 0])), explain(loaded, test_h[0], int(ids[0, 0]))
    assert a.contributions == b.contributions and a.raw_score == b.raw_score


def test_load_rejects_a_foreign_file(tmp_path):
    path = tmp_path / "x.bin"
    import pickle

    path.write_bytes(pickle.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a hybrid engine artifact"):
        HybridEngine.load(path)


def test_feature_names_are_human_readable_and_stable():
    n_items = 30
    seqs = chain_sequences(120, n_items, seed=2)
    train, _, _ = loo(seqs)
    rng = np.random.default_rng(0)
    attrs = __import__("scipy.sparse", fromlist=["csr_matrix"]).csr_matrix(rng.random((n_items, 8)) > 0.6)
    feats = ItemFeatures(
        price=rng.uniform(5, 50, n_items),
        category=rng.integers(0, 4, n_items),
        brand=rng.integers(0, 3, n_items),
        attributes=attrs,
    )
    rich = InteractionData.from_sequences(train, n_items, item_features=feats)
    plain = InteractionData.from_sequences(train, n_items)
    names_rich = hybrid().fit(rich).feature_names_
    assert names_rich == hybrid(seed=7).fit(rich).feature_names_  # stable across fits
    assert names_rich == [
        "Fake Pop score",
        "Rank in Fake Pop",
        "Fake Cooc score",
        "Rank in Fake Cooc",
        "Engines recommending it",
        "Item popularity",
        "Item popularity (recent)",
        "Price",
        "Price vs. shopper's usual",
        "Same category as last item",
        "Same category as recent items",
        "Times in shopper history (category)",
        "Same brand as last item",
        "Same brand as recent items",
        "Times in shopper history (brand)",
        "Content similarity to last item",
        "Content similarity to recent items",
        "Often chosen right after last item",
        "Often chosen right after recent items",
        "Shopper history length",
    ]
    for n in names_rich:
        assert n[0].isupper() and all(ch.isalnum() or ch in " ().'" for ch in n), n
    # missing side information -> those features are omitted, not zero-filled
    names_plain = hybrid().fit(plain).feature_names_
    assert "Price" not in names_plain and "Same category as recent items" not in names_plain
    assert "Content similarity to last item" not in names_plain
    assert rk.engine_feature_names("sasrec") == ("SASRec score", "Rank in SASRec")
    assert rk.engine_feature_names("ease") == ("EASE score", "Rank in EASE")


def test_timestamps_add_item_age_and_a_time_window_for_recent_popularity():
    n_items = 20
    seqs = chain_sequences(80, n_items, seed=4)
    ts = [1_000_000 + 86400.0 * np.arange(len(s)) + 3600 * u for u, s in enumerate(seqs)]
    data = InteractionData.from_sequences(seqs, n_items, timestamps=ts)
    ctx = rk.feature_context_build(data)
    assert rk.FEATURE_ITEM_AGE in ctx.feature_names(["ease"])
    assert ctx.recent_window == "last 30 days"
    assert np.all(ctx.item_age_days[np.isfinite(ctx.item_age_days)] >= 0)


def test_recommend_excludes_history_and_falls_back_for_empty_histories():
    n_items = 30
    seqs = chain_sequences(150, n_items, seed=6)
    train, _, (test_h, _) = loo(seqs)
    eng = hybrid(n_candidates=3, base_engines=("fake_cooc",)).fit(
        InteractionData.from_sequences(train, n_items)
    )
    hist = [np.array([], dtype=np.int64), test_h[0]]
    ids, scores = eng.recommend(hist, 8, exclude=[np.array([], dtype=np.int64), np.append(test_h[0], 0)])
    # empty history: no candidates at all -> popularity fallback fills all k
    assert (ids[0] >= 0).all() and len(set(ids[0].tolist())) == 8
    # 3 candidates from the single base engine, the rest popularity fallback, still no excluded item
    assert (ids[1] >= 0).all() and len(set(ids[1].tolist())) == 8
    assert not set(ids[1].tolist()) & set(np.append(test_h[0], 0).tolist())
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_similar_items_delegates_to_a_base_engine_that_supports_it():
    n_items = 30
    seqs = chain_sequences(100, n_items, seed=8)
    eng = hybrid().fit(InteractionData.from_sequences([s[:-2] for s in seqs], n_items))
    ids, _ = eng.similar_items(np.array([3]), 5)
    expected, _ = eng.engines_["fake_cooc"].similar_items(np.array([3]), 5)
    np.testing.assert_array_equal(ids, expected)


def test_bad_configuration_gives_clear_errors():
    with pytest.raises(ValueError, match="at least one base engine"):
        HybridEngine(base_engines=())
    with pytest.raises(ValueError, match="itself"):
        HybridEngine(base_engines=("ease", "hybrid"))
    with pytest.raises(ValueError, match="base_params"):
        HybridEngine(base_engines=("ease",), base_params={"sasrec": {}})
    with pytest.raises(ValueError, match="n_candidates"):
        HybridEngine(n_candidates=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        HybridEngine().recommend([np.array([1])], 3)
    data = InteractionData.from_sequences(chain_sequences(20, 10), 10)
    with pytest.raises(KeyError, match="Unknown engine"):
        HybridEngine(base_engines=("no_such_engine",)).fit(data)
    single = InteractionData.from_sequences([[1], [2]], 5)
    with pytest.raises(ValueError, match="at least 2 interactions"):
        hybrid().fit(single)


def test_runs_through_the_evaluation_runner_with_its_validation_set():
    # given: the shared leave-one-out protocol on the planted chain data
    from recommender.evaluation.protocols import leave_one_out_split
    from recommender.evaluation.runner import evaluate_engine

    n_items = 30
    data = InteractionData.from_sequences(chain_sequences(200, n_items, seed=9), n_items)
    split = leave_one_out_split(data, dataset="chain")
    params = {
        "base_engines": ["fake_pop", "fake_cooc"],
        "n_candidates": 20,
        "lgbm_params": FAST_LGBM,
        "early_stopping_rounds": 10,
        "refit_base": ["fake_cooc"],
    }
    # when: the runner passes its validation EvalSet to fit(valid=...) and scores test through score()
    report = evaluate_engine("hybrid", split, params=params, tune=False, progress=False)
    # then: the planted chain is found on test, far above what popularity alone can do
    assert report.metrics["HR@1" if "HR@1" in report.metrics else "HR@5"] >= 0.9
    assert report.params["refit_base"] == ["fake_cooc"]
    pop = evaluate_engine(
        "hybrid",
        split,
        params={**params, "base_engines": ["fake_pop"], "refit_base": True},
        tune=False,
        progress=False,
    )
    assert pop.metrics["NDCG@10"] > 0.5  # the ranker's own transition features carry the pattern
    assert 0.0 <= report.metrics["AUC"] <= 1.0


def test_refit_base_must_name_base_engines():
    with pytest.raises(ValueError, match="refit_base"):
        HybridEngine(base_engines=("ease",), refit_base=["sasrec"])


def test_texts_and_timestamps_feed_content_and_age_features_end_to_end():
    # given: a shop-like log with product titles and timestamps (no attributes, prices or categories)
    n_items = 24
    seqs = chain_sequences(120, n_items, seed=11)
    ts = [1_700_000_000 + 3600.0 * np.arange(len(s)) + 60 * u for u, s in enumerate(seqs)]
    colours = ["red", "blue", "green"]
    texts = [f"{colours[i % 3]} lipstick shade {i}" if i % 5 else "" for i in range(n_items)]
    data = InteractionData.from_sequences(
        seqs, n_items, timestamps=ts, item_features=ItemFeatures(texts=texts)
    )
    # when
    eng = hybrid().fit(data)
    # then
    names = eng.feature_names_
    assert {rk.FEATURE_CONTENT_LAST, rk.FEATURE_ITEM_AGE} <= set(names)
    assert rk.FEATURE_PRICE not in names and rk.FEATURE_SAME_CATEGORY_LAST not in names
    X = eng.features_for([seqs[0][:3]], [np.array([0, 1, 5])])
    sim_last = X[:, names.index(rk.FEATURE_CONTENT_LAST)]
    assert sim_last[2] == 0.0  # item 5 has no text -> no similarity (its vector is empty)
    ids, _ = eng.recommend([seqs[0][:3]], 4)
    assert (ids >= 0).all()

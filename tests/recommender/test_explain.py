"""SHAP explanations of the hybrid ranker: additivity, readable output, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engines import REGISTRY, ItemFeatures
from recommender.engines.base import InteractionData
from recommender.engines.hybrid import HybridEngine
from recommender.explain import Explanation, explain, explain_many, explanation_summary


@pytest.fixture(scope="module")
def fitted():
    """A hybrid over two fake base engines with prices, categories, brands and attributes."""
    mp = pytest.MonkeyPatch()
    mp.setitem(REGISTRY, "fake_pop", "tests.recommender.hybrid_fakes:FakePop")
    mp.setitem(REGISTRY, "fake_cooc", "tests.recommender.hybrid_fakes:FakeCooc")
    rng = np.random.default_rng(0)
    n_items = 40
    seqs = [(rng.integers(n_items) + np.arange(rng.integers(5, 10))) % n_items for _ in range(300)]
    seqs = [np.where(rng.random(len(s)) < 0.2, rng.integers(n_items, size=len(s)), s) for s in seqs]
    feats = ItemFeatures(
        price=np.where(rng.random(n_items) < 0.1, np.nan, rng.uniform(5, 50, n_items)),
        category=rng.integers(0, 5, n_items),
        brand=rng.integers(-1, 4, n_items),
        attributes=sp.csr_matrix(rng.random((n_items, 10)) > 0.7),
    )
    data = InteractionData.from_sequences([s[:-1] for s in seqs], n_items, item_features=feats)
    eng = HybridEngine(
        base_engines=("fake_pop", "fake_cooc"),
        n_candidates=15,
        lgbm_params={"n_estimators": 40, "learning_rate": 0.2, "min_child_samples": 5, "num_leaves": 7},
    ).fit(data)
    yield eng, [s[:-1] for s in seqs]
    mp.undo()


def test_contributions_plus_base_value_equal_the_raw_score(fitted):
    eng, histories = fitted
    checked = 0
    for h in histories[:6]:
        recs, _ = eng.recommend([h], 3)
        not_candidate = next(i for i in range(eng.n_items_) if i not in h and i not in recs[0])
        items = [*recs[0].tolist(), not_candidate]  # includes an item no base engine retrieved
        exps = explain_many(eng, h, items)
        raw = eng.score_items([h], [np.array(items)])[0]
        for exp, r in zip(exps, raw):
            total = exp.base_value + sum(c for _, _, c in exp.contributions)
            assert total == pytest.approx(exp.raw_score, abs=1e-6)
            assert exp.raw_score == pytest.approx(r, abs=1e-9)
            checked += 1
    assert checked == 24
    # the recommended order is the explained raw-score order
    h = histories[0]
    ids, scores = eng.recommend([h], 3)
    np.testing.assert_allclose([explain(eng, h, int(i)).raw_score for i in ids[0]], scores[0], rtol=1e-5)


def test_explanation_names_values_and_order(fitted):
    eng, histories = fitted
    h = histories[1]
    item = int(eng.recommend([h], 1)[0][0, 0])
    exp = explain(eng, h, item)
    assert isinstance(exp, Explanation) and exp.item == item
    names = [n for n, _, _ in exp.contributions]
    assert sorted(names) == sorted(eng.feature_names_)
    mags = [abs(c) for _, _, c in exp.contributions]
    assert mags == sorted(mags, reverse=True)
    values = dict((n, v) for n, v, _ in exp.contributions)
    assert values["Shopper history length"] == len(h)
    d = exp.as_dict()
    assert d["summary"] and len(d["contributions"]) == len(names)
    # the source engines are those whose top-N held the item (a recommended item always has one)
    assert exp.sources and set(exp.sources) <= {"Fake Pop", "Fake Cooc"}
    for label in exp.sources:
        assert values[f"Rank in {label}"] <= eng.n_candidates
    assert exp.value_text("Rank in EASE", eng.n_candidates + 1.0) == f"not in its top {eng.n_candidates}"
    assert exp.value_text("EASE score", float("nan")) == "not proposed by this model"
    assert exp.value_text("Price", float("nan")) == "unknown"
    assert all("value_text" in c for c in d["contributions"])


def test_summary_is_one_plain_line():
    exp = Explanation(
        item=3,
        base_value=0.0,
        raw_score=1.0,
        contributions=(
            ("Content similarity to last item", 0.9, 0.8),
            ("Item popularity (recent)", 4.0, 0.3),
            ("Price", 80.0, -0.1),
            ("Shopper history length", 5.0, 0.0),
        ),
    )
    s = explanation_summary(exp)
    assert s == (
        "Ranked high mainly because: similar to the shopper's last item (+0.80), popular recently (+0.30); "
        "held back by: Price (-0.10)"
    )
    low = Explanation(item=3, base_value=0.5, raw_score=-1.0, contributions=(("Rank in EASE", 101.0, -1.5),))
    assert low.summary() == "Ranked low mainly because of: Rank in EASE (-1.50)"
    flat = Explanation(item=3, base_value=0.0, raw_score=0.0, contributions=(("Price", 1.0, 0.0),))
    assert "average" in flat.summary()
    engine_pos = Explanation(
        item=1, base_value=0.0, raw_score=1.0, contributions=(("Rank in SASRec", 1.0, 1.0),)
    )
    assert "ranked high by the SASRec model" in engine_pos.summary()


def test_explain_rejects_items_outside_the_catalogue(fitted):
    eng, histories = fitted
    with pytest.raises(ValueError, match="outside the catalogue"):
        explain(eng, histories[0], eng.n_items_)
    with pytest.raises(ValueError, match="outside the catalogue"):
        explain(eng, histories[0], -1)


def test_explain_an_unfitted_engine_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        explain(HybridEngine(base_engines=("fake_pop",)), [1, 2], 0)

import json
from typing import ClassVar

import numpy as np
import pytest

from recommender.engines.base import top_k
from recommender.engines.ease import EASEEngine
from recommender.engines.itemknn import ItemKNNEngine
from recommender.evaluation.protocols import leave_one_out_split
from recommender.evaluation.runner import (
    EngineReport,
    engine_applies,
    evaluate_engine,
    param_grid_expand,
    report_table,
)

from .classic_synth import N_ITEMS, pairs_data


class OracleEngine:
    """Knows either the validation or the test answers (set per test). Records what it was given."""

    name: ClassVar[str] = "oracle"
    param_grid: ClassVar[dict] = {"knows": ["test", "valid"]}
    answers: ClassVar[dict[str, dict[int, int]]] = {}
    fitted_on: ClassVar[list] = []
    valid_seen: ClassVar[list] = []

    def __init__(self, *, knows: str = "test"):
        self.knows = knows

    def get_params(self):
        return {"knows": self.knows}

    def fit(self, data, valid=None):
        OracleEngine.fitted_on.append(data)
        OracleEngine.valid_seen.append(valid)
        self.n_items = data.n_items
        return self

    def score(self, histories, users=None):
        s = np.zeros((len(histories), self.n_items), dtype=np.float32)
        for i, u in enumerate(users):
            s[i, self.answers[self.knows][int(u)]] = 1.0
        return s


class RecommendOnly:
    """EASE behind the plain `recommend` interface (no `score`): exercises the runner's fallback."""

    name: ClassVar[str] = "ease_recommend_only"

    def __init__(self):
        self.inner = EASEEngine(l2=5.0)

    def fit(self, data):
        self.inner.fit(data)
        return self

    def recommend(self, histories, k, exclude=None, users=None):
        return top_k(self.inner.score(histories), k, histories if exclude is None else exclude)


@pytest.fixture
def split():
    return leave_one_out_split(pairs_data(n_users=120), dataset="pairs")


def test_tuning_uses_validation_never_test(split):
    # given: one grid point knows the validation answers, the other knows the test answers
    OracleEngine.answers = {
        "valid": {int(u): int(t[0]) for u, t in zip(split.valid.users, split.valid.targets)},
        "test": {int(u): int(t[0]) for u, t in zip(split.test.users, split.test.targets)},
    }
    OracleEngine.fitted_on.clear()
    OracleEngine.valid_seen.clear()
    # when
    report = evaluate_engine("oracle", split, engine_cls=OracleEngine, progress=False)
    # then: validation picks "valid", so the reported test score is NOT the cheating one
    assert report.params["knows"] == "valid"
    assert [t["params"]["knows"] for t in report.tuning] == ["test", "valid"]
    assert report.tuning[1]["NDCG@10"] == pytest.approx(1.0)
    assert report.metrics["HR@10"] < 0.5
    # every fit saw only the training part (never a test target at its test position) and the validation set
    test_pairs = {(int(u), int(t[0])) for u, t in zip(split.test.users, split.test.targets)}
    for data in OracleEngine.fitted_on:
        assert data is split.train
        for u, i in test_pairs:
            assert i not in data.sequences[u].tolist() or i in split.test.histories[u].tolist()
    assert all(v is split.valid for v in OracleEngine.valid_seen)


def test_report_metrics_are_consistent_and_serialisable(split, tmp_path):
    pred = tmp_path / "preds" / "itemknn.tsv"
    report = evaluate_engine("itemknn", split, progress=False, predictions_path=pred)
    assert isinstance(report, EngineReport)
    m = report.metrics
    for k in (5, 10, 20):
        assert 0 <= m[f"NDCG@{k}"] <= m[f"HR@{k}"] <= 1
        assert m[f"precision@{k}"] == pytest.approx(m[f"HR@{k}"] / k)  # one target per case
        assert m[f"recall@{k}"] == pytest.approx(m[f"HR@{k}"])
    assert m["HR@5"] <= m["HR@10"] <= m["HR@20"]
    assert 0.5 < m["AUC"] <= 1
    assert m["HR@10"] > 0.3  # the planted pairs are learnable
    assert report.n_cases == len(split.test) and report.n_items == N_ITEMS
    assert report.slices["cold_users"]["n_cases"] + report.slices["warm_users"]["n_cases"] == len(split.test)
    assert len(report.tuning) == len(ItemKNNEngine.param_grid)
    chosen = max(report.tuning, key=lambda t: t["NDCG@10"])["params"]
    assert all(report.params[k] == v for k, v in chosen.items())
    json.dumps(report.to_dict())
    # predictions: one line per user, dataset ids, history excluded, best first
    lines = pred.read_text().splitlines()
    assert len(lines) == len(split.test)
    for line, hist in zip(lines, split.test.histories):
        uid, items = line.split("\t")
        ids = [int(x) for x in items.split()]
        assert 0 < len(ids) <= 20 and not set(ids) & set(hist.tolist())
    assert "| itemknn |" in report_table([report])


def test_recommend_only_engines_get_the_same_metrics(split):
    a = evaluate_engine("ease", split, engine_cls=RecommendOnly, tune=False, progress=False)
    b = evaluate_engine("ease", split, params={"l2": 5.0}, tune=False, progress=False)
    for key in ("HR@10", "NDCG@10", "MRR@20", "coverage@10"):
        assert a.metrics[key] == pytest.approx(b.metrics[key])
    assert a.metrics["AUC"] == pytest.approx(b.metrics["AUC"], abs=0.02)


def test_group_slices_and_gaps(split):
    groups = np.where(np.arange(split.test.users.size) % 2 == 0, "even", "odd")
    from dataclasses import replace

    s2 = replace(split, test=replace(split.test, groups={"parity": groups}))
    r = evaluate_engine("pop", s2, tune=False, progress=False)
    assert set(r.groups["parity"]) == {"even", "odd"}
    even, odd = r.groups["parity"]["even"]["NDCG@10"], r.groups["parity"]["odd"]["NDCG@10"]
    assert r.gaps["parity_NDCG@10_gap"] == pytest.approx(abs(even - odd))


def test_param_grid_expand():
    assert param_grid_expand({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert param_grid_expand({"a": [1, 2], "b": [3]}, {"a": 9}) == [{"b": 3, "a": 9}]
    assert param_grid_expand([{"a": 1}, {"a": 2}], {"c": 0}) == [{"a": 1, "c": 0}, {"a": 2, "c": 0}]
    assert param_grid_expand(None, {"x": 1}) == [{"x": 1}]
    assert param_grid_expand(None) == [{}]


def test_engine_applies(split):
    assert engine_applies("pop", split.train) is None
    assert "Unknown engine" in engine_applies("nope", split.train)
    assert "does not apply" in engine_applies("content", split.train)  # no texts or attributes


def test_cold_user_and_cold_item_slices_hand_computed():
    from recommender.engines.base import InteractionData
    from recommender.evaluation.protocols import EvalSet
    from recommender.evaluation.runner import metrics_compute

    # training popularity: item 0 by 5 users, item 1 by 4, item 2 by 1 (cold, <= 3), items 3, 4 never (cold)
    train = InteractionData.from_sequences([[0, 1], [0, 1], [0, 1], [0, 1], [0, 2]], 5)
    cases = EvalSet(
        histories=[np.array([0]), np.array([1]), np.array([0]), np.array([1])],
        targets=[np.array([1]), np.array([2]), np.array([3]), np.array([4])],
        users=np.arange(4),
        case_ids=np.array(["a", "b", "c", "d"]),
        n_train=np.array([2, 5, 3, 8]),  # cases 0 and 2 are cold users (<= 3 training interactions)
    )
    top = np.array(
        [[1, 2], [3, 2], [4, 3], [0, 3]]
    )  # hits: case 0 at 1, case 1 at 2, case 2 at 2, case 3 none
    metrics, slices, _, _ = metrics_compute(top, np.full(4, np.nan), cases, train, k_values=(2,))
    assert metrics["HR@2"] == pytest.approx(3 / 4)
    assert slices["cold_users"]["n_cases"] == 2
    assert slices["cold_users"]["HR@2"] == pytest.approx(1.0)  # cases 0 and 2 both hit
    assert slices["cold_users"]["NDCG@2"] == pytest.approx((1 + 1 / np.log2(3)) / 2)
    assert slices["warm_users"]["HR@2"] == pytest.approx(0.5)
    # cold items: targets 2, 3, 4 (cases 1, 2, 3); hits for cases 1 and 2
    assert slices["cold_items"]["n_cases"] == 3
    assert slices["cold_items"]["HR@2"] == pytest.approx(2 / 3)
    assert metrics["coverage@2"] == pytest.approx(5 / 5)

import numpy as np
import pytest

from recommender.engines.base import InteractionData
from recommender.engines.ease import EASEEngine

from .classic_synth import clusters_data, pairs_data


def test_recovers_planted_pairs():
    eng = EASEEngine(l2=5.0).fit(pairs_data())
    ids, _ = eng.recommend([np.array([25, 4]), np.array([12])], 2)
    assert ids[0, 0] == 5
    assert ids[1, 0] == 13


def test_closed_form_matches_the_formula():
    # B = I - P diag(1/diag P), P = (X^T X + l2 I)^-1, computed independently in float64
    data, _ = clusters_data(n_users=60)
    eng = EASEEngine(l2=3.0, dtype="float64").fit(data)
    x = data.matrix.toarray()
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(eng.B_, b, atol=1e-9)
    assert np.all(np.diag(eng.B_) == 0)


def test_float32_close_to_float64():
    data, _ = clusters_data(n_users=60)
    b32 = EASEEngine(l2=3.0).fit(data).B_
    b64 = EASEEngine(l2=3.0, dtype="float64").fit(data).B_
    np.testing.assert_allclose(b32, b64, atol=1e-4)


def test_cluster_recovery_and_similar_items():
    data, _ = clusters_data()
    eng = EASEEngine(l2=10.0).fit(data)
    ids, _ = eng.recommend([np.array([11, 12, 13])], 5)
    assert set((ids[0] // 10).tolist()) == {1}
    sim, _ = eng.similar_items(np.array([25]), 3)
    assert set((sim[0] // 10).tolist()) == {2} and 25 not in sim[0]


def test_bad_params_and_unfitted():
    with pytest.raises(ValueError):
        EASEEngine(l2=0)
    with pytest.raises(ValueError):
        EASEEngine(dtype="int8")
    with pytest.raises(RuntimeError):
        EASEEngine().score([np.array([1])])


def test_save_load_identical_scores(tmp_path):
    eng = EASEEngine(l2=7.0, history_decay=0.8).fit(pairs_data())
    path = tmp_path / "ease.model"
    eng.save(path)
    loaded = EASEEngine.load(path)
    hist = [np.array([0, 5, 9]), np.array([], dtype=np.int64)]
    np.testing.assert_array_equal(eng.score(hist), loaded.score(hist))
    np.testing.assert_array_equal(eng.recommend(hist, 6)[0], loaded.recommend(hist, 6)[0])
    assert loaded.get_params() == eng.get_params()


def test_empty_history_scores_zero():
    eng = EASEEngine().fit(InteractionData.from_sequences([[0, 1], [1, 2]], 3))
    assert np.all(eng.score([np.array([], dtype=np.int64)]) == 0)


def test_consecutive_fits_share_one_solve_and_report_its_cost():
    data = pairs_data()
    a = EASEEngine(l2=4.0, history_decay=1.0).fit(data)
    b = EASEEngine(l2=4.0, history_decay=0.5).fit(data)  # same l2 and data: the solve is reused
    assert b.B_ is a.B_ and b.fit_seconds_ == a.fit_seconds_ > 0
    c = EASEEngine(l2=8.0).fit(data)
    assert c.B_ is not a.B_
    EASEEngine.cache_clear()
    assert EASEEngine(l2=8.0).fit(data).B_ is not c.B_
    np.testing.assert_allclose(EASEEngine(l2=8.0).fit(data).B_, c.B_)

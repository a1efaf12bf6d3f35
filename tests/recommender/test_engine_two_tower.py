"""Two-tower engine: planted pattern, faiss retrieval (flat and IVF), content features, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engines import InteractionData, ItemFeatures, engine_create
from recommender.engines.base import top_k
from recommender.engines.two_tower import TwoTowerEngine

N_ITEMS = 30


def planted_data(n_users: int = 240, length: int = 8, seed: int = 0, texts: bool = False) -> InteractionData:
    """Random sequences over items 4..29 with planted transitions 0 -> 1 and 2 -> 3."""
    rng = np.random.default_rng(seed)
    seqs = []
    for u in range(n_users):
        s = list(rng.integers(4, N_ITEMS, size=length - 2))
        pos = int(rng.integers(0, len(s) + 1))
        s[pos:pos] = [0, 1] if u % 2 == 0 else [2, 3]
        seqs.append(s)
    feats = ItemFeatures(
        attributes=sp.csr_matrix(np.eye(N_ITEMS, 6, dtype=np.float32)),
        texts=[f"product {i} {'red' if i % 2 else 'blue'} shampoo" for i in range(N_ITEMS)]
        if texts
        else None,
    )
    return InteractionData.from_sequences(seqs, N_ITEMS, item_features=feats)


def small_engine(**kw) -> TwoTowerEngine:
    params = dict(hidden=32, max_len=10, dropout=0.0, lr=1e-2, batch_size=128, epochs=30, decay=0.3)
    params.update(val_fraction=0.0, num_threads=1, seed=1)
    params.update(kw)
    return TwoTowerEngine(**params)


@pytest.fixture(scope="module")
def fitted() -> TwoTowerEngine:
    return small_engine().fit(planted_data())


def test_two_tower_is_registered():
    assert isinstance(engine_create("two_tower", hidden=8), TwoTowerEngine)


def test_two_tower_recovers_planted_transitions(fitted):
    ids, _ = fitted.recommend([np.array([7, 9, 0]), np.array([11, 5, 2])], k=3)
    assert ids[:, 0].tolist() == [1, 3]


def test_two_tower_faiss_search_matches_exact_scores(fitted):
    hist = [np.array([7, 0]), np.array([4, 5, 6]), np.array([2])]
    ids, scores = fitted.recommend(hist, k=6)
    exact_ids, exact_scores = top_k(fitted.score_items(hist), 6, hist)
    np.testing.assert_allclose(scores, exact_scores, rtol=1e-5, atol=1e-5)
    assert (ids[:, :3] == exact_ids[:, :3]).mean() > 0.9  # ties may swap order, scores must agree


def test_two_tower_ivf_index_returns_valid_results():
    eng = small_engine(index="ivf", nlist=2, nprobe=2, epochs=3).fit(planted_data(n_users=100))
    ids, scores = eng.recommend([np.array([0]), np.array([3, 4])], k=5)
    assert ids.shape == (2, 5) and (ids >= 0).all()
    assert 0 not in ids[0] and not {3, 4} & set(ids[1].tolist())
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_two_tower_uses_text_features_when_present():
    eng = small_engine(epochs=1).fit(planted_data(n_users=40, texts=True))
    assert eng.net.dense is not None and eng.net.dense.shape[0] == N_ITEMS + 1
    off = small_engine(epochs=1, use_texts=False).fit(planted_data(n_users=40, texts=True))
    assert off.net.dense is None


def test_two_tower_save_load_round_trip_gives_identical_scores(tmp_path):
    eng = small_engine(epochs=3).fit(planted_data(n_users=80, texts=True))
    eng.save(tmp_path / "tt.bin")
    loaded = TwoTowerEngine.load(tmp_path / "tt.bin")
    hist = [np.array([7, 0]), np.array([2])]
    a, b = eng.recommend(hist, k=5), loaded.recommend(hist, k=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(eng.similar_items([0], 3)[0], loaded.similar_items([0], 3)[0])


def test_two_tower_exclusions_and_short_catalogue(fitted):
    hist = [np.arange(0, 28)]
    ids, scores = fitted.recommend(hist, k=5)
    assert set(ids[0, :2].tolist()) == {28, 29}
    assert ids[0, 2:].tolist() == [-1, -1, -1] and np.isneginf(scores[0, 2:]).all()


@pytest.mark.parametrize(
    "kwargs", [{"index": "hnsw"}, {"decay": 0.0}, {"temperature": 0}, {"loss": "bpr"}, {"max_len": 0}]
)
def test_two_tower_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        TwoTowerEngine(**kwargs)


def test_two_tower_user_vector_ignores_batch_padding(fitted):
    short = np.array([6, 0])
    alone = fitted.user_vectors([short])
    together = fitted.user_vectors([short, np.arange(4, 14)])
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-6)

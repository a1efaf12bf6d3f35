"""GRU4Rec engine: planted next-click pattern from sessions, padding invariance, save/load, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.engines import InteractionData, engine_create
from recommender.engines.gru4rec import GRU4RecEngine

N_ITEMS = 30


def planted_sessions(n: int = 240, length: int = 6, seed: int = 0) -> list[np.ndarray]:
    """Random sessions over items 4..29 with planted transitions 0 -> 1 and 2 -> 3."""
    rng = np.random.default_rng(seed)
    out = []
    for u in range(n):
        s = list(rng.integers(4, N_ITEMS, size=length - 2))
        pos = int(rng.integers(0, len(s) + 1))
        s[pos:pos] = [0, 1] if u % 2 == 0 else [2, 3]
        out.append(np.asarray(s, dtype=np.int64))
    return out


def small_engine(**kw) -> GRU4RecEngine:
    params = dict(hidden=32, max_len=10, dropout=0.1, lr=1e-2, batch_size=64, epochs=20, val_fraction=0.0)
    params.update(num_threads=1, seed=1)
    params.update(kw)
    return GRU4RecEngine(**params)


@pytest.fixture(scope="module")
def fitted() -> GRU4RecEngine:
    # user sequences are pure noise; the pattern lives only in the sessions, which must be used
    rng = np.random.default_rng(5)
    noise = [rng.integers(4, N_ITEMS, size=5) for _ in range(50)]
    data = InteractionData.from_sequences(noise, N_ITEMS, sessions=planted_sessions())
    return small_engine().fit(data)


def test_gru4rec_is_registered():
    assert isinstance(engine_create("gru4rec", hidden=8), GRU4RecEngine)


def test_gru4rec_learns_next_click_from_sessions(fitted):
    ids, _ = fitted.recommend([np.array([8, 0]), np.array([9, 11, 2])], k=2)
    assert ids[:, 0].tolist() == [1, 3]


def test_gru4rec_trains_on_user_sequences_without_sessions():
    data = InteractionData.from_sequences(planted_sessions(), N_ITEMS)
    eng = small_engine(loss="sampled", n_negatives=8).fit(data)
    ids, _ = eng.recommend([np.array([5, 0]), np.array([2])], k=1)
    assert ids[:, 0].tolist() == [1, 3]


def test_gru4rec_state_ignores_padding(fitted):
    short = np.array([6, 0])
    alone = fitted.score_items([short])
    together = fitted.score_items([short, np.arange(4, 14), np.array([], dtype=np.int64)])
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-5)


def test_gru4rec_save_load_round_trip_gives_identical_scores(fitted, tmp_path):
    path = tmp_path / "gru.bin"
    fitted.save(path)
    loaded = GRU4RecEngine.load(path)
    hist = [np.array([7, 0]), np.array([2])]
    a, b = fitted.recommend(hist, k=5), loaded.recommend(hist, k=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(fitted.similar_items([3], 4)[1], loaded.similar_items([3], 4)[1])


def test_gru4rec_load_rejects_a_sasrec_file(tmp_path):
    from recommender.engines.sasrec import SASRecEngine

    data = InteractionData.from_sequences(planted_sessions(n=20), N_ITEMS)
    SASRecEngine(hidden=8, heads=1, epochs=1, val_fraction=0.0, num_threads=1).fit(data).save(
        tmp_path / "s.bin"
    )
    with pytest.raises(ValueError, match="gru4rec"):
        GRU4RecEngine.load(tmp_path / "s.bin")


def test_gru4rec_similar_items_and_exclusions(fitted):
    ids, _ = fitted.similar_items(np.array([1]), k=3)
    assert 1 not in ids[0]
    ids, _ = fitted.recommend([np.array([0])], k=3, exclude=[np.array([1, 3])])
    assert not {1, 3} & set(ids[0].tolist())


@pytest.mark.parametrize("kwargs", [{"loss": "inbatch"}, {"hidden": 0}, {"batch_size": 0}])
def test_gru4rec_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        GRU4RecEngine(**kwargs)

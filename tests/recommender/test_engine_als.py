import numpy as np
import pytest

from recommender.engines.als import ALSEngine, BPREngine

from .classic_synth import clusters_data


@pytest.fixture(scope="module")
def clusters():
    return clusters_data(n_users=300)


def _cluster_share(ids, c):
    ids = ids[ids >= 0]
    return float(np.mean(ids // 10 == c))


def test_als_recovers_clusters_for_unseen_histories(clusters):
    data, _ = clusters
    eng = ALSEngine(factors=3, iterations=10, regularization=0.1).fit(data)  # 3 planted clusters
    # histories never seen in training (folded in through implicit's recalculate_user)
    ids, _ = eng.recommend([np.array([0, 1, 2]), np.array([21, 23])], 5)
    assert _cluster_share(ids[0], 0) == 1.0
    assert _cluster_share(ids[1], 2) == 1.0
    sim, _ = eng.similar_items(np.array([15]), 4)
    assert _cluster_share(sim[0], 1) == 1.0


@pytest.mark.parametrize("fold_in", ["mean", "least_squares"])
def test_bpr_recovers_clusters(clusters, fold_in):
    data, _ = clusters
    eng = BPREngine(factors=8, iterations=80, learning_rate=0.05, fold_in=fold_in).fit(data)
    ids, _ = eng.recommend([np.array([10, 11, 12]), np.array([0, 3])], 5)
    assert _cluster_share(ids[0], 1) >= 0.8
    assert _cluster_share(ids[1], 0) >= 0.8


def test_bpr_learned_user_factors(clusters):
    data, cluster = clusters
    eng = BPREngine(factors=8, iterations=80, fold_in="learned").fit(data)
    u = int(np.flatnonzero(cluster == 2)[0])
    ids, _ = eng.recommend([data.sequences[u]], 3, users=np.array([u]))
    assert _cluster_share(ids[0], 2) == 1.0


def test_bad_params():
    with pytest.raises(ValueError):
        ALSEngine(factors=0)
    with pytest.raises(ValueError):
        BPREngine(fold_in="magic")


@pytest.mark.parametrize("cls", [ALSEngine, BPREngine])
def test_save_load_identical_scores(tmp_path, clusters, cls):
    data, _ = clusters
    eng = cls(factors=8, iterations=5).fit(data)
    path = tmp_path / f"{cls.name}.model"
    eng.save(path)
    loaded = cls.load(path)
    hist = [np.array([1, 2]), np.array([29])]
    np.testing.assert_array_equal(eng.score(hist), loaded.score(hist))
    np.testing.assert_array_equal(eng.recommend(hist, 5)[0], loaded.recommend(hist, 5)[0])
    np.testing.assert_array_equal(
        eng.similar_items(np.array([4]), 3)[0], loaded.similar_items(np.array([4]), 3)[0]
    )

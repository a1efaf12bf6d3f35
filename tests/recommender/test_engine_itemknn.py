import numpy as np
import pytest

from recommender.engines.base import InteractionData
from recommender.engines.itemknn import ItemKNNEngine

from .classic_synth import pairs_data


@pytest.mark.parametrize("mode", ["users", "sequence"])
def test_recovers_planted_pairs(mode):
    # given: 2k is always followed by 2k+1
    eng = ItemKNNEngine(mode=mode, shrink=1.0).fit(pairs_data())
    # when: the history ends with an "A"
    ids, _ = eng.recommend([np.array([25, 4]), np.array([30, 10])], 3)
    # then: its "B" comes first
    assert ids[0, 0] == 5
    assert ids[1, 0] == 11


def test_sequence_mode_is_directional():
    eng = ItemKNNEngine(mode="sequence", backward=0.0, shrink=0.0).fit(pairs_data())
    sim, _ = eng.similar_items(np.array([6, 7]), 1)
    assert sim[0, 0] == 7  # what follows 6
    assert sim[1, 0] != 6  # nothing planted after 7: 6 only comes before it


def test_history_decay_favours_recent_items():
    eng = ItemKNNEngine(mode="users", history_decay=0.3).fit(pairs_data())
    ids, _ = eng.recommend([np.array([2, 8])], 1)  # 8 is the most recent
    assert ids[0, 0] == 9


def test_sessions_mode_is_frequently_bought_together():
    # orders: 0+1 are bought together, 2+3 together; user histories mix everything
    orders = [np.array([0, 1])] * 20 + [np.array([2, 3])] * 20 + [np.array([4])] * 5
    users = [[0, 2, 4], [1, 3], [0, 3, 4], [1, 2]]
    data = InteractionData.from_sequences(users, 5, sessions=orders)
    eng = ItemKNNEngine(mode="sessions", shrink=0.0).fit(data)
    fbt, _ = eng.frequently_bought_together(np.array([0, 2]), 1)
    assert fbt[:, 0].tolist() == [1, 3]
    with pytest.raises(ValueError, match="sessions"):
        ItemKNNEngine(mode="sessions").fit(InteractionData.from_sequences(users, 5))


def test_neighbours_are_pruned_to_top_n():
    eng = ItemKNNEngine(neighbors=2).fit(pairs_data())
    assert np.diff(eng.sim_.indptr).max() <= 2


def test_unrelated_items_are_not_recommended():
    data = InteractionData.from_sequences([[0, 1], [0, 1], [2, 3]], 5)
    ids, scores = ItemKNNEngine().fit(data).recommend([np.array([0])], 3)
    assert ids[0].tolist() == [1, -1, -1]
    assert np.isneginf(scores[0, 1])


def test_bad_params():
    for kwargs in ({"mode": "x"}, {"neighbors": 0}, {"alpha": 2.0}, {"history_decay": 0.0}):
        with pytest.raises(ValueError):
            ItemKNNEngine(**kwargs)


@pytest.mark.parametrize("mode", ["users", "sequence"])
def test_save_load_identical_scores(tmp_path, mode):
    eng = ItemKNNEngine(mode=mode, history_decay=0.7).fit(pairs_data())
    path = tmp_path / "knn.bin"
    eng.save(path)
    loaded = ItemKNNEngine.load(path)
    hist = [np.array([1, 2, 30]), np.array([7])]
    np.testing.assert_array_equal(eng.score(hist), loaded.score(hist))
    np.testing.assert_array_equal(eng.recommend(hist, 5)[0], loaded.recommend(hist, 5)[0])
    np.testing.assert_array_equal(
        eng.similar_items(np.array([3]), 4)[1], loaded.similar_items(np.array([3]), 4)[1]
    )

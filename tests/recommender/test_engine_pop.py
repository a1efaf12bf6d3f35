import numpy as np
import pytest

from recommender.engines.base import InteractionData, ItemFeatures
from recommender.engines.pop import PopularityEngine

from .classic_synth import clusters_data


def _counts_data():
    # item 3 touched by 4 users, item 1 by 3, item 0 by 2, item 2 by 1
    seqs = [[3, 1, 0], [3, 1], [3, 1, 0], [3, 2]]
    return InteractionData.from_sequences(seqs, 5)


def test_global_popularity_order_and_history_excluded():
    eng = PopularityEngine().fit(_counts_data())
    ids, scores = eng.recommend([np.array([], dtype=np.int64), np.array([3])], k=4)
    assert ids[0].tolist() == [3, 1, 0, 2]
    assert ids[1].tolist() == [1, 0, 2, 4]  # item 3 is in the history
    assert scores[0, 0] == pytest.approx(1.0)
    assert scores[0, 1] == pytest.approx(0.75)


def test_trending_prefers_recent_items():
    # given: item 0 was popular 100 days ago (5 users), item 1 is touched by 2 users today
    day = 86400.0
    seqs = [[0]] * 5 + [[1]] * 2
    times = [[0.0]] * 5 + [[100 * day]] * 2
    data = InteractionData.from_sequences(seqs, 3, timestamps=times)
    # when / then
    assert (
        PopularityEngine(mode="global").fit(data).recommend([np.array([], dtype=np.int64)], 1)[0][0, 0] == 0
    )
    trending = PopularityEngine(mode="trending", half_life_days=7).fit(data)
    assert trending.recommend([np.array([], dtype=np.int64)], 1)[0][0, 0] == 1


def test_trending_without_timestamps_falls_back_to_counts():
    eng = PopularityEngine(mode="trending").fit(_counts_data())
    assert eng.recommend([np.array([], dtype=np.int64)], 2)[0][0].tolist() == [3, 1]


def test_segment_popularity_follows_the_users_segment():
    data, cluster = clusters_data()
    eng = PopularityEngine(mode="segment", segment_key="segment").fit(data)
    for c in range(3):
        u = int(np.flatnonzero(cluster == c)[0])
        ids, _ = eng.recommend([np.array([], dtype=np.int64)], 5, users=np.array([u]))
        assert set((ids[0] // 10).tolist()) == {c}
    top, _ = eng.popular_in_segment("s1", 3)
    assert set((top // 10).tolist()) == {1}
    with pytest.raises(KeyError):
        eng.popular_in_segment("nope", 3)


def test_category_mode_and_popular_in_category():
    data, _ = clusters_data()
    eng = PopularityEngine(mode="category").fit(data)
    ids, _ = eng.recommend([np.array([21, 22])], 5)  # history in category 2
    assert set((ids[0] // 10).tolist()) == {2}
    top, _ = eng.popular_in_category(0, 20)
    assert len(top[top >= 0]) == 10 and set((top[top >= 0] // 10).tolist()) == {0}
    sim, _ = eng.similar_items(np.array([5]), 3)
    assert set((sim[0] // 10).tolist()) == {0} and 5 not in sim[0]


def test_modes_need_their_data():
    with pytest.raises(ValueError, match="category"):
        PopularityEngine(mode="category").fit(_counts_data())
    with pytest.raises(ValueError, match="user_groups"):
        PopularityEngine(mode="segment").fit(_counts_data())
    with pytest.raises(ValueError):
        PopularityEngine(mode="bogus")
    with pytest.raises(RuntimeError):
        PopularityEngine().recommend([np.array([1])], 2)


@pytest.mark.parametrize("mode", ["global", "segment", "category"])
def test_save_load_identical_scores(tmp_path, mode):
    data, _ = clusters_data()
    data = InteractionData.from_sequences(
        data.sequences,
        data.n_items,
        item_features=ItemFeatures(category=data.item_features.category),
        user_groups=data.user_groups,
    )
    eng = PopularityEngine(mode=mode).fit(data)
    path = tmp_path / "pop.model"
    eng.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["pop.model"]
    loaded = PopularityEngine.load(path)
    hist = [np.array([1, 2]), np.array([25])]
    users = np.array([0, 1])
    np.testing.assert_array_equal(eng.score(hist, users=users), loaded.score(hist, users=users))
    a, b = eng.recommend(hist, 5, users=users), loaded.recommend(hist, 5, users=users)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert loaded.get_params() == eng.get_params()


def test_param_grid_drops_trending_without_timestamps():
    assert PopularityEngine.param_grid_for(_counts_data()) == [{"mode": "global"}]
    timed = InteractionData.from_sequences([[0, 1]], 2, timestamps=[[1.0, 2.0]])
    assert PopularityEngine.param_grid_for(timed) == PopularityEngine.param_grid

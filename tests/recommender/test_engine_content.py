import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engines.base import InteractionData, ItemFeatures
from recommender.engines.content import ContentEngine

from .classic_synth import clusters_data


def _attrs_only(data):
    return InteractionData.from_sequences(
        data.sequences, data.n_items, item_features=ItemFeatures(attributes=data.item_features.attributes)
    )


def test_tfidf_texts_recover_the_category():
    data, _ = clusters_data()
    eng = ContentEngine().fit(data)
    ids, _ = eng.recommend([np.array([1, 2])], 5)  # "red shoes" items
    assert set((ids[0] // 10).tolist()) == {0}


def test_attributes_only_data_uses_the_attribute_matrix():
    data, _ = clusters_data()
    eng = ContentEngine().fit(_attrs_only(data))
    ids, _ = eng.recommend([np.array([21])], 5)
    assert set((ids[0] // 10).tolist()) == {2}


def test_cold_item_is_served():
    # given: item 5 has content (cluster 0) but nobody ever touched it
    data, _ = clusters_data()
    seqs = [s[s != 5] for s in data.sequences]
    cold = InteractionData.from_sequences(seqs, data.n_items, item_features=data.item_features)
    assert cold.matrix[:, 5].nnz == 0
    eng = ContentEngine().fit(cold)
    sim, _ = eng.similar_items(np.array([5]), 3)
    assert set((sim[0] // 10).tolist()) == {0}
    ids, _ = eng.recommend([np.array([0, 1, 2, 3, 4, 6, 7, 8])], 2)
    assert 5 in ids[0]


def test_recency_weighting_follows_the_latest_item():
    data, _ = clusters_data()
    eng = ContentEngine(history_decay=0.2).fit(_attrs_only(data))
    ids, _ = eng.recommend([np.array([1, 2, 25])], 1)
    assert ids[0, 0] // 10 == 2


def test_applies_to_and_missing_features():
    data, _ = clusters_data()
    bare = InteractionData.from_sequences(data.sequences, data.n_items)
    assert ContentEngine.applies_to(data)
    assert not ContentEngine.applies_to(bare)
    with pytest.raises(ValueError, match="texts or"):
        ContentEngine().fit(bare)
    with pytest.raises(ValueError, match="minilm"):
        ContentEngine(embedding="minilm").fit(_attrs_only(data))
    with pytest.raises(ValueError):
        ContentEngine(embedding="word2vec")


@pytest.mark.slow
def test_minilm_embeddings_group_similar_texts(tmp_path):
    texts = ["red running shoes", "red sneakers for running", "blue desk lamp", "blue bedside lamp light"]
    data = InteractionData.from_sequences([[0, 2], [1, 3]], 4, item_features=ItemFeatures(texts=texts))
    eng = ContentEngine(embedding="minilm", device="cpu").fit(data)
    assert eng.vectors_.shape == (4, 384)
    sim, _ = eng.similar_items(np.array([0, 2]), 1)
    assert sim[:, 0].tolist() == [1, 3]
    path = tmp_path / "content.model"
    eng.save(path)
    loaded = ContentEngine.load(path)
    np.testing.assert_array_equal(eng.score([np.array([0])]), loaded.score([np.array([0])]))


@pytest.mark.parametrize("attrs_only", [False, True])
def test_save_load_identical_scores(tmp_path, attrs_only):
    data, _ = clusters_data()
    if attrs_only:
        data = _attrs_only(data)
    eng = ContentEngine(popularity_blend=0.1).fit(data)
    path = tmp_path / "c.model"
    eng.save(path)
    loaded = ContentEngine.load(path)
    assert sp.issparse(loaded.vectors_)
    hist = [np.array([1, 12]), np.array([29])]
    np.testing.assert_array_equal(eng.score(hist), loaded.score(hist))
    np.testing.assert_array_equal(
        eng.similar_items(np.array([4]), 3)[0], loaded.similar_items(np.array([4]), 3)[0]
    )


def test_minilm_memo_reuses_embeddings_and_reports_their_cost(monkeypatch):
    import recommender.engines.content as content

    # given: the memo already holds this catalogue's embeddings, which took 2.5 s to compute
    data, _ = clusters_data(n_users=30)
    emb = np.ones((data.n_items, 4), dtype=np.float32)
    monkeypatch.setattr(content, "_LAST_ENCODING", (tuple(data.item_features.texts), emb, 2.5))
    # when
    eng = ContentEngine(embedding="minilm").fit(data)
    # then: no model is loaded, the memo's vectors are used and their cost is still reported
    assert eng.vectors_.shape == (data.n_items, 4)
    assert eng.fit_seconds_ >= 2.5

"""SASRec engine: planted sequential pattern, save/load, determinism, bad input, shared torch helpers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engines import InteractionData, ItemFeatures, engine_create
from recommender.engines.sasrec import SASRecEngine
from recommender.engines.torch_utils import (
    EarlyStopping,
    device_resolve,
    holdout_split,
    left_pad,
    ndcg_at_k,
    training_windows,
)

N_ITEMS = 30


def planted_data(n_users: int = 240, length: int = 8, seed: int = 0) -> InteractionData:
    """Random sequences over items 4..29, with two planted transitions: 0 -> 1 and 2 -> 3 (every 0 is
    followed by 1, every 2 by 3). Items 1 and 3 are equally popular, so popularity cannot pass."""
    rng = np.random.default_rng(seed)
    seqs = []
    for u in range(n_users):
        s = list(rng.integers(4, N_ITEMS, size=length - 2))
        pair = [0, 1] if u % 2 == 0 else [2, 3]
        pos = int(rng.integers(0, len(s) + 1))
        s[pos:pos] = pair
        seqs.append(s)
    attrs = sp.csr_matrix(np.eye(N_ITEMS, 5, dtype=np.float32))
    return InteractionData.from_sequences(seqs, N_ITEMS, item_features=ItemFeatures(attributes=attrs))


def small_engine(**kw) -> SASRecEngine:
    params = dict(hidden=32, layers=1, heads=2, max_len=10, dropout=0.1, lr=5e-3, batch_size=64, epochs=25)
    params.update(val_fraction=0.0, num_threads=1, seed=1)
    params.update(kw)
    return SASRecEngine(**params)


@pytest.fixture(scope="module")
def fitted() -> SASRecEngine:
    return small_engine().fit(planted_data())


def test_sasrec_is_registered():
    assert isinstance(engine_create("sasrec", hidden=16, heads=2), SASRecEngine)


def test_sasrec_recovers_planted_transitions(fitted):
    # when
    ids, scores = fitted.recommend([np.array([7, 9, 0]), np.array([11, 5, 2])], k=3)
    # then: the planted successor is ranked first, above everything else
    assert ids[0, 0] == 1
    assert ids[1, 0] == 3
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("loss", ["sampled"])
def test_sasrec_sampled_softmax_recovers_planted_transitions(loss):
    eng = small_engine(loss=loss, n_negatives=8).fit(planted_data())
    ids, _ = eng.recommend([np.array([7, 0]), np.array([5, 2])], k=1)
    assert ids[:, 0].tolist() == [1, 3]


def test_sasrec_excludes_history_and_explicit_exclusions(fitted):
    hist = [np.array([4, 5, 0])]
    ids, _ = fitted.recommend(hist, k=N_ITEMS)
    assert not set(ids[0][ids[0] >= 0]) & {4, 5, 0}
    assert (ids[0] == -1).sum() == 3  # only 27 items can be returned; the tail is padded
    ids2, _ = fitted.recommend(hist, k=5, exclude=[np.array([1])])
    assert 1 not in ids2[0] and 0 in ids2[0]  # an explicit exclude replaces the history filter


def test_sasrec_scores_do_not_depend_on_batch_padding(fitted):
    short = np.array([7, 0])
    alone = fitted.score_items([short])
    together = fitted.score_items([short, np.arange(4, 14)])
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-5)


def test_sasrec_handles_empty_and_unknown_histories(fitted):
    ids, scores = fitted.recommend([np.array([], dtype=np.int64), np.array([999, -3, 0])], k=4)
    assert ids.shape == (2, 4) and np.isfinite(scores).all()
    assert ids[1, 0] == 1  # unknown indices are ignored, 0 is still the last known item


def test_sasrec_save_load_round_trip_gives_identical_scores(fitted, tmp_path):
    path = tmp_path / "model.bin"
    fitted.save(path)
    loaded = SASRecEngine.load(path)
    hist = [np.array([7, 9, 0]), np.array([3, 2])]
    a_ids, a_sc = fitted.recommend(hist, k=5)
    b_ids, b_sc = loaded.recommend(hist, k=5)
    np.testing.assert_array_equal(a_ids, b_ids)
    np.testing.assert_array_equal(a_sc, b_sc)
    np.testing.assert_array_equal(
        fitted.similar_items(np.array([0, 1]), 3)[0], loaded.similar_items([0, 1], 3)[0]
    )
    assert loaded.get_params() == fitted.get_params()


def test_sasrec_load_rejects_other_files(tmp_path):
    bad = tmp_path / "junk.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="sasrec"):
        SASRecEngine.load(bad)


def test_sasrec_is_deterministic_for_a_seed():
    data = planted_data(n_users=60)
    a = small_engine(epochs=2).fit(data).score_items([np.array([4, 0])])
    b = small_engine(epochs=2).fit(data).score_items([np.array([4, 0])])
    np.testing.assert_array_equal(a, b)


def test_sasrec_similar_items_excludes_the_item_itself(fitted):
    ids, scores = fitted.similar_items(np.array([0, 5]), k=4)
    assert ids.shape == (2, 4)
    assert 0 not in ids[0] and 5 not in ids[1]
    with pytest.raises(ValueError, match="item ids"):
        fitted.similar_items(np.array([N_ITEMS]), k=2)


def test_sasrec_early_stopping_on_given_validation():
    data = planted_data(n_users=80)
    val_h = [np.array([5, 0]), np.array([6, 2])]
    eng = small_engine(epochs=6, patience=2).fit(data, valid=(val_h, np.array([1, 3])))
    info = eng.fit_info
    assert 1 <= info["best_epoch"] <= info["epochs_run"] <= 6
    assert info["best_val_ndcg10"] == max(v for _, v in info["val_history"])


def test_sasrec_internal_holdout_when_no_validation_given():
    eng = small_engine(epochs=2, val_fraction=0.2).fit(planted_data(n_users=80))
    assert eng.fit_info["best_val_ndcg10"] is not None
    assert len(eng.fit_info["val_history"]) == 2


def test_sasrec_without_attributes_and_on_cuda_request_falls_back_to_cpu():
    eng = small_engine(epochs=1, use_attributes=False, device="cuda").fit(planted_data(n_users=40))
    assert eng.net.attr_emb is None
    assert eng.fit_info["device"] == str(device_resolve("cuda"))


@pytest.mark.parametrize(
    "kwargs",
    [{"loss": "bpr"}, {"hidden": 30, "heads": 4}, {"max_len": 0}, {"epochs": -1}, {"n_negatives": 0}],
)
def test_sasrec_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        SASRecEngine(**kwargs)


def test_sasrec_recommend_before_fit_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        SASRecEngine().recommend([np.array([1])], k=3)


# ---------------------------------------------------------------------------- shared torch helpers


def test_training_windows_make_every_item_after_the_first_a_target_once():
    seq = np.arange(12)
    inputs, targets = training_windows([seq, np.array([5])], max_len=4)
    tg = targets[targets > 0] - 1
    assert sorted(tg.tolist()) == list(range(1, 12))
    # each target's input at the same position is its predecessor
    assert np.all(inputs[targets > 0] == targets[targets > 0] - 1)


def test_left_pad_keeps_the_most_recent_items():
    out = left_pad([np.array([1, 2, 3, 4, 5]), np.array([7])], max_len=3)
    assert out.tolist() == [[4, 5, 6], [0, 0, 8]]  # stored as index + 1 (0 = padding)


def test_holdout_split_removes_the_held_out_item_from_training():
    seqs = [np.array([1, 2, 3, 4]), np.array([5, 6]), np.array([7, 8, 9])]
    train, hist, tgt = holdout_split(seqs, fraction=1.0, max_users=10, seed=0)
    assert tgt.tolist() == [4, 9]  # the 2-item sequence is too short to hold out
    assert train[0].tolist() == [1, 2, 3] and train[1].tolist() == [5, 6] and train[2].tolist() == [7, 8]
    assert [h.tolist() for h in hist] == [[1, 2, 3], [7, 8]]


def test_ndcg_at_k_hand_computed():
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    # row 0: item 0 is history (masked), target 2 -> rank 2 -> 1/log2(3); row 1: target 0 is last -> 0 at k=2
    val = ndcg_at_k(scores, np.array([2, 0]), [np.array([0]), np.array([], dtype=np.int64)], k=2)
    assert val == pytest.approx((1 / np.log2(3)) / 2)


def test_early_stopping_keeps_the_best_state():
    import torch

    model = torch.nn.Linear(1, 1)
    stop = EarlyStopping(patience=2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    assert not stop.step(0, 0.5, model)
    with torch.no_grad():
        model.weight.fill_(2.0)
    assert not stop.step(1, 0.4, model)
    assert stop.step(2, 0.3, model)
    stop.restore(model)
    assert float(model.weight.detach()) == 1.0 and stop.best_epoch == 0


def test_sasrec_with_attributes_trains_and_round_trips(tmp_path):
    # given: the planted data carries a 5-column attribute matrix
    eng = small_engine(epochs=2, use_attributes=True).fit(planted_data(n_users=60))
    assert eng.net.attr_emb is not None and eng.n_attrs == 5
    # when
    eng.save(tmp_path / "attr.bin")
    loaded = SASRecEngine.load(tmp_path / "attr.bin")
    # then
    hist = [np.array([4, 0])]
    np.testing.assert_array_equal(eng.score_items(hist), loaded.score_items(hist))
    np.testing.assert_allclose(
        loaded.net.item_table().detach().numpy(), eng.net.item_table().detach().numpy(), rtol=0, atol=0
    )

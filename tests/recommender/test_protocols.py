import numpy as np
import pytest

from recommender.engines.base import InteractionData
from recommender.evaluation.importers import Dataset
from recommender.evaluation.protocols import (
    leave_one_out_split,
    session_next_click_split,
    split_default,
    temporal_split,
)


def _loo_data():
    # user 0: 1 2 3 4 5; user 1: 6 7 8; user 2: 9 2 (two items); user 3: 4 (one item)
    return InteractionData.from_sequences([[1, 2, 3, 4, 5], [6, 7, 8], [9, 2], [4]], 12)


def test_leave_one_out_is_exactly_the_readme_protocol():
    split = leave_one_out_split(_loo_data(), dataset="toy")
    assert split.train is split.train_final
    # training data i1..i(n-2)
    assert [s.tolist() for s in split.train.sequences] == [[1, 2, 3], [6], [], []]
    assert split.train.matrix.toarray()[0].nonzero()[0].tolist() == [1, 2, 3]
    # validation: target i(n-1), history i1..i(n-2)
    assert split.valid.users.tolist() == [0, 1, 2]
    assert [t.tolist() for t in split.valid.targets] == [[4], [7], [9]]
    assert [h.tolist() for h in split.valid.histories] == [[1, 2, 3], [6], []]
    # test: target i(n), history i1..i(n-1); EVERY user is a test case
    assert split.test.users.tolist() == [0, 1, 2, 3]
    assert [t.tolist() for t in split.test.targets] == [[5], [8], [2], [4]]
    assert [h.tolist() for h in split.test.histories] == [[1, 2, 3, 4], [6, 7], [9], []]
    assert split.test.exclude is None  # history items are what gets excluded
    assert split.test.n_train.tolist() == [3, 1, 0, 0]


def test_leave_one_out_never_leaks_the_test_item():
    # given: every user's last two items (validation, test) are unique to that user
    rng = np.random.default_rng(3)
    n_users, shared = 50, 30
    seqs = [
        list(rng.choice(shared, 6, replace=False)) + [shared + n_users + u, shared + u]
        for u in range(n_users)
    ]
    data = InteractionData.from_sequences(seqs, shared + 2 * n_users)
    # when
    split = leave_one_out_split(data)
    # then: the test items are not in the training matrix, the sequences, the validation cases, or any
    # history that is filtered out of the rankings
    test_items = np.arange(shared, shared + n_users)
    assert split.train_final.matrix[:, test_items].nnz == 0
    assert not np.isin(np.concatenate(split.train_final.sequences), test_items).any()
    assert not np.isin(np.concatenate(split.valid.histories), test_items).any()
    assert not np.isin(np.concatenate(split.valid.targets), test_items).any()
    for h, ex, t in zip(split.test.histories, split.test.excluded, split.test.targets):
        assert t[0] not in h and t[0] not in ex
    # and the validation targets are not in the training data either (they are only in test histories)
    valid_items = np.arange(shared + n_users, shared + 2 * n_users)
    assert split.train.matrix[:, valid_items].nnz == 0
    assert np.concatenate(split.valid.targets).tolist() == valid_items.tolist()
    assert all(h[-1] == v for h, v in zip(split.test.histories, valid_items))


def test_temporal_global_split():
    # sorted times 1..10: test cut = 70% quantile = 7.3, validation cut = 50% quantile = 5.5
    seqs = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 0]]
    times = [[1, 2, 3, 8, 9], [4, 5, 6, 7, 10]]
    data = InteractionData.from_sequences(seqs, 10, timestamps=times)
    split = temporal_split(data, test_fraction=0.3, valid_fraction=0.2)
    # train_final: everything strictly before 7.3; test targets: later items not in the history
    assert [s.tolist() for s in split.train_final.sequences] == [[0, 1, 2], [5, 6, 7, 8]]
    assert split.test.users.tolist() == [0, 1]
    assert [t.tolist() for t in split.test.targets] == [[3, 4], [0]]
    assert [h.tolist() for h in split.test.histories] == [[0, 1, 2], [5, 6, 7, 8]]
    # tuning model: before 5.5; validation targets in [5.5, 7.3)
    assert [s.tolist() for s in split.train.sequences] == [[0, 1, 2], [5, 6]]
    assert split.valid.users.tolist() == [1]
    assert [t.tolist() for t in split.valid.targets] == [[7, 8]]
    assert split.protocol == "temporal_global"


def test_temporal_targets_are_after_the_cut_and_not_in_history():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 30, 12) for _ in range(40)]
    times = [np.sort(rng.uniform(0, 100, 12)) for _ in range(40)]
    data = InteractionData.from_sequences(seqs, 30, timestamps=times)
    split = temporal_split(data, test_fraction=0.2, valid_fraction=0.1)
    t_test = np.quantile(np.concatenate(times), 0.8)
    for h, t, u in zip(split.test.histories, split.test.targets, split.test.users):
        later = seqs[u][times[u] >= t_test]
        assert set(t.tolist()) == set(later.tolist()) - set(h.tolist())
        assert np.all(np.asarray(split.train_final.timestamps[u]) < t_test)
        assert not np.isin(t, split.train_final.sequences[u]).any()
    # the tuning model never sees validation or test periods
    t_valid = np.quantile(np.concatenate(times), 0.7)
    assert all(np.all(np.asarray(t) < t_valid) for t in split.train.timestamps)


def test_temporal_per_user_split():
    seqs = [list(range(10)), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]]
    times = [list(range(10)), list(range(100, 110))]
    data = InteractionData.from_sequences(seqs, 20, timestamps=times)
    split = temporal_split(data, mode="user", test_fraction=0.2, valid_fraction=0.1)
    assert [t.tolist() for t in split.test.targets] == [[8, 9], [18, 19]]
    assert [t.tolist() for t in split.valid.targets] == [[7], [17]]
    assert [s.tolist() for s in split.train.sequences] == [list(range(7)), list(range(10, 17))]


def test_temporal_needs_timestamps_and_sane_fractions():
    data = InteractionData.from_sequences([[1, 2, 3]], 4)
    with pytest.raises(ValueError, match="timestamps"):
        temporal_split(data)
    timed = InteractionData.from_sequences([[1, 2, 3]], 4, timestamps=[[1, 2, 3]])
    with pytest.raises(ValueError):
        temporal_split(timed, test_fraction=0.9, valid_fraction=0.2)
    with pytest.raises(ValueError):
        temporal_split(timed, mode="weekly")


def test_session_next_click_split():
    train_sessions = [np.array([0, 1, 2]), np.array([1, 2]), np.array([3, 4, 3]), np.array([0, 4])]
    data = InteractionData.from_sequences(
        train_sessions,
        6,
        timestamps=[np.arange(len(s)) + 10 * i for i, s in enumerate(train_sessions)],
        user_ids=np.array(["a", "b", "c", "d"]),
        sessions=train_sessions,
    )
    ds = Dataset(
        name="clicks",
        format="session",
        data=data,
        test_sessions=[np.array([5, 1, 5])],
        test_session_ids=np.array(["t1"]),
    )
    split = session_next_click_split(ds, valid_fraction=0.25)
    # the latest training session is validation only; the final model trains on all of them
    assert split.train.n_users == 3 and split.train_final.n_users == 4
    assert [h.tolist() for h in split.valid.histories] == [[0]]
    assert [t.tolist() for t in split.valid.targets] == [[4]]
    assert [h.tolist() for h in split.test.histories] == [[5], [5, 1]]
    assert [t.tolist() for t in split.test.targets] == [[1], [5]]
    assert split.test.case_ids.tolist() == ["t1:1", "t1:2"]
    assert all(len(e) == 0 for e in split.test.excluded)  # repeat clicks may be recommended
    assert (split.test.users == -1).all()
    assert split_default(ds).protocol == "session_next_click"
    with pytest.raises(ValueError, match="test sessions"):
        session_next_click_split(Dataset(name="x", format="session", data=data))


def test_eval_set_subset_keeps_alignment():
    split = leave_one_out_split(_loo_data())
    sub = split.test.subset(np.array([2, 0]))
    assert sub.users.tolist() == [2, 0]
    assert [t.tolist() for t in sub.targets] == [[2], [5]]
    assert sub.case_ids.tolist() == ["2", "0"]

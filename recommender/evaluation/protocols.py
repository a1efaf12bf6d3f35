"""Evaluation protocols: how a dataset is cut into training data, validation cases and test cases.

Pure Python; no Django. Every protocol returns a `Split`:

* `train`       -- what engines are fitted on while tuning hyperparameters on `valid`;
* `valid`       -- validation cases (tuning only);
* `train_final` -- what the engine that is scored on `test` is fitted on (the same object as `train` when
                   the protocol trains once, e.g. leave-one-out);
* `test`        -- test cases. No test target is ever inside `train_final` or inside a case's history.

Protocols
---------
* `leave_one_out_split` -- exactly ../shared/datasets/README.md: for each user i1..in, training data
  i1..i(n-2); validation target i(n-1) with history i1..i(n-2); test target in with history i1..i(n-1);
  all items ranked, history items excluded, every user is a test case.
* `temporal_split` -- for event logs with timestamps. mode="global": one global time cut (quantiles of
  all interaction times); the users' interactions after the cut are their test targets, history = all
  their earlier interactions. mode="user": each user's own last `test_fraction` of interactions are the
  test targets (RecBole's "temporal order" split). Validation is the slice just before test.
* `session_next_click_split` -- anonymous sessions: for each test session and each prefix s1..sj, predict
  s(j+1). Validation uses the latest `valid_fraction` of the training sessions with a model fitted on the
  earlier ones; the test model is fitted on all training sessions. By default items already clicked in the
  session are NOT excluded (repeat clicks are real next clicks in click logs; session-rec does the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from recommender.engines.base import InteractionData

from .importers import Dataset


@dataclass(frozen=True)
class EvalSet:
    """Evaluation cases.

    histories:  per case, item indices known at prediction time (time order)
    targets:    per case, the relevant item indices (leave-one-out: one)
    users:      per case, the user's row in the training data, or -1 (anonymous / unseen)
    case_ids:   per case, the external id written to prediction files (the dataset's user id, or
                ``session_id:prefix_length`` for session prefixes)
    exclude:    per case, items that may not be recommended (None: the history itself)
    groups:     optional per-case labels for fairness slices, e.g. {"gender": array of "M"/"F"}
    n_train:    per case, how many training interactions the model saw for that user (cold-user slice)
    """

    histories: list[np.ndarray]
    targets: list[np.ndarray]
    users: np.ndarray
    case_ids: np.ndarray
    n_train: np.ndarray
    exclude: list[np.ndarray] | None = None
    groups: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.histories)

    @property
    def excluded(self) -> list[np.ndarray]:
        return self.histories if self.exclude is None else self.exclude

    def subset(self, idx: np.ndarray) -> EvalSet:
        """The cases at positions `idx` (e.g. a random sample for quicker tuning)."""
        idx = np.asarray(idx, dtype=np.int64)
        return EvalSet(
            histories=[self.histories[i] for i in idx],
            targets=[self.targets[i] for i in idx],
            users=self.users[idx],
            case_ids=self.case_ids[idx],
            n_train=self.n_train[idx],
            exclude=None if self.exclude is None else [self.exclude[i] for i in idx],
            groups={k: v[idx] for k, v in self.groups.items()},
        )


@dataclass(frozen=True)
class Split:
    protocol: str
    dataset: str
    train: InteractionData
    valid: EvalSet
    train_final: InteractionData
    test: EvalSet
    notes: str = ""

    @property
    def n_items(self) -> int:
        return self.train.n_items


def _subset_data(data: InteractionData, seqs: Sequence[np.ndarray], times: Sequence[np.ndarray] | None):
    """`data` with new per-user sequences (same users, items, features) and a matrix rebuilt from them."""
    built = InteractionData.from_sequences(
        seqs,
        data.n_items,
        timestamps=times,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        item_features=data.item_features,
        user_groups=data.user_groups,
    )
    return built


def _user_groups_for(data: InteractionData, users: np.ndarray) -> dict[str, np.ndarray]:
    if not data.user_groups:
        return {}
    return {k: np.asarray(v)[users] for k, v in data.user_groups.items()}


def leave_one_out_split(data: InteractionData, *, dataset: str = "") -> Split:
    """Leave-one-out full ranking exactly as in ../shared/datasets/README.md (see module docstring).

    Users with fewer than 3 interactions still count as test cases (with shorter histories); a user with
    one interaction is a test case with an empty history and no validation case.
    """
    seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
    times = data.timestamps
    train_seqs = [s[: max(len(s) - 2, 0)] for s in seqs]
    train_times = None if times is None else [np.asarray(t)[: max(len(t) - 2, 0)] for t in times]
    train = _subset_data(data, train_seqs, train_times)

    n_users = len(seqs)
    users = np.arange(n_users)
    n_train = np.asarray([len(s) for s in train_seqs], dtype=np.int64)
    has_valid = np.asarray([len(s) >= 2 for s in seqs])
    vu = users[has_valid]
    valid = EvalSet(
        histories=[seqs[u][: len(seqs[u]) - 2] for u in vu],
        targets=[seqs[u][len(seqs[u]) - 2 : len(seqs[u]) - 1] for u in vu],
        users=vu,
        case_ids=np.asarray(data.user_ids)[vu].astype(str),
        n_train=n_train[vu],
        groups=_user_groups_for(data, vu),
    )
    has_test = np.asarray([len(s) >= 1 for s in seqs])
    tu = users[has_test]
    test = EvalSet(
        histories=[seqs[u][:-1] for u in tu],
        targets=[seqs[u][-1:] for u in tu],
        users=tu,
        case_ids=np.asarray(data.user_ids)[tu].astype(str),
        n_train=n_train[tu],
        groups=_user_groups_for(data, tu),
    )
    return Split(
        protocol="leave_one_out",
        dataset=dataset,
        train=train,
        valid=valid,
        train_final=train,
        test=test,
        notes="train i1..i(n-2); valid target i(n-1); test target i(n) with history i1..i(n-1); all items ranked",
    )


def _targets_without_history(future: np.ndarray, history: np.ndarray) -> np.ndarray:
    """Distinct future items, first-occurrence order, minus items already in the history."""
    _, first = np.unique(future, return_index=True)
    uniq = future[np.sort(first)]
    return uniq[~np.isin(uniq, history)]


def temporal_split(
    data: InteractionData,
    *,
    mode: str = "global",
    test_fraction: float = 0.2,
    valid_fraction: float = 0.1,
    min_history: int = 1,
    dataset: str = "",
) -> Split:
    """Temporal split of a timestamped event log (see module docstring).

    Targets are the distinct items the user interacted with in the later period that are not already in
    their history (those could never be recommended). Users with no such item, or with fewer than
    `min_history` earlier interactions, are not cases.
    """
    if data.timestamps is None:
        raise ValueError("temporal_split needs timestamps; use leave_one_out_split for plain sequences")
    if mode not in ("global", "user"):
        raise ValueError("mode must be 'global' or 'user'")
    if not (0 < test_fraction < 1 and 0 <= valid_fraction < 1 and test_fraction + valid_fraction < 1):
        raise ValueError("need 0 < test_fraction, 0 <= valid_fraction, test_fraction + valid_fraction < 1")
    seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
    times = [np.asarray(t, dtype=np.float64) for t in data.timestamps]

    if mode == "global":
        all_t = np.concatenate(times) if times else np.zeros(0)
        t_test = np.quantile(all_t, 1 - test_fraction)
        t_valid = np.quantile(all_t, 1 - test_fraction - valid_fraction)
        # interactions strictly before the cut are "past"; sequences are time-sorted so cuts are prefixes
        cut_test = [int(np.searchsorted(t, t_test, side="left")) for t in times]
        cut_valid = [int(np.searchsorted(t, t_valid, side="left")) for t in times]
    else:
        cut_test, cut_valid = [], []
        for s in seqs:
            n = len(s)
            n_test = int(np.ceil(test_fraction * n)) if n >= 3 else 0
            n_valid = int(np.ceil(valid_fraction * n)) if n - n_test >= 3 and valid_fraction > 0 else 0
            cut_test.append(n - n_test)
            cut_valid.append(n - n_test - n_valid)

    train = _subset_data(
        data, [s[:c] for s, c in zip(seqs, cut_valid)], [t[:c] for t, c in zip(times, cut_valid)]
    )
    train_final = _subset_data(
        data, [s[:c] for s, c in zip(seqs, cut_test)], [t[:c] for t, c in zip(times, cut_test)]
    )

    def cases(lo: list[int], hi: list[int | None], n_known: list[int]) -> EvalSet:
        hist, targ, us = [], [], []
        for u, s in enumerate(seqs):
            h = s[: lo[u]]
            if len(h) < min_history:
                continue
            future = s[lo[u] : hi[u]]
            t = _targets_without_history(future, h)
            if len(t):
                hist.append(h)
                targ.append(t)
                us.append(u)
        ua = np.asarray(us, dtype=np.int64)
        return EvalSet(
            histories=hist,
            targets=targ,
            users=ua,
            case_ids=np.asarray(data.user_ids)[ua].astype(str) if len(ua) else np.zeros(0, dtype=str),
            n_train=np.asarray([n_known[u] for u in us], dtype=np.int64),
            groups=_user_groups_for(data, ua),
        )

    valid = cases(cut_valid, cut_test, cut_valid)
    test = cases(cut_test, [None] * len(seqs), cut_test)
    return Split(
        protocol=f"temporal_{mode}",
        dataset=dataset,
        train=train,
        valid=valid,
        train_final=train_final,
        test=test,
        notes=(
            f"{'global time cut' if mode == 'global' else 'per-user time order'}: last {test_fraction:.0%} "
            f"test, previous {valid_fraction:.0%} validation; targets = later distinct items not in the history"
        ),
    )


def _prefix_cases(
    sessions: Sequence[np.ndarray], session_ids: Sequence[str], exclude_history: bool, max_prefix: int | None
) -> EvalSet:
    hist, targ, ids = [], [], []
    for sid, s in zip(session_ids, sessions):
        for j in range(1, len(s)):
            h = s[max(0, j - max_prefix) if max_prefix else 0 : j]
            hist.append(h)
            targ.append(s[j : j + 1])
            ids.append(f"{sid}:{j}")
    n = len(hist)
    empty = np.zeros(0, dtype=np.int64)
    return EvalSet(
        histories=hist,
        targets=targ,
        users=np.full(n, -1, dtype=np.int64),
        case_ids=np.asarray(ids, dtype=str) if ids else np.zeros(0, dtype=str),
        n_train=np.asarray([len(h) for h in hist], dtype=np.int64),
        exclude=None if exclude_history else [empty] * n,
    )


def session_next_click_split(
    dataset: Dataset,
    *,
    valid_fraction: float = 0.1,
    exclude_history: bool = False,
    max_prefix: int | None = None,
) -> Split:
    """Session-based next-click protocol (see module docstring). Needs `dataset.test_sessions`."""
    data = dataset.data
    if dataset.test_sessions is None:
        raise ValueError("session_next_click_split needs held-out test sessions (a *_test.txt file)")
    seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
    times = data.timestamps
    n = len(seqs)
    n_valid = int(round(valid_fraction * n))
    cut = n - n_valid  # the importer orders sessions by start time, so the tail is the latest
    tr_seqs = seqs[:cut]
    train = InteractionData.from_sequences(
        tr_seqs,
        data.n_items,
        timestamps=None if times is None else list(times[:cut]),
        user_ids=np.asarray(data.user_ids)[:cut],
        item_ids=data.item_ids,
        item_features=data.item_features,
        sessions=tr_seqs,
    )
    valid = _prefix_cases(
        seqs[cut:], np.asarray(data.user_ids)[cut:].astype(str), exclude_history, max_prefix
    )
    test = _prefix_cases(
        dataset.test_sessions, np.asarray(dataset.test_session_ids).astype(str), exclude_history, max_prefix
    )
    train_final = data if data.sessions is not None else replace(data, sessions=seqs)
    return Split(
        protocol="session_next_click",
        dataset=dataset.name,
        train=train,
        valid=valid,
        train_final=train_final,
        test=test,
        notes="each test-session prefix predicts the next click; "
        + ("clicked items excluded" if exclude_history else "repeat clicks allowed (history not excluded)"),
    )


def split_default(dataset: Dataset) -> Split:
    """The protocol each format is evaluated with by default: seq/recbole -> leave-one-out,
    session -> next-click, db (event logs) -> global temporal split."""
    if dataset.format == "session":
        return session_next_click_split(dataset)
    if dataset.format == "db":
        return temporal_split(dataset.data, mode="global", dataset=dataset.name)
    return leave_one_out_split(dataset.data, dataset=dataset.name)

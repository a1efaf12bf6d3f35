"""The one engine interface, and the data every engine trains on.

Pure Python (numpy/scipy; torch only inside torch engines). No Django imports anywhere under
`recommender/engines/`.

Conventions
-----------
* Items and users are *internal indices*: items 0..n_items-1, users 0..n_users-1. `InteractionData`
  carries the maps back to external ids (`item_ids[i]`, `user_ids[u]`).
* A *history* is a 1-D int array of item indices in time order (oldest first). Engines recommend from
  histories, so anonymous shoppers (a session's clicks) and users unseen at training time are served
  by the same call. Engines that learned per-user state (ALS) may use `users` when given.
* `recommend` returns `(ids, scores)`, both shaped (n_histories, k), best first; ids are item indices,
  -1 padded (score -inf) when fewer than k items can be returned. Items in `exclude[i]` (by default
  the history itself) never appear in row i.
* `save(path)` writes ONE file at `path` (the model registry stores it as a Django FileField);
  `Engine.load(path)` restores an engine whose `recommend`/`similar_items` give identical scores.
* `param_grid` (class attribute, optional) lists a small hyperparameter grid to tune on validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class ItemFeatures:
    """Side information per item index. Every field is optional; lengths equal n_items when present."""

    texts: Sequence[str] | None = None  # title + description, for TF-IDF / sentence embeddings
    attributes: sp.csr_matrix | None = None  # (n_items, n_attributes) binary, e.g. category/brand ids
    category: np.ndarray | None = None  # (n_items,) int category index, -1 unknown
    brand: np.ndarray | None = None  # (n_items,) int brand index, -1 unknown
    price: np.ndarray | None = None  # (n_items,) float, nan unknown
    created: np.ndarray | None = None  # (n_items,) float unix seconds, nan unknown


@dataclass(frozen=True)
class InteractionData:
    """Training data for engines.

    matrix:     (n_users, n_items) CSR of implicit-feedback weights (e.g. 1 per interaction, or weighted
                by event type); duplicates summed.
    sequences:  per user, item indices in time order (with repeats), used by sequential engines.
    timestamps: per user, unix seconds aligned with `sequences` (optional).
    sessions:   optional list of item-index arrays, one per anonymous/shopping session (session engines).
    """

    matrix: sp.csr_matrix
    sequences: Sequence[np.ndarray]
    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: Sequence[np.ndarray] | None = None
    sessions: Sequence[np.ndarray] | None = None
    item_features: ItemFeatures = field(default_factory=ItemFeatures)
    user_groups: dict[str, np.ndarray] | None = None  # e.g. {"gender": (n_users,) labels}

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[Sequence[int]],
        n_items: int,
        *,
        timestamps: Sequence[Sequence[float]] | None = None,
        user_ids: np.ndarray | None = None,
        item_ids: np.ndarray | None = None,
        item_features: ItemFeatures | None = None,
        sessions: Sequence[np.ndarray] | None = None,
        user_groups: dict[str, np.ndarray] | None = None,
    ) -> InteractionData:
        """Build from per-user item-index sequences; the matrix is binary (1 if the user touched the item)."""
        seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
        rows = np.repeat(np.arange(len(seqs)), [len(s) for s in seqs])
        cols = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
        m = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(seqs), n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return cls(
            matrix=m,
            sequences=seqs,
            user_ids=np.arange(len(seqs)) if user_ids is None else user_ids,
            item_ids=np.arange(n_items) if item_ids is None else item_ids,
            timestamps=None if timestamps is None else [np.asarray(t, dtype=np.float64) for t in timestamps],
            sessions=sessions,
            item_features=item_features or ItemFeatures(),
            user_groups=user_groups,
        )


@runtime_checkable
class Engine(Protocol):
    """What every engine implements. Hyperparameters are constructor keyword arguments with defaults."""

    name: ClassVar[str]

    def fit(self, data: InteractionData) -> Engine: ...

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def similar_items(self, item_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Engine: ...

    def get_params(self) -> dict[str, Any]: ...


def top_k(
    scores: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k per row of a dense (n, n_items) score matrix, best first, masking `exclude[i]` in row i.

    Returns (ids, scores) shaped (n, k); when a row has fewer than k allowed items the tail is
    padded with id -1 and score -inf. `scores` is modified in place (masked to -inf).
    """
    scores = np.asarray(scores, dtype=np.float32)
    n, n_items = scores.shape
    if exclude is not None:
        for i, ex in enumerate(exclude):
            if len(ex):
                scores[i, np.asarray(ex, dtype=np.int64)] = -np.inf
    kk = min(k, n_items)
    if kk <= 0:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(part_scores, order, axis=1)
    ids[~np.isfinite(vals)] = -1
    if kk < k:
        ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return ids, vals


def default_exclude(
    histories: Sequence[np.ndarray], exclude: Sequence[np.ndarray] | None
) -> Sequence[np.ndarray]:
    """`exclude` if given, else each history itself (already-seen items are not recommended)."""
    return histories if exclude is None else exclude


def histories_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """(n, n_items) binary CSR of the items in each history (unknown indices >= n_items dropped)."""
    rows, cols = [], []
    for i, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)
        h = h[(h >= 0) & (h < n_items)]
        rows.append(np.full(len(h), i))
        cols.append(h)
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    m = sp.csr_matrix((np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(histories), n_items))
    m.sum_duplicates()
    if m.nnz:
        m.data[:] = 1.0
    return m

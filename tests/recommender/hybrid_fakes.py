"""Tiny deterministic base engines for the hybrid's tests (registered under `fake_*` names by fixtures).

They implement the engine interface with a few lines of numpy so the hybrid tests do not depend on the
real engines' speed or randomness.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recommender.engines.base import InteractionData, default_exclude, top_k

# Every fit call of a spy engine: the sequences it saw (for the no-leakage test).
FIT_LOG: list[list[np.ndarray]] = []


class _Base:
    name: ClassVar[str] = "fake"

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.table: np.ndarray | None = None

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def _scores(self, histories) -> np.ndarray:
        raise NotImplementedError

    def recommend(self, histories, k, exclude=None, users=None):
        scores = self._scores(histories)
        return top_k(scores, k, default_exclude(histories, exclude))

    def similar_items(self, item_ids, k):
        raise NotImplementedError

    def save(self, path: Path) -> None:
        Path(path).write_bytes(pickle.dumps((self.params, self.table)))

    @classmethod
    def load(cls, path: Path):
        params, table = pickle.loads(Path(path).read_bytes())
        eng = cls(**params)
        eng.table = table
        return eng


class FakePop(_Base):
    """Scores = training popularity (+ a tiny index tie-break)."""

    name = "fake_pop"

    def fit(self, data: InteractionData):
        FIT_LOG.append([np.asarray(s).copy() for s in data.sequences])
        pop = np.asarray(data.matrix.sum(axis=0)).ravel().astype(np.float64)
        self.table = pop + 1e-6 * np.arange(data.n_items)[::-1]
        return self

    def _scores(self, histories):
        return np.tile(self.table, (len(histories), 1)).astype(np.float32)


class FakeCooc(_Base):
    """Item-item co-occurrence (users' item sets) summed over the history."""

    name = "fake_cooc"

    def fit(self, data: InteractionData):
        FIT_LOG.append([np.asarray(s).copy() for s in data.sequences])
        x = (data.matrix > 0).astype(np.float64)
        c = (x.T @ x).toarray()
        np.fill_diagonal(c, 0.0)
        self.table = c
        return self

    def _scores(self, histories):
        out = np.zeros((len(histories), self.table.shape[0]), dtype=np.float32)
        for i, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64)
            if len(h):
                out[i] = self.table[h].sum(axis=0)
        return out

    def similar_items(self, item_ids, k):
        scores = self.table[np.asarray(item_ids)].astype(np.float32)
        return top_k(scores, k, [np.array([i]) for i in item_ids])

"""EASE: Embarrassingly Shallow Autoencoder (Steck, WWW 2019), closed form. Pure numpy/scipy; no Django.

    G = X^T X + l2 * I            (n_items, n_items) Gram matrix of the binary user-item matrix X
    P = G^-1
    B = I - P * diag(1 / diag(P))  i.e. B[i, j] = -P[i, j] / P[j, j], B[j, j] = 0
    score(history) = x_history @ B

Cost: one dense symmetric inverse (Cholesky, LAPACK potrf/potri) of an n_items x n_items matrix:
O(n_items^3) time, n_items^2 floats of memory (12k items: ~0.6 GB in float32).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.linalg.lapack as lapack
import scipy.sparse as sp

from ._common import state_load, state_save, weighted_histories
from .base import InteractionData, default_exclude, top_k


class EASEEngine:
    """Closed-form linear item-item model.

    Hyperparameters [defaults]
    --------------------------
    l2 [200.0]            -- ridge regularisation lambda added to the Gram diagonal; tuned on validation over
                             `param_grid` (larger -> more popularity-smoothed, smaller -> more specific).
    history_decay [1.0]   -- weight of history item j = history_decay ** (steps from the latest item);
                             1.0 is the paper's binary input, < 1 emphasises recent items.
    dtype ["float32"]     -- precision of the dense solve ("float64" doubles memory and time).
    """

    name: ClassVar[str] = "ease"
    # l2 outermost so consecutive grid points share one solve (see `_last_solve`)
    param_grid: ClassVar[dict[str, list[Any]]] = {"l2": [20.0, 60.0, 200.0], "history_decay": [1.0, 0.85]}
    # One-entry cache of the last solve: tuning `history_decay` for a fixed l2 reuses B instead of
    # re-inverting. Holds a strong reference to the training matrix so the key cannot be recycled.
    _last_solve: ClassVar[tuple[Any, ...] | None] = None

    def __init__(self, *, l2: float = 200.0, history_decay: float = 1.0, dtype: str = "float32") -> None:
        if l2 <= 0:
            raise ValueError("l2 must be positive")
        if not 0.0 < history_decay <= 1.0:
            raise ValueError("history_decay must be in (0, 1]")
        if dtype not in ("float32", "float64"):
            raise ValueError("dtype must be 'float32' or 'float64'")
        self.l2 = float(l2)
        self.history_decay = float(history_decay)
        self.dtype = dtype
        self.B_: np.ndarray | None = None  # (n_items, n_items)
        self.fit_seconds_: float | None = None

    def get_params(self) -> dict[str, Any]:
        return {"l2": self.l2, "history_decay": self.history_decay, "dtype": self.dtype}

    @classmethod
    def cache_clear(cls) -> None:
        """Drop the cached last solve (frees n_items^2 floats)."""
        EASEEngine._last_solve = None

    def fit(self, data: InteractionData) -> EASEEngine:
        cached = EASEEngine._last_solve
        if cached is not None and cached[0] is data.matrix and cached[1] == (self.l2, self.dtype):
            self.B_ = cached[2]  # read-only use: scoring never writes into B
            self.fit_seconds_ = cached[3]  # what the solve really cost (reported by the evaluation runner)
            return self
        EASEEngine._last_solve = None
        t0 = time.perf_counter()
        self.B_ = self._solve(data)
        self.fit_seconds_ = time.perf_counter() - t0
        EASEEngine._last_solve = (data.matrix, (self.l2, self.dtype), self.B_, self.fit_seconds_)
        return self

    def _solve(self, data: InteractionData) -> np.ndarray:
        x = sp.csr_matrix(data.matrix, dtype=np.float64)
        x.data[:] = 1.0
        g = (x.T @ x).toarray().astype(self.dtype)
        g[np.diag_indices_from(g)] += self.l2
        potrf, potri = (
            (lapack.spotrf, lapack.spotri) if self.dtype == "float32" else (lapack.dpotrf, lapack.dpotri)
        )
        c, info = potrf(g, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE: Cholesky failed (info={info}); increase l2")
        p, info = potri(c, lower=False, overwrite_c=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE: inverse failed (info={info})")
        # potri fills the upper triangle only; mirror it (P is symmetric)
        p = np.triu(p) + np.triu(p, 1).T
        diag = np.diag(p).copy()
        p /= -diag[None, :]
        p[np.diag_indices_from(p)] = 0.0
        return p

    def _check(self) -> None:
        if self.B_ is None:
            raise RuntimeError("engine is not fitted; call fit() or load() first")

    def score(self, histories: Sequence[np.ndarray], users: np.ndarray | None = None) -> np.ndarray:
        """(n, n_items) scores = weighted history bag @ B."""
        self._check()
        h = weighted_histories(histories, self.B_.shape[0], self.history_decay).astype(self.B_.dtype)
        return np.asarray(h @ self.B_, dtype=np.float32)

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return top_k(self.score(histories, users), k, default_exclude(histories, exclude))

    def similar_items(self, item_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Items with the largest weight from each item (row of B), never the item itself."""
        self._check()
        item_ids = np.asarray(item_ids, dtype=np.int64)
        s = np.array(self.B_[item_ids], dtype=np.float32)
        return top_k(s, k, [np.asarray([i]) for i in item_ids])

    def save(self, path: Path) -> None:
        self._check()
        state_save(path, params=self.get_params(), arrays={"B": self.B_})

    @classmethod
    def load(cls, path: Path) -> EASEEngine:
        params, arrays = state_load(path)
        eng = cls(**params)
        eng.B_ = arrays["B"]
        return eng

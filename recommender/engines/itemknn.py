"""Item-to-item neighbourhood engine (co-occurrence / cosine), also "frequently bought together" and
"viewed also viewed". Pure numpy/scipy; no Django imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ._common import rows_top_n, state_load, state_save, weighted_histories
from .base import InteractionData, default_exclude, top_k

MODES = ("users", "sequence", "sessions")


class ItemKNNEngine:
    """Item-item similarity from co-occurrence, kept as the top-`neighbors` per item (sparse).

    The co-occurrence C[a, b] depends on `mode`:
      "users"    -- a and b were both touched by the same user (X^T X of the binary user-item matrix).
                    On view events this is "viewed also viewed".
      "sequence" -- b came within `window` steps AFTER a in a user's sequence (weight 1 / distance), plus
                    `backward` times the same for b BEFORE a: a directed, order-aware neighbourhood
                    ("what comes next after a"), strong on sequential shopping data.
      "sessions" -- a and b occur in the same order / session (`InteractionData.sessions`): "frequently
                    bought together" when sessions are orders.
    Similarity: sim[a, b] = C[a, b] / (n_a ** alpha * n_b ** (1 - alpha) + shrink), n = item counts.
    alpha = 0.5 is cosine; alpha -> 1 is the conditional probability P(b | a).
    A history h_1..h_m scores items by sum_j w_j * sim[h_j, :] with w_j = history_decay ** (m - j), so
    history_decay < 1 weights recent items more (1.0: plain bag of items).

    self_weight adds self_weight * w_j to the history items' own scores: in click logs people re-click what
    they just viewed (repeat clicks are valid next clicks there); with the usual exclusion of history items
    (leave-one-out) it changes nothing.

    Hyperparameters [defaults]: mode ["users"], neighbors [100], shrink [10.0], alpha [0.5], window [3],
    backward [0.5], history_decay [1.0], self_weight [0.0].
    `similar_items` returns each item's nearest neighbours (most similar first).
    """

    name: ClassVar[str] = "itemknn"
    # Sequence points were chosen on Amazon Beauty *validation* cases (never test); the "users" points cover
    # order-free data; the self_weight points matter only where repeats are allowed (click sessions).
    _SEQ_A: ClassVar[dict[str, Any]] = {
        "mode": "sequence",
        "history_decay": 0.5,
        "alpha": 0.9,
        "window": 8,
        "backward": 0.25,
        "shrink": 30.0,
    }
    _SEQ_B: ClassVar[dict[str, Any]] = {"mode": "sequence", "history_decay": 0.4, "alpha": 0.75, "window": 3}
    param_grid: ClassVar[list[dict[str, Any]]] = [
        {"mode": "users", "history_decay": 1.0},
        {"mode": "users", "history_decay": 0.7},
        _SEQ_A,
        {**_SEQ_A, "history_decay": 0.4, "window": 5},
        {**_SEQ_B, "self_weight": 0.5},
        {**_SEQ_A, "self_weight": 0.5},
    ]

    def __init__(
        self,
        *,
        mode: str = "users",
        neighbors: int = 100,
        shrink: float = 10.0,
        alpha: float = 0.5,
        window: int = 3,
        backward: float = 0.5,
        history_decay: float = 1.0,
        self_weight: float = 0.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if neighbors < 1 or window < 1:
            raise ValueError("neighbors and window must be >= 1")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must be in [0, 1]")
        if not 0.0 < history_decay <= 1.0:
            raise ValueError("history_decay must be in (0, 1]")
        self.mode = mode
        self.neighbors = int(neighbors)
        self.shrink = float(shrink)
        self.alpha = float(alpha)
        self.window = int(window)
        self.backward = float(backward)
        self.history_decay = float(history_decay)
        self.self_weight = float(self_weight)
        self.sim_: sp.csr_matrix | None = None  # (n_items, n_items), row a = neighbours of a

    def get_params(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "neighbors": self.neighbors,
            "shrink": self.shrink,
            "alpha": self.alpha,
            "window": self.window,
            "backward": self.backward,
            "history_decay": self.history_decay,
            "self_weight": self.self_weight,
        }

    # ------------------------------------------------------------------------------------------ fit

    def _sequence_cooccurrence(self, seqs: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for s in seqs:
            s = np.asarray(s, dtype=np.int64)
            for d in range(1, self.window + 1):
                if len(s) <= d:
                    break
                a, b = s[:-d], s[d:]
                keep = a != b
                rows.append(a[keep])
                cols.append(b[keep])
                vals.append(np.full(int(keep.sum()), 1.0 / d))
                if self.backward > 0:
                    rows.append(b[keep])
                    cols.append(a[keep])
                    vals.append(np.full(int(keep.sum()), self.backward / d))
        if not rows:
            return sp.csr_matrix((n_items, n_items), dtype=np.float64)
        c = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items)
        )
        c.sum_duplicates()
        return c

    @staticmethod
    def _bag_cooccurrence(x: sp.csr_matrix) -> sp.csr_matrix:
        x = sp.csr_matrix(x, dtype=np.float64)
        x.data[:] = 1.0
        c = sp.csr_matrix(x.T @ x)
        c.setdiag(0.0)
        c.eliminate_zeros()
        return c

    def fit(self, data: InteractionData) -> ItemKNNEngine:
        n_items = data.n_items
        if self.mode == "users":
            x = data.matrix
            c = self._bag_cooccurrence(x)
        elif self.mode == "sessions":
            if not data.sessions:
                raise ValueError(
                    "mode='sessions' needs InteractionData.sessions (orders / shopping sessions)"
                )
            from .base import histories_matrix

            x = histories_matrix(data.sessions, n_items)
            c = self._bag_cooccurrence(x)
        else:
            x = data.matrix
            c = self._sequence_cooccurrence(data.sequences, n_items)
        counts = np.bincount(sp.csr_matrix(x).indices, minlength=n_items).astype(np.float64)
        c = sp.csr_matrix(c)
        # sim = C / (n_a^alpha * n_b^(1-alpha) + shrink), computed on the nonzeros only
        rows = np.repeat(np.arange(n_items), np.diff(c.indptr))
        denom = (
            np.power(counts[rows], self.alpha) * np.power(counts[c.indices], 1.0 - self.alpha) + self.shrink
        )
        sim = sp.csr_matrix((c.data / np.maximum(denom, 1e-12), c.indices, c.indptr), shape=c.shape)
        self.sim_ = rows_top_n(sim, self.neighbors).astype(np.float32)
        return self

    # ------------------------------------------------------------------------------------ predict

    def _check(self) -> None:
        if self.sim_ is None:
            raise RuntimeError("engine is not fitted; call fit() or load() first")

    def score(self, histories: Sequence[np.ndarray], users: np.ndarray | None = None) -> np.ndarray:
        """(n, n_items) scores: decay-weighted sum of the history items' neighbour similarities."""
        self._check()
        h = weighted_histories(histories, self.sim_.shape[0], self.history_decay)
        s = (h @ self.sim_).toarray()
        if self.self_weight:
            s += self.self_weight * h.toarray()
        return np.asarray(s, dtype=np.float32)

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        s = self.score(histories, users)
        s[s <= 0] = -np.inf  # items with no co-occurrence at all are not recommendations
        return top_k(s, k, default_exclude(histories, exclude))

    def similar_items(self, item_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest neighbours of each item (most similar first, -1 padded), never the item itself."""
        self._check()
        item_ids = np.asarray(item_ids, dtype=np.int64)
        s = self.sim_[item_ids].toarray()
        s[s <= 0] = -np.inf
        return top_k(s, k, [np.asarray([i]) for i in item_ids])

    frequently_bought_together = similar_items  # with mode="sessions" (orders), the FBT list

    # --------------------------------------------------------------------------------- persistence

    def save(self, path: Path) -> None:
        self._check()
        state_save(path, params=self.get_params(), arrays={"sim": self.sim_})

    @classmethod
    def load(cls, path: Path) -> ItemKNNEngine:
        params, arrays = state_load(path)
        eng = cls(**params)
        eng.sim_ = arrays["sim"].astype(np.float32)
        return eng

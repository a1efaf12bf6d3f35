"""SASRec: a causal self-attention model over the user's item sequence (Kang & McAuley, ICDM 2018),
trained with cross-entropy over the whole catalogue (or over thousands of sampled negatives), which
is what makes it strong (Klenitskiy & Vasilev, RecSys 2023; Petrov & Macdonald, gSASRec 2023).

Pure torch; no Django imports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import InteractionData, default_exclude, top_k
from .torch_utils import (
    EarlyStopping,
    attributes_tensor,
    autocast,
    device_resolve,
    grad_scaler,
    holdout_split,
    left_pad,
    ndcg_at_k,
    seed_everything,
    state_dict_cpu,
    threads_configure,
    training_windows,
)

# ------------------------------------------------------------------------------------------ modules


class _Block(nn.Module):
    """Pre-LN transformer block: x + Drop(MHA(LN(x))), then x + Drop(FFN(LN(x)))."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (B, L, d); mask: (B, 1, L, L) bool, True = may attend
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0
        )  # (B, H, L, d/H)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.ln2(x)))


class SASRecNet(nn.Module):
    """Item sequence -> hidden state per position; logits = hidden @ item_table^T (weight tying).

    Shapes: seq (B, L) int64 with item index + 1 (0 = padding, left-padded); output (B, L, d).
    """

    def __init__(
        self,
        n_items: int,
        *,
        max_len: int,
        d: int,
        layers: int,
        heads: int,
        dropout: float,
        attr_table: np.ndarray | None,
        n_attrs: int,
    ) -> None:
        super().__init__()
        self.max_len = max_len
        self.d = d
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, d)
        self.emb_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([_Block(d, heads, 4 * d, dropout) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        if attr_table is not None:
            self.register_buffer("attr_table", torch.as_tensor(attr_table), persistent=True)
            self.attr_emb = nn.Embedding(n_attrs + 1, d, padding_idx=0)
        else:
            self.attr_table = None
            self.attr_emb = None
        nn.init.normal_(self.item_emb.weight, std=d**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def item_table(self) -> torch.Tensor:
        """(n_items + 1, d) item representations: id embedding (+ mean attribute embedding)."""
        e = self.item_emb.weight
        if self.attr_emb is not None:
            a = self.attr_emb(self.attr_table)  # (n+1, A, d)
            cnt = (self.attr_table > 0).sum(1, keepdim=True).clamp(min=1)
            e = e + a.sum(1) / cnt
        return e

    def forward(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        b, n = seq.shape
        table = self.item_table() if table is None else table
        pos = torch.arange(self.max_len - n, self.max_len, device=seq.device)
        x = table[seq] * math.sqrt(self.d) + self.pos_emb(pos)[None]
        valid = seq > 0
        x = self.emb_drop(x) * valid[..., None]
        # causal mask and no attention to padding keys; each position may always see itself, so that
        # padding queries never get an all-masked row (NaN).
        causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
        eye = torch.eye(n, dtype=torch.bool, device=seq.device)
        mask = (causal[None] & valid[:, None, :]) | eye[None]
        mask = mask[:, None]
        for blk in self.blocks:
            x = blk(x, mask)
        return self.ln(x)


# ------------------------------------------------------------------------------------------- engine


class SASRecEngine:
    """SASRec next-item recommender.

    Hyperparameters (constructor keywords, defaults tuned on the Amazon Beauty VALIDATION split):

    * ``hidden=64``            embedding / model width d.
    * ``layers=2``, ``heads=2`` transformer blocks (pre-LN, GELU FFN of width 4d), attention heads.
    * ``max_len=50``           the last 50 items of a history are used.
    * ``dropout=0.5``          embedding, attention, residual and FFN dropout (Beauty is sparse).
    * ``loss="ce"``            "ce": softmax cross-entropy over the whole catalogue at every prefix
      position; "sampled": softmax over the positive plus ``n_negatives`` uniformly sampled items shared
      by the batch (collisions with the positive masked), a fraction of the cost on large catalogues.
    * ``n_negatives=2000``     negatives per batch for ``loss="sampled"``.
    * ``use_attributes=True``  add the mean of the item's attribute embeddings (ItemFeatures.attributes,
      e.g. category/brand) to its id embedding, in input and output (tied) tables; ignored when absent.
    * ``lr=1e-3``, ``weight_decay=0.0``, ``batch_size=128`` AdamW.
    * ``epochs=200``, ``patience=10`` early stopping on validation NDCG@10 (best epoch restored).
    * ``val_fraction=0.1``, ``val_max_users=5000`` when ``fit`` gets no ``validation``, the last item of
      a random sample of users is held out of training and used for early stopping.
    * ``time_budget_s=None``   stop training after this many seconds (best epoch kept).
    * ``device="auto"``        CUDA when available (mixed precision there), else CPU.
    * ``num_threads=None``     CPU threads (default: min(cores, 4), or $TORCH_NUM_THREADS).
    * ``seed=0``               deterministic on CPU for a given seed and thread count.

    ``fit(data, validation=(histories, targets))`` uses the caller's validation split for early stopping.
    """

    name: ClassVar[str] = "sasrec"
    param_grid: ClassVar[dict[str, list[Any]]] = {"dropout": [0.3, 0.5], "use_attributes": [True, False]}

    def __init__(
        self,
        *,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        max_len: int = 50,
        dropout: float = 0.5,
        loss: str = "ce",
        n_negatives: int = 2000,
        use_attributes: bool = True,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        epochs: int = 200,
        patience: int = 10,
        val_fraction: float = 0.1,
        val_max_users: int = 5000,
        time_budget_s: float | None = None,
        device: str = "auto",
        num_threads: int | None = None,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        if loss not in ("ce", "sampled"):
            raise ValueError(f"loss must be 'ce' or 'sampled', got {loss!r}")
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        if max_len < 1 or epochs < 0 or batch_size < 1 or n_negatives < 1:
            raise ValueError("max_len, batch_size and n_negatives must be >= 1 and epochs >= 0")
        self.hidden, self.layers, self.heads, self.max_len = hidden, layers, heads, max_len
        self.dropout, self.loss, self.n_negatives, self.use_attributes = dropout, loss, n_negatives, use_attributes
        self.lr, self.weight_decay, self.batch_size = lr, weight_decay, batch_size
        self.epochs, self.patience = epochs, patience
        self.val_fraction, self.val_max_users, self.time_budget_s = val_fraction, val_max_users, time_budget_s
        self.device, self.num_threads, self.seed, self.verbose = device, num_threads, seed, verbose
        self.net: SASRecNet | None = None
        self.n_items = 0
        self.n_attrs = 0
        self.fit_info: dict[str, Any] = {}
        self._table: torch.Tensor | None = None

    def get_params(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in (
                "hidden layers heads max_len dropout loss n_negatives use_attributes lr weight_decay batch_size "
                "epochs patience val_fraction val_max_users time_budget_s device num_threads seed"
            ).split()
        }

    # ------------------------------------------------------------------------------------- training

    def _build(self, n_items: int, attr_table: np.ndarray | None, n_attrs: int) -> SASRecNet:
        return SASRecNet(
            n_items,
            max_len=self.max_len,
            d=self.hidden,
            layers=self.layers,
            heads=self.heads,
            dropout=self.dropout,
            attr_table=attr_table,
            n_attrs=n_attrs,
        )

    def fit(
        self, data: InteractionData, *, validation: tuple[Sequence[np.ndarray], np.ndarray] | None = None
    ) -> SASRecEngine:
        """Train on every prefix position of `data.sequences`.

        validation: optional (histories, target item indices) for early stopping on NDCG@10 (full
        ranking, history excluded); without it, a held-out last item per sampled user is used.
        """
        threads_configure(self.num_threads)
        gen = seed_everything(self.seed)
        dev = device_resolve(self.device)
        self.n_items = n = data.n_items
        attrs = data.item_features.attributes if self.use_attributes else None
        attr_table = attributes_tensor(attrs, n)
        self.n_attrs = int(attrs.shape[1]) if attr_table is not None else 0

        seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
        if validation is None and self.epochs > 0 and self.val_fraction > 0:
            seqs, val_h, val_t = holdout_split(seqs, self.val_fraction, self.val_max_users, self.seed)
        elif validation is not None:
            val_h, val_t = [np.asarray(h, dtype=np.int64) for h in validation[0]], np.asarray(validation[1])
        else:
            val_h, val_t = [], np.zeros(0, dtype=np.int64)

        inputs, targets = training_windows(seqs, self.max_len)
        lengths = (inputs > 0).sum(1)
        self.net = net = self._build(n, attr_table, self.n_attrs).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scaler = grad_scaler(dev)
        stopper = EarlyStopping(patience=self.patience)
        t_start = time.perf_counter()
        epoch_times: list[float] = []
        inputs_t, targets_t = torch.as_tensor(inputs), torch.as_tensor(targets)
        for epoch in range(self.epochs):
            t0 = time.perf_counter()
            net.train()
            total, count = 0.0, 0
            for idx in _length_buckets(lengths, self.batch_size, gen):
                lb = int(lengths[idx].max())
                seq = inputs_t[idx, -lb:].to(dev)
                tgt = targets_t[idx, -lb:].to(dev)
                with autocast(dev):
                    table = net.item_table()
                    h = net(seq, table)
                    m = tgt > 0
                    hv, tv = h[m], tgt[m] - 1  # (N, d), (N,)
                    loss = self._loss(hv, tv, table[1:], gen, dev)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                total += float(loss) * len(tv)
                count += len(tv)
            epoch_times.append(time.perf_counter() - t0)
            stop = False
            if len(val_t):
                self._table = None
                val = ndcg_at_k(self._scores(val_h), val_t, val_h, 10)
                stop = stopper.step(epoch, val, net)
                if self.verbose:
                    print(
                        f"epoch {epoch + 1} loss {total / max(count, 1):.4f} val NDCG@10 {val:.4f} "
                        f"({epoch_times[-1]:.1f}s)",
                        flush=True,
                    )
            elif self.verbose:
                print(f"epoch {epoch + 1} loss {total / max(count, 1):.4f} ({epoch_times[-1]:.1f}s)", flush=True)
            if stop or (self.time_budget_s is not None and time.perf_counter() - t_start > self.time_budget_s):
                break
        stopper.restore(net)
        net.eval()
        self._table = None
        self.fit_info = {
            "epochs_run": len(epoch_times),
            "best_epoch": stopper.best_epoch + 1,
            "best_val_ndcg10": stopper.best if len(val_t) else None,
            "seconds_per_epoch": float(np.mean(epoch_times)) if epoch_times else 0.0,
            "train_seconds": time.perf_counter() - t_start,
            "device": str(dev),
            "val_history": stopper.history,
        }
        return self

    def _loss(
        self, h: torch.Tensor, target: torch.Tensor, table: torch.Tensor, gen: torch.Generator, dev: torch.device
    ) -> torch.Tensor:
        """h (N, d), target (N,) item indices, table (n_items, d) -> mean softmax cross-entropy."""
        if self.loss == "ce" or self.n_negatives >= self.n_items:
            return F.cross_entropy((h @ table.T).float(), target)
        neg = torch.randint(0, self.n_items, (self.n_negatives,), generator=gen).to(dev)  # shared by the batch
        pos_logit = (h * table[target]).sum(-1, keepdim=True)  # (N, 1)
        neg_logit = h @ table[neg].T  # (N, S)
        neg_logit = neg_logit.masked_fill(neg[None, :] == target[:, None], float("-inf"))
        logits = torch.cat([pos_logit, neg_logit], 1).float()
        return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long, device=dev))

    # -------------------------------------------------------------------------------------- serving

    def _require(self) -> SASRecNet:
        if self.net is None:
            raise RuntimeError("SASRecEngine is not fitted: call fit() or load() first")
        return self.net

    @torch.no_grad()
    def _scores(self, histories: Sequence[np.ndarray], batch_size: int = 1024) -> np.ndarray:
        """(n, n_items) float32 scores of every item after each history."""
        net = self._require()
        dev = next(net.parameters()).device
        was_training = net.training
        net.eval()
        table = net.item_table()
        out = np.empty((len(histories), self.n_items), dtype=np.float32)
        clean = [np.asarray(h, dtype=np.int64) for h in histories]
        clean = [h[(h >= 0) & (h < self.n_items)] for h in clean]
        for i in range(0, len(clean), batch_size):
            seq = torch.as_tensor(left_pad(clean[i : i + batch_size], self.max_len)).to(dev)
            with autocast(dev):
                h = net(seq, table)[:, -1]
                s = h @ table[1:].T
            out[i : i + batch_size] = s.float().cpu().numpy()
        net.train(was_training)
        return out

    def score_items(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(n_histories, n_items) scores of every item (higher = more likely next); for rankers."""
        return self._scores(histories)

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        ex = default_exclude(histories, exclude)
        ex = [np.asarray(e, dtype=np.int64)[(np.asarray(e) >= 0) & (np.asarray(e) < self.n_items)] for e in ex]
        return top_k(self._scores(histories), k, ex)

    @torch.no_grad()
    def item_embeddings(self) -> np.ndarray:
        """(n_items, d) output item representations (id + attribute embeddings)."""
        net = self._require()
        net.eval()
        return net.item_table()[1:].float().cpu().numpy()

    def similar_items(self, item_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of item embeddings; the item itself is excluded."""
        emb = self.item_embeddings()
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        ids = np.asarray(item_ids, dtype=np.int64)
        return top_k(emb[ids] @ emb.T, k, [np.array([i]) for i in ids])

    # -------------------------------------------------------------------------------------- storage

    def save(self, path: Path) -> None:
        net = self._require()
        torch.save(
            {
                "engine": self.name,
                "params": self.get_params(),
                "n_items": self.n_items,
                "n_attrs": self.n_attrs,
                "attr_table": None if net.attr_table is None else net.attr_table.cpu().numpy(),
                "state": state_dict_cpu(net),
                "fit_info": self.fit_info,
            },
            Path(path),
        )

    @classmethod
    def load(cls, path: Path) -> SASRecEngine:
        blob = torch.load(Path(path), map_location="cpu", weights_only=False)
        if blob.get("engine") != cls.name:
            raise ValueError(f"{path} is not a {cls.name} model (found {blob.get('engine')!r})")
        eng = cls(**blob["params"])
        eng.n_items, eng.n_attrs, eng.fit_info = blob["n_items"], blob["n_attrs"], blob["fit_info"]
        eng.net = eng._build(eng.n_items, blob["attr_table"], eng.n_attrs)
        eng.net.load_state_dict(blob["state"])
        eng.net.to(device_resolve(eng.device)).eval()
        return eng


def _length_buckets(lengths: np.ndarray, batch_size: int, gen: torch.Generator, group: int = 32) -> list[np.ndarray]:
    """Shuffled minibatches of window indices whose lengths are similar (less padding per batch):
    shuffle, sort by length within chunks of `group` batches, then shuffle the batch order."""
    n = len(lengths)
    order = torch.randperm(n, generator=gen).numpy()
    batches = []
    chunk = batch_size * group
    for i in range(0, n, chunk):
        part = order[i : i + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    perm = torch.randperm(len(batches), generator=gen).numpy()
    return [batches[p] for p in perm]

"""Shared helpers for the torch engines (sasrec, gru4rec, two_tower): device, seeding, threads, AMP,
early stopping on a validation metric, sequence batching and full-ranking evaluation.

Pure Python + torch; no Django imports. Imported only by the torch engines, so `import recommender.engines`
never loads torch.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------- device


def device_resolve(device: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU falls back to CPU (with no error,
    so a model trained on a GPU host can be served and retrained on a CPU host)."""
    if device == "auto" or device.startswith("cuda"):
        if torch.cuda.is_available():
            return torch.device("cuda" if device == "auto" else device)
        return torch.device("cpu")
    return torch.device(device)


def threads_configure(num_threads: int | None) -> None:
    """Cap intra-op CPU threads. None -> min(available cores, TORCH_NUM_THREADS env or 4): more threads
    than cores only adds contention on small matrices, and the serving host runs other processes."""
    if num_threads is None:
        env = os.environ.get("TORCH_NUM_THREADS")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        num_threads = int(env) if env else min(cores, 4)
    num_threads = max(1, int(num_threads))
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (CPU and CUDA); returns a torch CPU generator for data shuffling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """Mixed precision (bfloat16 when supported, else float16) on CUDA; a no-op on CPU (CPU autocast
    to bfloat16 is slower than fp32 on most servers without AMX)."""
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


def grad_scaler(device: torch.device, enabled: bool = True) -> torch.amp.GradScaler:
    """GradScaler for float16 autocast on CUDA; disabled (pass-through) otherwise."""
    use = bool(enabled and device.type == "cuda" and not torch.cuda.is_bf16_supported())
    return torch.amp.GradScaler("cuda", enabled=use)


# ----------------------------------------------------------------------------------- early stopping


@dataclass
class EarlyStopping:
    """Keep the best state dict by a validation metric (higher is better); stop after `patience`
    evaluations without an improvement larger than `min_delta`."""

    patience: int = 5
    min_delta: float = 0.0
    best: float = -float("inf")
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    bad: int = 0
    history: list[tuple[int, float]] = field(default_factory=list)

    def step(self, epoch: int, value: float, model: torch.nn.Module) -> bool:
        """Record `value` at `epoch`; returns True when training should stop."""
        self.history.append((epoch, float(value)))
        if value > self.best + self.min_delta:
            self.best, self.best_epoch, self.bad = float(value), epoch, 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


# ----------------------------------------------------------------------------------------- batching


def left_pad(histories: Sequence[np.ndarray], max_len: int, shift: int = 1) -> np.ndarray:
    """(n, max_len) int64 array of the last `max_len` items of each history, left-padded with 0.
    Item index i is stored as i + shift (index 0 is the padding token)."""
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for r, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)[-max_len:]
        if len(h):
            out[r, max_len - len(h) :] = h + shift
    return out


def training_windows(sequences: Sequence[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Split each sequence (len >= 2) into (input, target) windows for next-item training on every
    prefix position: input = s[:-1], target = s[1:], both left-padded to `max_len` (shifted by 1, 0 =
    pad). Sequences longer than max_len + 1 are cut into several windows (every item is a target once).

    Returns (inputs, targets), each (n_windows, max_len) int64.
    """
    ins, tgs = [], []
    for s in sequences:
        s = np.asarray(s, dtype=np.int64)
        if len(s) < 2:
            continue
        end = len(s)
        while end >= 2:
            start = max(0, end - max_len - 1)
            w = s[start:end]
            ins.append(w[:-1])
            tgs.append(w[1:])
            end = start + 1 if start > 0 else 0
    return left_pad(ins, max_len), left_pad(tgs, max_len)


def minibatches(
    n: int, batch_size: int, gen: torch.Generator | None, shuffle: bool = True
) -> Iterator[np.ndarray]:
    order = torch.randperm(n, generator=gen).numpy() if shuffle else np.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def holdout_split(
    sequences: Sequence[np.ndarray], fraction: float, max_users: int, seed: int, min_len: int = 3
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Internal validation for early stopping when the caller gives none: for a random sample of users
    with at least `min_len` items, hold out the LAST item (it is removed from training).

    Returns (train_sequences, val_histories, val_targets).
    """
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
    eligible = np.array([i for i, s in enumerate(seqs) if len(s) >= min_len], dtype=np.int64)
    n_val = min(int(round(fraction * len(eligible))), max_users)
    if n_val <= 0:
        return seqs, [], np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, size=n_val, replace=False))
    hist, tgt = [], []
    for u in chosen:
        hist.append(seqs[u][:-1])
        tgt.append(int(seqs[u][-1]))
        seqs[u] = seqs[u][:-1]
    return seqs, hist, np.asarray(tgt, dtype=np.int64)


def validation_cases(valid: Any) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """(histories, targets, excluded) from an EvalSet-like object, a (histories, targets) tuple or None.
    Cases without a target in the catalogue range are dropped by the caller's metric (target -1)."""
    if valid is None:
        return [], np.zeros(0, dtype=np.int64), []
    if isinstance(valid, tuple):
        hist, targets, excluded = valid[0], valid[1], (valid[2] if len(valid) > 2 else None)
    else:
        hist, targets, excluded = valid.histories, valid.targets, getattr(valid, "excluded", None)
    hist = [np.asarray(h, dtype=np.int64) for h in hist]
    tgt = np.asarray([int(np.ravel(t)[0]) if np.size(t) else -1 for t in targets], dtype=np.int64)
    ex = hist if excluded is None else [np.asarray(e, dtype=np.int64) for e in excluded]
    keep = np.flatnonzero(tgt >= 0)
    return [hist[i] for i in keep], tgt[keep], [ex[i] for i in keep]


def ndcg_at_k(scores: np.ndarray, targets: np.ndarray, histories: Sequence[np.ndarray], k: int = 10) -> float:
    """Full-ranking NDCG@k of `targets` under `scores` (n, n_items), history items masked (the
    leave-one-out protocol). Ties count against the target (pessimistic)."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    for i, h in enumerate(histories):
        if len(h):
            scores[i, np.asarray(h, dtype=np.int64)] = -np.inf
    t = scores[np.arange(len(targets)), targets]
    rank = (scores >= t[:, None]).sum(axis=1) - 1  # 0-based, ties pessimistic
    hit = rank < k
    return float(np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0).mean()) if len(targets) else 0.0


# ------------------------------------------------------------------------------------ serialization


def state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def attributes_tensor(attributes: Any, n_items: int, max_attrs: int = 8) -> np.ndarray | None:
    """(n_items + 1, max_attrs) int64 attribute ids + 1 (0 = none; row 0 is the padding item) from a
    (n_items, n_attributes) sparse matrix, or None when absent/empty. Keeps the first `max_attrs`."""
    if attributes is None:
        return None
    import scipy.sparse as sp

    m = sp.csr_matrix(attributes)
    if m.shape[0] != n_items or m.nnz == 0:
        return None
    out = np.zeros((n_items + 1, max_attrs), dtype=np.int64)
    for i in range(n_items):
        cols = m.indices[m.indptr[i] : m.indptr[i + 1]][:max_attrs]
        out[i + 1, : len(cols)] = cols + 1
    return out


# ------------------------------------------------------------------------- next-item engine base


def length_buckets(
    lengths: np.ndarray, batch_size: int, gen: torch.Generator, group: int = 32
) -> list[np.ndarray]:
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


class NextItemTorchEngine:
    """Shared training / serving for torch engines that map an item sequence to a hidden state per
    position and score items by a dot product with an item table (sasrec, gru4rec, two_tower).

    Subclasses set `name`, `_param_names`, and implement `_build(n_items, attr_table, n_attrs, dense)`
    returning a module with `item_table() -> (n_items + 1, d)` (row 0 = padding) and
    `forward(seq (B, L) int64 item+1 left-padded, table) -> (B, L, d)` where position t only depends on
    items <= t. Hyperparameters used here: max_len, loss, n_negatives, lr, weight_decay, batch_size,
    epochs, patience, val_fraction, val_max_users, time_budget_s, device, num_threads, seed, verbose.

    Training: every prefix position of every sequence predicts its next item; loss "ce" (softmax over the
    catalogue), "sampled" (positive + n_negatives uniform items shared by the batch) or "inbatch" (the
    other targets of the batch are the negatives, with a log-popularity correction). Early stopping on
    validation NDCG@10 (full ranking, history excluded).
    """

    name: ClassVar[str] = ""
    _param_names: ClassVar[tuple[str, ...]] = ()
    _losses: ClassVar[tuple[str, ...]] = ("ce", "sampled")

    def _init_common(self) -> None:
        if self.loss not in self._losses:
            raise ValueError(f"loss must be one of {', '.join(self._losses)}; got {self.loss!r}")
        if self.max_len < 1 or self.epochs < 0 or self.batch_size < 1 or self.n_negatives < 1:
            raise ValueError("max_len, batch_size and n_negatives must be >= 1 and epochs >= 0")
        self.net: torch.nn.Module | None = None
        self.n_items = 0
        self.n_attrs = 0
        self.fit_info: dict[str, Any] = {}
        self._extra: dict[str, Any] = {}  # subclass state saved with the model

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names}

    def _build(
        self, n_items: int, attr_table: np.ndarray | None, n_attrs: int, dense: np.ndarray | None
    ) -> torch.nn.Module:
        raise NotImplementedError

    def _dense_features(self, data: Any) -> np.ndarray | None:
        """(n_items + 1, F) float32 content features for the item table, or None (subclass hook)."""
        return None

    def _training_sequences(self, data: Any) -> list[np.ndarray]:
        return [np.asarray(s, dtype=np.int64) for s in data.sequences]

    # ------------------------------------------------------------------------------------- training

    def fit(self, data: Any, *, valid: Any = None) -> Any:
        """Train on `data` (InteractionData).

        valid: optional validation cases for early stopping on NDCG@10 (full ranking): an object with
        `histories`, `targets` (one array of target items per case, the first is used) and optionally
        `excluded` (items masked per case; default the history), such as evaluation.protocols.EvalSet, or a
        tuple (histories, targets). Without it, the last item of a random sample of training sequences
        is held out of training and used instead. Test cases must never be passed here.
        """
        import time

        threads_configure(self.num_threads)
        gen = seed_everything(self.seed)
        dev = device_resolve(self.device)
        self.n_items = n = int(data.n_items)
        attrs = data.item_features.attributes if getattr(self, "use_attributes", False) else None
        attr_table = attributes_tensor(attrs, n)
        self.n_attrs = int(attrs.shape[1]) if attr_table is not None else 0
        dense = self._dense_features(data)

        seqs = self._training_sequences(data)
        val_h, val_t, val_x = validation_cases(valid)
        if valid is None and self.epochs > 0 and self.val_fraction > 0:
            seqs, val_h, val_t = holdout_split(seqs, self.val_fraction, self.val_max_users, self.seed)
            val_x = val_h
        elif len(val_t) > self.val_max_users:  # a fixed random subset keeps per-epoch validation cheap
            pick = np.sort(
                np.random.default_rng(self.seed).choice(len(val_t), self.val_max_users, replace=False)
            )
            val_h, val_t, val_x = [val_h[i] for i in pick], val_t[pick], [val_x[i] for i in pick]

        inputs, targets = training_windows(seqs, self.max_len)
        lengths = (inputs > 0).sum(1)
        counts = np.bincount(targets[targets > 0] - 1, minlength=n).astype(np.float64)
        log_q = torch.as_tensor(np.log((counts + 1.0) / (counts.sum() + n)), dtype=torch.float32).to(dev)
        self.net = net = self._build(n, attr_table, self.n_attrs, dense).to(dev)
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
            for idx in length_buckets(lengths, self.batch_size, gen):
                lb = max(int(lengths[idx].max()), 1)
                seq = inputs_t[idx, -lb:].to(dev)
                tgt = targets_t[idx, -lb:].to(dev)
                with autocast(dev):
                    table = net.item_table()
                    h = net(seq, table)
                    m = tgt > 0
                    loss = self._loss(h[m], tgt[m] - 1, table[1:], gen, dev, log_q)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                total += float(loss.detach()) * int(m.sum())
                count += int(m.sum())
            epoch_times.append(time.perf_counter() - t0)
            stop = False
            msg = f"{self.name} epoch {epoch + 1} loss {total / max(count, 1):.4f} ({epoch_times[-1]:.1f}s)"
            if len(val_t):
                self._on_weights_changed()
                val = ndcg_at_k(self._scores(val_h), val_t, val_x, 10)
                stop = stopper.step(epoch, val, net)
                msg += f" val NDCG@10 {val:.4f}"
            if self.verbose:
                print(msg, flush=True)
            if stop or (
                self.time_budget_s is not None and time.perf_counter() - t_start > self.time_budget_s
            ):
                break
        stopper.restore(net)
        net.eval()
        self._on_weights_changed()
        self.fit_info = {
            "epochs_run": len(epoch_times),
            "best_epoch": stopper.best_epoch + 1 if len(val_t) else len(epoch_times),
            "best_val_ndcg10": stopper.best if len(val_t) else None,
            "seconds_per_epoch": float(np.mean(epoch_times)) if epoch_times else 0.0,
            "train_seconds": time.perf_counter() - t_start,
            "device": str(dev),
            "n_train_positions": int((targets > 0).sum()),
            "val_history": stopper.history,
        }
        return self

    def _loss(
        self,
        h: torch.Tensor,
        target: torch.Tensor,
        table: torch.Tensor,
        gen: torch.Generator,
        dev: torch.device,
        log_q: torch.Tensor,
    ) -> torch.Tensor:
        """h (N, d) hidden states, target (N,) item indices, table (n_items, d) -> mean cross-entropy."""
        if self.loss == "ce" or (self.loss == "sampled" and self.n_negatives >= self.n_items):
            return F.cross_entropy((h @ table.T).float(), target)
        if self.loss == "sampled":
            neg = torch.randint(0, self.n_items, (self.n_negatives,), generator=gen).to(
                dev
            )  # shared by the batch
            pos_logit = (h * table[target]).sum(-1, keepdim=True)  # (N, 1)
            neg_logit = (h @ table[neg].T).masked_fill(
                neg[None, :] == target[:, None], float("-inf")
            )  # (N, S)
            logits = torch.cat([pos_logit, neg_logit], 1).float()
            return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long, device=dev))
        # in-batch negatives: logits (N, N) against the batch's targets, minus log Q(item) (the sampling
        # probability of an item as a negative is proportional to its frequency); repeated targets masked.
        logits = (h @ table[target].T).float() / self.temperature - log_q[target][None, :]
        same = target[None, :] == target[:, None]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
        return F.cross_entropy(logits, torch.arange(len(target), device=dev))

    # -------------------------------------------------------------------------------------- serving

    def _on_weights_changed(self) -> None:
        """Hook: drop caches (e.g. a faiss index) built from the weights."""

    def _require(self) -> torch.nn.Module:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() or load() first")
        return self.net

    def _clean(self, histories: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for h in histories:
            h = np.asarray(h, dtype=np.int64).ravel()
            out.append(h[(h >= 0) & (h < self.n_items)])
        return out

    @torch.no_grad()
    def user_vectors(self, histories: Sequence[np.ndarray], batch_size: int = 1024) -> np.ndarray:
        """(n, d) hidden state after each history (the query vector scored against item_embeddings)."""
        net = self._require()
        dev = next(net.parameters()).device
        was_training = net.training
        net.eval()
        table = net.item_table()
        clean = self._clean(histories)
        out = []
        for i in range(0, len(clean), batch_size):
            seq = torch.as_tensor(left_pad(clean[i : i + batch_size], self.max_len)).to(dev)
            with autocast(dev):
                out.append(net(seq, table)[:, -1].float().cpu().numpy())
        net.train(was_training)
        d = int(table.shape[1])
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, d), dtype=np.float32)

    @torch.no_grad()
    def item_embeddings(self) -> np.ndarray:
        """(n_items, d) output item representations."""
        net = self._require()
        was_training = net.training
        net.eval()
        emb = net.item_table()[1:].float().cpu().numpy()
        net.train(was_training)
        return np.ascontiguousarray(emb, dtype=np.float32)

    def _scores(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(n, n_items) float32 scores of every item after each history."""
        return self.user_vectors(histories) @ self.item_embeddings().T

    def score_items(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(n_histories, n_items) scores of every item (higher = more likely next); for rankers."""
        return self._scores(histories)

    def score(self, histories: Sequence[np.ndarray], users: np.ndarray | None = None) -> np.ndarray:
        """Dense (n_histories, n_items) scores, history NOT masked (the evaluation runner masks)."""
        return self._scores(histories)

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        from .base import default_exclude, top_k

        ex = self._clean(default_exclude(histories, exclude))
        out_ids, out_sc = [], []
        for i in range(0, len(histories), 2048):  # bounded memory: 2048 x n_items floats at a time
            ids, sc = top_k(self._scores(histories[i : i + 2048]), k, ex[i : i + 2048])
            out_ids.append(ids)
            out_sc.append(sc)
        if not out_ids:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return np.concatenate(out_ids), np.concatenate(out_sc)

    def similar_items(self, item_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of item embeddings; the item itself is excluded."""
        from .base import top_k

        emb = self.item_embeddings()
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        ids = np.asarray(item_ids, dtype=np.int64).ravel()
        if len(ids) and (ids.min() < 0 or ids.max() >= self.n_items):
            raise ValueError(f"item ids must be in 0..{self.n_items - 1}")
        return top_k(emb[ids] @ emb.T, k, [np.array([i]) for i in ids])

    # -------------------------------------------------------------------------------------- storage

    def save(self, path: Any) -> None:
        """Write the whole model (hyperparameters, weights, feature tables) to ONE file. Only tensors and
        plain Python values are stored, so `load` uses torch.load(weights_only=True): no unpickling of
        arbitrary objects, a model file cannot execute code."""
        from pathlib import Path

        net = self._require()
        attr = getattr(net, "attr_table", None)
        dense = getattr(net, "dense", None)
        torch.save(
            {
                "engine": self.name,
                "params": self.get_params(),
                "n_items": int(self.n_items),
                "n_attrs": int(self.n_attrs),
                "attr_table": None if attr is None else attr.detach().cpu(),
                "dense": None if dense is None else dense.detach().cpu(),
                "state": state_dict_cpu(net),
                "fit_info": _plain(self.fit_info),
                "extra": _plain(self._extra),
            },
            Path(path),
        )

    @classmethod
    def load(cls, path: Any) -> Any:
        from pathlib import Path

        try:
            blob = torch.load(Path(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:  # torch raises UnpicklingError / RuntimeError / EOFError for foreign files
            raise ValueError(f"{path} is not a readable {cls.name} model file: {exc}") from exc
        if not isinstance(blob, dict) or blob.get("engine") != cls.name:
            found = blob.get("engine") if isinstance(blob, dict) else type(blob).__name__
            raise ValueError(f"{path} is not a {cls.name} model (found {found!r})")
        eng = cls(**blob["params"])
        eng.n_items, eng.n_attrs, eng.fit_info = blob["n_items"], blob["n_attrs"], blob["fit_info"]
        eng._extra = blob.get("extra") or {}
        attr = None if blob["attr_table"] is None else blob["attr_table"].numpy()
        dense = None if blob["dense"] is None else blob["dense"].numpy()
        eng.net = eng._build(eng.n_items, attr, eng.n_attrs, dense)
        eng.net.load_state_dict(blob["state"])
        eng.net.to(device_resolve(eng.device)).eval()
        eng._on_weights_changed()
        return eng


def _plain(value: Any) -> Any:
    """Recursively turn numpy scalars/arrays and tuples into plain Python (safe for weights_only load)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def attribute_matrix(attr_table: torch.Tensor) -> torch.Tensor:
    """Sparse (n_items + 1, n_attrs + 1) row-normalised item -> attribute matrix from an attribute-id
    table (see `attributes_tensor`), so that `A @ attr_emb.weight` is each item's mean attribute embedding
    (far cheaper than gathering a dense (n_items, max_attrs, d) tensor on every training step)."""
    rows, slots = torch.nonzero(attr_table > 0, as_tuple=True)
    cols = attr_table[rows, slots]
    cnt = (attr_table > 0).sum(1).clamp(min=1).float()
    vals = 1.0 / cnt[rows]
    shape = (attr_table.shape[0], int(attr_table.max()) + 1 if attr_table.numel() else 1)
    return torch.sparse_coo_tensor(
        torch.stack([rows, cols]), vals, size=shape, check_invariants=False
    ).coalesce()

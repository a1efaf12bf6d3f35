"""Shared helpers for the torch engines (sasrec, gru4rec, two_tower): device, seeding, threads, AMP,
early stopping on a validation metric, sequence batching and full-ranking evaluation.

Pure Python + torch; no Django imports. Imported only by the torch engines, so `import recommender.engines`
never loads torch.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

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


def minibatches(n: int, batch_size: int, gen: torch.Generator | None, shuffle: bool = True) -> Iterator[np.ndarray]:
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


def torch_save_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


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

"""Helpers shared by the classic engines. One-file engine persistence without pickle: parameters as JSON plus named numpy / CSR arrays in one .npz.

`state_save(path, params=..., arrays=...)` writes exactly one file at `path` (no suffix added);
`state_load(path)` returns `(params, arrays)` with CSR matrices rebuilt. Loading never unpickles,
so a model file from the registry cannot execute code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

_CSR = "__csr__"


def state_save(path: Path | str, *, params: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Write `params` (JSON-serialisable) and `arrays` (ndarray, CSR matrix or None) to ONE file at `path`."""
    payload: dict[str, np.ndarray] = {
        "__params__": np.frombuffer(json.dumps(params).encode(), dtype=np.uint8)
    }
    for name, value in arrays.items():
        if value is None:
            continue
        if sp.issparse(value):
            m = sp.csr_matrix(value)
            payload[f"{_CSR}{name}__data"] = m.data
            payload[f"{_CSR}{name}__indices"] = m.indices
            payload[f"{_CSR}{name}__indptr"] = m.indptr
            payload[f"{_CSR}{name}__shape"] = np.asarray(m.shape, dtype=np.int64)
        else:
            arr = np.asarray(value)
            if arr.dtype == object:
                raise TypeError(
                    f"array {name!r} has dtype object; store strings as a fixed-width unicode array"
                )
            payload[name] = arr
    with open(path, "wb") as fh:  # a file object: np.savez would otherwise append ".npz" to the name
        np.savez(fh, **payload)


def state_load(path: Path | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inverse of `state_save`: `(params, arrays)`; missing optional arrays are simply absent."""
    with np.load(path, allow_pickle=False) as z:
        files = {k: z[k] for k in z.files}
    params = json.loads(files.pop("__params__").tobytes().decode())
    arrays: dict[str, Any] = {}
    csr_names = {k[len(_CSR) :].rsplit("__", 1)[0] for k in files if k.startswith(_CSR)}
    for name in csr_names:
        pre = f"{_CSR}{name}__"
        arrays[name] = sp.csr_matrix(
            (files.pop(pre + "data"), files.pop(pre + "indices"), files.pop(pre + "indptr")),
            shape=tuple(int(x) for x in files.pop(pre + "shape")),
        )
    arrays.update(files)
    return params, arrays


def weighted_histories(histories, n_items: int, decay: float = 1.0) -> sp.csr_matrix:
    """(n, n_items) CSR: item j of history h weighted `decay ** (steps from the most recent item)`.

    decay = 1.0 gives a binary bag of items; decay < 1 favours the latest items (sequential signal).
    Repeated items keep their most recent (largest) weight. Indices outside 0..n_items-1 are ignored.
    """
    rows, cols, vals = [], [], []
    for i, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)
        if not len(h):
            continue
        w = (
            np.power(float(decay), np.arange(len(h) - 1, -1, -1, dtype=np.float64))
            if decay != 1.0
            else np.ones(len(h))
        )
        ok = (h >= 0) & (h < n_items)
        rows.append(np.full(int(ok.sum()), i))
        cols.append(h[ok])
        vals.append(w[ok])
    if not rows:
        return sp.csr_matrix((len(histories), n_items), dtype=np.float32)
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    # keep the largest weight per (row, item): sort by value so the last write wins in a coo->dict dedupe
    order = np.lexsort((v, c, r))
    r, c, v = r[order], c[order], v[order]
    last = np.r_[(r[1:] != r[:-1]) | (c[1:] != c[:-1]), True]
    return sp.csr_matrix((v[last].astype(np.float32), (r[last], c[last])), shape=(len(histories), n_items))


def rows_top_n(m: sp.spmatrix, n: int) -> sp.csr_matrix:
    """Keep the `n` largest entries of each row of a sparse matrix (ties broken by column)."""
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    if n <= 0:
        return sp.csr_matrix(m.shape, dtype=m.dtype)
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= n:
        return m
    data, indices, indptr = [], [], [0]
    for r in range(m.shape[0]):
        a, b = m.indptr[r], m.indptr[r + 1]
        d, ix = m.data[a:b], m.indices[a:b]
        if b - a > n:
            keep = np.argpartition(-d, n - 1)[:n]
            keep.sort()
            d, ix = d[keep], ix[keep]
        data.append(d)
        indices.append(ix)
        indptr.append(indptr[-1] + len(d))
    return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.asarray(indptr)), shape=m.shape)

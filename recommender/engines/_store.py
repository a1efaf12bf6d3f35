"""One-file engine persistence without pickle: parameters as JSON plus named numpy / CSR arrays in one .npz.

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
    payload: dict[str, np.ndarray] = {"__params__": np.frombuffer(json.dumps(params).encode(), dtype=np.uint8)}
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
                raise TypeError(f"array {name!r} has dtype object; store strings as a fixed-width unicode array")
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

"""Private dev loop for the torch engines on Amazon Beauty (leave-one-out, full ranking), used until the
shared evaluation runner (recommender/evaluation/) lands. The numbers in docs come from bench_torch.py.

    .venv/bin/python benchmarks/dev_beauty.py sasrec loss=ce epochs=5

Protocol (shared/datasets/README.md): train on i1..i(n-2); validation target i(n-1) given i1..i(n-2);
test target i(n) given i1..i(n-1); rank all items, history items excluded; mean over all users.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommender.engines import InteractionData, ItemFeatures, engine_create  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "amazon-beauty"


def beauty_load(path: Path = DATA / "Beauty.txt"):
    """-> (sequences as internal indices, n_items, attributes csr or None); item id j -> index j-1."""
    seqs = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            seqs.append(np.asarray([int(x) - 1 for x in parts[1:]], dtype=np.int64))
    n_items = int(max(s.max() for s in seqs)) + 1
    attrs = None
    ap = path.with_name(path.stem + "_item2attributes.json")
    if ap.exists():
        raw = json.loads(ap.read_text())
        rows, cols = [], []
        for item, al in raw.items():
            i = int(item) - 1
            if 0 <= i < n_items:
                rows += [i] * len(al)
                cols += list(al)
        vocab = {a: j for j, a in enumerate(sorted(set(cols)))}
        attrs = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), (rows, [vocab[c] for c in cols])),
            shape=(n_items, len(vocab)),
        )
    return seqs, n_items, attrs


def metrics(ids: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """HR/NDCG@5/10/20 from (n, >=20) ranked ids."""
    out = {}
    hit_pos = np.full(len(targets), -1)
    match = ids[:, :20] == targets[:, None]
    any_hit = match.any(1)
    hit_pos[any_hit] = match[any_hit].argmax(1)
    for k in (5, 10, 20):
        h = any_hit & (hit_pos < k)
        out[f"HR@{k}"] = float(h.mean())
        out[f"NDCG@{k}"] = float(np.where(h, 1.0 / np.log2(hit_pos + 2.0), 0.0).mean())
    return out


def splits(seqs):
    train = [s[:-2] for s in seqs]
    val_h, val_t = [s[:-2] for s in seqs], np.asarray([s[-2] for s in seqs])
    test_h, test_t = [s[:-1] for s in seqs], np.asarray([s[-1] for s in seqs])
    return train, (val_h, val_t), (test_h, test_t)


def main(argv: list[str]) -> None:
    name = argv[0]
    params = {}
    for a in argv[1:]:
        k, v = a.split("=", 1)
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    seqs, n_items, attrs = beauty_load()
    train, (val_h, val_t), (test_h, test_t) = splits(seqs)
    data = InteractionData.from_sequences(train, n_items, item_features=ItemFeatures(attributes=attrs))
    eng = engine_create(name, verbose=True, **params)
    t0 = time.perf_counter()
    eng.fit(data, valid=(val_h, val_t))
    fit_s = time.perf_counter() - t0
    vi, _ = eng.recommend(val_h, 20)
    ti, _ = eng.recommend(test_h, 20)
    print(
        json.dumps(
            {
                "engine": name,
                "params": params,
                "fit_s": round(fit_s, 1),
                "fit_info": {k: v for k, v in eng.fit_info.items() if k != "val_history"},
            },
            default=str,
        )
    )
    print("VAL ", {k: round(v, 4) for k, v in metrics(vi, val_t).items()})
    print("TEST", {k: round(v, 4) for k, v in metrics(ti, test_t).items()})


if __name__ == "__main__":
    main(sys.argv[1:])

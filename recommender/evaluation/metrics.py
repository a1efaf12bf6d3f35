"""Offline recommendation metrics. Pure numpy; no Django.

Per-case functions return one value per evaluation case (a user, or a session prefix) so the runner can
average them over any slice (cold users, a gender, ...). Conventions:

* `top_ids` is an int array (n_cases, K), best first, -1 padded; `targets[i]` is an int array of the
  relevant items of case i (leave-one-out: exactly one).
* Accuracy at cut-off k (hits h_j in {0,1} at positions j = 1..k, T = |targets|):
    HR@k        = 1 if any hit else 0
    precision@k = sum(h) / k
    recall@k    = sum(h) / T
    F1@k        = 2 P R / (P + R)  (0 when P = R = 0)
    NDCG@k      = sum_j h_j / log2(j + 1)  /  sum_{j <= min(T, k)} 1 / log2(j + 1)
    MRR@k       = 1 / (position of the first hit), 0 when none in the top k
    MAP@k       = sum_j h_j * precision@j / min(T, k)
* AUC of a case = mean over its positives p of P(score(p) > score(n)) over every negative n, ties 1/2.
  Candidates are all items not excluded (history) for that case; a positive that is excluded (a repeat of a
  history item, so it can never be recommended) counts as ranked last (AUC 0 for that positive).
* Beyond accuracy (over all cases' top-k lists):
    coverage@k           = |distinct items recommended| / n_items
    novelty@k            = mean over recommended items of -log2(p_i), p_i = share of training users who
                           interacted with i (clipped below at 1 / n_users)
    popularity_bias@k    = share of recommended items that are among the 20% most popular training items
    intra_list_diversity = mean over lists of the mean pairwise cosine distance (1 - cos) between item vectors
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

ACCURACY_METRICS = ("HR", "NDCG", "MRR", "precision", "recall", "F1", "MAP")


def hit_matrix(top_ids: np.ndarray, targets: Sequence[np.ndarray]) -> np.ndarray:
    """(n_cases, K) bool: True where the recommended item at that position is one of the case's targets."""
    top_ids = np.asarray(top_ids)
    n, _ = top_ids.shape
    lengths = np.fromiter((len(t) for t in targets), dtype=np.int64, count=n)
    if n and np.all(lengths == 1):  # leave-one-out: fully vectorised
        flat = np.fromiter((int(t[0]) for t in targets), dtype=np.int64, count=n)
        return (top_ids == flat[:, None]) & (top_ids >= 0)
    hits = np.zeros(top_ids.shape, dtype=bool)
    for i, t in enumerate(targets):
        if len(t):
            hits[i] = np.isin(top_ids[i], t) & (top_ids[i] >= 0)
    return hits


def accuracy_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-case HR, NDCG, MRR, precision, recall, F1, MAP at cut-off k (formulas in the module docstring).

    hits: (n_cases, K >= k) bool from `hit_matrix`; n_targets: (n_cases,) number of relevant items per case.
    Cases with no targets get 0 for every metric.
    """
    h = hits[:, :k].astype(np.float64)
    if h.shape[1] < k:  # fewer recommendations than k: the missing positions are misses
        h = np.pad(h, ((0, 0), (0, k - h.shape[1])))
    n_targets = np.asarray(n_targets, dtype=np.float64)
    n_hit = h.sum(axis=1)
    pos = np.arange(1, k + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(pos + 1.0)
    dcg = h @ discounts
    ideal_len = np.minimum(n_targets, k).astype(np.int64)
    ideal_cum = np.concatenate([[0.0], np.cumsum(discounts)])
    idcg = ideal_cum[ideal_len]
    safe = n_targets > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ndcg = np.where(safe, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)
        precision = n_hit / k
        recall = np.where(safe, n_hit / np.where(safe, n_targets, 1.0), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        first = np.where(n_hit > 0, h.argmax(axis=1) + 1.0, np.inf)
        mrr = np.where(n_hit > 0, 1.0 / first, 0.0)
        prec_at_j = np.cumsum(h, axis=1) / pos
        ap = np.where(ideal_len > 0, (h * prec_at_j).sum(axis=1) / np.maximum(ideal_len, 1), 0.0)
    return {
        "HR": (n_hit > 0).astype(np.float64),
        "NDCG": ndcg,
        "MRR": mrr,
        "precision": precision,
        "recall": recall,
        "F1": f1,
        "MAP": ap,
    }


def auc_per_case(scores: np.ndarray, targets: Sequence[np.ndarray]) -> np.ndarray:
    """Per-case AUC from a dense score matrix in which EXCLUDED items are NaN.

    scores: (n_cases, n_items); unscored-but-allowed items should be -inf (they rank below everything and
    tie with each other). A positive whose score is NaN (excluded) contributes 0. Cases without targets: NaN.
    """
    n, n_items = scores.shape
    out = np.full(n, np.nan)
    excluded = np.isnan(scores)
    n_excluded = excluded.sum(axis=1)
    for i, t in enumerate(targets):
        t = np.unique(np.asarray(t, dtype=np.int64))
        if not len(t):
            continue
        row = scores[i]
        pos_scores = row[t]
        valid = ~np.isnan(pos_scores)
        n_pos_valid = int(valid.sum())
        n_neg = n_items - int(n_excluded[i]) - n_pos_valid
        if n_neg <= 0:
            continue
        per_pos = np.zeros(len(t))
        if n_pos_valid:
            vs = pos_scores[valid]
            # comparisons against every allowed item (NaN compares False), then remove positives themselves
            greater_all = (row[None, :] > vs[:, None]).sum(axis=1)
            ties_all = (row[None, :] == vs[:, None]).sum(axis=1)
            greater_pos = (vs[None, :] > vs[:, None]).sum(axis=1)
            ties_pos = (vs[None, :] == vs[:, None]).sum(axis=1)  # includes itself
            neg_greater = greater_all - greater_pos
            neg_ties = ties_all - ties_pos
            per_pos[valid] = 1.0 - (neg_greater + 0.5 * neg_ties) / n_neg
        out[i] = per_pos.mean()
    return out


def coverage(top_ids: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    ids = np.asarray(top_ids)[:, :k]
    return float(np.unique(ids[ids >= 0]).size / n_items) if n_items else 0.0


def item_popularity(train_matrix: sp.spmatrix) -> np.ndarray:
    """(n_items,) number of training users who interacted with each item."""
    m = sp.csr_matrix(train_matrix)
    return np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)


def novelty(top_ids: np.ndarray, popularity: np.ndarray, n_users: int, k: int) -> float:
    """Mean self-information -log2(p_i) of recommended items, p_i = popularity_i / n_users (clipped)."""
    ids = np.asarray(top_ids)[:, :k]
    ids = ids[ids >= 0]
    if not ids.size:
        return float("nan")
    p = np.clip(popularity[ids] / max(n_users, 1), 1.0 / max(n_users, 1), 1.0)
    return float(np.mean(-np.log2(p)))


def head_items(popularity: np.ndarray, head_fraction: float = 0.2) -> np.ndarray:
    """Indices of the `head_fraction` most popular items (by training popularity, ties by index)."""
    n_head = int(np.ceil(head_fraction * len(popularity)))
    order = np.argsort(-popularity, kind="stable")
    return order[:n_head]


def popularity_bias(
    top_ids: np.ndarray, popularity: np.ndarray, k: int = 10, head_fraction: float = 0.2
) -> float:
    """Share of recommended items (top-k) drawn from the `head_fraction` most popular training items."""
    ids = np.asarray(top_ids)[:, :k]
    ids = ids[ids >= 0]
    if not ids.size:
        return float("nan")
    is_head = np.zeros(len(popularity), dtype=bool)
    is_head[head_items(popularity, head_fraction)] = True
    return float(is_head[ids].mean())


def normalize_rows(vectors: np.ndarray | sp.spmatrix) -> sp.csr_matrix:
    """L2-normalised CSR copy of item vectors (zero rows stay zero)."""
    m = sp.csr_matrix(vectors, dtype=np.float64)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv) @ m)


def intra_list_diversity_per_case(top_ids: np.ndarray, item_vectors: sp.csr_matrix, k: int) -> np.ndarray:
    """Per-list mean pairwise cosine distance (1 - cos) of the top-k items; NaN for lists with < 2 items.

    item_vectors: (n_items, d) rows L2-normalised (`normalize_rows`). Items without features (zero rows)
    are at distance 1 from everything.
    """
    ids = np.asarray(top_ids)[:, :k]
    out = np.full(len(ids), np.nan)
    for i, row in enumerate(ids):
        row = row[row >= 0]
        m = len(row)
        if m < 2:
            continue
        v = item_vectors[row]
        gram = (v @ v.T).toarray()
        sim_sum = (gram.sum() - np.trace(gram)) / 2.0
        out[i] = 1.0 - sim_sum / (m * (m - 1) / 2.0)
    return out

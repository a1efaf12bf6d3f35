"""Tiny synthetic datasets with planted patterns for the classic-engine and evaluation tests."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommender.engines.base import InteractionData, ItemFeatures

N_ITEMS = 40


def pairs_data(n_users: int = 200, seed: int = 0) -> InteractionData:
    """Item 2k is always immediately followed by item 2k+1 (k < 10); items 20..39 are noise.

    Each user sees 3 random noise items and 2 planted pairs in random order, e.g. [n, 4, 5, n, 12, 13, n].
    """
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_users):
        noise = list(rng.choice(np.arange(20, N_ITEMS), 3, replace=False))
        pairs = rng.choice(10, 2, replace=False)
        chunks = [[int(x)] for x in noise] + [[2 * int(p), 2 * int(p) + 1] for p in pairs]
        order = rng.permutation(len(chunks))
        seqs.append([x for i in order for x in chunks[i]])
    return InteractionData.from_sequences(seqs, N_ITEMS)


def clusters_data(n_users: int = 300, n_clusters: int = 3, items_per_cluster: int = 10, seed: int = 0):
    """Users of cluster c only touch items of cluster c (items c*m .. c*m+m-1), 6 random ones each.

    Returns (data, user_cluster). Item attributes: attribute c for every item of cluster c.
    """
    rng = np.random.default_rng(seed)
    n_items = n_clusters * items_per_cluster
    user_cluster = rng.integers(0, n_clusters, n_users)
    seqs = [
        list(c * items_per_cluster + rng.choice(items_per_cluster, 6, replace=False)) for c in user_cluster
    ]
    item_cluster = np.arange(n_items) // items_per_cluster
    attrs = sp.csr_matrix((np.ones(n_items), (np.arange(n_items), item_cluster)), shape=(n_items, n_clusters))
    texts = [
        f"{['red shoes', 'blue lamp', 'green tea'][c % 3]} model {i}" for i, c in enumerate(item_cluster)
    ]
    data = InteractionData.from_sequences(
        seqs,
        n_items,
        item_features=ItemFeatures(texts=texts, attributes=attrs, category=item_cluster.astype(np.int64)),
        user_groups={"segment": np.asarray([f"s{c}" for c in user_cluster])},
    )
    return data, user_cluster

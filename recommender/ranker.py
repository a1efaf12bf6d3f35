"""Candidate pooling, named features and the LightGBM LambdaRank ranker behind the `hybrid` engine.

Pure Python (numpy / scipy / lightgbm). No Django imports.

Pipeline (shapes in comments use B = users in a batch, R = candidate rows, F = features):

1. `candidates_pool`   each base engine's top-N per history -> union, deduplicated -> `CandidateSet`
                       (R rows of (history row, item) with every engine's score and rank for the item).
2. `features_build`    `CandidateSet` + `FeatureContext` (statistics of the training interactions)
                       -> float32 (R, F) matrix whose columns are `feature_names(...)`: human-readable,
                       stable names that support staff read in the SHAP explanations.
3. `ranker_fit`        LambdaRank (`lightgbm.LGBMRanker(objective="lambdarank")`) over groups (one per
                       user), early stopping on a separate validation group set.

Missing side information never becomes zero-filled garbage: a feature whose input is absent from the
data (no prices, no categories, no timestamps, ...) is left out of the feature list altogether; a
value that is unknown for one item (price nan, category -1) is NaN, which LightGBM routes as missing.

`interactions_holdout_last` makes the ranker's labelled examples without leakage: each user's last
training interaction becomes the label and the base engines are fitted on what precedes it (see
`recommender.engines.hybrid.HybridEngine` for the whole protocol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.engines.base import Engine, InteractionData

# Display names of the registry engines, used in feature names ("EASE score", "Rank in SASRec").
ENGINE_LABELS: dict[str, str] = {
    "pop": "Popularity",
    "itemknn": "ItemKNN",
    "ease": "EASE",
    "als": "ALS",
    "bpr": "BPR",
    "content": "Content",
    "sasrec": "SASRec",
    "gru4rec": "GRU4Rec",
    "two_tower": "Two-tower",
}

RECENT_ITEMS = 5  # "recent items" = the last 5 items of the history
RECENT_DAYS = 30.0  # "Item popularity (recent)" window when timestamps exist
DAY = 86400.0

# Fixed (non-engine) features, in their stable column order. Each is present only when its input is.
FEATURE_ENGINES_AGREEING = "Engines recommending it"
FEATURE_POPULARITY = "Item popularity"
FEATURE_POPULARITY_RECENT = "Item popularity (recent)"
FEATURE_ITEM_AGE = "Item age (days)"
FEATURE_PRICE = "Price"
FEATURE_PRICE_VS_USUAL = "Price vs. shopper's usual"
FEATURE_SAME_CATEGORY_LAST = "Same category as last item"
FEATURE_SAME_CATEGORY = "Same category as recent items"
FEATURE_CATEGORY_COUNT = "Times in shopper history (category)"
FEATURE_SAME_BRAND_LAST = "Same brand as last item"
FEATURE_SAME_BRAND = "Same brand as recent items"
FEATURE_BRAND_COUNT = "Times in shopper history (brand)"
FEATURE_CONTENT_LAST = "Content similarity to last item"
FEATURE_CONTENT_RECENT = "Content similarity to recent items"
FEATURE_FOLLOWS_LAST = "Often chosen right after last item"
FEATURE_FOLLOWS_RECENT = "Often chosen right after recent items"
FEATURE_HISTORY_LENGTH = "Shopper history length"

# Plain-language phrases for the one-line explanation summary (positive contribution).
FEATURE_PHRASES: dict[str, str] = {
    FEATURE_ENGINES_AGREEING: "several models agree on it",
    FEATURE_POPULARITY: "popular with shoppers",
    FEATURE_POPULARITY_RECENT: "popular recently",
    FEATURE_ITEM_AGE: "its age in the catalogue",
    FEATURE_PRICE: "its price",
    FEATURE_PRICE_VS_USUAL: "priced like what the shopper usually buys",
    FEATURE_SAME_CATEGORY_LAST: "same category as the shopper's last item",
    FEATURE_SAME_CATEGORY: "same category as the shopper's recent items",
    FEATURE_CATEGORY_COUNT: "a category the shopper often buys",
    FEATURE_SAME_BRAND_LAST: "same brand as the shopper's last item",
    FEATURE_SAME_BRAND: "same brand as the shopper's recent items",
    FEATURE_BRAND_COUNT: "a brand the shopper often buys",
    FEATURE_CONTENT_LAST: "similar to the shopper's last item",
    FEATURE_CONTENT_RECENT: "similar to the shopper's recent items",
    FEATURE_FOLLOWS_LAST: "often chosen right after the shopper's last item",
    FEATURE_FOLLOWS_RECENT: "often chosen right after the shopper's recent items",
    FEATURE_HISTORY_LENGTH: "the length of the shopper's history",
}


def engine_label(name: str) -> str:
    """Human-readable label of a registry engine name ("ease" -> "EASE"); unknown names title-cased."""
    return ENGINE_LABELS.get(name, name.replace("_", " ").title())


def engine_feature_names(name: str) -> tuple[str, str]:
    """(score feature, rank feature) names of one base engine, e.g. ("EASE score", "Rank in EASE")."""
    label = engine_label(name)
    return f"{label} score", f"Rank in {label}"


def feature_phrase(feature: str) -> str:
    """Plain-language phrase for a feature that pushed an item up (used in explanation summaries)."""
    if feature in FEATURE_PHRASES:
        return FEATURE_PHRASES[feature]
    if feature.startswith("Rank in "):
        return f"ranked high by the {feature[len('Rank in ') :]} model"
    if feature.endswith(" score"):
        return f"scored high by the {feature[: -len(' score')]} model"
    return feature.lower()


# --------------------------------------------------------------------------------------------------
# Statistics of the training interactions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureContext:
    """Per-item statistics of the training interactions plus the side information the features use.

    Built by `feature_context_build` from the SAME interactions the base engines were fitted on, so a
    label held out for the ranker never leaks into a popularity count or a transition count.
    Optional fields are None when the data lacks their input; their features are then omitted.
    """

    n_items: int
    popularity: np.ndarray  # (n_items,) float32, log1p(number of interactions)
    popularity_recent: np.ndarray  # (n_items,) float32, log1p(interactions in the recent window)
    transitions: sp.csr_matrix  # (n_items, n_items) float32, [a, b] = times b came right after a
    item_age_days: np.ndarray | None = None  # (n_items,) float32 days before the data's end, nan unknown
    price: np.ndarray | None = None  # (n_items,) float32, nan unknown
    category: np.ndarray | None = None  # (n_items,) int64, -1 unknown
    brand: np.ndarray | None = None  # (n_items,) int64, -1 unknown
    content: sp.csr_matrix | None = None  # (n_items, d) float32 rows L2-normalised (attributes / TF-IDF)
    recent_window: str = "latest items"  # how "recent" was defined (docs / explanations)

    def feature_names(self, engines: Sequence[str]) -> list[str]:
        """Column names of `features_build`'s matrix, in order. Stable for a given engine list and data."""
        names: list[str] = []
        for e in engines:
            names.extend(engine_feature_names(e))
        if len(engines) > 1:
            names.append(FEATURE_ENGINES_AGREEING)
        names += [FEATURE_POPULARITY, FEATURE_POPULARITY_RECENT]
        if self.item_age_days is not None:
            names.append(FEATURE_ITEM_AGE)
        if self.price is not None:
            names += [FEATURE_PRICE, FEATURE_PRICE_VS_USUAL]
        if self.category is not None:
            names += [FEATURE_SAME_CATEGORY_LAST, FEATURE_SAME_CATEGORY, FEATURE_CATEGORY_COUNT]
        if self.brand is not None:
            names += [FEATURE_SAME_BRAND_LAST, FEATURE_SAME_BRAND, FEATURE_BRAND_COUNT]
        if self.content is not None:
            names += [FEATURE_CONTENT_LAST, FEATURE_CONTENT_RECENT]
        names += [FEATURE_FOLLOWS_LAST, FEATURE_FOLLOWS_RECENT, FEATURE_HISTORY_LENGTH]
        return names


def _known(arr: np.ndarray | None, *, kind: str) -> bool:
    if arr is None or len(arr) == 0:
        return False
    a = np.asarray(arr)
    return bool(np.isfinite(a).any()) if kind == "float" else bool((a >= 0).any())


def _content_matrix(data: InteractionData) -> sp.csr_matrix | None:
    """L2-normalised item vectors from attributes and/or texts (TF-IDF), or None without either."""
    from sklearn.preprocessing import normalize

    f = data.item_features
    blocks = []
    if f.attributes is not None and sp.csr_matrix(f.attributes).nnz:
        blocks.append(normalize(sp.csr_matrix(f.attributes, dtype=np.float32)))
    if f.texts is not None and any(t for t in f.texts):
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [t or "" for t in f.texts]
        try:
            tfidf = TfidfVectorizer(min_df=1, max_features=50_000, sublinear_tf=True, dtype=np.float32)
            blocks.append(sp.csr_matrix(tfidf.fit_transform(texts), dtype=np.float32))
        except ValueError:  # empty vocabulary (only stop words / blanks)
            pass
    if not blocks:
        return None
    return sp.csr_matrix(normalize(sp.hstack(blocks, format="csr")), dtype=np.float32)


def feature_context_build(data: InteractionData) -> FeatureContext:
    """Item statistics (popularity, recent popularity, item age, transitions) + side information.

    "Recent" popularity: interactions in the last `RECENT_DAYS` days before the data's last timestamp
    when timestamps exist; otherwise (sequence-only data such as Amazon Beauty) occurrences among each
    user's last `RECENT_ITEMS` items. Item age: days between `ItemFeatures.created` (or, with timestamps,
    the item's first interaction) and the data's last timestamp; omitted when neither exists.
    """
    n_items = data.n_items
    seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
    all_items = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
    pop = np.bincount(all_items, minlength=n_items)[:n_items].astype(np.float32)

    ts = data.timestamps
    has_ts = ts is not None and len(ts) == len(seqs) and any(len(t) for t in ts)
    item_age = None
    if has_ts:
        all_ts = np.concatenate([np.asarray(t, dtype=np.float64) for t in ts])
        end = float(np.nanmax(all_ts))
        recent = all_items[all_ts >= end - RECENT_DAYS * DAY]
        window = f"last {int(RECENT_DAYS)} days"
        first_seen = np.full(n_items, np.inf)
        np.minimum.at(first_seen, all_items, all_ts)
        item_age = np.where(np.isfinite(first_seen), (end - first_seen) / DAY, np.nan)
    else:
        end = None
        recent = np.concatenate([s[-RECENT_ITEMS:] for s in seqs]) if seqs else all_items
        window = f"shoppers' last {RECENT_ITEMS} items"
    pop_recent = np.bincount(recent, minlength=n_items)[:n_items].astype(np.float32)

    f = data.item_features
    if _known(f.created, kind="float"):
        created = np.asarray(f.created, dtype=np.float64)
        ref = end if end is not None else float(np.nanmax(created))
        age_created = (ref - created) / DAY
        item_age = (
            age_created if item_age is None else np.where(np.isfinite(age_created), age_created, item_age)
        )

    # Transitions a -> b between consecutive items of each sequence (session signal).
    src = np.concatenate([s[:-1] for s in seqs]) if seqs else np.zeros(0, dtype=np.int64)
    dst = np.concatenate([s[1:] for s in seqs]) if seqs else np.zeros(0, dtype=np.int64)
    keep = src != dst
    trans = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (src[keep], dst[keep])), shape=(n_items, n_items)
    )
    trans.sum_duplicates()

    return FeatureContext(
        n_items=n_items,
        popularity=np.log1p(pop),
        popularity_recent=np.log1p(pop_recent),
        transitions=trans,
        item_age_days=None if item_age is None else item_age.astype(np.float32),
        price=np.asarray(f.price, dtype=np.float32) if _known(f.price, kind="float") else None,
        category=np.asarray(f.category, dtype=np.int64) if _known(f.category, kind="int") else None,
        brand=np.asarray(f.brand, dtype=np.int64) if _known(f.brand, kind="int") else None,
        content=_content_matrix(data),
        recent_window=window,
    )


# --------------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateSet:
    """R candidate rows for a batch of histories, grouped by history (rows of one history contiguous).

    row:    (R,) int64 index into the batch's histories
    item:   (R,) int64 item index
    scores: engine name -> (R,) float32 that engine's score for the item, NaN when not in its top-N
    ranks:  engine name -> (R,) float32 1-based rank in that engine's top-N, N + 1 when not in it
    depth:  N, the number of items asked from each engine
    """

    row: np.ndarray
    item: np.ndarray
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    ranks: dict[str, np.ndarray] = field(default_factory=dict)
    depth: int = 0

    def __len__(self) -> int:
        return len(self.row)

    def group_sizes(self, n_histories: int) -> np.ndarray:
        return np.bincount(self.row, minlength=n_histories).astype(np.int64)


def _engine_lists(
    engines: Mapping[str, Engine],
    histories: Sequence[np.ndarray],
    *,
    depth: int,
    exclude: Sequence[np.ndarray] | None,
    users: np.ndarray | None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for name, eng in engines.items():
        ids, scores = eng.recommend(histories, depth, exclude=exclude, users=users)
        out[name] = (np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32))
    return out


def _lookup(keys_sorted: np.ndarray, values: np.ndarray, query: np.ndarray, missing: float) -> np.ndarray:
    """values[k] for each query key present in keys_sorted, `missing` elsewhere."""
    out = np.full(len(query), missing, dtype=np.float32)
    if len(keys_sorted) == 0:
        return out
    pos = np.searchsorted(keys_sorted, query)
    pos = np.minimum(pos, len(keys_sorted) - 1)
    hit = keys_sorted[pos] == query
    out[hit] = values[pos[hit]]
    return out


def _attach_engine_features(
    lists: dict[str, tuple[np.ndarray, np.ndarray]],
    row: np.ndarray,
    item: np.ndarray,
    n_items: int,
    depth: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    query = row * n_items + item
    scores, ranks = {}, {}
    for name, (ids, sc) in lists.items():
        n, k = ids.shape
        r = np.repeat(np.arange(n, dtype=np.int64), k)
        flat = ids.ravel()
        ok = (flat >= 0) & np.isfinite(sc.ravel())
        keys = r[ok] * n_items + flat[ok]
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        s_vals = sc.ravel()[ok][order]
        r_vals = np.tile(np.arange(1, k + 1, dtype=np.float32), n)[ok][order]
        scores[name] = _lookup(keys, s_vals, query, np.nan)
        ranks[name] = _lookup(keys, r_vals, query, float(depth + 1))
    return scores, ranks


def candidates_pool(
    engines: Mapping[str, Engine],
    histories: Sequence[np.ndarray],
    *,
    n_items: int,
    depth: int,
    exclude: Sequence[np.ndarray] | None = None,
    users: np.ndarray | None = None,
) -> CandidateSet:
    """Union of every engine's top-`depth` per history (deduplicated, excluded items never present).

    Rows are sorted by (history row, item). A history for which no engine returns anything has no rows.
    """
    lists = _engine_lists(engines, histories, depth=depth, exclude=exclude, users=users)
    keys = []
    for ids, sc in lists.values():
        n, k = ids.shape
        r = np.repeat(np.arange(n, dtype=np.int64), k)
        flat = ids.ravel()
        ok = (flat >= 0) & (flat < n_items) & np.isfinite(sc.ravel())
        keys.append(r[ok] * n_items + flat[ok])
    allk = np.unique(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.int64)
    row, item = allk // n_items, allk % n_items
    scores, ranks = _attach_engine_features(lists, row, item, n_items, depth)
    return CandidateSet(row=row, item=item, scores=scores, ranks=ranks, depth=depth)


def candidates_for_items(
    engines: Mapping[str, Engine],
    histories: Sequence[np.ndarray],
    items: Sequence[np.ndarray],
    *,
    n_items: int,
    depth: int,
    exclude: Sequence[np.ndarray] | None = None,
    users: np.ndarray | None = None,
) -> CandidateSet:
    """Rows for given (history, items) pairs, whether or not an engine retrieved them (explanations)."""
    lists = _engine_lists(engines, histories, depth=depth, exclude=exclude, users=users)
    row = np.concatenate([np.full(len(it), i, dtype=np.int64) for i, it in enumerate(items)])
    item = np.concatenate([np.asarray(it, dtype=np.int64) for it in items])
    scores, ranks = _attach_engine_features(lists, row, item, n_items, depth)
    return CandidateSet(row=row, item=item, scores=scores, ranks=ranks, depth=depth)


# --------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------


def _sparse_pick(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """m[rows[j], cols[j]] for each j, as float32 (csr element sampling, C speed)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.asarray(m[rows, cols], dtype=np.float32).ravel()


def _row_counts(values: list[np.ndarray], n_cols: int) -> sp.csr_matrix:
    """(len(values), n_cols) CSR of value counts per list, ignoring negative (unknown) values."""
    rows = (
        np.concatenate([np.full(len(v), i, dtype=np.int64) for i, v in enumerate(values)]) if values else []
    )
    cols = np.concatenate(values) if values else np.zeros(0, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    keep = cols >= 0
    m = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], cols[keep])),
        shape=(len(values), max(n_cols, 1)),
    )
    m.sum_duplicates()
    return m


def features_build(
    cands: CandidateSet,
    histories: Sequence[np.ndarray],
    context: FeatureContext,
    engines: Sequence[str],
) -> np.ndarray:
    """float32 (R, F) feature matrix for the candidate rows; columns = `context.feature_names(engines)`."""
    n_items = context.n_items
    hist = [np.asarray(h, dtype=np.int64) for h in histories]
    hist = [h[(h >= 0) & (h < n_items)] for h in hist]
    row, item = cands.row, cands.item
    cols: list[np.ndarray] = []
    for e in engines:
        cols.append(cands.scores[e])
        cols.append(cands.ranks[e])
    if len(engines) > 1:
        cols.append(np.sum([cands.ranks[e] <= cands.depth for e in engines], axis=0).astype(np.float32))
    cols.append(context.popularity[item])
    cols.append(context.popularity_recent[item])
    if context.item_age_days is not None:
        cols.append(context.item_age_days[item])

    hist_len = np.array([len(h) for h in hist], dtype=np.float32)
    recent = [h[-RECENT_ITEMS:] for h in hist]
    if context.price is not None:
        price = context.price
        usual = np.array(
            [np.nanmedian(price[h]) if len(h) and np.isfinite(price[h]).any() else np.nan for h in hist],
            dtype=np.float32,
        )
        p = price[item]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(usual[row] > 0, p / usual[row], np.nan).astype(np.float32)
        cols += [p, ratio]
    for attr in (context.category, context.brand):
        if attr is None:
            continue
        n_vals = int(attr.max()) + 1
        rec_counts = _row_counts([attr[h] for h in recent], n_vals)
        all_counts = _row_counts([attr[h] for h in hist], n_vals)
        a = attr[item]
        known = a >= 0
        last_attr = np.array([attr[h[-1]] if len(h) else -1 for h in hist], dtype=np.int64)[row]
        same_last = np.where(known & (last_attr >= 0), (a == last_attr).astype(np.float32), np.nan)
        share = np.full(len(item), np.nan, dtype=np.float32)
        count = np.full(len(item), np.nan, dtype=np.float32)
        rec_len = np.array([len(r) for r in recent], dtype=np.float32)
        if known.any():
            share[known] = _sparse_pick(rec_counts, row[known], a[known]) / np.maximum(rec_len[row[known]], 1)
            count[known] = _sparse_pick(all_counts, row[known], a[known])
        cols += [same_last.astype(np.float32), share, count]
    if context.content is not None:
        c = context.content
        last = np.array([h[-1] if len(h) else -1 for h in hist], dtype=np.int64)
        has_last = last[row] >= 0
        sim_last = np.full(len(item), np.nan, dtype=np.float32)
        if has_last.any():
            a = c[last[row[has_last]]]
            b = c[item[has_last]]
            sim_last[has_last] = np.asarray(a.multiply(b).sum(axis=1), dtype=np.float32).ravel()
        prof = _row_counts(recent, n_items)  # (B, n_items) counts of recent items
        prof = (
            sp.diags(1.0 / np.maximum(np.asarray(prof.sum(axis=1)).ravel(), 1)).dot(prof) @ c
        )  # mean vector
        prof = sp.csr_matrix(prof, dtype=np.float32)
        sim_recent = np.asarray(prof[row].multiply(c[item]).sum(axis=1), dtype=np.float32).ravel()
        sim_recent[hist_len[row] == 0] = np.nan
        cols += [sim_last, sim_recent]
    t = context.transitions
    last = np.array([h[-1] if len(h) else -1 for h in hist], dtype=np.int64)
    has_last = last[row] >= 0
    follows_last = np.zeros(len(item), dtype=np.float32)
    if has_last.any():
        follows_last[has_last] = _sparse_pick(t, last[row[has_last]], item[has_last])
    rec_counts_items = _row_counts(recent, n_items)
    # Sum over the recent items r of transitions[r, item] = (recent-count row vector @ T)[item].
    follows_recent = _sparse_pick(sp.csr_matrix(rec_counts_items @ t), row, item)
    cols += [np.log1p(follows_last), np.log1p(follows_recent), hist_len[row]]
    return np.column_stack(cols).astype(np.float32) if cols else np.zeros((len(item), 0), dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# Labelled examples without leakage
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutSplit:
    """`prefix`: the interactions with each labelled user's last interaction removed (base engines fit
    here); `users`: the labelled users; `histories[j]`: users[j]'s history before the label;
    `labels[j]`: the held-out item."""

    prefix: InteractionData
    users: np.ndarray
    histories: list[np.ndarray]
    labels: np.ndarray


def interactions_holdout_last(data: InteractionData, *, min_history: int = 1) -> HoldoutSplit:
    """Hold out each user's LAST training interaction as the ranker's label (generic: works for
    leave-one-out sequences and for temporal event logs alike).

    Users with fewer than `min_history` + 1 interactions keep all their interactions in `prefix` and give
    no label. The matrix entry of a held-out (user, item) is removed unless the item also occurs earlier
    in that user's sequence (then the earlier interaction stays); other weights are kept. Timestamps are
    trimmed alongside; `sessions` are dropped (they cannot be trimmed per user), so session engines fall
    back to sequences during the ranker's label stage.
    """
    seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
    users, hists, labels, new_seqs = [], [], [], []
    drop_rows, drop_cols = [], []
    for u, s in enumerate(seqs):
        if len(s) >= min_history + 1:
            users.append(u)
            hists.append(s[:-1])
            labels.append(int(s[-1]))
            new_seqs.append(s[:-1])
            if s[-1] not in s[:-1]:
                drop_rows.append(u)
                drop_cols.append(int(s[-1]))
        else:
            new_seqs.append(s)
    m = sp.csr_matrix(data.matrix, copy=True)
    if drop_rows:
        mask = sp.csr_matrix(
            (np.ones(len(drop_rows), dtype=np.float32), (drop_rows, drop_cols)), shape=m.shape
        )
        m = m - m.multiply(mask)
        m.eliminate_zeros()
        m = sp.csr_matrix(m)
    ts = None
    if data.timestamps is not None:
        ts = [np.asarray(t)[: len(s)] for t, s in zip(data.timestamps, new_seqs)]
    prefix = InteractionData(
        matrix=m,
        sequences=new_seqs,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        timestamps=ts,
        sessions=None,
        item_features=data.item_features,
        user_groups=data.user_groups,
    )
    return HoldoutSplit(
        prefix=prefix,
        users=np.asarray(users, dtype=np.int64),
        histories=hists,
        labels=np.asarray(labels, dtype=np.int64),
    )


@dataclass(frozen=True)
class RankerGroups:
    """LambdaRank training data: X (R, F), y (R,) 0/1, group sizes (G,), users (G,) labelled users kept."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    users: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.group)

    @staticmethod
    def concat(parts: Sequence[RankerGroups], n_features: int) -> RankerGroups:
        if not parts:
            return RankerGroups(
                X=np.zeros((0, n_features), dtype=np.float32),
                y=np.zeros(0, dtype=np.float32),
                group=np.zeros(0, dtype=np.int64),
                users=np.zeros(0, dtype=np.int64),
            )
        return RankerGroups(
            X=np.concatenate([p.X for p in parts]),
            y=np.concatenate([p.y for p in parts]),
            group=np.concatenate([p.group for p in parts]),
            users=np.concatenate([p.users for p in parts]),
        )


def ranker_groups_build(
    cands: CandidateSet,
    X: np.ndarray,
    targets: Sequence[np.ndarray] | np.ndarray,
    users: np.ndarray,
    *,
    max_negatives: int | None,
    rng: np.random.Generator,
) -> RankerGroups:
    """Turn candidate rows + features into LambdaRank groups.

    targets[i]: the target item (or array of target items) of history row i; a candidate is positive
    when it is a target. Groups without a target among their candidates (nothing to learn) are dropped;
    with `max_negatives`, each kept group keeps its positives and at most that many negatives drawn
    uniformly from its candidates.
    """
    n_hist = len(targets)
    t_rows, t_items = [], []
    for i, t in enumerate(targets):
        t = np.atleast_1d(np.asarray(t, dtype=np.int64))
        t_rows.append(np.full(len(t), i, dtype=np.int64))
        t_items.append(t)
    n_items = (
        int(max(int(cands.item.max(initial=0)), int(max((t.max(initial=0) for t in t_items), default=0)))) + 1
    )
    t_keys = (
        np.concatenate(t_rows) * n_items + np.concatenate(t_items) if t_rows else np.zeros(0, dtype=np.int64)
    )
    y_all = np.isin(cands.row * n_items + cands.item, t_keys).astype(np.float32)
    has_pos = np.bincount(cands.row[y_all > 0], minlength=n_hist) > 0
    keep = has_pos[cands.row]
    if max_negatives is not None:
        neg = keep & (y_all == 0)
        neg_idx = np.flatnonzero(neg)
        # Random priority per row, keep the `max_negatives` smallest priorities within each group.
        prio = rng.random(len(neg_idx))
        order = np.lexsort((prio, cands.row[neg_idx]))
        sorted_idx = neg_idx[order]
        sorted_rows = cands.row[sorted_idx]
        starts = np.searchsorted(sorted_rows, sorted_rows, side="left")
        within = np.arange(len(sorted_idx)) - starts
        drop = sorted_idx[within >= max_negatives]
        keep = keep.copy()
        keep[drop] = False
    idx = np.flatnonzero(keep)  # already sorted by row (candidate rows are grouped by row)
    rows = cands.row[idx]
    kept_hist = np.flatnonzero(has_pos)
    return RankerGroups(
        X=X[idx],
        y=y_all[idx],
        group=np.bincount(rows, minlength=n_hist)[kept_hist].astype(np.int64),
        users=np.asarray(users)[kept_hist],
    )


# --------------------------------------------------------------------------------------------------
# LightGBM
# --------------------------------------------------------------------------------------------------

DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 400,
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "reg_lambda": 1.0,
    "lambdarank_truncation_level": 20,
}


def ranker_fit(
    train: RankerGroups,
    valid: RankerGroups | None,
    *,
    feature_names: Sequence[str],
    params: Mapping[str, Any] | None = None,
    early_stopping_rounds: int = 30,
    n_threads: int = 2,
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """Fit `LGBMRanker(objective="lambdarank")`; early stopping on NDCG@10 of `valid` when given.

    Returns (lightgbm.Booster, info) where info has best_iteration and the validation NDCG@10 curve end.
    Raises ValueError when there is no labelled group to learn from.
    """
    import lightgbm as lgb

    if train.n_groups == 0:
        raise ValueError(
            "The hybrid ranker has no labelled examples: no user's held-out item was among the base "
            "engines' candidates. Use more data, more candidates (n_candidates) or other base engines."
        )
    p = dict(DEFAULT_LGBM_PARAMS)
    p.update(params or {})
    names = [_lgb_safe(n) for n in feature_names]
    model = lgb.LGBMRanker(objective="lambdarank", n_jobs=n_threads, random_state=seed, verbose=-1, **p)
    fit_kw: dict[str, Any] = {"group": train.group, "feature_name": names}
    callbacks = []
    if valid is not None and valid.n_groups:
        fit_kw.update(eval_X=(valid.X,), eval_y=(valid.y,), eval_group=[valid.group], eval_at=[10])
        callbacks.append(lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False))
    model.fit(train.X, train.y, callbacks=callbacks, **fit_kw)
    booster = model.booster_
    best = int(model.best_iteration_ or 0) or booster.current_iteration()
    info: dict[str, Any] = {
        "best_iteration": best,
        "train_groups": train.n_groups,
        "train_rows": len(train.y),
    }
    if valid is not None and valid.n_groups:
        info["valid_groups"] = valid.n_groups
        info["valid_ndcg@10"] = float(model.best_score_["valid_0"]["ndcg@10"])
    if best < booster.current_iteration():
        # Keep only the trees up to the best iteration so predictions, SHAP and saved models agree.
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return booster, info


def _lgb_safe(name: str) -> str:
    """LightGBM rejects some characters in feature names; the human-readable names live beside the model."""
    out = "".join(ch if ch.isalnum() else "_" for ch in name)
    return out.strip("_") or "f"


def booster_predict(booster: Any, X: np.ndarray) -> np.ndarray:
    """Raw ranker scores (R,) float64 (the same scale SHAP explains)."""
    if len(X) == 0:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(booster.predict(X, raw_score=True), dtype=np.float64)


def feature_importance(booster: Any, feature_names: Sequence[str]) -> list[tuple[str, float]]:
    """(feature name, total gain share) sorted descending; shares sum to 1."""
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    total = gain.sum() or 1.0
    pairs = [(n, float(g / total)) for n, g in zip(feature_names, gain)]
    return sorted(pairs, key=lambda p: -p[1])

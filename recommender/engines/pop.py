"""Popularity engines: global, trending (time-decayed), within a category, within a customer segment.

Pure numpy; no Django imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ._common import state_load, state_save
from .base import InteractionData, default_exclude, top_k

MODES = ("global", "trending", "category", "segment")


class PopularityEngine:
    """Recommends what is popular.

    Hyperparameters (constructor keywords, defaults in brackets)
    ------------------------------------------------------------
    mode ["global"]
        "global"   -- number of distinct users who interacted with each item (matrix column counts).
        "trending" -- every interaction weighted 0.5 ** (age / half_life_days), age measured from the newest
                      interaction in the training data; needs `InteractionData.timestamps` (falls back to
                      "global" counts when the data has none, e.g. plain sequence files).
        "category" -- popularity re-weighted by how much of the shopper's history falls in each item's
                      category (`ItemFeatures.category`): score_i = pop_i * (share_c(i) + category_floor).
                      `popular_in_category(category, k)` lists a category's bestsellers.
        "segment"  -- popularity among the users of the same segment (`InteractionData.user_groups
                      [segment_key]`, e.g. "gender" or "age_group"); `recommend(..., users=...)` picks each
                      user's segment, unknown users (-1) get global popularity.
                      `popular_in_segment(label, k)` lists a segment's favourites.
    half_life_days [7.0]      -- trending half-life.
    segment_key [None]        -- which user_groups key defines segments (mode "segment"; first key if None).
    category_floor [0.05]     -- mode "category": weight kept by items outside the history's categories,
                                 so the list is backfilled with global bestsellers.

    Scores are popularity normalised to [0, 1] (max = 1). `similar_items` returns the most popular items of
    the same category (global bestsellers when categories are unknown).
    """

    name: ClassVar[str] = "pop"
    param_grid: ClassVar[list[dict[str, Any]]] = [
        {"mode": "global"},
        {"mode": "trending", "half_life_days": 7.0},
        {"mode": "trending", "half_life_days": 60.0},
    ]

    @classmethod
    def param_grid_for(cls, data: InteractionData) -> list[dict[str, Any]]:
        """The trending variants only differ from "global" when the data has timestamps."""
        if data.timestamps is None:
            return [{"mode": "global"}]
        return list(cls.param_grid)

    def __init__(
        self,
        *,
        mode: str = "global",
        half_life_days: float = 7.0,
        segment_key: str | None = None,
        category_floor: float = 0.05,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        self.mode = mode
        self.half_life_days = float(half_life_days)
        self.segment_key = segment_key
        self.category_floor = float(category_floor)
        self.popularity_: np.ndarray | None = None  # (n_items,) in [0, 1]
        self.category_: np.ndarray | None = None  # (n_items,) int, -1 unknown
        self.segment_pop_: np.ndarray | None = None  # (n_segments, n_items)
        self.segment_labels_: np.ndarray | None = None  # (n_segments,) str
        self.user_segment_: np.ndarray | None = None  # (n_users,) int segment index, -1 unknown

    def get_params(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "half_life_days": self.half_life_days,
            "segment_key": self.segment_key,
            "category_floor": self.category_floor,
        }

    # ------------------------------------------------------------------------------------------ fit

    def _counts(self, data: InteractionData, rows: np.ndarray | None = None) -> np.ndarray:
        """Per-item popularity over users `rows` (all when None)."""
        if self.mode == "trending" and data.timestamps is not None:
            idx = range(data.n_users) if rows is None else rows
            seqs = [np.asarray(data.sequences[u], dtype=np.int64) for u in idx]
            ts = [np.asarray(data.timestamps[u], dtype=np.float64) for u in idx]
            all_t = [t for t in data.timestamps if len(t)]
            if seqs and all_t:
                t_ref = max(float(np.max(t)) for t in all_t)
                items = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
                times = np.concatenate(ts) if ts else np.zeros(0)
                w = np.power(0.5, (t_ref - times) / (self.half_life_days * 86400.0))
                return np.bincount(items, weights=w, minlength=data.n_items).astype(np.float64)
        m = data.matrix if rows is None else data.matrix[rows]
        return np.bincount(m.indices, minlength=data.n_items).astype(np.float64)

    @staticmethod
    def _normalise(c: np.ndarray) -> np.ndarray:
        top = c.max(initial=0.0)
        return c / top if top > 0 else c.astype(np.float64)

    def fit(self, data: InteractionData) -> PopularityEngine:
        self.popularity_ = self._normalise(self._counts(data))
        cat = data.item_features.category
        self.category_ = (
            np.asarray(cat, dtype=np.int64) if cat is not None else np.full(data.n_items, -1, dtype=np.int64)
        )
        if self.mode == "category" and cat is None:
            raise ValueError("mode='category' needs ItemFeatures.category")
        self.segment_pop_ = self.segment_labels_ = self.user_segment_ = None
        if self.mode == "segment":
            if not data.user_groups:
                raise ValueError("mode='segment' needs InteractionData.user_groups")
            key = self.segment_key or next(iter(data.user_groups))
            if key not in data.user_groups:
                raise ValueError(f"segment_key {key!r} not in user_groups ({', '.join(data.user_groups)})")
            self.segment_key = key
            labels = np.asarray(data.user_groups[key]).astype(str)
            uniq, inv = np.unique(labels, return_inverse=True)
            self.segment_labels_ = uniq
            self.user_segment_ = inv.astype(np.int64)
            self.segment_pop_ = np.vstack(
                [self._normalise(self._counts(data, np.flatnonzero(inv == s))) for s in range(len(uniq))]
            )
        return self

    # ------------------------------------------------------------------------------------ predict

    def _check(self) -> None:
        if self.popularity_ is None:
            raise RuntimeError("engine is not fitted; call fit() or load() first")

    def score(self, histories: Sequence[np.ndarray], users: np.ndarray | None = None) -> np.ndarray:
        """(n, n_items) scores, higher is better (before excluding anything)."""
        self._check()
        n = len(histories)
        base = np.tile(self.popularity_.astype(np.float32), (n, 1))
        if self.mode == "segment" and users is not None and self.segment_pop_ is not None:
            users = np.asarray(users, dtype=np.int64)
            for i, u in enumerate(users):
                if 0 <= u < len(self.user_segment_):
                    base[i] = self.segment_pop_[self.user_segment_[u]]
        if self.mode == "category":
            n_cat = int(self.category_.max(initial=-1)) + 1
            known = self.category_ >= 0
            for i, h in enumerate(histories):
                h = np.asarray(h, dtype=np.int64)
                cats = self.category_[h[(h >= 0) & (h < len(self.category_))]]
                cats = cats[cats >= 0]
                share = np.bincount(cats, minlength=n_cat) / max(len(cats), 1) if n_cat else np.zeros(0)
                weight = np.full(len(self.category_), self.category_floor, dtype=np.float32)
                if n_cat:
                    weight[known] += share[self.category_[known]]
                base[i] *= weight
        return base

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return top_k(self.score(histories, users=users), k, default_exclude(histories, exclude))

    def similar_items(self, item_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Most popular items of each item's category (global bestsellers when its category is unknown)."""
        self._check()
        item_ids = np.asarray(item_ids, dtype=np.int64)
        scores = np.tile(self.popularity_.astype(np.float32), (len(item_ids), 1))
        for i, it in enumerate(item_ids):
            c = self.category_[it]
            if c >= 0:
                scores[i, self.category_ != c] *= 1e-3  # same category first, others as backfill
        return top_k(scores, k, [np.asarray([it]) for it in item_ids])

    def popular_in_category(self, category: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items of `category` by popularity (fewer when the category is small)."""
        self._check()
        s = np.where(self.category_ == category, self.popularity_, -np.inf).astype(np.float32)[None, :]
        ids, vals = top_k(s, k)
        return ids[0], vals[0]

    def popular_in_segment(self, label: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items among users whose segment label is `label` (mode "segment")."""
        self._check()
        if self.segment_labels_ is None:
            raise ValueError("popular_in_segment needs mode='segment'")
        hit = np.flatnonzero(self.segment_labels_ == str(label))
        if not len(hit):
            raise KeyError(f"unknown segment {label!r}; known: {', '.join(self.segment_labels_.tolist())}")
        ids, vals = top_k(self.segment_pop_[hit[0]][None, :].astype(np.float32), k)
        return ids[0], vals[0]

    # --------------------------------------------------------------------------------- persistence

    def save(self, path: Path) -> None:
        self._check()
        state_save(
            path,
            params=self.get_params(),
            arrays={
                "popularity": self.popularity_,
                "category": self.category_,
                "segment_pop": self.segment_pop_,
                "segment_labels": None if self.segment_labels_ is None else self.segment_labels_.astype(str),
                "user_segment": self.user_segment_,
            },
        )

    @classmethod
    def load(cls, path: Path) -> PopularityEngine:
        params, arrays = state_load(path)
        eng = cls(**params)
        eng.popularity_ = arrays["popularity"]
        eng.category_ = arrays["category"]
        eng.segment_pop_ = arrays.get("segment_pop")
        eng.segment_labels_ = arrays.get("segment_labels")
        eng.user_segment_ = arrays.get("user_segment")
        return eng

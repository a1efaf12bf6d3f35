"""`hybrid`: a LightGBM LambdaRank ranker over candidates pooled from other engines, with named features.

Pure Python; no Django imports. Feature building and the ranker live in `recommender.ranker`, the SHAP
explainer in `recommender.explain`.
"""

from __future__ import annotations

import inspect
import io
import pickle
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recommender import ranker as rk
from recommender.engines.base import Engine, InteractionData, default_exclude, top_k

_FORMAT = "recsite-hybrid-v1"

# Base-engine settings used unless `base_params` names the engine. Chosen on the Amazon Beauty VALIDATION
# split (docs/benchmarks/hybrid.md): the order-aware item-kNN ("what comes next after a") gives the ranker
# a sequential signal that the bag-of-items engines lack.
DEFAULT_BASE_PARAMS: dict[str, dict[str, Any]] = {"itemknn": {"mode": "sequence", "history_decay": 0.4}}


def _base_engine_create(name: str, params: Mapping[str, Any]) -> Engine:
    from recommender.engines import engine_create

    if name == "hybrid":
        raise ValueError("The hybrid engine cannot use itself as a base engine.")
    return engine_create(name, **dict(params))


def _engine_to_bytes(engine: Engine) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "engine.bin"
        engine.save(p)
        return p.read_bytes()


def _engine_from_bytes(name: str, blob: bytes) -> Engine:
    from recommender.engines import engine_class

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "engine.bin"
        p.write_bytes(blob)
        return engine_class(name).load(p)


def _pop_rank(popularity: np.ndarray) -> np.ndarray:
    """(n_items,) float32 in [0, 1): 0 for the most popular item, increasing with popularity rank."""
    order = np.argsort(-popularity, kind="stable")
    rank = np.empty(len(order), dtype=np.float32)
    rank[order] = np.arange(len(order), dtype=np.float32) / max(len(order), 1)
    return rank


def _valid_cases(valid: Any) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None] | None:
    """(histories, per-case target arrays, users or None) from an EvalSet-like object or a tuple."""
    if valid is None:
        return None
    if hasattr(valid, "histories") and hasattr(valid, "targets"):
        hist, targets, users = valid.histories, valid.targets, getattr(valid, "users", None)
    else:
        try:
            hist, targets = valid
        except (TypeError, ValueError):
            raise ValueError("valid must be an EvalSet or a (histories, targets) pair") from None
        users = None
    if len(hist) != len(targets):
        raise ValueError(f"valid has {len(hist)} histories but {len(targets)} targets")
    hist = [np.asarray(h, dtype=np.int64) for h in hist]
    targets = [np.atleast_1d(np.asarray(t, dtype=np.int64)) for t in targets]
    if users is not None:
        users = np.asarray(users, dtype=np.int64)
        if (users < 0).any():  # anonymous cases: the base engines serve them from the history alone
            users = None
    return hist, targets, users


class HybridEngine:
    """LambdaRank re-ranker over the pooled top-N of several base engines.

    Candidates: each base engine's top-`n_candidates` per history, deduplicated (history items and
    `exclude` never enter). Features (`recommender.ranker`, human-readable names): per base engine its
    score and rank ("EASE score", "Rank in EASE"), how many engines propose the item, item popularity
    (overall and recent), item age, price and price vs. the shopper's usual, same category/brand as
    recent items and counts in the history, content similarity to the last / recent items, how often the
    item came right after the shopper's last / recent items, history length. A feature whose side
    information the data lacks is omitted.

    Training without leakage (`fit(data)`, where `data` is the training part only):

    1. Hold out each user's LAST training interaction as the ranker's label
       (`ranker.interactions_holdout_last`). Under leave-one-out (sequence i1..in, training part
       i1..i(n-2)) the label is i(n-2) and the history i1..i(n-3); for a shop's temporal split it is each
       user's last interaction before the split. The validation item i(n-1) and the test item in are never
       in `data`, so they can never be labels.
    2. Fit the base engines (and the popularity / transition statistics) on the interactions WITHOUT the
       labels; pool candidates for each labelled user's history; label = "candidate is the held-out item".
       Users whose label is not among the candidates are dropped; each group keeps at most
       `max_negatives` negatives, sampled uniformly.
    3. Refit the base engines and statistics on the whole training part (`refit_base=True`) for serving.
    4. Fit `LGBMRanker(objective="lambdarank")` with early stopping on NDCG@10 of a validation group set:
       `fit(data, valid=...)` (an `EvalSet` or (histories, targets)) when the caller has a validation split (LOO:
       histories i1..i(n-2), targets i(n-1), candidates from the refitted engines, exactly like serving);
       otherwise a `valid_fraction` of the labelled users' groups from step 2. Validation is only ever used
       for early stopping and tuning; the test item is never seen.

    `recommend`: candidates -> features -> ranker raw score -> top-k; when the candidates cannot fill k
    (or a history has none, e.g. an empty history), the rest is filled by training popularity, scored
    below every ranked candidate.

    Hyperparameters:
      base_engines          registry names of the engines pooled (("ease", "itemknn")); any registry
                            engine works, e.g. ("ease", "itemknn", "sasrec") where SASRec's training time
                            fits the budget (GPU)
      base_params           {engine name: constructor kwargs} for the base engines; engines not named get
                            DEFAULT_BASE_PARAMS (itemknn: order-aware "sequence" mode) or their own defaults
      n_candidates          items asked from each base engine per history (100)
      max_negatives         negatives kept per training group (50; None keeps all)
      lgbm_params           overrides of `ranker.DEFAULT_LGBM_PARAMS` (n_estimators, learning_rate, ...)
      early_stopping_rounds rounds without NDCG@10 gain before stopping (30)
      valid_fraction        share of label groups held out for early stopping without `valid` (0.1)
      max_valid_users       at most this many validation users are pooled for early stopping (5000)
      refit_base            refit the base engines on the whole training part for serving (True); False
                            serves with the label-stage engines; a list refits only those engines (e.g.
                            the cheap ones, keeping an expensive SASRec fitted without the last items)
      batch_size            histories per candidate/feature batch (bounds memory; 1024)
      n_threads             LightGBM threads (2)
      seed                  negative sampling / validation split / LightGBM seed (0)
    """

    name: ClassVar[str] = "hybrid"
    # No grid by default: every grid point refits all base engines (twice), which does not fit the
    # evaluation time budget; the ranker tunes itself by early stopping on validation instead.
    param_grid: ClassVar[dict[str, list[Any]]] = {}

    def __init__(
        self,
        *,
        base_engines: Sequence[str] = ("ease", "itemknn"),
        base_params: Mapping[str, Mapping[str, Any]] | None = None,
        n_candidates: int = 100,
        max_negatives: int | None = 50,
        lgbm_params: Mapping[str, Any] | None = None,
        early_stopping_rounds: int = 30,
        valid_fraction: float = 0.1,
        max_valid_users: int = 5000,
        refit_base: bool | Sequence[str] = True,
        batch_size: int = 1024,
        n_threads: int = 2,
        seed: int = 0,
    ) -> None:
        base_engines = tuple(base_engines)
        if not base_engines:
            raise ValueError("hybrid needs at least one base engine (base_engines=('ease', ...)).")
        if len(set(base_engines)) != len(base_engines):
            raise ValueError(f"hybrid base_engines has duplicates: {base_engines}")
        if "hybrid" in base_engines:
            raise ValueError("The hybrid engine cannot use itself as a base engine.")
        if n_candidates < 1:
            raise ValueError("n_candidates must be >= 1")
        if not 0.0 < valid_fraction < 1.0:
            raise ValueError("valid_fraction must be between 0 and 1")
        self.base_engines = base_engines
        given = {k: dict(v) for k, v in (base_params or {}).items()}
        unknown = set(given) - set(base_engines)
        if unknown:
            raise ValueError(f"base_params for engines not in base_engines: {sorted(unknown)}")
        defaults = {k: dict(v) for k, v in DEFAULT_BASE_PARAMS.items() if k in base_engines}
        self.base_params = {**defaults, **given}
        self.n_candidates = int(n_candidates)
        self.max_negatives = None if max_negatives is None else int(max_negatives)
        self.lgbm_params = dict(lgbm_params or {})
        self.early_stopping_rounds = int(early_stopping_rounds)
        self.valid_fraction = float(valid_fraction)
        self.max_valid_users = int(max_valid_users)
        if isinstance(refit_base, str):
            refit_base = (refit_base,)
        if not isinstance(refit_base, bool):
            refit_base = tuple(refit_base)
            stray = set(refit_base) - set(base_engines)
            if stray:
                raise ValueError(f"refit_base names engines not in base_engines: {sorted(stray)}")
        self.refit_base = refit_base
        self.batch_size = int(batch_size)
        self.n_threads = int(n_threads)
        self.seed = int(seed)
        # Fitted state.
        self.engines_: dict[str, Engine] = {}
        self.context_: rk.FeatureContext | None = None
        self.booster_: Any = None
        self.feature_names_: list[str] = []
        self.pop_rank_: np.ndarray = np.zeros(0, dtype=np.float32)
        self.n_items_: int = 0
        self.fit_info_: dict[str, Any] = {}
        self._explainer: Any = None
        self._valid_raw: Any = None

    # ------------------------------------------------------------------ params

    def get_params(self) -> dict[str, Any]:
        return {
            "base_engines": list(self.base_engines),
            "base_params": {k: dict(v) for k, v in self.base_params.items()},
            "n_candidates": self.n_candidates,
            "max_negatives": self.max_negatives,
            "lgbm_params": dict(self.lgbm_params),
            "early_stopping_rounds": self.early_stopping_rounds,
            "valid_fraction": self.valid_fraction,
            "max_valid_users": self.max_valid_users,
            "refit_base": self.refit_base if isinstance(self.refit_base, bool) else list(self.refit_base),
            "batch_size": self.batch_size,
            "n_threads": self.n_threads,
            "seed": self.seed,
        }

    # ------------------------------------------------------------------ fit

    def _check_fitted(self) -> None:
        if self.booster_ is None or self.context_ is None:
            raise RuntimeError("HybridEngine is not fitted: call fit(data) or load(path) first.")

    def _batches(self, n: int):
        for start in range(0, n, self.batch_size):
            yield slice(start, min(n, start + self.batch_size))

    def _groups(
        self,
        engines: Mapping[str, Engine],
        context: rk.FeatureContext,
        histories: Sequence[np.ndarray],
        targets: Sequence[np.ndarray] | np.ndarray,
        users: np.ndarray | None,
        *,
        max_negatives: int | None,
        rng: np.random.Generator,
    ) -> tuple[rk.RankerGroups, int]:
        parts, n_rows = [], 0
        ids = np.arange(len(histories)) if users is None else users
        for sl in self._batches(len(histories)):
            hist = [np.asarray(h, dtype=np.int64) for h in histories[sl]]
            u = None if users is None else users[sl]
            cands = rk.candidates_pool(
                engines, hist, n_items=context.n_items, depth=self.n_candidates, exclude=hist, users=u
            )
            n_rows += len(cands)
            X = rk.features_build(cands, hist, context, self.base_engines)
            parts.append(
                rk.ranker_groups_build(cands, X, targets[sl], ids[sl], max_negatives=max_negatives, rng=rng)
            )
        return rk.RankerGroups.concat(parts, len(context.feature_names(self.base_engines))), n_rows

    def _fit_engines(
        self,
        data: InteractionData,
        valid: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
        names: Sequence[str] | None = None,
    ) -> dict[str, Engine]:
        """Fit every base engine on `data`. `valid` (histories, targets) goes to engines whose fit accepts a
        `valid` or `validation` keyword (early stopping only); single-target cases only for `validation`."""
        out = {}
        for n in self.base_engines if names is None else names:
            eng = _base_engine_create(n, self.base_params.get(n, {}))
            kw: dict[str, Any] = {}
            if valid is not None:
                try:
                    sig = inspect.signature(eng.fit).parameters
                except (TypeError, ValueError):
                    sig = {}
                single = all(len(t) == 1 for t in valid[1])
                if "validation" in sig and single:
                    kw["validation"] = (valid[0], np.array([int(t[0]) for t in valid[1]], dtype=np.int64))
                elif "valid" in sig and self._valid_raw is not None:
                    kw["valid"] = self._valid_raw
            out[n] = eng.fit(data, **kw)
        return out

    def fit(self, data: InteractionData, *, valid: Any = None) -> HybridEngine:
        """Fit on the training part `data` (see the class docstring for the leakage-free protocol).

        valid: optional validation cases, used ONLY for early stopping -- the evaluation runner's `EvalSet`
        (histories, targets, users) or a (histories, target items) tuple, e.g. leave-one-out histories
        i1..i(n-2) with targets i(n-1). The refitted base engines also get it for their own early stopping
        when their `fit` accepts `validation`/`valid`. Never pass test targets.
        """
        rng = np.random.default_rng(self.seed)
        v_cases = _valid_cases(valid)
        self._valid_raw = valid
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        split = rk.interactions_holdout_last(data)
        if len(split.users) == 0:
            raise ValueError("hybrid needs users with at least 2 interactions to learn its ranker.")
        engines_label = self._fit_engines(split.prefix)
        ctx_label = rk.feature_context_build(split.prefix)
        timings["fit_base_engines_on_prefix"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        train, n_rows = self._groups(
            engines_label,
            ctx_label,
            split.histories,
            split.labels,
            split.users,
            max_negatives=self.max_negatives,
            rng=rng,
        )
        timings["label_candidates_and_features"] = time.perf_counter() - t0
        label_recall = train.n_groups / max(len(split.users), 1)
        names = ctx_label.feature_names(self.base_engines)

        t0 = time.perf_counter()
        refit = (
            self.base_engines
            if self.refit_base is True
            else ()
            if self.refit_base is False
            else self.refit_base
        )
        refitted = self._fit_engines(data, None if v_cases is None else (v_cases[0], v_cases[1]), names=refit)
        engines = {n: refitted.get(n, engines_label[n]) for n in self.base_engines}
        del engines_label
        context = rk.feature_context_build(data)
        if context.feature_names(self.base_engines) != names:  # side information cannot differ; guard anyway
            raise RuntimeError("hybrid: feature set changed between the label stage and the full data")
        timings["refit_base_engines"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        if v_cases is not None:
            v_hist, v_targets, v_users = v_cases
            sel = np.arange(len(v_hist))
            if len(sel) > self.max_valid_users:
                sel = np.sort(rng.choice(len(sel), self.max_valid_users, replace=False))
            valid_groups, _ = self._groups(
                engines,
                context,
                [v_hist[i] for i in sel],
                [v_targets[i] for i in sel],
                None if v_users is None else v_users[sel],
                max_negatives=None,
                rng=rng,
            )
            valid_source = "validation split"
        else:
            # Hold out whole users' groups (never rows of one group on both sides).
            n_valid = max(1, int(round(self.valid_fraction * train.n_groups))) if train.n_groups > 1 else 0
            is_valid = np.zeros(train.n_groups, dtype=bool)
            if n_valid:
                is_valid[rng.choice(train.n_groups, n_valid, replace=False)] = True
            row_group = np.repeat(np.arange(train.n_groups), train.group)
            valid_groups = rk.RankerGroups(
                X=train.X[is_valid[row_group]],
                y=train.y[is_valid[row_group]],
                group=train.group[is_valid],
                users=train.users[is_valid],
            )
            train = rk.RankerGroups(
                X=train.X[~is_valid[row_group]],
                y=train.y[~is_valid[row_group]],
                group=train.group[~is_valid],
                users=train.users[~is_valid],
            )
            valid_source = "held-out label users"
        timings["validation_groups"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        booster, info = rk.ranker_fit(
            train,
            valid_groups if valid_groups.n_groups else None,
            feature_names=names,
            params=self.lgbm_params,
            early_stopping_rounds=self.early_stopping_rounds,
            n_threads=self.n_threads,
            seed=self.seed,
        )
        timings["lightgbm"] = time.perf_counter() - t0

        self.engines_ = engines
        self.context_ = context
        self.booster_ = booster
        self.feature_names_ = names
        self.n_items_ = data.n_items
        self.pop_rank_ = _pop_rank(context.popularity)
        self._explainer = None
        self._valid_raw = None
        self.fit_info_ = {
            **info,
            "label_users": int(len(split.users)),
            "label_candidate_rows": int(n_rows),
            "label_recall_in_candidates": float(label_recall),
            "early_stopping_on": valid_source,
            "timings_s": timings,
            "feature_importance": rk.feature_importance(booster, names),
        }
        return self

    def serving_refit(self, data: InteractionData) -> HybridEngine:
        """Refit the base engines and the feature statistics on `data` (e.g. all events, after this engine
        was fitted and evaluated on a training part), keeping the learned ranker. This is exactly what
        `fit` does in its step 3 (`refit_base`), so serving sees fresh candidates and counts while the
        ranker stays the evaluated one. Returns self."""
        self._check_fitted()
        engines = self._fit_engines(data)
        context = rk.feature_context_build(data)
        if context.feature_names(self.base_engines) != self.feature_names_:
            raise RuntimeError("hybrid: the new data changes the feature set; fit the engine again instead")
        self.engines_, self.context_ = engines, context
        self.n_items_ = data.n_items
        self.pop_rank_ = _pop_rank(context.popularity)
        self._explainer = None
        self.fit_info_ = {
            **self.fit_info_,
            "serving_refit_on": {"users": data.n_users, "items": data.n_items},
        }
        return self

    # ------------------------------------------------------------------ serve

    def features_for(
        self,
        histories: Sequence[np.ndarray],
        items: Sequence[np.ndarray],
        users: np.ndarray | None = None,
    ) -> np.ndarray:
        """Feature rows (sum(len(items[i])), F) for the given (history, item) pairs, in order, whether or not
        a base engine retrieved the item (engines' scores are NaN and ranks n_candidates + 1 when not)."""
        self._check_fitted()
        hist = [np.asarray(h, dtype=np.int64) for h in histories]
        cands = rk.candidates_for_items(
            self.engines_,
            hist,
            items,
            n_items=self.n_items_,
            depth=self.n_candidates,
            exclude=hist,
            users=users,
        )
        return rk.features_build(cands, hist, self.context_, self.base_engines)

    def score_items(
        self, histories: Sequence[np.ndarray], items: Sequence[np.ndarray], users: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """The ranker's raw score for each given item of each history."""
        X = self.features_for(histories, items, users)
        raw = rk.booster_predict(self.booster_, X)
        out, pos = [], 0
        for it in items:
            out.append(raw[pos : pos + len(it)])
            pos += len(it)
        return out

    def score(self, histories: Sequence[np.ndarray], users: np.ndarray | None = None) -> np.ndarray:
        """Dense (n, n_items) float32 scores, higher is better: the ranker's raw score for every candidate;
        every other item gets a popularity-ordered fallback score strictly below the row's candidates.
        History items are not masked here (`recommend` masks `exclude`; the evaluation runner masks too)."""
        self._check_fitted()
        hist_all = [np.asarray(h, dtype=np.int64) for h in histories]
        out = np.empty((len(hist_all), self.n_items_), dtype=np.float32)
        for sl in self._batches(len(hist_all)):
            u = None if users is None else np.asarray(users)[sl]
            out[sl] = self._dense(hist_all[sl], hist_all[sl], u)
        return out

    def _dense(self, hist: list[np.ndarray], excl: list[np.ndarray], users: np.ndarray | None) -> np.ndarray:
        cands = rk.candidates_pool(
            self.engines_, hist, n_items=self.n_items_, depth=self.n_candidates, exclude=excl, users=users
        )
        X = rk.features_build(cands, hist, self.context_, self.base_engines)
        raw = rk.booster_predict(self.booster_, X).astype(np.float32)
        floor = np.zeros(len(hist), dtype=np.float32)
        if len(raw):
            np.minimum.at(floor, cands.row, raw)  # min(0, lowest candidate score) per row
        # Fallback: popularity order, 1..2 below the row's lowest candidate (pop_rank in [0, 1)).
        dense = (floor - 1.0)[:, None] - self.pop_rank_[None, :]
        dense[cands.row, cands.item] = raw
        return dense

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by ranker score among the pooled candidates; popularity fills what the candidates cannot."""
        self._check_fitted()
        n = len(histories)
        hist_all = [np.asarray(h, dtype=np.int64) for h in histories]
        excl_all = [np.asarray(e, dtype=np.int64) for e in default_exclude(hist_all, exclude)]
        ids_out = np.full((n, max(k, 0)), -1, dtype=np.int64)
        sc_out = np.full((n, max(k, 0)), -np.inf, dtype=np.float32)
        if k <= 0 or n == 0:
            return ids_out, sc_out
        for sl in self._batches(n):
            u = None if users is None else np.asarray(users)[sl]
            dense = self._dense(hist_all[sl], excl_all[sl], u)
            ids_out[sl], sc_out[sl] = top_k(dense, k, excl_all[sl])
        return ids_out, sc_out

    def similar_items(self, item_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Delegated to the first base engine that supports it (item-item engines first)."""
        self._check_fitted()
        preferred = [n for n in ("itemknn", "ease", "content") if n in self.engines_]
        order = preferred + [n for n in self.base_engines if n not in preferred]
        last_error: Exception | None = None
        for name in order:
            try:
                return self.engines_[name].similar_items(item_ids, k)
            except NotImplementedError as exc:
                last_error = exc
        raise NotImplementedError(f"no base engine of the hybrid supports similar_items ({last_error})")

    # ------------------------------------------------------------------ explain

    def explainer(self) -> Any:
        """Cached `shap.TreeExplainer` over the ranker (see `recommender.explain`)."""
        self._check_fitted()
        if self._explainer is None:
            import shap

            self._explainer = shap.TreeExplainer(self.booster_)
        return self._explainer

    def feature_importance(self) -> list[tuple[str, float]]:
        self._check_fitted()
        return rk.feature_importance(self.booster_, self.feature_names_)

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path) -> None:
        """One file: the ranker (LightGBM model string), statistics, and each base engine's own saved bytes."""
        self._check_fitted()
        state = {
            "format": _FORMAT,
            "params": self.get_params(),
            "booster": self.booster_.model_to_string(),
            "feature_names": list(self.feature_names_),
            "context": self.context_,
            "n_items": self.n_items_,
            "fit_info": self.fit_info_,
            "engines": {n: _engine_to_bytes(e) for n, e in self.engines_.items()},
        }
        buf = io.BytesIO()
        pickle.dump(state, buf, protocol=pickle.HIGHEST_PROTOCOL)
        Path(path).write_bytes(buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> HybridEngine:
        import lightgbm as lgb

        with open(path, "rb") as fh:
            state = pickle.load(fh)  # noqa: S301 - our own artifact from the model registry
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a hybrid engine artifact")
        eng = cls(**state["params"])
        eng.booster_ = lgb.Booster(model_str=state["booster"])
        eng.feature_names_ = list(state["feature_names"])
        eng.context_ = state["context"]
        eng.n_items_ = int(state["n_items"])
        eng.pop_rank_ = _pop_rank(eng.context_.popularity)
        eng.fit_info_ = dict(state["fit_info"])
        eng.engines_ = {n: _engine_from_bytes(n, blob) for n, blob in state["engines"].items()}
        return eng

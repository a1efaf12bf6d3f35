"""Offline evaluation runner: tune on validation, fit, score the test cases, report. Pure Python; no Django.

Usage (what the other engines plug into)
----------------------------------------
    from recommender.evaluation.importers import dataset_load
    from recommender.evaluation.protocols import leave_one_out_split
    from recommender.evaluation.runner import evaluate_engine

    ds = dataset_load("../shared/datasets/amazon-beauty/Beauty.txt")         # or format="recbole"/"session"
    split = leave_one_out_split(ds.data, dataset=ds.name)                     # or split_default(ds)
    report = evaluate_engine("ease", split)                                   # tunes EASEEngine.param_grid
    report = evaluate_engine("sasrec", split, params={"epochs": 5}, tune=False)
    print(report.metrics["NDCG@10"], report.params, report.fit_seconds)
    report_table([report])                                                    # Markdown table

What the runner expects from an engine (registry name -> class, see recommender/engines/__init__.py):

* constructor keyword arguments = hyperparameters. `param_grid` (class attribute) is either a dict
  {param: [values]} (Cartesian product) or a list of dicts; `params=` fixes keys (they override the grid).
  An optional classmethod `param_grid_for(data)` returns a grid adapted to the training data instead
  (e.g. no time-decay variants when the data has no timestamps).
  A `seed` or `random_state` constructor argument receives the runner's seed unless given in params.
* `fit(data)`; if `fit` also accepts a keyword `valid`, it receives the validation `EvalSet`
  (histories, targets) whenever the engine is fitted on `split.train` -- use it for early stopping.
  It never sees test cases. An engine that reuses cached work across grid points may set `fit_seconds_`
  to the real training cost, which is then reported instead of the (near-zero) measured time.
* scoring: if the engine has `score(histories, users=None) -> (n, n_items)` dense scores (higher is better),
  that is used (one pass gives the top-k AND exact ranks for AUC). Otherwise `recommend(histories, k,
  exclude, users)` is called with k = n_items (exact AUC) or k = max(k_values) when `auc=False`.
* tuning picks the grid point with the best `tune_metric` (default NDCG@10) on `split.valid` only,
  optionally on a random sample of `tune_max_cases` validation cases. The test set is scored once.

`predictions_write` writes the top-20 per case as ``case_id<TAB>item item ...`` in the dataset's own ids.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.engines import engine_class
from recommender.engines.base import Engine, InteractionData, top_k

from . import metrics as M
from .protocols import EvalSet, Split

DEFAULT_K = (5, 10, 20)
COLD_USER_MAX = 3  # a user is "cold" with at most this many training interactions
COLD_ITEM_MAX = 3  # an item is "cold" with at most this many training interactions
MIN_GROUP_CASES = 10  # groups smaller than this are reported but left out of the gap


@dataclass(frozen=True)
class EngineReport:
    """One engine evaluated on one split. `metrics` keys look like "NDCG@10", "coverage@10", "AUC"."""

    engine: str
    dataset: str
    protocol: str
    params: dict[str, Any]
    metrics: dict[str, float]
    slices: dict[str, dict[str, float]] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    gaps: dict[str, float] = field(default_factory=dict)
    tuning: tuple[dict[str, Any], ...] = ()
    tune_metric: str = "NDCG@10"
    fit_seconds: float = 0.0
    tune_seconds: float = 0.0
    predict_seconds: float = 0.0
    n_cases: int = 0
    n_items: int = 0

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# --------------------------------------------------------------------------------------------- engines


def engine_applies(name: str, data: InteractionData) -> str | None:
    """None when engine `name` can run on `data`; otherwise the reason (not importable, needs features...)."""
    try:
        cls = engine_class(name)
    except KeyError as exc:
        return str(exc.args[0])
    except Exception as exc:  # ImportError, AttributeError (class not written yet), a broken module
        return f"not importable ({type(exc).__name__}: {exc})"
    applies = getattr(cls, "applies_to", None)
    if callable(applies):
        try:
            ok = applies(data)
        except Exception as exc:
            return f"applies_to failed ({type(exc).__name__}: {exc})"
        if not ok:
            return "does not apply to this data (see the engine's applies_to)"
    return None


def param_grid_expand(grid: Any, fixed: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Grid points (dicts) from a `param_grid` (dict of lists, or list of dicts), with `fixed` overriding."""
    fixed = dict(fixed or {})
    if not grid:
        points: list[dict[str, Any]] = [{}]
    elif isinstance(grid, dict):
        keys = [k for k in grid if k not in fixed]
        points = [dict(zip(keys, vals)) for vals in itertools.product(*(list(grid[k]) for k in keys))]
    else:
        points = [dict(p) for p in grid]
    out: list[dict[str, Any]] = []
    for p in points:
        merged = {**p, **fixed}
        if merged not in out:
            out.append(merged)
    return out or [fixed]


def _engine_build(cls: type, params: dict[str, Any], seed: int | None) -> Engine:
    kwargs = dict(params)
    if seed is not None:
        try:
            sig = inspect.signature(cls.__init__).parameters
        except (TypeError, ValueError):
            sig = {}
        for key in ("seed", "random_state"):
            if key in sig and key not in kwargs:
                kwargs[key] = seed
                break
    return cls(**kwargs)


def _fit(engine: Engine, data: InteractionData, valid: EvalSet | None) -> float:
    """Fit and return the training seconds (an engine's own `fit_seconds_` wins: EASE reuses cached solves)."""
    t0 = time.perf_counter()
    accepts_valid = False
    if valid is not None:
        try:
            accepts_valid = "valid" in inspect.signature(engine.fit).parameters
        except (TypeError, ValueError):
            accepts_valid = False
    if accepts_valid:
        engine.fit(data, valid=valid)
    else:
        engine.fit(data)
    measured = time.perf_counter() - t0
    own = getattr(engine, "fit_seconds_", None)
    return float(own) if isinstance(own, int | float) and own >= 0 else measured


# --------------------------------------------------------------------------------------------- scoring


@dataclass
class _Scored:
    top_ids: np.ndarray  # (n, kmax)
    auc: np.ndarray  # (n,), NaN when not computed
    seconds: float


def _dense_scores(
    engine: Engine,
    histories: list[np.ndarray],
    users: np.ndarray,
    exclude: list[np.ndarray],
    n_items: int,
    k: int,
) -> np.ndarray:
    """(n, n_items) float32 scores; items the engine did not return are -inf."""
    score_fn: Callable | None = getattr(engine, "score", None)
    if callable(score_fn):
        s = np.asarray(score_fn(histories, users=users), dtype=np.float32)
        if s.shape != (len(histories), n_items):
            raise ValueError(
                f"{type(engine).__name__}.score returned shape {s.shape}, expected {(len(histories), n_items)}"
            )
        return np.array(s, dtype=np.float32, copy=True)
    ids, vals = engine.recommend(histories, k=k, exclude=exclude, users=users)
    ids = np.asarray(ids, dtype=np.int64)
    vals = np.asarray(vals, dtype=np.float32)
    out = np.full((len(histories), n_items), -np.inf, dtype=np.float32)
    rows = np.repeat(np.arange(len(histories)), ids.shape[1]).reshape(ids.shape)
    ok = (ids >= 0) & np.isfinite(vals)
    if ok.any():
        # the engine's own order is the truth: map it onto strictly decreasing finite scores
        order_scores = -np.arange(ids.shape[1], dtype=np.float32)[None, :].repeat(len(ids), axis=0)
        out[rows[ok], ids[ok]] = order_scores[ok]
    return out


def eval_set_score(
    engine: Engine,
    cases: EvalSet,
    *,
    n_items: int,
    k_max: int = 20,
    auc: bool = True,
    batch_size: int = 1024,
    progress: bool = False,
    desc: str = "scoring",
) -> _Scored:
    """Top-`k_max` lists (history/`exclude` items removed) and per-case AUC for every case, in batches."""
    from tqdm.auto import tqdm

    n = len(cases)
    top = np.full((n, k_max), -1, dtype=np.int64)
    aucs = np.full(n, np.nan)
    excluded = cases.excluded
    k_req = n_items if auc else k_max
    t0 = time.perf_counter()
    starts = range(0, n, batch_size)
    for a in tqdm(starts, desc=desc, disable=not progress, leave=False, unit="batch"):
        b = min(a + batch_size, n)
        hist = cases.histories[a:b]
        ex = excluded[a:b]
        s = _dense_scores(engine, hist, cases.users[a:b], ex, n_items, k_req)
        lens = np.fromiter((len(e) for e in ex), dtype=np.int64, count=len(ex))
        if lens.sum():
            cols = np.concatenate([np.asarray(e, dtype=np.int64) for e in ex if len(e)])
            s[np.repeat(np.arange(len(ex)), lens), cols] = np.nan
        if auc:
            aucs[a:b] = M.auc_per_case(s, cases.targets[a:b])
        s[np.isnan(s)] = -np.inf
        ids, _ = top_k(s, k_max)
        top[a:b] = ids
    return _Scored(top_ids=top, auc=aucs, seconds=time.perf_counter() - t0)


def _case_metrics(
    top_ids: np.ndarray, targets: Sequence[np.ndarray], k_values: Iterable[int]
) -> dict[str, np.ndarray]:
    hits = M.hit_matrix(top_ids, targets)
    n_t = np.fromiter((len(t) for t in targets), dtype=np.int64, count=len(targets))
    out: dict[str, np.ndarray] = {}
    for k in k_values:
        for name, vals in M.accuracy_at_k(hits, n_t, k).items():
            out[f"{name}@{k}"] = vals
    return out


def _mean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def _item_vectors(data: InteractionData) -> sp.csr_matrix:
    attrs = data.item_features.attributes
    vec = attrs if attrs is not None and attrs.shape[1] > 0 else sp.csr_matrix(data.matrix).T
    return M.normalize_rows(vec)


def _ild(top_ids: np.ndarray, vectors: sp.csr_matrix, k: int) -> float:
    if vectors.shape[0] * vectors.shape[1] <= 30_000_000:
        dense = vectors.toarray().astype(np.float32)
        ids = top_ids[:, :k]
        vals = []
        for a in range(0, len(ids), 2048):
            blk = ids[a : a + 2048]
            valid = blk >= 0
            v = dense[np.where(valid, blk, 0)] * valid[..., None]  # (b, k, d)
            gram = np.einsum("bkd,bld->bkl", v, v)
            m = valid.sum(axis=1).astype(np.float64)
            pairs = m * (m - 1) / 2
            off = (gram.sum(axis=(1, 2)) - np.trace(gram, axis1=1, axis2=2)) / 2
            with np.errstate(invalid="ignore", divide="ignore"):
                vals.append(np.where(pairs > 0, 1.0 - off / np.where(pairs > 0, pairs, 1), np.nan))
        return _mean(np.concatenate(vals)) if vals else float("nan")
    return _mean(M.intra_list_diversity_per_case(top_ids, vectors, k))


def metrics_compute(
    top_ids: np.ndarray,
    aucs: np.ndarray,
    cases: EvalSet,
    train: InteractionData,
    *,
    k_values: Sequence[int] = DEFAULT_K,
) -> tuple[
    dict[str, float], dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]], dict[str, float]
]:
    """(metrics, slices, groups, gaps) for scored cases; beyond-accuracy figures use `train` popularity."""
    per_case = _case_metrics(top_ids, cases.targets, k_values)
    metrics = {name: _mean(v) for name, v in per_case.items()}
    metrics["AUC"] = _mean(aucs)
    pop = M.item_popularity(train.matrix)
    for k in k_values:
        metrics[f"coverage@{k}"] = M.coverage(top_ids, train.n_items, k)
    metrics["novelty@10"] = M.novelty(top_ids, pop, train.n_users, 10)
    metrics["popularity_bias@10"] = M.popularity_bias(top_ids, pop, 10)
    metrics["diversity@10"] = _ild(top_ids, _item_vectors(train), 10)

    headline = [f"{m}@{k}" for k in k_values for m in ("HR", "NDCG")]
    slices: dict[str, dict[str, float]] = {}
    cold_u = cases.n_train <= COLD_USER_MAX
    slices["cold_users"] = {"n_cases": int(cold_u.sum()), **{h: _mean(per_case[h][cold_u]) for h in headline}}
    slices["warm_users"] = {
        "n_cases": int((~cold_u).sum()),
        **{h: _mean(per_case[h][~cold_u]) for h in headline},
    }
    cold_items = pop <= COLD_ITEM_MAX
    cold_targets = [t[cold_items[t]] if len(t) else t for t in cases.targets]
    has_cold = np.asarray([len(t) > 0 for t in cold_targets])
    if has_cold.any():
        idx = np.flatnonzero(has_cold)
        cm = _case_metrics(top_ids[idx], [cold_targets[i] for i in idx], k_values)
        slices["cold_items"] = {"n_cases": int(len(idx)), **{h: _mean(cm[h]) for h in headline}}
    else:
        slices["cold_items"] = {"n_cases": 0}

    groups: dict[str, dict[str, dict[str, float]]] = {}
    gaps: dict[str, float] = {}
    for key, labels in cases.groups.items():
        labels = np.asarray(labels).astype(str)
        table: dict[str, dict[str, float]] = {}
        for lab in sorted(set(labels.tolist())):
            mask = labels == lab
            table[lab] = {"n_cases": int(mask.sum()), **{h: _mean(per_case[h][mask]) for h in headline}}
        groups[key] = table
        eligible = [
            v["NDCG@10"] for lab, v in table.items() if lab != "unknown" and v["n_cases"] >= MIN_GROUP_CASES
        ]
        if "NDCG@10" in headline and len(eligible) >= 2:
            gaps[f"{key}_NDCG@10_gap"] = float(max(eligible) - min(eligible))
    return metrics, slices, groups, gaps


# ---------------------------------------------------------------------------------------------- runner


def evaluate_engine(
    name: str,
    split: Split,
    *,
    params: dict[str, Any] | None = None,
    tune: bool = True,
    k_values: Sequence[int] = DEFAULT_K,
    tune_metric: str = "NDCG@10",
    tune_max_cases: int | None = None,
    auc: bool = True,
    batch_size: int = 1024,
    seed: int = 0,
    progress: bool = True,
    predictions_path: Path | str | None = None,
    predictions_k: int = 20,
    engine_cls: type | None = None,
) -> EngineReport:
    """Tune `name` on `split.valid`, fit on `split.train_final`, score `split.test` (see module docstring).

    `engine_cls` overrides the registry lookup (tests use it for spy engines). Returns a frozen EngineReport;
    writes `<predictions_path>` (top-`predictions_k` per test case) when given.
    """
    cls = engine_cls or engine_class(name)
    k_values = tuple(sorted(set(int(k) for k in k_values)))
    k_max = max(max(k_values), predictions_k if predictions_path else 0)
    grid_for = getattr(cls, "param_grid_for", None)
    raw_grid = grid_for(split.train) if callable(grid_for) else getattr(cls, "param_grid", None)
    grid = param_grid_expand(raw_grid if tune else None, params)
    np.random.seed(seed)

    tuning: list[dict[str, Any]] = []
    best_engine: Engine | None = None
    best_params = grid[0]
    t_tune = time.perf_counter()
    if len(grid) > 1:
        valid = split.valid
        if tune_max_cases is not None and len(valid) > tune_max_cases:
            rng = np.random.default_rng(seed)
            valid = valid.subset(np.sort(rng.choice(len(valid), tune_max_cases, replace=False)))
        if not len(valid):
            raise ValueError(f"cannot tune {name}: the split has no validation cases")
        best_value = -math.inf
        for point in grid:
            engine = _engine_build(cls, point, seed)
            fit_s = _fit(engine, split.train, split.valid)
            scored = eval_set_score(
                engine,
                valid,
                n_items=split.n_items,
                k_max=max(k_values),
                auc=False,
                batch_size=batch_size,
                progress=progress,
                desc=f"{name} valid {point}",
            )
            value = _mean(_case_metrics(scored.top_ids, valid.targets, k_values)[tune_metric])
            tuning.append({"params": point, tune_metric: value, "fit_seconds": fit_s})
            if value > best_value:
                best_value, best_params = value, point
                best_engine = engine if split.train_final is split.train else None
            del engine
    tune_seconds = time.perf_counter() - t_tune if len(grid) > 1 else 0.0

    if best_engine is None:
        best_engine = _engine_build(cls, best_params, seed)
        fit_seconds = _fit(
            best_engine, split.train_final, split.valid if split.train_final is split.train else None
        )
    else:
        fit_seconds = next(t["fit_seconds"] for t in tuning if t["params"] == best_params)

    scored = eval_set_score(
        best_engine,
        split.test,
        n_items=split.n_items,
        k_max=k_max,
        auc=auc,
        batch_size=batch_size,
        progress=progress,
        desc=f"{name} test",
    )
    metrics, slices, groups, gaps = metrics_compute(
        scored.top_ids[:, : max(k_values)], scored.auc, split.test, split.train_final, k_values=k_values
    )
    clear = getattr(cls, "cache_clear", None)  # engines may cache solves across grid points (EASE)
    if callable(clear):
        clear()
    if predictions_path is not None:
        predictions_write(
            predictions_path,
            case_ids=split.test.case_ids,
            top_ids=scored.top_ids[:, :predictions_k],
            item_ids=split.train_final.item_ids,
        )
    return EngineReport(
        engine=name,
        dataset=split.dataset,
        protocol=split.protocol,
        params=_public_params(best_engine, best_params),
        metrics=metrics,
        slices=slices,
        groups=groups,
        gaps=gaps,
        tuning=tuple(tuning),
        tune_metric=tune_metric,
        fit_seconds=fit_seconds,
        tune_seconds=tune_seconds,
        predict_seconds=scored.seconds,
        n_cases=len(split.test),
        n_items=split.n_items,
    )


def _public_params(engine: Engine, chosen: dict[str, Any]) -> dict[str, Any]:
    get = getattr(engine, "get_params", None)
    params = dict(get()) if callable(get) else {}
    params.update(chosen)
    return json.loads(json.dumps(params, default=_json_default))


def evaluate_engines(names: Sequence[str], split: Split, **kwargs: Any) -> list[EngineReport]:
    """`evaluate_engine` for each name, in order."""
    return [evaluate_engine(n, split, **kwargs) for n in names]


def predictions_write(
    path: Path | str, *, case_ids: Sequence[str], top_ids: np.ndarray, item_ids: np.ndarray
) -> None:
    """One line per case: ``case_id<TAB>`` then the recommended item ids (dataset ids), best first, space-separated."""
    item_ids = np.asarray(item_ids).astype(str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for cid, row in zip(case_ids, np.asarray(top_ids)):
            row = row[row >= 0]
            fh.write(f"{cid}\t{' '.join(item_ids[row].tolist())}\n")


write_predictions = predictions_write  # the name used in the issue discussion


def report_table(
    reports: Sequence[EngineReport], *, k_values: Sequence[int] = DEFAULT_K, extra: Sequence[str] = ()
) -> str:
    """Markdown table: HR/NDCG at each k, coverage@10, popularity bias, fit and predict seconds."""
    cols = [f"{m}@{k}" for k in k_values for m in ("HR", "NDCG")] + [
        "coverage@10",
        "popularity_bias@10",
        *extra,
    ]
    head = "| engine | " + " | ".join(cols) + " | fit s | predict s | params |"
    sep = "|" + "---|" * (len(cols) + 4)
    lines = [head, sep]
    for r in reports:
        vals = " | ".join(_fmt(r.metrics.get(c, float("nan"))) for c in cols)
        params = ", ".join(f"{k}={v}" for k, v in sorted(r.params.items()))
        lines.append(f"| {r.engine} | {vals} | {r.fit_seconds:.1f} | {r.predict_seconds:.1f} | {params} |")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

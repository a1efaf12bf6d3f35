"""Training runs: events -> fitted engine -> evaluated, stored ModelVersion -> (maybe) promoted.

Services (writes) for the training pipeline; the Celery tasks in `recommender.tasks`, the `train`
command and the admin are thin adapters around them.

What a run does (`training_run_execute`), with progress 0-100 saved as it goes:

1. data      all weighted product events -> `ShopData` (recommender.data)                    0-15 %
2. split     a global temporal cut: the latest RECSITE_EVAL_TEST_FRACTION of events held out   15 %
3. fit       the engine on the events before the cut                                          20-50 %
4. evaluate  NDCG@10, HR@10, recall@10, MRR@10, coverage@10 on the held-out users              50-60 %
5. baseline  the active version of the engine on the SAME split (see below)                   60-70 %
6. refit     the same engine and parameters on ALL events: the stored model serves the         70-90 %
             freshest data (new products, this week's trends); its metrics are those of the
             split model, i.e. of the recipe evaluated on the held-out period
7. save      engine.save -> ModelVersion.artifact, the id maps -> ModelVersion.id_maps          90-95 %
8. promote   when no worse than the active version within RECSITE_PROMOTION_TOLERANCE         95-100 %

How the active version is evaluated on the same split, without leaking the held-out events into it:
    * if the active version was trained only on events before the cut, its stored artifact is scored
      as is (method "artifact");
    * otherwise (the usual case: it was refit on events that are now in the test period) its recipe,
      engine + parameters, is refit on the training part and scored (method "refit"); when its
      parameters equal the new run's, the new split model IS that refit and its scores are reused
      (method "same_recipe"), so retraining the same recipe on fresher data is promoted.

A failure at any step marks the run failed with the error and leaves the registry untouched (the
active version keeps serving); files already written to storage are deleted. Executing a run that is
not queued (already running, finished or failed) does nothing, so a task delivered twice is harmless.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import math
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from catalog.models import Event
from recommender.engines import REGISTRY, TORCH_ENGINES, Engine, engine_class, engine_create
from recommender.evaluation.metrics import accuracy_at_k, coverage, hit_matrix

from .data import ShopData, ShopSplit, interaction_data_from_events, shop_temporal_split
from .models import EngineChoice, ModelVersion, TrainingRun, Widget
from .services import ModelArtifactError, model_version_active, model_version_load, model_version_promote
from .strategies import CHOICE_CANDIDATES, choice_candidates, engine_choice_memo_clear, engines_needed

logger = logging.getLogger(__name__)

K = 10
METRIC_KEYS: tuple[str, ...] = ("ndcg@10", "hr@10", "recall@10", "mrr@10", "coverage@10")
NO_EVENTS_MESSAGE = "No events to train on: record events, or run `python manage.py seed_demo` first."
ProgressCallback = Callable[[int, str], None]


# A shop's default recipe where it differs from the engine's own defaults (which were tuned for the offline
# benchmarks). Given parameters override these keys; the run records the merged parameters.
SHOP_ENGINE_PARAMS: dict[str, dict[str, Any]] = {
    # The demo-size shop trains the hybrid in seconds rather than minutes: half the candidates and
    # negatives, one LightGBM thread (a shared 2-core machine slowed 2 threads 3.7x, measured), the
    # item-kNN flavour that wins the shop's own evaluation ("users") instead of the Beauty-tuned sequence one.
    "hybrid": {
        "base_engines": ["ease", "itemknn"],
        "base_params": {"itemknn": {"mode": "users"}},
        "n_candidates": 50,
        "max_negatives": 20,
        "n_threads": 1,
        "lgbm_params": {"n_estimators": 200},
    },
}


class TrainingError(Exception):
    """A run cannot proceed for a reason a person can act on (no events, bad parameters)."""


# ------------------------------------------------------------------------------------------ creating


def engine_params_validate(*, engine: str, params: object) -> dict[str, Any]:
    """Check that `engine` is registered and `params` are JSON keyword arguments it accepts.

    Returns the params as a dict; raises ValidationError with a message naming what is wrong.
    """
    if engine not in REGISTRY:
        raise ValidationError(f"Unknown engine {engine!r}. Known engines: {', '.join(sorted(REGISTRY))}.")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValidationError('Parameters must be a JSON object, e.g. {"factors": 64}.')
    try:
        json.dumps(params)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Parameters must be plain JSON values: {exc}") from None
    try:
        cls = engine_class(engine)
    except Exception as exc:  # the engine's module failed to import: say so instead of a 500
        raise ValidationError(f"Engine {engine!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
    signature = inspect.signature(cls.__init__)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    known = [
        n
        for n, p in signature.parameters.items()
        if n != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    unknown = sorted(set(params) - set(known))
    if unknown and not accepts_any:
        raise ValidationError(
            f"Unknown parameter(s) for {engine}: {', '.join(unknown)}. "
            f"Known parameters: {', '.join(known) or 'none'}."
        )
    try:
        cls(**params)
    except Exception as exc:
        raise ValidationError(f"Invalid parameters for {engine}: {type(exc).__name__}: {exc}") from None
    return params


def training_run_task(engine: str):
    """The Celery task for `engine`: torch engines go to the `training` queue (GPU workers)."""
    from . import tasks

    return (
        tasks.training_run_execute_torch_task if engine in TORCH_ENGINES else tasks.training_run_execute_task
    )


def training_run_create(
    *,
    engine: str,
    params: dict[str, Any] | None = None,
    trigger: str = TrainingRun.Trigger.MANUAL,
    auto_promote: bool = True,
    enqueue: bool = True,
) -> TrainingRun:
    """Create a queued run and (by default) enqueue its task once the transaction commits.

    With an eager Celery (no broker configured) and RECSITE_TRAINING_IN_THREAD, the run executes in a
    background thread instead, so the admin page that started it can watch its progress.
    Raises ValidationError for an unknown engine or parameters it does not accept.
    """
    params = engine_params_validate(
        engine=engine, params={**SHOP_ENGINE_PARAMS.get(engine, {}), **(params or {})}
    )
    run = TrainingRun.objects.create(engine=engine, params=params, trigger=trigger, auto_promote=auto_promote)
    if enqueue:
        transaction.on_commit(lambda: _enqueue(run.pk, engine))
    return run


def _enqueue(run_id: int, engine: str) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER and getattr(settings, "RECSITE_TRAINING_IN_THREAD", False):
        threading.Thread(
            target=_execute_in_thread, args=(run_id,), name=f"training-run-{run_id}", daemon=True
        ).start()
        return
    training_run_task(engine).delay(run_id)


def _execute_in_thread(run_id: int) -> None:
    try:
        training_run_execute(run_id=run_id)
    finally:
        connection.close()


# ----------------------------------------------------------------------------------------- executing


class _Reporter:
    """Saves progress on the run row (one UPDATE, visible to the admin at once) and forwards it."""

    def __init__(self, run_id: int, callback: ProgressCallback | None) -> None:
        self.run_id, self.callback, self.last = run_id, callback, 0

    def __call__(self, progress: int, message: str) -> None:
        self.last = max(self.last, min(int(progress), 100))
        TrainingRun.objects.filter(pk=self.run_id).update(progress=self.last, progress_message=message[:255])
        if self.callback is not None:
            self.callback(self.last, message)


def _json_safe(value: Any) -> Any:
    """Parameters/metrics as plain JSON (numpy scalars -> Python, non-finite floats -> None)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def training_run_execute(
    *, run_id: int, progress: ProgressCallback | None = None, data: TrainingInput | None = None
) -> TrainingRun | None:
    """Execute a queued run to the end (see the module docstring). Returns the run, None if it is gone.

    `data`: events already read for this batch of runs (`training_input_load`), so that `train --all`
    reads the events and splits them once for every engine; None reads them now.
    Never raises for a training failure (the run is marked failed instead); re-raises interrupts
    (KeyboardInterrupt, SystemExit) after marking the run failed.
    """
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING,
        started_at=timezone.now(),
        progress=0,
        progress_message="Starting",
        error="",
    )
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        logger.warning("training run %s does not exist", run_id)
        return None
    if not claimed:
        logger.info("training run %s is %s; nothing to do", run_id, run.status)
        return run
    report = _Reporter(run_id, progress)
    timings: dict[str, float] = {}
    stored: list[tuple[Any, str]] = []  # (storage, name) written so far, deleted on failure
    try:
        _run(run, report, timings, stored, data)
    except BaseException as exc:
        for storage, name in stored:
            try:
                storage.delete(name)
            except Exception:
                logger.warning("could not delete %s after a failed run", name, exc_info=True)
        interrupted = not isinstance(exc, Exception)
        if isinstance(exc, TrainingError | ValidationError):
            error = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        else:
            error = "".join(traceback.format_exception(exc)[-12:])
            logger.exception("training run %s failed", run_id)
        summary = (
            f"Interrupted ({type(exc).__name__})"
            if interrupted
            else f"Failed: {error.strip().splitlines()[-1] if error.strip() else type(exc).__name__}"
        )
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingRun.Status.FAILED,
            error=(f"Interrupted: {type(exc).__name__}\n" if interrupted else "") + error,
            progress_message=summary[:255],
            timings=timings,
            finished_at=timezone.now(),
        )
        if interrupted:
            raise
    run.refresh_from_db()
    if run.status == TrainingRun.Status.SUCCEEDED:
        for strategy in CHOICE_CANDIDATES:
            if run.engine in choice_candidates(strategy):
                engine_choice_decide(strategy=strategy)
    return run


@dataclass
class TrainingInput:
    """The events of one training batch: read once, split once, shared by every run of the batch.

    shop:       the weighted events as engine data (`interaction_data_from_events`)
    high_water: the largest Event id when they were read (new-events retraining counts from it)
    """

    shop: ShopData
    high_water: int
    _split: ShopSplit | None = field(default=None, repr=False)

    def split(self) -> ShopSplit:
        """The held-out temporal split (settings RECSITE_EVAL_TEST_FRACTION / _MAX_USERS), computed once:
        every engine of the batch is evaluated on the same held-out events."""
        if self._split is None:
            self._split = shop_temporal_split(
                self.shop,
                test_fraction=settings.RECSITE_EVAL_TEST_FRACTION,
                max_test_users=settings.RECSITE_EVAL_MAX_USERS,
            )
        return self._split


def training_input_load() -> TrainingInput:
    """Read the shop's events for training (one query batch; see recommender.data)."""
    high_water = Event.objects.aggregate(m=Max("id"))["m"] or 0
    return TrainingInput(shop=interaction_data_from_events(), high_water=high_water)


class _Timer:
    def __init__(self, timings: dict[str, float], phase: str) -> None:
        self.timings, self.phase = timings, phase

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.phase] = round(time.perf_counter() - self.t0, 3)


def _run(
    run: TrainingRun,
    report: _Reporter,
    timings: dict[str, float],
    stored: list,
    data: TrainingInput | None = None,
) -> None:
    t_start = time.perf_counter()
    name, params = run.engine, dict(run.params or {})
    engine_params_validate(engine=name, params=params)

    report(2, "Reading events" if data is None else "Using the events read for this batch of runs")
    with _Timer(timings, "data"):
        data = data or training_input_load()
        shop, high_water = data.shop, data.high_water
    if shop.n_events == 0:
        raise TrainingError(NO_EVENTS_MESSAGE)
    snapshot = {**shop.snapshot(), "events_high_water": high_water}
    TrainingRun.objects.filter(pk=run.pk).update(data_snapshot=snapshot)
    report(15, f"{shop.n_events:,} events, {shop.data.n_users:,} shoppers, {shop.data.n_items:,} products")

    with _Timer(timings, "split"):
        split = data.split()
    evaluation: dict[str, Any] = {
        "cut": split.cut.isoformat(),
        "train_events": split.n_train_events,
        "test_events": split.n_test_events,
        "test_users": len(split.test_users),
    }
    metrics: dict[str, Any] = {}
    split_model: Engine | None = None
    if len(split.test_users):
        report(20, f"Training {name} on events before {split.cut:%Y-%m-%d %H:%M}")
        with _Timer(timings, "fit"):
            split_model = engine_create(name, **params).fit(split.train)
        _record_device(run, split_model)
        report(50, f"Evaluating on {len(split.test_users):,} held-out shoppers")
        with _Timer(timings, "evaluate"):
            metrics = engine_evaluate(engine=split_model, split=split)
    else:
        evaluation["skipped"] = (
            "No shopper was active both before and after the cut: not enough events to evaluate."
        )

    active = model_version_active(engine=name)
    baseline: dict[str, Any] | None = None
    effective_params: dict[str, Any] | None = None
    if active is not None and metrics:
        report(60, f"Evaluating the active version v{active.pk} on the same split")
        with _Timer(timings, "baseline"):
            effective_params = _effective_params(split_model, params)
            baseline = _baseline_evaluate(
                active=active, split=split, shop=shop, params=effective_params, metrics=metrics
            )
        evaluation["baseline"] = baseline
    refit_in_place = split_model is not None and callable(getattr(split_model, "serving_refit", None))
    if not refit_in_place:
        split_model = None  # free it before the refit (two large models need not coexist)

    report(70, f"Training {name} on all events")
    with _Timer(timings, "refit"):
        if refit_in_place:
            # The hybrid keeps the ranker it learned (and was evaluated with) and refits only its base
            # engines and statistics on all events: a full second fit would cost as much again.
            model = split_model.serving_refit(shop.data)
        else:
            model = engine_create(name, **params).fit(shop.data)
    _record_device(run, model)

    report(90, "Saving the model")
    with _Timer(timings, "save"):
        version = _version_store(
            run=run,
            model=model,
            shop=shop,
            params=_effective_params(model, params),
            metrics=metrics,
            snapshot={**snapshot, "evaluation": evaluation},
            stored=stored,
        )

    promote, reason = promotion_decide(
        metrics=metrics,
        baseline=baseline,
        has_active=active is not None,
        auto_promote=run.auto_promote,
    )
    evaluation["decision"] = reason
    if promote:
        report(95, "Promoting")
        try:
            model_version_promote(version=version)
        except (ValidationError, IntegrityError) as exc:  # e.g. a concurrent promotion won the race
            reason = f"kept as candidate: promotion failed ({exc})"
            evaluation["decision"] = reason
    timings["total"] = round(time.perf_counter() - t_start, 3)
    version.data_snapshot = {**version.data_snapshot, "evaluation": evaluation}
    version.save(update_fields=["data_snapshot"])
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.SUCCEEDED,
        progress=100,
        progress_message=(f"v{version.pk}: {reason}")[:255],
        model_version=version,
        data_snapshot={**snapshot, "evaluation": evaluation},
        timings=timings,
        finished_at=timezone.now(),
    )
    report.last = 100
    if report.callback is not None:
        report.callback(100, f"v{version.pk}: {reason}")


def _effective_params(model: Engine | None, params: dict[str, Any]) -> dict[str, Any]:
    """The engine's full hyperparameters (defaults filled in), JSON-safe; `params` when unavailable."""
    if model is None:
        return _json_safe(params)
    try:
        return _json_safe({**model.get_params(), **params})
    except Exception:
        return _json_safe(params)


def _record_device(run: TrainingRun, model: Engine) -> None:
    device = ""
    info = getattr(model, "fit_info", None)
    if isinstance(info, dict) and info.get("device"):
        device = str(info["device"]).split(":")[0]
    elif run.engine in TORCH_ENGINES:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        device = "cpu"
    if device != run.device:
        run.device = device[:8]
        TrainingRun.objects.filter(pk=run.pk).update(device=run.device)


def engine_evaluate(
    *,
    engine: Engine,
    split: ShopSplit,
    histories: Sequence[np.ndarray] | None = None,
    users: np.ndarray | None = None,
    id_map: np.ndarray | None = None,
    batch: int = 512,
) -> dict[str, float]:
    """Ranking metrics at 10 of `engine` on the split's held-out shoppers (history items excluded).

    `histories`/`users` default to the split's (in the split's item index space). For an engine from
    another index space (an older artifact), pass histories in the engine's space and `id_map`
    (engine item index -> split item index, -1 for products that no longer exist).
    """
    if histories is None:
        histories = split.histories
        users = split.test_users if users is None else users
    n = len(histories)
    tops = []
    for start in range(0, n, batch):
        chunk = list(histories[start : start + batch])
        kwargs = {} if users is None else {"users": np.asarray(users[start : start + batch])}
        ids, _ = engine.recommend(chunk, K, None, **kwargs)
        ids = np.asarray(ids, dtype=np.int64)[:, :K]
        if id_map is not None:
            ids = np.where(ids >= 0, id_map[np.clip(ids, 0, None)], -1)
        tops.append(ids)
    top = np.concatenate(tops) if tops else np.zeros((0, K), dtype=np.int64)
    hits = hit_matrix(top, split.test_items)
    acc = accuracy_at_k(hits, np.array([len(t) for t in split.test_items]), K)
    return {
        "ndcg@10": float(acc["NDCG"].mean()) if n else 0.0,
        "hr@10": float(acc["HR"].mean()) if n else 0.0,
        "recall@10": float(acc["recall"].mean()) if n else 0.0,
        "mrr@10": float(acc["MRR"].mean()) if n else 0.0,
        "coverage@10": coverage(top, split.train.n_items, K),
        "users": n,
    }


def _baseline_evaluate(
    *, active: ModelVersion, split: ShopSplit, shop: ShopData, params: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any]:
    """The active version's metrics on the same split, without letting held-out events into it."""
    info: dict[str, Any] = {"version": active.pk}
    trained_until = (active.data_snapshot or {}).get("last_event_at")
    if trained_until and datetime.fromisoformat(trained_until) < split.cut:
        try:
            loaded = model_version_load(version=active)
        except ModelArtifactError as exc:
            info["artifact_error"] = str(exc)
        else:
            # Map the split's item indices into the artifact's index space and its answers back.
            to_active = np.array(
                [loaded.product_index.get(int(p), -1) for p in shop.product_ids], dtype=np.int64
            )
            current = shop.product_index()
            to_current = np.array([current.get(int(p), -1) for p in loaded.product_ids], dtype=np.int64)
            histories = [h[h >= 0] for h in (to_active[hist] for hist in split.histories)]
            m = engine_evaluate(engine=loaded.engine, split=split, histories=histories, id_map=to_current)
            return {**info, "method": "artifact", **m}
    if _same_params(active.params or {}, params):
        return {
            **info,
            "method": "same_recipe",
            **{k: metrics[k] for k in METRIC_KEYS + ("users",) if k in metrics},
        }
    try:
        model = engine_create(active.engine, **(active.params or {})).fit(split.train)
    except Exception as exc:  # the old recipe no longer fits (parameters renamed...): nothing to compare
        logger.warning("could not refit the active version %s", active, exc_info=True)
        return {**info, "method": "refit", "error": f"{type(exc).__name__}: {exc}"}
    return {**info, "method": "refit", **engine_evaluate(engine=model, split=split)}


def _same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal as JSON, ignoring keys present on one side only (a default filled in on one side)."""
    a, b = _json_safe(a), _json_safe(b)
    return all(a[k] == b[k] for k in set(a) & set(b))


def promotion_decide(
    *,
    metrics: dict[str, Any],
    baseline: dict[str, Any] | None,
    has_active: bool,
    auto_promote: bool = True,
    tolerance: float | None = None,
    metric: str | None = None,
) -> tuple[bool, str]:
    """Whether a new version should become active, and why (shown to people).

    Rule: promote when there is no active version, or when metric >= (1 - tolerance) x the active
    version's metric on the same split. Without metrics to compare (too few events to hold out any),
    only a first version is promoted.
    """
    tolerance = settings.RECSITE_PROMOTION_TOLERANCE if tolerance is None else tolerance
    metric = metric or settings.RECSITE_PROMOTION_METRIC
    label = metric.upper()
    if not auto_promote:
        return False, "kept as candidate (automatic promotion off)"
    if not has_active:
        return True, "promoted (first version of this engine)"
    if not metrics or baseline is None or metric not in metrics or baseline.get(metric) is None:
        return False, "kept as candidate: no held-out evaluation to compare with the active version"
    new, old = float(metrics[metric]), float(baseline[metric])
    floor = old * (1.0 - tolerance)
    if new >= floor:
        return True, f"promoted: {label} {new:.4f} vs active v{baseline.get('version')} {old:.4f}"
    return False, (
        f"kept as candidate: {label} {new:.4f} < {floor:.4f} "
        f"(active v{baseline.get('version')} {old:.4f}, tolerance {tolerance:.0%})"
    )


def _version_store(
    *,
    run: TrainingRun,
    model: Engine,
    shop: ShopData,
    params: dict[str, Any],
    metrics: dict[str, Any],
    snapshot: dict[str, Any],
    stored: list,
) -> ModelVersion:
    """Write the artifact and id maps to Django storage and create the candidate version."""
    version = ModelVersion(
        engine=run.engine,
        params=params,
        metrics=_json_safe(metrics),
        data_snapshot=_json_safe(snapshot),
        status=ModelVersion.Status.CANDIDATE,
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    base = f"{run.engine}-{stamp}-run{run.pk}"
    with tempfile.TemporaryDirectory(prefix="recsite-train-") as tmp:
        path = Path(tmp) / "model.bin"
        model.save(path)
        with path.open("rb") as f:
            version.artifact.save(f"{base}.bin", File(f), save=False)
        stored.append((version.artifact.storage, version.artifact.name))
    buf = io.BytesIO()
    np.savez_compressed(
        buf, product_ids=shop.product_ids.astype(np.int64), user_keys=np.asarray(shop.user_keys, dtype=str)
    )
    version.id_maps.save(f"{base}.maps.npz", ContentFile(buf.getvalue()), save=False)
    stored.append((version.id_maps.storage, version.id_maps.name))
    version.save()
    stored.clear()  # the version owns the files now
    return version


# ----------------------------------------------------------------------------------- scheduling


def engines_needed_by_widgets() -> list[str]:
    """Engines every enabled widget needs (strategy, override and fallback), plus the pop fallback."""
    widgets = Widget.objects.filter(enabled=True).only("strategy", "fallback_strategy", "engine")
    return engines_needed(widgets)


def _busy_engines() -> set[str]:
    return set(
        TrainingRun.objects.filter(
            status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]
        ).values_list("engine", flat=True)
    )


def _params_for(engine: str) -> dict[str, Any]:
    """Retrain with the active version's recipe when there is one (keeps tuned hyperparameters)."""
    active = model_version_active(engine=engine)
    if active is None or not active.params:
        return {}
    try:
        return engine_params_validate(engine=engine, params=dict(active.params))
    except ValidationError:
        return {}


def training_runs_schedule(
    *, trigger: str = TrainingRun.Trigger.SCHEDULE, engines: Sequence[str] | None = None
) -> list[TrainingRun]:
    """Create (and enqueue) a run for each engine enabled widgets need, skipping engines that already
    have a queued or running run."""
    training_runs_reap_stale()
    busy = _busy_engines()
    runs = []
    for engine in engines if engines is not None else engines_needed_by_widgets():
        if engine in busy:
            continue
        runs.append(training_run_create(engine=engine, params=_params_for(engine), trigger=trigger))
    return runs


def training_runs_create_if_events(*, threshold: int | None = None) -> list[TrainingRun]:
    """Create runs for the needed engines that have seen more than `threshold` new events since their
    last successful run (RECSITE_RETRAIN_EVENT_THRESHOLD by default). An engine never trained counts
    every event."""
    threshold = settings.RECSITE_RETRAIN_EVENT_THRESHOLD if threshold is None else threshold
    training_runs_reap_stale()
    busy = _busy_engines()
    counts: dict[int, int] = {}
    runs = []
    for engine in engines_needed_by_widgets():
        if engine in busy:
            continue
        last = (
            TrainingRun.objects.filter(engine=engine, status=TrainingRun.Status.SUCCEEDED)
            .order_by("-finished_at", "-id")
            .first()
        )
        since_id = int((last.data_snapshot or {}).get("events_high_water", 0)) if last else 0
        if since_id not in counts:
            counts[since_id] = Event.objects.filter(id__gt=since_id).count()
        if counts[since_id] > threshold:
            runs.append(
                training_run_create(
                    engine=engine, params=_params_for(engine), trigger=TrainingRun.Trigger.EVENTS
                )
            )
    return runs


def training_runs_reap_stale(*, older_than: timedelta | None = None) -> int:
    """Mark as failed the runs still `running` long after they started (their worker died) and the runs
    still `queued` long after they were created (no worker consumes their queue), so they stop blocking
    new runs of their engine. Returns how many."""
    older_than = older_than or timedelta(seconds=settings.RECSITE_TRAINING_STALE_SECONDS)
    now = timezone.now()
    cutoff = now - older_than
    running = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, started_at__lt=cutoff).update(
        status=TrainingRun.Status.FAILED,
        error=f"Interrupted: no result {older_than} after it started (the worker probably stopped).",
        progress_message="Interrupted (worker lost)",
        finished_at=now,
    )
    queued = TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED, created_at__lt=cutoff).update(
        status=TrainingRun.Status.FAILED,
        error=f"Never started: still queued {older_than} after it was created (is a worker consuming its queue?).",
        progress_message="Never started (no worker)",
        finished_at=now,
    )
    return running + queued


def training_run_status(*, run: TrainingRun) -> dict[str, Any]:
    """What the admin's progress bar polls (JSON-able)."""
    return {
        "id": run.pk,
        "engine": run.engine,
        "status": run.status,
        "finished": run.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED),
        "progress": run.progress,
        "message": run.progress_message,
        "error": run.error,
        "device": run.device,
        "model_version": run.model_version_id,
        "timings": run.timings,
    }


# ------------------------------------------------------------------------------------- engine choice


def _choice_figures(name: str, metric: str) -> dict[str, Any]:
    """What the comparison knows about one candidate: its active version's held-out figures."""
    version = model_version_active(engine=name)
    if version is None:
        return {"status": "not trained (no active version)"}
    evaluation = (version.data_snapshot or {}).get("evaluation") or {}
    metrics = version.metrics or {}
    figures: dict[str, Any] = {
        "version": version.pk,
        "cut": evaluation.get("cut"),
        "test_users": evaluation.get("test_users"),
        **{k: metrics.get(k) for k in METRIC_KEYS if k in metrics},
    }
    run = TrainingRun.objects.filter(model_version=version).only("timings").first()
    if run is not None and (run.timings or {}).get("total") is not None:
        figures["train_seconds"] = run.timings["total"]
    if not isinstance(metrics.get(metric), int | float) or not evaluation.get("cut"):
        figures["status"] = "no held-out evaluation (too few events after the cut)"
    return figures


def engine_choice_decide(*, strategy: str = "personalized", metric: str | None = None) -> EngineChoice | None:
    """Choose the engine serving `strategy`: the candidate whose active version scores best on the shop's
    held-out events (settings RECSITE_PROMOTION_METRIC, NDCG@10 by default), and record the figures.

    Only engines evaluated on the SAME held-out period are compared (a metric measured on other weeks is
    not comparable): the largest group of candidates sharing an evaluation cut, the newest on a tie. Equal
    scores go to the earlier (cheaper) candidate in `choice_candidates`. A merchandiser's override is kept
    (it still wins in serving); the automatic winner and the figures are updated beside it. Returns the
    choice, or None when the strategy has no candidates.
    """
    candidates = choice_candidates(strategy)
    if not candidates:
        return None
    metric = metric or settings.RECSITE_PROMOTION_METRIC
    figures = {name: _choice_figures(name, metric) for name in candidates}
    comparable = [n for n in candidates if "status" not in figures[n]]
    groups: dict[str, list[str]] = {}
    for n in comparable:
        groups.setdefault(str(figures[n]["cut"]), []).append(n)
    winner, decision = "", ""
    if groups:
        cut, group = max(groups.items(), key=lambda g: (len(g[1]), g[0]))
        for n in comparable:
            if n not in group:
                figures[n]["status"] = f"evaluated on another period (cut {figures[n]['cut']}): not compared"
        winner = max(group, key=lambda n: (float(figures[n][metric]), -candidates.index(n)))
        others = ", ".join(f"{n} {float(figures[n][metric]):.4f}" for n in group if n != winner)
        decision = (
            f"{winner} wins on {metric.upper()} {float(figures[winner][metric]):.4f}"
            + (f" vs {others}" if others else " (the only engine evaluated)")
            + f"; held-out events after {cut[:16].replace('T', ' ')}, {figures[winner].get('test_users') or 0} shoppers"
        )
    else:
        decision = "No candidate has a held-out evaluation yet: the default engine serves."
    choice, _ = EngineChoice.objects.update_or_create(
        strategy=strategy,
        defaults={
            "engine": winner,
            "metric": metric,
            "figures": _json_safe(figures),
            "decision": decision[:255],
            "decided_at": timezone.now(),
        },
    )
    engine_choice_memo_clear()
    logger.info("engine choice for %s: %s", strategy, decision)
    return choice


def engine_choice_override(*, strategy: str, engine: str, user: str = "") -> EngineChoice:
    """Set (or with engine="" clear) a merchandiser's override of the evaluated choice for `strategy`.

    Raises ValidationError when the strategy has no engine choice or the engine is unknown or has no
    active version to serve.
    """
    if not choice_candidates(strategy):
        raise ValidationError(f"The {strategy!r} strategy has no engine choice.")
    engine = (engine or "").strip()
    if engine:
        if engine not in REGISTRY:
            raise ValidationError(f"Unknown engine {engine!r}. Known engines: {', '.join(sorted(REGISTRY))}.")
        if model_version_active(engine=engine) is None:
            raise ValidationError(
                f"{engine} has no active model version to serve: train it first (Training runs -> Start)."
            )
    choice, _ = EngineChoice.objects.get_or_create(strategy=strategy)
    choice.override = engine
    choice.override_by = user[:150] if engine else ""
    choice.override_at = timezone.now() if engine else None
    choice.save(update_fields=["override", "override_by", "override_at"])
    engine_choice_memo_clear()
    logger.info("engine choice for %s overridden by %s: %s", strategy, user or "?", engine or "(automatic)")
    return choice

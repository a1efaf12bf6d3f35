"""Models as serving uses them: which version a strategy serves, the loaded engine (once per process per
version), and the engine calls in product ids.

- `active_version(engine)`: `model_version_active`, memoised per process for RECSITE_SERVING_MEMO_SECONDS
  (default 5) and dropped as soon as the registry generation changes (polled at most once a second).
- `model_load(version)`: the loaded engine, or None with a warning when the artifact is missing or corrupt;
  a failed version is not retried for MODEL_RETRY_SECONDS.
- Under `make serve` (RECSITE_GC_FREEZE) what is alive after a model load is frozen out of the garbage
  collector's reach (`heap_freeze`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings

from recsite.memo import Memo

from ..models import ModelVersion, Widget
from ..services import LoadedModel, model_version_active, model_version_load
from ..strategies import strategy_engine
from .cache import generation_listen, generations_poll
from .widgets import serving_memo_seconds

logger = logging.getLogger("recommender.serving")

MODEL_RETRY_SECONDS = 60  # after an artifact fails to load, do not retry for this long

_versions_memo: Memo[ModelVersion | None] = Memo(maxsize=256, ttl=serving_memo_seconds)
generation_listen("registry", _versions_memo.clear)
_model_failures: Memo[bool] = Memo(maxsize=1024, ttl=MODEL_RETRY_SECONDS)
_heap_frozen_after: set[int] = set()


def loading_state_reset() -> None:
    _versions_memo.clear()
    _model_failures.clear()


def user_key_customer(customer_id: int) -> str:
    # Same format as recommender.data.user_key_customer; not imported from there because that module
    # pulls in pandas, which would cost every web worker ~40 MB for one f-string.
    return f"c:{customer_id}"


def active_version(engine: str) -> ModelVersion | None:
    """`model_version_active`, memoised per process within the bounds above."""
    if serving_memo_seconds() <= 0:
        return model_version_active(engine=engine)
    generations_poll()
    hit = _versions_memo.get(engine, _versions_memo)
    if hit is not _versions_memo:
        return hit
    version = model_version_active(engine=engine)
    _versions_memo.set(engine, version)
    return version


def model_version_for(*, widget: Widget, strategy: str) -> ModelVersion | None:
    """The widget's pinned version, else the active version of the strategy's engine (None if untrained)."""
    own = strategy == widget.strategy
    if own and widget.model_version_id:
        return widget.model_version
    engine = strategy_engine(strategy, override=widget.engine if own else "")
    if not engine:
        return None
    return active_version(engine)


def model_load(version: ModelVersion) -> LoadedModel | None:
    """The loaded engine of `version` (kept in memory per process by recommender.services), or None with a
    warning when the artifact is missing or corrupt; a failed version is not retried for MODEL_RETRY_SECONDS."""
    if _model_failures.get(version.pk):
        return None
    try:
        loaded = model_version_load(version=version)
    except Exception:
        _model_failures.set(version.pk, True)
        logger.warning(
            "model version %s (%s) failed to load; using fallbacks", version.pk, version.engine, exc_info=True
        )
        return None
    if getattr(settings, "RECSITE_GC_FREEZE", False) and loaded.version_id not in _heap_frozen_after:
        _heap_frozen_after.add(loaded.version_id)
        heap_freeze()
    return loaded


def heap_freeze_once() -> None:
    """At a process's first request under RECSITE_GC_FREEZE: freeze what Django and the libraries made."""
    if not _heap_frozen_after and getattr(settings, "RECSITE_GC_FREEZE", False):
        _heap_frozen_after.add(0)
        heap_freeze()


def heap_freeze() -> None:
    """Move what is alive now (Django, the libraries, the model just loaded) out of the garbage collector's
    reach (gc.freeze), so full collections scan only objects made since. Under `make serve`
    (RECSITE_GC_FREEZE): measured on the benchmark machine, a worker's full collection otherwise paused it
    160-200 ms every few seconds to half a minute, which lands in the p99. Once per model version loaded."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    logger.info(
        "froze %s objects out of the garbage collector in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )


def product_indices(loaded: LoadedModel, product_ids: Iterable[int]) -> np.ndarray:
    """The model's item indices of the products it knows (unknown products dropped), in order."""
    index = loaded.product_index
    return np.asarray([index[p] for p in product_ids if p in index], dtype=np.int64)


def scored_products(loaded: LoadedModel, idx: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    """(product id, score) for item indices in range with finite scores, vectorised (hot path)."""
    ids = loaded.product_ids
    m = min(len(idx), len(scores))
    idx = np.asarray(idx[:m], dtype=np.int64)
    scores = np.asarray(scores[:m], dtype=np.float64)
    ok = (idx >= 0) & (idx < len(ids)) & np.isfinite(scores)
    return list(zip(ids[idx[ok]].tolist(), scores[ok].tolist(), strict=True))


def model_recommend(
    loaded: LoadedModel,
    *,
    history: Sequence[int],
    n: int,
    exclude: Iterable[int] = (),
    user_key: str | None = None,
) -> list[tuple[int, float]]:
    """Top-n (product id, score) for one history of product ids (unknown products ignored)."""
    hist = product_indices(loaded, history)
    excl = product_indices(loaded, set(history) | set(exclude))
    users = None
    if user_key is not None and user_key in loaded.user_index:
        users = np.asarray([loaded.user_index[user_key]], dtype=np.int64)
    ids, scores = loaded.engine.recommend([hist], n, exclude=[excl], users=users)
    return scored_products(loaded, np.asarray(ids)[0], np.asarray(scores)[0])


def model_similar(
    loaded: LoadedModel, *, product_ids: Sequence[int], n: int
) -> list[list[tuple[int, float]]]:
    """Per product (known to the model), its n most similar products with scores; unknown -> []."""
    known = [p for p in product_ids if p in loaded.product_index]
    if not known:
        return [[] for _ in product_ids]
    ids, scores = loaded.engine.similar_items(product_indices(loaded, known), n)
    rows = {
        p: scored_products(loaded, np.asarray(ids)[i], np.asarray(scores)[i]) for i, p in enumerate(known)
    }
    return [[x for x in rows.get(p, []) if x[0] != p] for p in product_ids]


def because_items(
    loaded: LoadedModel, *, history: Sequence[int], candidates: Sequence[int], depth: int = 3
) -> dict[int, int]:
    """For each candidate, the recent history item it is most similar to (for "Because you viewed X")."""
    recent = list(dict.fromkeys(reversed(history)))[:depth]
    if not recent or not candidates:
        return {}
    wanted = set(candidates)
    best: dict[int, tuple[float, int]] = {}
    try:
        neighbours = model_similar(loaded, product_ids=recent, n=200)
    except Exception:
        return {}
    for source, row in zip(recent, neighbours, strict=False):
        for pid, score in row:
            if pid in wanted and (pid not in best or score > best[pid][0]):
                best[pid] = (score, source)
    return {pid: src for pid, (_, src) in best.items()}

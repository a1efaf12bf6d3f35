"""Recommender writes: widgets and the model registry (promotion, rollback, loading versions).

Training runs live in `recommender.training`.
"""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .engines import Engine, engine_class
from .models import ModelVersion, Widget

logger = logging.getLogger(__name__)

DEFAULT_WIDGETS: tuple[dict, ...] = (
    {
        "slug": "home-personalized",
        "title": "Recommended for you",
        "placement": "home",
        "strategy": "personalized",
    },
    {"slug": "home-trending", "title": "Trending now", "placement": "home", "strategy": "trending"},
    {"slug": "pdp-similar", "title": "Similar products", "placement": "product", "strategy": "similar_items"},
    {
        "slug": "pdp-bought-together",
        "title": "Frequently bought together",
        "placement": "product",
        "strategy": "bought_together",
    },
    {
        "slug": "cart-cross-sell",
        "title": "You may also like",
        "placement": "cart",
        "strategy": "bought_together",
    },
)


@transaction.atomic
def widget_defaults_ensure() -> list[Widget]:
    """Create the default storefront widgets that do not exist yet; never changes existing ones."""
    widgets = []
    for spec in DEFAULT_WIDGETS:
        widget, _ = Widget.objects.get_or_create(slug=spec["slug"], defaults=spec)
        widgets.append(widget)
    return widgets


# ------------------------------------------------------------------------------------ model registry
#
# Serving reads the registry through `model_version_active` (which version an engine serves) and
# `model_version_load` (the engine plus the maps from item indices to Product pks), and keys its caches
# by version id, so a promotion or a rollback changes every key at once. `registry_generation()` is a
# counter bumped on every promotion/rollback for caches that are not keyed by a version.

REGISTRY_GENERATION_KEY = "recsite:registry:generation"
_LOADED_MAX = 8


class ModelArtifactError(Exception):
    """A version's artifact is missing, unreadable or corrupt (serving falls back; training reports it)."""


@dataclass(frozen=True)
class LoadedModel:
    """An engine restored from a ModelVersion, with its index maps.

    product_ids[i] is the Product pk of item index i; user_keys[u] is "c:<customer pk>" / "v:<visitor id>".
    """

    version_id: int
    engine_name: str
    engine: Engine
    product_ids: np.ndarray
    user_keys: np.ndarray
    product_index: dict[int, int]
    user_index: dict[str, int]


_loaded: OrderedDict[tuple[int, str], LoadedModel] = OrderedDict()
_loaded_lock = threading.Lock()


def model_version_active(*, engine: str) -> ModelVersion | None:
    """The version serving `engine` now, or None when the engine has never been promoted."""
    return ModelVersion.objects.filter(engine=engine, status=ModelVersion.Status.ACTIVE).first()


def registry_generation() -> int:
    """A counter that changes on every promotion and rollback (0 when the cache is unavailable)."""
    try:
        return int(cache.get(REGISTRY_GENERATION_KEY) or 0)
    except Exception:  # cache down: callers degrade to uncached reads
        logger.warning("cache unavailable reading the registry generation", exc_info=True)
        return 0


def _registry_generation_bump() -> None:
    try:
        try:
            cache.incr(REGISTRY_GENERATION_KEY)
        except ValueError:  # key missing
            cache.set(REGISTRY_GENERATION_KEY, 1, timeout=None)
    except Exception:  # a dead cache must not undo a promotion; version-keyed caches change anyway
        logger.warning("cache unavailable bumping the registry generation", exc_info=True)


@transaction.atomic
def model_version_promote(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the active one for its engine; the previous active version becomes retired.

    Atomic: the engine's versions are locked, the old one retired before the new one is activated
    (the one-active-per-engine constraint holds at every statement). Promoting the active version is a
    no-op. Raises ValidationError when the version has no artifact to serve.
    """
    list(ModelVersion.objects.select_for_update().filter(engine=version.engine).values_list("id", flat=True))
    version.refresh_from_db()
    if version.status == ModelVersion.Status.ACTIVE:
        return version
    if not version.artifact:
        raise ValidationError(f"{version} has no artifact and cannot be served.")
    now = timezone.now()
    ModelVersion.objects.filter(engine=version.engine, status=ModelVersion.Status.ACTIVE).update(
        status=ModelVersion.Status.RETIRED
    )
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.ACTIVE, promoted_at=now)
    version.refresh_from_db()
    transaction.on_commit(_registry_generation_bump)
    logger.info("promoted %s", version)
    return version


@transaction.atomic
def model_version_rollback(*, engine: str) -> ModelVersion:
    """Re-activate the version that was active before the current one; the current one is retired.

    Walks back through promotions: the target is the retired version with the latest `promoted_at`
    earlier than the current version's (any retired, previously promoted version when none is active).
    `promoted_at` keeps the original promotion time, so rolling back twice goes two versions back.
    Raises ValidationError when there is nothing to roll back to.
    """
    list(ModelVersion.objects.select_for_update().filter(engine=engine).values_list("id", flat=True))
    current = model_version_active(engine=engine)
    candidates = ModelVersion.objects.filter(
        engine=engine, status=ModelVersion.Status.RETIRED, promoted_at__isnull=False
    ).exclude(artifact="")
    if current is not None and current.promoted_at is not None:
        candidates = candidates.filter(promoted_at__lt=current.promoted_at)
    target = candidates.order_by("-promoted_at", "-id").first()
    if target is None:
        raise ValidationError(f"No earlier version of {engine!r} to roll back to.")
    if current is not None:
        ModelVersion.objects.filter(pk=current.pk).update(status=ModelVersion.Status.RETIRED)
    ModelVersion.objects.filter(pk=target.pk).update(status=ModelVersion.Status.ACTIVE)
    target.refresh_from_db()
    transaction.on_commit(_registry_generation_bump)
    logger.info("rolled back %s from %s to %s", engine, current, target)
    return target


def model_version_load(*, version: ModelVersion) -> LoadedModel:
    """The engine of `version` restored from storage, with its id maps (cached per process, LRU of 8).

    Raises ModelArtifactError when the artifact or its id maps are missing or cannot be loaded.
    """
    # Keyed by the artifact's name as well: a row id can be reused (SQLite, restored databases).
    key = (version.pk, version.artifact.name or "")
    with _loaded_lock:
        hit = _loaded.get(key)
        if hit is not None:
            _loaded.move_to_end(key)
            return hit
    if not version.artifact or not version.id_maps:
        raise ModelArtifactError(f"{version} has no stored artifact")
    try:
        with tempfile.TemporaryDirectory(prefix="recsite-load-") as tmp:
            path = Path(tmp) / "artifact"
            with version.artifact.open("rb") as src, path.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            engine = engine_class(version.engine).load(path)
        with version.id_maps.open("rb") as f:
            maps = np.load(io.BytesIO(f.read()), allow_pickle=False)
            product_ids = maps["product_ids"].astype(np.int64)
            user_keys = maps["user_keys"]
    except Exception as exc:  # any failure to read or unpickle is the artifact's fault, not the caller's
        raise ModelArtifactError(f"cannot load {version}: {type(exc).__name__}: {exc}") from exc
    loaded = LoadedModel(
        version_id=version.pk,
        engine_name=version.engine,
        engine=engine,
        product_ids=product_ids,
        user_keys=user_keys,
        product_index={int(p): i for i, p in enumerate(product_ids)},
        user_index={str(k): i for i, k in enumerate(user_keys)},
    )
    with _loaded_lock:
        _loaded[key] = loaded
        while len(_loaded) > _LOADED_MAX:
            _loaded.popitem(last=False)
    return loaded


def model_version_loaded_clear() -> None:
    """Forget the process-local cache of loaded engines (tests, or after replacing an artifact)."""
    with _loaded_lock:
        _loaded.clear()


# ------------------------------------------------------------------------------------ decision traces


def decision_traces_purge(*, older_than_days: int | None = None) -> int:
    """Delete stored decision traces older than `older_than_days` (default RECSITE_TRACE_RETENTION_DAYS;
    0 or less keeps everything). Returns the number of rows deleted. Run daily by Celery beat."""
    from django.conf import settings

    from .models import DecisionTraceRecord

    days = int(
        older_than_days
        if older_than_days is not None
        else getattr(settings, "RECSITE_TRACE_RETENTION_DAYS", 90)
    )
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = DecisionTraceRecord.objects.filter(created_at__lt=cutoff).delete()
    if deleted:
        logger.info("purged %s decision traces older than %s days", deleted, days)
    return deleted

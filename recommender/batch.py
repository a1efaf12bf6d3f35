"""Batch inference: precompute each active customer's top candidates per model version into the cache.

Keys are `serving.candidates_cache_key(model_version_id, customer_id)`, so a promotion (a new active
version) or a rollback changes every key at once and serving never mixes two versions' lists; entries of
retired versions simply expire. Serving reads them for the `personalized` strategy and falls back to live
scoring on a miss.

Entry format: {"items": [(product id, score, because product id | None, because title | ""), ...],
"at": unix seconds}: everything the request needs, so a cached request reads no titles.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from catalog.models import Customer, Event, Product

from .models import ModelVersion, Widget
from .serving import (
    candidates_cache_key,
    model_load,
    model_similar,
    model_version_for,
    product_indices,
    scored_products,
    user_key_customer,
)
from .serving.cache import cache_set_many
from .serving.shopper import HISTORY_CAP

logger = logging.getLogger(__name__)

BATCH_SIZE = 256
DEFAULT_N = 100
DEFAULT_ACTIVE_DAYS = 90


@dataclass(frozen=True)
class PrecomputeResult:
    model_version_id: int
    engine: str
    customers: int  # customers with a cached list
    skipped: int  # active customers the model knows nothing about (served live / by fallbacks)
    seconds: float
    cache_ok: bool


def batch_versions() -> list[ModelVersion]:
    """The model versions enabled personalized widgets serve (pinned or active), deduplicated."""
    versions: dict[int, ModelVersion] = {}
    for widget in Widget.objects.filter(enabled=True, strategy=Widget.Strategy.PERSONALIZED).select_related(
        "model_version"
    ):
        version = model_version_for(widget=widget, strategy=widget.strategy)
        if version is not None:
            versions[version.pk] = version
    return list(versions.values())


def active_customer_ids(*, days: int = DEFAULT_ACTIVE_DAYS, limit: int | None = None) -> list[int]:
    """Customers with an event in the last `days` days who allow personalization (most recent first)."""
    since = timezone.now() - timedelta(days=days)
    ids = (
        Event.objects.filter(timestamp__gte=since, customer__isnull=False)
        .exclude(customer__consent=Customer.Consent.NONE)
        .values_list("customer_id", flat=True)
        .distinct()
        .order_by("customer_id")
    )
    return list(ids[:limit] if limit else ids)


def _histories(customer_ids: list[int]) -> dict[int, list[int]]:
    """Most recent HISTORY_CAP product ids per customer, oldest first (one query per batch)."""
    rows = (
        Event.objects.filter(Q(customer_id__in=customer_ids), product__isnull=False)
        .exclude(type="remove_from_cart")
        .order_by("customer_id", "-timestamp", "-id")
        .values_list("customer_id", "product_id")
    )
    out: dict[int, list[int]] = {}
    for cid, pid in rows:
        h = out.setdefault(cid, [])
        if len(h) < HISTORY_CAP:
            h.append(pid)
    return {cid: list(reversed(h)) for cid, h in out.items()}


def candidates_precompute(
    *,
    version: ModelVersion,
    customer_ids: Iterable[int] | None = None,
    n: int = DEFAULT_N,
    batch_size: int = BATCH_SIZE,
    timeout: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PrecomputeResult:
    """Score every given (default: active) customer with `version` and cache their top-n candidates."""
    started = time.perf_counter()
    loaded = model_load(version)
    if loaded is None:
        raise ValueError(f"model version {version.pk} ({version.engine}) cannot be loaded")
    ids = list(customer_ids) if customer_ids is not None else active_customer_ids()
    timeout = timeout or getattr(settings, "RECSITE_BATCH_TTL", 24 * 3600)
    done = skipped = 0
    cache_ok = True
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        histories = _histories(chunk)
        rows, hist_idx, users = [], [], []
        for cid in chunk:
            idx = product_indices(loaded, histories.get(cid, []))
            if not idx.size:
                skipped += 1
                continue
            rows.append(cid)
            hist_idx.append(idx)
            users.append(loaded.user_index.get(user_key_customer(cid), -1))
        if not rows:
            continue
        user_arr = np.asarray(users, dtype=np.int64)
        ids_mat, score_mat = loaded.engine.recommend(
            hist_idx, n, exclude=hist_idx, users=user_arr if (user_arr >= 0).all() else None
        )
        # "Because you viewed X": neighbours of each customer's 3 most recent items, in one call.
        recent = {cid: list(dict.fromkeys(reversed(histories[cid])))[:3] for cid in rows}
        anchors = sorted({p for r in recent.values() for p in r})
        try:
            neigh = dict(zip(anchors, model_similar(loaded, product_ids=anchors, n=200), strict=False))
        except Exception:
            logger.warning("similar_items failed for %s; caching without reasons", version, exc_info=True)
            neigh = {}
        because_ids = {a for cid in rows for a in recent[cid]}
        titles = dict(Product.objects.filter(pk__in=because_ids).values_list("pk", "title"))
        entries = {}
        for row, cid in enumerate(rows):
            items = scored_products(loaded, np.asarray(ids_mat)[row], np.asarray(score_mat)[row])
            best: dict[int, tuple[float, int]] = {}
            for anchor in recent[cid]:
                for pid, s in neigh.get(anchor, ()):
                    if pid not in best or s > best[pid][0]:
                        best[pid] = (s, anchor)
            entries[candidates_cache_key(model_version_id=version.pk, customer_id=cid)] = {
                "items": [
                    (p, s, best[p][1], titles.get(best[p][1], "")) if p in best else (p, s, None, "")
                    for p, s in items
                ],
                "at": time.time(),
            }
        cache_ok = cache_set_many(entries, timeout) and cache_ok
        done += len(entries)
        if progress is not None:
            progress(min(start + batch_size, len(ids)), len(ids))
    return PrecomputeResult(
        model_version_id=version.pk,
        engine=version.engine,
        customers=done,
        skipped=skipped,
        seconds=time.perf_counter() - started,
        cache_ok=cache_ok,
    )


def batch_inference_run(
    *, model_version_id: int | None = None, limit: int | None = None
) -> list[PrecomputeResult]:
    """Precompute for one version, or for every version enabled personalized widgets serve."""
    if model_version_id is not None:
        versions = list(ModelVersion.objects.filter(pk=model_version_id))
        if not versions:
            raise ValueError(f"No model version {model_version_id}.")
    else:
        versions = batch_versions()
    customers = active_customer_ids(limit=limit)
    results = []
    for version in versions:
        result = candidates_precompute(version=version, customer_ids=customers)
        logger.info(
            "precomputed %s customers for %s in %.1fs (%s unknown to the model)",
            result.customers,
            version,
            result.seconds,
            result.skipped,
        )
        results.append(result)
    return results


@shared_task(name="recommender.tasks.batch_inference_task")
def batch_inference_task(model_version_id: int | None = None) -> list[dict]:
    """Celery entry point (idempotent: recomputing overwrites the same keys)."""
    return [r.__dict__ for r in batch_inference_run(model_version_id=model_version_id)]

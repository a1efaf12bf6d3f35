"""The shared cache (Redis under `make serve`) behind a circuit breaker, and the per-process memos' clock.

A dead cache costs one timeout per CACHE_RETRY_SECONDS, not one per call: after a failure every helper here
answers "miss" / "not stored" at once until the retry time. `shared_list` keeps a process-local copy of
lists shared through the cache, used only while the cache is down.

Generations: promotions / rollbacks bump the registry generation (`recommender.services`), widget and rule
saves the widget generation (`recommender.serving.widgets`). `generations_poll` reads both in one round
trip at most once per GENERATION_POLL_SECONDS per process and tells the memos that depend on them to
forget (listeners registered with `generation_listen`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.cache import cache

from recsite import memo
from recsite.memo import Memo

from ..services import REGISTRY_GENERATION_KEY

logger = logging.getLogger("recommender.serving")

CACHE_RETRY_SECONDS = 30  # after a cache error, skip the cache for this long (circuit breaker)
GENERATION_POLL_SECONDS = 1.0
LIST_TTL = 300  # seconds trending / popular lists stay cached
WIDGET_GENERATION_KEY = "rs:widgets:generation"  # bumped when a widget or one of its rules is saved

_breaker = {"down_until": 0.0}
# process-local copies of shared lists, used only while the cache is down (at most 60 s old)
_outage_lists: Memo[Any] = Memo(maxsize=256, ttl=60)


def cache_is_down() -> bool:
    return memo.monotonic() < _breaker["down_until"]


def cache_failed(op: str, key: str) -> None:
    """Trip the breaker after a failed cache operation (one warning per outage window)."""
    _breaker["down_until"] = memo.monotonic() + CACHE_RETRY_SECONDS
    logger.warning(
        "cache %s %s failed; serving without the cache for %ss", op, key, CACHE_RETRY_SECONDS, exc_info=True
    )


def cache_breaker_reset() -> None:
    _breaker["down_until"] = 0.0
    _outage_lists.clear()
    _generation_seen[2] = -1e18
    _seen.clear()


def cache_get(key: str) -> Any:
    if cache_is_down():
        return None
    try:
        return cache.get(key)
    except Exception:
        cache_failed("get", key)
        return None


def cache_get_many(keys: list[str]) -> dict[str, Any]:
    if cache_is_down():
        return {}
    try:
        return cache.get_many(keys)
    except Exception:
        cache_failed("get_many", keys[0] if keys else "")
        return {}


def cache_set(key: str, value: Any, timeout: int | None = None) -> bool:
    if cache_is_down():
        return False
    try:
        cache.set(key, value, timeout)
        return True
    except Exception:
        cache_failed("set", key)
        return False


def cache_set_many(values: dict[str, Any], timeout: int | None = None) -> bool:
    if cache_is_down():
        return False
    try:
        cache.set_many(values, timeout)
        return True
    except Exception:
        cache_failed("set_many", next(iter(values), ""))
        return False


def cache_delete(key: str) -> None:
    if cache_is_down():
        return
    try:
        cache.delete(key)
    except Exception:  # trips the breaker: one warning, no timeout per call while it is down
        cache_failed("delete", key)


def cache_incr(key: str) -> None:
    """Increment a counter (created at 1 when missing)."""
    if cache_is_down():
        return
    try:
        try:
            cache.incr(key)
        except ValueError:  # key missing
            cache.set(key, 1, timeout=None)
    except Exception:
        cache_failed("incr", key)


def shared_list(key: str, compute: Callable[[], Any], ttl: int = LIST_TTL) -> Any:
    """A list shared across workers through the cache; recomputed on a miss. While the cache is down a
    process-local copy (at most 60 s old) stands in, so an outage does not recompute it per request."""
    value = cache_get(key)
    if value is not None:
        return value
    if cache_is_down():
        hit = _outage_lists.get(key)
        if hit is not None:
            return hit
    value = compute()
    if not cache_set(key, value, ttl):
        _outage_lists.set(key, value)
    return value


# --------------------------------------------------------------------------------------------------
# Generations

# generation key -> the memos to forget when it changes (registry and widgets here; other apps may add
# theirs with `generation_watch`, e.g. experiments' running-experiment snapshot)
_watched: dict[str, list[Callable[[], None]]] = {REGISTRY_GENERATION_KEY: [], WIDGET_GENERATION_KEY: []}
_KINDS = {"registry": REGISTRY_GENERATION_KEY, "widgets": WIDGET_GENERATION_KEY}
_seen: dict[str, Any] = {}
_generation_seen: list[Any] = [None, None, -1e18]  # [unused, unused, clock time of the last poll]


def generation_listen(kind: str, forget: Callable[[], None]) -> None:
    """Call `forget()` whenever the `kind` ("registry" or "widgets") generation is seen to change."""
    generation_watch(_KINDS[kind], forget)


def generation_watch(key: str, forget: Callable[[], None]) -> None:
    """Call `forget()` whenever the cache value under `key` is seen to change (polled with the others, in
    the same round trip)."""
    _watched.setdefault(key, []).append(forget)


def generations_poll() -> None:
    """Forget the memos whose generation changed (every watched key read in one cache round trip, at most
    once per GENERATION_POLL_SECONDS per process)."""
    now = memo.monotonic()
    if now - _generation_seen[2] < GENERATION_POLL_SECONDS:
        return
    _generation_seen[2] = now
    keys = list(_watched)
    got = cache_get_many(keys)  # {} when the cache is down
    for key in keys:
        value = got.get(key)
        if key not in _seen or value != _seen[key]:
            if key in _seen:
                for forget in _watched[key]:
                    forget()
            _seen[key] = value

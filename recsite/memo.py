"""The one per-process memo with a time-to-live (on cachetools). Pure: no Django import.

Every hot-path memo of the project (serving's active versions, widgets, product attributes, category tree;
experiments' running-experiment snapshot and bandit policies; verified API keys) is a `Memo`: a bounded
mapping whose entries expire `ttl` seconds after they were stored. The TTL is read when an entry is
stored, from a number or a callable (so a setting changed by a test or an operator applies to the next
entry); a TTL of 0 or less turns the memo off: nothing is stored and every lookup misses.

Time comes from `monotonic()` in this module, so a test can move the clock of every memo at once by
replacing `recsite.memo.time` (see tests/recommender/test_serving_memo.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from cachetools import TLRUCache

V = TypeVar("V")
_MISSING: Any = object()


def monotonic() -> float:
    """The clock of every memo (seconds, monotonic)."""
    return time.monotonic()


class Memo(Generic[V]):
    """Bounded TTL memo: `get(key)` -> value or `default`; `set(key, value)`; `get_or_compute(key, fn)`.

    maxsize: entries kept at most (expired ones go first, then the least recently used).
    ttl:     seconds an entry lives, or a callable returning them (read at each store); <= 0 = off.
    Thread-safe (one lock per memo: the impression writer and request threads may share a process).
    Callers treat stored values as immutable: the memo hands out the same object every time.
    """

    __slots__ = ("_cache", "_lock", "_ttl", "hits", "misses", "maxsize")

    def __init__(self, *, maxsize: int, ttl: float | Callable[[], float]) -> None:
        self.maxsize = maxsize
        self._ttl = ttl
        # Entries are (expires at, value); the cache reads each entry's expiry from it.
        self._cache: TLRUCache = TLRUCache(maxsize=maxsize, ttu=_entry_expiry, timer=monotonic)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def ttl(self) -> float:
        return float(self._ttl() if callable(self._ttl) else self._ttl)

    def get(self, key: Hashable, default: Any = None) -> V | Any:
        with self._lock:
            entry = self._cache.get(key)
        if entry is None:
            self.misses += 1
            return default
        self.hits += 1
        return entry[1]

    def get_many(self, keys: Iterable[Hashable]) -> dict[Hashable, V]:
        """The memoised values of those keys that have one (one lock for all)."""
        out: dict[Hashable, V] = {}
        asked = 0
        with self._lock:
            cache = self._cache
            for key in keys:
                asked += 1
                try:  # noqa: SIM105  (cheaper than contextlib.suppress on the hot path)
                    out[key] = cache[key][1]
                except KeyError:
                    pass
        self.hits += len(out)
        self.misses += asked - len(out)
        return out

    def set_many(self, values: Mapping[Hashable, V]) -> None:
        ttl = self.ttl()
        if ttl <= 0 or not values:
            return
        with self._lock:
            expires = monotonic() + ttl
            for key, value in values.items():
                self._cache[key] = (expires, value)

    def set(self, key: Hashable, value: V) -> None:
        ttl = self.ttl()
        if ttl <= 0:
            return
        with self._lock:
            self._cache[key] = (monotonic() + ttl, value)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The memoised value, else `compute()` (stored). Computed outside the lock: concurrent misses of one
        key may both compute, harmless for the idempotent reads memoised here."""
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            return value
        value = compute()
        self.set(key, value)
        return value

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            self._cache.expire()
            return len(self._cache)


def _entry_expiry(_key: Hashable, entry: tuple[float, Any], _now: float) -> float:
    return entry[0]

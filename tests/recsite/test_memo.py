"""recsite.memo.Memo: the one per-process TTL memo (on cachetools)."""

import pytest

from recsite import memo
from recsite.memo import Memo


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(memo, "time", fake)
    return fake


def test_entries_expire_after_their_ttl(clock):
    m = Memo(maxsize=10, ttl=5)
    m.set("a", 1)
    clock.now += 4.9
    assert m.get("a") == 1
    clock.now += 0.2
    assert m.get("a") is None
    assert (m.hits, m.misses) == (1, 1)


def test_ttl_is_read_at_each_store_and_zero_turns_the_memo_off(clock):
    seconds = {"ttl": 10.0}
    m = Memo(maxsize=10, ttl=lambda: seconds["ttl"])
    m.set("long", 1)
    seconds["ttl"] = 1.0
    m.set("short", 2)
    clock.now += 2
    assert (m.get("long"), m.get("short")) == (1, None)
    seconds["ttl"] = 0
    m.set("off", 3)
    assert m.get("off") is None


def test_bounded_size_evicts_the_least_recently_used(clock):
    m = Memo(maxsize=2, ttl=60)
    m.set("a", 1)
    m.set("b", 2)
    assert m.get("a") == 1  # a is now more recent than b
    m.set("c", 3)
    assert (m.get("a"), m.get("b"), m.get("c")) == (1, None, 3)
    assert len(m) == 2


def test_get_many_set_many_and_get_or_compute(clock):
    m = Memo(maxsize=100, ttl=30)
    m.set_many({1: "x", 2: "y"})
    assert m.get_many([1, 2, 3]) == {1: "x", 2: "y"}
    calls = []

    def compute():
        calls.append(1)
        return "z"

    assert m.get_or_compute(3, compute) == "z"
    assert m.get_or_compute(3, compute) == "z"
    assert len(calls) == 1
    m.pop(3)
    assert m.get(3) is None
    m.clear()
    assert m.get_many([1, 2]) == {}


def test_none_values_are_memoised_too(clock):
    m = Memo(maxsize=10, ttl=30)
    m.set("missing-widget", None)
    sentinel = object()
    assert m.get("missing-widget", sentinel) is None
    assert m.get("other", sentinel) is sentinel

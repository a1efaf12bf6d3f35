"""Deterministic, sticky assignment of shoppers to experiment variants. Pure Python, no Django.

A shopper id (customer external id or visitor cookie id) is hashed with the experiment's salt into one
of `N_BUCKETS` buckets; an allocation table maps each bucket to a variant. No database write happens per
request and the same id always lands in the same bucket, so assignment is reproducible anywhere.

Weight changes mid-flight: `allocation_rebalance` moves the fewest buckets needed to reach the new
weights. Buckets of variants that keep or gain weight never move; a variant that loses weight gives up
only its surplus buckets (its highest-numbered ones), and those go to the variants that gained. So when
B goes from 50% to 60%, the 10% of shoppers that move are exactly the ones in the buckets A released; the
other 90% keep their variant. Traffic share (who is in the experiment at all) uses a second, independent
hash, so raising the share only adds shoppers and lowering it only removes the most recently added ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

N_BUCKETS = 1000


def bucket_of(salt: str, subject_id: str, *, n_buckets: int = N_BUCKETS) -> int:
    """Uniform bucket in [0, n_buckets) from BLAKE2b(salt ':' subject_id)."""
    digest = hashlib.blake2b(f"{salt}:{subject_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_buckets


def in_traffic(salt: str, subject_id: str, traffic_share: float) -> bool:
    """Whether the shopper takes part at all (independent of the variant bucket)."""
    if traffic_share >= 1:
        return True
    if traffic_share <= 0:
        return False
    return bucket_of(salt + ":traffic", subject_id, n_buckets=10_000) < round(traffic_share * 10_000)


def in_holdout(salt: str, subject_id: str, holdout_share: float) -> bool:
    """A holdout shopper sees the widget's default behaviour and is excluded from variants."""
    if holdout_share <= 0:
        return False
    return bucket_of(salt + ":holdout", subject_id, n_buckets=10_000) < round(holdout_share * 10_000)


def _targets(weights: Mapping[int, float], n_buckets: int) -> dict[int, int]:
    """Bucket counts per variant proportional to weights (largest-remainder rounding, exact total)."""
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError("weights must be non-negative with a positive total")
    total = sum(weights.values())
    raw = {v: w * n_buckets / total for v, w in weights.items()}
    counts = {v: int(r) for v, r in raw.items()}
    short = n_buckets - sum(counts.values())
    for v in sorted(raw, key=lambda v: (raw[v] - counts[v], -v), reverse=True)[:short]:
        counts[v] += 1
    return counts


def allocation_build(weights: Mapping[int, float], *, n_buckets: int = N_BUCKETS) -> list[int]:
    """A fresh allocation table: contiguous bucket ranges per variant in id order."""
    table: list[int] = []
    for variant, count in sorted(_targets(weights, n_buckets).items()):
        table.extend([variant] * count)
    return table


def allocation_rebalance(current: Sequence[int | None], weights: Mapping[int, float]) -> list[int]:
    """New table for `weights` that keeps as many buckets as possible on their current variant.

    Buckets whose variant disappeared (or None) are free; variants above their new target release their
    highest-numbered buckets; free buckets go, in bucket order, to variants below target.
    """
    n = len(current)
    targets = _targets(weights, n)
    table: list[int | None] = [v if v in targets else None for v in current]
    held: dict[int, list[int]] = {v: [] for v in targets}
    for b, v in enumerate(table):
        if v is not None:
            held[v].append(b)
    for v, buckets in held.items():
        for b in buckets[targets[v] :][::-1] if len(buckets) > targets[v] else []:
            table[b] = None
    need = {v: targets[v] - min(len(held[v]), targets[v]) for v in targets}
    order = sorted(need)
    for b in range(n):
        if table[b] is None:
            for v in order:
                if need[v] > 0:
                    table[b] = v
                    need[v] -= 1
                    break
    return [int(v) for v in table]  # type: ignore[arg-type]


def variant_for(salt: str, subject_id: str, allocation: Sequence[int]) -> int:
    """The variant id of a shopper under an allocation table."""
    if not allocation:
        raise ValueError("the experiment has no allocation table; start it first")
    return allocation[bucket_of(salt, subject_id, n_buckets=len(allocation))]

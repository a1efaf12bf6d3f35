"""Bandit widget strategies in serving: epsilon-greedy, Thompson sampling, LinUCB.

A bandit widget re-ranks a pool of candidates from a base strategy (`params["base"]`, default
"personalized", falling back to "popular"): the policy (experiments.bandits, pure) orders the pool's top
`params["pool"]` items (default 24) and every position's propensity is logged on its impression, which
is what off-policy evaluation needs.

State: one policy per (widget, experiment variant, strategy, parameters), pickled in the cache
(`rs:bandit:...`) and memoised per process. It learns from the log, not from request callbacks: every
`RECSITE_BANDIT_SYNC_SECONDS` (default 5; 0 = before every request, as the simulator runs it) a worker
takes a short cache lock and folds in the impressions logged since its cursor (pulls) and the click
events that carry those impressions' ids (rewards). Because the state is a pure function of the log,
a lost cache only costs a rebuild from the last `REBUILD_DAYS` of impressions.

Parameters (widget or variant `params`): epsilon (epsilon-greedy exploration rate, default 0.1),
prior_clicks / prior_pulls (its CTR prior), alpha (LinUCB exploration, default 0.5), beta0 (Thompson
prior), pool, base.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Subquery
from django.utils import timezone

from catalog.models import Customer, Event

from .bandits import EpsilonGreedy, LinUCB, ThompsonSampling

logger = logging.getLogger(__name__)

REBUILD_DAYS = 30
DEFAULT_POOL = 24
BANDIT_STRATEGIES = frozenset({"epsilon_greedy", "thompson", "linucb"})
AGE_BANDS = tuple(Customer.AgeBand.values)
GENDERS = tuple(Customer.Gender.values)
CONTEXT_DIM = 1 + len(AGE_BANDS) + len(GENDERS)


@dataclass(frozen=True)
class BanditSlate:
    """The policy's order of the pool: items best first, each with its position's propensity."""

    name: str  # engine name logged on impressions, e.g. "bandit:epsilon_greedy"
    items: tuple[int, ...]
    propensities: tuple[float, ...]


@dataclass
class BanditState:
    policy: Any
    impressions_cursor: datetime
    clicks_cursor: datetime
    pulls: int = 0
    clicks: int = 0
    synced_at: float = 0.0
    extra: dict = field(default_factory=dict)


def context_vector(age_band: str | None, gender: str | None) -> np.ndarray:
    """LinUCB context: bias, one-hot age band, one-hot gender (zeros when unknown / anonymous)."""
    x = np.zeros(CONTEXT_DIM)
    x[0] = 1.0
    if age_band in AGE_BANDS:
        x[1 + AGE_BANDS.index(age_band)] = 1.0
    if gender in GENDERS:
        x[1 + len(AGE_BANDS) + GENDERS.index(gender)] = 1.0
    return x


def policy_make(strategy: str, params: dict[str, Any]) -> Any:
    """A fresh policy for `strategy` with the widget's parameters (ValueError for bad values)."""
    if strategy == "epsilon_greedy":
        return EpsilonGreedy(
            epsilon=float(params.get("epsilon", 0.1)),
            prior_clicks=float(params.get("prior_clicks", 1.0)),
            prior_pulls=float(params.get("prior_pulls", 20.0)),
        )
    if strategy == "thompson":
        return ThompsonSampling(
            alpha0=float(params.get("alpha0", 1.0)), beta0=float(params.get("beta0", 20.0))
        )
    if strategy == "linucb":
        return LinUCB(dim=CONTEXT_DIM, alpha=float(params.get("alpha", 0.5)))
    raise ValueError(f"unknown bandit strategy {strategy!r}")


def engine_name(strategy: str, params: dict[str, Any] | None = None) -> str:
    """Logged on impressions; epsilon-greedy carries its exploration rate ("bandit:epsilon_greedy@0.2")
    so off-policy evaluation can recover each logged row's greedy flag from its propensity."""
    if strategy == "epsilon_greedy":
        return f"bandit:{strategy}@{float((params or {}).get('epsilon', 0.1)):g}"
    return f"bandit:{strategy}"


def state_key(*, widget: Any, strategy: str, params: dict[str, Any]) -> tuple[str, str, str]:
    """(cache key, experiment slug, variant label) of the widget's policy."""
    variant = getattr(widget, "_recsite_variant", "") or ""
    exp, _, var = variant.partition("/")
    relevant = {k: params[k] for k in sorted(params) if k not in ("base", "pool")}
    digest = hashlib.blake2b(
        json.dumps(relevant, sort_keys=True, default=str).encode(), digest_size=6
    ).hexdigest()
    return f"rs:bandit:w{widget.pk}:{exp}:{var}:{strategy}:{digest}", exp, var


_memo: dict[str, BanditState] = {}
_rng: np.random.Generator | None = None


def bandit_rng_seed(*, seed: int | None) -> None:
    """Draw every slate of this process from one generator seeded with `seed` (the simulator does this so
    that `--seed` fixes the AI arms too); None goes back to fresh, unseeded draws per request."""
    global _rng
    _rng = None if seed is None else np.random.default_rng(np.random.SeedSequence([int(seed), 31]))


def bandit_rng() -> np.random.Generator:
    """The generator slates are drawn from: the seeded one (see `bandit_rng_seed`) or a fresh one."""
    return _rng if _rng is not None else np.random.default_rng()


def bandit_state_reset() -> None:
    """Forget process-local policies and any seeded generator (tests, the simulator between runs)."""
    _memo.clear()
    bandit_rng_seed(seed=None)


def bandit_states_expire() -> None:
    """Make every policy of this process sync with the log at its next request (the simulator calls this
    after recording a visit's events, instead of syncing on every request)."""
    for state in _memo.values():
        state.synced_at = 0.0


def _sync(
    state: BanditState,
    *,
    widget_id: int,
    strategy: str,
    params: dict[str, Any],
    experiment: str,
    variant: str,
) -> None:
    """Fold the impressions and clicks logged since the cursors into the policy (two queries)."""
    from recommender.models import Impression

    imps = Impression.objects.filter(
        widget_id=widget_id, experiment=experiment, variant=variant, engine=engine_name(strategy, params)
    )
    policy = state.policy
    rows = list(
        imps.filter(created_at__gt=state.impressions_cursor)
        .order_by("created_at")
        .values_list("product_id", "created_at", "customer__age_band", "customer__gender")[:200_000]
    )
    for pid, created, age, gender in rows:
        if isinstance(policy, LinUCB):
            A, _ = policy.arm_state(pid)
            x = context_vector(age, gender)
            policy.A[pid] = A + np.outer(x, x)
        else:
            policy.pulls[pid] = policy.pulls.get(pid, 0) + 1
        state.impressions_cursor = max(state.impressions_cursor, created)
    state.pulls += len(rows)
    clicks = list(
        Event.objects.filter(
            type="click", received_at__gt=state.clicks_cursor, impression_id__in=Subquery(imps.values("id"))
        )
        .order_by("received_at")
        .values_list("product_id", "received_at", "customer__age_band", "customer__gender")[:200_000]
    )
    for pid, received, age, gender in clicks:
        if pid is None:
            continue
        if isinstance(policy, LinUCB):
            _, b = policy.arm_state(pid)
            policy.b[pid] = b + context_vector(age, gender)
        else:
            policy.clicks[pid] = policy.clicks.get(pid, 0) + 1
        state.clicks_cursor = max(state.clicks_cursor, received)
    state.clicks += len(clicks)


def bandit_state(*, widget: Any, strategy: str, params: dict[str, Any]) -> BanditState:
    """The widget's current policy state, synced with the log when older than RECSITE_BANDIT_SYNC_SECONDS."""
    from recommender.serving import cache_get, cache_set

    key, exp, var = state_key(widget=widget, strategy=strategy, params=params)
    every = float(getattr(settings, "RECSITE_BANDIT_SYNC_SECONDS", 5.0))
    now = time.monotonic()
    state = _memo.get(key)
    if state is not None and state.synced_at and now - state.synced_at < every:
        return state
    cached = cache_get(key)
    if isinstance(cached, BanditState):
        state = cached
    if state is None:
        start = timezone.now() - timedelta(days=REBUILD_DAYS)
        state = BanditState(
            policy=policy_make(strategy, params), impressions_cursor=start, clicks_cursor=start
        )
    lock = key + ":lock"
    got_lock = True
    try:
        from django.core.cache import cache

        got_lock = cache.add(lock, 1, 10)
    except Exception:
        got_lock = True  # no cache: this process is on its own anyway
    if got_lock:
        try:
            _sync(state, widget_id=widget.pk, strategy=strategy, params=params, experiment=exp, variant=var)
            cache_set(key, state, None)
        finally:
            try:
                from django.core.cache import cache

                cache.delete(lock)
            except Exception:
                pass
    state.synced_at = now
    _memo[key] = state
    return state


def bandit_slate(
    *,
    strategy: str,
    widget: Any,
    pool: list[int],
    customer: Customer | None,
    rng: np.random.Generator | None = None,
) -> BanditSlate:
    """Order `pool` (product ids, the base strategy's best first) with the widget's bandit policy."""
    params = dict(widget.params or {})
    state = bandit_state(widget=widget, strategy=strategy, params=params)
    rng = rng or bandit_rng()
    size = len(pool)
    if isinstance(state.policy, LinUCB):
        x = context_vector(getattr(customer, "age_band", None), getattr(customer, "gender", None))
        slate = state.policy.select(pool, size, rng, x)
    else:
        slate = state.policy.select(pool, size, rng)
    return BanditSlate(
        engine_name(strategy, params), tuple(int(i) for i in slate.items), tuple(slate.propensities)
    )

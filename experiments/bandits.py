"""Bandit policies that learn online from impressions (pulls) and clicks (rewards). Pure Python.

Each policy chooses a slate of k items from candidate item ids and returns, for every chosen position,
the propensity: the probability that the policy would have put that item at that position given the
items already placed above it. Propensities are logged with impressions and used by off-policy
evaluation (experiments.ope). State is plain dicts/arrays so it can be pickled into the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Slate:
    items: tuple[int, ...]
    propensities: tuple[float, ...]


def _prior_mean(
    pulls: dict[int, float], clicks: dict[int, float], fallback: float, min_pulls: float
) -> float:
    """Empirical-Bayes prior mean: the pooled CTR of everything shown so far once there are `min_pulls`
    pulls, else `fallback`. Shrinking towards the pooled CTR (not a fixed guess) keeps a too-optimistic
    prior from ranking rarely shown items first, which would turn "greedy" into "least shown first"."""
    total = sum(pulls.values())
    return sum(clicks.values()) / total if total >= min_pulls else fallback


@dataclass
class EpsilonGreedy:
    """With probability epsilon a position is filled uniformly at random from the remaining candidates,
    else with the remaining candidate of highest estimated CTR (clicks + m p0) / (pulls + m), where
    m = prior_pulls and p0 the prior mean: prior_clicks / prior_pulls until `min_prior_pulls` pulls were
    logged, then (with `empirical_prior`) the pooled CTR of all items. Ties keep the candidates' order
    (the base engine's ranking). Propensity: (1 - eps) 1[item is greedy] + eps / remaining."""

    epsilon: float = 0.1
    prior_clicks: float = 1.0
    prior_pulls: float = 20.0
    empirical_prior: bool = True
    min_prior_pulls: float = 200.0
    pulls: dict[int, float] = field(default_factory=dict)
    clicks: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.epsilon <= 1:
            raise ValueError("epsilon must be between 0 and 1")
        if self.prior_pulls <= 0 or self.prior_clicks < 0:
            raise ValueError("prior_pulls must be positive and prior_clicks non-negative")

    def prior_mean(self) -> float:
        fallback = self.prior_clicks / self.prior_pulls
        if not self.empirical_prior:
            return fallback
        return _prior_mean(self.pulls, self.clicks, fallback, self.min_prior_pulls)

    def ctr(self, item: int, prior_mean: float | None = None) -> float:
        p0 = self.prior_mean() if prior_mean is None else prior_mean
        m = self.prior_pulls
        return (self.clicks.get(item, 0) + m * p0) / (self.pulls.get(item, 0) + m)

    def select(self, candidates: Sequence[int], k: int, rng: np.random.Generator) -> Slate:
        remaining = list(dict.fromkeys(candidates))
        items, props = [], []
        p0 = self.prior_mean()
        for _ in range(min(k, len(remaining))):
            values = np.array([self.ctr(i, p0) for i in remaining])
            greedy = int(np.argmax(values))  # ties: first (candidate order is the engine's ranking)
            pick = int(rng.integers(len(remaining))) if rng.random() < self.epsilon else greedy
            prop = self.epsilon / len(remaining) + (1 - self.epsilon) * (pick == greedy)
            items.append(remaining.pop(pick))
            props.append(float(prop))
        return Slate(tuple(items), tuple(props))

    def update(self, item: int, reward: float) -> None:
        self.pulls[item] = self.pulls.get(item, 0) + 1
        self.clicks[item] = self.clicks.get(item, 0) + reward


@dataclass
class ThompsonSampling:
    """Beta-Bernoulli Thompson sampling: each position takes the remaining item with the highest draw
    from Beta(alpha0 + clicks, beta0 + pulls - clicks). Propensities are estimated by Monte Carlo
    (`propensity_draws` re-draws per position), so they are approximate (standard error ~ 0.5/sqrt(n))."""

    alpha0: float = 1.0
    beta0: float = 20.0
    propensity_draws: int = 200
    empirical_prior: bool = True  # once min_prior_pulls were logged: Beta(m p, m (1 - p)), p pooled CTR
    min_prior_pulls: float = 200.0
    pulls: dict[int, float] = field(default_factory=dict)
    clicks: dict[int, float] = field(default_factory=dict)

    def _params(self, items: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        c = np.array([self.clicks.get(i, 0) for i in items], dtype=float)
        n = np.array([self.pulls.get(i, 0) for i in items], dtype=float)
        a0, b0 = self.alpha0, self.beta0
        if self.empirical_prior:
            m = a0 + b0
            p = _prior_mean(self.pulls, self.clicks, a0 / m, self.min_prior_pulls)
            a0, b0 = max(m * p, 1e-3), max(m * (1 - p), 1e-3)
        return a0 + c, b0 + np.maximum(n - c, 0)

    def select(self, candidates: Sequence[int], k: int, rng: np.random.Generator) -> Slate:
        remaining = list(dict.fromkeys(candidates))
        items, props = [], []
        for _ in range(min(k, len(remaining))):
            a, b = self._params(remaining)
            pick = int(np.argmax(rng.beta(a, b)))
            sims = rng.beta(a, b, size=(self.propensity_draws, len(remaining)))
            prop = float(np.mean(np.argmax(sims, axis=1) == pick))
            items.append(remaining.pop(pick))
            props.append(max(prop, 1.0 / self.propensity_draws))
        return Slate(tuple(items), tuple(props))

    def update(self, item: int, reward: float) -> None:
        self.pulls[item] = self.pulls.get(item, 0) + 1
        self.clicks[item] = self.clicks.get(item, 0) + reward


@dataclass
class LinUCB:
    """Disjoint LinUCB (Li et al. 2010): per item a ridge regression of reward on the context vector x
    (d features); score = theta_a . x + alpha sqrt(x^T A_a^-1 x). Deterministic given its state, so each
    propensity is 1 (off-policy evaluation of LinUCB logs therefore needs an exploring logging policy)."""

    dim: int
    alpha: float = 0.5
    ridge: float = 1.0
    A: dict[int, np.ndarray] = field(default_factory=dict)
    b: dict[int, np.ndarray] = field(default_factory=dict)

    def arm_state(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        if item not in self.A:
            self.A[item] = self.ridge * np.eye(self.dim)
            self.b[item] = np.zeros(self.dim)
        return self.A[item], self.b[item]

    def scores(self, candidates: Sequence[int], context: np.ndarray) -> np.ndarray:
        x = np.asarray(context, dtype=float)
        if x.shape != (self.dim,):
            raise ValueError(f"context must have {self.dim} features")
        out = np.empty(len(candidates))
        for j, item in enumerate(candidates):
            A, b = self.arm_state(item)
            A_inv = np.linalg.inv(A)
            out[j] = A_inv @ b @ x + self.alpha * np.sqrt(x @ A_inv @ x)
        return out

    def select(
        self, candidates: Sequence[int], k: int, rng: np.random.Generator, context: np.ndarray
    ) -> Slate:
        remaining = list(dict.fromkeys(candidates))
        s = self.scores(remaining, context)
        order = np.argsort(-s, kind="stable")[:k]
        return Slate(tuple(remaining[i] for i in order), tuple(1.0 for _ in order))

    def update(self, item: int, reward: float, context: np.ndarray) -> None:
        A, b = self.arm_state(item)
        x = np.asarray(context, dtype=float)
        self.A[item] = A + np.outer(x, x)
        self.b[item] = b + reward * x

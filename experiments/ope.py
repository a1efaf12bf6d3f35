"""Off-policy evaluation of a candidate policy from logged impressions. Pure Python.

Logged data: for each impression i, the shown item a_i, the reward r_i (click 1/0), the logging
policy's propensity p_i = mu(a_i | x_i), and the candidate policy's probability pi_i = pi(a_i | x_i).
All three estimators assume the logging policy gave every item the candidate could choose a non-zero
probability (common support) and that rewards do not depend on other items in the slate (position-wise
independence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OpeEstimate:
    value: float  # estimated reward per impression (e.g. CTR) of the candidate policy
    se: float  # standard error (delta method / sample variance of the per-impression terms)
    n: int
    effective_sample_size: float  # (sum w)^2 / sum w^2: how many logged impressions really inform it

    @property
    def ci95(self) -> tuple[float, float]:
        return self.value - 1.96 * self.se, self.value + 1.96 * self.se


def _arrays(rewards: Sequence[float], logging_p: Sequence[float], target_p: Sequence[float]):
    r = np.asarray(rewards, dtype=float)
    mu = np.asarray(logging_p, dtype=float)
    pi = np.asarray(target_p, dtype=float)
    if not (r.shape == mu.shape == pi.shape) or r.ndim != 1 or len(r) == 0:
        raise ValueError("rewards, logging and target propensities must be equal-length, non-empty")
    if np.any(mu <= 0) or np.any(mu > 1) or np.any(pi < 0) or np.any(pi > 1):
        raise ValueError("propensities must lie in (0, 1] (logging) and [0, 1] (target)")
    return r, mu, pi


def _ess(w: np.ndarray) -> float:
    s2 = float(np.sum(w**2))
    return float(np.sum(w) ** 2 / s2) if s2 > 0 else 0.0


def ips(rewards: Sequence[float], logging_p: Sequence[float], target_p: Sequence[float]) -> OpeEstimate:
    """Inverse propensity scoring: V = mean(w_i r_i), w_i = pi_i / p_i. Unbiased, high variance."""
    r, mu, pi = _arrays(rewards, logging_p, target_p)
    w = pi / mu
    terms = w * r
    return OpeEstimate(
        float(terms.mean()),
        float(terms.std(ddof=1) / math.sqrt(len(r))) if len(r) > 1 else math.nan,
        len(r),
        _ess(w),
    )


def snips(rewards: Sequence[float], logging_p: Sequence[float], target_p: Sequence[float]) -> OpeEstimate:
    """Self-normalised IPS: V = sum(w_i r_i) / sum(w_i). Slightly biased, much lower variance.
    SE by the delta method: sqrt(sum(w_i^2 (r_i - V)^2)) / sum(w_i)."""
    r, mu, pi = _arrays(rewards, logging_p, target_p)
    w = pi / mu
    if w.sum() == 0:
        return OpeEstimate(math.nan, math.nan, len(r), 0.0)
    v = float(np.sum(w * r) / np.sum(w))
    se = float(math.sqrt(np.sum(w**2 * (r - v) ** 2)) / np.sum(w))
    return OpeEstimate(v, se, len(r), _ess(w))


def doubly_robust(
    rewards: Sequence[float],
    logging_p: Sequence[float],
    target_p: Sequence[float],
    q_logged: Sequence[float],
    q_target: Sequence[float],
) -> OpeEstimate:
    """Doubly robust: V = mean(q_target_i + w_i (r_i - q_logged_i)), where q_logged_i = q(x_i, a_i) is a
    reward model's prediction for the logged action and q_target_i = sum_a pi(a|x_i) q(x_i, a) its
    prediction for the candidate policy. Unbiased if either the propensities or the reward model are
    right."""
    r, mu, pi = _arrays(rewards, logging_p, target_p)
    ql, qt = np.asarray(q_logged, dtype=float), np.asarray(q_target, dtype=float)
    if ql.shape != r.shape or qt.shape != r.shape:
        raise ValueError("reward-model predictions must align with the logged impressions")
    w = pi / mu
    terms = qt + w * (r - ql)
    return OpeEstimate(
        float(terms.mean()),
        float(terms.std(ddof=1) / math.sqrt(len(r))) if len(r) > 1 else math.nan,
        len(r),
        _ess(w),
    )

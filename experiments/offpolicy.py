"""Off-policy evaluation from logged impressions (reads; the estimators are pure, in experiments.ope).

What can be evaluated: epsilon-greedy policies with another exploration rate (including 0, the pure
greedy policy) from impressions logged by an epsilon-greedy bandit widget. Its engine name carries the
logging rate ("bandit:epsilon_greedy@0.2"), so each logged row's propensity p tells whether the item was
the greedy choice (p >= 1 - eps) and how many candidates remained (m = eps / (p - (1 - eps) g)); the
candidate's probability of the same choice is then eps'/m + (1 - eps') g. Deterministic logging
policies (propensity 1 everywhere) give no support for any other policy; that case is reported, not
estimated.

Reward: a click on that impression (item-level CTR). The doubly robust estimator's reward model is the
logged CTR per (position, greedy or not). Assumptions (see experiments.ope): common support, and a click
in a slot not depending on the other slots - the simulator's cascade model violates the latter a little,
which is why the benchmark compares the estimates with the CTR the candidate actually achieves.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db.models import Q, Subquery
from django.utils import timezone

from catalog.models import Event
from recommender.models import Impression

from . import ope

EG_PREFIX = "bandit:epsilon_greedy@"


@dataclass(frozen=True)
class OpeReport:
    candidate: str  # e.g. "epsilon-greedy, epsilon 0.1"
    epsilon: float
    logged_epsilon: float
    current_ctr: float  # logged item-level CTR
    n: int
    ips: ope.OpeEstimate | None
    snips: ope.OpeEstimate | None
    dr: ope.OpeEstimate | None
    note: str = ""

    @property
    def summary(self) -> str:
        if self.snips is None:
            return self.note
        return (
            f"expected CTR {self.snips.value * 100:.2f}% ± {1.96 * self.snips.se * 100:.2f}% "
            f"vs current {self.current_ctr * 100:.2f}% ({self.candidate}, SNIPS, {self.n:,} logged impressions)"
        )


def ope_epsilon_greedy(
    *, rows: list[tuple[int, float, float]], logged_epsilon: float, epsilon: float
) -> tuple[ope.OpeEstimate, ope.OpeEstimate, ope.OpeEstimate]:
    """IPS, SNIPS and DR of epsilon-greedy with `epsilon` from rows (position, propensity, reward) logged
    by epsilon-greedy with `logged_epsilon` (0 < logged_epsilon < 0.5)."""
    if not 0 < logged_epsilon < 0.5:
        raise ValueError("the logging policy must explore with 0 < epsilon < 0.5")
    if not 0 <= epsilon <= 1:
        raise ValueError("epsilon must be between 0 and 1")
    pos = np.array([r[0] for r in rows], dtype=int)
    p = np.clip(np.array([r[1] for r in rows], dtype=float), 1e-9, 1.0)
    r = np.array([r[2] for r in rows], dtype=float)
    e0 = logged_epsilon
    greedy = p >= (1 - e0) - 1e-9
    denom = np.where(greedy, p - (1 - e0), p)
    m = np.where(denom > 1e-12, e0 / np.maximum(denom, 1e-12), 1.0)
    m = np.maximum(np.round(m), 1.0)
    pg_target = (1 - epsilon) + epsilon / m  # candidate's probability of the greedy item here
    target = np.where(greedy, pg_target, epsilon / m)
    # reward model: logged CTR per (position, greedy flag), smoothed toward the position's CTR
    q = {}
    for key_pos in np.unique(pos):
        at = pos == key_pos
        base = r[at].mean()
        for g in (True, False):
            sel = at & (greedy == g)
            q[(int(key_pos), g)] = (r[sel].sum() + 5 * base) / (sel.sum() + 5)
    q_logged = np.array([q[(int(a), bool(g))] for a, g in zip(pos, greedy, strict=True)])
    q_g = np.array([q[(int(a), True)] for a in pos])
    q_ng = np.array([q[(int(a), False)] for a in pos])
    q_target = pg_target * q_g + (1 - pg_target) * q_ng
    return (
        ope.ips(r, p, target),
        ope.snips(r, p, target),
        ope.doubly_robust(r, p, target, q_logged, q_target),
    )


def logged_bandit_rows(
    *,
    widget_ids: list[int] | None = None,
    experiment: str | None = None,
    variant: str | None = None,
    days: int = 30,
) -> dict[float, list[tuple[int, float, float]]]:
    """Logged epsilon-greedy impressions as {logging epsilon: [(position, propensity, clicked)]}:
    two queries (impressions, clicks on them)."""
    q = Q(engine__startswith=EG_PREFIX, propensity__isnull=False)
    if widget_ids is not None:
        q &= Q(widget_id__in=widget_ids)
    if experiment is not None:
        q &= Q(experiment=experiment)
    if variant is not None:
        q &= Q(variant=variant)
    if days:
        q &= Q(created_at__gte=timezone.now() - timedelta(days=days))
    imps = Impression.objects.filter(q)
    clicked = set(
        Event.objects.filter(type="click", impression_id__in=Subquery(imps.values("id"))).values_list(
            "impression_id", flat=True
        )
    )
    out: dict[float, list[tuple[int, float, float]]] = defaultdict(list)
    for iid, engine, position, propensity in imps.values_list("id", "engine", "position", "propensity"):
        try:
            eps = float(engine[len(EG_PREFIX) :])
        except ValueError:
            continue
        out[eps].append((position, float(propensity), 1.0 if iid in clicked else 0.0))
    return dict(out)


def ope_reports(
    *,
    widget_ids: list[int] | None = None,
    experiment: str | None = None,
    variant: str | None = None,
    candidates: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3),
    days: int = 30,
) -> list[OpeReport]:
    """One report per candidate exploration rate, from the largest body of logs of one logging rate."""
    logged = logged_bandit_rows(widget_ids=widget_ids, experiment=experiment, variant=variant, days=days)
    if not logged:
        return [
            OpeReport(
                f"epsilon-greedy, epsilon {e:g}",
                e,
                math.nan,
                math.nan,
                0,
                None,
                None,
                None,
                "Not estimable: no impressions logged by an exploring (epsilon-greedy) policy on these "
                "widgets. Deterministic policies log propensity 1, which supports no other policy; run "
                "the widget with strategy epsilon_greedy for a while to collect usable logs.",
            )
            for e in candidates
        ]
    e0, rows = max(logged.items(), key=lambda kv: len(kv[1]))
    current = float(np.mean([r[2] for r in rows]))
    out = []
    for e in candidates:
        if not 0 < e0 < 0.5:
            out.append(
                OpeReport(
                    f"epsilon-greedy, epsilon {e:g}",
                    e,
                    e0,
                    current,
                    len(rows),
                    None,
                    None,
                    None,
                    f"Logged epsilon {e0:g} is outside (0, 0.5): propensities cannot be decoded.",
                )
            )
            continue
        a, b, c = ope_epsilon_greedy(rows=rows, logged_epsilon=e0, epsilon=e)
        out.append(OpeReport(f"epsilon-greedy, epsilon {e:g}", e, e0, current, len(rows), a, b, c))
    return out

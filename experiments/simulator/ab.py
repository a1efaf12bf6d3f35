"""Per-arm observations of a simulated A/B experiment and the study's tables (pure; no Django).

Units (the same definitions as `metrics.py`, so the traditional arm compares with the calibration):

    conversion_rate   one 0/1 per session (bought something)
    aov               one order total per purchasing session (USD)
    ctr               one 0/1 per recommendation list shown (clicked a slot)
    item_ctr          clicks / item slots shown (reported, not tested per unit)
    session_duration  one duration per session (seconds)
    add_to_cart_rate  one 0/1 per session
    revenue_per_session  one order total per session (0 without a purchase)

`arm_summary` gives mean and SD over the pooled units of all runs (the study's "mean +- SD") plus the SD
of the per-run values; `arms_test` runs Welch's t-test on the pooled units (for 0/1 units that is the
unpooled two-proportion test with a t reference, practically identical at these sizes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from experiments import stats

from .shoppers import SessionLog

TESTED = ("conversion_rate", "aov", "ctr", "session_duration", "add_to_cart_rate", "revenue_per_session")
REPORTED = TESTED + ("item_ctr",)


@dataclass
class ArmObservations:
    conversion_rate: list[float] = field(default_factory=list)
    aov: list[float] = field(default_factory=list)
    ctr: list[float] = field(default_factory=list)
    session_duration: list[float] = field(default_factory=list)
    add_to_cart_rate: list[float] = field(default_factory=list)
    revenue_per_session: list[float] = field(default_factory=list)
    slots: int = 0
    clicks: int = 0

    def add(self, log: SessionLog) -> None:
        bought = 1.0 if log.order else 0.0
        self.conversion_rate.append(bought)
        if log.order:
            self.aov.append(log.order_total)
        self.revenue_per_session.append(log.order_total if log.order else 0.0)
        self.session_duration.append(log.duration)
        self.add_to_cart_rate.append(1.0 if any(e.type == "add_to_cart" for e in log.events) else 0.0)
        for imp in log.impressions:
            self.ctr.append(1.0 if imp.clicked >= 0 else 0.0)
            self.slots += len(imp.items)
            self.clicks += imp.clicked >= 0

    def extend(self, other: ArmObservations) -> None:
        for name in TESTED:
            getattr(self, name).extend(getattr(other, name))
        self.slots += other.slots
        self.clicks += other.clicks

    @property
    def sessions(self) -> int:
        return len(self.conversion_rate)

    def values(self) -> dict[str, float]:
        """This arm's metric values (means of the units; item_ctr = clicks / slots)."""
        out = {m: float(np.mean(getattr(self, m))) if getattr(self, m) else math.nan for m in TESTED}
        out["item_ctr"] = self.clicks / self.slots if self.slots else math.nan
        out["sessions"] = float(self.sessions)
        return out


def arm_summary(pooled: ArmObservations, per_run: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """{metric: {"mean", "sd", "n", "sd_runs"}}: mean/SD over pooled units, SD of per-run values."""
    out: dict[str, dict[str, float]] = {}
    for m in REPORTED:
        runs = [r[m] for r in per_run if not math.isnan(r.get(m, math.nan))]
        sd_runs = float(np.std(runs, ddof=1)) if len(runs) > 1 else math.nan
        if m == "item_ctr":
            v = pooled.clicks / pooled.slots if pooled.slots else math.nan
            out[m] = {
                "mean": v,
                "sd": math.sqrt(v * (1 - v)) if not math.isnan(v) else math.nan,
                "n": pooled.slots,
                "sd_runs": sd_runs,
            }
            continue
        x = np.asarray(getattr(pooled, m), dtype=float)
        out[m] = {
            "mean": float(x.mean()) if x.size else math.nan,
            "sd": float(x.std(ddof=1)) if x.size > 1 else math.nan,
            "n": int(x.size),
            "sd_runs": sd_runs,
        }
    return out


def arms_test(control: ArmObservations, treatment: ArmObservations) -> dict[str, dict[str, float]]:
    """{metric: {"t", "df", "p", "effect", "relative"}} Welch's t-test of treatment vs control units."""
    out = {}
    for m in TESTED:
        a, b = getattr(control, m), getattr(treatment, m)
        if len(a) < 2 or len(b) < 2:
            out[m] = {"t": math.nan, "df": math.nan, "p": math.nan, "effect": math.nan, "relative": math.nan}
            continue
        r = stats.welch_ttest(a, b)
        out[m] = {
            "t": float(r.statistic),
            "df": float(r.df),
            "p": float(r.p_value),
            "effect": float(r.effect),
            "relative": float(r.relative_effect),
        }
    return out


def fmt_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)

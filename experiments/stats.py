"""The statistics engine of A/B experiments. Pure Python (numpy/scipy), no Django.

Every function states its formula and assumptions and returns a frozen dataclass. Variant "a" is the
control and "b" the treatment throughout; effects are b - a (absolute) and (b - a) / a (relative).
Reference values in tests come from scipy.stats and statsmodels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class TestResult:
    """statistic: the test statistic (z, t, U, W or chi2); p_value: two-sided unless stated.

    effect: b - a on the metric's scale; ci_low/ci_high: (1 - alpha) interval for `effect` (nan when the
    test defines none); relative_effect: effect / a-level (nan when a-level is 0); df: degrees of freedom.
    """

    statistic: float
    p_value: float
    effect: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    relative_effect: float = math.nan
    df: float = math.nan


def _safe_div(a: float, b: float) -> float:
    return a / b if b else math.nan


def two_proportion_ztest(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, alpha: float = 0.05
) -> TestResult:
    """Two-sided z-test for p_b - p_a with the pooled standard error under H0.

    z = (p_b - p_a) / sqrt(p(1-p)(1/n_a + 1/n_b)), p = pooled rate. The confidence interval uses the
    unpooled (Wald) standard error sqrt(p_a(1-p_a)/n_a + p_b(1-p_b)/n_b). Assumes independent
    Bernoulli trials and large samples (n p >= 5 in each arm).
    """
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both arms need at least one trial")
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b):
        raise ValueError("successes must lie between 0 and the number of trials")
    pa, pb = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = pb - pa
    z = diff / se0 if se0 > 0 else 0.0
    p = 2 * sps.norm.sf(abs(z))
    se1 = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    q = sps.norm.ppf(1 - alpha / 2)
    return TestResult(z, float(p), diff, diff - q * se1, diff + q * se1, _safe_div(diff, pa))


def welch_ttest_from_stats(
    mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int, *, alpha: float = 0.05
) -> TestResult:
    """Welch's unequal-variance t-test from sufficient statistics (sd with ddof=1).

    t = (m_b - m_a) / sqrt(s_a^2/n_a + s_b^2/n_b); df by Welch-Satterthwaite. Assumes independent
    samples and approximately normal sample means (CLT).
    """
    if n_a < 2 or n_b < 2:
        raise ValueError("Welch's t-test needs at least two observations per arm")
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    se = math.sqrt(va + vb)
    diff = mean_b - mean_a
    if se == 0:
        return TestResult(0.0 if diff == 0 else math.inf, 1.0 if diff == 0 else 0.0, diff, diff, diff)
    t = diff / se
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    p = 2 * sps.t.sf(abs(t), df)
    q = sps.t.ppf(1 - alpha / 2, df)
    return TestResult(t, float(p), diff, diff - q * se, diff + q * se, _safe_div(diff, mean_a), df)


def welch_ttest(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05) -> TestResult:
    """Welch's t-test on raw observations (see `welch_ttest_from_stats`)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return welch_ttest_from_stats(
        xa.mean(), xa.std(ddof=1), len(xa), xb.mean(), xb.std(ddof=1), len(xb), alpha=alpha
    )


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sided Mann-Whitney U test (normal approximation with tie and continuity correction for
    large samples, as scipy chooses). statistic = U of sample b; effect = Hodges-Lehmann-free
    common-language effect size P(B > A) + 0.5 P(B = A) - 0.5 (0 means no shift)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    res = sps.mannwhitneyu(xb, xa, alternative="two-sided")
    cles = res.statistic / (len(xa) * len(xb))
    return TestResult(float(res.statistic), float(res.pvalue), float(cles - 0.5))


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sided Wilcoxon signed-rank test for paired runs (b_i - a_i); zero differences dropped
    (Wilcoxon's method). effect = median paired difference."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.shape != xb.shape:
        raise ValueError("paired samples must have the same length")
    d = xb - xa
    if not np.any(d != 0):
        return TestResult(0.0, 1.0, 0.0)
    res = sps.wilcoxon(xb, xa, zero_method="wilcox", alternative="two-sided")
    return TestResult(float(res.statistic), float(res.pvalue), float(np.median(d)))


def bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    statistic: str = "mean_diff",
    n_resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> TestResult:
    """Percentile bootstrap interval for mean(b) - mean(a) ("mean_diff") or mean(b)/mean(a) - 1
    ("relative"), resampling each arm independently. p_value: two-sided share of resamples on the other
    side of 0 (an approximation; use the parametric tests for decisions)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(xa), size=(n_resamples, len(xa)))
    ib = rng.integers(0, len(xb), size=(n_resamples, len(xb)))
    ma, mb = xa[ia].mean(axis=1), xb[ib].mean(axis=1)
    if statistic == "mean_diff":
        boots, point = mb - ma, xb.mean() - xa.mean()
    elif statistic == "relative":
        with np.errstate(divide="ignore", invalid="ignore"):
            boots = mb / ma - 1
        point = _safe_div(xb.mean(), xa.mean()) - 1
    else:
        raise ValueError("statistic must be 'mean_diff' or 'relative'")
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min(np.mean(boots <= 0), np.mean(boots >= 0)))
    return TestResult(float(point), float(p), float(point), float(lo), float(hi))


def prob_beat_control_binary(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    draws: int = 200_000,
    seed: int = 0,
) -> float:
    """P(p_b > p_a | data) under independent Beta(prior) priors (Beta-Binomial model), by Monte Carlo
    over the two Beta posteriors. Standard error of the estimate <= 0.5/sqrt(draws)."""
    rng = np.random.default_rng(seed)
    al, be = prior
    pa = rng.beta(al + successes_a, be + n_a - successes_a, draws)
    pb = rng.beta(al + successes_b, be + n_b - successes_b, draws)
    return float(np.mean(pb > pa))


def prob_beat_control_mean(
    mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int
) -> float:
    """P(mu_b > mu_a | data) with flat priors and the normal approximation of each posterior mean:
    Phi((m_b - m_a) / sqrt(s_a^2/n_a + s_b^2/n_b))."""
    se = math.sqrt(sd_a**2 / n_a + sd_b**2 / n_b)
    if se == 0:
        return 0.5 if mean_b == mean_a else float(mean_b > mean_a)
    return float(sps.norm.cdf((mean_b - mean_a) / se))


@dataclass(frozen=True)
class CupedResult:
    adjusted: np.ndarray  # y - theta (x - mean(x)), same mean as y, smaller variance when corr(x, y) != 0
    theta: float
    variance_reduction: float  # 1 - var(adjusted)/var(y) = corr(x, y)^2


def cuped_adjust(y: Sequence[float], x_pre: Sequence[float]) -> CupedResult:
    """CUPED (Deng et al. 2013): y_cv = y - theta (x - mean x), theta = cov(x, y) / var(x), with x a
    pre-experiment covariate unaffected by the treatment. Pool both arms to estimate theta, then compare
    the arms' adjusted values with any mean test."""
    yy, xx = np.asarray(y, dtype=float), np.asarray(x_pre, dtype=float)
    if yy.shape != xx.shape:
        raise ValueError("y and x_pre must align")
    vx = xx.var(ddof=1)
    theta = float(np.cov(xx, yy, ddof=1)[0, 1] / vx) if vx > 0 else 0.0
    adj = yy - theta * (xx - xx.mean())
    vy = yy.var(ddof=1)
    return CupedResult(adj, theta, float(1 - adj.var(ddof=1) / vy) if vy > 0 else 0.0)


@dataclass(frozen=True)
class SrmResult:
    chi2: float
    p_value: float
    mismatch: bool  # p_value < threshold: the traffic split is broken; do not trust the results


def srm_check(observed: Sequence[int], weights: Sequence[float], *, threshold: float = 0.001) -> SrmResult:
    """Sample-ratio-mismatch check: Pearson chi-square of observed counts per variant against the
    configured weights (df = k - 1). The conventional alarm threshold is p < 0.001."""
    obs = np.asarray(observed, dtype=float)
    w = np.asarray(weights, dtype=float)
    if obs.shape != w.shape or len(obs) < 2:
        raise ValueError("need one observed count and one weight per variant (at least two)")
    if obs.sum() == 0:
        return SrmResult(0.0, 1.0, False)
    expected = obs.sum() * w / w.sum()
    chi2, p = sps.chisquare(obs, expected)
    return SrmResult(float(chi2), float(p), bool(p < threshold))


@dataclass(frozen=True)
class SequentialResult:
    """mSPRT for a difference in means: the always-valid p-value may be checked after every batch."""

    likelihood_ratio: float
    p_value: float  # always-valid (running minimum of 1/LR, capped at 1)
    reject: bool


def msprt_normal(
    diffs_mean: Sequence[float], variances: Sequence[float], *, tau2: float, alpha: float = 0.05
) -> SequentialResult:
    """Mixture sequential probability ratio test (Johari et al. 2017) for H0: delta = 0.

    At each look n we observe an estimate d_n of the effect with variance V_n (e.g. s_a^2/n_a + s_b^2/n_b).
    With a N(0, tau2) mixing prior on delta the mixture likelihood ratio is
        LR_n = sqrt(V_n / (V_n + tau2)) * exp(tau2 d_n^2 / (2 V_n (V_n + tau2))).
    The always-valid p-value is p_n = min(1, min_{m<=n} 1/LR_m); rejecting when p_n < alpha keeps the
    type-I error <= alpha however often one peeks.
    """
    d = np.asarray(diffs_mean, dtype=float)
    v = np.asarray(variances, dtype=float)
    if d.shape != v.shape or len(d) == 0:
        raise ValueError("one variance per look is needed")
    if np.any(v <= 0) or tau2 <= 0:
        raise ValueError("variances and tau2 must be positive")
    log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * d**2 / (2 * v * (v + tau2))
    p = float(min(1.0, np.exp(-np.max(log_lr))))
    return SequentialResult(float(np.exp(min(log_lr[-1], 700))), p, p < alpha)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (controls the family-wise error rate)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, (m - rank) * p[idx])
        adj[idx] = min(1.0, running)
    return adj


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate, independent tests)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p)[::-1]
    adj = np.empty(m)
    running = 1.0
    for i, idx in enumerate(order):
        rank = m - i
        running = min(running, p[idx] * m / rank)
        adj[idx] = running
    return adj


def sample_size_proportions(
    baseline: float, mde_relative: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> int:
    """Shoppers needed in the CONTROL arm to detect p_b = baseline (1 + mde_relative) with a two-sided
    two-proportion test (treatment arm: ratio x that). Uses Cohen's arcsine effect size
    h = 2 asin(sqrt p_b) - 2 asin(sqrt p_a), n_a = ((z_{1-alpha/2} + z_power) / h)^2 (1 + 1/ratio),
    which matches statsmodels' NormalIndPower."""
    if not 0 < baseline < 1:
        raise ValueError("the baseline rate must be between 0 and 1 (exclusive)")
    if mde_relative == 0:
        raise ValueError("the minimum detectable effect must not be zero")
    pb = baseline * (1 + mde_relative)
    if not 0 < pb < 1:
        raise ValueError("baseline x (1 + effect) must stay between 0 and 1")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be between 0 and 1")
    h = abs(2 * math.asin(math.sqrt(pb)) - 2 * math.asin(math.sqrt(baseline)))
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return math.ceil((z / h) ** 2 * (1 + 1 / ratio))


def power_proportions(baseline: float, mde_relative: float, n_per_arm: int, *, alpha: float = 0.05) -> float:
    """Power of the two-sided two-proportion test with n_per_arm shoppers in each arm (arcsine h)."""
    pb = baseline * (1 + mde_relative)
    h = abs(2 * math.asin(math.sqrt(pb)) - 2 * math.asin(math.sqrt(baseline)))
    z = sps.norm.ppf(1 - alpha / 2)
    shift = h * math.sqrt(n_per_arm / 2)
    return float(sps.norm.sf(z - shift) + sps.norm.cdf(-z - shift))


def sample_size_means(sd: float, mde_absolute: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Per-arm n for a two-sided two-sample test of means with common sd:
    n = 2 ((z_{1-alpha/2} + z_power) sd / delta)^2."""
    if sd <= 0 or mde_absolute == 0:
        raise ValueError("sd must be positive and the effect non-zero")
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return math.ceil(2 * (z * sd / mde_absolute) ** 2)

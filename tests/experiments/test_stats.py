"""experiments.stats against scipy/statsmodels reference values and simulated error rates."""

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

from experiments import stats


def test_two_proportion_ztest_matches_statsmodels():
    # given
    sa, na, sb, nb = 120, 1000, 150, 1000
    # when
    res = stats.two_proportion_ztest(sa, na, sb, nb)
    z_ref, p_ref = proportions_ztest([sb, sa], [nb, na])
    # then
    assert res.statistic == pytest.approx(z_ref, rel=1e-9)
    assert res.p_value == pytest.approx(p_ref, rel=1e-9)
    assert res.effect == pytest.approx(0.03)
    assert res.relative_effect == pytest.approx(0.25)
    se = math.sqrt(0.12 * 0.88 / 1000 + 0.15 * 0.85 / 1000)
    assert res.ci_low == pytest.approx(0.03 - 1.959964 * se, rel=1e-5)


def test_two_proportion_ztest_rejects_bad_counts():
    with pytest.raises(ValueError):
        stats.two_proportion_ztest(5, 0, 1, 10)
    with pytest.raises(ValueError):
        stats.two_proportion_ztest(11, 10, 1, 10)


def test_welch_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 80), rng.normal(11, 5, 120)
    res = stats.welch_ttest(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.df == pytest.approx(ref.df, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_mann_whitney_textbook_example():
    # Two small samples with U computed by hand: b beats a in 20 of 25 pairs, ties none.
    a = [1, 2, 3, 4, 9]
    b = [5, 6, 7, 8, 10]
    res = stats.mann_whitney_u(a, b)
    wins = sum((y > x) for x in a for y in b)
    assert res.statistic == wins == 21
    assert res.p_value == pytest.approx(sps.mannwhitneyu(b, a).pvalue)
    assert res.effect == pytest.approx(21 / 25 - 0.5)


def test_wilcoxon_matches_scipy_and_handles_no_difference():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, 30)
    b = a + rng.normal(0.5, 1, 30)
    res = stats.wilcoxon_signed_rank(a, b)
    ref = sps.wilcoxon(b, a)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue)
    assert stats.wilcoxon_signed_rank([1, 2], [1, 2]).p_value == 1.0


def test_bootstrap_ci_covers_true_difference_and_is_reproducible():
    rng = np.random.default_rng(3)
    a, b = rng.normal(5, 1, 400), rng.normal(5.5, 1, 400)
    r1 = stats.bootstrap_ci(a, b, seed=7)
    r2 = stats.bootstrap_ci(a, b, seed=7)
    assert r1 == r2
    assert r1.ci_low < 0.5 < r1.ci_high
    # The bootstrap interval agrees with Welch's within a few percent at this size.
    w = stats.welch_ttest(a, b)
    assert r1.ci_low == pytest.approx(w.ci_low, abs=0.03)
    assert r1.ci_high == pytest.approx(w.ci_high, abs=0.03)


def test_prob_beat_control_binary_against_numerical_integration():
    sa, na, sb, nb = 40, 500, 55, 500
    # P(pb > pa) = integral f_b(x) F_a(x) dx, integrated numerically.
    x = np.linspace(0, 1, 200_001)
    fa = sps.beta(1 + sa, 1 + na - sa)
    fb = sps.beta(1 + sb, 1 + nb - sb)
    exact = np.trapezoid(fb.pdf(x) * fa.cdf(x), x)
    est = stats.prob_beat_control_binary(sa, na, sb, nb, draws=400_000, seed=1)
    assert est == pytest.approx(exact, abs=0.005)


def test_prob_beat_control_mean_is_normal_cdf():
    p = stats.prob_beat_control_mean(10, 2, 100, 10.4, 2, 100)
    assert p == pytest.approx(sps.norm.cdf(0.4 / math.sqrt(0.08)))


def test_cuped_reduces_variance_by_squared_correlation():
    rng = np.random.default_rng(4)
    x = rng.normal(100, 10, 5000)
    y = 0.8 * x + rng.normal(0, 6, 5000)
    res = stats.cuped_adjust(y, x)
    r = np.corrcoef(x, y)[0, 1]
    assert res.variance_reduction == pytest.approx(r**2, rel=1e-9)
    assert res.adjusted.mean() == pytest.approx(y.mean())
    assert res.theta == pytest.approx(0.8, abs=0.02)


def test_srm_detects_planted_imbalance_and_passes_a_fair_split():
    # given a 50/50 split where a bug lost 3% of the treatment arm's exposures
    rng = np.random.default_rng(9)
    arm = rng.random(100_000) < 0.5
    lost = arm & (rng.random(100_000) < 0.03)
    observed = [int((~arm).sum()), int((arm & ~lost).sum())]
    # then the check flags it
    assert stats.srm_check(observed, [0.5, 0.5]).mismatch is True
    fair = stats.srm_check([5000, 5040], [0.5, 0.5])
    assert fair.mismatch is False
    chi2, p = sps.chisquare([5000, 5040], [5020, 5020])
    assert fair.chi2 == pytest.approx(chi2)
    assert fair.p_value == pytest.approx(p)


def test_multiple_testing_corrections_match_statsmodels():
    p = [0.01, 0.04, 0.03, 0.2, 0.001]
    assert stats.holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    assert stats.benjamini_hochberg(p) == pytest.approx(multipletests(p, method="fdr_bh")[1])


def test_sample_size_matches_statsmodels_power():
    n = stats.sample_size_proportions(0.045, 0.10)
    es = proportion_effectsize(0.045 * 1.1, 0.045)
    ref = NormalIndPower().solve_power(effect_size=es, alpha=0.05, power=0.8, ratio=1.0)
    assert n == math.ceil(ref)
    assert stats.power_proportions(0.045, 0.10, n) == pytest.approx(0.8, abs=0.002)
    with pytest.raises(ValueError):
        stats.sample_size_proportions(1.5, 0.1)


def test_sample_size_means_formula():
    assert stats.sample_size_means(10, 2) == math.ceil(2 * ((1.959964 + 0.841621) * 5) ** 2)


def test_msprt_false_positive_rate_under_repeated_peeking_stays_near_nominal():
    """A/A data, 20 peeks each: naive repeated t-tests reject far too often; mSPRT stays <= ~alpha."""
    rng = np.random.default_rng(5)
    sims, looks, per_look = 400, 20, 50
    msprt_rejects = naive_rejects = 0
    for _ in range(sims):
        a = rng.normal(0, 1, looks * per_look)
        b = rng.normal(0, 1, looks * per_look)
        diffs, variances, naive = [], [], False
        for j in range(1, looks + 1):
            n = j * per_look
            diffs.append(b[:n].mean() - a[:n].mean())
            variances.append(b[:n].var(ddof=1) / n + a[:n].var(ddof=1) / n)
            naive |= stats.welch_ttest(a[:n], b[:n]).p_value < 0.05
        msprt_rejects += stats.msprt_normal(diffs, variances, tau2=0.05).reject
        naive_rejects += naive
    assert msprt_rejects / sims <= 0.07
    assert naive_rejects / sims > 0.15  # the problem the sequential test solves


def test_msprt_detects_a_real_effect():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 1, 4000), rng.normal(0.15, 1, 4000)
    n = np.arange(200, 4001, 200)
    d = [b[:k].mean() - a[:k].mean() for k in n]
    v = [2 / k for k in n]
    assert stats.msprt_normal(d, v, tau2=0.05).reject


def test_repeated_aa_ztests_flag_at_about_nominal_rate():
    rng = np.random.default_rng(8)
    flags = 0
    for _ in range(1000):
        sa, sb = rng.binomial(2000, 0.05), rng.binomial(2000, 0.05)
        flags += stats.two_proportion_ztest(sa, 2000, sb, 2000).p_value < 0.05
    assert 0.03 <= flags / 1000 <= 0.07

"""Off-policy estimates of epsilon-greedy exploration rates: decoded from logged propensities, validated
against actually running the candidate policy in a simulated environment."""

import numpy as np
import pytest

from experiments.bandits import EpsilonGreedy
from experiments.offpolicy import ope_epsilon_greedy, ope_reports

CTR = {10: 0.02, 11: 0.09, 12: 0.04, 13: 0.12, 14: 0.03, 15: 0.06}
STATE = dict(
    pulls={i: 100 for i in CTR}, clicks={10: 9, 11: 2, 12: 5, 13: 1, 14: 7, 15: 3}
)  # a mis-ranked state


def _play(epsilon: float, rounds: int, seed: int):
    """Slates of 3 from a frozen epsilon-greedy policy; per-slot click with the item's true CTR."""
    policy = EpsilonGreedy(epsilon=epsilon, **{k: dict(v) for k, v in STATE.items()})
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(rounds):
        slate = policy.select(list(CTR), 3, rng)
        for pos, (item, p) in enumerate(zip(slate.items, slate.propensities, strict=True)):
            rows.append((pos, p, float(rng.random() < CTR[item])))
    return rows


@pytest.mark.parametrize("target", [0.0, 0.1, 0.5])
def test_estimates_match_the_simulated_ctr_of_the_candidate_policy(target):
    logged = _play(0.3, 6000, seed=1)
    ips, snips, dr = ope_epsilon_greedy(rows=logged, logged_epsilon=0.3, epsilon=target)
    actual = np.mean([r[2] for r in _play(target, 20000, seed=2)])
    for est in (ips, snips, dr):
        assert abs(est.value - actual) < 3 * est.se + 0.004, (est, actual)
    # and the estimate moves the right way: this state's greedy picks are the worse items
    current = np.mean([r[2] for r in logged])
    assert (snips.value < current) == (target < 0.3)


def test_bad_logging_rates_are_refused():
    with pytest.raises(ValueError, match="0 < epsilon < 0.5"):
        ope_epsilon_greedy(rows=[(0, 1.0, 1.0)], logged_epsilon=0.0, epsilon=0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ope_epsilon_greedy(rows=[(0, 0.9, 1.0)], logged_epsilon=0.2, epsilon=1.5)


@pytest.mark.django_db
def test_no_exploring_logs_is_reported_not_estimated():
    reports = ope_reports(widget_ids=[123456])
    assert reports and all(r.snips is None and "Not estimable" in r.summary for r in reports)

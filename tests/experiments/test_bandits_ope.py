import numpy as np
import pytest

from experiments import bandits, ope

TRUE_CTR = np.array([0.02, 0.05, 0.03, 0.12, 0.04, 0.01, 0.06, 0.02])


def _run(policy, rounds: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shown = np.zeros(len(TRUE_CTR))
    for _ in range(rounds):
        slate = policy.select(range(len(TRUE_CTR)), 1, rng)
        item = slate.items[0]
        shown[item] += 1
        policy.update(item, float(rng.random() < TRUE_CTR[item]))
    return shown


@pytest.mark.parametrize("policy", [bandits.EpsilonGreedy(epsilon=0.1), bandits.ThompsonSampling()])
def test_bandits_converge_to_the_best_item(policy):
    shown = _run(policy, 4000)
    assert int(np.argmax(shown)) == 3
    assert shown[3] / shown.sum() > 0.5


def test_epsilon_greedy_propensities_match_empirical_frequencies():
    # given a fixed state where item 2 is greedy
    policy = bandits.EpsilonGreedy(epsilon=0.3, pulls={0: 100, 1: 100, 2: 100}, clicks={0: 1, 1: 2, 2: 9})
    rng = np.random.default_rng(1)
    picks = [policy.select([0, 1, 2], 1, rng) for _ in range(20_000)]
    freq = np.bincount([s.items[0] for s in picks], minlength=3) / len(picks)
    logged = {s.items[0]: s.propensities[0] for s in picks}
    for item in range(3):
        assert freq[item] == pytest.approx(logged[item], abs=0.01)
    assert logged[2] == pytest.approx(0.7 + 0.1)


def test_epsilon_greedy_rejects_bad_epsilon():
    with pytest.raises(ValueError):
        bandits.EpsilonGreedy(epsilon=1.5)


def test_linucb_learns_context_dependent_best_item():
    rng = np.random.default_rng(2)
    policy = bandits.LinUCB(dim=2, alpha=0.3)
    # item 0 pays in context [1, 0], item 1 in context [0, 1]
    for _ in range(3000):
        ctx = np.array([1.0, 0.0]) if rng.random() < 0.5 else np.array([0.0, 1.0])
        item = policy.select([0, 1], 1, rng, ctx).items[0]
        p = 0.3 if (item == 0) == (ctx[0] == 1) else 0.02
        policy.update(item, float(rng.random() < p), ctx)
    assert policy.select([0, 1], 1, rng, np.array([1.0, 0.0])).items[0] == 0
    assert policy.select([0, 1], 1, rng, np.array([0.0, 1.0])).items[0] == 1
    with pytest.raises(ValueError):
        policy.scores([0], np.ones(3))


def _logged(n: int, seed: int):
    """Uniform-random logging over 8 items; candidate policy always shows item 3 (true CTR 0.12)."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, len(TRUE_CTR), n)
    rewards = (rng.random(n) < TRUE_CTR[actions]).astype(float)
    mu = np.full(n, 1 / len(TRUE_CTR))
    pi = (actions == 3).astype(float)
    return actions, rewards, mu, pi


def test_ips_and_snips_recover_the_candidate_policy_ctr():
    _, r, mu, pi = _logged(40_000, 3)
    for est in (ope.ips(r, mu, pi), ope.snips(r, mu, pi)):
        lo, hi = est.ci95
        assert lo < 0.12 < hi
        assert est.value == pytest.approx(0.12, abs=0.02)


def test_doubly_robust_with_a_biased_reward_model_is_still_unbiased():
    actions, r, mu, pi = _logged(40_000, 4)
    q = np.full(len(TRUE_CTR), 0.05)  # a wrong reward model
    est = ope.doubly_robust(r, mu, pi, q[actions], np.full(len(r), q[3]))
    assert est.value == pytest.approx(0.12, abs=0.02)


def test_ope_rejects_bad_propensities():
    with pytest.raises(ValueError):
        ope.ips([1, 0], [0.0, 0.5], [1, 1])
    with pytest.raises(ValueError):
        ope.snips([1], [0.5, 0.5], [1, 1])


def test_empirical_prior_stops_rarely_shown_items_from_ranking_first():
    """With a fixed 5% prior but a real CTR near 1%, every measured item scores below the prior and the
    greedy choice becomes 'least shown first'; the empirical prior shrinks towards the pooled CTR instead."""
    pulls = {i: 60.0 for i in range(10)}
    clicks = {i: 0.0 for i in range(10)}
    clicks[3] = 2.0  # item 3 has the best measured CTR (3.3%); the others 0%
    pulls[9] = 0.0  # item 9 was never shown
    fixed = bandits.EpsilonGreedy(epsilon=0.0, empirical_prior=False, pulls=dict(pulls), clicks=dict(clicks))
    pooled = bandits.EpsilonGreedy(epsilon=0.0, pulls=dict(pulls), clicks=dict(clicks))
    rng = np.random.default_rng(0)
    assert fixed.select(range(10), 1, rng).items == (9,)  # the unseen item wins on the optimistic prior
    assert pooled.select(range(10), 1, rng).items == (3,)  # the best measured item wins
    assert pooled.prior_mean() == pytest.approx(2 / 540)


def test_empirical_prior_waits_for_enough_pulls():
    policy = bandits.EpsilonGreedy(pulls={1: 10.0}, clicks={1: 5.0})
    assert policy.prior_mean() == pytest.approx(1 / 20)  # 10 pulls < 200: the configured prior

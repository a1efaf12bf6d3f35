import numpy as np
from scipy import stats as sps

from experiments import assignment


def test_assignment_is_sticky_and_reproducible():
    table = assignment.allocation_build({1: 1, 2: 1})
    first = [assignment.variant_for("salt-x", f"visitor-{i}", table) for i in range(500)]
    again = [assignment.variant_for("salt-x", f"visitor-{i}", table) for i in range(500)]
    assert first == again
    other_salt = [assignment.variant_for("salt-y", f"visitor-{i}", table) for i in range(500)]
    assert first != other_salt  # experiments are independent


def test_assignment_is_balanced_over_100k_ids_chi_square():
    # given a 50/30/20 split
    table = assignment.allocation_build({1: 5, 2: 3, 3: 2})
    # when 100,000 ids are assigned
    counts = np.bincount(
        [assignment.variant_for("exp-1", f"c{i}", table) for i in range(100_000)], minlength=4
    )[1:]
    # then the counts fit the weights (chi-square goodness of fit)
    _, p = sps.chisquare(counts, np.array([0.5, 0.3, 0.2]) * 100_000)
    assert p > 0.001, counts


def test_rebalance_moves_only_the_needed_share():
    # given 50/50, then B raised to 60%
    old = assignment.allocation_build({1: 1, 2: 1})
    new = assignment.allocation_rebalance(old, {1: 4, 2: 6})
    # then exactly 10% of buckets moved, all from A to B
    moved = [(a, b) for a, b in zip(old, new) if a != b]
    assert len(moved) == 100
    assert set(moved) == {(1, 2)}
    assert new.count(2) == 600


def test_rebalance_when_a_variant_is_removed_and_one_added():
    old = assignment.allocation_build({1: 1, 2: 1, 3: 1})
    new = assignment.allocation_rebalance(old, {1: 1, 2: 1, 4: 1})
    kept = sum(a == b for a, b in zip(old, new))
    assert kept >= 666  # A's and B's shoppers all stay
    assert new.count(4) == 333 or new.count(4) == 334
    assert 3 not in new


def test_traffic_share_only_adds_shoppers_when_raised():
    ids = [f"v{i}" for i in range(20_000)]
    at10 = {i for i in ids if assignment.in_traffic("s", i, 0.10)}
    at30 = {i for i in ids if assignment.in_traffic("s", i, 0.30)}
    assert at10 <= at30
    assert abs(len(at30) / 20_000 - 0.30) < 0.015


def test_bad_weights_are_rejected():
    import pytest

    with pytest.raises(ValueError):
        assignment.allocation_build({1: 0, 2: 0})
    with pytest.raises(ValueError):
        assignment.variant_for("s", "x", [])

"""Every metric against hand-computed values."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.evaluation import metrics as M


def _acc(top, targets, k):
    hits = M.hit_matrix(np.asarray(top), [np.asarray(t) for t in targets])
    n_t = np.asarray([len(t) for t in targets])
    return {name: v for name, v in M.accuracy_at_k(hits, n_t, k).items()}


def test_single_target_at_position_two():
    # top-3 = [7, 4, 9], target 4 -> hit at rank 2
    m = _acc([[7, 4, 9]], [[4]], 3)
    assert m["HR"][0] == 1.0
    assert m["NDCG"][0] == pytest.approx(1 / math.log2(3))  # 0.6309
    assert m["MRR"][0] == pytest.approx(0.5)
    assert m["precision"][0] == pytest.approx(1 / 3)
    assert m["recall"][0] == pytest.approx(1.0)
    assert m["F1"][0] == pytest.approx(0.5)  # 2 * (1/3) * 1 / (4/3)
    assert m["MAP"][0] == pytest.approx(0.5)  # precision@2 / min(1, 3)


def test_cutoff_hides_later_hits():
    m = _acc([[7, 4, 9]], [[9]], 2)
    assert all(m[name][0] == 0.0 for name in M.ACCURACY_METRICS)


def test_multi_target_hand_computed():
    # top-4 = [a, x, b, y], targets {a, b, c}: hits at ranks 1 and 3
    a, b, c, x, y = 1, 2, 3, 8, 9
    m = _acc([[a, x, b, y]], [[a, b, c]], 4)
    assert m["precision"][0] == pytest.approx(0.5)
    assert m["recall"][0] == pytest.approx(2 / 3)
    assert m["F1"][0] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))  # 0.5714
    dcg = 1 + 1 / math.log2(4)  # 1.5
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # 2.1309
    assert m["NDCG"][0] == pytest.approx(dcg / idcg)  # 0.7039
    assert m["MRR"][0] == pytest.approx(1.0)
    assert m["MAP"][0] == pytest.approx((1 / 1 + 2 / 3) / 3)  # 0.5556
    assert m["HR"][0] == 1.0


def test_padding_and_short_lists_are_misses():
    m = _acc([[5, -1]], [[6]], 5)  # k larger than the list
    assert m["HR"][0] == 0.0 and m["NDCG"][0] == 0.0
    m = _acc([[-1, 6]], [[-1]], 2)  # -1 padding never counts as a hit
    assert m["HR"][0] == 0.0


def test_averages_over_cases():
    m = _acc([[1, 2], [3, 4], [5, 6]], [[1], [4], [9]], 2)
    assert m["HR"].mean() == pytest.approx(2 / 3)
    assert m["NDCG"].mean() == pytest.approx((1 + 1 / math.log2(3) + 0) / 3)


def test_auc_hand_computed_with_ties_and_exclusions():
    # item 2 excluded (NaN); target 1 (0.5); negatives 0 (0.9 > 0.5), 3 (0.1 < 0.5), 4 (0.5 tie)
    s = np.array([[0.9, 0.5, np.nan, 0.1, 0.5]])
    assert M.auc_per_case(s, [np.array([1])])[0] == pytest.approx(1 - (1 + 0.5) / 3)  # 0.5


def test_auc_multi_target_ignores_other_positives():
    # positives 0 (0.8) and 2 (0.3); negatives 1 (0.5), 3 (0.1)
    s = np.array([[0.8, 0.5, 0.3, 0.1]])
    # pos 0 beats both negatives: 1.0; pos 2 beats one of two: 0.5 -> mean 0.75
    assert M.auc_per_case(s, [np.array([0, 2])])[0] == pytest.approx(0.75)


def test_auc_excluded_target_counts_as_last_and_perfect_ranking_is_one():
    s = np.array([[np.nan, 0.2, 0.1], [0.9, 0.2, 0.1]])
    auc = M.auc_per_case(s, [np.array([0]), np.array([0])])
    assert auc.tolist() == [0.0, 1.0]
    assert np.isnan(M.auc_per_case(s[:1], [np.array([], dtype=np.int64)])[0])


def test_coverage_novelty_popularity_bias():
    top = np.array([[0, 1], [0, 2], [3, -1]])
    assert M.coverage(top, 10, 2) == pytest.approx(4 / 10)
    assert M.coverage(top, 10, 1) == pytest.approx(2 / 10)
    # popularity over 4 training users: item 0 -> 4, 1 -> 2, 2 -> 1, 3 -> 0 (clipped to 1/4)
    pop = np.array([4.0, 2.0, 1.0, 0.0, 0.0])
    nov = (-math.log2(1) - math.log2(0.5) - math.log2(1) - math.log2(0.25) - math.log2(0.25)) / 5  # 1.0
    assert M.novelty(top, pop, 4, 2) == pytest.approx(nov)
    # head = top 20% of 5 items = 1 item (item 0): 2 of the 5 recommended items are head items
    assert M.head_items(pop).tolist() == [0]
    assert M.popularity_bias(top, pop, 2) == pytest.approx(2 / 5)


def test_item_popularity_counts_users():
    m = sp.csr_matrix(np.array([[1, 0, 3], [1, 1, 0]]))
    assert M.item_popularity(m).tolist() == [2.0, 1.0, 1.0]


def test_intra_list_diversity_hand_computed():
    # items 0 and 1 identical, item 2 orthogonal to both
    vecs = M.normalize_rows(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]))
    ild = M.intra_list_diversity_per_case(np.array([[0, 1, 2], [0, 1, -1], [2, -1, -1]]), vecs, 3)
    # list 1: pairs (0,1)=0, (0,2)=1, (1,2)=1 -> 2/3; list 2: 0; list 3: one item -> NaN
    assert ild[0] == pytest.approx(2 / 3)
    assert ild[1] == pytest.approx(0.0)
    assert np.isnan(ild[2])

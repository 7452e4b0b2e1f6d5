"""Label designs: construction, canonical order, balance detection, bad input."""

import itertools
import math

import numpy as np
import pytest

from ufm import designs as D
from ufm.exceptions import UFMError


def test_balanced_counts_and_order():
    design = D.balanced(5, "1:3,2:2")
    assert design.N == 3 * 5 + 2 * 10
    assert design.G == 15
    assert design.sets[:5] == tuple((k,) for k in range(5))
    assert design.sets[5:] == tuple(itertools.combinations(range(5), 2))
    assert design.profile == {1: 3, 2: 2}
    np.testing.assert_array_equal(design.Y.sum(axis=0), design.m)
    # samples of a group are contiguous and carry the group's label set
    for g, sl in enumerate(design.group_slices):
        np.testing.assert_array_equal(design.Y[:, sl], np.repeat(design.Yg[:, [g]], sl.stop - sl.start, axis=1))


@pytest.mark.parametrize("K,profile", [(4, {1: 1, 4: 2}), (6, {3: 1}), (3, {1: 2, 2: 1, 3: 1})])
def test_balanced_N_formula(K, profile):
    design = D.balanced(K, profile)
    assert design.N == sum(n * math.comb(K, m) for m, n in profile.items())
    assert design.is_balanced and design.profile == profile


def test_imbalanced_designs_are_detected():
    d1 = D.imbalanced_single(4, [5, 1, 1, 1])
    assert not d1.is_balanced and "unequal counts" in d1.imbalance_reason()
    d2 = D.imbalanced_pairs(4, 2, heavy=[(0, 1)], heavy_count=3)
    assert d2.counts_by_set()[(0, 1)] == 3 and d2.counts_by_set()[(2, 3)] == 1
    assert not d2.is_balanced
    d3 = D.random_subset(6, 4, rng=0)
    assert d3.G == 6 + 4 and "only" in d3.imbalance_reason()


def test_random_subset_is_reproducible():
    a = D.random_subset(7, 5, max_multiplicity=3, count=(1, 4), rng=3)
    b = D.random_subset(7, 5, max_multiplicity=3, count=(1, 4), rng=3)
    assert a.sets == b.sets and a.counts == b.counts


def test_from_indicator_roundtrip(rng):
    design = D.balanced(4, {1: 2, 2: 1, 3: 1})
    perm = rng.permutation(design.N)
    Y_user = design.Y[:, perm]
    back, order = D.from_indicator(Y_user)
    assert back.sets == design.sets and back.counts == design.counts
    np.testing.assert_array_equal(Y_user[:, order], back.Y)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: D.balanced(1, {1: 1}), "'K' parameter"),
        (lambda: D.balanced(3, {4: 1}), "multiplicities in 1..K=3"),
        (lambda: D.balanced(3, {}), "non-empty"),
        (lambda: D.balanced(3, "1:2,x"), "multiplicity:count"),
        (lambda: D.balanced(3, {1: 0}), "an int >= 1"),
        (lambda: D.from_counts(3, {(): 2}), "empty label set"),
        (lambda: D.from_counts(3, {(0, 5): 1}), "0..2"),
        (lambda: D.from_indicator(np.array([[1, 0], [0, 0]])), "empty label set"),
        (lambda: D.from_indicator(np.array([[1, 0], [2, 1]])), "0/1 indicator"),
        (lambda: D.from_indicator(np.array([[1.0, 0.0], [0.5, 1.0]])), "0/1 indicator"),
        (lambda: D.from_indicator(np.array([[1, -1], [0, 1]])), "0/1 indicator"),
        (lambda: D.from_indicator(np.array([[1.0, np.nan], [0.0, 1.0]])), "0/1 indicator"),
        (lambda: D.from_indicator(np.array([[True, False], [True, True]]) * 3), "0/1 indicator"),
    ],
)
def test_bad_input_has_clear_errors(call, match):
    with pytest.raises(UFMError, match=match):
        call()

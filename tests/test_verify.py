"""verify(): claims pass on exact minimisers and fail on perturbed ones."""

import numpy as np
import pytest

from ufm import UFMProblem, balanced, imbalanced_single, predicted_minimizer, verify


def test_exact_minimiser_passes_every_claim():
    p = UFMProblem(balanced(5, {1: 2, 2: 1, 3: 1}), 6, 3e-3, 1e-3, 1e-2)
    W, H, b = predicted_minimizer(p, rng=3)
    v = verify(p, W, H, b)
    assert v.passed, v.table()
    names = {c.name for c in v.claims}
    assert {"value", "nc1", "etf", "self_duality", "tagwise", "tagwise_scale", "logits", "certificate"} <= names


@pytest.mark.parametrize("what", ["W", "H_one", "b"])
def test_perturbations_fail(what, rng):
    p = UFMProblem(balanced(4, {1: 2, 2: 1}), 4, 3e-3, 3e-3, 1e-2)
    W, H, b = predicted_minimizer(p, rng=1)
    if what == "W":
        W = W + 1e-4 * rng.standard_normal(W.shape)
    elif what == "H_one":
        H = H.copy()
        H[:, 0] += 1e-4
    else:
        b = b + 1e-4
    v = verify(p, W, H, b)
    assert not v.passed, v.table()


def test_not_applicable_only_claims_the_certificate():
    p = UFMProblem(imbalanced_single(3, [4, 1, 1]), 3, 1e-2, 1e-2, 1e-2)
    W, H, b = np.zeros((3, 3)), np.zeros((3, p.N)), np.zeros(3)
    v = verify(p, W, H, b)
    assert v.regime == "not-applicable"
    assert [c.name for c in v.claims] == ["certificate"]


def test_claim_fails_on_a_nan_or_infinite_measurement():
    """A claim passes only when its measurement is a number at most the tolerance: nan and
    +-inf fail (a nan compared with ``>`` is False, so ``not (nan > tol)`` would pass)."""
    from ufm.verify import Claim

    assert Claim("c", "s", 1e-7, 1e-6).passed
    assert Claim("c", "s", 1e-6, 1e-6).passed
    assert not Claim("c", "s", 1.0000001e-6, 1e-6).passed
    for bad in (float("nan"), float("inf"), float("-inf")):
        assert not Claim("c", "s", bad, 1e-6).passed, bad
        assert Claim("c", "s", bad, 1e-6).to_dict()["passed"] is False

"""Metrics on hand-built features (no solver, no theory module)."""

import math

import numpy as np
import pytest

from ufm import balanced, simplex_etf
from ufm import metrics as M


def _collapsed(K=4, d=5, profile=None, scale2=1.7, offset=None, rng=None):
    design = balanced(K, profile or {1: 3, 2: 2})
    W = simplex_etf(K, d, rng=rng)
    Hs = 0.8 * W.T  # (d, K) single-label means on the ETF
    cols = []
    for S in design.sets:
        c = 1.0 if len(S) == 1 else scale2
        cols.append(c * Hs[:, list(S)].mean(axis=1))
    H = np.stack(cols, axis=1)[:, design.group_index]
    if offset is not None:
        H = H + offset[:, None]
    return design, W, H


def test_perfect_collapse_scores_zero(rng):
    design, W, H = _collapsed(rng=rng)
    out = M.all_metrics(W, H, np.full(4, 0.3), design.Y, {2: 1.7})
    for key in ("nc1", "nc1_all", "nc2_w", "nc2_h", "nc3", "nc3_dual", "bias"):
        assert out[key] == pytest.approx(0.0, abs=1e-12), key
    tw = out["tagwise"][2]
    assert tw["angle_deg_max"] == pytest.approx(0.0, abs=1e-10)
    assert tw["scale"] == pytest.approx(1.7, rel=1e-12)
    assert out["decoding_accuracy"] == 1.0


def test_nc2_h_is_centred(rng):
    """A common offset of all features must not change NC2_H (the authors' code forgets to centre)."""
    design, W, H = _collapsed(rng=rng, offset=np.full(5, 3.0))
    assert M.nc2_h(H, design.Y) == pytest.approx(0.0, abs=1e-12)
    Hs = H[:, [design.group_slices[k].start for k in range(4)]]
    uncentred = M._unit_gram_distance(Hs.T @ Hs)
    assert uncentred > 0.1


def test_nc1_known_value_and_order_invariance(rng):
    """Two classes in 1-D: means -1 and +1, within-class deviations +-s -> NC1 = s^2 / 1 / 2."""
    s = 0.3
    H = np.array([[-1 - s, -1 + s, 1 - s, 1 + s]])
    Y = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    # Sigma_W = s^2, Sigma_B = 1 (means -1, +1 around 0), NC1 = tr(s^2 * 1) / K = s^2 / 2
    assert M.nc1(H, Y) == pytest.approx(s**2 / 2, rel=1e-12)
    perm = rng.permutation(4)
    assert M.nc1(H[:, perm], Y[:, perm]) == pytest.approx(s**2 / 2, rel=1e-12)


def test_nc1_is_never_negative_on_rank_deficient_means(rng):
    design, W, H = _collapsed(rng=rng)
    H = H + 1e-9 * rng.standard_normal(H.shape)
    assert M.nc1(H, design.Y) >= 0.0


def test_tagwise_without_singles_uses_the_classifier(rng):
    design = balanced(4, {2: 1})
    W = simplex_etf(4, 4, rng=rng)
    H = np.stack([2.0 * W[list(S)].sum(axis=0) for S in design.sets], axis=1)
    tw = M.tagwise(H, design.Y, W)
    assert tw[2]["angle_deg_max"] == pytest.approx(0.0, abs=1e-10)
    assert math.isnan(M.nc2_h(H, design.Y)) and math.isnan(M.nc3(W, H, design.Y))


def test_tagwise_angle_detects_a_rotation(rng):
    design, W, H = _collapsed(rng=rng)
    g = design.sets.index((0, 1))
    sl = design.group_slices[g]
    v = H[:, sl.start].copy()
    u = rng.standard_normal(5)
    u -= (u @ v) / (v @ v) * v
    u *= np.linalg.norm(v) / np.linalg.norm(u)
    H[:, sl] = (math.cos(0.1) * v + math.sin(0.1) * u)[:, None]
    assert M.tagwise(H, design.Y, W)[2]["angle_deg_max"] == pytest.approx(math.degrees(0.1), rel=1e-9)


def test_zero_features_give_nan_not_errors():
    design = balanced(3, {1: 2, 2: 1})
    out = M.all_metrics(np.zeros((3, 2)), np.zeros((2, design.N)), None, design.Y)
    assert math.isnan(out["nc1"]) and math.isnan(out["nc2_w"])


def test_nc1_over_label_sets_is_robust_to_noise(rng):
    """Noisy collapsed features (noise 1e-2 on unit-scale means): the label-set means span
    more directions than the K-1 of the ETF, in directions holding only the noise of the
    group means. The plain pseudo-inverse divides noise by noise there; the noise cut-off
    drops those directions, so NC1 over label sets stays of the order of the single-label NC1."""
    design, W, H = _collapsed(K=5, d=8, profile={1: 20, 2: 6})
    H = H + 1e-2 * rng.standard_normal(H.shape)
    single, allsets = M.nc1(H, design.Y), M.nc1(H, design.Y, on="all")
    plain = M.nc1(H, design.Y, on="all", noise=0.0)
    assert 1e-5 < single < 1e-2
    assert allsets < 3 * single
    assert plain > 100 * single  # what the cut-off removes


def test_nc1_noise_cut_off_keeps_real_structure(rng):
    """Well-separated classes with a small spread: no direction is dropped, the cut-off
    changes nothing."""
    s = 0.3
    H = np.array([[-1 - s, -1 + s, 1 - s, 1 + s]])
    Y = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    assert M.nc1(H, Y) == M.nc1(H, Y, noise=0.0)


def test_center_classes_against_samples_under_imbalance():
    """Class means on an exact ETF with counts 8, 4, 2, 1: the unweighted mean of the class
    means is 0 (NC2_H = NC3 = 0); the count-weighted mean is not, so the sample-centred
    metrics see a distorted simplex."""
    W = simplex_etf(4)
    counts = [8, 4, 2, 1]
    idx = np.repeat(np.arange(4), counts)
    H, Y = 2.0 * W.T[:, idx], np.eye(4, dtype=int)[:, idx]
    assert M.nc2_h(H, Y) == pytest.approx(0.0, abs=1e-12)
    assert M.nc3(W, H, Y) == pytest.approx(0.0, abs=1e-12)
    # count-weighted centre: h_G = sum_k n_k h_k / 15, the centred means are h_k - h_G
    hG = (2.0 * W.T) @ np.array(counts, float) / 15
    Hbar = 2.0 * W.T - hG[:, None]
    G = Hbar.T @ Hbar
    P = np.eye(4) - 0.25
    expected = np.linalg.norm(G / np.linalg.norm(G) - P / math.sqrt(3))
    assert M.nc2_h(H, Y, center="samples") == pytest.approx(expected, rel=1e-12)
    assert expected > 0.05
    out = M.all_metrics(W, H, None, Y, center="samples")
    assert out["nc2_h"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(M.UFMError, match="center"):
        M.nc3(W, H, Y, center="global")


def test_decoding_ties_count_as_failures():
    """Two classes whose features coincide: the nearest prototype is a tie broken only by
    rounding, so neither sample counts as decoded."""
    H = np.array([[1.0, 1.0, -1.0]])
    Y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    pred, groups = M.decode(H, Y)
    assert pred.tolist() == [-1, -1, 2]
    assert M.decoding_accuracy(H, Y) == pytest.approx(1 / 3)


def _pair_at_angle(theta: float, d: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two vectors of different lengths at the exact angle ``theta`` (radians) in a random
    plane of R^d (a random orthonormal pair, rotated)."""
    Q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    e1, e2 = Q[:, 0], Q[:, 1]
    return 2.5 * e1, 0.4 * (math.cos(theta) * e1 + math.sin(theta) * e2)


@pytest.mark.parametrize("vectorised", [True, False])
def test_angles_at_known_values_acute_right_and_obtuse(vectorised, rng):
    """Angles built at known values from 0 to 180 degrees (obtuse ones included: a
    174 degree angle must not read as its supplement's 6) and zero columns (nan); the
    vectorised ``_angles_deg`` (used by ``tagwise``) and the scalar ``_angle_deg`` both."""
    thetas = np.array([0.0, 1e-7, 0.1, 30.0, 89.0, 90.0, 91.0, 120.0, 174.0, 179.9, 180.0])
    pairs = [_pair_at_angle(math.radians(t), 6, rng) for t in thetas]
    U = np.stack([p[0] for p in pairs] + [np.zeros(6), rng.standard_normal(6)], axis=1)
    V = np.stack([p[1] for p in pairs] + [rng.standard_normal(6), np.zeros(6)], axis=1)
    if vectorised:
        got = M._angles_deg(U, V)
    else:
        got = np.array([M._angle_deg(U[:, j], V[:, j]) for j in range(U.shape[1])])
    np.testing.assert_allclose(got[:-2], thetas, rtol=0, atol=1e-6)  # float64 rounding of the construction
    assert np.isnan(got[-2]) and np.isnan(got[-1])


def test_vectorised_angles_equal_the_scalar_angle(rng):
    """``_angles_deg`` column by column equals ``_angle_deg`` on random pairs, half of them
    obtuse (``V`` anti-correlated with ``U``)."""
    U = rng.standard_normal((7, 40))
    V = rng.standard_normal((7, 40)) * 0.3 + np.where(np.arange(40) % 2, 1.0, -1.0) * U
    got = M._angles_deg(U, V)
    want = np.array([M._angle_deg(U[:, j], V[:, j]) for j in range(40)])
    assert (want > 90).sum() == 20  # the obtuse half is there
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-12)


def test_tagwise_reports_an_obtuse_angle(rng):
    """A pair's mean feature pointing opposite to the sum of its classes' features:
    ``tagwise`` reports an angle near 180 degrees, not near 0."""
    design, W, H = _collapsed(rng=rng)
    g = design.sets.index((0, 1))
    sl = design.group_slices[g]
    v = H[:, sl.start].copy()
    u = rng.standard_normal(5)
    u -= (u @ v) / (v @ v) * v
    u *= np.linalg.norm(v) / np.linalg.norm(u)
    theta = math.radians(174.0)
    H[:, sl] = (math.cos(theta) * v + math.sin(theta) * u)[:, None]
    assert M.tagwise(H, design.Y, W)[2]["angle_deg_max"] == pytest.approx(174.0, rel=1e-9)


def test_cross_angles_nan_exactly_where_a_column_is_zero(rng):
    """A zero column of ``U`` gives a nan row, of ``V`` a nan column; unit-norm columns
    stay finite (a column of norm 1 is not a zero column)."""
    U = rng.standard_normal((4, 3))
    V = rng.standard_normal((4, 2))
    U[:, 0] = 0.0
    U[:, 1] /= np.linalg.norm(U[:, 1])
    V[:, 1] /= np.linalg.norm(V[:, 1])
    A = M._cross_angles_rad(U, V)
    assert np.all(np.isnan(A[0])) and np.all(np.isfinite(A[1:]))
    V[:, 0] = 0.0
    A = M._cross_angles_rad(U, V)
    assert np.all(np.isnan(A[:, 0])) and np.all(np.isfinite(A[1:, 1]))


def test_nc1_on_one_multiplicity_uses_only_those_sets(rng):
    """``nc1(on=2)`` depends only on the pair-sets' features: noise added to the singles
    changes ``nc1(on=1)`` and ``nc1(on="all")``, not ``nc1(on=2)``."""
    design, W, H = _collapsed(rng=rng)
    H = H + 0.05 * rng.standard_normal(H.shape)
    H2 = H.copy()
    singles = design.m[None, :].repeat(H.shape[0], 0) == 1
    H2[singles] += 0.3 * rng.standard_normal(int(singles.sum()))
    assert M.nc1(H2, design.Y, on=2) == M.nc1(H, design.Y, on=2)
    assert M.nc1(H2, design.Y, on=1) != pytest.approx(M.nc1(H, design.Y, on=1), rel=1e-3)


def test_nc3_with_sample_centring_under_imbalance(rng):
    """Imbalanced single labels with an offset: ``center="samples"`` centres at the
    count-weighted mean, computed here by hand, and differs from ``center="classes"``."""
    K, d = 3, 4
    W = rng.standard_normal((K, d))
    counts = [5, 2, 1]
    Y = np.concatenate([np.tile(np.eye(K)[:, [k]], c) for k, c in enumerate(counts)], axis=1)
    Hs = rng.standard_normal((d, K)) + 2.0
    H = Hs[:, Y.argmax(axis=0)]
    n = np.array(counts, float)
    P = np.eye(K) - 1.0 / K
    for center, c in (("samples", Hs @ n / n.sum()), ("classes", Hs.mean(axis=1))):
        Hbar = Hs - c[:, None]
        A = W @ Hbar
        want = np.linalg.norm(A / np.linalg.norm(A) - P / np.sqrt(K - 1))
        assert M.nc3(W, H, Y, center=center) == pytest.approx(want, rel=1e-12)
        want_dual = np.linalg.norm(W / np.linalg.norm(W) - Hbar.T / np.linalg.norm(Hbar))
        assert M.nc3_dual(W, H, Y, center=center) == pytest.approx(want_dual, rel=1e-12)
    assert np.isnan(M.nc3_dual(np.zeros((K, d)), H, Y))
    assert np.isnan(M.nc3_dual(W, np.zeros_like(H), Y))
    assert M.nc3_dual(W / np.linalg.norm(W), H, Y) == pytest.approx(M.nc3_dual(W, H, Y), rel=1e-12)

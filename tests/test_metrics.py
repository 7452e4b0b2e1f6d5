"""Metrics on hand-built features (no solver, no theory module)."""

import gc
import math

import numpy as np
import pytest

from ufm import balanced, simplex_etf
from ufm import metrics as M
from ufm.exceptions import UFMError


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

# --- against computations written out here (loops, math.fsum, per-sample distances): the cases
# the mutation run (`make mutants`) found untested -- float32 input, shifted means, ties at the
# decoding tolerance, the tag-wise ratio, subsampled decoding.

TIE = 1e-9  # decode's documented tie tolerance (relative to the largest squared norm)


# --- hand computations ---------------------------------------------------------------------------

def _hand_sets(Y):
    """{label set: [sample indices]}, sets sorted by size then lexicographically."""
    out: dict[tuple, list] = {}
    for i in range(Y.shape[1]):
        out.setdefault(tuple(int(k) for k in np.flatnonzero(Y[:, i])), []).append(i)
    return {S: out[S] for S in sorted(out, key=lambda S: (len(S), S))}


def _hand_means(H, Y):
    H = np.asarray(H, dtype=np.float64)
    return {S: np.array([math.fsum(H[r, i] for i in idx) / len(idx) for r in range(H.shape[0])])
            for S, idx in _hand_sets(Y).items()}


def _angle(u, v):
    nu, nv = math.sqrt(math.fsum(u * u)), math.sqrt(math.fsum(v * v))
    if nu == 0 or nv == 0:
        return math.nan
    c = math.fsum(u * v) / (nu * nv)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _hand_nc1(H, Y, sets):
    """tr(Sigma_W Sigma_B^+) / C over the label sets ``sets`` (means well apart: every nonzero
    direction of Sigma_B kept)."""
    H = np.asarray(H, dtype=np.float64)
    groups, means = _hand_sets(Y), _hand_means(H, Y)
    d = H.shape[0]
    SW, n = np.zeros((d, d)), 0
    for S in sets:
        for i in groups[S]:
            x = H[:, i] - means[S]
            SW += np.outer(x, x)
            n += 1
    SW /= n
    mu = sum(means[S] for S in sets) / len(sets)
    SB = sum(np.outer(means[S] - mu, means[S] - mu) for S in sets) / len(sets)
    return float(np.trace(SW @ np.linalg.pinv(SB, rcond=1e-10, hermitian=True))) / len(sets)


def _hand_decode(H, Y):
    """Nearest prototype per sample (c_m * mean of the singles' means; the set means when a class
    has no single-label samples); -1 when the two nearest are within the tie tolerance."""
    H = np.asarray(H, dtype=np.float64)
    K = Y.shape[0]
    means = _hand_means(H, Y)
    sets = list(means)
    if all((k,) in means for k in range(K)):
        c = {1: 1.0}
        for m in {len(S) for S in sets} - {1}:
            r = []
            for S in sets:
                if len(S) == m:
                    avg = sum(means[(k,)] for k in S) / m
                    r.append(math.sqrt(means[S] @ means[S]) / math.sqrt(avg @ avg))
            c[m] = sum(r) / len(r)
        P = np.stack([c[len(S)] * sum(means[(k,)] for k in S) / len(S) for S in sets], axis=1)
    else:
        P = np.stack([means[S] for S in sets], axis=1)
    tol = TIE * max(max(float(p @ p) for p in P.T), max(float(h @ h) for h in H.T), 1e-300)
    pred = []
    for h in H.T:
        dist = sorted((float((h - p) @ (h - p)), g) for g, p in enumerate(P.T))
        pred.append(dist[0][1] if len(dist) == 1 or dist[1][0] - dist[0][0] > tol else -1)
    truth = [sets.index(tuple(int(k) for k in np.flatnonzero(Y[:, i]))) for i in range(Y.shape[1])]
    return np.array(pred), np.array(truth)


def _labels(sets_of_samples, K):
    Y = np.zeros((K, len(sets_of_samples)), dtype=int)
    for i, S in enumerate(sets_of_samples):
        Y[list(S), i] = 1
    return Y


# --- Groups ---------------------------------------------------------------------------------------

def test_group_means_of_float32_features_are_summed_in_float64(rng):
    H = rng.standard_normal((3, 300)).astype(np.float32)
    Y = _labels([[(0,), (1,), (2,), (0, 2)][i % 4] for i in rng.permutation(300)], 3)
    g = M.Groups.from_arrays(H, Y)
    hand = _hand_means(H, Y)
    assert g.sets == tuple(hand)
    assert g.means.dtype == np.float64
    for j, S in enumerate(g.sets):
        np.testing.assert_allclose(g.means[:, j], hand[S], rtol=1e-13, atol=1e-15)


def test_groups_refuse_mismatched_shapes_and_empty_label_sets():
    Y = np.eye(2, dtype=int)
    with pytest.raises(UFMError, match="same N"):
        M.Groups.from_arrays(np.zeros((3, 3)), Y)
    with pytest.raises(UFMError, match="same N"):
        M.Groups.from_arrays(np.zeros(2), Y)
    # every class has a sample, but the third sample has no label
    with pytest.raises(UFMError, match="empty label set"):
        M.Groups.from_arrays(np.zeros((3, 3)), np.array([[1, 0, 0], [0, 1, 0]]))


def test_groups_of_no_samples_are_empty():
    g = M.Groups.from_arrays(np.zeros((3, 0)), np.zeros((2, 0), dtype=int))
    assert g.sets == () and g.means.shape == (3, 0)


def test_the_label_set_cache_forgets_dead_label_arrays(rng):
    gc.collect()
    before = len(M._LABELLINGS)
    Ys = [_labels([(0,), (1,), (0, 1)], 2) for _ in range(20)]  # alive together: 20 distinct ids
    for Y in Ys:
        M.Groups.from_arrays(rng.standard_normal((2, 3)), Y)
    assert len(M._LABELLINGS) >= before + 20
    del Ys, Y
    gc.collect()
    assert len(M._LABELLINGS) <= before + 1


# --- NC1, NC2_W, NC3, bias -------------------------------------------------------------------------

def test_nc1_centres_each_coordinate_of_shifted_means(rng):
    """Means far from the origin, with different offsets per coordinate: the between-class
    scatter must be taken around the mean of the means, coordinate by coordinate."""
    centres = np.array([[0.0, 4.0, 1.0], [0.0, 1.0, 5.0]]) + np.array([[10.0], [-7.0]])
    cols, sets = [], []
    for k in range(3):
        for _ in range(5):
            cols.append(centres[:, k] + 0.3 * rng.standard_normal(2))
            sets.append((k,))
    H, Y = np.stack(cols, axis=1), _labels(sets, 3)
    assert M.nc1(H, Y) == pytest.approx(_hand_nc1(H, Y, [(0,), (1,), (2,)]), rel=1e-10)


def test_nc1_names_a_wrong_on():
    with pytest.raises(UFMError, match="'on' parameter of nc1"):
        M.nc1(np.eye(2), np.eye(2), on="pairs")


def _hand_unit_gram_distance(G):
    K = G.shape[0]
    F = G / math.sqrt(math.fsum((G * G).ravel()))
    P = np.eye(K) - 1.0 / K
    return math.sqrt(math.fsum(((F - P / math.sqrt(K - 1)) ** 2).ravel()))


def test_float32_classifier_and_bias_are_measured_in_float64(rng):
    W32 = rng.standard_normal((4, 6)).astype(np.float32)
    W = W32.astype(np.float64)
    G = np.array([[math.fsum(W[i] * W[j]) for j in range(4)] for i in range(4)])
    assert M.nc2_w(W32) == pytest.approx(_hand_unit_gram_distance(G), rel=1e-12)

    b32 = (rng.standard_normal(7) + 3.0).astype(np.float32)
    b = b32.astype(np.float64)
    mean = math.fsum(b) / 7
    assert M.bias_spread(b32) == pytest.approx(math.sqrt(math.fsum((b - mean) ** 2)), rel=1e-13)

    H = rng.standard_normal((6, 8))
    Y = _labels([(0,), (1,), (2,), (3,)] * 2, 4)
    means = _hand_means(H, Y)
    Hs = np.stack([means[(k,)] for k in range(4)], axis=1)
    Hbar = Hs - Hs.mean(axis=1, keepdims=True)
    nW, nH = math.sqrt(math.fsum((W * W).ravel())), math.sqrt(math.fsum((Hbar * Hbar).ravel()))
    hand = math.sqrt(math.fsum(((W / nW - Hbar.T / nH) ** 2).ravel()))
    assert M.nc3_dual(W32, H, Y) == pytest.approx(hand, rel=1e-12)


# --- tag-wise structure -----------------------------------------------------------------------------

def _tagwise_case(rng):
    """Singles of 3 classes, two sets of size 2 and one of size 3, every set a little off its sum."""
    singles = rng.standard_normal((4, 3)) + 1.0
    sets = [(0,), (1,), (2,), (0, 1), (1, 2), (0, 1, 2)]
    cols, labels = [], []
    for S in sets:
        base = singles[:, list(S)].mean(axis=1) * (1.0 if len(S) == 1 else 1.4 + 0.2 * len(S))
        off = 0.0 if len(S) == 1 else 0.3 * rng.standard_normal(4)
        for sign in (1.0, -1.0):  # two samples per set, symmetric about the set's mean
            cols.append(base + off + sign * 0.05 * rng.standard_normal(4))
            labels.append(S)
    return np.stack(cols, axis=1), _labels(labels, 3)


def _hand_tagwise(H, Y, ref_of):
    means = _hand_means(H, Y)
    out = {}
    for m in sorted({len(S) for S in means} - {1}):
        sets = [S for S in means if len(S) == m]
        sums = [sum(ref_of(k) for k in S) for S in sets]
        ang = [_angle(means[S], s) for S, s in zip(sets, sums)]
        scl = [math.sqrt(means[S] @ means[S]) / (math.sqrt(s @ s) / m) for S, s in zip(sets, sums)]
        cross = [ang[i] if i == j else _angle(means[S], sums[j])
                 for i, S in enumerate(sets) for j in range(len(sets))]
        ratio = (sum(ang) / len(ang)) / (sum(cross) / len(cross)) if len(sets) > 1 else math.nan
        out[m] = dict(angle_deg=sum(ang) / len(ang), angle_deg_max=max(ang), scale=sum(scl) / len(scl),
                      scale_min=min(scl), scale_max=max(scl), ratio=ratio, n_sets=len(sets))
    return out


def _assert_tagwise(got, hand, rel):
    assert sorted(got) == sorted(hand)
    for m, h in hand.items():
        for key, v in h.items():
            if isinstance(v, float) and math.isnan(v):
                assert math.isnan(got[m][key]), (m, key)
            else:
                assert got[m][key] == pytest.approx(v, rel=rel), (m, key)


def test_tagwise_angles_scales_and_ratio_by_hand(rng):
    H, Y = _tagwise_case(rng)
    means = _hand_means(H, Y)
    hand = _hand_tagwise(H, Y, lambda k: means[(k,)])
    got = M.tagwise(H, Y, predicted_scale={2: 1.3})
    _assert_tagwise(got, hand, rel=1e-7)  # arccos: ~1e-8 rad near 0 (see _cross_angles_rad)
    assert got[2]["predicted_scale"] == 1.3 and math.isnan(got[3]["predicted_scale"])
    assert math.isnan(M.tagwise(H, Y, ratio=False)[2]["ratio"])


def test_tagwise_ratio_of_angles_below_one_degree():
    """Singles 0.3 degrees apart and sets 0.05 degrees off their sums: every angle < 1 degree."""
    rot = [(math.cos(math.radians(a)), math.sin(math.radians(a))) for a in (0.0, 0.3, 0.6)]
    singles = np.array(rot).T
    cols, labels = [], []
    for k in range(3):
        cols.append(singles[:, k])
        labels.append((k,))
    for S, turn in (((0, 1), 0.05), ((1, 2), -0.05)):
        a = math.radians(0.3 * S[0] + 0.15 + turn)
        cols.append(np.array([math.cos(a), math.sin(a)]) * 1.5)
        labels.append(S)
    H, Y = np.stack(cols, axis=1), _labels(labels, 3)
    hand = _hand_tagwise(H, Y, lambda k: singles[:, k])
    assert 0 < hand[2]["ratio"] < 1 and hand[2]["angle_deg_max"] < 1
    _assert_tagwise(M.tagwise(H, Y), hand, rel=1e-5)  # angles of ~1e-3 rad, arccos to ~1e-8 rad


def test_tagwise_ratio_is_nan_when_every_angle_is_zero():
    """In one dimension every angle is 0: the ratio 0/0 is undefined (nan), not an error."""
    H = np.array([[1.0, 2.0, 3.0, 4.5, 7.0]])
    Y = _labels([(0,), (1,), (2,), (0, 1), (1, 2)], 3)
    out = M.tagwise(H, Y)[2]
    assert out["angle_deg"] == 0.0 and math.isnan(out["ratio"])


def test_tagwise_scale_is_nan_where_the_singles_cancel():
    """h_0 = -h_1: the sum of the set {0, 1} is zero, its scale |h_S| / 0 is nan (no warning)."""
    H = np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    out = M.tagwise(H, _labels([(0,), (1,), (0, 1)], 2))[2]
    assert math.isnan(out["scale"]) and math.isnan(out["angle_deg"])


def test_tagwise_without_singles_measures_against_the_classifier_in_all_metrics(rng):
    W = rng.standard_normal((3, 4))
    H, Y = _tagwise_case(rng)
    keep = Y.sum(axis=0) > 1
    H, Y = H[:, keep], Y[:, keep]
    hand = _hand_tagwise(H, Y, lambda k: W[k])
    out = M.all_metrics(W, H, None, Y, {2: 1.25})
    _assert_tagwise(out["tagwise"], hand, rel=1e-7)
    assert out["tagwise"][2]["predicted_scale"] == 1.25
    pairs = [(0, 1), (1, 2)]
    assert out["nc1_by_m"][2] == pytest.approx(_hand_nc1(H, Y, pairs), rel=1e-10)


def test_all_metrics_over_all_sets_and_with_sample_centring(rng):
    """Imbalanced singles: 'samples' centring weighs the class means by their counts."""
    K, d = 3, 4
    W = rng.standard_normal((K, d))
    labels = [(0,)] * 5 + [(1,)] * 2 + [(2,)] * 3 + [(0, 1)] * 3 + [(1, 2)] * 2
    centres = {S: rng.standard_normal(d) * 3 for S in set(labels)}
    H = np.stack([centres[S] + 0.2 * rng.standard_normal(d) for S in labels], axis=1)
    Y = _labels(labels, K)
    out = M.all_metrics(W, H, None, Y, center="samples")
    assert out["nc1_all"] == pytest.approx(_hand_nc1(H, Y, list(_hand_means(H, Y))), rel=1e-10)
    means = _hand_means(H, Y)
    Hs = np.stack([means[(k,)] for k in range(K)], axis=1)
    n = np.array([5.0, 2.0, 3.0])
    Hbar = Hs - (Hs @ n / n.sum())[:, None]
    assert out["nc3"] == pytest.approx(_hand_unit_gram_distance(W @ Hbar), rel=1e-12)
    nW, nH = np.linalg.norm(W), np.linalg.norm(Hbar)
    assert out["nc3_dual"] == pytest.approx(float(np.linalg.norm(W / nW - Hbar.T / nH)), rel=1e-12)


def test_cross_angles_of_opposite_columns_are_180_degrees(rng):
    """Normalised, a column and its negative can round to a cosine just below -1: clipped, 180."""
    U = rng.standard_normal((3, 400))
    A = M._cross_angles_deg(U, -U)
    assert not np.isnan(np.diag(A)).any()
    np.testing.assert_allclose(np.diag(A), 180.0, atol=1e-5)


# --- decoding -----------------------------------------------------------------------------------------

def test_decode_matches_nearest_prototype_by_hand(rng):
    """Noisy singles, pairs off their sums: prototypes c_m * mean of singles, not the set means."""
    singles = 2.0 * rng.standard_normal((3, 3))
    labels, cols = [], []
    for S in [(0,), (1,), (2,), (0, 1), (1, 2), (0, 2)]:
        off = 0.0 if len(S) == 1 else rng.standard_normal(3)
        for _ in range(8):
            cols.append(singles[:, list(S)].mean(axis=1) * (1.0 if len(S) == 1 else 1.6) + off
                        + 0.8 * rng.standard_normal(3))
            labels.append(S)
    H, Y = np.stack(cols, axis=1), _labels(labels, 3)
    pred, groups = M.decode(H, Y)
    hand, truth = _hand_decode(H, Y)
    assert pred.dtype.kind == "i"
    np.testing.assert_array_equal(pred, hand)
    np.testing.assert_array_equal(groups.index, truth)
    # the case discriminates: nearest set means would decode differently
    means = _hand_means(H, Y)
    by_means = [int(np.argmin([np.sum((h - mu) ** 2) for mu in means.values()])) for h in H.T]
    assert (np.array(by_means) != hand).any()


def test_decode_without_singles_uses_the_set_means(rng):
    labels = [(0, 1), (1, 2), (0, 2)] * 6
    H = rng.standard_normal((3, 18)) + 2.0 * np.stack([_labels([S], 3)[:, 0] for S in labels], axis=1)
    Y = _labels(labels, 3)
    pred, _ = M.decode(H, Y)
    np.testing.assert_array_equal(pred, _hand_decode(H, Y)[0])


def test_decode_one_set_and_an_exact_tie_between_two():
    pred, _ = M.decode(np.array([[1.0, 2.0, 3.0]]), np.ones((1, 3), dtype=int))
    assert pred.tolist() == [0, 0, 0]
    # class means (1, .5) and (.5, 1): the point (1, 1) is equally near both
    H = np.array([[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]])
    pred, _ = M.decode(H, _labels([(0,), (0,), (1,), (1,)], 2))
    assert pred.tolist() == [0, -1, 1, -1]


@pytest.mark.parametrize("scale, far", [(0.05, 1.0), (30.0, 12.0)])
def test_decode_tie_tolerance_is_relative_to_the_largest_squared_norm(scale, far):
    """Mirror-symmetric classes (equal prototype norms); probes off the bisector by gaps of
    a few hundredths to 1e5 times the tolerance 1e-9 * max(|p|^2, |h|^2), computed here by hand."""
    a = np.array([1.0, 0.25])  # class 0; class 1 is its mirror image (x <-> y)
    pts0 = [a, a + [0.1, -0.1], a - [0.1, -0.1], np.array([far, far])]
    ref = scale * np.array([0.6, 0.6])
    base_tol = TIE * scale**2 * max(2 * far**2, 1.0)  # about the tolerance, to place the probes
    for f in (0.25, 4.0, 10.0, 20.0, 40.0, 400.0, 1e4, 1e6):  # gaps ~0.04 to 1.5e5 x the tolerance
        eps = f * base_tol / (4 * scale * 0.75)  # gap = 2 (p0 - p1).(h - mid) ~ f * tol
        pts0.append(ref / scale + np.array([eps, 0.0]) / scale)
    P0 = scale * np.stack(pts0, axis=1)
    P1 = P0[::-1]  # the mirror image: class 1
    H = np.concatenate([P0, P1], axis=1)
    n = P0.shape[1]
    Y = _labels([(0,)] * n + [(1,)] * n, 2)
    pred, _ = M.decode(H, Y)
    hand, _ = _hand_decode(H, Y)
    assert (hand == -1).any() and (hand[n - 8:n] != -1).any()  # the probes straddle the tolerance
    np.testing.assert_array_equal(pred, hand)


def test_decoding_accuracy_on_evenly_spaced_samples():
    """N = 10, 4 samples decoded: 0, 3, 6, 9 (evenly spaced, ends included)."""
    # class 0 near (1, 0), class 1 near (0, 1); samples 3 and 4 sit on the wrong side
    H = np.array([[1.0, 1.1, 0.9, 0.2, 0.0, 0.1, 0.0, 1.0, 0.0, 0.05],
                  [0.0, 0.1, 0.0, 0.9, 1.0, 1.0, 1.1, 0.2, 0.9, 1.0]])
    Y = _labels([(0,)] * 5 + [(1,)] * 5, 2)
    idx = [0, 3, 6, 9]
    hand, truth = _hand_decode(H[:, idx], Y[:, idx])
    want = float(np.mean(hand == truth))
    full = float(np.mean(np.equal(*_hand_decode(H, Y))))
    assert want != full
    assert M.decoding_accuracy(H, Y, max_samples=4) == want


def test_decoding_accuracy_decodes_at_most_5000_samples_by_default():
    """N = 5001: the 5000 evenly spaced samples leave out sample 4999, the one wrong sample."""
    N = 5001
    H = np.zeros((2, N))
    H[0, : N // 2], H[1, N // 2:] = 1.0, 1.0
    H[:, 4999] = [1.0, 0.0]  # labelled class 1, sits on class 0
    Y = _labels([(0,)] * (N // 2) + [(1,)] * (N - N // 2), 2)
    idx = sorted({int(i * (N - 1) / (5000 - 1)) for i in range(5000)})
    assert 4999 not in idx and len(idx) == 5000
    hand, truth = _hand_decode(H[:, idx], Y[:, idx])
    assert M.decoding_accuracy(H, Y) == float(np.mean(hand == truth))


def test_all_metrics_names_what_to_fix(rng):
    K, d = 3, 4
    W, H, Y = rng.standard_normal((K, d)), rng.standard_normal((d, 6)), _labels([(0,), (1,), (2,)] * 2, K)
    b = np.array([0.5, -1.0, 2.0])
    assert M.all_metrics(W, H, b, Y)["bias"] == pytest.approx(math.sqrt(math.fsum((b - 0.5) ** 2)), rel=1e-15)
    bad = {"W": (W * 1j, H, b, Y), "H": (W, H * 1j, b, Y), "Y": (W, H, b, Y * 1j), "b": (W, H, b * 1j, Y)}
    for name, args in bad.items():
        with pytest.raises(UFMError, match=f"'{name}' given to all_metrics is complex"):
            M.all_metrics(*args)
    for name, args in {"W": (W[0], H, b, Y), "H": (W, H[0], b, Y), "Y": (W, H, b, Y[0])}.items():
        with pytest.raises(UFMError, match=f"'{name}' given to all_metrics must be a 2-D array; got shape"):
            M.all_metrics(*args)
    for args in ((W, H[:3], b, Y), (W, H, b, Y[:, :5])):
        with pytest.raises(UFMError, match=r"all_metrics needs W \(K, d\), H \(d, N\), Y \(K, N\)"):
            M.all_metrics(*args)
    with pytest.raises(UFMError, match=r"'b' given to all_metrics must have shape \(K,\) = \(3,\)"):
        M.all_metrics(W, H, b[:2], Y)
    for name, i in (("W", 0), ("H", 1), ("b", 2), ("Y", 3)):
        args = [W.copy(), H.copy(), b.copy(), Y.astype(float)]
        args[i].flat[0] = np.nan
        with pytest.raises(UFMError, match=f"'{name}' given to all_metrics contains NaN or Inf"):
            M.all_metrics(*args)
    with pytest.raises(UFMError, match="must hold 0/1 label indicators"):
        M.all_metrics(W, H, b, 2 * Y)
    for scale in ({2.0: 1.5}, {True: 1.5}, {2: "1.5"}, {2: True}, [1.5]):
        with pytest.raises(TypeError, match="'predicted_scale' argument of ufm.all_metrics"):
            M.all_metrics(W, H, b, Y, scale)


def test_nc1_drops_directions_below_the_relative_cut_off(rng):
    """Means 2000 apart along x, 6e-4 along y: Sigma_B's y eigenvalue (~1e-7) is below
    1e-10 x its top (~1e6) and is dropped, though it is well above the noise of the means."""
    centres = np.array([[-1e3, 1e3, 0.0], [0.0, 3e-4, -3e-4]])
    cols, sets = [], []
    for k in range(3):
        for _ in range(100):
            cols.append(centres[:, k] + np.array([1.0, 3e-5]) * rng.standard_normal(2))
            sets.append((k,))
    H, Y = np.stack(cols, axis=1), _labels(sets, 3)
    assert M.nc1(H, Y) == pytest.approx(_hand_nc1(H, Y, [(0,), (1,), (2,)]), rel=1e-8)


def test_decode_tie_tolerance_counts_prototypes_longer_than_every_sample():
    """Scales 0.1 and 140 for the two pairs give c_2 = 70: the prototype of {0, 1} is
    70 x (5, 0.05), 35x longer than any sample. A probe 1e-6 nearer h_1 than h_2 (squared) is
    within 1e-9 x |prototype|^2 (~1.2e-4): a tie, though beyond 1e-9 x the largest |h|^2."""
    e = 5e-6
    cols = {(0,): [(10.0, 0.0)], (1,): [(0.0, 0.1), (0.05 + e, 0.05), (-0.05 - e, 0.15)],
            (2,): [(0.1, 0.0)], (0, 1): [(0.5, 0.005)], (1, 2): [(7.0, 7.0)]}
    labels = [S for S, pts in cols.items() for _ in pts]
    H = np.array([p for pts in cols.values() for p in pts]).T
    Y = _labels(labels, 3)
    hand, _ = _hand_decode(H, Y)
    assert hand[2] == -1 and (hand[[0, 1, 3, 4]] >= 0).all()
    pred, _ = M.decode(H, Y)
    np.testing.assert_array_equal(pred, hand)

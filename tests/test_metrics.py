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

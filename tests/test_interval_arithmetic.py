"""The interval-arithmetic primitives of :mod:`ufm.certificate_rigorous` as specifications
(issue 28): every result is checked against an independent exact value (``fractions.Fraction``
for ``+ - * /`` and sums, mpmath at 50 digits for ``sqrt`` and ``log``) at every corner of
random intervals of every kind (negative, straddling 0, positive, points, 0, wide and
narrow, small integers whose arithmetic is exact), and for tightness against the
documented a-priori bound. Error bounds are also checked from below: a bound smaller than
the worst-case rounding error of *some* admissible evaluation order (numpy's summation
order and BLAS's dot products are unspecified) is a bug even where the data at hand happen
to round less."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

from ufm.certificate_rigorous import (
    _BLOCK,
    U,
    _gram_enclose,
    _horner_pos,
    _point,
    iadd,
    idiv_pos,
    ilog,
    imul,
    isqrt,
    isub,
    isum,
    log_enclose,
    matmul_enclose,
)

mp.mp.dps = 50
_F = Fraction


def _boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` intervals, cycling through: negative, positive, straddling 0, a random point,
    a narrow interval (relative width 1e-12), a small-integer interval (possibly a point,
    possibly 0), a wide one (ends 1e6 apart in size)."""
    lo, hi = np.empty(n), np.empty(n)
    for i in range(n):
        kind = i % 7
        m1, m2 = 10.0 ** rng.uniform(-3, 3, 2)
        if kind == 0:
            a, b = -m1, -m2
        elif kind == 1:
            a, b = m1, m2
        elif kind == 2:
            a, b = -m1, m2
        elif kind == 3:
            a = b = rng.choice([-1.0, 1.0]) * m1
        elif kind == 4:
            a = rng.choice([-1.0, 1.0]) * m1
            b = a * (1 + 1e-12)
        elif kind == 5:
            a, b = (float(v) for v in rng.integers(-6, 7, 2))
        else:
            a, b = rng.choice([-1.0, 1.0]) * 1e-3 * m1, rng.choice([-1.0, 1.0]) * 1e3 * m2
        lo[i], hi[i] = min(a, b), max(a, b)
    return lo, hi


def _check_tight(out: tuple[np.ndarray, np.ndarray], ex_lo: list[Fraction], ex_hi: list[Fraction]) -> None:
    """``out`` contains ``[ex_lo, ex_hi]`` and each end is at most two floats outside the
    correctly rounded exact end (one rounding, one outward step)."""
    lo, hi = out
    for a, b, el, eh in zip(lo, hi, ex_lo, ex_hi):
        assert _F(float(a)) <= el and eh <= _F(float(b)), (a, b, el, eh)
        assert a >= np.nextafter(np.nextafter(float(el), -np.inf), -np.inf), (a, el)
        assert b <= np.nextafter(np.nextafter(float(eh), np.inf), np.inf), (b, eh)


def _corners(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], op) -> tuple[list, list]:
    lo, hi = [], []
    for a0, a1, b0, b1 in zip(a[0], a[1], b[0], b[1]):
        vals = [op(_F(float(x)), _F(float(y))) for x in (a0, a1) for y in (b0, b1)]
        lo.append(min(vals))
        hi.append(max(vals))
    return lo, hi


# ------------------------------------------------------------------ + - * / and points
def test_point_is_a_float64_interval_of_one_number() -> None:
    for x in (3, [1, 2], np.float32(0.1), np.array([0.5, -2.0], dtype=np.float32)):
        lo, hi = _point(x)
        assert lo.dtype == hi.dtype == np.float64
        np.testing.assert_array_equal(lo, np.asarray(x, dtype=np.float64))
        np.testing.assert_array_equal(hi, lo)


def test_add_sub_mul_enclose_every_corner_tightly() -> None:
    rng = np.random.default_rng(101)
    a, b = _boxes(rng, 350), _boxes(rng, 350)
    b = (b[0][::-1].copy(), b[1][::-1].copy())  # pair different kinds
    _check_tight(iadd(a, b), *_corners(a, b, lambda x, y: x + y))
    _check_tight(isub(a, b), *_corners(a, b, lambda x, y: x - y))
    _check_tight(imul(a, b), *_corners(a, b, lambda x, y: x * y))


def test_division_by_positive_intervals_and_its_refusals() -> None:
    rng = np.random.default_rng(102)
    a = _boxes(rng, 350)
    b0 = 10.0 ** rng.uniform(-3, 3, 350)
    b1 = np.where(rng.random(350) < 0.3, b0, b0 * 10.0 ** rng.uniform(0, 4, 350))
    b = (b0, b1)
    _check_tight(idiv_pos(a, b), *_corners(a, b, lambda x, y: x / y))
    # divisors down to the smallest positive double and below 1 are accepted
    lo, hi = idiv_pos(_point([1.0, -1.0]), (np.array([1e-300, 0.5]), np.array([0.5, 0.5])))
    assert lo[0] <= 2.0 and hi[0] >= 1e300 and lo[1] <= -2.0 <= hi[1]
    for b_bad in ((np.array([0.0]), np.array([1.0])), (np.array([-1.0]), np.array([1.0])),
                  (np.array([-0.0]), np.array([0.0])), (np.array([1.0, 0.0]), np.array([1.0, 2.0]))):
        with pytest.raises(ValueError, match="positive divisor"):
            idiv_pos(_point(np.ones_like(b_bad[0])), b_bad)


def test_sqrt_encloses_and_never_goes_below_zero() -> None:
    rng = np.random.default_rng(103)
    x = np.sort(10.0 ** rng.uniform(-6, 6, (2, 200)), axis=0)
    lo = np.concatenate([x[0], [0.0, 0.0, -1e-20, -3.0, 0.25, 0.3, 4.0, 5e-324]])
    hi = np.concatenate([x[1], [0.0, 0.5, 0.7, 2.0, 0.25, 0.9, 4.0, 5e-324]])
    out_lo, out_hi = isqrt((lo, hi))
    assert np.all(out_lo >= 0.0)
    assert out_lo[200] == 0.0 and out_lo[202] == 0.0 and out_lo[203] == 0.0
    for a, b, l_, h_ in zip(out_lo, out_hi, lo, hi):
        el, eh = mp.sqrt(mp.mpf(max(float(l_), 0.0))), mp.sqrt(mp.mpf(float(h_)))
        assert mp.mpf(float(a)) <= el and eh <= mp.mpf(float(b)), (l_, h_)
        assert a >= np.nextafter(np.nextafter(float(el), -np.inf), -np.inf) or a == 0.0, (l_, a)
        assert b <= np.nextafter(np.nextafter(float(eh), np.inf), np.inf), (h_, b)


# ------------------------------------------------------------------ sums
def _sum_spec(x_lo: np.ndarray, x_hi: np.ndarray, out: tuple[np.ndarray, np.ndarray], exact_ints: bool) -> None:
    """``x_*`` (..., n) summed along the last axis into ``out`` (...). Each end contains the
    exact sum; its distance from the exact sum is at least ``(n' - 1) u sum|x|`` with ``n' =
    min(n, _BLOCK)`` (the worst case of some summation order: a smaller bound is wrong) when
    every float sum is exact (small integers), and at most the documented bound: ``1.01 n u
    sum|x|`` per level (blocks of ``_BLOCK``, then the block sums) plus, for data that round,
    the float sum's own error (the same again), plus two floats per level."""
    n = x_lo.shape[-1]
    m = -(-n // _BLOCK) if n > _BLOCK else 0  # number of blocks, 0 for one level
    first = min(max(n, 1), _BLOCK)
    factor = 1.01 * (first + m) * (1 if exact_ints else 2) + 4 * (m + 1)
    assert out[0].shape == out[1].shape == x_lo.shape[:-1]
    for idx in np.ndindex(x_lo.shape[:-1]):
        for xs, end, sign in ((x_lo[idx], out[0][idx], -1), (x_hi[idx], out[1][idx], 1)):
            exact = sum((_F(float(v)) for v in xs), _F(0))
            S = sum((abs(_F(float(v))) for v in xs), _F(0))
            dist = (_F(float(end)) - exact) * sign
            assert dist >= 0, (idx, sign)
            if exact_ints:
                assert dist >= (first - 1) * _F(U) * S, (idx, sign, float(dist), float(S))
            bound = _F(factor) * _F(U) * S + 2 * _F(float(np.spacing(float(abs(exact)))))
            assert dist <= bound + _F(1e-290), (idx, sign, float(dist), float(bound))


@pytest.mark.parametrize("n", [0, 1, 2, 7, 300, 512, 513, 700, 1300])
def test_isum_of_one_axis_contains_the_exact_sum_and_is_tight(n: int) -> None:
    rng = np.random.default_rng(104 + n)
    lo, hi = _boxes(rng, n)
    _sum_spec(lo, hi, isum((lo, hi)), exact_ints=False)
    ints = rng.integers(-1000, 1000, (2, n)).astype(np.float64)
    ints.sort(axis=0)
    _sum_spec(ints[0], ints[1], isum((ints[0], ints[1]), axis=0), exact_ints=True)
    pos = rng.integers(1, 1000, n).astype(np.float64)  # one sign: sum|x| = |sum x|
    _sum_spec(pos, pos, isum(_point(pos), axis=-1), exact_ints=True)


def test_isum_of_one_term_is_the_term_within_two_floats() -> None:
    """A sum of one term is exact: each end within two floats of the term (the bound
    ``1.01 n u |x|`` is under one float at ``n = 1``, then one outward step)."""
    rng = np.random.default_rng(113)
    lo, hi = _boxes(rng, 140)
    lo = np.concatenate([lo, [1.75, -1.75, 3.5, 7.0, 1.0, -1.9999999999999998]])
    hi = np.concatenate([hi, [1.75, -1.75, 3.5, 7.0, 1.0, -1.9999999999999998]])
    keep = (lo != 0) & (hi != 0)  # a zero term is widened by the 1e-300 floor instead
    lo, hi = lo[keep], hi[keep]
    _check_tight(isum((lo[:, None], hi[:, None]), axis=1), [_F(float(v)) for v in lo], [_F(float(v)) for v in hi])
    _check_tight(isum((lo[None, :], hi[None, :]), axis=0), [_F(float(v)) for v in lo], [_F(float(v)) for v in hi])
    z_lo, z_hi = isum(_point(np.zeros((3, 1))), axis=1)
    assert np.all(-2e-300 <= z_lo) and np.all(z_lo < 0) and np.all(0 < z_hi) and np.all(z_hi <= 2e-300)


def test_isum_over_each_axis_of_2d_and_3d_arrays() -> None:
    """Rows of very different sizes (1e6 and 1): each row's bound is its own, not the
    whole array's; lengths above ``_BLOCK`` that are not multiples of it."""
    rng = np.random.default_rng(105)
    ints = rng.integers(-50, 50, (2, 3, 700)).astype(np.float64)
    ints.sort(axis=0)
    lo, hi = ints[0], ints[1]
    lo[0] *= 1e6
    hi[0] *= 1e6
    for axis in (1, -1):
        _sum_spec(lo, hi, isum((lo, hi), axis=axis), exact_ints=True)
    _sum_spec(lo.T, hi.T, isum((lo, hi), axis=0), exact_ints=True)
    _sum_spec(lo.reshape(1, -1), hi.reshape(1, -1), tuple(np.asarray(v)[None] for v in isum((lo, hi))), exact_ints=True)
    cube = rng.integers(-9, 10, (2, 3, 530)).astype(np.float64) * np.array([1.0, 1e5, 1e-3])[None, :, None]
    cube = np.stack([cube, cube + rng.integers(0, 3, (2, 3, 530))])  # (2, 2, 3, 530): [lo, hi]
    lo3, hi3 = cube[0], cube[1]
    for axis, perm in ((2, (0, 1, 2)), (-1, (0, 1, 2)), (1, (0, 2, 1)), (0, (1, 2, 0))):
        _sum_spec(lo3.transpose(perm), hi3.transpose(perm), isum((lo3, hi3), axis=axis), exact_ints=False)
    _sum_spec(lo3.reshape(1, -1), hi3.reshape(1, -1), tuple(np.asarray(v)[None] for v in isum((lo3, hi3), axis=None)),
              exact_ints=False)
    empty = isum((np.zeros((3, 0)), np.zeros((3, 0))), axis=1)
    assert empty[0].shape == (3,) and np.all(empty[0] <= 0) and np.all(empty[1] >= 0)


def test_isum_takes_float32_and_lists_as_the_float64_numbers_they_are() -> None:
    x32 = np.array([0.1, 1e8, -1e8, 3.3], dtype=np.float32)
    exact = sum(_F(float(v)) for v in x32)
    for a in ((x32, x32.tolist()), (x32.tolist(), x32)):
        lo, hi = isum(a)
        assert lo.dtype == hi.dtype == np.float64
        assert _F(float(lo)) <= exact <= _F(float(hi)) and float(hi) - float(lo) < 1e-6


# ------------------------------------------------------------------ products
@pytest.mark.parametrize("n", [1, 2, 3, 17, 700])
def test_matmul_enclose_bound_is_valid_necessary_and_tight(n: int) -> None:
    """``|C - A B| <= R`` exactly; ``R >= n u |A||B|`` (a dot product of ``n`` terms can err
    by ``gamma_n |A||B|``: a smaller bound is wrong); ``R`` at most the documented
    ``1.01 (n + 2) u |A||B|`` (+ the rounding of ``|A||B|`` itself, 1%) + ``n 1e-320``."""
    rng = np.random.default_rng(106 + n)
    A = rng.standard_normal((3, n)) * 10.0 ** rng.integers(-6, 6, (3, n))
    B = rng.standard_normal((n, 2)) * 10.0 ** rng.integers(-6, 6, (n, 2))
    A[0, 0] = 1e-200  # products that underflow: C is 0, the exact value is not
    B[0, 0] = 1e-200
    A[0, 1:] = 0.0
    C, R = matmul_enclose(A, B)
    assert C.shape == R.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            ex = sum((_F(float(A[i, k])) * _F(float(B[k, j])) for k in range(n)), _F(0))
            P = sum((abs(_F(float(A[i, k])) * _F(float(B[k, j]))) for k in range(n)), _F(0))
            r = _F(float(R[i, j]))
            assert abs(_F(float(C[i, j])) - ex) <= r, (i, j)
            assert r >= n * _F(U) * P, (i, j)
            assert r <= _F(1.02) * (n + 2) * _F(U) * P + (n + 1) * _F(1e-320), (i, j, float(r), float(P))


@pytest.mark.parametrize("shape", [(3, 40), (2, 1025), (3, 600), (2, 1)])
def test_gram_enclose_is_symmetric_valid_and_tight(shape: tuple[int, int]) -> None:
    """``A`` exactly symmetric, ``|A - M M^T| <= R`` exactly, and ``R`` at most the documented
    chunked bound ``~1.01 (min(n, _BLOCK) + 2 + 2 chunks) u |M||M|^T`` (a few per cent and a
    few floats of slack)."""
    K, n = shape
    rng = np.random.default_rng(107 + n)
    M = rng.standard_normal((K, n)) * 10.0 ** rng.integers(-3, 3, (K, n))
    A, R = _gram_enclose(M)
    assert A.shape == R.shape == (K, K)
    np.testing.assert_array_equal(A, A.T)
    chunks = -(-n // _BLOCK)
    factor = 1.02 * (min(n, _BLOCK) + 2 + 2 * chunks) + 8
    for i in range(K):
        for j in range(K):
            ex = sum((_F(float(M[i, k])) * _F(float(M[j, k])) for k in range(n)), _F(0))
            P = sum((abs(_F(float(M[i, k])) * _F(float(M[j, k]))) for k in range(n)), _F(0))
            r = _F(float(R[i, j]))
            assert abs(_F(float(A[i, j])) - ex) <= r, (i, j)
            assert r <= _F(factor) * _F(U) * P + _F(1e-290), (i, j, float(r), float(P))


def test_horner_evaluates_the_polynomial_with_positive_coefficients() -> None:
    """``sum_i coef[i] x^i`` for ``x >= 0`` within ``gamma_{2d}`` relative (positive terms)."""
    rng = np.random.default_rng(108)
    x = np.concatenate([[0.0, 1.0, 0.5], rng.uniform(0, 2, 100)])
    for coef in ([1.0, 2.0, 3.0], [0.5, 0.25, 0.125, 4.0, 1.0 / 3.0], [7.0], [1.0 / math.factorial(i) for i in range(18)]):
        p = _horner_pos(coef, x.copy())
        d = len(coef) - 1
        for xi, pi in zip(x, p):
            ex = sum((_F(c) * _F(float(xi)) ** i for i, c in enumerate(coef)), _F(0))
            assert abs(_F(float(pi)) - ex) <= _F(2.02 * d * U) * ex, (coef, xi)


# ------------------------------------------------------------------ log
def test_log_refuses_zero_negatives_and_non_finite_arguments() -> None:
    for bad in (0.0, -0.0, -5e-324, -1.0, np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="finite x > 0"):
            log_enclose(np.array([1.0, bad, 2.0]))
        with pytest.raises(ValueError, match="finite x > 0"):
            ilog((np.array([bad, 1.0]), np.array([1.0, 1.0])))
    lo, hi = log_enclose(np.array([5e-324, 0.5, 1.0, 1.7976931348623157e308]))
    for a, b, x in zip(lo, hi, (5e-324, 0.5, 1.0, 1.7976931348623157e308)):
        assert mp.mpf(float(a)) <= mp.log(mp.mpf(x)) <= mp.mpf(float(b))
    assert lo[2] < 0.0 < hi[2] and hi[2] - lo[2] < 1e-300  # log 1 = 0 exactly: only the floor term


def test_log_in_the_central_range_has_a_small_relative_width() -> None:
    """For ``x`` in ``[c, 2c)``, ``c = 0.7071067811865476`` (the cut-off just above
    ``1/sqrt 2``, both ends included), no power of two is split off, so the enclosure is
    the series' alone: width ``<= 2 * 1.01 * 65 u |log x|`` + 3 floats (the ``e ln 2`` term,
    ``2.01 u e ln2``, is absent) -- relative accuracy near ``x = 1`` too."""
    c = 0.7071067811865476
    rng = np.random.default_rng(109)
    x = np.concatenate([[c, np.nextafter(c, 2.0), np.nextafter(2 * c, 0.0), 1 - 2.0**-53, 1 + 2.0**-52,
                         1 - 1e-9, 1 + 1e-9, 0.99, 1.01, 0.75, 1.4],
                        rng.uniform(c, 2 * c, 200), 1 + rng.uniform(-1e-6, 1e-6, 50)])
    lo, hi = log_enclose(x)
    for a, b, xi in zip(lo, hi, x):
        L = mp.log(mp.mpf(float(xi)))
        assert mp.mpf(float(a)) <= L <= mp.mpf(float(b)), xi
        bound = 2 * 1.01 * 65 * U * abs(float(L)) * (1 + 1e-12)
        bound += 3 * np.spacing(abs(float(L)) + bound)  # floats at the ends' size
        assert b - a <= bound, (xi, b - a, bound)


def test_log_outside_the_central_range_is_within_its_error_terms() -> None:
    """``x = 2^e f`` with ``|log f| <= 0.35``: the width is at most ``2 * 1.01 (65 u |log f|
    + 2.01 u |e ln 2| + u |log x|)`` + 3 floats (the documented terms, with ``|e ln 2| <=
    |log x| + 0.35``), and contains the 50-digit value."""
    rng = np.random.default_rng(110)
    x = np.concatenate([np.exp(rng.uniform(-700, 700, 200)), [2.0**k for k in range(-1074, 1024, 97)],
                        [0.5, 0.3535533905932738, 2.0, 1.5, 3.0, 1e-310]])
    lo, hi = log_enclose(x)
    for a, b, xi in zip(lo, hi, x):
        L = mp.log(mp.mpf(float(xi)))
        assert mp.mpf(float(a)) <= L <= mp.mpf(float(b)), xi
        aL = abs(float(L))
        bound = 2 * 1.01 * (65 * 0.35 + 2.01 * (aL + 0.35) + aL) * U * (1 + 1e-12)
        bound += 3 * np.spacing(aL + bound)
        assert b - a <= bound, (xi, b - a, bound)


def test_ilog_encloses_log_over_the_whole_interval() -> None:
    rng = np.random.default_rng(111)
    x = np.sort(10.0 ** rng.uniform(-300, 300, (2, 100)), axis=0)
    lo_in = np.concatenate([x[0], [1.0, 0.5, 2.0]])
    hi_in = np.concatenate([x[1], [1.0, 4.0, 2.0]])
    lo, hi = ilog((lo_in, hi_in))
    for a, b, l_, h_ in zip(lo, hi, lo_in, hi_in):
        el, eh = mp.log(mp.mpf(float(l_))), mp.log(mp.mpf(float(h_)))
        assert mp.mpf(float(a)) <= el and eh <= mp.mpf(float(b)), (l_, h_)
        assert el - mp.mpf(float(a)) <= 1e-13 * (1 + abs(el)) and mp.mpf(float(b)) - eh <= 1e-13 * (1 + abs(eh))


def test_log_takes_float32_and_integers_as_the_float64_numbers_they_are() -> None:
    rng = np.random.default_rng(112)
    x32 = np.concatenate([np.exp(rng.uniform(-80, 80, 100)), rng.uniform(0.5, 2.0, 100)]).astype(np.float32)
    for x in (x32, np.array([1, 2, 3, 10**9])):
        lo, hi = log_enclose(x)
        assert lo.dtype == hi.dtype == np.float64
        for a, b, xi in zip(lo, hi, x):
            L = mp.log(mp.mpf(float(xi)))
            assert mp.mpf(float(a)) <= L <= mp.mpf(float(b)), xi
            assert float(b) - float(a) <= 1e-13 * (1 + abs(float(L))), xi

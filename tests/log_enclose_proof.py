"""Exhaustive exact check behind the proof that ``log_enclose`` stays valid with the error
term ``- u |res|`` (mutmut's ``x_log_enclose__mutmut_59``) -- see
tests/mutants_rigorous_intervals.md, section "Equivalent as a proof", for the whole argument.

What is checked here, in exact rational arithmetic (``fractions.Fraction``; no float is
trusted except where IEEE 754 defines it exactly: ``float(Fraction)`` is the correctly
rounded value, ``math.nextafter`` the neighbour), for every exponent ``e = 1 .. 1074``
(``e = 0`` and ``e < 0`` are reduced to these on paper) and both ends of the enclosure:

    for every double ``res`` that ``fl(e ln2 + lf)`` can produce with ``|lf| <= L_MAX``,
    the end computed by ``log_enclose`` lies beyond every real number that ``log x`` can be,
    given ``|lf - log f| <= kappa u |lf|`` (the series lemma, ``kappa = 4.1``).

The doubles ``res`` of one binade ``[2^k, 2^(k+1))`` (spacing ``q = 2^(k-52)``) are covered as
a continuum (a relaxation: more points than there are doubles), on which the computed error
``err`` is bounded below by an affine function ``alpha(res) q`` and the required distance by
an affine ``beta(res) q``; the ends are ``>= ceil(alpha - 1/2) + 1`` floats ``q`` away from
``res`` (shown on paper, and re-derived here by exact rounding where ``res`` is within a few
floats of a power of two, where the lower end's rule differs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction as Fr

U = Fr(1, 2**53)
_U = 2.0**-53
# The code's constants, as the doubles the code uses (Python evaluates these with IEEE doubles
# exactly as numpy does for the scalar factors in log_enclose).
A_SERIES = Fr(64.0 * _U + 1e-22)  # (64.0 * U + 1e-22)
B_ELN2 = Fr(2.01 * _U)  # 2.01 * U (left to right)
D_SAFETY = Fr(1.01)  # 1.01
LN2_DOUBLE = Fr(0.6931471805599453)  # _LN2
L_MAX = Fr(3466, 10000)  # |lf| <= |log f| (1 + 4.1 u) < 0.34657359028 (1 + 1e-15) < 0.3466
KAPPA = Fr(41, 10)  # the series lemma: |lf - log f| <= 4.1 u |lf|


def ln2_bracket(n_terms: int = 130) -> tuple[Fr, Fr]:
    """``ln 2 = sum_{k>=1} 1/(k 2^k)``: the partial sum and the partial sum plus a bound on the
    tail (``sum_{k>N} 1/(k 2^k) <= 1/((N+1) 2^N)``); width ``< 2^-136``."""
    s = sum(Fr(1, k * 2**k) for k in range(1, n_terms + 1))
    lo, hi = s, s + Fr(1, (n_terms + 1) * 2**n_terms)
    # widened to multiples of 2^-140 (short dyadic numbers keep the exact arithmetic fast)
    return Fr(math.floor(lo * 2**140), 2**140), Fr(math.ceil(hi * 2**140), 2**140)


LN2_LO, LN2_HI = ln2_bracket()


def series_lemma_bound() -> Fr:
    """The arithmetic of Lemma 1 (tests/mutants_rigorous_intervals.md), done exactly: the bound
    ``B`` with ``|lf - log f| <= B u |log f|`` for the code's ``lf`` (``f`` in ``[c, 2c)``), from
    ``|y_t| <= (1 - c)/(1 + c)``, ``z <= y_t^2 (1+u)^3/(1-u)^2``, Horner's ``|phi_0| <= u``,
    ``|phi_k| <= gamma_{2k+2}``, the shift of ``Q`` between ``y_t^2`` and ``z`` and the
    truncation after 14 terms. Returns ``B / (1 - B u)``, the bound relative to ``|lf|``."""
    c = Fr(0.7071067811865476)
    two_c = 2 * c  # f < 2c (the double 1.4142135623730951)
    y_t = max((1 - c) / (1 + c), (two_c - 1) / (two_c + 1))
    omega = (1 + U) ** 3 / (1 - U) ** 2 - 1  # z = y_t^2 (1 + omega'), |omega'| <= omega
    z = y_t**2 * (1 + omega)
    a = [Fr(2, 2 * k + 1) for k in range(60)]
    gamma = [n * U / (1 - n * U) for n in range(40)]
    phi = (2 * U + sum(a[k] * z**k * gamma[2 * k + 2] for k in range(1, 14))) / 2  # P(z) >= 2
    q_prime = sum(k * a[k] * z ** (k - 1) for k in range(1, 60)) + Fr(1, 10**20)  # tail < 1e-80
    shift = omega * z * q_prime / 2  # |Q(z) - Q(y_t^2)| / Q, Q >= 2
    trunc = a[14] * z**14 / (1 - z) / 2  # (Q(z) - P(z)) / Q
    up = (1 + U) ** 2 / (1 - U) * (1 + phi) * (1 + shift) - 1
    dn = 1 - (1 - U) ** 2 / (1 + U) * (1 - phi) * (1 - shift - trunc)
    b = max(up, dn) / U
    return b / (1 - b * U)


def _ceil(x: Fr) -> int:
    return -((-x.numerator) // x.denominator)


_ONE_M2 = (1 - U) ** 2
_D_ONE_M2 = D_SAFETY * _ONE_M2


@dataclass
class Worst:
    margin: Fr  # smallest (needed floats) - (required floats), in units of q = ulp(res)
    where: str


def _alpha(res: Fr, l_min: Fr, eln2: Fr, q: Fr, res_sign: int) -> Fr:
    """Lower bound on ``err / q``: ``err >= D (1-u)^2 [(1-u)^2 (A |lf| + B |eln2|) + s u |res|]``
    with ``s = -1`` (the mutant) or ``+1`` (the original code), each rounding of the ``err``
    formula counted as a factor ``(1 - u)`` and the ``+ 1e-320`` and final ``_up`` as
    ``>= 0``."""
    inner = _ONE_M2 * (A_SERIES * l_min + B_ELN2 * eln2) + res_sign * U * res
    assert inner > 0, f"err's lower bound not positive at res={float(res)!r}"  # so fl(p4 - p3) >= (p4 - p3)(1 - u) holds (a positive difference)
    return _D_ONE_M2 * inner / q


def _pieces(r0: Fr, r1: Fr, cuts: list[Fr]) -> list[tuple[Fr, Fr]]:
    pts = sorted({r0, r1, *[c for c in cuts if r0 < c < r1]})
    return [(a, b) for a, b in zip(pts, pts[1:])]


def check_exponent(e: int, kappa: Fr = KAPPA, res_sign: int = -1, b_eln2: Fr | None = None) -> Worst:
    """Check both ends for one exponent ``e >= 1`` (so ``eln2 > 0`` and ``res > 0``).

    Raises ``AssertionError`` with the failing case if the enclosure is not proved; returns
    the smallest margin (in floats ``q``) otherwise."""
    global B_ELN2
    saved = B_ELN2
    if b_eln2 is not None:
        B_ELN2 = b_eln2
    try:
        return _check_exponent(e, kappa, res_sign)
    finally:
        B_ELN2 = saved


def _check_exponent(e: int, kappa: Fr, res_sign: int) -> Worst:
    eln2_f = float(e) * 0.6931471805599453  # fl(e * _LN2): the code's product
    eln2 = Fr(eln2_f)
    up_need = e * LN2_HI - eln2  # >= -d_e = e ln2 - eln2
    dn_need = eln2 - e * LN2_LO  # >= d_e
    slack = Fr(1, 2**40)  # res = fl(eln2 + lf) lies within one float (< 2^-42) of eln2 + lf
    r_min, r_max = eln2 - L_MAX - slack, eln2 + L_MAX + slack
    assert r_min > 0
    worst = Worst(Fr(10**9), "")
    k_lo = math.floor(math.log2(float(r_min))) - 1
    k_hi = math.floor(math.log2(float(r_max))) + 1
    for k in range(k_lo, k_hi + 1):
        b0, b1 = Fr(2) ** k, Fr(2) ** (k + 1)
        lo_r, hi_r = max(b0, r_min), min(b1, r_max)
        if lo_r >= hi_r:
            continue
        q = Fr(2) ** (k - 52)

        def l_bounds(res: Fr, q: Fr = q) -> tuple[Fr, Fr]:
            g = abs(res - eln2)
            return max(g - q / 2, Fr(0)), g + q / 2

        def beta(res: Fr, need: Fr, q_half_below: Fr, q: Fr = q) -> Fr:
            return (q_half_below + need + kappa * U * l_bounds(res)[1]) / q

        def alpha(res: Fr, q: Fr = q) -> Fr:
            return _alpha(res, l_bounds(res)[0], eln2, q, res_sign)

        cuts = [eln2 - q / 2, eln2, eln2 + q / 2]
        # an upper bound on alpha over the binade (alpha is affine on each piece)
        a_max = max(alpha(r) for piece in _pieces(lo_r, hi_r, cuts) for r in piece)
        n_enum = _ceil(a_max) + 3  # lower end: the bulk rule needs res >= 2^k + (alpha + 2) q
        # -- exact enumeration of the floats just above 2^k (both ends; the lower end needs it)
        n_first = max(0, _ceil((lo_r - b0) / q))
        for n in range(n_first, n_enum):
            res = b0 + n * q
            if res > hi_r:
                break
            a = alpha(res)
            res_f = float(res)
            assert Fr(res_f) == res
            lo = Fr(math.nextafter(float(res - a * q), -math.inf))
            hi = Fr(math.nextafter(float(res + a * q), math.inf))
            half_below = q / 4 if n == 0 else q / 2
            m_lo = (res - lo) / q - beta(res, dn_need, half_below)
            m_hi = (hi - res) / q - beta(res, up_need, q / 2)
            # the general rule for the upper end, checked against exact rounding
            assert (hi - res) / q >= _ceil(a - Fr(1, 2)) + 1, (e, k, n)
            for m, end in ((m_lo, "lo"), (m_hi, "hi")):
                assert m >= 0, f"e={e} k={k} n={n} end={end} margin={float(m)}"
                if m < worst.margin:
                    worst = Worst(m, f"e={e} res=2^{k}+{n}q end={end} (exact)")
        # -- the bulk, as a continuum: ends >= ceil(alpha - 1/2) + 1 floats from res
        for end, need in (("hi", up_need), ("lo", dn_need)):
            start = lo_r if end == "hi" else max(lo_r, b0 + n_enum * q)
            if start >= hi_r:
                continue
            for p0, p1 in _pieces(start, hi_r, cuts):
                a0, a1 = alpha(p0), alpha(p1)
                c0, c1 = beta(p0, need, q / 2), beta(p1, need, q / 2)
                j_first = _ceil(min(a0, a1) - Fr(1, 2))
                j_last = _ceil(max(a0, a1) - Fr(1, 2))
                for j in range(j_first, j_last + 1):
                    # the part of the piece where j - 1/2 < alpha <= j + 1/2 (closure)
                    if a0 == a1:
                        taus = [Fr(0), Fr(1)]
                    else:
                        t_a = (j - Fr(1, 2) - a0) / (a1 - a0)
                        t_b = (j + Fr(1, 2) - a0) / (a1 - a0)
                        t_lo, t_hi = max(Fr(0), min(t_a, t_b)), min(Fr(1), max(t_a, t_b))
                        if t_lo > t_hi:
                            continue
                        taus = [t_lo, t_hi]
                    for t in taus:
                        m = j + 1 - (c0 + t * (c1 - c0))
                        assert m >= 0, f"e={e} k={k} end={end} j={j} res~{float(p0 + t * (p1 - p0))} margin={float(m)}"
                        if m < worst.margin:
                            worst = Worst(m, f"e={e} res~{float(p0 + t * (p1 - p0))!r} end={end} (bulk, j={j})")
    return worst


def check_all(kappa: Fr = KAPPA, res_sign: int = -1, e_range: range = range(1, 1075),
              b_eln2: Fr | None = None) -> Worst:
    worst = Worst(Fr(10**9), "")
    for e in e_range:
        w = check_exponent(e, kappa, res_sign, b_eln2)
        if w.margin < worst.margin:
            worst = w
    return worst


if __name__ == "__main__":  # pragma: no cover
    import time

    t0 = time.perf_counter()
    w = check_all()
    print(f"mutant 59, kappa = 4.1: proved for e = 1..1074; smallest margin {float(w.margin):.4f} floats at {w.where}"
          f" ({time.perf_counter() - t0:.1f} s)")
    w = check_all(res_sign=+1)
    print(f"original code, kappa = 4.1: smallest margin {float(w.margin):.4f} floats at {w.where}")

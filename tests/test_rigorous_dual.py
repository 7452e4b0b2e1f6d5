"""The dual side of the rigorous certificate (:func:`ufm.certificate_rigorous._spectral_upper`
and :func:`ufm.certificate_rigorous.dual_lower`), attacked where its error terms matter.

``_spectral_upper`` must bound ``||M||_2`` for *every* eigendecomposition that
``np.linalg.eigh`` might return (LAPACK is not trusted), so the tests below feed it exact but
unusual ones (a dense orthonormal basis of a rank-one Gram matrix, an eigenvector scaled off
the unit sphere, a lowered top eigenvalue) and compare with the spectral norm computed
independently in 50 digits. The reasons for the mutants that no test can kill are in
tests/mutants_rigorous_dual.md."""

from __future__ import annotations

from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

import ufm
from ufm.certificate_rigorous import _spectral_upper, dual_lower

mp.mp.dps = 50


def _norm2_exact(M: np.ndarray) -> mp.mpf:
    return max(mp.svd_r(mp.matrix(M.tolist()), compute_uv=False))


def test_spectral_upper_factors_the_smaller_gram_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    """The eigendecomposition is of the ``min(K, G) x min(K, G)`` Gram matrix, for wide and tall
    matrices alike (at ``K = 200``, ``G = 20100`` the other one has 4e8 entries), and the
    bound still holds for both."""
    real = np.linalg.eigh
    seen: list[tuple[int, ...]] = []

    def spy(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.append(A.shape)
        return real(A)

    monkeypatch.setattr(np.linalg, "eigh", spy)
    M = np.random.default_rng(31).standard_normal((3, 40))
    for X in (M, M.T):
        ub = _spectral_upper((X, X))
        exact = _norm2_exact(X)
        assert exact <= mp.mpf(ub) <= exact * (1 + mp.mpf(10) ** -12)
    assert seen == [(3, 3), (3, 3)]


def _fake_eigh(monkeypatch: pytest.MonkeyPatch, change) -> None:
    real = np.linalg.eigh

    def fake(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam, V = real(A)
        return change(lam.copy(), V.copy())

    monkeypatch.setattr(np.linalg, "eigh", fake)


@pytest.mark.parametrize("basis", ["lapack", "reflections"])
@pytest.mark.parametrize("transposed", [False, True])
def test_spectral_upper_rank_one_with_a_dense_eigenbasis(monkeypatch: pytest.MonkeyPatch, transposed: bool,
                                                         basis: str) -> None:
    """``M = x e_1^T`` or ``e_1 x^T`` (16 x 16): the Gram matrix ``||x||^2 a a^T`` (``a = x /
    ||x||`` or ``e_1``) has a 15-dimensional null space, returned as a dense orthonormal basis
    (by LAPACK, or set here to ``P R`` with ``P`` the reflection taking ``e_1`` to ``a`` --
    taken from the matrix given to ``eigh`` -- and ``R`` a reflection fixing ``e_1`` along a
    dense unit vector, so that the case does not depend on the LAPACK build). Then the bound on
    ``||V^T V - I||`` (the product bound ``RV`` of a 16-term dot product per entry) is far larger
    than the Gram matrix's own rounding: dropping or subtracting it, or dividing by
    ``||V||_2^2`` instead of multiplying, gives a bound below ``||x||``. ``||M||_2 = ||x||``
    exactly; the bound is within 1e-12 of it."""
    rng = np.random.default_rng(32)
    x = rng.standard_normal(16)
    M = np.zeros((16, 16))
    M[:, 0] = x
    if transposed:
        M = M.T
    if basis == "reflections":
        def reflect(w: np.ndarray) -> np.ndarray:
            return np.eye(16) - 2.0 * np.outer(w, w) / (w @ w)

        R = reflect(np.r_[0.0, rng.standard_normal(15)])  # R e_1 = e_1, dense elsewhere

        def dense(lam: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            a = -np.sign(V[0, -1]) * V[:, -1]  # the top eigenvector, a_1 <= 0
            P = reflect(np.eye(16)[0] - a)  # P e_1 = a
            return np.r_[np.zeros(15), x @ x], np.roll(P @ R, -1, axis=1)  # ascending: a last

        _fake_eigh(monkeypatch, dense)
    exact = mp.sqrt(mp.fsum(mp.mpf(float(v)) ** 2 for v in x))
    ub = _spectral_upper((M, M))
    assert exact <= mp.mpf(ub) <= exact * (1 + mp.mpf(10) ** -12)


@pytest.mark.parametrize("s", [1.5, 0.8])
def test_spectral_upper_with_an_eigenvector_off_the_unit_sphere(monkeypatch: pytest.MonkeyPatch, s: float) -> None:
    """The top eigenvector returned with length ``s`` and its eigenvalue divided by ``s^2``:
    still an exact factorisation ``A = V diag(lam) V^T``, so ``max(lam) ||V||_2^2`` is the
    whole bound and ``||V||_2^2 = max(1, s^2)`` must be bounded from above, by ``1 + ||V^T V -
    I||_F = 1 + |s^2 - 1|``. So the bound is ``||M||_2 sqrt(1 + |s^2 - 1|) / s`` up to rounding:
    exactly ``||M||_2`` for ``s > 1``, where a bound that used ``1 - ||V^T V - I||`` or
    ``lam / ||V||^2`` would be ``||M||_2 / s^2``-small, and weaker, not wrong, for ``s < 1``."""
    M = np.random.default_rng(33).standard_normal((5, 12))
    exact = _norm2_exact(M)

    def scale(lam: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        V[:, -1] *= s
        lam[-1] /= s * s
        return lam, V

    _fake_eigh(monkeypatch, scale)
    ub = mp.mpf(_spectral_upper((M, M)))
    assert exact <= ub <= exact * mp.sqrt(1 + abs(mp.mpf(s) ** 2 - 1)) / s * (1 + mp.mpf(10) ** -12)


def test_spectral_upper_with_a_lowered_top_eigenvalue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The top eigenvalue returned ``delta`` too small (exact eigenvectors): the residual
    ``A - V diag(lam) V^T = delta v v^T`` has Frobenius norm ``delta``, so the bound is
    ``sqrt((lam_1 - delta) + delta)`` up to rounding -- it must cover ``||M||_2`` and may not
    count the residual twice (``sqrt(lam_1 + delta)`` is 1.05 ``||M||_2`` here)."""
    M = np.random.default_rng(34).standard_normal((4, 10))
    exact = _norm2_exact(M)
    delta = 0.1 * float(exact) ** 2

    def lower(lam: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam[-1] -= delta
        return lam, V

    _fake_eigh(monkeypatch, lower)
    ub = mp.mpf(_spectral_upper((M, M)))
    assert exact <= ub <= exact * (1 + mp.mpf(10) ** -12)


def test_dual_lower_falls_back_to_the_gamma_zero_bound_rounded_down() -> None:
    """A direction that moves mass between the two members of each pair label set (``q`` less
    uniform there): ``D(q) < D(0) = sum_S c_S log m_S`` for every ``t > 0`` (checked in 50
    digits at ``t_used``), so the bound returned is the ``Gamma = 0`` one -- the *lower* end of
    its enclosure: ``<= D(0)`` exactly (here ``6 * 2 log 2 / 10``), and within 1e-14 of it."""
    problem = ufm.UFMProblem(ufm.balanced(4, "1:1,2:1"), 3, 5e-2, 2e-2, 0.0, bias=False)
    design = problem.design
    Yg, m = design.Yg, design.group_multiplicity
    Dir = np.zeros_like(Yg)
    for g in np.flatnonzero(m == 2):
        i, j = np.flatnonzero(Yg[:, g])
        Dir[i, g], Dir[j, g] = 0.1, -0.1  # column sums are 0: no correction
    lower, t_used, feasible = dual_lower(problem, Dir, 1.0)
    assert feasible and 0 < t_used <= 1.0
    n, N = design.group_counts, problem.N
    c = [mp.mpf(int(n[g]) * int(m[g])) / N for g in range(design.G)]
    D0 = mp.fsum(c[g] * mp.log(int(m[g])) for g in range(design.G))
    assert D0 == 6 * 2 * mp.log(2) / 10
    t = mp.mpf(t_used)
    q = [[mp.mpf(int(Yg[k, g])) / int(m[g]) + t * mp.mpf(float(Dir[k, g])) for k in range(4)] for g in range(design.G)]
    Dq = -mp.fsum(c[g] * mp.fsum(v * mp.log(v) for v in q[g] if v > 0) for g in range(design.G))
    assert Dq < D0 - mp.mpf(10) ** -6
    assert mp.mpf(lower) <= D0
    assert lower >= float(D0) * (1 - 1e-14)


def _exact_product(A: np.ndarray, B: np.ndarray) -> list[list[Fraction]]:
    Af = [[Fraction(float(v)) for v in row] for row in A]
    Bf = [[Fraction(float(v)) for v in col] for col in B.T]
    return [[sum((a * b for a, b in zip(r, col)), Fraction(0)) for col in Bf] for r in Af]


def _float_at_least(x: Fraction) -> float:
    """The smallest float ``>= x``."""
    f = float(x)
    return f if Fraction(f) >= x else float(np.nextafter(f, np.inf))


def _error_bound(C: np.ndarray, P: list[list[Fraction]]) -> np.ndarray:
    """The tightest ``R`` with ``|C - P| <= R`` (entrywise, exact)."""
    return np.array([[_float_at_least(abs(Fraction(float(C[i, j])) - P[i][j])) for j in range(C.shape[1])]
                     for i in range(C.shape[0])])


@pytest.mark.parametrize("lowered", [True, False])
def test_spectral_upper_with_collaborators_at_the_edge_of_their_contracts(monkeypatch: pytest.MonkeyPatch,
                                                                          lowered: bool) -> None:
    """``_spectral_upper``'s proof relies on its collaborators only through their contracts:
    ``_gram_enclose`` returns ``(A, R)`` with ``|A - M M^T| <= R``, ``matmul_enclose`` returns
    ``(C, R)`` with ``|C - A B| <= R``. Here they return the tightest ``R`` those contracts
    allow (exact errors, computed with fractions), so the slack of the real product bounds
    (``1.01 (n + 2) u |A| |B|``: hundreds of ``u`` at ``n = 16``) is gone and only
    ``_spectral_upper``'s own terms remain.

    ``M = V diag(1, ..., 1, s)`` with ``V = H_16 / 4`` (a Hadamard basis: exactly orthonormal in
    floats, and dense), ``s = 1 + 2^-10``: ``||M||_2 = s`` exactly, ``A = M M^T`` exact in floats.
    ``eigh`` returns ``V`` and the exact eigenvalues, or (``lowered``) the top one lowered to
    ``1 + 2^-10``, so that ``A - V diag(lam) V^T = Delta v v^T`` (``Delta = 2^-10 + 2^-20``); the
    product ``V diag(lam) V^T`` then comes back as ``A`` itself, off by exactly that residual
    (within its contract: ``R = |Delta v v^T|``). So ``A - Y = 0`` and the whole residual must be
    carried by ``RY``, of Frobenius norm ``Delta + 2u ||V |lam| V^T||_F = Delta + 2u trace(lam)``
    (``V * lam`` is exact here, so the rounding term is slack): subtracting ``RY`` from ``|A -
    Y|``, or subtracting the rounding term from ``RY`` (``Delta - 32u``), gives a bound below
    ``s``. The bound holds, within ``64 u`` of ``s`` (it is ``s + 22u``)."""
    import ufm.certificate_rigorous as cr

    k = 16
    H = np.array([[1.0]])
    while H.shape[0] < k:
        H = np.block([[H, H], [H, -H]])
    V = H / 4.0
    s = 1.0 + 2.0**-10
    mu = np.r_[np.ones(k - 1), s * s]  # s^2 = 1 + 2^-9 + 2^-20, exact
    M = V * np.r_[np.ones(k - 1), s]
    exact_gram = _exact_product(M, M.T)
    lam = np.r_[np.ones(k - 1), 1.0 + 2.0**-10] if lowered else mu.copy()
    VLVt = _exact_product(V * lam, V.T)  # V * lam is exact (a power-of-two scaling)
    delta = Fraction(s) ** 2 - Fraction(float(lam[-1]))
    v = [Fraction(float(x)) for x in V[:, -1]]
    assert all(exact_gram[i][j] - VLVt[i][j] == delta * v[i] * v[j] for i in range(k) for j in range(k))

    def tight_gram(Mc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        A = Mc @ Mc.T
        A = np.triu(A) + np.triu(A, 1).T
        return A, _error_bound(A, _exact_product(Mc, Mc.T))

    def tight_matmul(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P = _exact_product(A, B)
        if A.shape == (k, k) and np.array_equal(B, V.T) and np.array_equal(A, V * lam):
            C = np.array([[float(v) for v in row] for row in exact_gram])  # = A: off by Delta v v^T
        else:
            C = A @ B
        return C, _error_bound(C, P)

    monkeypatch.setattr(cr, "_gram_enclose", tight_gram)
    monkeypatch.setattr(cr, "matmul_enclose", tight_matmul)
    monkeypatch.setattr(np.linalg, "eigh", lambda A: (lam.copy(), V.copy()))
    assert np.array_equal(V.T @ V, np.eye(k))
    assert all(Fraction(float(v)) == v for row in exact_gram for v in row)  # M M^T exact in floats
    ub = _spectral_upper((M, M))
    assert Fraction(ub) >= Fraction(s)
    assert ub <= s * (1 + 64 * 2.0**-53)

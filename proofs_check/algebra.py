"""Building blocks shared by the checks.

* :class:`IJ` -- the commutative algebra of ``K x K`` matrices ``alpha I + beta J``
  (``J = 1 1^T``) for a *symbolic* ``K``; it is closed under products because
  ``J^2 = K J``.
* Explicit objects for a concrete ``K``: ``ones``, ``indicator``, the centring
  matrix, an explicit orthonormal basis of ``1``-perp (Helmert), label sets.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import sympy as sp

__all__ = ["IJ", "ones", "indicator", "centring", "helmert_basis", "label_sets", "pal_loss", "lse"]


@dataclass(frozen=True)
class IJ:
    """The matrix ``alpha I + beta J`` of size ``K`` (``K`` may be a symbol).

    Products use only ``J^2 = K J``, so every result is again of this form.
    """

    alpha: sp.Expr
    beta: sp.Expr
    K: sp.Expr

    def __mul__(self, other: IJ) -> IJ:
        if not isinstance(other, IJ):
            return IJ(self.alpha * other, self.beta * other, self.K)
        a1, b1, a2, b2 = self.alpha, self.beta, other.alpha, other.beta
        return IJ(a1 * a2, a1 * b2 + b1 * a2 + self.K * b1 * b2, self.K)

    __rmul__ = __mul__

    def __add__(self, other: IJ) -> IJ:
        return IJ(self.alpha + other.alpha, self.beta + other.beta, self.K)

    def __sub__(self, other: IJ) -> IJ:
        return IJ(self.alpha - other.alpha, self.beta - other.beta, self.K)

    @property
    def T(self) -> IJ:  # noqa: N802  (matrix-transpose notation)
        """Transpose (the algebra consists of symmetric matrices)."""
        return self

    def diag(self) -> sp.Expr:
        """Every diagonal entry."""
        return self.alpha + self.beta

    def offdiag(self) -> sp.Expr:
        """Every off-diagonal entry."""
        return self.beta

    def trace(self) -> sp.Expr:
        """``tr = K (alpha + beta)``."""
        return self.K * (self.alpha + self.beta)

    def on_ones(self) -> sp.Expr:
        """The eigenvalue on ``1``: ``(alpha I + beta J) 1 = (alpha + K beta) 1``."""
        return self.alpha + self.K * self.beta

    def total(self) -> sp.Expr:
        """``1^T A 1 = K (alpha + K beta)``."""
        return self.K * self.on_ones()

    def coefficients(self) -> tuple[sp.Expr, sp.Expr]:
        """``(alpha, beta)``, which determine the matrix when ``K >= 2``."""
        return self.alpha, self.beta

    def explicit(self, k: int) -> sp.Matrix:
        """The explicit ``k x k`` matrix after substituting ``K = k``."""
        a = sp.sympify(self.alpha).subs(self.K, k)
        b = sp.sympify(self.beta).subs(self.K, k)
        return a * sp.eye(k) + b * sp.ones(k, k)


def ones(k: int) -> sp.Matrix:
    """The all-ones column of length ``k``."""
    return sp.ones(k, 1)


def indicator(k: int, S: tuple[int, ...]) -> sp.Matrix:
    """The indicator column ``1_S`` of ``S subset {0..k-1}``."""
    return sp.Matrix([1 if j in S else 0 for j in range(k)])


def centring(k: int) -> sp.Matrix:
    """``P = I - 1 1^T / k`` built entrywise."""
    return sp.Matrix(k, k, lambda i, j: (1 if i == j else 0) - sp.Rational(1, k))


def helmert_basis(k: int) -> sp.Matrix:
    """An explicit ``k x (k-1)`` matrix whose columns are claimed orthonormal and ``_|_ 1``.

    Column ``j`` (``1 <= j <= k-1``) is ``(1, .., 1, -j, 0, .., 0) / sqrt(j (j+1))``
    with ``j`` leading ones. Its properties are *checked*, not assumed.
    """
    cols = []
    for j in range(1, k):
        c = [sp.Integer(1)] * j + [sp.Integer(-j)] + [sp.Integer(0)] * (k - j - 1)
        cols.append(sp.Matrix(c) / sp.sqrt(j * (j + 1)))
    return sp.Matrix.hstack(*cols)


def label_sets(k: int, m: int) -> Iterator[tuple[int, ...]]:
    """All label sets of size ``m`` in ``{0..k-1}`` (``itertools.combinations``)."""
    return itertools.combinations(range(k), m)


def lse(z: sp.Matrix) -> sp.Expr:
    """``LSE(z) = log sum_j exp(z_j)``."""
    return sp.log(sum(sp.exp(zj) for zj in z))


def pal_loss(z: sp.Matrix, y: sp.Matrix) -> sp.Expr:
    """Pick-all-label loss built from its definition ``sum_{k in S} (LSE(z) - z_k)``."""
    return sum((lse(z) - z[k] for k in range(len(y)) if y[k] == 1), sp.Integer(0))


def exp_to_powers(expr: sp.Expr, svars: dict[sp.Symbol, sp.Symbol], k: int) -> sp.Expr:
    """Replace every ``exp(sum_m q_m s_m)`` by ``prod_m X_m^(q_m k)``, ``X_m = exp(s_m / k)``.

    ``svars`` maps each ``s_m`` to a fresh positive symbol ``X_m``. Treating ``X_m``
    as independent of ``s_m`` is sound for proving identities: a residual that
    cancels to 0 with independent symbols vanishes for ``X_m = exp(s_m/k)``.
    Raises ``ValueError`` if an exponent is not linear in the ``s_m`` with
    exponents ``q_m k`` integral.
    """
    rep: dict[sp.Expr, sp.Expr] = {}
    for atom in expr.atoms(sp.exp):
        arg = sp.expand(atom.args[0])
        out = sp.Integer(1)
        rest = arg
        for s_, X in svars.items():
            q = arg.coeff(s_)
            if not (q * k).is_integer:
                raise ValueError(f"exponent {arg} is not an integer multiple of s/{k}")
            out *= X ** (q * k)
            rest -= q * s_
        if sp.expand(rest) != 0:
            raise ValueError(f"exponent {arg} is not linear in {list(svars)}")
        rep[atom] = out
    return expr.xreplace(rep)


def log_normal(expr: sp.Expr, svars: dict[sp.Symbol, sp.Symbol], k: int) -> sp.Expr:
    """Substitute ``s_m = k log X_m``, factor every log's argument and expand the logs.

    Sums of logarithms of rational functions then cancel term by term (for positive
    ``X_m`` and positive arguments, which is the setting of every use here).
    """
    e = expr.subs({s_: k * sp.log(X) for s_, X in svars.items()})
    e = e.replace(lambda t: isinstance(t, sp.log), lambda t: sp.log(sp.factor(sp.together(t.args[0]))))
    e = sp.expand_log(e, force=True)
    return sp.expand(e)

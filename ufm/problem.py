"""The UFM problem: a label design plus dimension, regularisation and model options."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .designs import LabelDesign
from .exceptions import UFMError, param_error
from .validate import real_array  # noqa: F401  (re-exported: verify, certificate, objective use it from here)

LOSSES = ("pal", "pal-normalized", "bce")


def _positive_float(name: str, value: object, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else float("nan")  # type: ignore[arg-type]
    if not ok or not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        rng = "[0, inf)" if allow_zero else "(0, inf)"
        raise param_error("UFMProblem", name, f"a float in {rng}", value)
    return v


MU_MIN = 1e-150  # smallest sqrt(lam_W lam_H) accepted (1e-150 still solves and certifies, gap 5e-12; at 1e-200 the theory's Newton solve hit a singular Hessian)


def check_problem(problem: object, owner: str) -> None:
    """A TypeError naming the argument when ``problem`` is not a :class:`UFMProblem`."""
    if not isinstance(problem, UFMProblem):
        raise TypeError(f"The 'problem' argument of ufm.{owner} must be a ufm.UFMProblem (e.g. "
                        "ufm.UFMProblem(ufm.balanced(4, {1: 2}), d=4, lam_W=5e-3, lam_H=5e-3)); got "
                        f"{type(problem).__name__}.")


@dataclass(frozen=True, eq=False)
class UFMProblem:
    r"""The regularised unconstrained features model with the pick-all-label loss.

    .. math::

        F(W, H, b) = \frac1N \sum_{i=1}^N \ell(W h_i + b; y_i)
            + \frac{\lambda_W}{2}\|W\|_F^2 + \frac{\lambda_H}{2}\|H\|_F^2
            + \frac{\lambda_b}{2}\|b\|_2^2,
        \qquad \ell(z; y) = m\,\mathrm{LSE}(z) - \langle y, z\rangle

    where

    - ``W`` (K, d) is the classifier, ``H`` (d, N) the features (one column per sample,
      ``||H||_F^2`` summed over all N, not averaged), ``b`` (K,) the bias;
    - ``y_i`` (K,) is the 0/1 indicator of sample i's label set, ``m = |S_i|``;
    - the loss is averaged over the N samples; penalties carry a factor 1/2.

    Parameters
    ----------
    design : LabelDesign
    d : int
        Feature dimension, ``d >= 1``.
    lam_W, lam_H : float
        Weight decays, ``> 0``.
    lam_b : float
        Bias decay, ``>= 0`` (0 allowed: then the bias is determined up to ``beta 1``).
    bias : bool
        ``False`` fixes ``b = 0`` (no bias variable).
    loss : {"pal", "pal-normalized", "bce"}
        ``"pal"`` (the paper's, default), its normalised version with targets ``y/m``
        (``l / m``), or binary cross-entropy (for comparisons; the theorem concerns "pal").

    Examples
    --------
    Five classes, every single label 3 times and every pair twice (N = 5*3 + 10*2 = 35):

    >>> import ufm
    >>> p = ufm.UFMProblem(ufm.balanced(5, {1: 3, 2: 2}), d=6, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    >>> p.N, p.K
    (35, 5)
    >>> result = ufm.solve(p, rng=0)
    >>> str(result.status), round(result.fun, 7) == round(ufm.predict(p).value, 7)
    ('CONVERGED_GTOL', True)
    """

    design: LabelDesign
    d: int
    lam_W: float
    lam_H: float
    lam_b: float = 0.0
    bias: bool = True
    loss: str = "pal"

    def __post_init__(self) -> None:
        if not isinstance(self.design, LabelDesign):
            raise param_error(
                "UFMProblem", "design", "a LabelDesign (see ufm.designs.balanced)", type(self.design).__name__
            )
        if not isinstance(self.d, (int, np.integer)) or isinstance(self.d, bool) or self.d < 1:
            raise param_error("UFMProblem", "d", "an int >= 1", self.d)
        object.__setattr__(self, "d", int(self.d))
        object.__setattr__(self, "lam_W", _positive_float("lam_W", self.lam_W))
        object.__setattr__(self, "lam_H", _positive_float("lam_H", self.lam_H))
        object.__setattr__(self, "lam_b", _positive_float("lam_b", self.lam_b, allow_zero=True))
        for name in ("lam_W", "lam_H", "lam_b"):
            v = getattr(self, name)
            if 0 < v < np.finfo(np.float64).tiny:
                raise UFMError(f"{name} = {v!r} is subnormal (below 2.2e-308): the model's products of it "
                               "underflow float64; use a value >= 1e-150 or 0 where allowed.")
        mu = math.sqrt(self.lam_W) * math.sqrt(self.lam_H)
        if mu < MU_MIN:
            raise UFMError(f"mu = sqrt(lam_W lam_H) = {mu:.3g} (lam_W = {self.lam_W!r}, lam_H = {self.lam_H!r}) is "
                           f"below {MU_MIN:g}: the optimum's curvature underflows float64 and nothing can be "
                           "solved or certified there; raise the lambdas.")
        if not isinstance(self.bias, (bool, np.bool_)):
            raise param_error("UFMProblem", "bias", "a bool", self.bias)
        object.__setattr__(self, "bias", bool(self.bias))
        if self.loss not in LOSSES:
            raise param_error("UFMProblem", "loss", f"one of {LOSSES}", self.loss)
        from .memory import check as check_memory

        check_memory(self.K, self.N, self.design.G, self.d)

    # convenient views
    @property
    def K(self) -> int:
        return self.design.K

    @property
    def N(self) -> int:
        return self.design.N

    @property
    def mu(self) -> float:
        """``sqrt(lam_W lam_H)``: the nuclear-norm weight of the convex reformulation."""
        return math.sqrt(self.lam_W * self.lam_H)

    @property
    def n_vars(self) -> int:
        return self.K * self.d + self.d * self.N + (self.K if self.bias else 0)

    def describe(self) -> str:
        bias = f"lam_b={self.lam_b:g}" if self.bias else "no bias"
        loss = "" if self.loss == "pal" else f", loss={self.loss}"
        return (
            f"{self.design.describe()}, d={self.d}, lam_W={self.lam_W:g}, "
            f"lam_H={self.lam_H:g}, {bias}{loss}"
        )

    def to_dict(self) -> dict:
        """A JSON-able description (used as the sweep cache key)."""
        return {
            "K": self.K,
            "sets": [list(S) for S in self.design.sets],
            "counts": list(self.design.counts),
            "kind": self.design.kind,
            "d": self.d,
            "lam_W": self.lam_W,
            "lam_H": self.lam_H,
            "lam_b": self.lam_b,
            "bias": self.bias,
            "loss": self.loss,
        }

    @classmethod
    def from_dict(cls, data: dict) -> UFMProblem:
        from .designs import from_counts

        design = from_counts(
            int(data["K"]), {tuple(S): int(n) for S, n in zip(data["sets"], data["counts"])},
            kind=data.get("kind", "counts"),
        )
        if design.kind == "counts" and design.is_balanced:
            object.__setattr__(design, "kind", "balanced")
        return cls(
            design=design, d=int(data["d"]), lam_W=float(data["lam_W"]), lam_H=float(data["lam_H"]),
            lam_b=float(data["lam_b"]), bias=bool(data["bias"]), loss=data.get("loss", "pal"),
        )

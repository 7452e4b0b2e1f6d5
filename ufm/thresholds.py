r"""Thresholds in ``mu = sqrt(lam_W lam_H)`` as certified brackets (docs/thresholds.md).

Three kinds of event, each a property of the global minimiser that holds from a
threshold ``mu*`` upwards:

- ``"trivial"``: ``W = 0, H = 0`` (every logit is the bias);
- ``"vanish"`` (class ``i``): row ``i`` of ``W`` is 0;
- ``"merge"`` (classes ``i, j``): rows ``i`` and ``j`` of ``W`` are equal.

Each is a linear constraint ``Z in V`` on ``Z = W H`` (at a minimiser, rows of ``W`` are
equal or zero exactly when those rows of ``Z`` are; docs/thresholds.md section 1). The test
used at every ``mu`` is the optimality condition of the convex relaxation, not a tolerance on
distances: with ``(W', H, b)`` the minimiser of ``F`` under the constraint (rows tied or
removed), the property holds at ``mu`` iff that point, lifted, is a global minimiser of ``F``,
iff ``kkt(mu) = max(tau, rho_perp - 1) <= 0`` where ``tau`` is the relative gradient of ``F``
there (first-order stationarity off the constraint) and ``rho_perp`` the spectral norm of
the loss gradient off the minimiser's singular subspaces over ``mu`` (docs/thresholds.md
section 3). Where the property holds the statistic sits at the solve's noise (measured
1e-16 to 1e-12; the test is ``<= KKT_TOL = 1e-9``); below ``mu*`` it grows linearly, about
``mu*/mu - 1`` (2e-7 to 4e-7 at a relative distance 5e-7), while the rows only part like
``sqrt(mu* - mu)`` and ``F`` drops like ``(mu* - mu)^2`` (1e-14 there: below what a gap
can resolve).

:func:`threshold` bisects on that test, warm-starting every constrained solve from the
last, to a relative width ``rtol``, and certifies both ends of the final bracket:

- ``hi`` (property holds): the constrained minimiser, lifted to ``(W, H, b)``, has the
  property exactly (tied or zero rows), :func:`ufm.certify` proves it globally optimal
  (``rel_gap <= cert_tol``, 1e-6 by default as everywhere in ufm; measured ~1e-15 there)
  and its statistic is ``<= KKT_TOL``;
- ``lo`` (property fails): the statistic is ``> KKT_TOL``, and an unconstrained solve (from
  the constrained point nudged, and from random starts; the best is kept) is certified
  globally optimal, is not above the constrained minimum, and has its rows apart by more
  than ``TRIVIAL_FLOOR = 1e-5  # sqrt(||W|| ||H||) of a solve that counts as away from W = H = 0
DIST_FLOOR = 1e-6`` (relative; the solves resolve rows to ~1e-11).

``mu`` never depends on ``lam_W / lam_H`` (``F``'s minimum depends on the product only
through the convex relaxation; a ratio ``r = lam_W/lam_H`` rescales ``W`` by ``r^{-1/4}``
and ``H`` by ``r^{1/4}``): the ratio only sets the ``(lam_W, lam_H) = (mu sqrt r, mu/sqrt r)``
of the certified solves.

The trivial threshold has a closed form for every design
(:func:`ufm.theory.trivial_threshold`), and so has the merge of two exchangeable classes
(:func:`ufm.theory.merge_threshold`, docs/thresholds.md section 4); ``threshold`` uses them
(method ``"closed-form"``) and certifies the ends ``mu_c (1 -+ rtol/2)`` the same way.
``method="bisection"`` ignores them: for trivial it bisects with the unconstrained solver
alone (a solve below the trivial value, or away from 0), independent of the closed form.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .designs import LabelDesign, format_design
from .exceptions import UFMError
from .problem import UFMProblem


def _solve(problem: UFMProblem, method: str, x0: Any = None, **options: Any) -> Any:
    """``ufm.solve``, but Ctrl-C stops the bisection: a solver answers Ctrl-C by returning its
    last iterate (status INTERRUPTED), right for one solve, wrong for a bracket built from it
    (an interrupted run had gone on and printed CERTIFIED, exit 0)."""
    from .result import Status
    from .solvers import solve

    res = solve(problem, method, x0, **options)
    if res.status == Status.INTERRUPTED:
        raise KeyboardInterrupt
    return res

KINDS = ("merge", "vanish", "trivial")
METHODS = ("auto", "closed-form", "bisection")
CERT_TOL = 1e-6  # certified relative gap required at each end of a bracket (the package's CERTIFIED_GAP)
KKT_TOL = 1e-9  # the optimality test of the constrained minimiser: holds iff its statistic <= this
TRIVIAL_FLOOR = 1e-5  # sqrt(||W|| ||H||) of a solve that counts as away from W = H = 0
DIST_FLOOR = 1e-6  # rows apart (relative) at the lower end: above the solver's resolution (~1e-11)


@dataclass
class ThresholdResult:
    """A threshold ``mu*`` and a certified bracket ``lo < mu* <= hi``.

    Attributes
    ----------
    kind : {"merge", "vanish", "trivial"}
    mu : float
        The estimate: the closed form (method "closed-form") or the bracket's midpoint.
    bracket : (float, float)
        ``(lo, hi)``: the property fails at ``lo`` and holds at ``hi``, ``(hi - lo)/hi <= rtol``.
    certified : bool
        Both ends carry a certified global minimiser (``details["lo"]``, ``details["hi"]``).
    method : {"closed-form", "bisection"}
    classes : tuple of int
        ``(i, j)`` for merge, ``(i,)`` for vanish, ``()`` for trivial.
    closed_form : float or None
        The closed-form value where one exists (trivial; merge of exchangeable classes), else None.
    details : dict
        ``lo`` / ``hi``: per end ``mu``, ``holds``, ``kkt`` (the statistic of the test), ``F``,
        ``rel_gap`` (certified), ``distance`` (rows apart, relative to the largest row norm;
        ``||W||_F`` for trivial), ``certified`` and ``reason``; ``steps`` (bisection steps),
        ``solves``, ``seconds``, ``d``, ``lam_ratio``, ``lam_b``, ``bias``, ``design``.
    """

    kind: str
    mu: float
    bracket: tuple[float, float]
    certified: bool
    method: str
    classes: tuple[int, ...] = ()
    closed_form: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bracket"] = list(self.bracket)
        out["classes"] = list(self.classes)
        return out


# -- the constrained problem: Z in V, W = E W' ---------------------------------------------
class _Tied:
    """``F`` restricted to ``W = E W'`` (rows tied or removed), one feature per label set.

    Variables (scaled so that every block has the plain penalty ``lam/2 ||.||^2``):
    ``V = C^{1/2} W'`` (K' x w, ``C = E^T E`` the number of rows each row of ``W'``
    stands for), ``U = H_g D^{1/2}`` (w x G), ``b``. ``E~ = E C^{-1/2}`` has orthonormal
    columns, so ``W = E~ V`` and ``||W||_F = ||V||_F``.
    """

    def __init__(self, design: LabelDesign, kind: str, classes: tuple[int, ...], lam_b: float,
                 bias: bool, width: int) -> None:
        K = design.K
        if kind == "merge":
            i, j = classes
            keep = [k for k in range(K) if k != j]
            E = np.zeros((K, len(keep)))
            for col, k in enumerate(keep):
                E[k, col] = 1.0
            E[j, keep.index(i)] = 1.0
        elif kind == "vanish":
            keep = [k for k in range(K) if k != classes[0]]
            E = np.eye(K)[:, keep]
        else:
            E = np.zeros((K, 0))
        self.Et = E / np.sqrt(np.maximum(E.sum(axis=0), 1.0))
        self.design, self.lam_b, self.bias, self.w = design, lam_b, bias, width
        self.Kp = E.shape[1]
        self.n = design.group_counts.astype(np.float64)
        self.sqn = np.sqrt(self.n)
        self.m = design.group_multiplicity.astype(np.float64)
        self.Yg = design.Yg

    def sizes(self) -> tuple[int, int, int]:
        return self.Kp * self.w, self.w * self.design.G, (self.design.K if self.bias else 0)

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, c, _ = self.sizes()
        V = x[:a].reshape(self.Kp, self.w)
        U = x[a:a + c].reshape(self.w, self.design.G)
        b = x[a + c:] if self.bias else np.zeros(self.design.K)
        return V, U, b

    def logits(self, x: np.ndarray) -> np.ndarray:
        V, U, b = self.unpack(x)
        return self.Et @ V @ (U / self.sqn) + b[:, None]

    def fg(self, x: np.ndarray, lam_W: float, lam_H: float) -> tuple[float, np.ndarray]:
        V, U, b = self.unpack(x)
        X = self.Et @ V @ (U / self.sqn) + b[:, None]
        mx = X.max(axis=0)
        E = np.exp(X - mx)
        s = E.sum(axis=0)
        lse = np.log(s) + mx
        P = E / s
        N = self.design.N
        loss = float(self.n @ (self.m * lse - np.einsum("kg,kg->g", self.Yg, X))) / N
        Gm = (P * self.m - self.Yg) * (self.n / N)  # dF/dX, (K, G)
        f = loss + 0.5 * lam_W * float(np.vdot(V, V)) + 0.5 * lam_H * float(np.vdot(U, U))
        EG = self.Et.T @ Gm  # (K', G)
        gV = EG @ (U / self.sqn).T + lam_W * V
        gU = V.T @ (EG / self.sqn) + lam_H * U
        parts = [gV.ravel(), gU.ravel()]
        if self.bias:
            f += 0.5 * self.lam_b * float(b @ b)
            parts.append(Gm.sum(axis=1) + self.lam_b * b)
        return f, np.concatenate(parts)

    def start(self, rng: np.random.Generator) -> np.ndarray:
        from .theory import trivial_bias

        a, c, _ = self.sizes()
        b0 = trivial_bias(self.design, self.lam_b, self.bias) if self.bias else np.zeros(0)
        b0 = np.where(np.isfinite(b0), b0, -30.0)
        return np.concatenate([0.1 * rng.standard_normal(a + c), b0])

    def trivial_x(self) -> np.ndarray:
        """``W' = 0, H = 0, b = b0``: the global minimiser for every ``mu >= mu0`` (section 2)."""
        x = self.start(np.random.default_rng(0))
        a, c, _ = self.sizes()
        x[:a + c] = 0.0
        return x

    def solve(self, x0: np.ndarray, lam_W: float, lam_H: float) -> tuple[np.ndarray, float, float]:
        """Minimise from ``x0``: L-BFGS-B, then Newton-CG on a finite-difference Hessian."""
        from scipy.optimize import minimize

        fun = lambda x: self.fg(x, lam_W, lam_H)  # noqa: E731
        res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": 20000, "maxcor": 30, "gtol": 1e-13, "ftol": 0.0})
        x = res.x
        f, g = fun(x)
        gn = float(np.linalg.norm(g))
        for _ in range(30):  # Newton-CG polish: the bisection's test needs the minimiser, not only F
            if gn <= 1e-14 * max(1.0, abs(f)):
                break
            h = 1e-5 * max(1.0, float(np.linalg.norm(x)))

            def hessp(v: np.ndarray, x=x, h=h) -> np.ndarray:  # central differences of the gradient
                nv = float(np.linalg.norm(v))
                if nv == 0.0:
                    return np.zeros_like(v)
                u = (h / nv) * v
                return (fun(x + u)[1] - fun(x - u)[1]) * (nv / (2 * h))

            step = _cg(hessp, -g, tol=1e-6)
            t, accepted = 1.0, False
            while t > 1e-6:
                fn, gnew = fun(x + t * step)
                gnn = float(np.linalg.norm(gnew))
                # sufficient decrease, or (at float64 resolution of F) a smaller gradient
                if fn <= f + 1e-4 * t * float(g @ step) or (fn <= f + 1e-14 * abs(f) and gnn < gn):
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                break
            x, f, g, gn = x + t * step, fn, gnew, gnn
        return x, f, float(np.linalg.norm(g))

    def best(self, x_warm: np.ndarray | None, mu: float, lam_ratio: float, rng: np.random.Generator,
             *, fresh: bool = False) -> tuple[np.ndarray, float, int]:
        """The constrained minimiser at ``mu``: from ``x_warm`` nudged off any saddle (rows that
        are exactly 0 stay 0 under the gradient: at ``W' = 0`` the factorisation has a saddle),
        and from a fresh random start too when ``fresh``; the lowest ``F`` wins.
        Returns ``(x, kkt statistic, solves)``."""
        lam_W, lam_H = _lams(mu, lam_ratio)
        starts = []
        if x_warm is not None:
            a, c, _ = self.sizes()
            nudge = np.zeros_like(x_warm)
            nudge[:a + c] = 1e-2 * rng.standard_normal(a + c) * max(1.0, float(np.abs(x_warm[:a + c]).max()))
            starts.append(x_warm + nudge)
        if fresh or x_warm is None:
            starts.append(self.start(rng))
        best_x, best_f = None, math.inf
        for x0 in starts:
            x, f, _ = self.solve(x0, lam_W, lam_H)
            if f < best_f:
                best_x, best_f = x, f
        assert best_x is not None
        return best_x, self.kkt(best_x, mu, lam_W), len(starts)

    def decide(self, x_warm: np.ndarray | None, mu: float, lam_ratio: float,
               rng: np.random.Generator) -> tuple[np.ndarray, bool, int]:
        """Does the property hold at ``mu``? A "fails" answer is checked from a fresh start."""
        x, stat, n = self.best(x_warm, mu, lam_ratio, rng)
        if stat > KKT_TOL:
            x2, stat2, n2 = self.best(None, mu, lam_ratio, rng, fresh=True)
            n += n2
            lam_W, lam_H = _lams(mu, lam_ratio)
            if self.fg(x2, lam_W, lam_H)[0] < self.fg(x, lam_W, lam_H)[0]:
                x, stat = x2, stat2
        return x, stat <= KKT_TOL, n

    def kkt(self, x: np.ndarray, mu: float, lam_W: float) -> float:
        """The optimality test of the lifted point for the unconstrained problem, ``<= 0`` iff it holds.

        ``max(tau, rho_perp - 1)`` with (docs/thresholds.md section 3), in the weighted
        grouped form (``Gamma = grad L`` with columns scaled by ``sqrt(n_S)``, ``Z~ = W H_g D^{1/2}``
        with thin SVD ``U_z S V_z^T``):

        - ``tau = ||grad_W F|| / (lam_W ||W||_F)``: the lifted point is a critical point of ``F``
          (only the rows outside the constraint can carry a gradient);
        - ``rho_perp = ||Gamma + mu U_z V_z^T||_2 / mu``: no direction leaves the constraint
          downhill (the subgradient condition of the nuclear norm).

        Both are 0 up to the solve's accuracy where the property holds, and grow linearly in
        ``mu* - mu`` below the threshold. For trivial, ``||Gamma||_2 / mu - 1``.
        """
        V, U, b = self.unpack(x)
        X = self.Et @ V @ (U / self.sqn) + b[:, None]
        P = np.exp(X - X.max(axis=0))
        P /= P.sum(axis=0)
        Gam = (P * self.m - self.Yg) * self.sqn / self.design.N
        if self.Kp == 0:
            return _spec(Gam) / mu - 1.0
        W = self.Et @ V
        Zt = W @ U
        Uz, sv, Vzt = np.linalg.svd(Zt, full_matrices=False)
        r = int(np.sum(sv > 1e-9 * sv[0])) if sv.size and sv[0] > 0 else 0
        gW = Gam @ U.T + lam_W * W
        nW = float(np.linalg.norm(W))
        tau = float(np.linalg.norm(gW)) / (lam_W * nW) if nW > 0 else 0.0
        rho_perp = _spec(Gam + mu * Uz[:, :r] @ Vzt[:r]) / mu
        return max(tau, rho_perp - 1.0)

    def lift(self, x: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(W, H, b)`` of the full problem (``d`` columns, samples in canonical order)."""
        V, U, b = self.unpack(x)
        K, w = self.design.K, self.w
        W = np.zeros((K, d))
        W[:, :w] = self.Et @ V
        Hg = np.zeros((d, self.design.G))
        Hg[:w] = U / self.sqn
        return W, Hg[:, self.design.group_index], b.copy()


def _cg(hessp: Any, rhs: np.ndarray, tol: float, max_iter: int = 200) -> np.ndarray:
    """Conjugate gradients for ``H s = rhs``, stopped at negative curvature (then the last iterate)."""
    s = np.zeros_like(rhs)
    r = rhs.copy()
    p = r.copy()
    rr = float(r @ r)
    r0 = math.sqrt(rr)
    for _ in range(max_iter):
        Hp = hessp(p)
        pHp = float(p @ Hp)
        if pHp <= 1e-30 * float(p @ p):
            return s if s.any() else rhs
        a = rr / pHp
        s += a * p
        r -= a * Hp
        rr_new = float(r @ r)
        if math.sqrt(rr_new) <= tol * r0:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return s


def _spec(M: np.ndarray) -> float:
    A = M @ M.T if M.shape[0] <= M.shape[1] else M.T @ M
    return float(np.sqrt(max(float(np.linalg.eigvalsh(A)[-1]), 0.0)))


# -- measurements on a full (W, H, b) ------------------------------------------------------
def _distance(kind: str, classes: tuple[int, ...], W: np.ndarray) -> float:
    """How far ``W`` is from the property: rows apart (merge), the row's norm (vanish),
    both relative to the largest row norm; ``||W||_F`` (trivial)."""
    if kind == "trivial":
        return float(np.linalg.norm(W))
    scale = float(np.max(np.linalg.norm(W, axis=1)))
    if scale == 0.0:
        return 0.0
    if kind == "merge":
        return float(np.linalg.norm(W[classes[0]] - W[classes[1]])) / scale
    return float(np.linalg.norm(W[classes[0]])) / scale


def _lams(mu: float, lam_ratio: float) -> tuple[float, float]:
    r = math.sqrt(lam_ratio)
    return mu * r, mu / r


def _check(kind: str, design: Any, classes: Any, lam_ratio: float, lam_b: float, d: int | None,
           rtol: float, method: str) -> tuple[tuple[int, ...], int]:
    if kind not in KINDS:
        raise UFMError(f"unknown threshold kind {kind!r}; choose one of {', '.join(KINDS)}.")
    if not isinstance(design, LabelDesign):
        raise UFMError("threshold needs a LabelDesign (ufm.designs.parse_design('0=12,1=12,2=1'), "
                       f"ufm.balanced, ...); got {type(design).__name__}.")
    if method not in METHODS:
        raise UFMError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    need = {"merge": 2, "vanish": 1, "trivial": 0}[kind]
    cls = tuple(int(c) for c in (classes or ()))
    if len(cls) != need:
        what = {2: "two classes i,j (--classes i,j)", 1: "one class i (--classes i)", 0: "no classes"}[need]
        raise UFMError(f"threshold {kind} takes {what}; got {list(cls)}.")
    if any(not 0 <= c < design.K for c in cls) or len(set(cls)) != len(cls):
        raise UFMError(f"--classes must be distinct classes in 0..{design.K - 1}; got {list(cls)}.")
    if not (math.isfinite(lam_ratio) and lam_ratio > 0):
        raise UFMError(f"lam_ratio = lam_W/lam_H must be > 0; got {lam_ratio!r}.")
    if not (math.isfinite(lam_b) and lam_b >= 0):
        raise UFMError(f"lam_b must be >= 0; got {lam_b!r}.")
    if not (math.isfinite(rtol) and 1e-8 <= rtol < 1):  # below, the test's KKT_TOL decides the ends
        raise UFMError(f"rtol must be in [1e-8, 1) (the ends of a narrower bracket are within the "
                       f"optimality test's tolerance of each other); got {rtol!r}.")
    dd = design.K if d is None else d
    if not isinstance(dd, int) or dd < 1:
        raise UFMError(f"d must be an int >= 1; got {d!r}.")
    return cls, dd


# -- the certified ends --------------------------------------------------------------------
class _Ends:
    """Certified solves at the two ends of a bracket (shared by both methods)."""

    def __init__(self, design: LabelDesign, kind: str, classes: tuple[int, ...], d: int,
                 lam_ratio: float, lam_b: float, bias: bool, cert_tol: float, starts: int) -> None:
        self.design, self.kind, self.classes, self.d = design, kind, classes, d
        self.lam_ratio, self.lam_b, self.bias = lam_ratio, lam_b, bias
        self.cert_tol, self.starts = cert_tol, starts
        self.solves = 0

    def problem(self, mu: float) -> UFMProblem:
        lam_W, lam_H = _lams(mu, self.lam_ratio)
        return UFMProblem(self.design, self.d, lam_W, lam_H, self.lam_b, bias=self.bias)

    def holds_end(self, mu: float, W: np.ndarray, H: np.ndarray, b: np.ndarray, stat: float) -> dict:
        """The property holds at ``mu``: ``(W, H, b)`` has it exactly; certify it is global."""
        from .certificate import certify

        cert = certify(self.problem(mu), W, H, b if self.bias else None)
        ok = bool(cert.rel_gap <= self.cert_tol and stat <= KKT_TOL)
        reason = ("the point with the property is certified globally optimal" if ok else
                  f"certified gap {cert.rel_gap:.2e} (> {self.cert_tol:g}) or KKT statistic {stat:.3e} > {KKT_TOL:g}")
        return {"mu": mu, "holds": True, "kkt": stat, "F": cert.objective, "lower_bound": cert.lower_bound,
                "rel_gap": cert.rel_gap, "distance": _distance(self.kind, self.classes, W),
                "certified": ok, "reason": reason}

    def fails_end(self, mu: float, x0: tuple | None, F_prop: float, stat: float) -> dict:
        """The property fails at ``mu``: an unconstrained certified solve below ``F_prop``
        (the minimum with the property) whose rows are apart."""
        solve = _solve

        problem = self.problem(mu)
        rng = np.random.default_rng(12345)
        best = None
        tries: list[Any] = []
        if x0 is not None:
            W, H, b = x0
            tries.append((W + 1e-3 * rng.standard_normal(W.shape), H + 1e-3 * rng.standard_normal(H.shape), b))
        tries += [None] * self.starts
        for i, start in enumerate(tries):
            res = solve(problem, "lbfgs", start, rng=i)
            self.solves += 1
            if best is None or res.fun < best.fun:
                best = res
        assert best is not None
        gap = best.rel_gap if best.rel_gap is not None else float("inf")
        drop = F_prop - best.fun
        dist = _distance(self.kind, self.classes, best.W)
        # the decision is the KKT statistic of the constrained minimiser (first order in the
        # distance to the threshold); the certified unconstrained minimiser must agree: rows
        # apart beyond the solver's resolution, and not above the constrained minimum
        eps = 64 * np.finfo(float).eps * max(1.0, abs(F_prop))
        ok = bool(gap <= self.cert_tol and stat > KKT_TOL and drop > -eps and dist > DIST_FLOOR)
        reason = ("the constrained minimiser fails the optimality test and a certified global minimiser "
                  "lacks the property" if ok else
                  f"certified gap {gap:.2e}, KKT statistic {stat:.3e} (needs > {KKT_TOL:g}), distance "
                  f"{dist:.3e} (needs > {DIST_FLOOR:g}), F below the property's minimum by {drop:.3e}")
        return {"mu": mu, "holds": False, "kkt": stat, "F": best.fun, "lower_bound": best.lower_bound,
                "rel_gap": gap, "F_property": F_prop, "F_drop": drop, "distance": dist,
                "certified": ok, "reason": reason}


def threshold(kind: str, design: LabelDesign, *, classes: Any = None, lam_ratio: float = 1.0,
              lam_b: float = 0.0, bias: bool = True, d: int | None = None, rtol: float = 1e-6,
              method: str = "auto", cert_tol: float = CERT_TOL, starts: int = 2) -> ThresholdResult:
    """The threshold ``mu*`` of ``kind`` on ``design``, with a certified bracket.

    Parameters
    ----------
    kind : {"merge", "vanish", "trivial"}
        ``merge``: rows ``i, j`` of ``W`` become equal; ``vanish``: row ``i`` becomes 0;
        ``trivial``: ``W = 0, H = 0``. Each holds for ``mu >= mu*`` (and fails just below).
    design : LabelDesign
        Any design (:func:`ufm.designs.parse_design`, :func:`ufm.balanced`, ...).
    classes : sequence of int
        ``(i, j)`` for merge, ``(i,)`` for vanish, nothing for trivial.
    lam_ratio : float, default 1
        ``r = lam_W / lam_H`` of the solves: ``lam_W = mu sqrt(r)``, ``lam_H = mu / sqrt(r)``
        (``mu = sqrt(lam_W lam_H)``); the threshold does not depend on it.
    lam_b : float, default 0
        Bias decay (0 with ``bias=True``: a free bias).
    bias : bool, default True
    d : int, optional
        Feature dimension of the certified solves (default K; the relaxation is tight there).
    rtol : float, default 1e-6
        Relative width ``(hi - lo) / hi`` of the final bracket, in ``[1e-8, 1)`` (the test
        statistic is about ``mu*/mu - 1`` and is decided against ``KKT_TOL = 1e-9``).
    method : {"auto", "closed-form", "bisection"}
        "auto": the closed form where there is one (trivial; merge of two exchangeable
        classes, :func:`ufm.theory.merge_threshold`), else bisection.
    cert_tol : float, default 1e-6
        Certified relative gap required of the solve at each end.
    starts : int, default 2
        Random starts of the unconstrained solve at the lower end (besides a warm start).

    Returns
    -------
    ThresholdResult

    Raises
    ------
    UFMError
        Unknown kind or method, wrong classes, bad numbers, or (merge, vanish) no bracket
        found (the property holds down to ``mu0 * 2**-40``).

    Examples
    --------
    >>> from ufm.designs import parse_design
    >>> r = threshold("trivial", parse_design("0=4,1=4,2=1"))
    >>> r.method, r.certified, r.bracket[0] < r.mu <= r.bracket[1]
    ('closed-form', True, True)
    """
    from .theory import exchangeable, merge_threshold, trivial_threshold

    t0 = time.perf_counter()
    cls, dd = _check(kind, design, classes, lam_ratio, lam_b, d, rtol, method)
    closed: float | None = None
    mu0 = trivial_threshold(design, lam_b, bias)
    if kind == "trivial":
        closed = mu0
    elif kind == "merge" and exchangeable(design, *cls):
        closed = merge_threshold(design, *cls)
    if method == "closed-form" and closed is None:
        raise UFMError(f"no closed form for this {kind} threshold is known (docs/thresholds.md "
                       "sections 2, 4, 6: trivial, and merge of exchangeable classes); use method "
                       "'bisection' or 'auto'.")
    ends = _Ends(design, kind, cls, dd, lam_ratio, lam_b, bias, cert_tol, starts)
    tied = _Tied(design, kind, cls, lam_b, bias, width=min(dd, max(design.K - 1, 1) + 1))
    rng = np.random.default_rng(0)
    use_closed = closed is not None and method in ("auto", "closed-form")
    info: dict[str, Any] = {"steps": 0}
    if use_closed:
        assert closed is not None
        lo, hi = closed * (1 - rtol / 2), closed * (1 + rtol / 2)
        x_hi, x_lo_warm = None, None
        mu_est = closed
    elif kind == "trivial":
        lo, hi = _bisect_trivial(ends, tied, mu0, rtol, info)
        x_hi, x_lo_warm = None, None
        mu_est = 0.5 * (lo + hi)
    else:
        lo, hi, x_hi, x_lo_warm = _bisect_kkt(ends, tied, mu0, rtol, lam_ratio, rng, info)
        mu_est = 0.5 * (lo + hi)
    # certify the ends
    if hi >= mu0:  # the trivial point has every property and is the minimiser (section 2)
        x_hi, n_hi = tied.trivial_x(), 0
        stat_hi = tied.kkt(x_hi, hi, _lams(hi, lam_ratio)[0])
    else:
        x_hi, stat_hi, n_hi = tied.best(x_hi, hi, lam_ratio, rng, fresh=True)
    W, H, b = tied.lift(x_hi, dd)
    hi_end = ends.holds_end(hi, W, H, b, stat_hi)
    x_lo, stat_lo, n_lo = tied.best(x_hi if x_lo_warm is None else x_lo_warm, lo, lam_ratio, rng, fresh=True)
    F_prop = float(tied.fg(x_lo, *_lams(lo, lam_ratio))[0])
    lo_end = ends.fails_end(lo, tied.lift(x_lo, dd), F_prop, stat_lo)
    ends.solves += n_hi + n_lo
    details = {"lo": lo_end, "hi": hi_end, **info, "solves": ends.solves + info.get("solves", 0),
               "seconds": time.perf_counter() - t0, "d": dd, "lam_ratio": lam_ratio, "lam_b": lam_b,
               "bias": bias, "design": format_design(design), "K": design.K, "trivial_threshold": mu0}
    return ThresholdResult(kind=kind, mu=mu_est, bracket=(lo, hi),
                           certified=bool(lo_end["certified"] and hi_end["certified"]),
                           method="closed-form" if use_closed else "bisection", classes=cls,
                           closed_form=closed, details=details)


def _bisect_kkt(ends: _Ends, tied: _Tied, mu0: float, rtol: float, lam_ratio: float,
                rng: np.random.Generator, info: dict) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Bisection on the optimality test of the constrained minimiser, warm-started along the way;
    the scan starts at the trivial threshold, where every property holds (Z = 0)."""
    hi = mu0 * (1 + rtol)  # just above the trivial threshold: Z = 0 is strictly optimal there
    x_hi, _, solves = tied.best(None, hi, lam_ratio, rng)
    lo, x_lo = None, None
    mu, x = hi, x_hi
    for _ in range(40):  # down by factors of 2 until the property fails
        mu /= 2
        x, holds, n = tied.decide(x, mu, lam_ratio, rng)
        solves += n
        if not holds:
            lo, x_lo = mu, x
            break
        hi, x_hi = mu, x
    if lo is None:
        raise UFMError(f"the {ends.kind} property holds down to mu = {mu:.3g} (the trivial threshold "
                       f"{mu0:.6g} times 2^-40): no threshold to bracket.")
    steps = 0
    while (hi - lo) / hi > rtol:
        mid = 0.5 * (lo + hi)
        if mid >= mu0:  # W = H = 0 is the minimiser there (the closed form of section 2): it holds
            x, holds, n = tied.trivial_x(), True, 0
        else:
            x, holds, n = tied.decide(x_lo, mid, lam_ratio, rng)
        solves += n
        steps += 1
        if holds:
            hi, x_hi = mid, x
        else:
            lo, x_lo = mid, x
    info.update(steps=steps, solves=solves)
    assert x_lo is not None  # set with lo, which the scan above found
    return lo, hi, x_hi, x_lo


def _bisect_trivial(ends: _Ends, tied: _Tied, mu0: float, rtol: float, info: dict) -> tuple[float, float]:
    """Bisection for ``W = H = 0`` with the unconstrained solver alone (independent of ``mu0``):
    the property fails at ``mu`` when a solve finds ``F`` below the trivial value."""
    from .objectives.full import objective
    solve = _solve

    def trivial_F(mu: float) -> float:
        p = ends.problem(mu)
        b = tied.unpack(tied.start(np.random.default_rng(0)))[2]
        return objective(p, np.zeros((p.K, p.d)), np.zeros((p.d, p.N)), b)

    solves = 0
    warm: tuple | None = None

    def fails(mu: float) -> bool:
        nonlocal solves, warm
        p = ends.problem(mu)
        Ft = trivial_F(mu)
        best, size = None, math.inf
        for i, x0 in enumerate([warm, None] if warm is not None else [None, None]):
            res = solve(p, "lbfgs", x0, rng=i, gtol=1e-14)  # near mu0 the curvature is ~ |mu0 - mu|
            solves += 1
            if best is None or res.fun < best.fun:
                best = res
            size = min(size, math.sqrt(float(np.linalg.norm(res.W)) * float(np.linalg.norm(res.H))))
        assert best is not None
        # not trivial: F below the trivial value beyond rounding, or every start ending away
        # from 0 (sqrt(||W|| ||H||), invariant to lam_W/lam_H, grows like sqrt(mu0 - mu): 8e-4 at
        # a relative 1e-7 below mu0, while above mu0 the solves end within 5e-8 of 0)
        below = Ft - best.fun > 64 * np.finfo(float).eps * max(1.0, abs(Ft)) or size > TRIVIAL_FLOOR
        if below:
            warm = (best.W, best.H, best.b)
        return bool(below)

    hi = 1.0  # the scan starts at 1, not at mu0 (the bracket must not lean on the closed form)
    while fails(hi):
        hi *= 2
        if hi > 2.0 ** 40:
            raise UFMError("a point below the trivial value is found for every mu: no bracket.")
    lo = hi / 2
    while not fails(lo):
        hi, lo = lo, lo / 2
        if lo < 2.0 ** -60:
            raise UFMError("no point below the trivial value found for any mu: no bracket.")
    steps = 0
    while (hi - lo) / hi > rtol:
        mid = 0.5 * (lo + hi)
        steps += 1
        if fails(mid):
            lo = mid
        else:
            hi = mid
    info.update(steps=steps, solves=solves)
    return lo, hi


__all__ = ["KINDS", "ThresholdResult", "threshold"]

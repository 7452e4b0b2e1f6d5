"""Solvers: each takes a :class:`~ufm.problem.UFMProblem` and options, returns a :class:`~ufm.result.Result`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import UFMError
from ..problem import UFMProblem
from ..result import Result
from .gradient import agd, gd
from .lbfgs import lbfgs
from .minibatch import adam, sgd
from .threads import blas_threads_for

METHODS: dict[str, Any] = {"gd": gd, "agd": agd, "lbfgs": lbfgs, "sgd": sgd, "adam": adam}
LAZY = {"convex": ("convex", "convex"), "network": ("..networks.train", "network")}  # loaded when asked for


def solve(
    problem: UFMProblem, method: str = "lbfgs", x0: np.ndarray | tuple | None = None, *,
    rng: np.random.Generator | int | None = None, fixed_W: Any = None, device: str | None = None,
    **options: Any,
) -> Result:
    """Minimise ``F(W, H, b)`` of ``problem`` (definitions: ``docs/theory.md``).

    Parameters
    ----------
    problem : UFMProblem
        Design, ``d``, ``lam_W``, ``lam_H``, ``lam_b``, bias on/off and loss.
    method : {"lbfgs", "gd", "agd", "convex", "sgd", "adam", "network"}, default "lbfgs"
        ``"gd"``: gradient descent with a fixed step (heavy ball with ``momentum``);
        ``"agd"``: accelerated gradient descent with backtracking and adaptive restart;
        ``"lbfgs"``: L-BFGS handing over to an exact-Hessian Newton-CG polish; ``"convex"``:
        the cvxpy relaxation ``min C`` (needs ``d >= rank`` of its minimiser to return a
        minimiser of ``F``); ``"sgd"``, ``"adam"``: minibatch training of the UFM
        (:mod:`ufm.solvers.minibatch`, options ``SGD_DEFAULTS`` / ``ADAM_DEFAULTS`` there:
        ``epochs``, ``batch_size``, ``lr``, ``lr_schedule``, ...); ``"network"``: an MLP on
        multi-label digits whose last layer is the UFM's ``(W, H, b)`` (:mod:`ufm.networks`).
        Small problems run on one BLAS thread (:mod:`ufm.solvers.threads`).
    x0 : ndarray of shape (K*d + d*N + K,) or tuple (W, H, b), optional
        Starting point of the iterative methods (refused by ``"convex"``). Default: a
        random start of scale ``init_scale`` drawn from ``rng``.
    rng : numpy.random.Generator or int, optional
        Seed of the random start (ignored by ``"convex"``).
    fixed_W : ndarray of shape (K, d) or str ``"etf[:SCALE]"``, optional
        Freezes the classifier: ``F`` is minimised over ``(H, b)`` only, a convex problem
        solved exactly by :func:`ufm.fixed.solve_fixed` whatever ``method`` says.
    device : {"cpu", "cuda"}, optional
        ``"cuda"``: L-BFGS on the grouped objective in a GPU array library (CuPy, PyTorch or
        JAX, :mod:`ufm.solvers.device`; method "lbfgs" only); ``"cpu"`` or None: this default path.
    **options
        Keyword options of the method; unknown names raise ``UFMError``.

        Options of ``"gd"`` (default) and ``"agd"`` (default):

        - ``step`` (0.1 / 1.0): the fixed step; for AGD the initial ``1/L`` of the backtracking.
        - ``max_iter`` (100000 / 50000): iteration limit (status ``MAX_ITER``).
        - ``gtol`` (1e-9 / 1e-10): stop when the gradient norm is at most this.
        - ``ftol`` (0, off / 1e-15): stop when the relative change of ``F`` in one step is at most
          this (status ``CONVERGED_FTOL``; AGD's gradient norm stalls at a rounding floor above
          ``gtol``, where ``F`` no longer changes).
        - ``history_every`` (1): record ``fun``, ``grad_norm``, ``step``, ``time`` every this many
          iterations (0: never); these cost nothing.
        - ``history_metrics`` (False): also record NC1, NC2_W, NC2_H, NC3 -- ``True`` at every
          row, ``"log"`` at iterations 0, 1, 2, 4, 8, ... and the last.
        - ``init_scale`` (0.1): scale of the random start.
        - ``progress`` (False): a tqdm progress bar.
        - ``callback`` (None): ``callback(it, x, f) -> stop?``; ``x`` is the working
          packed iterate (copy it to keep it).
        - ``h_scale`` (1.0): run on ``(W, H/s, b)``; the step on ``H`` is then ``s**2`` times larger.
        - ``momentum`` (0.0, ``"gd"`` only): heavy ball with PyTorch SGD semantics
          (``v = momentum v + g; x -= step v``), the public UFM code's optimiser.

        Options of ``"lbfgs"``:

        - ``max_iter`` (20000), ``gtol`` (1e-11), ``ftol`` (0), ``history_every`` (1),
          ``history_metrics`` (False), ``init_scale`` (0.1), ``progress`` (False),
          ``callback`` (None), ``h_scale`` (1.0): as above.
        - ``maxcor`` (None): correction pairs; None means 1 for the numpy engine, 20 for scipy's.
        - ``engine`` ("auto"): ``"numpy"`` (this package's lean L-BFGS), ``"scipy"``
          (L-BFGS-B), or ``"auto"``: numpy, then scipy from the same start if numpy does
          not converge (``result.extra["engines_tried"]``).
        - ``polish`` (True): finish with Newton-CG steps on the exact Hessian.
        - ``polish_from`` (1e-4): hand over from L-BFGS to the Newton-CG polish once the
          gradient norm is at most this (the polish then runs to ``gtol``; if it stops short,
          L-BFGS resumes to a ten times smaller hand-over).
        - ``precondition`` (None): ``"gn"`` uses a block-diagonal Gauss-Newton initial
          inverse Hessian in the numpy engine (fewer evaluations, not faster).
        - ``group`` ("auto"): optimise ``F`` restricted to one feature column per label set
          (exact: every critical point has this form; cheaper when sets repeat); "auto" does
          unless ``h_scale`` or ``precondition`` is given, False never does.
        - ``precision`` ("auto"): ``"mixed"`` runs the bulk in float32 L-BFGS, then the float64
          solve from its point (the answer is float64; ``extra["float32"]`` says what the float32
          phase did); ``"float64"`` never; "auto" takes the mixed route where it was measured
          to pay: PAL losses, grouped, no width reduction, ``K d G >= 2e8`` and no callback
          (:mod:`ufm.solvers.mixed`, docs/performance.md).

        Options of ``"convex"``:

        - ``formulation`` ("auto"): ``"variational"`` (one small PSD block per label set),
          ``"nuc"`` (cvxpy's nuclear norm), or the cheaper of the two.
        - ``solver`` ("auto"): ``"CLARABEL"``, ``"SCS"``, or Clarabel on small problems and SCS on large.
        - ``fallback`` (True): on failure or inaccuracy, try the other solver and keep the better.
        - ``verbose`` (False): print the solver's log.
        - ``rank_tol`` (1e-6): relative cut-off for the rank of the relaxation's minimiser.
        - ``solver_options`` (None): dict passed to the cvxpy solver over the package's tolerances.
        - ``polish`` (True): Newton-CG (then L-BFGS if needed) on ``F`` from the factored point.
        - ``project`` (None): work in the complement of ``1`` (PAL only); None: for Clarabel only.

        Each method's own docstring (``ufm.solvers.gd``, ``agd``, ``lbfgs``,
        ``ufm.solvers.convex.convex``) gives the details.

    Returns
    -------
    Result
        ``W`` (K, d), ``H`` (d, N), ``b`` (K,), ``fun`` (``F`` there), ``grad_norm``,
        ``status``, ``success``, ``nit``, ``nfev``, ``time``, ``history`` and ``extra``
        (method-specific; for ``"convex"``: ``value`` = ``min C``, ``lower_bound``, ``rank``),
        and the dual certificate of the returned point: ``lower_bound`` ``D <= min F``,
        ``rel_gap`` ``(F - D)/|F|`` and ``certified`` (``rel_gap <= 1e-6``; None for a loss
        without a certificate). ``success`` says the solver converged; ``certified`` says the
        point is a global minimum (a saddle such as ``W = H = 0`` converges too).

    Raises
    ------
    UFMError
        An unknown method or option, an invalid option value, or ``x0`` with ``"convex"``.
    SolverError
        ``"convex"``: no cvxpy solver returned a solution.

    Examples
    --------
    >>> import ufm
    >>> p = ufm.UFMProblem(ufm.balanced(4, {1: 2, 2: 1}), d=4, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    >>> r = ufm.solve(p, "lbfgs", rng=0)
    >>> r.success, abs(r.fun / ufm.predict(p).value - 1) < 1e-9
    (True, True)
    >>> r.W.shape, r.H.shape, r.b.shape
    ((4, 4), (4, 14), (4,))
    """
    from ..problem import check_problem

    check_problem(problem, "solve")
    if not isinstance(method, str):
        raise TypeError(f"The 'method' argument of ufm.solve must be a name such as \"lbfgs\"; got "
                        f"{type(method).__name__}.")
    if device not in (None, "cpu"):
        from .device import solve_on_device

        if method != "lbfgs" or fixed_W is not None:
            raise UFMError(f"device={device!r} runs method 'lbfgs' without fixed_W; got method {method!r}.")
        return attach_certificate(problem, solve_on_device(problem, device, x0, rng=rng, **options))
    if fixed_W is not None:
        from ..fixed import solve_fixed

        return solve_fixed(problem, fixed_W, x0, **options)
    if method in LAZY and method not in METHODS:  # cvxpy, or the network module (imports ufm.solvers)
        from importlib import import_module

        module, name = LAZY[method]
        METHODS[method] = getattr(import_module(module if module.startswith("..") else f".{module}",
                                                __name__), name)
    if method not in METHODS:
        raise UFMError(f"Unknown method {method!r}; choose one of {sorted(set(METHODS) | set(LAZY))}.")
    with blas_threads_for(problem.K, problem.d, problem.N):  # one BLAS thread for small problems
        if method == "convex":
            if x0 is not None:
                raise UFMError("The convex relaxation takes no starting point; drop `x0` (or use 'lbfgs').")
            result = METHODS[method](problem, **options)
        else:
            result = METHODS[method](problem, x0, rng=rng, **options)
        return attach_certificate(problem, result)


def attach_certificate(problem: UFMProblem, result: Result) -> Result:
    """Fill ``result.lower_bound`` and ``result.rel_gap`` from :func:`ufm.certify` (PAL losses, finite points)."""
    from ..certificate import certify

    if problem.loss not in ("pal", "pal-normalized") or not np.all(np.isfinite(result.x)):
        return result
    try:
        cert = certify(problem, result.W, result.H, result.b if problem.bias else None)
    except (UFMError, np.linalg.LinAlgError, FloatingPointError, OverflowError):
        return result  # a point so large that F overflows (a diverged run): no certificate
    if np.isfinite(cert.lower_bound) and np.isfinite(cert.rel_gap):
        result.lower_bound, result.rel_gap = float(cert.lower_bound), float(cert.rel_gap)
        result.certificate = cert
    return result


__all__ = ["solve", "gd", "agd", "lbfgs", "sgd", "adam", "METHODS", "attach_certificate"]

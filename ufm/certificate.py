r"""A closed-form dual lower bound on ``min F`` and the certified gap of any candidate
(docs/theory.md section 5).

For every ``d``, ``F(W, H, b) >= C(W H, b)`` with the convex function

.. math::

    C(Z, b) = L(Z + b 1^T) + \mu \|Z\|_* + \frac{\lambda_b}{2}\|b\|^2,
    \qquad L(X) = \frac1N \sum_i w_i\,\ell(x_i; y_i), \quad \mu = \sqrt{\lambda_W\lambda_H},

and for every ``Gamma`` (K, N) with spectral norm ``||Gamma||_2 <= mu``

.. math::

    D(\Gamma) = -L^*(\Gamma) - \frac{\|\Gamma 1\|^2}{2\lambda_b} \;\le\; \min C \;\le\; \min F,
    \qquad L^*(\Gamma) = \frac1N \sum_i w_i m_i \sum_j q_{ij}\log q_{ij},
    \quad q_i = \frac{N \gamma_i / w_i + y_i}{m_i}

where

- ``w_i = 1`` for PAL and ``1/m_i`` for normalised PAL; ``m_i = |S_i|``, ``y_i`` (K,) 0/1;
- ``L*`` is finite only when every ``q_i`` lies in the probability simplex;
- without a bias the term in ``lam_b`` is absent; with a free bias and ``lam_b = 0`` it is
  replaced by the constraint ``Gamma 1 = 0``.

(This is the sign convention of docs/theory.md, section 5; some texts write ``-L*(-Gamma)``
with the opposite sign of ``Gamma``; norms are unchanged.)

**The dual point.** Every feasible ``Gamma`` has the form ``gamma_i = (w_i m_i / N)(pi_i - y_i/m_i)``
with ``pi_i`` in the simplex (then ``q_i = pi_i``). From a candidate's logits
``X = W H + b 1^T`` we take ``pi_i = softmax(x_i)`` -- i.e. ``Gamma = grad L(X)``, the
optimal dual point at a global minimiser -- and improve it three ways, each of which can
only raise the bound:

1. *Grouping.* ``pi_i`` is replaced by its mean over the samples of the same label set.
   The conjugate terms of a label set are one convex function, so by Jensen ``-L*`` does
   not decrease; averaging is an orthogonal projection, so ``||Gamma||_2`` does not grow;
   ``Gamma 1`` is unchanged. Everything after one pass over the logits is on ``K x G``
   arrays (``G`` label sets): the spectral norm is the largest singular value of
   ``Gamma_g D^{1/2}``, ``D = diag(n_S)`` (through its ``K x K`` Gram matrix).
2. *Free bias, ``lam_b = 0``.* The group means are exponentially tilted,
   ``pi_S propto pibar_S * exp(beta)``, with ``beta`` (K,) found by Newton's method so that
   ``Gamma 1 = 0`` (to float64 rounding; classes in no label set get ``pi = 0``). At a
   minimiser ``beta = 0``.
3. *Spectrum.* At a minimiser ``Gamma = -mu U V^T`` on the singular pairs of ``Z``. Near
   one, scaling alone leaves a gap of first order in the distance; snapping the large
   singular values of ``Gamma`` to ``mu`` and projecting back onto the simplex (a few
   alternations) makes it second order.
4. *Scaling.* ``q = y/m + t (pi - y/m)`` with the largest ``t <= 1`` keeping
   ``||Gamma||_2 <= mu`` and ``q`` in the simplex, or the maximiser of the concave ``D``
   below it.

Every candidate is exactly feasible (up to float64 rounding), so the best of them is a
valid bound.

The certified gap ``F - D >= 0`` vanishes at a global minimiser, whatever ``d``; it is
small exactly when the candidate is globally optimal *and* the convex relaxation is tight
at this ``d`` (``d >= rank`` of a minimiser of ``C``). Cost: one product ``W H``, one
softmax pass over the ``K x N`` logits, then ``O(K G)`` work and a few products with the
``K x K`` Gram matrix of ``Gamma_g D^{1/2}`` (its eigendecomposition gives the spectral
norm and the snapped spectrum; a full SVD of the ``K x G`` matrix cost 0.54 s each at
``K = 200``, ``G = 20100``, the Gram route 0.05 s). Measured (``python -m
benchmarks.certificate_cost``, medians side by side, one BLAS thread): 11x one
objective-and-gradient evaluation at K = 200, N = 21900, G = 20100 (was 30x with SVDs);
1-3x at K = 50, N = 21225.
"""

from __future__ import annotations

import numpy as np

from .certificate_dual import (  # noqa: F401  (re-exported for tests and callers)
    Certificate,
    _best_on_segment,
    _group_starts,
    _group_weights,
    _project_simplex,
    _snap_spectrum,
    _spectral_norm,
    _tilt,
    dual_bound,
    loss_and_group_softmax,
)
from .exceptions import UFMError
from .objectives.layout import _check_shapes
from .problem import UFMProblem, real_array


def lower_bound_from_logits(problem: UFMProblem, X: np.ndarray) -> tuple[float, float]:
    """Certified lower bound ``D <= min C <= min F`` from logits ``X`` (K, N) or grouped (K, G).

    Returns ``(D, t)``. Used for the convex relaxation's solution, whose logits
    ``Z + b 1^T`` come one column per label set.
    """
    _group_weights(problem)  # clear error for losses without a conjugate
    _, Pbar = loss_and_group_softmax(problem, X)
    return dual_bound(problem, Pbar)


def convex_value(problem: UFMProblem, Z: np.ndarray, b: np.ndarray | None = None) -> float:
    r"""The convex function ``C(Z, b)`` (docs/theory.md section 5) at ``Z`` (K, N) or grouped (K, G).

    With grouped columns ``Z_g`` the nuclear norm is ``||Z_g D^{1/2}||_*``, ``D = diag(n_S)``
    (the nuclear norm of ``Z_g`` with each column repeated ``n_S`` times).
    """
    design = problem.design
    Z = np.asarray(Z, dtype=np.float64)
    b = np.zeros(problem.K) if (b is None or not problem.bias) else np.asarray(b, dtype=np.float64)
    X = Z + b[:, None]
    if problem.loss == "bce":
        from .losses import bce

        grouped = Z.shape == (problem.K, design.G)
        Yx = design.Yg if grouped else design.Y
        L, _ = bce(X, Yx, design.group_multiplicity if grouped else design.m)  # mean over columns
        if grouped:  # weight each column by n_S
            n = design.group_counts.astype(np.float64)
            L = float((n @ (np.logaddexp(0.0, X).sum(axis=0) - (design.Yg * X).sum(axis=0))) / problem.N)
    else:
        L, _ = loss_and_group_softmax(problem, X)
    # singular values by the SVD, not as square roots of the Gram matrix's eigenvalues: those
    # put ~sqrt(u) ||Z||_2 (1e-8 relative) on every zero singular value of a low-rank Z
    Zs = Z * np.sqrt(design.group_counts) if Z.shape == (problem.K, design.G) else Z
    nuc = float(np.linalg.svd(Zs, compute_uv=False).sum())
    return L + problem.mu * nuc + 0.5 * problem.lam_b * float(b @ b)


def certify(
    problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None, *,
    rigorous: bool = False, device: str | None = None,
) -> Certificate:
    """Certified lower bound and gap for the candidate ``(W, H, b)`` of ``problem``.

    With ``rigorous=True`` the bracket is proved with bounded rounding errors
    (:func:`ufm.certificate_rigorous.certify_rigorous`, a :class:`RigorousCertificate`):
    ``lower_bound <= min F <= objective`` holds for the exact real numbers.

    Works for a candidate from any source (a solver, a file, a trained network's last
    layer and features in the canonical sample order of ``problem.design``), any ``d``,
    with ``lam_b > 0``, without bias, and with a free bias at ``lam_b = 0``.

    Parameters
    ----------
    problem : UFMProblem
        With ``loss`` "pal" or "pal-normalized".
    W : ndarray, shape (K, d)
    H : ndarray, shape (d, N)
    b : ndarray, shape (K,), optional
        Ignored (``b = 0``) when ``problem.bias`` is False.
    device : {"cpu", "cuda"}, optional
        ``"cuda"``: the pass over the ``K x N`` logits (their softmax and loss) runs on a GPU
        array library (:func:`ufm.xp.devices.namespace`: CuPy, PyTorch or JAX; a one-line
        error when there is none) through :func:`certify_xp`; only the ``(K, G)`` label-set
        sums come back for the dual point (numpy, float64). ``"cpu"`` or None: this numpy path.
        Not with ``rigorous``.

    Returns
    -------
    Certificate
        ``lower_bound`` (``D <= min F``), ``objective`` (``F``), ``gap`` (``F - D``,
        absolute), ``rel_gap`` (``(F - D)/|F|``) and ``t``; see ``docs/theory.md``, section 5.

    Raises
    ------
    UFMError
        Loss "bce" (no closed-form conjugate), wrong shapes, or non-finite entries.

    Examples
    --------
    >>> import ufm
    >>> p = ufm.UFMProblem(ufm.balanced(4, {1: 2, 2: 1}), d=4, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    >>> c = certify(p, *ufm.predicted_minimizer(p))
    >>> round(c.lower_bound, 10), abs(c.rel_gap) < 1e-12    # gap 0 up to float64 rounding
    (0.7558844311, True)
    """
    from .problem import check_problem

    check_problem(problem, "certify")
    if device is not None and device != "cpu":
        from .xp.devices import namespace

        if rigorous:
            raise UFMError(f"rigorous=True bounds numpy's rounding on the CPU; it takes no device "
                           f"(got device={device!r}): drop one of them.")
        xp, dev = namespace(device)  # an unknown name, or no GPU library: one line, before any work
        return certify_xp(problem, W, H, b, xp, device=dev)
    if rigorous:
        from .certificate_rigorous import certify_rigorous

        return certify_rigorous(problem, W, H, b)
    W, H, b = _checked(problem, W, H, b)
    with np.errstate(over="ignore", invalid="ignore"):
        X = W @ H  # (K, N)
        X += b[:, None]
        L, Pbar = loss_and_group_softmax(problem, X)
    return _certificate(problem, W, H, b, L, Pbar)


def certify_xp(problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None, xp: object,
               device: object = None) -> Certificate:
    """:func:`certify` with the pass over the ``K x N`` logits in array namespace ``xp`` on
    ``device`` (:func:`ufm.xp.certificate.loss_and_group_softmax_xp`: numpy through
    ``array_api_compat.numpy``, ``array_api_strict``, ``jax.numpy``, CuPy, PyTorch); ``W``,
    ``H``, ``b`` are checked as numpy arrays and copied to the device; the ridge terms and the
    dual point are the numpy path's. Agrees with :func:`certify` to float64 rounding."""
    from .problem import check_problem
    from .xp.certificate import loss_and_group_softmax_xp

    check_problem(problem, "certify")
    W, H, b = _checked(problem, W, H, b)
    with np.errstate(over="ignore", invalid="ignore"):
        L, Pbar = loss_and_group_softmax_xp(problem, xp, W, H, b, device=device)
    return _certificate(problem, W, H, b, L, Pbar)


def _checked(problem: UFMProblem, W: object, H: object, b: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(W, H, b)`` as float64 arrays of the right shapes, finite (else a clear UFMError)."""
    _group_weights(problem)
    W = real_array("W", W, "certify")
    H = real_array("H", H, "certify")
    b = np.zeros(problem.K) if (b is None or not problem.bias) else real_array("b", b, "certify")
    _check_shapes(problem, W, H, b)
    for name, arr in (("W", W), ("H", H), ("b", b)):
        if not np.all(np.isfinite(arr)):
            raise UFMError(f"'{name}' contains non-finite values; no bound can be certified.")
    return W, H, b


def _certificate(problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray, L: float,
                 Pbar: np.ndarray) -> Certificate:
    """The certificate from the loss ``L`` and the label sets' mean softmax ``Pbar`` at ``(W, H, b)``."""
    with np.errstate(over="ignore"):  # sums of squares of finite numbers: inf at worst, never nan
        F = (L + 0.5 * problem.lam_W * float(np.vdot(W, W)) + 0.5 * problem.lam_H * float(np.vdot(H, H))
             + (0.5 * problem.lam_b * float(b @ b) if problem.bias else 0.0))
    if not (np.isfinite(F) and np.all(np.isfinite(Pbar))):
        raise UFMError(f"F overflows float64 at this point (max |W| = {float(np.max(np.abs(W))):.3g}, "
                       f"max |H| = {float(np.max(np.abs(H))):.3g}); no bound can be certified.")
    try:
        lower, t = dual_bound(problem, Pbar)
    except np.linalg.LinAlgError as exc:  # not seen on finite inputs of sane size (tested by a stub)
        raise UFMError(f"the dual bound could not be evaluated here ({exc}).") from None
    gap = F - lower
    return Certificate(lower_bound=lower, objective=F, gap=gap, rel_gap=gap / max(abs(F), 1e-300), t=t)


__all__ = ["Certificate", "certify", "certify_xp", "convex_value", "dual_bound", "lower_bound_from_logits",
           "loss_and_group_softmax"]

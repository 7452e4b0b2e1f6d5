"""Fenchel conjugate of the PAL loss (issue 4, item 7): the step behind the certificate.

``l(z) = m LSE(z) - <y, z>`` has ``l*(u) = m sum_j q_j log q_j`` with ``q = (u + y)/m``
when ``q`` is in the simplex (``+inf`` otherwise). Checked by maximising
``<u, z> - l(z)`` explicitly for small ``K`` and by the Fenchel-Young equality
``l(z) + l*(grad l(z)) = <grad l(z), z>`` at matched points; then the ``1/N``-scaled
conjugate and the certificate's feasible ``q`` (docs/proofs.md).
"""

from __future__ import annotations

import itertools

import sympy as sp

from .algebra import indicator, lse, pal_loss
from .core import Ledger, register, wrong_variant


def _log_cancel(e: sp.Expr) -> sp.Expr:
    """Expand logs of products/quotients (arguments positive here), then cancel."""
    e = sp.expand(sp.expand_log(e, force=True))
    r = sp.cancel(sp.together(e))
    return r if r == 0 else sp.simplify(r)


def conjugate_small_k(led: Ledger, ks: tuple[int, ...] = (2, 3), conj_coef=lambda m: m) -> None:
    """Maximise ``<u, z> - l(z)`` over ``z`` for interior ``q`` and show ``+inf`` outside."""
    for k in ks:
        qs = list(sp.symbols(f"q0:{k - 1}", positive=True))
        q = sp.Matrix(qs + [1 - sum(qs)])  # a point of the simplex (interior for q_j > 0)
        z = sp.Matrix(sp.symbols(f"z0:{k}", real=True))
        v = sp.Matrix(sp.symbols(f"v0:{k}", real=True))
        for m in range(1, k + 1):
            for S in itertools.combinations(range(k), m):
                y = indicator(k, S)
                u = m * q - y  # so that (u + y)/m = q
                g = (u.T * z)[0] - pal_loss(z, y)  # the function maximised by l*
                zstar = {z[j]: sp.log(q[j]) for j in range(k)}
                grad = [sp.diff(g, zj).subs(zstar) for zj in z]
                led.zero(f"K={k},S={S}: grad_z g at z = log q", grad, simplifier=_log_cancel)
                val = g.subs(zstar) - conj_coef(m) * sum(qj * sp.log(qj) for qj in q)
                led.zero(f"K={k},S={S}: g(log q) - m sum q log q", val, simplifier=_log_cancel)
        # concavity of g: v^T Hess(LSE) v = sum_{i<j} p_i p_j (v_i - v_j)^2 >= 0
        p = [sp.exp(zj) / sum(sp.exp(zi) for zi in z) for zj in z]
        quad = (v.T * sp.hessian(lse(z), list(z)) * v)[0]
        sos = sum(p[i] * p[j] * (v[i] - v[j]) ** 2 for i in range(k) for j in range(i + 1, k))
        led.zero(f"K={k}: v^T Hess(LSE) v - sum p_i p_j (v_i - v_j)^2", quad - sos)
    # outside the simplex the supremum is +inf (K = 3, y = e_0, m = 1)
    k, m = 3, 1
    tau, delta = sp.symbols("tau delta", positive=True)
    y = indicator(k, (0,))
    z = sp.Matrix(sp.symbols("z0:3", real=True))
    q1, q2 = sp.symbols("q1 q2", positive=True)
    for lab, qv, ray in (
        ("sum q = 1 + delta, z = tau 1", [1 - q1 - q2 + delta, q1, q2], [1, 1, 1]),
        ("sum q = 1 - delta, z = -tau 1", [1 - q1 - q2 - delta, q1, q2], [-1, -1, -1]),
        ("q_1 = -delta < 0, z = -tau e_1", [1 - q2 + delta, -delta, q2], [0, -1, 0]),
    ):
        u = m * sp.Matrix(qv) - y
        g = (u.T * z)[0] - pal_loss(z, y)
        along = g.subs({z[j]: tau * ray[j] for j in range(k)})
        lim = sp.limit(along, tau, sp.oo)
        led.true(f"sup = +inf when {lab}", lim == sp.oo, f"(limit = {lim})")


def fenchel_young_exact(led: Ledger, ks: range = range(2, 11), conj_coef=lambda m: m) -> None:
    """``l(z) + l*(u) - <u, z> = 0`` at ``u = grad l(z)`` (computed by ``diff``), symbolic ``z``."""
    for k in ks:
        z = sp.Matrix(sp.symbols(f"z0:{k}", real=True))
        p = [sp.exp(zj) / sum(sp.exp(zi) for zi in z) for zj in z]
        for m in range(1, k + 1):
            S = tuple(range(m))
            y = indicator(k, S)
            loss = pal_loss(z, y)
            u = sp.Matrix([sp.diff(loss, zj) for zj in z])
            q = (u + y) / m
            led.zero(f"K={k},m={m}: q - softmax(z) (q in the simplex)",
                     [q[j] - p[j] for j in range(k)], simplifier=sp.cancel)
            conj = conj_coef(m) * sum(q[j] * sp.log(q[j]) for j in range(k))
            led.zero(f"K={k},m={m}: l(z) + l*(u) - <u, z>", loss + conj - (u.T * z)[0],
                     simplifier=_log_cancel)


def certificate_conjugate(led: Ledger, p_weight: bool = True) -> None:
    """The certificate's ``L*(V) = (1/N) sum_i m_i sum_j q_ij log q_ij``, ``q_i = (N v_i + y_i)/m_i``:
    Fenchel-Young at ``V = grad L(X)``; the certificate's ``q_i`` is feasible for ``t in [0,1]``."""
    k, N = 3, 2
    sets = [(0,), (0, 1)]
    X = sp.Matrix(k, N, lambda i, j: sp.Symbol(f"x{i}{j}", real=True))
    Y = sp.Matrix.hstack(*[indicator(k, S) for S in sets])
    ms = [len(S) for S in sets]
    L = sum(pal_loss(X[:, i], Y[:, i]) for i in range(N)) / N
    V = sp.Matrix(k, N, lambda i, j: sp.diff(L, X[i, j]))
    Q = sp.Matrix(k, N, lambda i, j: (N * V[i, j] + Y[i, j]) / ms[j])
    Lstar = sum(ms[j] * sum(Q[i, j] * sp.log(Q[i, j]) for i in range(k)) for j in range(N)) / N
    inner = sum(V[i, j] * X[i, j] for i in range(k) for j in range(N))
    led.zero("L(X) + L*(grad L(X)) - <grad L(X), X>", L + Lstar - inner, simplifier=_log_cancel)
    # certificate point: -Gamma = t grad L(X)  =>  q_i = (t m_i p_i + (1-t) y_i)/m_i
    tau = sp.Symbol("tau", nonnegative=True)
    t = 1 / (1 + tau)  # covers t in (0, 1]
    for j in range(N):
        pj = [sp.exp(X[i, j]) / sum(sp.exp(X[r, j]) for r in range(k)) for i in range(k)]
        qj = [(N * t * V[i, j] + Y[i, j]) / ms[j] for i in range(k)]
        w = ms[j] if p_weight else 1  # the stated formula's m_i p_i (p_i alone: wrong variant)
        spec_q = [(t * w * pj[i] + (1 - t) * Y[i, j]) / ms[j] for i in range(k)]
        led.zero(f"column {j}: q from -Gamma = t grad L - the stated formula",
                 [a - b for a, b in zip(qj, spec_q)], simplifier=sp.cancel)
        led.zero(f"column {j}: sum_i q_ij - 1", sum(qj) - 1, simplifier=sp.cancel)
        for i in range(k):
            led.positive(f"column {j}: q_{i}{j} > 0", sp.cancel(spec_q[i]))


register(
    "conjugate_pal_small_k",
    "l*(u) = m sum q log q, q = (u+y)/m: z = log q maximises <u,z> - l(z) (concave), "
    "sup = +inf off the simplex",
    "K = 2, 3, every non-empty label set; q in the open simplex; off-simplex rays for K = 3",
)(conjugate_small_k)

register(
    "conjugate_fenchel_young_exact",
    "Fenchel-Young equality l(z) + l*(grad l(z)) = <grad l(z), z>, with q = softmax(z) in the simplex",
    "K = 2..10, every m (S = first m classes), z in R^K symbolic",
    kind="exact-K",
)(fenchel_young_exact)

register(
    "conjugate_certificate",
    "the 1/N-scaled L* satisfies Fenchel-Young at V = grad L(X); the certificate's "
    "q_i = (t m_i p_i + (1-t) y_i)/m_i is in the simplex",
    "K = 3, N = 2 samples with label sets {0}, {0,1}; X symbolic; t = 1/(1+tau), tau >= 0",
)(certificate_conjugate)


# ---------------------------------------------------------------- wrong variants (--mutants)
wrong_variant("conjugate_pal_small_k", "l*(u) = sum q log q (without the factor m; K = 2)")(
    lambda led: conjugate_small_k(led, ks=(2,), conj_coef=lambda m: 1))
wrong_variant("conjugate_fenchel_young_exact", "l*(u) = sum q log q (without the factor m; K = 2..3)")(
    lambda led: fenchel_young_exact(led, range(2, 4), conj_coef=lambda m: 1))
wrong_variant("conjugate_certificate", "stated q_i = (t p_i + (1-t) y_i)/m_i (without m_i before p_i)")(
    lambda led: certificate_conjugate(led, p_weight=False))

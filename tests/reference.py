"""Independent re-implementations of docs/theory.md formulas, for the property tests.

Nothing here imports the package's objective, theory, metrics or certificate: each
function is written straight from docs/theory.md (sections 2-5) so that a property test
compares two independent routes to the same number. Only the design's plain data
(``K``, label sets, counts, ``Y``) is read from ``ufm``.

Functions accept complex arrays where noted (complex-step differentiation).
"""

from __future__ import annotations

import math

import numpy as np

# -- the objective (docs/theory.md section 2) ------------------------------------------------


def objective(problem, W, H, b=None):
    """``F(W, H, b)`` from the definition; complex-safe (analytic in every argument).

    ``l(z; y) = m LSE(z) - <y, z>`` averaged over samples, ``+ lam_W/2 ||W||^2 +
    lam_H/2 ||H||^2 + lam_b/2 ||b||^2`` (squares, not moduli, so that it stays analytic).
    """
    design = problem.design
    Y = design.Y  # (K, N)
    m = Y.sum(axis=0)  # (N,) recomputed from Y, not taken from the design
    if b is None or not problem.bias:
        b = np.zeros(problem.K)
    Z = W @ H + b[:, None]  # (K, N)
    shift = Z.real.max(axis=0)  # (N,)
    lse = shift + np.log(np.exp(Z - shift).sum(axis=0))  # (N,)
    loss = (m * lse).sum() - (Y * Z).sum()
    pen = problem.lam_W * (W * W).sum() + problem.lam_H * (H * H).sum()
    if problem.bias:
        pen = pen + problem.lam_b * (b * b).sum()
    return loss / problem.N + 0.5 * pen


def loss_gradient_at_zero(design):
    """``G0 = dL/dZ`` at ``Z = 0``: ``(1 m^T / K - Y) / N``, shape (K, N)."""
    Y = design.Y
    m = Y.sum(axis=0)
    return (np.outer(np.ones(design.K), m) / design.K - Y) / design.N


def grouped_spectral_norm(design, Gg):
    """``||G||_2`` of a (K, N) matrix with equal columns per label set, from its (K, G)
    group columns ``Gg``: ``||Gg diag(n_S)^{1/2}||_2``."""
    n = np.asarray(design.counts, dtype=float)
    return float(np.linalg.norm(Gg * np.sqrt(n)[None, :], 2))


def mu_crit_by_svd(design):
    """The phase-transition threshold as ``||grad L(0)||_2``.

    ``W = 0, H = 0, b = 0`` is optimal for the convex problem ``C`` iff
    ``-grad L(0)`` lies in ``mu`` times the nuclear norm's subdifferential at 0, the
    spectral-norm ball: so ``mu_crit = ||G0||_2``. This does not use the theory's closed form
    ``||a / r||_2 / (K - 1)``; the tests compare the two.
    """
    Yg = design.Yg
    mg = Yg.sum(axis=0)
    Gg = (np.outer(np.ones(design.K), mg) / design.K - Yg) / design.N
    return grouped_spectral_norm(design, Gg)


def trivial_value(design):
    """``F(0, 0, 0) = (1/N) sum_i m_i log K``."""
    return float(design.Y.sum() * math.log(design.K) / design.N)


# -- the scalar problem (docs/theory.md section 3) -------------------------------------------


def phi_parts(problem):
    """``(ms, A, r2, const)`` of the theory's ``phi`` for a balanced design, from the profile."""
    K, N = problem.K, problem.N
    prof = problem.design.profile
    assert prof is not None
    ms = np.array([m for m in sorted(prof) if m < K], dtype=float)
    A = np.array([prof[int(m)] * math.comb(K, int(m)) * m / N for m in ms])
    r2 = np.array([prof[int(m)] * math.comb(K - 2, int(m) - 1) for m in ms], dtype=float)
    const = prof.get(K, 0) * K * math.log(K) / N
    return ms, A, r2, const


def phi(problem, s):
    """``phi(s)`` written as in docs/theory.md section 3 (plain logs, no rewriting)."""
    ms, A, r2, _ = phi_parts(problem)
    K = problem.K
    s = np.asarray(s, dtype=float)
    loss = float(np.sum(A * np.log(ms + (K - ms) * np.exp(-s))))
    return loss + problem.mu * (K - 1) * math.sqrt(float(np.sum(r2 * s * s)))


def phi_grad(problem, s):
    """Gradient of ``phi`` at ``s != 0`` and a scale for judging its size."""
    ms, A, r2, _ = phi_parts(problem)
    K = problem.K
    s = np.asarray(s, dtype=float)
    e = (K - ms) * np.exp(-s)
    sigma = math.sqrt(float(np.sum(r2 * s * s)))
    g_loss = -A * e / (ms + e)
    g_reg = problem.mu * (K - 1) * r2 * s / sigma
    return g_loss + g_reg, np.abs(g_loss) + np.abs(g_reg)


# -- the structure of a global minimiser (docs/theory.md section 3, claims 1-6) --------------


def _angle(u, v):
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return math.pi
    c = float(u @ v) / (nu * nv)
    s = float(np.linalg.norm(u / nu - c * v / nv))
    return math.atan2(s, c)


def _rel(diff, ref):
    nr = float(np.linalg.norm(ref))
    return float(np.linalg.norm(diff)) / nr if nr > 0 else float(np.linalg.norm(diff))


def group_means(problem, H):
    """``h_S`` per label set in the design's order, (d, G); and the max spread within sets."""
    design = problem.design
    means = np.stack([H[:, sl].mean(axis=1) for sl in design.group_slices], axis=1)
    spread = max(
        float(np.max(np.linalg.norm(H[:, sl] - means[:, [g]], axis=0)))
        for g, sl in enumerate(design.group_slices)
    )
    return means, spread


def structure_deviations(problem, W, H, b, s):
    """Deviation of ``(W, H, b)`` from each claim of docs/theory.md section 3, given ``s* = {m: s_m}``.

    Returns ``{claim: deviation}``; all are relative (to the size of the prediction)
    except ``bias`` (absolute, in logit units). ``sigma`` and ``kappa`` are recomputed
    here from ``s`` and the profile.
    """
    K, design = problem.K, problem.design
    prof = design.profile
    sigma = math.sqrt(sum(prof[m] * math.comb(K - 2, m - 1) * s[m] ** 2 for m in s))
    kappa = math.sqrt(problem.lam_W / problem.lam_H) / sigma
    P = np.eye(K) - 1.0 / K
    out = {}
    # 1. bias
    if problem.bias and problem.lam_b == 0:
        out["bias"] = float(np.linalg.norm(b - b.mean()))
    else:
        out["bias"] = float(np.linalg.norm(b))
    # 2. NC1
    Hg, spread = group_means(problem, H)
    out["nc1"] = spread / float(np.max(np.linalg.norm(Hg, axis=0)))
    # 3. ETF
    target = math.sqrt(problem.lam_H / problem.lam_W) * sigma * P
    out["etf"] = _rel(W @ W.T - target, target)
    # 4./5. self-duality and tag-wise average: h_S = kappa s_m sum_{k in S} w_k (h = 0 for |S| = K)
    sm = np.array([s.get(len(S), 0.0) for S in design.sets])
    H_pred = kappa * (W.T @ design.Yg) * sm  # (d, G)
    single = np.array([len(S) == 1 for S in design.sets])
    multi = np.array([1 < len(S) < K for S in design.sets])
    full = np.array([len(S) == K for S in design.sets])
    if single.any():
        out["self_duality"] = _rel(Hg[:, single] - H_pred[:, single], H_pred[:, single])
    if multi.any():
        out["tagwise"] = _rel(Hg[:, multi] - H_pred[:, multi], H_pred[:, multi])
    if full.any():
        out["full_set_zero"] = float(np.linalg.norm(Hg[:, full])) / float(np.max(np.linalg.norm(Hg, axis=0)))
    if single.any() and multi.any() and single.sum() == K:
        hk = {S[0]: Hg[:, g] for g, S in enumerate(design.sets) if len(S) == 1}
        angles, scales = [], []
        for g, S in enumerate(design.sets):
            if not 1 < len(S) < K:
                continue
            ref = sum(hk[k] for k in S)
            angles.append(_angle(Hg[:, g], ref))
            c_m = len(S) * s[len(S)] / s[1]
            scales.append(abs(np.linalg.norm(Hg[:, g]) / np.linalg.norm(ref / len(S)) - c_m) / c_m)
        out["tagwise_angle"] = max(angles)
        out["tagwise_scale"] = max(scales)
    # 6. logits: W h_S + b = s_m (1_S - (m/K) 1) (+ beta 1 when lam_b = 0)
    beta = b.mean() if (problem.bias and problem.lam_b == 0) else 0.0
    Zg = W @ Hg + (b - beta)[:, None]
    m_g = design.Yg.sum(axis=0)
    Zp = (design.Yg - m_g[None, :] / K) * sm[None, :]
    out["logits"] = _rel(Zg - Zp, Zp)
    return out


# -- Hessian at W = 0, H = 0 ---------------------------------------------------------


def saddle_min_eigenvalue(lam_W, lam_H, sigma_G):
    """Smallest eigenvalue of ``[[lam_W, -sigma], [-sigma, lam_H]]``: the curvature of
    ``lam_W/2 ||u||^2 + lam_H/2 ||v||^2 + sigma u v`` along the worst rank-one
    direction ``(u, v)`` built from the top singular pair of ``G``."""
    return 0.5 * ((lam_W + lam_H) - math.sqrt((lam_W - lam_H) ** 2 + 4 * sigma_G**2))


def loss_gradient(design, Z):
    """``G = dL/dZ = (P * m - Y) / N`` at logits ``Z`` (K, N), ``P`` the column softmax."""
    Y = design.Y
    m = Y.sum(axis=0)
    E = np.exp(Z - Z.max(axis=0))
    P = E / E.sum(axis=0)
    return (P * m - Y) / design.N


def loss_difference(design, Z, dZ):
    """``L(Z + dZ) - L(Z)`` without cancellation, for tiny ``dZ``.

    Column-wise ``LSE(z + dz) - LSE(z) = log1p(sum_j p_j expm1(dz_j))`` with ``p``
    the softmax of ``z``; so the result is accurate relative to itself, not to ``L``.
    """
    Y = design.Y
    m = Y.sum(axis=0)
    E = np.exp(Z - Z.max(axis=0))
    P = E / E.sum(axis=0)
    dlse = np.log1p((P * np.expm1(dZ)).sum(axis=0))
    return float(((m * dlse).sum() - (Y * dZ).sum()) / design.N)


def objective_difference(problem, W, H, b, VW, VH, vb, t):
    """``F(x + t v) - F(x)`` computed stably (see :func:`loss_difference`)."""
    if not problem.bias:
        b = np.zeros(problem.K)
        vb = np.zeros(problem.K)
    Z = W @ H + b[:, None]
    dZ = t * (VW @ H + W @ VH + vb[:, None]) + t * t * (VW @ VH)
    pen = 0.0
    for lam, X, V in ((problem.lam_W, W, VW), (problem.lam_H, H, VH), (problem.lam_b, b, vb)):
        pen += lam * (t * float((X * V).sum()) + 0.5 * t * t * float((V * V).sum()))
    return loss_difference(problem.design, Z, dZ) + pen


def inf_F_without_features(problem):
    """``inf_b F(0, 0, b)``: an upper bound on ``min F`` (or its infimum) for every ``d``.

    With a free bias and ``lam_b = 0`` the loss at ``W = 0, H = 0`` is
    ``mbar LSE(b) - ybar . b`` (``ybar`` the mean label indicator, ``mbar`` the mean
    multiplicity), whose infimum is ``mbar * entropy(ybar / mbar)`` -- attained only in
    the limit when a class never occurs. Otherwise ``F(0, 0, 0)``.
    """
    Y = problem.design.Y
    if problem.bias and problem.lam_b == 0:
        m_bar = float(Y.sum(axis=0).mean())
        q = Y.mean(axis=1) / m_bar
        q = q[q > 0]
        return float(-m_bar * np.sum(q * np.log(q)))
    return trivial_value(problem.design)


# -- the bias-only problem and an independent solve (issue 28) -------------------------------


def _sample_weights(problem):
    """``(Y, m, w)`` per sample: ``w = 1`` (PAL) or ``1/m`` (normalised PAL), from ``Y``."""
    Y = problem.design.Y
    m = Y.sum(axis=0)
    w = np.ones_like(m) if problem.loss == "pal" else 1.0 / m
    return Y, m, w


def inf_F_at_origin(problem):
    """``(inf_b F(0, 0, b), b*)`` by a damped Newton method on the smooth convex function
    ``b -> a LSE(b) - <v, b> + lam_b/2 ||b||^2`` (``a = mean(w m)``, ``v = mean(w y)``:
    the loss at ``W = 0, H = 0``), written from the definition of ``F`` (no closed form).

    With a free bias and ``lam_b = 0`` a class that no sample carries (``v_j = 0``) sends
    ``b_j`` to ``-inf`` in the infimum: it is dropped (``b*_j = -inf``). Without a bias,
    ``F(0, 0, 0) = a log K``.
    """
    Y, m, w = _sample_weights(problem)
    K, N = problem.K, problem.N
    a = float((w * m).sum() / N)
    v = (Y * w).sum(axis=1) / N
    if not problem.bias:
        return a * math.log(K), np.zeros(K)
    lam = float(problem.lam_b)
    keep = v > 0 if lam == 0 else np.ones(K, dtype=bool)
    vk = v[keep]

    def f(b):
        s = b.max()
        lse = s + math.log(float(np.exp(b - s).sum()))
        return a * lse - float(vk @ b) + 0.5 * lam * float(b @ b)

    b = np.zeros(vk.size)
    for _ in range(200):
        p = np.exp(b - b.max())
        p /= p.sum()
        g = a * p - vk + lam * b
        if np.abs(g).max() <= 1e-16 * max(a, 1.0):
            break
        Hm = a * (np.diag(p) - np.outer(p, p)) + lam * np.eye(vk.size)
        step = -np.linalg.lstsq(Hm, g, rcond=None)[0]  # lam = 0: H 1 = 0 and g sums to 0
        t, f0 = 1.0, f(b)
        while f(b + t * step) > f0 + 0.25 * t * float(g @ step) and t > 1e-12:
            t *= 0.5
        b = b + t * step
    out = np.full(K, -np.inf)
    out[keep] = b
    return f(b), out


def mu_at_origin(problem):
    """``||grad L(b* 1^T)||_2``: the origin ``W = H = 0`` (with the best bias ``b*``) is a
    minimiser of the convex relaxation ``C`` iff ``mu`` is at least this (the spectral ball
    is the nuclear norm's subdifferential at 0). For balanced designs without a bias it is
    :func:`mu_crit_by_svd`; for imbalanced designs with a free bias it is the transition."""
    Y, m, w = _sample_weights(problem)
    _, b = inf_F_at_origin(problem)
    with np.errstate(invalid="ignore"):
        p = np.exp(b - b.max())
    p = np.where(np.isfinite(b), p, 0.0)
    p /= p.sum()
    G = (np.outer(p, m) - Y) * (w / problem.N)
    return float(np.linalg.norm(G, 2))


def _F_and_grad(x, problem):
    """``F`` and its gradient on the packed ``(W, H, b)``, written from the definition."""
    K, d, N = problem.K, problem.d, problem.N
    Y, m, w = _sample_weights(problem)
    W = x[: K * d].reshape(K, d)
    H = x[K * d: K * d + d * N].reshape(d, N)
    b = x[K * d + d * N:] if problem.bias else np.zeros(K)
    Z = W @ H + b[:, None]
    s = Z.max(axis=0)
    E = np.exp(Z - s)
    lse = s + np.log(E.sum(axis=0))
    P = E / E.sum(axis=0)
    lam_b = problem.lam_b if problem.bias else 0.0
    val = float((w * (m * lse - (Y * Z).sum(axis=0))).sum() / N
                + 0.5 * (problem.lam_W * (W * W).sum() + problem.lam_H * (H * H).sum() + lam_b * b @ b))
    G = (P * m - Y) * (w / N)
    parts = [(G @ H.T + problem.lam_W * W).ravel(), (W.T @ G + problem.lam_H * H).ravel()]
    if problem.bias:
        parts.append(G.sum(axis=1) + lam_b * b)
    return val, np.concatenate(parts)


def min_F_upper(problem, seed=0, starts=3):
    """An upper bound on ``min F`` from an independent high-accuracy solve: scipy's L-BFGS-B
    on :func:`_F_and_grad` from ``starts`` random points (tolerances at float64 level),
    and ``inf_b F(0, 0, b)``; the smallest value found. Every value is some ``F``, so it
    bounds ``min F`` from above however accurate the solve."""
    from scipy.optimize import minimize

    gen = np.random.default_rng(seed)
    n = problem.K * problem.d + problem.d * problem.N + (problem.K if problem.bias else 0)
    best = inf_F_at_origin(problem)[0]
    for _ in range(starts):
        x0 = gen.standard_normal(n)
        res = minimize(_F_and_grad, x0, args=(problem,), jac=True, method="L-BFGS-B",
                       options={"maxiter": 20000, "maxcor": 30, "ftol": 0.0, "gtol": 1e-13})
        best = min(best, float(res.fun))
    return best

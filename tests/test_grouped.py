"""The exact reduction to one feature column per label set (:mod:`ufm.objectives.grouped`).

- The restricted objective equals ``F`` at the embedded point, its gradient embeds to
  ``grad F`` there, the coordinates are an isometry and ``to_y`` is the orthogonal
  projection -- every loss, with and without bias, on both evaluation paths.
- The lemma: at a critical point of ``F`` found without grouping, on designs and widths
  where the theorem says nothing, samples of one label set share one feature vector.
- The Hessian at a point of the subspace maps within-set differences to within-set
  differences, with positive curvature (the landscape statement of the module docstring).
- ``lbfgs(group=True)`` reaches the critical value of the ungrouped run, with the full
  gradient below ``gtol``; its options are validated; ``"auto"`` (the default) groups
  unless an option of the full space is given.
- The restricted Hessian operator (the Newton-CG polish's) is ``E^T nabla^2 F E`` of the
  full one, and matches central differences of the restricted gradient.
- The polish in grouped coordinates: its Newton steps are iterations (history, callback);
  when it is refused, L-BFGS resumes and still converges.
- ``embed`` is the full point built by hand; the float32 option (``precision="mixed"``) is
  ``F`` to float32's rounding, with float32 gradients and single-precision products.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import reference as ref

import ufm
import ufm.objectives.grouped as grouped
from ufm import UFMProblem, balanced, imbalanced_single, random_subset
from ufm.designs import from_counts
from ufm.exceptions import ConvergenceWarning, UFMError
from ufm.objectives.full import fun_and_grad, hvp
from ufm.objectives.grouped import GroupedObjective, random_start, solver_width, width_basis
from ufm.objectives.layout import random_point, unpack

DESIGNS = {
    "balanced": lambda: balanced(4, {1: 3, 2: 2, 4: 1}),
    "imbalanced": lambda: imbalanced_single(5, [1, 4, 2, 3, 6], extra={(0, 3): 2, (1, 2, 4): 3}),
    "random": lambda: random_subset(6, 7, max_multiplicity=4, count=(1, 4), rng=5),
    "few sets": lambda: from_counts(6, {(0, 1): 3, (2, 3, 4): 2, (5,): 1}),  # G = 3 < K
}
WIDE = 12  # d above solver_width for every design: the grouped solver works in fewer dimensions


def _problem(design: str, loss: str = "pal", bias: bool = True, d: int = 3, lam: float = 2e-2) -> UFMProblem:
    return UFMProblem(DESIGNS[design](), d, 1.5 * lam, lam, 0.5 * lam if bias else 0.0, bias=bias, loss=loss)


def _width(p: UFMProblem) -> int:
    """The width the docs promise: ``r + 1 + ceil(r / 4)`` with ``r = min(K, G)`` when that is
    at most ``3 d / 4``, else ``d``."""
    r = min(p.K, p.design.G)
    w = r + 1 + math.ceil(r / 4)
    return w if w <= 0.75 * p.d else p.d


def test_solver_width_of_the_docs():
    assert solver_width(UFMProblem(balanced(10, {1: 5, 2: 1}), 512, 1e-3, 1e-3)) == 14  # 10 + 1 + 3
    assert solver_width(UFMProblem(balanced(50, {1: 2}), 64, 1e-3, 1e-3)) == 64  # 50 + 1 + 13
    assert solver_width(UFMProblem(balanced(50, {1: 2}), 85, 1e-3, 1e-3)) == 85  # 64 > 3 * 85 / 4
    assert solver_width(UFMProblem(balanced(50, {1: 2}), 86, 1e-3, 1e-3)) == 64  # 64 <= 64.5
    assert solver_width(UFMProblem(balanced(200, {1: 2, 2: 1}), 256, 1e-3, 1e-3)) == 256  # 251: not worth it
    assert solver_width(_problem("few sets", d=WIDE)) == 5  # G = 3: 3 + 1 + 1


def _objective(p: UFMProblem, wide: bool, rng: np.random.Generator) -> GroupedObjective:
    """The grouped objective, in ``solver_width`` dimensions (a basis from a random start) when ``wide``."""
    if not wide:
        return GroupedObjective(p)
    Q = width_basis(p, random_point(p, rng=rng))
    assert Q is not None and Q.shape == (p.d, solver_width(p))
    return GroupedObjective(p, Q)


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("small", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", ["pal", "pal-normalized", "bce"])
@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_restricted_objective_is_F_at_the_embedded_point(monkeypatch, rng, design, loss, bias, small, wide):
    if not small:
        monkeypatch.setattr(grouped, "SMALL", 0)  # the per-block path of large problems
    p = _problem(design, loss, bias, d=WIDE if wide else 3)
    fg = _objective(p, wide, rng)
    assert (fg.packed is not None) == small
    w = _width(p) if wide else p.d
    assert fg.d == w
    assert fg.n_vars == p.K * w + w * p.design.G + (p.K if bias else 0)
    for scale in (0.1, 3.0, 30.0):
        z = scale * rng.standard_normal(fg.n_vars)
        out = np.full(fg.n_vars, np.nan)
        for _ in range(2):  # the second call hits the cached views of `out` and `z`
            f, g = fg.value_and_grad(z, out=out)
        x = fg.to_x(z)
        xo = np.full(p.n_vars, np.nan)
        for _ in range(2):  # into a caller's buffer, the second time through its cached views
            assert fg.to_x(z, out=xo) is xo
            np.testing.assert_array_equal(xo, x)
        F, gx = fun_and_grad(x, p)
        np.testing.assert_allclose(f, F, rtol=1e-12)
        np.testing.assert_allclose(fg.grad_to_x(g), gx, rtol=1e-11, atol=1e-12 * np.abs(gx).max())
        assert np.linalg.norm(x) == pytest.approx(np.linalg.norm(z), rel=1e-13)
        assert np.linalg.norm(g) == pytest.approx(np.linalg.norm(gx), rel=1e-11)
        np.testing.assert_allclose(fg.to_y(x), z, rtol=1e-13, atol=1e-15 * scale)
        _, H, _ = unpack(x, p)
        for sl in p.design.group_slices:  # one column per label set
            assert np.all(H[:, sl] == H[:, sl.start : sl.start + 1])
    # to_y is the orthogonal projection: x - E(to_y x) is orthogonal to the subspace
    x = random_point(p, rng=rng)
    r = x - fg.to_x(fg.to_y(x))
    for _ in range(3):
        e = fg.to_x(rng.standard_normal(fg.n_vars))
        assert abs(r @ e) <= 1e-12 * np.linalg.norm(r) * np.linalg.norm(e)


@pytest.mark.parametrize("design", ["imbalanced", "random"])
def test_critical_points_of_F_have_one_feature_per_label_set(design):
    """The lemma, on designs outside the theorem and d < K - 1: L-BFGS on the full ``F``
    from a generic start ends with the columns of each label set equal."""
    p = _problem(design, d=2, lam=5e-3)
    res = ufm.solve(p, "lbfgs", rng=7, gtol=1e-12)
    assert res.success
    H = res.H
    spread = max(float(np.abs(H[:, sl] - H[:, sl].mean(axis=1, keepdims=True)).max()) for sl in p.design.group_slices)
    assert p.design.counts != tuple([1] * p.design.G)  # some set has several samples
    assert spread <= 1e-9 * float(np.abs(H).max()), spread


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_hessian_keeps_within_set_differences_apart_with_positive_curvature(rng, design):
    p = _problem(design, "pal", True, d=3)
    fg = GroupedObjective(p)
    x = fg.to_x(rng.standard_normal(fg.n_vars))  # a point of the subspace
    for _ in range(3):
        # a within-set difference: H columns summing to zero over each set, W = 0, b = 0
        v = np.zeros(p.n_vars)
        _, VH, _ = unpack(v, p)
        VH[...] = rng.standard_normal(VH.shape)
        for sl in p.design.group_slices:
            VH[:, sl] -= VH[:, sl].mean(axis=1, keepdims=True)
        Hv = hvp(x, v, p)
        assert np.linalg.norm(fg.to_y(Hv)) <= 1e-12 * np.linalg.norm(Hv)  # no component in the subspace
        assert v @ Hv >= p.lam_H * (v @ v) * (1 - 1e-12)  # curvature at least lam_H


@pytest.mark.parametrize("engine", ["numpy", "scipy"])
@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_grouped_lbfgs_reaches_the_ungrouped_critical_value(design, engine):
    p = _problem(design, d=3, lam=1e-2)
    x0 = random_point(p, scale=0.1, rng=2)
    full = ufm.solve(p, "lbfgs", x0, engine=engine, group=False)
    red = ufm.solve(p, "lbfgs", x0, engine=engine, group=True)
    assert full.extra["group"] is False and red.extra["group"] is True
    assert full.success and red.success
    assert red.grad_norm <= 1e-11
    assert np.linalg.norm(fun_and_grad(red.x, p)[1]) <= 1e-11  # the full gradient, recomputed
    assert red.fun == pytest.approx(full.fun, rel=1e-10)
    assert red.H.shape == (p.d, p.N)


def test_grouped_callback_and_history_see_the_full_point():
    p = _problem("balanced")
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = ufm.solve(p, "lbfgs", rng=1, group=True, history_every=1, history_metrics=True, max_iter=5, polish=False,
                        callback=lambda it, x, f: bool(seen.append((x.copy(), f))))
    assert seen and all(x.shape == (p.n_vars,) for x, _ in seen)
    for x, f in seen:
        assert fun_and_grad(x, p)[0] == pytest.approx(f, rel=1e-13)
    assert len(res.history["nc1"]) >= 5


def test_group_option_is_validated():
    p = _problem("balanced")
    with pytest.raises(UFMError, match="group"):
        ufm.solve(p, "lbfgs", group="yes")
    with pytest.raises(UFMError, match="group"):
        ufm.solve(p, "lbfgs", group=True, h_scale=2.0)
    with pytest.raises(UFMError, match="group"):
        ufm.solve(p, "lbfgs", group=True, precondition="gn")


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", ["pal", "pal-normalized", "bce"])
@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_restricted_hessian_is_the_full_hessian_restricted(rng, design, loss, bias, wide):
    p = _problem(design, loss, bias, d=WIDE if wide else 3)
    fg = _objective(p, wide, rng)
    for scale in (0.1, 3.0):
        z = scale * rng.standard_normal(fg.n_vars)
        apply = fg.hessian_operator(z)
        for _ in range(2):  # twice: the operator reuses its buffers
            v = rng.standard_normal(fg.n_vars)
            hv = apply(v)
            # E^T (nabla^2 F at E z) (E v): the full operator, embedded and projected back
            ref = fg.to_y(hvp(fg.to_x(z), fg.to_x(v), p))
            np.testing.assert_allclose(hv, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
            eps = 1e-6 * max(1.0, float(np.linalg.norm(z))) / float(np.linalg.norm(v))
            fd = (fg.value_and_grad(z + eps * v)[1] - fg.value_and_grad(z - eps * v)[1]) / (2 * eps)
            np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-6 * np.abs(hv).max())


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", ["pal", "pal-normalized", "bce"])
def test_float32_hessian_products_are_the_float64_ones_rounded(rng, loss, bias, wide):
    """hessian_operator(z, np.float32): float64 in and out, the products at float32's precision
    -- within 1e-5 of the full-space reference (not bitwise the float64 operator: it is float32)."""
    p = _problem("imbalanced", loss, bias, d=WIDE if wide else 3)
    fg = _objective(p, wide, rng)
    z = 0.7 * rng.standard_normal(fg.n_vars)
    apply32 = fg.hessian_operator(z, np.float32)
    for _ in range(2):  # twice: the operator reuses its buffers
        v = rng.standard_normal(fg.n_vars)
        hv = apply32(v)
        ref = fg.to_y(hvp(fg.to_x(z), fg.to_x(v), p))
        err = np.abs(hv - ref).max() / np.abs(ref).max()
        assert hv.dtype == np.float64 and 1e-12 < err < 1e-5, err


def test_group_auto_groups_unless_a_full_space_option_is_given():
    p = _problem("imbalanced", d=3, lam=1e-2)
    default = ufm.solve(p, rng=3)
    assert default.extra["group"] is True and default.success
    assert np.linalg.norm(fun_and_grad(default.x, p)[1]) <= 1e-11  # the full gradient
    assert ufm.solve(p, rng=3, group=False).extra["group"] is False
    assert ufm.solve(p, rng=3, h_scale=2.0).extra["group"] is False
    assert ufm.solve(p, rng=3, precondition="gn").extra["group"] is False


def test_polish_steps_are_iterations_seen_by_history_and_callback():
    p = _problem("random", d=3, lam=1e-2)
    seen = []
    res = ufm.solve(p, rng=0, history_every=1, callback=lambda it, x, f: bool(seen.append((it, f, x.copy()))))
    assert res.extra["polish_steps"] >= 1 and res.success
    assert res.history["iter"] == list(range(res.nit + 1))
    its = [it for it, _, _ in seen]
    assert its == list(range(res.nit + 1))  # every iterate, the hand-over and the Newton steps included
    it, f, x = seen[-1]
    assert f == res.fun and np.array_equal(x, res.x)
    assert fun_and_grad(x, p)[0] == pytest.approx(f, rel=1e-13)


def test_a_callback_stops_the_polish_too():
    p = _problem("random", d=3, lam=1e-2)
    free = ufm.solve(p, rng=0)
    last = free.nit - 1  # an iteration of the polish
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = ufm.solve(p, rng=0, callback=lambda it, x, f: it >= last)
    assert res.nit == last and res.status.name == "MAX_ITER"
    assert res.extra["message"] == "stopped by the callback"


def test_a_refused_polish_hands_back_to_lbfgs(monkeypatch):
    """A Newton step that is never accepted (CG returns an ascent direction): L-BFGS resumes
    to ten times smaller hand-overs and converges on its own."""
    import ufm.solvers.polish as polish

    calls = []

    def bad_cg(apply, g, maxiter, rtol, scale):
        calls.append(float(np.linalg.norm(g)))
        return g.copy()  # uphill: every trial raises F

    monkeypatch.setattr(polish, "_cg", bad_cg)
    p = _problem("balanced", d=3, lam=1e-2)
    res = ufm.solve(p, rng=0)
    assert res.success and res.grad_norm <= 1e-11 and res.extra["polish_steps"] == 0
    assert np.linalg.norm(fun_and_grad(res.x, p)[1]) <= 1e-11
    # tried at 1e-4, then at ten times smaller hand-overs, each from a smaller gradient
    assert len(calls) >= 3 and all(b < a for a, b in zip(calls, calls[1:]))
    assert calls[0] <= 1e-4


def test_an_interrupt_in_the_polish_returns_its_last_iterate(monkeypatch):
    p = _problem("random", d=3, lam=1e-2)
    free = ufm.solve(p, rng=0)
    assert free.extra["hessian_products"] > 4
    orig = GroupedObjective.hessian_operator
    calls = [0]

    def interrupted(self, z, dtype=None):
        apply = orig(self, z, dtype)

        def a(v):
            calls[0] += 1
            if calls[0] == free.extra["hessian_products"] - 2:  # inside the last CG solve
                raise KeyboardInterrupt
            return apply(v)
        return a

    monkeypatch.setattr(GroupedObjective, "hessian_operator", interrupted)
    res = ufm.solve(p, rng=0)
    assert res.status.name == "INTERRUPTED" and free.nit - free.extra["polish_steps"] <= res.nit < free.nit
    assert fun_and_grad(res.x, p)[0] == pytest.approx(res.fun, rel=1e-14)  # F of the point returned
    assert res.history["iter"][-1] == res.nit


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_width_basis_keeps_the_logits_and_lowers_F(rng, design):
    p = _problem(design, d=WIDE)
    w = _width(p)
    assert width_basis(_problem(design, d=w), random_point(_problem(design, d=w), rng=rng)) is None
    for x in (random_point(p, scale=s, rng=rng) for s in (0.1, 5.0)):
        Q = width_basis(p, x)
        assert Q is not None and Q.shape == (p.d, w)
        np.testing.assert_allclose(Q.T @ Q, np.eye(w), atol=1e-14)
        fg, flat = GroupedObjective(p, Q), GroupedObjective(p)
        xs = flat.to_x(flat.to_y(x))  # the within-set means: what the start becomes in any case
        xq = fg.to_x(fg.to_y(x))
        W, H, b = unpack(xs, p)
        Wq, Hq, bq = unpack(xq, p)
        np.testing.assert_allclose(Wq @ Hq, W @ H, rtol=1e-12, atol=1e-14 * np.abs(W @ H).max())
        np.testing.assert_array_equal(bq, b)
        assert np.linalg.norm(Wq) <= np.linalg.norm(W) * (1 + 1e-13)
        assert np.linalg.norm(Hq) <= np.linalg.norm(H) * (1 + 1e-13)
        assert fun_and_grad(xq, p)[0] <= fun_and_grad(xs, p)[0] * (1 + 1e-13)
    Q0 = width_basis(p, np.zeros(p.n_vars))  # a degenerate start still gives an orthonormal basis
    assert Q0 is not None
    np.testing.assert_allclose(Q0.T @ Q0, np.eye(w), atol=1e-14)


def test_random_start_has_the_projected_draws_distribution():
    """Each set's feature entries have standard deviation ``scale / sqrt(d n_S)``, like the
    within-set means of the full Gaussian draw; ``W``, ``b`` ``scale / sqrt(d)``."""
    p = UFMProblem(balanced(3, {1: 9, 2: 1}), 400, 1e-2, 1e-2, 1e-2)  # sets of 9 and 1 samples
    x = random_start(p, scale=0.3, rng=np.random.default_rng(4))
    W, H, b = unpack(x, p)
    for sl in p.design.group_slices:
        assert np.all(H[:, sl] == H[:, sl.start : sl.start + 1])
    means = np.stack([H[:, sl.start] for sl in p.design.group_slices])  # (G, d)
    nine = means[np.asarray(p.design.counts) == 9].ravel()
    one = means[np.asarray(p.design.counts) == 1].ravel()
    s = 0.3 / np.sqrt(p.d)
    assert nine.size >= 1200 and one.size >= 1200
    assert np.std(nine) == pytest.approx(s / 3, rel=0.06)  # 1200 draws: the estimate's sd is 2%
    assert np.std(one) == pytest.approx(s, rel=0.06)
    assert np.std(W) == pytest.approx(s, rel=0.06)
    with pytest.raises(UFMError, match="init_scale"):
        ufm.solve(p, init_scale=0.0)


@pytest.mark.parametrize("engine", ["numpy", "scipy"])
@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_the_default_solves_wide_problems_in_fewer_dimensions(design, engine):
    """``d`` above ``solver_width``: the default works in that width (``extra["width"]``) and
    returns a full-size critical point with the value of the full-space run from the same start."""
    p = _problem(design, d=WIDE, lam=1e-2)
    x0 = random_point(p, scale=0.1, rng=2)
    full = ufm.solve(p, "lbfgs", x0, engine=engine, group=False)
    red = ufm.solve(p, "lbfgs", x0, engine=engine)
    assert red.extra["group"] is True and red.extra["width"] == _width(p)
    assert full.extra["width"] == p.d
    assert full.success and red.success
    assert red.W.shape == (p.K, p.d) and red.H.shape == (p.d, p.N)
    assert np.linalg.norm(fun_and_grad(red.x, p)[1]) <= 1e-11  # the full gradient, recomputed
    assert red.fun == pytest.approx(full.fun, rel=1e-10)
    assert red.rel_gap is not None and red.rel_gap <= 1e-9  # a global minimum (the module docstring says why)


def test_a_basis_of_the_wrong_shape_is_refused_and_a_square_one_is_an_isometry(rng):
    """``basis`` must be (d, w) with ``w <= d``: other shapes raise; ``w = d`` (an orthogonal
    ``Q``) is allowed, and ``F`` at ``(W' Q^T, Q Ht' diag(r))`` (embedded by hand) is the
    reference ``F`` there."""
    p = _problem("imbalanced", "pal", True, d=4)
    d = p.d
    for shape in [(d + 1, 2), (d - 1, 2), (d, d + 1), (d,), (d, 2, 1)]:
        with pytest.raises(ValueError, match=r"basis must be \(d, w\) with w <= d"):
            GroupedObjective(p, np.ones(shape))
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    fg = GroupedObjective(p, Q)
    assert fg.d == d
    K, G = p.K, p.design.G
    z = rng.standard_normal(fg.n_vars)
    Wp, Htp, b = z[: K * d].reshape(K, d), z[K * d : K * d + d * G].reshape(d, G), z[K * d + d * G :]
    n = np.asarray(p.design.counts, dtype=float)
    H = np.repeat(Q @ Htp / np.sqrt(n), p.design.counts, axis=1)  # each set's column, once per sample
    W = Wp @ Q.T
    np.testing.assert_allclose(fg.to_x(z), np.concatenate([W.ravel(), H.ravel(), b]), rtol=1e-13, atol=1e-14)
    f, g = fg.value_and_grad(z)
    assert f == pytest.approx(ref.objective(p, W, H, b), rel=1e-12)
    eps = 1e-6  # the gradient along a random direction, by central differences of the reference F
    v = rng.standard_normal(fg.n_vars)
    zp, zm = fg.to_x(z + eps * v), fg.to_x(z - eps * v)
    fd = (ref.objective(p, *unpack(zp, p)) - ref.objective(p, *unpack(zm, p))) / (2 * eps)
    assert g @ v == pytest.approx(fd, rel=1e-7)


def test_nfev_counts_the_evaluations():
    p = _problem("balanced")
    fg = GroupedObjective(p)
    assert fg.nfev == 0
    z = np.ones(fg.n_vars)
    fg.value_and_grad(z)
    fg.value_and_grad(z, out=np.empty(fg.n_vars))
    fg.value_and_grad(z)
    assert fg.nfev == 3


@pytest.mark.parametrize("bias", [True, False])
def test_the_cached_view_paths_are_taken_below_SMALL_only(monkeypatch, rng, bias):
    """Below :data:`ufm.objectives.full.SMALL` variables (strictly) the objective keeps block views
    (``packed``) and ``to_x`` without a basis copies through them instead of spreading the
    columns with ``_spread``; both routes give the same point, bit for bit: each set's column
    ``Ht[:, S] / sqrt(n_S)`` repeated ``n_S`` times."""
    p = _problem("random", "pal", bias, d=3)
    n_vars = GroupedObjective(p).n_vars
    monkeypatch.setattr(grouped, "SMALL", n_vars)
    assert GroupedObjective(p).packed is None  # not below
    monkeypatch.setattr(grouped, "SMALL", n_vars + 1)
    small = GroupedObjective(p)
    assert small.packed is not None
    calls = []
    spread = grouped._spread
    monkeypatch.setattr(grouped, "_spread", lambda *a, **k: calls.append(1) or spread(*a, **k))
    z = rng.standard_normal(n_vars)
    x_small = small.to_x(z)
    assert calls == []  # the cached-views path
    monkeypatch.setattr(grouped, "SMALL", 0)
    x_large = GroupedObjective(p).to_x(z)
    assert calls == [1]
    np.testing.assert_array_equal(x_small, x_large)
    K, d, G = p.K, p.d, p.design.G
    Ht = z[K * d : K * d + d * G].reshape(d, G)
    H = np.repeat(Ht / np.sqrt(np.asarray(p.design.counts, dtype=float)), p.design.counts, axis=1)
    np.testing.assert_allclose(unpack(x_small, p)[1], H, rtol=1e-15)


@pytest.mark.parametrize("design, kept", [
    (lambda: balanced(4, {1: 1, 2: 1}), "W"),  # K = 4 < G = 10
    (lambda: balanced(4, {1: 3}), "W"),  # K = G = 4
    (lambda: from_counts(6, {(0, 1): 3, (2, 3, 4): 2, (5,): 1}), "sums"),  # K = 6 > G = 3
])
def test_width_basis_spans_the_row_space_of_W_when_K_at_most_G(rng, design, kept):
    """The docstring of :func:`width_basis`: ``Q``'s span contains the row space of ``W`` when
    ``K <= G``, else the span of the per-set feature sums (K = G included on the ``W`` side)."""
    p = UFMProblem(design(), WIDE, 1e-2, 1e-2, 1e-2)
    x = random_point(p, rng=rng)
    Q = width_basis(p, x)
    assert Q is not None
    W, H, _ = unpack(x, p)
    A = W.T if kept == "W" else np.stack([H[:, sl].sum(axis=1) for sl in p.design.group_slices], axis=1)
    np.testing.assert_allclose(Q @ (Q.T @ A), A, atol=1e-13 * np.abs(A).max())
    B = np.stack([H[:, sl].sum(axis=1) for sl in p.design.group_slices], axis=1) if kept == "W" else W.T
    assert np.linalg.norm(Q @ (Q.T @ B) - B) > 1e-3 * np.linalg.norm(B)  # the other factor: only partly


@pytest.mark.parametrize("bias", [True, False])
def test_random_start_draws_K_d_plus_d_G_plus_K_numbers(bias):
    """The docstring of :func:`random_start`: ``K d + d G`` Gaussians, ``+ K`` with a bias --
    a generator passed on to the next solve continues after exactly those draws."""
    p = _problem("imbalanced", "pal", bias, d=5)
    g1, g2 = np.random.default_rng(11), np.random.default_rng(11)
    x = random_start(p, scale=1.0, rng=g1)
    assert x.shape == (p.n_vars,)
    g2.standard_normal(p.K * p.d + p.d * p.design.G + (p.K if bias else 0))
    np.testing.assert_array_equal(g1.standard_normal(4), g2.standard_normal(4))


@pytest.mark.parametrize("bias", [True, False])
def test_embed_is_the_full_point_with_each_sets_feature_repeated(rng, bias):
    """``embed(z)`` (the protocol's) is ``(W, H, b)`` of the full space, built here by hand:
    ``W`` itself, each set's column ``Ht[:, S] / sqrt(n_S)`` once per sample, ``b`` (zeros
    without a bias)."""
    p = _problem("imbalanced", "pal", bias, d=3)
    fg = GroupedObjective(p)
    assert fg.size == fg.n_vars == p.K * p.d + p.d * p.design.G + (p.K if bias else 0)
    K, d, G = p.K, p.d, p.design.G
    z = rng.standard_normal(fg.n_vars)
    W, H, b = fg.embed(z)
    np.testing.assert_array_equal(W, z[: K * d].reshape(K, d))
    Ht = z[K * d : K * d + d * G].reshape(d, G)
    n = np.asarray(p.design.counts, dtype=float)
    np.testing.assert_allclose(H, np.repeat(Ht / np.sqrt(n), p.design.counts, axis=1), rtol=1e-15)
    np.testing.assert_array_equal(b, z[K * d + d * G :] if bias else np.zeros(K))


def _grouped_reference(p: UFMProblem, z: np.ndarray) -> tuple[float, np.ndarray]:
    """``F`` and ``grad_z`` of the grouped objective through the full one (float64): at
    ``W``, ``H = (Ht[:, S] / sqrt(n_S) per sample)``, ``b``, with ``grad_Ht[:, S]`` the sum of
    ``grad_H`` over the set's samples divided by ``sqrt(n_S)`` (the chain rule of the embedding)."""
    K, d, G = p.K, p.d, p.design.G
    n = np.asarray(p.design.counts, dtype=float)
    Ht = z[K * d : K * d + d * G].reshape(d, G)
    H = np.repeat(Ht / np.sqrt(n), p.design.counts, axis=1)
    x = np.concatenate([z[: K * d], H.ravel(), z[K * d + d * G :]])
    F, gx = fun_and_grad(x, p)
    gH = gx[K * d : K * d + d * p.N].reshape(d, p.N)
    gHt = np.stack([gH[:, sl].sum(axis=1) for sl in p.design.group_slices], axis=1) / np.sqrt(n)
    return F, np.concatenate([gx[: K * d], gHt.ravel(), gx[K * d + d * p.N :]])


@pytest.mark.parametrize("loss, bias", [("pal", True), ("pal-normalized", False)])
def test_float32_objective_is_F_to_float32_rounding_with_float32_products(monkeypatch, loss, bias):
    """``dtype=float32`` (the bulk of ``precision="mixed"``): ``F`` and the gradient within
    float32's rounding of the float64 reference, and really float32 -- the gradient a float32
    array (new or the caller's), the error above float64's, and every matrix product of the
    evaluation on float32 operands into a float32 result (single-precision BLAS, the point of
    the option)."""
    p = _problem("imbalanced", loss, bias, d=4)
    fg = GroupedObjective(p, dtype=np.float32)
    z = (0.5 * np.random.default_rng(2).standard_normal(fg.n_vars)).astype(np.float32)
    F, g_ref = _grouped_reference(p, z.astype(np.float64))
    products = []
    matmul = np.matmul

    def spy(*args, **kwargs):
        res = matmul(*args, **kwargs)
        products.append({a.dtype for a in args} | {res.dtype})
        return res

    monkeypatch.setattr(grouped.np, "matmul", spy)
    out = np.full(fg.n_vars, np.nan, dtype=np.float32)
    results = [fg.value_and_grad(z), fg.value_and_grad(z, out=out)]
    monkeypatch.undo()
    for f, g in results:
        assert isinstance(f, float) and g.dtype == np.float32
        assert 1e-12 < abs(f - F) / abs(F) < 1e-6
        err = np.abs(g - g_ref).max() / np.abs(g_ref).max()
        assert 1e-12 < err < 1e-5
    assert results[1][1] is out
    # per evaluation W Hs, G' Ht^T, W^T G' and, with a bias, G' sqrt(n)
    assert len(products) == 2 * (4 if bias else 3) and all(s == {np.dtype(np.float32)} for s in products)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", ["pal", "bce"])
@pytest.mark.parametrize("which", ["float64 objective, dtype=float32", "float32 objective"])
def test_float32_hessian_products_run_in_float32_throughout(monkeypatch, loss, bias, which):
    """The float32 Hessian products (the first polish of ``precision="mixed"``; and a float32
    objective's own operator): every matrix product, the softmax's column sums and the
    elementwise scalings on float32 operands into float32 results -- single-precision BLAS, the point of the option -- while the
    operator takes and returns float64 vectors."""
    p = _problem("imbalanced", loss, bias, d=4)
    rng = np.random.default_rng(5)
    if which == "float32 objective":
        fg = GroupedObjective(p, dtype=np.float32)
        apply = fg.hessian_operator(0.5 * rng.standard_normal(fg.n_vars).astype(np.float32))
    else:
        fg = GroupedObjective(p)
        apply = fg.hessian_operator(0.5 * rng.standard_normal(fg.n_vars), np.float32)
    calls = []
    matmul, einsum, multiply = np.matmul, np.einsum, np.multiply

    def spy(fn):
        def wrapped(*args, **kwargs):
            res = fn(*args, **kwargs)
            arrays = [a for a in args if isinstance(a, np.ndarray)]
            calls.append({a.dtype for a in arrays} | {np.asarray(res).dtype})
            return res
        return wrapped

    monkeypatch.setattr(grouped.np, "matmul", spy(matmul))
    monkeypatch.setattr(grouped.np, "einsum", spy(einsum))
    monkeypatch.setattr(grouped.np, "multiply", spy(multiply))
    hv = [apply(rng.standard_normal(fg.n_vars)) for _ in range(2)]
    monkeypatch.undo()
    assert all(h.dtype == np.float64 for h in hv)
    # per product: V_W Hs, W (V_Ht r), dG' Ht^T, G' V_Ht^T, W^T dG', V_W^T G' (+ dG' sqrt(n)); V_Ht r and
    # lam_H V_Ht; PAL: the column sums, BCE: the curvature's scaling of dZ
    assert len(calls) == 2 * (6 + bias + 2 + 1)
    assert all(s == {np.dtype(np.float32)} for s in calls), calls

"""The naive peers of ``make bench`` (benchmarks/peers.py): numpy + scipy L-BFGS-B and JAX + optax
L-BFGS, each stopped at a relative gap of 1e-6 to the theorem's optimum, on a tiny problem."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ufm
from benchmarks import peers
from ufm.objectives.full import fun_and_grad
from ufm.objectives.layout import random_point


def _tiny() -> tuple[ufm.UFMProblem, float]:
    p = ufm.UFMProblem(ufm.balanced(4, {1: 3, 2: 1}), d=4, lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
    return p, float(ufm.predict(p).value)


@pytest.mark.parametrize("peer", ["scipy", pytest.param("jax", marks=pytest.mark.slow)])  # jax: ~10 s of XLA compilation
def test_each_peer_stops_at_the_target_and_not_long_after(peer):
    p, F_star = _tiny()
    if peer == "jax":
        pytest.importorskip("optax")
    run = peers.scipy_peer if peer == "scipy" else peers.jax_peer
    r = run(p, F_star, target=1e-6)
    assert r.reached and 0 <= r.rel <= 1e-6  # F >= min F: a lower value would be a wrong objective
    assert r.nit >= 5 and math.isfinite(r.time)
    # the stop is the first iterate below the target: with a looser target it stops earlier
    assert run(p, F_star, target=1e-2).nit < r.nit


def test_the_peers_objective_is_F():
    """The naive numpy objective at a point equals the package's F there (the peers solve the same problem)."""
    from scipy.optimize import minimize

    p, _ = _tiny()
    x = random_point(p, rng=1)
    seen = {}

    def spy(fun, x0, **kw):
        seen["f"], seen["g"] = fun(x0)
        raise StopIteration

    real = minimize
    try:
        import scipy.optimize as so

        so.minimize = spy
        with pytest.raises(StopIteration):
            peers.scipy_peer(p, 1.0, x0=x)
    finally:
        so.minimize = real
    f, g = fun_and_grad(x, p)
    assert abs(seen["f"] - f) <= 1e-13 * abs(f)
    np.testing.assert_allclose(seen["g"], g, rtol=1e-11, atol=1e-15)


def test_paired_rows_and_markdown(monkeypatch):
    """A peer that cannot run (here: JAX, as without the nn extra) is a row skipped with the reason."""
    p, F_star = _tiny()
    monkeypatch.setattr(peers, "jax_available", lambda: "JAX/optax not installed (jax)")
    out = peers.paired(p, F_star, 1)
    assert [r["label"] for r in out["rows"]] == ["naive numpy + scipy L-BFGS-B"]
    assert out["skipped"] == {"naive JAX + optax L-BFGS (jit, float64)": "JAX/optax not installed (jax)"}
    for r in out["rows"]:
        assert r["reached"] and r["ratio"] == pytest.approx(r["peer"] / r["default"])
    text = "\n".join(peers.markdown({"sizes": [{"size": "tiny", "peers": out}]}))
    assert "## The naive peers" in text and "naive numpy + scipy L-BFGS-B" in text
    assert "skipped: JAX/optax not installed (jax)" in text

"""The minibatch optimisers' steps against an independent reference written here.

The reference recomputes everything from the definitions -- the pick-all-label loss
``m LSE(z) - <y, z>`` and its gradient ``m softmax(z) - y`` averaged over the batch, the
ridge on every parameter, heavy-ball SGD (PyTorch's convention ``v <- mu v + g``,
``x <- x - lr v``) and Adam / AdamW (Kingma & Ba with bias correction; Loshchilov &
Hutter's decoupled decay) -- on the same batches (the same seed cuts the same
permutations), and the iterates must agree to rounding. Dropping Adam's bias correction,
the momentum, the decay or the decoupling makes them differ by far more.
"""

from __future__ import annotations

import numpy as np
import pytest

import ufm

PROB = ufm.UFMProblem(ufm.balanced(3, {1: 3, 2: 2}), d=3, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)


def _start(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    K, d, N = PROB.K, PROB.d, PROB.N
    return 0.3 * g.standard_normal((K, d)), 0.3 * g.standard_normal((d, N)), 0.1 * g.standard_normal(K)


def _grad(W, H, b, batch):
    """grad F_B: the batch's mean PAL loss plus the ridge on every parameter (from the definitions)."""
    Y = PROB.design.Y[:, batch].astype(float)
    m = Y.sum(axis=0)
    Z = W @ H[:, batch] + b[:, None]
    P = np.exp(Z - Z.max(axis=0))
    P /= P.sum(axis=0)
    G = (m * P - Y) / len(batch)
    dW = G @ H[:, batch].T + PROB.lam_W * W
    dH = PROB.lam_H * H
    dH[:, batch] += W.T @ G
    db = G.sum(axis=1) + PROB.lam_b * b
    return dW, dH, db


def _reference(method, epochs, bs, lr, seed, *, momentum=0.9, b1=0.9, b2=0.999, eps=1e-8, decoupled=False):
    W, H, b = (a.copy() for a in _start())
    xs = [W, H, b]
    m1 = [np.zeros_like(a) for a in xs]
    m2 = [np.zeros_like(a) for a in xs]
    lams = [PROB.lam_W, PROB.lam_H, PROB.lam_b]
    gen = np.random.default_rng(seed)
    t = 0
    for _ in range(epochs):
        perm = gen.permutation(PROB.N)
        for s in range(0, PROB.N, bs):
            t += 1
            grads = _grad(*xs, np.sort(perm[s:s + bs]))
            for i, (x, g, lam) in enumerate(zip(xs, grads, lams)):
                if method == "sgd":
                    m1[i] = momentum * m1[i] + g
                    x -= lr * m1[i]
                    continue
                if decoupled:
                    g = g - lam * x  # only the loss goes through the moments
                m1[i] = b1 * m1[i] + (1 - b1) * g
                m2[i] = b2 * m2[i] + (1 - b2) * g * g
                mhat, vhat = m1[i] / (1 - b1**t), m2[i] / (1 - b2**t)
                upd = mhat / (np.sqrt(vhat) + eps)
                if decoupled:
                    upd = upd + lam * x
                x -= lr * upd
    return xs


@pytest.mark.parametrize("method,opts", [
    ("sgd", {}),
    ("sgd", {"momentum": 0.5}),
    ("adam", {}),
    ("adam", {"beta1": 0.8, "beta2": 0.99}),
    ("adam", {"decoupled": True}),
])
@pytest.mark.parametrize("bs", [4, 64])  # minibatches (columns outside a batch feel only the decay) and full batch
@pytest.mark.filterwarnings("ignore::ufm.ConvergenceWarning")  # a fixed schedule of 6 epochs is the plan
def test_steps_match_the_reference(method, opts, bs):
    lr = 0.05 if method == "sgd" else 1e-2
    r = ufm.solve(PROB, method, _start(), rng=3, epochs=6, batch_size=bs, lr=lr, lr_schedule="constant",
                  history_every=0, certify=False, history_metrics=False, **opts)
    ref_opts = {{"beta1": "b1", "beta2": "b2"}.get(k, k): v for k, v in opts.items()}
    W, H, b = _reference(method, 6, min(bs, PROB.N), lr, 3, **ref_opts)
    moved = np.linalg.norm(W - _start()[0])
    assert moved > 1e-2  # the run went somewhere: a wrong step would show
    for got, want in ((r.W, W), (r.H, H), (r.b, b)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_the_reference_tells_bias_correction_apart():
    """Adam without bias correction lands far from the reference (so the comparison above can fail)."""
    W, _, _ = _reference("adam", 6, 4, 1e-2, 3)

    def no_correction():
        xs = [a.copy() for a in _start()]
        m1 = [np.zeros_like(a) for a in xs]
        m2 = [np.zeros_like(a) for a in xs]
        gen = np.random.default_rng(3)
        for _ in range(6):
            perm = gen.permutation(PROB.N)
            for s in range(0, PROB.N, 4):
                for i, (x, g) in enumerate(zip(xs, _grad(*xs, np.sort(perm[s:s + 4])))):
                    m1[i] = 0.9 * m1[i] + 0.1 * g
                    m2[i] = 0.999 * m2[i] + 0.001 * g * g
                    x -= 1e-2 * m1[i] / (np.sqrt(m2[i]) + 1e-8)
        return xs[0]

    assert np.linalg.norm(no_correction() - W) > 1e-3 * np.linalg.norm(W)

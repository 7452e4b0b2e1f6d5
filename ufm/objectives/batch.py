"""``F_B``, the objective of one minibatch of samples, for the minibatch solvers
(:mod:`ufm.solvers.minibatch`): :class:`MinibatchObjective`."""

from __future__ import annotations

import numpy as np

from ..losses import LOSS_FUNCTIONS
from ..problem import UFMProblem
from .layout import unpack


class MinibatchObjective:
    """``F_B`` and its exact gradient (packed, dense) for a batch of sample indices.

    ``loss_grad(x, batch, out)`` writes the gradient of the batch's mean loss into ``out``
    (zero outside ``W``, the batch's columns of ``H`` and ``b``) and returns the loss;
    :attr:`lam` (n_vars,) holds the ridge weights, so ``grad F_B = out + lam * x``.
    """

    def __init__(self, problem: UFMProblem) -> None:
        self.problem = problem
        K, d, N = problem.K, problem.d, problem.N
        self.loss = LOSS_FUNCTIONS[problem.loss]
        self.Y, self.m = problem.design.Y, problem.design.m
        nb = K if problem.bias else 0
        self.lam = np.concatenate([np.full(K * d, problem.lam_W), np.full(d * N, problem.lam_H),
                                   np.full(nb, problem.lam_b)])

    def loss_grad(self, x: np.ndarray, batch: np.ndarray, out: np.ndarray) -> float:
        p = self.problem
        W, H, b = unpack(x, p)
        dW, dH, db = unpack(out, p)
        Hb = H[:, batch]
        Z = W @ Hb
        if p.bias:
            Z += b[:, None]
        L, G = self.loss(Z, self.Y[:, batch], self.m[batch])  # mean over the batch, G = dL/dZ
        out[...] = 0.0
        np.matmul(G, Hb.T, out=dW)
        dH[:, batch] = W.T @ G
        if p.bias:
            G.sum(axis=1, out=db)
        return L

    def value_and_grad(self, x: np.ndarray, batch: np.ndarray) -> tuple[float, np.ndarray]:
        """``F_B(x)`` and its gradient (a new array): for checks and tests."""
        g = np.empty_like(x)
        L = self.loss_grad(x, batch, g)
        g += self.lam * x
        return L + 0.5 * float(x @ (self.lam * x)), g

"""One objective-and-gradient evaluation against the three matrix products it needs.

``F`` and its gradient need ``Z = W H`` (K x d x N), ``G H^T`` and ``W^T G``; everything
else (bias, softmax, loss, penalties) is ``O(K N + d N)`` work. The reference is the
fastest of the layouts numpy offers for each product (``A @ B`` and the transposed
forms), so the ratio does not flatter the evaluation. Evaluations and products are timed
alternately, ``repeats`` times each; medians are reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

import ufm
from ufm.objectives.full import Evaluator
from ufm.objectives.layout import unpack

from .ladder import start


@dataclass
class EvalTiming:
    evaluation: float  # median seconds of one F-and-gradient evaluation
    matmuls: float  # median seconds of the three products (best layout each)
    matmuls_naive: float  # ... as `W @ H`, `G @ H.T`, `W.T @ G`
    per_product: dict[str, float]
    repeats: int

    @property
    def ratio(self) -> float:
        return self.evaluation / self.matmuls


def _t(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(problem: ufm.UFMProblem, repeats: int = 7) -> EvalTiming:
    x = start(problem)
    W, H, b = unpack(x, problem)
    rng = np.random.default_rng(1)
    G = rng.standard_normal((problem.K, problem.N)) / problem.N  # a dense (K, N) like the gradient
    ev = Evaluator(problem)
    g = np.empty_like(x)
    Z = np.empty((problem.K, problem.N))
    dW = np.empty((problem.K, problem.d))
    dH = np.empty((problem.d, problem.N))
    products = {
        "W H": [lambda: np.matmul(W, H, out=Z)],
        "G H^T": [lambda: np.matmul(G, H.T, out=dW), lambda: np.matmul(H, G.T, out=dW.T)],
        "W^T G": [lambda: np.matmul(W.T, G, out=dH), lambda: np.matmul(G.T, W, out=dH.T)],
    }
    ev(x, out=g)  # warm up
    for fns in products.values():
        for fn in fns:
            fn()
    t_eval: list[float] = []
    t_prod: dict[str, list[list[float]]] = {k: [[] for _ in v] for k, v in products.items()}
    for _ in range(repeats):
        t_eval.append(_t(lambda: ev(x, out=g)))
        for name, fns in products.items():
            for j, fn in enumerate(fns):
                t_prod[name][j].append(_t(fn))
    med = {name: [statistics.median(ts) for ts in lists] for name, lists in t_prod.items()}
    best = {name: min(v) for name, v in med.items()}
    return EvalTiming(
        evaluation=statistics.median(t_eval), matmuls=sum(best.values()),
        matmuls_naive=sum(v[0] for v in med.values()), per_product=best, repeats=repeats,
    )

r"""A small MLP in JAX (float64) and its training objective: imported only when a network
is trained (``import ufm`` never loads JAX).

The network maps pixels ``x`` (64,) to features ``h = f_theta(x)`` (d,) through ReLU
hidden layers and a final *linear* layer (the features are not clipped at 0: the UFM's
features are free vectors); the classifier is ``z = W h + b``. Importing this module
switches JAX to float64 (``jax_enable_x64``), the project's precision.

The minibatch objective of a batch ``B`` is

.. math::

    \frac{1}{|B|}\sum_{i\in B}\Big(\ell(W h_i + b; y_i) + \frac{N\lambda_H}{2}\|h_i\|^2\Big)
    + \frac{\lambda_W}{2}\|W\|_F^2 + \frac{\lambda_b}{2}\|b\|^2
    + \frac{\lambda_\theta}{2}\|\theta\|^2 ,

whose expectation over ``B`` is ``F(W, H_theta, b) + lam_theta/2 ||theta||^2`` with ``F``
the UFM objective at the same ``lam_W, lam_H, lam_b`` (``lam_H`` on the *sum* over the N
training samples, as in ``F``: the official code's penalty ``lam/2 mean_i ||h_i||^2`` is
``lam_H = lam / N``). With a fixed classifier ``W`` is a constant.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402  (after the float64 switch)
import optax  # noqa: E402

Params = dict[str, Any]


def init_backbone(key: Any, sizes: list[int]) -> list[tuple[Any, Any]]:
    """He-initialised layers ``(A (n_in, n_out), c (n_out,))`` for ``sizes = [64, ..., d]``."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        A = jax.random.normal(sub, (n_in, n_out), dtype=jnp.float64) * jnp.sqrt(2.0 / n_in)
        layers.append((A, jnp.zeros(n_out, dtype=jnp.float64)))
    return layers


def features(backbone: list[tuple[Any, Any]], X: Any) -> Any:
    """``H^T`` (n, d) of pixels ``X`` (n, 64): ReLU hidden layers, linear last layer."""
    for A, c in backbone[:-1]:
        X = jax.nn.relu(X @ A + c)
    A, c = backbone[-1]
    return X @ A + c


def objective(trainable: Params, frozen: Params, Xb: Any, Yb: Any, mb: Any, lams: Any) -> Any:
    """The minibatch objective above; ``lams = (N lam_H, lam_W, lam_b, lam_theta)``."""
    params = {**frozen, **trainable}
    Hb = features(params["backbone"], Xb)  # (n, d)
    Z = Hb @ params["W"].T + params["b"]  # (n, K)
    lse = jax.nn.logsumexp(Z, axis=1)
    loss = jnp.mean(mb * lse - jnp.sum(Yb * Z, axis=1))
    nlam_H, lam_W, lam_b, lam_t = lams
    reg = 0.5 * nlam_H * jnp.mean(jnp.sum(Hb * Hb, axis=1))
    reg += 0.5 * lam_b * jnp.sum(params["b"] ** 2)
    if "W" in trainable:
        reg += 0.5 * lam_W * jnp.sum(params["W"] ** 2)
    reg += 0.5 * lam_t * sum(jnp.sum(A * A) + jnp.sum(c * c) for A, c in params["backbone"])
    return loss + reg


@functools.lru_cache(maxsize=8)
def optimizer_and_step(name: str, momentum: float) -> tuple[Any, Any]:
    """The optimiser and its jitted step, cached: runs with the same optimiser (and array
    shapes) reuse the compiled step instead of tracing and compiling it again."""
    opt = make_optimizer(name, momentum)
    return opt, make_step(opt)


def make_optimizer(name: str, momentum: float) -> Any:
    """SGD with heavy-ball momentum or Adam, the learning rate injectable per epoch."""
    if name == "sgd":
        return optax.inject_hyperparams(optax.sgd)(learning_rate=0.0, momentum=momentum or None)
    return optax.inject_hyperparams(optax.adam)(learning_rate=0.0)


def make_step(opt: Any) -> Any:
    """A jitted step ``(trainable, opt_state, frozen, Xb, Yb, mb, lams) -> (trainable, opt_state)``."""

    @jax.jit
    def step(trainable: Params, opt_state: Any, frozen: Params, Xb: Any, Yb: Any, mb: Any, lams: Any):
        grads = jax.grad(objective)(trainable, frozen, Xb, Yb, mb, lams)
        updates, opt_state = opt.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state

    return step


def set_lr(opt_state: Any, lr: float) -> None:
    opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, dtype=jnp.float64)


def to_numpy(a: Any) -> np.ndarray:
    return np.array(a, dtype=np.float64)

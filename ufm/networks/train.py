"""Train a small network on multi-label digits and read its last layer as a UFM point.

:func:`network` is a method of :func:`ufm.solve`: for a problem whose design the digits
can realise (K <= 10 classes, label sets of size 1 and 2; see :mod:`ufm.networks.data`),
it builds the training samples in the design's canonical order, trains an MLP
(:mod:`ufm.networks.mlp`, JAX) with the PAL loss, the feature penalty ``lam_H``, the
decays ``lam_W`` and ``lam_b`` of ``F`` and a backbone decay ``weight_decay``, and
returns the last layer ``(W, H, b)`` -- ``H`` the features of the N training samples --
as a :class:`~ufm.result.Result`. The network is then a *constrained* solver of ``F``
(``H`` must be realised by the backbone), and the certified gap of
:func:`ufm.certify` says how far from ``min F`` it ends.

``Result.history`` per recorded epoch: ``iter`` (epochs), ``fun`` (``F`` at the last
layer), ``grad_norm`` (of ``F`` in ``(W, H, b)``), NC metrics, ``gap``/``rel_gap``
(certified), ``lr``, ``scale_m`` (measured tag-wise scale per multiplicity m >= 2),
``train_acc``/``test_acc`` (top-m decoding: the m largest logits, m the true
multiplicity) and ``train_proto_acc``/``test_proto_acc`` (nearest prototype
``c_m mean_{k in S} h_k`` among the design's label sets, prototypes and ``c_m`` from the
training features; no knowledge of m).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..designs import as_rng
from ..exceptions import UFMError, param_error
from ..metrics import Groups
from ..objectives.layout import pack
from ..problem import UFMProblem
from ..result import Result, Status
from ..solvers._common import check_options, finish
from ..solvers.minibatch import SCHEDULES, Recorder, run_epochs, tag_scales
from ..theory import NOT_APPLICABLE, TRIVIAL, predict, predicted_minimizer

NETWORK_DEFAULTS: dict[str, Any] = {
    "epochs": 150, "batch_size": 64, "optimizer": "adam", "lr": 3e-3, "momentum": 0.9,
    "lr_schedule": "cosine", "hidden": [128, 128], "weight_decay": 5e-4, "fixed_classifier": False,
    "test_fraction": 1 / 3, "data_seed": 0, "history_every": 1, "history_metrics": True,
    "certify": True, "progress": False, "callback": None, "on_epoch": None,
}
OPTIMIZERS = ("sgd", "adam")


def topm_accuracy(Z: np.ndarray, Y: np.ndarray) -> float:
    """Share of samples whose m largest logits (``Z`` (K, n)) are exactly their label set."""
    m = Y.sum(axis=0).astype(np.int64)
    order = np.argsort(-Z, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(Z.shape[0])[:, None].repeat(Z.shape[1], axis=1), axis=0)
    pred = ranks < m[None, :]
    return float(np.mean(np.all(pred == (Y > 0), axis=0)))


def prototypes(H: np.ndarray, Y: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """The design's label sets and their prototypes ``c_m mean_{k in S} h_k`` (d, G) from
    training features ``H`` (d, N): ``h_k`` the single-label means, ``c_m`` the measured
    mean tag-wise scale (``c_1 = 1``)."""
    groups = Groups.from_arrays(H, Y)
    ref = groups.single_means
    if ref is None:
        raise UFMError("Prototype decoding needs single-label training samples of every class.")
    scale = {1: 1.0, **tag_scales(H, Y)}
    P = np.stack([scale[len(S)] * ref[:, list(S)].mean(axis=1) for S in groups.sets], axis=1)
    return list(groups.sets), P


def prototype_accuracy(sets: list[tuple[int, ...]], P: np.ndarray, H: np.ndarray, Y: np.ndarray) -> float:
    """Share of samples (``H`` (d, n)) whose nearest prototype is their label set."""
    pn = np.sum(P * P, axis=0)
    nearest = np.argmin(pn[None, :] - 2 * (H.T @ P), axis=1)
    truth = [tuple(np.flatnonzero(col).tolist()) for col in (Y > 0).T]
    return float(np.mean([sets[g] == t for g, t in zip(nearest, truth)]))


def fixed_etf(problem: UFMProblem, spec: bool | str = True) -> np.ndarray:
    """The frozen classifier: ``True``, the theorem's optimal ``W`` (a simplex ETF at the
    optimal norm); ``"etf[:SCALE]"``, a simplex ETF with rows of norm SCALE (default 1), as
    ``ufm solve --fixed-classifier``."""
    if isinstance(spec, str):
        from ..fixed import parse_fixed

        return parse_fixed(spec, problem.K, problem.d)
    pred = predict(problem)
    if pred.regime in (NOT_APPLICABLE, TRIVIAL):
        raise UFMError(f"A fixed ETF classifier needs the theorem's collapse regime; here: {pred.reason}.")
    W, _, _ = predicted_minimizer(problem, pred)
    return W


def _check(o: dict[str, Any], problem: UFMProblem) -> None:
    if problem.loss != "pal":
        raise UFMError(f"The network is trained with the PAL loss; the problem has loss {problem.loss!r}.")
    if not problem.bias:
        raise UFMError("The network has a bias; give a problem with bias=True.")
    for name in ("epochs", "batch_size"):
        v = o[name]
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (name == "batch_size"):
            raise param_error("network", name, "an int >= 1" if name == "batch_size" else "an int >= 0", v)
    if o["optimizer"] not in OPTIMIZERS:
        raise param_error("network", "optimizer", f"one of {OPTIMIZERS}", o["optimizer"])
    if o["lr_schedule"] not in SCHEDULES:
        raise param_error("network", "lr_schedule", f"one of {SCHEDULES}", o["lr_schedule"])
    lr = o["lr"]
    if not (isinstance(lr, (int, float, np.floating)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        raise param_error("network", "lr", "a float > 0 (a step <= 0 climbs the loss)", lr)
    hidden = o["hidden"]
    if not (isinstance(hidden, (list, tuple)) and all(isinstance(h, int) and h >= 1 for h in hidden)):
        raise param_error("network", "hidden", "a list of layer widths (ints >= 1)", hidden)


def network(problem: UFMProblem, x0: Any = None, *, rng: np.random.Generator | int | None = None,
            **options: Any) -> Result:
    """Train an MLP on multi-label digits with the design of ``problem``; its last layer.

    Options: ``epochs`` (150), ``batch_size`` (64), ``optimizer`` ("adam", or "sgd" with
    ``momentum`` 0.9), ``lr`` (3e-3), ``lr_schedule`` ("cosine"; see
    :func:`ufm.solvers.minibatch.learning_rate`), ``hidden`` ([128, 128] ReLU widths; the
    feature layer has ``problem.d`` units), ``weight_decay`` (5e-4, on the backbone),
    ``fixed_classifier`` (False; True freezes ``W`` at the theorem's optimal simplex ETF,
    ``"etf:SCALE"`` at a simplex ETF with rows of norm SCALE),
    ``test_fraction`` (1/3 of each digit's images held out), ``data_seed`` (0: the split
    and the images drawn), ``history_every`` (1), ``history_metrics``, ``certify``,
    ``progress``, ``callback(epoch, None, F) -> stop?`` and ``on_epoch(epoch, state)``
    (``state``: ``W``, ``H``, ``b``, ``H_test``, ``Y_test``, ``Y``; for exports).
    ``rng`` seeds the initialisation and the batches. Needs the extra ``ufm[nn]`` (JAX,
    optax, scikit-learn).
    """
    if x0 is not None:
        raise UFMError("The network method trains from a random initialisation; drop `x0`.")
    o = check_options("network", options, NETWORK_DEFAULTS)
    _check(o, problem)
    from .data import multilabel_digits

    data = multilabel_digits(problem.design, test_fraction=float(o["test_fraction"]), rng=int(o["data_seed"]))
    try:
        import jax

        from . import mlp
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise UFMError("Training a network needs JAX and optax: pip install 'ufm[nn]'.") from None
    gen = as_rng(rng)
    t0 = time.perf_counter()
    K, d, N = problem.K, problem.d, problem.N
    key = jax.random.PRNGKey(int(gen.integers(2**31)))
    k_net, k_w = jax.random.split(key)
    backbone = mlp.init_backbone(k_net, [data.X_train.shape[1], *o["hidden"], d])
    W0 = (fixed_etf(problem, o["fixed_classifier"]) if o["fixed_classifier"]
          else np.asarray(jax.random.normal(k_w, (K, d), dtype="float64")) / math.sqrt(d))
    trainable: dict[str, Any] = {"backbone": backbone, "b": jax.numpy.zeros(K)}
    frozen: dict[str, Any] = {}
    (frozen if o["fixed_classifier"] else trainable)["W"] = jax.numpy.asarray(W0)
    opt, step_fn = mlp.optimizer_and_step(o["optimizer"], float(o["momentum"]))
    opt_state = opt.init(trainable)
    lams = jax.numpy.asarray([N * problem.lam_H, problem.lam_W, problem.lam_b, float(o["weight_decay"])])
    Xtr = jax.numpy.asarray(data.X_train)
    Ytr_nk = jax.numpy.asarray(data.Y_train.T)
    m_tr = jax.numpy.asarray(data.Y_train.sum(axis=0))
    Xte = jax.numpy.asarray(data.X_test)
    epochs, bs = int(o["epochs"]), min(int(o["batch_size"]), N)
    rec = Recorder(problem, o["history_every"], o["history_metrics"], o["certify"])
    extra_keys = ["train_acc", "test_acc", "train_proto_acc", "test_proto_acc"]
    for k in extra_keys:
        rec.hist.data[k] = []

    def last_layer(params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        H = mlp.to_numpy(mlp.features(params["backbone"], Xtr)).T
        Ht = mlp.to_numpy(mlp.features(params["backbone"], Xte)).T
        return mlp.to_numpy(params["W"]), H, mlp.to_numpy(params["b"]), Ht

    def observe(epoch: int, lr: float, force: bool = False) -> Status | None:
        params = {**frozen, **trainable}
        W, H, b, Ht = last_layer(params)
        x = pack(W, H, b, True)
        got = rec.record(epoch, x, lr, force=force)
        if got is not None:
            h = rec.hist.data
            sets, P = prototypes(H, data.Y_train)
            h["train_acc"].append(topm_accuracy(W @ H + b[:, None], data.Y_train))
            h["test_acc"].append(topm_accuracy(W @ Ht + b[:, None], data.Y_test))
            h["train_proto_acc"].append(prototype_accuracy(sets, P, H, data.Y_train))
            h["test_proto_acc"].append(prototype_accuracy(sets, P, Ht, data.Y_test))
        if o["on_epoch"] is not None:
            o["on_epoch"](epoch, {"W": W, "H": H, "b": b, "Y": data.Y_train, "H_test": Ht, "Y_test": data.Y_test})
        last_f[0] = got[0] if got is not None else last_f[0]
        return Status.NUMERICAL_ERROR if got is not None and not math.isfinite(got[0]) else None

    def step(batch: np.ndarray, lr: float, t: int) -> None:
        nonlocal trainable, opt_state
        if t == 1 or lr != state_lr[0]:
            mlp.set_lr(opt_state, lr)
            state_lr[0] = lr
        trainable, opt_state = step_fn(trainable, opt_state, frozen, Xtr[batch], Ytr_nk[batch], m_tr[batch], lams)

    last_f, state_lr = [math.nan], [math.nan]
    status, epoch, steps, lr = run_epochs(
        "network", N=N, batch_size=bs, epochs=epochs, gen=gen, lr=float(o["lr"]), schedule=o["lr_schedule"],
        observe=observe, step=step, stop=lambda e: bool(o["callback"] and o["callback"](e, None, last_f[0])),
        progress=o["progress"])
    if status != Status.INTERRUPTED and not (rec.hist.data["iter"] and rec.hist.data["iter"][-1] == epoch):
        observe(epoch, lr, force=True)
    W, H, b, _ = last_layer({**frozen, **trainable})
    x = pack(W, H, b, True)
    return finish(problem, "network", x, status, nit=epoch, nfev=steps, t0=t0, history=rec.hist,
                  unit="epochs", hint="a network runs a fixed schedule of `epochs`; the certified gap in the history "
                       "says how far from min F it ended",
                  extra={"steps": steps, "fixed_classifier": bool(o["fixed_classifier"]),
                         "optimizer": o["optimizer"], "hidden": list(o["hidden"])})


r"""Minibatch training on the UFM itself: SGD with momentum and Adam / AdamW.

The training dynamics a network's optimiser would follow if its features were free
parameters. Each step draws a minibatch ``B`` (a random permutation of the N samples is
cut into batches of ``batch_size`` every epoch) and steps along the exact gradient of

.. math::

    F_B(W, H, b) = \frac{1}{|B|} \sum_{i\in B} \ell(W h_i + b; y_i)
        + \frac{\lambda_W}{2}\|W\|_F^2 + \frac{\lambda_H}{2}\|H\|_F^2
        + \frac{\lambda_b}{2}\|b\|^2,

the regularisers exactly as in ``F`` (weight decay on every parameter, ``H`` included, as
when ``H`` is a parameter tensor), so that its expectation over a uniformly drawn ``B`` is ``F`` and the
expected step is a step along ``grad F``. The update is
dense (every entry of ``(W, H, b)`` moves, as an optimiser does with one parameter
tensor): columns of ``H`` outside the batch feel only the decay and their momentum.

- :func:`sgd`: heavy-ball SGD, ``v <- momentum v + g``, ``x <- x - lr v`` (PyTorch's
  convention, weight decay coupled: it is part of ``g``).
- :func:`adam`: Adam (Kingma & Ba) on ``g = grad F_B``; with ``decoupled=True`` AdamW
  (Loshchilov & Hutter): the loss gradient goes through Adam's moments and the ridge
  gradient ``lam x`` is applied directly, ``x <- x - lr (mhat/(sqrt(vhat)+eps) + lam x)``.
  AdamW's fixed points are *not* critical points of ``F`` in general; the certified gap
  in ``Result.history`` measures how far from ``min F`` it ends.

Learning-rate schedules (per epoch ``e = 0 .. epochs-1``): ``"constant"``, ``"cosine"``
(``lr (1 + cos(pi e / epochs)) / 2``) and ``"step"`` (``lr`` times 0.1 from epoch
``epochs // 3`` and 0.01 from ``2 epochs // 3``, the usual schedule of the neural-collapse
experiments).

``Result.history`` holds, every ``history_every`` epochs (and at the end): ``iter``
(epochs done), ``fun`` (the full ``F``), ``grad_norm`` (of the full gradient), the NC
metrics, ``scale_m`` (the measured tag-wise scale per multiplicity m >= 2, to compare with
the theorem's ``c_m``), ``gap`` and ``rel_gap`` (the certified gap of :func:`ufm.certify`: ``F`` minus a
certified lower bound on ``min F``) and ``lr``. ``nit`` counts epochs; ``extra["steps"]``
the minibatch steps. A fixed schedule ends with status ``MAX_ITER`` (and a
``ConvergenceWarning``) unless ``gtol > 0`` is met at a recorded epoch first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..certificate import certify
from ..designs import as_rng
from ..exceptions import UFMError, param_error
from ..metrics import Groups
from ..objectives import batch_objective, full_objective, unpack
from ..problem import UFMProblem
from ..result import Result, Status
from ._common import History, check_options, finish, progress_bar, starting_point

SCHEDULES = ("constant", "cosine", "step")
_COMMON: dict[str, Any] = {
    "epochs": 200, "batch_size": 64, "lr_schedule": "constant", "gtol": 0.0, "history_every": 1,
    "history_metrics": True, "certify": True, "init_scale": 0.1, "progress": False, "callback": None,
}
SGD_DEFAULTS: dict[str, Any] = {**_COMMON, "lr": 0.05, "momentum": 0.9}
ADAM_DEFAULTS: dict[str, Any] = {**_COMMON, "lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                 "decoupled": False}


def learning_rate(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate of ``epoch`` (0-based) under ``schedule`` (see the module doc)."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
    if schedule == "step":
        return lr * (0.01 if epoch >= 2 * epochs // 3 else 0.1 if epoch >= epochs // 3 else 1.0)
    raise UFMError(f"Unknown lr_schedule {schedule!r}; choose one of {SCHEDULES}.")


def _check(method: str, o: dict[str, Any], N: int) -> None:
    for name in ("epochs", "batch_size"):
        v = o[name]
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (1 if name == "batch_size" else 0):
            raise param_error(method, name, "an int >= 1" if name == "batch_size" else "an int >= 0", v)
    if o["lr_schedule"] not in SCHEDULES:
        raise param_error(method, "lr_schedule", f"one of {SCHEDULES}", o["lr_schedule"])
    if not (isinstance(o["lr"], (int, float)) and o["lr"] > 0 and math.isfinite(o["lr"])):
        raise param_error(method, "lr", "a float > 0", o["lr"])
    if int(o["batch_size"]) > N:
        o["batch_size"] = N  # one batch: full-batch steps


def tag_scales(H: np.ndarray, Y: np.ndarray) -> dict[int, float]:
    """Mean tag-wise scale ``||h_S|| / ||mean_{k in S} h_k||`` per multiplicity ``m >= 2``
    (``h_k`` the single-label means): the ``scale`` of :func:`ufm.metrics.tagwise` without
    its all-pairs angle matrix (quadratic in the number of label sets), for per-epoch use."""
    groups = Groups.from_arrays(H, Y)
    ref = groups.single_means
    out: dict[int, float] = {}
    if ref is None:
        return out
    for mm in sorted({int(v) for v in groups.multiplicity if v >= 2}):
        gs = np.flatnonzero(groups.multiplicity == mm)
        means = np.stack([ref[:, list(groups.sets[g])].mean(axis=1) for g in gs], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            sc = np.linalg.norm(groups.means[:, gs], axis=0) / np.linalg.norm(means, axis=0)
        sc = sc[np.isfinite(sc)]
        out[mm] = float(sc.mean()) if sc.size else float("nan")
    return out


class Recorder:
    """History of the full ``F``, gradient norm, NC metrics, certified gap and lr per epoch."""

    def __init__(self, problem: UFMProblem, every: int, metrics: bool, cert: bool) -> None:
        self.problem, self.cert = problem, cert and problem.loss != "bce"
        self.hist = History(problem, every, metrics)
        self.ev = full_objective(problem)
        for key in ("gap", "rel_gap", "lr"):
            self.hist.data[key] = []
        self.mults = sorted({len(S) for S in problem.design.sets if len(S) >= 2}) if metrics else []
        for mm in self.mults:
            self.hist.data[f"scale_{mm}"] = []

    def record(self, epoch: int, x: np.ndarray, lr: float, force: bool = False) -> tuple[float, np.ndarray] | None:
        h = self.hist
        if not force and (h.every <= 0 or epoch % h.every):
            return None
        if h.data["iter"] and h.data["iter"][-1] == epoch:
            return None
        f, g = self.ev.value_and_grad(x)
        h.maybe_record(epoch, x, f, float(np.linalg.norm(g)), force=True)
        gap = rel = float("nan")
        if self.cert and np.all(np.isfinite(x)):
            W, H, b = unpack(x, self.problem)
            c = certify(self.problem, W, H, b)
            gap, rel = c.gap, c.rel_gap
        h.data["gap"].append(gap)
        h.data["rel_gap"].append(rel)
        h.data["lr"].append(float(lr))
        if self.mults:
            W, H, _ = unpack(x, self.problem)
            sc = tag_scales(H, self.problem.design.Y)
            for mm in self.mults:
                h.data[f"scale_{mm}"].append(sc.get(mm, float("nan")))
        return f, g


def run_epochs(
    method: str, *, N: int, batch_size: int, epochs: int, gen: np.random.Generator, lr: float, schedule: str,
    observe: Callable[[int, float], Status | None], step: Callable[[np.ndarray, float, int], None],
    stop: Callable[[int], bool], progress: bool,
) -> tuple[Status, int, int, float]:
    """The epoch loop shared by the minibatch methods and :func:`ufm.networks.train.network`.

    Before every epoch (and after the last) ``observe(epoch, lr)`` may end the run with a
    status; ``stop(epoch)`` (the user's callback) may end it too. Each epoch cuts a fresh
    permutation of the N samples into batches (sorted indices) and calls
    ``step(batch, lr, t)``, ``t`` the 1-based step count. Returns ``(status, epochs done,
    steps, last lr)``; status ``MAX_ITER`` when the schedule ran out.
    """
    bar = progress_bar(progress, epochs, method)
    steps, status, epoch = 0, Status.MAX_ITER, 0
    cur = learning_rate(lr, schedule, 0, epochs)
    try:
        while True:
            done = observe(epoch, cur)
            if done is not None:
                status = done
                break
            if epoch >= epochs or stop(epoch):
                break
            cur = learning_rate(lr, schedule, epoch, epochs)
            perm = gen.permutation(N)
            for start in range(0, N, batch_size):
                steps += 1
                step(np.sort(perm[start:start + batch_size]), cur, steps)
            epoch += 1
            bar.update()
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
    finally:
        bar.close()
    return status, epoch, steps, cur


def _run(method: str, problem: UFMProblem, x0: Any, rng: Any, o: dict[str, Any]) -> Result:
    _check(method, o, problem.N)
    gen = as_rng(rng)
    x = starting_point(problem, x0, o["init_scale"], gen)
    t0 = time.perf_counter()
    mb = batch_objective(problem)
    rec = Recorder(problem, o["history_every"], o["history_metrics"], o["certify"])
    epochs, bs, N = int(o["epochs"]), int(o["batch_size"]), problem.N
    g = np.empty_like(x)
    buf1, buf2 = np.zeros_like(x), np.zeros_like(x)  # momentum / Adam's two moments
    tmp = np.empty_like(x)

    def observe(epoch: int, lr: float) -> Status | None:
        got = rec.record(epoch, x, lr)
        if got is None:
            return None
        f_now, g_now = got
        if not (math.isfinite(f_now) and np.all(np.isfinite(g_now))):
            return Status.NUMERICAL_ERROR
        if o["gtol"] > 0 and float(np.linalg.norm(g_now)) <= o["gtol"]:
            return Status.CONVERGED_GTOL
        return None

    def step(batch: np.ndarray, lr: float, t: int) -> None:
        # in place on the closure's arrays (np.add(a, b, out=a) is a += b)
        mb.loss_grad(x, batch, g)
        if method == "sgd":
            np.add(g, mb.lam * x, out=g)  # coupled weight decay: the ridge is part of grad F_B
            np.multiply(buf1, o["momentum"], out=buf1)
            np.add(buf1, g, out=buf1)
            np.subtract(x, lr * buf1, out=x)
            return
        b1, b2 = o["beta1"], o["beta2"]
        if not o["decoupled"]:
            np.add(g, mb.lam * x, out=g)
        np.multiply(buf1, b1, out=buf1)
        np.add(buf1, (1 - b1) * g, out=buf1)
        np.multiply(buf2, b2, out=buf2)
        np.add(buf2, (1 - b2) * (g * g), out=buf2)
        np.sqrt(buf2 / (1 - b2**t), out=tmp)
        np.add(tmp, o["eps"], out=tmp)
        np.divide(buf1 / (1 - b1**t), tmp, out=tmp)
        if o["decoupled"]:
            np.add(tmp, mb.lam * x, out=tmp)
        np.subtract(x, lr * tmp, out=x)

    def stop(epoch: int) -> bool:
        fun = rec.hist.data["fun"]
        return bool(o["callback"] and o["callback"](epoch, x, fun[-1] if fun else math.nan))

    status, epoch, steps, lr = run_epochs(method, N=N, batch_size=bs, epochs=epochs, gen=gen, lr=float(o["lr"]),
                                          schedule=o["lr_schedule"], observe=observe, step=step, stop=stop,
                                          progress=o["progress"])
    if status != Status.INTERRUPTED:
        rec.record(epoch, x, lr, force=True)
    hint = ("minibatch methods run a fixed schedule: raise `epochs`, decay the learning rate "
            "(`lr_schedule`), or set `gtol`")
    res = finish(problem, method, x, status, nit=epoch, nfev=steps + rec.ev.nfev, t0=t0,
                 history=rec.hist, hint=hint, unit="epochs",
                 extra={"steps": steps, "batch_size": bs, "lr_schedule": o["lr_schedule"],
                        "decoupled": bool(o.get("decoupled", False))})
    return res


def sgd(problem: UFMProblem, x0: np.ndarray | tuple | None = None, *,
        rng: np.random.Generator | int | None = None, **options: Any) -> Result:
    """Minibatch SGD with heavy-ball momentum on ``F`` (see the module doc).

    Options: ``epochs`` (200), ``batch_size`` (64; capped at N), ``lr`` (0.05),
    ``momentum`` (0.9), ``lr_schedule`` ("constant", "cosine", "step"), ``gtol`` (0: off;
    full-gradient norm checked at recorded epochs), ``history_every`` (1 epoch),
    ``history_metrics`` (True), ``certify`` (True: the certified gap in the history),
    ``init_scale`` (0.1), ``progress``, ``callback(epoch, x, F) -> stop?``. ``rng`` seeds
    both the start and the batches.
    """
    return _run("sgd", problem, x0, rng, check_options("sgd", options, SGD_DEFAULTS))


def adam(problem: UFMProblem, x0: np.ndarray | tuple | None = None, *,
         rng: np.random.Generator | int | None = None, **options: Any) -> Result:
    """Minibatch Adam on ``F``; ``decoupled=True`` gives AdamW (see the module doc).

    Options as :func:`sgd`, with ``lr`` (1e-2), ``beta1`` (0.9), ``beta2`` (0.999),
    ``eps`` (1e-8) and ``decoupled`` (False) instead of ``momentum``.
    """
    return _run("adam", problem, x0, rng, check_options("adam", options, ADAM_DEFAULTS))

r"""Features of a solution or of a trained network: load, measure, describe the geometry.

The ``.npz`` layout read by :func:`load_npz` and ``ufm metrics FILE.npz``: see ``LAYOUT``
(printed by ``ufm metrics --help``).

Samples may come in any order; features exported as (N, d) or labels as (N, K) must be
transposed first (the error message says so). ``ufm solve --save`` writes this layout.
With a network, ``lam_H`` is the decay on ``||H||_F^2`` summed over samples (docs/theory.md,
section 2): a penalty on the *mean* feature norm ``lam/2 mean ||h_i||^2`` is
``lam_H = lam / N`` here.

:func:`measure` returns every metric of docs/theory.md section 6 (:func:`ufm.metrics.all_metrics`),
the per-class and per-label-set geometry (:func:`geometry`) and, when the weight decays
are known, ``F``, the certified lower bound and the theorem's prediction.
"""

from __future__ import annotations

import math
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import UFMError
from .files import save_npz_atomic
from .layout import LAYOUT  # noqa: F401  (ufm.features.LAYOUT, as before)
from .metrics import Groups, all_metrics, nc2_w

MAX_ENTRY = 1e100  # |entries| above this overflow ||.||^2 or W H in float64


def save_npz(path: str | Path, **arrays: Any) -> None:
    """A byte-reproducible ``.npz`` written atomically; refuses to overwrite a file ufm did not write."""
    save_npz_atomic(path, **arrays)


def _shape_error(name: str, want: str, got: tuple, hint: str = "") -> UFMError:
    return UFMError(f"'{name}' in the .npz must have shape {want}; got {got}.{(' ' + hint) if hint else ''}")


def _real_array(path: Path, name: str, value: Any) -> np.ndarray:
    from .validate import real_array

    return real_array(name, value, str(path))


def _scalar(path: Path, name: str, value: Any) -> float:
    arr = np.asarray(value)
    if arr.shape != () or arr.dtype.kind not in "biuf":
        raise UFMError(f"{path}: '{name}' must be a real number (a 0-d numeric array); got "
                       f"{arr.dtype} of shape {arr.shape}.")
    v = float(arr)
    if not (np.isfinite(v) and v >= 0):
        raise UFMError(f"{path}: '{name}' must be finite and >= 0; got {v!r}.")
    return v


def load_npz(path: str | Path, *, need_Y: bool = True) -> dict[str, Any]:
    """Read and validate the documented layout; returns ``W, H, b (or None), Y`` and lambdas.

    With ``need_Y=False`` a file without ``Y`` is accepted (``Y`` is then None: the caller
    has the labels from elsewhere, e.g. ``ufm certify --design``).

    Raises :class:`~ufm.exceptions.UFMError` (one line) for anything else: a missing,
    empty or non-``.npz`` file, pickled (object) arrays, complex or non-numeric arrays,
    non-finite values, shapes that do not fit, labels that are not 0/1.
    """
    path = Path(path)
    if not path.exists():
        raise UFMError(f"No such file: {path}")
    if path.is_dir():
        raise UFMError(f"{path} is a folder; give an .npz file (layout: `ufm metrics --help`).")
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device: reading it could block forever
        raise UFMError(f"{path} is not a regular file (a FIFO or a device); give an .npz file.")
    if not zipfile.is_zipfile(path):
        kind = "empty" if path.stat().st_size == 0 else "not an .npz archive (np.savez writes one; a single .npy is not enough)"
        raise UFMError(f"{path} is {kind}; the layout is H (d, N), Y (K, N), W (K, d), optional b (K,) "
                       "-- see `ufm metrics --help`.")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UFMError(f"Cannot read {path} as .npz: {exc}") from None
    try:
        with data:
            missing = [k for k in ("H", "Y", "W") if k not in data.files and (need_Y or k != "Y")]
            if missing:
                raise UFMError(f"{path} lacks {missing}; the layout is H (d, N), Y (K, N), W (K, d), "
                               "optional b (K,) -- see `ufm metrics --help`.")
            H = _real_array(path, "H", data["H"])
            Y = _real_array(path, "Y", data["Y"]) if "Y" in data.files else None
            W = _real_array(path, "W", data["W"])
            b = _real_array(path, "b", data["b"]) if "b" in data.files else None
            lams = {k: _scalar(path, k, data[k]) for k in ("lam_W", "lam_H", "lam_b") if k in data.files}
            if "bias" in data.files and not bool(data["bias"]):  # `ufm solve --save --no-bias`
                b = None
    except ValueError as exc:  # object arrays (pickles), truncated members
        if isinstance(exc, UFMError):
            raise
        raise UFMError(f"Cannot read {path}: {exc} (pickled object arrays are never loaded).") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UFMError(f"Cannot read {path} as .npz: {exc}") from None
    if W.ndim != 2:
        raise _shape_error("W", "(K, d)", W.shape)
    K, d = W.shape
    if Y is None:
        if H.ndim != 2 or H.shape[0] != d:
            raise _shape_error("H", f"(d, N) with d = {d} (columns of W)", H.shape)
        Y = np.zeros((K, 0))  # replaced below; keeps the checks that follow uniform
        no_Y = True
    else:
        no_Y = False
    if Y.ndim != 2 or Y.shape[0] != K:
        hint = "Labels exported as (N, K)? Transpose them." if Y.ndim == 2 and Y.shape[1] == K else ""
        raise _shape_error("Y", f"(K, N) with K = {K} (rows of W)", Y.shape, hint)
    N = H.shape[1] if no_Y else Y.shape[1]
    if H.shape != (d, N):
        hint = "Features exported as (N, d)? Transpose them." if H.shape == (N, d) else ""
        raise _shape_error("H", f"(d, N) = ({d}, {N})", H.shape, hint)
    if b is not None and b.shape != (K,):
        raise _shape_error("b", f"(K,) = ({K},)", b.shape)
    if not np.all((Y == 0) | (Y == 1)):
        raise UFMError("'Y' must be a 0/1 indicator matrix.")
    for name, arr in (("H", H), ("W", W), ("b", b)):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise UFMError(f"{path}: '{name}' contains non-finite values (nan or inf).")
        if arr is not None and arr.size and float(np.max(np.abs(arr))) > MAX_ENTRY:
            raise UFMError(f"{path}: '{name}' has entries up to {float(np.max(np.abs(arr))):.3g}; above "
                           f"{MAX_ENTRY:g} the objective's squared norms and logits overflow float64. "
                           "Rescale the export (or check it).")
    return {"W": W, "H": H, "b": b, "Y": None if no_Y else Y.astype(np.float64), **lams}


def _angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu == 0 or nv == 0:
        return float("nan")
    c = float(u @ v) / (nu * nv)
    s = float(np.linalg.norm(u / nu - c * (v / nv)))
    return math.degrees(math.atan2(s, c))


def geometry(W: np.ndarray, H: np.ndarray, b: np.ndarray | None, Y: np.ndarray) -> dict[str, Any]:
    """Per-class and per-label-set geometry of a solution (for the imbalance and ``d`` maps).

    Returns ``classes`` (per class k: ``n_single``, ``n_total`` samples containing k,
    ``norm_w``, ``norm_h`` of the single-label mean, ``b``), ``w_cos`` (K, K) cosines of
    the classifier rows and their off-diagonal extremes ``w_cos_min``/``w_cos_max``,
    ``w_mean_ratio`` = ``||mean_k w_k|| / mean_k ||w_k||`` (0 for an ETF), ``nc2_w_centred``
    (NC2_W of the rows minus their mean: 0 when W is an ETF plus a common shift),
    ``w_singular`` (singular values of ``W`` over the largest), ``w_rank`` (how many
    exceed 1e-6 of the largest), and
    ``sets`` (per label set S: ``m``, ``n``, ``norm_h`` of ``h_S``, ``angle_deg`` between
    ``h_S`` and ``sum_{k in S} h_k``, ``scale`` ``||h_S|| / ||mean_{k in S} h_k||``,
    ``margin`` = mean logit in S minus mean logit outside S -- equal to ``s_m`` at the
    theorem's optimum -- and ``spread`` = max ``||h_i - h_S|| / ||h_S||`` in S).
    """
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    K = W.shape[0]
    b = np.zeros(K) if b is None else np.asarray(b, dtype=np.float64)
    groups = Groups.from_arrays(H, Y)
    ref = groups.single_means  # (d, K) or None
    if ref is None:
        ref = W.T
    norms_w = np.linalg.norm(W, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (W @ W.T) / np.outer(norms_w, norms_w)
    sv = np.linalg.svd(W, compute_uv=False)
    Zg = W @ groups.means + b[:, None]  # (K, G) logits of the group means
    sets = []
    for g, S in enumerate(groups.sets):
        h = groups.means[:, g]
        members = groups.index == g
        dev = np.linalg.norm(H[:, members] - h[:, None], axis=0)
        nh = float(np.linalg.norm(h))
        mean_ref = ref[:, list(S)].mean(axis=1)
        inside = np.zeros(K, dtype=bool)
        inside[list(S)] = True
        sets.append({
            "set": list(S), "m": len(S), "n": int(groups.counts[g]), "norm_h": nh,
            "angle_deg": _angle_deg(h, ref[:, list(S)].sum(axis=1)),
            "scale": nh / float(np.linalg.norm(mean_ref)) if np.linalg.norm(mean_ref) > 0 else float("nan"),
            "margin": float(Zg[inside, g].mean() - Zg[~inside, g].mean()) if len(S) < K else float("nan"),
            "spread": float(dev.max() / nh) if nh > 0 else float("nan"),
        })
    single = {S[0]: int(n) for S, n in zip(groups.sets, groups.counts) if len(S) == 1}
    total = [int(groups.counts[[k in S for S in groups.sets]].sum()) for k in range(K)]
    sm = groups.single_means
    classes = [{"k": k, "n_single": single.get(k, 0), "n_total": total[k], "norm_w": float(norms_w[k]),
                "norm_h": float(np.linalg.norm(sm[:, k])) if sm is not None else float("nan"),
                "b": float(b[k])} for k in range(K)]
    off = cos[~np.eye(K, dtype=bool)]
    w_mean = W.mean(axis=0)
    mean_ratio = float(np.linalg.norm(w_mean) / norms_w.mean()) if norms_w.mean() > 0 else float("nan")
    rank = int(np.sum(sv > 1e-6 * sv[0])) if sv[0] > 0 else 0
    return {"classes": classes, "w_cos": cos, "w_cos_min": float(np.min(off)), "w_cos_max": float(np.max(off)),
            "w_mean_ratio": mean_ratio, "nc2_w_centred": nc2_w(W - w_mean),
            "w_singular": sv / sv[0] if sv[0] > 0 else sv, "w_rank": rank, "sets": sets}


def measure(
    W: np.ndarray, H: np.ndarray, b: np.ndarray | None, Y: np.ndarray, *,
    lam_W: float | None = None, lam_H: float | None = None, lam_b: float | None = None,
    center: str = "classes",
) -> dict[str, Any]:
    """Every docs/theory.md section-6 metric, the geometry and, given ``lam_W`` and ``lam_H``, the
    objective, the certified lower bound (:func:`ufm.certify`) and the theorem's prediction.

    ``b = None`` means a model without bias; with a bias and no ``lam_b``, ``lam_b = 0``.
    ``center`` is the centre of NC2_H and NC3 (:func:`ufm.metrics.all_metrics`): "classes"
    (unweighted mean of the class means) or "samples" (count-weighted, the official code's).
    """
    from .designs import from_indicator
    from .summary import jsonable, theory_dict

    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    design, order = from_indicator(Y)
    out: dict[str, Any] = {"K": int(W.shape[0]), "d": int(W.shape[1]), "N": int(H.shape[1]),
                           "label_sets": design.G, "multiplicities": list(design.multiplicities),
                           "design": design.describe(), "balanced": design.is_balanced}
    predicted = None
    if (lam_W is None) != (lam_H is None):
        raise UFMError("Give both lam_W and lam_H (or neither): the certificate needs both.")
    if lam_W is not None and lam_H is not None:
        from .certificate import certify
        from .objectives.full import value_and_grad
        from .problem import UFMProblem
        from .theory import predict

        problem = UFMProblem(design, int(W.shape[1]), lam_W, lam_H, 0.0 if lam_b is None else lam_b,
                             bias=b is not None)
        Ho = H[:, order]
        pred = predict(problem)
        predicted = pred.c or None
        cert = certify(problem, W, Ho, b)
        F = value_and_grad(problem, W, Ho, b)[0]
        out["objective"] = {"F": F, "lam_W": problem.lam_W, "lam_H": problem.lam_H,
                            "lam_b": problem.lam_b, "bias": problem.bias}
        out["certificate"] = cert.to_dict()
        out["theory"] = theory_dict(pred)
        if pred.value is not None:
            out["gap_to_theory"] = (F - pred.value) / max(abs(pred.value), 1e-300)
    out["metrics"] = all_metrics(W, H, b, Y, predicted, center=center)
    out["center"] = center
    out["geometry"] = geometry(W, H, b, Y)
    return jsonable(out)


EXAMPLE_DECIMALS = 6  # the example's solved point, rounded to this many decimals


def make_example(path: str | Path, *, seed: int = 0, noise: float = 0.2) -> dict[str, Any]:
    """Write a small example ``.npz``: a noisy near-collapsed UFM solution, as a trained
    network's last layer might look (K=5, singles and pairs, d=8, N=160).

    The UFM (lam_W = lam_H = 5e-3, lam_b = 1e-2) is solved with L-BFGS from ``seed``;
    features get Gaussian noise of ``noise`` times the mean feature norm (per sample),
    the classifier ``noise/4`` of its mean row norm. Returns the arrays written.
    """
    from .designs import balanced
    from .files import check_output_file
    from .problem import UFMProblem
    from .solvers import solve

    check_output_file(path, "--make-example")  # before the solve, not after it

    problem = UFMProblem(balanced(5, {1: 20, 2: 6}), 8, 5e-3, 5e-3, 1e-2)
    res = solve(problem, "lbfgs", rng=seed)
    # The solver's last digits depend on the BLAS (kernels, threads): rounded to 1e-6 first,
    # the file is the same, byte for byte, wherever it is written (+ 0.0 turns -0.0 into 0.0).
    W0, H0, b0 = (np.round(a, EXAMPLE_DECIMALS) + 0.0 for a in (res.W, res.H, res.b))
    gen = np.random.default_rng(seed + 1)
    d, N = problem.d, problem.N
    h_scale = float(np.linalg.norm(H0, axis=0).mean())
    w_scale = float(np.linalg.norm(W0, axis=1).mean())
    H = H0 + noise * h_scale / math.sqrt(d) * gen.standard_normal((d, N))
    W = W0 + noise / 4 * w_scale / math.sqrt(d) * gen.standard_normal(W0.shape)
    perm = gen.permutation(N)  # samples in no particular order, as from a data loader
    arrays = {"H": H[:, perm], "Y": problem.design.Y[:, perm].astype(np.int8), "W": W, "b": b0,
              "lam_W": problem.lam_W, "lam_H": problem.lam_H, "lam_b": problem.lam_b}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_npz(path, **arrays)
    return arrays

r"""Neural-collapse metrics (SPEC section 5): arrays in, numbers out.

Every function takes plain arrays -- ``W`` (K, d), ``H`` (d, N), ``b`` (K,), ``Y`` (K, N)
0/1 -- so it works on solver output and on features exported from a real network alike.
Samples may come in any order. Metrics that need a quantity that does not exist (no
single-label samples, all class means zero) return ``nan`` rather than raising.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .exceptions import UFMError

RCOND = 1e-10  # explicit relative cut-off of every pseudo-inverse


def _unit_gram_distance(Gram: np.ndarray) -> float:
    """``|| Gram/||Gram||_F - P/sqrt(K-1) ||_F``; nan for a zero Gram matrix."""
    K = Gram.shape[0]
    nrm = np.linalg.norm(Gram)
    if nrm == 0 or not np.isfinite(nrm):
        return float("nan")
    P = np.eye(K) - 1.0 / K
    return float(np.linalg.norm(Gram / nrm - P / math.sqrt(K - 1)))


def _cross_angles_deg(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Angles (degrees) between every column of ``U`` and every column of ``V``, (n, m), nan
    for a zero column: one product for all pairs (a pair at a time took a minute for the
    1225 pairs of K = 50). The sine is ``sqrt(1 - c^2)``, exact to ~1e-8 rad near 0."""
    nu, nv = np.linalg.norm(U, axis=0), np.linalg.norm(V, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.clip((U / nu).T @ (V / nv), -1.0, 1.0)
    out = np.degrees(np.arctan2(np.sqrt(np.maximum(1.0 - C * C, 0.0)), C))
    out[(nu == 0)[:, None] | (nv == 0)[None, :]] = np.nan
    return out


def _mean_cross_angle(U: np.ndarray, V: np.ndarray, matched: np.ndarray, block: int = 512) -> float:
    """Mean over the finite angles between every column of ``U`` and every column of ``V``
    (square), the diagonal taken from ``matched``; by blocks of rows (memory O(block n): the
    full matrix at K = 200 would be 19,900^2)."""
    n = U.shape[1]
    total, count = 0.0, 0
    for i in range(0, n, block):
        A = _cross_angles_deg(U[:, i : i + block], V)
        rows = np.arange(A.shape[0])
        A[rows, i + rows] = matched[i : i + block]  # the matched pairs (accurate near 0)
        ok = np.isfinite(A)
        total += float(A[ok].sum())
        count += int(ok.sum())
    return total / count if count else float("nan")


def _angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return float("nan")
    c = float(u @ v) / (nu * nv)
    # arccos loses accuracy near 0; use atan2 of sine and cosine instead
    s = np.linalg.norm(u / nu - c * (v / nv))
    return math.degrees(math.atan2(s, c))


@dataclass(frozen=True)
class _Labelling:
    """The label sets of ``Y`` (sorted by size, then lexicographically) and each sample's set."""

    Yb: np.ndarray  # (K, N) uint8: the labels it was computed from
    sets: tuple[tuple[int, ...], ...]
    index: np.ndarray  # (N,)
    counts: np.ndarray  # (G,)
    order: np.ndarray | None  # stable sort of the samples by set (None: already sorted)
    starts: np.ndarray  # (G,) first sorted sample of each set


_LABELLINGS: dict[int, tuple[weakref.ref, _Labelling]] = {}


def _labelling(Y: np.ndarray) -> _Labelling:
    """The grouping of ``Y``'s samples by label set, cached per ``Y`` array.

    ``np.unique(axis=0)`` over the samples dominated the NC metrics (a solver's history calls
    them with the same ``problem.design.Y`` at every record); a cache hit costs one
    comparison of ``Y`` with the labels the grouping was computed from, so an array changed
    in place is regrouped.
    """
    Yb = (Y != 0).astype(np.uint8)
    hit = _LABELLINGS.get(id(Y))
    if hit is not None and hit[0]() is Y and np.array_equal(hit[1].Yb, Yb):
        return hit[1]
    uniq, index = np.unique(Yb.T, axis=0, return_inverse=True)
    index = np.asarray(index).ravel()
    sets = [tuple(np.flatnonzero(row).tolist()) for row in uniq]
    order = sorted(range(len(sets)), key=lambda g: (len(sets[g]), sets[g]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    index = rank[index]
    counts = np.bincount(index, minlength=len(sets))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)
    by_set = None if np.all(index[1:] >= index[:-1]) else np.argsort(index, kind="stable")
    lab = _Labelling(Yb, tuple(sets[g] for g in order), index, counts, by_set, starts)
    key = id(Y)
    try:
        ref = weakref.ref(Y, lambda _: _LABELLINGS.pop(key, None))
    except TypeError:  # not weak-referenceable: not cached
        return lab
    _LABELLINGS[key] = (ref, lab)
    return lab


@dataclass(frozen=True)
class Groups:
    """Label sets found in ``Y`` and the features' group means."""

    sets: tuple[tuple[int, ...], ...]
    index: np.ndarray  # (N,) group of each sample
    counts: np.ndarray  # (G,)
    means: np.ndarray  # (d, G)
    K: int

    @classmethod
    def from_arrays(cls, H: np.ndarray, Y: np.ndarray) -> Groups:
        H = np.asarray(H, dtype=np.float64)
        Y = np.asarray(Y)
        if H.ndim != 2 or Y.ndim != 2 or H.shape[1] != Y.shape[1]:
            raise UFMError(f"H (d, N) and Y (K, N) must have the same N; got {H.shape} and {Y.shape}.")
        if np.any(Y.sum(axis=0) == 0):
            raise UFMError("Y has samples with an empty label set; remove them (PAL needs a label).")
        lab = _labelling(Y)
        Hs = H if lab.order is None else H[:, lab.order]  # samples sorted by label set
        sums = np.add.reduceat(Hs, lab.starts, axis=1) if H.shape[1] else np.zeros((H.shape[0], 0))
        return cls(lab.sets, lab.index, lab.counts, sums / lab.counts, Y.shape[0])

    @cached_property
    def position(self) -> dict[tuple[int, ...], int]:
        return {S: g for g, S in enumerate(self.sets)}

    @cached_property
    def multiplicity(self) -> np.ndarray:
        return np.array([len(S) for S in self.sets])

    @cached_property
    def single_means(self) -> np.ndarray | None:
        """``h_{k}`` for k = 0..K-1 as columns (d, K), or None if a class lacks singles."""
        cols = [self.position.get((k,), -1) for k in range(self.K)]
        if min(cols) < 0:
            return None
        return self.means[:, cols]


def _nc1_on(H: np.ndarray, groups: Groups, which: np.ndarray, rcond: float) -> float:
    """``tr(Sigma_W Sigma_B^+) / C`` over the groups selected by the boolean mask ``which``."""
    gsel = np.flatnonzero(which)
    if gsel.size < 2:
        return float("nan")
    samples = np.isin(groups.index, gsel)
    means = groups.means[:, gsel]  # (d, C)
    Mc = means - means.mean(axis=1, keepdims=True)
    Sigma_B = Mc @ Mc.T / gsel.size  # (d, d)
    evals, evecs = np.linalg.eigh(Sigma_B)
    top = evals.max()
    if top <= 0:
        return float("nan")
    keep = evals > rcond * top
    D = H[:, samples] - groups.means[:, groups.index[samples]]  # (d, n)
    proj = (evecs[:, keep].T @ D) / np.sqrt(evals[keep])[:, None]
    return float(np.sum(proj * proj) / samples.sum() / gsel.size)


def nc1(H: np.ndarray, Y: np.ndarray, *, on: str | int = "single", rcond: float = RCOND) -> float:
    r"""Within-set variability ``NC1 = tr(Sigma_W Sigma_B^+) / C``.

    ``on="single"`` uses single-label samples (C = number of classes with singles);
    ``on=m`` (int) the label sets of multiplicity m; ``on="all"`` every label set as a class.
    ``Sigma_B^+`` is a pseudo-inverse with explicit relative cut-off ``rcond``.
    """
    H = np.asarray(H, dtype=np.float64)
    groups = Groups.from_arrays(H, Y)
    if on == "all":
        mask = np.ones(len(groups.sets), dtype=bool)
    elif on == "single":
        mask = groups.multiplicity == 1
    elif isinstance(on, (int, np.integer)):
        mask = groups.multiplicity == int(on)
    else:
        raise UFMError(f"The 'on' parameter of nc1 must be 'single', 'all' or an int; got {on!r}.")
    return _nc1_on(H, groups, mask, rcond)


def nc2_w(W: np.ndarray) -> float:
    """``|| W W^T/||W W^T||_F - P/sqrt(K-1) ||_F`` (0 for a simplex ETF)."""
    W = np.asarray(W, dtype=np.float64)
    return _unit_gram_distance(W @ W.T)


def centred_single_means(groups: Groups) -> np.ndarray | None:
    """``Hbar`` (d, K): single-label means minus their mean ``h_G``."""
    Hs = groups.single_means
    if Hs is None:
        return None
    return Hs - Hs.mean(axis=1, keepdims=True)


def nc2_h(H: np.ndarray, Y: np.ndarray) -> float:
    """NC2 of the centred single-label means: ``Hbar^T Hbar`` against the ETF Gram."""
    Hbar = centred_single_means(Groups.from_arrays(H, Y))
    return float("nan") if Hbar is None else _unit_gram_distance(Hbar.T @ Hbar)


def nc3(W: np.ndarray, H: np.ndarray, Y: np.ndarray) -> float:
    """``|| W Hbar/||W Hbar||_F - P/sqrt(K-1) ||_F`` (self-duality through the ETF)."""
    Hbar = centred_single_means(Groups.from_arrays(H, Y))
    return float("nan") if Hbar is None else _unit_gram_distance(np.asarray(W) @ Hbar)


def nc3_dual(W: np.ndarray, H: np.ndarray, Y: np.ndarray) -> float:
    """``|| W/||W||_F - Hbar^T/||Hbar||_F ||_F``."""
    Hbar = centred_single_means(Groups.from_arrays(H, Y))
    W = np.asarray(W, dtype=np.float64)
    if Hbar is None or np.linalg.norm(W) == 0 or np.linalg.norm(Hbar) == 0:
        return float("nan")
    return float(np.linalg.norm(W / np.linalg.norm(W) - Hbar.T / np.linalg.norm(Hbar)))


def bias_spread(b: np.ndarray) -> float:
    """``|| b - mean(b) 1 ||``: 0 when the bias is a multiple of ``1``."""
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(b - b.mean()))


def _finite_stat(fn, values: np.ndarray) -> float:
    """``fn`` over the finite entries of ``values``; nan when there are none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(fn(v)) if v.size else float("nan")


def _tag_references(groups: Groups, W: np.ndarray | None) -> tuple[np.ndarray | None, str]:
    """Per-class reference vectors (d, K): single-label means, else the classifier rows."""
    if groups.single_means is not None:
        return groups.single_means, "single-label means"
    if W is not None:
        return np.asarray(W, dtype=np.float64).T, "classifier rows (no single-label samples)"
    return None, "none"


def tagwise(
    H: np.ndarray, Y: np.ndarray, W: np.ndarray | None = None, predicted_scale: dict[int, float] | None = None
) -> dict[int, dict[str, float]]:
    r"""Tag-wise average structure per multiplicity ``m >= 2``.

    For each multi-label set S: the angle between ``h_S`` and ``sum_{k in S} h_{k}``, and
    the scale ``||h_S|| / ||mean_{k in S} h_{k}||`` (to compare with ``c_m``). With no
    single-label samples, the classifier rows ``w_k`` stand in for ``h_{k}`` (the scale is
    then relative to ``w``). Returns per m: ``angle_deg`` (mean), ``angle_deg_max``,
    ``scale`` (mean), ``scale_min``, ``scale_max``, ``predicted_scale`` (nan if unknown),
    ``ratio`` (the authors' metric: mean matched angle over mean angle to the sums of all
    sets of the same size; nan with a single set), ``n_sets``.
    """
    H = np.asarray(H, dtype=np.float64)
    groups = Groups.from_arrays(H, Y)
    ref, _ = _tag_references(groups, W)
    out: dict[int, dict[str, float]] = {}
    if ref is None:
        return out
    for mm in sorted(set(int(v) for v in groups.multiplicity)):
        if mm < 2:
            continue
        gs = np.flatnonzero(groups.multiplicity == mm)
        sums = np.stack([ref[:, list(groups.sets[g])].sum(axis=1) for g in gs], axis=1)  # (d, n)
        hs = groups.means[:, gs]
        angles = np.array([_angle_deg(hs[:, j], sums[:, j]) for j in range(gs.size)])
        nrm_mean = np.linalg.norm(sums, axis=0) / mm
        with np.errstate(divide="ignore", invalid="ignore"):
            scales = np.where(nrm_mean > 0, np.linalg.norm(hs, axis=0) / nrm_mean, np.nan)
        ratio = float("nan")
        if gs.size > 1:
            mean_cross, mean_matched = _mean_cross_angle(hs, sums, angles), _finite_stat(np.mean, angles)
            if mean_cross > 0:
                ratio = mean_matched / mean_cross
        out[mm] = {
            "angle_deg": _finite_stat(np.mean, angles),
            "angle_deg_max": _finite_stat(np.max, angles),
            "scale": _finite_stat(np.mean, scales),
            "scale_min": _finite_stat(np.min, scales),
            "scale_max": _finite_stat(np.max, scales),
            "predicted_scale": float((predicted_scale or {}).get(mm, float("nan"))),
            "ratio": ratio,
            "n_sets": int(gs.size),
        }
    return out


def decoding_accuracy(
    H: np.ndarray, Y: np.ndarray, W: np.ndarray | None = None, *, max_samples: int = 5000
) -> float:
    """Accuracy of predicting each sample's label set by the nearest tag-wise prototype.

    Prototype of a label set S of size m: ``c_m * mean_{k in S} h_{k}`` with ``c_m`` the
    measured mean tag-wise scale (``c_1 = 1``); candidates are the label sets present in
    ``Y``. Without single-label samples the prototypes are the label sets' mean features.
    At most ``max_samples`` evenly spaced samples are decoded (the cost is samples x sets).
    """
    H = np.asarray(H, dtype=np.float64)
    groups = Groups.from_arrays(H, Y)
    ref = groups.single_means
    if ref is None:
        protos = groups.means
    else:
        tw = tagwise(H, Y, W)
        scale = {1: 1.0, **{mm: v["scale"] for mm, v in tw.items()}}
        protos = np.stack(
            [scale.get(len(S), float("nan")) * ref[:, list(S)].mean(axis=1) for S in groups.sets], axis=1
        )
        protos = np.nan_to_num(protos)
    N = H.shape[1]
    idx = np.unique(np.linspace(0, N - 1, min(N, max_samples)).astype(np.int64))
    pn = np.sum(protos * protos, axis=0)
    correct = 0
    for chunk in np.array_split(idx, max(1, idx.size // 512)):
        dist = pn[None, :] - 2 * (H[:, chunk].T @ protos)  # (n, G) up to a per-row constant
        correct += int(np.sum(np.argmin(dist, axis=1) == groups.index[chunk]))
    return correct / idx.size


def all_metrics(
    W: np.ndarray, H: np.ndarray, b: np.ndarray | None, Y: np.ndarray,
    predicted_scale: dict[int, float] | None = None,
) -> dict:
    """Every metric of SPEC section 5 in one JSON-able dict."""
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    b = np.zeros(W.shape[0]) if b is None else np.asarray(b, dtype=np.float64)
    groups = Groups.from_arrays(H, Y)
    mults = sorted(set(int(v) for v in groups.multiplicity))
    return {
        "nc1": nc1(H, Y, on="single"),
        "nc1_all": nc1(H, Y, on="all"),
        "nc1_by_m": {mm: nc1(H, Y, on=mm) for mm in mults},
        "nc2_w": nc2_w(W),
        "nc2_h": nc2_h(H, Y),
        "nc3": nc3(W, H, Y),
        "nc3_dual": nc3_dual(W, H, Y),
        "bias": bias_spread(b),
        "tagwise": tagwise(H, Y, W, predicted_scale),
        "decoding_accuracy": decoding_accuracy(H, Y, W),
        "norm_W": float(np.linalg.norm(W)),
        "norm_H": float(np.linalg.norm(H)),
    }

r"""Neural-collapse metrics: arrays in, numbers out (formulas in ``docs/theory.md``).

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
NOISE = 4.0  # NC1: drop directions of Sigma_B within 4x of the noise of the group means
CENTERS = ("classes", "samples")
# A classifier row is dead (its class's logit is the bias alone, for every sample) when its norm
# is at most DEAD_CLASS_TOL x the largest row norm. At a critical point a dead row is exactly 0
# (the weight decay pulls it there); a solver stopped at gradient norm g leaves it at about
# g / lam_W. On the deadclass sweep (90 cells, 64 starts each) the dead rows of the best points
# are <= 2.4e-10 of the largest row and the smallest live row is 8.3e-2 of it: 1e-4 sits in that
# gap, six decades above the one side and almost three below the other, so no verdict there
# depends on the choice (the former 1e-6 and 1e-3 give the same counts).
DEAD_CLASS_TOL = 1e-4


def _unit_gram_distance(Gram: np.ndarray) -> float:
    """``|| Gram/||Gram||_F - P/sqrt(K-1) ||_F``; nan for a zero Gram matrix."""
    K = Gram.shape[0]
    nrm = np.linalg.norm(Gram)
    if nrm == 0 or not np.isfinite(nrm):
        return float("nan")
    P = np.eye(K) - 1.0 / K
    return float(np.linalg.norm(Gram / nrm - P / math.sqrt(K - 1)))


def _cross_angles_rad(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Angles (radians) between every column of ``U`` and every column of ``V``, (n, m), nan
    for a zero column: one product for all pairs (a pair at a time took a minute for the
    1225 pairs of K = 50), then ``arccos`` (accurate to ~1e-8 rad near 0 and pi; five
    times cheaper than ``atan2`` of sine and cosine, which at K = 200 took 15 s for the
    19,900^2 pairs of ``tagwise``'s ratio)."""
    nu, nv = np.linalg.norm(U, axis=0), np.linalg.norm(V, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        C = (U / nu).T @ (V / nv)
    np.clip(C, -1.0, 1.0, out=C)
    out = np.arccos(C, out=C)
    out[(nu == 0)[:, None] | (nv == 0)[None, :]] = np.nan
    return out


def _cross_angles_deg(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """:func:`_cross_angles_rad` in degrees."""
    return np.degrees(_cross_angles_rad(U, V))


def _mean_cross_angle(U: np.ndarray, V: np.ndarray, matched: np.ndarray, block: int = 512) -> float:
    """Mean (degrees) over the finite angles between every column of ``U`` and every column
    of ``V`` (square), the diagonal taken from ``matched`` (degrees); by blocks of rows
    (memory O(block n): the full matrix at K = 200 would be 19,900^2)."""
    n = U.shape[1]
    total, count = 0.0, 0
    for i in range(0, n, block):
        A = _cross_angles_rad(U[:, i : i + block], V)
        rows = np.arange(A.shape[0])
        A[rows, i + rows] = np.radians(matched[i : i + block])  # the matched pairs (accurate near 0)
        ok = np.isfinite(A)
        total += float(A[ok].sum()) if not ok.all() else float(A.sum())
        count += int(ok.sum())
    return math.degrees(total / count) if count else float("nan")


def _angles_deg(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """:func:`_angle_deg` of each column pair ``(U[:, j], V[:, j])``, vectorised (nan where a
    column is zero)."""
    nu, nv = np.linalg.norm(U, axis=0), np.linalg.norm(V, axis=0)
    ok = (nu > 0) & (nv > 0)
    out = np.full(U.shape[1], np.nan)
    if not ok.any():
        return out
    Un, Vn = U[:, ok] / nu[ok], V[:, ok] / nv[ok]
    c = np.einsum("ij,ij->j", U[:, ok], V[:, ok]) / (nu[ok] * nv[ok])
    s = np.linalg.norm(Un - c * Vn, axis=0)  # atan2 of sine and cosine: accurate near 0
    out[ok] = np.degrees(np.arctan2(s, c))
    return out


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


def _nc1_on(H: np.ndarray, groups: Groups, which: np.ndarray, rcond: float, noise: float) -> float:
    """``tr(Sigma_W Sigma_B^+) / C`` over the groups selected by the boolean mask ``which``.

    The pseudo-inverse keeps an eigen-direction ``v`` of ``Sigma_B`` (eigenvalue ``lam``)
    only if ``lam > rcond * lam_max`` and ``lam > noise * v^T Sigma_W v * mean_g(1/n_g)``:
    the second term is what the within-group scatter alone puts into ``Sigma_B`` through
    the sampling noise of the group means (the mean of ``n_g`` samples carries
    ``Sigma_W / n_g``). A direction below it carries no between-group signal, and
    inverting it would divide noise by noise (see :func:`nc1`).
    """
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
    D = H[:, samples] - groups.means[:, groups.index[samples]]  # (d, n)
    n = int(samples.sum())
    along = np.sum((evecs.T @ D) ** 2, axis=1) / n  # v_j^T Sigma_W v_j
    floor = noise * along * float(np.mean(1.0 / groups.counts[gsel]))
    keep = (evals > rcond * top) & (evals > floor)
    proj = (evecs[:, keep].T @ D) / np.sqrt(evals[keep])[:, None]
    return float(np.sum(proj * proj) / n / gsel.size)


def nc1(H: np.ndarray, Y: np.ndarray, *, on: str | int = "single", rcond: float = RCOND,
        noise: float = NOISE) -> float:
    r"""Within-set variability ``NC1 = tr(Sigma_W Sigma_B^+) / C``.

    ``Sigma_W = (1/n) sum_i (h_i - h_{S_i})(h_i - h_{S_i})^T`` over the ``n`` selected
    samples and ``Sigma_B = (1/C) sum_g (h_g - hbar)(h_g - hbar)^T`` over the ``C`` selected
    groups (``hbar`` their unweighted mean). Definitions: ``docs/theory.md``.

    Parameters
    ----------
    H : ndarray, shape (d, N)
        Features, one column per sample.
    Y : ndarray, shape (K, N)
        0/1 label indicators; every column needs at least one label.
    on : {"single", "all"} or int, default "single"
        ``"single"``: the single-label samples, one group per class; an int ``m``: the
        label sets of multiplicity ``m``; ``"all"``: every label set is a group.
    rcond : float, default 1e-10
        Eigenvalues of ``Sigma_B`` below ``rcond * max`` are dropped (rounding).
    noise : float, default 4
        Eigen-directions ``v`` of ``Sigma_B`` with eigenvalue at most
        ``noise * v^T Sigma_W v * mean_g(1/n_g)`` are dropped: pure within-group noise of
        the ``n_g``-sample means would put about ``v^T Sigma_W v / n_g`` there, so such a
        direction separates no groups. Without this cut-off the label-set NC1 of noisy,
        nearly collapsed features is dominated by noise divided by noise. The example
        features file (``examples/features_example.npz``) gives ``nc1 = 0.01749``; over label
        sets the plain pseudo-inverse gives 3.698, the noise cut-off 0.005197.
        ``noise=0`` restores the plain pseudo-inverse.

    Returns
    -------
    float
        ``>= 0``; 0 at exact collapse; nan with fewer than two groups or equal means.

    Raises
    ------
    UFMError
        Mismatched shapes, an empty label set, or an unknown ``on``.

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[-1.3, -0.7, 0.7, 1.3]])          # two classes in 1-D, deviations 0.3
    >>> Y = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    >>> round(nc1(H, Y), 6)                              # Sigma_W = 0.09, Sigma_B = 1, C = 2
    0.045
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
    return _nc1_on(H, groups, mask, rcond, noise)


def nc2_w(W: np.ndarray) -> float:
    """``|| W W^T/||W W^T||_F - P/sqrt(K-1) ||_F`` (0 for a simplex ETF)."""
    W = np.asarray(W, dtype=np.float64)
    return _unit_gram_distance(W @ W.T)


def _check_center(center: str) -> None:
    if center not in CENTERS:
        raise UFMError(f"center must be one of {CENTERS}; got {center!r}.")


def centred_single_means(groups: Groups, center: str = "classes") -> np.ndarray | None:
    """``Hbar`` (d, K): single-label class means minus the centre ``h_G``.

    ``center="classes"``: ``h_G`` is the unweighted mean of the K class means (the
    convention of the theorem: at a balanced optimum it is 0); ``"samples"``: the mean of
    all single-label samples, i.e. class means weighted by their counts (the convention of
    codes that centre at the global feature mean). The two agree for balanced classes.
    None when a class has no single-label sample.
    """
    _check_center(center)
    Hs = groups.single_means
    if Hs is None:
        return None
    if center == "classes":
        return Hs - Hs.mean(axis=1, keepdims=True)
    n = groups.counts[[groups.position[(k,)] for k in range(groups.K)]].astype(np.float64)
    return Hs - (Hs @ n / n.sum())[:, None]


_CENTER_DOC = """center : {"classes", "samples"}, default "classes"
        Centre of the single-label means: their unweighted mean, or the count-weighted
        one (the mean of all single-label samples); see :func:`centred_single_means`."""


def nc2_h(H: np.ndarray, Y: np.ndarray, *, center: str = "classes") -> float:
    """NC2 of the centred single-label means: ``|| G/||G||_F - P/sqrt(K-1) ||_F``, ``G = Hbar^T Hbar``.

    Parameters
    ----------
    H : ndarray, shape (d, N)
    Y : ndarray, shape (K, N)
        0/1 label indicators.
    {center}

    Returns
    -------
    float
        0 when the centred means form a simplex ETF; nan without single labels for
        every class or with all means equal.

    Examples
    --------
    >>> import numpy as np, ufm
    >>> W = ufm.simplex_etf(3)                       # (3, 2), an ETF
    >>> H, Y = W.T + 5.0, np.eye(3)                  # class means: a shifted ETF
    >>> round(nc2_h(H, Y), 12)
    0.0
    """
    _check_center(center)
    Hbar = centred_single_means(Groups.from_arrays(H, Y), center)
    return float("nan") if Hbar is None else _unit_gram_distance(Hbar.T @ Hbar)


def nc3(W: np.ndarray, H: np.ndarray, Y: np.ndarray, *, center: str = "classes") -> float:
    """Self-duality through the ETF: ``|| W Hbar/||W Hbar||_F - P/sqrt(K-1) ||_F``.

    Parameters
    ----------
    W : ndarray, shape (K, d)
    H : ndarray, shape (d, N)
    Y : ndarray, shape (K, N)
    {center}

    Returns
    -------
    float
        0 when ``W Hbar`` is a positive multiple of the centring matrix ``P``.

    Examples
    --------
    >>> import numpy as np, ufm
    >>> W = ufm.simplex_etf(4)
    >>> round(nc3(W, 2.0 * W.T, np.eye(4)), 12)
    0.0
    """
    _check_center(center)
    Hbar = centred_single_means(Groups.from_arrays(H, Y), center)
    return float("nan") if Hbar is None else _unit_gram_distance(np.asarray(W) @ Hbar)


def nc3_dual(W: np.ndarray, H: np.ndarray, Y: np.ndarray, *, center: str = "classes") -> float:
    """``|| W/||W||_F - Hbar^T/||Hbar||_F ||_F``: classifier rows against centred class means.

    Parameters
    ----------
    W : ndarray, shape (K, d)
    H : ndarray, shape (d, N)
    Y : ndarray, shape (K, N)
    {center}

    Returns
    -------
    float
        In ``[0, 2]``; nan if ``W`` or ``Hbar`` is zero.

    Examples
    --------
    >>> import numpy as np, ufm
    >>> W = ufm.simplex_etf(4)
    >>> round(nc3_dual(W, 3.0 * W.T, np.eye(4)), 12)
    0.0
    """
    _check_center(center)
    Hbar = centred_single_means(Groups.from_arrays(H, Y), center)
    W = np.asarray(W, dtype=np.float64)
    if Hbar is None or np.linalg.norm(W) == 0 or np.linalg.norm(Hbar) == 0:
        return float("nan")
    return float(np.linalg.norm(W / np.linalg.norm(W) - Hbar.T / np.linalg.norm(Hbar)))


for _f in (nc2_h, nc3, nc3_dual):
    if _f.__doc__:  # absent under python -OO
        _f.__doc__ = _f.__doc__.replace("{center}", _CENTER_DOC)


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
    H: np.ndarray, Y: np.ndarray, W: np.ndarray | None = None, predicted_scale: dict[int, float] | None = None,
    *, ratio: bool = True,
) -> dict[int, dict[str, float]]:
    r"""Tag-wise average structure per multiplicity ``m >= 2``.

    For each multi-label set S: the angle between ``h_S`` and ``sum_{k in S} h_{k}``, and
    the scale ``||h_S|| / ||mean_{k in S} h_{k}||`` (to compare with ``c_m``). With no
    single-label samples, the classifier rows ``w_k`` stand in for ``h_{k}`` (the scale is
    then relative to ``w``). Returns per m: ``angle_deg`` (mean), ``angle_deg_max``,
    ``scale`` (mean), ``scale_min``, ``scale_max``, ``predicted_scale`` (nan if unknown),
    ``ratio`` (the authors' metric: mean matched angle over mean angle to the sums of all
    sets of the same size; nan with a single set, or when ``ratio=False``: it compares every
    pair of sets, the cost of the whole function at large K), ``n_sets``.
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
        member = np.zeros((ref.shape[1], gs.size))  # member[k, j] = 1 if class k is in set gs[j]
        for j, g in enumerate(gs):
            member[list(groups.sets[g]), j] = 1.0
        sums = ref @ member  # (d, n): sum_{k in S} h_k per set
        hs = groups.means[:, gs]
        angles = _angles_deg(hs, sums)
        nrm_mean = np.linalg.norm(sums, axis=0) / mm
        with np.errstate(divide="ignore", invalid="ignore"):
            scales = np.where(nrm_mean > 0, np.linalg.norm(hs, axis=0) / nrm_mean, np.nan)
        cross_ratio = float("nan")
        if ratio and gs.size > 1:
            mean_cross, mean_matched = _mean_cross_angle(hs, sums, angles), _finite_stat(np.mean, angles)
            if mean_cross > 0:
                cross_ratio = mean_matched / mean_cross
        out[mm] = {
            "angle_deg": _finite_stat(np.mean, angles),
            "angle_deg_max": _finite_stat(np.max, angles),
            "scale": _finite_stat(np.mean, scales),
            "scale_min": _finite_stat(np.min, scales),
            "scale_max": _finite_stat(np.max, scales),
            "predicted_scale": float((predicted_scale or {}).get(mm, float("nan"))),
            "ratio": cross_ratio,
            "n_sets": int(gs.size),
        }
    return out


TIE = 1e-9  # decoding: a nearest prototype must win by this much (relative) to count


def decode(H: np.ndarray, Y: np.ndarray, W: np.ndarray | None = None) -> tuple[np.ndarray, Groups]:
    """Decode each sample's label set by the nearest tag-wise prototype.

    Prototype of a label set S of size m: ``c_m * mean_{k in S} h_{k}`` with ``c_m`` the
    measured mean tag-wise scale (``c_1 = 1``); candidates are the label sets present in
    ``Y``. Without single-label samples the prototypes are the label sets' mean features.
    A sample whose two nearest prototypes are equally near (squared distances within
    ``1e-9`` of the largest squared norm of a prototype or a sample, i.e. within rounding) is a tie: it is
    decoded as ``-1`` rather than by whichever way rounding breaks the tie.

    Parameters
    ----------
    H : ndarray, shape (d, N)
    Y : ndarray, shape (K, N)
        0/1 label indicators.
    W : ndarray, shape (K, d), optional
        Accepted for compatibility; the decoding does not depend on it (the tag-wise scales
        come from the features alone).

    Returns
    -------
    pred : ndarray of int, shape (N,)
        Index of the decoded label set into ``groups.sets``, or -1 for a tie.
    groups : Groups
        The label sets found in ``Y`` (``groups.index`` is each sample's true set).

    Examples
    --------
    >>> import numpy as np, ufm
    >>> W = ufm.simplex_etf(3)
    >>> pred, groups = decode(W.T, np.eye(3, dtype=int))
    >>> pred.tolist(), groups.sets
    ([0, 1, 2], ((0,), (1,), (2,)))
    """
    H = np.asarray(H, dtype=np.float64)
    groups = Groups.from_arrays(H, Y)
    ref = groups.single_means
    if ref is None:
        protos = groups.means
    else:
        tw = tagwise(H, Y, W, ratio=False)  # the scales only
        scale = {1: 1.0, **{mm: v["scale"] for mm, v in tw.items()}}
        protos = np.stack(
            [scale.get(len(S), float("nan")) * ref[:, list(S)].mean(axis=1) for S in groups.sets], axis=1
        )
        protos = np.nan_to_num(protos)
    pn = np.sum(protos * protos, axis=0)
    tol = TIE * max(float(pn.max()), float(np.max(np.sum(H * H, axis=0), initial=0.0)), 1e-300)
    pred = np.empty(H.shape[1], dtype=np.int64)
    for chunk in np.array_split(np.arange(H.shape[1]), max(1, H.shape[1] // 512)):
        dist = pn[None, :] - 2 * (H[:, chunk].T @ protos)  # (n, G) up to a per-row constant
        best = np.argmin(dist, axis=1)
        if dist.shape[1] > 1:
            two = np.partition(dist, 1, axis=1)[:, :2]
            best = np.where(two[:, 1] - two[:, 0] > tol, best, -1)
        pred[chunk] = best
    return pred, groups


def decoding_accuracy(
    H: np.ndarray, Y: np.ndarray, W: np.ndarray | None = None, *, max_samples: int = 5000
) -> float:
    """Fraction of samples whose label set :func:`decode` recovers (ties count as failures).

    Parameters
    ----------
    H : ndarray, shape (d, N)
    Y : ndarray, shape (K, N)
        0/1 label indicators.
    W : ndarray, shape (K, d), optional
        See :func:`decode`.
    max_samples : int, default 5000
        At most this many evenly spaced samples are decoded (the cost is samples x sets).

    Returns
    -------
    float
        In ``[0, 1]``.

    Examples
    --------
    >>> import ufm
    >>> d = ufm.balanced(3, {1: 2, 2: 1})
    >>> p = ufm.UFMProblem(d, d=3, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    >>> W, H, b = ufm.predicted_minimizer(p)
    >>> decoding_accuracy(H, d.Y)
    1.0
    """
    H = np.asarray(H, dtype=np.float64)
    N = H.shape[1]
    idx = np.unique(np.linspace(0, N - 1, min(N, max_samples)).astype(np.int64))
    Y = np.asarray(Y)
    if idx.size < N:
        H, Y = H[:, idx], Y[:, idx]
    pred, groups = decode(H, Y, W)
    return float(np.mean(pred == groups.index))


def _checked_inputs(W: object, H: object, b: object, Y: object, predicted_scale: object) -> tuple:
    """The arrays of :func:`all_metrics` as float64, refused (one sentence naming the argument) when
    not real, not finite, of shapes that do not fit, or with labels that are not 0/1."""
    from .validate import real_array

    W = real_array("W", W, "all_metrics")
    H = real_array("H", H, "all_metrics")
    Y = real_array("Y", Y, "all_metrics")
    if W.ndim != 2 or H.ndim != 2 or Y.ndim != 2:
        bad = next(n for n, a in (("W", W), ("H", H), ("Y", Y)) if a.ndim != 2)
        raise UFMError(f"'{bad}' given to all_metrics must be a 2-D array; got shape "
                       f"{ {'W': W, 'H': H, 'Y': Y}[bad].shape}.")
    K, d = W.shape
    if H.shape[0] != d or Y.shape != (K, H.shape[1]):
        raise UFMError(f"all_metrics needs W (K, d), H (d, N), Y (K, N); got W {W.shape}, H {H.shape}, "
                       f"Y {Y.shape}.")
    b = np.zeros(K) if b is None else real_array("b", b, "all_metrics")
    if b.shape != (K,):
        raise UFMError(f"'b' given to all_metrics must have shape (K,) = ({K},); got {b.shape}.")
    for name, arr in (("W", W), ("H", H), ("b", b), ("Y", Y)):
        if not np.all(np.isfinite(arr)):
            raise UFMError(f"'{name}' given to all_metrics contains NaN or Inf; metrics of it are undefined.")
    if not np.all((Y == 0) | (Y == 1)):
        raise UFMError("'Y' given to all_metrics must hold 0/1 label indicators; it has other values.")
    if predicted_scale is not None and not (
            isinstance(predicted_scale, dict) and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool)
                                                      and isinstance(v, (int, float, np.floating)) and
                                                      not isinstance(v, bool) for k, v in predicted_scale.items())):
        raise TypeError("The 'predicted_scale' argument of ufm.all_metrics must be None or a dict {m: c_m} of "
                        f"ints to floats (ufm.predict(problem).c); got {predicted_scale!r:.80}.")
    return W, H, b, Y


def all_metrics(
    W: np.ndarray, H: np.ndarray, b: np.ndarray | None, Y: np.ndarray,
    predicted_scale: dict[int, float] | None = None, *, center: str = "classes",
) -> dict:
    """Every neural-collapse metric of ``docs/theory.md`` in one JSON-able dict.

    Parameters
    ----------
    W : ndarray, shape (K, d)
        Classifier rows ``w_k``.
    H : ndarray, shape (d, N)
        Features, one column per sample (any order).
    b : ndarray, shape (K,), or None
        Bias (None: no bias, treated as 0).
    Y : ndarray, shape (K, N)
        0/1 label indicators; every sample needs at least one label.
    predicted_scale : dict {m: c_m}, optional
        The theorem's tag-wise scales, copied next to the measured ones.
    center : {"classes", "samples"}, default "classes"
        Centre of the single-label means for NC2_H, NC3 and NC3_dual: the unweighted
        mean of the class means, or the count-weighted one. They differ only when the
        single-label classes are imbalanced (then some codes' "global mean" is the
        count-weighted one; see ``docs/theory.md``, conventions).

    Returns
    -------
    dict
        ``nc1``, ``nc1_all`` (every label set a group), ``nc1_by_m`` ({m: NC1 over the
        sets of size m}), ``nc2_w``, ``nc2_h``, ``nc3``, ``nc3_dual``, ``bias`` (spread
        ``||b - mean(b) 1||``), ``tagwise`` ({m: angle_deg, angle_deg_max, scale,
        scale_min, scale_max, predicted_scale, ratio, n_sets} for m >= 2),
        ``decoding_accuracy``, ``norm_W``, ``norm_H``. Undefined metrics are nan.

    Raises
    ------
    UFMError
        Mismatched shapes, an empty label set or an unknown ``center``.

    Examples
    --------
    >>> import ufm
    >>> p = ufm.UFMProblem(ufm.balanced(4, {1: 2, 2: 1}), d=4, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    >>> W, H, b = ufm.predicted_minimizer(p)
    >>> out = ufm.all_metrics(W, H, b, p.design.Y, ufm.predict(p).c)
    >>> all(abs(out[k]) < 1e-12 for k in ("nc1", "nc2_w", "nc2_h", "nc3", "bias"))
    True
    >>> abs(out["tagwise"][2]["scale"] - out["tagwise"][2]["predicted_scale"]) < 1e-9
    True
    """
    _check_center(center)
    W, H, b, Y = _checked_inputs(W, H, b, Y, predicted_scale)
    groups = Groups.from_arrays(H, Y)
    mults = sorted(set(int(v) for v in groups.multiplicity))
    return {
        "nc1": nc1(H, Y, on="single"),
        "nc1_all": nc1(H, Y, on="all"),
        "nc1_by_m": {mm: nc1(H, Y, on=mm) for mm in mults},
        "nc2_w": nc2_w(W),
        "nc2_h": nc2_h(H, Y, center=center),
        "nc3": nc3(W, H, Y, center=center),
        "nc3_dual": nc3_dual(W, H, Y, center=center),
        "bias": bias_spread(b),
        "tagwise": tagwise(H, Y, W, predicted_scale),
        "decoding_accuracy": decoding_accuracy(H, Y, W),
        "norm_W": float(np.linalg.norm(W)),
        "norm_H": float(np.linalg.norm(H)),
    }

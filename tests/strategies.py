"""Hypothesis strategies for UFM problems (issue #5).

Every strategy builds a valid object by construction: no ``assume``, no ``.filter``.
The ranges, in one place:

- ``K``: 2..10 (``K_RANGE``).
- Balanced designs (:func:`balanced_designs`): any non-empty subset of the
  multiplicities ``1..K`` -- so single labels may be missing and the full label set
  ``m = K`` may be present, even alone -- each with a count ``n_m`` in 1..6.
  ``N = sum_m n_m C(K, m)`` ranges from 1 (K = 2, profile {2: 1}) to 6138 (K = 10, all
  multiplicities, every count 6).
- Non-balanced designs (:func:`unbalanced_designs`), four kinds, each made non-balanced
  by construction (see :func:`_unbalance`): imbalanced single labels (per-class counts
  1..6, not all equal, optional extra pairs), imbalanced pairs (``K >= 3``, singles
  1..6, some pairs "heavy": a different count in 1..6), a random subset of label sets
  (``ufm.designs.random_subset``, multiplicities up to 2..K, counts 1..6), and arbitrary
  per-set counts on 1..40 label sets of any size (counts 1..6). ``_unbalance`` may raise
  one count to at most 6 or add a single label.
- ``d``: from 1 to ``K + 2`` ("any"), ``K-1`` to ``K + 2`` ("theorem"), 1 to ``K - 2``
  ("low", then ``K >= 3``).
- ``lam_W``, ``lam_H``, ``lam_b``: independent, log-uniform in ``[1e-5, 1e-1]``
  (:data:`LAMBDAS`); ``lam_b`` is also exactly 0 with probability about 1/4 (docs/theory.md
  section 3, claim 1's second case); ``bias`` on or off.
- Regime-targeted problems (:func:`problems_at_ratio`): ``mu / mu_crit`` drawn
  log-uniformly in a given interval and ``lam_W / lam_H`` log-uniform in
  ``[1e-2, 1e2]``; then ``lam_W = mu sqrt(ratio)``, ``lam_H = mu / sqrt(ratio)``, which
  may leave ``[1e-5, 1e-1]`` (``mu_crit`` is 6.4e-3 for K = 10 with every multiplicity
  and counts 6, 0.5 for K = 2 with single labels).
  ``mu_crit`` is computed by an SVD of the loss gradient at 0
  (:func:`reference.mu_crit_by_svd`), not by the package's formula.
- Points (:func:`points`): Gaussian entries of standard deviation ``scale / sqrt(d)``
  with ``scale`` log-uniform in ``[1e-3, 10]``.
- Free-bias problems (:func:`free_bias_problems`): ``lam_b = 0``, bias on, ``mu / mu_0``
  log-uniform in ``[0.2, 5]`` around the origin's threshold ``mu_0``
  (:func:`reference.mu_at_origin`), PAL or normalised PAL; points near the origin
  (:func:`points_near_origin`).
- Seeds: ints in ``0..2**32 - 1``.
"""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import reference
from hypothesis import settings
from hypothesis import strategies as st

from ufm import designs
from ufm.problem import UFMProblem


def n_examples(ci: int, long: float = 1.0) -> int:
    """Examples for one property: ``ci`` under the default ``ci`` profile, otherwise the
    loaded profile's ``max_examples`` times ``long`` (the long profile: 300, or
    ``UFM_MAX_EXAMPLES``)."""
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        return ci
    return max(1, int(settings().max_examples * long))


K_RANGE = (2, 10)
COUNT_MAX = 6
LAM_EXP = (-5.0, -1.0)


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    """``10**e`` with ``e`` drawn from ``[log10(lo), log10(hi)]`` (endpoints included)."""
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: float(10.0**e))


LAMBDAS = log_uniform(10**LAM_EXP[0], 10**LAM_EXP[1])
LAM_B = st.one_of(st.just(0.0), LAMBDAS, LAMBDAS, LAMBDAS)
SEEDS = st.integers(0, 2**32 - 1)
SCALES = log_uniform(1e-3, 10.0)
COUNTS = st.integers(1, COUNT_MAX)


def Ks(lo: int = K_RANGE[0], hi: int = K_RANGE[1]) -> st.SearchStrategy[int]:
    return st.integers(max(lo, K_RANGE[0]), min(hi, K_RANGE[1]))


# -- designs -------------------------------------------------------------------------
@st.composite
def profiles(draw, K: int, *, partial: bool = False) -> dict[int, int]:
    """``{m: n_m}`` over any non-empty subset of ``1..K``, counts 1..6.

    ``partial=True``: at least one multiplicity below ``K`` (a design with only the full
    label set has ``mu_crit = 0``: always trivial).
    """
    top = K - 1 if partial else K
    ms = set(_subset(draw, list(range(1, top + 1)), 1))
    if partial and draw(st.booleans()):
        ms.add(K)
    return {m: draw(COUNTS) for m in sorted(ms)}


@st.composite
def balanced_designs(draw, K: st.SearchStrategy[int] | None = None, *, partial: bool = False) -> designs.LabelDesign:
    """A design balanced within multiplicity (``ufm.designs.balanced``); see :func:`profiles`."""
    k = draw(K if K is not None else Ks())
    return designs.balanced(k, draw(profiles(k, partial=partial)))


def _subset(draw, items: list, min_size: int, max_size: int | None = None) -> list:
    """A random subset of ``items`` (size ``min_size..max_size``), without rejection:
    a prefix of a random permutation (hypothesis' unique collections reject repeats)."""
    hi = len(items) if max_size is None else min(max_size, len(items))
    size = draw(st.integers(min_size, hi))
    return list(draw(st.permutations(items))[:size])


def _unbalance(K: int, counts: dict[tuple[int, ...], int], pick: int) -> dict[tuple[int, ...], int]:
    """Make a per-set count mapping non-balanced within multiplicity, deterministically.

    If it is balanced already: when some multiplicity ``m < K`` is present (``C(K, m) >= 2``
    sets share one count), change the count of one of its sets (``n -> n mod 6 + 1``);
    when only the full label set is present, add the single label ``(0,)`` (1 of K sets).
    ``pick`` chooses which set is changed.
    """
    if designs.from_counts(K, counts).profile is None:
        return counts
    out = dict(counts)
    partial = sorted(S for S in out if len(S) < K)
    if partial:
        S = partial[pick % len(partial)]
        out[S] = out[S] % COUNT_MAX + 1
    else:
        out[(0,)] = 1
    return out


@st.composite
def unbalanced_designs(draw, K: st.SearchStrategy[int] | None = None) -> designs.LabelDesign:
    """A design that is *not* balanced within multiplicity (four kinds, see module doc)."""
    kind = draw(st.sampled_from(["imbalanced_single", "imbalanced_pairs", "random_subset", "counts"]))
    lo = 3 if kind == "imbalanced_pairs" else K_RANGE[0]
    k = draw(K if K is not None else Ks())
    k = max(k, lo)
    pick = draw(st.integers(0, 10**6))
    if kind == "imbalanced_single":
        cc = draw(st.lists(COUNTS, min_size=k, max_size=k))
        if len(set(cc)) == 1:
            cc[pick % k] = cc[0] % COUNT_MAX + 1
        pairs = list(itertools.combinations(range(k), 2))
        extra = {S: draw(COUNTS) for S in _subset(draw, pairs, 0, 6)}
        return designs.imbalanced_single(k, cc, extra)
    if kind == "imbalanced_pairs":
        pairs = list(itertools.combinations(range(k), 2))
        n_pair = draw(COUNTS)
        heavy_count = draw(st.integers(1, COUNT_MAX - 1))
        heavy_count += heavy_count >= n_pair  # in 1..6, never n_pair
        heavy = _subset(draw, pairs, 1, len(pairs) - 1)
        return designs.imbalanced_pairs(k, draw(COUNTS), n_pair=n_pair, heavy=heavy, heavy_count=heavy_count)
    if kind == "random_subset":
        max_m = draw(st.integers(2, k))
        pool = sum(math.comb(k, m) for m in range(2, max_m + 1))
        n_sets = draw(st.integers(0 if k > 2 else 1, min(pool, 40)))
        include_singles = draw(st.booleans()) if n_sets > 0 else True
        d0 = designs.random_subset(k, n_sets, max_multiplicity=max_m, count=(1, COUNT_MAX),
                                   include_singles=include_singles, rng=draw(SEEDS))
        counts = _unbalance(k, d0.counts_by_set(), pick)
        return designs.from_counts(k, counts, kind="random-subset")
    # arbitrary per-set counts on 1..40 label sets of any size (bit masks 1..2^K-1)
    if 2**k - 1 <= 63:
        masks = _subset(draw, list(range(1, 2**k)), 1, 40)
    else:  # 127..1023 candidates: unique draws of at most 40 rarely collide
        n_sets = draw(st.integers(1, 40))
        masks = draw(st.lists(st.integers(1, 2**k - 1), min_size=n_sets, max_size=n_sets, unique=True))
    counts = {tuple(j for j in range(k) if mask >> j & 1): draw(COUNTS) for mask in masks}
    return designs.from_counts(k, _unbalance(k, counts, pick), kind="counts")


# -- problems ------------------------------------------------------------------------
def _d_range(K: int, d: str) -> tuple[int, int]:
    if d == "any":
        return 1, K + 2
    if d == "theorem":
        return max(1, K - 1), K + 2
    if d == "low":
        if K < 3:
            raise ValueError("d < K-1 needs K >= 3")
        return 1, K - 2
    raise ValueError(d)


@st.composite
def problems(draw, design_strategy=None, d: str = "any", lam_W=LAMBDAS, lam_H=LAMBDAS,
             lam_b=LAM_B, bias=None) -> UFMProblem:
    """A :class:`UFMProblem` on a drawn design with independent log-uniform lambdas."""
    design = draw(design_strategy if design_strategy is not None else balanced_designs())
    lo, hi = _d_range(design.K, d)
    return UFMProblem(
        design, draw(st.integers(lo, hi)), draw(lam_W), draw(lam_H), draw(lam_b),
        bias=draw(bias if bias is not None else st.booleans()),
    )


@st.composite
def problems_at_ratio(draw, design_strategy=None, d: str = "theorem", rho=(1e-3, 0.9)) -> UFMProblem:
    """A problem with ``mu / mu_crit`` log-uniform in ``rho`` (regime-targeted).

    ``mu_crit`` from :func:`reference.mu_crit_by_svd` (the design must be balanced for it
    to be the phase transition); ``lam_W / lam_H`` log-uniform in ``[1e-2, 1e2]``. When
    only the full label set occurs, ``mu_crit = 0`` and ``mu`` is drawn from :data:`LAMBDAS`.
    """
    design = draw(design_strategy if design_strategy is not None else balanced_designs())
    lo, hi = _d_range(design.K, d)
    mu_crit = reference.mu_crit_by_svd(design)
    # only the full label set: mu_crit = 0, every mu is above the transition
    mu = draw(log_uniform(*rho)) * mu_crit if mu_crit > 0 else draw(LAMBDAS)
    ratio = draw(log_uniform(1e-2, 1e2))
    return UFMProblem(
        design, draw(st.integers(lo, hi)), mu * math.sqrt(ratio), mu / math.sqrt(ratio), draw(LAM_B),
        bias=draw(st.booleans()),
    )


@st.composite
def free_bias_problems(draw, rho=(0.2, 5.0)) -> UFMProblem:
    """A free-bias, ``lam_b = 0`` problem (balanced or not, PAL or normalised PAL) with
    ``mu / mu_0`` log-uniform in ``rho``: ``mu_0 = ||grad L(b* 1^T)||_2`` is where the origin
    (with its best bias) stops being optimal (:func:`reference.mu_at_origin`), so both sides
    of the transition are drawn about equally. ``lam_W / lam_H`` log-uniform in ``[1e-2, 1e2]``;
    ``d`` any. When ``mu_0 = 0`` (only the full label set) ``mu`` is drawn from :data:`LAMBDAS`.
    """
    design = draw(st.one_of(balanced_designs(), unbalanced_designs()))
    loss = draw(st.sampled_from(["pal", "pal-normalized"]))
    lo, hi = _d_range(design.K, "any")
    mu0 = reference.mu_at_origin(UFMProblem(design, design.K, 1.0, 1.0, 0.0, loss=loss))
    mu = draw(log_uniform(*rho)) * mu0 if mu0 > 0 else draw(LAMBDAS)
    ratio = draw(log_uniform(1e-2, 1e2))
    return UFMProblem(design, draw(st.integers(lo, hi)), mu * math.sqrt(ratio), mu / math.sqrt(ratio),
                      0.0, bias=True, loss=loss)


@st.composite
def points_near_origin(draw, problem: UFMProblem) -> np.ndarray:
    """A packed point with ``W, H`` of scale ``1e-8..1`` (log-uniform; exactly 0 with
    probability 1/4) and a bias of scale ``0..5``: the region where the free-bias dual point
    must respect ``Gamma 1 = 0`` to stay below ``inf_b F(0, 0, b)``."""
    gen = np.random.default_rng(draw(SEEDS))
    scale = draw(st.one_of(st.just(0.0), log_uniform(1e-8, 1.0), log_uniform(1e-8, 1.0), log_uniform(1e-8, 1.0)))
    bscale = draw(st.sampled_from([0.0, 0.1, 1.0, 5.0]))
    K, d, N = problem.K, problem.d, problem.N
    return np.concatenate([gen.standard_normal(K * d + d * N) * scale, gen.standard_normal(K) * bscale])


@st.composite
def points(draw, problem: UFMProblem) -> np.ndarray:
    """A packed point ``(W, H, b)``: Gaussian, std ``scale / sqrt(d)``, scale in [1e-3, 10]."""
    scale = draw(SCALES)
    gen = np.random.default_rng(draw(SEEDS))
    return gen.standard_normal(problem.n_vars) * (scale / math.sqrt(problem.d))


def describe_design(design: designs.LabelDesign) -> str:
    """Enough to rebuild a design: the profile, or the per-set counts."""
    if design.profile is not None:
        return f"balanced(K={design.K}, {design.profile})"
    return f"from_counts(K={design.K}, {design.counts_by_set()})"


def describe(problem: UFMProblem) -> str:
    """A reproducible one-line description of a problem (for assertion messages)."""
    return (f"UFMProblem({describe_design(problem.design)}, d={problem.d}, lam_W={problem.lam_W!r}, "
            f"lam_H={problem.lam_H!r}, lam_b={problem.lam_b!r}, bias={problem.bias})")

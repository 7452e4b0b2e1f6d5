"""Label designs: which label sets occur and how often (docs/theory.md section 1).

A design maps each label set ``S`` (a non-empty subset of ``{0..K-1}``) to a count
``n_S >= 0``. Samples are laid out in a canonical order: label sets sorted by
multiplicity, then lexicographically, each repeated ``n_S`` times. The group structure
(label set -> sample indices) is available to solvers and metrics.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .exceptions import UFMError, param_error

LabelSet = tuple[int, ...]


def _canonical_key(S: LabelSet) -> tuple[int, LabelSet]:
    return (len(S), S)


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a Generator, an int seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise param_error("ufm", "rng", "a numpy Generator, an int seed or None", rng)


@dataclass(frozen=True, eq=False)
class LabelDesign:
    """A multi-label design: label sets and their counts in canonical order.

    Attributes
    ----------
    K : int
        Number of classes.
    sets : tuple of tuple of int
        The label sets with a positive count, canonical order (by size, then lexicographic).
    counts : tuple of int
        ``n_S`` for each entry of ``sets``.
    kind : str
        How the design was built (``"balanced"``, ``"counts"``, ...), for reports.
    """

    K: int
    sets: tuple[LabelSet, ...]
    counts: tuple[int, ...]
    kind: str = "counts"

    # -- structure ---------------------------------------------------------------
    @property
    def G(self) -> int:
        """Number of distinct label sets (groups)."""
        return len(self.sets)

    @cached_property
    def N(self) -> int:
        return int(sum(self.counts))

    @cached_property
    def group_counts(self) -> np.ndarray:
        """``n_S`` per group, shape (G,)."""
        return np.asarray(self.counts, dtype=np.int64)

    @cached_property
    def group_multiplicity(self) -> np.ndarray:
        """``|S|`` per group, shape (G,)."""
        return np.asarray([len(S) for S in self.sets], dtype=np.int64)

    @cached_property
    def Yg(self) -> np.ndarray:
        """Indicator of each group's label set, shape (K, G), float64."""
        Yg = np.zeros((self.K, self.G))
        for g, S in enumerate(self.sets):
            Yg[list(S), g] = 1.0
        return Yg

    @cached_property
    def group_index(self) -> np.ndarray:
        """Group of each sample, shape (N,)."""
        return np.repeat(np.arange(self.G), self.group_counts)

    @cached_property
    def group_slices(self) -> tuple[slice, ...]:
        """Sample slice of each group (samples of a group are contiguous)."""
        ends = np.cumsum(self.group_counts)
        starts = ends - self.group_counts
        return tuple(slice(int(a), int(b)) for a, b in zip(starts, ends))

    @cached_property
    def Y(self) -> np.ndarray:
        """Label matrix, shape (K, N), float64 0/1."""
        return self.Yg[:, self.group_index]

    @cached_property
    def m(self) -> np.ndarray:
        """Multiplicity of each sample, shape (N,), float64."""
        return self.group_multiplicity[self.group_index].astype(np.float64)

    @property
    def multiplicities(self) -> tuple[int, ...]:
        """Sorted multiplicities present."""
        return tuple(sorted(set(int(v) for v in self.group_multiplicity)))

    def counts_by_set(self) -> dict[LabelSet, int]:
        return dict(zip(self.sets, self.counts))

    # -- the theorem's assumption -----------------------------------------------
    @cached_property
    def profile(self) -> dict[int, int] | None:
        """``{m: n_m}`` if the design is balanced within multiplicity, else ``None``.

        Balanced within multiplicity: for each multiplicity present, all ``C(K, m)`` label
        sets of that size occur, each exactly ``n_m`` times.
        """
        by_m: dict[int, list[int]] = {}
        for S, n in zip(self.sets, self.counts):
            by_m.setdefault(len(S), []).append(n)
        prof = {}
        for mm, ns in sorted(by_m.items()):
            if len(ns) != math.comb(self.K, mm) or len(set(ns)) != 1:
                return None
            prof[mm] = ns[0]
        return prof

    @property
    def is_balanced(self) -> bool:
        return self.profile is not None

    def imbalance_reason(self) -> str | None:
        """Why the design is not balanced within multiplicity (None if it is)."""
        if self.profile is not None:
            return None
        by_m: dict[int, list[int]] = {}
        for S, n in zip(self.sets, self.counts):
            by_m.setdefault(len(S), []).append(n)
        for mm, ns in sorted(by_m.items()):
            total = math.comb(self.K, mm)
            if len(ns) != total:
                return f"only {len(ns)} of the C({self.K},{mm})={total} label sets of size {mm} occur"
            if len(set(ns)) != 1:
                return f"label sets of size {mm} have unequal counts ({min(ns)}..{max(ns)})"
        return "unbalanced"  # pragma: no cover

    def describe(self) -> str:
        if self.profile is not None:
            prof = ",".join(f"{k}:{v}" for k, v in self.profile.items())
            return f"balanced K={self.K} profile {prof} (N={self.N})"
        return f"{self.kind} K={self.K}, {self.G} label sets (N={self.N})"

    def __repr__(self) -> str:
        return f"LabelDesign({self.describe()})"


# -- constructors -----------------------------------------------------------------
def _check_K(K: object) -> int:
    if not isinstance(K, (int, np.integer)) or isinstance(K, bool) or K < 2:
        raise param_error("LabelDesign", "K", "an int >= 2", K, "Use at least two classes.")
    return int(K)


def from_counts(K: int, counts: Mapping[Any, int], kind: str = "counts") -> LabelDesign:
    """A design from arbitrary per-set counts ``{label set: n_S}``.

    Label sets with a zero count are dropped; an empty label set is an error (the
    pick-all-label loss is undefined for it).

    Parameters
    ----------
    K : int
        Number of classes, ``K >= 2``.
    counts : dict {label set: n_S}
        Label sets as iterables of class indices in ``0..K-1``; counts ``>= 0``.
    kind : str, default "counts"
        A name for the design (shown in summaries).

    Returns
    -------
    LabelDesign

    Raises
    ------
    UFMError
        An empty mapping, an empty or out-of-range label set, a negative count, or all
        counts zero.

    Examples
    --------
    >>> d = from_counts(3, {(0,): 2, (1,): 1, (2,): 1, (0, 2): 3})
    >>> d.N, d.sets
    (7, ((0,), (1,), (2,), (0, 2)))
    """
    K = _check_K(K)
    if not isinstance(counts, Mapping) or len(counts) == 0:
        raise param_error("from_counts", "counts", "a non-empty mapping {label set: count}", counts)
    merged: dict[LabelSet, int] = {}
    for S_raw, n in counts.items():
        S_list = [S_raw] if isinstance(S_raw, (int, np.integer)) else list(S_raw)
        S = tuple(sorted(int(k) for k in S_list))
        if len(S) == 0:
            raise UFMError(
                "An empty label set was given: the pick-all-label loss needs at least one "
                "label per sample. Remove samples without labels."
            )
        if len(set(S)) != len(S) or S[0] < 0 or S[-1] >= K:
            raise param_error(
                "from_counts", "label set", f"distinct class indices in 0..{K - 1}", S_raw
            )
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise param_error("from_counts", f"count of {S}", "an int >= 0", n)
        if n > 0:
            merged[S] = merged.get(S, 0) + int(n)
    if not merged:
        raise UFMError("Every count is zero: the design has no samples. Give a positive count.")
    order = sorted(merged, key=_canonical_key)
    return LabelDesign(K=K, sets=tuple(order), counts=tuple(merged[S] for S in order), kind=kind)


def parse_profile(text: str) -> dict[int, int]:
    """Parse ``"1:3,2:2"`` into ``{1: 3, 2: 2}``."""
    prof: dict[int, int] = {}
    if not isinstance(text, str) or not text.strip():
        raise param_error("profile", "profile", "a string like '1:3,2:2' (multiplicity:count)", text)
    for part in text.split(","):
        bits = part.strip().split(":")
        if len(bits) != 2:
            raise param_error(
                "profile", "profile", "comma-separated 'multiplicity:count' pairs like '1:3,2:2'", text
            )
        try:
            mm, n = int(bits[0]), int(bits[1])
        except ValueError:
            raise param_error(
                "profile", "profile", "comma-separated 'multiplicity:count' pairs of ints", text
            ) from None
        if mm in prof:
            raise param_error("profile", "profile", "each multiplicity at most once", text)
        prof[mm] = n
    return prof


def balanced(K: int, profile: Mapping[int, int] | str) -> LabelDesign:
    """A design balanced within multiplicity: every label set of size ``m`` occurs ``n_m`` times.

    Parameters
    ----------
    K : int
        Number of classes, ``K >= 2``.
    profile : dict {m: n_m} or str ``"1:3,2:2"``
        Multiplicities ``1 <= m <= K`` with counts ``n_m >= 1``; any subset of
        multiplicities, imbalanced across multiplicities if wanted.
        ``N = sum_m n_m C(K, m)``.

    Returns
    -------
    LabelDesign
        ``Y`` (K, N) in canonical order (label sets by size, then lexicographically).

    Raises
    ------
    UFMError
        ``K < 2``, an empty or malformed profile, ``m`` outside ``1..K`` or a count ``< 1``.

    Examples
    --------
    >>> d = balanced(4, "1:3,2:1")       # every single label 3 times, every pair once
    >>> d.N, d.G, d.Y.shape
    (18, 10, (4, 18))
    """
    K = _check_K(K)
    prof = parse_profile(profile) if isinstance(profile, str) else dict(profile)
    if not prof:
        raise param_error("balanced", "profile", "a non-empty {multiplicity: count} mapping", profile)
    counts: dict[LabelSet, int] = {}
    for mm, n in prof.items():
        if not isinstance(mm, (int, np.integer)) or not 1 <= mm <= K:
            raise param_error(
                "balanced", "profile", f"multiplicities in 1..K={K}", mm,
                "A label set cannot have more labels than there are classes.",
            )
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise param_error("balanced", f"count of multiplicity {mm}", "an int >= 1", n)
    from .memory import check as check_memory

    check_memory(K, sum(int(n) * math.comb(K, int(mm)) for mm, n in prof.items()),
                 sum(math.comb(K, int(mm)) for mm in prof))
    for mm, n in prof.items():
        for S in itertools.combinations(range(K), int(mm)):
            counts[S] = int(n)
    return from_counts(K, counts, kind="balanced")


def imbalanced_single(
    K: int, class_counts: Iterable[int], extra: Mapping[Iterable[int], int] | None = None
) -> LabelDesign:
    """Single-label classes with per-class counts ``n_{k}`` (may differ), plus optional sets.

    Parameters
    ----------
    K : int
        Number of classes.
    class_counts : sequence of K ints
        ``n_{k}``, the count of the single label ``{k}``.
    extra : dict {label set: count}, optional
        Further label sets (e.g. pairs) and their counts.

    Returns
    -------
    LabelDesign

    Raises
    ------
    UFMError
        ``class_counts`` not of length K, or invalid counts or label sets.

    Examples
    --------
    >>> d = imbalanced_single(3, [8, 4, 2], extra={(0, 1): 1})
    >>> d.N, d.group_counts.tolist()
    (15, [8, 4, 2, 1])
    """
    K = _check_K(K)
    cc = list(class_counts)
    if len(cc) != K:
        raise param_error("imbalanced_single", "class_counts", f"a sequence of K={K} counts", cc)
    counts: dict[Iterable[int], int] = {(k,): int(n) for k, n in enumerate(cc)}
    for S, n in (extra or {}).items():
        counts[tuple(S)] = n
    return from_counts(K, counts, kind="imbalanced-single")


def imbalanced_pairs(
    K: int, n_single: int, pair_counts: Mapping[Iterable[int], int] | None = None,
    *, n_pair: int = 1, heavy: Iterable[Iterable[int]] = ((0, 1),), heavy_count: int = 4,
) -> LabelDesign:
    """Balanced single labels and pairs, with some pairs ("heavy") more frequent.

    Either give every pair's count in ``pair_counts`` or let all pairs occur ``n_pair``
    times except those in ``heavy``, which occur ``heavy_count`` times.

    Parameters
    ----------
    K : int
        Number of classes.
    n_single : int
        Count of every single label.
    pair_counts : dict {pair: count}, optional
        Every pair's count (overrides ``n_pair``, ``heavy``, ``heavy_count``).
    n_pair : int, default 1
    heavy : iterable of pairs, default ((0, 1),)
    heavy_count : int, default 4

    Returns
    -------
    LabelDesign

    Raises
    ------
    UFMError
        Invalid counts or label sets (as :func:`from_counts`).

    Examples
    --------
    >>> d = imbalanced_pairs(4, 2, heavy_count=5)   # singles x2, pairs x1, {0,1} x5
    >>> d.N
    18
    """
    K = _check_K(K)
    counts: dict[Iterable[int], int] = {(k,): int(n_single) for k in range(K)}
    if pair_counts is not None:
        for S, n in pair_counts.items():
            counts[tuple(sorted(S))] = n
    else:
        heavy_set = {tuple(sorted(S)) for S in heavy}
        for S in itertools.combinations(range(K), 2):
            counts[S] = heavy_count if S in heavy_set else n_pair
    return from_counts(K, counts, kind="imbalanced-pairs")


def random_subset(
    K: int, n_sets: int, *, max_multiplicity: int = 2, count: int | tuple[int, int] = 1,
    include_singles: bool = True, rng: np.random.Generator | int | None = None,
) -> LabelDesign:
    """A random subset of label sets of size ``2..max_multiplicity`` (plus all singles).

    ``count`` is a fixed per-set count or an inclusive range drawn uniformly per set.

    Parameters
    ----------
    K : int
        Number of classes.
    n_sets : int
        How many multi-label sets to draw (without replacement).
    max_multiplicity : int, default 2
    count : int or (int, int), default 1
    include_singles : bool, default True
        Add every single label (with ``count``).
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    LabelDesign

    Raises
    ------
    UFMError
        ``max_multiplicity`` outside ``1..K``, ``n_sets`` larger than the pool, or no set chosen.

    Examples
    --------
    >>> d = random_subset(5, 3, rng=0)
    >>> sum(len(S) == 2 for S in d.sets), sum(len(S) == 1 for S in d.sets)
    (3, 5)
    """
    K = _check_K(K)
    gen = as_rng(rng)
    if not 1 <= max_multiplicity <= K:
        raise param_error("random_subset", "max_multiplicity", f"an int in 1..K={K}", max_multiplicity)
    pool = [S for mm in range(2, max_multiplicity + 1) for S in itertools.combinations(range(K), mm)]
    if not 0 <= n_sets <= len(pool):
        raise param_error("random_subset", "n_sets", f"an int in 0..{len(pool)}", n_sets)
    chosen = [pool[i] for i in sorted(gen.choice(len(pool), size=n_sets, replace=False))]
    if include_singles:
        chosen = [(k,) for k in range(K)] + chosen
    if not chosen:
        raise UFMError("random_subset chose no label sets; set include_singles=True or n_sets >= 1.")

    def draw() -> int:
        if isinstance(count, tuple):
            return int(gen.integers(count[0], count[1] + 1))
        return int(count)

    return from_counts(K, {S: draw() for S in chosen}, kind="random-subset")


def from_indicator(Y: np.ndarray) -> tuple[LabelDesign, np.ndarray]:
    """A design from a user-given 0/1 label matrix ``Y`` (K x N).

    Parameters
    ----------
    Y : ndarray, shape (K, N)
        0/1 indicators, ``K >= 2``; every column needs at least one label.

    Returns
    -------
    design : LabelDesign
    order : ndarray of int, shape (N,)
        Permutation putting the user's samples in the design's canonical order:
        ``Y[:, order]`` equals ``design.Y``.

    Raises
    ------
    UFMError
        A wrong shape, non-binary entries, or a sample without labels.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[0, 1, 1], [1, 0, 1]])
    >>> design, order = from_indicator(Y)
    >>> bool((Y[:, order] == design.Y).all()), design.sets
    (True, ((0,), (1,), (0, 1)))
    """
    from .memory import check as check_memory
    from .validate import real_array

    if isinstance(Y, (str, bytes, dict)) or Y is None:
        raise TypeError(f"The 'Y' argument of ufm.from_indicator must be a 0/1 array of shape (K, N); got "
                        f"{type(Y).__name__}.")
    shape = np.shape(Y)
    if len(shape) != 2 or shape[0] < 2 or shape[1] < 1:
        raise param_error("from_indicator", "Y", "a 2-D array of shape (K >= 2, N >= 1)", shape)
    check_memory(shape[0], shape[1], 1)  # before any copy: the labels and the work arrays must fit
    Y = real_array("Y", Y, "from_indicator")
    if not np.all((Y == 0) | (Y == 1)):
        raise param_error("from_indicator", "Y", "a 0/1 indicator matrix", "non-binary entries")
    Y = Y.astype(np.int8)
    empty = np.flatnonzero(Y.sum(axis=0) == 0)
    if empty.size:
        raise UFMError(
            f"Samples {empty[:5].tolist()}{'...' if empty.size > 5 else ''} have an empty label "
            "set: the pick-all-label loss needs at least one label per sample. Remove them."
        )
    K = Y.shape[0]
    if K <= 62:  # each column's label set as the bits of one integer: a 1-D unique, fast at any N
        code = np.zeros(Y.shape[1], dtype=np.int64)
        for k in range(K):
            code |= Y[k].astype(np.int64) << k
        _, first, inverse, n = np.unique(code, return_index=True, return_inverse=True, return_counts=True)
        cols = Y[:, first].T
    else:
        cols, inverse, n = np.unique(Y.T, axis=0, return_inverse=True, return_counts=True)  # one row per set
    check_memory(K, Y.shape[1], len(cols))
    keys = [tuple(np.flatnonzero(c).tolist()) for c in cols]
    design = from_counts(K, dict(zip(keys, n.tolist())), kind="from-indicator")
    rank = {S: g for g, S in enumerate(design.sets)}
    order = np.argsort(np.asarray([rank[S] for S in keys])[inverse.ravel()], kind="stable")
    return design, order


# -- designs written as text: "0=12,1=12,0+1=3" --------------------------------------
DESIGN_SYNTAX = ("comma-separated LABELS=COUNT items, labels 0-based and joined by '+', "
                 "e.g. '0=10,1=10,2=2,0+1=3'")


def parse_design(text: str, K: int | None = None) -> LabelDesign:
    """A design from ``LABELS=COUNT`` items: ``"0=10,1=10,2=2,3=2,0+1=3,2+3=1"``.

    Each item is a label set (0-based class indices joined by ``+``) and its count
    ``n_S >= 1``. ``K`` is the largest label + 1 unless given (then every label must be
    below it; a larger ``K`` adds classes that occur in no label set).

    Parameters
    ----------
    text : str
        The items, separated by commas (spaces around items and ``+`` are allowed).
    K : int, optional
        Number of classes; default the largest label + 1.

    Returns
    -------
    LabelDesign
        ``kind`` is ``"design"`` (``"balanced"`` when the counts happen to be balanced
        within multiplicity).

    Raises
    ------
    UFMError
        One line naming the offending item: a malformed item, a repeated label inside a
        set, a set given twice (in any order), a count <= 0, a label >= K, or K < 2.

    Examples
    --------
    >>> d = parse_design("0=10,1=10,2=2,3=2,0+1=3,2+3=1")
    >>> d.K, d.N, d.sets[-2:]
    (4, 28, ((0, 1), (2, 3)))
    >>> parse_design("0=2,1=2", K=3).K
    3
    """
    if not isinstance(text, str) or not text.strip():
        raise UFMError(f"empty design; give {DESIGN_SYNTAX}.")
    counts: dict[LabelSet, int] = {}
    written: dict[LabelSet, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        S, n = _parse_item(item)
        if S in counts:
            raise UFMError(f"design item {item!r} repeats the label set {'+'.join(map(str, S))} "
                           f"(already given as {written[S]!r}); give each set once.")
        counts[S], written[S] = n, item
    return _design_from_items(counts, written, K)


def _parse_item(item: str) -> tuple[LabelSet, int]:
    if item.count("=") != 1:
        raise UFMError(f"malformed design item {item!r}: expected LABELS=COUNT ({DESIGN_SYNTAX}).")
    left, right = (s.strip() for s in item.split("="))
    try:
        labels = [int(s) for s in left.split("+")]
    except ValueError:
        raise UFMError(f"malformed design item {item!r}: the labels must be integers joined by '+' "
                       f"({DESIGN_SYNTAX}).") from None
    try:
        n = int(right)
    except ValueError:
        raise UFMError(f"malformed design item {item!r}: the count must be an integer >= 1.") from None
    if n <= 0:
        raise UFMError(f"design item {item!r} has count {n}; counts must be >= 1 (leave a set out "
                       "instead of giving it 0).")
    if any(k < 0 for k in labels):
        raise UFMError(f"design item {item!r} has a negative label; labels are 0-based class indices.")
    if len(set(labels)) != len(labels):
        raise UFMError(f"design item {item!r} repeats a label inside its set; give each label once.")
    return tuple(sorted(labels)), n


def _design_from_items(counts: Mapping[LabelSet, int], written: Mapping[LabelSet, str],
                       K: int | None) -> LabelDesign:
    top = max(max(S) for S in counts)
    if K is None:
        K = top + 1
        if K < 2:
            raise UFMError("the design uses only class 0; a problem needs K >= 2 classes (use labels "
                           "0 and 1, or give --K).")
    else:
        K = _check_K(K)
        bad = next(S for S in counts if max(S) == top)
        if top >= K:
            raise UFMError(f"design item {written[bad]!r} has label {top} >= K = {K}; labels are "
                           f"0..{K - 1} (raise --K or fix the item).")
    from .memory import check as check_memory

    check_memory(K, int(sum(counts.values())), len(counts))
    design = from_counts(K, dict(counts), kind="design")
    if design.is_balanced:
        object.__setattr__(design, "kind", "balanced")
    return design


def read_design_file(path: str, K: int | None = None) -> LabelDesign:
    """A design from a file: a CSV of ``LABELS,COUNT`` rows (or ``LABELS=COUNT`` lines), or an
    ``.npz`` holding a 0/1 indicator ``Y`` (K x N, one column per sample).

    In the CSV, blank lines and lines starting with ``#`` are skipped, and a first row
    ``labels,count`` is a header. The same errors as :func:`parse_design`, with the line number.
    """
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise UFMError(f"no design file {path!r} (a CSV of LABELS,COUNT rows or an .npz with Y).")
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as data:
                if "Y" not in data.files:
                    raise UFMError(f"{path} has no array 'Y' (the K x N 0/1 label indicator).")
                Y = np.asarray(data["Y"])
        except (ValueError, OSError, EOFError) as exc:
            if isinstance(exc, UFMError):
                raise
            raise UFMError(f"cannot read {path} as .npz: {' '.join(str(exc).split())}") from None
        if Y.ndim == 2 and K is not None and Y.shape[0] != K:
            raise UFMError(f"{path}: Y has {Y.shape[0]} rows (classes) but K = {K}.")
        return from_indicator(Y)[0]
    counts: dict[LabelSet, int] = {}
    written: dict[LabelSet, str] = {}
    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if lineno == 1 and text.replace(" ", "").lower() in ("labels,count", "labels=count"):
            continue
        item = text if "=" in text else text.replace(",", "=", 1) if text.count(",") == 1 else text
        where = f"{path} line {lineno}"
        try:
            S, n = _parse_item(item)
        except UFMError as exc:
            raise UFMError(f"{where}: {exc}") from None
        if S in counts:
            raise UFMError(f"{where}: the label set {'+'.join(map(str, S))} is given twice "
                           f"(also {written[S]!r}); give each set once.")
        counts[S], written[S] = n, f"{where}: {text}"
    if not counts:
        raise UFMError(f"{path} holds no design items; give {DESIGN_SYNTAX}, one per line.")
    return _design_from_items(counts, written, K)


def format_design(design: LabelDesign) -> str:
    """The ``LABELS=COUNT`` text of ``design`` (inverse of :func:`parse_design`)."""
    return ",".join(f"{'+'.join(map(str, S))}={n}" for S, n in zip(design.sets, design.counts))

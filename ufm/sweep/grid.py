r"""Sweep specifications: a small TOML or JSON file (or dict) expanded into *cells*.

A cell is one fully specified run: a :class:`~ufm.problem.UFMProblem`, a solver, its
options and a seed. Its key is the sha256 of the canonical JSON of exactly these
(plus the record schema and whether the NC history is kept), so the same run always has
the same key, whichever spec, machine or order produced it.

Spec layout (TOML shown; JSON is the same structure)::

    name = "phase"                      # default: the file's stem
    title = "Phase transition in mu"
    description = "..."

    [defaults]                          # applies to every [[grid]] (any cell key)
    lam_b = 1e-2
    seeds = [0]

    [[grid]]                            # lists are axes: the cartesian product is taken
    K = [4, 6]
    profile = ["1:2,2:1"]               # shorthand for design = {kind = "balanced", ...}
    d = ["K-1", "K"]                    # an int, or "K", "K-1", "K+2", ...
    mu_ratio = [0.25, 0.5, 2.0]         # mu / mu_crit (any design: its trivial threshold)
    lam_ratio = [1.0]                   # lam_W / lam_H

Cell keys: ``K`` (int; optional with a design string); ``profile`` (balanced ``"m:n_m,..."``)
or ``design`` (a ``LABELS=COUNT`` string such as ``"0=12,1=12,2=1,0+1=3"`` as in
``ufm solve --design``, a table, or a list of either, see :func:`build_design`; a list-valued scalar field inside a design
table is an axis too); ``d``; the regularisation as ``lam_W`` and ``lam_H``, or ``mu``
with ``lam_ratio`` (``lam_W = mu sqrt(ratio)``, ``lam_H = mu / sqrt(ratio)``), or
``mu_ratio`` with ``lam_ratio``; ``lam_b`` (1e-2), ``bias`` (true), ``loss`` ("pal"),
``solver`` ("lbfgs"), ``seed`` or ``seeds``, ``options`` (a table of solver options, plus
``starts = N``: the best of N random starts with seeds SEED..SEED+N-1, every start's F kept
in the record, :func:`ufm.solvers.multistart.solve_starts`; in a
sweep ``lbfgs`` keeps all ``N`` feature columns unless ``group = true`` is given, so the
records' NC1 is measured rather than imposed by the grouped solver), ``history`` (false: keep the NC metrics against iterations in the record). Cells whose
``d`` evaluates below 1 are skipped; duplicate cells are kept once.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import designs
from ..exceptions import UFMError
from ..problem import LOSSES, UFMProblem

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the `tomli` backport reads the same files
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]

SCHEMA = 1  # bump when the record layout changes: every key changes with it
SHIPPED_DIR = Path(__file__).parent / "specs"
CELL_KEYS = {"K", "profile", "design", "d", "lam_W", "lam_H", "mu", "mu_ratio", "lam_ratio",
             "lam_b", "bias", "loss", "solver", "seed", "seeds", "options", "history"}
DEFAULTS: dict[str, Any] = {"lam_b": 1e-2, "bias": True, "loss": "pal", "solver": "lbfgs",
                            "seed": 0, "options": {}, "history": False, "lam_ratio": 1.0}
# scalar design fields that may be given as a list (an axis)
DESIGN_AXES = {"profile", "n_max", "n_min", "pairs", "n_single", "n_pair", "heavy_count",
               "n_sets", "max_multiplicity", "seed"}
SOLVERS = ("gd", "agd", "lbfgs", "convex", "sgd", "adam", "network")


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def cell_key(cell: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the cell's problem, solver, options, seed, history."""
    ident = {"schema": SCHEMA, **{k: cell[k] for k in ("problem", "solver", "options", "seed", "history")}}
    return hashlib.sha256(canonical(ident).encode()).hexdigest()


@dataclass
class Spec:
    """A parsed spec: its name, title, description and the cells it expands to."""

    name: str
    title: str = ""
    description: str = ""
    cells: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    source: dict[str, Any] = field(default_factory=dict)


def shipped_specs() -> dict[str, Path]:
    """The named specs shipped with the package: ``{name: path}``."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.toml"))}


def read_spec(spec: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The raw spec dict from a shipped name, a ``.toml``/``.json`` path or a mapping."""
    if isinstance(spec, Mapping):
        return dict(spec)
    path = Path(spec)
    if not path.exists():
        named = shipped_specs()
        if str(spec) in named:
            path = named[str(spec)]
        else:
            raise UFMError(f"No spec file or shipped spec named {str(spec)!r}; shipped specs: "
                           f"{', '.join(named) or 'none'} (see `ufm sweep --list`).")
    from ..files import read_regular

    try:
        text = read_regular(path).decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise UFMError(f"Cannot read spec {path}: {getattr(exc, 'strerror', None) or 'not text'} (a folder, "
                       "a FIFO or a binary file); give a .toml or .json file.") from None
    if tomllib is None and path.suffix != ".json":
        raise UFMError("Reading TOML specs needs Python >= 3.11 (or `pip install tomli`); "
                       "give the spec as JSON instead.")
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError is a ValueError
        raise UFMError(f"Cannot parse spec {path}: {exc}") from None
    raw.setdefault("name", path.stem)
    return raw


def parse_d(value: Any, K: int) -> int:
    """``d`` from an int or an expression ``"K"``, ``"K-1"``, ``"K+2"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = re.fullmatch(r"\s*K\s*(?:([+-])\s*(\d+))?\s*", str(value))
    if not m:
        raise UFMError(f"The 'd' entry of a spec must be an int or 'K', 'K-1', 'K+2', ...; got {value!r}.")
    off = int(m.group(2) or 0)
    return K - off if m.group(1) == "-" else K + off


def _counts_linear(K: int, n_max: int, n_min: int) -> list[int]:
    """K per-class counts spaced evenly from ``n_max`` (class 0) down to ``n_min`` (class K-1)."""
    return [int(round(n_max + (n_min - n_max) * k / (K - 1))) for k in range(K)]


def build_design(K: int, spec: Mapping[str, Any]) -> designs.LabelDesign:
    """A :class:`~ufm.designs.LabelDesign` from a design table.

    Kinds and fields: ``balanced`` (``profile``); ``imbalanced_single`` (``counts`` = K
    per-class counts, or ``n_max``/``n_min`` evenly spaced from class 0 down to class
    K-1; ``pairs``: count of every pair, default 0); ``imbalanced_pairs`` (``n_single``,
    ``n_pair``, ``heavy`` = list of pairs, ``heavy_count``); ``random_subset``
    (``n_sets``, ``max_multiplicity``, ``count``, ``seed``); ``counts`` (``sets``, ``counts``).
    """
    kind = spec.get("kind", "balanced")
    try:
        if kind == "items":  # a string "0=12,1=12,0+1=3" (designs.parse_design)
            return designs.parse_design(spec["items"], K)
        if kind == "balanced":
            return designs.balanced(K, spec["profile"])
        if kind == "imbalanced_single":
            cc = spec.get("counts") or _counts_linear(K, int(spec["n_max"]), int(spec["n_min"]))
            pairs = int(spec.get("pairs", 0))
            extra: dict[Any, int] | None = (
                {S: pairs for S in itertools.combinations(range(K), 2)} if pairs else None)
            return designs.imbalanced_single(K, cc, extra)
        if kind == "imbalanced_pairs":
            heavy = tuple(tuple(S) for S in spec.get("heavy", [[0, 1]]))
            return designs.imbalanced_pairs(K, int(spec["n_single"]), n_pair=int(spec.get("n_pair", 1)),
                                            heavy=heavy, heavy_count=int(spec["heavy_count"]))
        if kind == "random_subset":
            count = spec.get("count", 1)
            return designs.random_subset(
                K, int(spec["n_sets"]), max_multiplicity=int(spec.get("max_multiplicity", 2)),
                count=tuple(count) if isinstance(count, list) else int(count), rng=int(spec.get("seed", 0)))
        if kind == "counts":
            return designs.from_counts(K, {tuple(S): int(n) for S, n in zip(spec["sets"], spec["counts"])})
    except KeyError as exc:
        raise UFMError(f"Design kind {kind!r} needs the field {exc.args[0]!r}; got {dict(spec)}.") from None
    raise UFMError(f"Unknown design kind {kind!r}; use balanced, imbalanced_single, imbalanced_pairs, "
                   "random_subset or counts.")


def _axes(point: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Cartesian product over the list-valued entries of ``point`` (insertion order)."""
    names = [k for k, v in point.items() if isinstance(v, list)]
    out = []
    for combo in itertools.product(*(point[k] for k in names)):
        out.append({**point, **dict(zip(names, combo))})
    return out


def _design_tables(point: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "design" in point and "profile" in point:
        raise UFMError("A spec grid gives both 'design' and 'profile'; use one of them.")
    if "profile" in point:
        tables = [{"kind": "balanced", "profile": point["profile"]}]
    elif "design" in point:
        raw = point["design"]
        tables = [{"kind": "items", "items": t} if isinstance(t, str) else dict(t)
                  for t in (raw if isinstance(raw, list) else [raw])]
    else:
        raise UFMError("Every spec grid needs a 'profile' or a 'design'.")
    out = []
    for t in tables:
        axes = {k: v for k, v in t.items() if k in DESIGN_AXES and isinstance(v, list)}
        rest = {k: v for k, v in t.items() if k not in axes}
        out += [{**rest, **dict(zip(axes, c))} for c in itertools.product(*axes.values())]
    return out


def _lambdas(point: Mapping[str, Any], design: designs.LabelDesign) -> tuple[float, float]:
    ratio = float(point.get("lam_ratio", 1.0))
    if "lam_W" in point or "lam_H" in point:
        return float(point["lam_W"]), float(point["lam_H"])
    if "mu" in point:
        mu = float(point["mu"])
    elif "mu_ratio" in point:
        from ..theory import PhiProblem

        if design.profile is None:  # the trivial threshold of any design (= mu_crit when balanced)
            from ..theory import trivial_threshold

            bias = bool(point.get("bias", True))
            mu = float(point["mu_ratio"]) * trivial_threshold(design, float(point.get("lam_b", 0.0)), bias)
        else:
            mu = float(point["mu_ratio"]) * PhiProblem.from_profile(design.K, design.profile, 1.0).mu_crit
    else:
        raise UFMError("A spec grid needs the regularisation: 'lam_W' and 'lam_H', 'mu', or 'mu_ratio'.")
    return mu * math.sqrt(ratio), mu / math.sqrt(ratio)


TOP_KEYS = {"name", "title", "description", "defaults", "grid"}
DESIGN_FIELDS = {
    "balanced": {"kind", "profile"},
    "imbalanced_single": {"kind", "counts", "n_max", "n_min", "pairs"},
    "imbalanced_pairs": {"kind", "n_single", "n_pair", "heavy", "heavy_count"},
    "random_subset": {"kind", "n_sets", "max_multiplicity", "count", "seed"},
    "counts": {"kind", "sets", "counts"},
    "items": {"kind", "items"},
}


def _unknown(where: str, keys: Iterable[str], allowed: Iterable[str]) -> None:
    """Refuse unknown keys, suggesting the closest allowed name (nothing is silently ignored)."""
    allowed = sorted(allowed)
    bad = sorted(set(keys) - set(allowed))
    if bad:
        hints = []
        for k in bad:
            close = difflib.get_close_matches(k, allowed, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise UFMError(f"{where}: unknown key(s) {', '.join(hints)}; allowed: {', '.join(allowed)}.")


def _solver_defaults(solver: str) -> Mapping[str, Any] | None:
    """The option names a solver accepts (None: not known here, checked when it runs)."""
    if solver in ("gd", "agd"):
        from ..solvers.gradient import AGD_DEFAULTS, GD_DEFAULTS

        return GD_DEFAULTS if solver == "gd" else AGD_DEFAULTS
    if solver == "lbfgs":
        from ..solvers.lbfgs import LBFGS_DEFAULTS

        return LBFGS_DEFAULTS
    if solver == "convex":
        from ..solvers.convex import CONVEX_DEFAULTS

        return CONVEX_DEFAULTS
    return None


def expand(raw: Mapping[str, Any]) -> Spec:
    """Expand a raw spec dict into its cells (deduplicated, in grid then axis order).

    Every key at every level is checked: an unknown one (a misspelt table such as
    ``[defults]``, an option the solver does not take) is an error naming the closest
    valid name; so are wrong types and contradictory regularisations.
    """
    name = str(raw.get("name", "sweep"))
    _unknown(f"Spec {name!r}", raw.keys(), TOP_KEYS)
    grids = raw.get("grid")
    if isinstance(grids, Mapping):
        grids = [grids]
    if not grids or not isinstance(grids, list) or not all(isinstance(g, Mapping) for g in grids):
        raise UFMError(f"Spec {name!r} has no [[grid]] table (a list of tables).")
    if not isinstance(raw.get("defaults", {}), Mapping):
        raise UFMError(f"Spec {name!r}: [defaults] must be a table.")
    _unknown(f"Spec {name!r} [defaults]", raw.get("defaults", {}).keys(), CELL_KEYS)
    defaults = {**DEFAULTS, **raw.get("defaults", {})}
    spec = Spec(name, str(raw.get("title", name)), str(raw.get("description", "")).strip(), source=dict(raw))
    seen: set[str] = set()
    for grid in grids:
        merged = {**defaults, **grid}
        _unknown(f"Spec {name!r} [[grid]]", grid.keys(), CELL_KEYS)
        reg = [k for k in ("lam_W", "mu", "mu_ratio") if k in merged and not (k == "lam_W" and "lam_H" not in merged)]
        if ("lam_W" in merged) != ("lam_H" in merged):
            raise UFMError(f"Spec {name!r}: give both 'lam_W' and 'lam_H' (or 'mu' / 'mu_ratio' instead).")
        if len(reg) > 1:
            shown = ["lam_W/lam_H" if k == "lam_W" else k for k in reg]
            raise UFMError(f"Spec {name!r}: the regularisation is given twice ({' and '.join(shown)}); "
                           "give exactly one of lam_W/lam_H, mu, mu_ratio.")
        if not isinstance(merged.get("options", {}), Mapping):
            raise UFMError(f"Spec {name!r}: 'options' must be a table of solver options.")
        if "seeds" in merged:
            seeds = merged.pop("seeds")
            merged["seed"] = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
        options = {**defaults.get("options", {}), **grid.get("options", {})}
        tables = _design_tables(merged)
        base = {k: v for k, v in merged.items() if k not in ("design", "profile", "options")}
        for point in _axes(base):
            for table in tables:
                cell = _make_cell(name, point, table, options)
                if cell is None:
                    spec.skipped += 1
                elif cell["key"] not in seen:
                    seen.add(cell["key"])
                    spec.cells.append(cell)
    return spec


def _make_cell(name: str, point: Mapping[str, Any], table: Mapping[str, Any],
               options: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        return _make_cell_typed(name, point, table, options)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, UFMError):
            raise
        shown = {k: v for k, v in point.items() if k not in ("options",)}
        raise UFMError(f"Spec {name!r}: a value has the wrong type ({' '.join(str(exc).split())}) in the "
                       f"cell {shown} with design {dict(table)}.") from None


def _make_cell_typed(name: str, point: Mapping[str, Any], table: Mapping[str, Any],
                     options: Mapping[str, Any]) -> dict[str, Any] | None:
    for key in ("K", "seed"):
        v = point.get(key)
        if key in point and (isinstance(v, bool) or not isinstance(v, int) or v < (2 if key == "K" else 0)):
            raise UFMError(f"Spec {name!r}: {key!r} must be an int >= {2 if key == 'K' else 0}; got {v!r}.")
    if not isinstance(point.get("bias", True), bool) or not isinstance(point.get("history", False), bool):
        raise UFMError(f"Spec {name!r}: 'bias' and 'history' must be true or false; got "
                       f"{point.get('bias')!r}, {point.get('history')!r}.")
    kind = table.get("kind", "balanced")
    if kind in DESIGN_FIELDS:
        _unknown(f"Spec {name!r} design {kind!r}", table.keys(), DESIGN_FIELDS[kind])
    known = _solver_defaults(str(point["solver"]))
    if "fixed_W" in options:  # a frozen classifier ("etf:SCALE"): ufm.fixed.solve_fixed runs the cell
        from ..fixed import FIXED_OPTIONS

        known = dict.fromkeys(FIXED_OPTIONS)
    starts = options.get("starts", 1)
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1 or (
            starts > 1 and point["solver"] not in ("gd", "agd", "lbfgs")):
        raise UFMError(f"Spec {name!r}: option 'starts' must be an int >= 1 (above 1 only for gd, agd, lbfgs); "
                       f"got {starts!r} for solver {point['solver']!r}.")
    if known is not None:
        _unknown(f"Spec {name!r} options of solver {point['solver']!r}", options.keys(), [*known.keys(), "starts"])
    if "K" not in point and kind == "items":  # K = the largest label + 1
        point = {**point, "K": designs.parse_design(str(table["items"])).K}
    if "K" not in point:
        raise UFMError(f"Spec {name!r}: 'K' is needed with a design table of kind {kind!r}.")
    K = int(point["K"])
    d = parse_d(point.get("d", "K"), K)
    if d < 1:
        return None
    design = build_design(K, table)
    lam_W, lam_H = _lambdas(point, design)
    if point["loss"] not in LOSSES:
        raise UFMError(f"Spec {name!r}: 'loss' must be one of {LOSSES}; got {point['loss']!r}.")
    if point["solver"] not in SOLVERS:
        raise UFMError(f"Spec {name!r}: 'solver' must be one of {SOLVERS}; got {point['solver']!r}.")
    problem = UFMProblem(design, d, lam_W, lam_H, float(point["lam_b"]), bool(point["bias"]), point["loss"])
    params = {k: v for k, v in point.items() if k not in ("options",)}
    params["design"] = dict(table)
    params["d"] = point.get("d", "K")
    cell = {"spec": name, "problem": problem.to_dict(), "solver": str(point["solver"]),
            "options": dict(options), "seed": int(point["seed"]), "history": bool(point["history"]),
            "params": params}
    cell["key"] = cell_key(cell)
    return cell


def load_spec(spec: str | Path | Mapping[str, Any]) -> Spec:
    """Read and expand a spec given by shipped name, path or dict."""
    return expand(read_spec(spec))

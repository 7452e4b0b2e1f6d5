"""Tables of the report: one builder per regime, from stored sweep records (rendering only).

Each builder takes the records of one spec and returns ``(tables, findings)``: the
:class:`Table` objects (written as Markdown, LaTeX booktabs and CSV) and a few lines of
text with the numbers that summarise the regime. Every number comes from the records;
nothing is solved or measured here. Residual-like numbers (gaps, NC metrics, angles) below
``FLOOR`` print as ``<1e-08``: their digits are float64 noise and change with any
change in the floating-point path (BLAS, the objective's code). The CSV files hold the
same strings as the Markdown and LaTeX tables (empty for "—"): every digit written is one
that another machine reproduces.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..metrics import DEAD_CLASS_TOL

FLOOR = 1e-8
FLOOR_LABEL = "below 1e-8: drawn at 1e-8 (rounding)"
TRIVIAL_NORM = 1e-6  # ||W||_F below this: the trivial solution, NC metrics undefined

Rec = dict[str, Any]


def num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def fmt(x: Any, kind: str = "g") -> str:
    """``kind``: "g" 4 significant digits, "f" the same with the residual floor, "r" residual
    (floor, 2 digits), "c" cosine (3 decimals), "i" int, "s" str."""
    if kind == "s" or isinstance(x, str):
        return str(x)
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if kind == "i":
        return str(int(x))
    if kind in ("r", "f") and abs(x) < FLOOR:
        return f"<{FLOOR:.0e}"
    if kind == "r":
        return f"{x:.2g}"
    if kind == "c":  # a cosine: 3 decimals, no negative zero
        return f"{x:.3f}".replace("-0.000", "0.000")
    return f"{x:.4g}"


@dataclass
class Table:
    """A named table: ``columns`` are ``(header, key, kind)``; rows are dicts."""

    name: str
    title: str
    columns: list[tuple[str, str, str]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def cells(self) -> list[list[str]]:
        return [[fmt(r.get(k), kind) for _, k, kind in self.columns] for r in self.rows]

    def markdown(self) -> str:
        head = [h for h, _, _ in self.columns]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in self.cells()]
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        def esc(s: str) -> str:
            for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"),
                         ("#", r"\#"), ("<", r"$<$"), ("—", "--"), ("|", r"$|$")):
                s = s.replace(a, b)
            return s

        cols = "l" * len(self.columns)
        out = [f"% {self.title}", r"\begin{tabular}{" + cols + "}", r"\toprule",
               " & ".join(esc(h) for h, _, _ in self.columns) + r" \\", r"\midrule"]
        out += [" & ".join(esc(c) for c in row) + r" \\" for row in self.cells()]
        out += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(out) + "\n"

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        md, tex, csvp = (directory / f"{self.name}.{ext}" for ext in ("md", "tex", "csv"))
        md.write_text(f"### {self.title}\n\n{self.markdown()}" + (f"\n{self.note}\n" if self.note else ""))
        tex.write_text(self.latex())
        with csvp.open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow([k for _, k, _ in self.columns])
            for row in self.cells():
                w.writerow(["" if c == "—" else c for c in row])
        return [md, tex, csvp]


# -- record accessors ---------------------------------------------------------------
def prob(r: Rec) -> dict:
    return r["summary"]["problem"]


def profile_of(r: Rec) -> str:
    des = r["params"]["design"]
    return str(des.get("profile", des.get("kind", ""))) if isinstance(des, dict) else str(des)


def tag(r: Rec, m: int, key: str) -> float:
    return num(r["summary"]["metrics"]["tagwise"].get(str(m), {}).get(key))


def theory_c(r: Rec, m: int) -> float:
    return num(r["summary"]["theory"]["c"].get(str(m)))


def margin(r: Rec, m: int) -> float:
    vals = [s["margin"] for s in r["geometry"]["sets"] if s["m"] == m and s["margin"] is not None]
    return sum(vals) / len(vals) if vals else float("nan")


def is_trivial(r: Rec) -> bool:
    return num(r["summary"]["metrics"]["norm_W"]) < TRIVIAL_NORM


def excess(r: Rec) -> float:
    ref = r.get("value_full_d")
    return float("nan") if ref is None else r["summary"]["objective"] / ref - 1


def mu_ratio(r: Rec) -> float:
    th = r["summary"]["theory"]
    return num(th["mu"]) / num(th["mu_crit"])


def group(recs: Iterable[Rec], key: Callable[[Rec], Any]) -> dict[Any, list[Rec]]:
    out: dict[Any, list[Rec]] = defaultdict(list)
    for r in recs:
        out[key(r)].append(r)
    return dict(sorted(out.items(), key=lambda kv: str(kv[0]) if not isinstance(kv[0], tuple) else kv[0]))


def nanmax(vals: Iterable[float]) -> float:
    v = [x for x in vals if not math.isnan(x)]
    return max(v) if v else float("nan")


def upto(x: float) -> str:
    """``<= x``, or ``< 1e-10`` when x is below the residual floor."""
    t = fmt(x, "r")
    return t if t.startswith("<") else f"<= {t}"


def span(vals: list[float], kind: str = "g") -> str:
    a, b = fmt(min(vals), kind), fmt(max(vals), kind)
    return a if a == b else f"{a}..{b}"


def best_run(rs: list[Rec]) -> Rec:
    """The run with the lowest F; ties (within 1e-9 relative) go to the lowest seed."""
    f0 = min(r["summary"]["objective"] for r in rs)
    tied = [r for r in rs if r["summary"]["objective"] <= f0 + 1e-9 * abs(f0)]
    return min(tied, key=lambda r: r["cell"]["seed"])


def floor_line(ax: Any, top: float | None = None) -> None:
    """Log axis from just below ``FLOOR``; a dotted line marks it (figures draw residuals
    below it at it: their digits are rounding noise, as the tables' ``<1e-08``)."""
    ax.axhline(FLOOR, color="0.5", lw=0.8, ls=":", label=FLOOR_LABEL)
    ax.set_ylim(FLOOR / 3, top)


DEAD = DEAD_CLASS_TOL  # a classifier row is dead when its norm is at most DEAD x the largest row norm


def dead_classes(r: Rec) -> list[int]:
    """Classes whose classifier row is zero: ``||w_k|| <= DEAD_CLASS_TOL max_j ||w_j||``.

    Such a class's logit is the bias alone, the same for every sample, and the cosines
    between its row and the others are quotients of rounding errors."""
    norms = [num(c["norm_w"]) for c in r["geometry"]["classes"]]
    top = max(norms)
    return [k for k, v in enumerate(norms) if top > 0 and v <= DEAD * top]

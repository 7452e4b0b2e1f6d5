"""Report sections beyond the paper: the fixed simplex-ETF classifier, minority collapse,
the imbalance conjecture and dead classes below d = K-1 (tables, findings and figures
from stored sweep records; nothing is optimised here).

Registered into :data:`ufm.report.regimes.BUILDERS` and :data:`ufm.report.figures.FIGURES`
under the spec names ``fixed``, ``minority``, ``conjecture`` and ``deadclass``.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .conjecture import conjecture, fig_conjecture  # noqa: E402
from .deadclass import deadclass, fig_deadclass  # noqa: E402
from .minority_thresholds import REL, bisect, state_of  # noqa: E402
from .tables import (  # noqa: E402
    Rec,
    Table,
    fmt,
    group,
    nanmax,
    num,
    prob,
    profile_of,
    span,
    upto,
)

Built = tuple[list[Table], list[str]]
COLORS = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]
ZERO = 1e-5  # a classifier row (or a row difference) below ZERO x the largest row norm is 0


def _claims(recs: list[Rec]) -> tuple[int, int]:
    cl = [c for r in recs for c in r["summary"]["claims"]]
    return sum(c["passed"] for c in cl), len(cl)


def _W(r: Rec) -> np.ndarray:
    return np.asarray(r["arrays"]["W"], dtype=float)


def _cert(r: Rec) -> float:
    return num(r["summary"]["certificate"]["rel_gap"])


# -- fixed classifier ---------------------------------------------------------------------
def _scale_of(r: Rec) -> float | None:
    """The ETF row norm of a fixed-classifier cell, None for a learned one."""
    spec = r["cell"]["options"].get("fixed_W")
    if spec is None:
        return None
    return float(spec.split(":")[1]) if ":" in spec else 1.0


def coinciding_row_norm(r: Rec) -> float:
    """``a* = sqrt(sqrt(lam_H/lam_W) sigma* (K-1)/K)`` from a learned cell's theory (0 if trivial)."""
    p, th = prob(r), r["summary"]["theory"]
    if th["regime"] != "collapse":
        return 0.0
    return math.sqrt(math.sqrt(p["lam_H"] / p["lam_W"]) * th["sigma"] * (p["K"] - 1) / p["K"])


def _fixed_value_at(r: Rec, a: float) -> float:
    """The exact fixed-ETF optimum (closed form plus 1-D roots) at row norm ``a`` on ``r``'s problem."""
    from ..fixed import etf_classifier, predict_fixed
    from ..problem import UFMProblem

    p = UFMProblem.from_dict(prob(r))
    return float(predict_fixed(p, etf_classifier(p.K, p.d, a)).value)  # type: ignore[arg-type]


def _fixed_rows(recs: list[Rec]) -> tuple[list[dict], list[float]]:
    scales = sorted({s for r in recs if (s := _scale_of(r)) is not None})
    rows = []
    for (prof, x), rs in group(recs, lambda r: (profile_of(r), r["params"]["mu_ratio"])).items():
        learned = next(r for r in rs if _scale_of(r) is None)
        th = learned["summary"]["theory"]
        a = coinciding_row_norm(learned)
        row: dict[str, Any] = {"profile": prof, "x": x, "regime": th["regime"], "F": learned["summary"]["objective"],
                               "cL": num(th["c"].get("2")) if th["regime"] == "collapse" else None, "s1": num(th["s"].get("1")), "a": a,
                               "at_a": (_fixed_value_at(learned, a) / learned["summary"]["objective"] - 1) if a > 0 else None,
                               "fixed": []}
        for r in sorted((r for r in rs if _scale_of(r) is not None), key=_scale_of):  # type: ignore[arg-type, return-value]
            s = _scale_of(r)
            t = r["summary"]["theory"]
            row[f"F{s:g}"] = r["summary"]["objective"]
            row[f"c{s:g}"] = num(t["c"].get("2"))
            row["fixed"].append({"scale": s, "F": r["summary"]["objective"], "s1": num(t["s"].get("1")),
                                 "c2": num(t["c"].get("2")), "gap": abs(num(r["summary"]["gap_to_theory"])),
                                 "cert": _cert(r), "excess": r["summary"]["objective"] / row["F"] - 1})
        rows.append(row)
    return rows, scales


def fixed(recs: list[Rec]) -> Built:
    rows, scales = _fixed_rows(recs)
    cols = [("profile", "profile", "s"), ("mu/mu_crit", "x", "g"), ("learned regime", "regime", "s"),
            ("min F learned", "F", "g")] + [(f"min F, ETF rows {s:g}", f"F{s:g}", "g") for s in scales] + [
            ("c_2 learned", "cL", "g")] + [(f"c_2, ETF rows {s:g}", f"c{s:g}", "g") for s in scales] + [
            ("coinciding row norm a*", "a", "g"), ("fixed at a* / learned - 1", "at_a", "r")]
    t = Table("fixed_compare", "Fixed simplex-ETF classifier (rows of norm SCALE) against the learned one (K = 5, d = K)",
              cols, rows, note="a* = sqrt(sqrt(lam_H/lam_W) sigma* (K-1)/K) is the row norm of the learned optimum; "
              "the last column evaluates the fixed-ETF optimum there (closed form). 0 marks the trivial learned optimum.")
    fx = [f for x in rows for f in x["fixed"]]
    fixed_recs = [r for r in recs if _scale_of(r) is not None]
    ok, n = _claims(fixed_recs)
    above = [x for x in rows if x["regime"] != "collapse"]
    coll = [x for x in rows if x["regime"] == "collapse"]
    smin = min(f["s1"] for x in above for f in x["fixed"]) if above else float("nan")
    one = [f for x in coll for f in x["fixed"] if f["scale"] == 1.0]
    findings = [
        f"{len(fixed_recs)} fixed-classifier optima (ETF row norms {', '.join(f'{s:g}' for s in scales)}; "
        f"{len({x['profile'] for x in rows})} multiplicity mixes; mu/mu_crit {span([x['x'] for x in rows])}): "
        f"{ok}/{n} claims hold; F matches the exact fixed-ETF prediction to {upto(nanmax(f['gap'] for f in fx))} "
        f"(relative) and the fixed-W dual bound certifies it to {upto(nanmax(abs(f['cert']) for f in fx))}.",
        "No phase transition with a frozen classifier: s_m > 0 at every mu, also above the learned threshold "
        f"mu_crit where the learned optimum is W = 0, H = 0 ({len(above)} cells; smallest fixed s_1 there "
        f"{fmt(smin)}).",
        f"The frozen classifier always costs: min F (fixed) / min F (learned) - 1 = "
        f"{span([f['excess'] for f in fx], 'g')} over all cells; it vanishes only at the learned optimum's row "
        f"norm a*, which falls from {fmt(max(x['a'] for x in coll))} to {fmt(min(x['a'] for x in coll))} as "
        f"mu/mu_crit goes {fmt(min(x['x'] for x in coll))} -> {fmt(max(x['x'] for x in coll))} (0 above mu_crit); "
        f"there the fixed optimum equals the learned one to {upto(nanmax(abs(num(x['at_a'])) for x in coll))}.",
        "Tag-wise structure survives the freeze (h_S = (s_m/gamma) sum_{k in S} w_k, every claim above), but "
        f"the scale c_2 = 2 s_2/s_1 moves with the row norm: at row norm 1 c_2 = {span([f['c2'] for f in one])} "
        f"against the learned {span([x['cL'] for x in coll])} below mu_crit; at row norm a* they coincide.",
    ]
    return [t], findings


def fig_fixed(recs: list[Rec]) -> dict[str, Any]:
    rows, scales = _fixed_rows(recs)
    profs = sorted({x["profile"] for x in rows})
    fig, axes = plt.subplots(len(profs), 3, figsize=(12, 3.6 * len(profs)), constrained_layout=True, squeeze=False)
    for i, prof in enumerate(profs):
        rs = sorted((x for x in rows if x["profile"] == prof), key=lambda x: x["x"])
        xs = [x["x"] for x in rs]
        a, b, c = axes[i]
        a.plot(xs, [x["F"] for x in rs], "k-o", label="learned W")
        b.plot([x["x"] for x in rs if x["regime"] == "collapse"], [x["cL"] for x in rs if x["regime"] == "collapse"],
               "k-o", label="learned W")
        for j, s in enumerate(scales):
            a.plot(xs, [x[f"F{s:g}"] for x in rs], "--s", color=COLORS[j], label=f"ETF rows {s:g}")
            b.plot(xs, [x[f"c{s:g}"] for x in rs], "--s", color=COLORS[j], label=f"ETF rows {s:g}")
        c.plot(xs, [x["a"] for x in rs], "k-o")
        for j, s in enumerate(scales):
            c.axhline(s, color=COLORS[j], ls=":", lw=1)
        for ax in (a, b, c):
            ax.axvline(1.0, color="grey", lw=0.8)
            ax.set_xlabel("mu / mu_crit (learned threshold)")
        a.set_ylabel("min F")
        a.set_title(f"{prof}: min F, learned vs frozen ETF")
        b.set_ylabel("c_2 = 2 s_2 / s_1")
        b.set_title(f"{prof}: tag-wise scale c_2")
        c.set_ylabel("row norm a*")
        c.set_title(f"{prof}: row norm a* where fixed = learned")
        a.legend()
        b.legend()
    return {"fixed_compare": fig}


# -- minority collapse --------------------------------------------------------------------
def _minority_state(r: Rec) -> tuple[str, float, float]:
    """``(state, minority norm / max norm, ||w_2 - w_3|| / max norm)`` for counts [R, R, 1, 1]."""
    return state_of(_W(r))


FAMILIES = {0: "single-label", 1: "every pair once", 2: "pair {0,1} R times"}


def _family(r: Rec) -> int:
    """0: single labels only; 1: plus every pair once; 2: plus the majority pair R times."""
    des = r["params"]["design"]
    return 2 if des.get("kind") == "counts" else int(des["pairs"])


def _ratio(r: Rec) -> int:
    p = prob(r)
    n = {tuple(S): c for S, c in zip(p["sets"], p["counts"])}
    return int(n[(0,)] // n[(p["K"] - 1,)])


def _minority_rows(recs: list[Rec]) -> tuple[list[dict], list[float]]:
    mus = sorted({float(r["params"]["mu"]) for r in recs})
    rows: list[dict] = []
    for (fam, R), rs in sorted(group(recs, lambda r: (_family(r), _ratio(r))).items()):
        row: dict[str, Any] = {"pairs": FAMILIES[fam], "p": fam, "R": R}
        row.update({f"m{i}": "—" for i in range(len(mus))})
        first: dict[str, float | None] = {"merged": None, "zero": None, "trivial": None}
        for r in sorted(rs, key=lambda r: r["params"]["mu"]):
            st, rho, delta = _minority_state(r)
            mu = float(r["params"]["mu"])
            row[f"m{mus.index(mu)}"] = {"separate": f"{delta:.2f}", "merged": f"merged {rho:.2f}",
                                        "zero": "zero", "trivial": "trivial"}[st]
            row.setdefault("states", []).append((mu, st, rho, delta))
            for k in ("merged", "zero", "trivial"):
                rank = ["separate", "merged", "zero", "trivial"]
                if first[k] is None and rank.index(st) >= rank.index(k):
                    first[k] = mu
        row.update({f"mu_{k}": v for k, v in first.items()})
        for k, v in first.items():  # the threshold lies in (previous grid mu, first grid mu reaching the state]
            lo = None if v is None or mus.index(v) == 0 else mus[mus.index(v) - 1]
            if lo is not None and v is not None:  # narrowed by certified bisection
                lo, v, _ = bisect(prob(rs[0]), lo, v, k)
            row[f"br_{k}"] = (lo, v) if v is not None else None
            row[f"in_{k}"] = bracket(lo, v) if v is not None else "—"
        rows.append(row)
    return rows, mus


def bracket(lo: float | None, hi: float) -> str:
    """A threshold known to lie in (lo, hi] (5 digits: the bisection's width is 1e-4 relative)."""
    return f"({lo:.5g}, {hi:.5g}]" if lo is not None else f"<= {hi:.5g}"


def candidate(R: int) -> float:
    """mu = 1/(2(R+1)): a closed form the single-label merging brackets suggest (checked, not derived)."""
    return 1.0 / (2 * (R + 1))


def interval_product(items: list[tuple[float, tuple[float | None, float]]]) -> tuple[float, float] | None:
    """Intersection over R of the intervals R x (lo, hi]: where a constant C = R x threshold can lie
    (None: empty, no constant fits; lo None counts as 0)."""
    if not items:
        return None
    a = max(R * (lo or 0.0) for R, (lo, _) in items)
    b = min(R * hi for R, (_, hi) in items)
    return (a, b) if a < b else None


def _compare(a: dict, b: dict) -> str:
    """How the merging threshold of family ``a`` compares with ``b`` over the ratios R of both (disjoint
    brackets decide; overlapping ones leave the order open; never merging in the grid counts as infinite)."""
    inf = (math.inf, math.inf)
    common = [R for R in a if R in b and (a[R]["br_merged"] is not None or b[R]["br_merged"] is not None)]
    ba = {R: (a[R]["br_merged"][0] or 0.0, a[R]["br_merged"][1]) if a[R]["br_merged"] else inf for R in common}
    bb = {R: (b[R]["br_merged"][0] or 0.0, b[R]["br_merged"][1]) if b[R]["br_merged"] else inf for R in common}
    earlier = sum(ba[R][1] < bb[R][0] for R in common)
    later = sum(ba[R][0] > bb[R][1] for R in common)
    return (f"earlier at {earlier}, later at {later}, undecided (overlapping brackets) at "
            f"{len(common) - earlier - later} of the {len(common)} ratios where either merges in the grid")


def minority(recs: list[Rec]) -> Built:
    rows, mus = _minority_rows(recs)
    t1 = Table("minority_phase", "Minority classifier rows against the imbalance ratio R and mu (K = 4; classes 0, 1: "
               "R samples; classes 2, 3: 1)", [("design", "pairs", "s"), ("R", "R", "i")]
               + [(f"mu={mu:g}", f"m{i}", "s") for i, mu in enumerate(mus)], rows,
               note=f"A number is ||w_2 - w_3|| / max_k ||w_k|| (rows apart); 'merged x': w_2 = w_3 (to {ZERO:g}) "
                    f"with norm x of the largest; 'zero': minority rows below {ZERO:g} of the largest; 'trivial': W = 0.")
    t2 = Table("minority_threshold", "Intervals (lo, hi] holding the mu at which the minority rows merge, vanish, "
               "and W = 0 (certified bisection between the grid points)", [("design", "pairs", "s"), ("R", "R", "i"), ("mu merge in", "in_merged", "s"),
                             ("mu zero in", "in_zero", "s"), ("mu trivial in", "in_trivial", "s")], rows,
               note=f"The state is not reached at lo and reached at hi (both certified optima), hi/lo - 1 <= {REL:g}; "
                    "'<= x': reached at the first grid point already. — : not reached within the grid.")
    certs = [abs(_cert(r)) for r in recs]
    single = {x["R"]: x for x in rows if x["p"] == 0}
    multi = {x["R"]: x for x in rows if x["p"] == 1}
    heavy = {x["R"]: x for x in rows if x["p"] == 2}
    both = [R for R in single if R in multi and single[R]["br_merged"] is not None]
    # disjoint brackets decide the order; overlapping ones leave it open
    later = [R for R in both if multi[R]["br_merged"] is None
             or (multi[R]["br_merged"][0] or 0.0) > single[R]["br_merged"][1]]
    same = [R for R in both if R not in later and multi[R]["br_merged"][1] >= (single[R]["br_merged"][0] or 0.0)]
    merged_then_zero = sum(1 for x in rows for (_, st, _, _) in x["states"] if st == "merged")
    K = prob(recs[0])["K"]
    etf = math.sqrt(2 + 2 / (K - 1))
    balanced_kept = all(st in ("separate", "trivial") for x in rows if x["R"] == 1 for (_, st, _, _) in x["states"])
    bal_dist = [delta for x in rows if x["R"] == 1 for (_, st, _, delta) in x["states"] if st == "separate"]
    steps = [y / x for x, y in zip(mus, mus[1:])]

    def thr(d: dict, key: str) -> str:
        return ", ".join(f"R={R}: {d[R]['in_' + key]}" for R in sorted(d) if d[R][key.join(('mu_', ''))] is not None) \
            or "none in the grid"

    def scaling(d: dict) -> str:
        items = [(R, x["br_merged"]) for R, x in sorted(d.items()) if x["br_merged"] is not None]
        iv = interval_product(items)
        prods = ", ".join(f"R={R}: ({R * lo:.4g}, {R * hi:.4g}]" for R, (lo, hi) in items if lo is not None)
        if iv is None:
            return (f"R x threshold = {prods}: no constant C fits all {len(items)} ratios that merge, so the "
                    "threshold does not scale exactly like 1/R")
        return (f"R x threshold = {prods}: a constant C in ({iv[0]:.4g}, {iv[1]:.4g}] fits all {len(items)} ratios "
                "that merge, consistent with a threshold C/R")

    factor = [(multi[R]["br_merged"], single[R]["br_merged"]) for R in both if multi[R]["br_merged"] is not None]
    flo = [m[0] / s_[1] for m, s_ in factor if m[0] is not None]
    fhi = [m[1] / s_[0] for m, s_ in factor if s_[0] is not None]
    findings = [
        f"All {len(recs)} optima are certified global (largest certified gap {upto(max(certs))}; d = K, where the "
        "convex relaxation is tight).",
        f"Minority collapse happens at finite imbalance and mu: the minority rows first merge (w_2 = w_3 with "
        f"positive norm; {merged_then_zero} cells), then vanish, then the whole W. The merging threshold lies in "
        f"(lo, hi] (not merged at lo, merged at hi; certified bisection between the grid points to hi/lo - 1 <= "
        f"{REL:g}), single-label: {thr(single, 'merged')}; with every pair once: {thr(multi, 'merged')}.",
        f"Multi-label samples delay minority collapse: at {len(later)} of the {len(both)} ratios where the "
        f"single-label design merges inside the grid, the design with pairs merges at a larger mu (disjoint "
        f"brackets) or not at all ({len(same)} undecided: overlapping brackets). "
        + (f"The balanced designs (R = 1) never merge: their rows stay apart at distance {span(bal_dist)} "
           f"(the ETF's sqrt(2 + 2/(K-1)) = {etf:.4g} for K = {K})." if balanced_kept and bal_dist else
           "Even a balanced design (R = 1) has merged or vanished minority rows in some cell."),
        f"The minority rows vanish at a mu in: single-label {thr(single, 'zero')}; with pairs "
        f"{thr(multi, 'zero')}.",
        f"Imbalanced pairs (the majority pair {{0,1}} R times, the other pairs once): merging threshold in "
        f"{thr(heavy, 'merged')}; vanishing in {thr(heavy, 'zero')}. Against every pair once, "
        f"the minority rows merge {_compare(heavy, multi)}; against single labels only, "
        f"{_compare(heavy, single)}.",
        f"Single-label: {scaling(single)}; with every pair once: {scaling(multi)}. Pairs raise the merging "
        "threshold by a factor "
        + (f"between {min(flo):.4g} and {max(fhi):.4g} over the ratios (bounds from the brackets: "
           + ", ".join(f"R={R}: ({m[0] / s_[1]:.4g}, {m[1] / s_[0]:.4g})" for R, (m, s_) in
                       zip([R for R in both if multi[R]["br_merged"] is not None], factor)
                       if m[0] is not None and s_[0] is not None) + ")" if flo and fhi else "the grid cannot bound")
        + f"; the grid itself steps by factors {min(steps):.2g} to {max(steps):.2g} in mu.",
    ]
    fits = [R for R, x in single.items() if x["br_merged"] and (x["br_merged"][0] or 0.0) < candidate(R)
            <= x["br_merged"][1]]
    merging = [R for R, x in single.items() if x["br_merged"]]
    if merging:
        findings.append(
            f"A candidate closed form for the single-label merging threshold, mu = 1/(2(R+1)) (equivalently "
            f"lam_W lam_H = 1/(4 (R+1)^2); read off, not derived): it lies inside {len(fits)} of the "
            f"{len(merging)} certified brackets" + (" (every one)." if len(fits) == len(merging) else
                                                   f" (not in R = {', '.join(str(R) for R in sorted(set(merging) - set(fits)))})."))
    return [t1, t2], findings


def fig_minority(recs: list[Rec]) -> dict[str, Any]:
    rows, mus = _minority_rows(recs)
    fams = sorted({x["p"] for x in rows})
    fig, axes = plt.subplots(1, len(fams), figsize=(5.2 * len(fams) + 1, 4.8), constrained_layout=True, sharey=True,
                             squeeze=False)
    axes = axes[0]
    marks = {"separate": "o", "merged": "s", "zero": "x", "trivial": "."}
    sep = None
    for ax, p in zip(axes, fams):
        rs = [x for x in rows if x["p"] == p]
        for st, mk in marks.items():
            pts = [(x["R"], mu, delta) for x in rs for (mu, s, _, delta) in x["states"] if s == st]
            if not pts:
                continue
            R, mu, dl = zip(*pts)
            if st == "separate":
                sep = ax.scatter(R, mu, c=dl, marker=mk, s=40, cmap="viridis", vmin=0, vmax=1.7, label=st)
            else:
                ax.scatter(R, mu, color="k", marker=mk, s=40 if st != "trivial" else 20, label=st)
        for key, col in (("br_merged", "tab:red"), ("br_zero", "tab:blue")):
            # certified bisection: the threshold is known to 1e-4 relative -- drawn as a line through them
            brs = [(x["R"], x[key]) for x in rs if x[key] is not None and x[key][0] is not None]
            if brs:
                ax.plot([R for R, _ in brs], [hi for _, (_, hi) in brs], "_-", color=col, lw=1.4, ms=14,
                        label=f"{key[3:]} threshold (certified bisection)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_yticks(mus, [f"{mu:g}" for mu in mus], fontsize=7)
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.grid(axis="y", lw=0.3, alpha=0.5)
        ax.set_xlabel("imbalance ratio R (majority / minority samples)")
        ax.set_title({0: "single-label (profile m = 1 only)", 1: "multi-label: + every pair once",
                      2: "imbalanced pairs: + pair {0,1} R times, others once"}[p])
    axes[0].set_ylabel("mu = sqrt(lam_W lam_H)")
    handles, labels = axes[-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=6)
    if sep is not None:
        fig.colorbar(sep, ax=axes, label="||w_2 - w_3|| / max ||w_k|| (rows apart)", shrink=0.8)
    fig.suptitle("Minority collapse (K = 4, d = 4): certified global optima")
    return {"minority_phase": fig}


BUILDERS = {"fixed": fixed, "minority": minority, "conjecture": conjecture, "deadclass": deadclass}
FIGURES = {"fixed": fig_fixed, "minority": fig_minority, "conjecture": fig_conjecture, "deadclass": fig_deadclass}
ORDER = tuple(BUILDERS)
CAPTIONS = {
    "minority_phase": "State of the minority rows w_2, w_3 at every (R, mu) of the grid (colour: their distance when "
                      "apart); the red and blue lines join the merging and vanishing thresholds found by certified "
                      "bisection between the grid points (to 1e-4 relative); the mu axis is labelled at the grid.",
    "deadclass": "Per d below K-1 and both mu/mu_crit: the dead rows of the best point (integer counts), the "
                 "share of the random starts that reached the best value, and the open certified bracket "
                 "(it closes at d = K-1 in every problem). Colour is K, line and marker the multiplicity mix.",
    "conjecture_weights": "The fitted exponent b of a_j/a_k = (n_j/n_k)^b against mu, with the single-label means "
                          "(left) and the classifier rows (middle) as prototypes, and the residual outside "
                          "span(h_j, h_k) (right); cells with merged or vanished minority rows are left out.",
}

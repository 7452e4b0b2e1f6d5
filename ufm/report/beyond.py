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

from .tables import (  # noqa: E402
    FLOOR,
    Rec,
    Table,
    best_run,
    floor_line,
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
DEAD = 1e-3  # below d = K-1: a row below DEAD x the largest row norm is a dead class


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
    W = _W(r)
    n = np.linalg.norm(W, axis=1)
    top = float(n.max())
    if r["summary"]["metrics"]["norm_W"] < 1e-6 or top == 0:
        return "trivial", 0.0, 0.0
    rho = float(max(n[2], n[3]) / top)
    delta = float(np.linalg.norm(W[2] - W[3]) / top)
    if rho < ZERO:
        return "zero", rho, delta
    if delta < ZERO:
        return "merged", rho, delta
    return "separate", rho, delta


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
        rows.append(row)
    return rows, mus


def _compare(a: dict, b: dict) -> str:
    """How the first merging mu of family ``a`` compares with ``b`` over the ratios R of both."""
    inf = float("inf")
    common = [R for R in a if R in b and (a[R]["mu_merged"] is not None or b[R]["mu_merged"] is not None)]
    ma = {R: a[R]["mu_merged"] if a[R]["mu_merged"] is not None else inf for R in common}
    mb = {R: b[R]["mu_merged"] if b[R]["mu_merged"] is not None else inf for R in common}
    parts = [f"earlier at {sum(ma[R] < mb[R] for R in common)}", f"at the same grid mu at {sum(ma[R] == mb[R] for R in common)}",
             f"later at {sum(ma[R] > mb[R] for R in common)}"]
    return ", ".join(parts) + f" of the {len(common)} ratios where either merges in the grid"


def minority(recs: list[Rec]) -> Built:
    rows, mus = _minority_rows(recs)
    t1 = Table("minority_phase", "Minority classifier rows against the imbalance ratio R and mu (K = 4; classes 0, 1: "
               "R samples; classes 2, 3: 1)", [("design", "pairs", "s"), ("R", "R", "i")]
               + [(f"mu={mu:g}", f"m{i}", "s") for i, mu in enumerate(mus)], rows,
               note=f"A number is ||w_2 - w_3|| / max_k ||w_k|| (rows apart); 'merged x': w_2 = w_3 (to {ZERO:g}) "
                    f"with norm x of the largest; 'zero': minority rows below {ZERO:g} of the largest; 'trivial': W = 0.")
    t2 = Table("minority_threshold", "First mu of the grid at which the minority rows merge, vanish, and W = 0", [
        ("design", "pairs", "s"), ("R", "R", "i"), ("mu merge", "mu_merged", "g"), ("mu zero", "mu_zero", "g"),
        ("mu trivial", "mu_trivial", "g")], rows, note="— : not reached within the grid.")
    certs = [abs(_cert(r)) for r in recs]
    single = {x["R"]: x for x in rows if x["p"] == 0}
    multi = {x["R"]: x for x in rows if x["p"] == 1}
    heavy = {x["R"]: x for x in rows if x["p"] == 2}
    both = [R for R in single if R in multi and single[R]["mu_merged"] is not None]
    earlier = [R for R in both if multi[R]["mu_merged"] is None or multi[R]["mu_merged"] > single[R]["mu_merged"]]
    same = [R for R in both if multi[R]["mu_merged"] == single[R]["mu_merged"]]
    merged_then_zero = sum(1 for x in rows for (_, st, _, _) in x["states"] if st == "merged")
    prod_s = [R * x["mu_merged"] for R, x in sorted(single.items()) if x["mu_merged"] is not None]
    prod_m = [R * x["mu_merged"] for R, x in sorted(multi.items()) if x["mu_merged"] is not None]
    balanced_kept = all(st in ("separate", "trivial") for x in rows if x["R"] == 1 for (_, st, _, _) in x["states"])
    bal_dist = [delta for x in rows if x["R"] == 1 for (_, st, _, delta) in x["states"] if st == "separate"]

    def thr(d: dict, key: str) -> str:
        return ", ".join(f"R={R}: {fmt(d[R][key])}" for R in sorted(d) if d[R][key] is not None) or "none"
    findings = [
        f"All {len(recs)} optima are certified global (largest certified gap {upto(max(certs))}; d = K, where the "
        "convex relaxation is tight).",
        f"Minority collapse happens at finite imbalance and mu: the minority rows first merge (w_2 = w_3 with "
        f"positive norm; {merged_then_zero} cells), then vanish, then the whole W. First merging mu in the grid, "
        f"single-label: {thr(single, 'mu_merged')}; with every pair once: {thr(multi, 'mu_merged')}.",
        f"Multi-label samples delay minority collapse: at {len(earlier)} of the {len(both)} ratios where the "
        f"single-label design collapses inside the grid, the design with pairs merges only at a larger mu or not "
        f"at all ({len(same)} at the same grid mu). "
        + (f"The balanced designs (R = 1) never merge: their rows stay apart at distance {span(bal_dist)} "
           "(the ETF's sqrt(2 + 2/(K-1)) = 1.633)." if balanced_kept and bal_dist else
           "Even a balanced design (R = 1) has merged or vanished minority rows in some cell."),
        f"Where the minority rows vanish (first mu): single-label {thr(single, 'mu_zero')}; with pairs "
        f"{thr(multi, 'mu_zero')}.",
        f"Imbalanced pairs (the majority pair {{0,1}} R times, the other pairs once): first merging mu "
        f"{thr(heavy, 'mu_merged')}; first vanishing mu {thr(heavy, 'mu_zero')}. Against every pair once, "
        f"the minority rows merge {_compare(heavy, multi)}; against single labels only, "
        f"{_compare(heavy, single)}.",
        f"Single-label: R x (first merging mu) = {span(prod_s)} over the R that merge"
        + (" -- the threshold scales like 1/R on this grid" if len(set(prod_s)) == 1 else "")
        + f"; with pairs {span(prod_m)}: pairs raise the merging threshold by a factor "
        f"{span([multi[R]['mu_merged'] / single[R]['mu_merged'] for R in both if multi[R]['mu_merged']])} "
        f"(grid steps in mu: factors {min(y / x for x, y in zip(mus, mus[1:])):.2g} to "
        f"{max(y / x for x, y in zip(mus, mus[1:])):.2g}).",
    ]
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
        for key, col in (("mu_merged", "tab:red"), ("mu_zero", "tab:blue")):
            line = [(x["R"], x[key]) for x in rs if x[key] is not None]
            if line:
                ax.plot(*zip(*line), "-", color=col, lw=1.2, label=f"first {key[3:]}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
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


# -- the imbalance conjecture -------------------------------------------------------------
def _rule_residual(h: np.ndarray, v: np.ndarray) -> float:
    """``||h - c v|| / ||h||`` at the best ``c``."""
    c = float(v @ h) / float(v @ v)
    return float(np.linalg.norm(h - c * v)) / float(np.linalg.norm(h))


def pair_fits(r: Rec) -> list[dict[str, float]]:
    """For each pair S = {j, k}: least-squares weights of h_S on (h_j, h_k), the residual
    outside their span, and the residuals of the uniform rule c (h_j + h_k) and of the
    frequency-weighted rule c (n_j h_j + n_k h_k) / (n_j + n_k) (best c each), relative to ||h_S||."""
    p = prob(r)
    sets = [tuple(S) for S in p["sets"]]
    counts = dict(zip(sets, p["counts"]))
    Hg = np.asarray(r["arrays"]["Hg"], dtype=float)
    single = {S[0]: Hg[:, i] for i, S in enumerate(sets) if len(S) == 1}
    out = []
    for i, S in enumerate(sets):
        if len(S) != 2:
            continue
        j, k = S
        h = Hg[:, i]
        nh = float(np.linalg.norm(h))
        nj, nk = counts[(j,)], counts[(k,)]
        if nj < nk:
            j, k, nj, nk = k, j, nk, nj
        A = np.stack([single[j], single[k]], axis=1)
        a = np.linalg.lstsq(A, h, rcond=None)[0]

        out.append({"nj": nj, "nk": nk, "aj": float(a[0]), "ak": float(a[1]),
                    "ls": float(np.linalg.norm(h - A @ a)) / nh, "uniform": _rule_residual(h, single[j] + single[k]),
                    "freq": _rule_residual(h, (nj * single[j] + nk * single[k]) / (nj + nk))})
    return out


def _conj_rows(recs: list[Rec]) -> list[dict]:
    rows = []
    for r in recs:
        fits = pair_fits(r)
        unequal = [f for f in fits if f["nj"] != f["nk"]]
        beta = [math.log(f["aj"] / f["ak"]) / math.log(f["nj"] / f["nk"]) for f in unequal]
        rows.append({"counts": "/".join(str(r["params"]["design"]["counts"][k]) for k in range(prob(r)["K"])),
                     "nmax": max(r["params"]["design"]["counts"]), "pairs": r["params"]["design"]["pairs"],
                     "mu": float(r["params"]["mu"]), "ls": nanmax(f["ls"] for f in fits),
                     "ratio_lo": min((f["aj"] / f["ak"] for f in unequal), default=None),
                     "ratio_hi": max((f["aj"] / f["ak"] for f in unequal), default=None),
                     "nratio": max((f["nj"] / f["nk"] for f in unequal), default=None),
                     "beta_lo": min(beta, default=None), "beta_hi": max(beta, default=None),
                     "uniform": nanmax(f["uniform"] for f in fits), "freq": nanmax(f["freq"] for f in fits),
                     "inspan": sum(f["ls"] < 1e-9 for f in unequal), "unequal": len(unequal),
                     "cert": _cert(r), "fits": fits})
    rows.sort(key=lambda x: (x["mu"], x["pairs"], x["nmax"], x["counts"]))
    return rows


def conjecture(recs: list[Rec]) -> Built:
    rows = _conj_rows(recs)
    t = Table("conjecture", "Pair features h_{j,k} written in the single-label means: a_j h_j + a_k h_k + residual "
              "(K = 4; n_j >= n_k)", [
                  ("n_0/n_1/n_2/n_3", "counts", "s"), ("pairs each", "pairs", "i"), ("mu", "mu", "g"),
                  ("max n_j/n_k", "nratio", "g"), ("a_j/a_k min", "ratio_lo", "g"), ("a_j/a_k max", "ratio_hi", "g"),
                  ("exponent b in a_j/a_k = (n_j/n_k)^b", "beta_hi", "g"), ("max residual outside span", "ls", "r"),
                  ("pairs in span (of unequal)", "inspan", "i"), ("uniform rule residual", "uniform", "r"),
                  ("frequency rule residual", "freq", "r"), ("certified gap", "cert", "r")],
              [{**x, "inspan": x["inspan"], "beta_hi": x["beta_hi"]} for x in rows],
              note="Residuals are relative to ||h_S||. Uniform rule: h_S = c (h_j + h_k); frequency rule: "
                   "h_S = c (n_j h_j + n_k h_k)/(n_j + n_k), best c for each pair. The exponent column is the largest "
                   "over the pairs with n_j != n_k.")
    bal = [x for x in rows if x["nratio"] is None]
    imb = [x for x in rows if x["nratio"] is not None]
    fits = [f for x in imb for f in x["fits"] if f["nj"] != f["nk"]]
    tot_in = sum(x["inspan"] for x in imb)
    betas = [b for x in imb for b in (x["beta_lo"], x["beta_hi"]) if b is not None]
    worst = max(imb, key=lambda x: x["ls"])
    findings = [
        f"{len(recs)} certified global optima (largest certified gap {upto(nanmax(abs(x['cert']) for x in rows))}); "
        f"on the balanced designs every h_S lies in span(h_j, h_k) to {upto(nanmax(x['ls'] for x in bal))} with "
        "equal weights, as the theorem says.",
        f"No frequency-weighted rule fits to solver precision. The least-squares weights barely follow the "
        f"frequencies: a_j/a_k = {span([f['aj'] / f['ak'] for f in fits], 'g')} while n_j/n_k reaches "
        f"{fmt(max(x['nratio'] for x in imb))}; as a power law a_j/a_k = (n_j/n_k)^b the exponent is "
        f"b = {span(betas, 'g')} (frequency-weighted synthesis would need b = 1, the uniform tag-wise rule b = 0).",
        f"The synthesis itself breaks: h_S leaves span(h_j, h_k) with a relative residual up to "
        f"{fmt(worst['ls'], 'r')} (counts {worst['counts']}, mu = {worst['mu']:g}); only {tot_in} of {len(fits)} "
        "pairs of unequally frequent classes stay in the span to 1e-9.",
        f"Fitting either rule with its best scale: the uniform rule leaves residuals up to "
        f"{fmt(nanmax(x['uniform'] for x in imb), 'r')}, the frequency-weighted one up to "
        f"{fmt(nanmax(x['freq'] for x in imb), 'r')}: the uniform (tag-wise) form stays the better description, "
        "and its error grows with the imbalance.",
    ]
    return [t], findings


def fig_conjecture(recs: list[Rec]) -> dict[str, Any]:
    rows = _conj_rows(recs)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for i, (key, rs) in enumerate(group([x for x in rows if x["nratio"] is not None],
                                        lambda x: (x["mu"], x["pairs"])).items()):
        fs = [f for x in rs for f in x["fits"] if f["nj"] != f["nk"]]
        lab = f"mu={key[0]:g}, pairs x{key[1]}"
        a.scatter([f["nj"] / f["nk"] for f in fs], [f["aj"] / f["ak"] for f in fs], color=COLORS[i], s=14, label=lab)
        b.scatter([f["nj"] / f["nk"] for f in fs], [max(f["ls"], FLOOR) for f in fs], color=COLORS[i], s=14, label=lab)
    xs = np.geomspace(1, 40, 50)
    a.plot(xs, xs, "k--", lw=1, label="frequency-weighted (a_j/a_k = n_j/n_k)")
    a.axhline(1.0, color="grey", lw=1, label="uniform (a_j = a_k)")
    a.set_xscale("log", base=2)
    a.set_yscale("log", base=2)
    a.set_xlabel("n_j / n_k (single-label counts)")
    a.set_ylabel("a_j / a_k (least squares)")
    a.set_title("Weights of h_{j,k} on h_j, h_k")
    a.legend(fontsize=7)
    b.set_xscale("log", base=2)
    b.set_yscale("log")
    b.set_xlabel("n_j / n_k")
    b.set_ylabel("||residual outside span(h_j, h_k)|| / ||h_S||")
    b.set_title("The synthesis is not exact")
    floor_line(b)  # residuals below 1e-8 are drawn at it: their digits are rounding noise
    b.legend(fontsize=7)
    return {"conjecture_weights": fig}


# -- dead classes below d = K-1 -----------------------------------------------------------
def _dead(r: Rec) -> tuple[int, float]:
    """Dead rows (norm below DEAD x the largest) and the smallest live row's relative norm."""
    n = np.linalg.norm(_W(r), axis=1)
    rel = n / n.max() if n.max() > 0 else n
    live = rel[rel >= DEAD]
    return int((rel < DEAD).sum()), float(live.min()) if live.size else float("nan")


def _dead_rows(recs: list[Rec]) -> list[dict]:
    rows = []
    for (K, prof, x), rs in group(recs, lambda r: (prob(r)["K"], profile_of(r), r["params"]["mu_ratio"])).items():
        lower = max(r["summary"]["certificate"]["lower_bound"] for r in rs)  # min C: d-independent bound
        for d, rd in sorted(group(rs, lambda r: prob(r)["d"]).items()):
            best = best_run(rd)
            dead, live = _dead(best)
            counts = [_dead(r)[0] for r in rd]
            F = best["summary"]["objective"]
            rows.append({"K": K, "profile": prof, "x": x, "d": d, "starts": len(rd), "dead": dead,
                         "dmin": min(counts), "dmax": max(counts), "live": live, "F": F, "D": lower,
                         "width": (F - lower) / abs(F)})
    return rows


def deadclass(recs: list[Rec]) -> Built:
    rows = _dead_rows(recs)
    t = Table("deadclass", "Dead classifier rows at the best of the starts, d = 1..K-1", [
        ("K", "K", "i"), ("profile", "profile", "s"), ("mu/mu_crit", "x", "g"), ("d", "d", "i"),
        ("starts", "starts", "i"), ("dead rows (best start)", "dead", "i"), ("dead rows, any start: min", "dmin", "i"),
        ("max", "dmax", "i"), ("smallest live row / largest", "live", "g"), ("best F", "F", "g"),
        ("certified lower bound", "D", "g"), ("bracket (F - D)/F", "width", "r")], rows,
        note=f"A row is dead below {DEAD:g} of the largest row norm. The lower bound is the best certified bound over "
             "all d of the same problem (the convex relaxation does not depend on d); at d = K-1 it meets F.")
    compact = []
    for (K, prof, x), rs in group(rows, lambda y: (y["K"], y["profile"], y["x"])).items():
        compact.append({"K": K, "profile": prof, "x": x,
                        "dead": ", ".join(f"{y['dead']}" for y in sorted(rs, key=lambda y: y["d"])),
                        "any": ", ".join(f"{y['dmax']}" for y in sorted(rs, key=lambda y: y["d"])),
                        "width": ", ".join(fmt(y["width"], "r") for y in sorted(rs, key=lambda y: y["d"]))})
    t2 = Table("deadclass_summary", "Dead rows per d = 1, 2, ..., K-1 (best start; most at any start) and the "
               "certified bracket width", [("K", "K", "i"), ("profile", "profile", "s"), ("mu/mu_crit", "x", "g"),
                                          ("dead rows, best start", "dead", "s"), ("most dead, any start", "any", "s"),
                                          ("(F - D)/F", "width", "s")], compact)
    top = [y for y in rows if y["d"] == y["K"] - 1]
    below = [y for y in rows if y["d"] < y["K"] - 1]
    with_dead = [y for y in below if y["dead"] > 0]
    any_dead = [y for y in below if y["dmax"] > 0]
    nonmono = [key for key, rs in group(rows, lambda y: (y["K"], y["profile"], y["x"])).items()
               if any(a["dead"] < b["dead"] for a, b in zip(sorted(rs, key=lambda y: y["d"]),
                                                            sorted(rs, key=lambda y: y["d"])[1:]))]
    by_x = {x: sum(y["dead"] for y in below if y["x"] == x) for x in sorted({y["x"] for y in rows})}
    findings = [
        f"{len(recs)} runs ({len({(y['K'], y['profile'], y['x']) for y in rows})} problems x d = 1..K-1 x "
        f"{max(y['starts'] for y in rows)} starts). At d = K-1 no class dies and the bracket closes "
        f"({upto(nanmax(abs(y['width']) for y in top))}).",
        f"Below K-1, the best start has dead classes in {len(with_dead)} of {len(below)} (problem, d) cells"
        + (": " + "; ".join(f"K={y['K']} {y['profile']} mu/mu_crit={y['x']:g} d={y['d']}: {y['dead']}"
                            for y in with_dead) if with_dead else "")
        + f". At most {max((y['dead'] for y in below), default=0)} rows die (of K = "
        f"{max(y['K'] for y in rows)}); dead rows in total over the cells, by mu/mu_crit: "
        + ", ".join(f"{x:g}: {n}" for x, n in by_x.items())
        + f". The count is not monotone in d for {len(nonmono)} of the "
        f"{len({(y['K'], y['profile'], y['x']) for y in rows})} problems (a larger d can have more dead rows); "
        f"the live rows are uneven too (smallest live row down to {fmt(min(y['live'] for y in below))} of the largest).",
        f"Dead rows at some start occur in {len(any_dead)} cells (up to "
        f"{max((y['dmax'] for y in below), default=0)}); in {sum(y['dmin'] != y['dmax'] for y in below)} cells the "
        "count depends on the start" + (": the best of several starts matters below K-1."
                                         if any(y["dmin"] != y["dmax"] for y in below) else "."),
        f"The certified brackets stay wide below K-1: (F - D)/F up to {fmt(nanmax(y['width'] for y in below), 'r')} "
        "at d = 1; the d-independent convex bound cannot see the missing dimensions.",
    ]
    return [t2, t], findings


def fig_deadclass(recs: list[Rec]) -> dict[str, Any]:
    rows = _dead_rows(recs)
    xs = sorted({y["x"] for y in rows})
    fig, axes = plt.subplots(2, len(xs), figsize=(5 * len(xs), 7), constrained_layout=True, squeeze=False)
    for col, x in enumerate(xs):
        for i, ((K, prof), rs) in enumerate(group([y for y in rows if y["x"] == x],
                                                  lambda y: (y["K"], y["profile"])).items()):
            rs = sorted(rs, key=lambda y: y["d"])
            ls = ["-", "--", ":"][sorted({y["profile"] for y in rows}).index(prof) % 3]
            color = COLORS[sorted({y["K"] for y in rows}).index(K)]
            lab = f"K={K} {prof}"
            axes[0, col].plot([y["d"] for y in rs], [y["dead"] + 0.025 * i for y in rs], ls, marker="o", color=color,
                              label=lab)
            axes[1, col].plot([y["d"] for y in rs], [max(y["width"], FLOOR) for y in rs], ls, marker="o",
                              color=color, label=lab)
        axes[0, col].set_title(f"dead rows at the best start, mu/mu_crit = {x:g}")
        axes[0, col].set_ylabel("dead rows (lines offset by 0.025 each)")
        axes[0, col].set_xlabel("d")
        axes[1, col].set_yscale("log")
        axes[1, col].set_xlabel("d")
        axes[1, col].set_title("certified bracket (F - D)/F")
        floor_line(axes[1, col])
    axes[0, 0].legend(fontsize=7, ncol=2)
    return {"deadclass": fig}


BUILDERS = {"fixed": fixed, "minority": minority, "conjecture": conjecture, "deadclass": deadclass}
FIGURES = {"fixed": fig_fixed, "minority": fig_minority, "conjecture": fig_conjecture, "deadclass": fig_deadclass}
ORDER = tuple(BUILDERS)

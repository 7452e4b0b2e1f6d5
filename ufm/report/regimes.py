"""Per-regime tables and findings of the report (rendering only; see :mod:`ufm.report.tables`)."""

from __future__ import annotations

from typing import Any

from ..metrics import DEAD_CLASS_TOL
from .tables import (
    TRIVIAL_NORM,
    Rec,
    Table,
    best_run,
    dead_classes,
    excess,
    fmt,
    group,
    is_trivial,
    margin,
    nanmax,
    num,
    prob,
    profile_of,
    span,
    tag,
    theory_c,
    upto,
)

Built = tuple[list[Table], list[str]]


def _claims(recs: list[Rec]) -> tuple[int, int]:
    cl = [c for r in recs for c in r["summary"]["claims"]]
    return sum(c["passed"] for c in cl), len(cl)


def _bias_label(p: dict) -> str:
    return "none" if not p["bias"] else f"lam_b={p['lam_b']:g}"


def _c_err(r: Rec) -> float:
    errs = []
    for m in (2, 3):
        c = theory_c(r, m)
        if c == c and c > 0:
            errs.append(max(abs(tag(r, m, "scale_min") - c), abs(tag(r, m, "scale_max") - c)) / c)
    return nanmax(errs)


def theorem(recs: list[Rec]) -> Built:
    rows = []
    for (K, prof, bias), rs in group(recs, lambda r: (prob(r)["K"], profile_of(r), _bias_label(prob(r)))).items():
        ok, n = _claims(rs)
        rows.append({"K": K, "profile": prof, "bias": bias, "cells": len(rs), "claims": f"{ok}/{n}",
                     "gap": nanmax(abs(num(r["summary"]["gap_to_theory"])) for r in rs),
                     "cert": nanmax(num(r["summary"]["certificate"]["rel_gap"]) for r in rs),
                     "c_err": nanmax(_c_err(r) for r in rs),
                     "nc": nanmax(max(num(r["summary"]["metrics"][k]) for k in ("nc2_w", "nc2_h", "nc3")) for r in rs)})
    summary = Table("theorem", "The theorem's regime: every claim, per K and multiplicity mix", [
        ("K", "K", "i"), ("profile", "profile", "s"), ("bias", "bias", "s"), ("cells", "cells", "i"),
        ("claims passed", "claims", "s"), ("max rel. F - min phi", "gap", "r"),
        ("max certified gap", "cert", "r"), ("max rel. error of c_m", "c_err", "r"),
        ("max NC2/NC3", "nc", "r")], rows,
        note="Cells: lam_W/lam_H in {0.1, 1, 10} at mu = 5e-3, plus mu/mu_crit in 0.05..0.9 (K = 4, 6).")
    cm_rows = []
    for r in recs:
        if "mu_ratio" not in r["params"]:
            continue
        row = {"K": prob(r)["K"], "profile": profile_of(r), "mu_ratio": r["params"]["mu_ratio"]}
        for m in (2, 3):
            row[f"c{m}"], row[f"m{m}"] = theory_c(r, m), tag(r, m, "scale")
        cm_rows.append(row)
    cm_rows.sort(key=lambda x: (x["K"], x["profile"], x["mu_ratio"]))
    cm = Table("theorem_cm", "Tag-wise scale c_m: predicted (m s_m / s_1) against measured", [
        ("K", "K", "i"), ("profile", "profile", "s"), ("mu/mu_crit", "mu_ratio", "g"),
        ("c_2 predicted", "c2", "g"), ("c_2 measured", "m2", "g"), ("c_3 predicted", "c3", "g"),
        ("c_3 measured", "m3", "g")], cm_rows)
    ok, n = _claims(recs)
    c2 = [x["c2"] for x in cm_rows] + [theory_c(r, 2) for r in recs]
    c2 = [c for c in c2 if c == c]
    findings = [
        f"{len(recs)} problems (K = {min(x['K'] for x in rows)}..{max(x['K'] for x in rows)}, "
        f"{len({profile_of(r) for r in recs})} multiplicity mixes, lam_W/lam_H from 0.1 to 10, "
        f"{len({x['bias'] for x in rows})} bias settings): {ok}/{n} claims hold.",
        f"Largest relative gap F - min phi: {fmt(nanmax(x['gap'] for x in rows), 'r')}; largest certified "
        f"gap (F - D)/F: {fmt(nanmax(x['cert'] for x in rows), 'r')}.",
        f"Measured tag-wise scales match c_m = m s_m/s_1 to {fmt(nanmax(x['c_err'] for x in rows), 'r')} "
        f"(relative) while c_2 ranges over {min(c2):.3f}..{max(c2):.3f}: the scale depends on mu and the "
        "mix, and the formula tracks it.",
    ]
    return [summary, cm], findings


def _pair_fraction(r: Rec) -> float:
    p = prob(r)
    return sum(n for S, n in zip(p["sets"], p["counts"]) if len(S) == 2) / p["N"]


def phase(recs: list[Rec]) -> Built:
    one = [r for r in recs if "mu_ratio" in r["params"]]
    two = [r for r in recs if "mu_ratio" not in r["params"]]
    rows = []
    for r in sorted(one, key=lambda r: (prob(r)["K"], r["params"]["lam_ratio"], r["params"]["mu_ratio"])):
        th, m = r["summary"]["theory"], r["summary"]["metrics"]
        triv = is_trivial(r)
        rows.append({"K": prob(r)["K"], "ratio": r["params"]["lam_ratio"], "x": r["params"]["mu_ratio"],
                     "regime": th["regime"], "s1": num(th["s"].get("1")), "s1m": margin(r, 1),
                     "s2": num(th["s"].get("2")), "s2m": margin(r, 2), "W": m["norm_W"], "H": m["norm_H"],
                     "nc2": None if triv else m["nc2_w"], "gap": r["summary"]["gap_to_theory"],
                     "claims": "{}/{}".format(*_claims([r]))})
    t1 = Table("phase", "Across the phase transition: predicted s*_m against measured logit margins", [
        ("K", "K", "i"), ("lam_W/lam_H", "ratio", "g"), ("mu/mu_crit", "x", "g"), ("regime", "regime", "s"),
        ("s_1 predicted", "s1", "g"), ("s_1 measured", "s1m", "f"), ("s_2 predicted", "s2", "g"),
        ("s_2 measured", "s2m", "f"), ("norm W", "W", "r"), ("norm H", "H", "r"), ("NC2_W", "nc2", "r"),
        ("rel. F - min phi", "gap", "r"), ("claims", "claims", "s")], rows,
        note="Measured s_m: mean logit inside the label set minus mean logit outside, per multiplicity. "
             "NC2_W is undefined (—) at the trivial solution W = 0.")
    byprof = group(two, profile_of)
    mus = sorted({prob(r)["lam_W"] for r in two})
    rows2, agree = [], 0
    for prof, rs in sorted(byprof.items(), key=lambda kv: _pair_fraction(kv[1][0])):
        row: dict[str, Any] = {"profile": prof, "frac": _pair_fraction(rs[0]), "mu_crit": rs[0]["summary"]["theory"]["mu_crit"]}
        for r in rs:
            collapsed = not is_trivial(r)
            agree += collapsed == (r["summary"]["theory"]["regime"] == "collapse")
            row[f"mu{mus.index(prob(r)['lam_W'])}"] = r["summary"]["metrics"]["norm_W"] if collapsed else 0.0
        rows2.append(row)
    t2 = Table("phase_diagram", "Phase diagram (K = 4, N = 120): norm of W against the pair fraction and mu", [
        ("profile", "profile", "s"), ("pair fraction", "frac", "g"), ("mu_crit", "mu_crit", "g")]
        + [(f"mu={mu:.3g}", f"mu{i}", "g") for i, mu in enumerate(mus)], rows2,
        note="0 marks the trivial solution (norm W < 1e-6).")
    near = [x for x in rows if x["K"] == 4 and x["ratio"] == 1.0 and x["x"] in (0.9, 0.95, 0.98)]
    above = [x for x in rows if x["x"] > 1]
    measured = [(x["x"], x["W"] >= TRIVIAL_NORM) for x in rows]
    agree1 = sum(c == (x["regime"] == "collapse") for (_, c), x in zip(measured, rows))
    lo = max((v for v, c in measured if c), default=float("nan"))
    hi = min((v for v, c in measured if not c), default=float("nan"))
    findings = [
        f"{len(one)} problems across mu/mu_crit = {min(x['x'] for x in rows):g}..{max(x['x'] for x in rows):g} "
        f"(K = {', '.join(str(k) for k in sorted({x['K'] for x in rows}))}; lam_W/lam_H = "
        f"{', '.join(f'{v:g}' for v in sorted({x['ratio'] for x in rows}))}): the measured regime (collapse when "
        f"norm W >= {TRIVIAL_NORM:g}) agrees with the predicted one in {agree1}/{len(rows)} cells; the largest "
        f"collapsed cell is at {lo:g} mu_crit and the smallest trivial one at {hi:g} mu_crit, so the grid "
        f"places the measured transition in [{lo:g}, {hi:g}] mu_crit, around the predicted 1. Every claim holds on "
        f"both sides ({sum(int(x['claims'].split('/')[0]) for x in rows)}/"
        f"{sum(int(x['claims'].split('/')[1]) for x in rows)}).",
        "The transition is continuous: at K = 4, s*_1 = " + ", ".join(
            f"{x['s1']:.3f} ({x['x']:g} mu_crit)" for x in near) + " and norm W = "
        + ", ".join(f"{x['W']:.3f}" for x in near) + "; s*_1 / (1 - mu/mu_crit) = "
        + ", ".join(f"{x['s1'] / (1 - x['x']):.2f}" for x in near) + " and norm W / sqrt(1 - mu/mu_crit) = "
        + ", ".join(f"{x['W'] / (1 - x['x']) ** 0.5:.2f}" for x in near)
        + ": s*_1 falls linearly to 0 and norm W like its square root.",
        f"Above mu_crit norm W {upto(nanmax(x['W'] for x in above))} (the trivial W = 0, H = 0). "
        "The threshold depends on mu only: " + _same_s(rows) + ".",
        f"Phase diagram: the measured regime agrees with the predicted one in {agree}/{len(two)} cells; "
        f"mu_crit at N = 120 moves from {min(x['mu_crit'] for x in rows2):.4f} to "
        f"{max(x['mu_crit'] for x in rows2):.4f} as the pair fraction goes 0 -> 1.",
    ]
    return [t1, t2], findings


def live_cosines(r: Rec) -> tuple[float, float]:
    """Smallest and largest cosine between two live (not dead) classifier rows."""
    dead = set(dead_classes(r))
    C = r["geometry"]["w_cos"]
    vals = [num(C[j][k]) for j in range(len(C)) for k in range(len(C)) if j != k and j not in dead and k not in dead]
    return (min(vals), max(vals)) if vals else (float("nan"), float("nan"))


def _line_groups(r: Rec) -> list[int] | None:
    """At d = 1: sizes of the two opposite groups of live rows (None unless every |cos| is 1)."""
    dead = set(dead_classes(r))
    C = r["geometry"]["w_cos"]
    live = [k for k in range(len(C)) if k not in dead]
    if any(abs(abs(num(C[j][k])) - 1) > 1e-9 for j in live for k in live):
        return None
    pos = sum(num(C[live[0]][k]) > 0 for k in live)
    return sorted([pos, len(live) - pos], reverse=True)


def dead_class_accuracy(r: Rec, dead: list[int]) -> float:
    """Decoding accuracy (ties count as failures) over the samples whose label set contains
    a dead class, from the stored label-set means (exact when NC1 = 0, as at every
    critical point: one feature per label set)."""
    import numpy as np

    from ..metrics import decode

    p = prob(r)
    pairs = sorted(zip(p["sets"], p["counts"]), key=lambda sc: (len(sc[0]), sc[0]))
    Hg = np.asarray(r["arrays"]["Hg"], float)
    cols = np.repeat(np.arange(len(pairs)), [n for _, n in pairs])
    Y = np.zeros((p["K"], cols.size), dtype=np.int64)
    for j, g in enumerate(cols):
        Y[pairs[g][0], j] = 1
    pred, groups = decode(Hg[:, cols], Y, np.asarray(r["arrays"]["W"], float))
    hit = np.isin(np.arange(len(groups.sets)), [g for g, S in enumerate(groups.sets) if set(S) & set(dead)])
    mask = hit[groups.index]
    return float(np.mean(pred[mask] == groups.index[mask])) if mask.any() else float("nan")


def _same_s(rows: list[dict]) -> str:
    """Whether the predicted s*_1 at equal (K, mu/mu_crit) agrees across lam_W/lam_H."""
    by: dict[tuple, list[float]] = {}
    for x in rows:
        by.setdefault((x["K"], x["x"]), []).append(num(x["s1"]))
    worst = nanmax(max(v) - min(v) for v in by.values() if len(v) > 1)
    return (f"at equal mu the lam_W/lam_H ratios give the same s*_1 (largest difference {fmt(worst, 'r')})"
            if worst == worst else "one lam_W/lam_H ratio only")


def dimension(recs: list[Rec]) -> Built:
    rows = []
    for (K, d), rs in group(recs, lambda r: (prob(r)["K"], prob(r)["d"])).items():
        best = best_run(rs)
        objs = sorted(r["summary"]["objective"] for r in rs)
        distinct = 1 + sum(b - a > 1e-9 * abs(b) for a, b in zip(objs, objs[1:]))
        g = best["geometry"]
        dead = dead_classes(best)
        cmin, cmax = live_cosines(best)
        rows.append({"K": K, "d": d, "rel": d - (K - 1), "seeds": len(rs), "best": excess(best),
                     "worst": nanmax(excess(r) for r in rs), "distinct": distinct, "rank": g["w_rank"],
                     "dead": len(dead), "dead_list": dead, "cmin": cmin, "cmax": cmax,
                     "nc2": best["summary"]["metrics"]["nc2_w"], "line": _line_groups(best) if d == 1 else None,
                     "acc": best["summary"]["metrics"]["decoding_accuracy"],
                     "dead_acc": dead_class_accuracy(best, dead) if dead else None,
                     "norms": [num(c["norm_w"]) for c in g["classes"]],
                     "cert": best["summary"]["certificate"]["rel_gap"]})
    t = Table("dimension", "Feature dimension d against K-1: cost and geometry of the best of 3 starts", [
        ("K", "K", "i"), ("d", "d", "i"), ("d-(K-1)", "rel", "i"), ("min F / min phi - 1 (best)", "best", "r"),
        ("(worst start)", "worst", "r"), ("distinct minima", "distinct", "i"), ("rank W", "rank", "i"),
        ("dead classes", "dead", "i"), ("min cos(w_j,w_k)", "cmin", "c"), ("max cos", "cmax", "c"),
        ("NC2_W", "nc2", "r"), ("decoding acc.", "acc", "g"), ("acc. with a dead class", "dead_acc", "g"),
        ("certified gap", "cert", "r")], rows,
        note=f"min phi is the theorem's optimum, reached for every d >= K-1; the certified gap is relative "
             f"to the convex bound, which does not depend on d. A class is dead when its classifier row has "
             f"norm <= {DEAD_CLASS_TOL:g} x the largest row norm; cosines are between live rows only. Decoding: nearest "
             "tag-wise prototype, ties (within rounding) count as failures; the last column is over the samples "
             "whose label set contains a dead class.")
    below = [x for x in rows if x["rel"] < 0]
    at = [x for x in rows if x["rel"] >= 0]
    multi = [f"(K={x['K']}, d={x['d']})" for x in below if x["distinct"] > 1]
    findings = [
        f"d >= K-1: all {sum(x['seeds'] for x in at)} runs reach min phi (relative excess "
        f"{upto(nanmax(abs(num(x['worst'])) for x in at))}) with a simplex ETF (cos = -1/(K-1)).",
        "d < K-1 costs: min F exceeds min phi by " + ", ".join(
            f"{100 * x['best']:.1f}% (K={x['K']}, d={x['d']})" for x in below if x["d"] in (1, x["K"] - 2))
        + "; the certified gap to the convex bound (which ignores d) is " + ", ".join(
            f"{100 * x['cert']:.0f}% (K={x['K']})" for x in below if x["d"] == 1) + " at d = 1.",
        f"Below K-1 the landscape is no longer benign: different starts end at different minima for "
        f"{', '.join(multi) or 'no cell'}.",
    ]
    lines = [x for x in below if x["d"] == 1 and x["line"]]
    if lines:
        findings.append("At d = 1 the classifier rows of the best minimum lie on a line (every |cos| = 1 to 1e-9) "
                        "in two opposite groups of " + ", ".join(
                            f"{x['line'][0]} and {x['line'][1]} rows (K={x['K']})" for x in lines)
                        + "; decoding accuracy drops to " + ", ".join(f"{x['acc']:.3f}" for x in lines) + ".")
    findings += [_dead_sentence(x) for x in below if x["dead"]]
    km2 = [x for x in below if x["d"] == x["K"] - 2]
    if km2:
        findings.append("At d = K-2 the best minima have cosines between live rows in " + ", ".join(
            f"{span([x['cmin'], x['cmax']], 'c')} (K={x['K']})" for x in km2)
            + " instead of the ETF's -1/(K-1)" + _orthogonal_groups(below)
            + ". Figure dimension_geometry draws the rows at d = 2 and these cosines at d = K-2.")
    return [t], findings


def _dead_sentence(x: dict) -> str:
    live = [v for k, v in enumerate(x["norms"]) if k not in x["dead_list"]]
    return (f"Dead classes at (K={x['K']}, d={x['d']}): the best minimum sets the classifier row of class "
            f"{', '.join(map(str, x['dead_list']))} to zero (norm <= {DEAD_CLASS_TOL:g} x the largest; live rows "
            f"{min(live):.3f}..{max(live):.3f}), so its logit is the same for every sample; decoding accuracy "
            f"{x['acc']:.3f} overall, {x['dead_acc']:.3f} on the samples whose label set contains a dead class.")


def _orthogonal_groups(below: list[dict]) -> str:
    """The d = K-2 cells whose largest cosine between live classifier rows is 0 (to 1e-3):
    there the rows split into groups in mutually orthogonal subspaces (read from the data,
    so the sentence follows whichever minima the runs found)."""
    ks = [str(x["K"]) for x in below if x["d"] == x["K"] - 2 and abs(x["cmax"]) < 1e-3]
    if not ks:
        return ""
    return (f"; for K = {', '.join(ks)} the largest cosine is 0: the rows split into smaller groups in "
            "mutually orthogonal subspaces")


def _set(r: Rec, S: list[int]) -> dict:
    return next(s for s in r["geometry"]["sets"] if s["set"] == S)


def _cos(r: Rec, j: int, k: int) -> float:
    return num(r["geometry"]["w_cos"][j][k])


def _nondecreasing(v: list[float]) -> bool:
    return all(b >= a for a, b in zip(v, v[1:]))


def _frequent_pairs_larger(r: Rec) -> bool:
    """With class counts falling from class 0 to class K-1: is the pair {0, 1} the one with
    the largest tag-wise scale and {K-2, K-1} the one with the smallest?"""
    K = prob(r)["K"]
    pairs = {tuple(x["set"]): num(x["scale"]) for x in r["geometry"]["sets"] if x["m"] == 2}
    return max(pairs, key=lambda S: pairs[S]) == (0, 1) and min(pairs, key=lambda S: pairs[S]) == (K - 2, K - 1)


def imbalance(recs: list[Rec]) -> Built:
    single = [r for r in recs if prob(r)["kind"] == "imbalanced-single"]
    pairs = [r for r in recs if prob(r)["kind"] == "imbalanced-pairs"]
    rows1 = []
    for r in single:
        cl, K = r["geometry"]["classes"], prob(r)["K"]
        light = [s for s in r["geometry"]["sets"] if s["m"] == 2]
        rows1.append({"ratio": cl[0]["n_single"] / cl[-1]["n_single"], "pairs": r["params"]["design"]["pairs"],
                      "mu": r["summary"]["theory"]["mu"], "w": cl[0]["norm_w"] / cl[-1]["norm_w"],
                      "h": cl[0]["norm_h"] / cl[-1]["norm_h"], "cmaj": _cos(r, 0, 1), "cmin": _cos(r, K - 2, K - 1),
                      "nc2": r["summary"]["metrics"]["nc2_w"],
                      "ang": nanmax(num(s["angle_deg"]) for s in light),
                      "smin": min((num(s["scale"]) for s in light), default=None),
                      "smax": max((num(s["scale"]) for s in light), default=None),
                      "cert": r["summary"]["certificate"]["rel_gap"]})
    rows1.sort(key=lambda x: (x["pairs"], x["mu"], x["ratio"]))
    t1 = Table("imbalance_single", "Imbalanced single-label classes (K = 5; n_k from n_max down to 2)", [
        ("n_max/n_min", "ratio", "g"), ("pairs each", "pairs", "i"), ("mu", "mu", "g"),
        ("norm w_0 / w_4", "w", "g"), ("norm h_0 / h_4", "h", "g"), ("cos(w_0,w_1) majority", "cmaj", "c"),
        ("cos(w_3,w_4) minority", "cmin", "c"), ("NC2_W", "nc2", "r"), ("max pair angle (deg)", "ang", "r"),
        ("pair scale min", "smin", "g"), ("pair scale max", "smax", "g"), ("certified gap", "cert", "r")], rows1,
        note="The ETF has cos = -0.25 for K = 5. Pair angle: between h_S and h_j + h_k (S = {j, k}).")
    rows2 = []
    for r in pairs:
        heavy = _set(r, [0, 1])
        light = [s for s in r["geometry"]["sets"] if s["m"] == 2 and s["set"] != [0, 1]]
        rows2.append({"n": heavy["n"], "mu": r["summary"]["theory"]["mu"], "ah": heavy["angle_deg"],
                      "al": nanmax(num(s["angle_deg"]) for s in light), "sh": heavy["scale"],
                      "sl": sum(s["scale"] for s in light) / len(light), "c01": _cos(r, 0, 1),
                      "c23": _cos(r, 2, 3), "nc2": r["summary"]["metrics"]["nc2_w"],
                      "cert": r["summary"]["certificate"]["rel_gap"]})
    rows2.sort(key=lambda x: (x["mu"], x["n"]))
    t2 = Table("imbalance_pairs", "One heavy pair {0,1} (K = 5; singles 4 each, other pairs 1 each)", [
        ("n_{0,1}", "n", "i"), ("mu", "mu", "g"), ("angle heavy (deg)", "ah", "r"),
        ("max angle light (deg)", "al", "r"), ("scale heavy", "sh", "g"), ("scale light (mean)", "sl", "g"),
        ("cos(w_0,w_1)", "c01", "c"), ("cos(w_2,w_3)", "c23", "c"), ("NC2_W", "nc2", "r"),
        ("certified gap", "cert", "r")], rows2, note="n_{0,1} = 1 is the balanced design (the theorem applies).")
    r16 = {(x["pairs"], x["mu"]): x for x in rows1 if x["ratio"] == 16}
    h32 = [x for x in rows2 if x["n"] == 32]
    r16s = {(r["params"]["design"]["pairs"], r["summary"]["theory"]["mu"]): r for r in single
            if r["params"]["design"]["n_max"] == 16 * r["params"]["design"]["n_min"]}
    etf = -1 / (prob(single[0])["K"] - 1) if single else float("nan")
    longer = all(x["w"] > 1 for x in r16.values())
    closer = all(x["cmin"] > etf for x in r16.values())
    grow = all(_nondecreasing([x["ang"] for x in rows1 if x["pairs"] == p and x["mu"] == mu])
               for p, mu in {(x["pairs"], x["mu"]) for x in rows1 if x["pairs"]})
    freq = all(_frequent_pairs_larger(r) for (p, _), r in r16s.items() if p)
    shrink = all(x["sh"] < x["sl"] for x in h32)
    pulled = all(x["c01"] > etf for x in h32)
    findings = [
        f"All {len(recs)} optima are certified global (largest certified gap "
        f"{fmt(nanmax(num(x['cert']) for x in rows1 + rows2), 'r')}), so these are the true optima, not solver artefacts.",
        "Imbalanced singles break the ETF (NC2_W up to "
        f"{nanmax(x['nc2'] for x in rows1):.2f} at n_max/n_min = 16). At ratio 16 "
        + ("the most frequent class has a longer classifier row than the rarest in every setting"
           if longer else "the most frequent class does not always have the longer row")
        + (" and the two rarest classes' rows draw together (minority collapse: their cosine is above the "
           f"ETF's {etf:.2f})" if closer else "; the two rarest rows are not always closer than the ETF's")
        + ": " + "; ".join(f"{'with' if p else 'without'} pairs, mu={mu:g}: norm w_0/w_4 = {x['w']:.2f}, "
                           f"cos(w_3,w_4) = {x['cmin']:.2f}" for (p, mu), x in sorted(r16.items())) + ".",
        "Tag-wise structure bends but survives: the largest pair angle "
        + ("grows with n_max/n_min at each mu" if grow else "does not grow monotonically with n_max/n_min")
        + f", up to {nanmax(x['ang'] for x in rows1):.1f} deg, and at ratio 16 the pair scales spread ("
        + "; ".join(f"mu={mu:g}: {x['smin']:.3f}..{x['smax']:.3f}" for (p, mu), x in sorted(r16.items()) if p)
        + ")" + (", largest for the pair of the two most frequent classes and smallest for the two rarest"
                 if freq else "") + ".",
        "One heavy pair {0,1} keeps h_{0,1} on h_0 + h_1 (angle "
        f"{upto(nanmax(num(x['ah']) for x in rows2))} deg)"
        + (" but with a smaller scale than the light pairs" if shrink else "")
        + (f" and w_0, w_1 drawn together (cosine above the ETF's {etf:.2f})" if pulled else "")
        + ", while the light pairs tilt: at n_{0,1} = 32 "
        + "; ".join(f"mu={x['mu']:g}: scale {x['sh']:.3f} vs {x['sl']:.3f}, cos(w_0,w_1) = {x['c01']:.2f}, "
                    f"light-pair angle up to {x['al']:.1f} deg" for x in h32) + ".",
    ]
    return [t1, t2], findings


def losses(recs: list[Rec]) -> Built:
    def dkey(r: Rec) -> tuple:
        return (prob(r)["K"], profile_of(r) if prob(r)["kind"] == "balanced" else "heavy pair x8")

    rows = []
    for (K, des), rs in group(recs, dkey).items():
        pal = next((r for r in rs if prob(r)["loss"] == "pal"), None)
        for r in sorted(rs, key=lambda r: ["pal", "pal-normalized", "bce"].index(prob(r)["loss"])):
            m, g = r["summary"]["metrics"], r["geometry"]
            rows.append({"K": K, "design": des, "loss": prob(r)["loss"], "nc1": m["nc1"], "nc2": m["nc2_w"],
                         "nc2c": g["nc2_w_centred"], "wmean": g["w_mean_ratio"], "cos": g["w_cos_max"],
                         "nc2h": m["nc2_h"], "nc3": m["nc3"], "a2": tag(r, 2, "angle_deg_max"),
                         "s2": tag(r, 2, "scale"), "c2": theory_c(pal, 2) if pal else None,
                         "s3": tag(r, 3, "scale"), "acc": m["decoding_accuracy"], "bias": m["bias"]})
    t = Table("losses", "Loss variants on the same designs (mu = 5e-3, d = K)", [
        ("K", "K", "i"), ("design", "design", "s"), ("loss", "loss", "s"), ("NC1", "nc1", "r"),
        ("NC2_W", "nc2", "r"), ("NC2_W of W - mean w", "nc2c", "r"), ("norm mean w / norm w", "wmean", "r"),
        ("max cos(w_j,w_k)", "cos", "c"), ("NC2_H", "nc2h", "r"), ("NC3", "nc3", "r"),
        ("max angle m=2 (deg)", "a2", "r"), ("scale m=2", "s2", "g"), ("PAL c_2", "c2", "g"),
        ("scale m=3", "s3", "g"), ("decoding acc.", "acc", "g"), ("bias spread", "bias", "r")], rows,
        note="NC2_H and NC3 use centred feature means; NC2_W does not centre W. Angles are between h_S "
             "and the (uncentred) sum of its single-label means.")
    bal = [x for x in rows if x["design"] != "heavy pair x8"]
    heavy = [x for x in rows if x["design"] == "heavy pair x8"]

    def rng(loss: str, key: str, kind: str = "r") -> str:
        return span([num(x[key]) for x in bal if x["loss"] == loss], kind)

    findings = [
        f"PAL and normalised PAL: full collapse on the balanced designs (NC1, NC2, NC3 "
        f"{upto(max(nanmax(num(x[k]) for x in bal if x['loss'] != 'bce') for k in ('nc1', 'nc2', 'nc2h', 'nc3')))}"
        f", pair angles {upto(nanmax(num(x['a2']) for x in bal if x['loss'] != 'bce'))} deg); only the "
        f"scale differs: c_2 = {rng('pal', 's2', 'g')} (PAL) against {rng('pal-normalized', 's2', 'g')} "
        "(targets y/m): normalising the targets shrinks the multi-label features.",
        f"BCE: features collapse (NC1, NC2_H, NC3 "
        f"{upto(nanmax(max(num(x['nc1']), num(x['nc2h']), num(x['nc3'])) for x in bal if x['loss'] == 'bce'))}) "
        f"but W is an ETF plus a common shift: NC2_W = {rng('bce', 'nc2')}, centred {rng('bce', 'nc2c')}, "
        f"norm of mean w / norm w = {rng('bce', 'wmean', 'g')} (BCE is not invariant to adding t 1 to the "
        f"logits). So the uncentred tag-wise angle is {rng('bce', 'a2', 'g')} deg and c_2 = {rng('bce', 's2', 'g')}.",
        "Decoding label sets by the nearest tag-wise prototype (ties count as failures) on the balanced designs: "
        f"accuracy {rng('pal', 'acc', 'g')} (PAL), {rng('pal-normalized', 'acc', 'g')} (normalised PAL), "
        f"{rng('bce', 'acc', 'g')} (BCE): " + _bce_decoding(bal) + ".",
        "With the heavy pair no loss keeps the ETF (NC2_W " + ", ".join(f"{x['loss']} {x['nc2']:.3f}" for x in heavy)
        + ") and the bias is no longer constant (spread " + ", ".join(f"{x['bias']:.2f}" for x in heavy) + ").",
    ]
    return [t], findings


def _bce_decoding(bal: list[dict]) -> str:
    bad = [x for x in bal if x["loss"] == "bce" and num(x["acc"]) < 1]
    if not bad:
        return "every loss decodes every sample"
    return ("BCE decodes less than every sample for "
            + ", ".join(f"K={x['K']}, profile {x['design']} ({x['acc']:.3f})" for x in bad))


def _first_below(hist: dict, key: str, level: float, ref: float | None = None) -> Any:
    """First recorded iteration at which ``hist[key]`` (relative to ``ref`` if given:
    ``(v - ref)/|ref|``) is below ``level``; None if never."""
    for it, v in zip(hist["iter"], hist[key]):
        if v is None:
            continue
        x = (v - ref) / abs(ref) if ref is not None else v
        if x < level:
            return it
    return None


def _all_nc(hist: dict) -> dict:
    keys = ("nc1", "nc2_w", "nc2_h", "nc3")
    return {"iter": hist["iter"], "all": [None if any(hist[k][i] is None for k in keys)
                                          else max(hist[k][i] for k in keys) for i in range(len(hist["iter"]))]}


GAP_LEVEL = 1e-10  # iteration counts are to thresholds far above float64 rounding (~1e-16)


def iterations(recs: list[Rec]) -> Built:
    rows = []
    for r in sorted(recs, key=lambda r: ["gd", "agd", "lbfgs"].index(r["cell"]["solver"])):
        s, h = r["summary"], r["history"]
        rows.append({"solver": r["cell"]["solver"], "every": r["cell"]["options"].get("history_every", 1),
                     "gap": s["gap_to_theory"], "g": s["grad_norm"],
                     "tg": _first_below(h, "fun", GAP_LEVEL, s["theory"]["value"]),
                     "t3": _first_below(h, "nc2_w", 1e-3), "t6": _first_below(h, "nc2_w", 1e-6),
                     "tall": _first_below(_all_nc(h), "all", 1e-6),
                     "gtol": r["cell"]["options"].get("gtol"), "step": r["cell"]["options"].get("step")})
    t = Table("iterations", "GD, AGD and L-BFGS on one problem (K = 6, d = 8): iterations to fixed thresholds", [
        ("solver", "solver", "s"), ("history every", "every", "i"), (f"iter. to rel. gap < {GAP_LEVEL:g}", "tg", "i"),
        ("iter. to NC2_W < 1e-3", "t3", "i"), ("iter. to NC2_W < 1e-6", "t6", "i"),
        ("iter. to NC1, NC2, NC3 < 1e-6", "tall", "i"), ("final rel. F - min phi", "gap", "r")], rows,
        note="Counts are the first recorded iteration below each threshold (resolution: the recording interval). "
             "The thresholds lie far above float64 rounding, so another machine's BLAS does not move them; "
             "the iteration at which a solver stopped, and its final gradient norm, depend on rounding near its "
             "tolerance (AGD compares values of F that float64 resolves only to ~1e-16 relative) and are listed "
             "in timings.md with the wall times.")
    gd = rows[0]
    findings = [
        f"Relative gap F/min phi - 1 below {GAP_LEVEL:g} after " + ", ".join(
            f"{x['tg']} ({x['solver']})" for x in rows) + " iterations, NC2_W below 1e-6 after "
        + ", ".join(f"{x['t6']} ({x['solver']})" for x in rows) + " (first recorded iteration; histories every "
        + ", ".join(f"{x['every']} ({x['solver']})" for x in rows) + " iterations).",
        f"GD (fixed step {gd['step']:g}) converges linearly and needs {gd['tg'] / rows[2]['tg']:.0f} times the "
        f"iterations of L-BFGS to the same gap; every solver ends with a relative gap to min phi "
        f"{upto(nanmax(abs(num(x['gap'])) for x in rows))}.",
    ]
    return [t], findings


def stopping(recs: list[Rec]) -> list[str]:
    """Lines for timings.md: where each iterations run stopped (rounding-dependent)."""
    return [f"| {r['cell']['solver']} | {r['summary']['status']} | {r['summary']['nit']} | "
            f"{r['summary']['grad_norm']:.2g} |"
            for r in sorted(recs, key=lambda r: ["gd", "agd", "lbfgs"].index(r["cell"]["solver"]))]


BUILDERS = {"theorem": theorem, "phase": phase, "dimension": dimension, "imbalance": imbalance,
            "losses": losses, "iterations": iterations}

from .beyond import BUILDERS as _BEYOND  # noqa: E402  (sections beyond the paper)

BUILDERS.update(_BEYOND)

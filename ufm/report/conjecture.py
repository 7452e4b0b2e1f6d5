"""The "conjecture" section: how the pair features h_{j,k} of certified optima are built from
the single-label prototypes when the single-label classes are imbalanced (rendering only;
every number is read from the records of the shipped spec ``conjecture``).

Li et al. (ICML 2024, "Neural Collapse in Multi-label Learning with Pick-all-label Loss")
conjectured how imbalance within multiplicity 1 bends the tag-wise average; Ma, Yang, Li, Hui
(arXiv 2605.01897, "How Label Imbalance Shapes Geometry", May 2026) state that higher-
multiplicity prototypes obey a class-frequency-weighted synthesis rule governed by a label-
covariance spectrum kappa_m. Only that paper's abstract was available here, not its formula,
so what is tested is named for what it is: h_S on span(p_j, p_k) with weights a_j/a_k =
(n_j/n_k)^b, b fitted per optimum (b = 1: frequency-weighted average; b = 0: the uniform
tag-wise average), for two prototype choices p (the single-label means h_k and the classifier
rows w_k), with its uncertainty, its mu -> 0 limit and the residual outside the span.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .tables import Rec, Table, fmt, group, nanmax, prob, span, upto  # noqa: E402

Built = tuple[list[Table], list[str]]
COLORS = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]
TRIVIAL = 1e-6  # ||W|| below this: the trivial optimum W = 0, H = 0 (no prototypes to fit)
APART = 1e-5  # single-label prototypes closer than this (relative) have merged or vanished
BOOT = 2000  # bootstrap resamples over cells (fixed seed: the report is reproducible)
CERT_TOL = 1e-6  # a stored optimum counts as certified global at this relative gap (ufm.certify's default)
PAPER = "Ma, Yang, Li, Hui, arXiv 2605.01897 (2026)"


def pattern(r: Rec) -> str:
    des = r["params"]["design"]
    if "counts" not in des:
        return f"linear {des['n_max']}..{des['n_min']}"
    c = des["counts"]
    return "one rare class" if c.count(min(c)) == 1 else "step"


def counts(r: Rec) -> list[int]:
    p = prob(r)
    n = {tuple(S): c for S, c in zip(p["sets"], p["counts"])}
    return [n[(k,)] for k in range(p["K"])]


def _residual(h: np.ndarray, v: np.ndarray) -> float:
    """``||h - c v|| / ||h||`` at the best ``c``."""
    c = float(v @ h) / float(v @ v)
    return float(np.linalg.norm(h - c * v)) / float(np.linalg.norm(h))


def pair_fits(r: Rec, proto: str = "h") -> list[dict[str, float]]:
    """Per pair S = {j, k} (n_j >= n_k): least-squares weights of h_S on the prototypes
    (``"h"``: single-label means; ``"w"``: classifier rows), the residual outside their span,
    and the residuals of the uniform rule c (p_j + p_k) and of the frequency-weighted rule
    c (n_j p_j + n_k p_k) / (n_j + n_k), best c each, relative to ||h_S||."""
    p = prob(r)
    sets = [tuple(S) for S in p["sets"]]
    n = dict(zip(sets, p["counts"]))
    Hg = np.asarray(r["arrays"]["Hg"], dtype=float)
    W = np.asarray(r["arrays"]["W"], dtype=float)
    P = {S[0]: (Hg[:, i] if proto == "h" else W[S[0]]) for i, S in enumerate(sets) if len(S) == 1}
    out = []
    for i, S in enumerate(sets):
        if len(S) != 2:
            continue
        j, k = S
        nj, nk = n[(j,)], n[(k,)]
        if nj < nk:
            j, k, nj, nk = k, j, nk, nj
        h = Hg[:, i]
        A = np.stack([P[j], P[k]], axis=1)
        a = np.linalg.lstsq(A, h, rcond=None)[0]
        out.append({"nj": nj, "nk": nk, "aj": float(a[0]), "ak": float(a[1]),
                    "ls": float(np.linalg.norm(h - A @ a)) / float(np.linalg.norm(h)),
                    "uniform": _residual(h, P[j] + P[k]), "freq": _residual(h, (nj * P[j] + nk * P[k]) / (nj + nk))})
    return out


def fit_exponent(fits: list[dict[str, float]]) -> tuple[float, float, int]:
    """``(b, standard error, pairs)`` of log(a_j/a_k) = b log(n_j/n_k) (least squares through 0)
    over the pairs with n_j != n_k and positive weights; NaN where there are none."""
    xy = [(math.log(f["nj"] / f["nk"]), math.log(f["aj"] / f["ak"])) for f in fits
          if f["nj"] != f["nk"] and f["aj"] > 0 and f["ak"] > 0]
    if not xy:
        return float("nan"), float("nan"), 0
    x, y = np.asarray(xy).T
    b = float(x @ y / (x @ x))
    se = math.sqrt(float(((y - b * x) ** 2).sum()) / (len(x) - 1) / float(x @ x)) if len(x) > 1 else float("nan")
    return b, se, len(x)


def regular(r: Rec) -> bool:
    """Collapsed, and no two classifier rows merged or vanished (minority collapse breaks the fit)."""
    if r["summary"]["metrics"]["norm_W"] < TRIVIAL:
        return False
    W = np.asarray(r["arrays"]["W"], dtype=float)
    top = float(np.linalg.norm(W, axis=1).max())
    dist = [float(np.linalg.norm(W[j] - W[k])) for j in range(len(W)) for k in range(j + 1, len(W))]
    return min(np.linalg.norm(W, axis=1).min(), min(dist)) > APART * top


def _trivial_threshold(p: dict) -> float:
    """The closed-form trivial threshold of a stored problem (its design, bias and lam_b)."""
    from ..problem import UFMProblem
    from ..theory import trivial_threshold

    problem = UFMProblem.from_dict(p)
    return trivial_threshold(problem.design, lam_b=problem.lam_b, bias=problem.bias)


def rows(recs: list[Rec]) -> list[dict[str, Any]]:
    out = []
    for r in recs:
        p = prob(r)
        row: dict[str, Any] = {"K": p["K"], "pattern": pattern(r), "counts": "/".join(map(str, counts(r))),
                               "bias": "on" if p["bias"] else "off", "mu": float(r["params"]["mu"]),
                               "cert": float(r["summary"]["certificate"]["rel_gap"]),
                               "trivial": r["summary"]["metrics"]["norm_W"] < TRIVIAL, "regular": regular(r),
                               "mu0": _trivial_threshold(p)}
        if not row["trivial"]:
            fh, fw = pair_fits(r, "h"), pair_fits(r, "w")
            row["b"], row["se"], row["pairs"] = fit_exponent(fh)
            row["bw"], row["sew"], _ = fit_exponent(fw)
            row["ls"] = nanmax(f["ls"] for f in fh)
            row["uniform"] = nanmax(f["uniform"] for f in fh)
            row["freq"] = nanmax(f["freq"] for f in fh)
            row["better"] = sum(f["uniform"] < f["freq"] for f in fh if f["nj"] != f["nk"])
            row["unequal"] = sum(f["nj"] != f["nk"] for f in fh)
            row["state"] = "regular" if row["regular"] else "minority rows merged/vanished"
        else:
            row["state"] = "trivial (W = 0)"
        out.append(row)
    out.sort(key=lambda x: (x["K"], x["pattern"], x["bias"], x["mu"]))
    return out


def bootstrap(vals: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Mean and a 95% bootstrap interval over the cells (``BOOT`` resamples, fixed seed)."""
    v = np.asarray(vals, dtype=float)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(BOOT, len(v)))].mean(axis=1)
    return float(v.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def thresholds(rs: list[dict]) -> dict[tuple, dict[str, Any]]:
    """Per design and bias: the trivial threshold ``mu0`` in closed form
    (:func:`ufm.theory.trivial_threshold`, proved in docs/thresholds.md), and how many cells
    of the grid agree with it (trivial exactly where ``mu >= mu0``)."""
    out = {}
    for key, xs in group(rs, lambda x: (x["K"], x["pattern"], x["bias"])).items():
        mu0 = xs[0]["mu0"]
        agree = sum((x["mu"] >= mu0) == x["trivial"] for x in xs)
        out[key] = {"mu0": mu0, "agree": agree, "cells": len(xs)}
    return out


def _ci(t: tuple[float, float, float]) -> str:
    return f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"


def conjecture(recs: list[Rec]) -> Built:
    rs = rows(recs)
    t = Table("conjecture", "Pair features h_{j,k} = a_j p_j + a_k p_k + residual on certified optima: the exponent b "
              "of a_j/a_k = (n_j/n_k)^b", [
                  ("K", "K", "i"), ("pattern", "pattern", "s"), ("n_0/../n_K-1", "counts", "s"), ("bias", "bias", "s"),
                  ("mu", "mu", "g"), ("state", "state", "s"), ("b (p = h_k)", "b", "g"), ("s.e.", "se", "r"),
                  ("b (p = w_k)", "bw", "g"), ("s.e. (w)", "sew", "r"), ("max residual outside span", "ls", "r"),
                  ("uniform rule residual", "uniform", "r"), ("frequency rule residual", "freq", "r"),
                  ("certified gap", "cert", "r")], rs,
              note="b: least squares of log(a_j/a_k) on log(n_j/n_k) over the pairs with n_j != n_k (s.e. from its "
                   "residuals); b = 1 is the frequency-weighted average, b = 0 the uniform tag-wise one. Residuals "
                   "are relative to ||h_S||; the rules' residuals use the best scale c per pair. 'minority rows "
                   f"merged/vanished': two classifier rows within {APART:g} (relative) or one at 0; such cells are "
                   "left out of the pooled exponents.")
    return [t], findings(rs)


def findings(rs: list[dict]) -> list[str]:
    certs = [abs(x["cert"]) for x in rs]
    reg = [x for x in rs if x["regular"] and not math.isnan(x["b"])]
    odd = [x for x in rs if not x["trivial"] and not x["regular"]]
    thr = thresholds(rs)
    mus = sorted({x["mu"] for x in reg})
    cert = [x for x in rs if abs(x["cert"]) <= CERT_TOL]
    agree = sum(t["agree"] for t in thr.values())
    mu0s = [t["mu0"] for t in thr.values()]
    out = [
        f"{len(rs)} optima (K = {span([x['K'] for x in rs], 'i')}, {len({x['pattern'] for x in rs})} imbalance "
        f"patterns, bias on and off, mu = {span([x['mu'] for x in rs])}): "
        + (f"all {len(rs)} certified global" if len(cert) == len(rs) else
           f"{len(cert)} of {len(rs)} certified global (relative gap <= {CERT_TOL:g}); the others are best found")
        + f" (largest certified gap {upto(max(certs))}); {sum(x['trivial'] for x in rs)} are trivial (W = 0) and "
        f"{len(odd)} near the threshold have merged or vanished minority rows. The trivial threshold of each design "
        f"and bias setting is the closed form mu0 = ||grad L(b0 1^T)||_2 (docs/thresholds.md), "
        f"mu0 = {span(mu0s)} over the {len(thr)} settings; "
        + (f"every one of the {agree} cells is trivial exactly where mu >= mu0."
           if agree == len(rs) else
           f"only {agree} of {len(rs)} cells are trivial exactly where mu >= mu0 (the others disagree with it)."),
        f"The paper that claims to resolve the imbalance conjecture of Li, Li, Wang, Qu (ICML 2024) ({PAPER}) states a class-frequency-weighted synthesis rule "
        "governed by a label-covariance spectrum kappa_m; only its abstract could be obtained here, not its formula, "
        "so its rule itself is not tested. Tested instead: h_S = a_j p_j + a_k p_k with a_j/a_k = (n_j/n_k)^b, "
        "b fitted on every optimum (b = 1: frequency-weighted average; b = 0: uniform tag-wise average).",
    ]
    if reg:
        pooled = {mu: bootstrap([x["b"] for x in reg if x["mu"] == mu]) for mu in mus}
        pooled_w = {mu: bootstrap([x["bw"] for x in reg if x["mu"] == mu]) for mu in mus}
        designs = {(x["K"], x["pattern"], x["bias"]) for x in rs}
        # mu where every design is regular (far from its threshold): the pooled means compare like with like
        common = [mu for mu in mus if len({(x["K"], x["pattern"], x["bias"]) for x in reg if x["mu"] == mu})
                  == len(designs)]
        near = [mu for mu in mus if mu not in common]
        lo = mus[0]
        shrinks = len(common) > 1 and all(abs(pooled[a][0]) <= abs(pooled[b][0]) for a, b in zip(common, common[1:]))
        creg = [x for x in reg if x["mu"] in common]
        out.append(
            "With the single-label means as prototypes the fitted exponent is "
            + ("far from 1" if max(abs(x["b"] - 1) for x in creg) > 0.5 else "near 1")
            + f": mean b over the "
            f"{len(designs)} designs (95% bootstrap interval over them) "
            + ", ".join(f"{_ci(pooled[mu])} at mu = {mu:g}" for mu in common)
            + f"; per optimum b = {span([x['b'] for x in creg], 'g')}, standard errors up to "
            f"{fmt(nanmax(x['se'] for x in creg), 'r')}. "
            + (f"Over mu = {span(common)}, |b| shrinks as mu decreases, to {pooled[lo][0]:.3f} at mu = {lo:g}: the "
               "trend points to the uniform tag-wise average (b = 0) as mu -> 0, which the grid does not reach. "
               if shrinks else f"Over mu = {span(common)} |b| does not shrink monotonically as mu decreases. ")
            + (f"Near the threshold (mu = {', '.join(f'{mu:g}' for mu in near)}: "
               + ", ".join(f"{sum(x['mu'] == mu for x in reg)}" for mu in near)
               + f" of {len(designs)} designs still regular) b spreads to "
               + span([x["b"] for x in reg if x["mu"] in near], "g") + "." if near else ""))
        res_lo = [x["ls"] for x in reg if x["mu"] == lo]
        out.append(
            f"The synthesis is not exact: h_S leaves span(h_j, h_k) by a relative residual up to "
            f"{fmt(max(x['ls'] for x in reg), 'r')}, and this residual does not vanish as mu -> 0 (at mu = {lo:g}: "
            f"{span(res_lo, 'r')}), so no choice of weights, frequency-based or not, describes the optimum exactly.")
        out.append(
            "With the classifier rows as prototypes the weights come out "
            + ("inverse to frequency (b < 0 on every optimum)" if all(x["bw"] < 0 for x in creg) else
               "of mixed sign in b") + ": mean b "
            + ", ".join(f"{_ci(pooled_w[mu])} at mu = {mu:g}" for mu in common)
            + f" (per optimum {span([x['bw'] for x in creg], 'g')}): the sign and size of the exponent depend on the "
            "prototype choice, which a frequency-weighted rule has to specify.")
        by_bias = {bz: [x["b"] for x in creg if x["bias"] == bz] for bz in ("on", "off")}
        if all(by_bias.values()):
            out.append(f"Bias on against off (means as prototypes, mu = {span(common)}): b = " + "; ".join(
                f"{bz}: {span(v, 'g')} (mean {np.mean(v):.3f})" for bz, v in by_bias.items()) + ".")
        better = sum(x["better"] for x in reg)
        unequal = sum(x["unequal"] for x in reg)
        out.append(
            f"Each rule with its best scale per pair: the uniform average fits better in {better} of {unequal} pairs "
            f"of unequally frequent classes (largest residual {fmt(nanmax(x['uniform'] for x in reg), 'r')}, against "
            f"{fmt(nanmax(x['freq'] for x in reg), 'r')} for the frequency-weighted one)"
            + (": on these optima the frequency-weighted average is the worse description." if better > unequal / 2
               else ": on these optima the frequency-weighted average is the better description."))
    return out


def fig_conjecture(recs: list[Rec]) -> dict[str, Any]:
    rs = [x for x in rows(recs) if x["regular"] and not math.isnan(x["b"])]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    pats = sorted({x["pattern"] for x in rs})
    for (K, pat, bz), xs in group(rs, lambda x: (x["K"], x["pattern"], x["bias"])).items():
        xs = sorted(xs, key=lambda x: x["mu"])
        kw = {"color": COLORS[(K - 4) % 10], "marker": "osD"[pats.index(pat) % 3], "ls": "-" if bz == "on" else ":",
              "ms": 4, "lw": 1, "alpha": 0.8}
        axes[0].plot([x["mu"] for x in xs], [x["b"] for x in xs], **kw)
        axes[1].plot([x["mu"] for x in xs], [x["bw"] for x in xs], **kw)
        axes[2].plot([x["mu"] for x in xs], [x["ls"] for x in xs], **kw)
    for ax, yl, title in ((axes[0], "b (prototypes: single-label means h_k)", "exponent b, a_j/a_k = (n_j/n_k)^b"),
                          (axes[1], "b (prototypes: classifier rows w_k)", "exponent b with w_k as prototypes"),
                          (axes[2], "||residual outside span(h_j, h_k)|| / ||h_S||", "residual outside the span")):
        ax.set(xscale="log", xlabel="mu = sqrt(lam_W lam_H)", ylabel=yl, title=title)
    for ax in axes[:2]:
        ax.axhline(0, color="grey", lw=0.8)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=COLORS[K - 4], label=f"K={K}") for K in sorted({x["K"] for x in rs})] + [
        Line2D([], [], color="k", marker="osD"[i % 3], ls="none", label=p) for i, p in enumerate(pats)] + [
        Line2D([], [], color="k", ls="-", label="bias on"), Line2D([], [], color="k", ls=":", label="bias off")]
    for ax in axes:
        ax.legend(handles=handles, fontsize=6.5, ncol=2)
    fig.suptitle("Imbalanced single labels, every pair once: how h_{j,k} weighs its classes (certified optima; "
                 "frequency-weighted average: b = 1)")
    return {"conjecture_weights": fig}

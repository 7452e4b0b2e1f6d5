"""Figures of the report (matplotlib, Agg; PNG and PDF), from stored sweep records only.

Outputs are as reproducible as matplotlib allows: fixed style, no timestamps in PDF or PNG
metadata, a fixed SVG hash salt. Residual-like values (gaps, NC metrics, angles, relative
errors) are drawn at ``FLOOR`` = 1e-8 when below it, the same floor the tables print as
``<1e-08``: their digits are rounding noise, which differs between machines, and a figure
drawing them would not reproduce. Each such axis marks the floor. Each ``fig_*`` function takes the records of one spec and
returns the figures it made as ``{name: Figure}``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .tables import (  # noqa: E402
    FLOOR,
    FLOOR_LABEL,
    TRIVIAL_NORM,
    Rec,
    best_run,
    dead_classes,
    excess,
    floor_line,
    group,
    is_trivial,
    margin,
    num,
    prob,
    profile_of,
    tag,
    theory_c,
)

STYLE = {"figure.dpi": 100, "savefig.dpi": 130, "font.size": 9, "axes.titlesize": 9.5,
         "axes.labelsize": 9, "legend.fontsize": 7.5, "axes.grid": True, "grid.alpha": 0.3,
         "svg.hashsalt": "ufm-report", "pdf.fonttype": 42, "lines.markersize": 4}
COLORS = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]
NC_MARK = 1e-6  # nc_iterations: the threshold of the `iterations` table ("iter. to NC2_W < 1e-6")
STOP_GAP = 1e-9  # nc_iterations: histories stop here; below it L-BFGS's iterates (and the NC metrics
# computed from them, which move like sqrt(gap)) differ between BLAS builds by 1e-5 relative


def _sig(a: Any, scale: str, digits: int = 6, top: float | None = None) -> Any:
    """Round drawn data so that float64 rounding differences (~1e-15 relative, or ~1e-9 for
    the local minima of the d < K-1 runs) leave the coordinates written to PNG and PDF
    unchanged: on a log axis to 4 significant digits; on a linear one to a power-of-10
    grid ``10**-digits`` below ``top`` (the largest magnitude on that axis), so that rounding
    noise around 0 becomes exactly 0."""
    a = np.asarray(a, dtype=np.float64)
    fin = np.isfinite(a)
    if a.size == 0 or not fin.any():
        return a
    if scale == "log":
        out = a.copy()
        pos = fin & (a > 0)
        e = np.floor(np.log10(a[pos]))
        out[pos] = np.round(a[pos] / 10.0 ** (e - 3)) * 10.0 ** (e - 3)
        return out
    top = float(np.max(np.abs(a[fin]))) if top is None else top
    if not top > 0:
        return a
    e = math.floor(math.log10(top)) - digits  # a power of 10: the same grid for nearby data
    return np.where(fin, np.round(a / 10.0**e) * 10.0**e, a) + 0.0  # + 0.0: no negative zero


def _top(values: list[Any]) -> float:
    v = [np.abs(np.asarray(x, dtype=np.float64)).ravel() for x in values]
    v = [x[np.isfinite(x)] for x in v if x.size]
    v = [x for x in v if x.size]
    return float(max(x.max() for x in v)) if v else 0.0


def _quantize(fig: Any) -> None:
    """Apply :func:`_sig` to the data of every line, marker set, bar, image and text of ``fig``."""
    from matplotlib.collections import PathCollection, QuadMesh
    from matplotlib.image import AxesImage
    from matplotlib.patches import Rectangle

    for ax in fig.axes:
        xs, ys = ax.get_xscale(), ax.get_yscale()
        offs = [np.asarray(c.get_offsets(), float) for c in ax.collections if isinstance(c, PathCollection)]
        offs = [o for o in offs if o.size]
        rects = [p for p in ax.patches if isinstance(p, Rectangle)]
        tx = _top([ln.get_xdata() for ln in ax.lines] + [o[:, 0] for o in offs])
        ty = _top([ln.get_ydata() for ln in ax.lines] + [o[:, 1] for o in offs] + [[p.get_height() for p in rects]])
        for line in ax.lines:
            x, y = line.get_data()
            line.set_data(_sig(x, xs, top=tx), _sig(y, ys, top=ty))
        for c in ax.collections:
            if isinstance(c, PathCollection):
                off = np.asarray(c.get_offsets(), float)
                if off.size:
                    c.set_offsets(np.column_stack([_sig(off[:, 0], xs, top=tx), _sig(off[:, 1], ys, top=ty)]))
            elif isinstance(c, QuadMesh):
                data: Any = c.get_array()
                if data is not None:
                    c.set_array(_sig(np.ma.filled(data, np.nan), "linear", 3))
                if c.norm.vmin is not None:
                    lim = _sig([c.norm.vmin, c.norm.vmax], "linear", 3)
                    c.set_clim(float(lim[0]), float(lim[1]))
        for p in rects:
            p.set_height(float(_sig([p.get_height()], ys, top=ty)[0]))
        for im in ax.images:
            if isinstance(im, AxesImage):
                arr: Any = np.ma.filled(np.ma.asarray(im.get_array(), dtype=float), np.nan)
                im.set_data(_sig(arr, "linear", 3))  # colour maps have 256 levels
                lim = _sig([im.norm.vmin, im.norm.vmax], "linear", 3)
                im.set_clim(float(lim[0]), float(lim[1]))
        for t in ax.texts:  # 4 digits: a drawn W is certified to ~1e-8 only
            x, y = t.get_position()
            t.set_position((float(_sig([x], xs, 4)[0]), float(_sig([y], ys, 4)[0])))
            if hasattr(t, "xy"):
                t.xy = (float(_sig([t.xy[0]], xs, 4)[0]), float(_sig([t.xy[1]], ys, 4)[0]))
        if ax.get_autoscalex_on() or ax.get_autoscaley_on():
            ax.relim()
            ax.autoscale_view()


def save(fig: Any, directory: Path, name: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    _quantize(fig)
    png, pdf = directory / f"{name}.png", directory / f"{name}.pdf"
    fig.savefig(png, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    plt.close(fig)
    return [png, pdf]


def _pos(v: Any) -> float:
    """``|v|``, raised to ``FLOOR`` (rounding noise is not drawn); nan stays nan."""
    x = num(v)
    return max(abs(x), FLOOR) if x == x else float("nan")


def fig_iterations(recs: list[Rec]) -> dict[str, Any]:
    panels = [("fun", "(F - min phi) / min phi"), ("grad_norm", "gradient norm"), ("nc1", "NC1 (within-class)"),
              ("nc2_w", "NC2_W (classifier ETF)"), ("nc2_h", "NC2_H (feature-mean ETF)"), ("nc3", "NC3 (self-duality)")]
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.2), layout="constrained")
    order = {"gd": 0, "agd": 1, "lbfgs": 2}
    for r in sorted(recs, key=lambda r: order[r["cell"]["solver"]]):
        h, ref = r["history"], r["summary"]["theory"]["value"]
        it = np.asarray(h["iter"], float) + 1
        gap = np.abs(np.asarray([num(v) for v in h["fun"]]) - ref) / abs(ref)
        cut = np.flatnonzero(gap < STOP_GAP)
        n = cut[0] + 1 if cut.size else it.size  # drawn up to the first record below STOP_GAP ...
        nc = np.max([np.abs([num(v) for v in h[k]]) for k in ("nc1", "nc2_w", "nc2_h", "nc3")], axis=0)
        below = np.flatnonzero(nc < NC_MARK)
        if below.size:  # ... and on to where every NC metric is below NC_MARK (the table's threshold)
            n = max(n, below[0] + 1)
        it = it[:n]
        t6 = np.flatnonzero(np.abs([num(v) for v in h["nc2_w"]])[:n] < NC_MARK)
        for ax, (key, title) in zip(axes.flat, panels):
            y = np.asarray([num(v) for v in h[key]])[:n]
            if key == "fun":
                y = (y - ref) / abs(ref)
            col = COLORS[order[r["cell"]["solver"]]]
            ax.loglog(it, np.maximum(np.abs(y), FLOOR), label=r["cell"]["solver"].upper().replace("LBFGS", "L-BFGS"),
                      color=col, lw=1.4)
            if key == "nc2_w" and t6.size:  # where NC2_W first falls below NC_MARK
                ax.plot(it[t6[0]], max(abs(y[t6[0]]), FLOOR), "o", color=col, ms=6, mfc="none", mew=1.5)
            ax.set_title(title)
    for ax in axes.flat:
        ax.set_xlabel("iteration + 1")
        floor_line(ax)
    for ax in axes.flat[2:]:
        ax.axhline(NC_MARK, color="0.3", lw=0.8, ls="--", label=f"{NC_MARK:g}")
    from matplotlib.lines import Line2D

    hs, ls = axes.flat[0].get_legend_handles_labels()
    hs += [Line2D([], [], color="0.3", lw=0.8, ls="--"),
           Line2D([], [], color="0.3", marker="o", mfc="none", ls="none", ms=6)]
    ls += [f"NC threshold {NC_MARK:g}", f"first record with NC2_W < {NC_MARK:g}"]
    fig.legend(hs, ls, loc="outside lower center", ncol=6, fontsize=8)
    p = prob(recs[0])
    fig.suptitle(f"Neural-collapse metrics against iterations (K={p['K']}, d={p['d']}, N={p['N']}, "
                 f"lam_W=lam_H={p['lam_W']:g})\nruns drawn until (F - min phi)/min phi < {STOP_GAP:g} "
                 f"and every NC metric < {NC_MARK:g}\n(much further, machine rounding moves the NC metrics)")
    return {"nc_iterations": fig}


def fig_cm(recs: list[Rec]) -> dict[str, Any]:
    fig, (a, b) = plt.subplots(1, 2, figsize=(10.5, 3.9), constrained_layout=True)
    markers = {3: "v", 4: "o", 5: "D", 6: "s", 8: "^"}
    for m, col in ((2, COLORS[0]), (3, COLORS[1])):
        for K, rs in group(recs, lambda r: prob(r)["K"]).items():
            pred = np.array([theory_c(r, m) for r in rs])
            meas = np.array([tag(r, m, "scale") for r in rs])
            ok = np.isfinite(pred) & np.isfinite(meas)
            if not ok.any():
                continue
            a.scatter(pred[ok], meas[ok], marker=markers.get(K, "o"), color=col, s=22, alpha=0.8,
                      label=f"m={m}, K={K}")
            b.scatter(pred[ok], np.maximum(np.abs(meas[ok] / pred[ok] - 1), FLOOR), marker=markers.get(K, "o"),
                      color=col, s=22, alpha=0.8)
    lo, hi = a.get_xlim()
    a.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", label="measured = predicted")
    a.set(xlabel="predicted c_m = m s*_m / s*_1", ylabel="measured ||h_S|| / ||mean_{k in S} h_k||",
          title="Tag-wise scale: prediction against measurement")
    a.legend(ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    b.set(yscale="log", xlabel="predicted c_m", ylabel="|measured / predicted - 1|",
          title="Relative error of the measured scale")
    floor_line(b, 1e-5)
    b.legend(loc="upper left")
    return {"cm_predicted_vs_measured": fig}


def fig_phase(recs: list[Rec]) -> dict[str, Any]:
    """Left: the margins s*_m (lines predicted, markers measured). Right: the norms, with the
    reason for their hump. NC2_W sits at the rounding floor in every collapsed cell: said in
    the title, not drawn as a flat line."""
    from matplotlib.lines import Line2D

    one = [r for r in recs if "mu_ratio" in r["params"]]
    two = [r for r in recs if "mu_ratio" not in r["params"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    nc2 = [_pos(r["summary"]["metrics"]["nc2_w"]) for r in one if not is_trivial(r)]
    for i, ((K, ratio), rs) in enumerate(group(one, lambda r: (prob(r)["K"], r["params"]["lam_ratio"])).items()):
        rs = sorted(rs, key=lambda r: r["params"]["mu_ratio"])
        x = np.array([r["params"]["mu_ratio"] for r in rs])
        mk = "o" if ratio == 1 else "x"
        for m, col in ((1, COLORS[2 * (K == 6)]), (2, COLORS[1 + 2 * (K == 6)])):
            if ratio == 1:
                axes[0].plot(x, [num(r["summary"]["theory"]["s"].get(str(m))) for r in rs], color=col, lw=1,
                             label=f"K={K}: s*_{m}")
            axes[0].plot(x, [0.0 if is_trivial(r) else margin(r, m) for r in rs], mk, color=col, ms=4,
                         mfc="none" if ratio != 1 else col)
        norms = [math.sqrt(r["summary"]["problem"]["lam_W"]) * r["summary"]["metrics"]["norm_W"] for r in rs]
        if ratio == 1:
            axes[1].plot(x, norms, "-o", color=COLORS[i], ms=4, label=f"K={K}, lam_W/lam_H = 1")
        else:
            axes[1].plot(x, norms, "x", color="k", ms=6, mew=1.2, zorder=3,
                         label="lam_W/lam_H = 4 (each K)" if K == min(prob(r)["K"] for r in one) else None)
    marks = [Line2D([], [], color="0.3", marker="o", ls="none", ms=4, label="measured, lam_W/lam_H = 1"),
             Line2D([], [], color="0.3", marker="x", ls="none", ms=4, label="measured, lam_W/lam_H = 4")]
    h, lab = axes[0].get_legend_handles_labels()
    axes[0].legend(h + marks, lab + [m.get_label() for m in marks], fontsize=7, loc="upper right")
    axes[0].set(xlabel="mu / mu_crit", ylabel="logit margin s_m",
                title="Margins s*_m: lines predicted, markers measured")
    axes[1].legend(fontsize=7, loc="upper right")
    axes[1].set(xlabel="mu / mu_crit", ylabel="sqrt(lam_W) ||W||_F  (= sqrt(lam_H) ||H||_F)",
                title="sqrt(lam_W) ||W||_F = sqrt((K-1) mu sigma): rises with mu,\n"
                      "vanishes with sigma at mu_crit; the two ratios coincide")
    for ax in axes:
        ax.axvline(1.0, color="0.3", lw=0.8, ls="--")
    floor = "at the rounding floor (< 1e-8)" if nc2 and max(nc2) == FLOOR else f"at most {max(nc2):.1e}" if nc2 else "undefined"
    fig.suptitle(f"Phase transition in mu = sqrt(lam_W lam_H); NC2_W in every collapsed cell: {floor}")
    out = {"phase_mu": fig}
    if two:
        out["phase_diagram"] = _phase_diagram(two)
    return out


def _phase_diagram(rs: list[Rec]) -> Any:
    profs = group(rs, profile_of)
    fracs, mus = [], sorted({prob(r)["lam_W"] for r in rs})
    Z = np.full((len(mus), len(profs)), np.nan)
    crit = []
    for j, (_, prs) in enumerate(sorted(profs.items(), key=lambda kv: _pair_frac(kv[1][0]))):
        fracs.append(_pair_frac(prs[0]))
        crit.append(prs[0]["summary"]["theory"]["mu_crit"])
        for r in prs:
            nw = r["summary"]["metrics"]["norm_W"]
            Z[mus.index(prob(r)["lam_W"]), j] = math.log10(nw) if nw >= TRIVIAL_NORM else np.nan
    fig, ax = plt.subplots(figsize=(5.6, 4.2), constrained_layout=True)
    fx, ly = np.array(fracs), np.log10(mus)
    fe = np.concatenate([[fx[0] - (fx[1] - fx[0]) / 2], (fx[1:] + fx[:-1]) / 2, [fx[-1] + (fx[-1] - fx[-2]) / 2]])
    le = np.concatenate([[ly[0] - (ly[1] - ly[0]) / 2], (ly[1:] + ly[:-1]) / 2, [ly[-1] + (ly[-1] - ly[-2]) / 2]])
    from matplotlib.patches import Patch

    ax.set_facecolor("0.82")  # the trivial cells (nan in Z) show the background
    ax.grid(False)
    mesh = ax.pcolormesh(fe, 10 ** le, Z, cmap="viridis", shading="flat")
    ax.plot(fx, crit, "r-o", lw=2, ms=4, label="predicted mu_crit")
    ax.legend(handles=[ax.get_lines()[0], Patch(color="0.82", label=f"trivial: ||W||_F < {TRIVIAL_NORM:g}")],
              loc="lower left", framealpha=0.9)
    ax.set(yscale="log", xlabel="fraction of samples with a pair (N = 120, K = 4)", ylabel="mu = sqrt(lam_W lam_H)",
           title="Phase diagram: log10 ||W||_F at the optimum")
    fig.colorbar(mesh, ax=ax, label="log10 ||W||_F (collapsed cells)")
    return fig


def _pair_frac(r: Rec) -> float:
    p = prob(r)
    return sum(n for S, n in zip(p["sets"], p["counts"]) if len(S) == 2) / p["N"]


def fig_dimension(recs: list[Rec]) -> dict[str, Any]:
    """Below d = K-1 only, on a log axis spanning the data: from d = K-1 on, both quantities
    are 0 up to rounding, shown as triangles on the bottom edge, not as a line dropping to a
    floor. A d missing from the grid breaks the line (it is not bridged)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    below = [v for r in recs if prob(r)["d"] < prob(r)["K"] - 1
             for v in (abs(excess(r)), abs(r["summary"]["metrics"]["nc2_w"])) if v == v and v > FLOOR]
    bottom = 10.0 ** (math.floor(math.log10(min(below))) - 0.5) if below else FLOOR
    for i, (K, rs) in enumerate(group(recs, lambda r: prob(r)["K"]).items()):
        col = COLORS[i]
        under = [r for r in rs if prob(r)["d"] < K - 1]
        x = np.array([prob(r)["d"] - (K - 1) for r in under], float)
        jitter = (np.array([r["cell"]["seed"] for r in under]) - 1) * 0.08
        a.semilogy(x + jitter, [_pos(excess(r)) for r in under], "o", color=col, mfc="none", label=f"K={K}, each start")
        best = group(under, lambda r: prob(r)["d"])
        full = np.arange(min(best), max(best) + 1) if best else np.array([], int)  # nan where d is missing
        a.semilogy(full - (K - 1), [_pos(min(excess(r) for r in best[d])) if d in best else np.nan for d in full],
                   "-", color=col, lw=1)
        b.semilogy(full - (K - 1), [_pos(best_run(best[d])["summary"]["metrics"]["nc2_w"]) if d in best else np.nan
                                    for d in full], "-o", color=col, label=f"K={K}")
        above = sorted({prob(r)["d"] - (K - 1) for r in rs if prob(r)["d"] >= K - 1})
        for ax in (a, b):
            ax.plot(np.array(above) + (i - 1) * 0.12, [bottom * 1.25] * len(above), "v", color=col, ms=6)
    for ax in (a, b):
        ax.axvline(-0.5, color="0.3", lw=0.8, ls="--")
        ax.set_ylim(bottom, 5)
        h, lab = ax.get_legend_handles_labels()
        from matplotlib.lines import Line2D
        h.append(Line2D([], [], color="0.3", marker="v", ls="none", ms=6))
        lab.append("d >= K-1: 0 up to rounding (< 1e-8)")
        ax.legend(h, lab, loc="lower left", fontsize=7)
    a.set(xlabel="d - (K-1)", ylabel="F / min phi - 1",
          title="Cost of a missing dimension\n(line: best of 3 starts)")
    b.set(xlabel="d - (K-1)", ylabel="NC2_W (distance of W W^T to the ETF)",
          title="Distance from the simplex ETF\n(best start)")
    return {"dimension": fig, "dimension_geometry": _dim_geometry(recs)}


def _dim_geometry(recs: list[Rec]) -> Any:
    """Top: the classifier rows at d = 2 (a dead row -- zero, see
    :func:`ufm.report.tables.dead_classes` -- is a cross at the origin). Bottom: cosines
    between live rows at d = K-2; a dead row has no direction, its cells are blank."""
    Ks = sorted({prob(r)["K"] for r in recs})
    fig, axes = plt.subplots(2, len(Ks), figsize=(3.4 * len(Ks), 6.8), constrained_layout=True)
    im: Any = None
    for j, K in enumerate(Ks):
        rs = [r for r in recs if prob(r)["K"] == K and prob(r)["d"] == 2 and "arrays" in r]
        best = best_run(rs)
        W = np.asarray(best["arrays"]["W"])
        dead = dead_classes(best)
        ax = axes[0, j]
        lim = float(f"{1.2 * np.abs(W).max():.2g}")  # rounded: W is a local minimum to ~1e-9 only
        # the arrows are annotations, which save()'s quantisation does not reach: round them here
        # (1e-4 of the axis, far below a pixel; their last digits differed between two regenerations)
        W = np.round(W / lim, 4) * lim
        for k in range(K):
            if k in dead:
                ax.plot(0, 0, "x", color=COLORS[k % 10], ms=9, mew=2)
                ax.annotate(f"{k}: dead (w = 0)", (0, 0), xytext=(6, -12), textcoords="offset points",
                            fontsize=8, color=COLORS[k % 10])
                continue
            ax.annotate("", xy=W[k], xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": COLORS[k % 10], "lw": 1.5})
            ax.text(*(W[k] * 1.1), str(k), ha="center", va="center", fontsize=8, color=COLORS[k % 10])
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=f"K={K}, d=2: classifier rows w_k")
        dk = [r for r in recs if prob(r)["K"] == K and prob(r)["d"] == K - 2]
        bk = best_run(dk)
        C = np.asarray(bk["geometry"]["w_cos"], float)
        dk_dead = dead_classes(bk)
        C[dk_dead, :] = np.nan
        C[:, dk_dead] = np.nan
        im = axes[1, j].imshow(C, vmin=-1, vmax=1, cmap="RdBu_r")
        for (p, q), v in np.ndenumerate(C):
            txt = "dead" if (p in dk_dead or q in dk_dead) and p == q else ("" if v != v else f"{v:.2f}".replace("-0.00", "0.00"))
            axes[1, j].text(q, p, txt, ha="center", va="center", fontsize=6.5 if K > 6 else 7.5,
                            color="white" if v == v and abs(v) > 0.6 else "black")
        axes[1, j].set(title=f"K={K}, d={K - 2}: cos(w_j, w_k)", xticks=range(K), yticks=range(K),
                       xlabel="class k", ylabel="class j")
        axes[1, j].grid(False)
    fig.colorbar(im, ax=axes[1, :], shrink=0.8, label="cosine (ETF: -1/(K-1))")
    fig.suptitle("What replaces the ETF when d < K-1 (best of 3 starts; singles and pairs)")
    return fig


def _map(ax: Any, r: Rec, key: str, title: str, fmt: str, cmap: str, vmin: float | None = None,
         vmax: float | None = None) -> Any:
    K = prob(r)["K"]
    M = np.full((K, K), np.nan)
    for s in r["geometry"]["sets"]:
        if s["m"] == 2:
            j, k = s["set"]
            M[j, k] = M[k, j] = num(s[key])
    im = ax.imshow(M, cmap=cmap, vmin=vmin, vmax=vmax)
    n = {tuple(s["set"]): s["n"] for s in r["geometry"]["sets"]}
    cm, norm = im.get_cmap(), im.norm
    for (j, k), v in np.ndenumerate(M):
        if j != k:
            r_, g_, b_, _ = cm(norm(v))
            dark = 0.299 * r_ + 0.587 * g_ + 0.114 * b_ < 0.5
            ax.text(k, j, f"{v:{fmt}}\nn={n[tuple(sorted((j, k)))]}", ha="center", va="center", fontsize=8.5,
                    color="white" if dark else "black")
        else:
            ax.text(k, j, f"{{{j}}}\nn={n.get((j,), 0)}", ha="center", va="center", fontsize=8.5, color="0.25")
    ax.set(title=title, xticks=range(K), yticks=range(K), xlabel="class k of the pair {j, k}",
           ylabel="class j of the pair {j, k}")
    ax.grid(False)
    return im


def fig_imbalance(recs: list[Rec]) -> dict[str, Any]:
    single = [r for r in recs if prob(r)["kind"] == "imbalanced-single" and r["params"]["design"]["pairs"] == 1]
    pairs = [r for r in recs if prob(r)["kind"] == "imbalanced-pairs"]
    mu0 = min(r["summary"]["theory"]["mu"] for r in recs)
    rs = next(r for r in single if r["params"]["design"]["n_max"] == 32 and r["summary"]["theory"]["mu"] == mu0)
    rp = next(r for r in pairs if r["params"]["design"]["heavy_count"] == 32 and r["summary"]["theory"]["mu"] == mu0)
    fig, axes = plt.subplots(2, 2, figsize=(10, 9), constrained_layout=True)
    for row, r, lab in ((0, rs, "singles n_k = 32..2"), (1, rp, "pair {0,1} x32")):
        im = _map(axes[row, 0], r, "angle_deg", f"{lab}:\nangle(h_S, h_j + h_k)", ".2f", "Oranges", vmin=0)
        fig.colorbar(im, ax=axes[row, 0], shrink=0.8, label="angle (deg)")
        im = _map(axes[row, 1], r, "scale", f"{lab}:\nscale ||h_S|| / ||mean h_k||", ".3f", "viridis")
        fig.colorbar(im, ax=axes[row, 1], shrink=0.8, label="tag-wise scale")
    fig.suptitle(f"Imbalance maps, pairs S = {{j, k}} (K = 5, mu = {mu0:g}); diagonal: the single label {{j}} "
                 "and its count n")
    return {"imbalance_maps": fig, "imbalance_trends": _imb_trends(recs)}


def _imb_trends(recs: list[Rec]) -> Any:
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 5.0), layout="constrained")
    single = [r for r in recs if prob(r)["kind"] == "imbalanced-single"]
    for i, ((pairs, mu), rs) in enumerate(group(single, lambda r: (r["params"]["design"]["pairs"],
                                                                   r["summary"]["theory"]["mu"])).items()):
        for r in rs:
            cl = r["geometry"]["classes"]
            mean = np.mean([c["norm_w"] for c in cl])
            axes[0].plot([c["n_single"] for c in cl], [c["norm_w"] / mean for c in cl], "o", color=COLORS[i],
                         mfc="none", label=f"pairs={pairs}, mu={mu:g}" if r is rs[0] else None)
    axes[0].set(xscale="log", xlabel="single-label count n_k", ylabel="||w_k|| / mean_k ||w_k||",
                title="Classifier norms follow class frequency")
    axes[0].set_xticks([2, 4, 8, 16, 32], ["2", "4", "8", "16", "32"])
    axes[0].minorticks_off()
    pairs = [r for r in recs if prob(r)["kind"] == "imbalanced-pairs"]
    for i, (mu, rs) in enumerate(group(pairs, lambda r: r["summary"]["theory"]["mu"]).items()):
        rs = sorted(rs, key=lambda r: r["params"]["design"]["heavy_count"])
        n = [r["params"]["design"]["heavy_count"] for r in rs]
        hv = [next(s for s in r["geometry"]["sets"] if s["set"] == [0, 1]) for r in rs]
        axes[1].plot(n, [s["scale"] for s in hv], "-o", color=COLORS[i], label=f"heavy pair, mu={mu:g}")
        axes[1].plot(n, [np.mean([s["scale"] for s in r["geometry"]["sets"] if s["m"] == 2 and s["set"] != [0, 1]])
                         for r in rs], "--s", color=COLORS[i], mfc="none", label=f"light pairs, mu={mu:g}")
        axes[2].plot(n, [s["angle_deg"] for s in hv], "-o", color=COLORS[i], label=f"heavy pair, mu={mu:g}")
        axes[2].plot(n, [max(s["angle_deg"] for s in r["geometry"]["sets"] if s["m"] == 2 and s["set"] != [0, 1])
                         for r in rs], "--s", color=COLORS[i], mfc="none", label=f"light pairs (max), mu={mu:g}")
    axes[1].set(xscale="log", xlabel="count of the pair {0,1} (1: balanced)",
                ylabel="tag-wise scale ||h_S|| / ||mean h_k||", title="Pair scales")
    axes[2].set(xscale="log", xlabel="count of the pair {0,1} (1: balanced)", ylabel="angle(h_S, h_j + h_k) (deg)",
                title="Tag-wise angles")
    for ax in axes[1:]:
        ax.set_xticks([1, 2, 4, 8, 16, 32], ["1", "2", "4", "8", "16", "32"])
        ax.minorticks_off()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower left", ncol=2, fontsize=7,
               title="left panel")
    fig.legend(*axes[1].get_legend_handles_labels(), loc="outside lower right", ncol=2, fontsize=7,
               title="middle and right panels (right: light pairs max)")
    return fig


def fig_losses(recs: list[Rec]) -> dict[str, Any]:
    designs = group(recs, lambda r: (prob(r)["K"], profile_of(r) if prob(r)["kind"] == "balanced" else "heavy pair"))
    losses = ["pal", "pal-normalized", "bce"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), layout="constrained")
    x = np.arange(len(designs))
    for i, loss in enumerate(losses):
        rs = [next((r for r in v if prob(r)["loss"] == loss), None) for v in designs.values()]  # None: missing

        def bars(value: Any) -> list[float]:
            return [math.nan if r is None else value(r) for r in rs]  # noqa: B023 - used at once

        off = (i - 1) * 0.27
        axes[0].bar(x + off, bars(lambda r: tag(r, 2, "scale")), 0.27, color=COLORS[i], label=loss)
        axes[1].bar(x + off, bars(lambda r: _pos(r["summary"]["metrics"]["nc2_w"])), 0.27, color=COLORS[i],
                    label=loss)
        axes[2].bar(x + off, bars(lambda r: _pos(tag(r, 2, "angle_deg_max"))), 0.27, color=COLORS[i], label=loss)
    labels = [f"K={K}\n{d}" for K, d in designs]
    axes[0].set(ylabel="tag-wise scale, m = 2", title="Scale of pair features")
    axes[1].set(yscale="log", ylabel="NC2_W", title="Classifier ETF (NC2_W)")
    axes[2].set(yscale="log", ylabel="max angle(h_S, h_j + h_k) (deg)", title="Tag-wise angle, m = 2")
    floor_line(axes[1], 3)
    floor_line(axes[2], 300)
    for ax in axes:
        ax.set_xticks(x, labels, fontsize=7)
    for c in axes[2].containers:
        axes[2].bar_label(c, labels=[f"{v:.1f}" if v > 1 else "" for v in c.datavalues], fontsize=6.5)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower left", ncol=3)
    hs, ls = axes[2].get_legend_handles_labels()
    fig.legend([h for h, lab in zip(hs, ls) if lab == FLOOR_LABEL][:1], [FLOOR_LABEL], loc="outside lower right")
    fig.suptitle("Pick-all-label against its normalised version (targets y/m) and binary cross-entropy")
    return {"losses": fig}


FIGURES = {"iterations": fig_iterations, "theorem": fig_cm, "phase": fig_phase, "dimension": fig_dimension,
           "imbalance": fig_imbalance, "losses": fig_losses}

from .beyond import FIGURES as _BEYOND  # noqa: E402  (sections beyond the paper)

FIGURES.update(_BEYOND)
from .beyond import CAPTIONS as _BEYOND_CAPTIONS  # noqa: E402
from .captions import CAPTIONS  # noqa: E402  (figure name -> 1-2 sentences under it in reports/README.md)

CAPTIONS.update(_BEYOND_CAPTIONS)

"""The "networks" section of the report: minibatch training on the UFM and a real network's
last layer against the certified UFM optimum (records of the shipped spec ``networks``).

Rendering only: every number comes from the records (the runs' summaries and their
per-epoch histories). Importing this module registers its builder and figures in
:data:`ufm.report.regimes.BUILDERS` and :data:`ufm.report.figures.FIGURES`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .figures import CAPTIONS, FIGURES, plt
from .regimes import BUILDERS, Built
from .tables import FLOOR, Rec, Table, fmt, num, prob, span

NAME = "networks"
CHECKPOINTS = (10, 25, 50, 100, 150)  # epochs shown in the convergence table
LEVELS = (1e-1, 1e-2)  # relative certified gaps whose first epoch the table gives


def label(r: Rec) -> str:
    """A short name of the run: solver and the options that tell runs apart."""
    s, o = r["cell"]["solver"], r["cell"]["options"]
    if s == "lbfgs":
        return "L-BFGS (UFM)"
    if s == "sgd":
        return f"SGD {o.get('lr_schedule', 'constant')} (UFM)"
    if s == "adam":
        return f"{'AdamW' if o.get('decoupled') else 'Adam'} {o.get('lr_schedule', 'constant')} (UFM)"
    if s == "network":
        return "MLP, fixed ETF W" if o.get("fixed_classifier") else "MLP, learned W"
    return s


ORDER = ("L-BFGS (UFM)", "SGD constant (UFM)", "SGD cosine (UFM)", "SGD step (UFM)", "Adam constant (UFM)",
         "Adam cosine (UFM)", "Adam step (UFM)", "AdamW constant (UFM)", "AdamW cosine (UFM)", "AdamW step (UFM)",
         "MLP, learned W", "MLP, fixed ETF W")


def ordered(recs: list[Rec]) -> list[Rec]:
    return sorted(recs, key=lambda r: (ORDER.index(label(r)) if label(r) in ORDER else len(ORDER), label(r)))


RUN_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
              "tab:cyan", "tab:gray")


def colors(recs: list[Rec]) -> dict[str, Any]:
    """One colour per run (by label), the same in every figure of the section."""
    trained = [r for r in ordered(recs) if r["cell"]["solver"] != "lbfgs"]
    return {"L-BFGS (UFM)": "black", **{label(r): RUN_COLORS[i % len(RUN_COLORS)] for i, r in enumerate(trained)}}


def _ticks(name: str) -> str:
    return name.replace(" (UFM)", "\n(UFM)").replace(", ", ",\n").replace("SGD ", "SGD\n").replace(
        "Adam ", "Adam\n").replace("AdamW ", "AdamW\n")


def last(r: Rec, key: str) -> float:
    h = r.get("history") or {}
    vals = h.get(key) or []
    return num(vals[-1]) if vals else float("nan")


def at_epoch(r: Rec, key: str, epoch: int) -> float:
    h = r.get("history") or {}
    for e, v in zip(h.get("iter", []), h.get(key, [])):
        if e == epoch:
            return num(v)
    return float("nan")


def first_epoch_below(r: Rec, key: str, level: float) -> Any:
    h = r.get("history") or {}
    for e, v in zip(h.get("iter", []), h.get(key, [])):
        if v is not None and v < level:
            return e
    return None


def row(r: Rec) -> dict[str, Any]:
    s, m = r["summary"], r["summary"]["metrics"]
    tw = m["tagwise"].get("2", {})
    pred = num(s["theory"]["c"].get("2"))
    c2 = num(tw.get("scale"))
    is_net = r["cell"]["solver"] == "network"
    return {
        "run": label(r), "epochs": s["nit"] if r["cell"]["solver"] != "lbfgs" else None,
        "F": s["objective"], "gap": s["certificate"]["gap"], "rel_gap": s["certificate"]["rel_gap"],
        "nc1": m["nc1"], "nc2_w": m["nc2_w"], "nc2_h": m["nc2_h"], "nc3": m["nc3"], "c2": c2, "c2_pred": pred,
        "c2_err": abs(c2 - pred) / pred if pred == pred and c2 == c2 else float("nan"),
        "angle2": num(tw.get("angle_deg")),
        "train_acc": last(r, "train_acc") if is_net else None, "test_acc": last(r, "test_acc") if is_net else None,
        "train_proto": last(r, "train_proto_acc") if is_net else num(m["decoding_accuracy"]),
        "test_proto": last(r, "test_proto_acc") if is_net else None,
    }


def is_trend(r: Rec) -> bool:
    """A cell of the lam_H trend grid: a network trained without per-epoch history."""
    return r["cell"]["solver"] == "network" and not r["cell"]["history"]


def networks(recs: list[Rec]) -> Built:
    trend = [r for r in recs if is_trend(r)]
    recs = [r for r in recs if not is_trend(r)]
    rs = ordered(recs)
    rows = [row(r) for r in rs]
    p = prob(rs[0])
    final = Table(NAME, f"Final state of each run (K = {p['K']}, N = {p['N']}, d = {p['d']}, lam_W = {p['lam_W']:g}, "
                  f"lam_H = {p['lam_H']:g}, lam_b = {p['lam_b']:g})", [
                      ("run", "run", "s"), ("epochs", "epochs", "i"), ("F", "F", "g"),
                      ("certified gap", "gap", "r"), ("rel. gap", "rel_gap", "r"), ("NC1", "nc1", "r"),
                      ("NC2_W", "nc2_w", "r"), ("NC2_H", "nc2_h", "r"), ("NC3", "nc3", "r"),
                      ("c_2", "c2", "g"), ("c_2 rel. error", "c2_err", "r"), ("angle m=2 (deg)", "angle2", "r"),
                      ("train acc. top-m", "train_acc", "g"), ("test acc. top-m", "test_acc", "g"),
                      ("train acc. prototype", "train_proto", "g"), ("test acc. prototype", "test_proto", "g")],
                  rows, note="Certified gap: F minus the certified lower bound on min F (ufm.certify). c_2: mean "
                  "measured tag-wise scale of the pair features; predicted c_2 = "
                  f"{fmt(rows[0]['c2_pred'])}. Accuracies: top-m = the m largest logits are the label set (m the "
                  "true multiplicity); prototype = nearest c_m mean_(k in S) h_k among all label sets (no m "
                  "needed; prototypes from the training features). Held-out accuracies exist for the networks only.")
    trained = [r for r in rs if r["cell"]["solver"] != "lbfgs"]
    conv_rows = []
    for r in trained:
        cr: dict[str, Any] = {"run": label(r)}
        for e in CHECKPOINTS:
            cr[f"e{e}"] = at_epoch(r, "rel_gap", e)
        for lv in LEVELS:
            cr[f"below{lv:g}"] = first_epoch_below(r, "rel_gap", lv)
        conv_rows.append(cr)
    conv = Table(f"{NAME}_epochs", "Relative certified gap against epochs, and the first epoch below a level",
                 [("run", "run", "s")] + [(f"epoch {e}", f"e{e}", "r") for e in CHECKPOINTS]
                 + [(f"first epoch < {lv:g}", f"below{lv:g}", "i") for lv in LEVELS], conv_rows)
    tables = [final, conv]
    out = findings(rs)
    if trend:
        t, f = trend_section(trend)
        tables.append(t)
        out += f
    return tables, out


def trend_rows(trend: list[Rec]) -> list[dict[str, Any]]:
    """Per (profile, lam_H): predicted c_2 and the measured c_2 over the seeds (mean, sd, range)."""
    rows = []
    by: dict[tuple, list[Rec]] = {}
    for r in trend:
        by.setdefault((r["params"]["design"]["profile"], prob(r)["lam_H"]), []).append(r)
    for (prof, lh), rs in sorted(by.items()):
        c = np.asarray([num(r["summary"]["metrics"]["tagwise"]["2"]["scale"]) for r in rs])
        pred = num(rs[0]["summary"]["theory"]["c"].get("2"))
        gaps = [num(r["summary"]["certificate"]["rel_gap"]) for r in rs]
        rows.append({"profile": prof, "lam_H": lh, "seeds": len(rs), "pred": pred, "mean": float(c.mean()),
                     "sd": float(c.std(ddof=1)) if len(c) > 1 else float("nan"), "lo": float(c.min()),
                     "hi": float(c.max()), "err": float(c.mean()) / pred - 1, "gap": float(np.mean(gaps)),
                     "values": c.tolist()})
    return rows


def direction(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For one profile (rows sorted by lam_H): does the measured mean move the way the prediction
    moves between neighbouring lam_H, and by more than the seed spread (sd of both ends added)?"""
    steps = list(zip(rows, rows[1:]))
    same = [b["pred"] != a["pred"] and (b["mean"] - a["mean"]) * (b["pred"] - a["pred"]) > 0 for a, b in steps]
    clear = [abs(b["mean"] - a["mean"]) > a["sd"] + b["sd"] for a, b in steps]
    return {"steps": len(steps), "same": sum(same), "clear_same": sum(s and c for s, c in zip(same, clear)),
            "clear_opposite": sum((not s) and c for s, c in zip(same, clear)),
            "pred_total": rows[-1]["pred"] - rows[0]["pred"], "meas_total": rows[-1]["mean"] - rows[0]["mean"]}


def trend_section(trend: list[Rec]) -> tuple[Table, list[str]]:
    rows = trend_rows(trend)
    o = trend[0]["cell"]["options"]
    t = Table(f"{NAME}_trend", "MLP's tag-wise scale c_2 against lam_H: measured over seeds vs predicted", [
        ("profile", "profile", "s"), ("lam_H", "lam_H", "g"), ("seeds", "seeds", "i"), ("c_2 predicted", "pred", "g"),
        ("c_2 measured (mean)", "mean", "g"), ("sd over seeds", "sd", "r"), ("min", "lo", "g"), ("max", "hi", "g"),
        ("mean / predicted - 1", "err", "r"), ("mean rel. certified gap", "gap", "r")], rows,
        note=f"MLP with a learned classifier, {o.get('epochs')} epochs, batch {o.get('batch_size')}, "
             f"{o.get('optimizer')} lr {o.get('lr')} ({o.get('lr_schedule')}); lam_W = {prob(trend[0])['lam_W']:g}. "
             "Predicted: the theorem's c_2 = 2 s*_2/s*_1 at the same lambdas (the UFM optimum).")
    out = []
    lhs = sorted({x["lam_H"] for x in rows})
    for prof in sorted({x["profile"] for x in rows}):
        rs = sorted((x for x in rows if x["profile"] == prof), key=lambda x: x["lam_H"])
        dr = direction(rs)
        pred_dir = "falls" if dr["pred_total"] < 0 else "rises"
        verdict = ("follows the predicted direction" if dr["same"] == dr["steps"] and dr["clear_opposite"] == 0
                   else "does not follow the predicted direction" if dr["same"] == 0
                   else "follows the predicted direction only in part")
        out.append(
            f"MLP, profile {prof}, lam_H = {lhs[0]:g}..{lhs[-1]:g} ({len(rs)} values, {rs[0]['seeds']} seeds each): "
            f"predicted c_2 {pred_dir} from {rs[0]['pred']:.4f} to {rs[-1]['pred']:.4f}; measured (mean +- sd over "
            "seeds) " + ", ".join(f"{x['mean']:.4f} +- {fmt(x['sd'], 'r')}" for x in rs)
            + f", i.e. {span([x['err'] for x in rs], 'r')} relative to the prediction. Training {verdict}: the "
            f"measured mean moves with the prediction in {dr['same']} of {dr['steps']} steps of lam_H "
            f"({dr['clear_same']} by more than the seed spread, {dr['clear_opposite']} against it by more), and "
            f"over the whole range by {dr['meas_total']:+.4f} against the predicted {dr['pred_total']:+.4f}.")
    return t, out


def findings(rs: list[Rec]) -> list[str]:
    """The section's statements, every number read from the records (in any order)."""
    rs = ordered(rs)
    by = {label(r): r for r in rs}
    out = []
    ref = by.get("L-BFGS (UFM)")
    if ref is not None:
        s = ref["summary"]
        out.append(f"L-BFGS on the UFM reaches F = {s['objective']:.6f} with certified gap "
                   f"{fmt(s['certificate']['gap'], 'r')}: min F is known to that accuracy, and the theorem's "
                   f"value is {s['theory']['value']:.6f} (predicted c_2 = {num(s['theory']['c'].get('2')):.4f}).")
    ufm_runs = [r for r in rs if r["cell"]["solver"] in ("sgd", "adam")]
    if ufm_runs:
        out.append(f"Minibatch training of the free features (batch {ufm_runs[0]['cell']['options'].get('batch_size')}) "
                   "ends at relative certified gap "
                   + ", ".join(f"{fmt(r['summary']['certificate']['rel_gap'], 'r')} ({label(r)})" for r in ufm_runs)
                   + " after " + fmt(ufm_runs[0]["summary"]["nit"], "i") + " epochs; first epoch below 1e-2: "
                   + ", ".join(f"{fmt(first_epoch_below(r, 'rel_gap', 1e-2), 'i')} ({label(r)})" for r in ufm_runs)
                   + " (— = never).")
    for name in ("MLP, learned W", "MLP, fixed ETF W"):
        r = by.get(name)
        if r is None:
            continue
        x = row(r)
        out.append(f"{name} (one run, seed {r['cell']['seed']}): relative certified gap {fmt(x['rel_gap'], 'r')} "
                   f"after {x['epochs']} epochs; "
                   f"NC1 {fmt(x['nc1'], 'r')}, NC2_W {fmt(x['nc2_w'], 'r')}, NC2_H {fmt(x['nc2_h'], 'r')}, "
                   f"NC3 {fmt(x['nc3'], 'r')}; c_2 = {x['c2']:.4f} against the predicted {x['c2_pred']:.4f} "
                   f"(relative error {fmt(x['c2_err'], 'r')}, angle {x['angle2']:.2f} deg); accuracy top-m "
                   f"train {x['train_acc']:.3f}, test {x['test_acc']:.3f}; nearest prototype train "
                   f"{x['train_proto']:.3f}, test {x['test_proto']:.3f}.")
    return out


def _series(r: Rec, key: str) -> tuple[np.ndarray, np.ndarray]:
    h = r["history"]
    return np.asarray(h["iter"], float), np.asarray([num(v) for v in h[key]])


def fig_networks(recs: list[Rec]) -> dict[str, Any]:
    trend = [r for r in recs if is_trend(r)]
    recs = [r for r in recs if not is_trend(r)]
    rs = [r for r in ordered(recs) if r["cell"]["solver"] != "lbfgs" and r.get("history")]
    col = colors(recs)  # distinct, in run order; the same in every figure of the section
    style = {label(r): "--" if r["cell"]["solver"] == "network" else "-" for r in rs}
    panels = [("rel_gap", "relative certified gap", True), ("nc1", "NC1", True), ("nc2_w", "NC2_W", True),
              ("nc3", "NC3", True), ("scale_2", "tag-wise scale c_2", False)]
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.6), constrained_layout=True)
    pred = num(rs[0]["summary"]["theory"]["c"].get("2")) if rs else float("nan")
    for ax, (key, title, log) in zip(axes.flat, panels):
        low, left_out = [], []
        for r in rs:
            name = label(r)
            e, y = _series(r, key)
            if log:
                y = np.abs(y)
                if not np.any(y > FLOOR):  # identically 0 (e.g. NC2_W of a frozen ETF): said, not drawn
                    left_out.append(name)
                    continue
                low.append(float(y[y > FLOOR].min()))
                ax.semilogy(e, np.maximum(y, FLOOR), color=col[name], ls=style[name], lw=1.3, label=name)
            else:
                ax.plot(e, y, color=col[name], ls=style[name], lw=1.3, label=name)
        if log and low:  # the axis starts at the smallest value drawn, not decades below it at the floor
            ax.set_ylim(bottom=max(FLOOR, 0.5 * min(low)))
        ax.set_title(title + (f" ({', '.join(left_out)}: 0, not drawn)" if left_out else ""), fontsize=9)
    line = axes.flat[4].axhline(pred, color="k", lw=0.9, ls=":")
    axes.flat[4].legend([line], [f"predicted c_2 = {pred:.3f}"], loc="lower right")
    for r in rs:
        h = r["history"]
        if "test_acc" in h:
            for key, ls, what in (("test_acc", "-", "test"), ("train_acc", ":", "train")):
                e, y = _series(r, key)
                axes.flat[5].plot(e, y, color=col[label(r)], lw=1.2, ls=ls, label=f"{label(r)}: {what}")
    axes.flat[5].set(title="top-m accuracy (networks)", ylim=(0, 1.02))
    axes.flat[5].legend(loc="lower right", fontsize=7)
    for ax in axes.flat:
        ax.set_xlabel("epoch")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
    p = prob(recs[0])
    fig.suptitle(f"Minibatch training on the UFM and an MLP on multi-label digits (K={p['K']}, N={p['N']}, "
                 f"d={p['d']}): against epochs")
    out = {"networks_epochs": fig, "networks_cm": _fig_cm(ordered(recs))}
    if trend:
        out["networks_trend"] = _fig_trend(trend)
    return out


def _fig_trend(trend: list[Rec]) -> Any:
    rows = trend_rows(trend)
    profs = sorted({x["profile"] for x in rows})
    fig, axes = plt.subplots(1, len(profs), figsize=(5.2 * len(profs), 4), constrained_layout=True, squeeze=False)
    for ax, prof in zip(axes[0], profs):
        rs = sorted((x for x in rows if x["profile"] == prof), key=lambda x: x["lam_H"])
        lh = [x["lam_H"] for x in rs]
        ax.plot(lh, [x["pred"] for x in rs], "k-", marker="D", ms=4, label="predicted (UFM optimum)")
        for x in rs:
            ax.plot([x["lam_H"]] * len(x["values"]), x["values"], "o", color="tab:orange", ms=3.5, alpha=0.6)
        ax.errorbar(lh, [x["mean"] for x in rs], yerr=[x["sd"] for x in rs], fmt="s-", color="tab:red", ms=4,
                    capsize=3, label="MLP: mean +- sd over seeds (dots: seeds)")
        ax.set(xscale="log", xlabel="lam_H (feature penalty)", ylabel="tag-wise scale c_2",
               title=f"profile {prof}")
        ax.legend(fontsize=7)
    fig.suptitle("Does training follow the predicted c_2 as lam_H moves?")
    return fig


def _fig_cm(rs: list[Rec]) -> Any:
    """Per-pair tag-wise scales of each run's final state against the predicted c_2."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    pred = num(rs[0]["summary"]["theory"]["c"].get("2"))
    names = [label(r) for r in rs]
    col = colors(rs)
    for i, r in enumerate(rs):
        c = col[label(r)]
        sc = [num(s["scale"]) for s in r["geometry"]["sets"] if s["m"] == 2]
        ang = [num(s["angle_deg"]) for s in r["geometry"]["sets"] if s["m"] == 2]
        jitter = np.linspace(-0.25, 0.25, len(sc))
        a.plot(i + jitter, sc, "o", ms=2.5, color=c, alpha=0.7)
        a.plot([i - 0.3, i + 0.3], [np.mean(sc)] * 2, color="k", lw=1.2)
        b.semilogy(i + jitter, np.maximum(ang, FLOOR), "o", ms=2.5, color=c, alpha=0.7)
    a.axhline(pred, color="k", ls=":", lw=0.9, label=f"predicted c_2 = {pred:.3f}")
    a.set(ylabel="||h_S|| / ||mean_(k in S) h_k||, pairs S", title="Tag-wise scale of each pair (bar: mean)")
    b.set(ylabel="angle(h_S, h_j + h_k) (deg)", title=f"Tag-wise angle of each pair (below {FLOOR:g}: at {FLOOR:g})")
    for ax in (a, b):
        ax.set_xticks(range(len(names)), [_ticks(n) for n in names], fontsize=7)
    a.legend()
    return fig


BUILDERS[NAME] = networks
FIGURES[NAME] = fig_networks
CAPTIONS.update({
    "networks_epochs": "Certified gap, NC metrics, c_2 and accuracy against epochs for each minibatch run "
                       "(solid: free UFM features; dashed: the MLP); log axes start at the smallest value drawn.",
    "networks_trend": "The MLP's measured c_2 (dots: seeds; squares: mean +- sd) against the theorem's c_2 at the "
                      "same lambdas, over lam_H, per multiplicity profile.",
})

__all__ = ["networks", "fig_networks", "findings", "label", "row", "first_epoch_below"]

"""The "networks" section of the report: minibatch training on the UFM and a real network's
last layer against the certified UFM optimum (records of the shipped spec ``networks``).

Rendering only: every number comes from the records (the runs' summaries and their
per-epoch histories). Importing this module registers its builder and figures in
:data:`ufm.report.regimes.BUILDERS` and :data:`ufm.report.figures.FIGURES`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .figures import COLORS, FIGURES, plt
from .regimes import BUILDERS, Built
from .tables import FLOOR, Rec, Table, fmt, num, prob

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


def colors(recs: list[Rec]) -> dict[str, Any]:
    """One colour per run (by label), the same in every figure of the section."""
    return {label(r): COLORS[i % len(COLORS)] for i, r in enumerate(ordered(recs))}


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


def networks(recs: list[Rec]) -> Built:
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
    return [final, conv], findings(rs)


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
        out.append("Minibatch training of the free features (batch 64) ends at relative certified gap "
                   + ", ".join(f"{fmt(r['summary']['certificate']['rel_gap'], 'r')} ({label(r)})" for r in ufm_runs)
                   + " after " + fmt(ufm_runs[0]["summary"]["nit"], "i") + " epochs; first epoch below 1e-2: "
                   + ", ".join(f"{fmt(first_epoch_below(r, 'rel_gap', 1e-2), 'i')} ({label(r)})" for r in ufm_runs)
                   + " (— = never).")
    for name in ("MLP, learned W", "MLP, fixed ETF W"):
        r = by.get(name)
        if r is None:
            continue
        x = row(r)
        out.append(f"{name}: relative certified gap {fmt(x['rel_gap'], 'r')} after {x['epochs']} epochs; "
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
    rs = [r for r in ordered(recs) if r["cell"]["solver"] != "lbfgs" and r.get("history")]
    col = colors(recs)
    panels = [("rel_gap", "relative certified gap", True), ("nc1", "NC1", True), ("nc2_w", f"NC2_W (below {FLOOR:g}: drawn at {FLOOR:g})", True),
              ("nc3", "NC3", True), ("scale_2", "tag-wise scale c_2", False)]
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.6), constrained_layout=True)
    pred = num(rs[0]["summary"]["theory"]["c"].get("2")) if rs else float("nan")
    for r in rs:
        name, h = label(r), r["history"]
        for ax, (key, title, log) in zip(axes.flat, panels):
            e, y = _series(r, key)
            if log:  # residuals below the floor are float64 noise: drawn at the floor
                ax.semilogy(e, np.maximum(np.abs(y), FLOOR), color=col[name], lw=1.3, label=name)
            else:
                ax.plot(e, y, color=col[name], lw=1.3, label=name)
            ax.set_title(title)
        if "test_acc" in h:
            for key, ls, what in (("test_acc", "-", "test"), ("train_acc", "--", "train")):
                e, y = _series(r, key)
                axes.flat[5].plot(e, y, color=col[name], lw=1.2, ls=ls, label=f"{name}: {what}")
    line = axes.flat[4].axhline(pred, color="k", lw=0.9, ls=":")
    axes.flat[4].set_ylim(1.0, max(2.2, 1.2 * pred))
    axes.flat[4].legend([line], [f"predicted c_2 = {pred:.3f}"], loc="lower right")
    axes.flat[5].set(title="top-m accuracy (networks)", ylim=(0, 1.02))
    axes.flat[5].legend(loc="lower right")
    for ax in axes.flat:
        ax.set_xlabel("epoch")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
    p = prob(recs[0])
    fig.suptitle(f"Minibatch training on the UFM and an MLP on multi-label digits (K={p['K']}, N={p['N']}, "
                 f"d={p['d']}): against epochs")
    return {"networks_epochs": fig, "networks_cm": _fig_cm(ordered(recs))}


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

__all__ = ["networks", "fig_networks", "findings", "label", "row", "first_epoch_below"]

"""The "deadclass" section: below d = K-1, the best of many random starts per cell, how many
starts reached the best and the second-best value, the dead classifier rows of the best
point and the certified bracket [D, best F] (rendering only: every number is read from the
records of the shipped spec ``deadclass``, whose cells carry every start's F).

Words follow the bracket: a cell is a "minimum" only where the certified lower bound D
meets the best F (relative gap below :data:`CLOSED`); elsewhere it is "best found".
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..metrics import DEAD_CLASS_TOL  # noqa: E402
from .tables import FLOOR, Rec, Table, fmt, group, nanmax, prob, profile_of, span, upto  # noqa: E402

Built = tuple[list[Table], list[str]]
COLORS = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]
TIE = 1e-9  # two starts reached the same value when their F agree to this relative tolerance
CLOSED = FLOOR  # (F - D)/F below this: the bracket is closed, the best point is the global minimum
TARGET = 0.99  # the start count must reach the best value with this probability on the hard cells
ANGLE_TOL = 0.1  # degrees: a classifier's min pairwise angle "matches" a spherical code to this

# Best known spherical codes beyond the closed cases (largest min angle of K unit vectors in R^3,
# the Tammes problem; Schuette & van der Waerden 1951, Robinson 1961; Sloane's tables).
TAMMES_3 = {7: 77.8695, 8: 74.8585, 9: 70.5288, 10: 66.1468, 11: 63.4349, 12: 63.4349}


def best_code_angle(K: int, d: int) -> float | None:
    """Largest minimum pairwise angle (degrees) of K unit vectors in R^d, where it is known:
    the simplex (K <= d+1), the regular polygon (d = 2), Rankin's orthoplex bound 90 degrees
    (d+2 <= K <= 2d), the Tammes problem in R^3 (K <= 12); None elsewhere."""
    if d == 1:
        return 180.0 if K <= 2 else 0.0
    if K <= d + 1:
        return math.degrees(math.acos(-1.0 / (K - 1)))
    if d == 2:
        return 360.0 / K
    if K <= 2 * d:
        return 90.0
    if d == 3:
        return TAMMES_3.get(K)
    return None


def start_values(r: Rec) -> np.ndarray:
    """F of every finite start of a multi-start record (the record's own F if it has one start)."""
    st = r.get("starts") or [{"fun": r["summary"]["objective"]}]
    f = np.asarray([s["fun"] for s in st if s["fun"] is not None], dtype=float)
    return f[np.isfinite(f)]


def hits(values: np.ndarray) -> tuple[float, int, float | None, int]:
    """``(best, starts reaching it, second-best value or None, starts reaching that)`` within :data:`TIE`."""
    best = float(values.min())
    at_best = values <= best + TIE * abs(best)
    rest = values[~at_best]
    if rest.size == 0:
        return best, int(at_best.sum()), None, 0
    second = float(rest.min())
    return best, int(at_best.sum()), second, int((rest <= second + TIE * abs(second)).sum())


def reach_probability(n_hit: int, total: int, n: int) -> float:
    """Chance that ``n`` of the ``total`` recorded starts, drawn without replacement, include
    one of the ``n_hit`` that reached the best value: ``1 - C(total - n_hit, n) / C(total, n)``."""
    if n >= total:
        return 1.0 if n_hit > 0 else 0.0
    return 1.0 - math.comb(total - n_hit, n) / math.comb(total, n)


def dead_rows(W: np.ndarray) -> tuple[int, float]:
    """Dead rows (norm <= DEAD_CLASS_TOL x the largest) and the smallest live row's relative norm."""
    n = np.linalg.norm(W, axis=1)
    rel = n / n.max() if n.max() > 0 else n
    live = rel[rel > DEAD_CLASS_TOL]
    return int((rel <= DEAD_CLASS_TOL).sum()), float(live.min()) if live.size else float("nan")


def min_live_angle(W: np.ndarray) -> float:
    """Smallest angle (degrees) between two live classifier rows."""
    n = np.linalg.norm(W, axis=1)
    U = W[n > DEAD_CLASS_TOL * n.max()]
    U = U / np.linalg.norm(U, axis=1, keepdims=True)
    C = np.clip(U @ U.T, -1.0, 1.0)
    iu = np.triu_indices(len(U), 1)
    return float(np.degrees(np.arccos(C[iu].max()))) if iu[0].size else float("nan")


def _starts(r: Rec) -> int:
    return int(r["cell"]["options"].get("starts", 1))


def split(recs: list[Rec]) -> tuple[list[Rec], list[Rec]]:
    """(main cells, start-count curve cells): the curve cells have more starts than the main ones."""
    main_n = min(_starts(r) for r in recs)
    return [r for r in recs if _starts(r) == main_n], [r for r in recs if _starts(r) > main_n]


def _key(r: Rec) -> tuple:
    return (prob(r)["K"], profile_of(r), r["params"]["mu_ratio"])


def cell_rows(recs: list[Rec]) -> list[dict[str, Any]]:
    main, _ = split(recs)
    rows = []
    for (K, prof, x), rs in group(main, _key).items():
        lower = max(r["summary"]["certificate"]["lower_bound"] for r in rs)  # min C: valid for every d
        for r in sorted(rs, key=lambda r: prob(r)["d"]):
            d = prob(r)["d"]
            vals = start_values(r)
            best, n_best, second, n_second = hits(vals)
            W = np.asarray(r["arrays"]["W"], dtype=float)
            dead, live = dead_rows(W)
            width = (best - lower) / abs(best)
            # generalized neural collapse: single labels, K > d+1 (d = 1 is degenerate: rows on a line)
            code = best_code_angle(K - dead, d) if prof == "1:1" and K > d + 1 and d >= 2 else None
            ang = min_live_angle(W)
            rows.append({"K": K, "profile": prof, "x": x, "d": d, "starts": len(vals), "F": best, "hits": n_best,
                         "second": second, "hits2": n_second,
                         "rel2": (second - best) / abs(best) if second is not None else None,
                         "D": lower, "width": width, "closed": width < CLOSED,
                         "word": "minimum" if width < CLOSED else "best found", "dead": dead, "live": live,
                         "angle": ang, "code": code,
                         "match": (abs(ang - code) <= ANGLE_TOL) if code is not None else None})
    return rows


def curve_rows(recs: list[Rec], ns: tuple[int, ...] = (1, 4, 16, 64, 256)) -> list[dict[str, Any]]:
    _, curve = split(recs)
    rows = []
    for r in sorted(curve, key=lambda r: (*_key(r), prob(r)["d"])):
        vals = start_values(r)
        best, n_best, second, n_second = hits(vals)
        row = {"K": prob(r)["K"], "profile": profile_of(r), "x": r["params"]["mu_ratio"], "d": prob(r)["d"],
               "starts": len(vals), "F": best, "hits": n_best, "rate": n_best / len(vals), "second": second,
               "hits2": n_second}
        row.update({f"p{n}": reach_probability(n_best, len(vals), n) for n in ns if n <= len(vals)})
        need = next((n for n in range(1, len(vals) + 1) if reach_probability(n_best, len(vals), n) >= TARGET), None)
        row["need"] = need
        rows.append(row)
    return rows


def _cell_name(y: dict) -> str:
    return f"K={y['K']} {y['profile']} mu/mu_crit={y['x']:g} d={y['d']}"


def deadclass(recs: list[Rec]) -> Built:
    rows = cell_rows(recs)
    crv = curve_rows(recs)
    main_starts = max(y["starts"] for y in rows)
    t = Table("deadclass", f"Every cell d = 1..K-1 from {main_starts} random starts: best value, hit counts, "
              "dead rows and the certified bracket", [
                  ("K", "K", "i"), ("profile", "profile", "s"), ("mu/mu_crit", "x", "g"), ("d", "d", "i"),
                  ("best F", "F", "g"), ("starts at best", "hits", "i"), ("second-best F", "second", "g"),
                  ("starts at second", "hits2", "i"), ("certified lower bound D", "D", "g"),
                  ("bracket (F - D)/F", "width", "r"), ("verdict", "word", "s"), ("dead rows", "dead", "i"),
                  ("smallest live row / largest", "live", "g"), ("min angle of rows (deg)", "angle", "g"),
                  ("best spherical code of the live rows (deg)", "code", "g")], rows,
        note=f"Starts reach the same value when their F agree to {TIE:g} (relative). D is the certified lower bound "
             "of the convex relaxation, the largest over the d of the same problem (it does not depend on d); "
             f"'minimum' only where (F - D)/F < {CLOSED:g}, else 'best found'. A row is dead at norm <= "
             f"{DEAD_CLASS_TOL:g} x the largest (ufm.metrics.DEAD_CLASS_TOL). Spherical code: the largest minimum "
             "angle of K - (dead rows) unit vectors in R^d where known (single-label designs with K > d+1 >= 3 only).")
    ns = [n for n in (1, 4, 16, 64, 256) if all(f"p{n}" in y for y in crv)]
    t2 = Table("deadclass_starts", "Hard cells from 256 starts: the chance that n starts reach the best value", [
        ("K", "K", "i"), ("profile", "profile", "s"), ("mu/mu_crit", "x", "g"), ("d", "d", "i"),
        ("best F", "F", "g"), ("starts at best", "hits", "i"), ("second-best F", "second", "g"),
        ("starts at second", "hits2", "i")] + [(f"P(reach), n={n}", f"p{n}", "g") for n in ns]
        + [(f"n for P >= {TARGET:g}", "need", "i")], crv,
        note="P(reach) = 1 - C(256 - h, n)/C(256, n): n of the recorded starts drawn without replacement include one "
             "of the h that reached the best value.")
    return [t, t2], findings(rows, crv)


def findings(rows: list[dict], crv: list[dict]) -> list[str]:
    below = [y for y in rows if y["d"] < y["K"] - 1]
    top = [y for y in rows if y["d"] == y["K"] - 1]
    S = max(y["starts"] for y in rows)
    out = []
    if crv:
        worst = min(crv, key=lambda y: y["rate"])
        need = max(y["need"] or math.inf for y in crv)
        ok = need <= S
        out.append(
            f"Start count from the curve: on {len(crv)} hard cells with {crv[0]['starts']} starts each the best value "
            f"is reached by {span([y['hits'] for y in crv], 'i')} starts (per-start rate "
            f"{span([y['rate'] for y in crv])}); at the rarest ({_cell_name(worst)}, {worst['hits']} of "
            f"{worst['starts']}) n starts reach it with probability "
            + ", ".join(f"{fmt(worst[f'p{n}'])} (n={n})" for n in (1, 4, 16, 64) if f"p{n}" in worst)
            + f". Reaching it with probability >= {TARGET:g} on every hard cell takes "
            + (f"{need} starts" if math.isfinite(need) else "more starts than recorded")
            + f"; the spec uses {S}" + (", enough." if ok else ", too few: raise it."))
    closed = [y for y in rows if y["closed"]]
    open_ = [y for y in rows if not y["closed"]]
    closed_below = [y for y in closed if y["d"] < y["K"] - 1]
    out.append(
        f"{len(rows)} cells ({len({(y['K'], y['profile'], y['x']) for y in rows})} problems x d = 1..K-1), each "
        f"from {S} starts. The certified bracket closes in {len(closed)} cells (a proven global minimum, "
        f"(F - D)/F {upto(nanmax(y['width'] for y in closed)) if closed else '—'}): "
        + (f"all {len(top)} at d = K-1" if all(y["d"] == y["K"] - 1 for y in closed) and len(closed) == len(top)
           else f"{len(closed) - len(closed_below)} of the {len(top)} at d = K-1 and {len(closed_below)} below")
        + f". In the other {len(open_)} the bracket stays open ((F - D)/F = "
        + (f"{span([y['width'] for y in open_], 'r')}" if open_ else "—")
        + "): the d-independent bound cannot see the missing dimensions, so these are best found values, "
        "not proven minima.")
    if below:
        few = sorted(below, key=lambda y: (y["hits"], y["K"], y["d"]))
        single = [y for y in below if y["hits"] == 1]
        multi = [y for y in below if y["second"] is not None]
        out.append(
            f"Below K-1 the best value was reached by {span([y['hits'] for y in below], 'i')} of {S} starts "
            f"(median {int(np.median([y['hits'] for y in below]))}); fewest: "
            + "; ".join(f"{_cell_name(y)}: {y['hits']}" for y in few[:3])
            + f". {len(single)} cells rest on a single start. {len(multi)} of {len(below)} cells have a second "
            f"value (reached by {span([y['hits2'] for y in multi], 'i') if multi else '—'} starts), "
            f"{span([y['rel2'] for y in multi], 'r') if multi else '—'} above the best (relative).")
    fixed = next((y for y in rows if (y["K"], y["profile"], y["x"], y["d"]) == (8, "1:2,2:1", 0.1, 3)), None)
    if fixed is not None:
        out.append(
            f"Cell K=8 1:2,2:1 mu/mu_crit=0.1 d=3 ({fixed['word']}): F = {fixed['F']:.5f} from {fixed['hits']} of "
            f"{fixed['starts']} starts, second-best {fixed['second']:.5f} ({fixed['hits2']} start"
            f"{'s' if fixed['hits2'] != 1 else ''}); bracket "
            f"[{fixed['D']:.5f}, {fixed['F']:.5f}].")
    with_dead = [y for y in below if y["dead"] > 0]
    nonmono = [k for k, rs in group(rows, lambda y: (y["K"], y["profile"], y["x"])).items()
               if any(a["dead"] < b["dead"] for a, b in zip(sorted(rs, key=lambda y: y["d"]),
                                                            sorted(rs, key=lambda y: y["d"])[1:]))]
    out.append(
        f"Dead rows at the best point (norm <= {DEAD_CLASS_TOL:g} x the largest) in {len(with_dead)} of "
        f"{len(below)} cells below K-1" + (": " + "; ".join(f"{_cell_name(y)}: {y['dead']}" for y in with_dead)
                                           if with_dead else "")
        + f". At d = K-1 {'no row dies' if all(y['dead'] == 0 for y in top) else 'rows die too'}. The count is "
        f"not monotone in d for {len(nonmono)} of the {len({(y['K'], y['profile'], y['x']) for y in rows})} problems; "
        f"the smallest live row is {fmt(min(y['live'] for y in below))} of the largest, so the verdict does not "
        "depend on the tolerance.")
    cmp_ = [y for y in below if y["code"] is not None]
    if cmp_:
        match = [y for y in cmp_ if y["match"]]
        deadm = [y for y in match if y["dead"] > 0]
        miss = [y for y in cmp_ if not y["match"]]
        out.append(
            "Against generalized neural collapse (Jiang et al., ICML 2024: for K > d+1 single-label classes the "
            "classifier rows form a spherical code, maximising the smallest pairwise angle): in "
            f"{len(match)} of the {len(cmp_)} single-label cells with 2 <= d < K-1 the live rows' smallest angle "
            f"equals the best known code of as many vectors in R^d (to {ANGLE_TOL:g} deg)"
            + (f", {len(deadm)} of them after rows died (" + ", ".join(
                f"{_cell_name(y)}: {y['K'] - y['dead']} live rows at {y['angle']:.2f} deg" for y in deadm) + ")"
               if deadm else "")
            + (f"; it falls short in {len(miss)}: " + "; ".join(
                f"{_cell_name(y)}: {y['angle']:.2f} vs {y['code']:.2f} deg" for y in miss) if miss else "")
            + ". The UFM here keeps weight decay and a bias where GNC normalises and lets the temperature "
            "vanish, so agreement is not implied.")
    return out


def fig_deadclass(recs: list[Rec]) -> dict[str, Any]:
    rows = cell_rows(recs)
    xs = sorted({y["x"] for y in rows})
    Ks = sorted({y["K"] for y in rows})
    profs = sorted({y["profile"] for y in rows})
    fig, axes = plt.subplots(3, len(xs), figsize=(5.2 * len(xs), 10), constrained_layout=True, squeeze=False)
    for col, x in enumerate(xs):
        for (K, prof), rs in group([y for y in rows if y["x"] == x], lambda y: (y["K"], y["profile"])).items():
            rs = sorted(rs, key=lambda y: y["d"])
            kw = {"color": COLORS[Ks.index(K)], "marker": "osD"[profs.index(prof) % 3],
                  "ls": "-" if prof == profs[0] else ("--" if prof == profs[1] else ":"), "label": f"K={K} {prof}"}
            d = [y["d"] for y in rs]
            axes[0, col].plot(d, [y["dead"] for y in rs], alpha=0.8, **kw)
            axes[1, col].plot(d, [y["hits"] / y["starts"] for y in rs], alpha=0.8, **kw)
            op = [y for y in rs if y["d"] < y["K"] - 1]  # at d = K-1 the bracket closes (every cell, a finding)
            axes[2, col].plot([y["d"] for y in op], [y["width"] for y in op], alpha=0.8, **kw)
        a, b, c = axes[:, col]
        a.set(title=f"mu/mu_crit = {x:g}: dead rows at the best point", xlabel="d", ylabel="dead classifier rows")
        a.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        b.set(title=f"mu/mu_crit = {x:g}: starts at the best value", xlabel="d",
              ylabel="starts at best / starts", ylim=(0, 1.05))
        c.set(title=f"mu/mu_crit = {x:g}: open certified brackets, d < K-1", xlabel="d",
              ylabel="(best F - D) / best F")
        c.set_yscale("log")
        for ax in (a, b, c):
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.legend(fontsize=6.5, ncol=3)
    fig.suptitle("Below d = K-1 (colour: K; line and marker: multiplicity mix)")
    return {"deadclass": fig}

"""``ufm threshold``: the mu at which rows of W merge or vanish, or W = H = 0, as a certified bracket."""

from __future__ import annotations

import argparse
from typing import Any

from ..exceptions import UFMError
from .common import add_design_args, design_from_args, gap_text, parse_float, pos_int, print_json


def _classes(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected class indices like 3,4; got {text!r}") from None
    return out


def add(sub: Any) -> None:
    p = sub.add_parser(
        "threshold", help="the mu at which rows of W merge or vanish, or W = H = 0 (certified bracket)",
        description="The threshold mu* = sqrt(lam_W lam_H) from which the global minimiser has the "
        "property: merge (rows i and j of W equal), vanish (row i of W zero), trivial (W = 0, H = 0). "
        "Prints the bracket [lo, hi] (the property fails at lo and holds at hi, both ends certified "
        "global minimisers) and the method: the closed form (trivial; merge of exchangeable classes) or bisection. lam_W / lam_H = "
        "--lam-ratio (lam_W = mu sqrt(r), lam_H = mu / sqrt(r)); mu* does not depend on it. Exit "
        "status 0 only when both ends are certified. Derivations: docs/thresholds.md.")
    p.add_argument("kind", choices=["merge", "vanish", "trivial"])
    add_design_args(p)
    p.add_argument("--classes", type=_classes, default=None, help="i,j for merge; i for vanish (0-based)")
    p.add_argument("--lam-ratio", type=parse_float, default=1.0, dest="lam_ratio",
                   help="r = lam_W / lam_H of the solves (default 1)")
    p.add_argument("--lam-b", type=parse_float, default=0.0, dest="lam_b",
                   help="bias decay (>= 0; default 0: a free bias)")
    p.add_argument("--no-bias", action="store_true", help="fix b = 0 (no bias variable)")
    p.add_argument("--d", type=pos_int, default=None, help="feature dimension of the solves (default K)")
    p.add_argument("--rtol", type=parse_float, default=1e-6,
                   help="relative width (hi - lo)/hi of the bracket (default 1e-6)")
    p.add_argument("--method", choices=["auto", "closed-form", "bisection"], default="auto",
                   help="auto (default): the closed form where there is one (trivial), else bisection")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..thresholds import threshold

    design = design_from_args(args)
    if args.classes is None and args.kind != "trivial":
        raise UFMError(f"threshold {args.kind} needs --classes ({'i,j' if args.kind == 'merge' else 'i'}).")
    res = threshold(args.kind, design, classes=args.classes, lam_ratio=args.lam_ratio, lam_b=args.lam_b,
                    bias=not args.no_bias, d=args.d, rtol=args.rtol, method=args.method)
    out = res.to_dict()
    if args.json:
        print_json(out)
    else:
        lo, hi = res.bracket
        cls = ",".join(map(str, res.classes))
        what = {"merge": f"rows {cls} of W equal", "vanish": f"row {cls} of W zero",
                "trivial": "W = 0, H = 0"}[res.kind]
        print(f"{design.describe()}: {res.kind} ({what})")
        print(f"  mu*        {res.mu:.12g}   ({res.method})")
        print(f"  bracket    [{lo:.12g}, {hi:.12g}]   (relative width {(hi - lo) / hi:.1e})")
        for end in ("lo", "hi"):
            e = res.details[end]
            print(f"  {end}         mu = {e['mu']:.12g}: property {'holds' if e['holds'] else 'fails'}, "
                  f"F = {e['F']:.15g}, certified gap {gap_text(e['rel_gap'])}, distance {e['distance']:.2e}; "
                  f"{e['reason']}")
        print(f"  {'CERTIFIED' if res.certified else 'NOT certified'} ({res.details['solves']} solves, "
              f"{res.details['seconds']:.2f} s)")
    return 0 if res.certified else 1

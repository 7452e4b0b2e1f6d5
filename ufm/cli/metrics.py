"""``ufm metrics``: every NC metric (and the certificate) of features in an .npz file."""

from __future__ import annotations

import argparse
from typing import Any

from ..exceptions import UFMError
from .common import add_memory_arg, apply_memory_arg, parse_float, print_json


def add(sub: Any) -> None:
    from ..layout import LAYOUT

    p = sub.add_parser("metrics", help="every NC metric (and the certificate) for features in an .npz file",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Measure features exported from any trained network. Layout of the "
                       ".npz file (samples in any order; ``ufm solve --save`` writes it):\n\n" + LAYOUT)
    p.add_argument("file", nargs="?", help=".npz with H (d, N), Y (K, N), W (K, d), optional b (K,)")
    p.add_argument("--lam-W", type=parse_float, dest="lam_W", help="weight decay of W (with --lam-H: certificate)")
    p.add_argument("--lam-H", type=parse_float, dest="lam_H", help="weight decay of H, on the sum over samples")
    p.add_argument("--lam-b", type=parse_float, dest="lam_b", help="bias decay (default 0 with a bias)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--center", choices=["classes", "samples"], default="classes",
                   help="centre of NC2_H and NC3: the unweighted mean of the class means (classes, the "
                        "default) or the count-weighted mean (samples, the paper's official code); they "
                        "differ under imbalanced single-label classes (docs/theory.md)")
    p.add_argument("--make-example", metavar="OUT.npz", help="write the small example file and exit")
    add_memory_arg(p)


def _g(v: float | None, spec: str) -> str:
    """A number as ``spec``; an undefined one (None: nan in the metrics' JSON) as 'nan'."""
    return "nan" if v is None else format(v, spec)


def run(args: argparse.Namespace) -> int:
    from ..features import load_npz, make_example, measure

    apply_memory_arg(args)
    if args.make_example:
        make_example(args.make_example)
        print(f"wrote {args.make_example}")
        return 0
    if not args.file:
        raise UFMError("ufm metrics needs an .npz file (or --make-example OUT.npz).")
    data = load_npz(args.file)
    lam = {k: getattr(args, k) if getattr(args, k) is not None else data.get(k) for k in ("lam_W", "lam_H", "lam_b")}
    out = measure(data["W"], data["H"], data["b"], data["Y"], **lam, center=args.center)
    if args.json:
        print_json(out)
        return 0
    m = out["metrics"]
    print(f"{args.file}: K={out['K']}, d={out['d']}, N={out['N']}, {out['design']}")
    for key in ("nc1", "nc1_all", "nc2_w", "nc2_h", "nc3", "nc3_dual", "bias", "decoding_accuracy", "norm_W", "norm_H"):
        v = m[key]
        print(f"  {key:<18} {'nan' if v is None else f'{v:.6g}'}")
    for mm, tw in m["tagwise"].items():
        print(f"  tag-wise m={mm:<7} angle {_g(tw['angle_deg'], '.4g')} deg, scale {_g(tw['scale'], '.6g')}"
              + (f" (predicted c_{mm} = {tw['predicted_scale']:.6g})" if tw["predicted_scale"] is not None else ""))
    if "certificate" in out:
        c = out["certificate"]
        print(f"  F                  {_g(out['objective']['F'], '.12g')}")
        print(f"  lower bound        {_g(c['lower_bound'], '.12g')}  (certified gap {_g(c['gap'], '.3g')}, "
              f"relative {_g(c['rel_gap'], '.3g')})")
        print(f"  theorem            {out['theory']['regime']}: {out['theory']['reason']}")
    else:
        print("  (give --lam-W and --lam-H for the objective and the certificate)")
    return 0

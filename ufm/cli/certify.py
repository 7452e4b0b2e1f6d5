"""``ufm certify``: the certified lower bound and gap of a saved (W, H, b)."""

from __future__ import annotations

import argparse
from typing import Any

from ..exceptions import UFMError
from .common import (
    DESIGN_FILE_HELP,
    DESIGN_HELP,
    add_memory_arg,
    apply_memory_arg,
    parse_float,
    pos_int,
    print_json,
    rel_tol,
)


def add(sub: Any) -> None:
    from ..layout import LAYOUT

    p = sub.add_parser(
        "certify", help="certified lower bound and gap of a saved solution (any d, any source)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Certify a candidate (W, H, b) -- from `ufm solve --save`, another solver or a "
        "trained network's last layer -- with the closed-form dual bound D <= min F (docs/theory.md section 5). "
        "Exit status 0 when the relative gap (F - D)/|F| is at most --tol, 1 otherwise, 2 on bad "
        "input. Layout of the .npz file (samples in any order):\n\n" + LAYOUT)
    p.add_argument("file", help=".npz with W (K, d), H (d, N), Y (K, N), optional b (K,) and lambdas")
    p.add_argument("--design", default=None, metavar="ITEMS",
                   help="the labels when the file has no Y (samples in the design's canonical order: sets "
                        "by size, then lexicographic, each repeated COUNT times); with Y, it must match. "
                        + DESIGN_HELP)
    p.add_argument("--design-file", default=None, dest="design_file", metavar="FILE",
                   help=DESIGN_FILE_HELP + " (as --design)")
    p.add_argument("--K", type=pos_int, default=None, help="number of classes for --design (default: rows of W)")
    p.add_argument("--lam-W", type=parse_float, dest="lam_W", help="weight decay of W (overrides the file)")
    p.add_argument("--lam-H", type=parse_float, dest="lam_H", help="weight decay of H, on the sum over samples")
    p.add_argument("--lam-b", type=parse_float, dest="lam_b", help="bias decay (default: the file's, else 0)")
    p.add_argument("--no-bias", action="store_true", help="ignore any b in the file (model without bias)")
    p.add_argument("--loss", default="pal", choices=["pal", "pal-normalized"])
    p.add_argument("--tol", type=rel_tol, default=1e-6,
                   help="relative gap (F - D)/|F| accepted as certified, in [0, 1) (default 1e-6)")
    add_memory_arg(p)
    p.add_argument("--rigorous", action="store_true",
                   help="prove the bracket D <= min F <= F with bounded rounding errors (interval "
                        "arithmetic, ufm/certificate_rigorous.py); F is then an upper bound")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="cuda: the pass over the K x N logits (softmax and loss) on a GPU array library "
                        "(CuPy, PyTorch or JAX), the dual point from its (K, G) label-set sums in numpy; "
                        "cpu (the default) the numpy path. Not with --rigorous")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..certificate import certify
    from ..features import load_npz
    from ..problem import UFMProblem
    from ..summary import theory_dict
    from ..theory import predict

    rigorous = getattr(args, "rigorous", False)
    device = getattr(args, "device", None)
    if device == "cuda":  # before any work: a conflict, or no GPU library or device, is one line
        if rigorous:
            raise UFMError("--rigorous bounds numpy's rounding on the CPU; it does not run on --device cuda: "
                           "drop one of them.")
        from ..xp.devices import namespace

        namespace("cuda")
    apply_memory_arg(args)
    from .common import design_from_args

    data = load_npz(args.file, need_Y=False)
    if args.K is None:
        args.K = int(data["W"].shape[0])
    given = design_from_args(args, required=False)
    lam = {k: getattr(args, k) if getattr(args, k) is not None else data.get(k) for k in ("lam_W", "lam_H", "lam_b")}
    lam_W, lam_H = lam["lam_W"], lam["lam_H"]
    if lam_W is None or lam_H is None:
        missing = " or ".join(k for k in ("lam_W", "lam_H") if lam[k] is None)
        raise UFMError(f"{args.file} stores no {missing}; give --lam-W and --lam-H "
                       "(the certificate depends on the weight decays).")
    b = None if args.no_bias else data["b"]
    design, order = _design(args, data, given)
    W = data["W"]
    problem = UFMProblem(design, int(W.shape[1]), lam_W, lam_H,
                         0.0 if lam["lam_b"] is None else lam["lam_b"], bias=b is not None, loss=args.loss)
    cert = certify(problem, W, data["H"][:, order], b, rigorous=rigorous, device=device)
    pred = predict(problem)
    certified = cert.rel_gap <= args.tol
    out = {"file": args.file, "problem": problem.to_dict() | {"description": problem.describe(), "N": problem.N},
           "certificate": cert.to_dict(), "certified": certified, "tol": args.tol, "theory": theory_dict(pred)}
    if args.json:
        print_json(out)
    else:
        print(f"{args.file}: {problem.describe()}")
        print(f"  F            {cert.objective:.15g}")
        print(f"  lower bound  {cert.lower_bound:.15g}   (D <= min F for every d)")
        print(f"  gap          {cert.gap:.3e}   (relative {cert.rel_gap:.3e})")
        if rigorous:
            print(f"  rigorous     proved: {cert.lower_bound!r} <= min F <= {cert.objective!r} "
                  f"(rounding errors bounded; F at the file's point in "
                  f"[{getattr(cert, 'objective_lower', None)!r}, {cert.objective!r}])")
        print(f"  theorem      {pred.regime}: {pred.reason}")
        if pred.value is not None:
            print(f"  min F        {pred.value:.15g}   (theorem)")
        print(f"  {'CERTIFIED globally optimal' if certified else 'NOT certified'} to relative gap "
              f"{args.tol:g}" + ("" if certified else
                                 " (not optimal, or d below the rank where the relaxation is tight)"))
    return 0 if certified else 1


def _design(args: argparse.Namespace, data: dict, given: Any) -> tuple[Any, Any]:
    """The design and the sample order: from the file's Y, from --design, or both when they agree."""
    import numpy as np

    from ..designs import from_indicator

    if data["Y"] is None:
        if given is None:
            raise UFMError(f"{args.file} has no Y (labels); give them with --design or --design-file.")
        if given.N != data["H"].shape[1]:
            raise UFMError(f"the design has N = {given.N} samples but H in {args.file} has "
                           f"{data['H'].shape[1]} columns.")
        return given, np.arange(given.N)
    design, order = from_indicator(data["Y"])
    if given is not None and (design.K, design.sets, design.counts) != (given.K, given.sets, given.counts):
        raise UFMError(f"the design given does not match Y in {args.file} ({design.describe()}); "
                       "drop --design, or fix it.")
    return design, order

"""``ufm train``: train a small network on multi-label digits; export its last layer per epoch."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import nonneg_int, parse_float, pos_int, print_json, rel_tol

TOL = 0.05  # relative certified gap of the final last layer for exit 0 (150 default epochs: 0.019, fixed ETF 0.03)
DEFAULTS = {"K": 10, "profile": "1:30,2:6", "d": 16, "lam_W": 5e-3, "lam_H": 5e-4, "lam_b": 1e-2}


def add(sub: Any) -> None:
    p = sub.add_parser(
        "train", help="train an MLP with the PAL loss on multi-label digits; compare with the UFM optimum",
        description="Train a small MLP (JAX) with the pick-all-label loss on multi-label 8x8 digits "
        "(scikit-learn's bundled set; a sample with two labels is the pixel-wise maximum of two digits), "
        "with the feature penalty lam_H and the decays of the UFM, and compare its last layer with the "
        "UFM optimum at the same lambdas and label design. Writes OUT/epoch_NNN.npz (the `ufm metrics` "
        "layout, with the lambdas) and OUT/summary.json. Needs `pip install 'ufm[nn]'`.")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (new, empty or from ufm train)")
    p.add_argument("--fresh", action="store_true",
                   help="replace the earlier ufm train run in --out (its listed files only); without it such a "
                        "folder is refused")
    p.add_argument("--epochs", type=pos_int, default=150, help="epochs (>= 1; default %(default)s)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the initialisation and the batches")
    p.add_argument("--data-seed", type=nonneg_int, default=0, dest="data_seed", help="seed of the split and the images")
    p.add_argument("--fixed-classifier", nargs="?", const=True, default=False, dest="fixed_classifier",
                   metavar="etf[:SCALE]",
                   help="freeze W: alone, at the theorem's optimal simplex ETF; 'etf:SCALE' at a simplex "
                        "ETF with rows of norm SCALE (default 1), as `ufm solve --fixed-classifier`")
    p.add_argument("--K", type=pos_int, default=DEFAULTS["K"], help="classes: the digits 0..K-1 (<= 10)")
    p.add_argument("--profile", default=DEFAULTS["profile"],
                   help="balanced design 'm:n_m' with m in {1, 2} (default %(default)s)")
    p.add_argument("--d", type=pos_int, default=DEFAULTS["d"], help="feature dimension (default %(default)s)")
    p.add_argument("--lam-W", type=parse_float, default=DEFAULTS["lam_W"], dest="lam_W")
    p.add_argument("--lam-H", type=parse_float, default=DEFAULTS["lam_H"], dest="lam_H",
                   help="feature penalty on the sum over training samples (default %(default)s)")
    p.add_argument("--lam-b", type=parse_float, default=DEFAULTS["lam_b"], dest="lam_b")
    p.add_argument("--weight-decay", type=parse_float, default=5e-4, dest="weight_decay",
                   help="decay of the backbone's parameters (default %(default)s)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="adam",
                   help="adam (default) or sgd with momentum 0.9")
    p.add_argument("--lr", type=parse_float, default=None, help="learning rate (default 3e-3)")
    p.add_argument("--batch-size", type=pos_int, default=64, dest="batch_size")
    p.add_argument("--lr-schedule", choices=["constant", "cosine", "step"], default="cosine", dest="lr_schedule")
    p.add_argument("--tol", type=rel_tol, default=TOL,
                   help="exit 0 only when the final last layer's relative certified gap is at most this "
                        "(default %(default)s; the default run ends near 0.02), else 1")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace) -> int:
    import warnings

    from ..designs import balanced
    from ..exceptions import ConvergenceWarning, UFMError
    from ..networks.export import compare, epoch_arrays, prepare_out, write_json, write_npz
    from ..problem import UFMProblem
    from ..solvers import solve

    if args.lr is not None and not args.lr > 0:
        raise UFMError(f"--lr must be > 0 (a step <= 0 climbs the loss); got {args.lr!r}.")
    problem = UFMProblem(balanced(args.K, args.profile), args.d, args.lam_W, args.lam_H, args.lam_b)
    if isinstance(args.fixed_classifier, str):  # a bad etf:SCALE fails here, before the output folder
        from ..fixed import parse_fixed

        parse_fixed(args.fixed_classifier, problem.K, problem.d)
    folder = prepare_out(args.out, fresh=args.fresh)
    out = folder.path
    lam = {"lam_W": problem.lam_W, "lam_H": problem.lam_H, "lam_b": problem.lam_b}

    def on_epoch(epoch: int, state: dict) -> None:
        if epoch % 100 == 0:  # list the next files in one manifest save, not one save per file
            folder.reserve(f"epoch_{e:03d}.npz" for e in range(epoch, min(epoch + 100, args.epochs + 1)))
        write_npz(folder, f"epoch_{epoch:03d}.npz", **epoch_arrays(state, lam))

    opts: dict[str, Any] = {k: getattr(args, k) for k in ("epochs", "data_seed", "fixed_classifier",
                                                          "weight_decay", "optimizer", "batch_size",
                                                          "lr_schedule", "progress")}
    if args.lr is not None:
        opts["lr"] = args.lr
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed schedule is the plan, not a failure
            result = solve(problem, "network", rng=args.seed, on_epoch=on_epoch, **opts)
    except BaseException:
        folder.lock.__exit__()  # type: ignore[union-attr]
        raise
    summary = {"problem": problem.to_dict() | {"description": problem.describe(), "N": problem.N},
               "options": {**{k: v for k, v in opts.items() if k != "progress"}, "seed": args.seed},
               "status": result.status.name, "epochs": result.nit, "steps": result.extra["steps"],
               **compare(problem, result), "history": result.history}
    summary["history"].pop("time", None)  # wall times: the rest of the file is reproducible
    write_json(folder, "summary.json", summary)
    folder.lock.__exit__()  # type: ignore[union-attr]
    rel_gap = summary["optimum"]["rel_gap"]
    close = rel_gap is not None and rel_gap <= args.tol
    code = 130 if result.status.name == "INTERRUPTED" else 0 if close else 1
    if args.json:
        print_json({k: v for k, v in summary.items() if k not in ("history", "measured")})
        return code
    o, acc = summary["optimum"], summary["accuracy"]
    clf = "fixed ETF" if args.fixed_classifier else "learned"
    print(f"{problem.describe()}; {clf} classifier, {result.nit} epochs -> {out}/")
    print(f"  F {o['F']:.6g}   theory min F {o['min_F_theory']:.6g}   certified gap {o['gap']:.3g} "
          f"(relative {o['rel_gap']:.3g})")
    nc = summary["nc"]
    print("  " + "   ".join(f"{k} {nc[k]:.3g}" for k in ("nc1", "nc2_w", "nc2_h", "nc3")))
    for mm, c in summary["c_m"].items():
        print(f"  c_{mm} measured {c['measured']:.4g}, predicted {c['predicted']:.4g} "
              f"(relative error {c['rel_error']:.3g}; angle {c['angle_deg']:.3g} deg)")
    print(f"  accuracy (top-m) train {acc['train_acc']:.3f}, test {acc['test_acc']:.3f};  nearest prototype "
          f"train {acc['train_proto_acc']:.3f}, test {acc['test_proto_acc']:.3f}")
    if result.status.name == "INTERRUPTED":  # Ctrl-C: the epochs done are written, the summary says so
        print(f"  interrupted after {result.nit} epochs; their files and the summary are in {out}/")
        return 130
    if not close:
        print(f"ufm train: the final last layer's relative certified gap {rel_gap:.3g} is above --tol "
              f"{args.tol:g} (not at the UFM optimum); train longer (--epochs) or raise --tol", file=sys.stderr)
    return code

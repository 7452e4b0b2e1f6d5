"""The ``ufm`` command: solve, certify, verify, sweep, report, metrics.

Each subcommand is a module of this package with ``add(subparsers)`` and ``run(args) -> int``,
registered in ``COMMANDS``. Bad input exits with status 2 and one line ``ufm: error: ...``,
no traceback (``UFM_DEBUG=1`` shows one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from ..exceptions import SolverError, UFMError
from .common import Parser

# packages outside the core install (setup.cfg), and the extra that brings each
EXTRAS = {"matplotlib": "report", "pandas": "report", "joblib": "report", "jax": "nn",
          "optax": "nn", "sklearn": "nn", "dask": "distributed", "distributed": "distributed",
          "pytest": "test", "hypothesis": "test"}

COMMANDS = ("solve", "verify", "sweep", "report", "metrics", "certify", "train", "threshold")


EPILOG = """exit status (every subcommand):
  0    the run did what was asked and every claim holds (solve: converged and verified or
       certified; verify: every claim; certify: certified within --tol; sweep: every cell ran;
       report: every record rendered; metrics: measured)
  1    it ran to the end, but did not converge, a claim failed, nothing could be certified,
       a sweep cell failed or a record was skipped
  2    bad input or environment (arguments, files, permissions, size); one line on stderr
  130  interrupted (Ctrl-C); what was finished is kept
'verified' is true only when claims were checked and hold, false when one fails (the reason
is printed), null when there is nothing to claim. Details: README.md, section "Exit codes"."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ufm", description=__doc__.splitlines()[0] if __doc__ else None,
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"{__name__}.{name}").add(sub)
    return parser


def _quiet_stdout() -> None:
    """After a broken pipe (``ufm ... | head -1``): send what is left to /dev/null, quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - no real stdout
        pass


def _warning_line(message, category, filename, lineno, line=None) -> str:  # type: ignore[no-untyped-def]
    return f"ufm: warning: {_one_line(message if isinstance(message, Warning) else Warning(message))}\n"


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    warnings.formatwarning = _warning_line  # one line per warning, no source excerpt
    try:
        args = build_parser().parse_args(argv)
    except BrokenPipeError:  # --help into a closed pipe
        _quiet_stdout()
        return 0
    try:
        code = int(import_module(f"{__name__}.{args.command}").run(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        print("ufm: interrupted", file=sys.stderr)
        return 130
    except (UFMError, SolverError, FileNotFoundError) as exc:
        print(f"ufm: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("ufm: error: out of memory; use a smaller problem (or --max-memory to refuse it "
              "before allocating)", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # a package of an extra the light install left out
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            return _internal_error(exc)
        print(f"ufm: error: `ufm {args.command}` needs '{exc.name}', which the core install leaves "
              f"out: pip install -e '.[{extra}]' (or `make test`, which installs everything)",
              file=sys.stderr)
        return 2
    except OSError as exc:  # permissions, full disk, a folder that vanished
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"ufm: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line, the traceback on request
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    if os.environ.get("UFM_DEBUG"):
        raise exc
    print(f"ufm: internal error: {type(exc).__name__}: {_one_line(exc)} (please report it; "
          "UFM_DEBUG=1 shows the traceback)", file=sys.stderr)
    return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__

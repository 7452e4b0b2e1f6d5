"""``run_cli(argv, capsys)``: ``ufm``'s command line in-process, as the tests call it."""

from __future__ import annotations

from ufm.cli import main


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``ufm argv`` (argparse's own exits included)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse-level errors
        code = int(exc.code)
    out = capsys.readouterr()
    return code, out.out, out.err

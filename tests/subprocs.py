"""Helpers for tests that interrupt a ``ufm`` subprocess."""

from __future__ import annotations

import signal


def sigint_default() -> None:
    """``preexec_fn`` of a child the test will interrupt: SIGINT back to its default action.

    A shell starts background jobs with SIGINT ignored (POSIX, without job control), the
    child inherits that, and Python then installs no KeyboardInterrupt handler: a pytest
    run started with ``&`` made ``ufm solve`` ignore the test's SIGINT and run on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

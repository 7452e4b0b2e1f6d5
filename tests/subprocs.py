"""Helpers for tests that interrupt a ``ufm`` subprocess."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigint_default() -> Iterator[None]:
    """Start the children of this block with SIGINT at its default action.

    A shell starts background jobs with SIGINT ignored (POSIX, without job control); an
    ignored signal stays ignored across exec, and Python then installs no KeyboardInterrupt
    handler: a pytest run started with ``&`` made ``ufm solve`` ignore the test's SIGINT and
    run on. A handled signal is reset to its default at exec, so the test process handles it
    while it starts the child. (Not ``preexec_fn``: it forces ``fork``, which JAX, imported by
    other tests, warns about.)"""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)

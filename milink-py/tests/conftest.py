"""Fixtures every test module may use."""

import signal
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def ctrl_c_raises_keyboard_interrupt() -> Iterator[None]:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt in every test, whatever the parent process did.

    Python installs that handler only when SIGINT is not ignored at start, and a background
    job of a non-interactive shell starts with SIGINT ignored: the tests that send SIGINT to
    themselves would then wait for an interrupt that never comes. The handler found is put back
    afterwards.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

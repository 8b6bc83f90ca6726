"""The one switch for minigpt's engines: the fast second forms that sit beside the plain definitions.

Where speed needed a second form of something (BPE training and encoding, GELU, the decode step, the
training step split over worker processes in minigpt/parallel/team.py, ...), the plain definition stays in
the code, is what the chapter teaches, and is the oracle a test holds the engine to. The engines are on
by default. Turn them all off to run (and read) the definitions only:

    MINIGPT_ENGINES=0 minigpt train ...          # for a whole process
    with engines.disabled(): ...                 # for a block of code (tests compare both forms this way)

Each engine asks `engines.enabled()` at the point where it would take over, and says in its docstring
which definition it must equal and how much faster it is (measured).

What this file deliberately does not do: choose per engine (one switch is easier to reason about), or
hold any other setting.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_enabled = os.environ.get("MINIGPT_ENGINES", "1") != "0"


def enabled() -> bool:
    """True unless MINIGPT_ENGINES=0 or inside `disabled()`."""
    return _enabled


def set_enabled(on: bool) -> None:
    """Switch every engine on or off for the rest of the process."""
    global _enabled
    _enabled = bool(on)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run a block with the plain definitions only; the previous setting comes back afterwards."""
    before = _enabled
    set_enabled(False)
    try:
        yield
    finally:
        set_enabled(before)

"""nmkit's compiled CPU loops: ``numba.njit`` with one set of defaults, and a notice on the first compilation.

Machine code is cached on disk (``cache=True``): beside the module where the install can write, else in numba's
user-wide cache folder (or ``NUMBA_CACHE_DIR``), so a wheel installed read-only still compiles once per machine.
Loading the cache costs ~1 s per process; compiling, on the first run after an install or upgrade, costs tens of
seconds. numba broadcasts "numba:compile" only on a cache miss; :func:`on_first_compile` turns the first one in
a process into a call of the given function, so the CLI can say why it pauses instead of stalling silently.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

DEFAULTS = {"cache": True, "nogil": True, "boundscheck": False}
_notify: list[Callable[[], None]] = []  # at most one; emptied when it has been called


@functools.cache
def _listen() -> None:
    """Register the listener with numba, once (this module itself imports no numba: the CLI uses it too)."""
    from numba.core import event

    class FirstCompile(event.Listener):
        def on_start(self, event_) -> None:
            while _notify:
                _notify.pop()()

        def on_end(self, event_) -> None:
            pass

    event.register("numba:compile", FirstCompile())


def on_first_compile(notify: Callable[[], None] | None) -> None:
    """Call ``notify()`` before the first compilation (a cache miss) in this process; None cancels."""
    _notify.clear()
    if notify is not None:
        _notify.append(notify)


def njit(fn: Callable | None = None, **options) -> Callable:
    """``numba.njit`` with :data:`DEFAULTS` (options override them); as ``@njit`` or ``@njit(parallel=True)``."""
    import numba

    _listen()
    compile_ = numba.njit(**{**DEFAULTS, **options})
    return compile_ if fn is None else compile_(fn)

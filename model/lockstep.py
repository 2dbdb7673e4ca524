"""Run a blocking computation (e.g. scipy.optimize.least_squares) as a cancellable generator.

The computation runs in a thread in lockstep with the generator: it calls ``pause()`` from its
callbacks, the generator yields there (at most once per ``every_s`` seconds) while the thread waits,
and the thread continues on the next ``next()``. Only one side runs at a time, so the result is what
a direct call would give. Closing the generator makes the pending ``pause()`` raise, which unwinds
the computation before ``close()`` returns — so a cancel never leaves work running behind it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Stopped(BaseException):
    """Raised inside the computation when the generator is closed (BaseException: library code
    that catches Exception must not swallow it)."""


def lockstep(work: Callable[[Callable[[], None]], T], every_s: float = 0.0,
             report: R = None) -> Generator[R, None, T]:
    """Yield ``report`` at the ``pause()`` calls of ``work(pause)``, one at least ``every_s`` seconds
    after the last; return what ``work`` returns."""
    to_caller: queue.SimpleQueue = queue.SimpleQueue()
    to_worker: queue.SimpleQueue = queue.SimpleQueue()

    def pause() -> None:
        to_caller.put(("pause", None))
        if to_worker.get():
            raise _Stopped

    def body() -> None:
        try:
            to_caller.put(("done", work(pause)))
        except _Stopped:
            to_caller.put(("stopped", None))
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread and raised there
            to_caller.put(("error", error))

    thread = threading.Thread(target=body, name="lockstep", daemon=True)
    thread.start()
    finished = False
    last = time.perf_counter()
    try:
        while True:
            kind, value = to_caller.get()
            if kind != "pause":
                finished = True
                if kind == "error":
                    raise value
                return value
            if time.perf_counter() - last >= every_s:
                yield report
                last = time.perf_counter()
            to_worker.put(False)
    finally:
        if not finished:
            to_worker.put(True)
            thread.join()

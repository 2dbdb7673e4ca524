"""The one job runner: long work (solve, refine) as generator functions on a worker thread.

A job is a generator function that yields ``model.result.Progress`` and returns its result.
Cancel takes effect at the next yield (the generator is closed there, so its ``finally``
blocks run); the window stays responsive because only signals cross threads. In inline mode
(tests, scripted runs) the generator runs in the caller's thread with the same signals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from model.errors import InputError
from model.result import Progress

log = logging.getLogger(__name__)

JobFunction = Callable[..., Generator[Progress, None, Any]]


def describe_error(error: BaseException) -> str:
    """One line a user can read: the InputError text, or the exception type and first line."""
    if isinstance(error, InputError):
        return str(error)
    text = str(error).strip().splitlines()
    return f"internal error: {type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


class _Worker(QThread):
    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, function: JobFunction, args: tuple, kwargs: dict, cancel: threading.Event):
        super().__init__()
        self._function, self._args, self._kwargs, self._cancel = function, args, kwargs, cancel

    def run(self) -> None:
        _drive(self._function, self._args, self._kwargs, self._cancel,
               self.progress.emit, self.succeeded.emit, self.failed.emit, self.cancelled.emit)


def _drive(function, args, kwargs, cancel, on_progress, on_success, on_failure, on_cancel) -> None:
    try:
        generator = function(*args, **kwargs)
        while True:
            if cancel.is_set():
                generator.close()
                on_cancel()
                return
            try:
                step = next(generator)
            except StopIteration as stop:
                on_success(stop.value)
                return
            on_progress(step)
    except Exception as error:  # reported as one line in the window; the traceback goes to the log
        log.exception("job failed")
        on_failure(describe_error(error))


class JobRunner(QObject):
    """Runs one job at a time; signals carry the job's name so listeners can tell jobs apart."""

    started = Signal(str)
    progress = Signal(str, object)  # name, Progress
    finished = Signal(str, object)  # name, the generator's return value
    failed = Signal(str, str)  # name, one-line message
    cancelled = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, inline: bool = False, parent: QObject | None = None):
        super().__init__(parent)
        self.inline = inline
        self._name = ""
        self._cancel = threading.Event()
        # Workers stay referenced until their thread has ended: a QThread destroyed while
        # running aborts the process.
        self._workers: set[_Worker] = set()

    @property
    def busy(self) -> bool:
        return bool(self._name)

    @property
    def current(self) -> str:
        return self._name

    def submit(self, name: str, function: JobFunction, *args, **kwargs) -> None:
        if self.busy:
            raise RuntimeError(f"job {self._name!r} is still running")
        self._name = name
        self._cancel = threading.Event()
        self.busy_changed.emit(True)
        self.started.emit(name)
        if self.inline:
            _drive(function, args, kwargs, self._cancel, self._on_progress, self._on_success,
                   self._on_failure, self._on_cancel)
            return
        worker = _Worker(function, args, kwargs, self._cancel)
        worker.progress.connect(self._on_progress)
        worker.succeeded.connect(self._on_success)
        worker.failed.connect(self._on_failure)
        worker.cancelled.connect(self._on_cancel)
        worker.finished.connect(lambda: self._workers.discard(worker))
        self._workers.add(worker)
        worker.start()

    def cancel(self) -> None:
        """Ask the running job to stop at its next yield."""
        self._cancel.set()

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until every worker thread has ended (shutdown, tests); True when they have."""
        return all(worker.wait(timeout_ms) for worker in list(self._workers))

    def _on_progress(self, step: Progress) -> None:
        self.progress.emit(self._name, step)

    def _end(self) -> str:
        name, self._name = self._name, ""
        self.busy_changed.emit(False)
        return name

    def _on_success(self, value: object) -> None:
        self.finished.emit(self._end(), value)

    def _on_failure(self, message: str) -> None:
        self.failed.emit(self._end(), message)

    def _on_cancel(self) -> None:
        self.cancelled.emit(self._end())

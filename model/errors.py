"""The one exception type for bad user input."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Input that cannot be used, with a message a user can act on.

    The command line prints ``str(error)`` as one line and exits with status 2;
    the app shows it in the status area. ``source`` is the file (or argument)
    at fault, so every message names it.
    """

    def __init__(self, source: str | Path | None, problem: str):
        self.source = str(source) if source is not None else None
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)

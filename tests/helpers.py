"""Small functions the tests share (imported as `helpers`: pytest puts tests/ on sys.path)."""

from pathlib import Path


def written(folder: Path) -> list[str]:
    """Names of the files in ``folder``: what a command left behind."""
    return sorted(p.name for p in folder.iterdir())

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"


SHARED_DATA_ABSENT = "../shared/data absent"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA_ABSENT}: this test reads the shared measured data and structures")
    return SHARED_DATA


def pytest_terminal_summary(terminalreporter):
    """One line for the real-data tests a fresh clone skips, however many (-rs lists each)."""
    absent = [report for report in terminalreporter.stats.get("skipped", [])
              if isinstance(report.longrepr, tuple) and SHARED_DATA_ABSENT in report.longrepr[2]]
    if absent:
        terminalreporter.write_line(f"{len(absent)} test{'s' * (len(absent) != 1)} skipped: {SHARED_DATA_ABSENT} "
                                    f"(expected at {SHARED_DATA})")


@pytest.fixture(scope="session")
def rocksalt():
    """NaCl, Fm-3m, a = 5.64 Å: the smallest well-known structure with two elements."""
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="session")
def rocksalt_cif(rocksalt, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cif") / "nacl.cif"
    rocksalt.to(filename=str(path))
    return path


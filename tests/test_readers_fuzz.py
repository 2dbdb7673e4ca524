"""Bad input never escapes as anything but InputError: random bytes, truncations, odd numbers."""

from __future__ import annotations

import numpy as np
import pytest

from model.errors import InputError
from model.readers import read_patterns

EXTENSIONS = (".xy", ".xye", ".dat", ".csv", ".chi", ".gsa", ".fxye", ".xra", ".xrdml", ".raw",
              ".brml", ".ras", ".rasx", ".asc", ".uxd", ".cif", ".xy.gz", ".raw.bz2", ".cif.xz",
              ".unknown", "")
MAGICS = (b"RAW ", b"RAW2", b"RAW1.01", b"RAW4.00", b"RAW_1.06Powdat", b"PK\x03\x04",
          b"<xrdMeasurements>", b"*RAS_DATA_START\n*RAS_INT_START\n",
          b"data_x\nloop_\n_pd_meas_counts_total\n",
          b"title\nBANK 1 10 1 CONST 1000 2.5 0 0 STD\n", b"_FILEVERSION=2\n_DRIVE=COUPLED\n_2THETACOUNTS\n",
          b"*TYPE = Raw\n*BEGIN\n*START = 5\n*STEP = 0.1\n")


def loads_or_input_error(path) -> None:
    """The contract: a valid list of Patterns, or one InputError with a one-line message."""
    try:
        patterns = read_patterns(path)
    except InputError as error:
        assert "\n" not in str(error) and str(path) in str(error)
        return
    assert patterns and all(len(p) >= 2 for p in patterns)


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_random_bytes(tmp_path, ext):
    rng = np.random.default_rng(abs(hash(ext)) % 2**32)
    path = tmp_path / f"random{ext}"
    for size in (1, 7, 100, 5000):
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        loads_or_input_error(path)
    for magic in MAGICS:
        path.write_bytes(magic + rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
        loads_or_input_error(path)


def test_every_real_file_truncated(shared_data, tmp_path):
    files = [p for d in ("formats", "experimental") for p in sorted((shared_data / d).rglob("*"))
             if p.is_file() and p.suffix not in (".tsv", ".csv") or p.name == "single.csv"]
    assert len(files) >= 30
    for source in files:
        data = source.read_bytes()
        target = tmp_path / source.name
        for fraction in (0.001, 0.05, 0.5, 0.97):
            target.write_bytes(data[:max(1, int(len(data) * fraction))])
            loads_or_input_error(target)


@pytest.mark.parametrize("text", [
    "10 1e308\n11 1e308\n",          # huge but finite: loads
    "1e300 1\n2e300 2\n",             # 2θ beyond 180°
    "10 inf\n11 2\n",
    "-5 1\n10 2\n",
    "10 1\n",                         # a single point
    "# only a header\n",
    "10,20,30\n",                      # one row of many columns
])
def test_odd_numbers(tmp_path, text):
    path = tmp_path / "odd.xy"
    path.write_text(text)
    loads_or_input_error(path)


def test_empty_missing_and_directory(tmp_path):
    for ext in EXTENSIONS:
        empty = tmp_path / f"empty{ext}"
        empty.write_bytes(b"")
        with pytest.raises(InputError):
            read_patterns(empty)
    with pytest.raises(InputError, match="file not found"):
        read_patterns(tmp_path / "missing.xy")
    with pytest.raises(InputError, match="not a file"):
        read_patterns(tmp_path)


def test_absurd_sizes_are_refused_before_reading(tmp_path, monkeypatch):
    import bz2

    from model import readers

    monkeypatch.setattr(readers, "MAX_BYTES", 1000)
    big = tmp_path / "big.xy"
    big.write_text("10 1\n" * 400)
    bomb = tmp_path / "bomb.xy.bz2"
    bomb.write_bytes(bz2.compress(b"10 1\n" * 400))
    for path, problem in ((big, "larger than"), (bomb, "decompresses to more than")):
        with pytest.raises(InputError, match=problem):
            read_patterns(path)

"""Powder pattern files → Patterns, through a small registry of format readers.

Each format is a `Reader`: it says from the file name and first bytes whether it
can read a file (`sniff`), and reads it (`read`). `read_file` asks the readers
in `READERS` order; the first that claims the file wins. A file holds scans, or
(a CIF without a powder profile) a crystal structure, which the caller may
simulate (cmedgui.opening); `read_patterns` is for callers that want scans only.
Compressed files (.gz, .bz2, .xz) are decompressed in memory and sniffed by
their inner name. Every failure is one InputError naming the file.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from model.errors import InputError
from model.pattern import Pattern, Wavelength
from model.readers import (
    bruker_raw,
    cif,
    fairmat,
    gsas,
    rigaku_asc,
    rigaku_ras,
    stoe_raw,
    text,
    uxd,
    xrdml,
)
from model.readers.scan import describe_error

if TYPE_CHECKING:
    from pymatgen.core import Structure


@dataclass(frozen=True)
class Reader:
    """One file format.

    ``sniff(name, head)`` gets the lower-case file name (inner name for a
    compressed file) and the first bytes; ``read(source, data, wavelength)``
    gets the path to name in messages, the whole (decompressed) content and
    the caller's wavelength, which only formats that need one to make a 2θ
    pattern use (a Q-axis text file); it returns the scans, or the structure of
    a structure file.
    """

    name: str
    extensions: tuple[str, ...]
    sniff: Callable[[str, bytes], bool]
    read: Callable[[str, bytes, Wavelength | None], list[Pattern] | Structure]


def _content(magic: Callable[[bytes], bool]):
    return lambda name, head: magic(head)


def _extension_or_content(extension: str, magic: Callable[[bytes], bool]):
    return lambda name, head: name.endswith(extension) or magic(head)


def _extension(extension: str):
    return lambda name, head: name.endswith(extension)


def _own_axis(read: Callable[[str, bytes], list[Pattern] | Structure]):
    """A format whose files carry their own 2θ axis: the caller's wavelength is not needed."""
    return lambda source, data, wavelength: read(source, data)


# Order matters: binary magic numbers first, then marked text formats, plain columns last.
READERS: tuple[Reader, ...] = (
    Reader("bruker raw", (".raw",), _content(bruker_raw.sniff), _own_axis(bruker_raw.read)),
    Reader("stoe raw", (".raw",), _content(stoe_raw.sniff), _own_axis(stoe_raw.read)),
    Reader("brml", (".brml",), _extension(".brml"), _own_axis(fairmat.read_brml)),
    Reader("rasx", (".rasx",), _extension(".rasx"), _own_axis(fairmat.read_rasx)),
    Reader("xrdml", (".xrdml",), _extension_or_content(".xrdml", xrdml.sniff), _own_axis(xrdml.read)),
    Reader("rigaku ras", (".ras",), _extension_or_content(".ras", rigaku_ras.sniff),
           _own_axis(rigaku_ras.read)),
    Reader("rigaku asc", (".asc",), _content(rigaku_asc.sniff), _own_axis(rigaku_asc.read)),
    Reader("uxd", (".uxd",), _extension_or_content(".uxd", uxd.sniff), _own_axis(uxd.read)),
    Reader("gsas", (".gsa", ".gss", ".fxye", ".fxy", ".xra"), _content(gsas.sniff), _own_axis(gsas.read)),
    Reader("cif", (".cif",), _extension_or_content(".cif", cif.sniff), _own_axis(cif.read)),
    Reader("columns", text.EXTENSIONS, text.sniff, text.read),
)

_DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_SNIFF_BYTES = 4096
MAX_BYTES = 512 * 1024**2  # a powder scan is kilobytes to a few MB; beyond this it is not one


def file_filter() -> str:
    """Qt-style filter for File › Open, e.g. 'Powder patterns (*.xy *.xye ...)'."""
    extensions = dict.fromkeys(ext for reader in READERS for ext in reader.extensions)
    plain = " ".join(f"*{ext}" for ext in extensions)
    compressed = " ".join(f"*{ext}{zext}" for ext in extensions for zext in _DECOMPRESSORS)
    return f"Powder patterns ({plain} {compressed});;All files (*)"


def read_patterns(path: str | Path, wavelength: Wavelength | None = None) -> list[Pattern]:
    """Read every scan range in ``path``; ``wavelength`` overrides the file's (or fills it in).

    Raises InputError for anything that is not a readable powder pattern, a structure file included.
    """
    content = read_file(path, wavelength)
    if not isinstance(content, list):
        raise InputError(path, "holds a crystal structure, not a powder pattern")
    return content


def read_file(path: str | Path, wavelength: Wavelength | None = None) -> list[Pattern] | Structure:
    """Every scan range in ``path`` (``wavelength`` overrides the file's or fills it in), or the
    crystal structure of a structure file. Raises InputError for anything else."""
    source = str(path)
    name, data = _load(Path(path))
    head = data[:_SNIFF_BYTES]
    reader = next((r for r in READERS if r.sniff(name, head)), None)
    if reader is None:
        raise InputError(source, "not a recognised powder pattern format")
    try:
        patterns = reader.read(source, data, wavelength)
    except InputError:
        raise
    # Malformed files make the parsers (ours, zipfile, XML, fairmat) fail in many ways; the
    # user needs one line saying the file is unreadable, not the parser's traceback.
    except Exception as error:
        raise InputError(source, f"unreadable {reader.name} file ({describe_error(error)})") from error
    if not isinstance(patterns, list):  # a structure (pymatgen's): imported only by the readers that need it
        return patterns
    if not patterns:
        raise InputError(source, f"no scan data found in this {reader.name} file")
    if wavelength is not None:
        patterns = [p.with_wavelength(wavelength) for p in patterns]
    return patterns


def _load(path: Path) -> tuple[str, bytes]:
    """(lower-case inner file name, decompressed bytes) of a file."""
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "not a file")
    if path.stat().st_size > MAX_BYTES:
        raise InputError(path, f"file is larger than {MAX_BYTES // 1024**2} MB: not a powder pattern")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(path, f"cannot read file ({error.strerror})") from None
    name = path.name.lower()
    suffix = Path(name).suffix
    if suffix in _DECOMPRESSORS:
        try:  # read at most one byte past the limit, so a compression bomb cannot fill the memory
            with _DECOMPRESSORS[suffix](io.BytesIO(data)) as stream:
                data = stream.read(MAX_BYTES + 1)
        except (OSError, EOFError, ValueError, lzma.LZMAError) as error:
            raise InputError(path, f"corrupt {suffix[1:]} compressed file ({describe_error(error)})") \
                from None
        name = name[: -len(suffix)]
        if len(data) > MAX_BYTES:
            raise InputError(path, f"decompresses to more than {MAX_BYTES // 1024**2} MB: not a powder pattern")
    if not data.strip():
        raise InputError(path, "file is empty")
    return name, data


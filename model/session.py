"""Session files: everything on screen (patterns, elements, settings, solutions, fit, maps) in one file.

A session is a zip archive holding ``session.json`` (format name, version and the state as tagged
JSON) and one ``arrays/N.npy`` per NumPy array (read with allow_pickle=False). Loading is safe:
only the dataclasses named in TYPES are built, from their fields, so their own checks run, and
pymatgen structures are rebuilt from lattice, species and coordinates, never from class names
found in the file. A file is written atomically; a damaged one (truncated, garbage, another
version) raises one InputError naming the file and what is wrong, and nothing is returned.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.core.periodic_table import get_el_sp

from model.density import Density
from model.errors import InputError
from model.files import atomic_write
from model.fourier import MapPeak
from model.instrument import Instrument
from model.pattern import Pattern, Provenance, Wavelength
from model.result import Fit, Parameter, RefinementReport, Reflection, Site, SolveResult

FORMAT = "cmedgui-session"
VERSION = 1
SUFFIX = ".cmedgui"
STATE = "session.json"


@dataclass
class Session:
    """What the window shows: patterns (the current one, its excluded 2θ regions in degrees, the
    x unit and intensity scaling), the element picker's states and formula, the sample settings
    (wavelength box, crystal system, device), the solutions (the current one), the structure and
    density (map) on screen, and the parameter groups ticked for the next refinement."""

    patterns: list[Pattern] = field(default_factory=list)
    current_pattern: int = -1
    excluded: list[tuple[float, float]] = field(default_factory=list)
    x_unit: str = "2theta"
    scaling: str = "linear"
    elements: dict[str, str] = field(default_factory=dict)
    formula: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    results: list[SolveResult] = field(default_factory=list)
    current_result: int = -1
    structure: Structure | None = None
    density: Density | None = None
    free: list[str] = field(default_factory=list)


TYPES = {cls.__name__: cls for cls in (Session, Pattern, Provenance, Wavelength, SolveResult, Site, Fit, Reflection,
                                        Parameter, RefinementReport, Instrument, Density, MapPeak)}


def save_session(path: str | Path, session: Session) -> None:
    """Write ``session`` to ``path`` (atomically)."""
    arrays: list[np.ndarray] = []
    state = {"format": FORMAT, "version": VERSION, "session": _encode(session, arrays)}
    try:
        with atomic_write(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(STATE, json.dumps(state))
            for index, array in enumerate(arrays):
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                archive.writestr(f"arrays/{index}.npy", buffer.getvalue())
    except OSError as error:
        raise InputError(path, f"cannot write the session: {error.strerror or error}") from None


def load_session(path: str | Path) -> Session:
    """The session in ``path``, built completely before it is returned; InputError if damaged."""
    try:
        with zipfile.ZipFile(path) as archive:
            state = json.loads(archive.read(STATE))
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise InputError(path, "not a cmedgui session file")
            if state.get("version") != VERSION:
                raise InputError(path, f"session version {state.get('version')!r}: this cmedgui reads version {VERSION}")
            session = _decode(state["session"], archive)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except InputError as error:
        if error.source == str(path):
            raise
        raise InputError(path, f"damaged session: {error.problem}") from None
    except zipfile.BadZipFile:
        raise InputError(path, "not a cmedgui session (not a zip archive, or truncated)") from None
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, EOFError, OSError, zlib.error) as error:
        raise InputError(path, f"damaged session: {type(error).__name__}: {error}".splitlines()[0]) from None
    if not isinstance(session, Session):
        raise InputError(path, "damaged session: no session state in it")
    return session


def _encode(value: Any, arrays: list[np.ndarray]) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {"__array__": len(arrays) - 1}
    if isinstance(value, Structure):
        return {"__structure__": {
            "lattice": _encode(value.lattice.matrix, arrays),
            "species": [[[str(sp), float(amount)] for sp, amount in site.species.items()] for site in value],
            "frac_coords": _encode(value.frac_coords, arrays),
            "properties": {k: _encode(np.asarray(v, dtype=float), arrays) for k, v in value.site_properties.items()
                           if _numeric(v)},  # e.g. biso; text labels a CIF may carry are not state
        }}
    if dataclasses.is_dataclass(value) and type(value).__name__ in TYPES:
        fields = {f.name: _encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value) if f.init}
        return {"__type__": type(value).__name__, "fields": fields}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, arrays), _encode(v, arrays)] for k, v in value.items()]}
    return str(value)  # a reader's metadata of another type: kept as text


def _decode(value: Any, archive: zipfile.ZipFile) -> Any:
    if isinstance(value, list):
        return [_decode(v, archive) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return np.load(io.BytesIO(archive.read(f"arrays/{int(value['__array__'])}.npy")), allow_pickle=False)
    if "__tuple__" in value:
        return tuple(_decode(v, archive) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_decode(k, archive): _decode(v, archive) for k, v in value["__dict__"]}
    if "__structure__" in value:
        state = value["__structure__"]
        species = [{get_el_sp(symbol): amount for symbol, amount in site} for site in state["species"]]
        properties = {k: _decode(v, archive).tolist() for k, v in state["properties"].items()}
        return Structure(Lattice(_decode(state["lattice"], archive)), species, _decode(state["frac_coords"], archive),
                         site_properties=properties or None)
    if "__type__" in value:
        cls = TYPES.get(value["__type__"])
        if cls is None:
            raise ValueError(f"unknown object {value['__type__']!r}")
        return cls(**{k: _decode(v, archive) for k, v in value["fields"].items()})
    raise ValueError("an untagged object")


def _numeric(values: list) -> bool:
    try:
        np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return False
    return True

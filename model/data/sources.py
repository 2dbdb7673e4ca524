"""Where candidate training structures come from, each labelled by its source.

- ``real``: a real, ordered crystal of ../shared/data/real (AMCSD, Materials Project, OQMD;
  ``real_rows``) in its conventional standard cell;
- ``prototype``: an AFLOW prototype (the library shipped in pymatgen) as published;
- ``substitution``: a real structure or an AFLOW prototype with its elements substituted
  (at least one is always replaced) by pymatgen's data-mined substitution probabilities (same
  oxidation state, so charge balance is kept) or, for intermetallics, by a neighbouring metal;
  volume rescaled by Σr³ of the radii;
- ``pyxtal``: a random symmetric crystal from pyxtal on a Wyckoff combination observed in the
  Materials Project (pyxtal's spg_num_wps_mp table), 1–40 atoms in the conventional cell;
- ``cif``: a user's CIF file (Materials Project / COD download) or a CIF string of a
  Materials-Project-style CSV.

The evaluation structures (../shared/data/structures and ../shared/data/experimental) are never
templates, and no target may share their structure type (``evaluation_types``).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import json
import lzma
import signal
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyxtal
from pymatgen.analysis.prototypes._data import AFLOW_PROTOTYPE_LIBRARY
from pymatgen.analysis.structure_prediction.substitution_probability import (
    SubstitutionProbability,
)
from pymatgen.core import Element, Lattice, Species, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pyxtal.symmetry import Group
from pyxtal.tolerance import Tol_matrix

from model.data.prototype import framework, structure_type
from model.data.sanity import MIN_DISTANCE_FRACTION
from model.data.systems import (
    CRYSTAL_SYSTEMS,
    SYMPREC,
    crystal_system_code,
    spacegroups,
)
from model.errors import InputError
from model.structure import load_structure

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EVALUATION_FOLDERS = (SHARED_DATA / "structures", SHARED_DATA / "experimental")
MAX_PYXTAL_ATOMS = 40
MAX_SPECIES = 4
# pyxtal retries placements for minutes on some crowded Wyckoff sets; those draws are dropped.
# (0.5 s: the slowest 10 % of draws, which cost half of pyxtal's time and fail 40 % of the time).
PYXTAL_TIME_LIMIT_S = 0.5
_TIMEOUT_RETRY_S = 0.02
_ANIONS = ("O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N", "P", "As", "H", "C")
# Ordinary elements for random chemistry: H–Bi without noble gases and radioactive Tc, Pm.
_ELEMENTS = tuple(e.symbol for e in Element if e.Z <= 83 and not e.is_noble_gas and e.symbol not in ("Tc", "Pm"))
_METALS = tuple(s for s in _ELEMENTS if Element(s).is_metal)
_CATIONS = tuple(s for s in _ELEMENTS if s not in _ANIONS and any(o > 0 for o in Element(s).common_oxidation_states))


@dataclass(frozen=True)
class Candidate:
    """A structure before sanity checks, with its source and where it came from (template, file)."""

    structure: Structure
    source: str
    origin: str


@dataclass(frozen=True)
class Template:
    """A real structure type to substitute on: its name (AFLOW label or shared file), system."""

    name: str
    structure: Structure
    system: str


def _spacegroup(structure: Structure) -> int:
    return SpacegroupAnalyzer(structure, symprec=SYMPREC).get_space_group_number()


@functools.cache
def aflow_templates() -> tuple[Template, ...]:
    """The AFLOW prototype library of pymatgen (288 ordered structure types)."""
    out = []
    for entry in AFLOW_PROTOTYPE_LIBRARY:
        structure = entry["snl"].structure
        name = entry["tags"]["aflow"]
        out.append(Template(name, structure, CRYSTAL_SYSTEMS[crystal_system_code(_spacegroup(structure))]))
    return tuple(out)


@functools.cache
def evaluation_structures() -> tuple[Structure, ...]:
    """The shared evaluation structures (empty where ../shared/data is absent)."""
    out = []
    for folder in EVALUATION_FOLDERS:
        for path in sorted(folder.rglob("*.cif")) if folder.is_dir() else ():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    out.append(load_structure(path))
                except InputError:
                    continue  # a file the reader refuses cannot be a target either
    return tuple(out)


@functools.cache
def evaluation_keys() -> frozenset[tuple[str, int]]:
    """(reduced formula, space group) of every shared evaluation structure: never a training target."""
    return frozenset((s.composition.reduced_formula, _spacegroup(s)) for s in evaluation_structures())


@functools.cache
def evaluation_types() -> frozenset[str]:
    """Structure types (model.data.prototype.framework) of the shared evaluation structures:
    no target, template or prototype of a build may have one of them."""
    types = set()
    for structure in evaluation_structures():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                types.add(framework(structure_type(SpacegroupAnalyzer(structure, symprec=SYMPREC))))
            except ValueError:  # disordered or inconsistent: it has no type to block
                continue
    return frozenset(types)


def real_rows(folder: str | Path, systems: tuple[str, ...]) -> tuple[dict, ...]:
    """Rows of the ``*.jsonl.xz`` files of a folder (format of ../shared/data/real/README.md)
    whose crystal system is requested, in file order."""
    files = sorted(Path(folder).glob("*.jsonl.xz"))
    if not files:
        raise InputError(folder, "no *.jsonl.xz files of real structures in this folder")
    rows = []
    for path in files:
        try:
            with lzma.open(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    if row["crystal_system"] in systems:
                        rows.append(row)
        except (OSError, lzma.LZMAError, json.JSONDecodeError, KeyError) as exc:
            raise InputError(path, f"not a JSON-lines file of structures ({exc})") from None
    return tuple(rows)


def real_structure(row: dict) -> Candidate:
    structure = Structure(Lattice(row["lattice"]), row["species"], row["frac_coords"])
    return Candidate(structure, "real", row["id"])


def real_template(row: dict) -> Template:
    return Template(row["id"], real_structure(row).structure, row["crystal_system"])


def templates_by_system(systems: tuple[str, ...]) -> dict[str, tuple[Template, ...]]:
    """AFLOW prototypes of each system (those of an evaluation type are rejected as targets)."""
    return {system: tuple(t for t in aflow_templates() if t.system == system) for system in systems}


def preload(systems: tuple[str, ...]) -> None:
    """Load every table once (seconds), before worker processes fork and share them."""
    templates_by_system(systems)
    evaluation_keys()
    evaluation_types()
    _substitution_probability()
    _wyckoff_combinations()
    for system in systems:
        for sg in spacegroups(system):
            _wyckoff_table(sg)


def prototype(template: Template) -> Candidate:
    return Candidate(template.structure.copy(), "prototype", template.name)


def substitution(template: Template, rng: np.random.Generator) -> Candidate | None:
    """Replace each element with probability 0.7 (at least one), keeping oxidation states."""
    structure = template.structure
    elements = [e.symbol for e in structure.composition.elements]
    counts = [structure.composition[e] for e in elements]
    states = charge_balanced_states(elements, counts)
    replace = rng.random(len(elements)) < 0.7
    replace[rng.integers(len(elements))] = True
    mapping: dict[str, str] = {}
    radius_ratio_num = radius_ratio_den = 0.0
    taken = {e for e, r in zip(elements, replace) if not r}
    for element, count, state, do in zip(elements, counts, states or [None] * len(elements), replace):
        new = element
        if do:
            options = [o for o in _substitutes(element, state) if o[0] not in taken]
            if not options:
                return None
            weights = np.array([w for _, w in options])
            new = options[rng.choice(len(options), p=weights / weights.sum())][0]
        taken.add(new)
        mapping[element] = new
        radius_ratio_num += count * _radius(new, state) ** 3
        radius_ratio_den += count * _radius(element, state) ** 3
    out = structure.copy()
    out.replace_species(mapping)
    out.scale_lattice(structure.volume * radius_ratio_num / radius_ratio_den)
    return Candidate(out, "substitution", template.name)


def charge_balanced_states(elements: list[str], counts: list[float]) -> tuple[int, ...] | None:
    """Common oxidation states (one per element) with zero total charge, or None (e.g. metals)."""
    if all(Element(e).is_metal for e in elements) or len(elements) > 5:
        return None
    choices = [Element(e).common_oxidation_states or (0,) for e in elements]
    for states in itertools.product(*choices):
        if abs(sum(s * c for s, c in zip(states, counts))) < 1e-6 and any(s < 0 for s in states):
            return states
    return None


@functools.cache
def _substitution_probability() -> SubstitutionProbability:
    return SubstitutionProbability()


@functools.cache
def _substitutes(element: str, state: int | None) -> tuple[tuple[str, float], ...]:
    """(element, weight) that may take ``element``'s place: same oxidation state ranked by the
    substitution probability of Hautier et al. (2011); otherwise (metals, no oxidation state)
    elements of the same kind (metal or not) in the same or a neighbouring group, equally."""
    if state is not None and state != 0:
        model = _substitution_probability()
        source = Species(element, state)
        if source in model.species:
            out = tuple((s.symbol, model.cond_prob(source, s)) for s in sorted(model.species)
                        if s.oxi_state == state and s.symbol != element and s.symbol in _ELEMENTS)
            if out:
                return out
    here = Element(element)
    pool = _METALS if here.is_metal else _ELEMENTS
    return tuple((s, 1.0) for s in pool if s != element and abs(Element(s).group - here.group) <= 1)


def _radius(element: str, state: int | None) -> float:
    """Ionic radius (Å) for an ion where tabulated, else the atomic radius."""
    if state:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing table entries fall back below
            radius = Species(element, state).ionic_radius
        if radius:
            return float(radius)
    return float(Element(element).atomic_radius or 1.5)


@functools.cache
def _wyckoff_combinations() -> dict[int, tuple[tuple[tuple[int, ...], float], ...]]:
    """Per space group: (Wyckoff indices, weight) seen in the Materials Project, ≤ 40 atoms."""
    path = Path(pyxtal.__file__).parent / "database" / "spg_num_wps_mp.csv"
    table: dict[int, list] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if int(row["n_atoms"]) <= MAX_PYXTAL_ATOMS:
                indices = tuple(int(i) for i in row["wps"].split("-"))
                # sqrt flattens the dominance of a few very common combinations
                table.setdefault(int(row["spg"]), []).append((indices, float(row["count"]) ** 0.5))
    return {sg: tuple(rows) for sg, rows in table.items()}


@functools.cache
def _wyckoff_table(sg: int) -> tuple[tuple[str, int, int], ...]:
    """(label such as "4a", multiplicity, free parameters) in pyxtal's order (0 = general)."""
    return tuple((f"{w.multiplicity}{w.letter}", w.multiplicity, int(w.get_dof()))
                 for w in Group(sg).Wyckoff_positions)


def _observed_wyckoff_set(sg: int, rng: np.random.Generator) -> tuple[int, ...]:
    rows = _wyckoff_combinations()[sg]
    weights = np.array([w for _, w in rows])
    return rows[rng.choice(len(rows), p=weights / weights.sum())][0]


def _random_wyckoff_set(sg: int, rng: np.random.Generator) -> tuple[int, ...]:
    """1–4 Wyckoff positions within MAX_PYXTAL_ATOMS, a position without free parameters at
    most once: for the space groups with no small cell in the Materials Project table."""
    table, chosen, budget = _wyckoff_table(sg), [], MAX_PYXTAL_ATOMS
    for _ in range(int(rng.integers(1, 5))):
        options = [i for i, (_, m, dof) in enumerate(table) if m <= budget and (dof or i not in chosen)]
        if not options:
            break
        chosen.append(options[rng.integers(len(options))])
        budget -= table[chosen[-1]][1]
    return tuple(chosen)


def random_crystal(system: str, rng: np.random.Generator) -> Candidate | None:
    """A pyxtal crystal in a random space group of ``system``; None when pyxtal cannot place it.

    The Wyckoff set is one observed in the Materials Project for that group (≤ 40 atoms) where
    the table has one, otherwise a random one, so every space group of the system is reachable.
    """
    sg = int(rng.choice(spacegroups(system)))
    indices = _observed_wyckoff_set(sg, rng) if sg in _wyckoff_combinations() else _random_wyckoff_set(sg, rng)
    if not indices:
        return None
    labels = [_wyckoff_table(sg)[i][0] for i in indices]
    n_species = int(rng.integers(1, min(len(labels), MAX_SPECIES) + 1))
    owner = np.concatenate([np.arange(n_species), rng.integers(0, n_species, len(labels) - n_species)])
    rng.shuffle(owner)
    sites = [[labels[i] for i in range(len(labels)) if owner[i] == s] for s in range(n_species)]
    counts = [sum(int(label[:-1]) for label in group) for group in sites]
    species = _random_chemistry(counts, rng)
    crystal = pyxtal.pyxtal()
    # pyxtal's "atomic" tolerance is 0.5·(r₁+r₂): scaled to the distance rule of model.data.sanity
    tolerance = Tol_matrix(prototype="atomic", factor=2 * MIN_DISTANCE_FRACTION)
    try:
        # pyxtal prints its complaints; they are failures reported by returning None here
        with warnings.catch_warnings(), _time_limit(PYXTAL_TIME_LIMIT_S), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            crystal.from_random(3, sg, species, counts, sites=sites, tm=tolerance,
                                random_state=int(rng.integers(2**31)))
    except Exception:  # noqa: BLE001 - pyxtal raises several types when a Wyckoff set cannot be placed
        return None
    if not crystal.valid:
        return None
    return Candidate(crystal.to_pymatgen(), "pyxtal", f"{sg}:{'+'.join(labels)}")


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise TimeoutError in the calling (main) thread after ``seconds`` of wall time.

    pyxtal swallows exceptions in bare ``except`` blocks and retries, so the alarm repeats every
    RETRY_S until a TimeoutError escapes.
    """
    def expire(signum, frame):
        raise TimeoutError(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, _TIMEOUT_RETRY_S)
    try:
        yield
    finally:
        while True:  # an alarm may still land while disarming: disarm again
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                break
            except TimeoutError:
                continue
        signal.signal(signal.SIGALRM, previous)


def _random_chemistry(counts: list[int], rng: np.random.Generator) -> list[str]:
    """Distinct elements for the species: charge-balanced cations + anions when a draw allows,
    otherwise (and for one species) metals, as in intermetallics and elements."""
    n = len(counts)
    if n > 1 and rng.random() < 0.7:
        for _ in range(20):
            n_anions = 1 if n < 3 or rng.random() < 0.7 else 2
            picks = list(rng.choice(_CATIONS, n - n_anions, replace=False)) + list(
                rng.choice(_ANIONS, n_anions, replace=False))
            picks = [str(picks[i]) for i in rng.permutation(n)]  # anions may sit on any Wyckoff set
            if len(set(picks)) == n and charge_balanced_states(picks, counts) is not None:
                return picks
    return [str(e) for e in rng.choice(_METALS, n, replace=False)]


def from_cif(path: Path) -> Candidate:
    """A CIF file as a candidate (its first structure, disorder left to the sanity rules)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Candidate(load_structure(path), "cif", path.name)


def csv_cifs(path: Path) -> list[tuple[str, str]]:
    """(id, CIF text) of each row of a Materials-Project-style CSV: a ``cif`` column and an id
    in ``material_id``, ``id`` or the row number."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"unreadable CSV ({exc})") from None
    if not rows or "cif" not in rows[0]:
        raise InputError(path, "a CSV of structures needs a 'cif' column (Materials Project style)")
    return [(r.get("material_id") or r.get("id") or f"row-{i}", r["cif"]) for i, r in enumerate(rows)]


def from_cif_text(name: str, text: str) -> Candidate:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Candidate(Structure.from_str(text, fmt="cif"), "cif", name)
    except Exception as exc:  # noqa: BLE001 - pymatgen's CIF parser fails in many ways
        raise InputError(name, f"not a readable CIF ({type(exc).__name__})") from None

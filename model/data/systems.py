"""Crystal systems: their names (the one integer code stored in data sets), their space-group
ranges, the lattice systems the solve indexes, and the symmetry tolerance used to detect them."""

from __future__ import annotations

from model.errors import InputError

# Index = the int8 ``crystal_system`` code stored per sample (0 triclinic .. 6 cubic).
CRYSTAL_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")

# The crystal systems the solve can be asked for, highest symmetry first, each with the lattice
# system its cell is indexed in (a trigonal cell in its hexagonal setting).
SOLVED_SYSTEMS = {"cubic": "cubic", "hexagonal": "hexagonal", "trigonal": "hexagonal", "tetragonal": "tetragonal",
                  "orthorhombic": "orthorhombic", "monoclinic": "monoclinic", "triclinic": "triclinic"}
# The lattice systems the indexer knows, highest symmetry first.
INDEXED_SYSTEMS = tuple(dict.fromkeys(SOLVED_SYSTEMS.values()))
# What the command line and the window offer: every system the solve knows, or all of them.
SOLVE_CHOICES = ("auto", *SOLVED_SYSTEMS)

# spglib tolerance (Å) of every symmetry detection in model.data: loose enough for CIF
# coordinates rounded to 3–4 decimals and for pyxtal's float positions.
SYMPREC = 0.01

# Last space-group number of each system, in the order of CRYSTAL_SYSTEMS.
_LAST_SPACEGROUP = (2, 15, 74, 142, 167, 194, 230)


def crystal_system_code(spacegroup: int) -> int:
    """The CRYSTAL_SYSTEMS index of an International Tables space-group number (1–230)."""
    for code, last in enumerate(_LAST_SPACEGROUP):
        if spacegroup <= last:
            return code
    raise ValueError(f"space group {spacegroup} is outside 1–230")


def spacegroups(system: str) -> range:
    """The space-group numbers of one crystal system."""
    code = CRYSTAL_SYSTEMS.index(system)
    first = _LAST_SPACEGROUP[code - 1] + 1 if code else 1
    return range(first, _LAST_SPACEGROUP[code] + 1)


def parse_systems(text: str) -> tuple[str, ...]:
    """Comma-separated crystal-system names (``"cubic,trigonal"``) in CRYSTAL_SYSTEMS order."""
    names = {name.strip().lower() for name in text.split(",") if name.strip()}
    unknown = sorted(names - set(CRYSTAL_SYSTEMS))
    if unknown or not names:
        raise InputError("--systems", f"unknown crystal system(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(CRYSTAL_SYSTEMS)}")
    return tuple(name for name in CRYSTAL_SYSTEMS if name in names)


def lattice_spacegroups(lattice_system: str) -> list[int]:
    """The space-group numbers of the crystal systems indexed in ``lattice_system`` (INDEXED_SYSTEMS)."""
    return sorted(n for system, lattice in SOLVED_SYSTEMS.items() if lattice == lattice_system
                  for n in spacegroups(system))


def solved_lattice_systems(choice: str) -> tuple[str, ...]:
    """The lattice systems indexed for a SOLVE_CHOICES entry."""
    if choice not in SOLVE_CHOICES:
        raise InputError(None, f"unknown crystal system {choice!r}: one of {', '.join(SOLVE_CHOICES)}")
    return INDEXED_SYSTEMS if choice == "auto" else (SOLVED_SYSTEMS[choice],)

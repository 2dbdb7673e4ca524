"""Space groups in their standard settings: Hall numbers and symmetry operations from spglib's
database, which pyxtal's Wyckoff tables (model.wyckoff) share.
"""

from __future__ import annotations

import functools

import spglib

from model import constraints


@functools.lru_cache(maxsize=1)
def standard_hall_numbers() -> dict[int, int]:
    """The first (standard-setting) Hall number of each space group, from spglib's database."""
    halls: dict[int, int] = {}
    for hall in range(1, 531):
        number = spglib.get_spacegroup_type(hall).number
        halls.setdefault(number, hall)
    return halls


@functools.cache
def standard_ops(number: int) -> constraints.SpaceGroupOps:
    """Operations of the standard setting of space group ``number`` (spglib database)."""
    hall = standard_hall_numbers()[number]
    symmetry = spglib.get_symmetry_from_database(hall)
    return constraints.SpaceGroupOps(symmetry["rotations"], symmetry["translations"], number,
                                     spglib.get_spacegroup_type(hall).international_short)

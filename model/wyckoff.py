"""Wyckoff positions: the orbit tables of a space group in its standard setting, the ways a number
of atoms fills them, and whether a composition fits a group at all.

An orbit is written as offsets plus a basis on its free coordinates (fractional), so that a search
can place its atoms by choosing the free coordinates alone. Positions without free coordinates hold
one element, so they are used at most once per structure.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pyxtal.symmetry import Group

MAX_SITES = 4  # orbits per element


@dataclass(frozen=True)
class Orbit:
    """A Wyckoff position: atom j sits at offsets[j] + basis[j] @ p for free coordinates p."""

    label: str  # multiplicity and letter, e.g. "4e"
    offsets: np.ndarray  # (m, 3)
    basis: np.ndarray  # (m, 3, dof)

    @property
    def dof(self) -> int:
        return self.basis.shape[2]


@functools.cache
def orbits(space_group: int) -> tuple[Orbit, ...]:
    """The Wyckoff positions of a space group in its standard setting (pyxtal's tables, whose
    operations map a general xyz onto the position; its free coordinates are the x, y or z the
    first operation uses)."""
    result = []
    for wp in Group(space_group):
        first = wp.ops[0].rotation_matrix
        free = [j for j in range(3) if np.any(first[:, j] != 0)]
        offsets = np.array([op.translation_vector for op in wp.ops], dtype=float)
        basis = np.array([op.rotation_matrix[:, free] for op in wp.ops], dtype=float).reshape(len(wp.ops), 3, len(free))
        result.append(Orbit(f"{wp.multiplicity}{wp.letter}", offsets, basis))
    return tuple(result)


def fillings(space_group: int, count: int, taken: frozenset[int] = frozenset()) -> list[tuple[int, ...]]:
    """Ways ``count`` atoms of one element fill Wyckoff positions (orbit indices, non-decreasing), at
    most MAX_SITES orbits, positions without free coordinates used once and not in ``taken``."""
    table = orbits(space_group)
    found: list[tuple[int, ...]] = []

    def extend(prefix: tuple[int, ...], first: int, left: int) -> None:
        if left == 0:
            found.append(prefix)
            return
        if len(prefix) == MAX_SITES:
            return
        for k in range(first, len(table)):
            if table[k].offsets.shape[0] <= left and (table[k].dof or (k not in taken and k not in prefix)):
                extend(prefix + (k,), k, left - table[k].offsets.shape[0])

    extend((), 0, count)
    return found


def feasible(space_group: int, counts: Sequence[int]) -> bool:
    """Whether some choice of Wyckoff positions holds all the atoms (fixed positions used once)."""
    table = orbits(space_group)

    def place(i: int, taken: frozenset[int]) -> bool:
        if i == len(counts):
            return True
        # only the fixed positions an element takes matter to the elements after it
        used = {frozenset(k for k in option if not table[k].dof) for option in fillings(space_group, counts[i], taken)}
        return any(place(i + 1, taken | fixed) for fixed in used)

    return place(0, frozenset())


@functools.cache
def fillable(space_group: int, count: int, taken: frozenset[int], first: int, sites: int) -> bool:
    """Whether ``count`` atoms fit in at most ``sites`` orbits of index ≥ ``first`` (fixed positions
    used once and not in ``taken``)."""
    if count == 0:
        return True
    table = orbits(space_group)
    return sites > 0 and any(
        fillable(space_group, count - table[k].offsets.shape[0], taken | ({k} if not table[k].dof else set()), k,
                  sites - 1)
        for k in range(first, len(table))
        if table[k].offsets.shape[0] <= count and (table[k].dof or k not in taken))

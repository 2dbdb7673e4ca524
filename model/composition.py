"""Composition: what is said about a sample's chemistry, and the formula units a solve tries.

The element states are those of the periodic-table picker: ``known`` elements are in the
structure, ``possible`` ones may be, ``excluded`` ones never are. A formula, where given, fixes
the formula unit: it holds every known element, may hold possible ones and holds no other.
Without a formula, integer ratios of the known elements (with at most POSSIBLE_ADDED possible
ones) are ranked by their implausibility: charge balance, size, and how well whole formula units
fill the indexed cell (model.atom_volumes); the solve lets the first few compete on the fit.
Valences are the classic ones (model.bond_valence uses them for ions X-rays cannot tell apart).

Every way of saying the same thing is one ``Chemistry``: the elements in order of atomic number
whatever order they were given in, the formula as its reduced integer formula unit however it
was spelled (KLaTiO4, O4TiLaK, K2La2Ti2O8), so that the command line and the window, given the
same sample in any order, solve the same problem.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np
from pymatgen.core import Composition, Element

from model.atom_volumes import SPREAD, formula_volume_A3
from model.errors import InputError

MAX_RATIO = 8  # largest amount of one element per formula unit tried when no formula is given (F6 of Na2LiAlF6)
MAX_UNIT_ATOMS = 16  # atoms per formula unit tried when no formula is given
STOICHIOMETRIES = 4  # formula units tried when no formula is given
POSSIBLE_ADDED = 2  # possible elements that one tried formula unit may add to the known ones
# Implausibility of a formula unit, -ln of its prior odds (measured on the shared real structures,
# benchmarks/stoichiometries.py): charge balance by the classic valences is the rule, by other
# common oxidation states or the rarer ones seen in the ICSD the exception, unbalanced the oddity;
# every atom of the formula unit costs ATOM_COST (simple formulas are the more common); the cell
# volume's misfit to Z formula units costs ½(ln ratio / atom_volumes.SPREAD)².
COMMON_STATES_COST = 0.5
RARE_STATES_COST = 1.0
UNBALANCED_COST = 2.0
ATOM_COST = 0.2


@dataclass(frozen=True)
class Chemistry:
    """What is said about a sample's chemistry, canonical: each element group in order of atomic
    number, the formula as its reduced formula unit (element, count) in that order, or None."""

    known: tuple[str, ...]
    possible: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    formula: tuple[tuple[str, int], ...] | None = None


def chemistry(known: Sequence[str], formula: str | None = None, possible: Sequence[str] = (),
              excluded: Sequence[str] = ()) -> Chemistry:
    """The canonical Chemistry of what is said; contradictions are one-line InputErrors."""
    known, possible, excluded = (_by_atomic_number(element_symbols(group)) for group in (known, possible, excluded))
    _check_states(list(known), list(possible), list(excluded))
    units = None
    if formula:
        amounts = _formula_units(formula, list(known), list(possible), list(excluded))
        common = reduce(math.gcd, amounts.values())
        units = tuple((symbol, amounts[symbol] // common) for symbol in _by_atomic_number(amounts))
    return Chemistry(known, possible, excluded, units)


def _by_atomic_number(symbols: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(symbols), key=lambda symbol: Element(symbol).Z))


def element_symbols(symbols: Iterable[str]) -> list[str]:
    """The element symbols as pymatgen spells them; an unknown one is an InputError."""
    checked = []
    for symbol in symbols:
        try:
            checked.append(Element(symbol).symbol)
        except ValueError:
            raise InputError(None, f"unknown element {symbol!r}") from None
    return checked


def parse_formula(formula: str) -> dict[str, float]:
    """Amount of each element of a formula such as 'CeO2' or 'K La Ti O4'; an unreadable formula
    or one naming no real element is an InputError."""
    try:
        amounts = Composition(formula).get_el_amt_dict()
    except Exception:  # noqa: BLE001 - pymatgen raises several types for a malformed formula
        raise InputError(None, f"cannot read formula {formula!r}") from None
    unknown = [symbol for symbol in amounts if not Element.is_valid_symbol(symbol)]
    if unknown or not amounts:  # pymatgen reads unknown symbols as dummy species
        raise InputError(None, f"formula {formula!r} names no element {unknown[0]!r}" if unknown
                         else f"formula {formula!r} names no element")
    return amounts


def stoichiometries(chem: Chemistry, cell_volume_A3: float | None = None, max_atoms: int | None = None,
                    count: int = STOICHIOMETRIES) -> list[dict[str, int]]:
    """Integer formula units to try: the given formula, or the ``count`` most plausible
    ratios (implausibility) of the known elements and a few possible ones, judged by the indexed
    cell's volume (Å³, holding at most ``max_atoms`` atoms) where it is known."""
    if chem.formula:
        return [dict(chem.formula)]
    symbols, amounts, costs = _ratios(chem)
    costs = costs + ATOM_COST * amounts.sum(axis=1)
    if cell_volume_A3 is not None:
        costs = costs + np.array([_volume_cost(dict(zip(symbols[i], row)), cell_volume_A3, max_atoms)
                                  for i, row in enumerate(amounts)])
    # stable: equal costs keep the canonical order of _ratios, whatever order the elements were said in
    chosen = np.argsort(costs, kind="stable")[:count]
    return [{s: int(n) for s, n in zip(symbols[i], amounts[i]) if n} for i in chosen]


def implausibility(units: Mapping[str, int], cell_volume_A3: float, z: int) -> float:
    """-ln of the prior odds (dimensionless) of ``z`` formula units ``units`` in a cell of
    ``cell_volume_A3`` (Å³): charge balance, size of the formula unit and volume per atom
    (model.atom_volumes)."""
    symbols = tuple(units)
    cost = _charge_costs(symbols, np.array([[units[s] for s in symbols]]))[0]
    misfit = math.log(cell_volume_A3 / (z * formula_volume_A3(units))) / SPREAD
    return float(cost + ATOM_COST * sum(units.values()) + 0.5 * misfit ** 2)


def _volume_cost(units: Mapping[str, int], cell_volume_A3: float, max_atoms: int | None) -> float:
    """½(ln misfit / SPREAD)² of the best number of formula units in the cell."""
    per_unit = formula_volume_A3(units)
    most = max(1, (max_atoms or 10 ** 6) // sum(units.values()))
    z = min(max(1, round(cell_volume_A3 / per_unit)), most)
    best = min(abs(math.log(cell_volume_A3 / (k * per_unit))) for k in {max(1, z - 1), z, min(most, z + 1)})
    return 0.5 * (best / SPREAD) ** 2


@functools.cache
def _ratios(chem: Chemistry) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray]:
    """Every reduced integer ratio (amounts up to MAX_RATIO, MAX_UNIT_ATOMS atoms) of the known
    elements with up to POSSIBLE_ADDED possible ones: the symbols of each row (the known and
    possible elements in order of atomic number, zeros where a possible one is absent), the
    amounts, and the cost of their charge balance."""
    known, possible = list(chem.known), chem.possible
    symbols = tuple(known) + tuple(possible)
    rows, costs = [], []
    for size in range(min(POSSIBLE_ADDED, len(possible)) + 1):
        for added in itertools.combinations(possible, size):
            present = known + list(added)
            if not present:
                continue
            grid = np.indices([MAX_RATIO] * len(present)).reshape(len(present), -1).T + 1
            grid = grid[(grid.sum(axis=1) <= MAX_UNIT_ATOMS) & (np.gcd.reduce(grid, axis=1) == 1)]
            costs.append(_charge_costs(tuple(present), grid))
            full = np.zeros((len(grid), len(symbols)), dtype=int)
            full[:, [symbols.index(s) for s in present]] = grid
            rows.append(full)
    amounts = np.concatenate(rows)
    return [symbols] * len(amounts), amounts, np.concatenate(costs)


def _charge_costs(symbols: tuple[str, ...], amounts: np.ndarray) -> np.ndarray:
    """Charge-balance cost of each row of ``amounts`` (formula units of ``symbols``): 0 where the
    classic valences balance it (valences), COMMON_STATES_COST where other common oxidation states
    do, RARE_STATES_COST where only those seen in the ICSD do, UNBALANCED_COST where none do. The anions (as in valences) take negative states, elements with
    common states of both signs either sign (Cl⁻ beside O²⁻ in BiCdClO2, Si⁴⁻ in Mg2Si, P⁵⁺ in
    AlPO4), the rest positive ones."""
    elements = [Element(symbol) for symbol in symbols]
    anions = _anions(elements)
    costs = np.full(len(amounts), UNBALANCED_COST)
    for cost, tier in ((RARE_STATES_COST, "rare"), (COMMON_STATES_COST, "common"), (0.0, "classic")):
        choices = []
        for e in elements:
            common = set(e.common_oxidation_states)
            states = common | set(e.icsd_oxidation_states) if tier == "rare" else common
            either = min(common, default=0) < 0 < max(common, default=0)
            choices.append(sorted(q for q in states if (q < 0 if e in anions else q != 0 if either else q > 0)))
            if tier == "classic" and e not in anions:
                choices[-1] = [max(common)] if common and max(common) > 0 else []
        if not all(choices):
            continue
        charges = np.array(list(itertools.product(*choices)))  # (combinations, elements)
        balanced = (amounts @ charges.T == 0).any(axis=1)
        costs[balanced] = cost
    return costs


def _anions(elements: Sequence[Element]) -> list[Element]:
    """Elements whose common oxidation states are all negative, else the most electronegative."""
    anions = [e for e in elements if e.common_oxidation_states and max(e.common_oxidation_states) < 0]
    return anions or [max(elements, key=lambda e: e.X if e.X == e.X else 0.0)]  # X is NaN for noble gases


def _check_states(known: list[str], possible: list[str], excluded: list[str]) -> None:
    if not known and not possible:
        raise InputError(None, "give at least one element")
    for first, second, one, other in ((known, possible, "known", "possible"), (known, excluded, "known", "excluded"),
                                      (possible, excluded, "possible", "excluded")):
        both = sorted(set(first) & set(second))
        if both:
            raise InputError(None, f"{', '.join(both)} cannot be both {one} and {other}")


def _formula_units(formula: str, known: list[str], possible: list[str], excluded: list[str]) -> dict[str, int]:
    amounts = parse_formula(formula)
    banned = sorted(set(amounts) & set(excluded))
    if banned:
        raise InputError(None, f"formula {formula} holds excluded elements: {', '.join(banned)}")
    extra = sorted(set(amounts) - set(known) - set(possible))
    if extra:
        raise InputError(None, f"formula {formula} has elements not in --elements: {', '.join(extra)}")
    missing = sorted(set(known) - set(amounts))
    if missing:
        raise InputError(None, f"formula {formula} lacks the known elements {', '.join(missing)}")
    if any(abs(v - round(v)) > 1e-6 for v in amounts.values()):
        raise InputError(None, f"formula {formula} needs integer amounts")
    return {k: round(v) for k, v in amounts.items()}


def valences(ratio: Mapping[str, float]) -> dict[str, int] | None:
    """Classic valences that balance the charge, or None: the anions (elements whose common
    oxidation states are all negative, else the most electronegative element) at their common
    negative states and every other element at its highest common positive state (group valence,
    e.g. C⁴⁺ with O and F)."""
    elements = [Element(symbol) for symbol in ratio]
    anions = _anions(elements)
    choices = []
    for e in elements:
        states = e.common_oxidation_states or (0,)
        choices.append([charge for charge in states if charge < 0] if e in anions else [max(states)])
    if not all(choices) or any(max(c) <= 0 for e, c in zip(elements, choices) if e not in anions):
        return None
    return next((dict(zip(ratio, states)) for states in itertools.product(*choices)
                 if abs(sum(ratio[e.symbol] * charge for e, charge in zip(elements, states))) < 1e-6), None)

"""Composition: what is said about a sample's chemistry, and the formula units a solve tries.

The element states are those of the periodic-table picker: ``known`` elements are in the
structure, ``possible`` ones may be, ``excluded`` ones never are. A formula, where given, fixes
the formula unit: it holds every known element, may hold possible ones and holds no other.
Without a formula, small ratios of the known elements (with at most POSSIBLE_ADDED possible
ones) are tried, charge-balanced ones first. Valences are the classic ones (model.bond_valence
uses them for ions X-rays cannot tell apart).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import reduce

import numpy as np
from pymatgen.core import Composition, Element

from model.errors import InputError

MAX_RATIO = 4  # largest amount of one element per formula unit tried when no formula is given
STOICHIOMETRIES = 4  # formula units tried when no formula is given
POSSIBLE_ADDED = 2  # possible elements that one tried formula unit may add to the known ones


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


def stoichiometries(known: Sequence[str], formula: str | None = None, possible: Sequence[str] = (),
                    excluded: Sequence[str] = ()) -> list[dict[str, int]]:
    """Integer formula units to try: the given formula, or small charge-balanced ratios of the
    known elements and a few possible ones."""
    known, possible, excluded = element_symbols(known), element_symbols(possible), element_symbols(excluded)
    _check_states(known, possible, excluded)
    if formula:
        return [_formula_units(formula, known, possible, excluded)]
    element_sets = [known + list(added) for size in range(min(POSSIBLE_ADDED, len(possible)) + 1)
                    for added in itertools.combinations(possible, size) if known or added]
    ratios = sorted((dict(zip(symbols, (c + 1 for c in combo))) for symbols in element_sets
                     for combo in np.ndindex(*[MAX_RATIO] * len(symbols))
                     if reduce(math.gcd, (c + 1 for c in combo)) == 1), key=lambda r: sum(r.values()))
    # the classic valences first (cheap to test), then any charge balance pymatgen finds (slow:
    # only as far as needed), then the rest, each class simplest first
    chosen = list(itertools.islice((r for r in ratios if valences(r) is not None), STOICHIOMETRIES))
    for ratio in ratios:
        if len(chosen) == STOICHIOMETRIES:
            break
        if ratio not in chosen and (len(ratio) == 1 or Composition(ratio).oxi_state_guesses(max_sites=-1)):
            chosen.append(ratio)
    return chosen + [r for r in ratios if r not in chosen][:STOICHIOMETRIES - len(chosen)]


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
    anions = [e for e in elements if e.common_oxidation_states and max(e.common_oxidation_states) < 0]
    if not anions:
        anions = [max(elements, key=lambda e: e.X if e.X == e.X else 0.0)]  # X is NaN for noble gases
    choices = []
    for e in elements:
        states = e.common_oxidation_states or (0,)
        choices.append([charge for charge in states if charge < 0] if e in anions else [max(states)])
    if not all(choices) or any(max(c) <= 0 for e, c in zip(elements, choices) if e not in anions):
        return None
    return next((dict(zip(ratio, states)) for states in itertools.product(*choices)
                 if abs(sum(ratio[e.symbol] * charge for e, charge in zip(elements, states))) < 1e-6), None)

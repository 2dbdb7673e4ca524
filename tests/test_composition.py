import math

import pytest

from model.atom_volumes import SPREAD, formula_volume_A3
from model.composition import (
    STOICHIOMETRIES,
    Chemistry,
    chemistry,
    implausibility,
    parse_formula,
    stoichiometries,
    valences,
)
from model.errors import InputError


def test_a_given_formula_is_the_formula_unit():
    assert stoichiometries(chemistry(["K", "La", "Ti", "O"], "KLaTiO4")) == [{"O": 4, "K": 1, "Ti": 1, "La": 1}]


def test_possible_elements_may_join_the_known_ones_but_need_not():
    tried = stoichiometries(chemistry(["Mg", "Si"], possible=["O"]))
    assert tried[0] == {"Mg": 2, "Si": 1}  # the known elements alone, simplest and charge-balanced
    assert {"Mg": 1, "Si": 1, "O": 3} in tried
    assert all({"Mg", "Si"} <= set(units) for units in tried)  # known elements are always there
    # a formula may use a possible element, and must hold every known one
    assert stoichiometries(chemistry(["Mg", "Si"], "MgSiO3", possible=["O"])) == [{"O": 3, "Mg": 1, "Si": 1}]


@pytest.mark.parametrize("known, formula, possible, excluded, words", [
    (["Na"], "NaCl", [], ["Cl"], "excluded"),  # a formula never holds an excluded element
    (["Na", "Cl"], "NaCl", [], ["Cl"], "both known and excluded"),
    (["Na", "Cl", "K"], "NaCl", [], [], "lacks the known elements K"),
    (["Na"], "NaCl", [], [], "not in --elements: Cl"),
    (["Na"], "NaXx", [], [], "Xx"),
    (["Qq"], None, [], [], "unknown element"),
    ([], None, [], ["O"], "at least one element"),
])
def test_contradictory_chemistry_is_one_line_input_error(known, formula, possible, excluded, words):
    with pytest.raises(InputError, match=words) as error:
        chemistry(known, formula, possible, excluded)
    assert "\n" not in str(error.value)


def test_formula_spellings_read_alike():
    assert parse_formula("KLaTiO4") == parse_formula("O4TiLaK") == parse_formula("K La Ti O4")


def test_classic_valences_balance_the_charge():
    assert valences({"K": 1, "La": 1, "Ti": 1, "O": 4}) == {"K": 1, "La": 3, "Ti": 4, "O": -2}
    assert valences({"Na": 1, "Cl": 2}) is None


def test_every_order_and_spelling_is_one_chemistry():
    said = [chemistry(["K", "La", "Ti", "O"], "KLaTiO4"), chemistry(["O", "K", "Ti", "La"], "O4TiLaK"),
            chemistry(["La", "O", "K", "Ti", "K"], "K2La2Ti2O8")]
    assert said[0] == said[1] == said[2]
    assert said[0] == Chemistry(("O", "K", "Ti", "La"), formula=(("O", 4), ("K", 1), ("Ti", 1), ("La", 1)))
    # without a formula the formula units tried do not depend on the order either
    orders = [["K", "Ca", "C", "O", "F"], ["F", "O", "C", "Ca", "K"], ["C", "K", "F", "Ca", "O"]]
    assert len({repr(stoichiometries(chemistry(order))) for order in orders}) == 1


# published cell volumes (Å³) of the shared measured patterns' structures (../shared/data/experimental)
@pytest.mark.parametrize("formula, cell_volume_A3", [
    ("KLaTiO4", 198.8), ("Mg2Si", 254.2), ("AlPO4", 187.8), ("KCaCO3F", 100.4), ("BiCdClO2", 186.5),
    ("LaInO3", 279.3),
])
def test_elements_and_the_cell_volume_rank_the_true_formula_among_the_first_tried(formula, cell_volume_A3):
    truth = {element: round(amount) for element, amount in parse_formula(formula).items()}
    tried = stoichiometries(chemistry(list(truth)), cell_volume_A3, max_atoms=40)
    assert len(tried) == STOICHIOMETRIES and truth in tried


def test_ratios_of_real_compounds_beyond_four_are_proposed():
    # Na2LiAlF6's F6 is reachable, though not among the 4 first ratios (NaLiAlF5 fits its volume as well)
    tried = stoichiometries(chemistry(["Na", "Li", "Al", "F"]), 212.6, max_atoms=40, count=16)
    assert {"Na": 2, "Li": 1, "Al": 1, "F": 6} in tried
    # of Z formula units, the one that fills the cell is the more plausible
    assert implausibility({"K": 1, "La": 1, "Ti": 1, "O": 4}, 198.8, 2) < implausibility(
        {"K": 1, "La": 1, "Ti": 1, "O": 4}, 198.8, 1)


def test_summed_atom_volumes_match_the_cells_of_measured_structures():
    for formula, z, cell_volume_A3 in (("KLaTiO4", 2, 198.8), ("Mg2Si", 4, 254.2), ("LaInO3", 4, 279.3)):
        assert abs(math.log(z * formula_volume_A3(parse_formula(formula)) / cell_volume_A3)) < 2 * SPREAD

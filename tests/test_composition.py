import pytest

from model.composition import parse_formula, stoichiometries, valences
from model.errors import InputError


def test_a_given_formula_is_the_formula_unit():
    assert stoichiometries(["K", "La", "Ti", "O"], "KLaTiO4") == [{"K": 1, "La": 1, "Ti": 1, "O": 4}]


def test_possible_elements_may_join_the_known_ones_but_need_not():
    tried = stoichiometries(["Mg", "Si"], possible=["O"])
    assert tried[0] == {"Mg": 2, "Si": 1}  # the known elements alone, simplest and charge-balanced
    assert {"Mg": 1, "Si": 1, "O": 3} in tried
    assert all({"Mg", "Si"} <= set(units) for units in tried)  # known elements are always there
    # a formula may use a possible element, and must hold every known one
    assert stoichiometries(["Mg", "Si"], "MgSiO3", possible=["O"]) == [{"Mg": 1, "Si": 1, "O": 3}]


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
        stoichiometries(known, formula, possible, excluded)
    assert "\n" not in str(error.value)


def test_formula_spellings_read_alike():
    assert parse_formula("KLaTiO4") == parse_formula("O4TiLaK") == parse_formula("K La Ti O4")


def test_classic_valences_balance_the_charge():
    assert valences({"K": 1, "La": 1, "Ti": 1, "O": 4}) == {"K": 1, "La": 3, "Ti": 4, "O": -2}
    assert valences({"Na": 1, "Cl": 2}) is None

"""Structure type of a crystal and the train/val/test split that follows from it."""

from __future__ import annotations

import hashlib
import warnings

from pymatgen.analysis.prototypes import get_protostructure_label_from_spg_analyzer
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

SPLIT_FRACTIONS = (("train", 0.8), ("val", 0.1), ("test", 0.1))


def structure_type(analyzer: SpacegroupAnalyzer) -> str:
    """Canonical AFLOW-style prototype label from spglib (e.g. ``AB_cF8_225_a_b`` for rock salt).

    ``analyzer`` is the SpacegroupAnalyzer of the structure (shared with the space-group lookup,
    so both come from the same spglib run). Raises ValueError when the Wyckoff multiplicities
    are inconsistent with the composition.

    The label is anonymous (stoichiometry letters, Pearson symbol, space group, Wyckoff letters
    per species, canonicalised over equivalent origin choices), so a substituted prototype keeps
    the label of its parent and the AFLOW library entries carry their own AFLOW label.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's FutureWarning on its own gcd use
        label = get_protostructure_label_from_spg_analyzer(analyzer, raise_errors=True)
    return label.split(":")[0]  # drop the chemical system: types are anonymous


def framework(structure_type_label: str) -> str:
    """The label without the order of the species: Pearson symbol, space group and the sorted
    Wyckoff sets (``cP5_221_a_b_c`` for every cubic perovskite, whichever element is written
    first). Splits and the evaluation block use it, so relabelled species do not make a new type."""
    _, pearson, spacegroup, *wyckoffs = structure_type_label.split("_")
    return "_".join([pearson, spacegroup, *sorted(wyckoffs)])


def split_of(structure_type_label: str) -> str:
    """train/val/test from a hash of the structure type, so a type never straddles two splits.

    The hash does not depend on the build seed: the same type lands in the same split in every
    build, and test always measures structure types the network has not seen.
    """
    digest = hashlib.sha256(structure_type_label.encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    for name, fraction in SPLIT_FRACTIONS:
        if u < fraction:
            return name
        u -= fraction
    return SPLIT_FRACTIONS[-1][0]

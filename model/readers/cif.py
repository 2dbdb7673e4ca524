"""CIF: IUCr powder profiles (pdCIF), or a crystal structure opened as a simulated pattern.

Parsing is pymatgen's CifFile (blocks of items and loops). A block is a
profile when it loops an intensity item; measured or processed intensities
(_pd_meas_*, _pd_proc_*) are preferred to calculated ones (_pd_calc_*), which
are used only when a file holds nothing else. 2θ is a looped item
(_pd_proc_2theta_corrected, _pd_meas_2theta_scan…) or the
_pd_meas/proc_2theta_range_min/max/inc of the block. Values may carry an esd
in parentheses, "1234(35)"; σ comes from intensity esds, else from
_pd_proc_ls_weight (σ = 1/√w). The wavelength is _diffrn_radiation_wavelength
(a loop: Kα1, Kα2, with _diffrn_radiation_wavelength_wt for the ratio) or
_pd_proc_wavelength of the profile block, else of another block that is not
itself a profile. A CIF without any profile is read as its crystal structure
(the caller may simulate its pattern: cmedgui.opening).
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

import numpy as np

from model.errors import InputError
from model.pattern import Pattern, Wavelength
from model.readers.scan import (
    anode_wavelength,
    build_pattern,
    describe_error,
    wavelength_of,
)

if TYPE_CHECKING:
    from pymatgen.core import Structure

_MEASURED = ("_pd_meas_counts_total", "_pd_meas_intensity_total", "_pd_proc_intensity_net",
             "_pd_proc_intensity_total", "_pd_meas_intensity_net")
_CALCULATED = ("_pd_calc_intensity_total", "_pd_calc_intensity_net")
_TWO_THETA = ("_pd_proc_2theta_corrected", "_pd_meas_2theta_scan", "_pd_meas_angle_2theta",
              "_pd_meas_2theta_corrected")
_NUMBER_ESD = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\((\d+)\))?$")


def sniff(head: bytes) -> bool:
    return bool(re.search(rb"^\s*data_", head, re.MULTILINE)) and b"\x00" not in head


def read(source: str, data: bytes) -> list[Pattern] | Structure:
    """The profiles of a pdCIF, or the structure of a CIF that holds none."""
    # pymatgen: imported when a CIF is read, not by every reader of the registry
    from pymatgen.io.cif import CifFile

    text = data.decode("utf-8", errors="replace")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blocks = list(CifFile.from_str(text).data.items())
    except Exception as error:  # noqa: BLE001 - pymatgen raises many types for malformed CIF
        raise InputError(source, f"not a readable CIF ({describe_error(error)})") from None
    if not blocks:
        raise InputError(source, "no data_ block in CIF")
    measured = [(name, block.data) for name, block in blocks if _looped(block.data, _MEASURED)]
    calculated = [(name, block.data) for name, block in blocks
                  if not _looped(block.data, _MEASURED) and _looped(block.data, _CALCULATED)]
    profiles = measured or calculated
    if not profiles:
        return _structure(source, text)
    others = [block.data for name, block in blocks
              if not _looped(block.data, _MEASURED + _CALCULATED)]
    patterns = []
    for name, items in profiles:
        label = f"block {name}" if len(profiles) > 1 else ""
        patterns.append(_profile(source, name, items, others, label))
    return patterns


def _profile(source, name, items, others, label) -> Pattern:
    where = f"{label}: " if label else ""
    if "_pd_meas_time_of_flight" in items or "_pd_proc_recip_len_q" in items:
        raise InputError(source, f"{where}time-of-flight / Q profile, not a 2θ pattern")
    key = _looped(items, _MEASURED) or _looped(items, _CALCULATED)
    intensity, esd = _column(source, items[key], key, where)
    tth_key = _looped(items, _TWO_THETA)
    if tth_key:
        two_theta = _column(source, items[tth_key], tth_key, where)[0]
    else:
        two_theta = _range(source, items, key.split("_")[2], intensity.size, where)
    sigma = esd if esd is not None else _sigma_from_weight(items, intensity.size)
    if two_theta.size == intensity.size:  # points the file leaves unknown (".", "?") are left out
        known = ~(np.isnan(two_theta) | np.isnan(intensity))
        two_theta, intensity = two_theta[known], intensity[known]
        sigma = None if sigma is None else sigma[known]
    wavelength = next((w for w in (_wavelength(source, block) for block in (items, *others))
                       if w is not None), None)
    metadata = {"block": name, "intensity": key, "two_theta": tth_key or "range",
                **{k.removeprefix("_"): _scalar(v) for k, v in _header(items, others).items()}}
    return build_pattern(source, "cif", two_theta, intensity, sigma, wavelength, metadata, label)


def _looped(items: dict, keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if isinstance(items.get(k), list) and len(items[k]) >= 2), None)


def _column(source, values: list[str], key: str, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Numbers (NaN where the CIF says unknown, "." or "?") and their esds (None unless all have one)."""
    numbers, esds = np.full(len(values), np.nan), np.full(len(values), np.nan)
    for i, value in enumerate(values):
        value = value.strip()
        if value in (".", "?"):
            continue
        match = _NUMBER_ESD.match(value)
        if not match:
            raise InputError(source, f"{where}{key} value {value!r} (point {i + 1}) is not a number")
        numbers[i] = float(match.group(1))
        esds[i] = _esd(match.group(1), match.group(2))
    known = ~np.isnan(numbers)
    return numbers, (esds if known.any() and not np.isnan(esds[known]).any() else None)


def _esd(number: str, digits: str | None) -> float:
    """'12.34', '5' → 0.05: the esd scales with the number's last decimal place."""
    if digits is None:
        return np.nan
    mantissa = number.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(number.lower().split("e")[1]) if "e" in number.lower() else 0
    return int(digits) * 10.0 ** (exponent - decimals)


def _range(source, items, kind: str, n: int, where: str) -> np.ndarray:
    """2θ from _pd_{meas,proc}_2theta_range_min/max/inc, the intensity's own kind first."""
    for prefix in dict.fromkeys((kind, "meas", "proc")):
        try:
            lo, hi, inc = (_number(items[f"_pd_{prefix}_2theta_range_{k}"]) for k in ("min", "max", "inc"))
        except (KeyError, ValueError):
            continue
        if abs(lo + (n - 1) * inc - hi) <= 0.5 * abs(inc):
            return lo + inc * np.arange(n)
        return np.linspace(lo, hi, n)
    raise InputError(source, f"{where}no 2θ column and no _pd_meas_2theta_range_min/max/inc")


def _sigma_from_weight(items, n: int) -> np.ndarray | None:
    weights = items.get("_pd_proc_ls_weight")
    if not isinstance(weights, list) or len(weights) != n:
        return None
    try:
        w = np.array([_number(v) for v in weights])
    except ValueError:
        return None
    return 1.0 / np.sqrt(w) if np.all(w > 0) else None


def _wavelength(source, items) -> Wavelength | None:
    values = items.get("_diffrn_radiation_wavelength", items.get("_pd_proc_wavelength"))
    values = [values] if isinstance(values, str) else list(values or [])
    numbers = [v for v in (_number_or_none(v) for v in values) if v is not None]
    if numbers:
        weights = items.get("_diffrn_radiation_wavelength_wt")
        ratio = None
        if isinstance(weights, list) and len(weights) >= 2 and len(numbers) >= 2:
            w1, w2 = _number_or_none(weights[0]), _number_or_none(weights[1])
            ratio = w2 / w1 if w1 and w2 is not None else None
        return wavelength_of(source, numbers[0], numbers[1] if len(numbers) > 1 else None, ratio)
    radiation = items.get("_diffrn_radiation_type")
    return anode_wavelength(radiation if isinstance(radiation, str) else " ".join(radiation or []))


def _header(items, others) -> dict:
    wanted = ("_pd_spec_description", "_chemical_name_common", "_chemical_formula_sum",
              "_diffrn_radiation_type", "_diffrn_radiation_probe", "_diffrn_source",
              "_pd_meas_scan_method", "_diffrn_measurement_device_type", "_pd_meas_2theta_range_inc")
    found = {}
    for block in (items, *others):
        for key in wanted:
            if key in block and key not in found and _scalar(block[key]) not in ("?", "."):
                found[key] = block[key]
    return found


def _scalar(value):
    return value if isinstance(value, str) else " ".join(value)


def _number(value: str) -> float:
    match = _NUMBER_ESD.match(str(value).strip())
    if not match:
        raise ValueError(value)
    return float(match.group(1))


def _number_or_none(value) -> float | None:
    try:
        return _number(value)
    except ValueError:
        return None


def _structure(source: str, text: str) -> Structure:
    from pymatgen.core import Structure

    from model.structure import check_structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(text, fmt="cif")
    except Exception as error:  # noqa: BLE001 - pymatgen raises many types for malformed CIF
        raise InputError(source, f"CIF has neither a powder profile nor a readable structure "
                                 f"({describe_error(error)})") from None
    check_structure(structure, source)
    return structure

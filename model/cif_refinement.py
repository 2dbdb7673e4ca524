"""The refinement block of a CIF (core + pdCIF names), so another program can check the fit.

Agreement factors as fractions (pdCIF's convention): Rp, Rwp, Rexp, R-Bragg (_refine_ls_R_I_factor)
and GoF; the cell and each element's Biso with their esds in the crystallographer's notation
(6.33470(1)); the profile, background, zero shift and preferred orientation in words with their
esds; the largest peak and deepest hole of the difference Fourier map (e/Å³, model.fourier) where
it was computed; and the observed, calculated and background profile with the least-squares
weights as a loop over the measured 2θ, from which Rwp can be recomputed.
"""

from __future__ import annotations

import numpy as np
from pymatgen.io.cif import CifBlock

from model.result import Parameter, SolveResult
from model.uncertainty import format_esd

CELL_ITEMS = {"_cell_length_a": "length", "_cell_length_b": "length", "_cell_length_c": "length",
              "_cell_angle_alpha": "angle", "_cell_angle_beta": "angle", "_cell_angle_gamma": "angle",
              "_cell_volume": "volume"}
KINDS = {"a": "length", "b": "length", "c": "length", "α": "angle", "β": "angle", "γ": "angle", "V": "volume"}
MATCH = 1e-3  # a written cell value is the refined one when it agrees to this (Å, °, Å³)
PROFILE_LOOP = ("_pd_meas_2theta_scan", "_pd_meas_intensity_total", "_pd_proc_ls_weight",
                "_pd_proc_intensity_bkg_calc", "_pd_calc_intensity_total")


def add_refinement(block: CifBlock, result: SolveResult) -> None:
    """Add the refinement of ``result`` (its first phase) to the CIF data block CifWriter made."""
    report = result.refinement
    own = [q for q in report.parameters if q.phase in (0, None)]
    _cell_esds(block, [q for q in own if q.group == "cell"])
    _biso_esds(block, {q.name.split()[-2]: q for q in own if q.group == "biso"})
    named = {q.name: q for q in own}
    data = block.data
    data["_pd_proc_ls_prof_R_factor"] = f"{result.rp / 100:.4f}"
    data["_pd_proc_ls_prof_wR_factor"] = f"{result.rwp / 100:.4f}"
    data["_pd_proc_ls_prof_wR_expected"] = f"{report.rexp / 100:.4f}"
    data["_refine_ls_R_I_factor"] = f"{report.r_bragg[0] / 100:.4f}"
    data["_refine_ls_goodness_of_fit_all"] = f"{result.gof:.3f}"
    data["_pd_proc_ls_profile_function"] = (
        "Thompson-Cox-Hastings pseudo-Voigt, FWHM_G^2 = U tan^2(th) + V tan(th) + W, FWHM_L = X/cos(th) + Y tan(th): "
        + ", ".join(f"{n} {_text(named[n])}" for n in ("U", "V", "W", "X", "Y")))
    background = [q for q in own if q.group == "bkg"]
    data["_pd_proc_ls_background_function"] = (f"Chebyshev polynomial of 2theta over the scan, {len(background)} terms: "
                                               + " ".join(_text(q) for q in background))
    data["_pd_proc_2theta_correction"] = (f"zero shift {_text(named['zero'])} deg; sample displacement "
                                          f"{_text(named['displacement × cos θ'])} deg x cos(theta)")
    orientation = report.orientations[0] if report.orientations else None
    po = next((q for q in own if q.group == "po"), None)
    data["_pd_proc_ls_pref_orient_corr"] = (
        "none" if orientation is None or po is None
        else "March-Dollase r {} along reciprocal [{} {} {}]".format(_text(po), *orientation[0]))
    if result.map_peaks:
        heights = [peak.height for peak in result.map_peaks]
        data["_refine_diff_density_max"] = f"{max(max(heights), 0.0):.3f}"
        data["_refine_diff_density_min"] = f"{min(min(heights), 0.0):.3f}"
    fit = result.fit
    if fit is None:
        return
    columns = (fit.two_theta, fit.observed, report.weights, fit.background, fit.calculated)
    for key, column, form in zip(PROFILE_LOOP, columns, ("%.5f", "%.8g", "%.6g", "%.8g", "%.8g")):
        data[key] = [form % v for v in np.asarray(column, dtype=float)]
    block.loops.append(list(PROFILE_LOOP))


def _text(parameter: Parameter) -> str:
    return format_esd(parameter.value, parameter.esd)


def _cell_esds(block: CifBlock, cell: list[Parameter]) -> None:
    """Each written cell value gets the esd of the refined parameter it equals (the written cell
    is the standard setting of the refined one: axes may be renamed, values are the same)."""
    for key, kind in CELL_ITEMS.items():
        written = float(block.data[key])
        match = next((q for q in cell if KINDS[q.name.split()[-1]] == kind and abs(q.value - written) < MATCH
                      and q.esd is not None), None)
        if match is not None:
            block.data[key] = format_esd(written, match.esd)


def _biso_esds(block: CifBlock, biso: dict[str, Parameter]) -> None:
    if "_atom_site_B_iso_or_equiv" not in block.data:
        return
    block.data["_atom_site_B_iso_or_equiv"] = [
        format_esd(float(value), biso[symbol].esd, 4) if symbol in biso else value
        for symbol, value in zip(block.data["_atom_site_type_symbol"], block.data["_atom_site_B_iso_or_equiv"])]

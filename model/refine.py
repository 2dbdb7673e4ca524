"""Rietveld refinement of one or several structures (phases) against a powder pattern: the
fitting strategy (GSAS-II's RefineCore).

Refined per phase: scale, cell metric (within the space group's constraints), free Wyckoff
coordinates and one Biso (Å², ≥ 0) per element. Shared by the phases: zero shift (degrees 2θ),
TCH pseudo-Voigt U, V, W (deg²) and X, Y (deg), Chebyshev background. Optional terms, each kept
only where it pays (lowers χ² by at least PAYS): the Kα1/Kα2 doublet where the pattern states an
anode's mean Kα wavelength (an unresolved doublet), the Kα2/Kα1 intensity ratio, sample displacement
(deg 2θ at cos θ = 1), Bérar–Baldinozzi peak asymmetry, the beam's polarisation (synchrotron
radiation is not the unpolarised beam of a tube) and, per phase, March–Dollase preferred
orientation along the best of the phase's low-index reciprocal directions. Trial structures (the
solve's) can be held by anti-bump restraints: fully occupied atoms closer than CONTACT_FACTOR × the
sum of their atomic radii add residuals that push them apart. Least squares by scipy
(trust-region reflective) in short bursts, so that progress and a cancel come between them.

The parameter vector is model.rietveld_layout's, the calculated pattern and its Jacobian
model.rietveld_model's; what a refinement returns is model.refinement's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from functools import partial

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from scipy.optimize import least_squares

from model import uncertainty
from model.errors import InputError
from model.instrument import Instrument, bragg_d, doublet_of, kalpha_doublet
from model.lockstep import lockstep
from model.pattern import Pattern, Wavelength
from model.preprocess import estimate_instrument
from model.refinement import (
    RefinedPhase,
    Refinement,
    matrix_from_metric,
    to_solve_result,
)
from model.result import Fit, Progress, Reflection, Site, SolveResult
from model.rietveld_layout import Layout, Phase, symbol
from model.rietveld_model import RietveldModel
from model.scattering import weight_fractions

# scales and background start from a linear least-squares solution, so the first stage moves the cell
STAGES = (("scale", "bkg", "zero", "cell"), ("scale", "bkg", "zero", "cell", "profile"),
          ("scale", "bkg", "zero", "cell", "profile", "xyz", "biso"))
# optional terms, tried in this order after STAGES by refine() and refine_structure()
TERMS = ("doublet", "ka2", "displacement", "asymmetry", "polarisation", "po")
PAYS = 0.01  # a term is kept when it lowers χ² by at least this fraction
TRIAL_NFEV = 10  # evaluations of a term's trial (the term with the scales and background)
BURST_NFEV = 8  # least-squares evaluations per call (each call restarts its trust region)
REPORT_S = 0.1  # seconds of work between progress reports: a cancel waits about this long
# where no start is given: narrow peaks without angle dependence
DEFAULT_WIDTHS = {"u": 0.0, "v": 0.0, "w": 0.01, "x": 0.03, "y": 0.0}


class Rietveld:
    """The refinement problem: the layout of its parameter vector ``p``, the model of the pattern,
    and the fit of ``p`` stage by stage with its optional terms."""

    def __init__(self, pattern: Pattern, structure: Structure | Sequence[Structure],
                 start: Instrument | None = None, excluded: Sequence[tuple[float, float]] = (),
                 restrain_contacts: bool = False):
        """``start``: the instrument's widths, zero, displacement, asymmetry, polarisation and Kα2
        ratio to start from (the radiation is the pattern's; default DEFAULT_WIDTHS);
        ``restrain_contacts``: anti-bump restraints (CONTACT_FACTOR) on the atoms, for trial
        structures; a given structure is refined as it is."""
        if pattern.wavelength is None:
            raise InputError(pattern.provenance.path or None,
                             "the pattern states no wavelength: give one (e.g. --wavelength CuKa)")
        structures = [structure] if isinstance(structure, Structure) else list(structure)
        if not structures:
            raise InputError(pattern.provenance.path or None, "no structure to refine")
        self.pattern = pattern
        wl = pattern.wavelength
        d_min = bragg_d(min(pattern.two_theta[-1] + 1.0, 179.0), wl.ka1)
        if doublet_of(wl) is not None:
            d_min *= wl.ka1 / wl.ka2
        phases = [Phase(s, d_min * 0.97, pattern.provenance.path or None) for s in structures]
        self.layout = Layout(phases)
        self.phases = phases
        self.model = RietveldModel(pattern, self.layout, excluded, restrain_contacts)
        self.p = self.layout.start(start or Instrument(wl, **DEFAULT_WIDTHS))
        self.refined: set[int] = set()  # indices of the parameters some stage has refined
        self.kept: list[str] = []  # optional terms kept
        self.status = (0, 1, "")  # (step, steps, what): where fit() is
        # (free indices, weighted Jacobian, on-a-bound mask) at the solution of the last recorded
        # least-squares step: the covariance behind model.uncertainty's esds
        self.jacobian: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.p = self.model.linear_start(self.p)

    def too_close(self) -> bool:
        """Whether two fully occupied atoms are closer than the anti-bump limit (CONTACT_FACTOR)."""
        return self.model.too_close(self.p)

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, stages: Sequence[Sequence[str]] = STAGES, max_nfev: int = 40,
            report_s: float = REPORT_S, terms: Sequence[str] = ()) -> Generator[int, None, None]:
        """Refine stage by stage (each a list of parameter groups); then try each optional term
        (of TERMS) and refine the last stage again with those kept. Yields the step's evaluation
        count after each least-squares burst and inside it at the first model evaluation (residual
        or Jacobian column) ``report_s`` seconds after the last yield: a cancel waits about
        ``report_s`` plus one evaluation. ``status`` says which step runs."""
        steps = len(stages) + (2 if terms else 0)
        for i, stage in enumerate(stages):
            self.status = (i, steps, f"stage {i + 1}/{steps}: {', '.join(stage)}")
            yield from self._stage(self._indices(stage), max_nfev, report_s)
        if not terms:
            return
        self.status = (len(stages), steps, f"stage {len(stages) + 1}/{steps}: trying {', '.join(terms)}")
        kept = yield from self._try(terms, report_s)
        if kept.size:
            self.status = (steps - 1, steps, f"stage {steps}/{steps}: {', '.join((*stages[-1], *self.kept))}")
            yield from self._stage(np.union1d(self._indices(stages[-1]), kept), max_nfev, report_s)

    def _indices(self, names: Sequence[str]) -> np.ndarray:
        return self.layout.indices(names, self.model.doublet)

    def _stage(self, free: np.ndarray, max_nfev: int, report_s: float, record: bool = True):
        if record:
            self.refined.update(int(i) for i in free)
        done = 0
        while done < max_nfev:
            burst = partial(self._burst, free, min(BURST_NFEV, max_nfev - done))
            result = yield from lockstep(burst, report_s, done)
            done += result.nfev
            if record:
                self.jacobian = (free, result.jac, result.active_mask != 0)
            yield done
            if result.status != 0:
                break

    def _try(self, terms: Sequence[str], report_s: float) -> Generator[int, None, np.ndarray]:
        """Each term from its current value, refined with the scales and background (every option,
        e.g. each preferred-orientation axis of a phase); the best option is kept where it lowers
        χ² by PAYS or more, otherwise everything goes back. Returns the kept options' parameter
        indices; their terms go to ``kept``."""
        self.p = self.model.linear_start(self.p)
        chi2 = self.model.chi2(self.p)
        linear = self._indices(("scale", "bkg"))
        kept = [np.zeros(0, dtype=int)]
        for term in terms:
            for options in self._options(term):
                before = self.p.copy()
                best = None
                for indices, switch in options:
                    self.p = before.copy()
                    switch(True)
                    yield from self._stage(np.union1d(linear, indices), TRIAL_NFEV, report_s, record=False)
                    trial = self.model.chi2(self.p)
                    if best is None or trial < best[0]:
                        best = (trial, self.p.copy(), indices, switch)
                    switch(False)
                trial, p, indices, switch = best
                if trial <= (1 - PAYS) * chi2:
                    self.p, chi2 = p, trial
                    switch(True)
                    self.refined.update(int(i) for i in indices)
                    kept.append(indices)
                    if term not in self.kept:
                        self.kept.append(term)
                else:
                    self.p = before
        return np.unique(np.concatenate(kept))

    def _options(self, term: str) -> list[list[tuple[np.ndarray, Callable[[bool], None]]]]:
        """Groups of options of a term, of which one per group may be kept: each the parameter
        indices its trial refines and a switch that sets up (True) or undoes (False) the rest."""
        index = np.arange(self.p.size)
        if term == "po":
            return [[(index[ph.slices["po"]], partial(_orient, ph, axis)) for axis in ph.po_candidates]
                    for ph in self.phases]
        if term == "doublet":
            stated = self.model.wavelength
            doublet = kalpha_doublet(stated)
            if stated.ka2 is not None or doublet == stated:
                return []
            # Kα1 sits below the mean: the cell, zero and widths move with the model
            return [[(self._indices(("zero", "cell", "profile")), partial(self._model_doublet, doublet))]]
        if term not in TERMS:
            raise ValueError(f"unknown optional term {term!r}: one of {', '.join(TERMS)}")
        if term == "ka2" and not self.model.doublet:
            return []
        return [[(index[self.layout.slices[term]], _no_switch)]]

    def _model_doublet(self, doublet: Wavelength, on: bool) -> None:
        self.model.wavelength = doublet if on else self.pattern.wavelength
        self.p[self.layout.slices["ka2"]] = doublet.ratio

    def _burst(self, free: np.ndarray, nfev: int, pause: Callable[[], None]):
        """least_squares from the current parameters; ``pause()`` before every model evaluation."""
        full = torch.tensor(self.p)
        index = torch.tensor(free)

        def res_np(values):
            pause()
            with torch.no_grad():
                return self.model.residuals(full.index_put((index,), torch.tensor(values))).numpy()

        def jac_np(values):
            values = torch.tensor(values)
            p = full.index_put((index,), values)
            pause()
            return self.model.jacobian(p, free, values, pause)

        lower, upper = self.layout.bounds(self.p, free)
        x0 = np.clip(self.p[free], lower + 1e-12, upper - 1e-12)
        result = least_squares(res_np, x0, jac=jac_np, bounds=(lower, upper), method="trf",
                               x_scale="jac", max_nfev=nfev, ftol=1e-5, xtol=1e-7)
        self.p[free] = result.x
        return result

    # -- results ---------------------------------------------------------------------------
    def result(self) -> Refinement:
        p = torch.tensor(self.p)
        with torch.no_grad():
            calc_all, bkg_all = (t.numpy() for t in self.model.calculated(p, torch.tensor(self.pattern.two_theta)))
            metrics = [phase.metric(p).numpy() for phase in self.phases]
            frac = [phase.frac_coords(p).numpy() for phase in self.phases]
        keep = self.model.keep
        yo = self.pattern.intensity[keep]
        yc = calc_all[keep]
        w = self.model.sqrt_w.numpy() ** 2
        rwp = 100 * np.sqrt(np.sum(w * (yo - yc) ** 2) / np.sum(w * yo**2))
        rp = 100 * np.sum(np.abs(yo - yc)) / np.sum(np.abs(yo))
        gof = float(np.sqrt(np.sum(w * (yo - yc) ** 2) / max(yo.size - len(self.refined), 1)))
        two_theta = self.pattern.two_theta
        instrument = self.layout.instrument(self.p, self.model.wavelength, (two_theta[0], two_theta[-1]))
        phases = [self._refined_phase(phase, metric, xyz, instrument)
                  for phase, metric, xyz in zip(self.phases, metrics, frac)]
        fractions = weight_fractions([np.exp(self.p[ph.slices["scale"]][0]) for ph in self.phases],
                                     [r.structure for r in phases])
        for refined, fraction in zip(phases, fractions):
            refined.weight_fraction = float(fraction)
        fit = Fit(two_theta, self.pattern.intensity, calc_all, bkg_all)
        report = uncertainty.report(self.p, self.model, self.jacobian, len(self.refined), instrument, self.kept)
        return Refinement(phases, float(rwp), float(rp), gof, fit, instrument, list(self.kept), report)

    def _refined_phase(self, phase: Phase, metric: np.ndarray, frac: np.ndarray,
                       instrument: Instrument) -> RefinedPhase:
        lattice = Lattice(matrix_from_metric(metric))
        structure = phase.structure
        species = [structure[i].species for i in phase.atom_order]
        refined = Structure(lattice, species, np.mod(frac, 1.0))
        biso = dict(zip(phase.elements, self.p[phase.slices["biso"]]))
        orbit_of = {int(i): n for n, orbit in enumerate(phase.orbits) for i in orbit.atom_indices}
        labels = [f"{len(orbit.atom_indices)}{orbit.wyckoff}" for orbit in phase.orbits]
        atoms = [Site(symbol(structure[i]), tuple(float(v) for v in np.mod(frac[k], 1.0)),
                      float(phase.occupancy[k]), float(biso[symbol(structure[i])]),
                      labels[orbit_of[int(i)]], orbit_of[int(i)])
                 for k, i in enumerate(phase.atom_order)]
        d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", phase.hkl_np, np.linalg.inv(metric), phase.hkl_np))
        tth = instrument.two_theta(d)
        inside = (tth >= self.pattern.two_theta[0]) & (tth <= self.pattern.two_theta[-1])
        reflections = [Reflection(tuple(int(v) for v in h), float(t), float(dd))
                       for h, t, dd in sorted(zip(phase.hkl_np[inside], tth[inside], d[inside]), key=lambda r: r[1])]
        orientation = (None if phase.po_direction is None
                       else (phase.po_direction, float(self.p[phase.slices["po"]][0])))
        return RefinedPhase(refined, phase.ops, atoms, reflections, preferred_orientation=orientation)


def refine(pattern: Pattern, structure: Structure | Sequence[Structure], start: Instrument | None = None,
           excluded: Sequence[tuple[float, float]] = (), max_nfev: int = 40) -> Refinement:
    """Refine to convergence, optional terms included, without progress reports."""
    problem = Rietveld(pattern, structure, start, excluded)
    for _ in problem.fit(max_nfev=max_nfev, terms=TERMS):
        pass
    return problem.result()


def refine_structure(pattern: Pattern, structure: Structure | Sequence[Structure],
                     excluded: Sequence[tuple[float, float]] = (),
                     start: Instrument | None = None) -> Generator[Progress, None, SolveResult]:
    """Rietveld of a given structure (or several phases), optional terms included, reporting
    progress; stop iterating to cancel. Without a start, the instrument is estimated from the
    pattern's peaks (model.preprocess.estimate_instrument)."""
    began = time.perf_counter()
    yield Progress("refine", 0.0, "setting up")
    start = start or estimate_instrument(pattern)
    yield Progress("refine", 0.0, "reflections and constraints")
    problem = Rietveld(pattern, structure, start, excluded)
    max_nfev = 40
    for nfev in problem.fit(max_nfev=max_nfev, terms=TERMS):
        step, steps, what = problem.status
        yield Progress("refine", (step + min(nfev, max_nfev) / max_nfev) / steps, what)
    outcome = problem.result()
    result = to_solve_result(outcome)
    result.timings["refine"] = time.perf_counter() - began
    yield Progress("refine", 1.0, f"Rwp {outcome.rwp:.2f} %")
    return result


def _orient(phase: Phase, axis: tuple[int, int, int], on: bool) -> None:
    phase.po_direction = axis if on else None


def _no_switch(on: bool) -> None:
    """A term that is only its parameters."""

"""Rietveld refinement of one or several structures (phases) against a powder pattern.

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
(trust-region reflective); Jacobian by forward differences of the torch model (exact columns for the linear
scales and background). The calculated pattern is model.simulate's: |F|² from
structure_factor_sq_torch and peaks from peaks_torch (LP, Kα doublet, shifts, asymmetry).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer, SymmetryUndeterminedError
from scipy.optimize import least_squares, lsq_linear

from model import constraints, scattering, simulate, uncertainty
from model.errors import InputError
from model.lockstep import lockstep
from model.pattern import KA2_RATIO, Pattern, Wavelength, kalpha_doublet, q_to_two_theta
from model.result import Fit, Progress, RefinementReport, Reflection, Site, SolveResult
from model.structure import atomic_radius_A

BACKGROUND_TERMS = 8
# scales and background start from a linear least-squares solution, so the first stage moves the cell
STAGES = (("scale", "bkg", "zero", "cell"), ("scale", "bkg", "zero", "cell", "profile"),
          ("scale", "bkg", "zero", "cell", "profile", "xyz", "biso"))
# optional terms, tried in this order after STAGES by refine() and refine_structure()
TERMS = ("doublet", "ka2", "displacement", "asymmetry", "polarisation", "po")
PAYS = 0.01  # a term is kept when it lowers χ² by at least this fraction
TRIAL_NFEV = 10  # evaluations of a term's trial (the term with the scales and background)
BISO_BOUNDS = (0.0, 8.0)  # Å²; a displacement parameter is a mean square amplitude, never negative
PO_BOUNDS = (0.4, 2.5)  # March–Dollase ratio
BURST_NFEV = 8  # least-squares evaluations per call (each call restarts its trust region)
REPORT_S = 0.1  # seconds of work between progress reports: a cancel waits about this long
# anti-bump restraints (solve candidates): fully occupied atoms refined closer than this × the sum
# of their atomic radii are pushed apart (the shared real structures keep ≥ 0.72 × bar partially
# occupied sites; measured: a TiPbO3 candidate refined its O to 1.15 Å from Pb, 0.48 ×, and won)
CONTACT_FACTOR = 0.7
CONTACT_SIGMA_A = 0.05  # Å a contact falls short by to cost χ² as much as all the pattern's points at GoF 1


@dataclass(frozen=True)
class ProfileStart:
    """Starting TCH pseudo-Voigt widths (U, V, W in deg², X, Y in deg), zero shift and sample
    displacement (deg 2θ; the displacement shift is this × cos θ), Bérar–Baldinozzi asymmetry
    (P1, P2), the fraction of the beam polarised in the diffraction plane (0.5: unpolarised) and the
    Kα2/Kα1 intensity ratio (None: the pattern's, or KA2_RATIO)."""

    u: float = 0.0
    v: float = 0.0
    w: float = 0.01
    x: float = 0.03
    y: float = 0.0
    zero: float = 0.0
    displacement: float = 0.0
    asymmetry: tuple[float, float] = (0.0, 0.0)
    polarisation: float = 0.5
    ka2_ratio: float | None = None

    @classmethod
    def from_fwhm(cls, fwhm_deg: float, zero: float = 0.0) -> ProfileStart:
        """Gaussian and Lorentzian (X/cosθ) widths that together give about the measured FWHM."""
        return cls(w=(0.7 * fwhm_deg) ** 2, x=0.45 * fwhm_deg, zero=zero)


@dataclass
class RefinedPhase:
    """One refined structure: its cell and atoms, symmetry, reflections (ticks), mass fraction of
    the crystalline sample (Hill–Howard) and preferred orientation (reciprocal direction hkl and
    March–Dollase ratio) where it was kept."""

    structure: Structure
    space_group: constraints.SpaceGroupOps
    atoms: list[Site]
    reflections: list[Reflection]
    weight_fraction: float = 1.0
    preferred_orientation: tuple[tuple[int, int, int], float] | None = None


@dataclass
class Refinement:
    """A finished refinement: the phases (the first is the main one), agreement (%), fit, profile."""

    phases: list[RefinedPhase]
    rwp: float
    rp: float
    gof: float
    fit: Fit
    profile: dict[str, Any] = field(default_factory=dict)  # ProfileStart's fields
    terms: list[str] = field(default_factory=list)  # the optional terms (of TERMS) kept
    wavelength: Wavelength | None = None  # as modelled (e.g. the doublet behind a stated mean)
    report: RefinementReport | None = None  # parameters with esds, Rexp, R-Bragg (model.uncertainty)

    structure = property(lambda self: self.phases[0].structure, doc="the first phase's structure")
    space_group = property(lambda self: self.phases[0].space_group)
    atoms = property(lambda self: self.phases[0].atoms)
    reflections = property(lambda self: self.phases[0].reflections)


_IMAGES = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)), dtype=torch.float64)


class _Phase:
    """One structure of the problem: constraints, reflections (hkl families) and parameter slices."""

    def __init__(self, structure: Structure, d_min_A: float, source: str | None):
        self.structure = structure
        self.ops = constraints.space_group_ops(structure)
        self.orbits = constraints.site_orbits(structure, self.ops)
        self.metric_basis = torch.tensor(constraints.metric_basis(self.ops))
        self.elements = sorted({_symbol(site) for site in structure})
        metric0 = structure.lattice.metric_tensor
        self.coeffs0 = np.array([float(np.sum(metric0 * e) / np.sum(e * e)) for e in self.metric_basis.numpy()])
        self.hkl_np, mult = constraints.hkl_families(metric0, self.ops, d_min_A)
        if len(self.hkl_np) == 0:
            raise InputError(source, f"no reflection of {structure.composition.reduced_formula} "
                                     "falls in the measured 2θ range")
        self.hkl = torch.tensor(self.hkl_np, dtype=torch.float64)
        self.mult = torch.tensor(mult)
        laue = np.concatenate([self.ops.rotations, -self.ops.rotations])
        # every Laue image of each family: a line's preferred-orientation factor is their mean
        self.images = torch.tensor(np.einsum("ri,nij->rnj", self.hkl_np, laue), dtype=torch.float64)
        self.po_candidates = simulate.distinct_po_directions(laue)
        self.po_direction: tuple[int, int, int] | None = None

        self.atom_order = np.concatenate([o.atom_indices for o in self.orbits])
        self.occupancy = torch.tensor([_occupancy(structure[i]) for i in self.atom_order])
        self.ff = torch.tensor(scattering.form_factor_coeffs([_symbol(structure[i]) for i in self.atom_order]))
        self.biso_index = torch.tensor([self.elements.index(_symbol(structure[i])) for i in self.atom_order])
        self.rotations = [torch.tensor(o.rotations, dtype=torch.float64) for o in self.orbits]
        radii = np.array([atomic_radius_A(_symbol(structure[i])) for i in self.atom_order])
        full = self.occupancy.numpy() >= 1 - 1e-6
        pairs = np.triu(np.outer(full, full), k=1)
        self.contact_pairs = torch.tensor(np.array(np.nonzero(pairs)), dtype=torch.long)
        self.contact_limits = torch.tensor(CONTACT_FACTOR * (radii[:, None] + radii[None, :])[pairs])
        self.sizes = {"scale": 1, "cell": len(self.coeffs0), "xyz": sum(o.basis.shape[1] for o in self.orbits),
                      "biso": len(self.elements), "po": 1}
        self.slices: dict[str, slice] = {}

    def metric(self, p: torch.Tensor) -> torch.Tensor:
        return torch.einsum("k,kij->ij", p[self.slices["cell"]], self.metric_basis)

    def frac_coords(self, p: torch.Tensor) -> torch.Tensor:
        free = p[self.slices["xyz"]]
        coords, offset = [], 0
        for orbit, rotations in zip(self.orbits, self.rotations):
            k = orbit.basis.shape[1]
            x = torch.tensor(orbit.x0) + torch.tensor(orbit.basis) @ free[offset:offset + k]
            offset += k
            coords.append(torch.einsum("mij,j->mi", rotations, x) + torch.tensor(orbit.translations))
        return torch.cat(coords)

    def contact_shortfalls(self, p: torch.Tensor) -> torch.Tensor:
        """(pairs,) Å by which each pair of fully occupied atoms is closer than its contact limit (≥ 0)."""
        frac = self.frac_coords(p)
        i, j = self.contact_pairs
        delta = frac[j] - frac[i]
        delta = (delta - torch.round(delta))[:, None, :] + _IMAGES  # the nearest image among the neighbours'
        distance = torch.einsum("pni,ij,pnj->pn", delta, self.metric(p), delta).min(dim=1).values.clamp_min(1e-12).sqrt()
        return (self.contact_limits - distance).clamp_min(0.0)

    def weights(self, p: torch.Tensor, metric: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """(R,) multiplicity·|F|² of each family, times its preferred-orientation factor."""
        biso = p[self.slices["biso"]][self.biso_index]
        f2 = scattering.structure_factor_sq_torch(self.hkl, d, self.frac_coords(p), self.ff, self.occupancy, biso)
        weight = self.mult * f2
        if self.po_direction is not None:
            recip = torch.linalg.inv(metric)
            n = torch.tensor(self.po_direction, dtype=torch.float64)
            along = torch.einsum("rmi,ij,j->rm", self.images, recip, n)
            norm2 = torch.einsum("rmi,ij,rmj->rm", self.images, recip, self.images) * (n @ recip @ n)
            weight = weight * simulate.march_dollase_factor(along ** 2 / norm2, p[self.slices["po"]][0])
        return weight


class Rietveld:
    """The refinement problem: pattern, phases, constraints and the packed parameter vector."""

    def __init__(self, pattern: Pattern, structure: Structure | Sequence[Structure],
                 start: ProfileStart | None = None, excluded: Sequence[tuple[float, float]] = (),
                 restrain_contacts: bool = False):
        """``restrain_contacts``: anti-bump restraints (CONTACT_FACTOR) on the atoms, for trial
        structures; a given structure is refined as it is."""
        if pattern.wavelength is None:
            raise InputError(pattern.provenance.path or None,
                             "the pattern states no wavelength: give one (e.g. --wavelength CuKa)")
        structures = [structure] if isinstance(structure, Structure) else list(structure)
        if not structures:
            raise InputError(pattern.provenance.path or None, "no structure to refine")
        self.pattern = pattern
        wl = self.wavelength = pattern.wavelength
        keep = np.ones(len(pattern), dtype=bool)
        for low, high in excluded:
            keep &= ~((pattern.two_theta >= low) & (pattern.two_theta <= high))
        self.keep = keep
        self.x = torch.tensor(pattern.two_theta[keep])
        self.y_obs = torch.tensor(pattern.intensity[keep])
        self.sqrt_w = torch.tensor(np.sqrt(_weights(pattern)[keep]))
        self.contact_weight = float(np.sqrt(keep.sum())) / CONTACT_SIGMA_A if restrain_contacts else 0.0
        tth_max = pattern.two_theta[-1] + 1.0
        d_min = wl.ka1 / (2 * np.sin(np.radians(min(tth_max, 179.0)) / 2))
        if self.doublet:
            d_min *= wl.ka1 / wl.ka2
        self.phases = [_Phase(s, d_min * 0.97, pattern.provenance.path or None) for s in structures]

        start = start or ProfileStart()
        sizes = {"bkg": BACKGROUND_TERMS, "zero": 1, "displacement": 1, "profile": 5, "asymmetry": 2,
                 "polarisation": 1, "ka2": 1}
        self.slices, offset = {}, 0
        for name, size in sizes.items():
            self.slices[name] = slice(offset, offset + size)
            offset += size
        for phase in self.phases:
            for name, size in phase.sizes.items():
                phase.slices[name] = slice(offset, offset + size)
                offset += size
        p = np.zeros(offset)
        p[self.slices["zero"]] = start.zero
        p[self.slices["displacement"]] = start.displacement
        p[self.slices["profile"]] = [start.u, start.v, start.w, start.x, start.y]
        p[self.slices["asymmetry"]] = start.asymmetry
        p[self.slices["polarisation"]] = start.polarisation
        p[self.slices["ka2"]] = next(r for r in (start.ka2_ratio, wl.ratio, KA2_RATIO) if r is not None)
        for phase in self.phases:
            p[phase.slices["cell"]] = phase.coeffs0
            p[phase.slices["biso"]] = [_biso(phase.structure, e) for e in phase.elements]
            p[phase.slices["po"]] = 1.0
        self.p = p
        self.refined: set[int] = set()  # indices of the parameters some stage has refined
        self.kept: list[str] = []  # optional terms kept
        self.status = (0, 1, "")  # (step, steps, what): where fit() is
        # (free indices, weighted Jacobian, on-a-bound mask) at the solution of the last recorded
        # least-squares step: the covariance behind model.uncertainty's esds
        self.jacobian: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._init_linear()

    @property
    def doublet(self) -> bool:
        """Kα2 modelled: a pattern that names Kα2 without its intensity was measured with it."""
        return self.wavelength.ka2 is not None and self.wavelength.ratio != 0

    # -- the model -------------------------------------------------------------------------
    def components(self, p: torch.Tensor, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each phase's Bragg profile at unit scale and the background, on 2θ points x."""
        params = self._profile_params(p)
        return [self.bragg(phase, p, x, params) for phase in self.phases], self._chebyshev(x) @ p[self.slices["bkg"]]

    def bragg(self, phase: _Phase, p: torch.Tensor, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """One phase's Bragg profile at unit scale on 2θ points x (one model evaluation)."""
        metric = phase.metric(p)
        d = torch.einsum("ri,ij,rj->r", phase.hkl, torch.linalg.inv(metric), phase.hkl).rsqrt()
        return simulate.peaks_torch(d[None], phase.weights(p, metric, d)[None], x,
                                    torch.tensor([self.wavelength.ka1]), params)[0]

    def _chebyshev(self, x: torch.Tensor) -> torch.Tensor:
        """(G, BACKGROUND_TERMS) Chebyshev polynomials of 2θ mapped onto −1…1 over the scan."""
        lo, hi = self.pattern.two_theta[0], self.pattern.two_theta[-1]
        return torch.special.chebyshev_polynomial_t(((2 * x - (lo + hi)) / (hi - lo))[:, None],
                                                    torch.arange(BACKGROUND_TERMS))

    def calculated(self, p: torch.Tensor, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        bragg, bkg = self.components(p, self.x if x is None else x)
        return sum(torch.exp(p[ph.slices["scale"]][0]) * b for ph, b in zip(self.phases, bragg)) + bkg, bkg

    def residual(self, p: torch.Tensor) -> torch.Tensor:
        return self.sqrt_w * (self.y_obs - self.calculated(p)[0])

    def too_close(self) -> bool:
        """Whether two fully occupied atoms are closer than the anti-bump limit (CONTACT_FACTOR)."""
        p = torch.tensor(self.p)
        with torch.no_grad():
            return any(bool(torch.any(phase.contact_shortfalls(p) > 0)) for phase in self.phases)

    def restraints(self, p: torch.Tensor) -> torch.Tensor:
        """The weighted restraint residuals least squares adds to the pattern's (none without restraints)."""
        if not self.contact_weight:
            return p.new_zeros(0)
        return self.contact_weight * torch.cat([phase.contact_shortfalls(p) for phase in self.phases])

    def _profile_params(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        u, v, w, x, y = p[self.slices["profile"]]
        wl = self.wavelength
        return {"u": u[None], "v": v[None], "w": w[None], "x": x[None], "y": y[None],
                "zero": p[self.slices["zero"]], "shift_cos": p[self.slices["displacement"]],
                "asymmetry": p[self.slices["asymmetry"]][None], "polarisation": p[self.slices["polarisation"]],
                "ka2_ratio": p[self.slices["ka2"]] if self.doublet else torch.zeros(1, dtype=p.dtype),
                "ka2_over_ka1": torch.tensor([wl.ka2 / wl.ka1 if self.doublet else 1.0])}

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
        """Parameter indices of the named groups (a phase group in every phase; preferred
        orientation only in phases that have a direction, Kα2 only with a doublet)."""
        index = np.arange(self.p.size)
        parts = []
        for name in names:
            if name in self.slices:
                if name != "ka2" or self.doublet:
                    parts.append(index[self.slices[name]])
                continue
            parts += [index[ph.slices[name]] for ph in self.phases if name != "po" or ph.po_direction is not None]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=int)

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
        self._init_linear()
        chi2 = self._chi2()
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
                    trial = self._chi2()
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
            doublet = kalpha_doublet(self.wavelength)
            if self.wavelength.ka2 is not None or doublet == self.wavelength:
                return []
            # Kα1 sits below the mean: the cell, zero and widths move with the model
            return [[(self._indices(("zero", "cell", "profile")), partial(self._model_doublet, doublet))]]
        if term not in TERMS:
            raise ValueError(f"unknown optional term {term!r}: one of {', '.join(TERMS)}")
        if term == "ka2" and not self.doublet:
            return []
        return [[(index[self.slices[term]], _no_switch)]]

    def _model_doublet(self, doublet: Wavelength, on: bool) -> None:
        self.wavelength = doublet if on else self.pattern.wavelength
        self.p[self.slices["ka2"]] = doublet.ratio

    def _chi2(self) -> float:
        with torch.no_grad():
            return float(torch.sum(self.residual(torch.tensor(self.p)) ** 2))

    def _burst(self, free: np.ndarray, nfev: int, pause: Callable[[], None]):
        """least_squares from the current parameters; ``pause()`` before every model evaluation."""
        full = torch.tensor(self.p)
        index = torch.tensor(free)
        scales = {ph.slices["scale"].start: k for k, ph in enumerate(self.phases)}
        background = self.slices["bkg"]
        # parameters only one phase's peaks depend on: their columns re-evaluate that phase alone
        owner = {i: k for k, ph in enumerate(self.phases) for name in ("cell", "xyz", "biso", "po")
                 for i in range(ph.slices[name].start, ph.slices[name].stop)}

        def fun(q):
            pause()
            p = full.index_put((index,), q)
            return torch.cat([self.residual(p), self.restraints(p)])

        def res_np(q):
            with torch.no_grad():
                return fun(torch.tensor(q)).numpy()

        def jac_np(q):
            # scales and background enter linearly: their columns are exact. The rest by forward
            # differences of the torch model: measured 12× faster here than torch.func.jvp, whose
            # forward mode goes through slow decompositions of the profile's operations
            q = torch.tensor(q)
            p = full.index_put((index,), q)
            pause()
            with torch.no_grad():
                params = self._profile_params(p)
                scaled = [torch.exp(p[ph.slices["scale"]][0]) * self.bragg(ph, p, self.x, params) for ph in self.phases]
                cheb = self._chebyshev(self.x)
                restraints = self.restraints(p)
                base = torch.cat([self.sqrt_w * (self.y_obs - sum(scaled) - cheb @ p[background]), restraints])
                unrestrained = restraints.new_zeros(restraints.shape)
                columns = []
                for column, i in enumerate(free.tolist()):
                    if i in scales:
                        columns.append(torch.cat([-self.sqrt_w * scaled[scales[i]], unrestrained]))
                        continue
                    if background.start <= i < background.stop:
                        columns.append(torch.cat([-self.sqrt_w * cheb[:, i - background.start], unrestrained]))
                        continue
                    step = 1e-6 * max(abs(float(q[column])), 1e-2)
                    shifted = q.clone()
                    shifted[column] += step
                    if i in owner:
                        k = owner[i]
                        phase = self.phases[k]
                        moved = full.index_put((index,), shifted)
                        pause()
                        new = torch.exp(moved[phase.slices["scale"]][0]) * self.bragg(phase, moved, self.x, params)
                        columns.append(torch.cat([-self.sqrt_w * (new - scaled[k]),
                                                  self.restraints(moved) - restraints]) / step)
                    else:
                        columns.append((fun(shifted) - base) / step)
            return torch.stack(columns, 1).numpy()

        lower, upper = self._bounds(free)
        x0 = np.clip(self.p[free], lower + 1e-12, upper - 1e-12)
        result = least_squares(res_np, x0, jac=jac_np, bounds=(lower, upper), method="trf",
                               x_scale="jac", max_nfev=nfev, ftol=1e-5, xtol=1e-7)
        self.p[free] = result.x
        return result

    def _bounds(self, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lower = np.full(self.p.size, -np.inf)
        upper = np.full(self.p.size, np.inf)

        def bound(where: slice, low, high):
            lower[where], upper[where] = low, high

        bound(self.slices["profile"], [0.0, -1.0, 1e-6, 0.0, 0.0], [2.0, 1.0, 1.0, 1.0, 1.0])
        bound(self.slices["zero"], -0.5, 0.5)
        bound(self.slices["displacement"], -1.0, 1.0)
        bound(self.slices["asymmetry"], -0.5, 0.5)
        bound(self.slices["polarisation"], 0.0, 1.0)
        bound(self.slices["ka2"], 0.3, 0.7)
        for phase in self.phases:
            bound(phase.slices["biso"], *BISO_BOUNDS)
            bound(phase.slices["po"], *PO_BOUNDS)
            xyz = phase.slices["xyz"]
            bound(xyz, self.p[xyz] - 0.15, self.p[xyz] + 0.15)
            cell = phase.slices["cell"]
            span = np.abs(self.p[cell]) * 0.05 + 0.05
            bound(cell, self.p[cell] - span, self.p[cell] + span)
        return lower[free], upper[free]

    def _init_linear(self) -> None:
        """Scales (≥ 0) and background by linear least squares for the current model."""
        with torch.no_grad():
            bragg, _ = self.components(torch.tensor(self.p), self.x)
            design = torch.cat([torch.stack(bragg, 1), self._chebyshev(self.x)], 1) * self.sqrt_w[:, None]
            target = (self.y_obs * self.sqrt_w).numpy()
        n = len(self.phases)
        lower = np.r_[np.zeros(n), np.full(BACKGROUND_TERMS, -np.inf)]
        coef = lsq_linear(design.numpy(), target, bounds=(lower, np.inf)).x
        floor = 1e-12 * float(np.max(np.abs(target))) / max(float(design[:, :n].abs().max()), 1e-300)
        for phase, c in zip(self.phases, coef[:n]):
            self.p[phase.slices["scale"]] = np.log(max(c, floor))
        self.p[self.slices["bkg"]] = coef[n:]

    # -- results ---------------------------------------------------------------------------
    def result(self) -> Refinement:
        p = torch.tensor(self.p)
        with torch.no_grad():
            calc_all, bkg_all = (t.numpy() for t in self.calculated(p, torch.tensor(self.pattern.two_theta)))
            metrics = [phase.metric(p).numpy() for phase in self.phases]
            frac = [phase.frac_coords(p).numpy() for phase in self.phases]
        yo = self.pattern.intensity[self.keep]
        yc = calc_all[self.keep]
        w = self.sqrt_w.numpy() ** 2
        rwp = 100 * np.sqrt(np.sum(w * (yo - yc) ** 2) / np.sum(w * yo**2))
        rp = 100 * np.sum(np.abs(yo - yc)) / np.sum(np.abs(yo))
        gof = float(np.sqrt(np.sum(w * (yo - yc) ** 2) / max(yo.size - len(self.refined), 1)))
        phases = [self._refined_phase(phase, metric, xyz) for phase, metric, xyz in zip(self.phases, metrics, frac)]
        # Hill–Howard: mass ∝ scale · (cell mass) · (cell volume)
        masses = np.array([np.exp(self.p[ph.slices["scale"]][0]) * r.structure.composition.weight * r.structure.volume
                           for ph, r in zip(self.phases, phases)])
        for refined, fraction in zip(phases, masses / masses.sum()):
            refined.weight_fraction = float(fraction)
        fit = Fit(self.pattern.two_theta, self.pattern.intensity, calc_all, bkg_all)
        profile: dict[str, Any] = dict(zip(("u", "v", "w", "x", "y"), map(float, self.p[self.slices["profile"]])))
        profile["zero"] = float(self.p[self.slices["zero"]][0])
        profile["displacement"] = float(self.p[self.slices["displacement"]][0])
        profile["asymmetry"] = tuple(float(v) for v in self.p[self.slices["asymmetry"]])
        profile["polarisation"] = float(self.p[self.slices["polarisation"]][0])
        profile["ka2_ratio"] = float(self.p[self.slices["ka2"]][0]) if self.doublet else None
        return Refinement(phases, float(rwp), float(rp), gof, fit, profile, list(self.kept), self.wavelength,
                          uncertainty.report(self, profile))

    def _refined_phase(self, phase: _Phase, metric: np.ndarray, frac: np.ndarray) -> RefinedPhase:
        lattice = Lattice(_matrix_from_metric(metric))
        structure = phase.structure
        species = [structure[i].species for i in phase.atom_order]
        refined = Structure(lattice, species, np.mod(frac, 1.0))
        biso = dict(zip(phase.elements, self.p[phase.slices["biso"]]))
        orbit_of = {int(i): n for n, orbit in enumerate(phase.orbits) for i in orbit.atom_indices}
        labels = [f"{len(orbit.atom_indices)}{orbit.wyckoff}" for orbit in phase.orbits]
        atoms = [Site(_symbol(structure[i]), tuple(float(v) for v in np.mod(frac[k], 1.0)),
                      float(phase.occupancy[k]), float(biso[_symbol(structure[i])]),
                      labels[orbit_of[int(i)]], orbit_of[int(i)])
                 for k, i in enumerate(phase.atom_order)]
        d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", phase.hkl_np, np.linalg.inv(metric), phase.hkl_np))
        cos_theta = np.sqrt(np.clip(1 - (self.wavelength.ka1 / (2 * d)) ** 2, 0, 1))
        shift = self.p[self.slices["zero"]][0] + self.p[self.slices["displacement"]][0] * cos_theta
        tth = q_to_two_theta(2 * np.pi / d, self.wavelength.ka1) + shift
        inside = (tth >= self.pattern.two_theta[0]) & (tth <= self.pattern.two_theta[-1])
        reflections = [Reflection(tuple(int(v) for v in h), float(t), float(dd))
                       for h, t, dd in sorted(zip(phase.hkl_np[inside], tth[inside], d[inside]), key=lambda r: r[1])]
        orientation = (None if phase.po_direction is None
                       else (phase.po_direction, float(self.p[phase.slices["po"]][0])))
        return RefinedPhase(refined, phase.ops, atoms, reflections, preferred_orientation=orientation)


def refine(pattern: Pattern, structure: Structure | Sequence[Structure], start: ProfileStart | None = None,
           excluded: Sequence[tuple[float, float]] = (), max_nfev: int = 40) -> Refinement:
    """Refine to convergence, optional terms included, without progress reports."""
    problem = Rietveld(pattern, structure, start, excluded)
    for _ in problem.fit(max_nfev=max_nfev, terms=TERMS):
        pass
    return problem.result()


def refine_structure(pattern: Pattern, structure: Structure | Sequence[Structure],
                     excluded: Sequence[tuple[float, float]] = (),
                     start: ProfileStart | None = None) -> Generator[Progress, None, SolveResult]:
    """Rietveld of a given structure (or several phases), optional terms included, reporting
    progress; stop iterating to cancel."""
    from model.preprocess import estimate_start

    began = time.perf_counter()
    yield Progress("refine", 0.0, "setting up")
    start = start or estimate_start(pattern)
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


def to_solve_result(outcome: Refinement) -> SolveResult:
    """The first phase as a SolveResult (the others in its ``phases``), each cell with its origin
    moved to the space group's standard origin, so the Wyckoff coordinates read as in the
    International Tables (a common shift changes no intensity)."""
    results = []
    for phase in outcome.phases:
        ops = phase.space_group
        shift = _standard_origin(phase.structure)
        atoms = [replace(atom, xyz=tuple(float(v) for v in np.round(np.add(atom.xyz, shift), 10) % 1.0))
                 for atom in phase.atoms]
        results.append(SolveResult(lattice=tuple(float(v) for v in phase.structure.lattice.parameters),
                                   space_group=ops.symbol, space_group_number=ops.number,
                                   crystal_system=ops.crystal_system, atoms=atoms, rwp=outcome.rwp,
                                   rp=outcome.rp, gof=outcome.gof, reflections=phase.reflections,
                                   message=_description(outcome, phase), weight_fraction=phase.weight_fraction))
    main = results[0]
    main.fit = outcome.fit
    main.refinement = outcome.report
    main.phases = results[1:]
    return main


def _description(outcome: Refinement, phase: RefinedPhase) -> str:
    """The optional terms a refinement kept, in words."""
    profile, wl = outcome.profile, outcome.wavelength
    words = []
    if "doublet" in outcome.terms:
        words.append(f"Kα1/Kα2 doublet {wl.ka1:.5f}/{wl.ka2:.5f} Å (the stated wavelength is their mean)")
    if "ka2" in outcome.terms:
        words.append(f"Kα2/Kα1 {profile['ka2_ratio']:.3f}")
    if "displacement" in outcome.terms:
        words.append(f"sample displacement {profile['displacement']:+.4f}° × cos θ")
    if "asymmetry" in outcome.terms:
        words.append("asymmetry P1 {:+.4f} P2 {:+.4f}".format(*profile["asymmetry"]))
    if "polarisation" in outcome.terms:
        words.append(f"beam polarised {profile['polarisation']:.2f} in the diffraction plane")
    if phase.preferred_orientation is not None:
        (h, k, l), ratio = phase.preferred_orientation
        words.append(f"March–Dollase r {ratio:.3f} along [{h} {k} {l}]*")
    return "; ".join(words)


def _orient(phase: _Phase, axis: tuple[int, int, int], on: bool) -> None:
    phase.po_direction = axis if on else None


def _no_switch(on: bool) -> None:
    """A term that is only its parameters."""


def _standard_origin(structure: Structure) -> np.ndarray:
    """The fractional shift (in this cell's basis) that puts spglib's standard origin at 0 0 0;
    none where atoms closer than the tolerance leave spglib without a symmetry (a refined candidate
    can bring two atoms together)."""
    try:
        dataset = SpacegroupAnalyzer(structure, symprec=constraints.SYMPREC).get_symmetry_dataset()
    except SymmetryUndeterminedError:
        return np.zeros(3)
    return np.linalg.solve(np.asarray(dataset.transformation_matrix), np.asarray(dataset.origin_shift))


def _weights(pattern: Pattern) -> np.ndarray:
    """1/σ² where the file gives σ; otherwise Poisson-like 1/max(I, floor), the floor taken from the
    weakest measured (positive) intensities: in a low-count scan the many zero-count points would
    otherwise outweigh all the peaks."""
    if pattern.sigma is not None and np.all(pattern.sigma > 0):
        return 1.0 / pattern.sigma**2
    y = pattern.intensity
    positive = y[y > 0]
    weakest = float(np.percentile(positive, 5)) if positive.size else 0.0
    floor = max(weakest, 1e-6 * float(np.max(np.abs(y))), 1e-12)
    return 1.0 / np.maximum(y, floor)


def _matrix_from_metric(metric: np.ndarray) -> np.ndarray:
    a, b, c = np.sqrt(np.diag(metric))
    alpha = np.degrees(np.arccos(metric[1, 2] / (b * c)))
    beta = np.degrees(np.arccos(metric[0, 2] / (a * c)))
    gamma = np.degrees(np.arccos(metric[0, 1] / (a * b)))
    return Lattice.from_parameters(a, b, c, alpha, beta, gamma).matrix


def _symbol(site) -> str:
    return max(site.species.items(), key=lambda kv: kv[1])[0].symbol


def _occupancy(site) -> float:
    return float(sum(site.species.values()))


def _biso(structure: Structure, element: str) -> float:
    values = [site.properties.get("biso") for site in structure if _symbol(site) == element]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else 0.5

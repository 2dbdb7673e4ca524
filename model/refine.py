"""Rietveld refinement of a structure against a powder pattern.

Refined: scale, zero shift (degrees 2θ), cell metric (within the space group's constraints),
TCH pseudo-Voigt U, V, W (deg²) and X, Y (deg), Chebyshev background, free Wyckoff coordinates
and one Biso (Å²) per element. Least squares by scipy (trust-region reflective); Jacobian by
forward differences of the torch model (exact
columns for the linear scale and background). The calculated pattern is model.simulate's: |F|² from
structure_factor_sq_torch and the profile from profile_torch (LP, Kα doublet, zero shift included).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Generator, Sequence

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy.optimize import least_squares

from model import constraints, scattering, simulate
from model.errors import InputError
from model.lockstep import lockstep
from model.pattern import Pattern, q_to_two_theta
from model.result import Fit, Progress, Reflection, Site, SolveResult

BACKGROUND_TERMS = 8
# scale and background start from a linear least-squares solution, so the first stage moves the cell
STAGES = (("scale", "bkg", "zero", "cell"), ("scale", "bkg", "zero", "cell", "profile"),
          ("scale", "bkg", "zero", "cell", "profile", "xyz", "biso"))
BISO_BOUNDS = (-0.5, 8.0)  # Å²
BURST_NFEV = 8  # least-squares evaluations per call (each call restarts its trust region)
REPORT_S = 0.1  # seconds of work between progress reports: a cancel waits about this long


@dataclass(frozen=True)
class ProfileStart:
    """Starting TCH pseudo-Voigt widths (U, V, W in deg², X, Y in deg) and zero shift (deg 2θ)."""

    u: float = 0.0
    v: float = 0.0
    w: float = 0.01
    x: float = 0.03
    y: float = 0.0
    zero: float = 0.0

    @classmethod
    def from_fwhm(cls, fwhm_deg: float, zero: float = 0.0) -> "ProfileStart":
        """Gaussian and Lorentzian (X/cosθ) widths that together give about the measured FWHM."""
        return cls(w=(0.7 * fwhm_deg) ** 2, x=0.45 * fwhm_deg, zero=zero)


@dataclass
class Refinement:
    """A finished refinement: refined structure, agreement (%), fit and the reflections."""

    structure: Structure
    rwp: float
    rp: float
    gof: float
    fit: Fit
    reflections: list[Reflection]
    space_group: constraints.SpaceGroupOps
    profile: dict[str, float] = field(default_factory=dict)
    atoms: list[Site] = field(default_factory=list)


class Rietveld:
    """The refinement problem: pattern, structure, constraints and the packed parameter vector."""

    def __init__(self, pattern: Pattern, structure: Structure, start: ProfileStart | None = None,
                 excluded: Sequence[tuple[float, float]] = ()):
        if pattern.wavelength is None:
            raise InputError(pattern.provenance.path or None,
                             "the pattern states no wavelength: give one (e.g. --wavelength CuKa)")
        self.pattern = pattern
        self.structure = structure
        self.ops = constraints.space_group_ops(structure)
        self.orbits = constraints.site_orbits(structure, self.ops)
        self.metric_basis = constraints.metric_basis(self.ops)
        self.elements = sorted({site.specie.symbol for site in structure})
        keep = np.ones(len(pattern), dtype=bool)
        for low, high in excluded:
            keep &= ~((pattern.two_theta >= low) & (pattern.two_theta <= high))
        self.keep = keep
        self.x = torch.tensor(pattern.two_theta[keep])
        self.y_obs = torch.tensor(pattern.intensity[keep])
        self.sqrt_w = torch.tensor(np.sqrt(_weights(pattern)[keep]))
        hi = pattern.two_theta[-1]

        metric0 = structure.lattice.metric_tensor
        coeffs0 = np.array([np.sum(metric0 * e) / np.sum(e * e) for e in self.metric_basis])
        wl = pattern.wavelength
        tth_max = hi + 1.0
        d_min = wl.ka1 / (2 * np.sin(np.radians(min(tth_max, 179.0)) / 2))
        if wl.has_doublet:
            d_min *= wl.ka1 / wl.ka2
        self.hkl_np, mult = constraints.hkl_families(metric0, self.ops, d_min * 0.97)
        if len(self.hkl_np) == 0:
            raise InputError(pattern.provenance.path or None, "no reflection falls in the measured 2θ range")
        self.hkl = torch.tensor(self.hkl_np, dtype=torch.float64)
        self.mult = torch.tensor(mult)

        atoms = np.concatenate([o.atom_indices for o in self.orbits])
        self.atom_order = atoms
        self.occupancy = torch.tensor([_occupancy(structure[i]) for i in atoms])
        self.ff = torch.tensor(scattering.form_factor_coeffs([_symbol(structure[i]) for i in atoms]))
        self.biso_index = torch.tensor([self.elements.index(_symbol(structure[i])) for i in atoms])

        start = start or ProfileStart()
        sizes = {"scale": 1, "bkg": BACKGROUND_TERMS, "zero": 1, "cell": len(coeffs0), "profile": 5,
                 "xyz": sum(o.basis.shape[1] for o in self.orbits), "biso": len(self.elements)}
        self.slices, offset = {}, 0
        for name, size in sizes.items():
            self.slices[name] = slice(offset, offset + size)
            offset += size
        p = np.zeros(offset)
        p[self.slices["zero"]] = start.zero
        p[self.slices["cell"]] = coeffs0
        p[self.slices["profile"]] = [start.u, start.v, start.w, start.x, start.y]
        p[self.slices["biso"]] = [_biso(structure, e) for e in self.elements]
        self.p = p
        self._init_linear()

    # -- the model -------------------------------------------------------------------------
    def metric(self, p: torch.Tensor) -> torch.Tensor:
        basis = torch.tensor(self.metric_basis)
        return torch.einsum("k,kij->ij", p[self.slices["cell"]], basis)

    def frac_coords(self, p: torch.Tensor) -> torch.Tensor:
        free = p[self.slices["xyz"]]
        coords, offset = [], 0
        for orbit in self.orbits:
            k = orbit.basis.shape[1]
            x = torch.tensor(orbit.x0) + torch.tensor(orbit.basis) @ free[offset:offset + k]
            offset += k
            coords.append(torch.einsum("mij,j->mi", torch.tensor(orbit.rotations, dtype=torch.float64), x)
                          + torch.tensor(orbit.translations))
        return torch.cat(coords)

    def d_spacings(self, p: torch.Tensor) -> torch.Tensor:
        recip = torch.linalg.inv(self.metric(p))
        return torch.einsum("ri,ij,rj->r", self.hkl, recip, self.hkl).rsqrt()

    def components(self, p: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised Bragg profile (max 1) and background on 2θ points x."""
        d = self.d_spacings(p)
        biso = p[self.slices["biso"]][self.biso_index]
        f2 = scattering.structure_factor_sq_torch(self.hkl, d, self.frac_coords(p), self.ff, self.occupancy, biso)
        bragg = simulate.profile_torch(d[None], (self.mult * f2)[None], x, self._wavelength(),
                                       self._profile_params(p))[0]
        return bragg, self.background(p, x)

    def background(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._chebyshev(x) @ p[self.slices["bkg"]]

    def _chebyshev(self, x: torch.Tensor) -> torch.Tensor:
        """(G, BACKGROUND_TERMS) Chebyshev polynomials of 2θ mapped onto −1…1 over the scan."""
        lo, hi = self.pattern.two_theta[0], self.pattern.two_theta[-1]
        return torch.special.chebyshev_polynomial_t(((2 * x - (lo + hi)) / (hi - lo))[:, None],
                                                    torch.arange(BACKGROUND_TERMS))

    def calculated(self, p: torch.Tensor, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x if x is None else x
        bragg, bkg = self.components(p, x)
        return torch.exp(p[self.slices["scale"]][0]) * bragg + bkg, bkg

    def residual(self, p: torch.Tensor) -> torch.Tensor:
        return self.sqrt_w * (self.y_obs - self.calculated(p)[0])

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, stages: Sequence[Sequence[str]] = STAGES, max_nfev: int = 40,
            report_s: float = REPORT_S) -> Generator[int, None, None]:
        """Refine stage by stage, yielding the stage's evaluation count after each least-squares burst
        and inside it at the first model evaluation (residual or Jacobian column) ``report_s``
        seconds after the last yield: a cancel waits about ``report_s`` plus one evaluation."""
        for stage in stages:
            free = np.concatenate([np.arange(self.p.size)[self.slices[name]] for name in stage])
            done = 0
            while done < max_nfev:
                burst = partial(self._burst, free, min(BURST_NFEV, max_nfev - done))
                result = yield from lockstep(burst, report_s, done)
                done += result.nfev
                yield done
                if result.status != 0:
                    break

    def _burst(self, free: np.ndarray, nfev: int, pause: Callable[[], None]):
        """least_squares from the current parameters; ``pause()`` before every model evaluation."""
        full = torch.tensor(self.p)
        index = torch.tensor(free)

        def fun(q):
            pause()
            return self.residual(full.index_put((index,), q))

        def res_np(q):
            with torch.no_grad():
                return fun(torch.tensor(q)).numpy()

        linear = {int(i) for name in ("scale", "bkg") for i in np.arange(self.p.size)[self.slices[name]]}

        def jac_np(q):
            # scale and background enter linearly: their columns are exact. The rest by forward
            # differences of the torch model: measured 12× faster here than torch.func.jvp, whose
            # forward mode goes through slow decompositions of the profile's operations
            q = torch.tensor(q)
            p = full.index_put((index,), q)
            pause()
            with torch.no_grad():
                bragg, bkg = self.components(p, self.x)
                base = self.sqrt_w * (self.y_obs - torch.exp(p[self.slices["scale"]][0]) * bragg - bkg)
                cheb = self._chebyshev(self.x)
                columns = []
                for column, i in enumerate(free):
                    if i == self.slices["scale"].start:
                        columns.append(-self.sqrt_w * torch.exp(p[i]) * bragg)
                    elif i in linear:
                        columns.append(-self.sqrt_w * cheb[:, i - self.slices["bkg"].start])
                    else:
                        step = 1e-6 * max(abs(float(q[column])), 1e-2)
                        shifted = q.clone()
                        shifted[column] += step
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
        prof = self.slices["profile"]
        lower[prof] = [0.0, -1.0, 1e-6, 0.0, 0.0]
        upper[prof] = [2.0, 1.0, 1.0, 1.0, 1.0]
        lower[self.slices["zero"]], upper[self.slices["zero"]] = -0.5, 0.5
        lower[self.slices["biso"]], upper[self.slices["biso"]] = BISO_BOUNDS
        xyz = self.slices["xyz"]
        lower[xyz] = self.p[xyz] - 0.15
        upper[xyz] = self.p[xyz] + 0.15
        cell = self.slices["cell"]
        span = np.abs(self.p[cell]) * 0.05 + 0.05
        lower[cell], upper[cell] = self.p[cell] - span, self.p[cell] + span
        return lower[free], upper[free]

    def _init_linear(self) -> None:
        """Scale and background by linear least squares for the starting structure and profile."""
        p = torch.tensor(self.p)
        with torch.no_grad():
            bragg, _ = self.components(p, self.x)
            cheb = self._chebyshev(self.x)
            design = torch.cat([bragg[:, None], cheb], 1) * self.sqrt_w[:, None]
            coef = np.linalg.lstsq(design.numpy(), (self.y_obs * self.sqrt_w).numpy(), rcond=None)[0]
        self.p[self.slices["scale"]] = np.log(max(coef[0], 1e-12 * float(self.y_obs.abs().max())))
        self.p[self.slices["bkg"]] = coef[1:]

    def _wavelength(self) -> torch.Tensor:
        return torch.tensor([self.pattern.wavelength.ka1])

    def _profile_params(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        wl = self.pattern.wavelength
        u, v, w, x, y = p[self.slices["profile"]]
        ratio = wl.ratio if wl.has_doublet else 0.0
        ka2 = wl.ka2 / wl.ka1 if wl.has_doublet else 1.0
        return {"u": u[None], "v": v[None], "w": w[None], "x": x[None], "y": y[None],
                "zero": p[self.slices["zero"]], "ka2_ratio": torch.tensor([ratio]),
                "ka2_over_ka1": torch.tensor([ka2])}

    # -- results ---------------------------------------------------------------------------
    def result(self) -> Refinement:
        p = torch.tensor(self.p)
        with torch.no_grad():
            x_all = torch.tensor(self.pattern.two_theta)
            calc_all, bkg_all = self.calculated(p, x_all)
            calc_all, bkg_all = calc_all.numpy(), bkg_all.numpy()
            frac = self.frac_coords(p).numpy()
            metric = self.metric(p).numpy()
            d = self.d_spacings(p).numpy()
        yo = self.pattern.intensity[self.keep]
        yc = calc_all[self.keep]
        w = self.sqrt_w.numpy() ** 2
        rwp = 100 * np.sqrt(np.sum(w * (yo - yc) ** 2) / np.sum(w * yo**2))
        rp = 100 * np.sum(np.abs(yo - yc)) / np.sum(np.abs(yo))
        free = sum(self.slices[name].stop - self.slices[name].start for name in self.slices)
        gof = float(np.sqrt(np.sum(w * (yo - yc) ** 2) / max(yo.size - free, 1)))
        lattice = Lattice(_matrix_from_metric(metric))
        species = [self.structure[i].species for i in self.atom_order]
        refined = Structure(lattice, species, np.mod(frac, 1.0))
        biso = dict(zip(self.elements, self.p[self.slices["biso"]]))
        orbit_of = {int(i): n for n, orbit in enumerate(self.orbits) for i in orbit.atom_indices}
        labels = [f"{len(orbit.atom_indices)}{orbit.wyckoff}" for orbit in self.orbits]
        atoms = [Site(_symbol(self.structure[i]), tuple(float(v) for v in np.mod(frac[k], 1.0)),
                      float(self.occupancy[k]), float(biso[_symbol(self.structure[i])]),
                      labels[orbit_of[int(i)]], orbit_of[int(i)])
                 for k, i in enumerate(self.atom_order)]
        wl = self.pattern.wavelength.ka1
        tth = q_to_two_theta(2 * np.pi / d, wl) + self.p[self.slices["zero"]][0]
        inside = (tth >= self.pattern.two_theta[0]) & (tth <= self.pattern.two_theta[-1])
        reflections = [Reflection(tuple(int(v) for v in h), float(t), float(dd))
                       for h, t, dd in sorted(zip(self.hkl_np[inside], tth[inside], d[inside]), key=lambda r: r[1])]
        fit = Fit(self.pattern.two_theta, self.pattern.intensity, calc_all, bkg_all)
        profile = dict(zip(("u", "v", "w", "x", "y"), map(float, self.p[self.slices["profile"]])))
        profile["zero"] = float(self.p[self.slices["zero"]][0])
        return Refinement(refined, float(rwp), float(rp), gof, fit, reflections, self.ops, profile, atoms)


def refine(pattern: Pattern, structure: Structure, start: ProfileStart | None = None,
           excluded: Sequence[tuple[float, float]] = (), max_nfev: int = 40) -> Refinement:
    """Refine to convergence without progress reports (used by the solve for each candidate)."""
    problem = Rietveld(pattern, structure, start, excluded)
    for _ in problem.fit(max_nfev=max_nfev):
        pass
    return problem.result()


def refine_structure(pattern: Pattern, structure: Structure, excluded: Sequence[tuple[float, float]] = (),
                     start: ProfileStart | None = None) -> Generator[Progress, None, SolveResult]:
    """Rietveld of a given structure, reporting progress; stop iterating to cancel."""
    from model.preprocess import estimate_start

    began = time.perf_counter()
    yield Progress("refine", 0.0, "setting up")
    start = start or estimate_start(pattern)
    yield Progress("refine", 0.0, "reflections and constraints")
    problem = Rietveld(pattern, structure, start, excluded)
    n = len(STAGES)
    for i, stage in enumerate(STAGES):
        for nfev in problem.fit([stage]):
            yield Progress("refine", (i + min(nfev, 40) / 40) / n, f"stage {i + 1}/{n}: {', '.join(stage)}")
    outcome = problem.result()
    result = to_solve_result(outcome)
    result.timings["refine"] = time.perf_counter() - began
    yield Progress("refine", 1.0, f"Rwp {outcome.rwp:.2f} %")
    return result


def to_solve_result(outcome: Refinement) -> SolveResult:
    """The refined cell with its origin moved to the space group's standard origin, so the Wyckoff
    coordinates read as in the International Tables (a common shift changes no intensity)."""
    ops = outcome.space_group
    shift = _standard_origin(outcome.structure)
    atoms = [replace(atom, xyz=tuple(float(v) for v in np.round(np.add(atom.xyz, shift), 10) % 1.0))
             for atom in outcome.atoms]
    return SolveResult(lattice=tuple(float(v) for v in outcome.structure.lattice.parameters),
                       space_group=ops.symbol, space_group_number=ops.number,
                       crystal_system=ops.crystal_system, atoms=atoms, rwp=outcome.rwp,
                       rp=outcome.rp, gof=outcome.gof, fit=outcome.fit, reflections=outcome.reflections)


def _standard_origin(structure: Structure) -> np.ndarray:
    """The fractional shift (in this cell's basis) that puts spglib's standard origin at 0 0 0."""
    dataset = SpacegroupAnalyzer(structure, symprec=constraints.SYMPREC).get_symmetry_dataset()
    return np.linalg.solve(np.asarray(dataset.transformation_matrix), np.asarray(dataset.origin_shift))


def _weights(pattern: Pattern) -> np.ndarray:
    """1/σ² where the file gives σ; otherwise Poisson-like 1/max(I, floor)."""
    if pattern.sigma is not None and np.all(pattern.sigma > 0):
        return 1.0 / pattern.sigma**2
    y = pattern.intensity
    floor = max(float(np.percentile(np.abs(y), 5)), 1e-6 * float(np.max(np.abs(y))), 1e-12)
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

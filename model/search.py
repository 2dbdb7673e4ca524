"""Wyckoff search: atom placements in indexed cells and space groups, found by a beam search on the
score of model.scoring.

Search: one "arm" per cell × space group × atoms per cell. In an arm the elements are placed
heaviest first (the heavy-atom method: heavy atoms dominate the intensities, so their placement
can be judged before light atoms are placed), one Wyckoff orbit at a time, as a beam search: every
kept partial structure is extended by every orbit that leaves the rest of the element placeable
(an orbit without free coordinates holds one element), the new free coordinates are found by
random sampling and gradient descent from the best distinct samples (torch, all trials of a step
in a few tensors), and the best distinct partial structures of each number of atoms still to
place go on (one missing atoms scores worse by their absence alone); once an element is placed,
all coordinates placed so far are polished together before the next, lighter one. The best fillings then get
their coordinates searched again all at once. Arms are run by successive halving: every arm gets
a quick first look, the best complete structures decide which arms are searched again with more
effort. The work is fixed by the constants below, not by the clock, so results do not depend on
machine load.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Element, Structure

from model.extraction import Clusters, clusters
from model.pattern import Pattern
from model.result import Progress
from model.scoring import Arm, Batch, Fixed, Layout, Problem, textures
from model.spacegroups import standard_ops
from model.wyckoff import MAX_SITES, fillable

POLISH_STARTS = 4  # best random samples of an extension that are polished
POLISH_STEPS = 20
MAX_SAMPLES = 512  # random trials of one filling
MIN_SAMPLES = 8  # random trials of a filling with free coordinates, however many fillings there are
RESTART_SPREAD = 0.08  # fractional, spread of the restarts near the best coordinates
START_SPACING = 0.08  # fractional coordinates between the polishing starts of one filling
LEARNING_RATE = 0.02  # fractional coordinates per Adam step at the start (cosine decay)
ADAM_BETAS = (0.9, 0.999)
SAME_SCORE = 1e-4  # equal scores in one arm: the same structure at another origin


@dataclass(frozen=True)
class Effort:
    """Work per arm in one round: partial structures kept per element (beam), random trials and extensions per
    element polished by gradient descent, joint polish steps of the complete structures (and the
    first step's size, fractional), and the best fillings searched again over all coordinates at
    once (how many, with how many samples)."""

    beam: int
    trials: int  # random trials per element, over all its fillings
    polished: int
    final_steps: int
    final_rate: float = LEARNING_RATE / 4  # small steps: the coordinates were polished element by element
    restarted: int = 0
    restarts: int = 0


# Successive halving over arms: (arms kept, effort). Every arm gets a quick first look; the best
# complete structures decide which arms are searched again with more effort. The first look
# polishes its complete structures: unpolished random samples rank arms by luck (measured: the
# true arm of CO2 Pa-3 and NbAs I4_1md scored 0.5 unpolished, 0.02 and 0.08 polished, and lost),
# in a few full steps: its coordinates are raw samples, and every step of every arm costs ~1 ms.
ROUNDS = ((None, Effort(beam=2, trials=512, polished=0, final_steps=8, final_rate=LEARNING_RATE)),
          (8, Effort(beam=4, trials=2048, polished=6, final_steps=20)),
          (2, Effort(beam=12, trials=8192, polished=16, final_steps=40, restarted=4, restarts=256)))


@dataclass(frozen=True)
class Candidate:
    """A trial structure and its score (cluster R + close-contact penalty; lower is better)."""

    score: float
    structure: Structure
    space_group: int
    wyckoffs: tuple[str, ...]
    arm: int  # index into the arms searched


@dataclass(frozen=True)
class _Partial:
    """Some elements placed: orbits (species index, orbit index) with their free coordinates."""

    arm: int
    sites: tuple[tuple[int, int], ...]
    coords: np.ndarray  # free coordinates of all sites, in site order
    score: float

    @property
    def taken(self) -> frozenset[int]:
        return frozenset(k for _, k in self.sites)


@dataclass(frozen=True)
class _Extension:
    """A partial structure extended by new sites; starts are its best random samples, best first."""

    parent: _Partial
    sites: tuple[tuple[int, int], ...]
    layout: Layout
    starts: np.ndarray  # (k, dof)
    score: float

    def partial(self, coords: np.ndarray, score: float) -> _Partial:
        return _Partial(self.parent.arm, self.parent.sites + self.sites,
                        np.concatenate([self.parent.coords, coords]), float(score))


def search(pattern: Pattern, signal: np.ndarray, arms: Sequence[Arm], fwhm_poly: Sequence[float],
           rng: np.random.Generator, rounds: Sequence[tuple[int | None, Effort]] = ROUNDS
           ) -> Generator[Progress, None, list[Candidate]]:
    """Complete placements over all arms, best first. A generator: it yields Progress (fraction 0–1)
    after every batch of trials (a fraction of a second), so closing it cancels promptly. ``signal``:
    the pattern's intensity above its background; ``rounds``: the successive halving's (arms kept,
    effort), ROUNDS or its first rounds for a cheaper look.

    ``fwhm_poly``: FWHM (deg) as a polynomial in 2θ (deg), highest power first (np.polyval).
    """
    problems: dict[int, Problem] = {}
    # arms differing only in the atoms per cell share their reflections and observed clusters
    reflections: dict[tuple, tuple[Clusters, np.ndarray]] = {}
    for i, arm in enumerate(arms):
        yield Progress("search", 0.0, f"reflections of {_symbol(arm.space_group)} ({i + 1}/{len(arms)})")
        key = (_cell(arm), arm.zero, arm.space_group)
        if key not in reflections:
            refl = clusters(pattern, signal, arm.lattice, arm.space_group, arm.zero, fwhm_poly)
            reflections[key] = refl, textures(refl.hkl, arm.lattice, standard_ops(arm.space_group))
        problem = Problem(arm, *reflections[key])
        if problem.valid:
            problems[i] = problem
    # heaviest element first; every arm holds the same elements (in different numbers)
    elements = sorted({s for p in problems.values() for s in p.arm.species}, key=lambda s: -Element(s).Z)
    found: dict[int, list[_Partial]] = {}
    alive = list(problems)
    for r, (arms_kept, effort) in enumerate(rounds):
        # successive halving: the arms whose complete structures score best so far get more effort,
        # the best arm of every cell among them (a supercell's extra freedom can win a first look);
        # arms where no complete structure was found go last
        alive = sorted(alive, key=lambda i: min((s.score for s in found.get(i, [])), default=np.inf))
        firsts = [i for n, i in enumerate(alive) if all(_cell(arms[i]) != _cell(arms[j]) for j in alive[:n])]
        alive = (firsts + [i for i in alive if i not in firsts])[:arms_kept]
        for k, i in enumerate(alive):
            done = (r + k / len(alive)) / len(rounds)
            note = Progress("search", done, f"{_symbol(problems[i].arm.space_group)}, round {r + 1} of {len(rounds)}")
            found[i] = yield from _beam_search(problems[i], i, elements, effort, found.get(i, []), rng, note)
    complete = sorted((s for states in found.values() for s in states), key=lambda s: s.score)
    return [Candidate(s.score, problems[s.arm].structure(s.sites, s.coords), problems[s.arm].arm.space_group,
                      tuple(problems[s.arm].orbits[k].label for _, k in s.sites), s.arm) for s in complete]


def _beam_search(problem: Problem, arm: int, elements: Sequence[str], effort: Effort, earlier: list[_Partial],
                 rng: np.random.Generator, note: Progress) -> Generator[Progress, None, list[_Partial]]:
    """Complete placements in one arm: the elements placed one by one, heaviest first, each one
    Wyckoff orbit at a time; ``effort.beam`` partial structures kept after each step. The
    complete structures of ``earlier`` rounds compete with the new ones."""
    beam = [_Partial(arm, (), np.zeros(0), 0.0)]
    for element in elements:
        while any(_left(problem, state, element) for state in beam):
            extensions = yield from _sample(problem, beam, element, effort, rng, note)
            children = yield from _polish_new(problem, extensions, effort, note)
            # a structure still missing atoms of the element scores worse than a complete one by
            # their absence alone: the beam keeps the best of each number of atoms still to place,
            # so fillings that take more orbits are judged once complete
            by_left: dict[int, list[_Partial]] = {}
            for child in children:
                by_left.setdefault(_left(problem, child, element), []).append(child)
            beam = [s for group in by_left.values() for s in _select(group, effort.beam)]
            if not beam:
                return earlier
        # the heavy-atom method refines what is placed before it looks for the lighter atoms:
        # lighter atoms placed against heavy ones a tenth of an Å off settle in the wrong places
        # (measured: KLaTiO4's K 0.7 Å off its site, and then its O, with La and Ti 0.16 Å off).
        # Not in the first look, whose coordinates are raw samples: it only ranks the arms
        if effort.polished and beam and beam[0].coords.size:
            beam = yield from _polish_all(problem, beam, effort.final_steps, effort.final_rate, note)
    if effort.final_steps:
        beam = yield from _polish_all(problem, beam, effort.final_steps, effort.final_rate, note)
    beam = _select(beam + earlier, len(beam) + len(earlier))
    if effort.restarts:
        beam = _select(beam + (yield from _restart(problem, beam, effort, rng, note)), len(beam))
    return beam


def _restart(problem: Problem, states: list[_Partial], effort: Effort, rng: np.random.Generator,
             note: Progress) -> Generator[Progress, None, list[_Partial]]:
    """The best fillings again with every free coordinate searched at once (gradient descent from
    distinct good ones of random samples, half of them near the best coordinates found, half
    anywhere): placing one orbit at a time can settle atoms of similar scattering power in the
    wrong places for the rest."""
    best: dict[tuple, _Partial] = {}
    for state in sorted(states, key=lambda s: s.score):
        if state.coords.size:
            best.setdefault(state.sites, state)
    fillings_seen = list(best)[:effort.restarted]
    if not fillings_seen:
        return []
    layouts = [problem.layout(sites) for sites in fillings_seen]
    batch = problem.batch(layouts)
    empty = problem.fixed([_Partial(states[0].arm, (), np.zeros(0), 0.0)])
    job_of_trial = np.repeat(np.arange(len(layouts)), effort.restarts)
    trials = rng.random((job_of_trial.size, batch.basis.shape[-1]))
    near = rng.random(job_of_trial.size) < 0.5
    for j, sites in enumerate(fillings_seen):
        rows = np.flatnonzero((job_of_trial == j) & near)
        found = best[sites].coords
        trials[rows, :found.size] = found + rng.normal(0.0, RESTART_SPREAD, (rows.size, found.size))
    scores = yield from _trial_scores(problem, trials, batch, empty, job_of_trial, torch.zeros_like, note)
    starts = []
    for j, lay in enumerate(layouts):
        mine = np.flatnonzero(job_of_trial == j)
        starts += [(j, row) for row in _distinct(trials[mine[np.argsort(scores[mine], kind="stable")], :lay.dof])]
    initial = np.zeros((len(starts), batch.basis.shape[-1]))
    for n, (_, row) in enumerate(starts):
        initial[n, :row.size] = row
    index = torch.tensor([j for j, _ in starts])
    coords, scores = yield from _descend(problem, initial, batch.take(index), empty.take(torch.zeros_like(index)),
                                    effort.final_steps, LEARNING_RATE, note)
    return [_Partial(states[0].arm, fillings_seen[j], coords[n, :row.size], float(scores[n]))
            for n, (j, row) in enumerate(starts)]


def _trial_scores(problem: Problem, trials: np.ndarray, batch: Batch, fixed: Fixed, job_of_trial: np.ndarray,
                  fixed_row: Callable[[torch.Tensor], torch.Tensor], note: Progress,
                  texture: bool = True) -> Generator[Progress, None, np.ndarray]:
    """Scores of the trial coordinates ``trials`` (row r tries job job_of_trial[r]; its fixed atoms are row
    fixed_row(job) of ``fixed``), in chunks as large as memory allows, yielding between chunks."""
    rows = problem.rows(batch)
    scores = []
    for start in range(0, job_of_trial.size, rows):
        index = torch.from_numpy(job_of_trial[start:start + rows])
        with torch.no_grad():
            scores.append(problem.score(torch.tensor(trials[start:start + rows], dtype=torch.float32),
                                        batch.take(index), fixed.take(fixed_row(index)), texture=texture).numpy())
        yield note
    return np.concatenate(scores)


def _cell(arm: Arm) -> tuple[float, ...]:
    return tuple(np.round(arm.lattice.parameters, 4))


def _samples(dof: int) -> int:
    """Random trials for ``dof`` new free coordinates: about as many per coordinate as there are
    basins along it (~4), so fillings with more free coordinates are not judged on a sparser look."""
    return 1 if dof == 0 else min(16 * 4 ** (dof - 1), MAX_SAMPLES)


def _sample(problem: Problem, states: list[_Partial], element: str, effort: Effort, rng: np.random.Generator,
            note: Progress) -> Generator[Progress, None, list[_Extension]]:
    """Each partial structure with one more orbit of ``element`` (every orbit that leaves the rest
    of the element placeable), scored at random samples of its free coordinates (without the
    preferred-orientation grid: it hardly changes which samples are best and is most of the cost);
    partial structures that hold all of the element pass unchanged."""
    arm = problem.arm
    done = [_Extension(s, (), problem.layout(()), np.zeros((1, 0)), s.score) for s in states
            if not _left(problem, s, element)]
    species = arm.species.index(element) if element in arm.species else -1
    jobs = []
    for state in states:
        left = _left(problem, state, element)
        if not left:
            continue
        mine = [k for sp, k in state.sites if sp == species]
        for k in range(max(mine, default=0), len(problem.orbits)):
            size, fixed = problem.orbits[k].offsets.shape[0], not problem.orbits[k].dof
            if size <= left and not (fixed and k in state.taken) and fillable(
                    arm.space_group, left - size, state.taken | {k}, k, MAX_SITES - len(mine) - 1):
                jobs.append((state, ((species, k),)))
    if not jobs:
        return done
    layouts = [problem.layout(sites) for _, sites in jobs]
    wanted = np.array([_samples(lay.dof) for lay in layouts])
    # at most effort.trials in all: fewer per filling when there are many, never below MIN_SAMPLES
    share = np.where(wanted > 1, np.maximum(MIN_SAMPLES, wanted * min(1.0, effort.trials / wanted.sum())), 1)
    job_of_trial = np.repeat(np.arange(len(jobs)), share.astype(int))
    batch = problem.batch(layouts)
    fixed = problem.fixed([state for state, _ in jobs])
    trials = rng.random((job_of_trial.size, batch.basis.shape[-1]))
    scores = yield from _trial_scores(problem, trials, batch, fixed, job_of_trial, lambda index: index, note,
                                      texture=False)
    extensions = []
    for j, ((state, sites), lay) in enumerate(zip(jobs, layouts)):
        mine = np.flatnonzero(job_of_trial == j)
        starts = _distinct(trials[mine[np.argsort(scores[mine], kind="stable")], :lay.dof])
        extensions.append(_Extension(state, sites, lay, starts, float(scores[mine].min())))
    return done + extensions


def _left(problem: Problem, state: _Partial, element: str) -> int:
    """Atoms of ``element`` not yet placed in a partial structure."""
    if element not in problem.arm.species:
        return 0
    species = problem.arm.species.index(element)
    placed = sum(problem.orbits[k].offsets.shape[0] for sp, k in state.sites if sp == species)
    return problem.arm.counts[species] - placed


def _polish_new(problem: Problem, extensions: list[_Extension], effort: Effort,
                note: Progress) -> Generator[Progress, None, list[_Partial]]:
    """Each extension as a partial structure; the ``effort.polished`` best with free coordinates get
    gradient descent on the new coordinates from each of their starts (distinct local minima of
    one filling are different partial structures)."""
    ranked = sorted((e for e in extensions if e.layout.dof > 0), key=lambda e: e.score)[:effort.polished]
    chosen = {id(e) for e in ranked}
    partials = [e.partial(e.starts[0], e.score) for e in extensions if id(e) not in chosen]
    if ranked:
        starts = [(e, row) for e in ranked for row in e.starts]
        batch = problem.batch([e.layout for e, _ in starts])
        fixed = problem.fixed([e.parent for e, _ in starts])
        initial = np.zeros((len(starts), batch.basis.shape[-1]))
        for n, (_, row) in enumerate(starts):
            initial[n, :row.size] = row
        coords, scores = yield from _descend(problem, initial, batch, fixed, POLISH_STEPS, LEARNING_RATE, note)
        partials += [e.partial(coords[n, :row.size], scores[n]) for n, (e, row) in enumerate(starts)]
    return partials


def _distinct(samples: np.ndarray) -> np.ndarray:
    """Up to POLISH_STARTS of the (best-first) samples, each at least START_SPACING (fractional,
    periodic) from those before it, so the starts fall in different basins."""
    kept = [samples[0]]
    for row in samples[1:]:
        if len(kept) == POLISH_STARTS:
            break
        delta = np.abs(row - np.array(kept))
        if np.all(np.minimum(delta, 1 - delta).max(axis=1) >= START_SPACING):
            kept.append(row)
    return np.array(kept)


def _polish_all(problem: Problem, states: list[_Partial], steps: int, rate: float,
                note: Progress) -> Generator[Progress, None, list[_Partial]]:
    """Joint gradient descent on every free coordinate of complete structures."""
    batch = problem.batch([problem.layout(s.sites) for s in states])
    fixed = problem.fixed([_Partial(states[0].arm, (), np.zeros(0), 0.0)] * len(states))
    initial = np.zeros((len(states), batch.basis.shape[-1]))
    for n, s in enumerate(states):
        initial[n, :s.coords.size] = s.coords
    coords, scores = yield from _descend(problem, initial, batch, fixed, steps, rate, note)
    return [_Partial(s.arm, s.sites, coords[n, :s.coords.size], float(scores[n])) if scores[n] < s.score else s
            for n, s in enumerate(states)]


def _descend(problem: Problem, initial: np.ndarray, batch: Batch, fixed: Fixed, steps: int, rate: float,
             note: Progress) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray]]:
    """Adam with a cosine-decaying step on the sum of the trials' scores (independent trials: each
    follows its own gradient); returns the best parameters and score each trial reached.
    Written out because torch.optim's first use imports torch._dynamo, seconds of start-up."""
    rows = max(1, problem.rows(batch) // 3)  # the backward pass holds about twice the forward's tensors
    best_coords, best_score = initial.copy(), np.full(len(initial), np.inf)
    for start in range(0, len(initial), rows):
        part = slice(start, start + rows)
        free, placed = batch.take(part), fixed.take(part)
        coords = torch.tensor(initial[part], dtype=torch.float32, requires_grad=True)
        mean, square = torch.zeros_like(coords), torch.zeros_like(coords)
        for step in range(steps + 1):
            score = problem.score(coords, free, placed)
            values = score.detach().numpy()
            better = values < best_score[part]
            best_score[part] = np.where(better, values, best_score[part])
            best_coords[part][better] = coords.detach().numpy()[better]
            if step == steps:
                break
            (gradient,) = torch.autograd.grad(score.sum(), coords)
            mean.mul_(ADAM_BETAS[0]).add_((1 - ADAM_BETAS[0]) * gradient)
            square.mul_(ADAM_BETAS[1]).add_((1 - ADAM_BETAS[1]) * gradient.square())
            unbiased = mean / (1 - ADAM_BETAS[0] ** (step + 1))
            scale = (square / (1 - ADAM_BETAS[1] ** (step + 1))).sqrt() + 1e-8
            with torch.no_grad():
                coords -= rate * 0.5 * (1 + np.cos(np.pi * step / steps)) * unbiased / scale
            yield note
    return best_coords, best_score


def _select(children: list[_Partial], width: int) -> list[_Partial]:
    """The ``width`` best, one of each set of copies: equal scores (the same structure at another
    origin) or the same orbits with nearly the same coordinates (one basin reached twice)."""
    kept: list[_Partial] = []
    for child in sorted(children, key=lambda c: c.score):
        if not any(abs(k.score - child.score) < SAME_SCORE or _same_place(k, child) for k in kept):
            kept.append(child)
        if len(kept) == width:
            break
    return kept


def _same_place(a: _Partial, b: _Partial) -> bool:
    if a.sites != b.sites:
        return False
    delta = np.abs(a.coords - b.coords) % 1.0
    return bool(np.all(np.minimum(delta, 1 - delta) < START_SPACING / 2))


def _symbol(number: int) -> str:
    return standard_ops(number).symbol


"""Building a data set: attempts seeded from (seed, attempt index), run in worker processes,
accepted in attempt order (so a build is reproducible whatever the number of workers), written
shard by shard, and resumed from the last complete shard.

One exception to reproducibility: a pyxtal draw that finishes close to its wall-clock limit
(sources.PYXTAL_TIME_LIMIT_S) may succeed on an idle machine and time out on a busy one.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.data import sources
from model.data.prototype import framework, split_of
from model.data.sample import Sample, make_sample
from model.data.store import (
    manifest_row,
    read_manifest,
    read_state,
    shard_path,
    write_manifest,
    write_shard,
    write_state,
)
from model.errors import InputError
from model.files import atomic_write

# Mix of generated sources; the AFLOW prototypes themselves come once each, at every
# PROTOTYPE_STRIDE-th attempt, until the library of the requested systems is used up.
SUBSTITUTION_FRACTION = 0.55
PROTOTYPE_STRIDE = 20
# Builds on real structures: each real structure once (in a seeded order), then augmentation,
# substitutions on real structures except this share of pyxtal random crystals.
REAL_PYXTAL_FRACTION = 0.1
# Attempts handed to the pool at a time: enough to keep workers busy, few to discard at the end.
ATTEMPTS_PER_WORKER = 32


@dataclass(frozen=True)
class BuildOptions:
    """What defines a build; a resumed build must be given the same options."""

    systems: tuple[str, ...]
    n: int
    seed: int
    from_cifs: str | None = None  # a folder of CIFs or a Materials-Project-style CSV, taken as they are
    real: str | None = None  # a folder of *.jsonl.xz real structures: frameworks, then augmentation
    shard_size: int = 500
    max_type_fraction: float = 0.02  # generated builds only; a user's CIFs are taken as they are


def build(directory: str | Path, options: BuildOptions, workers: int = 1,
          progress: bool = True) -> dict:
    """Build (or resume) the data set in ``directory``; returns the summary also written to
    ``directory/summary.json``."""
    directory = Path(directory)
    files = _listed(options.from_cifs) if options.from_cifs else None
    last_attempt = len(files) if files is not None else sys.maxsize
    target = min(options.n, last_attempt)
    cap = None if files is not None else max(1, int(options.max_type_fraction * options.n))

    state = read_state(directory)
    wanted = json.loads(json.dumps(asdict(options)))  # tuples → lists, as read back from JSON
    if state is None:
        state = {"options": wanted, "next_attempt": 0, "shards": 0, "rejected": {}}
        rows: list[dict] = []
    elif state["options"] != wanted:
        raise InputError(directory, f"holds a build with other options {state['options']}; "
                         "resume with the same options or choose another --out")
    else:
        rows = [r for r in read_manifest(directory) if int(r["shard"]) < state["shards"]] \
            if state["shards"] else []
    types = Counter(framework(r["structure_type"]) for r in rows)
    # A generated compound is kept once: the same substitution drawn twice is the same crystal.
    seen = {(r["formula"], r["structure_type"]) for r in rows}
    rejected = Counter(state["rejected"])
    pending: list[Sample] = []

    def flush(next_attempt: int) -> None:
        shard = state["shards"]
        write_shard(shard_path(directory, shard), pending)
        rows.extend(manifest_row(s, split_of(framework(s.structure_type)), shard, i) for i, s in enumerate(pending))
        write_manifest(directory, rows)
        state.update(next_attempt=next_attempt, shards=shard + 1, rejected=dict(rejected))
        write_state(directory, state)
        pending.clear()

    _prepare(options, files)
    pool = multiprocessing.Pool(workers, initializer=_prepare, initargs=(options, files)) if workers > 1 else None
    run = pool.imap if pool else map
    started, done_before = time.monotonic(), len(rows)  # the rate leaves out loading the tables
    bar = tqdm(total=target, initial=len(rows), unit="sample", disable=not progress, smoothing=0.05)
    try:
        k = state["next_attempt"]
        while len(rows) + len(pending) < target and k < last_attempt:
            block = range(k, min(k + ATTEMPTS_PER_WORKER * workers, last_attempt))
            for index, result in zip(block, run(_attempt, block)):
                if isinstance(result, str):
                    rejected[_reason_key(result)] += 1
                elif cap is not None and types[framework(result.structure_type)] >= cap:
                    rejected["type cap"] += 1
                elif files is None and (result.formula, result.structure_type) in seen:
                    rejected["duplicate"] += 1
                else:
                    pending.append(result)
                    types[framework(result.structure_type)] += 1
                    seen.add((result.formula, result.structure_type))
                    bar.update()
                if len(pending) >= options.shard_size or (pending and len(rows) + len(pending) >= target):
                    flush(index + 1)
                if len(rows) >= target:
                    break
            k = block.stop
        if pending:
            flush(k)
    finally:
        bar.close()
        if pool:
            pool.terminate()
    summary = summarize(rows, rejected)
    summary["rate_samples_per_s"] = round((len(rows) - done_before) / max(time.monotonic() - started, 1e-9), 2)
    with atomic_write(directory / "summary.json") as handle:
        json.dump(summary, handle, indent=1)
    return summary


def summarize(rows: list[dict], rejected: Counter) -> dict:
    """Counts that show the diversity of a build: systems, space groups, types, sources, splits."""
    types = Counter(framework(r["structure_type"]) for r in rows)
    spacegroups = Counter(int(r["spacegroup"]) for r in rows)
    return {
        "samples": len(rows),
        "crystal_systems": dict(Counter(r["crystal_system"] for r in rows)),
        "spacegroups_covered": len(spacegroups),
        "structure_types": len(types),
        "largest_type_fraction": round(max(types.values()) / len(rows), 4) if rows else 0.0,
        "sources": dict(Counter(r["source"] for r in rows)),
        "splits": dict(Counter(r["split"] for r in rows)),
        "rejected": dict(rejected),
        "spacegroup_counts": {str(sg): c for sg, c in sorted(spacegroups.items())},
    }


def _listed(source: str) -> list[tuple[str, object]]:
    """(sample id, CIF path or text) of a folder of CIFs or of a Materials-Project-style CSV."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".csv":
        return list(sources.csv_cifs(path))
    if not path.is_dir():
        raise InputError(path, "--from-cifs needs a folder of CIF files or a CSV with a 'cif' column")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".cif" and p.is_file())
    if not files:
        raise InputError(path, "no .cif files in this folder (searched recursively)")
    return [(p.relative_to(path).with_suffix("").as_posix(), p) for p in files]


_options: BuildOptions | None = None
_files: list[tuple[str, object]] | None = None
_real: tuple[dict, ...] = ()
_real_order: np.ndarray = np.zeros(0, dtype=int)


def _prepare(options: BuildOptions, files: list[tuple[str, object]] | None) -> None:
    """Per-process setup: templates loaded once (and inherited by forked workers)."""
    global _options, _files, _real, _real_order
    _options, _files = options, files
    if files is None:
        sources.preload(options.systems)
    if options.real and not _real:
        _real = sources.real_rows(options.real, options.systems)
        _real_order = np.random.default_rng(options.seed).permutation(len(_real))


def _attempt(k: int) -> Sample | str:
    """Attempt ``k``: a sample or the reason there is none; the same k always gives the same."""
    options = _options
    try:
        if _files is not None:
            name, item = _files[k]
            candidate = sources.from_cif(item) if isinstance(item, Path) else sources.from_cif_text(name, item)
            return make_sample(name, candidate, options.systems)
        rng = np.random.default_rng([options.seed, k])
        system = options.systems[rng.integers(len(options.systems))]
        if _real:
            if k < len(_real):
                candidate = sources.real_structure(_real[_real_order[k]])
            elif rng.random() < REAL_PYXTAL_FRACTION:
                candidate = sources.random_crystal(system, rng)
            else:
                candidate = sources.substitution(sources.real_template(_real[rng.integers(len(_real))]), rng)
        else:
            library = [t for t in sources.aflow_templates() if t.system in options.systems]
            if k % PROTOTYPE_STRIDE == 0 and k // PROTOTYPE_STRIDE < len(library):
                candidate = sources.prototype(library[k // PROTOTYPE_STRIDE])
            elif rng.random() < SUBSTITUTION_FRACTION:
                pool = sources.templates_by_system(options.systems)[system]
                candidate = sources.substitution(pool[rng.integers(len(pool))], rng)
            else:
                candidate = sources.random_crystal(system, rng)
        if candidate is None:
            return "generation: pyxtal could not place the Wyckoff set, or no substitute element"
        return make_sample(f"{options.seed}-{k:09d}", candidate, options.systems, sources.evaluation_keys(),
                           sources.evaluation_types())
    except InputError as exc:
        return f"input: {exc.problem}"
    except Exception as exc:  # noqa: BLE001 - a long build must survive the odd pymatgen/spglib/pyxtal failure
        return f"error: {type(exc).__name__}"


def _reason_key(reason: str) -> str:
    """The rule of a rejection reason ("distance: atoms Na–Na 1.2 Å apart" → "distance")."""
    return reason.split(":", 1)[0]

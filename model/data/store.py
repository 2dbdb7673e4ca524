"""On-disk layout of a data set, written atomically so a killed build can resume.

    DIR/manifest.csv        one row per sample (MANIFEST_COLUMNS)
    DIR/state.json          build options and progress (next attempt, shards done)
    DIR/shards/shard-00000.h5 …  HDF5, one row per sample in manifest order:
        id (n,) str · cif (n,) str · cmed (n,32,32,32) float16 e/Å³ · composition (n,119) float32
        atom fractions by Z · lattice (n,6) float32 a,b,c Å α,β,γ deg · spacegroup (n,) int16 ·
        crystal_system (n,) int8 (model.data.systems.CRYSTAL_SYSTEMS index) · refl_offsets (n+1,)
        int64 · refl_d (m,) float32 Å · refl_f2 (m,) float32 e² · refl_mult (m,) int16 ·
        refl_hkl (m,3) int16; sample i owns reflections refl_offsets[i]:refl_offsets[i+1] ·
        fam_offsets (n+1,) int64 · fam_hkl (p,3) int16 · fam_mult (p,) int16 · fam_f (p,2) float32
        e (real, imaginary): the reflection families of learned phasing (model.data.sample).

Write order per shard: shard file, manifest, state. A build killed in between leaves at most a
shard or manifest rows that state.json does not count yet; resume drops and rewrites them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np

from model.data.sample import Sample
from model.data.systems import CRYSTAL_SYSTEMS
from model.errors import InputError
from model.files import atomic_write

MANIFEST_COLUMNS = ("id", "source", "structure_type", "formula", "spacegroup", "crystal_system",
                    "natoms_conventional", "split", "origin", "shard", "row")


def shard_path(directory: Path, shard: int) -> Path:
    return Path(directory) / "shards" / f"shard-{shard:05d}.h5"


def write_shard(path: Path, samples: list[Sample]) -> None:
    offsets = np.concatenate([[0], np.cumsum([s.refl_d.size for s in samples])]).astype(np.int64)
    text = h5py.string_dtype()
    with atomic_write(path, "w+b") as handle, h5py.File(handle, "w") as h5:
        h5.create_dataset("id", data=[s.id for s in samples], dtype=text)
        h5.create_dataset("cif", data=[s.cif for s in samples], dtype=text)
        h5.create_dataset("cmed", data=np.stack([s.cmed for s in samples]), chunks=(1, 32, 32, 32),
                          compression="lzf")
        h5.create_dataset("composition", data=np.stack([s.composition for s in samples]))
        h5.create_dataset("lattice", data=np.stack([s.lattice for s in samples]))
        h5.create_dataset("spacegroup", data=np.array([s.spacegroup for s in samples], dtype=np.int16))
        h5.create_dataset("crystal_system", data=np.array([s.crystal_system for s in samples], dtype=np.int8))
        h5.create_dataset("refl_offsets", data=offsets)
        h5.create_dataset("fam_offsets", data=np.concatenate(
            [[0], np.cumsum([len(s.fam_mult) for s in samples])]).astype(np.int64))
        for name in ("refl_d", "refl_f2", "refl_mult", "refl_hkl", "fam_hkl", "fam_mult", "fam_f"):
            h5.create_dataset(name, data=np.concatenate([getattr(s, name) for s in samples]),
                              compression="lzf")


def manifest_row(sample: Sample, split: str, shard: int, row: int) -> dict[str, str | int]:
    return {"id": sample.id, "source": sample.source, "structure_type": sample.structure_type,
            "formula": sample.formula, "spacegroup": sample.spacegroup,
            "crystal_system": CRYSTAL_SYSTEMS[sample.crystal_system],
            "natoms_conventional": sample.natoms, "split": split, "origin": sample.origin,
            "shard": shard, "row": row}


def write_manifest(directory: Path, rows: list[dict]) -> None:
    with atomic_write(Path(directory) / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def read_manifest(directory: Path) -> list[dict[str, str]]:
    path = Path(directory) / "manifest.csv"
    if not path.is_file():
        raise InputError(path, "no manifest.csv: not a data set built by `python -m model.data build`")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise InputError(path, f"manifest lacks column(s) {', '.join(sorted(missing))}")
        return list(reader)


def write_state(directory: Path, state: dict) -> None:
    with atomic_write(Path(directory) / "state.json", "w") as handle:
        json.dump(state, handle, indent=1)


def read_state(directory: Path) -> dict | None:
    path = Path(directory) / "state.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"unreadable build state ({exc})") from None

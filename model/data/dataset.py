"""Reading a built data set in PyTorch: ``CMEDDataset(dir, split)`` and its ``collate``."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from model.data.store import read_manifest, shard_path
from model.errors import InputError

SPLITS = ("train", "val", "test")


class CMEDDataset(Dataset):
    """Samples of one split of a data set built by ``python -m model.data build``.

    Each item is a dict of tensors: ``cmed`` (32,32,32) float16 e/Å³; ``composition`` (119,)
    float32 atom fractions by Z; ``lattice`` (6,) float32 a,b,c Å α,β,γ degrees; ``spacegroup``
    and ``crystal_system`` int64 scalars (model.data.systems.CRYSTAL_SYSTEMS index); the
    wavelength-free reflections ``refl_d`` (R,) float32 Å, ``refl_f2`` (R,) float32 e²,
    ``refl_mult`` (R,) int64, ``refl_hkl`` (R,3) int64 — R varies per sample, so batch with
    ``collate``. ``index`` is the row in ``self.rows`` (manifest fields such as id, formula).

    Shard files are opened lazily in each DataLoader worker process (h5py handles do not
    survive a fork), so ``num_workers > 0`` is safe.
    """

    def __init__(self, directory: str | Path, split: str | None = "train"):
        if split is not None and split not in SPLITS:
            raise InputError("split", f"{split!r} is not one of {', '.join(SPLITS)} (or None for all)")
        self.directory = Path(directory)
        self.rows = [r for r in read_manifest(self.directory) if split is None or r["split"] == split]
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows[index]
        h5 = self._shard(int(row["shard"]))
        i = int(row["row"])
        start, stop = h5["refl_offsets"][i : i + 2]
        return {
            "index": torch.tensor(index),
            "cmed": torch.from_numpy(h5["cmed"][i]),
            "composition": torch.from_numpy(h5["composition"][i]),
            "lattice": torch.from_numpy(h5["lattice"][i]),
            "spacegroup": torch.tensor(int(h5["spacegroup"][i])),
            "crystal_system": torch.tensor(int(h5["crystal_system"][i])),
            "refl_d": torch.from_numpy(h5["refl_d"][start:stop]),
            "refl_f2": torch.from_numpy(h5["refl_f2"][start:stop]),
            "refl_mult": torch.from_numpy(h5["refl_mult"][start:stop].astype(np.int64)),
            "refl_hkl": torch.from_numpy(h5["refl_hkl"][start:stop].astype(np.int64)),
        }

    def _shard(self, shard: int) -> h5py.File:
        if os.getpid() != self._pid:  # inside a new DataLoader worker: drop inherited handles
            self._files, self._pid = {}, os.getpid()
        if shard not in self._files:
            path = shard_path(self.directory, shard)
            if not path.is_file():
                raise InputError(path, "shard listed in manifest.csv is missing")
            self._files[shard] = h5py.File(path, "r")
        return self._files[shard]


REFLECTION_KEYS = ("refl_d", "refl_f2", "refl_mult", "refl_hkl")


def collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack fixed-size entries; pad reflections with zeros to the longest in the batch (B, R_max)
    and add ``refl_mask`` (B, R_max) bool, True where a reflection is real."""
    out = {key: torch.stack([item[key] for item in batch]) for key in batch[0] if key not in REFLECTION_KEYS}
    lengths = torch.tensor([item["refl_d"].shape[0] for item in batch])
    for key in REFLECTION_KEYS:
        out[key] = torch.nn.utils.rnn.pad_sequence([item[key] for item in batch], batch_first=True)
    out["refl_mask"] = torch.arange(int(lengths.max())) < lengths[:, None]
    return out

"""The training universe: generated and user-supplied crystal structures with their CMED and
reflections, stored in shards (``python -m model.data build``) and read by ``CMEDDataset``."""

from model.data.dataset import CMEDDataset, collate
from model.data.systems import CRYSTAL_SYSTEMS

__all__ = ["CMEDDataset", "CRYSTAL_SYSTEMS", "collate"]

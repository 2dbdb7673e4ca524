"""The training universe: generated and user-supplied crystal structures with their CMED and
reflections, stored in shards and read by ``CMEDDataset``.

Build (rerun the same command to resume a killed build)::

    python -m model.data build --systems cubic,trigonal,hexagonal,tetragonal --n 30000 --out D \\
        --workers 2 --seed 11 --real ../shared/data/real       # real frameworks, then substitutions
    python -m model.data build ... --from-cifs FOLDER_OR_CSV      # a user's CIFs, taken as they are

Modules: ``sources`` (where structures come from), ``sanity`` (physical rules), ``prototype``
(structure-type label and split), ``sample`` (arrays of one sample), ``store`` (on-disk layout),
``build`` (workers, caps, resume), ``dataset`` (PyTorch reading), ``systems`` (crystal-system codes).
Nothing is imported here, so that ``model.data.systems`` stays cheap for inference code.
"""

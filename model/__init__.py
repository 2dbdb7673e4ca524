"""cmedgui science: patterns, simulation, electron density, indexing, refinement, network.

Plain Python, NumPy and PyTorch; nothing here imports Qt.
"""

"""Science core: models, sampling, relaxation, symmetry and stability.

Nothing here imports jobflow, FireWorks, atomate2 or the database layer (checked by the
import-linter contracts in ``pyproject.toml``), so the science can be used from plain
Python scripts and notebooks.
"""

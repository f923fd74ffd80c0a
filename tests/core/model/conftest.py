"""Small structures and a tiny float64 score model shared by the model tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.model import ScoreModel, ScoreModelConfig


@pytest.fixture
def tiny_model() -> ScoreModel:
    """A randomly initialised tiny model in float64, with no neighbour cap."""
    torch.manual_seed(0)
    config = ScoreModelConfig.preset("tiny", elements=("Li", "O", "Si"), max_neighbors=1000)
    return ScoreModel(config).double().eval()


@pytest.fixture
def skewed_structure() -> Structure:
    rng = np.random.default_rng(1)
    lattice = Lattice.from_parameters(4.1, 4.6, 5.3, 72.0, 101.0, 64.0)
    return Structure(lattice, ["Li", "Li", "Si", "O", "O"], rng.random((5, 3)))

"""Batched CHGNet relaxation against CHGNet's own StructOptimizer, on real structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.core.relax import BatchRelaxer, RelaxSettings, auto_batch_size
from chggen_flows.errors import CheckpointError, InputError

DATA = Path(__file__).parents[2] / "test_data" / "structures"
# Different sizes in one batch: 4, 10, 12 and 12 atoms.
SMALL = ["ZnS_mp-560588", "ZnPS3_mp-3342", "Li2S_mp-1125", "ZnS2_mp-1102743"]
STEPS = 30


def _perturbed(name: str, seed: int) -> Structure:
    """A known structure, rattled by 0.1 Å and expanded by 5% in volume."""
    structure = Structure.from_file(DATA / f"{name}.cif")
    rng = np.random.default_rng(seed)
    shifts = rng.normal(size=(len(structure), 3))
    shifts *= 0.1 / np.linalg.norm(shifts, axis=1, keepdims=True)
    for i, shift in enumerate(shifts):
        structure.translate_sites([i], shift, frac_coords=False)
    structure.scale_lattice(structure.volume * 1.05)
    return structure


@pytest.fixture(scope="module")
def relaxer() -> BatchRelaxer:
    return BatchRelaxer(RelaxSettings(max_steps=STEPS, device="cpu", batch_size=3, threads=1))


@pytest.fixture(scope="module")
def structures() -> list[Structure]:
    return [_perturbed(name, seed) for seed, name in enumerate(SMALL)]


@pytest.fixture(scope="module")
def records(relaxer: BatchRelaxer, structures: list[Structure]):
    return relaxer.relax(structures)


def test_batched_matches_struct_optimizer(relaxer, structures, records) -> None:
    from chgnet.model import StructOptimizer

    optimizer = StructOptimizer(model=relaxer.model, use_device="cpu")
    diffs = []
    for structure, record in zip(structures, records, strict=True):
        result = optimizer.relax(structure, steps=STEPS, fmax=0.1, verbose=False)
        energies = result["trajectory"].energies
        reference = energies[-1] / len(structure)
        assert record.initial_energy_per_atom == pytest.approx(
            energies[0] / len(structure), abs=1e-5
        )
        diffs.append(abs(record.final_energy_per_atom - reference))
    print(f"|dE| vs StructOptimizer (eV/atom): median {np.median(diffs):.2e}, max {max(diffs):.2e}")
    assert np.median(diffs) < 0.005
    assert max(diffs) < 0.02


def test_records_are_consistent(structures, records) -> None:
    for structure, record in zip(structures, records, strict=True):
        assert record.ok and record.n_steps <= STEPS
        assert record.de == pytest.approx(
            record.initial_energy_per_atom - record.final_energy_per_atom
        )
        # FIRE from a strained, rattled start lowers the energy and moves atoms back.
        assert record.de > 0
        assert 0 < record.rmsd <= record.max_displacement < 1.0
        assert record.structure.composition == structure.composition
        # A structure leaves the batch converged or at the end of its step budget.
        assert record.converged or record.n_steps == STEPS
        # The cell relaxes back from the 5% expansion.
        assert record.structure.volume < structure.volume


def test_predict_energies_match_initial_energies(relaxer, structures, records) -> None:
    energies = relaxer.predict_energies(structures, batch_size=2)
    np.testing.assert_allclose(energies, [r.initial_energy_per_atom for r in records], atol=1e-5)


def test_close_atoms_rejected_and_the_rest_relaxed(relaxer) -> None:
    bad = Structure(Lattice.cubic(4.0), ["Si", "Si"], [[0, 0, 0], [0.1, 0, 0]])
    good = _perturbed("ZnS_mp-560588", 11)
    settings = RelaxSettings(max_steps=5, save_trajectory=True, device="cpu")
    traj_relaxer = BatchRelaxer(settings, model=relaxer.model)
    rejected, relaxed = traj_relaxer.relax([bad, good])
    assert not rejected.ok and "0.400 Å apart" in rejected.rejected_reason
    assert rejected.structure is bad and np.isnan(rejected.final_energy_per_atom)
    assert relaxed.ok and len(relaxed.trajectory) == relaxed.n_steps + 1
    assert relaxed.trajectory[0]["energy_per_atom"] == pytest.approx(
        relaxed.initial_energy_per_atom
    )


def test_fixed_cell_keeps_the_lattice(relaxer) -> None:
    fixed = BatchRelaxer(RelaxSettings(max_steps=5, relax_cell=False, device="cpu"), relaxer.model)
    start = _perturbed("ZnS_mp-560588", 5)
    (record,) = fixed.relax([start])
    np.testing.assert_allclose(record.structure.lattice.matrix, start.lattice.matrix)
    assert record.de > 0


def test_auto_batch_size() -> None:
    import torch

    cpu = torch.device("cpu")
    assert auto_batch_size([10] * 32, cpu) == 5
    assert auto_batch_size([40] * 32, cpu) == 1
    assert auto_batch_size([2] * 100, cpu) == 16
    assert auto_batch_size([10] * 3, cpu) == 3
    assert auto_batch_size([40] * 100, torch.device("cuda")) == 100


def test_bad_settings_and_checkpoints(tmp_path) -> None:
    with pytest.raises(InputError):
        RelaxSettings(fmax=0)
    with pytest.raises(InputError):
        RelaxSettings(batch_size=0)
    with pytest.raises(CheckpointError):
        BatchRelaxer(RelaxSettings(model_path=tmp_path / "missing.pth.tar", device="cpu"))
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        BatchRelaxer(RelaxSettings(model_path=garbage, device="cpu"))

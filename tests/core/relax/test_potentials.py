"""Every potential through the same batched engine reproduces its own ASE calculator.

Each backend evaluates the same small cells as its package's ASE calculator does
(CHGNet's ``CHGNetCalculator``, SevenNet's ``SevenNetCalculator``), and relaxes them
through the one FIRE + cell-filter engine to the same end as ASE's FIRE on
``FrechetCellFilter`` with that calculator (what ``StructOptimizer`` runs).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure

from chggen_flows.core.relax import BatchRelaxer, RelaxSettings, load_potential
from chggen_flows.core.relax.graphs import frame_of
from chggen_flows.core.relax.potentials import (
    POTENTIALS,
    Potential,
    check_potential,
    file_checksum,
    potential_names,
)
from chggen_flows.errors import InputError

DATA = Path(__file__).parents[2] / "test_data" / "structures"
STEPS = 12
HAS_SEVENNET = importlib.util.find_spec("sevenn") is not None
needs_sevennet = pytest.mark.skipif(
    not HAS_SEVENNET, reason="sevenn not installed (pip install 'chggen-flows[sevennet]')"
)
BACKENDS = [
    "chgnet",
    "chgnet-r2scan",
    pytest.param("sevennet-0", marks=needs_sevennet),
    pytest.param("sevennet-l3i5", marks=[needs_sevennet, pytest.mark.slow]),
]
# float32 models: one structure alone (ASE) vs two per call (the engine) round apart by
# ~1e-6 eV/atom; after STEPS FIRE steps the difference stays far below this.
ENERGY_TOL = 2e-5  # eV/atom
FORCE_TOL = 2e-4  # eV/Å
STRESS_TOL = 2e-3  # GPa


def _cells() -> list[Structure]:
    """ZnS (2 atoms) and LiSi (16 atoms), rattled by 0.05 Å and expanded by 4%."""
    rng = np.random.default_rng(3)
    cells = []
    for name in ("ZnS_mp-560588", "LiSi_mp-570363"):
        structure = Structure.from_file(DATA / f"{name}.cif")
        structure.perturb(0.05, min_distance=0.05, seed=int(rng.integers(1000)))
        structure.scale_lattice(structure.volume * 1.04)
        cells.append(structure)
    return cells


def _calculator(potential):
    if potential.name.startswith("chgnet"):
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(potential.model, use_device="cpu")
    from sevenn.calculator import SevenNetCalculator

    # the same model object, switched back to single-structure mode by the calculator
    return SevenNetCalculator(POTENTIALS[potential.name].options["model_name"], device="cpu")


def test_registry_names_and_default() -> None:
    assert potential_names()[0] == "chgnet" == RelaxSettings().potential
    assert {"chgnet", "chgnet-r2scan", "sevennet-0"} <= set(POTENTIALS)
    assert check_potential("chgnet-r2scan") == "chgnet-r2scan"
    with pytest.raises(InputError, match="unknown potential 'mace'"):
        check_potential("mace")
    with pytest.raises(InputError, match="chgnet-r2scan"):
        RelaxSettings(potential="chgnet_r2scan")


@pytest.fixture(scope="module")
def cells() -> list[Structure]:
    return _cells()


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_matches_its_ase_calculator(name, cells) -> None:
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from ase.units import GPa
    from pymatgen.io.ase import AseAtomsAdaptor

    potential = load_potential(name, "cpu")
    assert isinstance(potential, Potential) and potential.name == name
    info = POTENTIALS[name]
    assert potential.functional == info.functional
    assert (
        potential.weights_checksum.startswith("sha256:") and len(potential.weights_checksum) == 71
    )
    assert info.package in potential.version

    # single points: the engine's batched call vs the calculator one by one
    graphs = potential.graph_builder(0).submit([frame_of(s) for s in cells]).result()
    batched = potential.evaluate(graphs, "efs", len(cells))
    calc = _calculator(potential)
    for structure, out in zip(cells, batched, strict=True):
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = calc
        assert out["e"] == pytest.approx(atoms.get_potential_energy() / len(atoms), abs=1e-5)
        np.testing.assert_allclose(out["f"], atoms.get_forces(), atol=FORCE_TOL)
        np.testing.assert_allclose(out["s"] * GPa, atoms.get_stress(voigt=False), atol=1e-5)

    # relaxation: the shared engine vs ASE FIRE + FrechetCellFilter with the calculator
    settings = RelaxSettings(
        potential=name, max_steps=STEPS, device="cpu", threads=1, batch_size=2, graph_workers=0
    )
    with BatchRelaxer(settings, model=potential) as relaxer:
        records = relaxer.relax(cells, progress=False)
    for structure, record in zip(cells, records, strict=True):
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = calc
        optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
        optimizer.run(fmax=0.1, steps=STEPS)
        reference = atoms.get_potential_energy() / len(atoms)
        assert record.ok and record.potential == name
        assert record.n_steps == optimizer.nsteps
        assert record.final_energy_per_atom == pytest.approx(reference, abs=ENERGY_TOL)
        np.testing.assert_allclose(record.structure.lattice.matrix, atoms.cell.array, atol=1e-4)
        assert record.max_stress == pytest.approx(
            np.abs(atoms.get_stress(voigt=False) / GPa).max(), abs=STRESS_TOL
        )


def test_checksum_is_the_weights_file(tmp_path) -> None:
    from chggen_flows.core.relax.potentials.chgnet import pretrained_path

    potential = load_potential("chgnet", "cpu")
    assert potential.weights_checksum == file_checksum(pretrained_path("0.3.0"))
    assert "weights 0.3.0" in potential.version
    r2scan = load_potential("chgnet-r2scan", "cpu")
    assert r2scan.weights_checksum != potential.weights_checksum
    assert r2scan.functional == "r2SCAN"


@pytest.mark.parametrize("name", ["chgnet", "chgnet-r2scan"])
def test_fused_gradients_match_predict_graph(name, cells) -> None:
    """One backward pass for forces and stress: CHGNet's own numbers, bit for bit."""
    potential = load_potential(name, "cpu")
    graphs = potential.graph_builder(0).submit([frame_of(s) for s in cells]).result()
    for task in ("ef", "efs"):
        potential.fused = True
        fused = potential.evaluate(graphs, task, 2)
        potential.fused = False
        plain = potential.evaluate(graphs, task, 2)
        for a, b in zip(fused, plain, strict=True):
            assert float(a["e"]) == float(b["e"])
            np.testing.assert_array_equal(a["f"], b["f"])
            assert ("s" in a) == ("s" in b) == (task == "efs")
            if task == "efs":
                np.testing.assert_array_equal(a["s"], b["s"])


def test_a_chgnet_model_with_another_potential_name_is_refused() -> None:
    model = load_potential("chgnet", "cpu").model
    with pytest.raises(InputError, match="CHGNet model was given"):
        BatchRelaxer(RelaxSettings(potential="sevennet-0", device="cpu"), model=model)


def test_default_relaxer_is_chgnet_0_3_0() -> None:
    relaxer = BatchRelaxer(RelaxSettings(device="cpu", threads=1))
    assert relaxer.potential.name == "chgnet"
    assert relaxer.model.version == "0.3.0"


def test_missing_package_names_the_extra(monkeypatch) -> None:
    import chggen_flows.core.relax.potentials as registry
    from chggen_flows.errors import ConfigError

    real = registry.importlib.import_module

    def fake(name, *args):
        if name == "sevenn":
            raise ImportError("No module named 'sevenn'")
        return real(name, *args)

    monkeypatch.setattr(registry.importlib, "import_module", fake)
    with pytest.raises(ConfigError, match=r"chggen-flows\[sevennet\]"):
        load_potential("sevennet-0", "cpu")
    registry.weights_checksum.cache_clear()
    with pytest.raises(ConfigError, match=r"chggen-flows\[sevennet\]"):
        registry.weights_checksum("sevennet-0")  # e.g. building its offline hull

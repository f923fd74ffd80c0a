"""Graph workers, the two-group pipeline, CUDA call sizing and the out-of-memory fallback.

The trajectories of a relaxation must not depend on where the graphs are built, on the
split of the batch into two groups, or on a call retried with fewer structures: every
structure's FIRE state is its own, and CHGNet's outputs per structure do not depend on
its batch mates beyond rounding.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.relax import BatchRelaxer, RelaxSettings, auto_batch_size
from chggen_flows.core.relax.batch import (
    CUDA_ATOMS_PER_CALL,
    PROBE_ATOMS,
    cuda_atoms_per_call,
    is_out_of_memory,
)
from chggen_flows.errors import InputError, ResourceError

STEPS = 20
ENERGY_TOL = 1e-6  # eV/atom
POSITION_TOL = 1e-6  # Å
# Calls of other sizes round differently: a float32 ulp at 5 eV is 4.8e-7 eV, and one
# structure per call vs four differed by up to 9.5e-7 eV/atom on these cells.
CALL_SIZE_ENERGY_TOL = 2e-6


def _cells() -> list[Structure]:
    """2-8 atom Si, NaCl and Li cells, rattled and strained (different sizes)."""
    rng = np.random.default_rng(7)
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    li = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    out = []
    for base in (si, nacl.get_primitive_structure(), li, si.get_primitive_structure(), nacl, li):
        cart = base.cart_coords + rng.normal(0, 0.05, (len(base), 3))
        s = Structure(base.lattice, base.species, cart, coords_are_cartesian=True)
        s.scale_lattice(s.volume * rng.uniform(1.02, 1.06))
        out.append(s)
    return out


@pytest.fixture(scope="module")
def model():
    return BatchRelaxer(RelaxSettings(device="cpu", threads=1, graph_workers=0)).model


@pytest.fixture(scope="module")
def structures() -> list[Structure]:
    return _cells()


def _relax(model, structures, workers=0, pipeline=None, batch_size=2, max_per_call=None):
    settings = RelaxSettings(
        max_steps=STEPS, device="cpu", threads=1, batch_size=batch_size,
        graph_workers=workers, save_trajectory=True,
    )  # fmt: skip
    with BatchRelaxer(settings, model=model, pipeline=pipeline) as relaxer:
        relaxer.max_per_call = max_per_call
        return relaxer.relax(structures, progress=False), relaxer


def _assert_same(a, b, energy_tol: float = ENERGY_TOL) -> None:
    for ra, rb in zip(a, b, strict=True):
        assert ra.n_steps == rb.n_steps and ra.converged == rb.converged
        ea = [t["energy_per_atom"] for t in ra.trajectory]
        eb = [t["energy_per_atom"] for t in rb.trajectory]
        np.testing.assert_allclose(ea, eb, rtol=0, atol=energy_tol)
        np.testing.assert_allclose(
            ra.structure.lattice.matrix, rb.structure.lattice.matrix, rtol=0, atol=POSITION_TOL
        )
        np.testing.assert_allclose(
            ra.structure.cart_coords, rb.structure.cart_coords, rtol=0, atol=POSITION_TOL
        )


@pytest.fixture(scope="module")
def reference(model, structures):
    records, _ = _relax(model, structures, workers=0, pipeline=False)
    return records


def test_reference_relaxes(reference) -> None:
    assert all(r.ok for r in reference)
    assert all(r.de > 0 for r in reference)
    assert any(r.n_steps > 5 for r in reference)


def _positions(records) -> list[np.ndarray]:
    return [r.structure.cart_coords for r in records]


def test_graph_workers_and_pipeline_keep_the_trajectories(model, structures, reference) -> None:
    for workers, pipeline in ((2, False), (0, True), (2, True)):
        records, relaxer = _relax(model, structures, workers=workers, pipeline=pipeline)
        assert relaxer.pipeline is pipeline and relaxer.graphs.workers == workers
        _assert_same(reference, records)
        if not pipeline:  # same calls: the graphs are the same, so are the results
            for a, b in zip(_positions(reference), _positions(records), strict=True):
                np.testing.assert_array_equal(a, b)


def test_pipeline_is_on_with_workers(model) -> None:
    settings = RelaxSettings(device="cpu", threads=1)
    relaxer = BatchRelaxer(settings, model=model)
    assert relaxer.graphs.workers == 0 and not relaxer.pipeline  # CPU: in-process
    workers = RelaxSettings(device="cpu", threads=1, graph_workers=2)
    assert BatchRelaxer(workers, model=model).pipeline


def test_pool_is_reused_across_relaxations(model, structures) -> None:
    settings = RelaxSettings(max_steps=2, device="cpu", threads=1, graph_workers=1)
    with BatchRelaxer(settings, model=model) as relaxer:
        relaxer.relax(structures[:2], progress=False)
        pool = relaxer.graphs._pool
        relaxer.relax(structures[2:4], progress=False)
        assert relaxer.graphs._pool is pool is not None
        energies = relaxer.predict_energies(structures[:3])
    assert relaxer.graphs._pool is None
    assert len(energies) == 3


def _failing_above(model, limit: int, error: Exception):
    """``model.predict_graph`` raising ``error`` for calls of more than ``limit`` graphs."""
    calls: list[int] = []
    predict_graph = model.predict_graph

    def predict(graphs, task="efs", batch_size=16, **kw):
        calls.append(min(batch_size, len(graphs)))
        if min(batch_size, len(graphs)) > limit:
            raise error
        return predict_graph(graphs, task=task, batch_size=batch_size, **kw)

    return predict, calls


def test_out_of_memory_halves_the_call_and_keeps_the_records(
    model, structures, reference, monkeypatch
) -> None:
    unfailing, _ = _relax(model, structures, batch_size=4)
    _assert_same(reference, unfailing, CALL_SIZE_ENERGY_TOL)
    one_per_call, _ = _relax(model, structures, batch_size=4, max_per_call=1)
    error = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    predict, calls = _failing_above(model, 1, error)
    monkeypatch.setattr(model, "predict_graph", predict)
    with pytest.warns(RuntimeWarning, match="out of device memory") as caught:
        records, relaxer = _relax(model, structures, batch_size=4)
    sizes = [re.search(r"at (\d+) structures", str(w.message)).group(1) for w in caught]
    assert sizes == ["4", "2"]
    assert relaxer.max_per_call == 1 and relaxer.out_of_memory_retries == 2
    assert calls[:3] == [4, 2, 1] and set(calls[3:]) == {1}  # the rest of the run at 1
    # the failed step was retried, not skipped or taken twice
    _assert_same(unfailing, records, CALL_SIZE_ENERGY_TOL)
    _assert_same(one_per_call, records, energy_tol=0.0)
    for a, b in zip(_positions(one_per_call), _positions(records), strict=True):
        np.testing.assert_array_equal(a, b)


def test_out_of_memory_message_from_other_libraries_counts(model, structures, monkeypatch):
    predict, _ = _failing_above(model, 2, RuntimeError("CUDA error: out of memory"))
    monkeypatch.setattr(model, "predict_graph", predict)
    with pytest.warns(RuntimeWarning):
        records, relaxer = _relax(model, structures[:3], batch_size=3)
    assert relaxer.max_per_call == 1 and all(r.ok for r in records)


def test_out_of_memory_on_one_structure_is_a_resource_error(model, structures, monkeypatch):
    predict, _ = _failing_above(model, 0, torch.cuda.OutOfMemoryError("out of memory"))
    monkeypatch.setattr(model, "predict_graph", predict)
    with pytest.warns(RuntimeWarning), pytest.raises(ResourceError, match="single structure"):
        _relax(model, structures[:2], batch_size=2)


def test_other_errors_pass_through(model, structures, monkeypatch) -> None:
    predict, _ = _failing_above(model, 0, RuntimeError("shape mismatch"))
    monkeypatch.setattr(model, "predict_graph", predict)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        _relax(model, structures[:2])
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory (cuBLAS)"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_cuda_atoms_per_call() -> None:
    gib = 2**30
    # 0.6 of 10 GiB at 1 MiB per atom: 6,144 atoms
    assert cuda_atoms_per_call(2**20, 10 * gib) == 6144
    assert cuda_atoms_per_call(2**20, 10 * gib, fraction=0.3) == 3072
    # capped; at least one atom
    assert cuda_atoms_per_call(1000, 100 * gib) == CUDA_ATOMS_PER_CALL
    assert cuda_atoms_per_call(10 * gib, gib) == 1
    assert cuda_atoms_per_call(2**20, 10 * gib, cap=1000) == 1000
    # no usable measurement: the cap
    for bad in (0.0, -5.0, float("nan"), float("inf")):
        assert cuda_atoms_per_call(bad, 10 * gib) == CUDA_ATOMS_PER_CALL
    assert auto_batch_size([10] * 1000, torch.device("cuda"), atoms_per_call=640) == 64
    assert auto_batch_size([10] * 1000, torch.device("cpu"), atoms_per_call=40) == 4


class FakeMemory:
    """CUDA memory statistics of a fictitious GPU: 50 kB per atom, 60 MB free."""

    def __init__(self) -> None:
        self.probe_atoms = 0

    def start(self) -> int:
        return 10**9  # model weights etc.

    def peak(self) -> int:
        return 10**9 + 50_000 * self.probe_atoms

    def free(self) -> int:
        return 60_000_000

    def release(self) -> None:
        return None


def test_first_batch_measures_the_atoms_per_call(model, structures, monkeypatch) -> None:
    memory = FakeMemory()
    predict_graph = model.predict_graph
    sizes: list[int] = []

    def counting(graphs, **kw):
        sizes.append(min(len(graphs), kw.get("batch_size", len(graphs))))
        if not memory.probe_atoms:
            memory.probe_atoms = sum(len(g.atomic_number) for g in graphs)
        return predict_graph(graphs, **kw)

    monkeypatch.setattr(model, "predict_graph", counting)
    settings = RelaxSettings(max_steps=1, device="cpu", threads=1, graph_workers=0)
    relaxer = BatchRelaxer(settings, model=model)
    relaxer.memory = memory
    many = structures * 30  # 720 atoms: the probe takes the first ones up to PROBE_ATOMS
    records = relaxer.relax(many, progress=False)
    assert all(r.ok for r in records)
    assert memory.probe_atoms <= PROBE_ATOMS
    assert memory.probe_atoms > PROBE_ATOMS - max(len(s) for s in structures)
    # 0.6 * 60 MB / 50 kB = 720 atoms per call
    assert relaxer.atoms_per_call == 720
    mean = np.mean([len(s) for s in many])
    assert sizes[1] == int(720 // mean)
    # measured once per relaxer: no probe call the second time
    calls = len(sizes)
    (again,) = relaxer.relax(structures[:1], progress=False)
    assert relaxer.atoms_per_call == 720
    assert len(sizes) == calls + again.n_steps + 1


def test_a_small_first_run_probes_repeated_structures(model, structures, monkeypatch) -> None:
    memory = FakeMemory()
    predict_graph = model.predict_graph

    def counting(graphs, **kw):
        if not memory.probe_atoms:
            memory.probe_atoms = sum(len(g.atomic_number) for g in graphs)
        return predict_graph(graphs, **kw)

    settings = RelaxSettings(max_steps=0, device="cpu", threads=1, graph_workers=0)
    relaxer = BatchRelaxer(settings, model=model)
    relaxer.memory = memory
    monkeypatch.setattr(model, "predict_graph", counting)
    (record,) = relaxer.relax([structures[2]], progress=False)  # 2 atoms
    assert record.ok and memory.probe_atoms == PROBE_ATOMS
    assert relaxer.atoms_per_call == 720


def test_graph_workers_setting() -> None:
    assert RelaxSettings().graph_workers is None
    assert RelaxSettings(graph_workers=0).graph_workers == 0
    assert RelaxSettings(graph_workers=4).graph_workers == 4
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(InputError, match="graph_workers"):
            RelaxSettings(graph_workers=bad)

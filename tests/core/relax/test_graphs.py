"""CHGNet graphs built in worker processes are the in-process graphs, in input order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.relax.graphs import (
    GRAPH_TENSORS,
    ConverterSettings,
    GraphBuilder,
    default_graph_workers,
    frame_of,
    graph_arrays,
    graph_from_arrays,
)

TENSORS = GRAPH_TENSORS  # every tensor a CrystalGraph carries to the model


@pytest.fixture(scope="module")
def model():
    from chgnet.model import CHGNet

    torch.set_num_threads(1)
    chgnet = CHGNet.load(verbose=False, use_device="cpu")
    chgnet.graph_converter.set_isolated_atom_response("ignore")
    return chgnet


def small_structures() -> list[Structure]:
    """Si, NaCl, Li and a skewed Li-Si cell (1-8 atoms), rattled."""
    rng = np.random.default_rng(3)
    si = Structure(
        Lattice.cubic(5.43),
        ["Si"] * 8,
        Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]).frac_coords,
    )
    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()
    li = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    lisi = Structure(
        Lattice.from_parameters(4.1, 4.6, 5.2, 71, 95, 118),
        ["Li", "Li", "Li", "Si"],
        rng.random((4, 3)),
    )
    out = []
    for s in (si, nacl, li, lisi, li.copy()):
        s = s.copy()
        s.perturb(0.05)
        out.append(s)
    return out  # fmt: skip


def assert_same_graph(a, b) -> None:
    for key in TENSORS:
        ta, tb = getattr(a, key), getattr(b, key)
        assert ta.dtype == tb.dtype and torch.equal(ta, tb), key
        assert ta.requires_grad == tb.requires_grad, key
    assert a.composition == b.composition
    assert a.atom_graph_cutoff == b.atom_graph_cutoff
    assert a.bond_graph_cutoff == b.bond_graph_cutoff


def test_pool_graphs_equal_the_models_own(model) -> None:
    structures = small_structures() * 3  # more structures than chunks: order matters
    reference = [model.graph_converter(s) for s in structures]
    with GraphBuilder(model.graph_converter, workers=0) as serial:
        in_process = serial.build(structures)
    with GraphBuilder(model.graph_converter, workers=2) as pool:
        pooled = pool.build(structures)
        # the pool is reused by later builds
        workers = pool._pool
        again = pool.build_frames([frame_of(s) for s in structures[:2]])
        assert pool._pool is workers
    assert pool._pool is None  # closed by the with block
    assert len(pooled) == len(structures)
    for ref, a, b in zip(reference, in_process, pooled, strict=True):
        assert_same_graph(ref, a)
        assert_same_graph(ref, b)
    for ref, b in zip(reference[:2], again, strict=True):
        assert_same_graph(ref, b)
    # the model evaluates the pooled graphs exactly as its own
    out_ref = model.predict_graph(reference[:4], task="efs", batch_size=4)
    out_pool = model.predict_graph(pooled[:4], task="efs", batch_size=4)
    for p, q in zip(out_ref, out_pool, strict=True):
        for key in "efs":
            np.testing.assert_array_equal(p[key], q[key])


def test_graph_arrays_round_trip(model) -> None:
    graph = model.graph_converter(small_structures()[1])
    assert_same_graph(graph, graph_from_arrays(graph_arrays(graph)))


def test_worker_errors_are_the_in_process_errors(model) -> None:
    good = frame_of(small_structures()[2])
    bad = (good[0], np.array([0, 3]), good[2])  # atomic number 0: no element
    with (
        GraphBuilder(model.graph_converter, workers=0) as serial,
        pytest.raises(ValueError) as in_process,
    ):
        serial.build_frames([good, bad])
    with GraphBuilder(model.graph_converter, workers=1) as pool:
        with pytest.raises(ValueError) as pooled:
            pool.build_frames([good, bad, good])
        assert type(pooled.value) is type(in_process.value)
        assert str(pooled.value) == str(in_process.value)
        # the pool survives a failed build
        assert len(pool.build_frames([good])) == 1


def test_converter_settings_follow_the_model(model) -> None:
    settings = ConverterSettings.of(model.graph_converter)
    converter = settings.converter()
    assert converter.atom_graph_cutoff == model.graph_converter.atom_graph_cutoff
    assert converter.bond_graph_cutoff == model.graph_converter.bond_graph_cutoff
    assert converter.algorithm == model.graph_converter.algorithm
    assert converter.on_isolated_atoms == "ignore"
    with pytest.raises(ValueError):
        GraphBuilder(model.graph_converter, workers=-1)


def test_default_graph_workers() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert default_graph_workers(cpu, cpu_count=64) == 0
    assert default_graph_workers(cuda, cpu_count=16) == 8
    assert default_graph_workers(cuda, cpu_count=4) == 3
    assert default_graph_workers(cuda, cpu_count=1) == 0


def test_a_dead_worker_is_a_resource_error_and_the_next_build_restarts(model) -> None:
    import os
    import signal
    import time

    from chggen_flows.errors import ResourceError

    frames = [frame_of(s) for s in small_structures()]
    with GraphBuilder(model.graph_converter, workers=1) as pool:
        pool.build_frames(frames[:1])
        for pid in list(pool._pool._processes):  # e.g. killed for memory
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(ResourceError, match="graph worker process died") as caught:
            pool.build_frames(frames)
        assert "__main__" in caught.value.hint
        assert pool._pool is None
        assert len(pool.build_frames(frames)) == len(frames)
        # a death noticed before the next submission is the same error
        for pid in list(pool._pool._processes):
            os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)  # the pool's manager thread marks the pool broken
        with pytest.raises(ResourceError, match="graph worker process died"):
            pool.build_frames(frames)
        assert len(pool.build_frames(frames)) == len(frames)


def test_no_automatic_workers_in_a_daemonic_process(monkeypatch) -> None:
    import multiprocessing
    from types import SimpleNamespace

    monkeypatch.setattr(multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))
    assert default_graph_workers(torch.device("cuda"), cpu_count=16) == 0

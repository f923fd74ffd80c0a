"""Reading, de-duplicating, filtering, splitting and batching training structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Structure

from chggen_flows.core.model.data import read_structures, split_by_id
from chggen_flows.errors import InputError

DATA = Path(__file__).parents[2] / "test_data" / "model" / "tiny_structures.csv"


def test_table_rows_are_deduplicated_by_material_id():
    table = pd.read_csv(DATA)
    dataset = read_structures([DATA, DATA])
    assert len(dataset) == table["material_id"].nunique() < len(table)
    assert list(dataset.material_ids) == list(dict.fromkeys(table["material_id"]))


def test_max_atoms_filter_and_structure_files(tmp_path):
    table = pd.read_csv(DATA)
    sizes = {
        mid: len(Structure.from_str(cif, fmt="cif"))
        for mid, cif in zip(table["material_id"], table["cif"], strict=True)
    }
    small = min(sizes, key=sizes.get)
    cif = table.loc[table["material_id"] == small, "cif"].iloc[0]
    Structure.from_str(cif, fmt="cif").to(filename=str(tmp_path / "extra.cif"))
    dataset = read_structures([DATA, tmp_path], max_atoms=4)
    assert int(dataset.counts.max()) <= 4
    assert "extra.cif" in dataset.material_ids  # a structure file's id is its name
    assert set(dataset.material_ids) == {m for m, n in sizes.items() if n <= 4} | {"extra.cif"}


def test_batch_positions_match_pymatgen():
    table = pd.read_csv(DATA).drop_duplicates("material_id")
    dataset = read_structures([DATA])
    batch = dataset.batch([2, 0], dtype=torch.float64)
    expected = [Structure.from_str(table["cif"].iloc[i], fmt="cif") for i in (2, 0)]
    assert batch.counts == tuple(len(s) for s in expected)
    torch.testing.assert_close(batch.lattice[1], torch.tensor(expected[1].lattice.matrix))
    # the same crystal: positions agree modulo lattice vectors
    frac = torch.linalg.solve(batch.lattice[0].T, batch.pos[: batch.counts[0]].T).T.numpy()
    delta = frac - expected[0].frac_coords
    np.testing.assert_allclose(delta - np.round(delta), 0.0, atol=1e-8)
    assert batch.species[: batch.counts[0]].tolist() == [s.specie.Z for s in expected[0]]


def test_split_is_disjoint_complete_and_stable():
    dataset = read_structures([DATA])
    train_idx, val_idx = split_by_id(dataset, 0.5)
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(len(dataset)))
    # the side of a structure depends on its id only, not on the order of the data
    reordered = dataset.subset(list(reversed(range(len(dataset)))))
    _, val_again = split_by_id(reordered, 0.5)
    assert {reordered.material_ids[i] for i in val_again} == {
        dataset.material_ids[i] for i in val_idx
    }


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_structures([tmp_path / "missing.csv"])
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": ["x"], "structure": ["y"]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match="material_id"):
        read_structures([bad])

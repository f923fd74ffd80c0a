"""Structure inputs of the CLI: directories, chggen summaries, unreadable files."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.cli.inputs import expand_paths, structure_files
from chggen_flows.errors import InputError


def _cif(path):
    Structure(Lattice.cubic(3.0), ["Li", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(path))


def test_output_directory_of_one_command_is_input_of_the_next(tmp_path):
    _cif(tmp_path / "b.cif")
    _cif(tmp_path / "a.cif")
    (tmp_path / "summary.json").write_text(json.dumps({"n_valid": 2}))
    (tmp_path / "notes.txt").write_text("not a structure")
    assert [p.name for p in expand_paths([tmp_path])] == ["a.cif", "b.cif"]
    files = structure_files([tmp_path])
    assert [f.rsplit("/", 1)[-1] for f, _ in files] == ["a.cif", "b.cif"]
    assert all(s.composition.reduced_formula == "LiSi" for _, s in files)


def test_summary_given_explicitly_is_an_error(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"n_valid": 2}))
    with pytest.raises(InputError, match="not a structure"):
        structure_files([tmp_path / "summary.json"])


def test_directory_without_structures(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(InputError, match="holds no structure files"):
        expand_paths([tmp_path])

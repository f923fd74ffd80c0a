"""Structure inputs of the CLI: directories, chggen summaries, unreadable files."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.cli.inputs import expand_paths, structure_files, structure_name, unique_names
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


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("li2o_0.03.cif", "li2o_0.03"),
        ("dir.v2/li2o_0.05.CIF", "li2o_0.05"),
        ("Li2O.json.gz", "Li2O"),
        ("Li2O_0.1.cif.gz", "Li2O_0.1"),
        ("LiSi.mp-570363.vasp", "LiSi.mp-570363"),
        ("set.1.json", "set.1"),
        ("POSCAR", "POSCAR"),
        ("POSCAR.relaxed", "POSCAR.relaxed"),
        (".cif", ".cif"),
    ],
)
def test_structure_names_drop_only_the_file_ending(file, name):
    assert structure_name(file) == name


def test_unique_names_keep_dots_and_count_clashes():
    files = ["a/li2o_0.03.cif", "b/li2o_0.05.cif", "c/li2o_0.03.vasp", "many.json", "many_1.cif"]
    assert unique_names(files, [1, 1, 1, 2, 1]) == [
        "li2o_0.03",
        "li2o_0.05",
        "li2o_0.03_1",
        "many",
        "many_1",
        "many_1_1",
    ]

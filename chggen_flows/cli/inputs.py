"""Structure files given on the command line: CIF, POSCAR, pymatgen JSON, directories."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chggen_flows.errors import InputError

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: File endings picked up from a directory (plus files named POSCAR*).
STRUCTURE_SUFFIXES = {".cif", ".vasp", ".json", ".gz"}
#: Endings dropped from a file name to name its structure (longest first, any case):
#: ``li2o_0.03.cif`` is ``li2o_0.03``, not ``li2o_0``.
NAME_ENDINGS = (".json.gz", ".cif.gz", ".vasp.gz", ".cif", ".vasp", ".json", ".gz")
#: What ``chggen generate``/``relax``/``framework`` write beside their CIFs; skipped in a
#: directory so that one command's output directory is the next one's input.
SUMMARY_FILE = "summary.json"


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given, directories replaced by the structure files they hold (sorted;
    a chggen ``summary.json`` in a directory is not a structure and is skipped)."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            p
            for p in path.iterdir()
            if p.is_file()
            and p.name != SUMMARY_FILE
            and (p.suffix.lower() in STRUCTURE_SUFFIXES or p.name.startswith("POSCAR"))
        )
        if not found:
            raise InputError(
                f"directory {path} holds no structure files",
                hint="put CIF, POSCAR or pymatgen JSON files in it",
            )
        files += found
    return files


def structure_name(path: Path | str) -> str:
    """The name of the structures of a file: its name without a structure-file ending.

    Only a known ending (:data:`NAME_ENDINGS`) is dropped, so dots inside the name stay.

    Examples
    --------
    >>> structure_name("runs/li2o_0.03.cif")
    'li2o_0.03'
    >>> structure_name("Li2O.JSON.GZ"), structure_name("POSCAR"), structure_name("a.b.vasp")
    ('Li2O', 'POSCAR', 'a.b')
    """
    name = Path(path).name
    lower = name.lower()
    for ending in NAME_ENDINGS:
        if lower.endswith(ending) and len(name) > len(ending):
            return name[: -len(ending)]
    return name


def unique_names(files: Sequence[Path | str], counts: Sequence[int] | None = None) -> list[str]:
    """One distinct name per structure: :func:`structure_name` of its file, ``_k`` for
    the k-th structure of a file holding several (k >= 1), ``_1``, ``_2``... where two
    files would give the same name.

    Parameters
    ----------
    files
        The files, in order.
    counts
        Structures per file (default one each).
    """
    counts = [1] * len(files) if counts is None else list(counts)
    names: list[str] = []
    used: set[str] = set()
    for file, count in zip(files, counts, strict=True):
        stem = structure_name(file)
        for k in range(count):
            base = stem + (f"_{k}" if k else "")
            name, n = base, 1
            while name in used:
                name, n = f"{base}_{n}", n + 1
            used.add(name)
            names.append(name)
    return names


def _from_record(item: object, path: Path) -> Structure:
    from pymatgen.core import Structure

    if isinstance(item, Structure):
        return item
    if isinstance(item, dict) and "structure" in item:
        return _from_record(item["structure"], path)
    if isinstance(item, dict) and "lattice" in item and "sites" in item:
        return Structure.from_dict(item)
    raise InputError(
        f"{path} holds an entry that is not a structure.",
        "Use CIF/POSCAR files, a Structure JSON, or a JSON list of structures "
        "(or of records with a 'structure' field).",
    )


def read_structures(paths: Sequence[Path]) -> list[Structure]:
    """Structures from files: CIF, POSCAR, pymatgen JSON, or JSON lists of structures.

    JSON files (``.json``, ``.json.gz``) may hold one structure, a list of structures or
    a list of records with a ``structure`` field (like the reference sets under
    ``data/hull/``); every other file is read with ``Structure.from_file``.

    Parameters
    ----------
    paths
        Files to read.

    Returns
    -------
    list of Structure
        All structures, in file order.
    """
    # Imported here: every `chggen` invocation imports this module, few read structures.
    from monty.serialization import loadfn
    from pymatgen.core import Structure

    structures: list[Structure] = []
    for path in paths:
        if not path.is_file():
            raise InputError(f"Structure file {path} does not exist.", "Check the path.")
        try:
            if ".json" in path.suffixes:
                content = loadfn(path)
                items = content if isinstance(content, list) else [content]
                structures.extend(_from_record(item, path) for item in items)
            else:
                structures.append(Structure.from_file(path))
        except InputError:
            raise
        except Exception as exc:
            raise InputError(
                f"Could not read a structure from {path}: {exc}",
                "Give a CIF, POSCAR or pymatgen JSON file.",
            ) from exc
    return structures


def structure_files(paths: Sequence[Path]) -> list[tuple[str, Structure]]:
    """``(file, structure)`` for every structure in the files and directories given."""
    return [(str(f), s) for f in expand_paths(paths) for s in read_structures([f])]

"""Training data for the score model: reading, de-duplication, splitting and batching.

Structures come from CSV tables with ``material_id`` and ``cif`` columns (the MP-20 /
MPTS-52 / CDVAE format, optionally gzip-compressed) or from any file pymatgen reads
(CIF, POSCAR, pymatgen JSON). They are kept as one concatenated set of tensors, so a
batch is a few index operations and a 26k-structure set fits in a few MB.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from pymatgen.core import Structure

from chggen_flows.core.model.checkpoint import atomic_save
from chggen_flows.core.sources.chemsys import is_related, parse_chemical_systems
from chggen_flows.errors import InputError
from chggen_flows.progress import track

TABLE_SUFFIXES = (".csv", ".csv.gz")
# a dataset already parsed into tensors (``CrystalDataset.save``): what a GPU machine
# reads, so it needs neither pymatgen's CIF parser nor minutes of parsing
DATASET_SUFFIX = ".dataset.pt"
DATASET_FORMAT = "chggen-crystal-dataset"


@dataclass(frozen=True)
class Batch:
    """Several structures as one graph batch (the score model's input layout)."""

    species: torch.Tensor  # LongTensor[N], atomic numbers
    pos: torch.Tensor  # FloatTensor[N, 3], Cartesian Å
    lattice: torch.Tensor  # FloatTensor[B, 3, 3], rows are lattice vectors
    batch: torch.Tensor  # LongTensor[N], structure index
    counts: tuple[int, ...]  # atoms per structure, on the host

    @property
    def num_structures(self) -> int:
        return len(self.counts)

    @property
    def num_atoms(self) -> int:
        return int(self.species.shape[0])


@dataclass(frozen=True)
class CrystalDataset:
    """Structures stored as concatenated tensors.

    Attributes
    ----------
    material_ids
        One identifier per structure (unique).
    species
        LongTensor[total atoms], atomic numbers.
    frac
        DoubleTensor[total atoms, 3], fractional coordinates in [0, 1).
    lattice
        DoubleTensor[structures, 3, 3], rows are lattice vectors in Å.
    counts
        LongTensor[structures], atoms per structure.
    """

    material_ids: tuple[str, ...]
    species: torch.Tensor
    frac: torch.Tensor
    lattice: torch.Tensor
    counts: torch.Tensor

    def __len__(self) -> int:
        return len(self.material_ids)

    @property
    def offsets(self) -> torch.Tensor:
        return torch.cumsum(self.counts, 0) - self.counts

    @property
    def elements(self) -> tuple[str, ...]:
        """Element symbols present, sorted by atomic number."""
        from pymatgen.core.periodic_table import Element

        return tuple(Element.from_Z(int(z)).symbol for z in torch.unique(self.species))

    @classmethod
    def from_structures(cls, items: Iterable[tuple[str, Structure]]) -> CrystalDataset:
        """Build from ``(material_id, Structure)`` pairs (ordered structures only)."""
        ids, species, frac, lattice, counts = [], [], [], [], []
        for material_id, structure in items:
            ids.append(material_id)
            species.append(torch.tensor([site.specie.Z for site in structure], dtype=torch.long))
            frac.append(torch.tensor(structure.frac_coords % 1.0, dtype=torch.float64))
            lattice.append(torch.tensor(structure.lattice.matrix, dtype=torch.float64))
            counts.append(len(structure))
        if not ids:
            raise InputError("no structures to train on", hint="check the data paths and filters")
        return cls(
            material_ids=tuple(ids),
            species=torch.cat(species),
            frac=torch.cat(frac),
            lattice=torch.stack(lattice),
            counts=torch.tensor(counts, dtype=torch.long),
        )

    def save(self, path: str | Path) -> Path:
        """Write the tensors to one file (name ending in ``.dataset.pt``), read back by
        :meth:`load` or by ``read_structures``."""
        path = Path(path)
        if not path.name.endswith(DATASET_SUFFIX):
            raise InputError(
                f"dataset file {path} must end in {DATASET_SUFFIX}", hint="rename the output"
            )
        payload = {
            "format": DATASET_FORMAT,
            "material_ids": list(self.material_ids),
            "species": self.species,
            "frac": self.frac,
            "lattice": self.lattice,
            "counts": self.counts,
        }
        return atomic_save(payload, path)

    @classmethod
    def load(cls, path: str | Path) -> CrystalDataset:
        """Read a file written by :meth:`save` (tensors only: safe to load)."""
        try:
            payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(
                f"{path} is not a readable dataset file: {str(exc).splitlines()[0]}",
                hint="write it with `chggen train --save-dataset`",
            ) from exc
        if not isinstance(payload, dict) or payload.get("format") != DATASET_FORMAT:
            raise InputError(f"{path} is not a chggen dataset file")
        return cls(
            material_ids=tuple(payload["material_ids"]),
            species=payload["species"],
            frac=payload["frac"],
            lattice=payload["lattice"],
            counts=payload["counts"],
        )

    def element_sets(self) -> list[frozenset[int]]:
        """Atomic numbers present in each structure."""
        bounds = torch.cumsum(self.counts, 0).tolist()
        species = self.species.tolist()
        start, sets = 0, []
        for end in bounds:
            sets.append(frozenset(species[start:end]))
            start = end
        return sets

    def related_to(self, chemical_systems: Sequence[str]) -> torch.Tensor:
        """Indices of structures related to any of ``chemical_systems`` ("Zn-P-S").

        The rule is :func:`chggen_flows.core.sources.chemsys.is_related` (shared with the
        structure sources): a structure shares at least two of a system's elements (ZnS,
        Cu3PS4 and Zn3P2 for Zn-P-S) or all its elements belong to it.
        """
        systems = _systems(chemical_systems)
        keep = [
            i for i, elements in enumerate(self.element_sets()) if is_related(elements, systems)
        ]
        return torch.tensor(keep, dtype=torch.long)

    def containing(self, chemical_systems: Sequence[str]) -> torch.Tensor:
        """Indices of structures that hold every element of one of ``chemical_systems``
        (for Zn-P-S: ZnPS3, Zn3(PS4)2, CuZnPS4, ... but not ZnS)."""
        systems = _systems(chemical_systems)
        keep = [
            i
            for i, elements in enumerate(self.element_sets())
            if any(sys <= elements for sys in systems)
        ]
        return torch.tensor(keep, dtype=torch.long)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> CrystalDataset:
        """The structures at ``indices``, in that order."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        atom_index = self._atom_index(indices)
        return CrystalDataset(
            material_ids=tuple(self.material_ids[i] for i in indices.tolist()),
            species=self.species[atom_index],
            frac=self.frac[atom_index],
            lattice=self.lattice[indices],
            counts=self.counts[indices],
        )

    def _atom_index(self, indices: torch.Tensor) -> torch.Tensor:
        counts = self.counts[indices]
        starts = self.offsets[indices].repeat_interleave(counts)
        within = torch.arange(int(counts.sum())) - (
            torch.cumsum(counts, 0) - counts
        ).repeat_interleave(counts)
        return starts + within

    def batch(
        self,
        indices: Sequence[int] | torch.Tensor,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Batch:
        """Collate the structures at ``indices`` into one graph batch."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        atom_index = self._atom_index(indices)
        counts = self.counts[indices]
        lattice = self.lattice[indices]
        owner = torch.repeat_interleave(torch.arange(len(indices)), counts)
        pos = torch.einsum("ni,nij->nj", self.frac[atom_index], lattice[owner])
        return Batch(
            species=self.species[atom_index].to(device),
            pos=pos.to(device=device, dtype=dtype),
            lattice=lattice.to(device=device, dtype=dtype),
            batch=owner.to(device),
            counts=tuple(counts.tolist()),
        )


def _systems(chemical_systems: Sequence[str]) -> list[frozenset[int]]:
    """Chemical systems ("Zn-P-S") as sets of atomic numbers; a clear error otherwise."""
    from pymatgen.core.periodic_table import Element

    return [
        frozenset(Element(s).Z for s in system)
        for system in parse_chemical_systems(list(chemical_systems))
    ]


def _read_table(path: Path) -> list[tuple[str, str]]:
    table = pd.read_csv(path)
    missing = {"material_id", "cif"} - set(table.columns)
    if missing:
        raise InputError(
            f"{path} lacks column(s) {', '.join(sorted(missing))}",
            hint="a structure table needs `material_id` and `cif` columns",
        )
    return list(zip(table["material_id"].astype(str), table["cif"].astype(str), strict=True))


def _parse_cif(material_id: str, cif: str) -> Structure:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about rounded occupancies
            return Structure.from_str(cif, fmt="cif")
    except Exception as exc:  # pymatgen raises many types for bad CIFs
        raise InputError(f"cannot parse the CIF of {material_id}: {exc}") from exc


def read_structures(
    paths: Sequence[str | Path],
    max_atoms: int | None = None,
    progress: bool | None = None,
) -> CrystalDataset:
    """Read, filter and de-duplicate structures from tables and structure files.

    Parameters
    ----------
    paths
        CSV tables (``.csv`` / ``.csv.gz`` with ``material_id`` and ``cif`` columns),
        dataset files written by ``CrystalDataset.save`` (``.dataset.pt``) or
        structure files pymatgen can read; a directory stands for the files in it.
    max_atoms
        Skip structures with more atoms per cell (None: keep all).
    progress
        Show a progress bar while parsing (None: on a terminal only).

    Returns
    -------
    CrystalDataset
        One entry per distinct ``material_id`` (the first occurrence wins; a
        structure file's id is its file name). Disordered structures are skipped.
    """
    rows: list[tuple[str, str | Path]] = []
    files = _expand(paths)
    tensor_files = [p for p in files if p.name.endswith(DATASET_SUFFIX)]
    if tensor_files:
        if len(tensor_files) != len(files):
            raise InputError(
                "a dataset file cannot be mixed with tables or structure files",
                hint="build one dataset file from all the sources",
            )
        datasets = [CrystalDataset.load(p) for p in tensor_files]
        return _concat_unique(datasets, max_atoms)
    for path in files:
        if path.name.endswith(TABLE_SUFFIXES):
            rows.extend(_read_table(path))
        else:
            rows.append((path.name, path))
    seen: set[str] = set()
    unique = []
    for material_id, source in rows:
        if material_id not in seen:
            seen.add(material_id)
            unique.append((material_id, source))

    def parsed() -> Iterable[tuple[str, Structure]]:
        for material_id, source in track(
            unique, "reading structures", total=len(unique), disable=None if progress else True
        ):
            structure = (
                Structure.from_file(source)
                if isinstance(source, Path)
                else _parse_cif(material_id, source)
            )
            if structure.is_ordered and (max_atoms is None or len(structure) <= max_atoms):
                yield material_id, structure

    return CrystalDataset.from_structures(parsed())


def _concat_unique(datasets: Sequence[CrystalDataset], max_atoms: int | None) -> CrystalDataset:
    seen: set[str] = set()
    parts = []
    for dataset in datasets:
        keep = []
        for i, (mid, n) in enumerate(
            zip(dataset.material_ids, dataset.counts.tolist(), strict=True)
        ):
            if mid not in seen and (max_atoms is None or n <= max_atoms):
                seen.add(mid)
                keep.append(i)
        if keep:
            parts.append(dataset.subset(keep))
    if not parts:
        raise InputError("no structures to train on", hint="check the data paths and filters")
    return CrystalDataset(
        material_ids=tuple(m for p in parts for m in p.material_ids),
        species=torch.cat([p.species for p in parts]),
        frac=torch.cat([p.frac for p in parts]),
        lattice=torch.cat([p.lattice for p in parts]),
        counts=torch.cat([p.counts for p in parts]),
    )


def _expand(paths: Sequence[str | Path]) -> list[Path]:
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"training data {path} does not exist", hint="check the path")
    return files


def split_by_id(
    dataset: CrystalDataset, val_fraction: float, salt: str = "chggen", min_val: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic train/validation indices from a hash of each ``material_id``.

    A structure's side of the split depends only on its id, not on file order or on
    which other files are read, so adding data later never moves a validation
    structure into training. ``min_val`` (for small sets, e.g. a per-system
    adaptation) moves the structures with the next lowest hashes into validation
    until it holds that many (never all of them).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    draws = [
        int.from_bytes(hashlib.sha256(f"{salt}:{mid}".encode()).digest()[:8], "big") / 2**64
        for mid in dataset.material_ids
    ]
    is_val = torch.tensor(draws) < val_fraction
    wanted = min(min_val, len(draws) - 1)
    if int(is_val.sum()) < wanted:
        is_val[sorted(range(len(draws)), key=draws.__getitem__)[:wanted]] = True
    return torch.nonzero(~is_val).flatten(), torch.nonzero(is_val).flatten()

"""Reference phase diagrams: where the competing phases of a chemical system come from.

Three sources, one interface (:class:`ReferenceProvider`):

- :class:`OfflineCHGNetReference` (default): known structures of the system relaxed with
  the campaign's potential, so the hull is consistent with the candidates' energies and
  no network is needed. The CHGNet 0.3.0 sets ship in ``chggen_flows/data/references``;
  for another potential the shipped sets' structures are relaxed again with it on first
  use and cached (:func:`potential_reference_files`).
- :class:`MPReference`: Materials Project entries through ``mp-api`` (GGA/GGA+U with the
  MP2020 corrections MP applies on its thermo endpoint, or r2SCAN), cached on disk so a
  campaign never asks twice.
- :class:`EntriesFileReference`: a user file of pymatgen entries (JSON) or of
  formula/energy rows (CSV), for closed networks and private data.

A provider has exactly one ``functional``: GGA/GGA+U and r2SCAN energies live on
different scales and are never mixed in one phase diagram. An offline provider also has
one ``potential``: energies of one machine-learned potential are compared only with a
hull made by the same potential (:func:`check_reference_potential`).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from monty.serialization import dumpfn, loadfn
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition, Element, Structure
from pymatgen.entries import Entry
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

from chggen_flows.core.functionals import FUNCTIONALS, GGA, R2SCAN
from chggen_flows.errors import (
    ConfigError,
    InputError,
    PotentialMismatchError,
    ReferenceDataError,
)

# run_type strings found in MP / atomate2 entry parameters, mapped to our two labels.
_RUN_TYPE_FUNCTIONAL = {"GGA": GGA, "GGA+U": GGA, "GGA_GGA+U": GGA, "R2SCAN": R2SCAN}


def check_elements(elements: Iterable[str]) -> tuple[str, ...]:
    """Validated, sorted, unique element symbols (InputError for an unknown symbol)."""
    symbols = []
    for symbol in elements:
        if not Element.is_valid_symbol(str(symbol)):
            raise InputError(
                f"unknown element {symbol!r}",
                hint="use element symbols such as Li, Si, Zn, P, S (case matters)",
            )
        symbols.append(str(symbol))
    if not symbols:
        raise InputError("no elements given for the reference phase diagram")
    return tuple(sorted(set(symbols)))


def functional_of(entry: Entry) -> str | None:
    """The functional an entry was computed with (from its ``run_type``), if it says."""
    params = getattr(entry, "parameters", None) or {}
    data = getattr(entry, "data", None) or {}
    run_type = params.get("run_type") or data.get("run_type") or data.get("thermo_type")
    if run_type is None:
        return None
    return _RUN_TYPE_FUNCTIONAL.get(str(run_type).upper())


class ReferenceProvider(ABC):
    """Competing phases of chemical systems, from one source and one functional.

    Subclasses implement :meth:`_load_entries`; this class checks the elements, keeps
    only entries inside the requested system, insists on every elemental end member and
    caches one :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram` per system (a
    diagram of a larger system answers for its subsystems too).

    Attributes
    ----------
    label
        Short name recorded with every E_d, e.g. ``"offline-chgnet"``.
    functional
        ``"GGA_GGA+U"`` (comparable with CHGNet energies) or ``"r2SCAN"``.
    potential
        The interatomic potential whose energies make the hull (``"chgnet"``, ...), or
        None for DFT energies (Materials Project, entries files).
    """

    label: str
    functional: str
    potential: str | None = None
    #: Where the entries come from, in words (shown with every hull).
    source: str = ""

    def __init__(self) -> None:
        self._diagrams: dict[frozenset[str], PhaseDiagram] = {}
        self._missing: list[dict[str, str]] = []

    def missing_phases(self, elements: Sequence[str]) -> list[dict[str, str]]:
        """Known phases of the system that the source lacks, ``[{formula, note}]``.

        E_d next to them is too low (see :func:`~chggen_flows.core.stability.ehull.hull_warning`).
        Offline sets and entries files list them; the Materials Project lists none.
        """
        allowed = set(check_elements(elements))
        seen: dict[str, dict[str, str]] = {}
        for item in self._missing:
            comp = Composition(item["formula"])
            if {el.symbol for el in comp.elements} <= allowed:
                seen.setdefault(comp.reduced_formula, dict(item, formula=comp.reduced_formula))
        return list(seen.values())

    @abstractmethod
    def _load_entries(self, elements: tuple[str, ...]) -> list[Entry]:
        """All entries the source has within ``elements`` (may include others)."""

    def entries(self, elements: Sequence[str]) -> list[Entry]:
        """Reference entries of the chemical system spanned by ``elements``.

        Parameters
        ----------
        elements
            Element symbols, e.g. ``["Li", "Si"]``; subsystems are included.

        Returns
        -------
        list of pymatgen entries
            Every entry whose elements are a subset of ``elements``.

        Raises
        ------
        InputError
            For an unknown element symbol.
        ReferenceDataError
            When the source lacks an elemental reference for one of the elements.
        """
        symbols = check_elements(elements)
        allowed = set(symbols)
        found = [
            e
            for e in self._load_entries(symbols)
            if {el.symbol for el in e.composition.elements} <= allowed
        ]
        have = {e.composition.elements[0].symbol for e in found if e.composition.is_element}
        missing = sorted(allowed - have)
        if missing:
            raise ReferenceDataError(
                f"reference {self.label!r} has no elemental entry for {', '.join(missing)} "
                f"(chemical system {'-'.join(symbols)})",
                hint="use another --reference (mp, an entries file) or add known structures "
                "of the system to the offline reference (see docs/stability.md)",
            )
        return found

    def phase_diagram(self, elements: Sequence[str]) -> PhaseDiagram:
        """The phase diagram of the system, built once and reused for all candidates."""
        key = frozenset(check_elements(elements))
        for system, diagram in self._diagrams.items():
            if key <= system:
                return diagram
        diagram = PhaseDiagram(self.entries(sorted(key)))
        self._diagrams[key] = diagram
        return diagram


# --------------------------------------------------------------------------------------
# Offline: CHGNet-relaxed known structures
# --------------------------------------------------------------------------------------

SHIPPED_REFERENCES = "chggen_flows.data.references"


def shipped_reference_files() -> list[Path]:
    """The reference sets shipped with the package (one gzipped JSON per system)."""
    root = resources.files(SHIPPED_REFERENCES)
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".json.gz"))


def relaxed_entries(
    structures: Sequence[Structure],
    ids: Sequence[str],
    relax_settings: Any | None = None,
    progress: bool | None = None,
) -> list[ComputedStructureEntry]:
    """Relax structures with the settings' potential and wrap them as reference entries.

    Energies are used as the potential gives them (no correction): CHGNet 0.3.0's are on
    MP's corrected GGA/GGA+U scale, CHGNet-r2SCAN's on MP's r2SCAN scale, SevenNet's are
    uncorrected GGA/GGA+U (comparable with SevenNet hulls only). CHGNet 0.3.0 entries are labelled ``run_type = "CHGNet"`` (as
    the shipped sets always were); every entry names its potential, the potential's
    version and its weights' checksum in ``parameters``.

    Parameters
    ----------
    structures
        Known structures of the chemical system.
    ids
        One entry id per structure (e.g. the MP material id).
    relax_settings
        :class:`chggen_flows.core.relax.RelaxSettings` (its ``potential`` relaxes);
        defaults to the relaxer's defaults (CHGNet 0.3.0).
    progress
        Show the relaxer's progress bar (None: on a terminal).
    """
    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

    if len(structures) != len(ids):
        raise InputError("one id per reference structure is needed")
    relaxer = BatchRelaxer(relax_settings or RelaxSettings())
    potential = relaxer.potential
    records = relaxer.relax(list(structures), progress=progress)
    run_type = "CHGNet" if potential.name == "chgnet" else potential.name
    parameters: dict[str, Any] = {
        "run_type": run_type,
        "potential": potential.name,
        "potential_version": potential.version,
        "weights_checksum": potential.weights_checksum,
    }
    if potential.name.startswith("chgnet"):
        import chgnet

        parameters["chgnet_version"] = chgnet.__version__
    entries = []
    for record, entry_id in zip(records, ids, strict=True):
        if not record.ok:
            raise ReferenceDataError(
                f"reference structure {entry_id} could not be relaxed: {record.rejected_reason}",
                hint="check the structure file (overlapping atoms, wrong units)",
            )
        entries.append(
            ComputedStructureEntry(
                record.structure,
                record.final_energy_per_atom * len(record.structure),
                entry_id=entry_id,
                parameters=dict(parameters),
                data={"converged": record.converged, "n_steps": record.n_steps},
            )
        )
    return entries


#: The former name of :func:`relaxed_entries` (CHGNet was the only potential).
chgnet_entries = relaxed_entries


def check_reference_potential(potential: str, provider: ReferenceProvider) -> None:
    """Refuse E_d of energies from ``potential`` against a hull that does not fit it.

    An offline hull must have been made by the same potential; a DFT hull (Materials
    Project, entries files) must be on the functional the potential was trained on
    (GGA/GGA+U with MP2020 corrections for CHGNet 0.3.0, r2SCAN for CHGNet-r2SCAN).
    SevenNet's energies are uncorrected GGA/GGA+U: only hulls of its own fit them.

    Raises
    ------
    PotentialMismatchError
        With the potential, the hull and what to use instead.
    InputError
        For an unknown potential name.
    """
    from chggen_flows.core.relax.potentials import potential_info

    info = potential_info(potential)
    functional = info.functional
    if provider.potential is not None and provider.potential != potential:
        raise PotentialMismatchError(
            f"energies from potential {potential!r} cannot be compared with the hull "
            f"{provider.label!r}, which was made by {provider.potential!r}",
            hint=f"use the offline reference built for {potential!r} "
            f"(get_reference('offline', potential={potential!r})), or relax the "
            f"candidates with {provider.potential!r}",
        )
    if provider.potential is None and not info.mp_corrected:
        raise PotentialMismatchError(
            f"potential {potential!r} gives uncorrected {functional} energies, which "
            f"cannot be compared with the DFT hull {provider.label!r} (MP2020-corrected "
            "energies are on another scale)",
            hint=f"use the offline reference of {potential!r} "
            f"(get_reference('offline', potential={potential!r}))",
        )
    if provider.functional != functional:
        raise PotentialMismatchError(
            f"potential {potential!r} gives {functional} energies but the hull "
            f"{provider.label!r} is {provider.functional}",
            hint="use a reference on the potential's functional (offline, or mp for "
            "GGA/GGA+U potentials, mp-r2scan for chgnet-r2scan)",
        )


class OfflineCHGNetReference(ReferenceProvider):
    """Known structures relaxed with one potential: the offline sets plus the user's own.

    Parameters
    ----------
    files
        Reference sets to load (gzipped JSON written by
        ``python -m chggen_flows.core.stability.build_references`` or
        :func:`potential_reference_files`); defaults to the sets of ``potential``: the
        shipped Li-Si, Zn-P-S and Li-P-S sets for ``chgnet``, the same structures
        relaxed with the potential (built on first use, cached) for the others.
    extra_entries
        More entries of the same potential, e.g. from :func:`relaxed_entries` on the
        user's structures.
    potential
        The potential of every entry (``"chgnet"`` by default). A set made by another
        potential is refused (:class:`~chggen_flows.errors.PotentialMismatchError`).
    cache_dir
        Where sets of potentials other than ``chgnet`` are cached (default
        :func:`default_cache_dir`).

    Notes
    -----
    A set covers its chemical system only: the elemental entries of Li-Si and Zn-P-S
    alone would give a Li-Zn "hull" without any Li-Zn compound, so systems that no set
    (or user entry) spans are refused instead of silently answered.
    """

    def __init__(
        self,
        files: Sequence[Path] | None = None,
        extra_entries: Sequence[ComputedStructureEntry] = (),
        potential: str = "chgnet",
        cache_dir: Path | None = None,
    ) -> None:
        from chggen_flows.core.relax.potentials import functional_of_potential

        super().__init__()
        self.potential = potential
        self.functional = functional_of_potential(potential)
        # the CHGNet 0.3.0 label is the one every record written so far carries
        self.label = "offline-chgnet" if potential == "chgnet" else f"offline-{potential}"
        pooled: dict[str, Entry] = {}
        self.systems: set[frozenset[str]] = set()
        sources = []
        if files is None:
            files = (
                shipped_reference_files()
                if potential == "chgnet"
                else potential_reference_files(potential, cache_dir)
            )
        for path in files:
            data = load_reference_set(Path(path))
            made_by = set_potential(data)
            if made_by != potential:
                raise PotentialMismatchError(
                    f"reference set {Path(path).name} was made by potential {made_by!r}, "
                    f"not {potential!r}",
                    hint="load the sets of the candidates' potential (leave files out to "
                    "build them), or relax the candidates with the set's potential",
                )
            self.systems.add(frozenset(data["chemsys"].split("-")))
            self._missing.extend(data.get("missing_phases", []))
            sources.append(data.get("source") or Path(path).name)
            for entry in data["entries"]:
                pooled.setdefault(entry.entry_id, entry)
        for entry in extra_entries:
            pooled[entry.entry_id] = entry
            self.systems.add(frozenset(el.symbol for el in entry.composition.elements))
        if extra_entries:
            sources.append(f"{len(extra_entries)} user structure(s) relaxed with {potential}")
        self._pool = list(pooled.values())
        self.source = "; ".join(dict.fromkeys(sources)) or f"offline {potential} reference sets"

    def _load_entries(self, elements: tuple[str, ...]) -> list[Entry]:
        if not any(set(elements) <= system for system in self.systems):
            covered = ", ".join(sorted("-".join(sorted(s)) for s in self.systems if len(s) > 1))
            raise ReferenceDataError(
                f"the offline reference has no set for the {'-'.join(elements)} system "
                f"(it covers {covered})",
                hint="add known structures of the system (--add-reference / "
                "extra_structures), or use --reference mp or an entries file",
            )
        return self._pool


#: The same provider under a name that does not suggest CHGNet only.
OfflineReference = OfflineCHGNetReference


def set_potential(data: dict[str, Any]) -> str | None:
    """The potential that made a reference set or entries file, if it says.

    Sets written before potentials were selectable carry no ``potential`` key; their
    entries are labelled ``run_type = "CHGNet"`` (CHGNet 0.3.0).
    """
    if data.get("potential"):
        return str(data["potential"])
    named = set()
    for entry in data.get("entries", []):
        params = getattr(entry, "parameters", None)
        if params is None and isinstance(entry, dict):
            params = entry.get("parameters")
        params = params or {}
        if params.get("potential"):
            named.add(str(params["potential"]))
        elif str(params.get("run_type", "")) == "CHGNet":
            named.add("chgnet")
        else:
            return None
    return named.pop() if len(named) == 1 else None


def potential_reference_files(
    potential: str,
    cache_dir: Path | None = None,
    progress: bool | None = None,
) -> list[Path]:
    """The offline sets of ``potential``: cached, or built now from the shipped ones.

    Each shipped set's structures (already relaxed with CHGNet 0.3.0, so close to a
    minimum) are relaxed again with ``potential`` (default :class:`RelaxSettings` but
    the potential) and written to
    ``<cache_dir>/references/<potential>/<chemsys>.json.gz`` with the potential's name,
    version and weights' checksum. A cached set whose checksum differs from the
    installed weights is rebuilt. The shipped sets themselves are returned for
    ``chgnet``.

    Parameters
    ----------
    potential
        A registered potential name.
    cache_dir
        Default :func:`default_cache_dir` (``$CHGGEN_CACHE_DIR``, else
        ``~/.cache/chggen-flows``).
    progress
        Show a progress bar per set while relaxing (None: on a terminal).
    """
    from chggen_flows.core.relax import RelaxSettings
    from chggen_flows.core.relax.potentials import check_potential, weights_checksum

    check_potential(potential)
    if potential == "chgnet":
        return shipped_reference_files()
    folder = Path(cache_dir or default_cache_dir()) / "references" / potential
    checksum = weights_checksum(potential)
    paths = []
    for shipped in shipped_reference_files():
        path = folder / shipped.name
        if path.exists():
            try:
                cached = loadfn(path)
                if cached.get("weights_checksum") == checksum and cached.get("entries"):
                    paths.append(path)
                    continue
            except (OSError, ValueError, EOFError):
                pass  # a damaged cache file is rebuilt
        data = load_reference_set(shipped)
        entries = data["entries"]
        relaxed = relaxed_entries(
            [e.structure for e in entries],
            [e.entry_id for e in entries],
            RelaxSettings(potential=potential),
            progress=progress,
        )
        for old, new in zip(entries, relaxed, strict=True):
            new.data.update({k: v for k, v in old.data.items() if k not in new.data})
        params = relaxed[0].parameters
        document = {
            **{k: v for k, v in data.items() if k != "entries"},
            "functional": _functional_of(potential),
            "potential": potential,
            "potential_version": params["potential_version"],
            "weights_checksum": params["weights_checksum"],
            "source": f"{data.get('source', shipped.name)}, relaxed again with {potential}",
            "energies": f"{potential} ({params['potential_version']}), relaxed with "
            "chggen_flows.core.relax.BatchRelaxer (default RelaxSettings) from the "
            "shipped CHGNet-relaxed structures",
            "command": f"potential_reference_files({potential!r})",
            "entries": relaxed,
        }
        atomic_dump(document, path)
        paths.append(path)
    return paths


def _functional_of(potential: str) -> str:
    from chggen_flows.core.relax.potentials import functional_of_potential

    return functional_of_potential(potential)


def load_reference_set(path: Path) -> dict[str, Any]:
    """Read one offline reference set: ``{"chemsys", "provenance", "entries", ...}``."""
    try:
        data = loadfn(path)
    except (OSError, ValueError) as exc:
        raise ReferenceDataError(f"cannot read reference set {path}: {exc}") from exc
    if not isinstance(data, dict) or not data.get("entries"):
        raise ReferenceDataError(f"{path} is not an offline reference set (no entries)")
    return data


# --------------------------------------------------------------------------------------
# Materials Project
# --------------------------------------------------------------------------------------

_MP_THERMO_TYPES = {GGA: "GGA_GGA+U", R2SCAN: "R2SCAN"}


def default_cache_dir() -> Path:
    """``$CHGGEN_CACHE_DIR`` or ``$XDG_CACHE_HOME/chggen-flows`` (``~/.cache/...``)."""
    if env := os.environ.get("CHGGEN_CACHE_DIR"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chggen-flows"


def atomic_dump(obj: Any, path: Path) -> None:
    """Write ``obj`` with monty to ``path`` through a temporary file (no partial files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        dumpfn(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the file is data, not a secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class MPReference(ReferenceProvider):
    """Materials Project entries through ``mp-api``, cached on disk per chemical system.

    GGA/GGA+U entries come from MP's ``GGA_GGA+U`` thermo type, i.e. with the
    MaterialsProject2020Compatibility corrections MP has already applied; CHGNet
    energies are trained on that scale. r2SCAN entries come from the ``R2SCAN`` thermo
    type, uncorrected, and are compared with raw r2SCAN energies only.

    Parameters
    ----------
    functional
        ``"GGA_GGA+U"`` or ``"r2SCAN"``.
    api_key
        Materials Project API key; defaults to ``$MP_API_KEY``.
    cache_dir
        Where responses are kept (``<cache_dir>/mp``); see :func:`default_cache_dir`.
    endpoint
        API endpoint (mp-api's default when None).
    """

    def __init__(
        self,
        functional: str = GGA,
        api_key: str | None = None,
        cache_dir: Path | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__()
        if functional not in FUNCTIONALS:
            raise InputError(f"unknown functional {functional!r}", hint=f"one of {FUNCTIONALS}")
        self.functional = functional
        self.label = "mp-gga-mp2020" if functional == GGA else "mp-r2scan"
        self.source = f"Materials Project API ({functional} thermo entries)"
        self.api_key = api_key or os.environ.get("MP_API_KEY")
        self.endpoint = endpoint
        self.cache_dir = Path(cache_dir or default_cache_dir()) / "mp"

    def _cache_path(self, elements: tuple[str, ...]) -> Path:
        return self.cache_dir / f"{self.label}_{'-'.join(elements)}.json.gz"

    def _cached(self, elements: tuple[str, ...]) -> list[Entry] | None:
        wanted = set(elements)
        exact = self._cache_path(elements)
        candidates = [exact] if exact.exists() else []
        if not candidates and self.cache_dir.is_dir():
            prefix = f"{self.label}_"
            for path in self.cache_dir.glob(f"{prefix}*.json.gz"):
                system = set(path.name[len(prefix) : -len(".json.gz")].split("-"))
                if wanted <= system:
                    candidates.append(path)
        for path in candidates:
            try:
                return list(loadfn(path)["entries"])
            except (OSError, ValueError, KeyError, EOFError):
                continue  # a damaged cache file is refetched, then overwritten
        return None

    def _load_entries(self, elements: tuple[str, ...]) -> list[Entry]:
        cached = self._cached(elements)
        if cached is not None:
            return cached
        entries = self._fetch(elements)
        if not entries:  # not cached: an empty answer is more likely a wrong query
            raise ReferenceDataError(
                f"the Materials Project returned no entries for {'-'.join(elements)} "
                f"({self.functional})",
                hint="check the element symbols, or use another --reference",
            )
        atomic_dump(
            {"label": self.label, "chemsys": "-".join(elements), "entries": entries},
            self._cache_path(elements),
        )
        return entries

    def require_api_key(self) -> None:
        """Raise ConfigError now when no API key is set (before any work is done)."""
        if not self.api_key:
            raise ConfigError(
                "the Materials Project reference needs an API key",
                hint="set MP_API_KEY (https://next-gen.materialsproject.org/api) or pass "
                "--api-key, or use --reference offline / an entries file",
            )

    def _fetch(self, elements: tuple[str, ...]) -> list[Entry]:
        from mp_api.client import MPRester

        self.require_api_key()
        try:
            kwargs: dict[str, Any] = {"api_key": self.api_key, "mute_progress_bars": True}
            if self.endpoint:
                kwargs["endpoint"] = self.endpoint
            with MPRester(use_document_model=False, **kwargs) as mpr:
                entries = mpr.get_entries_in_chemsys(
                    list(elements),
                    compatible_only=True,
                    additional_criteria={"thermo_types": [_MP_THERMO_TYPES[self.functional]]},
                )
        except Exception as exc:  # network, authentication and server errors alike
            raise ReferenceDataError(
                f"Materials Project query for {'-'.join(elements)} failed: {exc}",
                hint="check the API key and the network, or use --reference offline",
            ) from exc
        return list(entries)


# --------------------------------------------------------------------------------------
# User entries file
# --------------------------------------------------------------------------------------


class EntriesReference(ReferenceProvider):
    """Reference entries held in memory (e.g. a campaign's own r2SCAN runs).

    Parameters
    ----------
    entries
        pymatgen entries, all computed with ``functional``.
    label
        Name recorded with every E_d.
    functional
        ``"GGA_GGA+U"`` or ``"r2SCAN"``; entries whose ``run_type`` says otherwise are
        refused.
    """

    def __init__(self, entries: Sequence[Entry], label: str, functional: str) -> None:
        super().__init__()
        if functional not in FUNCTIONALS:
            raise InputError(f"unknown functional {functional!r}", hint=f"one of {FUNCTIONALS}")
        foreign = {f for f in map(functional_of, entries) if f not in (None, functional)}
        if foreign:
            raise ReferenceDataError(
                f"reference {label!r} is {functional} but holds {sorted(foreign)} entries",
                hint="GGA/GGA+U and r2SCAN energies are never mixed in one hull",
            )
        self.label = label
        self.functional = functional
        self.source = f"{len(entries)} entries in memory"
        self._entries = list(entries)

    def _load_entries(self, elements: tuple[str, ...]) -> list[Entry]:
        return self._entries


class EntriesFileReference(EntriesReference):
    """Reference entries from a user file, checked when the provider is created.

    Formats
    -------
    JSON (``.json`` / ``.json.gz``)
        A list of pymatgen ``ComputedEntry`` / ``ComputedStructureEntry`` / ``Entry``
        dicts (as written by ``monty.serialization.dumpfn``), or ``{"functional": ...,
        "entries": [...]}``. Energies are used as stored (corrections included).
    CSV
        Columns ``formula`` and either ``energy_per_atom`` or ``energy`` (total energy of
        the formula as written, eV); optional ``entry_id``.

    Parameters
    ----------
    path
        The file.
    functional
        Declared functional; otherwise taken from the file (``functional`` key or the
        entries' ``run_type``), else GGA/GGA+U. Mixed functionals are refused.
    """

    def __init__(self, path: Path, functional: str | None = None) -> None:
        self.path = Path(path)
        self._declared_potential: str | None = None
        if not self.path.is_file():
            raise InputError(f"entries file {self.path} does not exist")
        missing: list[dict[str, str]] = []
        if self.path.name.lower().endswith((".csv", ".csv.gz")):
            entries, declared = self._read_csv(), None
        else:
            entries, declared, missing = self._read_json()
        if not entries:
            raise InputError(
                f"entries file {self.path} holds no entries",
                hint="see docs/stability.md for the JSON and CSV formats",
            )
        super().__init__(
            entries, f"file:{self.path.name}", self._functional(entries, functional or declared)
        )
        self.source = f"entries file {self.path}"
        self._missing = missing
        # a set written by `chggen reference build` holds one potential's energies
        self.potential = set_potential({"potential": self._declared_potential, "entries": entries})

    def _read_text(self) -> str:
        opener = gzip.open if self.path.suffix == ".gz" else open
        with opener(self.path, "rt", encoding="utf-8") as handle:
            return handle.read()

    def _malformed(self, why: str) -> InputError:
        return InputError(
            f"entries file {self.path} is malformed: {why}",
            hint="JSON: a list of pymatgen ComputedEntry dicts; CSV: formula,energy_per_atom "
            "(see docs/stability.md)",
        )

    def _read_json(self) -> tuple[list[Entry], str | None, list[dict[str, str]]]:
        try:
            data = loadfn(self.path)
        except Exception as exc:  # json, gzip and monty decoding errors
            raise self._malformed(str(exc)) from exc
        declared, missing = None, []
        if isinstance(data, dict):
            self._declared_potential = data.get("potential")
            declared = data.get("functional")
            missing = _missing_list(data.get("missing_phases", []), self._malformed)
            data = data.get("entries", data)
        if not isinstance(data, list):
            raise self._malformed("expected a list of entries")
        entries = []
        for item in data:
            if isinstance(item, dict):
                try:
                    item = (
                        ComputedStructureEntry if "structure" in item else ComputedEntry
                    ).from_dict(item)
                except Exception as exc:
                    raise self._malformed(f"cannot read entry {item!r:.80}: {exc}") from exc
            if not isinstance(item, Entry):
                raise self._malformed(f"{type(item).__name__} is not a pymatgen entry")
            entries.append(item)
        return entries, declared, missing

    def _read_csv(self) -> list[Entry]:
        rows = list(csv.DictReader(io.StringIO(self._read_text())))
        entries = []
        for n, row in enumerate(rows, start=2):
            try:
                composition = Composition(row["formula"])
                if row.get("energy_per_atom") not in (None, ""):
                    energy = float(row["energy_per_atom"]) * composition.num_atoms
                else:
                    energy = float(row["energy"])
            except (KeyError, TypeError, ValueError) as exc:
                raise self._malformed(f"line {n}: {exc!r}") from exc
            entry_id = row.get("entry_id") or f"{self.path.stem}-{n}"
            entries.append(ComputedEntry(composition, energy, entry_id=entry_id))
        return entries

    def _functional(self, entries: list[Entry], declared: str | None) -> str:
        found = {f for f in map(functional_of, entries) if f is not None}
        if len(found) > 1:
            raise ReferenceDataError(
                f"entries file {self.path} mixes GGA/GGA+U and r2SCAN entries",
                hint="split it into one file per functional; they are never mixed in a hull",
            )
        if declared is not None and declared not in FUNCTIONALS:
            raise InputError(f"unknown functional {declared!r}", hint=f"one of {FUNCTIONALS}")
        if declared and found and found != {declared}:
            raise ReferenceDataError(
                f"entries file {self.path} is declared {declared} but holds {found.pop()} entries"
            )
        return declared or (found.pop() if found else GGA)


def _missing_list(value: Any, malformed: Any) -> list[dict[str, str]]:
    """``missing_phases`` of a file: formulas or ``{formula, note}`` dicts."""
    if not isinstance(value, list):
        raise malformed("missing_phases must be a list of formulas")
    out = []
    for item in value:
        item = {"formula": item} if isinstance(item, str) else item
        try:
            comp = Composition(item["formula"])
            unknown = [str(e) for e in comp.elements if not Element.is_valid_symbol(str(e))]
            if unknown or not comp.elements:
                raise ValueError(f"unknown element(s) {unknown}")
            formula = comp.reduced_formula
        except (KeyError, TypeError, ValueError) as exc:
            raise malformed(f"missing phase {item!r}: {exc}") from exc
        out.append({"formula": formula, "note": str(item.get("note", ""))})
    return out


# --------------------------------------------------------------------------------------


def get_reference(
    source: str | Path = "offline",
    cache_dir: Path | None = None,
    api_key: str | None = None,
    functional: str | None = None,
    extra_structures: Sequence[Structure] = (),
    relax_settings: Any | None = None,
    potential: str | None = None,
) -> ReferenceProvider:
    """A reference provider from a source name or an entries file.

    Parameters
    ----------
    source
        ``"offline"`` (CHGNet-relaxed shipped structures), ``"mp"`` (MP GGA/GGA+U,
        MP2020), ``"mp-r2scan"`` (MP r2SCAN) or the path of an entries file (JSON/CSV).
    cache_dir
        Disk cache of MP responses (default :func:`default_cache_dir`).
    api_key
        Materials Project API key (default ``$MP_API_KEY``).
    functional
        For an entries file only: the functional of its energies.
    extra_structures
        For ``"offline"`` only: more known structures of the system, relaxed with CHGNet
        here (see :func:`chgnet_entries`) and added to the shipped ones.
    relax_settings
        :class:`chggen_flows.core.relax.RelaxSettings` for ``extra_structures``.
    potential
        For ``"offline"``: the potential of the hull (default: ``relax_settings``'
        potential, else ``"chgnet"``); sets of potentials other than ``chgnet`` are
        built on first use and cached (:func:`potential_reference_files`).

    Raises
    ------
    InputError
        Unknown source name, missing or malformed entries file, extra structures
        with a source other than ``"offline"``, unknown potential.
    PotentialMismatchError
        ``relax_settings`` name another potential than ``potential``.
    ConfigError
        MP selected without an API key.
    """
    name = str(source)
    if name == "offline":
        from chggen_flows.core.relax import RelaxSettings

        settings_potential = getattr(relax_settings, "potential", None)
        potential = potential or settings_potential or "chgnet"
        if settings_potential not in (None, potential):
            raise PotentialMismatchError(
                f"extra reference structures would be relaxed with {settings_potential!r} "
                f"for a {potential!r} hull",
                hint="give the same potential in the relax settings and the reference",
            )
        ids = [f"user-{k}-{s.composition.reduced_formula}" for k, s in enumerate(extra_structures)]
        settings = relax_settings or RelaxSettings(potential=potential)
        extra = relaxed_entries(extra_structures, ids, settings) if ids else ()
        return OfflineCHGNetReference(extra_entries=extra, potential=potential, cache_dir=cache_dir)
    if extra_structures:
        raise InputError(
            "extra reference structures are relaxed with CHGNet and only fit the offline "
            f"reference, not {name!r}",
            hint="use --reference offline, or add the phases to your entries file",
        )
    if name in ("mp", "mp-r2scan"):
        provider = MPReference(GGA if name == "mp" else R2SCAN, api_key, cache_dir)
        provider.require_api_key()
        return provider
    path = Path(name)
    if path.suffix.lower() in (".json", ".csv", ".gz") or path.exists():
        return EntriesFileReference(path, functional)
    raise InputError(
        f"unknown reference source {name!r}",
        hint="use offline, mp, mp-r2scan or the path of an entries file (.json or .csv)",
    )

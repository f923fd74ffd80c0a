"""What every host source returns: a host structure and the guests to inpaint into it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymatgen.core import Structure


@dataclass(frozen=True)
class HostSeed:
    """An ordered host and the guests the inpainting places in it.

    Attributes
    ----------
    host
        Ordered host structure (its sites stay fixed through inpainting).
    guests
        Guest species and counts, e.g. ``{"Zn": 2}``.
    kind
        Which host source made it: ``"analogue"``, ``"random_framework"`` or
        ``"disordered"``.
    info
        JSON-ready provenance: the template (material id, formula, space group), the
        supercell, the volume scaling, rounding of guest counts...
    """

    host: Structure
    guests: dict[str, int]
    kind: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def formula(self) -> str:
        """Formula of the candidate the host and guests make."""
        composition = self.host.composition.as_dict()
        for symbol, count in self.guests.items():
            composition[symbol] = composition.get(symbol, 0) + count
        from pymatgen.core import Composition

        return Composition(composition).formula

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what a job passes on; :meth:`from_dict` reads it back)."""
        return {
            "host": self.host.as_dict(),
            "guests": dict(self.guests),
            "kind": self.kind,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostSeed:
        """The seed :meth:`as_dict` wrote."""
        return cls(
            Structure.from_dict(data["host"]),
            {str(k): int(v) for k, v in data["guests"].items()},
            str(data["kind"]),
            dict(data.get("info", {})),
        )

    def metadata(self) -> dict[str, Any]:
        """What a candidate made from this host records (``host_source``)."""
        return {"kind": self.kind, "guests": dict(self.guests), **self.info}

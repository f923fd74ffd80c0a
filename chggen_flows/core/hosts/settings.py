"""Settings of a campaign's host arms (a spec's ``hosts:`` section).

One frozen :class:`~chggen_flows.core.settings_model.CoreSettings` class, carried by
the host-source Makers: which structure source gives the templates, how they are
filtered, how many hosts per target and which arms run (analogue inpainting, plain
substitution of the same templates, random symmetric frameworks).
"""

from __future__ import annotations

from pydantic import field_validator

from chggen_flows.core.settings_model import CoreSettings, RelatedFieldsError, bounded
from chggen_flows.errors import InputError

#: The host arms a campaign can run, by their ``hosts.arms`` names.
HOST_ARMS: tuple[str, ...] = ("analogue", "substitution", "frameworks")
#: Arms that read templates from ``hosts.source``.
TEMPLATE_ARMS: frozenset[str] = frozenset({"analogue", "substitution"})


class HostSourceSettings(CoreSettings):
    """Where the hosts of a campaign's host arms come from (docs/hosts.md).

    Attributes
    ----------
    source
        Structure source(s) of the templates: a CIF folder, a JSON or MP-20/MPTS-52 CSV
        file (relative to the spec file), or ``mp`` (the Materials Project through
        ``mp-api``; needs ``MP_API_KEY``). Required by the ``analogue`` and
        ``substitution`` arms.
    arms
        The arms to run: ``analogue`` (templates stripped, volume-scaled, guests
        inpainted), ``substitution`` (the same templates' cations replaced one for one,
        no inpainting), ``frameworks`` (PyXtal frameworks of the host species, guests
        inpainted).
    include_elements, exclude_elements, exclude_formulas, related_to
        Template filters (``exclude_elements: [Zn]``: no Zn compound may serve).
    max_e_above_hull
        Templates above this energy above hull (eV/atom) are not used (sources with
        the value only).
    max_templates
        Hosts per target (composition x formula units), ranked (docs/hosts.md).
    max_linear_strain
        Largest isotropic length change of a template to reach the target volume.
    max_atoms
        Largest host + guests.
    candidates_per_host
        Inpaintings per analogue host (each with its own seed).
    frameworks_per_target
        Random frameworks per target (``frameworks`` arm), one inpainting each.
    guest_start_sigma
        Beyond the paper: the guests begin at known sites plus noise of this many Å,
        and the inpainting walk starts at that level (a shorter walk). ``analogue``:
        the template's cation sites (a random subset when it has more;
        :func:`template_guest_start`), the prior where it has fewer; ``frameworks``:
        PyXtal places the guests too, in the framework's space group. None (the
        default): the guests are drawn from the prior, as in the paper.
    substitution_rattle
        ``substitution`` arm: the exchanged cations displaced by Gaussian noise of this
        many Å per axis before the relaxation (None, the default: left on the template's
        sites). The control of ``guest_start_sigma``: the same start, no model step.
    """

    source: str | tuple[str, ...] | None = None
    arms: tuple[str, ...] = ("analogue",)
    include_elements: tuple[str, ...] | None = None
    exclude_elements: tuple[str, ...] | None = None
    exclude_formulas: tuple[str, ...] | None = None
    related_to: str | None = None
    max_e_above_hull: float | None = None
    max_templates: int = 8
    max_linear_strain: float = 0.2
    max_atoms: int = 80
    candidates_per_host: int = 2
    frameworks_per_target: int = 4
    guest_start_sigma: float | None = None
    substitution_rattle: float | None = None

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        if isinstance(value, str):
            return (value,)
        if value is not None and not value:  # type: ignore[truthy-bool]
            raise InputError("hosts.source is empty", hint="name a folder, a file or mp")
        return value

    @field_validator("arms", mode="before")
    @classmethod
    def _check_arms(cls, value: object) -> object:
        arms = (value,) if isinstance(value, str) else tuple(value)  # type: ignore[arg-type]
        if not arms:
            raise InputError("hosts.arms is empty", hint=f"choose from {list(HOST_ARMS)}")
        bad = [a for a in arms if a not in HOST_ARMS]
        if bad:
            from chggen_flows.errors import closest_key

            guess = closest_key(str(bad[0]), list(HOST_ARMS))
            raise InputError(
                f"unknown host arm(s) {bad}",
                hint=f"choose from {list(HOST_ARMS)}"
                + (f"; did you mean {guess!r}?" if guess else ""),
            )
        return tuple(dict.fromkeys(arms))

    @field_validator("include_elements", "exclude_elements", mode="before")
    @classmethod
    def _check_elements(cls, value: object) -> object:
        if value is None:
            return None
        from pymatgen.core import Element

        symbols = (value,) if isinstance(value, str) else tuple(value)  # type: ignore[arg-type]
        bad = [s for s in symbols if not Element.is_valid_symbol(str(s))]
        if bad:
            raise InputError(f"not element symbols: {bad}", hint="e.g. [Zn, Cd]")
        return symbols

    _counts = bounded(
        "max_templates", "max_atoms", "candidates_per_host", "frameworks_per_target", low=1
    )
    _positive = bounded("max_linear_strain", low=0, inclusive=False)
    _hull = bounded("max_e_above_hull", low=0, unit=" eV/atom")
    _start = bounded(
        "guest_start_sigma", "substitution_rattle", low=0, inclusive=False, unit=" Å",
        hint="e.g. 0.1",
    )  # fmt: skip

    def related_problem(self) -> RelatedFieldsError | None:
        """Template arms need a source."""
        if self.source is None and TEMPLATE_ARMS & set(self.arms):
            return RelatedFieldsError(
                ("source", "arms"),
                f"the {' and '.join(sorted(TEMPLATE_ARMS & set(self.arms)))} arm(s) need "
                "hosts.source",
                hint="source: a folder of CIFs, a JSON/CSV file or mp; or arms: [frameworks]",
            )
        return None

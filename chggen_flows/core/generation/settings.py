"""Settings of the sampler and of RePaint inpainting: the one home of their defaults.

Kept apart from the sampling code (and free of torch) so that the campaign spec, the
Makers and the command line read the defaults without loading the model's stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from chggen_flows.core.generation.schedule import sigma_levels
from chggen_flows.core.settings_model import CoreSettings, RelatedFieldsError, bounded, one_of
from chggen_flows.core.symmetry.guests import GUEST_SYMMETRY_MODES

if TYPE_CHECKING:
    import torch


class SamplerSettings(CoreSettings):
    """Settings of the predictor-corrector sampler.

    Attributes
    ----------
    n_levels
        Number of noise levels T (predictor steps of unconditional sampling).
    sigma_max, sigma_min
        Geometric noise schedule bounds in Å.
    n_corrector
        Langevin corrector steps M per level.
    snr
        Signal-to-noise ratio delta of the corrector.
    corrector_norm
        ``"sqrt3"`` (default; the paper's formula): the corrector step is
        ``eps = 2 (snr sqrt(3) / ||g||)^2`` with ||g|| the norm of the structure's
        score over all its atoms (host included when inpainting, as in the paper's
        algorithm: a norm over a few guests alone makes the step erratic); for a Gaussian of width w this is about
        ``2 snr^2 w^2 / n`` for n atoms. ``"sqrt_dim"`` (Song et al.) uses the noise norm
        ``sqrt(3n)`` instead, ``eps ~ 2 snr^2 w^2`` whatever the size; with the authors'
        snr = 0.4 that step is so large that Langevin's discretisation bias widens the
        sampled distribution by about 9% (measured, docs/generation.md), so use
        snr ~ 0.16 with it.
    min_distance
        Validity cutoff of a *sampled* structure (Å, periodic images included): a
        candidate with two atoms closer than this leaves the sampler marked invalid.
        Not :attr:`chggen_flows.core.relax.RelaxSettings.min_distance` (0.7 Å), the
        relaxation's own, stricter, refusal to relax a structure.
    max_batch_atoms
        Atoms per batched model call; None sizes batches from the device's memory.
    max_batch_size
        Optional cap on structures per batch.
    dtype
        ``"float32"`` or ``"float64"`` for positions and noise.
    """

    n_levels: int = 200
    sigma_max: float = 10.0
    sigma_min: float = 0.001
    n_corrector: int = 5
    snr: float = 0.4
    corrector_norm: Literal["sqrt3", "sqrt_dim"] = "sqrt3"
    min_distance: float = 0.5
    max_batch_atoms: int | None = None
    max_batch_size: int | None = None
    dtype: Literal["float32", "float64"] = "float32"

    # One check per field, each naming the field, its range and the value given, so a
    # campaign spec's error points at the key (chggen_flows.campaign.spec).
    _corrector_norm = one_of("corrector_norm", ("sqrt3", "sqrt_dim"))
    _dtype = one_of("dtype", ("float32", "float64"))
    _n_levels = bounded("n_levels", low=1, hint="e.g. 200")
    _sigma_min = bounded("sigma_min", low=0, inclusive=False, unit=" Å", hint="e.g. 0.001")
    _n_corrector = bounded("n_corrector", low=0)
    _snr = bounded("snr", low=0, inclusive=False, hint="e.g. 0.4")
    _min_distance = bounded("min_distance", low=0, unit=" Å")
    _batch_caps = bounded(
        "max_batch_atoms",
        "max_batch_size",
        low=1,
        hint="leave it unset to size batches automatically",
    )

    def related_problem(self) -> RelatedFieldsError | None:
        """``sigma_max >= sigma_min`` (located at the one the user set)."""
        if not self.sigma_max >= self.sigma_min:
            return RelatedFieldsError(
                ("sigma_max", "sigma_min"),
                f"sigma_max must be >= sigma_min ({self.sigma_min} Å), got {self.sigma_max}",
                hint="e.g. sigma_max 10, sigma_min 0.001",
            )
        sigma_levels(self.n_levels, self.sigma_max, self.sigma_min)  # validates the schedule
        return None

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype of positions and noise."""
        import torch

        return {"float32": torch.float32, "float64": torch.float64}[self.dtype]


class InpaintSettings(CoreSettings):
    """RePaint resampling.

    Attributes
    ----------
    jump_length
        Levels jumped back at each resampling point (authors: 10).
    n_resample
        Passes through each stretch of levels (authors: r = 3; 1 = no resampling).
    guest_symmetry
        ``"free"`` (the paper: guests where the sampler leaves them), ``"symmetric"``
        (guests snapped onto the largest subgroup of the host's symmetry they nearly
        satisfy, :func:`chggen_flows.core.symmetry.guests.symmetrize_guests`, and that
        group kept through the relaxation) or ``"compare"`` (a campaign setting: every
        inpainted candidate goes on both ways, the symmetric copy in its own arm, so
        the report compares them on the same samples; :func:`inpaint` itself returns
        the free ones).
    guest_max_displacement
        Largest move (Å) of a guest to become symmetric (``symmetric``/``compare``).
    """

    jump_length: int = 10
    n_resample: int = 3
    guest_symmetry: str = "free"
    guest_max_displacement: float = 0.5

    _jump_length = bounded("jump_length", low=1, hint="e.g. 10")
    _n_resample = bounded("n_resample", low=1, hint="1 = no resampling")
    _guest_symmetry = one_of(
        "guest_symmetry",
        GUEST_SYMMETRY_MODES,
        "unknown guest_symmetry {value!r}",
        hint=f"choose one of: {', '.join(GUEST_SYMMETRY_MODES)}",
    )
    _guest_max_displacement = bounded(
        "guest_max_displacement", low=0, inclusive=False, unit=" Å", hint="e.g. 0.5"
    )

    @property
    def symmetric(self) -> bool:
        """Whether :func:`inpaint` snaps the guests onto the host's symmetry."""
        return self.guest_symmetry == "symmetric"

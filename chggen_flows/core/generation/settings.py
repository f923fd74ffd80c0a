"""Settings of the sampler and of RePaint inpainting: the one home of their defaults.

Kept apart from the sampling code (and free of torch) so that the campaign spec, the
Makers and the command line read the defaults without loading the model's stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import ValidationInfo, field_validator

from chggen_flows.core.generation.schedule import sigma_levels
from chggen_flows.core.settings_model import CoreSettings, RelatedFieldsError
from chggen_flows.core.symmetry.guests import GUEST_SYMMETRY_MODES
from chggen_flows.errors import InputError

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
    @field_validator("corrector_norm", mode="before")
    @classmethod
    def _check_corrector_norm(cls, value: object) -> object:
        if value not in ("sqrt3", "sqrt_dim"):
            raise InputError(f"corrector_norm must be 'sqrt3' or 'sqrt_dim', got {value!r}")
        return value

    @field_validator("dtype", mode="before")
    @classmethod
    def _check_dtype(cls, value: object) -> object:
        if value not in ("float32", "float64"):
            raise InputError(f"dtype must be 'float32' or 'float64', got {value!r}")
        return value

    @field_validator("n_levels")
    @classmethod
    def _check_n_levels(cls, value: int) -> int:
        if value < 1:
            raise InputError(f"n_levels must be >= 1, got {value}", hint="e.g. 200")
        return value

    @field_validator("sigma_min")
    @classmethod
    def _check_sigma_min(cls, value: float) -> float:
        if not value > 0:
            raise InputError(f"sigma_min must be > 0 Å, got {value}", hint="e.g. 0.001")
        return value

    @field_validator("n_corrector")
    @classmethod
    def _check_n_corrector(cls, value: int) -> int:
        if value < 0:
            raise InputError(f"n_corrector must be >= 0, got {value}")
        return value

    @field_validator("snr")
    @classmethod
    def _check_snr(cls, value: float) -> float:
        if not value > 0:
            raise InputError(f"snr must be > 0, got {value}", hint="e.g. 0.4")
        return value

    @field_validator("min_distance")
    @classmethod
    def _check_min_distance(cls, value: float) -> float:
        if not value >= 0:
            raise InputError(f"min_distance must be >= 0 Å, got {value}")
        return value

    @field_validator("max_batch_atoms", "max_batch_size")
    @classmethod
    def _check_batch_caps(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value < 1:
            raise InputError(
                f"{info.field_name} must be >= 1, got {value}",
                hint="leave it unset to size batches automatically",
            )
        return value

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

    @field_validator("jump_length")
    @classmethod
    def _check_jump_length(cls, value: int) -> int:
        if value < 1:
            raise InputError(f"jump_length must be >= 1, got {value}", hint="e.g. 10")
        return value

    @field_validator("n_resample")
    @classmethod
    def _check_n_resample(cls, value: int) -> int:
        if value < 1:
            raise InputError(f"n_resample must be >= 1, got {value}", hint="1 = no resampling")
        return value

    @field_validator("guest_symmetry")
    @classmethod
    def _check_guest_symmetry(cls, value: str) -> str:
        if value not in GUEST_SYMMETRY_MODES:
            raise InputError(
                f"unknown guest_symmetry {value!r}",
                hint=f"choose one of: {', '.join(GUEST_SYMMETRY_MODES)}",
            )
        return value

    @field_validator("guest_max_displacement")
    @classmethod
    def _check_guest_max_displacement(cls, value: float) -> float:
        if not value > 0:
            raise InputError(f"guest_max_displacement must be > 0 Å, got {value}", hint="e.g. 0.5")
        return value

    @property
    def symmetric(self) -> bool:
        """Whether :func:`inpaint` snaps the guests onto the host's symmetry."""
        return self.guest_symmetry == "symmetric"

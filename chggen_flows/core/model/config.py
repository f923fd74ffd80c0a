"""Hyperparameters of the score network, saved with every checkpoint."""

from __future__ import annotations

from typing import ClassVar, Literal

from e3nn import o3
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pymatgen.core.periodic_table import Element

from chggen_flows.errors import ConfigError


class ScoreModelConfig(BaseModel):
    """Architecture of :class:`~chggen_flows.core.model.network.ScoreModel`.

    The defaults are the CPU-sized model that ships with the package; the authors'
    size is ``ScoreModelConfig.preset("paper")`` (for a GPU).

    Attributes
    ----------
    elements
        Element symbols the model accepts, in embedding order.
    num_blocks
        Interaction (message-passing) blocks.
    hidden_irreps
        e3nn irreps of the node features; scalars (0e) first. Vectors are polar (1o)
        because positions and the score are polar vectors.
    lmax
        Largest degree of the edge spherical harmonics.
    cutoff
        Radial cutoff in Å.
    max_neighbors
        Nearest neighbours kept per atom; None (the default) keeps every neighbour
        within the cutoff. A cap cuts through coordination shells with an arbitrary
        tie-break, so it breaks exact symmetry and makes the score jump: kept only so
        that format-1 checkpoints (which used 24) load unchanged.
    radial_envelope
        ``"output"``: the radial MLP's output is multiplied by the cutoff envelope, so
        edge weights vanish smoothly at the cutoff. ``"basis"``: only its input is
        (format-1 checkpoints; the MLP's biases leave weights of order one at the
        cutoff, so the score jumps when an edge crosses it).
    num_bessel
        Bessel radial basis functions.
    radial_hidden
        Width of the radial MLP that produces the tensor-product weights.
    embedding_dim
        Width of the element embedding (the initial scalar node features).
    sigma_embedding_dim
        Width of the Fourier embedding of log(sigma).
    avg_num_neighbors
        Normaliser of the summed messages (keeps activations O(1)).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    PRESETS: ClassVar[dict[str, dict]] = {
        # measured on 2 shared CPU cores: see docs/performance.md "Score model"
        "cpu": {},
        # the authors' NequIP-style network (about 3x more blocks/width; GPU)
        "paper": {
            "num_blocks": 3,
            "hidden_irreps": "64x0e+32x1o+16x2e",
            "cutoff": 7.0,
            "num_bessel": 32,
            "radial_hidden": 64,
            "embedding_dim": 32,
            "avg_num_neighbors": 40.0,
        },
        # for unit tests: a few thousand parameters
        "tiny": {
            "num_blocks": 2,
            "hidden_irreps": "8x0e+4x1o+2x2e",
            "cutoff": 4.0,
            "num_bessel": 6,
            "radial_hidden": 8,
            "embedding_dim": 8,
            "sigma_embedding_dim": 8,
            "avg_num_neighbors": 12.0,
        },
    }

    elements: tuple[str, ...] = Field(default=("H", "Li", "C", "O", "Si", "P", "S", "Zn"))
    num_blocks: int = Field(default=2, ge=1)
    hidden_irreps: str = "32x0e+16x1o+8x2e"
    lmax: int = Field(default=2, ge=1, le=4)
    cutoff: float = Field(default=5.0, gt=0)
    max_neighbors: int | None = Field(default=None, ge=1)
    radial_envelope: Literal["output", "basis"] = "output"
    num_bessel: int = Field(default=8, ge=1)
    radial_hidden: int = Field(default=32, ge=1)
    embedding_dim: int = Field(default=32, ge=1)
    sigma_embedding_dim: int = Field(default=16, ge=2)
    avg_num_neighbors: float = Field(default=20.0, gt=0)

    @field_validator("elements")
    @classmethod
    def _known_elements(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            if not Element.is_valid_symbol(symbol):
                raise ValueError(f"unknown element symbol {symbol!r}")
        if len(set(value)) != len(value):
            raise ValueError("duplicate element symbols")
        return value

    @field_validator("hidden_irreps")
    @classmethod
    def _scalars_first(cls, value: str) -> str:
        irreps = o3.Irreps(value).simplify()
        if irreps[0].ir != o3.Irrep("0e") or not any(ir == o3.Irrep("1o") for _, ir in irreps):
            raise ValueError("hidden_irreps must start with scalars (0e) and contain 1o vectors")
        return str(irreps)

    @field_validator("sigma_embedding_dim")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("sigma_embedding_dim must be even (sin and cos pairs)")
        return value

    @model_validator(mode="after")
    def _lmax_covers_irreps(self) -> ScoreModelConfig:
        if o3.Irreps(self.hidden_irreps).lmax > self.lmax:
            raise ValueError("hidden_irreps use a degree above lmax")
        return self

    @classmethod
    def preset(cls, name: str, **overrides: object) -> ScoreModelConfig:
        """A named configuration ("cpu", "paper" or "tiny"), with optional overrides."""
        if name not in cls.PRESETS:
            raise ConfigError(
                f"unknown score-model preset {name!r}", hint=f"choose one of {sorted(cls.PRESETS)}"
            )
        return cls(**{**cls.PRESETS[name], **overrides})

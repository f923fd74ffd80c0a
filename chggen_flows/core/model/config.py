"""Hyperparameters of the score network, saved with every checkpoint."""

from __future__ import annotations

import math
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

    def inference_bytes_per_atom(
        self, volume_per_atom: float = 15.0, atoms_per_structure: int = 20
    ) -> int:
        """Estimated device memory per atom of one float32 inference call (batch sizing).

        Counted per edge (``4/3 pi cutoff^3 / volume_per_atom`` edges per atom; 15
        Å^3/atom is the dense end of inorganic crystals): the edge geometry, spherical
        harmonics and radial basis kept over all blocks, plus the largest block's
        radial-MLP activations, tensor-product weights, gathered neighbour features and
        messages (twice: e3nn's product keeps an intermediate of that size); per atom:
        the node features; and the batched neighbour search's candidate pairs (27
        images of ``atoms_per_structure`` atoms per atom, about 12 floats each). The
        sum is doubled for the caching allocator's fragmentation and the kernels'
        workspaces. For 20-atom structures it gives ~555 kB for the "cpu" preset and
        ~2.8 MB for "paper", against 400 kB and 2.9 MB for the sum of all allocations
        (an upper bound of the peak) measured with torch.profiler; a batch that still
        runs out of memory is halved (``sample_jobs``).

        Parameters
        ----------
        volume_per_atom
            Å^3 per atom assumed for the edge count.
        atoms_per_structure
            Largest structure of the batch (the neighbour candidates grow with it).
        """
        hidden = o3.Irreps(self.hidden_irreps)
        wanted = {ir for _, ir in hidden} | {o3.Irrep("0e")}
        irreps_sh = o3.Irreps.spherical_harmonics(self.lmax)
        irreps_in = o3.Irreps(f"{self.embedding_dim}x0e")
        largest_block = 0
        for _ in range(self.num_blocks):
            weights = mid = 0
            for mul, ir_in in irreps_in:
                for _, ir_edge in irreps_sh:
                    for ir_out in ir_in * ir_edge:
                        if ir_out in wanted:
                            weights += mul
                            mid += mul * ir_out.dim
            block = 2 * self.radial_hidden + 2 * weights + irreps_in.dim + 2 * mid
            largest_block = max(largest_block, block)
            irreps_in = hidden
        # vector, distance, unit vector, envelope, two int64 indices (4 float32 slots)
        kept = 3 + 1 + 3 + 1 + 4 + irreps_sh.dim + self.num_bessel
        edges = 4.0 / 3.0 * math.pi * self.cutoff**3 / volume_per_atom
        nodes = 6 * hidden.dim + self.embedding_dim + self.sigma_embedding_dim
        candidates = 27 * atoms_per_structure * 12
        floats = edges * (kept + largest_block) + nodes + candidates
        return int(2 * 4 * floats)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> ScoreModelConfig:
        """A named configuration ("cpu", "paper" or "tiny"), with optional overrides."""
        if name not in cls.PRESETS:
            raise ConfigError(
                f"unknown score-model preset {name!r}", hint=f"choose one of {sorted(cls.PRESETS)}"
            )
        return cls(**{**cls.PRESETS[name], **overrides})

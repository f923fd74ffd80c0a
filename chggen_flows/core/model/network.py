"""The noise-conditioned, E(3)-equivariant score network (NequIP-style, e3nn).

Architecture: element embedding -> ``num_blocks`` interaction blocks -> a linear map to
one polar vector per atom, divided by sigma. Each block (1) adds a learned projection
of a Fourier embedding of log(sigma) to the scalar channels, (2) sends messages along
periodic edges with a depthwise ("uvu") tensor product of the neighbour's features and
the edge's spherical harmonics, weighted per edge by an MLP of a Bessel radial basis
times a smooth cutoff envelope (so an edge's weight goes to zero, with its first two
derivatives, as the edge reaches the cutoff: the score is continuous when atoms cross
it),
(3) mixes channels linearly and applies a gated nonlinearity, (4) adds a residual.
The depthwise product is what makes the network affordable on a CPU (see DESIGN.md:
a fully connected product is about 18x slower to train).

The network predicts ``sigma * score`` (order one at every noise level) and returns
``score = output / sigma``; with the sigma^2-weighted DSM loss this makes every noise
level contribute a comparable, order-one loss (Song & Ermon 2019).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from e3nn import nn as e3nn_nn
from e3nn import o3
from pymatgen.core.periodic_table import Element
from torch import nn

from chggen_flows.core.model.config import ScoreModelConfig
from chggen_flows.core.model.neighbors import (
    NeighborPlan,
    batched_neighbor_list,
    plan_neighbors,
    uses_batched_search,
)
from chggen_flows.errors import InputError


def cutoff_envelope(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """DimeNet polynomial envelope (p=6): 1 at r=0; value, slope and curvature vanish at
    the cutoff, and it is 0 beyond it."""
    x = r / cutoff
    p = 6.0
    envelope = (
        1.0
        - (p + 1) * (p + 2) / 2 * x**p
        + p * (p + 2) * x ** (p + 1)
        - p * (p + 1) / 2 * x ** (p + 2)
    )
    return envelope * (x < 1.0)


class BesselBasis(nn.Module):
    """``sqrt(2/c) sin(n pi r / c) / r`` times the smooth cutoff envelope."""

    def __init__(self, cutoff: float, num_basis: int) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("frequencies", torch.arange(1, num_basis + 1) * math.pi / cutoff)

    def forward(self, r: torch.Tensor, envelope: torch.Tensor | None = None) -> torch.Tensor:
        """Basis [E, num_basis]; ``envelope`` is ``cutoff_envelope(r)`` if already known."""
        if envelope is None:
            envelope = cutoff_envelope(r, self.cutoff)
        r = r.clamp_min(1e-6)[:, None]
        basis = math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies * r) / r
        return basis * envelope[:, None]


class SigmaEmbedding(nn.Module):
    """Sinusoidal features of log(sigma) at fixed, geometrically spaced frequencies."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        # periods from ~1.6 to ~100 in ln(sigma): fine enough to tell neighbouring noise
        # levels apart, coarse enough to vary smoothly over 0.001-10 Å (ln range ~9.2)
        self.register_buffer("frequencies", torch.logspace(-1.0, 0.8, dim // 2) * 2 * math.pi / 10)

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        phase = torch.log(sigma)[:, None] * self.frequencies
        return torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)


def _radial_mlp(num_in: int, hidden: int, num_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(num_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
        nn.Linear(hidden, num_out),
    )  # fmt: skip


class Interaction(nn.Module):
    """One message-passing block from ``irreps_in`` to ``irreps_out`` node features."""

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        irreps_sh: o3.Irreps,
        config: ScoreModelConfig,
        cond_dim: int,
    ) -> None:
        super().__init__()
        self.num_scalars_in = irreps_in[0].mul
        self.condition = nn.Linear(cond_dim, self.num_scalars_in)
        self.linear_in = o3.Linear(irreps_in, irreps_in)
        wanted = {ir for _, ir in irreps_out} | {o3.Irrep("0e")}
        mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_edge) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_edge:
                    if ir_out in wanted:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        irreps_mid, permutation, _ = o3.Irreps(mid).sort()
        instructions = [(i, j, permutation[k], mode, w) for i, j, k, mode, w in instructions]
        self.tp = o3.TensorProduct(
            irreps_in,
            irreps_sh,
            irreps_mid,
            instructions,
            shared_weights=False,
            internal_weights=False,
        )
        self.radial = _radial_mlp(config.num_bessel, config.radial_hidden, self.tp.weight_numel)
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
        self.gate = e3nn_nn.Gate(
            scalars,
            [nn.functional.silu],
            o3.Irreps(f"{gated.num_irreps}x0e"),
            [torch.sigmoid],
            gated,
        )
        self.linear_out = o3.Linear(irreps_mid.simplify(), self.gate.irreps_in)
        self.norm = 1.0 / math.sqrt(config.avg_num_neighbors)
        self.residual = irreps_in == irreps_out

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        center: torch.Tensor,
        neighbor: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
        edge_envelope: torch.Tensor | None = None,
    ) -> torch.Tensor:
        n = self.num_scalars_in
        h = torch.cat([x[:, :n] + self.condition(cond), x[:, n:]], dim=-1)
        h = self.linear_in(h)
        weights = self.radial(edge_radial)
        if edge_envelope is not None:
            # the MLP's biases make its output nonzero at the cutoff: only this product
            # lets an edge enter or leave the graph with zero weight
            weights = weights * edge_envelope[:, None]
        messages = self.tp(h[neighbor], edge_sh, weights)
        summed = torch.zeros(
            (x.shape[0], messages.shape[1]), dtype=messages.dtype, device=messages.device
        ).index_add_(0, center, messages)
        out = self.gate(self.linear_out(summed * self.norm))
        return x + out if self.residual else out


class ScoreModel(nn.Module):
    """Score network s(x, sigma) ~ grad_x log p_sigma(x) for periodic crystals.

    Parameters
    ----------
    config
        Architecture and element vocabulary.

    Examples
    --------
    >>> model = ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "Si")))
    >>> scores = model(species, pos, lattice, batch, sigma)  # doctest: +SKIP
    """

    def __init__(self, config: ScoreModelConfig) -> None:
        super().__init__()
        self.config = config
        # what the checkpoint says about how these weights were trained (set on load)
        self.training_metadata: dict = {}
        lookup = torch.full((119,), -1, dtype=torch.long)
        for index, symbol in enumerate(config.elements):
            lookup[Element(symbol).Z] = index
        self.register_buffer("z_to_index", lookup, persistent=False)
        self.embedding = nn.Embedding(len(config.elements), config.embedding_dim)
        self.sigma_embedding = SigmaEmbedding(config.sigma_embedding_dim)
        cond_dim = config.embedding_dim
        self.sigma_mlp = nn.Sequential(
            nn.Linear(config.sigma_embedding_dim, cond_dim), nn.SiLU(),
            nn.Linear(cond_dim, cond_dim),
        )  # fmt: skip
        self.irreps_sh = o3.Irreps.spherical_harmonics(config.lmax)
        self.radial_basis = BesselBasis(config.cutoff, config.num_bessel)
        hidden = o3.Irreps(config.hidden_irreps)
        irreps = o3.Irreps(f"{config.embedding_dim}x0e")
        blocks = []
        for _ in range(config.num_blocks):
            blocks.append(Interaction(irreps, hidden, self.irreps_sh, config, cond_dim))
            irreps = hidden
        self.blocks = nn.ModuleList(blocks)
        self.readout = o3.Linear(hidden, o3.Irreps("1x1o"))

    @property
    def noise_range(self) -> tuple[float, float] | None:
        """(sigma_min, sigma_max) in Å of the noise these weights were trained on, as
        their file records it; None for files written before it was recorded (all of
        them trained on 0.001-10 Å) and for models not loaded from a file."""
        low = self.training_metadata.get("sigma_min")
        high = self.training_metadata.get("sigma_max")
        return None if low is None or high is None else (float(low), float(high))

    @property
    def elements(self) -> tuple[str, ...]:
        """Element symbols the model accepts."""
        return self.config.elements

    def species_index(self, species: torch.Tensor, check: bool = True) -> torch.Tensor:
        """Map atomic numbers to embedding rows; InputError for unsupported elements.

        ``check=False`` skips the check (it reads the device: one host sync) for
        species already checked, e.g. once per batch by :meth:`prepare`; an unsupported
        element then maps to row 0 instead of failing.
        """
        index = self.z_to_index[species.clamp(0, 118)]
        if not check:
            return index.clamp_min(0)
        invalid = (index < 0) | (species < 0) | (species > 118)
        if bool(invalid.any()):
            bad = sorted({int(z) for z in species[invalid].tolist()})
            names = [Element.from_Z(z).symbol if 0 < z < 119 else str(z) for z in bad]
            raise InputError(
                f"the score model does not support element(s) {', '.join(names)}",
                hint=f"supported: {' '.join(self.elements)}; train a model that includes them",
            )
        return index

    def forward(
        self,
        species: torch.Tensor,
        pos: torch.Tensor,
        lattice: torch.Tensor,
        batch: torch.Tensor,
        sigma: torch.Tensor,
        counts: Sequence[int] | None = None,
        plan: NeighborPlan | None = None,
        check_species: bool = True,
    ) -> torch.Tensor:
        """Per-atom score in 1/Å.

        Parameters
        ----------
        species
            LongTensor[N], atomic numbers.
        pos
            FloatTensor[N, 3], Cartesian positions in Å.
        lattice
            FloatTensor[B, 3, 3], rows are lattice vectors.
        batch
            LongTensor[N], structure index 0..B-1 of each atom (atoms grouped by structure).
        sigma
            FloatTensor[B], noise standard deviation in Å.
        counts
            Atoms per structure, when the caller knows them on the host; saves the
            device-to-host copy of ``batch`` that the neighbour search otherwise needs
            (a sampler calling the model thousands of times on the same batch should
            pass them).
        plan
            Candidate neighbour pairs of these cells (see :meth:`prepare`); None
            builds them, which copies the cells to the host.
        check_species
            Check that every element is supported (one host sync); False for species
            already checked.

        Returns
        -------
        torch.Tensor
            FloatTensor[N, 3], grad_x log p_sigma(x).
        """
        dtype = self.embedding.weight.dtype
        pos, lattice, sigma = pos.to(dtype), lattice.to(dtype), sigma.to(dtype)
        index = self.species_index(species, check=check_species)
        graph = batched_neighbor_list(
            pos, lattice, batch, self.config.cutoff, self.config.max_neighbors, counts, plan
        )
        r = graph.vector.norm(dim=-1)
        unit = graph.vector / r.clamp_min(1e-9)[:, None]
        edge_sh = o3.spherical_harmonics(
            self.irreps_sh, unit, normalize=False, normalization="component"
        )
        envelope = cutoff_envelope(r, self.config.cutoff)
        edge_radial = self.radial_basis(r, envelope)
        edge_envelope = envelope if self.config.radial_envelope == "output" else None
        cond = self.sigma_mlp(self.sigma_embedding(sigma))[batch]
        x = self.embedding(index)
        for block in self.blocks:
            x = block(x, cond, graph.center, graph.neighbor, edge_sh, edge_radial, edge_envelope)
        return self.readout(x) / sigma[batch, None]

    def inference_bytes_per_atom(self, atoms_per_structure: int = 20) -> int:
        """Estimated device memory per atom of one inference call, in this model's dtype
        (see :meth:`ScoreModelConfig.inference_bytes_per_atom`); sizes sampling batches."""
        size = self.embedding.weight.element_size()
        per_atom = self.config.inference_bytes_per_atom(atoms_per_structure=atoms_per_structure)
        return per_atom * size // 4

    def prepare(
        self,
        species: torch.Tensor,
        lattice: torch.Tensor,
        batch: torch.Tensor,
        counts: Sequence[int],
        *,
        device: torch.device | str | None = None,
        check_species: bool = True,
    ) -> PreparedScore:
        """The score of a batch whose atoms and cells stay fixed (a sampler's chunk).

        Checks the species once and, on a device that uses the batched neighbour search
        (a GPU), enumerates the candidate neighbour pairs of the cells once, so each
        call of the returned function makes a single host sync (the number of edges).

        Parameters
        ----------
        species, lattice, batch
            As for :meth:`forward`; ``lattice`` may be a host copy of the cells (then
            planning reads nothing from the device).
        counts
            Atoms per structure.
        device
            Where the score runs (default: ``species.device``).
        check_species
            False where the caller has checked the elements already (training checks
            its data once per run: the check reads the device).

        Returns
        -------
        PreparedScore
            ``score(species, pos, lattice, batch, sigma)`` for these atoms and cells.
        """
        if check_species:
            self.species_index(species)  # InputError now rather than inside the loop
        device = species.device if device is None else torch.device(device)
        dtype = self.embedding.weight.dtype
        plan = None
        if uses_batched_search(device):
            plan = plan_neighbors(lattice, counts, self.config.cutoff, device, dtype)
        return PreparedScore(self, tuple(int(n) for n in counts), plan)


class PreparedScore:
    """:class:`ScoreModel` bound to one batch's counts and neighbour plan (see
    :meth:`ScoreModel.prepare`); called like the model."""

    def __init__(
        self, model: ScoreModel, counts: tuple[int, ...], plan: NeighborPlan | None
    ) -> None:
        self.model = model
        self.counts = counts
        self.plan = plan

    def __call__(
        self,
        species: torch.Tensor,
        pos: torch.Tensor,
        lattice: torch.Tensor,
        batch: torch.Tensor,
        sigma: torch.Tensor,
    ) -> torch.Tensor:
        return self.model(
            species, pos, lattice, batch, sigma, self.counts, self.plan, check_species=False
        )


def deepened(model: ScoreModel, num_blocks: int) -> ScoreModel:
    """A copy of ``model`` with ``num_blocks`` interaction blocks and the same outputs.

    The added blocks are residual (hidden to hidden) and go after the existing ones;
    their last linear map starts at zero, so each adds nothing until training moves it
    (zero-initialised residual branches). This grows a trained model's capacity without
    throwing away what it learned, which on a CPU budget is worth tens of epochs.

    Parameters
    ----------
    model
        The trained model (at least one block).
    num_blocks
        Blocks of the new model, at least ``model.config.num_blocks``.
    """
    have = model.config.num_blocks
    if num_blocks < have:
        raise ValueError(f"cannot deepen a {have}-block model to {num_blocks} blocks")
    config = model.config.model_copy(update={"num_blocks": num_blocks})
    grown = ScoreModel(ScoreModelConfig(**config.model_dump()))
    grown = grown.to(dtype=model.embedding.weight.dtype, device=model.embedding.weight.device)
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    new = {f"blocks.{i}." for i in range(have, num_blocks)}
    if unexpected or any(not any(key.startswith(p) for p in new) for key in missing):
        raise ValueError(f"state of a {have}-block model does not fit: {missing + unexpected}")
    with torch.no_grad():
        for block in grown.blocks[have:]:
            for parameter in block.linear_out.parameters():
                parameter.zero_()
    grown.training_metadata = dict(model.training_metadata)
    return grown

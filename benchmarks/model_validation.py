"""Validation DSM loss per sigma decade of several score models on the same structures.

Models trained on different data filters log their validation loss on different
structures; this script evaluates every model given on one validation split (the hash
split `chggen train` uses, so none of these structures was trained on) with the same
fixed noise, overall and on the structures related to chosen chemical systems.

    OPENBLAS_NUM_THREADS=1 python benchmarks/model_validation.py \\
        --data runs/mp_train.dataset.pt --checkpoint old.pt --checkpoint new.pt \\
        --focus Zn-P-S --focus Li-Si --focus Li-P-S
"""

from __future__ import annotations

import argparse
import json

import torch

from chggen_flows.core.model import load_score_model
from chggen_flows.core.model.data import read_structures, split_by_id
from chggen_flows.core.model.training import validation_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--checkpoint", action="append", required=True)
    parser.add_argument("--focus", action="append", default=[])
    parser.add_argument("--max-atoms", type=int, default=52)
    parser.add_argument("--max-val", type=int, default=512)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    dataset = read_structures(args.data, max_atoms=args.max_atoms)
    _, val_idx = split_by_id(dataset, args.val_fraction)
    sets = {"validation": dataset.subset(val_idx[: args.max_val])}
    if args.focus:
        all_val = dataset.subset(val_idx)
        sets["focus " + "/".join(args.focus)] = all_val.subset(all_val.related_to(args.focus))
    device = torch.device("cpu")
    results = {}
    for path in args.checkpoint:
        model = load_score_model(path, device="cpu")
        results[path] = {}
        for name, subset in sets.items():
            by_decade = validation_loss(model, subset, 1e-3, 10.0, 32, device)
            mean = sum(by_decade.values()) / len(by_decade)
            results[path][name] = {"mean": mean, "by_decade": by_decade, "n": len(subset)}
            decades = "  ".join(f"{k}: {v:.3f}" for k, v in by_decade.items())
            print(f"{path} | {name} ({len(subset)}): mean {mean:.4f} | {decades}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()

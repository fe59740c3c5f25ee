"""Training state in a checkpoint: optimizer states, the path-length mean, progress counters and RNG state,
stored beside the networks in the same safetensors file (tensors under ``opt_G.``, ``opt_D.``, ``state.``;
everything else as JSON metadata). Nothing is pickled."""
from __future__ import annotations

from typing import Any

import torch

from stylegan.checkpoint import Checkpoint, CheckpointError


#: The optimizer settings a run's options decide (learning rate and β, adjusted for lazy regularization); on
#: resume they come from the options, everything else in a param group (e.g. ``fused``) from the snapshot.
RUN_HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay")


def optimizer_to_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for key, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.state.{idx}.{key}"] = v
            else:
                scalars[f"{idx}.{key}"] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_tensors(opt: torch.optim.Optimizer, ckpt: Checkpoint, prefix: str, meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    p = prefix + ".state."
    for name, t in ckpt.tensors.items():
        if name.startswith(p):
            idx, key = name[len(p):].split(".", 1)
            state.setdefault(int(idx), {})[key] = t
    for name, v in meta.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = v
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    # The moments and step counts are the snapshot's; the rates are this run's (the same numbers unless the
    # command line changed them, e.g. a lower --glr to continue a snapshot more slowly).
    for group, live in zip(groups, opt.param_groups):
        group.update({k: live[k] for k in RUN_HYPERPARAMETERS if k in live})
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt.path}: optimizer state {prefix} does not fit the networks ({e})") from None


def rng_state_tensors() -> dict[str, torch.Tensor]:
    out = {"state.rng_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["state.rng_cuda"] = torch.cuda.get_rng_state()
    return out


def restore_rng(ckpt: Checkpoint) -> None:
    if "state.rng_cpu" in ckpt.tensors:
        torch.set_rng_state(ckpt.tensors["state.rng_cpu"])
    if "state.rng_cuda" in ckpt.tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(ckpt.tensors["state.rng_cuda"])

"""Exactness against the authors' own numbers: a StyleGAN2 network exported from stylegan2-ada-pytorch with
every parameter perturbed, and what their code computed from it (tests/fixtures/nvlabs-sg2-G32*)."""
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from stylegan.interop.nvlabs import (config_from_nvlabs, discriminator_state_from_nvlabs,
                                     generator_state_from_nvlabs)
from stylegan.networks import build_networks

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def nets_and_outputs():
    path = FIXTURES / "nvlabs-sg2-G32.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    config = config_from_nvlabs(json.loads(meta["G_init_kwargs"]), json.loads(meta["D_init_kwargs"]))
    state = load_file(str(path))
    nets = build_networks(config)
    G, D = nets["G"].eval(), nets["D"].eval()
    G.load_state_dict(generator_state_from_nvlabs({k[2:]: v for k, v in state.items() if k.startswith("G.")}))
    D.load_state_dict(discriminator_state_from_nvlabs({k[2:]: v for k, v in state.items() if k.startswith("D.")}))
    return G, D, load_file(str(FIXTURES / "nvlabs-sg2-G32-outputs.safetensors"))


def assert_reproduced(ours, theirs):
    assert ours.shape == theirs.shape
    err = (ours - theirs).abs().max().item()
    assert err <= 1e-4 * theirs.abs().max().item(), f"max |ours - theirs| = {err}"


@pytest.mark.parametrize("psi", [1.0, 0.5])
def test_mapping_reproduced(nets_and_outputs, psi):
    G, _, out = nets_and_outputs
    with torch.no_grad():
        assert_reproduced(G.mapping(out["z"], None, truncation_psi=psi), out[f"ws_psi{psi}"])


@pytest.mark.parametrize("psi", [1.0, 0.5])
@pytest.mark.parametrize("noise_mode,suffix", [("const", ""), ("none", "_noisenone")])
@pytest.mark.parametrize("fused", [True, False])
def test_images_reproduced(nets_and_outputs, psi, noise_mode, suffix, fused):
    G, _, out = nets_and_outputs
    with torch.no_grad():
        img = G(out["z"], None, truncation_psi=psi, noise_mode=noise_mode, fused=fused)
    assert_reproduced(img, out[f"img_psi{psi}{suffix}"])


def test_discriminator_reproduced(nets_and_outputs):
    _, D, out = nets_and_outputs
    with torch.no_grad():
        assert_reproduced(D(out["img_psi1.0"]), out["D_logits"])

"""More exactness of the alias-free generator against the authors' own code: small networks built and run with
it (tests/fixtures/nvlabs-sg3-R32*: StyleGAN3-R, unconditional; nvlabs-sg3-T32c*: StyleGAN3-T with 5 classes and
its conditional StyleGAN2 discriminator), every parameter and buffer perturbed except the designed filters. Each
fixture holds what their code computed: ws and images without truncation, with ψ 0.6, and with ψ 0.6 up to
cutoff 8, the images again with a translation and rotation set on the input's transform buffer (the inverse of
their gen_images.py matrix), and D's logits for the conditional network. The metadata names the commit and the
settings."""
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from stylegan.interop.nvlabs import config_from_nvlabs_stylegan3, discriminator_state_from_nvlabs
from stylegan.interop.nvlabs_stylegan3 import check_stored_filters, generator_state_from_nvlabs_stylegan3
from stylegan.networks import build_networks
from stylegan.networks.stylegan3 import input_transform

HERE = Path(__file__).parent
NAMES = {"R32": "stylegan3-r", "T32c": "stylegan3-t"}


def _path(name: str) -> Path:
    for folder in (HERE / "fixtures", HERE.parent.parent / "shared" / "fixtures"):
        if (folder / f"{name}.safetensors").is_file():
            return folder / f"{name}.safetensors"
    pytest.skip(f"fixture {name}.safetensors not found")


@pytest.fixture(scope="module", params=sorted(NAMES))
def authors(request):
    path = _path(f"nvlabs-sg3-{request.param}")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    d_kwargs = json.loads(meta["D_init_kwargs"]) if "D_init_kwargs" in meta else None
    config = config_from_nvlabs_stylegan3(json.loads(meta["G_init_kwargs"]), d_kwargs)
    state = load_file(str(path))
    g_state = {k[2:]: v for k, v in state.items() if k.startswith("G.")}
    nets = build_networks(config)
    G, D = nets["G"].eval(), nets["D"].eval()
    G.load_state_dict(generator_state_from_nvlabs_stylegan3(g_state))
    d_state = {k[2:]: v for k, v in state.items() if k.startswith("D.")}
    if d_state:
        D.load_state_dict(discriminator_state_from_nvlabs(d_state))
    out = load_file(str(_path(f"nvlabs-sg3-{request.param}-outputs")))
    return request.param, G, D if d_state else None, g_state, out, meta


def assert_reproduced(ours, theirs, rel=1e-4):
    assert ours.shape == theirs.shape
    err = (ours - theirs).abs().max().item()
    assert err <= rel * theirs.abs().max().item(), f"max |ours - theirs| = {err} (max |theirs| {theirs.abs().max()})"


def _c(out):
    return out["c"] if out["c"].shape[1] else None


def test_config_and_filters(authors):
    name, G, _, g_state, out, meta = authors
    assert G.cfg.arch == NAMES[name] and G.c_dim == out["c"].shape[1] and G.num_ws == 16
    check_stored_filters(G.cfg, g_state, atol=1e-7)
    assert not torch.equal(g_state["synthesis.input.affine.weight"], torch.zeros_like(g_state["synthesis.input.affine.weight"]))


@pytest.mark.parametrize("key", ["psi1.0", "psi0.6", "psi0.6_cutoff8"])
def test_mapping_reproduced(authors, key):
    _, G, _, _, out, meta = authors
    psi = 1.0 if key == "psi1.0" else 0.6
    cutoff = 8 if key.endswith("cutoff8") else None
    assert json.loads(meta["truncation_cutoff"]) == 8
    with torch.no_grad():
        assert_reproduced(G.mapping(out["z"], _c(out), truncation_psi=psi, truncation_cutoff=cutoff), out[f"ws_{key}"])


@pytest.mark.parametrize("key", ["psi1.0", "psi0.6", "psi0.6_cutoff8"])
def test_images_reproduced(authors, key):
    _, G, _, _, out, _ = authors
    psi = 1.0 if key == "psi1.0" else 0.6
    cutoff = 8 if key.endswith("cutoff8") else None
    with torch.no_grad():
        assert_reproduced(G.synthesis(out[f"ws_{key}"]), out[f"img_{key}"])
        assert_reproduced(G(out["z"], _c(out), truncation_psi=psi, truncation_cutoff=cutoff), out[f"img_{key}"])


def test_transformed_images_reproduced(authors):
    """The translation and rotation on the input's buffer, as the authors' gen_images.py sets it; our
    input_transform(translate, rotate) gives the same matrix, and the transform as an argument the same images."""
    _, G, _, _, out, meta = authors
    G = __import__("copy").deepcopy(G)
    t = json.loads(meta["transform"])
    assert torch.allclose(input_transform(tuple(t["translate"]), t["rotate"]), out["transform"], rtol=0, atol=1e-6)
    with torch.no_grad():
        assert_reproduced(G.synthesis(out["ws_psi1.0"], transform=out["transform"]), out["img_transform_psi1.0"])
        G.synthesis.input.transform.copy_(out["transform"])
        assert_reproduced(G.synthesis(out["ws_psi1.0"]), out["img_transform_psi1.0"])
        assert_reproduced(G(out["z"], _c(out), truncation_psi=0.6, truncation_cutoff=8),
                          out["img_transform_psi0.6_cutoff8"])


def test_conditional_discriminator_reproduced(authors):
    _, _, D, _, out, _ = authors
    if D is None:
        pytest.skip("this fixture has no discriminator")
    with torch.no_grad():
        assert_reproduced(D(out["img_psi1.0"], out["c"]), out["D_logits"])

"""The authors' PyTorch network pickles (stylegan2-ada-pytorch, stylegan3) through the importer.

The fixture network (tests/fixtures/nvlabs-sg2-G32*, exported from stylegan2-ada-pytorch with the outputs
their code computed) is wrapped in the authors' pickle structure, read by ``stylegan.load`` and must reproduce
their ws, images and D logits. Other constructor arguments are covered by our own networks written in the
authors' layout: the imported copy must compute exactly what the original does."""
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file

import stylegan
from conftest import tiny_config
from stylegan.cli.main import main
from stylegan.interop import InteropError, read_foreign
from stylegan.networks import build_networks
from test_interop_support import nvlabs_kwargs, nvlabs_pickle_bytes, ours_to_nvlabs

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def fixture_pickle(tmp_path_factory):
    path = FIXTURES / "nvlabs-sg2-G32.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    state = load_file(str(path))
    G = {k[2:]: v for k, v in state.items() if k.startswith("G.")}
    D = {k[2:]: v for k, v in state.items() if k.startswith("D.")}
    out = tmp_path_factory.mktemp("nvlabs") / "network-snapshot-000000.pkl"
    out.write_bytes(nvlabs_pickle_bytes(G, D, json.loads(meta["G_init_kwargs"]), json.loads(meta["D_init_kwargs"])))
    return out, load_file(str(FIXTURES / "nvlabs-sg2-G32-outputs.safetensors"))


def assert_reproduced(ours, theirs):
    assert ours.shape == theirs.shape
    err = (ours - theirs).abs().max().item()
    assert err <= 1e-4 * theirs.abs().max().item(), f"max |ours - theirs| = {err}"


def test_fixture_reproduced_through_the_importer(fixture_pickle):
    path, out = fixture_pickle
    G = stylegan.load(path)
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    with torch.no_grad():
        for psi in (1.0, 0.5):
            assert_reproduced(G.mapping(out["z"], None, truncation_psi=psi), out[f"ws_psi{psi}"])
            for mode, suffix in (("const", ""), ("none", "_noisenone")):
                assert_reproduced(G(out["z"], None, truncation_psi=psi, noise_mode=mode), out[f"img_psi{psi}{suffix}"])
        D = read_foreign(path).build(("D",))["D"].eval()
        assert_reproduced(D(out["img_psi1.0"]), out["D_logits"])


def test_convert_command_and_direct_use_by_generate(fixture_pickle, tmp_path):
    path, out = fixture_pickle
    dest = tmp_path / "converted.safetensors"
    r = CliRunner().invoke(main, ["convert", "--source", str(path), "--dest", str(dest)])
    assert r.exit_code == 0, r.output
    assert "stylegan2-ada-pytorch" in r.output and "networks G, G_ema, D" in r.output
    G = stylegan.load(dest)
    with torch.no_grad():
        assert_reproduced(G(out["z"], None, truncation_psi=0.5), out["img_psi0.5"])
    _, nets, ckpt = stylegan.load_networks(dest)
    assert set(nets) == {"G", "G_ema", "D"} and ckpt.extra["source_format"] == "nvlabs-pytorch"
    r = CliRunner().invoke(main, ["generate", "--network", str(path), "--seeds", "0-1", "--trunc", "0.7",
                                  "--outdir", str(tmp_path / "img")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "img" / "seed0001.png").is_file()
    r = CliRunner().invoke(main, ["style-mixing", "--network", str(path), "--rows", "1,2", "--cols", "3",
                                  "--styles", "0-3", "--outdir", str(tmp_path / "mix")])
    assert r.exit_code == 0, r.output


def test_convert_keeps_only_the_named_networks(fixture_pickle, tmp_path):
    """A generator-only file (what the packaged pretrained network is): same images, a fraction of the size."""
    path, out = fixture_pickle
    full, small = tmp_path / "full.safetensors", tmp_path / "g.safetensors"
    assert CliRunner().invoke(main, ["convert", "--source", str(path), "--dest", str(full)]).exit_code == 0
    r = CliRunner().invoke(main, ["convert", "--source", str(full), "--dest", str(small), "--networks", "G_ema"])
    assert r.exit_code == 0, r.output
    _, nets, _ = stylegan.load_networks(small)
    assert set(nets) == {"G_ema"} and small.stat().st_size < full.stat().st_size / 2
    with torch.no_grad():
        assert_reproduced(stylegan.load(small)(out["z"], None, truncation_psi=0.5), out["img_psi0.5"])
    r = CliRunner().invoke(main, ["convert", "--source", str(full), "--dest", str(tmp_path / "x.safetensors"),
                                  "--networks", "G_ema,Dx"])
    assert r.exit_code != 0 and "cannot keep Dx" in r.output


CONFIGS = [
    dict(g_arch="skip", d_arch="resnet"),
    dict(g_arch="orig", d_arch="skip", img_channels=1),
    dict(g_arch="resnet", d_arch="orig", c_dim=3, conv_clamp=256, layout="sg3"),
    dict(g_arch="skip", d_arch="resnet", map_depth=4, num_fp16_res=2, conv_clamp=256, layout="sg3"),
]


@pytest.mark.parametrize("spec", CONFIGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_any_constructor_arguments(spec, tmp_path):
    spec = dict(spec)
    layout = spec.pop("layout", "ada")
    map_depth = spec.pop("map_depth", 2)
    num_fp16_res = spec.pop("num_fp16_res", 0)
    conv_clamp = spec.pop("conv_clamp", None)
    config = tiny_config(8, **spec)
    config.G.map_depth = map_depth
    for c in (config.G, config.D):
        c.num_fp16_res, c.conv_clamp = num_fp16_res, conv_clamp
    config.validate()
    nets = build_networks(config, seed=3)
    G, D = nets["G"].eval(), nets["D"].eval()
    with torch.no_grad():  # make every tensor matter: noise strengths, w_avg
        for name, t in G.named_buffers():
            if name.endswith("w_avg"):
                t.normal_()
        for name, p in G.named_parameters():
            if name.endswith("noise.strength"):
                p.fill_(0.3)
    G_kwargs, D_kwargs = nvlabs_kwargs(config, layout)
    path = tmp_path / "net.pkl"
    path.write_bytes(nvlabs_pickle_bytes(ours_to_nvlabs(G.state_dict(), "G"), ours_to_nvlabs(D.state_dict(), "D"),
                                         G_kwargs, D_kwargs))
    imported = read_foreign(path)
    assert imported.config.G == config.G and imported.config.D == config.D
    nets2 = {k: m.eval() for k, m in imported.build().items()}
    z = torch.randn(4, config.G.z_dim)
    c = torch.eye(config.G.c_dim)[torch.tensor([0, 1, 2, 0])] if config.G.c_dim else None
    with torch.no_grad():
        for mode in ("const", "none"):
            want = G(z, c, truncation_psi=0.6, noise_mode=mode)
            assert torch.equal(nets2["G_ema"](z, c, truncation_psi=0.6, noise_mode=mode), want)
        assert torch.equal(nets2["D"](want, c), D(want, c))


def test_mixed_stylegan2_and_stylegan3_layouts_are_refused(tmp_path, fixture_pickle):
    path, _ = fixture_pickle
    state = load_file(str(FIXTURES / "nvlabs-sg2-G32.safetensors"))
    G = {k[2:]: v for k, v in state.items() if k.startswith("G.") and ".b32." not in k}
    G["synthesis.input.freqs"] = torch.zeros(4, 2)
    G["synthesis.L0_36_512.weight"] = torch.zeros(2, 2, 3, 3)
    with safe_open(str(FIXTURES / "nvlabs-sg2-G32.safetensors"), "pt") as f:
        gk = json.loads(f.metadata()["G_init_kwargs"])
    bad = tmp_path / "sg3.pkl"
    bad.write_bytes(nvlabs_pickle_bytes(G, None, gk, None))
    with pytest.raises(InteropError, match="unknown synthesis network layout"):
        stylegan.load(bad)


def test_unsupported_settings_and_mismatches_are_clear_errors(tmp_path, fixture_pickle):
    path, _ = fixture_pickle
    state = load_file(str(FIXTURES / "nvlabs-sg2-G32.safetensors"))
    G = {k[2:]: v for k, v in state.items() if k.startswith("G.")}
    with safe_open(str(FIXTURES / "nvlabs-sg2-G32.safetensors"), "pt") as f:
        gk = json.loads(f.metadata()["G_init_kwargs"])
    cases = [
        ({**gk, "synthesis_kwargs": {**gk["synthesis_kwargs"], "resample_filter": [1, 1]}}, G, "resampling filter"),
        ({**gk, "mapping_kwargs": {"num_layers": 2, "layer_features": 32}}, G, "layer_features"),
        ({**gk, "synthesis_kwargs": {**gk["synthesis_kwargs"], "channel_max": 32}}, G, "shape mismatch"),
        (gk, {k: v for k, v in G.items() if "b16.torgb" not in k}, "missing tensors"),
    ]
    for i, (kwargs, g, match) in enumerate(cases):
        bad = tmp_path / f"bad{i}.pkl"
        bad.write_bytes(nvlabs_pickle_bytes(g, None, kwargs, None))
        with pytest.raises(InteropError, match=match):
            stylegan.load(bad)
    with pytest.raises(stylegan.CheckpointError, match="unknown network file type"):
        stylegan.load(tmp_path / "net.onnx")


def test_info_reads_the_authors_pickle(fixture_pickle):
    """`stylegan info` goes through the resolver and reader of every other command: the authors' pickle is
    described, with where it was imported from."""
    path, _ = fixture_pickle
    r = CliRunner().invoke(main, ["info", "--network", str(path)])
    assert r.exit_code == 0, r.output
    assert "32x32" in r.output and "params G_ema" in r.output and "imported_from" in r.output

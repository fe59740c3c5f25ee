"""The alias-free generator (StyleGAN3 T and R): exactness against the authors' own numbers (an SG3-T network
exported from their code with what it computed, tests/fixtures/nvlabs-sg3-T32*), the filter design against
their stored filters, the fast filtered leaky ReLU against its plain composition (values and derivatives of
first and second order), the input transform, and the R configuration."""
import contextlib
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from stylegan.config import ConfigError, DiscriminatorConfig, GeneratorConfig, NetworkConfig
from stylegan.interop import InteropError
from stylegan.interop.nvlabs import config_from_nvlabs_stylegan3, discriminator_state_from_nvlabs
from stylegan.interop.nvlabs_stylegan3 import check_stored_filters, generator_state_from_nvlabs_stylegan3
from stylegan.networks import build_networks
from stylegan.networks.stylegan3 import input_transform, layer_schedule
from stylegan.nn.filter_design import lowpass_filter
from stylegan.nn.filtered_lrelu import filtered_lrelu, filtered_lrelu_ref

HERE = Path(__file__).parent
NAME = "nvlabs-sg3-T32"


def fixture_path(suffix: str = "") -> Path:
    """The fixture in tests/fixtures, else in the shared fixtures folder next to the checkout; skip if absent."""
    for folder in (HERE / "fixtures", HERE.parent.parent / "shared" / "fixtures"):
        if (folder / f"{NAME}{suffix}.safetensors").is_file():
            return folder / f"{NAME}{suffix}.safetensors"
    pytest.skip(f"fixture {NAME}{suffix}.safetensors not found")


@pytest.fixture(scope="module")
def authors():
    path = fixture_path()
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    config = config_from_nvlabs_stylegan3(json.loads(meta["G_init_kwargs"]), json.loads(meta["D_init_kwargs"]))
    state = load_file(str(path))
    g_state = {k[2:]: v for k, v in state.items() if k.startswith("G.")}
    nets = build_networks(config)
    G, D = nets["G"].eval(), nets["D"].eval()
    G.load_state_dict(generator_state_from_nvlabs_stylegan3(g_state))
    D.load_state_dict(discriminator_state_from_nvlabs({k[2:]: v for k, v in state.items() if k.startswith("D.")}))
    return G, D, g_state, load_file(str(fixture_path("-outputs"))), meta


def assert_reproduced(ours, theirs, rel=1e-4):
    assert ours.shape == theirs.shape
    err = (ours - theirs).abs().max().item()
    assert err <= rel * theirs.abs().max().item(), f"max |ours - theirs| = {err}"


def test_config_of_the_fixture(authors):
    G = authors[0]
    assert G.cfg.arch == "stylegan3-t" and G.num_ws == 16 and G.mapping.w_avg_beta == 0.998
    names = [k for k in authors[2] if k.endswith(".weight") and ".L" in k and "affine" not in k]
    sizes = sorted((int(k.split(".")[1].split("_")[0][1:]), int(k.split("_")[1])) for k in names)
    assert [s for _, s in sizes] == [layer.out_size for layer in G.synthesis.layers]


@pytest.mark.parametrize("psi", [1.0, 0.6])
def test_mapping_reproduced(authors, psi):
    G, _, _, out, _ = authors
    with torch.no_grad():
        assert_reproduced(G.mapping(out["z"], None, truncation_psi=psi), out[f"ws_psi{psi}"])


@pytest.mark.parametrize("psi", [1.0, 0.6])
def test_images_reproduced(authors, psi):
    G, _, _, out, _ = authors
    with torch.no_grad():
        assert_reproduced(G.synthesis(out[f"ws_psi{psi}"]), out[f"img_psi{psi}"])
        assert_reproduced(G(out["z"], None, truncation_psi=psi), out[f"img_psi{psi}"])


def test_images_reproduced_in_float64(authors):
    G, _, _, out, _ = authors
    G64 = __import__("copy").deepcopy(G).double()
    with torch.no_grad():
        assert_reproduced(G64.synthesis(out["ws_psi1.0"].double()).float(), out["img_psi1.0"])


def test_discriminator_reproduced(authors):
    _, D, _, out, _ = authors
    with torch.no_grad():
        assert_reproduced(D(out["img_psi1.0"]), out["D_logits"])


def test_designed_filters_equal_the_stored_ones(authors):
    G, _, g_state, *_ = authors
    check_stored_filters(G.cfg, g_state, atol=1e-7)
    names = {int(k.split(".")[1].split("_")[0][1:]): k.rsplit(".", 1)[0] for k in g_state if k.endswith("up_filter")}
    for i, prefix in names.items():
        assert torch.equal(G.synthesis.layers[i].up_filter, g_state[prefix + ".up_filter"])
        assert torch.equal(G.synthesis.layers[i].down_filter, g_state[prefix + ".down_filter"])
    s = layer_schedule(32, 3, 2048, 32)
    f = lowpass_filter(24, s["cutoffs"][4], s["half_widths"][4] * 2, 64.0)
    assert torch.allclose(f, g_state["synthesis.L5_52_32.up_filter"], rtol=0, atol=1e-7)


def test_a_changed_stored_filter_is_refused(authors):
    G, _, g_state, *_ = authors
    bad = dict(g_state)
    bad["synthesis.L3_36_32.down_filter"] = bad["synthesis.L3_36_32.down_filter"].flip(0) * 1.01
    with pytest.raises(InteropError, match="L3_36_32.down_filter"):
        check_stored_filters(G.cfg, bad)


def test_filter_design_properties():
    f = lowpass_filter(12, 2.0, 4.0, 32.0)
    assert f.shape == (12,) and math.isclose(f.sum().item(), 1.0, rel_tol=1e-6) and torch.equal(f, f.flip(0))
    r = lowpass_filter(12, 2.0, 4.0, 32.0, radial=True)
    assert r.shape == (12, 12) and torch.allclose(r, r.t()) and math.isclose(r.sum().item(), 1.0, rel_tol=1e-6)
    assert torch.allclose(r, torch.rot90(r, 1, dims=(0, 1)))  # radially symmetric on the square grid
    assert lowpass_filter(1, 16.0, 1.0, 32.0) is None
    with pytest.raises(ValueError, match="cutoff"):
        lowpass_filter(12, 20.0, 4.0, 32.0)


CASES = [  # (up filter taps, down filter, up, down, padding, slope, clamp)
    (12, "sep", 2, 2, (9, 8, 9, 8), 0.2, None),
    (24, "sep", 4, 2, (17, 16, 17, 16), 0.2, 0.5),
    (12, "radial", 2, 2, (7, 6, 5, 4), 0.2, None),
    (None, None, 1, 1, (0, 0, 0, 0), 1.0, 256.0),
]


def _case(case, dtype):
    taps, down_kind, up, down, padding, slope, clamp = case
    fu = lowpass_filter(taps, 4.0, 6.0, 32.0).to(dtype) if taps else None
    fd = None if down_kind is None else lowpass_filter(12, 4.0, 6.0, 32.0, radial=down_kind == "radial").to(dtype)
    return fu, fd, dict(up=up, down=down, padding=padding, gain=1.0 if slope == 1 else math.sqrt(2), slope=slope,
                        clamp=clamp)


def _grads(outputs, inputs, **kw):
    grads = torch.autograd.grad(outputs, inputs, allow_unused=True, **kw)
    return [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs)]


@pytest.mark.parametrize("case", CASES)
def test_fast_filtered_lrelu_equals_the_plain_composition(case):
    torch.manual_seed(0)
    fu, fd, kw = _case(case, torch.float64)
    x0 = torch.randn(2, 3, 11, 11, dtype=torch.float64, requires_grad=True)
    s = torch.rand(3, dtype=torch.float64).add(0.5).requires_grad_(True)  # a weight before the layer
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    x = x0 * s.reshape(1, -1, 1, 1)
    y_ref, y = filtered_lrelu_ref(x, fu, fd, b, **kw), filtered_lrelu(x, fu, fd, b, **kw)
    assert y.shape == y_ref.shape and torch.allclose(y, y_ref, rtol=0, atol=1e-12)
    gy = torch.randn_like(y)
    grads = [_grads((out * gy).sum(), [x0, s, b], create_graph=True) for out in (y_ref, y)]
    for g_ref, g in zip(*grads):
        assert torch.allclose(g, g_ref, rtol=0, atol=1e-12)
    # R1's second order: the squared input gradient differentiated w.r.t. the weight before the layer.
    second = [_grads(g[0].square().sum(), [s, b]) for g in grads]
    assert second[0][0].abs().max() > 0
    for g_ref, g in zip(*second):
        assert torch.allclose(g, g_ref, rtol=0, atol=1e-10)


def test_filtered_lrelu_checks_its_input():
    with pytest.raises(ValueError, match="padding"):
        filtered_lrelu(torch.zeros(1, 1, 4, 4), None, None, None, padding=(0, 0))
    with pytest.raises(ValueError, match="separable"):
        filtered_lrelu(torch.zeros(1, 1, 4, 4), torch.ones(2, 2), None, None, up=2)


def test_input_transform_translates_the_fourier_features_exactly(authors):
    """A translation by k pixels of the input's grid (1/sampling rate each) moves its features k pixels right."""
    G, _, _, out, _ = authors
    inp = __import__("copy").deepcopy(G.synthesis.input).double()
    w = G.mapping(out["z"], None)[:, 0].double().detach()
    k, rate = 3, inp.sampling_rate
    with torch.no_grad():
        a = inp(w)
        inp.transform.copy_(input_transform(translate=(k / rate, 0.0)).double())
        b = inp(w)
    assert torch.allclose(b[..., k:], a[..., :-k], rtol=0, atol=1e-9)  # moved right by k


def test_input_transform_rotates_the_fourier_features_exactly():
    """A rotation by 90° (counterclockwise as displayed) of a square grid is exact: the features rotate."""
    from stylegan.networks.stylegan3 import FourierInput

    torch.manual_seed(0)
    inp = FourierInput(8, 16, 20, 16.0, 2.0).double()
    w = torch.randn(2, 8, dtype=torch.float64)
    with torch.no_grad():
        inp.affine.weight.normal_()  # a predicted rotation and translation as well
        a = inp(w)
        inp.transform.copy_(input_transform(rotate=90).double())
        b = inp(w)
    assert torch.allclose(b, torch.rot90(a, 1, dims=(2, 3)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_a_translated_image_is_the_shifted_image(authors, k):
    """Equivariance of T to integer translations: translating the input by k output pixels moves the image k
    pixels right, away from the borders (4 px cropped) to within what aliasing leaves (PSNR over 60 dB)."""
    G, _, _, out, _ = authors
    G = __import__("copy").deepcopy(G)
    ws = out["ws_psi1.0"]
    with torch.no_grad():
        a = G.synthesis(ws)
        G.synthesis.input.transform.copy_(input_transform(translate=(k / 32, 0.0)))
        b = G.synthesis(ws)
    moved, orig = b[..., 4:-4, k + 4:-4], a[..., 4:-4, 4:-4 - k]
    psnr = 10 * math.log10((a.max() - a.min()).item() ** 2 / (moved - orig).square().mean().item())
    assert psnr > 60, psnr
    assert (moved - a[..., 4:-4, k + 4:-4]).abs().mean() > 100 * (moved - orig).abs().mean()  # it did move


def _tiny(arch: str) -> NetworkConfig:
    g = GeneratorConfig(z_dim=16, w_dim=16, resolution=16, map_depth=2, cbase=512, cmax=16, arch=arch, noise=False,
                        num_fp16_res=0, conv_clamp=256, w_avg_beta=0.998)
    d = DiscriminatorConfig(resolution=16, cbase=512, cmax=16, num_fp16_res=0)
    return NetworkConfig(family="stylegan3", cfg=arch, G=g, D=d)


def test_r_config_builds_and_trains_a_step():
    nets = build_networks(_tiny("stylegan3-r"), seed=0)
    G, D = nets["G"], nets["D"]
    t_channels = build_networks(_tiny("stylegan3-t"), seed=0)["G"].synthesis.layers[0].out_channels
    layers = G.synthesis.layers
    assert all(layer.weight.shape[-1] == 1 for layer in layers)
    assert layers[0].down_filter.ndim == 2 and layers[-2].down_filter.ndim == 1 and layers[-1].down_filter is None
    assert layers[0].out_channels == t_channels  # same cmax here; the preset doubles cbase and cmax
    z = torch.randn(4, 16)
    img = G(z, update_w_avg=True)
    assert img.shape == (4, 3, 16, 16) and torch.isfinite(img).all()
    assert all(layer.magnitude_ema.item() != 1.0 for layer in layers)
    D(img).sum().backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad and p is not G.synthesis.input.weight
               or p is G.synthesis.input.weight)


def test_r1_through_the_generator_output():
    G = build_networks(_tiny("stylegan3-t"), seed=0)["G"]
    ws = G.mapping(torch.randn(2, 16)).detach().requires_grad_(True)
    img = G.synthesis(ws)
    (g,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), [ws], create_graph=True)
    g.square().sum().backward()
    assert G.synthesis.layers[3].weight.grad is not None


def test_bad_configurations_are_clear_errors():
    with pytest.raises(ConfigError, match="family"):
        NetworkConfig(family="stylegan2", cfg="x", G=_tiny("stylegan3-t").G, D=_tiny("stylegan3-t").D).validate()
    with pytest.raises(ConfigError, match="noise"):
        c = _tiny("stylegan3-t")
        c.G.noise = True
        c.validate()


@pytest.mark.parametrize("cfg", ["stylegan3-t", "stylegan3-r"])
def test_named_configurations(cfg):
    from stylegan.presets import get_preset, make_config

    c, recipe = make_config(cfg, resolution=256), get_preset(cfg).training
    assert c.family == "stylegan3" and c.G.arch == cfg and c.G.map_depth == 2 and not c.G.noise
    assert (recipe.glr, recipe.dlr, recipe.style_mixing, recipe.pl_weight) == (0.0025, 0.002, 0.0, 0.0)
    double = 2 if cfg == "stylegan3-r" else 1
    assert (c.G.cbase, c.G.cmax, c.D.cbase, c.D.cmax) == (32768 * double, 512 * double, 32768, 512)
    assert (recipe.blur_sigma, recipe.blur_kimg) == ((10.0, 200.0) if cfg == "stylegan3-r" else (0.0, 0.0))
    with torch.device("meta"):  # the full-size network's shapes, nothing allocated
        from stylegan.networks import build_generator

        layers = build_generator(c).synthesis.layers
    assert [layer.out_channels for layer in layers[:3]] == [512 * double] * 3 and layers[-1].out_channels == 3
    assert layers[0].weight.shape[-1] == (1 if double == 2 else 3)
    assert [layer.out_size for layer in layers[-3:]] == [276, 256, 256]


def test_d_blur_schedule_and_filter():
    from stylegan.training.loss import blur_images, blur_sigma_at

    assert blur_sigma_at(10, 200, 32, 0) == 10 and blur_sigma_at(10, 200, 64, 200) == 5
    assert blur_sigma_at(10, 200, 32, 250) == 0 and blur_sigma_at(0, 200, 32, 0) == 0
    img = torch.zeros(1, 1, 9, 9)
    img[0, 0, 4, 4] = 1
    out = blur_images(img, 1.0)
    assert out.shape == img.shape and math.isclose(out.sum().item(), 1.0, rel_tol=1e-6)
    assert math.isclose(out[0, 0, 4, 3].item() / out[0, 0, 4, 4].item(), 0.5, rel_tol=1e-5)  # 2^-(1/σ)²


def test_training_steps_and_the_snapshot_rebuilds_by_name(tmp_path):
    from test_training import tiny_opts

    from stylegan.checkpoint import load_networks, save_checkpoint
    from stylegan.training.loop import Trainer

    t = Trainer(tiny_opts(tmp_path, cfg="stylegan3-r", cbase=256, cmax=16, aug="noaug"))
    stats = t.step()
    assert all(torch.isfinite(v).all() for v in stats.values())
    assert t.loss.blur_sigma == 10.0 and t.G.synthesis.layers[0].magnitude_ema.item() < 1
    path = save_checkpoint(tmp_path / "sg3.safetensors", t.config, {"G_ema": t.G_ema, "D": t.D})
    config, nets, _ = load_networks(path)
    assert config.cfg == "stylegan3-r"
    z = torch.randn(2, t.G.z_dim)
    with torch.no_grad():
        assert torch.equal(nets["G_ema"](z), t.G_ema(z))


def test_the_authors_pickle_imports_safely(authors, tmp_path):
    """A network pickle as the authors' code writes it (persistent objects holding the modules' state, crafted
    here without their code) loads through the restricted unpickler and reproduces their images."""
    import stylegan
    from test_interop_support import nvlabs_pickle_bytes

    _, _, g_state, out, meta = authors
    d_state = {k[2:]: v for k, v in load_file(str(fixture_path())).items() if k.startswith("D.")}
    path = tmp_path / "sg3.pkl"
    path.write_bytes(nvlabs_pickle_bytes(g_state, d_state, json.loads(meta["G_init_kwargs"]),
                                         json.loads(meta["D_init_kwargs"])))
    G = stylegan.load(path)
    with torch.no_grad():
        assert_reproduced(G(out["z"], None, truncation_psi=0.6), out["img_psi0.6"])
    bad = dict(g_state)
    bad["synthesis.L5_52_32.up_filter"] = bad["synthesis.L5_52_32.up_filter"] * 2
    path.write_bytes(nvlabs_pickle_bytes(bad, None, json.loads(meta["G_init_kwargs"]), None))
    with pytest.raises(InteropError, match="L5_52_32.up_filter differs"):
        stylegan.load(path)
    kwargs = {**json.loads(meta["G_init_kwargs"]), "margin_size": 5}
    path.write_bytes(nvlabs_pickle_bytes(g_state, None, kwargs, None))
    with pytest.raises(InteropError, match="margin_size=5 is not supported"):
        stylegan.load(path)


def test_generate_translates_and_rotates(authors, tmp_path):
    """`stylegan generate --translate X,Y --rotate DEG` on a StyleGAN3 network; refused for others."""
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from stylegan.checkpoint import save_checkpoint
    from stylegan.cli.main import main

    G, D, *_ = authors
    net = save_checkpoint(tmp_path / "t.safetensors", _fixture_config(G), {"G_ema": G, "D": D})
    run = lambda out, *a: CliRunner().invoke(main, ["generate", "--network", str(net), "--seeds", "3", "--outdir",
                                                    str(tmp_path / out), "--fp32", *a])
    for out, args in (("a", ()), ("b", ("--translate", "0.125,0")), ("r", ("--rotate", "90"))):
        r = run(out, *args)
        assert r.exit_code == 0, r.output
    img = {k: np.asarray(Image.open(tmp_path / k / "seed0003.png"), dtype=np.float64) for k in "abr"}
    moved = np.abs(img["b"][6:-6, 10:-6] - img["a"][6:-6, 6:-10]).mean()
    assert moved < 0.05 * np.abs(img["b"][6:-6, 10:-6] - img["a"][6:-6, 10:-6]).mean()  # moved 4 px right
    assert not np.array_equal(img["r"], img["a"])
    r = run("x", "--translate", "1")
    assert r.exit_code != 0 and "expected two numbers X,Y" in r.output
    r = CliRunner().invoke(main, ["generate", "--network", "mnist32", "--seeds", "0", "--outdir", str(tmp_path / "m"),
                                  "--rotate", "5"])
    assert r.exit_code != 0 and "needs a StyleGAN3 (alias-free) network" in r.output


def test_generate_refuses_a_nonfinite_translate_or_rotate(tmp_path):
    """--rotate nan or --translate nan,0 made a blank image with exit 0, --rotate inf a 'math domain error'."""
    from click.testing import CliRunner

    from stylegan.checkpoint import save_checkpoint
    from stylegan.cli.main import main

    config = _tiny("stylegan3-t")
    net = save_checkpoint(tmp_path / "t.safetensors", config, build_networks(config, seed=0))
    for args in (("--rotate", "nan"), ("--translate", "nan,0"), ("--translate", "0,inf"), ("--rotate", "inf")):
        r = CliRunner().invoke(main, ["generate", "--network", str(net), "--seeds", "3", "--outdir",
                                      str(tmp_path / "out"), *args])
        assert r.exit_code == 2 and "must be finite numbers" in r.output, (args, r.output)
        assert not (tmp_path / "out").exists()


def _fixture_config(G):
    from stylegan.config import NetworkConfig

    return NetworkConfig(family="stylegan3", cfg=G.cfg.arch, G=G.cfg,
                         D=DiscriminatorConfig(resolution=32, cbase=2048, cmax=32, num_fp16_res=0, conv_clamp=None))


@pytest.mark.parametrize("case", CASES[:3])
def test_filtered_lrelu_by_channel_groups_equals_the_whole(case, monkeypatch):
    """Without gradients a large filtered leaky ReLU runs over groups of channels (its peak memory is one
    group's full-rate tensors): the same values as the whole at once, groups of every size."""
    import stylegan.nn.filtered_lrelu as FL

    torch.manual_seed(0)
    fu, fd, kw = _case(case, torch.float64)
    x, b = torch.randn(2, 7, 11, 11, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    with torch.no_grad():
        whole = FL.filtered_lrelu(x, fu, fd, b, **kw)
        up, (x0, x1, y0, y1) = kw["up"], kw["padding"]
        full_rate = x.numel() // 121 * (11 * up + y0 + y1) * (11 * up + x0 + x1) * 8
        calls = []
        real = FL._filtered_lrelu
        monkeypatch.setattr(FL, "_filtered_lrelu", lambda x, *a: calls.append(x.shape[1]) or real(x, *a))
        for group in (1, 3, 6):  # channels per group: 7 groups, 3 (the last of 1), 2 (the last of 1)
            monkeypatch.setattr(FL, "CHUNK_BYTES", full_rate * group // 7 + 1)
            calls.clear()
            assert torch.equal(FL.filtered_lrelu(x, fu, fd, b, **kw), whole)
            assert calls == [group] * (7 // group) + ([7 % group] if 7 % group else [])
    y = FL.filtered_lrelu(x.requires_grad_(True), fu, fd, b, **kw)  # with gradients: never grouped
    assert y.requires_grad and torch.allclose(y, whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cfg", ["stylegan3-t", "stylegan3-r"])
def test_cpu_fast_layout_equals_the_grouped_nchw_reference(cfg):
    """On the CPU the alias-free layers run channels-last with the shared-weight modulated convolution; with
    the reference layout, NCHW with a group per sample. Images, every parameter's gradient and the gradient
    through the ws twice (the path a regularizer on G would take) agree, in float64."""
    from stylegan.cpu.layout import reference_layout

    results = []
    for ref in (False, True):
        G = build_networks(_tiny(cfg), seed=0)["G"].double()
        ws = G.mapping(torch.randn(2, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
        ws = ws.detach().double().requires_grad_(True)  # (the mapping answers in float32)
        with reference_layout() if ref else contextlib.nullcontext():
            img = G.synthesis(ws)
            (g,) = torch.autograd.grad((img * torch.linspace(-1, 1, img.numel(), dtype=img.dtype).reshape(
                img.shape)).sum(), [ws], create_graph=True)
            (img.square().sum() + g.square().sum()).backward()
        results.append((img.detach(), ws.grad, {k: p.grad for k, p in G.named_parameters() if p.grad is not None}))
    (img_f, gw_f, gp_f), (img_r, gw_r, gp_r) = results
    torch.testing.assert_close(img_f, img_r, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gw_f, gw_r, rtol=1e-9, atol=1e-9)
    assert gp_f.keys() == gp_r.keys() and len(gp_f) > 10
    for k in gp_f:
        torch.testing.assert_close(gp_f[k], gp_r[k], rtol=1e-9, atol=1e-9, msg=k)

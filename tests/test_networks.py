"""Networks: shapes, parameter counts, truncation, style mixing, conditioning, precision."""
import pytest
import torch

from conftest import tiny_config
from stylegan.config import ConfigError, NetworkConfig, num_ws_for
from stylegan.presets import make_config
from stylegan.networks import build_networks, mix_styles, num_parameters


@pytest.mark.parametrize("g_arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("d_arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("resolution,channels", [(4, 3), (8, 1), (32, 3)])
def test_shapes_every_architecture(g_arch, d_arch, resolution, channels):
    cfg = tiny_config(resolution, g_arch=g_arch, d_arch=d_arch, img_channels=channels)
    nets = build_networks(cfg, seed=0)
    G, D = nets["G"], nets["D"]
    assert G.num_ws == num_ws_for(resolution) == cfg.G.num_ws
    z = torch.randn(4, 32)
    ws = G.mapping(z)
    assert ws.shape == (4, G.num_ws, 32)
    img = G(z, noise_mode="random")
    assert img.shape == (4, channels, resolution, resolution) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    logits = D(img)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()


def test_gradients_reach_every_parameter():
    nets = build_networks(tiny_config(16, g_arch="resnet", d_arch="skip"), seed=0)
    G, D = nets["G"].train(), nets["D"]
    D(G(torch.randn(4, 32), noise_mode="random")).sum().backward()
    for name, module in (("G", G), ("D", D)):
        for pname, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} gets no gradient"


def test_config_f_parameter_counts():
    for res, g_count, d_count in ((1024, 30_370_060, 29_012_513), (256, 30_034_338, 28_864_129)):
        nets = build_networks(make_config("stylegan2", resolution=res))
        assert num_parameters(nets["G"]) == g_count
        assert num_parameters(nets["D"]) == d_count


def test_truncation():
    G = build_networks(tiny_config(16), seed=0)["G_ema"]
    G.mapping.w_avg.copy_(torch.randn(32))
    z = torch.randn(3, 32)
    ws0 = G.mapping(z, truncation_psi=0)
    torch.testing.assert_close(ws0, G.mapping.w_avg.expand_as(ws0))
    ws1 = G.mapping(z)
    ws_half = G.mapping(z, truncation_psi=0.5)
    torch.testing.assert_close(ws_half, G.mapping.w_avg + 0.5 * (ws1 - G.mapping.w_avg))
    ws_cut = G.mapping(z, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(ws_cut[:, :2], ws_half[:, :2])
    torch.testing.assert_close(ws_cut[:, 2:], ws1[:, 2:])


def test_w_avg_tracking():
    G = build_networks(tiny_config(8), seed=0)["G"]
    z = torch.randn(16, 32)
    w = G.mapping(z)[:, 0]
    G.mapping(z, update_w_avg=True)
    torch.testing.assert_close(G.mapping.w_avg, (1 - 0.995) * w.mean(0))


def test_style_mixing():
    G = build_networks(tiny_config(16), seed=0)["G_ema"]
    a, b, c = (G.mapping(torch.randn(2, 32)) for _ in range(3))
    assert torch.equal(mix_styles([a], []), a)  # one latent = no mixing
    torch.testing.assert_close(G.synthesis(mix_styles([a], []), noise_mode="const"), G.synthesis(a, noise_mode="const"))
    m = mix_styles([a, b, c], [2, 4])
    assert torch.equal(m[:, :2], a[:, :2]) and torch.equal(m[:, 2:4], b[:, 2:4]) and torch.equal(m[:, 4:], c[:, 4:])
    with pytest.raises(ValueError):
        mix_styles([a, b], [3, 4])
    with pytest.raises(ValueError):
        mix_styles([a, b], [G.num_ws + 1])


def test_conditional_networks():
    nets = build_networks(tiny_config(8, c_dim=5), seed=0)
    G, D = nets["G"], nets["D"]
    c = torch.eye(5)[:4]
    img = G(torch.randn(4, 32), c)
    assert D(img, c).shape == (4, 1)
    with pytest.raises(ValueError, match="conditional"):
        G(torch.randn(4, 32))
    with pytest.raises(ValueError, match="conditional"):
        D(img)
    # Different labels give different images for the same z.
    z = torch.randn(1, 32).repeat(2, 1)
    two = G(z, torch.eye(5)[:2], noise_mode="none")
    assert not torch.allclose(two[0], two[1])


def test_same_seed_same_image_and_noise_modes():
    G = build_networks(tiny_config(16), seed=0)["G_ema"]
    for m in G.synthesis.modules():
        if hasattr(m, "strength"):
            m.strength.data.fill_(0.5)
    z = torch.randn(2, 32)
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
    assert not torch.equal(G(z, noise_mode="const"), G(z, noise_mode="none"))
    # Explicit zero noise for every layer equals noise_mode="none".
    ws = G.mapping(z)
    zeros = {name: torch.zeros(1, 1, r, r) for name, r in G.synthesis.noise_layers().items()}
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const", noise=zeros), G.synthesis(ws, noise_mode="none"))


def test_same_init_seed_same_networks():
    a, b = build_networks(tiny_config(8), seed=3), build_networks(tiny_config(8), seed=3)
    for name in ("G", "D"):
        for (k, x), (_, y) in zip(a[name].state_dict().items(), b[name].state_dict().items()):
            assert torch.equal(x, y), k


def test_reduced_precision_blocks_close_to_float32():
    cfg = tiny_config(32)
    cfg.G.num_fp16_res = cfg.D.num_fp16_res = 2
    cfg.G.conv_clamp = cfg.D.conv_clamp = 256
    nets = build_networks(cfg, seed=0)
    G, D = nets["G_ema"], nets["D"]
    z = torch.randn(4, 32)
    ref = G(z)
    G.synthesis.cpu_half_dtype = D.cpu_half_dtype = torch.bfloat16
    half = G(z)
    assert half.dtype == torch.float32
    assert (half - ref).abs().max() < 0.05 * ref.abs().max()
    assert torch.equal(G(z, force_fp32=True), ref)
    assert (D(ref) - D(ref, force_fp32=True)).abs().max() < 0.05 * D(ref, force_fp32=True).abs().max() + 0.05


def test_config_validation():
    with pytest.raises(ConfigError, match="power of two"):
        make_config("stylegan2", resolution=48)
    with pytest.raises(ConfigError, match="G.arch"):
        make_config("stylegan2", g_arch="unet")
    with pytest.raises(ConfigError, match="unknown --cfg"):
        make_config("biggan")
    with pytest.raises(ConfigError, match="channels"):
        make_config("stylegan2", resolution=1024, cbase=512)
    d = make_config("stylegan2").to_dict()
    d["G"]["widht"] = 3
    with pytest.raises(ConfigError, match="widht"):
        NetworkConfig.from_dict(d)
    c = make_config("stylegan2", resolution=64, cbase=4096)
    assert NetworkConfig.from_json(c.to_json()) == c

"""The equivariance metrics EQ-T, EQ-T_frac and EQ-R: a stand-in generator that is exactly equivariant by
construction scores very high, one that ignores its input's transform scores low, the valid regions of known
transforms, the real alias-free generator through all three metrics, the registry and the command line, and
the refusal of a network that is not alias-free."""
import math

import pytest
import torch
from torch import nn

from stylegan.config import DiscriminatorConfig, GeneratorConfig, NetworkConfig
from stylegan.metrics import METRICS, MetricError, compute_metric
from stylegan.metrics.equivariance import (PSNR_CAP_DB, equivariance_psnr, input_module, integer_shift, psnr,
                                           resample)
from stylegan.metrics.registry import training_metric_problems
from stylegan.networks import build_networks
from stylegan.networks.stylegan3 import input_transform


@pytest.fixture(autouse=True)
def _one_thread():
    """These networks are tiny: one thread, so that they never wait on a second core that is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def alias_free_g():
    """A random StyleGAN3-T generator, 32² (the smallest size EQ-T_frac and EQ-R resample)."""
    return build_networks(_alias_free(), seed=0)["G"].eval()


class TransformHolder(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("transform", torch.eye(3))


class PeriodicSynthesis(nn.Module):
    """Sinusoids of whole frequencies (at most a quarter of the sampling rate, so band-limited after any
    rotation too) sampled at ``T·p``, p the pixel centres in image widths, phases from w; ``fixed``: a fixed
    random image that ignores both w and the transform."""

    def __init__(self, resolution: int, fixed: bool = False):
        super().__init__()
        self.resolution, self.fixed = resolution, fixed
        self.input = TransformHolder()
        g = torch.Generator().manual_seed(1)
        self.freqs = torch.randint(-resolution // 6, resolution // 6 + 1, (3, 4, 2), generator=g).double()
        self.image = torch.rand(1, 3, resolution, resolution, generator=g) * 2 - 1

    def forward(self, ws, **_ignored):
        if self.fixed:
            return self.image.expand(ws.shape[0], -1, -1, -1)
        n, r = ws.shape[0], self.resolution
        pos = (torch.arange(r, dtype=torch.float64) + 0.5 - r / 2) / r
        py, px = torch.meshgrid(pos, pos, indexing="ij")
        t = self.input.transform.double()
        qx, qy = t[0, 0] * px + t[0, 1] * py + t[0, 2], t[1, 0] * px + t[1, 1] * py + t[1, 2]
        phase = ws[:, 0, :4].double().reshape(n, 1, 4, 1, 1)
        arg = self.freqs[..., 0, None, None] * qx + self.freqs[..., 1, None, None] * qy  # [3, 4, H, W]
        return (torch.sin(2 * math.pi * (arg + phase)).sum(dim=2) / 4).float()


class StandIn(nn.Module):
    """The generator interface the metrics use: mapping, synthesis (with ``input.transform``), sizes."""

    def __init__(self, resolution: int = 32, fixed: bool = False):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.resolution = 8, 0, 8, 2, resolution
        self.synthesis = PeriodicSynthesis(resolution, fixed)

    def mapping(self, z, c=None, truncation_psi=1.0):
        return z.unsqueeze(1).repeat(1, self.num_ws, 1)


def _alias_free(arch: str = "stylegan3-t", resolution: int = 32):
    g = GeneratorConfig(z_dim=16, w_dim=16, resolution=resolution, map_depth=2, cbase=256, cmax=8, arch=arch,
                        noise=False, num_fp16_res=0, conv_clamp=256, w_avg_beta=0.998)
    d = DiscriminatorConfig(resolution=resolution, cbase=256, cmax=8, num_fp16_res=0)
    return NetworkConfig(family="stylegan3", cfg=arch, G=g, D=d)


def test_exactly_equivariant_network_scores_very_high():
    G = StandIn()
    assert equivariance_psnr(G, "int", 16, batch_size=4, progress=False)[0] >= 80
    # Resampled: what is left is the windowed sinc's error on content of at most a quarter of the sampling rate.
    assert equivariance_psnr(G, "frac", 8, batch_size=4, progress=False)[0] >= 50
    assert equivariance_psnr(G, "rot", 8, batch_size=4, progress=False)[0] >= 50


@pytest.mark.parametrize("kind", ["int", "frac", "rot"])
def test_network_that_ignores_the_transform_scores_low(kind):
    value, valid = equivariance_psnr(StandIn(fixed=True), kind, 8, batch_size=2, progress=False)
    assert value < 15 and 0 < valid <= 1


def test_psnr_peak_and_cap():
    assert psnr(4.0) == pytest.approx(0.0) and psnr(0.04) == pytest.approx(20.0)  # peak-to-peak range 2
    assert psnr(0.0) == PSNR_CAP_DB and psnr(1e-30) == PSNR_CAP_DB


def test_valid_region_of_an_integer_shift():
    img = torch.arange(64.0).reshape(1, 1, 8, 8)
    out, mask = integer_shift(img, 2, -1)  # 2 right, 1 up
    assert mask[:7, 2:].all() and not mask[7].any() and not mask[:, :2].any()
    assert torch.equal(out[0, 0, :7, 2:], img[0, 0, 1:, :6]) and (out[0, 0][~mask] == 0).all()


def test_valid_region_and_values_of_the_resampling():
    img = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    out, mask = resample(img, input_transform(translate=(0.5 / 32, 0.0)).double())  # half a pixel right
    cols, rows = mask.any(dim=0).nonzero().flatten(), mask.any(dim=1).nonzero().flatten()
    assert (cols.min().item(), cols.max().item()) == (8, 24)  # footprint x−1−7 … x−1+8 inside [0, 31]
    assert (rows.min().item(), rows.max().item()) == (7, 23) and mask.sum() == 17 * 17
    # Whole-pixel moves and quarter turns land on pixel centres: the windowed sinc reproduces them exactly.
    out, mask = resample(img, input_transform(translate=(3 / 32, -2 / 32)).double())
    shifted, shift_mask = integer_shift(img, 3, -2)
    assert (mask <= shift_mask).all() and torch.allclose(out[..., mask], shifted[..., mask], atol=1e-12)
    out, mask = resample(img, input_transform(rotate=90).double())
    assert mask.any() and torch.allclose(out[..., mask], torch.rot90(img, 1, dims=(-2, -1))[..., mask], atol=1e-12)


def test_transform_convention_matches_the_alias_free_generator(alias_free_g):
    """The image moved the way its input was: a random T network at init scores far better with the metric's
    own transform of the output than with the opposite one."""
    G = __import__("copy").deepcopy(alias_free_g)
    ws = G.mapping(torch.randn(2, 16))
    with torch.no_grad():
        a = G.synthesis(ws)
        G.synthesis.input.transform.copy_(input_transform(translate=(3 / 32, 0.0)))
        b = G.synthesis(ws)
    right, left = integer_shift(a, 3, 0), integer_shift(a, -3, 0)
    err = [((b - x) * m).square().mean() for x, m in (right, left)]
    assert err[0] < 0.1 * err[1]


@pytest.mark.parametrize("arch", ["stylegan3-t", "stylegan3-r"])
def test_alias_free_generator_through_all_three_metrics(arch, alias_free_g):
    G = alias_free_g if arch == "stylegan3-t" else build_networks(_alias_free(arch), seed=0)["G"]
    transform = G.synthesis.input.transform.clone()
    for name in ("eqt500_int", "eqt500_frac", "eqr500"):
        assert not METRICS[name].needs_data and METRICS[name].needs_generator
    for kind in ("int", "frac", "rot"):
        value, valid = equivariance_psnr(G, kind, 2, batch_size=2, progress=False)
        assert math.isfinite(value) and 0 < value < PSNR_CAP_DB and 0 < valid <= 1
    assert torch.equal(G.synthesis.input.transform, transform)  # restored


def test_registry_record_and_names():
    rec = compute_metric("eqt500_int", StandIn(resolution=32), batch_size=250, progress=False)
    assert rec["results"]["eqt500_int"] >= 80 and rec["num_gen"] == 500 and rec["equivariance"]["unit"] == "dB"
    assert {"eqt50k_int", "eqt50k_frac", "eqr50k", "eqt1k_int", "eqt1k_frac", "eqr1k"} <= set(METRICS)


def test_a_network_that_is_not_alias_free_is_refused_in_one_line(tiny):
    G = build_networks(tiny(), seed=0)["G"]
    with pytest.raises(MetricError) as e:
        compute_metric("eqt1k_int", G, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("eqt1k_int: needs a StyleGAN3") and "'skip'" in msg
    with pytest.raises(ValueError, match="StyleGAN3"):
        input_module(nn.Linear(2, 2))
    [problem] = training_metric_problems(["eqr1k"], tiny().G)
    assert problem.startswith("eqr1k: needs a StyleGAN3")
    assert training_metric_problems(["eqr1k"], _alias_free().G) == []


def test_small_images_are_refused_for_resampling():
    with pytest.raises(ValueError, match="at least 32"):
        equivariance_psnr(StandIn(resolution=16), "rot", 2, progress=False)
    assert equivariance_psnr(StandIn(resolution=16), "int", 2, progress=False)[0] >= 80
    with pytest.raises(ValueError, match="kind must be one of int, frac, rot"):
        equivariance_psnr(StandIn(), "scale", 2, progress=False)


def test_metrics_command(tmp_path, tiny, monkeypatch):
    import json

    from click.testing import CliRunner

    import stylegan.cli.common
    from stylegan.checkpoint import save_checkpoint
    from stylegan.cli.main import main

    runner = CliRunner()
    listing = runner.invoke(main, ["metrics", "--list"]).output
    assert "eqt50k_int" in listing and "eqt50k_frac" in listing and "eqr50k" in listing
    config = tiny()
    path = save_checkpoint(tmp_path / "sg2.safetensors", config, build_networks(config, seed=0))
    r = runner.invoke(main, ["metrics", "--network", str(path), "--metrics", "eqt1k_int,eqr1k", "--device", "cpu"])
    assert r.exit_code != 0 and "eqt1k_int: needs a StyleGAN3 (alias-free) generator" in r.output
    assert "Traceback" not in r.output

    # Without --data, a generator whose input takes a transform is scored (the stand-in in place of the file).
    monkeypatch.setattr(stylegan.cli.common, "_load_generator", lambda path, device: StandIn())
    r = runner.invoke(main, ["metrics", "--network", str(path), "--metrics", "eqt500_int,eqr500", "--device", "cpu",
                             "--batch-size", "250"])
    assert r.exit_code == 0, r.output
    records = [json.loads(line[line.index('{"metric"'):]) for line in r.output.splitlines() if '{"metric"' in line]
    assert [rec["metric"] for rec in records] == ["eqt500_int", "eqr500"]
    assert records[0]["results"]["eqt500_int"] >= 80 and records[1]["results"]["eqr500"] >= 50

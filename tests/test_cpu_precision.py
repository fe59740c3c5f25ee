"""bfloat16 by default on CPUs that have it natively, for wide reduced-precision layers; --fp32 keeps float32."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import stylegan.cpu.precision as cp
from stylegan.cli.main import main
from stylegan.networks.discriminator import Discriminator
from stylegan.networks.synthesis import SynthesisNetwork


def test_cpuinfo_flags():
    assert cp.cpuinfo_has_bf16("processor : 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert cp.cpuinfo_has_bf16("flags : sse2 amx_bf16\n")
    assert not cp.cpuinfo_has_bf16("flags : fpu avx512f avx512_vnni\n")
    assert not cp.cpuinfo_has_bf16("processor : 0\n")


def synthesis(cmax, num_fp16_res=2):
    return SynthesisNetwork(w_dim=16, resolution=16, img_channels=3, cbase=4096, cmax=cmax, num_fp16_res=num_fp16_res)


def test_width_of_reduced_precision_layers():
    assert cp.reduced_precision_width(synthesis(256)) == 256
    assert cp.reduced_precision_width(synthesis(64)) == 64
    assert cp.reduced_precision_width(synthesis(256, num_fp16_res=0)) == 0
    D = Discriminator(0, 16, 3, cbase=4096, cmax=256, num_fp16_res=2)
    assert cp.reduced_precision_width(D) == 256


@pytest.mark.parametrize("native, cmax, device, force, expected", [
    (True, 256, "cpu", False, True),     # native and wide: the default
    (True, 128, "cpu", False, False),    # too narrow to pay
    (False, 512, "cpu", False, False),   # no native bfloat16
    (False, 64, "cpu", True, True),      # --cpu-bf16 forces it
    (True, 512, "cuda", False, False),   # CUDA has its own float16
])
def test_auto_cpu_bf16(monkeypatch, native, cmax, device, force, expected):
    monkeypatch.setattr(cp, "native_bf16", lambda: native)
    net = synthesis(cmax)
    assert cp.auto_cpu_bf16(torch.device(device), net, force=force) is expected
    assert net.cpu_half_dtype == (torch.bfloat16 if expected else None)


@pytest.fixture()
def narrow_threshold(monkeypatch):
    """Pretend this CPU has native bfloat16 and that every width pays, so tiny networks take the default path."""
    monkeypatch.setattr(cp, "native_bf16", lambda: True)
    monkeypatch.setattr(cp, "BF16_MIN_CHANNELS", 1)


def test_training_takes_the_default_and_fp32_refuses_it(tmp_path, narrow_threshold):
    from stylegan.training.loop import Trainer
    from test_training import tiny_opts

    t = Trainer(tiny_opts(tmp_path))
    assert t.cpu_bf16 and t.G.synthesis.cpu_half_dtype == torch.bfloat16 and t.D.cpu_half_dtype == torch.bfloat16
    stats = t.step()
    assert all(torch.isfinite(v).all() for v in stats.values())
    t = Trainer(tiny_opts(tmp_path, fp32=True))
    assert not t.cpu_bf16 and t.G.synthesis.cpu_half_dtype is None


def test_generate_default_and_fp32(tmp_path, narrow_threshold):
    def run(*args):
        r = CliRunner().invoke(main, [str(a) for a in args])
        assert r.exit_code == 0, r.output

    run("init", "--cfg", "stylegan2", "--resolution", "16", "--cbase", "256", "--cmax", "32", "--map-depth", "2",
        "--z-dim", "32", "--w-dim", "32", "--seed", "5", "--outdir", tmp_path)
    net = tmp_path / "network-init.safetensors"
    for name, extra in (("auto", []), ("fp32", ["--fp32"])):
        run("generate", "--network", net, "--seeds", "0-3", "--outdir", tmp_path / name, "--device", "cpu", *extra)
    import stylegan
    from stylegan.tools.generate import z_from_seed

    G = stylegan.load(net)
    z = torch.cat([z_from_seed(s, G.z_dim) for s in range(4)])
    with torch.no_grad():
        ref = ((G(z, None, noise_mode="const").permute(0, 2, 3, 1) + 1) * 127.5).clamp(0, 255)
    diffs = {}
    for name in ("auto", "fp32"):
        imgs = np.stack([np.asarray(Image.open(tmp_path / name / f"seed{s:04d}.png")) for s in range(4)])
        diffs[name] = np.abs(imgs.astype(np.float64) - ref.numpy()).max()
    assert diffs["fp32"] <= 0.5 + 1e-3  # float32: the PNG's rounding only
    assert 0.5 < diffs["auto"] < 40  # bfloat16: close to float32, but not it


def test_metrics_score_the_generator_in_float32(monkeypatch):
    from stylegan.metrics import registry
    from stylegan.networks import build_networks
    from stylegan.presets import make_config

    seen = []

    def probe(opts):
        seen.append(opts.G.synthesis.cpu_half_dtype)
        return {"results": {"probe": 0.0}}

    monkeypatch.setitem(registry.METRICS, "probe", registry.Metric("probe", probe, "test", True, False, False, None))
    G = build_networks(make_config("stylegan2", resolution=16, img_channels=3, c_dim=0, cbase=256, cmax=32,
                                   map_depth=2), seed=0)["G_ema"]
    G.synthesis.cpu_half_dtype = torch.bfloat16
    registry.compute_metric("probe", G)
    assert seen == [None]  # float32 while scored
    assert G.synthesis.cpu_half_dtype == torch.bfloat16  # and as it was afterwards

"""Reduced precision, torch.compile and the CUDA paths.

The float16 layers (with their conv clamp) run on the CPU too, through the networks' ``cpu_half_dtype``, so the
same code is checked here on every machine. The tests marked ``gpu`` need a CUDA device (skipped without one;
`make gpu-check` runs them): float16 on CUDA, the grouped modulated convolution CUDA uses at inference, a
channels-last input, and a few mixed-precision training steps.
"""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.presets import make_config
from stylegan.networks import build_networks
from stylegan.nn.modconv import modulate_weights, modulated_conv2d
from stylegan.nn.upfirdn import conv2d_resample, setup_filter

HAS_CUDA = torch.cuda.is_available()



def half_config(resolution=32, num_fp16_res=2, conv_clamp=256):
    """A small network whose two highest resolutions run in reduced precision, with the authors' conv clamp."""
    return make_config("stylegan2", resolution=resolution, cbase=512, cmax=32, map_depth=2, z_dim=32, w_dim=32,
                       img_channels=3, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp)


def set_half(nets, dtype):
    for name in ("G", "G_ema"):
        nets[name].synthesis.cpu_half_dtype = dtype
    nets["D"].cpu_half_dtype = dtype


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_layers_on_cpu_stay_close_to_float32(dtype):
    nets = build_networks(half_config(), seed=0)
    G, D = nets["G"].eval(), nets["D"].eval()
    z = torch.randn(4, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = G(z, noise_mode="const", force_fp32=True)
        d_ref = D(ref, force_fp32=True)
        set_half(nets, dtype)
        img = G(z, noise_mode="const")
        d = D(ref)
    assert img.dtype == torch.float32 and torch.isfinite(img).all()
    tol = 0.02 if dtype == torch.float16 else 0.08  # bfloat16 keeps 8 bits of mantissa, float16 11
    assert (img - ref).abs().max() < tol * ref.abs().max()
    assert torch.isfinite(d).all() and (d - d_ref).abs().max() < tol * (1 + d_ref.abs().max())
    # The reduced-precision layers did run in reduced precision: the outputs differ from float32's.
    assert (img - ref).abs().max() > 0


def test_conv_clamp_bounds_the_reduced_precision_activations():
    """With a tiny clamp every layer's output is held in [-clamp, clamp]; the image follows."""
    cfg = half_config(conv_clamp=0.01)
    nets = build_networks(cfg, seed=0)
    set_half(nets, torch.float16)
    with torch.no_grad():
        img = nets["G"](torch.randn(2, 32), noise_mode="const")
        free = build_networks(half_config(conv_clamp=None), seed=0)["G"](torch.randn(2, 32), noise_mode="const")
    # toRGB outputs (clamped) summed over the skip resolutions: 4 .. 32 is four of them.
    assert img.abs().max() <= 4 * 0.01 * 1.01
    assert free.abs().max() > 10 * img.abs().max()


def _reference_modconv(x, weight, styles, up):
    """float64, one sample at a time, per-sample weights formed explicitly."""
    x, weight, styles = x.double().cpu(), weight.double().cpu(), styles.double().cpu()
    w = modulate_weights(weight, styles, demodulate=True)
    f = setup_filter([1, 3, 3, 1]).double()
    return torch.cat([conv2d_resample(x[i:i + 1], w[i], f, up=up, padding=1) for i in range(x.shape[0])])


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_cuda_modulated_conv_matches_float64(up, fused, channels_last):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 16, 8, 8, generator=g)
    weight, styles = torch.randn(24, 16, 3, 3, generator=g), torch.rand(4, 16, generator=g) + 0.5
    ref = _reference_modconv(x, weight, styles, up)
    xc = x.cuda()
    if channels_last:
        xc = xc.contiguous(memory_format=torch.channels_last)
    torch.backends.cudnn.allow_tf32 = False
    out = modulated_conv2d(xc, weight.cuda(), styles.cuda(), up=up, padding=1,
                           resample_filter=setup_filter([1, 3, 3, 1]).cuda(), fused=fused)
    assert out.shape == ref.shape
    assert (out.double().cpu() - ref).abs().max() < 1e-4 * (1 + ref.abs().max())


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_cuda_float16_networks_close_to_float32_and_to_cpu():
    nets = build_networks(half_config(num_fp16_res=4), seed=0)
    G, D = nets["G"].eval(), nets["D"].eval()
    z = torch.randn(8, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        cpu = G(z, noise_mode="const", force_fp32=True)
        G, D = G.cuda(), D.cuda()
        fp32 = G(z.cuda(), noise_mode="const", force_fp32=True)
        fp16 = G(z.cuda(), noise_mode="const")
        d32, d16 = D(fp32, force_fp32=True), D(fp32)
    assert torch.isfinite(fp16).all() and torch.isfinite(d16).all()
    assert (fp32.cpu() - cpu).abs().max() < 1e-3 * (1 + cpu.abs().max())  # TF32 convolutions at most
    assert (fp16 - fp32).abs().max() < 0.02 * fp32.abs().max()
    assert (d16 - d32).abs().max() < 0.02 * (1 + d32.abs().max())


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_cuda_mixed_precision_training_steps_stay_finite(tmp_path):
    from stylegan.training.loop import Trainer
    from stylegan.training.options import TrainingOptions

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.RandomState(0)
    for i in range(16):
        Image.fromarray(rng.randint(0, 255, (16, 16, 3), dtype=np.uint8)).save(data / f"{i}.png")
    opts = TrainingOptions(outdir=str(tmp_path / "runs"), data=str(data), cbase=256, cmax=32, map_depth=2,
                           batch=8, workers=0, device="cuda", fp32=False, aug="ada", ada_kimg=1, kimg=1)
    t = Trainer(opts)
    assert t.device.type == "cuda"
    for _ in range(20):  # every phase, R1 and path length included, runs at least once
        stats = t.step()
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in stats.values()), stats
    assert t.augment_pipe.p > 0  # ADA raised p on 16 random images, so R1 ran through the geometric warp


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_cuda_r1_through_the_augmentation_matches_cpu():
    """R1's double backward through ADA's geometric warp (CUDA's grid_sample has none of its own) gives the
    CPU's result."""
    from stylegan.training.augment import warp_affine

    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64, generator=g)
    angle = 0.3
    inv = torch.tensor([[math.cos(angle), -math.sin(angle), 0.7], [math.sin(angle), math.cos(angle), -1.2],
                        [0, 0, 1]], dtype=torch.float64).expand(2, 3, 3)

    def r1_grad(device):
        xi = x.detach().to(device).requires_grad_(True)
        y = warp_affine(xi, inv.to(device))
        (gx,) = torch.autograd.grad((y.sin() * y).sum(), xi, create_graph=True)
        gx.square().sum().backward()
        return xi.grad.cpu()

    cpu, cuda = r1_grad("cpu"), r1_grad("cuda")
    assert torch.isfinite(cuda).all() and cuda.abs().sum() > 0
    assert torch.allclose(cuda, cpu, rtol=1e-9, atol=1e-9)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="needs a C compiler")
def test_compiled_mapping_network_matches_eager():
    """torch.compile must not change the networks' outputs (inductor once dropped the gain that the fully
    connected layers applied through ``add(..., alpha=g)`` after their matmul)."""
    from stylegan.networks.mapping import MappingNetwork

    torch.manual_seed(0)
    m = MappingNetwork(z_dim=16, c_dim=4, w_dim=16, num_ws=3, num_layers=2).eval()
    z, c = torch.randn(5, 16), torch.eye(4)[[0, 1, 2, 3, 0]]
    torch._dynamo.reset()
    with torch.no_grad():
        try:
            compiled = torch.compile(m)(z, c)
        except Exception as e:  # a toolchain that cannot build inductor's kernels here: nothing to compare
            pytest.skip(f"torch.compile cannot build kernels on this machine ({type(e).__name__})")
        assert torch.allclose(compiled, m(z, c), rtol=1e-5, atol=1e-5)

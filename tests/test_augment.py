"""Adaptive discriminator augmentation (AugmentPipe, AdaController) and DiffAugment."""
import json
import math
from typing import Iterable

import pytest
import torch
import torch.nn.functional as F

from stylegan.training.augment import (GEOM_FILTER, GROUPS, PIPELINES, AdaController, AugmentPipe, band_filters,
                                       warp_affine)
from stylegan.training.diffaug import DiffAugment, diff_augment


def smooth_images(n=8, c=3, size=16, seed=0):
    """Band-limited random images in [−1, 1] (upsampled noise)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, size // 4, size // 4, generator=g) * 2 - 1
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)


def changed(y, x, tol=1e-6):
    return (y - x).abs().flatten(1).amax(dim=1) > tol


# ------------------------------------------------------------------------------------------------ pipeline


def test_named_pipelines():
    assert PIPELINES["bgc"] == ("blit", "geom", "color")
    assert PIPELINES["bgcfnc"] == ("blit", "geom", "color", "filter", "noise", "cutout")
    pipe = AugmentPipe.from_name("bg")
    assert set(pipe.enabled()) == set(GROUPS["blit"] + GROUPS["geom"])
    assert set(AugmentPipe.from_name().enabled()) == set(GROUPS["blit"] + GROUPS["geom"] + GROUPS["color"])
    assert AugmentPipe.from_name("bgc", xflip=0).xflip == 0
    with pytest.raises(ValueError):
        AugmentPipe.from_name("bgcx")


@pytest.mark.parametrize("name", list(PIPELINES))
def test_p0_is_identity(name):
    x = smooth_images(4)
    pipe = AugmentPipe.from_name(name)
    assert float(pipe.p) == 0
    y = pipe(x)
    assert torch.equal(y, x)


def test_unselected_images_pass_through_exactly():
    torch.manual_seed(1)
    x = smooth_images(64, size=16)
    pipe = AugmentPipe.from_name("bgcfnc", p=0.05)
    pipe.record = True
    y = pipe(x)
    touched = torch.zeros(64, dtype=torch.bool)
    for m in pipe.last_applied.values():
        touched |= m
    assert 0 < int(touched.sum()) < 64
    assert torch.equal(y[~touched], x[~touched])


def test_p_setting_and_state():
    pipe = AugmentPipe.from_name("bgc")
    pipe.p = 0.25
    assert isinstance(pipe.p, torch.Tensor) and float(pipe.p) == 0.25
    pipe.set_p(0.5)
    sd = pipe.state_dict()
    assert float(sd["p"]) == 0.5 and "geom_filter" not in sd
    other = AugmentPipe.from_name("bgc")
    other.load_state_dict(sd)
    assert float(other.p) == 0.5


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("group", list(GROUPS))
def test_each_group_at_p1(group, channels):
    torch.manual_seed(2)
    x = smooth_images(8, channels, 16).requires_grad_(True)
    pipe = AugmentPipe.from_name(group, p=1.0)
    y = pipe(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    bound = {"blit": 1.0, "cutout": 1.0, "geom": 1.5, "noise": 3.0, "filter": 6.0, "color": 30.0}[group]
    assert y.abs().max() <= bound + 1e-6
    assert changed(y.detach(), x.detach()).float().mean() >= 0.5
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_full_pipeline_gradcheck_and_double_backward():
    """The augmentation is a differentiable function of the image (exact gradients, float64), and R1 (the
    gradient penalty on real images, taken through the augmentation) can be back-propagated."""
    pipe = AugmentPipe.from_name("bgcfnc", p=1.0)
    x = smooth_images(2, 3, 8).double().requires_grad_(True)

    def f(inp):
        torch.manual_seed(3)
        return pipe(inp)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, fast_mode=True)
    conv = torch.nn.Conv2d(3, 1, 3).double()
    torch.manual_seed(4)
    logits = conv(pipe(x)).mean(dim=(1, 2, 3))
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    grad.square().sum().backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()


def test_half_precision_input():
    x = smooth_images(4).to(torch.bfloat16)
    y = AugmentPipe.from_name("bgcfnc", p=1.0)(x)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


def test_fraction_transformed():
    """Each transform is drawn with probability p per image (xflip at p = 0.3 over 2000 images: 30 % ± 3 %);
    a drawn x-flip mirrors with i ~ U{0, 1} as in the paper, so 15 % of the images are visibly mirrored."""
    torch.manual_seed(5)
    n = 2000
    x = torch.randn(n, 1, 4, 4)
    pipe = AugmentPipe(xflip=1, p=0.3)
    pipe.record = True
    y = pipe(x)
    drawn = pipe.last_applied["xflip"].float().mean().item()
    assert abs(drawn - 0.3) < 0.03
    mirrored = torch.isclose(y, x.flip(3)).flatten(1).all(dim=1) & changed(y, x)
    assert abs(mirrored.float().mean().item() - 0.15) < 0.025
    assert torch.equal(changed(y, x), mirrored)  # everything else is untouched

    pipe = AugmentPipe(brightness=1, p=0.3)
    frac = changed(pipe(x), x).float().mean().item()
    assert abs(frac - 0.3) < 0.03

    # Rotation is drawn twice with probability 1 − sqrt(1 − p): an image is rotated with probability p.
    pipe = AugmentPipe(rotate=1, p=0.3)
    pipe.record = True
    pipe(torch.zeros(n, 1, 4, 4))
    assert abs(pipe.last_applied["rotate"].float().mean().item() - 0.3) < 0.03


def test_blit_is_exact_permutation():
    torch.manual_seed(6)
    x = torch.randn(64, 3, 8, 8)
    y = AugmentPipe.from_name("blit", p=1.0)(x)
    assert all(torch.isin(y[i], x[i]).all() for i in range(64))  # pixels are moved, never interpolated
    assert changed(y, x).float().mean() > 0.8
    # Flip / quarter-turn only: each output is one of the 8 symmetries of its input.
    y = AugmentPipe(xflip=1, rotate90=1, p=1.0)(x)
    for i in range(64):
        cands = [x[i].rot90(k, dims=(1, 2)) for k in range(4)] + [x[i].flip(2).rot90(k, dims=(1, 2)) for k in range(4)]
        assert any(torch.equal(y[i], c) for c in cands)


def test_geom_centre_convention():
    """Rotations and scalings are about the image centre: a centred round blob stays centred."""
    torch.manual_seed(7)
    u = torch.arange(32) + 0.5 - 16
    blob = torch.exp(-(u[None] ** 2 + u[:, None] ** 2) / (2 * 3.0 ** 2)) * 2 - 1
    x = blob.expand(8, 1, 32, 32)
    y = AugmentPipe(rotate=1, p=1.0)(x)
    assert (y - x).abs().max() < 0.02
    w = (AugmentPipe(scale=1, aniso=1, p=1.0)(x) + 1)
    cx = (w * u.view(1, 1, 1, 32)).sum(dim=(2, 3)) / w.sum(dim=(2, 3))
    cy = (w * u.view(1, 1, 32, 1)).sum(dim=(2, 3)) / w.sum(dim=(2, 3))
    assert cx.abs().max() < 0.01 and cy.abs().max() < 0.01


def measure_geom_error(size: int = 64, freq: float = 0.25, mode: str = "bicubic", above_nyquist: bool = False,
                       trials: int = 8, seed: int = 0, margin: float = 6.0,
                       taps: Iterable[float] | torch.Tensor = GEOM_FILTER) -> float:
    """Accuracy / aliasing of :func:`warp_affine` on band-limited test patterns: the largest, over ``trials``
    random draws, of RMS(output − reference) / RMS(sinusoid), taken over the output pixels whose source
    position lies at least ``margin`` pixels inside the input and which are ``margin`` pixels inside the
    output (mirror padding makes the borders differ from a pure sinusoid).

    Each trial draws a sinusoid cos(2π k·u + φ) (random direction and phase) and an affine map with a random
    rotation U(−π, π), anisotropy 2^U(−0.3, 0.3) and translation U(−3.7, 3.7) pixels (fractional). The
    warped image is the sinusoid cos(2π (Aᵀk)·u + 2π k·t + φ) for the sampling map u ↦ A u + t:

    - ``above_nyquist=False`` (passband): |k| = ``freq`` cycles/pixel, isotropic scale 2^U(−0.5, 0.5), redrawn
      until |Aᵀk| ≤ ``freq`` too. Reference: the transformed sinusoid (error = passband droop, interpolation
      error and aliasing together).
    - ``above_nyquist=True`` (stopband): |k| ~ U(0.2, 0.35) and an isotropic zoom-out chosen so that the
      transformed frequency lies above the output's Nyquist frequency, max(|(Aᵀk)ₓ|, |(Aᵀk)ᵧ|) ~ U(0.7, 0.95)
      cycles/pixel. An ideal resampler outputs 0 there; a naive one (sampling without the low-pass) folds the
      sinusoid back at full amplitude to 0.05–0.3 cycles/pixel. Reference 0: the value is the leaked share.
    """
    g = torch.Generator().manual_seed(seed)
    u = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    half = size / 2 - margin
    worst = 0.0
    done = 0
    while done < trials:
        r = torch.rand(8, generator=g, dtype=torch.float64).tolist()
        theta = (r[0] * 2 - 1) * math.pi
        a = 2 ** ((r[2] * 2 - 1) * 0.3)
        tx, ty = (r[3] * 2 - 1) * 3.7, (r[4] * 2 - 1) * 3.7
        phi0, d = r[5] * 2 * math.pi, r[6] * 2 * math.pi
        c, sn = math.cos(theta), math.sin(theta)
        direction = torch.tensor([math.cos(d), math.sin(d)], dtype=torch.float64)

        def sampling_map(s: float) -> torch.Tensor:
            # Forward map (input -> output): translate · rotate · diag(s a, s / a); the warp samples its inverse.
            fwd = torch.tensor([[c * s * a, -sn * s / a, tx], [sn * s * a, c * s / a, ty], [0, 0, 1]],
                               dtype=torch.float64)
            return torch.linalg.inv(fwd)

        if above_nyquist:
            k = direction * (0.2 + 0.15 * r[1])
            target = 0.7 + 0.25 * r[7]
            s = float((sampling_map(1.0)[:2, :2].T @ k).abs().max()) / target
            inv = sampling_map(s)
        else:
            k = direction * freq
            inv = sampling_map(2 ** (r[1] - 0.5))
            if float((inv[:2, :2].T @ direction).norm()) > 1:
                continue
        sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
        sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
        valid = (sx.abs() <= half) & (sy.abs() <= half) & (xx.abs() <= half) & (yy.abs() <= half)
        if int(valid.sum()) < 64:
            continue
        done += 1
        img = torch.cos(2 * math.pi * (k[0] * xx + k[1] * yy) + phi0)
        out = warp_affine(img[None, None].float(), inv[None].float(), mode=mode, taps=taps)[0, 0].double()
        ko = inv[:2, :2].T @ k
        phase = 2 * math.pi * (k[0] * inv[0, 2] + k[1] * inv[1, 2]) + phi0
        ref = torch.zeros_like(out) if above_nyquist else torch.cos(2 * math.pi * (ko[0] * xx + ko[1] * yy) + phase)
        err = (out - ref)[valid].square().mean().sqrt() / math.sqrt(0.5)
        worst = max(worst, float(err))
    return worst


def test_geom_aliasing_bound():
    """Measured bound of the band-limited warp (:func:`measure_geom_error`, 64×64 band-limited sinusoids, random
    rotation, scale 2^U(−0.5, 0.5), anisotropy 2^U(−0.3, 0.3), fractional translation, interior pixels):

    - passband: RMS error against the analytically transformed sinusoid ≤ 1.5 % at 0.1 cycles/pixel and
      ≤ 3.5 % at 0.25 cycles/pixel (half of Nyquist) with bicubic sampling (measured 1.1 % / 2.8 %);
      ≤ 7 % at 0.25 with bilinear (measured 5.4 %, mostly blur);
    - stopband: sinusoids the transform pushes to 0.7–0.95 cycles/pixel (above Nyquist) leak ≤ 3.5 % of their
      RMS (measured 2.8 %), where sampling without the low-pass folds them back at ≈ 100 %.
    """
    assert measure_geom_error(freq=0.1, trials=12) <= 0.015
    assert measure_geom_error(freq=0.25, trials=12) <= 0.035
    assert measure_geom_error(freq=0.25, trials=12, mode="bilinear") <= 0.07
    assert measure_geom_error(above_nyquist=True, trials=12) <= 0.035

    # The same stopband pattern through grid_sample alone (no low-pass) aliases at full amplitude.
    u = torch.arange(64, dtype=torch.float64) + 0.5 - 32
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    img = torch.cos(2 * math.pi * 0.3 * xx)[None, None].float()
    s = 0.3 / 0.8  # zoom out so that the sinusoid lands at 0.8 cycles/pixel
    grid = torch.stack([(xx / s) / 32, yy / s / 32], dim=-1)[None].float()
    naive = F.grid_sample(img, grid, mode="bicubic", align_corners=False)
    filtered = warp_affine(img, torch.tensor([[[1 / s, 0, 0], [0, 1 / s, 0], [0, 0, 1]]]))
    sl = slice(22, 42)  # |x| ≤ 10 pixels: the sources lie inside the input
    assert naive[..., sl, sl].square().mean().sqrt() / math.sqrt(0.5) > 0.8
    assert filtered[..., sl, sl].square().mean().sqrt() / math.sqrt(0.5) < 0.035


def test_color_transforms_semantics():
    torch.manual_seed(8)
    x = smooth_images(32, 3, 8)
    mean = lambda t: t.mean(dim=1)
    chroma = lambda t: (t - t.mean(dim=1, keepdim=True)).norm(dim=1)
    y = AugmentPipe(hue=1, p=1.0)(x)  # rotation about the luma axis
    assert torch.allclose(mean(y), mean(x), atol=1e-5) and torch.allclose(chroma(y), chroma(x), atol=1e-5)
    assert changed(y, x).all()
    y = AugmentPipe(saturation=1, p=1.0)(x)
    assert torch.allclose(mean(y), mean(x), atol=1e-5)
    y = AugmentPipe(lumaflip=1, p=1.0)(x)
    flipped = changed(y, x)
    assert 0 < int(flipped.sum()) < 32
    assert torch.allclose(mean(y[flipped]), -mean(x[flipped]), atol=1e-5)
    assert torch.allclose(chroma(y), chroma(x), atol=1e-5)
    d = AugmentPipe(brightness=1, p=1.0)(x) - x  # one constant offset per image
    assert torch.allclose(d, d[:, :1, :1, :1].expand_as(d), atol=1e-6)


def test_grayscale_color_only_luma_type():
    torch.manual_seed(9)
    x = smooth_images(16, 1, 8)
    assert torch.equal(AugmentPipe(hue=1, saturation=1, p=1.0)(x), x)
    y = AugmentPipe.from_name("color", p=1.0)(x)
    assert y.shape == x.shape and changed(y, x).all()
    y = AugmentPipe(lumaflip=1, p=1.0)(x)
    flipped = changed(y, x)
    assert torch.equal(y[flipped], -x[flipped])


def test_filter_bank():
    bands = band_filters()
    delta = torch.zeros(bands.shape[1])
    delta[bands.shape[1] // 2] = 1
    assert torch.allclose(bands.sum(0), delta, atol=1e-6)
    n = torch.arange(bands.shape[1]) - bands.shape[1] // 2
    resp = lambda f: (bands * torch.cos(2 * math.pi * f * n)).sum(1)  # zero-phase frequency response
    for i, f in enumerate((0.0, 0.088, 0.177, 0.354)):  # (log-)centre of band i, cycles/sample
        r = resp(f)
        assert abs(r[i] - 1) < 0.05 and (r.abs().sum() - r[i].abs()) < 0.05


def test_dense_and_convolution_paths_agree(monkeypatch):
    """Small images are filtered with dense matrices, large ones with convolutions: same results."""
    import stylegan.training.augment.filters as aug

    x = smooth_images(3, 3, 24).double()
    outs = []
    for dense_max in (256, 8):
        monkeypatch.setattr(aug, "DENSE_MAX", dense_max)
        torch.manual_seed(14)
        outs.append(AugmentPipe(scale=1, rotate=1, imgfilter=1, p=1.0)(x))
    assert torch.allclose(outs[0], outs[1], atol=1e-10)


def test_noise_and_cutout():
    torch.manual_seed(10)
    x = torch.full((200, 3, 16, 16), 0.5)
    y = AugmentPipe(cutout=1, p=1.0)(x)
    zero = (y == 0).all(dim=1).float().mean(dim=(1, 2))
    assert zero.max() <= 0.25 + 1e-6 and zero.mean() > 0.1  # a square of half the size, partly off-image
    y = AugmentPipe(noise=1, p=1.0)(x)
    sigma = (y - x).std(dim=(1, 2, 3))
    assert 0.05 < sigma.mean() < 0.11  # E|N(0, 0.1²)| = 0.1·sqrt(2/π) ≈ 0.08


def test_device_follows_input():
    pipe = AugmentPipe.from_name("bgcfnc", p=1.0)
    x = smooth_images(2)
    assert pipe(x).device == x.device
    if torch.cuda.is_available():
        pipe = pipe.cuda()
        xc = x.cuda().requires_grad_(True)
        y = pipe(xc)
        y.sum().backward()
        assert y.device == xc.device and xc.grad is not None


# ------------------------------------------------------------------------------------------------ controller


def test_ada_controller_moves_p():
    pipe = AugmentPipe.from_name("bgc")
    ada = AdaController(pipe, target=0.6, interval=4, ada_kimg=500)
    batch = 32
    for i in range(40):  # D overfits: every real gets a positive logit, r_t = 1
        adjusted = ada.update(torch.full((batch, 1), 3.0))
        assert adjusted == ((i + 1) % 4 == 0)
    step = batch * 4 / 500_000
    assert ada.rt == 1.0
    assert ada.p == pytest.approx(10 * step, abs=1e-12) and float(pipe.p) == pytest.approx(ada.p, abs=1e-7)
    for _ in range(8):  # r_t = 0.5 < target: p goes down
        ada.update(torch.tensor([1.0, 1.0, 1.0, -1.0] * (batch // 4)))
    assert ada.rt == 0.5 and ada.p == pytest.approx(8 * step, abs=1e-12)
    for _ in range(100):  # clamped at 0
        ada.update(-torch.ones(batch))
    assert ada.p == 0.0 and float(pipe.p) == 0.0


def test_ada_controller_rate_and_clamp():
    """With ada_kimg images of overfitting, p goes from 0 to 1; it never exceeds 1."""
    ada = AdaController(None, interval=4, ada_kimg=1)  # 1000 images from 0 to 1
    for _ in range(1000 // (25 * 4) * 4):
        ada.update(torch.ones(25))
    assert ada.p == pytest.approx(1.0)
    for _ in range(40):
        ada.update(torch.ones(25))
    assert ada.p == 1.0


def test_ada_controller_state_roundtrip():
    pipe = AugmentPipe.from_name("bgc")
    ada = AdaController(pipe, interval=4)
    g = torch.Generator().manual_seed(11)
    logits = [torch.randn(16, generator=g) + 0.8 for _ in range(30)]
    for t in logits[:13]:  # stop mid-interval: pending sums must survive
        ada.update(t)
    state = json.loads(json.dumps(ada.state_dict()))
    assert state == ada.state_dict() and state["batches_pending"] == 1 and state["count"] == 16
    pipe2 = AugmentPipe.from_name("bgc")
    ada2 = AdaController(pipe2, interval=4)
    ada2.load_state_dict(state)
    assert ada2.state_dict() == ada.state_dict() and float(pipe2.p) == float(pipe.p)
    for t in logits[13:]:
        ada.update(t)
        ada2.update(t)
    assert ada2.state_dict() == ada.state_dict() and ada.p > 0


def test_ada_controller_multiprocess_reduce():
    """With a reduce function that sums over (here: two identical) processes, r_t is global and the step counts
    every process's images."""
    calls = []

    def reduce_two(t):
        calls.append(t.clone())
        return t * 2

    ada = AdaController(None, interval=2, ada_kimg=500, reduce_fn=reduce_two)
    ada.update(torch.ones(8))
    ada.update(torch.ones(8))
    assert len(calls) == 1 and calls[0].tolist() == [16.0, 16.0]
    assert ada.p == pytest.approx(32 / 500_000, abs=1e-15)


# ------------------------------------------------------------------------------------------------ DiffAugment


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diffaugment_shape_and_grad(policy, channels):
    torch.manual_seed(12)
    x = smooth_images(8, channels, 16).requires_grad_(True)
    y = diff_augment(x, policy)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert changed(y.detach(), x.detach()).any()
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_diffaugment_semantics():
    torch.manual_seed(13)
    x = torch.ones(64, 1, 16, 16)
    assert torch.equal(diff_augment(x, ""), x)
    y = diff_augment(x, "translation")
    # Shifts of at most 2 pixels (1/8 of 16): the central 12×12 is never uncovered, the rest is 0 or 1.
    assert torch.equal(y[..., 2:-2, 2:-2], x[..., 2:-2, 2:-2]) and ((y == 0) | (y == 1)).all()
    assert (y == 0).any()
    y = diff_augment(x, "cutout")
    frac = (y == 0).float().mean(dim=(1, 2, 3))
    assert frac.max() <= 0.25 and frac.mean() > 0.1
    with pytest.raises(ValueError):
        diff_augment(x, "color,flip")
    assert torch.equal(DiffAugment("")(x), x)


@pytest.mark.parametrize("size", [24, 40, 600])  # both executions: dense matrix product and convolution
def test_augmentation_fir_resampling_agrees_with_nn_upfirdn(size):
    """The augmentation's separable 2x FIR resampling (fast paths of its own) equals the networks' upfirdn2d."""
    from stylegan.nn.upfirdn import upfirdn2d, upsample2d
    from stylegan.training.augment import GEOM_FILTER, fir_down2, fir_up2

    f = torch.tensor(GEOM_FILTER, dtype=torch.float64)
    x = torch.randn(2, 3, min(size, 20), size, dtype=torch.float64)  # at least the 16 taps down needs
    torch.testing.assert_close(fir_up2(x, f), upsample2d(x, f, up=2), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fir_down2(x, f), upfirdn2d(x, f, down=2), rtol=1e-10, atol=1e-10)

"""Building blocks against formulas and float64 references."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.nn import (EqualizedConv2d, EqualizedLinear, MinibatchStd, ModulatedConv2d, NoiseInjection,
                         bias_act, conv2d_resample, downsample2d, modulated_conv2d, normalize_2nd_moment,
                         setup_filter, upfirdn2d, upsample2d)
from stylegan.nn.modconv import modulate_weights


def naive_upfirdn2d(x, f2d, up, down, pad, gain):
    """Direct float64 loops over the definition: zero-insert, pad, true 2-D convolution, subsample."""
    x = x.double().numpy()
    f2d = f2d.double().numpy() * gain
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    u = np.pad(u, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    u = u[:, :, max(-py0, 0):u.shape[2] - max(-py1, 0), max(-px0, 0):u.shape[3] - max(-px1, 0)]
    kh, kw = f2d.shape
    oh, ow = u.shape[2] - kh + 1, u.shape[3] - kw + 1
    out = np.zeros((n, c, oh, ow))
    ff = f2d[::-1, ::-1]
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = (u[:, :, i:i + kh, j:j + kw] * ff).sum(axis=(2, 3))
    return torch.from_numpy(out[:, :, ::down, ::down])


@pytest.mark.parametrize("up,down,pad,taps", [
    (1, 1, (1, 1, 1, 1), (1, 3, 3, 1)),
    (2, 1, (2, 1, 2, 1), (1, 3, 3, 1)),
    (1, 2, (1, 1, 1, 1), (1, 3, 3, 1)),
    (1, 1, (2, 0, -1, 1), (1, 2, 5)),  # asymmetric filter, negative (cropping) pad
    (3, 2, (1, 2, 0, 3), (1, 2, 5)),
    (1, 2, (2, 2, 0, 0), (1, 2, 5)),  # symmetric per axis: padding done by the convolutions
    (1, 1, (0, 0, 3, 3), (1, 2, 5)),
    (2, 1, (1, 1, 1, 1), (1, 3, 3, 1)),  # zero insertion, then padding by the convolutions
])
def test_upfirdn2d_matches_float64_definition(up, down, pad, taps):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 6)
    f = setup_filter(taps)
    ref = naive_upfirdn2d(x, torch.outer(f, f), up, down, pad, gain=up * up)
    out = upfirdn2d(x, f, up=up, down=down, padding=pad, gain=up * up)
    assert out.shape == ref.shape
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


def test_resampling_sizes_and_dc_gain():
    f = setup_filter()
    assert torch.outer(f, f).sum().item() == pytest.approx(1.0)
    x = torch.ones(1, 2, 8, 8)
    up, down = upsample2d(x, f), downsample2d(x, f)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    # A constant image stays constant away from the zero-padded borders.
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.ones_like(up[..., 2:-2, 2:-2]))
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.ones_like(down[..., 1:-1, 1:-1]))


@pytest.mark.parametrize("k", [1, 3])
def test_conv2d_resample_up_is_conv_of_upsampled(k):
    """Upsampling conv = zero-upsample, true convolution with w, FIR (all linear shift-invariant; compare
    away from the borders)."""
    torch.manual_seed(1)
    x, w, f = torch.randn(1, 4, 8, 8).double(), torch.randn(5, 4, k, k).double(), setup_filter().double()
    out = conv2d_resample(x, w, f, up=2, padding=k // 2)
    assert out.shape == (1, 5, 16, 16)
    u = upfirdn2d(x, None, up=2)  # zero insertion only
    u = F.conv2d(F.pad(u, [k - 1] * 4), w.flip([2, 3]))  # full true convolution
    ref = upfirdn2d(u, f, padding=0, gain=4)
    off = (ref.shape[-1] - 16) // 2
    torch.testing.assert_close(out[..., 4:-4, 4:-4], ref[..., off + 4:off + 12, off + 4:off + 12])


def test_conv2d_resample_down_is_filter_then_strided_conv():
    torch.manual_seed(2)
    x, w, f = torch.randn(2, 3, 16, 16).double(), torch.randn(6, 3, 3, 3).double(), setup_filter().double()
    out = conv2d_resample(x, w, f, down=2, padding=1)
    ref = F.conv2d(upfirdn2d(x, f, padding=2), w, stride=2)
    assert out.shape == (2, 6, 8, 8)
    torch.testing.assert_close(out, ref)


def test_bias_act_formula_and_clamp():
    x = torch.tensor([[-2.0, 0.5, 3.0]])
    b = torch.tensor([1.0, -1.0, 0.0])
    out = bias_act(x, b, act="lrelu")
    ref = torch.tensor([[-0.2, -0.1, 3.0]]) * math.sqrt(2)
    torch.testing.assert_close(out, ref)
    assert bias_act(x * 100, None, act="linear", clamp=5).abs().max() == 5
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(x, act="relu6")


def test_equalized_linear_runtime_scaling():
    torch.manual_seed(0)
    layer = EqualizedLinear(8, 4, lr_mul=0.01, bias_init=0.5)
    x = torch.randn(3, 8)
    w = layer.weight * 0.01 / math.sqrt(8)
    torch.testing.assert_close(layer(x), x @ w.t() + layer.bias * 0.01)
    torch.testing.assert_close(layer.bias * 0.01, torch.full([4], 0.5))
    # Stored weights are N(0, 1) / lr_mul: their std is about 100.
    assert 50 < EqualizedLinear(512, 512, lr_mul=0.01).weight.std().item() < 200


def test_equalized_conv_keeps_unit_variance():
    torch.manual_seed(0)
    conv = EqualizedConv2d(256, 256, 3, activation="linear")
    y = conv(torch.randn(4, 256, 16, 16))
    assert 0.9 < y[..., 1:-1, 1:-1].std().item() < 1.1


def test_demodulated_weights_have_unit_norm_per_output_channel():
    torch.manual_seed(0)
    w = modulate_weights(torch.randn(6, 5, 3, 3), torch.randn(4, 5) * 3, demodulate=True)
    norms = w.square().sum(dim=[2, 3, 4]).sqrt()
    torch.testing.assert_close(norms, torch.ones(4, 6))


def reference_modconv(x, weight, styles, demodulate):
    """Float64, one sample at a time, directly from the formulas."""
    out = []
    for xi, si in zip(x.double(), styles.double()):
        w = weight.double() * si.reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        out.append(F.conv2d(xi[None], w, padding=weight.shape[-1] // 2))
    return torch.cat(out)


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_reference_and_both_executions_agree(demodulate):
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 8, 9, 9), torch.randn(7, 8, 3, 3), torch.randn(3, 8)
    ref = reference_modconv(x, weight, styles, demodulate)
    for fused in (True, False):
        out = modulated_conv2d(x, weight, styles, demodulate=demodulate, padding=1, fused=fused)
        torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv_layer_fused_equals_shared_weight(up):
    torch.manual_seed(0)
    layer = ModulatedConv2d(16, 8, 32, up=up, noise_resolution=8 * up)
    with torch.no_grad():
        layer.noise.strength.fill_(0.3)
    x, w = torch.randn(4, 16, 8, 8), torch.randn(4, 32)
    a = layer(x, w, noise_mode="const", fused=True)
    b = layer(x, w, noise_mode="const", fused=False)
    assert a.shape == (4, 8, 8 * up, 8 * up)
    assert (a - b).abs().max().item() <= 1e-5 * max(1.0, a.abs().max().item())


def test_noise_modes():
    torch.manual_seed(0)
    noise = NoiseInjection(8)
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(noise(x, "none"), x)
    assert torch.equal(noise(x, "const"), x)  # strength starts at 0
    with torch.no_grad():
        noise.strength.fill_(0.5)
    torch.testing.assert_close(noise(x, "const"), x + 0.5 * noise.const)
    assert not torch.equal(noise(x, "random"), noise(x, "random"))
    torch.testing.assert_close(noise(x, "random", noise=torch.zeros(1, 1, 8, 8)), x)
    with pytest.raises(ValueError, match="unknown noise mode"):
        noise(x, "fixed")
    per_channel = NoiseInjection(8, channels=4)
    assert per_channel.strength.shape == (4,)
    assert per_channel(x, "const").shape == x.shape


def test_minibatch_std_value():
    torch.manual_seed(0)
    x = torch.randn(8, 6, 4, 4)
    y = MinibatchStd(group_size=4, num_channels=1)(x)
    assert y.shape == (8, 7, 4, 4)
    for n in range(8):
        group = x[n % 2::2]  # sample n is grouped with n ± 2, n ± 4, ...
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(y[n, 6], torch.full((4, 4), expected.item()))
    assert MinibatchStd(4, 2)(torch.randn(6, 6, 4, 4)).shape == (6, 8, 4, 4)  # N not a multiple of 4


def test_normalize_2nd_moment():
    x = torch.randn(5, 64) * 7
    y = normalize_2nd_moment(x)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(5), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_grid_sample_matches_torch_to_second_order(mode):
    """The image's first and second derivatives through :func:`stylegan.nn.grid_sample.grid_sample` equal
    PyTorch's own on the CPU (whose grid_sample has a double backward; CUDA's has none)."""
    import torch.nn.functional as F

    from stylegan.nn.grid_sample import grid_sample

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64, generator=g)
    grid = torch.rand(2, 5, 4, 2, dtype=torch.float64, generator=g) * 2.4 - 1.2  # beyond the border too
    kw = dict(mode=mode, padding_mode="reflection", align_corners=False)

    def second(fn):
        xi = x.clone().requires_grad_(True)
        y = fn(xi, grid, **kw)
        (gx,) = torch.autograd.grad((y.sin() * y).sum(), xi, create_graph=True)
        (ggx,) = torch.autograd.grad(gx.square().sum(), xi)
        return y.detach(), gx.detach(), ggx

    for a, b in zip(second(grid_sample), second(F.grid_sample)):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradgradcheck(lambda t: grid_sample(t, grid, **kw), (x.clone().requires_grad_(True),))
    with pytest.raises(ValueError, match="grid"):
        grid_sample(x, grid.clone().requires_grad_(True))


def test_from_rgb_of_a_one_channel_image_answers_in_the_preferred_layout():
    """A one-channel image is NCHW and NHWC at once; the features fromRGB makes of it must still be
    channels-last on the CPU, or every later layer of D runs in the slower layout."""
    from stylegan.cpu.layout import reference_layout
    from stylegan.nn.rgb import FromRGB

    layer = FromRGB(1, 8)
    img = torch.randn(2, 1, 8, 8)
    y = layer(img)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    with reference_layout():
        ref = layer(img)
    assert ref.is_contiguous() and torch.allclose(y, ref, atol=1e-6)

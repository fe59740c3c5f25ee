"""Every fast path equals the plain reference path, forward and gradients.

Fast paths: channels-last feature maps on the CPU (vs NCHW), the fused scale + noise + bias + activation pass
(vs the straightforward sequence of operations), the shared-weight modulated convolution at inference on the
CPU (vs the grouped one), convolutions and leaky ReLU whose higher derivatives are convolutions again (vs
PyTorch's own autograd, with gradcheck/gradgradcheck in float64), all checked on random inputs against float64
references where it matters.
"""
from __future__ import annotations

import contextlib
import math

import pytest
import torch

from stylegan.networks import build_networks
from stylegan.nn.activation import LRELU_SLOPE, bias_act, leaky_relu
from stylegan.nn.conv import conv2d, conv_transpose2d, reference_autograd
from stylegan.cpu.layout import memory_format_for, reference_layout
from stylegan.nn.modconv import ModulatedConv2d
from stylegan.nn.upfirdn import conv2d_resample, setup_filter
from stylegan.training.loss import path_lengths, r1_penalty


def _plain_bias_act(x, b, act, gain, clamp, scale, add):
    """The definition, one operation at a time."""
    if scale is not None:
        x = x * scale[:, :, None, None]
    if add is not None:
        x = x + add
    if b is not None:
        x = x + b[None, :, None, None]
    if act == "lrelu":
        x = torch.where(x >= 0, x, x * LRELU_SLOPE)
    x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


@pytest.mark.parametrize("act,gain,clamp", [("lrelu", math.sqrt(2), None), ("lrelu", math.sqrt(2) * math.sqrt(0.5), None),
                                             ("linear", 1.0, None), ("lrelu", 1.0, 0.5), ("linear", -2.0, None)])
@pytest.mark.parametrize("with_scale,with_add", [(True, True), (False, True), (True, False), (False, False)])
def test_fused_bias_act_equals_definition(act, gain, clamp, with_scale, with_add):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(3, 5, generator=g, dtype=torch.float64).add(0.5).requires_grad_() if with_scale else None
    add = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64).requires_grad_() if with_add else None
    out = bias_act(x, b, act=act, gain=gain, clamp=clamp, scale=scale, add=add)
    ref = _plain_bias_act(x, b, act, gain, clamp, scale, add)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    inputs = [t for t in (x, b, scale, add) if t is not None]
    go = torch.randn(out.shape, generator=g, dtype=torch.float64)
    got = torch.autograd.grad(out, inputs, go)
    want = torch.autograd.grad(ref, inputs, go)
    for a, w in zip(got, want):
        torch.testing.assert_close(a, w, rtol=1e-12, atol=1e-12)


def test_cpu_uses_channels_last_and_reference_layout_switches_it_off():
    assert memory_format_for(torch.device("cpu")) == torch.channels_last
    with reference_layout():
        assert memory_format_for(torch.device("cpu")) == torch.contiguous_format
    assert memory_format_for(torch.device("cpu")) == torch.channels_last


def _grads(module):
    return {k: p.grad.clone() for k, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("g_arch,d_arch", [("skip", "resnet"), ("orig", "orig"), ("resnet", "skip")])
def test_channels_last_networks_equal_nchw_reference(tiny, g_arch, d_arch):
    """G and D forward and all parameter gradients, fast layout vs plain NCHW, in training mode."""
    config = tiny(resolution=16, g_arch=g_arch, d_arch=d_arch)
    results = []
    for ref in (False, True):
        nets = build_networks(config, seed=3)
        G, D = nets["G"].train(), nets["D"].train()
        z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(1))
        noise = {k: torch.randn(4, 1, r, r, generator=torch.Generator().manual_seed(7))
                 for k, r in G.synthesis.noise_layers().items()}
        with (reference_layout() if ref else contextlib.nullcontext()):
            img = G.synthesis(G.mapping(z, None), noise=noise)
            if not ref:
                # (that the CPU layout is channels-last is asserted in the test above)
                assert img.shape == (4, 3, 16, 16)
            logits = D(img)
            (logits.square().sum() + img.mean()).backward()
        results.append((img.detach(), logits.detach(), _grads(G), _grads(D)))
    (img_f, log_f, gG_f, gD_f), (img_r, log_r, gG_r, gD_r) = results
    torch.testing.assert_close(img_f, img_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(log_f, log_r, rtol=1e-5, atol=1e-5)
    assert gG_f.keys() == gG_r.keys() and gD_f.keys() == gD_r.keys() and len(gG_f) > 10
    for k in gG_f:
        torch.testing.assert_close(gG_f[k], gG_r[k], rtol=1e-4, atol=1e-5, msg=f"G grad {k}")
    for k in gD_f:
        torch.testing.assert_close(gD_f[k], gD_r[k], rtol=1e-4, atol=1e-5, msg=f"D grad {k}")


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_layer_fast_epilogue_equals_float64_reference(up):
    """The layer (shared-weight execution with the folded demodulation/noise/bias/activation pass, channels-last
    input) against a float64 computation from the definition: per-sample weights, a true convolution of the
    zero-upsampled input and the FIR filter (conv2d_resample, itself checked against its definition in
    test_nn), noise, bias, leaky ReLU·sqrt(2)."""
    torch.manual_seed(0)
    layer = ModulatedConv2d(8, 6, w_dim=5, up=up, noise_resolution=6 * up)
    with torch.no_grad():
        layer.noise.strength.fill_(0.3)
        layer.bias.normal_()
    x = torch.randn(2, 8, 6, 6)
    w = torch.randn(2, 5)
    noise = torch.randn(2, 1, 6 * up, 6 * up)
    out = layer(x.contiguous(memory_format=torch.channels_last), w, fused=False, noise=noise)

    d = torch.float64
    styles = layer.affine(w).to(d)
    wt = layer.weight.detach().to(d)[None] * styles[:, None, :, None, None]
    wt = wt / wt.square().sum(dim=[2, 3, 4], keepdim=True).add(1e-8).sqrt()
    xs = x.to(d)
    ref = [conv2d_resample(xs[i:i + 1], wt[i], setup_filter().to(d), up=up, padding=1) for i in range(2)]
    ref = torch.cat(ref)
    ref = ref + noise.to(d) * 0.3 + layer.bias.detach().to(d)[None, :, None, None]
    ref = torch.where(ref >= 0, ref, ref * 0.2) * math.sqrt(2)
    assert out.shape == ref.shape
    # the same layer with the grouped execution agrees too (the two executions are tested elsewhere)
    torch.testing.assert_close(out.to(d), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer(x, w, fused=True, noise=noise), out, rtol=1e-5, atol=1e-5)


def test_cpu_inference_defaults_to_shared_weight_execution(tiny):
    G = build_networks(tiny(resolution=8), seed=0)["G_ema"].eval()
    calls = []
    import stylegan.nn.modconv as mc

    orig = mc.modulated_conv2d_unscaled

    def spy(*a, **k):
        calls.append(k["fused"])
        return orig(*a, **k)

    mc.modulated_conv2d_unscaled = spy
    try:
        with torch.no_grad():
            G(torch.randn(2, G.z_dim))
    finally:
        mc.modulated_conv2d_unscaled = orig
    assert len(calls) == 3 + 1 + 1 and not any(calls)  # conv1@4, conv0/conv1@8, toRGB@4 and @8


CONV_CASES = [
    (conv2d, (2, 4, 7, 7), (5, 4, 3, 3), dict(padding=1)),
    (conv2d, (2, 4, 8, 8), (5, 4, 3, 3), dict(stride=2)),
    (conv2d, (2, 4, 9, 8), (4, 1, 1, 4), dict(stride=(1, 2), groups=4)),  # the depthwise FIR pass
    (conv2d, (2, 4, 6, 6), (6, 2, 3, 3), dict(padding=(2, 1), dilation=2, groups=2)),
    (conv_transpose2d, (2, 4, 5, 5), (4, 3, 3, 3), dict(stride=2)),
    (conv_transpose2d, (2, 4, 5, 5), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    (conv_transpose2d, (2, 4, 5, 5), (4, 1, 3, 3), dict(stride=2, groups=4)),
]


@pytest.mark.parametrize("fn,x_shape,w_shape,kw", CONV_CASES)
def test_convolution_derivatives_of_every_order(fn, x_shape, w_shape, kw):
    """First and second derivatives by finite differences (float64), and values, first and second
    derivatives equal to PyTorch's own convolution."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(x_shape, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(w_shape, generator=g, dtype=torch.float64, requires_grad=True)

    def f(x, w):
        return fn(x, w, **kw)

    assert torch.autograd.gradcheck(f, (x, w))
    assert torch.autograd.gradgradcheck(f, (x, w))
    results = []
    for ref in (False, True):
        with (reference_autograd() if ref else contextlib.nullcontext()):
            y = f(x, w)
            (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
            gg = torch.autograd.grad(gx.square().sum(), (x, w))
        results.append((y, gx, *gg))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("create_graph", [False, True])
def test_convolution_gradient_keeps_the_channels_last_layout(create_graph):
    """A gradient that arrives in NCHW (the path-length noise image, 3 channels) leaves a channels-last
    feature map's convolution channels-last, equal to the plain gradient: a gradient in the other layout would
    carry it back through every layer it reaches."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 5, 5, generator=g).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(3, 8, 1, 1, generator=g, requires_grad=True)
    gy = torch.randn(2, 3, 5, 5, generator=g)
    assert gy.is_contiguous() and not gy.is_contiguous(memory_format=torch.channels_last)
    results = []
    for ref in (False, True):
        with (reference_autograd() if ref else contextlib.nullcontext()):
            gx, gw = torch.autograd.grad(conv2d(x, w), (x, w), gy, create_graph=create_graph)
        results.append((gx, gw))
        if not ref:
            assert gx.is_contiguous(memory_format=torch.channels_last) and not gx.is_contiguous()
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_leaky_relu_derivative_is_a_constant_mask():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(leaky_relu(x), torch.where(x >= 0, x, x * LRELU_SLOPE), rtol=0, atol=0)
    assert torch.autograd.gradcheck(leaky_relu, (x,))
    (gx,) = torch.autograd.grad(leaky_relu(x).sum(), x, create_graph=True)
    mask = torch.where(x > 0, torch.ones_like(x), torch.full_like(x, LRELU_SLOPE))
    torch.testing.assert_close(gx, mask, rtol=0, atol=0)
    # the second derivative is zero (a.e.) and the graph says so: nothing flows back to x
    assert not gx.requires_grad or torch.autograd.grad(gx.sum(), x, allow_unused=True)[0] is None


@pytest.mark.parametrize("g_arch,d_arch", [("skip", "resnet"), ("orig", "orig"), ("resnet", "skip")])
def test_r1_and_path_length_gradients_equal_pytorch_autograd(tiny, g_arch, d_arch):
    """The two double-backward phases: the R1 penalty's gradient w.r.t. every D parameter and the path-length
    penalty's w.r.t. every G parameter, fast derivatives vs PyTorch's own (plain layout; the operations
    themselves are compared in float64 above)."""
    config = tiny(resolution=16, g_arch=g_arch, d_arch=d_arch)
    results = []
    for ref in (False, True):
        nets = build_networks(config, seed=3)
        G, D = nets["G"].train(), nets["D"].train()
        g = torch.Generator().manual_seed(1)
        z = torch.randn(4, G.z_dim, generator=g)
        real = torch.randn(4, 3, 16, 16, generator=g).requires_grad_()
        noise = {k: torch.randn(4, 1, r, r, generator=g)
                 for k, r in G.synthesis.noise_layers().items()}
        torch.manual_seed(5)  # the path-length direction y
        with reference_layout(), (reference_autograd() if ref else contextlib.nullcontext()):
            r1_penalty(real, D(real)).sum().backward()
            ws = G.mapping(z, None)
            path_lengths(G.synthesis(ws, noise=noise), ws).sum().backward()
        results.append((_grads(G), _grads(D)))
    (gG_f, gD_f), (gG_r, gD_r) = results
    assert len(gG_f) > 10 and len(gD_f) > 10
    # Parameters that reach the penalty only through leaky ReLU's derivative (the last biases) get no gradient
    # on the fast path and an exact zero from PyTorch's formula.
    for fast, ref, name in ((gG_f, gG_r, "G"), (gD_f, gD_r, "D")):
        assert fast.keys() <= ref.keys()
        for k in ref:
            want = ref[k]
            got = fast.get(k, torch.zeros_like(want))
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=f"{name} grad {k}")


@pytest.mark.parametrize("channels,clamp,gain", [(1, None, 1.0), (3, 0.5, math.sqrt(0.5))])
def test_from_rgb_matrix_product_equals_the_convolution_in_float64(channels, clamp, gain):
    """fromRGB on the CPU is one matrix product written straight into channels-last features; against the
    plain NCHW convolution: the features, every parameter's gradient and R1's double backward (the gradient of
    a penalty on the image gradient), in float64."""
    from stylegan.nn.rgb import FromRGB

    layer = FromRGB(channels, 8, conv_clamp=clamp).double()
    with torch.no_grad():
        layer.bias.normal_()
    img = torch.randn(2, channels, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    results = []
    for ref in (False, True):
        layer.zero_grad(set_to_none=True)
        x = img.clone().requires_grad_(True)
        with (reference_layout() if ref else contextlib.nullcontext()):
            y = layer(x, gain=gain)
            assert y.is_contiguous(memory_format=torch.channels_last if not ref else torch.contiguous_format)
            (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
            (y.sum() + gx.square().sum()).backward()
        results.append((y.detach(), gx.detach(), x.grad, layer.weight.grad, layer.bias.grad))
    for fast, ref in zip(*results):
        torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)


def test_first_order_builds_pytorch_graphs_and_second_derivatives_stay_correct():
    from stylegan.nn.conv import first_order

    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    grads = []
    for once in (False, True):
        with first_order() if once else contextlib.nullcontext():
            y = leaky_relu(conv2d(x, w, padding=1))
            # PyTorch's own node (LeakyReluBackward0) inside the block, this package's (_LeakyReLUBackward) outside
            assert type(y.grad_fn).__name__.startswith("_") != once
            (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
            grads.append((gx.detach(), *torch.autograd.grad(gx.square().sum(), [x, w])))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", ["nonsaturating", "rpgan"])
def test_main_phase_gradients_equal_with_and_without_first_order_graphs(tiny, monkeypatch, loss):
    """The main phase (G's and D's adversarial steps) builds PyTorch's own graphs (differentiated once): every
    parameter's gradient equals that of the graphs of this package's autograd functions."""
    import stylegan.training.loss as L

    config = tiny(resolution=16)
    results = []
    for once in (True, False):
        if not once:
            monkeypatch.setattr(L, "first_order", contextlib.nullcontext)
        nets = build_networks(config, seed=3)
        G, D = nets["G"].train(), nets["D"].train()
        phases = L.make_loss(loss, G, D, style_mixing=0.0)
        g = torch.Generator().manual_seed(1)
        z, real = torch.randn(4, G.z_dim, generator=g), torch.randn(4, 3, 16, 16, generator=g)
        torch.manual_seed(5)  # the noise inputs
        phases.g_main(z, None, real_img=real)
        torch.manual_seed(6)
        phases.d_main(real, None, z, None)
        results.append((_grads(G), _grads(D)))
    for fast, ref in zip(*results):
        assert fast.keys() == ref.keys() and len(fast) > 10
        for k in fast:
            torch.testing.assert_close(fast[k], ref[k], rtol=1e-5, atol=1e-6, msg=k)


def test_wgan_gp_main_step_keeps_the_twice_differentiable_graphs(tiny, monkeypatch):
    """WGAN-GP's gradient penalty differentiates D twice inside its main step: that step must not switch to the
    first-order graphs."""
    import stylegan.nn.conv as C
    import stylegan.training.loss as L

    seen = []
    real_d = L.TrainingPhases.run_D

    def run_D(self, img, c):
        seen.append(C.fast_autograd_enabled())
        return real_d(self, img, c)
    monkeypatch.setattr(L.TrainingPhases, "run_D", run_D)
    nets = build_networks(tiny(resolution=16), seed=3)
    phases = L.make_loss("wgangp", nets["G"].train(), nets["D"].train())
    z, real = torch.randn(4, nets["G"].z_dim), torch.randn(4, 3, 16, 16)
    phases.d_main(real, None, z, None)
    assert seen and all(seen)
    seen.clear()
    L.make_loss("nonsaturating", nets["G"], nets["D"]).d_main(real, None, z, None)
    assert seen and not any(seen)

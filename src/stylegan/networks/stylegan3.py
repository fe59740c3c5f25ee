"""The alias-free generator (StyleGAN3, Karras et al. 2021), configurations T (translation equivariant, 3×3
convolutions, separable filters) and R (rotation equivariant, 1×1 convolutions, radial downsampling filters).

The synthesis network is a Fourier-feature input followed by ``num_layers`` layers and a toRGB layer; there
are no noise inputs and no skips. Layer ``i`` (0…L, L = ``num_layers``, the toRGB last) has, with
``e_i = min(i / (L − num_critical), 1)`` and the last cutoff ``fc_L = res / 2``:

- cutoff ``fc_i = fc_0 · (fc_L / fc_0)^e_i`` (fc_0 = 2),
- stopband ``ft_i = ft_0 · (ft_L / ft_0)^e_i`` (ft_0 = 2^2.1, ft_L = fc_L · 2^0.3),
- sampling rate ``s_i = 2^ceil(log2(min(2 ft_i, res)))``,
- transition half-width ``h_i = max(ft_i, s_i / 2) − fc_i``,
- size ``s_i + 2 · margin`` pixels (margin 10), except the last two layers: ``res`` (critically sampled),
- channels ``min((cbase / 2) / fc_i, cmax)`` (the toRGB layer: the image channels).

A layer modulates and demodulates its convolution with the style ``affine(w)``, scaled by the inverse square
root of a running mean of its input's mean square (``magnitude_ema``), then applies the filtered leaky ReLU
(:mod:`stylegan.nn.filtered_lrelu`): upsampling to ``2 · max(s_in, s_out)`` with a Kaiser-windowed sinc of
cutoff ``fc_in`` and width ``2 h_in``, leaky ReLU, downsampling to ``s_out`` with cutoff ``fc_out``
(:mod:`stylegan.nn.filter_design`). The output is the toRGB layer's, times 0.25.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from stylegan.config import ALIAS_FREE_ARCHS, ALIAS_FREE_LAYERS, GeneratorConfig
from stylegan.cpu.layout import memory_format_for
from stylegan.networks.mapping import MappingNetwork
from stylegan.nn.conv import conv2d
from stylegan.nn.equalized import EqualizedLinear
from stylegan.nn.filter_design import lowpass_filter
from stylegan.nn.filtered_lrelu import filtered_lrelu

#: Number of synthesis layers before toRGB, and how many of the last layers are critically sampled.
NUM_LAYERS, NUM_CRITICAL = ALIAS_FREE_LAYERS, 2
MARGIN = 10
FIRST_CUTOFF, FIRST_STOPBAND, LAST_STOPBAND_REL = 2.0, 2 ** 2.1, 2 ** 0.3
#: Taps of the up/down filters per unit of the resampling factor; the leaky ReLU's temporary upsampling.
FILTER_SIZE, LRELU_UPSAMPLING = 6, 2
OUTPUT_SCALE = 0.25
#: Half-life, in images, of the layers' input magnitude averages: β = 0.5^(n / 20000) for an update with n
#: images (the authors' 0.5^(batch / 20k) per minibatch).
MAGNITUDE_EMA_IMAGES = 20_000


def layer_schedule(resolution: int, img_channels: int, cbase: int, cmax: int,
                   num_layers: int = NUM_LAYERS, num_critical: int = NUM_CRITICAL) -> dict[str, np.ndarray]:
    """Per layer (input, then layers 0…num_layers): cutoff, stopband, sampling rate, half-width, size and
    channels, by the formulas of the module docstring. Index 0 is the Fourier input's (and layer 0's)."""
    last_cutoff = resolution / 2
    last_stopband = last_cutoff * LAST_STOPBAND_REL
    e = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1.0)
    cutoffs = FIRST_CUTOFF * (last_cutoff / FIRST_CUTOFF) ** e
    stopbands = FIRST_STOPBAND * (last_stopband / FIRST_STOPBAND) ** e
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + MARGIN * 2
    sizes[-2:] = resolution
    channels = np.rint(np.minimum((cbase / 2) / cutoffs, cmax))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, rates=rates, half_widths=half_widths,
                sizes=sizes.astype(int), channels=channels.astype(int))


def input_transform(translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> torch.Tensor:
    """The 3×3 matrix for :attr:`FourierInput.transform` that translates the image by ``translate`` (in image
    widths, x right and y down) and rotates it by ``rotate`` degrees (counterclockwise as displayed, about the
    image centre): the inverse of the forward map
    ``[[cos, sin, tx], [−sin, cos, ty], [0, 0, 1]]``, since the input samples its signal at the transformed
    positions."""
    a = math.radians(rotate)
    m = torch.tensor([[math.cos(a), math.sin(a), translate[0]], [-math.sin(a), math.cos(a), translate[1]],
                      [0.0, 0.0, 1.0]], dtype=torch.float64)
    return torch.linalg.inv(m).float()


def has_input_transform(G: nn.Module) -> bool:
    """Whether ``G`` can translate and rotate its output: an alias-free generator, with a Fourier input."""
    return isinstance(getattr(getattr(G, "synthesis", None), "input", None), FourierInput)


def set_input_transform(G: nn.Module, translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> None:
    """Set the Fourier input's ``transform`` of an alias-free generator to :func:`input_transform`; a clear
    ValueError for any other network, or for a nan or infinite amount (a blank image otherwise)."""
    if not has_input_transform(G):
        raise ValueError("translating or rotating the output needs a StyleGAN3 (alias-free) network; this one has "
                         "no Fourier-feature input")
    if not all(math.isfinite(v) for v in (*translate, rotate)):
        raise ValueError(f"translate {tuple(translate)} and rotate {rotate} must be finite numbers")
    inp = G.synthesis.input
    with torch.no_grad():
        inp.transform.copy_(input_transform(translate, rotate).to(inp.transform))


class FourierInput(nn.Module):
    """Fourier features: ``channels`` sinusoids of random frequencies (radii up to ``bandwidth``) and random
    phases, sampled on a ``size²`` grid at ``sampling_rate``, then mixed by a learned ``channels × channels``
    matrix. ``affine(w)`` predicts a rotation (cos, sin) and a translation, initialized to the identity;
    after them the user matrix ``transform`` is applied. Frequencies beyond the bandwidth fade out linearly
    up to the Nyquist rate.

    w_dim: size of w. channels: number of Fourier features. size: output pixels per side.
    sampling_rate, bandwidth: of the output grid and of the frequencies.
    """

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.channels, self.size = channels, int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = EqualizedLinear(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def _transforms(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """[N, 3, 3]: the predicted rotation and translation, then the user transform (``transform``, else the
        buffer)."""
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        n = w.shape[0]
        m_r = torch.eye(3, device=w.device, dtype=w.dtype).repeat(n, 1, 1)
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=w.device, dtype=w.dtype).repeat(n, 1, 1)
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        user = self.transform if transform is None else transform
        return m_r @ m_t @ user.to(w.dtype).unsqueeze(0)

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """Features [N, C, size, size] for w [N, w_dim]; ``transform`` [3, 3]: the user matrix instead of the
        buffer (an input of an exported graph)."""
        transforms = self._transforms(w, transform)
        freqs = self.freqs.to(w.dtype).unsqueeze(0)
        phases = self.phases.to(w.dtype).unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]  # [N, C, 2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        pos = (torch.arange(self.size, device=w.device, dtype=w.dtype) + 0.5 - self.size / 2) / self.sampling_rate
        # x[n, h, w, c] = sin(2π (px fx + py fy + φ)) · amplitude
        x = pos.reshape(1, 1, -1, 1) * freqs[:, None, None, :, 0] + pos.reshape(1, -1, 1, 1) * freqs[:, None, None, :, 1]
        x = torch.sin((x + phases[:, None, None, :]) * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight.to(w.dtype) / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, size={self.size}, rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"


def _exporting() -> bool:
    """Whether ``torch.export`` is tracing (False on a PyTorch too old to have ``torch.compiler.is_exporting``,
    which cannot export with a free batch anyway)."""
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting and is_exporting())


def modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                   input_gain: torch.Tensor, padding: int) -> torch.Tensor:
    """Modulated convolution as one grouped convolution: ``w'_{n,o,i} = w_{o,i} · s_{n,i} · g`` (``g`` the input
    gain), demodulated by ``(Σ_{i,k} w'² + 1e-8)^−½`` per output channel. Before demodulation the weight is
    normalized by its RMS per output channel and the styles by their RMS (which only changes the
    epsilon's effect). While ``torch.export`` traces it (ONNX export), the same function without a group per
    sample (:func:`modulated_conv_shared`), so that the batch size stays free in the graph; so too on the CPU
    with channels-last feature maps (:mod:`stylegan.cpu.layout`), where oneDNN runs the shared weight's one
    convolution faster than a group per sample."""
    n, in_ch = x.shape[:2]
    out_ch, _, kh, kw = weight.shape
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    if _exporting() or memory_format_for(x.device) == torch.channels_last:
        return modulated_conv_shared(x, weight, styles, demodulate, input_gain, padding)
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, out_ch, 1, 1, 1)
    w = w * input_gain.reshape(1, 1, 1, 1, 1)
    y = conv2d(x.reshape(1, n * in_ch, *x.shape[2:]), w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype),
               padding=padding, groups=n)
    return y.reshape(n, out_ch, *y.shape[2:])


def modulated_conv_shared(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                          input_gain: torch.Tensor, padding: int) -> torch.Tensor:
    """:func:`modulated_conv` (after its RMS normalizations) with the shared weight: the input scaled by
    ``s_{n,i} · g``, one convolution, the output scaled by ``(Σ_{i,k} (w_{o,i,k} s_{n,i})² + 1e-8)^−½``."""
    scale = styles * input_gain
    x = x * scale.to(x.dtype).reshape(*scale.shape, 1, 1)
    if padding >= 2 and torch.is_grad_enabled() and weight.requires_grad:
        # oneDNN's weight gradient of a 3×3 convolution padded by 2 (a full convolution) runs 1.8x slower than
        # that of the same convolution on an input padded beforehand (CPU, 256 channels at 52²).
        x, padding = torch.nn.functional.pad(x, [padding] * 4), 0
    y = conv2d(x, weight.to(x.dtype), padding=padding)
    if demodulate:
        d = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
        y = y * d.to(x.dtype).reshape(*d.shape, 1, 1)
    return y


def layer_filters(in_rate: float, out_rate: float, in_cutoff: float, out_cutoff: float, in_half_width: float,
                  out_half_width: float, is_torgb: bool = False, radial: bool = False):
    """(up, down, up filter, down filter) of a layer: it works at ``2 · max(in_rate, out_rate)`` (toRGB: at
    its rate, no filters); each filter has 6 taps per unit of its factor, cutoff ``fc`` and transition band
    ``2 h`` (the down filter radial if ``radial``); a factor of 1 has no filter (None)."""
    tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else LRELU_UPSAMPLING)
    up, down = int(round(tmp_rate / in_rate)), int(round(tmp_rate / out_rate))
    up_taps = FILTER_SIZE * up if up > 1 and not is_torgb else 1
    down_taps = FILTER_SIZE * down if down > 1 and not is_torgb else 1
    return (up, down, lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_rate),
            lowpass_filter(down_taps, out_cutoff, out_half_width * 2, tmp_rate, radial=radial))


def _taps(f: torch.Tensor | None) -> int:
    return 1 if f is None else f.shape[0]


def schedule_layers(resolution: int, img_channels: int, cbase: int, cmax: int) -> list[dict]:
    """The arguments of each :class:`AliasFreeLayer` (0…NUM_LAYERS, toRGB last) from :func:`layer_schedule`:
    layer i goes from the rate, cutoff, size and channels of i − 1 (of the input for layer 0) to those of i."""
    s = layer_schedule(resolution, img_channels, cbase, cmax)
    out = []
    for i in range(NUM_LAYERS + 1):
        p = max(i - 1, 0)
        out.append(dict(in_channels=int(s["channels"][p]), out_channels=int(s["channels"][i]),
                        in_size=int(s["sizes"][p]), out_size=int(s["sizes"][i]), in_rate=s["rates"][p],
                        out_rate=s["rates"][i], in_cutoff=s["cutoffs"][p], out_cutoff=s["cutoffs"][i],
                        in_half_width=s["half_widths"][p], out_half_width=s["half_widths"][i],
                        is_torgb=i == NUM_LAYERS))
    return out


def designed_filters(cfg: GeneratorConfig) -> dict[int, tuple[torch.Tensor | None, torch.Tensor | None]]:
    """Layer index → (up filter, down filter) of the alias-free generator ``cfg``, without building it."""
    radial = cfg.arch == "stylegan3-r"
    out = {}
    for i, a in enumerate(schedule_layers(cfg.resolution, cfg.img_channels, cfg.cbase, cfg.cmax)):
        _, _, fu, fd = layer_filters(a["in_rate"], a["out_rate"], a["in_cutoff"], a["out_cutoff"], a["in_half_width"],
                                     a["out_half_width"], a["is_torgb"], radial and i < NUM_LAYERS - NUM_CRITICAL)
        out[i] = (fu, fd)
    return out


class AliasFreeLayer(nn.Module):
    """One synthesis layer: modulated convolution, then the filtered leaky ReLU between the sampling rates of
    its input and output (module docstring). The toRGB layer: a 1×1 convolution, modulated without
    demodulation (styles scaled by ``1/sqrt(in_channels)``), bias and clamp, no filters.

    w_dim: size of w. in_channels, out_channels: feature maps. in_size, out_size: pixels per side.
    in_rate, out_rate: sampling rates. in_cutoff, out_cutoff: cutoffs of the up and down filters.
    in_half_width, out_half_width: their transition half-widths. is_torgb: the last layer.
    kernel: convolution size (3 for T, 1 for R; toRGB always 1). radial: jinc downsampling filter (R, not in
    the critically sampled layers, which ``radial`` must then be False for). conv_clamp: clamp of the output
    (None: none). magnitude_ema_beta: decay of the input magnitude's running mean per update (None: a
    half-life of ``MAGNITUDE_EMA_IMAGES`` images, β = 0.5^(n / 20000) for an update with n images).
    """

    def __init__(self, w_dim: int, in_channels: int, out_channels: int, in_size: int, out_size: int,
                 in_rate: float, out_rate: float, in_cutoff: float, out_cutoff: float, in_half_width: float,
                 out_half_width: float, is_torgb: bool = False, kernel: int = 3, radial: bool = False,
                 conv_clamp: float | None = None, magnitude_ema_beta: float | None = None):
        super().__init__()
        self.is_torgb, self.conv_clamp = is_torgb, conv_clamp
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = int(in_size), int(out_size)
        self.kernel = 1 if is_torgb else kernel
        self.magnitude_ema_beta = magnitude_ema_beta
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, self.kernel, self.kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.up, self.down, up_filter, down_filter = layer_filters(in_rate, out_rate, in_cutoff, out_cutoff,
                                                                   in_half_width, out_half_width, is_torgb, radial)
        self.register_buffer("up_filter", up_filter, persistent=False)
        self.register_buffer("down_filter", down_filter, persistent=False)
        self.padding = self._padding(_taps(up_filter), _taps(down_filter))

    def _padding(self, up_taps: int, down_taps: int) -> tuple[int, int, int, int]:
        """Padding before the up filter so that the output has ``out_size`` samples, the sample positions
        shifted by the symmetric interpretation of the filters: ``total = (out − 1)·d + 1 − (in + k − 1)·u +
        taps_u + taps_d − 2``, ``lo = (total + u) // 2``, ``hi = total − lo``."""
        total = (self.out_size - 1) * self.down + 1 - (self.in_size + self.kernel - 1) * self.up
        total += up_taps + down_taps - 2
        lo = (total + self.up) // 2
        return (lo, total - lo, lo, total - lo)

    def forward(self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        if update_emas:
            with torch.no_grad():
                cur = x.detach().float().square().mean()
                beta = self.magnitude_ema_beta
                beta = 0.5 ** (x.shape[0] / MAGNITUDE_EMA_IMAGES) if beta is None else beta
                self.magnitude_ema.copy_(cur.lerp(self.magnitude_ema, beta))
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.kernel ** 2)
        gain = self.magnitude_ema.to(x.dtype).rsqrt()
        # Channels-last on the CPU: oneDNN's depthwise filter passes run 2-7x faster in it than in NCHW.
        x = x.contiguous(memory_format=memory_format_for(x.device))
        x = modulated_conv(x, self.weight.to(x.dtype), styles, not self.is_torgb, gain, self.kernel - 1)
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, up=self.up, down=self.down,
                              padding=self.padding, gain=1.0 if self.is_torgb else math.sqrt(2),
                              slope=1.0 if self.is_torgb else 0.2, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}@{self.in_size}, out={self.out_channels}@{self.out_size}, k={self.kernel}, "
                f"up={self.up}, down={self.down}, torgb={self.is_torgb}")


class AliasFreeSynthesis(nn.Module):
    """Fourier input, ``NUM_LAYERS`` alias-free layers and toRGB; ``num_ws = NUM_LAYERS + 2`` (the input's w,
    then one per layer).

    w_dim: size of w. resolution, img_channels: of the image. cbase, cmax: channel formula (module
    docstring). kernel: 3 (T) or 1 (R). radial: radial downsampling filters (R). conv_clamp: output clamp.
    magnitude_ema_beta: decay of the layers' input magnitude averages (None: see :class:`AliasFreeLayer`).
    """

    def __init__(self, w_dim: int, resolution: int, img_channels: int, cbase: int, cmax: int, kernel: int = 3,
                 radial: bool = False, conv_clamp: float | None = None, magnitude_ema_beta: float | None = None):
        super().__init__()
        self.w_dim, self.resolution, self.img_channels = w_dim, resolution, img_channels
        self.num_ws = NUM_LAYERS + 2
        s = layer_schedule(resolution, img_channels, cbase, cmax)
        self.input = FourierInput(w_dim, int(s["channels"][0]), int(s["sizes"][0]), s["rates"][0], s["cutoffs"][0])
        self.layers = nn.ModuleList(
            AliasFreeLayer(w_dim, **a, kernel=kernel, radial=radial and i < NUM_LAYERS - NUM_CRITICAL,
                           conv_clamp=conv_clamp, magnitude_ema_beta=magnitude_ema_beta)
            for i, a in enumerate(schedule_layers(resolution, img_channels, cbase, cmax)))

    def noise_layers(self) -> dict:
        """No noise inputs (the interface of the StyleGAN2 synthesis network)."""
        return {}

    def noise_shapes(self) -> dict:
        """No noise images (the interface of the StyleGAN2 synthesis network)."""
        return {}

    def style_affines(self) -> list[tuple[int, nn.Module]]:
        """(ws index, affine layer of that w): the input's (ws 0: its rotation and translation), then each
        layer's (ws 1…, toRGB last)."""
        return [(0, self.input.affine)] + [(i + 1, layer.affine) for i, layer in enumerate(self.layers)]

    def set_magnitude_ema_beta(self, beta: float | None) -> None:
        """The decay of every layer's magnitude average per update (None: a half-life of 20k images)."""
        if beta is not None and not 0 <= beta <= 1:
            raise ValueError(f"magnitude EMA decay must be in [0, 1], got {beta}")
        for layer in self.layers:
            layer.magnitude_ema_beta = beta

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", update_emas: bool = False,
                transform: torch.Tensor | None = None, **_ignored) -> torch.Tensor:
        """Images [N, C, res, res] from ``ws`` [N, num_ws, w_dim]; ``transform``: the input's user matrix instead
        of its buffer. There are no noise inputs: ``noise_mode`` and the StyleGAN2 synthesis options
        (``fused``, ``force_fp32``) are accepted and ignored."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.float() if ws.dtype not in (torch.float32, torch.float64) else ws
        w = ws.unbind(dim=1)
        x = self.input(w[0], transform)
        for layer, wi in zip(self.layers, w[1:]):
            x = layer(x, wi, update_emas=update_emas)
        return x * OUTPUT_SCALE


class AliasFreeGenerator(nn.Module):
    """``G(z, c) → images`` with the alias-free synthesis network: the interface of
    :class:`stylegan.networks.generator.Generator` (``mapping``, ``synthesis``, ``num_ws``, truncation).
    ``cfg.arch`` is ``stylegan3-t`` (3×3 convolutions, separable filters) or ``stylegan3-r`` (1×1
    convolutions, radial downsampling filters). ``update_w_avg=True`` also updates the layers' magnitude
    averages, as the authors' ``update_emas`` does both.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        cfg.validate()
        if cfg.arch not in ALIAS_FREE_ARCHS:
            raise ValueError(f"not an alias-free generator configuration: arch {cfg.arch!r}")
        self.cfg = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.resolution, self.img_channels, self.img_shape = cfg.resolution, cfg.img_channels, cfg.img_shape
        rotation = cfg.arch == "stylegan3-r"
        self.synthesis = AliasFreeSynthesis(cfg.w_dim, cfg.resolution, cfg.img_channels, cfg.cbase, cfg.cmax,
                                            kernel=1 if rotation else 3, radial=rotation, conv_clamp=cfg.conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.c_dim, cfg.w_dim, num_ws=self.num_ws, num_layers=cfg.map_depth,
                                      lr_mul=cfg.map_lr_mul, w_avg_beta=cfg.w_avg_beta if cfg.map_depth > 0 else None)

    @property
    def current_resolution(self) -> int:
        return self.resolution

    @property
    def num_active_ws(self) -> int:
        return self.num_ws

    def set_growth(self, resolution: int, alpha: float) -> None:
        raise ValueError("the alias-free generator does not grow progressively")

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const", update_w_avg: bool = False,
                **synthesis_kwargs) -> torch.Tensor:
        if truncation_psi != 1 and self.mapping.w_avg is None:
            raise ValueError("truncation needs the average w of a mapping network; this generator has none")
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_w_avg=update_w_avg)
        return self.synthesis(ws, noise_mode=noise_mode, update_emas=update_w_avg, **synthesis_kwargs)

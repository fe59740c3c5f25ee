"""The authors' TensorFlow StyleGAN2 pickles, converted without TensorFlow.

The pickles are built here with the TF layout (HWIO kernels, [in, out] dense weights, mod_bias without the
+1, noise<i> variables, ...) and random values. The converted networks must match a float64 reference that
follows the TF code's computation on those variables directly: per-sample modulated kernels in HWIO,
``conv2d_transpose`` of the flipped kernel for upsampling, explicit FIR filtering and padding."""
import math

import numpy as np
import pytest
import torch

import stylegan
from stylegan.interop import InteropError, read_foreign
from test_interop_support import tf_pickle_bytes

F64 = torch.float64
FIR = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0


def nf(stage, fmap_base, fmap_max):
    return int(np.clip(int(fmap_base / 2.0 ** stage), 1, fmap_max))


def make_tf_variables(rng, res=16, C=3, latent=8, dlatent=8, layers=2, fmap_base=64, fmap_max=16, g_arch="skip",
                      d_arch="resnet", lrmul=0.01, mbstd_features=1):
    g = {"lod": np.float32(0), "dlatent_avg": rng.standard_normal(dlatent)}
    d = {}
    for i in range(layers):
        fin = latent if i == 0 else dlatent
        g[f"mapping/Dense{i}/weight"] = rng.standard_normal((fin, dlatent)) / lrmul
        g[f"mapping/Dense{i}/bias"] = rng.standard_normal(dlatent) * 0.1 / lrmul

    def modconv(prefix, k, cin, cout, noise=True):
        g[f"{prefix}/weight"] = rng.standard_normal((k, k, cin, cout))
        g[f"{prefix}/mod_weight"] = rng.standard_normal((dlatent, cin))
        g[f"{prefix}/mod_bias"] = rng.standard_normal(cin) * 0.2
        g[f"{prefix}/bias"] = rng.standard_normal(cout) * 0.2
        if noise:
            g[f"{prefix}/noise_strength"] = np.float32(rng.uniform(0.1, 0.5))

    log2 = int(math.log2(res))
    c = lambda r: nf(int(math.log2(r)) - 1, fmap_base, fmap_max)  # noqa: E731
    g["synthesis/4x4/Const/const"] = rng.standard_normal((1, c(4), 4, 4))
    modconv("synthesis/4x4/Conv", 3, c(4), c(4))
    for i in range(2 * log2 - 3):
        r = 2 ** ((i + 5) // 2)
        g[f"synthesis/noise{i}"] = rng.standard_normal((1, 1, r, r))
    if g_arch == "skip":
        modconv("synthesis/4x4/ToRGB", 1, c(4), C, noise=False)
    for lr in range(3, log2 + 1):
        r = 2 ** lr
        modconv(f"synthesis/{r}x{r}/Conv0_up", 3, c(r // 2), c(r))
        modconv(f"synthesis/{r}x{r}/Conv1", 3, c(r), c(r))
        if g_arch == "resnet":
            g[f"synthesis/{r}x{r}/Skip/weight"] = rng.standard_normal((1, 1, c(r // 2), c(r)))
        if g_arch == "skip" or r == res:
            modconv(f"synthesis/{r}x{r}/ToRGB", 1, c(r), C, noise=False)

    def conv(prefix, k, cin, cout, bias=True):
        d[f"{prefix}/weight"] = rng.standard_normal((k, k, cin, cout))
        if bias:
            d[f"{prefix}/bias"] = rng.standard_normal(cout) * 0.2

    for lr in range(log2, 2, -1):
        r = 2 ** lr
        if d_arch == "skip" or r == res:
            conv(f"{r}x{r}/FromRGB", 1, C, c(r))
        conv(f"{r}x{r}/Conv0", 3, c(r), c(r))
        conv(f"{r}x{r}/Conv1_down", 3, c(r), c(r // 2))
        if d_arch == "resnet":
            conv(f"{r}x{r}/Skip", 1, c(r), c(r // 2), bias=False)
    if d_arch == "skip":
        conv("4x4/FromRGB", 1, C, c(4))
    conv("4x4/Conv", 3, c(4) + mbstd_features, c(4))
    d["4x4/Dense0/weight"] = rng.standard_normal((c(4) * 16, nf(0, fmap_base, fmap_max)))
    d["4x4/Dense0/bias"] = rng.standard_normal(nf(0, fmap_base, fmap_max)) * 0.2
    d["Output/weight"] = rng.standard_normal((nf(0, fmap_base, fmap_max), 1))
    d["Output/bias"] = rng.standard_normal(1) * 0.2
    f32 = lambda v: {k: np.asarray(a, dtype=np.float32) for k, a in v.items()}  # noqa: E731
    static = dict(resolution=res, num_channels=C, label_size=0, fmap_base=fmap_base, fmap_max=fmap_max,
                  latent_size=latent, dlatent_size=dlatent, mapping_layers=layers, mapping_lrmul=lrmul)
    return f32(g), f32(d), {**static, "architecture": g_arch}, {**static, "architecture": d_arch}


# ---------------------------------------------------------------------------------------------------------
# float64 reference of the TF computation.

def T(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x) * math.sqrt(2)


def fir(x, k, pad0, pad1, up=1, down=1):
    """upfirdn: zero insertion, padding, true convolution with the 2-D kernel k, subsampling."""
    n, c, h, w = x.shape
    if up > 1:
        y = x.new_zeros(n, c, h * up, w * up)
        y[:, :, ::up, ::up] = x
        x = y
    x = torch.nn.functional.pad(x, [pad0, pad1, pad0, pad1])
    kf = T(k).flip(0, 1)
    kh, kw = kf.shape
    H, W = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = x.new_zeros(n, c, H, W)
    for a in range(kh):
        for b in range(kw):
            out += x[:, :, a:a + H, b:b + W] * kf[a, b]
    return out[:, :, ::down, ::down]


def corr(x, ww, pad, stride=1):
    """TF conv2d (correlation) of x [N, I, H, W] with per-sample HWIO kernels ww [N, k, k, I, O]."""
    x = torch.nn.functional.pad(x, [pad] * 4)
    k = ww.shape[1]
    H = (x.shape[2] - k) // stride + 1
    W = (x.shape[3] - k) // stride + 1
    out = x.new_zeros(x.shape[0], ww.shape[4], H, W)
    for a in range(k):
        for b in range(k):
            patch = x[:, :, a:a + stride * (H - 1) + 1:stride, b:b + stride * (W - 1) + 1:stride]
            out += torch.einsum("niyx,nio->noyx", patch, ww[:, a, b])
    return out


def conv_transpose(x, ww, stride=2):
    """TF conv2d_transpose, VALID: out[2y + a, 2x + b] += x[y, x] · ww[a, b] (per sample)."""
    n, _, h, w = x.shape
    k = ww.shape[1]
    out = x.new_zeros(n, ww.shape[4], (h - 1) * stride + k, (w - 1) * stride + k)
    for a in range(k):
        for b in range(k):
            out[:, :, a:a + stride * (h - 1) + 1:stride, b:b + stride * (w - 1) + 1:stride] += \
                torch.einsum("niyx,nio->noyx", x, ww[:, a, b])
    return out


def upsample_conv(x, ww):
    """The TF upsample_conv_2d: flip the kernel, conv2d_transpose stride 2, FIR ×4 with TF's padding."""
    k = ww.shape[1]
    x = conv_transpose(x, ww.flip(1, 2))
    p = (4 - 2) - (k - 1)
    return fir(x, FIR * 4, (p + 1) // 2 + 1, p // 2 + 1)


def tf_modconv(v, prefix, x, y, demod=True, up=False):
    w = T(v[f"{prefix}/weight"])
    k, _, cin, _ = w.shape
    w = w / math.sqrt(k * k * cin)
    s = y @ (T(v[f"{prefix}/mod_weight"]) / math.sqrt(y.shape[1])) + T(v[f"{prefix}/mod_bias"]) + 1
    ww = w[None] * s[:, None, None, :, None]
    if demod:
        ww = ww * torch.rsqrt((ww ** 2).sum(dim=[1, 2, 3]) + 1e-8)[:, None, None, None, :]
    return upsample_conv(x, ww) if up else corr(x, ww, k // 2)


def tf_generator(v, z, psi, arch, res, noise=True, layers=2, lrmul=0.01):
    x = T(z)
    x = x * torch.rsqrt((x ** 2).mean(dim=1, keepdim=True) + 1e-8)
    for i in range(layers):
        w = T(v[f"mapping/Dense{i}/weight"])
        x = lrelu(x @ (w * lrmul / math.sqrt(w.shape[0])) + T(v[f"mapping/Dense{i}/bias"]) * lrmul)
    log2 = int(math.log2(res))
    dl = x[:, None].repeat(1, 2 * log2 - 2, 1)
    avg = T(v["dlatent_avg"])
    dl = avg + psi * (dl - avg)

    def layer(x, idx, prefix, up=False):
        x = tf_modconv(v, prefix, x, dl[:, idx], up=up)
        if noise:
            x = x + T(v[f"synthesis/noise{idx}"]) * float(v[f"{prefix}/noise_strength"])
        return lrelu(x + T(v[f"{prefix}/bias"])[None, :, None, None])

    def torgb(x, y, lr):
        p = f"synthesis/{2 ** lr}x{2 ** lr}/ToRGB"
        t = tf_modconv(v, p, x, dl[:, lr * 2 - 3], demod=False) + T(v[f"{p}/bias"])[None, :, None, None]
        return t if y is None else y + t

    x = T(v["synthesis/4x4/Const/const"]).repeat(z.shape[0], 1, 1, 1)
    x = layer(x, 0, "synthesis/4x4/Conv")
    y = torgb(x, None, 2) if arch == "skip" else None
    for lr in range(3, log2 + 1):
        r = 2 ** lr
        t = x
        x = layer(x, lr * 2 - 5, f"synthesis/{r}x{r}/Conv0_up", up=True)
        x = layer(x, lr * 2 - 4, f"synthesis/{r}x{r}/Conv1")
        if arch == "resnet":
            w = T(v[f"synthesis/{r}x{r}/Skip/weight"])
            w = (w / math.sqrt(w.shape[2]))[None].repeat(t.shape[0], 1, 1, 1, 1)
            x = (x + upsample_conv(t, w)) / math.sqrt(2)
        if arch == "skip":
            y = fir(y, FIR * 4, 2, 1, up=2)
        if arch == "skip" or lr == log2:
            y = torgb(x, y, lr)
    return y


def tf_discriminator(v, img, arch, res, group=4, features=1):
    def conv(prefix, x, down=False, bias=True, act=True):
        w = T(v[f"{prefix}/weight"])
        k = w.shape[0]
        w = (w / math.sqrt(k * k * w.shape[2]))[None].repeat(x.shape[0], 1, 1, 1, 1)
        if down:
            p = 2 + (k - 1)
            x = corr(fir(x, FIR, (p + 1) // 2, p // 2), w, 0, stride=2)
        else:
            x = corr(x, w, k // 2)
        if bias:
            x = x + T(v[f"{prefix}/bias"])[None, :, None, None]
        return lrelu(x) if act else x

    def dense(prefix, x, act):
        w = T(v[f"{prefix}/weight"])
        x = x.reshape(x.shape[0], -1) @ (w / math.sqrt(w.shape[0])) + T(v[f"{prefix}/bias"])
        return lrelu(x) if act else x

    log2 = int(math.log2(res))
    x, y = None, T(img)
    for lr in range(log2, 2, -1):
        r = 2 ** lr
        if arch == "skip" or lr == log2:
            t = conv(f"{r}x{r}/FromRGB", y)
            x = t if x is None else x + t
        t = x
        x = conv(f"{r}x{r}/Conv0", x)
        x = conv(f"{r}x{r}/Conv1_down", x, down=True)
        if arch == "resnet":
            x = (x + conv(f"{r}x{r}/Skip", t, down=True, bias=False, act=False)) / math.sqrt(2)
        if arch == "skip":
            y = fir(y, FIR, 1, 1, down=2)
    if arch == "skip":
        x = x + conv("4x4/FromRGB", y)
    n, c, h, w = x.shape
    g = min(group, n)
    s = x.reshape(g, -1, features, c // features, h, w)
    s = s - s.mean(dim=0, keepdim=True)
    s = torch.sqrt((s ** 2).mean(dim=0) + 1e-8).mean(dim=[2, 3, 4])
    x = torch.cat([x, s.reshape(-1, features, 1, 1).repeat(g, 1, h, w)], dim=1)
    x = conv("4x4/Conv", x)
    x = dense("4x4/Dense0", x, True)
    return dense("Output", x, False)


def rel_err(ours, ref):
    return ((ours.double() - ref).abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize("g_arch,d_arch", [("skip", "resnet"), ("resnet", "skip"), ("orig", "orig")])
def test_tf_networks_match_a_float64_reference_of_the_tf_computation(g_arch, d_arch, tmp_path):
    rng = np.random.default_rng(1)
    gv, dv, gs, ds = make_tf_variables(rng, g_arch=g_arch, d_arch=d_arch)
    path = tmp_path / "stylegan2-tiny.pkl"
    path.write_bytes(tf_pickle_bytes(gv, dv, gs, d_static=ds))
    imported = read_foreign(path)
    assert imported.source_format == "nvlabs-tf" and imported.networks == ["G", "G_ema", "D"]
    cfg = imported.config
    assert (cfg.G.resolution, cfg.G.cbase, cfg.G.cmax, cfg.G.arch, cfg.D.arch) == (16, 128, 16, g_arch, d_arch)
    G = stylegan.load(path)
    D = imported.build(("D",))["D"].eval()
    z = rng.standard_normal((4, 8)).astype(np.float32)
    with torch.no_grad():
        assert G.mapping(torch.from_numpy(z)).shape == (4, 6, 8)
        for psi, mode, noise in ((1.0, "none", False), (0.6, "const", True)):
            img = G(torch.from_numpy(z), truncation_psi=psi, noise_mode=mode)
            ref = tf_generator(gv, z, psi, g_arch, 16, noise=noise)
            assert rel_err(img, ref) < 1e-5, (psi, mode)
        logits = D(img)
        assert rel_err(logits, tf_discriminator(dv, img.numpy(), d_arch, 16)) < 1e-5


def test_reference_itself_sees_the_kernel_flip(tmp_path):
    """Guard against a vacuous reference: without the flip of up-convolution kernels the images differ."""
    rng = np.random.default_rng(2)
    gv, dv, gs, ds = make_tf_variables(rng)
    path = tmp_path / "a.pkl"
    path.write_bytes(tf_pickle_bytes(gv, dv, gs, d_static=ds))
    G = stylegan.load(path)
    flipped = {k: (a[::-1, ::-1].copy() if "Conv0_up/weight" in k else a) for k, a in gv.items()}
    z = rng.standard_normal((2, 8)).astype(np.float32)
    with torch.no_grad():
        img = G(torch.from_numpy(z))
    assert rel_err(img, tf_generator(gv, z, 1.0, "skip", 16)) < 1e-5
    assert rel_err(img, tf_generator(flipped, z, 1.0, "skip", 16)) > 1e-3


def test_stylegan1_progan_and_conditional_tf_pickles_are_refused_clearly(tmp_path):
    rng = np.random.default_rng(3)
    gv, dv, gs, ds = make_tf_variables(rng, res=8)
    cases = [
        (dict(g_func="G_style", syn_func="G_synthesis", d_func="D_basic"), "StyleGAN \\(v1\\).*not supported yet"),
        (dict(g_func="G_paper", d_func="D_paper"), "ProGAN.*not supported yet"),
        (dict(syn_func="G_synthesis_stylegan_revised", d_func="D_stylegan"), "config A-D"),
    ]
    for i, (kw, match) in enumerate(cases):
        path = tmp_path / f"v{i}.pkl"
        path.write_bytes(tf_pickle_bytes(gv, dv, gs, d_static=ds, **kw))
        with pytest.raises(InteropError, match=match):
            stylegan.load(path)
    cond = dict(gv, **{"mapping/LabelConcat/weight": np.ones((5, 8), np.float32)})
    path = tmp_path / "cond.pkl"
    path.write_bytes(tf_pickle_bytes(cond, dv, {**gs, "label_size": 5}, d_static=ds))
    with pytest.raises(InteropError, match="conditional"):
        stylegan.load(path)
    extra = dict(gv, **{"synthesis/32x32/Mystery/weight": np.ones((1,), np.float32)})
    path = tmp_path / "extra.pkl"
    path.write_bytes(tf_pickle_bytes(extra, dv, gs, d_static=ds))
    with pytest.raises(InteropError):
        stylegan.load(path)

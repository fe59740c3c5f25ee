"""rosinality stylegan2-pytorch checkpoints, both ways.

Their code cannot run here, so the test holds a small float64 reference of their forward pass written from
their layout (EqualLinear/EqualConv2d scales, ModulatedConv2d with [1, out, in, k, k] weights,
conv_transpose2d + blur for upsampling, FusedLeakyReLU, NoiseInjection, ToRGB with skip upsampling, ResBlock
discriminator with minibatch std). Imported checkpoints must match it; our networks exported to their layout
must match it too, and come back bit-identical."""
import argparse
import io
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import stylegan
from conftest import tiny_config
from stylegan.checkpoint import save_checkpoint
from stylegan.cli.main import main
from stylegan.interop import InteropError, read_foreign
from stylegan.networks import build_networks

F64 = torch.float64


def make_kernel(gain=1.0):
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=F64)
    k = k[None, :] * k[:, None]
    return k / k.sum() * gain


def random_rosinality(channels: dict, style_dim=8, n_mlp=2, seed=0, C=3):
    """State dicts in their layout (g, d) for the given channels per resolution, with random values."""
    gen = torch.Generator().manual_seed(seed)
    rn = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    res = max(channels)
    g = {}
    for i in range(1, n_mlp + 1):
        g[f"style.{i}.weight"] = rn(style_dim, style_dim) / 0.01
        g[f"style.{i}.bias"] = rn(style_dim) * 0.1
    g["input.input"] = rn(1, channels[4], 4, 4)

    def styled(name, cin, cout, up):
        g[f"{name}.conv.weight"] = rn(1, cout, cin, 3, 3)
        if up:
            g[f"{name}.conv.blur.kernel"] = make_kernel(4.0).float()
        g[f"{name}.conv.modulation.weight"] = rn(cin, style_dim)
        g[f"{name}.conv.modulation.bias"] = 1 + 0.2 * rn(cin)
        g[f"{name}.noise.weight"] = 0.1 + 0.3 * rn(1).abs()
        g[f"{name}.activate.bias"] = 0.2 * rn(cout)

    def torgb(name, cin, up):
        if up:
            g[f"{name}.upsample.kernel"] = make_kernel(4.0).float()
        g[f"{name}.conv.weight"] = rn(1, C, cin, 1, 1)
        g[f"{name}.conv.modulation.weight"] = rn(cin, style_dim)
        g[f"{name}.conv.modulation.bias"] = 1 + 0.2 * rn(cin)
        g[f"{name}.bias"] = 0.2 * rn(1, C, 1, 1)

    styled("conv1", channels[4], channels[4], False)
    torgb("to_rgb1", channels[4], False)
    log2 = int(math.log2(res))
    for i in range(2 * log2 - 3):
        r = 2 ** ((i + 5) // 2)
        g[f"noises.noise_{i}"] = rn(1, 1, r, r)
    for k, lr in enumerate(range(3, log2 + 1)):
        r = 2 ** lr
        styled(f"convs.{2 * k}", channels[r // 2], channels[r], True)
        styled(f"convs.{2 * k + 1}", channels[r], channels[r], False)
        torgb(f"to_rgbs.{k}", channels[r], True)
    d = {"convs.0.0.weight": rn(channels[res], C, 1, 1), "convs.0.1.bias": 0.2 * rn(channels[res])}
    for j, lr in enumerate(range(log2, 2, -1), start=1):
        r = 2 ** lr
        cin, cout = channels[r], channels[r // 2]
        d[f"convs.{j}.conv1.0.weight"] = rn(cin, cin, 3, 3)
        d[f"convs.{j}.conv1.1.bias"] = 0.2 * rn(cin)
        d[f"convs.{j}.conv2.0.kernel"] = make_kernel().float()
        d[f"convs.{j}.conv2.1.weight"] = rn(cout, cin, 3, 3)
        d[f"convs.{j}.conv2.2.bias"] = 0.2 * rn(cout)
        d[f"convs.{j}.skip.0.kernel"] = make_kernel().float()
        d[f"convs.{j}.skip.1.weight"] = rn(cout, cin, 1, 1)
    c4 = channels[4]
    d["final_conv.0.weight"] = rn(c4, c4 + 1, 3, 3)
    d["final_conv.1.bias"] = 0.2 * rn(c4)
    d["final_linear.0.weight"] = rn(c4, c4 * 16)
    d["final_linear.0.bias"] = 0.2 * rn(c4)
    d["final_linear.1.weight"] = rn(1, c4)
    d["final_linear.1.bias"] = 0.2 * rn(1)
    return g, d


# ---------------------------------------------------------------------------------------------------------
# float64 reference of their forward pass.

def upfirdn(x, k, up=1, down=1, pad=(0, 0)):
    n, c, h, w = x.shape
    if up > 1:
        y = x.new_zeros(n, c, h * up, w * up)
        y[:, :, ::up, ::up] = x
        x = y
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    kk = k.flip(0, 1)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, kk, groups=c)[:, :, ::down, ::down]


def fused_lrelu(x, b):
    return F.leaky_relu(x + b.reshape(1, -1, *([1] * (x.ndim - 2))), 0.2) * math.sqrt(2)


def equal_linear(x, sd, name, lr_mul=1.0, act=False):
    w, b = sd[f"{name}.weight"].to(F64), sd[f"{name}.bias"].to(F64)
    out = x @ (w * lr_mul / math.sqrt(w.shape[1])).t()
    return fused_lrelu(out, b * lr_mul) if act else out + b * lr_mul


def modconv(x, style, sd, name, demod=True, up=False):
    w = sd[f"{name}.conv.weight"].to(F64)
    _, cout, cin, k, _ = w.shape
    s = equal_linear(style, sd, f"{name}.conv.modulation")
    outs = []
    for i in range(x.shape[0]):
        wi = w[0] / math.sqrt(cin * k * k) * s[i].reshape(1, cin, 1, 1)
        if demod:
            wi = wi * torch.rsqrt((wi ** 2).sum(dim=[1, 2, 3]) + 1e-8).reshape(cout, 1, 1, 1)
        xi = x[i:i + 1]
        if up:
            o = F.conv_transpose2d(xi, wi.transpose(0, 1), stride=2, padding=0)
            p = (4 - 2) - (k - 1)
            o = upfirdn(o, make_kernel(4.0), pad=((p + 1) // 2 + 1, p // 2 + 1))
        else:
            o = F.conv2d(xi, wi, padding=k // 2)
        outs.append(o)
    return torch.cat(outs)


def their_generator(g, z, psi=1.0, latent_avg=None, noise=True):
    n_mlp = sum(1 for k in g if k.startswith("style.") and k.endswith(".weight"))
    x = z.to(F64)
    x = x * torch.rsqrt((x ** 2).mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        x = equal_linear(x, g, f"style.{i}", lr_mul=0.01, act=True)
    if psi < 1:
        x = latent_avg.to(F64) + psi * (x - latent_avg.to(F64))
    n_up = sum(1 for k in g if k.startswith("to_rgbs.") and k.endswith("conv.weight"))
    latent = x[:, None].repeat(1, 2 * n_up + 2, 1)

    def styled(h, name, idx, wi, up=False):
        h = modconv(h, latent[:, wi], g, name, up=up)
        if noise:
            h = h + g[f"{name}.noise.weight"].to(F64) * g[f"noises.noise_{idx}"].to(F64)
        return fused_lrelu(h, g[f"{name}.activate.bias"].to(F64))

    def to_rgb(h, name, wi, skip):
        out = modconv(h, latent[:, wi], g, name, demod=False) + g[f"{name}.bias"].to(F64)
        if skip is not None:
            out = out + upfirdn(skip, make_kernel(4.0), up=2, pad=(2, 1))
        return out

    h = g["input.input"].to(F64).repeat(z.shape[0], 1, 1, 1)
    h = styled(h, "conv1", 0, 0)
    skip = to_rgb(h, "to_rgb1", 1, None)
    i = 1
    for k in range(n_up):
        h = styled(h, f"convs.{2 * k}", 2 * k + 1, i, up=True)
        h = styled(h, f"convs.{2 * k + 1}", 2 * k + 2, i + 1)
        skip = to_rgb(h, f"to_rgbs.{k}", i + 2, skip)
        i += 2
    return skip


def their_discriminator(d, img):
    def conv_layer(x, prefix, k, down=False, bias=True, act=True):
        if down:
            wname = f"{prefix}.1.weight"
            p = 2 + (k - 1)
            x = upfirdn(x, make_kernel(), pad=((p + 1) // 2, p // 2))
            w = d[wname].to(F64)
            x = F.conv2d(x, w / math.sqrt(w[0].numel()), stride=2)
            bname = f"{prefix}.2.bias"
        else:
            w = d[f"{prefix}.0.weight"].to(F64)
            x = F.conv2d(x, w / math.sqrt(w[0].numel()), padding=k // 2)
            bname = f"{prefix}.1.bias"
        return fused_lrelu(x, d[bname].to(F64)) if act else x

    x = conv_layer(img.to(F64), "convs.0", 1)
    j = 1
    while f"convs.{j}.conv1.0.weight" in d:
        out = conv_layer(x, f"convs.{j}.conv1", 3)
        out = conv_layer(out, f"convs.{j}.conv2", 3, down=True)
        skip = conv_layer(x, f"convs.{j}.skip", 1, down=True, act=False)
        x = (out + skip) / math.sqrt(2)
        j += 1
    n, c, h, w = x.shape
    group = min(n, 4)
    s = x.view(group, -1, 1, c, h, w)
    s = torch.sqrt(s.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
    x = torch.cat([x, s.repeat(group, 1, h, w)], 1)
    x = conv_layer(x, "final_conv", 3)
    x = equal_linear(x.view(n, -1), d, "final_linear.0", act=True)
    return equal_linear(x, d, "final_linear.1")


def rel_err(ours, ref):
    return ((ours.double() - ref).abs().max() / ref.abs().max()).item()


CHANNELS = {4: 16, 8: 16, 16: 8}


def test_rosinality_checkpoint_matches_their_computation(tmp_path):
    g, d = random_rosinality(CHANNELS)
    latent_avg = torch.randn(8)
    ckpt = {"g": g, "d": d, "g_ema": g, "latent_avg": latent_avg,
            "args": argparse.Namespace(size=16, latent=8, n_mlp=2, channel_multiplier=2, r1=10.0, mixing=0.9),
            "g_optim": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
                        "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "params": [0]}]}}
    path = tmp_path / "000100.pt"
    torch.save(ckpt, path)
    legacy = tmp_path / "old-torch.pt"  # torch < 1.6 wrote the legacy (non-zip) format
    torch.save(ckpt, legacy, _use_new_zipfile_serialization=False)
    imported = read_foreign(path)
    old = read_foreign(legacy)
    for name, state in imported.states.items():
        assert all(torch.equal(v, old.states[name][k]) for k, v in state.items())
    assert imported.source_format == "rosinality" and imported.networks == ["G", "G_ema", "D"]
    assert (imported.config.G.cbase, imported.config.G.cmax, imported.config.D.arch) == (128, 16, "resnet")
    G = stylegan.load(path)
    assert torch.equal(G.mapping.w_avg, latent_avg)
    D = imported.build(("D",))["D"].eval()
    z = torch.randn(4, 8)
    with torch.no_grad():
        for psi, mode, noise in ((1.0, "const", True), (0.7, "none", False)):
            img = G(z, truncation_psi=psi, noise_mode=mode)
            assert rel_err(img, their_generator(g, z, psi, latent_avg, noise)) < 1e-5
        assert rel_err(D(img), their_discriminator(d, img)) < 1e-5


def test_our_networks_export_to_their_layout_and_back(tmp_path):
    config = tiny_config(16)  # z = w = 32, skip G, resnet D
    nets = build_networks(config, seed=7)
    with torch.no_grad():
        for name, p in nets["G_ema"].named_parameters():
            if name.endswith("noise.strength"):
                p.fill_(0.25)
        nets["G_ema"].mapping.w_avg.normal_()
    src = tmp_path / "ours.safetensors"
    save_checkpoint(src, config, nets)
    dest = tmp_path / "theirs.pt"
    r = CliRunner().invoke(main, ["convert", "--source", str(src), "--dest", str(dest)])
    assert r.exit_code == 0, r.output
    assert "channel table" in r.output  # tiny channels are not their stock table: said, not hidden
    theirs = torch.load(dest, weights_only=True)  # plain tensors only
    g_ref, d_ref = random_rosinality({4: 32, 8: 32, 16: 16}, style_dim=32, n_mlp=2)
    for ours_sd, ref_sd in ((theirs["g_ema"], g_ref), (theirs["g"], g_ref), (theirs["d"], d_ref)):
        assert {k: tuple(v.shape) for k, v in ours_sd.items()} == {k: tuple(v.shape) for k, v in ref_sd.items()}
    assert theirs["args"]["size"] == 16 and torch.equal(theirs["latent_avg"], nets["G_ema"].mapping.w_avg)
    z = torch.randn(2, 32)
    G0 = nets["G_ema"].eval()
    with torch.no_grad():
        want = G0(z, truncation_psi=0.6, noise_mode="const")
        # Their computation on the exported weights gives our images...
        assert rel_err(want, their_generator(theirs["g_ema"], z, 0.6, theirs["latent_avg"])) < 1e-5
        assert rel_err(nets["D"](want), their_discriminator(theirs["d"], want)) < 1e-5
        # ... and the file comes back bit-identical.
        G1 = stylegan.load(dest)
        assert torch.equal(G1(z, truncation_psi=0.6, noise_mode="const"), want)
        D1 = read_foreign(dest).build(("D",))["D"]
        assert torch.equal(D1(want), nets["D"](want))
    back = tmp_path / "back.safetensors"
    r = CliRunner().invoke(main, ["convert", "--source", str(dest), "--dest", str(back)])
    assert r.exit_code == 0, r.output
    _, nets2, _ = stylegan.load_networks(back)
    for name in ("G", "G_ema", "D"):
        for k, v in nets[name].state_dict().items():
            if name == "G" and k == "mapping.w_avg":
                continue  # their layout keeps the average for g_ema only: G's is re-estimated on import
            assert torch.equal(nets2[name].state_dict()[k], v), (name, k)


def test_checkpoint_without_latent_avg_and_bare_state_dicts(tmp_path):
    g, _ = random_rosinality({4: 8, 8: 8})
    path = tmp_path / "g.pth"
    buf = io.BytesIO()
    torch.save(g, buf)  # a bare generator state dict
    path.write_bytes(buf.getvalue())
    imported = read_foreign(path)
    assert imported.networks == ["G_ema"] and any("estimated" in n for n in imported.notes)
    G = stylegan.load(path)
    with torch.no_grad():
        z = torch.randn(4, 8)
        assert rel_err(G(z, truncation_psi=0.5), their_generator(g, z, 0.5, G.mapping.w_avg)) < 1e-5


def test_what_their_layout_cannot_hold_is_refused(tmp_path):
    for kw in (dict(g_arch="resnet"), dict(c_dim=2)):
        config = tiny_config(8, **kw)
        src = tmp_path / "x.safetensors"
        save_checkpoint(src, config, build_networks(config, seed=0))
        with pytest.raises(InteropError, match="cannot write a rosinality checkpoint"):
            stylegan.interop.convert(src, tmp_path / "x.pt")
    g, d = random_rosinality({4: 8, 8: 8})
    g["convs.0.conv.blur.kernel"] = torch.ones(4, 4)
    path = tmp_path / "odd.pt"
    torch.save({"g_ema": g}, path)
    with pytest.raises(InteropError, match="blur kernel"):
        stylegan.load(path)
    g, d = random_rosinality({4: 8, 8: 8})
    g["style.2.weight"] = torch.zeros(8, 5)
    torch.save({"g_ema": g}, path)
    with pytest.raises(InteropError, match="shape"):
        stylegan.load(path)


def test_state_dicts_of_real_modules_carry_metadata(tmp_path):
    """``module.state_dict()`` (what their train.py and convert_weight.py save) is an OrderedDict with a
    ``_metadata`` attribute; it must import like a plain dict."""
    from collections import OrderedDict

    g, d = random_rosinality(CHANNELS)
    plain = tmp_path / "plain.pt"
    torch.save({"g_ema": g}, plain)
    states = {}
    for name, sd in (("g", g), ("d", d), ("g_ema", g)):
        od = OrderedDict(sd)
        od._metadata = OrderedDict({"": {"version": 1}, "conv1": {"version": 1}})
        states[name] = od
    real = tmp_path / "real.pt"
    torch.save(states, real)
    z = torch.randn(2, 8)
    assert torch.equal(stylegan.load(real)(z, noise_mode="const"), stylegan.load(plain)(z, noise_mode="const"))


def test_training_resumes_from_their_checkpoint(tmp_path):
    """``stylegan train --resume their.pt`` fine-tunes their networks (no training state: counts start at 0)."""
    import numpy as np
    from PIL import Image

    from stylegan.training.loop import Trainer
    from stylegan.training.runs import resume_options

    g, d = random_rosinality(CHANNELS)
    path = tmp_path / "000100.pt"
    torch.save({"g": g, "d": d, "g_ema": g}, path)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.RandomState(0)
    for i in range(8):
        Image.fromarray(rng.randint(0, 255, (16, 16, 3), dtype=np.uint8)).save(data / f"{i}.png")
    opts = resume_options(str(path), str(tmp_path / "runs"),
                          dict(data=str(data), batch=4, workers=0, device="cpu", kimg=0.008, aug="noaug"))
    t = Trainer(opts)
    imported = read_foreign(path).build()
    for name, module in (("G", t.G), ("G_ema", t.G_ema), ("D", t.D)):
        ours = module.state_dict()
        assert all(torch.equal(v, ours[k]) for k, v in imported[name].state_dict().items())
    assert t.cur_nimg == 0
    t.step()
    assert t.cur_nimg == 4
    r = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "missing.pkl"), "--data", str(data)])
    assert r.exit_code != 0 and "no such network file" in r.output

"""The whole lineage by name: ProGAN, StyleGAN Table 1 A–F, StyleGAN2 Table 1 A–F.

Every named configuration trains (tiny variants, CPU), saves and reloads; progressive growing follows its
schedule and resumes exactly; WGAN-GP against a float64 reference; AdaIN's statistics; parameter counts of the
papers; noise and truncation where the architecture has them; the style-mixing stress test; `stylegan configs`.
"""
import copy
import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

import stylegan
from stylegan.checkpoint import read_checkpoint
from stylegan.cli.main import main
from stylegan.config import ConfigError
from stylegan.presets import ALIASES, PRESETS, TrainingRecipe, make_config
from stylegan.networks import build_networks, num_parameters, parameter_counts
from stylegan.nn.adain import AdaIN, adain
from stylegan.training.growing import Growth, GrowthSchedule, images_at
from stylegan.training.loop import Trainer, train
from stylegan.training.runs import resume_options
from stylegan.training.loss import NonSaturatingLoss, make_loss
from stylegan.training.options import OptionsError, TrainingOptions
from stylegan.training.wgan import WGANGPLoss, drift, gradient_penalty, interpolate
from test_training import make_images

@pytest.fixture(autouse=True)
def _one_thread():
    """These networks are tiny: one thread is as fast, and does not stall when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


NAMES = sorted(PRESETS)
LINEAGE = ["progan", "stylegan-a", "stylegan-b", "stylegan-c", "stylegan-d", "stylegan-e", "stylegan-f",
           "stylegan2-a", "stylegan2-b", "stylegan2-c", "stylegan2-d", "stylegan2-e", "stylegan2-f"]


def has_mapping(name):
    return make_config(name).G.map_depth > 0


def lineage_opts(tmp_path, cfg, **kw):
    """A tiny variant of a named configuration: 16², 32 channels at most, two mapping layers (if it has a
    mapping network), phases of growing of 8 images (two minibatches)."""
    data = tmp_path / "data"
    if not data.exists():
        make_images(data)
    base = dict(outdir=str(tmp_path / "runs"), data=str(data), cfg=cfg, cbase=256, cmax=32,
                map_depth=2 if has_mapping(cfg) else None, batch=4, kimg=0.04, tick=0.016, snap=1, workers=0,
                device="cpu", seed=3, aug="noaug", fade_kimg=0.008, stable_kimg=0.008)
    base.update(kw)
    return TrainingOptions(**base)


def tiny_net(cfg, resolution=16, seed=0):
    c = make_config(cfg, resolution=resolution, cbase=256, cmax=32, z_dim=32,
                    map_depth=2 if has_mapping(cfg) else None, w_dim=32 if has_mapping(cfg) else None,
                    num_fp16_res=0, conv_clamp=None)
    return build_networks(c, seed=seed)


# ---------------------------------------------------------------------------------------------- every name

def test_small_recipe_keeps_the_stylegan2_generator_and_leaves_the_paper_rows_alone():
    small, f = make_config("small"), make_config("stylegan2-f")
    assert small.G.style == "demod" and small.G.arch == "skip" and not small.G.growing and small.G.noise
    assert PRESETS["stylegan2-f"].training == TrainingRecipe()  # the paper's recipe, untouched
    assert (f.G.cbase, f.G.map_depth, f.D.mbstd_group, f.D.mbstd_gain) == (32768, 8, 4, 1.0)
    assert PRESETS["small"].training.pl_weight == 0 and PRESETS["small"].training.style_mixing == 0
    rp, mnist32 = PRESETS["small-rpgan"].training, make_config("small-rpgan")
    assert (rp.loss, rp.gamma, rp.r2_gamma, rp.r1_interval, rp.gamma_end, rp.gamma_kimg, rp.batch) == \
        ("rpgan", 1.0, 1.0, 4, 0.1, 100.0, 16)
    assert (mnist32.G.cbase, mnist32.G.cmax, mnist32.G.map_depth, mnist32.D.mbstd_group) == (2048, 64, 2, 32)
    fast = PRESETS["small-rpgan-30min"]  # the same networks and objective at 1.5× the rate, and nothing else
    assert dataclasses.replace(fast.training, glr=rp.glr, dlr=rp.dlr) == rp
    assert (fast.training.glr, fast.training.dlr, rp.glr, rp.dlr) == (0.003, 0.003, 0.002, 0.002)
    fast_net = make_config("small-rpgan-30min")
    assert (fast_net.G, fast_net.D) == (mnist32.G, mnist32.D)
    assert mnist32.G.style == "demod" and mnist32.G.arch == "skip" and mnist32.D.arch == "resnet"


def test_every_paper_row_has_a_name():
    # small: this package's recipe; paper256 ... cifar, auto: the stylegan2-ada code's presets; no paper rows;
    # stylegan3-t, -r: the alias-free generators (tests/test_stylegan3.py)
    assert set(LINEAGE) | set(ALIASES) | {"small", "small-rpgan", "small-rpgan-30min", "paper256", "paper512",
                                          "paper1024", "cifar", "auto", "stylegan3-t", "stylegan3-r"} == set(PRESETS)
    assert PRESETS["stylegan"] is PRESETS["stylegan-f"] and PRESETS["stylegan2"] is PRESETS["stylegan2-f"]
    families = {n: make_config(n).family for n in LINEAGE}
    assert families["progan"] == "progan" and families["stylegan-c"] == "stylegan"
    assert families["stylegan2-b"] == "stylegan2"
    # Each row is the previous one plus its change.
    g = {n: make_config(n).G for n in LINEAGE}
    assert (g["stylegan-a"].resample, g["stylegan-b"].resample) == ("nearest", "fir")
    assert (g["stylegan-b"].style, g["stylegan-c"].style, g["stylegan-c"].map_depth) == ("none", "adain", 8)
    assert (g["stylegan-c"].const_input, g["stylegan-d"].const_input) == (False, True)
    assert (g["stylegan-d"].noise, g["stylegan-e"].noise) == (False, True)
    assert (g["stylegan2-a"].style, g["stylegan2-b"].style) == ("adain", "demod")
    assert g["stylegan2-d"].growing and not g["stylegan2-e"].growing and g["stylegan2-e"].arch == "skip"
    assert make_config("stylegan2-e").D.arch == "resnet"
    assert (g["stylegan2-e"].cbase, g["stylegan2-f"].cbase) == (16384, 32768)
    recipes = {n: PRESETS[n].training for n in LINEAGE}
    assert recipes["progan"].loss == recipes["stylegan-a"].loss == "wgangp"
    assert all(recipes[n].loss == "nonsaturating" for n in LINEAGE[2:])
    assert (recipes["stylegan-e"].style_mixing, recipes["stylegan-f"].style_mixing) == (0.0, 0.9)
    assert (recipes["stylegan2-b"].r1_interval, recipes["stylegan2-c"].r1_interval) == (1, 16)
    assert (recipes["stylegan2-c"].pl_weight, recipes["stylegan2-d"].pl_weight) == (0.0, 2.0)


@pytest.mark.parametrize("name", NAMES)
def test_each_configuration_trains_saves_and_reloads(tmp_path, name):
    t = Trainer(lineage_opts(tmp_path, name, aug="ada" if name == "stylegan-f" else "noaug"))
    assert t.config.cfg == name
    for _ in range(6):
        stats = t.step()
        assert stats and all(torch.isfinite(v).all() for v in stats.values()), name
    if t.config.growing:  # 24 images: the growth has moved past its first stage
        assert t.growth.resolution > min(PRESETS[name].training.start_resolution, 16)
        assert t.G.current_resolution == t.G_ema.current_resolution == t.D.current_resolution == t.growth.resolution
    snap = t.save_snapshot(tmp_path / "snap.safetensors")
    ckpt = read_checkpoint(snap)
    assert ckpt.config == t.config and ckpt.config.cfg == name
    G = stylegan.load(snap)
    assert type(G.synthesis) is type(t.G_ema.synthesis)
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = t.G_ema(z, noise_mode="const")
    img = G(z, noise_mode="const")
    res = t.growth.resolution if t.growth is not None else 16
    assert img.shape == (3, 3, res, res)
    assert torch.equal(img, ref)
    # The trainer resumes the snapshot with the same networks and growth stage.
    t2 = Trainer(lineage_opts(tmp_path, name, resume=str(snap)))
    assert t2.cur_nimg == t.cur_nimg and t2.G.current_resolution == t.G.current_resolution
    for a, b in zip(t.G_ema.state_dict().values(), t2.G_ema.state_dict().values()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------- parameters

def test_progan_parameter_counts_match_the_table():
    counts = parameter_counts(make_config("progan"))
    # Seed 002's table: 23.1M each. With toRGB / fromRGB at every resolution (progressive growing).
    assert counts == {"G": 23_079_115, "D": 23_087_249}
    assert round(counts["G"] / 1e6, 1) == round(counts["D"] / 1e6, 1) == 23.1
    with torch.device("meta"):
        nets = build_networks(make_config("progan"))
    G, D = nets["G"].synthesis, nets["D"]
    # Rows of the table: conv 4x4 on the latent (4.2M), conv 3x3 512->512 (2.4M), 32->16 (4.6k), 16->16
    # (2.3k), toRGB 16->3 (51); D: fromRGB 3->16 (64), conv 4x4 (4.2M), the fully connected output (513).
    assert G.blocks["4"].input.weight.numel() + G.blocks["4"].conv0.bias.numel() == 4_194_816
    assert num_parameters(G.blocks["8"].conv1) == 2_359_808
    assert num_parameters(G.blocks["1024"].conv0) == 4_624 and num_parameters(G.blocks["1024"].conv1) == 2_320
    assert num_parameters(G.blocks["1024"].torgb) == 51
    assert num_parameters(D.blocks["1024"].fromrgb) == 64 and num_parameters(D.epilogue.out) == 513
    assert num_parameters(D.epilogue.fc) == 4_194_816
    assert num_parameters(D.epilogue.conv) == 513 * 512 * 9 + 512
    # Without growing only the top toRGB / fromRGB remain: the table's own totals.
    c = make_config("progan")
    c.G.growing = c.D.growing = False
    assert parameter_counts(c) == {"G": 23_071_507, "D": 23_077_137}


def test_stylegan_generator_parameter_count():
    # StyleGAN: "our generator has 26.2M trainable parameters, compared to 23.1M in the traditional generator".
    assert round(parameter_counts(make_config("stylegan"))["G"] / 1e6, 1) == 26.2
    assert round(parameter_counts(make_config("stylegan-b"))["G"] / 1e6, 1) == 23.1
    assert parameter_counts(make_config("stylegan2")) == {"G": 30_370_060, "D": 29_012_513}


def test_configs_command_lists_every_configuration():
    r = CliRunner().invoke(main, ["configs", "--resolution", "256"])
    assert r.exit_code == 0, r.output
    for name in LINEAGE:
        assert name in r.output
    assert "stylegan-f (= stylegan)" in r.output and "StyleGAN Table 1 C" in r.output
    r = CliRunner().invoke(main, ["configs", "--resolution", "256", "--resolution", "64", "--format", "json"])
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert list(rows) == LINEAGE + ["stylegan3-t", "stylegan3-r", "small", "small-rpgan", "small-rpgan-30min",
                                    "paper256", "paper512", "paper1024", "cifar", "auto"]  # papers, StyleGAN3, ours, ada
    for name in ("progan", "stylegan-e", "stylegan2-b", "stylegan2-f"):
        for res in (256, 64):
            assert rows[name]["params"][str(res)] == parameter_counts(make_config(name, resolution=res))
    assert rows["stylegan2-f"]["aliases"] == ["stylegan2"] and rows["progan"]["family"] == "progan"
    r = CliRunner().invoke(main, ["configs", "--format", "markdown"])
    assert "| `progan` |" in r.output and "23,079,115 / 23,087,249" in r.output
    r = CliRunner().invoke(main, ["configs", "--resolution", "48"])
    assert r.exit_code != 0 and "power of two" in r.output


# ---------------------------------------------------------------------------------------------- growing

def test_growth_schedule():
    s = GrowthSchedule(32, start_resolution=4, fade_kimg=1, stable_kimg=2)
    assert s.at(0) == Growth(4, 1.0, "stable", 0)
    assert s.at(1999) == Growth(4, 1.0, "stable", 0)
    assert s.at(2000) == Growth(8, 0.0, "fade", 1)
    assert s.at(2250) == Growth(8, 0.25, "fade", 1)
    assert s.at(3000) == Growth(8, 1.0, "stable", 2)
    assert s.at(5000 + 500) == Growth(16, 0.5, "fade", 3)
    assert s.at(2000 + 2 * 3000) == Growth(32, 0.0, "fade", 5)
    assert s.at(2000 + 2 * 3000 + 999) == Growth(32, 0.999, "fade", 5)
    assert s.at(10 ** 9) == Growth(32, 1.0, "stable", 6)  # the final resolution to the end
    assert GrowthSchedule(32, start_resolution=8, fade_kimg=1, stable_kimg=2).at(2500) == Growth(16, 0.5, "fade", 1)
    assert GrowthSchedule(8, start_resolution=16).at(0) == Growth(8, 1.0, "stable", 0)  # start capped at final
    assert GrowthSchedule(16, fade_kimg=0, stable_kimg=1).at(1000) == Growth(8, 1.0, "stable", 2)  # no fade-in


def test_real_images_blend_like_the_generator():
    img = torch.randn(2, 3, 16, 16)
    full = images_at(img, Growth(16, 1.0, "stable", 0))
    assert torch.equal(full, img)
    at8 = images_at(img, Growth(8, 1.0, "stable", 0))
    torch.testing.assert_close(at8, img.reshape(2, 3, 8, 2, 8, 2).mean(dim=[3, 5]))
    half = images_at(img, Growth(8, 0.25, "fade", 1))
    low = at8.reshape(2, 3, 4, 2, 4, 2).mean(dim=[3, 5]).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(half, 0.75 * low + 0.25 * at8)


def test_generator_and_discriminator_fade_in():
    nets = tiny_net("progan")
    G, D = nets["G"], nets["D"]
    z = torch.randn(4, 32)
    ws = G.mapping(z)
    G.set_growth(8, 1.0)
    new = G.synthesis(ws)
    G.set_growth(8, 0.0)
    old = G.synthesis(ws)
    G.set_growth(4, 1.0)
    at4 = G.synthesis(ws)
    torch.testing.assert_close(old, at4.repeat_interleave(2, 2).repeat_interleave(2, 3))  # α = 0: the 4x4 image
    G.set_growth(8, 0.3)
    torch.testing.assert_close(G.synthesis(ws), 0.7 * old + 0.3 * new)
    x = torch.randn(4, 3, 8, 8)
    D.set_growth(8, 0.0)
    D4 = copy.deepcopy(D)
    D4.set_growth(4, 1.0)
    torch.testing.assert_close(D(x), D4(x.reshape(4, 3, 4, 2, 4, 2).mean(dim=[3, 5])))
    with pytest.raises(ValueError, match="current stage"):
        D(torch.randn(4, 3, 16, 16))
    with pytest.raises(ValueError, match="growth stage"):
        G.set_growth(32, 1.0)
    stylegan2_f = build_networks(make_config("stylegan2", resolution=8, cbase=64, cmax=8, map_depth=1), seed=0)["G"]
    with pytest.raises(ValueError, match="does not grow"):
        stylegan2_f.set_growth(4, 1.0)


def test_fade_in_alpha_moves_as_configured(tmp_path):
    t = Trainer(lineage_opts(tmp_path, "progan", fade_kimg=0.016, stable_kimg=0.008))
    seen = []
    for _ in range(12):
        t.step()
        seen.append((t.growth.resolution, t.growth.alpha, float(t.G.synthesis.alpha), float(t.D.alpha)))
    # 8 stable images at 4x4, then 16 images of fade-in (4 steps of 4: α 0, 1/4, 1/2, 3/4), 8 stable, ...
    expected = [(4, 1.0), (4, 1.0), (8, 0.0), (8, 0.25), (8, 0.5), (8, 0.75), (8, 1.0), (8, 1.0),
                (16, 0.0), (16, 0.25), (16, 0.5), (16, 0.75)]
    assert [(r, a) for r, a, _, _ in seen] == expected
    assert all(a == ga == da for _, a, ga, da in seen)
    assert float(t.G_ema.synthesis.alpha) == 0.75


def test_resumed_growing_run_continues_at_the_same_phase_and_alpha(tmp_path):
    opts = lineage_opts(tmp_path, "stylegan-f", fade_kimg=0.016, stable_kimg=0.008)
    torch.manual_seed(5)
    a = Trainer(opts)
    for _ in range(4):  # 16 images: stable 8x8 (start 8), then 8 images into the 16x16 fade-in
        a.step()
    assert a.growth == Growth(16, 0.25, "fade", 1)
    snap = a.save_snapshot(tmp_path / "snap.safetensors")
    after_a = []
    for _ in range(3):
        stats = a.step()
        after_a.append((a.growth, {k: v.clone() for k, v in stats.items()}))

    torch.manual_seed(123)
    b = Trainer(lineage_opts(tmp_path, "stylegan-f", fade_kimg=0.016, stable_kimg=0.008, resume=str(snap)))
    assert b.cur_nimg == 16 and b.G.current_resolution == 16 and float(b.G.synthesis.alpha) == 0.25
    assert read_checkpoint(snap).extra["growth"] == {"resolution": 16, "alpha": 0.25, "phase": "fade"}
    for growth, stats_a in after_a:
        stats_b = b.step()
        assert b.growth == growth
        assert stats_a.keys() == stats_b.keys()
        for k in stats_a:
            assert torch.equal(stats_a[k], stats_b[k]), k
    assert [g.alpha for g, _ in after_a] == [0.5, 0.75, 1.0]
    for (n, pa), pb in zip(a.G_ema.named_parameters(), b.G_ema.parameters()):
        assert torch.equal(pa, pb), n


def test_train_and_resume_latest_keep_the_growth_stage(tmp_path):
    run = train(lineage_opts(tmp_path, "progan", kimg=0.016, tick=0.008))
    ckpt = read_checkpoint(run / "network-snapshot-000000.016.safetensors")
    assert ckpt.extra["growth"] == {"resolution": 8, "alpha": 0.5, "phase": "fade"}  # the last step: images 12-15
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["Progress/resolution"] == 8 and rows[-1]["Progress/alpha"] == 0.5
    assert "loss wgangp" in (run / "log.txt").read_text()
    opts = resume_options("latest", str(tmp_path / "runs"), {"kimg": 0.04})
    assert opts.cfg == "progan" and opts.fade_kimg == 0.008
    assert train(opts) == run
    G = stylegan.load(run / "network-snapshot-000000.040.safetensors")
    assert G.current_resolution == 16 and G(torch.randn(2, G.z_dim)).shape == (2, 3, 16, 16)


# ---------------------------------------------------------------------------------------------- recipes

def _phases(t, steps):
    calls = []
    for name in ("g_main", "g_pl", "d_main", "d_r1"):
        fn = getattr(t.loss, name)

        def wrapped(*a, _fn=fn, _name=name, **k):
            calls.append((t.batch_idx, _name, k.get("r1", False)))
            return _fn(*a, **k)
        setattr(t.loss, name, wrapped)
    for _ in range(steps):
        t.step()
    return calls


@pytest.mark.parametrize("name,loss,r1_joint,r1_lazy,pl,lr_c", [
    ("progan", WGANGPLoss, False, False, False, 1.0),
    ("stylegan-f", NonSaturatingLoss, True, False, False, 1.0),
    ("stylegan2-b", NonSaturatingLoss, True, False, False, 1.0),
    ("stylegan2-c", NonSaturatingLoss, False, True, False, 16 / 17),
    ("stylegan2-d", NonSaturatingLoss, False, True, True, 16 / 17),
])
def test_recipes_select_loss_and_regularization(tmp_path, name, loss, r1_joint, r1_lazy, pl, lr_c):
    t = Trainer(lineage_opts(tmp_path, name))
    assert type(t.loss.adversarial) is loss
    assert t.opt_D.param_groups[0]["lr"] == pytest.approx(PRESETS[name].training.dlr * lr_c)
    calls = _phases(t, 5)
    assert [r1 for _, n, r1 in calls if n == "d_main"] == [r1_joint] * 5
    assert [b for b, n, _ in calls if n == "d_r1"] == ([0] if r1_lazy else [])
    assert [b for b, n, _ in calls if n == "g_pl"] == ([0, 4] if pl else [])


def test_options_override_the_recipe(tmp_path):
    t = Trainer(lineage_opts(tmp_path, "progan", loss="nonsaturating", gamma=1.0, glr=0.003))
    assert type(t.loss.adversarial) is NonSaturatingLoss and t.gamma == 1.0 and t.opt_G.param_groups[0]["lr"] == 0.003
    t = Trainer(lineage_opts(tmp_path, "stylegan2-a", r1_interval=16, pl_weight=2.0, pl_interval=1))
    calls = _phases(t, 2)
    assert [n for _, n, _ in calls] == ["g_main", "g_pl", "d_main", "d_r1", "g_main", "g_pl", "d_main"]
    assert t.opt_G.param_groups[0]["lr"] == 0.002  # PL joins the G step (interval 1): no lazy adjustment
    for p in (0, 0.5, 0.9, 1.0):
        assert Trainer(lineage_opts(tmp_path, "stylegan-e", style_mixing=p)).loss.style_mixing == p
    with pytest.raises(OptionsError, match="no styles to mix"):
        Trainer(lineage_opts(tmp_path, "progan", style_mixing=0.9))
    with pytest.raises(OptionsError, match="--loss"):
        lineage_opts(tmp_path, "progan", loss="hinge").validate()
    with pytest.raises(OptionsError, match="start-res"):
        lineage_opts(tmp_path, "progan", start_res=6).validate()


def test_mixing_regularization_draws_crossovers_among_the_active_styles():
    from stylegan.training.loss import mixing_ws

    G = tiny_net("stylegan-f")["G"]
    G.set_growth(8, 1.0)  # 4 of the 6 ws are in use
    assert G.num_active_ws == 4
    z = torch.randn(2, 32)
    torch.manual_seed(0)
    for _ in range(20):
        ws = mixing_ws(G, z, None, prob=1.0)
        base = G.mapping(z)
        switched = [i for i in range(6) if not torch.equal(ws[:, i], base[:, i])]
        assert switched and switched[0] in (1, 2, 3) and switched == list(range(switched[0], 6))
    assert torch.equal(mixing_ws(G, z, None, prob=0.0), G.mapping(z))


# ---------------------------------------------------------------------------------------------- losses, layers

def small_critic():
    """A small D from the library's layers that also computes in float64 (the networks' D works in float32):
    conv 3×3 + lrelu, minibatch std (which couples the samples), average pool, conv, fully connected."""
    from stylegan.nn.equalized import EqualizedConv2d, EqualizedLinear
    from stylegan.nn.mbstd import MinibatchStd

    return torch.nn.Sequential(EqualizedConv2d(3, 4, 3, activation="lrelu"), MinibatchStd(2), torch.nn.AvgPool2d(2),
                               EqualizedConv2d(5, 4, 3, activation="lrelu"), torch.nn.Flatten(),
                               EqualizedLinear(4 * 16, 1))


def test_wgan_gp_penalty_matches_float64_reference():
    torch.manual_seed(0)
    D = small_critic()
    for p in D.parameters():  # non-zero biases
        p.data.add_(0.1 * torch.randn_like(p))
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    u = torch.rand(4)
    mixed = interpolate(real, fake, u)
    torch.testing.assert_close(mixed, real + u.reshape(4, 1, 1, 1) * (fake - real))
    mixed.requires_grad_(True)
    penalty = gradient_penalty(mixed, D(mixed))

    # Reference: the gradient of Σ D(x̂) by central differences, all in float64 (minibatch std couples samples).
    D64, x = copy.deepcopy(D).double(), mixed.detach().double()
    flat = x.flatten()
    grad = torch.zeros_like(flat)
    h = 1e-6
    with torch.no_grad():
        for i in range(flat.numel()):
            e = torch.zeros_like(flat)
            e[i] = h
            grad[i] = (D64((flat + e).reshape(x.shape)).sum() - D64((flat - e).reshape(x.shape)).sum()) / (2 * h)
    reference = (grad.reshape(4, -1).norm(dim=1) - 1).square()
    assert reference.min() > 1e-3  # a penalty that is far from zero
    torch.testing.assert_close(penalty.double(), reference, rtol=1e-4, atol=1e-7)
    assert torch.equal(drift(torch.tensor([[2.0], [-3.0]])), torch.tensor([[4.0], [9.0]]))


def test_wgan_d_loss_combines_critic_penalty_and_drift():
    nets = tiny_net("progan", resolution=8)
    G, D = nets["G"], nets["D"]
    G.set_growth(8, 1.0)
    D.set_growth(8, 1.0)
    loss = make_loss("wgangp", G, D)
    stats = loss.d_main(torch.randn(4, 3, 8, 8), None, torch.randn(4, 32), None)
    expected = (stats["Loss/scores/fake"] - stats["Loss/scores/real"] + 10 * stats["Loss/gp_penalty"].unsqueeze(1)
                + 0.001 * stats["Loss/scores/real"].square())
    torch.testing.assert_close(stats["Loss/D/loss"], expected)
    assert all(p.grad is not None for p in D.parameters() if p.requires_grad and p.grad is not None)
    g = loss.g_main(torch.randn(4, 32), None)
    assert torch.equal(g["Loss/G/loss"], -g["Loss/scores/fake"])


def test_adain_output_has_the_style_statistics():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, 8) * 4 + 2
    scale, shift = torch.randn(3, 5) * 2, torch.randn(3, 5)
    y = adain(x, scale, shift)
    torch.testing.assert_close(y.mean(dim=[2, 3]), shift, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y.std(dim=[2, 3], unbiased=False), scale.abs(), atol=1e-4, rtol=1e-4)
    layer = AdaIN(5, w_dim=7)
    w = torch.randn(3, 7)
    y = layer(x, w)
    torch.testing.assert_close(y.mean(dim=[2, 3]), layer.shift(w), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y.std(dim=[2, 3], unbiased=False), layer.scale(w).abs(), atol=1e-4, rtol=1e-4)
    assert torch.equal(layer.scale.bias, torch.ones(5))  # y_s starts around 1


# ---------------------------------------------------------------------------------------------- tools

def test_noise_and_truncation_where_the_architecture_has_them():
    from stylegan.tools.noise_study import noise_study
    from stylegan.tools.style_mixing import style_mixing_grid

    G = tiny_net("progan")["G_ema"]
    G.set_growth(16, 1.0)
    z = torch.randn(2, 32)
    assert G.num_ws == 1 and G.synthesis.noise_layers() == {}
    a, b, c = (G(z, noise_mode=m) for m in ("const", "random", "none"))
    assert torch.equal(a, b) and torch.equal(a, c)  # no noise inputs: every mode is the same image
    with pytest.raises(ValueError, match="truncation"):
        G(z, truncation_psi=0.7)
    with pytest.raises(ValueError, match="truncation"):
        G.mapping(z, truncation_psi=0.7)
    with pytest.raises(ValueError, match="no noise inputs"):
        noise_study(G, seed=0)
    with pytest.raises(ValueError, match="style indices"):
        style_mixing_grid(G, [1], [2], [0, 1])
    with pytest.raises(ValueError, match="unknown noise mode"):
        G(z, noise_mode="loud")

    G = tiny_net("stylegan-e")["G_ema"]
    G.set_growth(16, 1.0)
    for m in G.synthesis.modules():
        if hasattr(m, "strength"):
            m.strength.data.fill_(0.5)
    assert G.synthesis.noise_layers()["16.conv1"] == 16
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
    assert not torch.equal(G(z, noise_mode="const"), G(z, noise_mode="none"))
    G.mapping.w_avg.copy_(torch.randn(32))
    avg = G(z, truncation_psi=0.0, noise_mode="none")
    torch.testing.assert_close(avg[0], avg[1])
    study = noise_study(G, seed=0, realizations=4)
    assert study.std.shape == (16, 16) and study.std.max() > 0
    grid, _ = style_mixing_grid(G, [1, 2], [3], [0, 1])
    assert grid.shape == (48, 32, 3)
    with pytest.raises(ValueError, match="progressive"):
        from stylegan.tools.resolution_study import relative_std
        relative_std(G)


def test_cli_init_generate_info_for_a_growing_configuration(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["init", "--cfg", "stylegan-d", "--resolution", "16", "--cbase", "256", "--cmax", "32",
                             "--map-depth", "2", "--z-dim", "32", "--w-dim", "32", "--outdir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    net = tmp_path / "network-init.safetensors"
    r = runner.invoke(main, ["info", "--network", str(net)])
    assert r.exit_code == 0 and "stylegan-d (stylegan)" in r.output
    r = runner.invoke(main, ["generate", "--network", str(net), "--seeds", "0-1", "--trunc", "0.7",
                             "--outdir", str(tmp_path / "img"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    from PIL import Image
    assert Image.open(tmp_path / "img" / "seed0001.png").size == (4, 4)  # a fresh growing G is at its first stage
    r = runner.invoke(main, ["init", "--cfg", "progan", "--resolution", "16", "--cbase", "256", "--cmax", "32",
                             "--z-dim", "32", "--outdir", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["generate", "--network", str(tmp_path / "p" / "network-init.safetensors"),
                             "--seeds", "0", "--trunc", "0.7", "--outdir", str(tmp_path / "img2")])
    assert r.exit_code != 0 and "truncation" in r.output
    r = runner.invoke(main, ["generate", "--network", str(tmp_path / "p" / "network-init.safetensors"),
                             "--seeds", "0", "--noise-mode", "random", "--outdir", str(tmp_path / "img2")])
    assert r.exit_code != 0 and "no noise inputs" in r.output
    r = runner.invoke(main, ["generate", "--network", str(tmp_path / "p" / "network-init.safetensors"),
                             "--seeds", "0", "--outdir", str(tmp_path / "img2")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["init", "--cfg", "progan", "--g-arch", "skip", "--outdir", str(tmp_path / "q")])
    assert r.exit_code != 0 and "orig" in r.output


def test_config_validation_of_the_lineage():
    with pytest.raises(ConfigError, match="orig"):
        make_config("stylegan2-d", g_arch="skip")
    with pytest.raises(ConfigError, match="mapping network"):
        make_config("progan", c_dim=3)
    with pytest.raises(ConfigError, match="latent input"):
        c = make_config("progan")
        c.G.const_input = True
        c.validate()
    with pytest.raises(ConfigError, match="grow together"):
        c = make_config("progan")
        c.D.growing = False
        c.validate()
    assert make_config("progan", z_dim=64).G.w_dim == 64  # no mapping network: w is z
    c = make_config("stylegan-c", resolution=32)
    from stylegan.config import NetworkConfig
    assert NetworkConfig.from_json(c.to_json()) == c


# ---------------------------------------------------------------------------------------------- stress test

def test_style_mixing_stress_metric(monkeypatch):
    import stylegan.metrics.registry as registry
    from stylegan.metrics.mixing import MixedLatentGenerator, mix_at, random_crossovers
    from stylegan.metrics.stats import generated_images

    for k in (1, 2, 3, 4):
        assert f"fid50k_mix{k}" in registry.METRICS and f"fid1k_mix{k}" in registry.METRICS
    ws = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 2, 6, 3)
    mixed = mix_at(ws, torch.tensor([[1, 2, 5], [3, 4, 5]]))
    assert mixed[0, :, 0].tolist() == [0, 1, 2, 2, 2, 3] and mixed[1, :, 0].tolist() == [0, 0, 0, 1, 2, 3]
    cross = random_crossovers(500, 4, 6, torch.Generator().manual_seed(0))
    assert ((cross[:, 1:] > cross[:, :-1]).all() and cross.min() == 1 and cross.max() == 5)

    G = tiny_net("stylegan-f")["G_ema"]
    G.set_growth(16, 1.0)
    z = torch.randn(3, 32)
    torch.testing.assert_close(MixedLatentGenerator(G, 1)(z, noise_mode="const"), G(z, noise_mode="const"))
    # k = 4: every image's ws come from exactly four latents.
    sources = []
    real_mapping = G.mapping.forward

    def spy(zz, c=None, **kw):
        out = real_mapping(zz, c, **kw)
        sources.append(out)
        return out
    monkeypatch.setattr(G.mapping, "forward", spy)
    captured = []
    monkeypatch.setattr(G.synthesis, "forward", lambda ws, **kw: captured.append(ws) or torch.zeros(3, 3, 16, 16))
    MixedLatentGenerator(G, 4)(z)
    monkeypatch.undo()
    stack = torch.stack(sources)
    for n in range(3):
        src = [int((stack[:, n, j] == captured[0][n, j]).all(dim=1).nonzero()[0]) for j in range(6)]
        assert sorted(set(src)) == [0, 1, 2, 3] and src == sorted(src)

    # The registered metric scores the mixed generator's images.
    seen = {}

    def fake_fid(opts, name, max_real, num_gen):
        seen["G"], seen["name"] = opts.G, name
        seen["images"] = next(generated_images(opts.G, 2, batch_size=2, seed=0))
        return {"results": {name: 1.0}, "num_real": 0, "num_gen": num_gen}
    monkeypatch.setattr(registry, "compute_fid", fake_fid)
    rec = registry.METRICS["fid1k_mix3"].fn(registry.MetricOptions(G=G, progress=False))
    assert isinstance(seen["G"], MixedLatentGenerator) and seen["G"].k == 3 and seen["name"] == "fid1k_mix3"
    assert seen["images"].shape == (2, 3, 16, 16) and rec["mixing"]["latents"] == 3
    progan = tiny_net("progan")["G_ema"]
    with pytest.raises(registry.MetricError, match="style inputs"):
        registry.METRICS["fid1k_mix2"].fn(registry.MetricOptions(G=progan, progress=False))


def test_train_command_takes_the_lineage_flags(tmp_path):
    make_images(tmp_path / "data")
    r = CliRunner().invoke(main, ["train", "--cfg", "progan", "--data", str(tmp_path / "data"), "--outdir",
                                  str(tmp_path / "runs"), "--cbase", "256", "--cmax", "32", "--batch", "4",
                                  "--loss", "nonsaturating", "--r1-interval", "4", "--gamma", "0.5", "--start-res",
                                  "8", "--fade-kimg", "1", "--stable-kimg", "2", "--workers", "0", "--device", "cpu",
                                  "--dry-run"])
    assert r.exit_code == 0, r.output
    printed = json.loads(r.output[:r.output.rindex("}") + 1])
    assert printed["recipe"] == {**vars(PRESETS["progan"].training), "loss": "nonsaturating", "r1_interval": 4,
                                 "gamma": 0.5, "start_resolution": 8, "fade_kimg": 1.0, "stable_kimg": 2.0,
                                 "batch": 4, "betas": [0.0, 0.99]}
    assert printed["config"]["family"] == "progan" and printed["config"]["G"]["growing"]


def test_flags_that_would_change_an_architecture_or_stack_penalties_say_so(tmp_path):
    with pytest.raises(ConfigError, match="no mapping network"):
        make_config("progan", map_depth=2)
    run = train(lineage_opts(tmp_path, "stylegan2", loss="wgangp", kimg=0.004, tick=0.004))
    assert "R1 runs on top of WGAN-GP" in (run / "log.txt").read_text()


@pytest.mark.parametrize("name,batch,mbstd,cbase,lr,gamma,ema,rampup,maps", [
    ("paper256", 64, 8, 16384, 0.0025, 1.0, 20, 0.0, 8),
    ("paper512", 64, 8, 32768, 0.0025, 0.5, 20, 0.0, 8),
    ("paper1024", 32, 4, 32768, 0.002, 2.0, 10, 0.0, 8),
    ("cifar", 64, 32, 32768, 0.0025, 0.01, 500, 0.05, 2),
])
def test_the_stylegan2_ada_presets(name, batch, mbstd, cbase, lr, gamma, ema, rampup, maps):
    """The presets of the authors' stylegan2-ada train.py, as its code and README list them."""
    c, r = make_config(name, resolution=256), PRESETS[name].training
    assert (r.batch, c.D.mbstd_group, c.G.cbase, c.G.cmax, c.G.map_depth) == (batch, mbstd, cbase, 512, maps)
    assert (r.glr, r.dlr, r.gamma, r.ema_kimg, r.ema_rampup) == (lr, lr, gamma, ema, rampup)
    assert (r.pl_weight, r.style_mixing, c.D.arch) == ((0.0, 0.0, "orig") if name == "cifar" else (2.0, 0.9, "resnet"))
    assert (c.G.num_fp16_res, c.G.conv_clamp, r.betas) == (4, 256, (0.0, 0.99))


@pytest.mark.parametrize("res,gpus,expect", [
    # resolution, processes → batch, mbstd group, cbase, lr, γ, EMA kimg (stylegan2-ada's auto, by its formulas)
    (32, 1, (32, 4, 16384, 0.0025, 0.0064, 10.0)),
    (256, 8, (64, 4, 16384, 0.0025, 0.2048, 20.0)),
    (256, 2, (32, 4, 16384, 0.0025, 0.4096, 10.0)),
    (512, 8, (64, 4, 32768, 0.0025, 0.8192, 20.0)),
    (1024, 8, (32, 4, 32768, 0.002, 6.5536, 10.0)),
    (1024, 1, (4, 4, 32768, 0.002, 52.4288, 1.25)),
])
def test_auto_preset_resolves_as_the_ada_code_does(res, gpus, expect):
    from stylegan.presets import auto_settings

    opts = TrainingOptions(data="x", cfg="auto").validate()
    assert opts.batch is None  # the batch follows the data's resolution
    assert opts.resolve_auto(res, gpus) is not opts and opts.batch is None  # a new object; this one unchanged
    opts = opts.resolve_auto(res, gpus)
    batch, group, cbase, lr, gamma, ema = expect
    assert (opts.batch, opts.mbstd_group, opts.cbase, opts.map_depth, opts.glr, opts.dlr) == (
        batch, group, cbase, 2, lr, lr)
    assert opts.resolved_gamma(res) == pytest.approx(gamma) and opts.resolved_ema_kimg() == pytest.approx(ema)
    assert opts.recipe().ema_rampup == 0.05
    given = TrainingOptions(data="x", cfg="auto", batch=8, glr=0.001).validate().resolve_auto(res, gpus)
    assert (given.batch, given.glr, given.dlr) == (8, 0.001, lr)  # what the user gives stays
    assert auto_settings(res, gpus)["batch"] == batch


def test_auto_preset_trains_with_its_resolved_settings(tmp_path):
    opts = lineage_opts(tmp_path, "auto", batch=None, cbase=None, map_depth=None)
    t = Trainer(opts)
    assert t.opts.batch == 32 and t.config.G.map_depth == 2 and t.config.D.mbstd_group == 4
    assert t.recipe.glr == 0.0025 and t.gamma == pytest.approx(0.0002 * 16 ** 2 / 32)
    t.step()

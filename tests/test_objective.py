"""R3GAN's objective as named options: the RpGAN loss, R2, the cosine γ schedule (against hand computations),
and their place in the training loop (options, phases, stats, exact resume)."""
import json
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from stylegan.training.loop import Trainer, train
from stylegan.training.loss import cosine_gamma, make_loss, r2_penalty, rpgan_d_loss, rpgan_g_loss
from stylegan.training.options import OptionsError
from test_training import check_resume_continues_exactly, tiny_opts

R3GAN = dict(loss="rpgan", r2_gamma=0.5, gamma=1.0, gamma_end=0.25, gamma_kimg=0.016)


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_rpgan_losses_pair_reals_and_fakes_by_index():
    fake = torch.tensor([[0.5], [-1.0], [2.0]], requires_grad=True)
    real = torch.tensor([[1.0], [0.0], [-0.5]], requires_grad=True)
    d, g = rpgan_d_loss(fake, real), rpgan_g_loss(fake, real)
    torch.testing.assert_close(d, torch.tensor([[softplus(-0.5)], [softplus(-1.0)], [softplus(2.5)]]))
    torch.testing.assert_close(g, torch.tensor([[softplus(0.5)], [softplus(1.0)], [softplus(-2.5)]]))
    g.sum().backward()
    assert real.grad is None  # D(x) is a constant for G
    torch.testing.assert_close(fake.grad, -torch.sigmoid(real.detach() - fake.detach()))


def test_r2_penalty_of_a_linear_discriminator():
    w = torch.randn(1, 3, 4, 4)
    y = torch.randn(5, 3, 4, 4, requires_grad=True)
    torch.testing.assert_close(r2_penalty(y, (y * w).sum(dim=[1, 2, 3]).unsqueeze(1)), w.square().sum().expand(5))


def test_cosine_gamma_schedule():
    assert cosine_gamma(10.0, 2.0, 0, 100) == pytest.approx(10.0)
    assert cosine_gamma(10.0, 2.0, 50, 100) == pytest.approx(6.0)
    assert cosine_gamma(10.0, 2.0, 25, 100) == pytest.approx(2 + 8 * (1 + math.cos(math.pi / 4)) / 2)
    assert cosine_gamma(10.0, 2.0, 100, 100) == pytest.approx(2.0)
    assert cosine_gamma(10.0, 2.0, 250, 100) == pytest.approx(2.0)  # constant after the decay
    assert cosine_gamma(10.0, None, 250, None) == 10.0  # no schedule


class StubG(torch.nn.Module):
    """G(z) = scale·z as a 3×4×4 image, one w."""
    z_dim, num_active_ws = 48, 1

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.5))

    def mapping(self, z, c, update_w_avg=False):
        return z.unsqueeze(1)

    def synthesis(self, ws, noise_mode="random"):
        return ws[:, 0].reshape(-1, 3, 4, 4) * self.scale


class LinearD(torch.nn.Module):
    """D(x) = <w, x> + b: ∇ₓD = w everywhere."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(1, 3, 4, 4))
        self.b = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, img, c=None):
        return (img * self.w).sum(dim=[1, 2, 3]).unsqueeze(1) + self.b


def linear_phases(**kw):
    torch.manual_seed(0)
    G, D = StubG(), LinearD()
    # Augmentation x → 2x: D sees 2x (so D's logits are <w, 2x> + b) and ∇ₓD(2x) = 2w on the unaugmented x.
    return G, D, make_loss("rpgan", G, D, style_mixing=0.0, augment=lambda x: 2 * x, **kw)


def test_rpgan_d_step_with_r1_and_r2_by_hand():
    G, D, phases = linear_phases(r1_gamma=0.4, r2_gamma=0.6)
    real, z = torch.randn(4, 3, 4, 4), torch.randn(4, 48)
    stats = phases.d_main(real, None, z, None, r1=True)
    fake = (z.reshape(4, 3, 4, 4) * 1.5).detach()
    w = D.w.detach()
    f, r = (2 * fake * w).sum(dim=[1, 2, 3]), (2 * real * w).sum(dim=[1, 2, 3])  # b cancels in f − r
    torch.testing.assert_close(stats["Loss/D/loss"].flatten(), F.softplus(f - r))
    torch.testing.assert_close(stats["Loss/r1_penalty"], (4 * w.square().sum()).expand(4))
    torch.testing.assert_close(stats["Loss/r2_penalty"], (4 * w.square().sum()).expand(4))
    # ∂/∂w of mean softplus(f − r) + (0.4/2 + 0.6/2)·4‖w‖²; no gradient for b, no second backward pass.
    sig = torch.sigmoid(f - r).reshape(4, 1, 1, 1)
    grad_w = (sig * 2 * (fake - real)).mean(dim=0, keepdim=True) + (0.4 + 0.6) * 4 * w
    torch.testing.assert_close(D.w.grad, grad_w)
    torch.testing.assert_close(D.b.grad, torch.tensor(0.0))
    assert G.scale.grad is None


def test_rpgan_g_step_runs_d_on_augmented_reals():
    G, D, phases = linear_phases()
    D.requires_grad_(False)
    real, z = torch.randn(4, 3, 4, 4), torch.randn(4, 48)
    stats = phases.g_main(z, None, real_img=real)
    w, b = D.w.detach(), D.b.detach()
    zi = z.reshape(4, 3, 4, 4)
    f, r = (2 * 1.5 * zi * w).sum(dim=[1, 2, 3]) + b, (2 * real * w).sum(dim=[1, 2, 3]) + b
    torch.testing.assert_close(stats["Loss/G/loss"].flatten(), F.softplus(r - f))
    dscale = (-torch.sigmoid(r - f) * (2 * zi * w).sum(dim=[1, 2, 3])).mean()
    torch.testing.assert_close(G.scale.grad, dscale)
    with pytest.raises(ValueError, match="real batch"):
        phases.g_main(z, None)


def test_lazy_r2_phase_on_generated_images():
    G, D, phases = linear_phases(r1_gamma=0.0, r2_gamma=0.6)
    real, z = torch.randn(4, 3, 4, 4), torch.randn(4, 48)
    assert phases.d_r1(real, None, gain=8) == {}  # no R1 weight, no fakes: nothing to do
    stats = phases.d_r1(real, None, gain=8, z=z, c=None)
    assert set(stats) == {"Loss/r2_penalty"}
    w = D.w.detach()
    torch.testing.assert_close(stats["Loss/r2_penalty"], (4 * w.square().sum()).expand(4))
    torch.testing.assert_close(D.w.grad, 8 * 0.6 * 4 * w)  # gain · γ₂/2 · ∂‖2w‖²/∂w
    assert G.scale.grad is None  # the fakes are detached from G


def test_r3gan_options_train_and_log_the_schedule(tmp_path):
    opts = tiny_opts(tmp_path, **R3GAN, r1_interval=1, kimg=0.024, tick=0.008).validate()
    recipe = opts.recipe()
    assert (recipe.loss, recipe.r2_gamma, recipe.gamma_end, recipe.gamma_kimg) == ("rpgan", 0.5, 0.25, 0.016)
    run = train(opts)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in rows] == [0.008, 0.016, 0.024]
    for r in rows:  # the weights of each tick's last step, at the images seen before it
        gamma = cosine_gamma(1.0, 0.25, r["kimg"] - 0.004, 0.016)
        assert r["Progress/gamma"] == pytest.approx(gamma) and r["Progress/r2_gamma"] == pytest.approx(0.5 * gamma)
        assert all(math.isfinite(r[k]) for k in ("Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "Loss/r2_penalty"))
    assert rows[-1]["Progress/gamma"] == pytest.approx(0.25)
    log = (run / "log.txt").read_text()
    assert "loss rpgan, R1 every 1, R2 0.5 every 1, gamma cosine to 0.25 over 0.016 kimg" in log
    assert " r2 " in log and "gamma 0.25 " in log


def test_r2_alone_makes_a_lazy_phase_with_adjusted_adam(tmp_path):
    t = Trainer(tiny_opts(tmp_path, gamma=0.0, r2_gamma=0.5, r1_interval=2))
    assert not t.r1_on and t.r2_on
    assert t.opt_D.param_groups[0]["lr"] == pytest.approx(0.002 * 2 / 3)
    stats = [t.step() for _ in range(3)]
    assert ["Loss/r2_penalty" in s for s in stats] == [True, False, True]
    assert not any("Loss/r1_penalty" in s for s in stats)


def test_papers_recipes_keep_r2_and_the_schedule_off(tmp_path):
    from stylegan.presets import PRESETS

    assert all((p.training.r2_gamma, p.training.gamma_end, p.training.gamma_kimg) == (0.0, None, None)
               for name, p in PRESETS.items() if not name.startswith("small-rpgan"))  # R3GAN's: this package's
    t = Trainer(tiny_opts(tmp_path))
    stats = t.step()
    assert "Loss/r2_penalty" not in stats and t.loss.r1_gamma == t.gamma and t.loss.r2_gamma == 0


@pytest.mark.parametrize("r1_interval", [1, 2])
def test_rpgan_resumes_exactly(tmp_path, r1_interval):
    a, b = check_resume_continues_exactly(tmp_path, **{**R3GAN, "gamma_kimg": 0.04}, r1_interval=r1_interval)
    assert 0.25 < b.loss.r1_gamma == a.loss.r1_gamma < 1  # resumed mid-decay


@pytest.mark.parametrize("kw,match", [
    (dict(gamma_end=0.1), "--gamma-end needs --gamma-kimg"),
    (dict(gamma_kimg=100), "--gamma-kimg without --gamma-end"),
    (dict(gamma=0.0, gamma_end=0.1, gamma_kimg=100), "--gamma 0"),
    (dict(gamma_end=0.1, gamma_kimg=0), "--gamma-kimg must be > 0"),
    (dict(r2_gamma=-1.0), "--r2-gamma must be >= 0"),
    (dict(gamma_end=-1.0, gamma_kimg=1), "--gamma-end must be >= 0"),
])
def test_bad_combinations_are_refused(tmp_path, kw, match):
    with pytest.raises(OptionsError, match=match):
        tiny_opts(tmp_path, **kw).validate()


def test_train_command_takes_the_r3gan_flags(tmp_path):
    from stylegan.cli.main import main

    tiny_opts(tmp_path)  # writes the images
    r = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "data"), "--outdir", str(tmp_path / "runs"),
                                  "--loss", "rpgan", "--r2-gamma", "0.5", "--gamma", "2", "--gamma-end", "0.2",
                                  "--gamma-kimg", "500", "--r1-interval", "1", "--device", "cpu", "--dry-run"])
    assert r.exit_code == 0, r.output
    recipe = json.loads(r.output[:r.output.rindex("}") + 1])["recipe"]
    assert {k: recipe[k] for k in ("loss", "r2_gamma", "gamma", "gamma_end", "gamma_kimg", "r1_interval")} == {
        "loss": "rpgan", "r2_gamma": 0.5, "gamma": 2.0, "gamma_end": 0.2, "gamma_kimg": 500.0, "r1_interval": 1}
    bad = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "data"), "--gamma-end", "0.2", "--dry-run"])
    assert bad.exit_code != 0 and "--gamma-end needs --gamma-kimg" in bad.output

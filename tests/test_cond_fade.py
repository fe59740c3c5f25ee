"""Transitional conditional training (--cond-fade, after Shahbazi et al. 2022): λ's schedule, what λ does to G
and D (0: both ignore the class; 1: an ordinary conditional G), the options that must go together, and exact
resume across the fade."""
import json

import pytest
import torch

from conftest import tiny_config
from stylegan.config import ConfigError
from stylegan.networks import build_networks
from stylegan.training.loop import Trainer, train
from stylegan.training.loss import condition_strength, set_condition_strength
from stylegan.training.options import OptionsError
from test_training import check_resume_continues_exactly, tiny_opts


def labelled_opts(tmp_path, **kw):
    opts = tiny_opts(tmp_path, **kw)
    labels = [[f"{i:03d}.png", i % 3] for i in range(24)]
    (tmp_path / "data" / "dataset.json").write_text(json.dumps({"labels": labels}))
    return opts


def test_strength_schedule():
    assert condition_strength(None, 0) == 1.0
    assert [condition_strength((10, 20), k) for k in (0, 10, 12.5, 15, 20, 99)] == [0, 0, 0.25, 0.5, 1, 1]
    assert [condition_strength((5, 5), k) for k in (4.9, 5, 6)] == [0, 1, 1]  # equal ends: a step


@pytest.fixture(scope="module")
def nets():
    config = tiny_config(16, c_dim=3)
    config.D.uncond_head = True
    return build_networks(config.validate(), seed=4)


def test_strength_zero_makes_g_and_d_ignore_the_class(nets):
    G, D = nets["G"], nets["D"]
    z, x = torch.randn(3, G.z_dim), torch.randn(3, 3, 16, 16)
    c1, c2 = torch.eye(3)[[0, 1, 2]], torch.eye(3)[[2, 0, 1]]
    try:
        set_condition_strength(0.0, D, G)
        torch.testing.assert_close(G(z, c1, noise_mode="const"), G(z, c2, noise_mode="const"), rtol=0, atol=0)
        torch.testing.assert_close(D(x, c1), D(x, c2), rtol=0, atol=0)
        torch.testing.assert_close(D(x, c1), D.epilogue.out_uncond(D.epilogue.fc(D.epilogue.conv(
            D.epilogue.mbstd(D.blocks["8"](*D.blocks["16"](None, x, dtype=torch.float32), dtype=torch.float32)[0]))
            .flatten(1))))  # D is then its unconditional head alone
        set_condition_strength(0.5, D, G)
        half = D(x, c1)
        set_condition_strength(1.0, D, G)
        assert not torch.allclose(D(x, c1), D(x, c2)) and not torch.allclose(G(z, c1, noise_mode="const"),
                                                                             G(z, c2, noise_mode="const"))
        set_condition_strength(0.0, D, G)
        zero = D(x, c1)
        set_condition_strength(1.0, D, G)
        torch.testing.assert_close(half, (zero + D(x, c1)) / 2)  # D's logit is linear in λ
    finally:
        set_condition_strength(1.0, D, G)


def test_strength_one_is_an_ordinary_conditional_generator(nets):
    """After the fade G is the plain conditional G: its state loads into one built without the head."""
    plain = build_networks(tiny_config(16, c_dim=3), seed=4)["G"]
    plain.load_state_dict(nets["G"].state_dict())
    z, c = torch.randn(2, plain.z_dim), torch.eye(3)[[1, 2]]
    torch.testing.assert_close(plain(z, c, noise_mode="const"), nets["G"](z, c, noise_mode="const"), rtol=0, atol=0)
    assert "epilogue.out_uncond.weight" in nets["D"].state_dict()


def test_head_needs_a_conditional_discriminator():
    config = tiny_config(16)
    config.D.uncond_head = True
    with pytest.raises(ConfigError, match="D.uncond_head needs a conditional"):
        config.validate()


def test_fade_needs_cond(tmp_path):
    with pytest.raises(OptionsError, match="--cond-fade fades in the class conditioning: it needs --cond"):
        tiny_opts(tmp_path, cond_fade=(1, 2)).validate()
    with pytest.raises(OptionsError, match="START END"):
        labelled_opts(tmp_path, cond=True, cond_fade=(2, 1)).validate()


def test_training_fades_the_condition_in(tmp_path):
    t = Trainer(labelled_opts(tmp_path, cond=True, cond_fade=(0.008, 0.024), kimg=0.032))
    assert t.config.D.uncond_head and t.D.epilogue.out_uncond is not None
    strengths = []
    for _ in range(8):
        t.step()
        strengths.append((t.D.epilogue.cond_strength, t.G.mapping.cond_strength, t.G_ema.mapping.cond_strength))
    assert [s[0] for s in strengths] == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1]  # λ at the images seen before the step
    assert all(len(set(s)) == 1 for s in strengths)


def test_the_log_shows_the_fade(tmp_path):
    run = train(labelled_opts(tmp_path, cond=True, cond_fade=(0.008, 0.024), kimg=0.032, tick=0.008))
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["Progress/cond_strength"] for r in rows] == [0, 0.25, 0.75, 1]  # the tick's last step's λ
    log = (run / "log.txt").read_text()
    assert "class conditioning faded in from 0.008 to 0.024 kimg" in log and " cond 0.25 " in log


def test_resume_mid_fade_is_exact(tmp_path):
    labelled_opts(tmp_path)
    a, b = check_resume_continues_exactly(tmp_path, cond=True, cond_fade=(0.012, 0.04))
    assert 0 < b.D.epilogue.cond_strength == a.D.epilogue.cond_strength < 1


def test_resuming_a_network_without_the_head_is_refused(tmp_path):
    a = Trainer(labelled_opts(tmp_path, cond=True))
    snap = a.save_snapshot(tmp_path / "plain.safetensors")
    with pytest.raises(OptionsError, match="has no unconditional output"):
        Trainer(labelled_opts(tmp_path, cond=True, cond_fade=(0, 1), resume=str(snap)))


def test_a_snapshot_taken_mid_fade_loads_as_it_was_trained(tmp_path):
    import stylegan

    t = Trainer(labelled_opts(tmp_path, cond=True, cond_fade=(0.008, 0.024)))
    for _ in range(4):  # the next step would run at λ = 0.5
        t.step()
    snap = t.save_snapshot(tmp_path / "mid.safetensors")
    G = stylegan.load(snap)
    assert G.mapping.cond_strength == condition_strength((0.008, 0.024), 0.016) == 0.5
    t.G_ema.mapping.cond_strength = 0.5
    z, c = torch.randn(2, G.z_dim), torch.eye(3)[[0, 2]]
    torch.testing.assert_close(G(z, c, noise_mode="const"), t.G_ema(z, c, noise_mode="const"), rtol=0, atol=0)
    plain = Trainer(labelled_opts(tmp_path, cond=True)).save_snapshot(tmp_path / "plain.safetensors")
    assert stylegan.load(plain).mapping.cond_strength == 1.0


def test_a_transfer_from_a_faded_base_starts_conditional(tmp_path):
    from click.testing import CliRunner

    from stylegan.cli.main import main
    from stylegan.training.runs import read_resume

    t = Trainer(labelled_opts(tmp_path, cond=True, cond_fade=(0.004, 0.008)))
    for _ in range(3):
        t.step()
    snap = t.save_snapshot(tmp_path / "s.safetensors")
    r = CliRunner().invoke(main, ["convert", "--source", str(snap), "--dest", str(tmp_path / "base.safetensors"),
                                  "--networks", "G_ema,D"])
    assert r.exit_code == 0, r.output
    opts, base = read_resume(str(tmp_path / "base.safetensors"), str(tmp_path / "t"),
                             {"data": str(tmp_path / "data"), "workers": 0, "device": "cpu"})
    assert opts.cond and opts.cond_fade is None and base.config.D.uncond_head  # λ stays 1: D keeps its head
    u = Trainer(opts)
    u.step()
    assert u.D.epilogue.cond_strength == u.G.mapping.cond_strength == 1.0


def test_a_transfer_from_a_base_taken_mid_fade_keeps_its_strength_and_so_do_its_snapshots(tmp_path):
    """The packaged mnist32 is a snapshot at λ 0.73: a transfer from it (and a resume of that transfer, and its
    snapshots when loaded) keeps λ where the base was trained, instead of stepping the class input up to 1."""
    import stylegan
    from click.testing import CliRunner

    from stylegan.cli.main import main
    from stylegan.training.runs import read_resume

    t = Trainer(labelled_opts(tmp_path, cond=True, cond_fade=(0.008, 0.024)))
    for _ in range(4):
        t.step()
    snap = t.save_snapshot(tmp_path / "mid.safetensors")  # λ 0.5 (the step after would run at it)
    r = CliRunner().invoke(main, ["convert", "--source", str(snap), "--dest", str(tmp_path / "base.safetensors"),
                                  "--networks", "G_ema,D"])
    assert r.exit_code == 0, r.output
    held = stylegan.load(tmp_path / "base.safetensors").mapping.cond_strength
    assert held == condition_strength((0.008, 0.024), 0.016) == 0.5
    opts, base = read_resume(str(tmp_path / "base.safetensors"), str(tmp_path / "t"),
                             {"data": str(tmp_path / "data"), "workers": 0, "device": "cpu"})
    assert opts.cond_fade is None
    u = Trainer(opts)
    u._restore(base)
    u.step()
    assert u.D.epilogue.cond_strength == u.G.mapping.cond_strength == u.G_ema.mapping.cond_strength == held
    s2 = u.save_snapshot(tmp_path / "transfer.safetensors")
    assert stylegan.load(s2).mapping.cond_strength == held
    v = Trainer(opts)
    from stylegan.checkpoint import read_checkpoint

    v._restore(read_checkpoint(s2))
    assert v.D.epilogue.cond_strength == v.G.mapping.cond_strength == held


def test_saved_strength_reads_only_well_formed_metadata():
    from stylegan.training.loss import saved_condition_strength

    assert saved_condition_strength({"options": {"cond_fade": [10, 20]}, "kimg": 15}) == 0.5
    assert saved_condition_strength({"trained_with": {"cond_fade": [10, 20]}, "kimg": 12.5}) == 0.25
    assert saved_condition_strength({"cond_strength": 0.7, "options": {"cond_fade": None}, "kimg": 5}) == 0.7
    for bad in (1.5, -0.1, float("nan"), True, "0.5"):  # not a λ: read as if absent
        assert saved_condition_strength({"cond_strength": bad, "options": {"cond_fade": [10, 20]}, "kimg": 15}) == 0.5
    for extra in ({}, {"options": {"cond_fade": "ab"}, "kimg": 15}, {"options": {"cond_fade": [1, 2]}, "kimg": "x"},
                  {"options": {"cond_fade": [20, 10]}, "kimg": 15}, {"options": [1], "kimg": 1}):
        assert saved_condition_strength(extra) == 1.0  # as packaged: a crafted file cannot break loading

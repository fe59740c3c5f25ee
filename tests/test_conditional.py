"""Conditional networks: one answer to "no class given" in Python, on the command line (the page: test_serve),
class-aware truncation, and truncation options that do not fit the network."""
import pytest
import torch
from click.testing import CliRunner

import stylegan
from conftest import tiny_config
from stylegan.checkpoint import save_checkpoint
from stylegan.cli.main import main
from stylegan.networks import build_networks
from stylegan.tools.directions import edit, sefa


@pytest.fixture(scope="module")
def cond(tmp_path_factory):
    config = tiny_config(16, c_dim=3)
    nets = build_networks(config, seed=2)
    nets["G_ema"].mapping.w_avg.normal_()
    return save_checkpoint(tmp_path_factory.mktemp("cond") / "c.safetensors", config, nets)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_no_class_is_the_same_clear_error_in_python(cond):
    G = stylegan.load(cond)
    z = torch.randn(2, G.z_dim)
    for call in (lambda: G(z, c=None), lambda: G(z), lambda: G.mapping(z)):
        with pytest.raises(ValueError, match=r"conditional \(3 classes\): give c, one-hot labels \[N, 3\]"):
            call()
    with pytest.raises(ValueError, match=r"conditional \(3 classes\): give a class in \[0, 3\) \(--class"):
        edit(G, seed=1, directions=sefa(G, num=2), index=0, strengths=[0])
    assert edit(G, seed=1, directions=sefa(G, num=2), index=0, strengths=[0], class_idx=2).shape[0] == 1


@pytest.mark.parametrize("command", [["generate", "--seeds", "0-1"],
                                     ["style-mixing", "--rows", "1", "--cols", "2", "--styles", "0"]])
def test_no_class_on_the_command_line_is_refused_before_any_work(cond, tmp_path, command):
    r = run(*command, "--network", cond, "--outdir", tmp_path / "o")
    assert r.exit_code == 2 and "this network is conditional (3 classes): give --class 0-2" in r.output, r.output
    assert not (tmp_path / "o").exists()
    r = run(*command, "--network", cond, "--class", "3", "--outdir", tmp_path / "o")
    assert r.exit_code == 2 and "3 is not a class of this network: give 0-2" in r.output
    assert run(*command, "--network", cond, "--class", "1", "--outdir", tmp_path / "o").exit_code == 0


def test_class_truncation_pulls_towards_the_class_average(cond):
    G = stylegan.load(cond)
    z = torch.randn(4, G.z_dim)
    c = torch.eye(3)[[0, 0, 1, 2]]
    ws = G.mapping(z, c, truncation_psi=0, truncation_class=True)
    assert torch.equal(ws[0], ws[1]) and not torch.allclose(ws[0], ws[2])  # per class, whatever z
    avg = G.mapping.class_w_avg(c)
    assert torch.allclose(ws[:, 0], avg)
    assert torch.allclose(avg[0], G.mapping._w(torch.randn(20000, G.z_dim), torch.eye(3)[[0] * 20000]).mean(0),
                          atol=0.05 * float(avg[0].abs().max()) + 1e-3)  # it is the class's mean w
    ws_global = G.mapping(z, c, truncation_psi=0)
    assert torch.allclose(ws_global, G.mapping.w_avg.expand_as(ws_global))
    half = G.mapping(z, c, truncation_psi=0.5, truncation_class=True)
    assert torch.allclose(half, avg[:, None].lerp(G.mapping(z, c), 0.5), atol=1e-6)
    with torch.no_grad():  # new weights: the kept averages are those of the old weights, recomputed
        G.mapping.layers[0].weight.mul_(1.5)
    assert not torch.allclose(G.mapping.class_w_avg(c), avg)
    with pytest.raises(ValueError, match="one-hot"):
        G.mapping(z, torch.full((4, 3), 1 / 3), truncation_psi=0.5, truncation_class=True)


def test_class_truncation_keeps_the_packaged_digits_class():
    """mnist32 at ψ 0: with the class's own average every image reads as the requested digit."""
    from stylegan.metrics.digits import load_classifier

    G, net = stylegan.load("mnist32"), load_classifier()
    z = torch.randn(10, G.z_dim, generator=torch.Generator().manual_seed(0))
    c = torch.eye(10)
    with torch.no_grad():
        read = net(G(z, c, truncation_psi=0, truncation_class=True)).argmax(1)
        read_global = net(G(z, c, truncation_psi=0)).argmax(1)
    assert read.tolist() == list(range(10))
    assert len(set(read_global.tolist())) == 1  # the global average: one digit for every class


def test_trunc_class_on_the_command_line(cond, tmp_path):
    from PIL import Image
    import numpy as np

    r = run("generate", "--network", cond, "--seeds", "0-1", "--class", "1", "--trunc", "0", "--trunc-class",
            "--outdir", tmp_path / "a")
    assert r.exit_code == 0, r.output
    a0, a1 = (np.asarray(Image.open(tmp_path / "a" / f"seed000{i}.png")) for i in (0, 1))
    assert (a0 == a1).all()  # ψ 0: the class's average image for every seed
    assert run("generate", "--network", cond, "--seeds", "0", "--class", "2", "--trunc", "0", "--trunc-class",
               "--outdir", tmp_path / "b").exit_code == 0
    assert not (np.asarray(Image.open(tmp_path / "b" / "seed0000.png")) == a0).all()


def test_trunc_cutoff_past_the_ws_and_trunc_class_without_classes_are_refused(cond, tmp_path):
    G = stylegan.load(cond)
    with pytest.raises(ValueError, match=r"cutoff 1000 is outside \[0, 6\]"):
        G(torch.randn(1, G.z_dim), torch.eye(3)[:1], truncation_psi=0.5, truncation_cutoff=1000)
    r = run("generate", "--network", cond, "--seeds", "0", "--class", "0", "--trunc", "0.5", "--trunc-cutoff", "1000",
            "--outdir", tmp_path / "o")
    assert r.exit_code == 2 and "--trunc-cutoff: 1000 is past this network's 6 ws; give at most 6" in r.output
    assert not (tmp_path / "o").exists()
    assert run("generate", "--network", cond, "--seeds", "0", "--class", "0", "--trunc", "0.5", "--trunc-cutoff",
               "6", "--outdir", tmp_path / "o").exit_code == 0
    unconditional = save_checkpoint(tmp_path / "u.safetensors", tiny_config(16), build_networks(tiny_config(16)))
    r = run("generate", "--network", unconditional, "--seeds", "0", "--trunc-class", "--outdir", tmp_path / "u")
    assert r.exit_code == 2 and "--trunc-class: this network is unconditional" in r.output
    r = run("generate", "--network", unconditional, "--seeds", "0", "--class", "1", "--outdir", tmp_path / "u")
    assert r.exit_code == 2 and "--class: this network is unconditional" in r.output

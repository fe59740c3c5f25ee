"""Latent directions (SeFa, GANSpace) and editing along them."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import tiny_config
from stylegan.cli.main import main
from stylegan.networks import build_networks
from stylegan.tools.directions import Directions, edit, ganspace, parse_strengths, sefa, style_layers
from stylegan.tools.generate import z_from_seed


@pytest.fixture(scope="module")
def G():
    return build_networks(tiny_config(16, c_dim=3), seed=0)["G_ema"].eval()


def test_sefa_directions_are_the_top_eigenvectors_of_the_affine_weights(G):
    layers = style_layers(G)
    assert [i for i, _ in layers] == sorted(i for i, _ in layers) and layers[-1][0] == G.num_ws - 1
    for chosen in (None, [0, 1, 2]):
        d = sefa(G, num=4, layers=chosen)
        A = np.concatenate([aff.weight.detach().double().numpy() for i, aff in layers
                            if chosen is None or i in chosen])
        A /= np.linalg.norm(A, axis=1, keepdims=True)
        vals, vecs = np.linalg.eigh(A.T @ A)  # float64 reference
        top = vecs[:, ::-1][:, :4].T
        np.testing.assert_allclose(np.abs(np.sum(d.directions * top, axis=1)), 1, atol=1e-5)
        np.testing.assert_allclose(d.directions @ d.directions.T, np.eye(4), atol=1e-5)


def test_directions_refuses_layers_past_the_networks_ws(G, tmp_path):
    """`directions --layers 0-40` wrote a file with exit 0 (the layers past the ws ignored) that `edit` refused."""
    from stylegan.checkpoint import save_checkpoint

    for layers in ([0, G.num_ws], [-1]):
        with pytest.raises(ValueError, match=rf"layers must be in \[0, {G.num_ws}\)"):
            sefa(G, num=2, layers=layers)
    net = save_checkpoint(tmp_path / "net.safetensors", tiny_config(16, c_dim=3), {"G_ema": G})
    r = CliRunner().invoke(main, ["directions", "--network", str(net), "--layers", "0-40", "--out",
                                  str(tmp_path / "d.npz")])
    assert r.exit_code == 1 and "layers must be in" in r.output and not (tmp_path / "d.npz").exists()


def test_ganspace_components_carry_the_variance_of_w(G):
    d = ganspace(G, num=3, samples=2000)
    assert np.all(np.diff(d.sigma) <= 0) and d.sigma[0] > 0
    z = torch.randn(2000, G.z_dim, generator=torch.Generator().manual_seed(5))
    c = torch.eye(3)[torch.randint(3, (2000,), generator=torch.Generator().manual_seed(6))]
    with torch.no_grad():
        w = G.mapping(z, c)[:, 0].numpy()
    proj = (w - w.mean(0)) @ d.directions.T
    np.testing.assert_allclose(proj.std(0), d.sigma, rtol=0.1)  # other samples, the same spread


def test_strength_zero_is_the_original_image_exactly(G):
    d = sefa(G, num=2)
    imgs = edit(G, 7, d, 1, [0.0, 2.0], truncation_psi=0.7, class_idx=2)
    with torch.no_grad():
        ref = G(z_from_seed(7, G.z_dim), torch.eye(3)[[2]], truncation_psi=0.7, noise_mode="const")
    assert torch.equal(imgs[:1], ref) and not torch.equal(imgs[1:], ref)
    # Editing only layer 0 changes less of the image than editing all layers.
    one = edit(G, 7, d, 1, [4.0], layers=[0], class_idx=2)
    every = edit(G, 7, d, 1, [4.0], class_idx=2)
    assert 0 < (one - ref).abs().mean() < (every - ref).abs().mean()


def test_directions_files_and_strengths(tmp_path):
    d = Directions(np.eye(3, 8, dtype=np.float32), np.ones(3, np.float32), "sefa", [0, 2])
    back = Directions.load(d.save(tmp_path / "d.npz"))
    assert np.array_equal(back.directions, d.directions) and back.layers == [0, 2] and back.method == "sefa"
    np.save(tmp_path / "evil.npy", np.array([object()], dtype=object), allow_pickle=True)
    (tmp_path / "evil.npz").write_bytes((tmp_path / "evil.npy").read_bytes())
    with pytest.raises(ValueError, match="not a directions file"):
        Directions.load(tmp_path / "evil.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not a directions file"):
        Directions.load(tmp_path / "plain.npy")
    (tmp_path / "empty.npz").write_bytes(b"")  # these two ended `edit` with 'Aborted!' and a traceback
    (tmp_path / "truncated.npz").write_bytes((tmp_path / "d.npz").read_bytes()[:100])
    for name in ("empty.npz", "truncated.npz"):
        with pytest.raises(ValueError, match="not a directions file"):
            Directions.load(tmp_path / name)
    np.savez(tmp_path / "nan.npz", directions=np.full((1, 8), np.nan), sigma=np.ones(1), method="x", layers=[])
    with pytest.raises(ValueError, match="finite"):
        Directions.load(tmp_path / "nan.npz")
    assert parse_strengths("-3:3:7") == [-3, -2, -1, 0, 1, 2, 3] and parse_strengths("-2,0,2") == [-2, 0, 2]
    for bad in ("1:2", "nan,1", "0:1:1000", "a"):
        with pytest.raises(ValueError):
            parse_strengths(bad)


def test_commands(G, tmp_path):
    from stylegan.checkpoint import save_checkpoint

    net = save_checkpoint(tmp_path / "net.safetensors", tiny_config(16, c_dim=3), {"G_ema": G})
    run = lambda *a: CliRunner().invoke(main, [str(v) for v in a])  # noqa: E731
    r = run("directions", "--network", net, "--method", "ganspace", "--num", "3", "--samples", "500",
            "--out", tmp_path / "g.npz")
    assert r.exit_code == 0, r.output
    r = run("edit", "--network", net, "--seeds", "1,2", "--class", "1", "--directions", tmp_path / "g.npz",
            "--index", "2", "--strength", "-2:2:5", "--outdir", tmp_path / "e")
    assert r.exit_code == 0, r.output
    from PIL import Image
    assert Image.open(tmp_path / "e" / "seed0002-dir2.png").size == (5 * 16, 16)
    r = run("edit", "--network", net, "--seeds", "1", "--class", "1", "--directions", tmp_path / "g.npz",
            "--index", "3", "--outdir", tmp_path / "f")
    assert r.exit_code == 1 and "index must be in [0, 3)" in r.output
    r = run("directions", "--network", net, "--method", "sefa", "--out", tmp_path / "g.npz")
    assert r.exit_code == 1 and "already exists" in r.output


def test_label_direction_separates_held_out_samples(G, tmp_path):
    from stylegan.tools.directions import label_direction

    d = label_direction(G, 1, samples=600)
    assert d.directions.shape == (1, G.w_dim) and abs(np.linalg.norm(d.directions[0]) - 1) < 1e-5
    assert d.accuracy > 0.9  # the class is in w (its embedding), so a plane separates it
    back = Directions.load(d.save(tmp_path / "l.npz"))
    assert back.accuracy == pytest.approx(d.accuracy) and back.method == "labels"


def test_label_direction_from_a_classifier_reading_the_images():
    """Unconditional: the label is what a classifier reads in each image (here: which half is brighter)."""
    from stylegan.tools.directions import label_direction

    Gu = build_networks(tiny_config(16, img_channels=1), seed=1)["G_ema"].eval()

    class Brighter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, img):
            top, bottom = img[:, :, :8].mean(dim=[1, 2, 3]), img[:, :, 8:].mean(dim=[1, 2, 3])
            return torch.stack([bottom - top, top - bottom, *[top * 0 - 9] * 8], dim=1)  # class 1: top brighter

    d = label_direction(Gu, 1, samples=800, classifier=Brighter())
    assert 0.5 < d.accuracy <= 1 and d.sigma[0] > 0
    with pytest.raises(ValueError, match="appears in 0 of"):
        label_direction(Gu, 5, samples=200, classifier=Brighter())


def test_edit_a_projection(G, tmp_path):
    from stylegan.checkpoint import save_checkpoint

    net = save_checkpoint(tmp_path / "net.safetensors", tiny_config(16, c_dim=3), {"G_ema": G})
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, G.z_dim), torch.eye(3)[[0, 1]])
    np.savez(tmp_path / "projected_w.npz", w=ws.numpy())
    sefa(G, num=2).save(tmp_path / "s.npz")
    r = CliRunner().invoke(main, ["edit", "--network", str(net), "--projected-w", str(tmp_path / "projected_w.npz"),
                                  "--directions", str(tmp_path / "s.npz"), "--strength", "0,1", "--outdir",
                                  str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    from PIL import Image
    strip = np.asarray(Image.open(tmp_path / "o" / "proj01-dir0.png"))
    with torch.no_grad():
        from stylegan.images import to_uint8
        original = to_uint8(G.synthesis(ws[1:], noise_mode="const"))[0]
    assert np.array_equal(strip[:, :16], original)  # strength 0: the projection's own image


def test_labels_on_an_unconditional_colour_network_is_refused_not_read_by_the_digit_classifier(tmp_path):
    """The shipped digit classifier reads a third of twemoji32's emoji as a digit with ≥ 90 % probability: its
    reading of a colour network is no label, so the labels method refuses it in one line, before any sampling."""
    from stylegan.checkpoint import save_checkpoint
    from stylegan.networks import build_generator

    G = build_generator(tiny_config(16)).eval()
    net = save_checkpoint(tmp_path / "rgb.safetensors", tiny_config(16), {"G_ema": G})
    r = CliRunner().invoke(main, ["directions", "--network", str(net), "--method", "labels", "--label", "3",
                                  "--samples", "200", "--out", str(tmp_path / "d.npz")])
    assert r.exit_code == 1 and "3-channel images, not digits" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "d.npz").exists()

"""Non-square images end to end (4:3 as the StyleGAN2 paper's LSUN Car at 512×384, 2:1, portrait): the dataset
tool's --aspect, the networks' base stage, training (DiffAugment, ADA, path length), and every tool that makes
images (generate, video, serve, export, projection target, metrics' data check)."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import stylegan
from stylegan.checkpoint import read_checkpoint, save_checkpoint
from stylegan.cli.main import main
from stylegan.config import ConfigError, NetworkConfig, stage_shape
from stylegan.data.dataset import ImageDataset, image_base
from stylegan.data.tool import DatasetError, convert_dataset, to_aspect
from stylegan.presets import make_config
from stylegan.training.loop import train
from stylegan.training.options import TrainingOptions
from stylegan.training.runs import latest_snapshot

from conftest import tiny_config


def rect_config(base=(3, 4), resolution=32, **kw):
    return tiny_config(resolution=resolution, base=base, **kw)


def test_stage_shapes_and_validation():
    assert stage_shape(512, 3, 4) == (384, 512) and stage_shape(32, 4, 2) == (32, 16)
    c = rect_config()
    assert c.G.img_shape == (24, 32) and c.D.img_shape == (24, 32)
    for bad in [(2, 3), (0, 4), (5, 4), (4, 5)]:
        c = tiny_config(resolution=32)
        c.G.base_h, c.G.base_w = bad
        with pytest.raises(ConfigError, match="base_h and base_w"):
            c.G.validate()
    c = rect_config()
    c.D.base_h = 4
    with pytest.raises(ConfigError, match="image sizes differ"):
        c.validate()
    with pytest.raises(ConfigError, match="StyleGAN2 E/F networks only"):
        make_config("stylegan-f", resolution=32, base=(3, 4))
    # Saved and read back; a configuration written before non-square networks existed reads as square.
    c = rect_config()
    assert NetworkConfig.from_json(c.to_json()).G.img_shape == (24, 32)
    d = json.loads(tiny_config(resolution=32).to_json())
    for part in ("G", "D"):
        d[part].pop("base_h"), d[part].pop("base_w")
    assert NetworkConfig.from_dict(d).G.img_shape == (32, 32)


@pytest.mark.parametrize("base", [(3, 4), (4, 3), (2, 4), (1, 4)])
def test_networks_make_and_take_the_rectangle(base):
    config = rect_config(base)
    nets = stylegan.build_networks(config, seed=0)
    h, w = config.G.img_shape
    img = nets["G"](torch.randn(3, 32), noise_mode="random")
    assert img.shape == (3, 3, h, w)
    logits = nets["D"](img)
    assert logits.shape == (3, 1)
    logits.sum().backward()
    assert all(p.grad is not None for p in nets["G"].parameters() if p.requires_grad)
    assert {n: s for n, s in nets["G"].synthesis.noise_shapes().items()}["32.conv1"] == (h, w)
    with pytest.raises(ValueError, match=f"D expects images \\[N, 3, {h}, {w}\\]"):
        nets["D"](torch.zeros(1, 3, 32, 32) if (h, w) != (32, 32) else torch.zeros(1, 3, 16, 16))


def test_square_networks_are_unchanged():
    """The papers' networks keep every parameter name and shape (the fixtures of the authors' code pin the
    numbers)."""
    a = stylegan.build_networks(tiny_config(resolution=32), seed=0)
    b = stylegan.build_networks(rect_config((4, 4)), seed=0)
    for k in ("G", "D"):
        sa, sb = a[k].state_dict(), b[k].state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)


def test_checkpoint_round_trip(tmp_path):
    config = rect_config((4, 2))
    nets = stylegan.build_networks(config, seed=1)
    path = save_checkpoint(tmp_path / "r.safetensors", config, nets)
    G = stylegan.load(path)
    z = torch.randn(2, 32)
    torch.testing.assert_close(G(z), nets["G_ema"](z))
    assert read_checkpoint(path).config.D.img_shape == (32, 16)


def _photos(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for i, (w, h) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        a = rng.rand(3)
        img = np.stack([np.sin(xx / (3 + 5 * a[0])), np.cos(yy / (4 + 3 * a[1])), np.sin((xx + yy) / 7)], -1)
        Image.fromarray(((img * 0.5 + 0.5) * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def test_dataset_tool_aspect(tmp_path):
    src = _photos(tmp_path / "src", [(80, 50), (50, 80), (64, 48), (100, 100)] * 4)
    summary = convert_dataset(src, tmp_path / "out", 32, aspect="4:3", progress=False)
    assert "32x24" in str(summary)
    ds = ImageDataset(tmp_path / "out")
    assert ds.image_shape == [3, 24, 32] and ds.resolution == 32 and ds.base == (3, 4) and len(ds) == 16
    # The crop is the largest centered 4:3 box: a 64x48 image is only resized.
    img = Image.open(src / "002.png")
    np.testing.assert_array_equal(np.asarray(to_aspect(img, 64, "4:3")), np.asarray(img))
    with pytest.raises(DatasetError, match="aspect must be one of"):
        convert_dataset(src, tmp_path / "o2", 32, aspect="5:4", progress=False)
    with pytest.raises(DatasetError, match="leave out transform"):
        convert_dataset(src, tmp_path / "o3", 32, aspect="4:3", transform="center-crop", progress=False)
    with pytest.raises(DatasetError, match="needs a resolution"):
        convert_dataset(src, tmp_path / "o4", None, aspect="4:3", progress=False)
    result = CliRunner().invoke(main, ["dataset", "--source", str(src), "--dest", str(tmp_path / "o5"),
                                       "--resolution", "16", "--aspect", "1:2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert ImageDataset(tmp_path / "o5").image_shape == [3, 16, 8]


def test_image_base():
    assert image_base(24, 32) == (3, 4) and image_base(32, 8) == (4, 1) and image_base(16, 16) == (4, 4)
    assert image_base(20, 32) is None and image_base(24, 24) is None and image_base(3, 2) is None


@pytest.fixture(scope="module")
def rect_run(tmp_path_factory):
    """A 4:3 dataset (32x24) trained a few steps; the newest snapshot."""
    tmp = tmp_path_factory.mktemp("rect")
    src = _photos(tmp / "src", [(64, 48), (80, 60), (90, 60), (48, 36)] * 6)
    convert_dataset(src, tmp / "data", 32, aspect="4:3", progress=False)
    opts = TrainingOptions(outdir=str(tmp / "runs"), data=str(tmp / "data"), cfg="small", cbase=256, cmax=32,
                           batch=4, kimg=0.02, tick=0.01, snap=1, workers=0, device="cpu", seed=1)
    train(opts)
    return tmp, latest_snapshot(tmp / "runs")


def test_a_4_3_dataset_trains_and_generates_4_3_images(rect_run, tmp_path):
    tmp, snap = rect_run
    G = stylegan.load(snap)
    assert G.img_shape == (24, 32)
    run = snap.parent
    assert Image.open(run / "fakes_init.png").size[0] * 3 == Image.open(run / "fakes_init.png").size[1] * 4
    result = CliRunner().invoke(main, ["generate", "--network", str(snap), "--seeds", "0-3", "--grid",
                                       "--outdir", str(tmp_path / "gen")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "gen" / "seed0000.png").size == (32, 24)
    assert Image.open(tmp_path / "gen" / "grid.png").size == (64, 48)
    result = CliRunner().invoke(main, ["video", "--network", str(snap), "--seeds", "0,1", "--w-frames", "2",
                                       "--output", str(tmp_path / "v.gif")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.size == (32, 24)


@pytest.mark.parametrize("extra", [dict(aug="ada", p=0.5, ada_kimg=100), dict(cfg="stylegan2", pl_weight=2.0,
                                                                              style_mixing=0.9, map_depth=2)])
def test_augmentation_and_path_length_take_rectangles(rect_run, tmp_path, extra):
    tmp, _ = rect_run
    base = dict(outdir=str(tmp_path / "runs"), data=str(tmp / "data"), cfg="small", cbase=256, cmax=32, batch=4,
                kimg=0.012, tick=0.004, snap=10, workers=0, device="cpu", seed=2, pl_interval=1, r1_interval=1)
    base.update(extra)
    train(TrainingOptions(**base))
    stats = [json.loads(line) for line in next((tmp_path / "runs").iterdir()).joinpath("stats.jsonl").open()]
    assert stats and all(np.isfinite(v) for s in stats for k, v in s.items() if k.startswith("Loss/"))


def test_serve_and_export_make_the_rectangle(rect_run, tmp_path):
    from starlette.testclient import TestClient

    from stylegan.serve import create_app

    _, snap = rect_run
    G = stylegan.load(snap)
    with TestClient(create_app(G, name="rect", sliders=0)) as client:
        info = client.get("/api/info").json()
        assert (info["width"], info["height"], info["resolution"]) == (32, 24, 32)
        r = client.get("/api/image?seed=3&psi=0.7")
        assert r.status_code == 200
        with Image.open(__import__("io").BytesIO(r.content)) as im:
            assert im.size == (32, 24)
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from stylegan.serve.static_site import site_meta
    from stylegan.tools.export import check_onnx, export_onnx

    path = export_onnx(G, tmp_path / "g.onnx", noise_mode="random")  # the noise images are inputs, h x w each
    assert check_onnx(G, path, noise_mode="random") < 1e-4
    meta = site_meta(G, "t", None, 0.7, None)
    assert (meta["width"], meta["height"]) == (32, 24)
    assert meta["noise_size"] == sum(h * w for _, h, w in meta["noise_layers"])


def test_projection_target_is_cropped_to_the_aspect(tmp_path):
    from stylegan.tools.projector import load_target

    Image.fromarray(np.zeros((100, 300, 3), np.uint8)).save(tmp_path / "wide.png")
    assert load_target(tmp_path / "wide.png", (24, 32), 3).shape == (1, 3, 24, 32)
    assert load_target(tmp_path / "wide.png", 16, 1).shape == (1, 1, 16, 16)


def test_metrics_score_the_rectangle_against_the_data(rect_run, monkeypatch, tmp_path):
    """FID of the 4:3 generator against the 4:3 data, through the registry (a cheap stand-in feature network
    that records the image sizes it is given)."""
    from stylegan.metrics import registry

    from test_metrics import CountingNet

    seen = []

    class Recording(CountingNet):
        def forward(self, images):
            seen.append(tuple(images.shape[2:]))
            return super().forward(images)

    net = Recording()
    monkeypatch.setattr(registry.MetricOptions, "inception_net", lambda self: net)
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    tmp, snap = rect_run
    rec = registry.compute_metric("fid1k_full", stylegan.load(snap), str(tmp / "data"), progress=False,
                                  batch_size=32)
    assert np.isfinite(rec["results"]["fid1k_full"]) and rec["num_real"] == 24
    assert set(seen) == {(24, 32)}

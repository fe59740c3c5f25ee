"""StyleGAN3 through the tools, on a tiny random StyleGAN3-T (and R where cheap) at 32²: style mixing by ws
ranges, videos that turn and travel, projection without noise maps, SeFa on the alias-free affines and edits,
the service's translate/rotate parameters, ONNX export and the static site; training (16² data, as
tests/test_training.py): exact resume, ADA, metrics at snapshots, two processes."""
import io
import json
from unittest import mock

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import stylegan
from conftest import tiny_config
from stylegan.checkpoint import save_checkpoint
from stylegan.cli.main import main
from stylegan.config import DiscriminatorConfig, GeneratorConfig, NetworkConfig
from stylegan.images import to_uint8
from stylegan.networks import build_networks
from stylegan.networks.stylegan3 import set_input_transform


def _config(arch: str = "stylegan3-t") -> NetworkConfig:
    g = GeneratorConfig(z_dim=16, w_dim=16, resolution=32, map_depth=2, cbase=256, cmax=8, arch=arch, noise=False,
                        num_fp16_res=0, conv_clamp=256, w_avg_beta=0.998)
    d = DiscriminatorConfig(resolution=32, cbase=256, cmax=8, num_fp16_res=0)
    return NetworkConfig(family="stylegan3", cfg=arch, G=g, D=d)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """The checkpoint of a tiny StyleGAN3-T whose input affine is not the identity (as after training)."""
    torch.set_num_threads(1)
    nets = build_networks(_config(), seed=0)
    with torch.no_grad():
        nets["G_ema"].synthesis.input.affine.weight.normal_(0, 0.1)
    return save_checkpoint(tmp_path_factory.mktemp("sg3") / "t.safetensors", _config(), nets)


@pytest.fixture(scope="module")
def G(net):
    return stylegan.load(net)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_info_and_the_tools_that_cannot_apply(net, tmp_path):
    """info describes the alias-free layers; noise-study (no noise inputs) and resolution-study (no output per
    resolution) refuse in one line."""
    r = run("info", "--network", net)
    assert r.exit_code == 0 and "Fourier-feature input, no noise, filtered leaky ReLU" in r.output
    for args in (("noise-study", "--realizations", "2"), ("resolution-study", "--num", "2")):
        r = run(*args, "--network", net, "--outdir", tmp_path / args[0])
        assert r.exit_code != 0 and isinstance(r.exception, SystemExit), r.output
        assert r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1, r.output


def test_style_mixing_takes_the_chosen_ws(G, net, tmp_path):
    from stylegan.tools.style_mixing import style_mixing_grid

    _, images = style_mixing_grid(G, [1], [2], list(range(G.num_ws)))
    assert np.array_equal(images[(1, 2)], images[(2, 2)])  # all 16 ws from the column: the column's image
    _, images = style_mixing_grid(G, [1], [2], [8, 9])
    assert not np.array_equal(images[(1, 2)], images[(1, 1)]) and not np.array_equal(images[(1, 2)], images[(2, 2)])
    r = run("style-mixing", "--network", net, "--rows", "1,2", "--cols", "3", "--styles", "8-15", "--outdir", tmp_path)
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "grid.png").size == (2 * 32, 3 * 32)
    r = run("style-mixing", "--network", net, "--rows", "1", "--cols", "3", "--styles", "16", "--outdir",
            tmp_path / "x")
    assert r.exit_code != 0 and "[0, 16)" in r.output


def test_video_turns_and_travels(G, net, tmp_path):
    from stylegan.tools.video import camera, interpolation_frames

    assert camera(0.0, 1, 0.1) == ((0.0, 0.0), 0.0)
    (tx, ty), angle = camera(0.5, 2, 0.1)
    assert abs(tx) < 1e-12 and ty == pytest.approx(0.2) and angle == 360.0
    plain = list(interpolation_frames(G, [1, 2], w_frames=4))
    moving = list(interpolation_frames(G, [1, 2], w_frames=4, rotate_turns=1, translate_circle=0.1))
    assert len(moving) == len(plain) == 8 and np.array_equal(moving[0], plain[0])  # t = 0: in place
    assert all(not np.array_equal(m, p) for m, p in zip(moving[1:], plain[1:]))
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))  # restored
    r = run("video", "--network", net, "--seeds", "1,2", "--w-frames", "3", "--rotate-turns", "1",
            "--translate-circle", "0.05", "--output", tmp_path / "v.gif")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "v.gif").n_frames == 6
    sg2 = save_checkpoint(tmp_path / "sg2.safetensors", tiny_config(16), build_networks(tiny_config(16), seed=0))
    r = run("video", "--network", sg2, "--seeds", "1,2", "--w-frames", "2", "--rotate-turns", "1", "--output",
            tmp_path / "w.gif")
    assert r.exit_code != 0 and "needs a StyleGAN3" in r.output and not (tmp_path / "w.gif").exists()


def test_projection_optimizes_w_alone(G):
    from stylegan.tools.projector import ProjectionConfig, project

    with torch.no_grad():
        target = G(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)))
    mse = lambda a, b: (a - b).square().mean(dim=[1, 2, 3])  # noqa: E731
    proj = project(G, target, mse, ProjectionConfig(num_steps=20, w_avg_samples=200), progress=False)
    assert proj.noise == {} and proj.w.shape == (1, 16, 16)
    assert proj.final_distance < proj.distances[0]
    assert all(np.isfinite(proj.losses)) and proj.losses == proj.distances[:-1]  # no noise term


def test_project_command(net, G, tmp_path):
    from stylegan.metrics.features import load_lpips

    try:
        load_lpips()
    except Exception as e:  # noqa: BLE001 - any failure to find the weights means: skip, saying why
        pytest.skip(f"LPIPS (VGG16) weights not available: {e}")
    with torch.no_grad():
        Image.fromarray(to_uint8(G(torch.randn(1, 16)))[0]).save(tmp_path / "t.png")
    r = run("project", "--network", net, "--target", tmp_path / "t.png", "--num-steps", "3", "--save-video",
            "--outdir", tmp_path / "p")
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"target.png", "proj.png", "projected_w.npz",
                                                            "losses.json", "proj.mp4"}
    r = run("generate", "--network", net, "--projected-w", tmp_path / "p" / "projected_w.npz", "--outdir",
            tmp_path / "g")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output  # the projection names the network it was made with: this one


@pytest.mark.parametrize("arch", ["stylegan3-t", "stylegan3-r"])
def test_sefa_uses_the_alias_free_affines(arch, G):
    from stylegan.tools.directions import sefa, style_layers

    G = G if arch == "stylegan3-t" else build_networks(_config(arch), seed=0)["G_ema"]
    layers = style_layers(G)
    assert [i for i, _ in layers] == list(range(G.num_ws))
    assert layers[0][1] is G.synthesis.input.affine and layers[-1][1] is G.synthesis.layers[-1].affine
    d = sefa(G, num=4)
    assert d.directions.shape == (4, 16) and np.allclose(np.linalg.norm(d.directions, axis=1), 1, atol=1e-5)
    assert not np.allclose(sefa(G, num=4, layers=[1, 2]).directions, d.directions)


def test_directions_and_edit_commands(net, G, tmp_path):
    r = run("directions", "--network", net, "--method", "sefa", "--num", "3", "--layers", "1-6", "--out",
            tmp_path / "d.npz")
    assert r.exit_code == 0, r.output
    r = run("edit", "--network", net, "--seeds", "4", "--directions", tmp_path / "d.npz", "--strength", "-2,0,2",
            "--outdir", tmp_path / "e")
    assert r.exit_code == 0, r.output
    strip = np.asarray(Image.open(tmp_path / "e" / "seed0004-dir0.png"))
    assert strip.shape == (32, 96, 3)
    run("generate", "--network", net, "--seeds", "4", "--fp32", "--outdir", tmp_path / "g")
    assert np.array_equal(strip[:, 32:64], np.asarray(Image.open(tmp_path / "g" / "seed0004.png")))  # strength 0
    assert not np.array_equal(strip[:, :32], strip[:, 32:64])


def test_serve_translates_and_rotates_stylegan3_images_only(G):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from stylegan.serve import create_app
    from stylegan.tools.generate import z_from_seed

    with TestClient(create_app(G, name="sg3", sliders=2)) as c:
        info = c.get("/api/info").json()
        assert info["movable"] and info["num_ws"] == 16 and info["direction_method"] == "sefa"
        mix = c.get("/api/mix", params={"seed_a": 1, "seed_b": 2}).content
        plain = c.get("/api/image", params={"seed": 3}).content
        r = c.get("/api/image", params={"seed": 3, "translate_x": 0.25, "translate_y": -0.125, "rotate": 30})
        assert r.status_code == 200 and r.content != plain and "moved" in r.headers["content-disposition"]
        moved = np.asarray(Image.open(io.BytesIO(r.content)))
        assert c.get("/api/image", params={"seed": 3, "rotate": 0, "translate_x": -0.0}).content == plain
        assert c.get("/api/mix", params={"seed_a": 1, "seed_b": 2}).content == mix  # the identity again
        for bad in ({"rotate": 400}, {"translate_x": "nan"}, {"translate_y": 2}):
            assert c.get("/api/image", params={"seed": 3, **bad}).status_code == 422, bad
        r = c.get("/api/mix", params={"seed_a": 1, "seed_b": 2, "rotate": 5})
        assert r.status_code == 422 and "StyleGAN3" in r.json()["message"]
        assert 'id="move"' in c.get("/").text
    with torch.no_grad():
        set_input_transform(G, (0.25, -0.125), 30)
        ref = to_uint8(G(z_from_seed(3, 16)))[0]
        set_input_transform(G)
    assert np.abs(moved.astype(int) - ref.astype(int)).max() <= 1
    sg2 = build_networks(tiny_config(16), seed=0)["G_ema"].eval()
    with TestClient(create_app(sg2, sliders=0)) as c:
        assert not c.get("/api/info").json()["movable"]
        r = c.get("/api/image", params={"seed": 3, "rotate": 5})
        assert r.status_code == 422 and "StyleGAN3" in r.json()["message"]


def test_serve_page_moves_stylegan3_images(G, chromium):
    """In headless Chromium: the move sliders show for a StyleGAN3 network, a rotation reaches the image request
    and the permalink, the reset returns the unmoved image; a StyleGAN2 network's page hides them."""
    pytest.importorskip("uvicorn")
    from playwright.sync_api import expect

    from stylegan.serve import create_app
    from stylegan.serve.background import BackgroundServer

    with BackgroundServer(create_app(G, name="sg3", sliders=0)) as server:
        page = chromium.new_page()
        page.set_default_timeout(30_000)
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(server.url + "?seed=5")
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator(".loading")).to_have_count(0, timeout=120_000)
        img = page.locator("#main-img")
        expect(page.locator("#move")).to_be_visible()
        before = img.get_attribute("data-src")
        page.locator("#rot").fill("30")
        expect(img).to_have_attribute("data-src", before + "&rotate=30", timeout=60_000)
        assert "rot=30" in page.url and page.locator("#rot-out").text_content() == "30"
        page.locator("#tx").fill("0.1")
        expect(img).to_have_attribute("data-src", before + "&translate_x=0.1&rotate=30", timeout=60_000)
        page.click("#move-reset")
        expect(img).to_have_attribute("data-src", before, timeout=60_000)
        assert "rot=" not in page.url and problems == []
        page.close()
    sg2 = build_networks(tiny_config(16), seed=0)["G_ema"].eval()
    with BackgroundServer(create_app(sg2, sliders=0)) as server:
        page = chromium.new_page()
        page.goto(server.url + "?seed=5&rot=30")
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator(".loading")).to_have_count(0, timeout=120_000)
        expect(page.locator("#move")).to_be_hidden()
        assert "rotate" not in page.locator("#main-img").get_attribute("data-src") and "rot=" not in page.url
        page.close()


def test_shared_weight_modulation_equals_the_grouped_one(G):
    """What the ONNX graph computes (no group per sample, so that the batch is free) is the network's function."""
    z = torch.randn(3, 16)
    with torch.no_grad():
        a = G(z)
        with mock.patch("torch.compiler.is_exporting", return_value=True):
            b = G(z)
    assert (a - b).abs().max() <= 1e-5 * a.abs().max()


def test_export_command_refuses_what_a_stylegan3_network_lacks(net, tmp_path):
    """--noise random (no noise inputs) for StyleGAN3, --transform-input (no Fourier input) for others: one line,
    before any tracing."""
    pytest.importorskip("onnxruntime")
    sg2 = save_checkpoint(tmp_path / "sg2.safetensors", tiny_config(16), build_networks(tiny_config(16), seed=0))
    for network, option, words in ((net, ("--noise", "random"), "no noise inputs"),
                                   (sg2, ("--transform-input",), "needs a StyleGAN3")):
        r = run("export", "--network", network, "--onnx", tmp_path / "x.onnx", *option)
        assert r.exit_code != 0 and words in r.output and not (tmp_path / "x.onnx").exists(), r.output


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["stylegan3-t", "stylegan3-r"])
def test_onnx_export(arch, G, tmp_path):
    pytest.importorskip("onnxruntime")
    from stylegan.tools.export import check_onnx, export_onnx

    G = G if arch == "stylegan3-t" else build_networks(_config(arch), seed=0)["G_ema"].eval()
    path = export_onnx(G, tmp_path / "g.onnx")
    for n in (1, 3):
        assert check_onnx(G, path, n=n, seed=n) < 1e-4
    path = export_onnx(G, tmp_path / "m.onnx", movable=True)  # a transform input: translated and rotated
    assert check_onnx(G, path, n=2, movable=True) < 1e-4
    with pytest.raises(ValueError, match="no noise inputs"):
        export_onnx(G, tmp_path / "r.onnx", noise_mode="random")
    with pytest.raises(ValueError, match="needs a StyleGAN3"):
        export_onnx(build_networks(tiny_config(16), seed=0)["G_ema"].eval(), tmp_path / "s.onnx", movable=True)


@pytest.mark.slow
def test_static_site(G, tmp_path):
    pytest.importorskip("onnxruntime")
    from stylegan.serve.static_site import ORT_WEB_FILES, site_inputs, write_static_site

    ort = tmp_path / "ort"
    ort.mkdir()
    for name in ORT_WEB_FILES:  # the page is not run here: the files only have to be there
        (ort / name).write_text("")
    result = write_static_site(G, tmp_path / "site", title="T", ort_web=ort)
    meta = json.loads((tmp_path / "site" / "model.json").read_text())
    assert result["onnx_error"] < 1e-4 and meta["noise_size"] == 0 and meta["noise_layers"] == []
    assert meta["movable"] and (tmp_path / "site" / "const-noise.bin").stat().st_size == 0
    assert set(site_inputs(G, 1, 0.7)) == {"z", "psi", "transform"}


SG3_TRAIN = dict(cfg="stylegan3-t", cbase=256, cmax=16)


def test_training_resumes_exactly(tmp_path):
    from test_training import check_resume_continues_exactly

    a, b = check_resume_continues_exactly(tmp_path, aug="noaug", **SG3_TRAIN)
    for la, lb in zip(a.G.synthesis.layers, b.G.synthesis.layers):  # the magnitude averages came along
        assert torch.equal(la.magnitude_ema, lb.magnitude_ema) and la.magnitude_ema.item() != 1.0


def test_training_with_ada_and_metrics(tmp_path, monkeypatch):
    import stylegan.metrics.registry as registry
    from test_training import tiny_opts

    from stylegan.training.loop import train

    calls = []
    monkeypatch.setattr(registry, "compute_metric", lambda name, G, data, device, **kw: calls.append(
        (name, G.synthesis.num_ws)) or {"metric": name, "results": {name: 1.0}, "seconds": 0.1})
    run = train(tiny_opts(tmp_path, aug="ada", ada_kimg=0.01, target=0.99, p=0.5, metrics="fid1k_full",
                          kimg=0.016, tick=0.008, snap=1, **SG3_TRAIN))  # 4 steps: one ADA update, r_t < target
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["Progress/augment"] < 0.5
    assert (run / "metric-fid1k_full.jsonl").is_file() and calls == [("fid1k_full", 16)] * 2


def test_training_in_two_processes(tmp_path):
    import subprocess

    from test_training import _cli

    from stylegan.checkpoint import read_checkpoint
    from stylegan.training.runs import latest_snapshot

    r = subprocess.run(_cli(tmp_path, "--cfg", "stylegan3-t", "--cmax", "16", "--kimg", "0.008", "--procs", "2"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ckpt = read_checkpoint(latest_snapshot(tmp_path / "runs"))
    assert ckpt.extra["training"]["world_size"] == 2 and ckpt.config.cfg == "stylegan3-t"


@pytest.mark.slow
def test_static_site_in_chromium(G, tmp_path, chromium):
    """The site of a StyleGAN3 network in headless Chromium (onnxruntime-web from the cache): no noise choice,
    move sliders, and the browser's pixels are the network's image for the seed, ψ and move (to 1/255)."""
    import functools
    import http.server
    import threading

    from stylegan.serve.static_site import onnxruntime_web, site_inputs, write_static_site

    try:
        ort = onnxruntime_web(download=False)
    except ValueError as e:
        pytest.skip(f"onnxruntime-web is not available: {e}")
    write_static_site(G, tmp_path / "site", title="T", ort_web=ort)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        page = chromium.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/#seed=42&psi=0.7&tx=0.1&rot=30", timeout=60_000)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        assert not errors and page.locator("#noise-row").is_hidden() and page.locator("#move-row").is_visible()
        shown = np.array(page.evaluate("""() => { const c = document.querySelector('#main');
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""), np.uint8)
    finally:
        httpd.shutdown()
    x = site_inputs(G, 42, 0.7, translate=(0.1, 0.0), rotate=30)
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(x["z"]))
        ws = G.mapping.w_avg + 0.7 * (ws - G.mapping.w_avg)
        img = to_uint8(G.synthesis(ws, transform=torch.from_numpy(x["transform"])))[0]
        assert not np.array_equal(img, to_uint8(G.synthesis(ws))[0])  # it did move
    assert np.abs(shown.reshape(32, 32, 4)[..., :3].astype(int) - img.astype(int)).max() <= 1

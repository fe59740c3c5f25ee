"""The static "This X Does Not Exist" (``stylegan serve --static DIR``): the random-noise ONNX graph, the page's
latents, onnxruntime-web's files, and the site in headless Chromium (images appear, are the network's images for
the seed, are deterministic, and no request leaves the site's host).

The browser test needs Chromium, the Python package playwright and onnxruntime-web's npm package (downloaded
once from the npm registry into the cache, checked against its pinned SHA-256); it is skipped, saying which is
missing, otherwise.
"""
import functools
import hashlib
import http.server
import io
import tarfile
import threading
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import stylegan
from stylegan.checkpoint import save_checkpoint
from stylegan.serve import static_site
from stylegan.serve.static_site import ORT_WEB_FILES, const_noise, site_inputs, site_normals

from conftest import tiny_config

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install onnxscript)")

from stylegan.tools.export import check_onnx, export_onnx, noise_layout  # noqa: E402


@pytest.fixture(scope="module")
def cond_net(tmp_path_factory):
    config = tiny_config(resolution=16, img_channels=3, c_dim=4)
    path = save_checkpoint(tmp_path_factory.mktemp("site") / "cond.safetensors", config,
                           stylegan.build_networks(config, seed=3))
    G = stylegan.load(path)
    with torch.no_grad():  # noise strengths start at 0: make the noise visible
        for module in G.synthesis.modules():
            if hasattr(module, "strength") and isinstance(module.strength, torch.nn.Parameter):
                module.strength.fill_(0.5)
    return G, path


def _run(G, onnx_path, x):
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(["img"], x)[0]


def test_random_noise_export_matches_pytorch(cond_net, tmp_path):
    G, _ = cond_net
    path = export_onnx(G, tmp_path / "g.onnx", noise_mode="random")
    assert check_onnx(G, path, noise_mode="random") < 1e-4
    # The noise input really is the noise: zeros give noise mode none, the stored images give const.
    x = site_inputs(G, seed=5, psi=0.7, noise="none", class_index=2)
    z, c = torch.from_numpy(x["z"]), torch.from_numpy(x["c"])
    for mode in ("none", "const"):
        x["noise"] = np.zeros_like(x["noise"]) if mode == "none" else const_noise(G)[None]
        with torch.no_grad():
            ref = G(z, c, truncation_psi=0.7, noise_mode=mode).numpy()
        np.testing.assert_allclose(_run(G, path, x), ref, atol=1e-4)
    x["noise"] = site_inputs(G, seed=5, psi=0.7, noise="random")["noise"]
    assert np.abs(_run(G, path, x) - ref).max() > 1e-3


def test_noise_layout_is_the_synthesis_layers_coarse_to_fine(cond_net):
    G, _ = cond_net
    layout = noise_layout(G)
    assert [shape for _, shape in layout] == [(4, 4), (8, 8), (8, 8), (16, 16), (16, 16)]
    assert const_noise(G).shape == (sum(h * w for _, (h, w) in layout),)


def test_site_normals_are_deterministic_standard_normals():
    a = site_normals(7, 20001)
    assert a.dtype == np.float32 and a.shape == (20001,)
    np.testing.assert_array_equal(a, site_normals(7, 20001))
    assert not np.array_equal(a[:100], site_normals(8, 100))
    assert abs(a.mean()) < 0.03 and abs(a.std() - 1) < 0.03
    # A prefix is the same numbers: z does not depend on how much noise follows it.
    np.testing.assert_array_equal(site_normals(7, 33), a[:33])


def _tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_ort_web_from_a_tgz_takes_only_its_three_files(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    files = {f"package/dist/{f}": f.encode() for f in ORT_WEB_FILES}
    files["package/dist/../../evil.txt"] = b"no"
    files["package/README.md"] = b"readme"
    (tmp_path / "ort.tgz").write_bytes(_tgz(files))
    folder = static_site.onnxruntime_web(tmp_path / "ort.tgz")
    assert sorted(p.name for p in folder.iterdir()) == sorted(ORT_WEB_FILES)
    # Not the pinned release: unpacked beside the cache, which later runs trust without a check, not into it.
    assert folder != static_site.cache_folder() and not static_site.cache_folder().exists()
    monkeypatch.setattr(static_site, "ORT_WEB_SHA256", hashlib.sha256((tmp_path / "ort.tgz").read_bytes()).hexdigest())
    assert static_site.onnxruntime_web(tmp_path / "ort.tgz") == static_site.cache_folder()
    assert not (tmp_path / "evil.txt").exists()
    # The package folder and its dist/ are found as they are.
    pkg = tmp_path / "pkg" / "package" / "dist"
    pkg.mkdir(parents=True)
    for f in ORT_WEB_FILES:
        (pkg / f).write_text(f)
    assert static_site.onnxruntime_web(tmp_path / "pkg") == pkg


def test_ort_web_refuses_an_incomplete_archive_and_a_wrong_download(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "bad.tgz").write_bytes(_tgz({"package/dist/ort.wasm.min.js": b"x"}))
    with pytest.raises(ValueError, match="lacks"):
        static_site.onnxruntime_web(tmp_path / "bad.tgz")
    with pytest.raises(ValueError, match="not onnxruntime-web"):
        static_site.onnxruntime_web(tmp_path)
    good = _tgz({f"package/dist/{f}": f.encode() for f in ORT_WEB_FILES})
    for name, data in (("empty.tgz", b""), ("plain.tgz", b"not gzip"), ("truncated.tgz", good[:len(good) // 2])):
        (tmp_path / name).write_bytes(data)  # each one ended in a traceback (tarfile, EOFError, zlib)
        with pytest.raises(ValueError, match=f"{name}: not onnxruntime-web's npm package"):
            static_site.onnxruntime_web(tmp_path / name)

    class Fake(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(static_site.urllib.request, "urlopen", lambda *a, **k: Fake(b"tampered"))
    with pytest.raises(ValueError, match="SHA-256"):
        static_site.onnxruntime_web()
    assert not static_site.cache_folder().exists()


def test_cli_refuses_a_non_empty_folder(cond_net, tmp_path):
    from stylegan.cli.main import main

    _, path = cond_net
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["serve", "--network", str(path), "--static", str(tmp_path / "site")])
    assert result.exit_code != 0 and "not empty" in result.output and "--force" in result.output
    assert (tmp_path / "site" / "keep.txt").read_text() == "mine"


# ---- in the browser ------------------------------------------------------------------------------------------

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def site(cond_net, tmp_path_factory):
    try:
        ort_dir = static_site.onnxruntime_web()
    except ValueError as e:
        pytest.skip(f"onnxruntime-web is not available: {e}")
    G, _ = cond_net
    out = tmp_path_factory.mktemp("static") / "site"
    result = static_site.write_static_site(G, out, title="This Blob Does Not Exist", card="# tiny\nA test net.",
                                           class_names=["a", "b", "c", "d"], ort_web=ort_dir)
    assert result["onnx_error"] < 1e-4
    handler = functools.partial(_QuietHandler, directory=str(out))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield G, out, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page_factory(chromium):
    return chromium


def _pixels(page, selector):
    return np.array(page.evaluate(
        """(sel) => { const c = document.querySelector(sel);
                      return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""",
        selector), dtype=np.uint8)


def _expected_rgba(G, seed, psi, noise, cls):
    x = site_inputs(G, seed, psi, noise, cls)
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(x["z"]), torch.from_numpy(x["c"]))
        ws = G.mapping.w_avg + psi * (ws - G.mapping.w_avg)
        images, start = {}, 0
        for name, (h, w) in noise_layout(G):
            images[name] = torch.from_numpy(x["noise"][:, start:start + h * w]).reshape(1, 1, h, w)
            start += h * w
        img = G.synthesis(ws, noise=images)[0].numpy()
    rgb = np.clip(np.round((img + 1) * 127.5), 0, 255).transpose(1, 2, 0)
    return np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255)], axis=2).reshape(-1)


def test_static_site_in_chromium(site, page_factory):
    G, out, url = site
    page = page_factory.new_page()
    requested, errors = [], []
    page.on("request", lambda r: requested.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "#seed=42&psi=0.7&noise=random&class=2", timeout=TIMEOUT_MS)
    page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT_MS)
    assert not errors, errors
    assert page.title() == "This Blob Does Not Exist"
    first = _pixels(page, "#main")
    assert first.shape == (16 * 16 * 4,) and first[0::4].std() > 0
    # The browser's image is the network's image for that seed, class, ψ and noise (up to rounding).
    expected = _expected_rgba(G, 42, 0.7, "random", 2)
    assert np.abs(first.astype(int) - expected.astype(int)).max() <= 1
    # The eight "more" tiles are drawn, each another image.
    tiles = [_pixels(page, f"#more canvas:nth-child({i + 1})") for i in range(8)]
    assert all(t[0::4].std() > 0 for t in tiles) and len({t.tobytes() for t in tiles}) == 8
    # Deterministic: the same permalink in a fresh page gives the same pixels.
    again = page_factory.new_page()
    again.goto(url + "#seed=42&psi=0.7&noise=random&class=2", timeout=TIMEOUT_MS)
    again.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT_MS)
    np.testing.assert_array_equal(_pixels(again, "#main"), first)
    # Another class, another image; "New image" draws another seed.
    page.select_option("#class", "0")
    page.wait_for_function("() => document.querySelector('#caption').textContent.endsWith(', a')",
                           timeout=TIMEOUT_MS)
    assert not np.array_equal(_pixels(page, "#main"), first)
    page.click("#new")
    page.wait_for_function("() => document.body.dataset.seed !== '42'", timeout=TIMEOUT_MS)
    # No request ever went to another host.
    hosts = {urlsplit(u).netloc for u in requested if not u.startswith(("data:", "blob:"))}
    assert hosts == {urlsplit(url).netloc}, hosts
    assert any(u.endswith("model.onnx") for u in requested)

"""The faster synthesis paths of `stylegan serve --synthesis` (compiled: torch.compile; onnx: onnxruntime) give
the images of eager float32 within FAST_TOLERANCE, deterministically, and fall back to eager with one warning
line where they cannot be built; benchmarks/bench_serve.py runs at a tiny size."""
import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")

import stylegan  # noqa: E402
from PIL import Image  # noqa: E402
from stylegan.serve import create_app  # noqa: E402
from stylegan.serve.app import cache_headers  # noqa: E402
from stylegan.serve.render import FAST_TOLERANCE, Renderer  # noqa: E402

from conftest import tiny_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def G():
    return stylegan.build_networks(tiny_config(c_dim=3), seed=4)["G_ema"].eval().requires_grad_(False)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png))).astype(np.int16)


def _fast_renderer(G, path: str) -> Renderer:
    if path == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
        pytest.importorskip("onnxscript", reason="onnxscript is not installed")
    r = Renderer(G, synthesis=path)
    if r.synthesis != path:  # e.g. no C++ compiler for torch.compile here: the fallback has its own test
        pytest.skip(f"the {path} synthesis is unavailable here (see the warning logged)")
    return r


# torch.compile's first compilation in a process takes 15-30 s here (a C++ build): `make test-all` runs it.
@pytest.mark.parametrize("path", [pytest.param("compiled", marks=pytest.mark.slow), "onnx"])
def test_fast_path_equals_eager_within_tolerance(G, path):
    torch.set_num_threads(1)
    fast, eager = _fast_renderer(G, path), Renderer(G)
    with torch.inference_mode():
        for seed in range(6):
            ws = eager._ws([seed], 0.7, 1)
            assert float((fast.fast(ws) - G.synthesis(ws, noise_mode="const")).abs().max()) <= FAST_TOLERANCE
    for seed in range(3):
        a = fast.image(seed, 0.7, class_idx=2)
        assert a == fast.image(seed, 0.7, class_idx=2)  # deterministic
        assert np.abs(pixels(a) - pixels(eager.image(seed, 0.7, class_idx=2))).max() <= 1
    # An image in a strip or a mix is the image requested alone: every synthesis is one image on the same path.
    strip = pixels(fast.interp(4, 5, 3, 0.7, class_idx=0))
    alone = pixels(fast.image(4, 0.7, class_idx=0))
    assert np.array_equal(strip[:, :alone.shape[1]], alone)
    assert np.array_equal(pixels(fast.mix(4, 5, G.num_ws, 0.7, class_idx=0)), alone)  # crossover num_ws: all A
    # Noise none and random stay eager.
    assert fast.image(3, 0.7, noise="none", class_idx=1) == eager.image(3, 0.7, noise="none", class_idx=1)
    if path == "compiled":
        assert fast.fast.fallbacks == 0  # no input needed compiling again


def _one_warning(caplog) -> str:
    records = [r for r in caplog.records if r.name == "stylegan.serve" and r.levelno == logging.WARNING]
    assert len(records) == 1, [r.getMessage() for r in records]
    msg = records[0].getMessage()
    assert "\n" not in msg and "serving eager float32" in msg
    return msg


def test_compile_unavailable_falls_back_to_eager_with_one_line_warning(G, monkeypatch, caplog):
    def no_compile(*args, **kwargs):
        raise RuntimeError("Compiler: cc not found\nand a second line")
    monkeypatch.setattr(torch, "compile", no_compile)
    with caplog.at_level(logging.WARNING, logger="stylegan.serve"):
        r = Renderer(G, synthesis="compiled")
    assert r.synthesis == "eager" and r.fast is None
    assert "cc not found" in _one_warning(caplog)
    assert r.image(1, 0.7, class_idx=0) == Renderer(G).image(1, 0.7, class_idx=0)  # bit for bit: eager


def test_onnxruntime_missing_falls_back_to_eager(G, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with caplog.at_level(logging.WARNING, logger="stylegan.serve"):
        r = Renderer(G, synthesis="onnx")
    assert r.synthesis == "eager" and r.fast is None
    assert "onnx" in _one_warning(caplog)


def test_fast_path_beyond_tolerance_is_refused(G, monkeypatch, caplog):
    from stylegan.serve import render

    monkeypatch.setattr(render.CompiledSynthesis, "_build", lambda self, ws: None)
    monkeypatch.setattr(render.CompiledSynthesis, "_run",
                        lambda self, ws: self.G.synthesis(ws, noise_mode="const") + 1e-3)
    with caplog.at_level(logging.WARNING, logger="stylegan.serve"):
        r = Renderer(G, synthesis="compiled")
    assert r.synthesis == "eager"
    assert "differs from eager" in _one_warning(caplog)


def test_unknown_synthesis_refused(G):
    with pytest.raises(ValueError, match="synthesis must be one of"):
        Renderer(G, synthesis="bf16")


def test_app_reports_the_path_in_use_and_keys_caches_by_it(G, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setattr(torch, "compile", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("unavailable")))
    with TestClient(create_app(G, synthesis="compiled")) as c:
        assert c.get("/api/info").json()["synthesis"] == "eager"  # the fallback, reported
    params = {"seed": 1, "psi": 0.7, "noise": "const"}
    assert cache_headers("m", "image", params)[0] == cache_headers("m", "image", params, "eager")[0]
    assert cache_headers("m", "image", params, "onnx")[0] != cache_headers("m", "image", params)[0]


def test_bench_serve_runs_at_a_tiny_size(tmp_path, network):
    """benchmarks/bench_serve.py on the tiny CLI network: one thread, the eager path, two requests per row, the
    HTTP rows through a real loopback server, and the static site's rows where onnxruntime is installed (the
    faster paths are checked above)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_serve
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
        site = True
    except ImportError:
        site = False
    out = tmp_path / "serve.json"
    bench_serve.main(["--networks", "", "--network", str(network), "--threads", "1", "--requests", "2",
                      "--warmup", "1", "--paths", "eager", "--json", str(out)] + ([] if site else ["--no-site"]))
    data = json.loads(out.read_text())
    whats = {(r["path"], r["what"]) for r in data["rows"]}
    assert whats == {("eager", "image"), ("eager", "mix"), ("eager", "interp 8"), ("eager", "http image")} | (
        {("onnxruntime", "site image")} if site else set())
    assert all(r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] and r["threads"] == 1 for r in data["rows"])
    assert data["load_average_before"] >= 0

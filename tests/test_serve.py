"""The web service (stylegan.serve), its CLI command and the pretrained-network registry.

Tiny networks built here; the API is exercised with Starlette's TestClient (no port), the queue bound also
through a real uvicorn server on a loopback port with many concurrent clients."""
import builtins
import http.client
import io
import json
import os
import re
import threading
import time
from html.parser import HTMLParser
from urllib.parse import urlsplit

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import stylegan  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402
from stylegan import pretrained  # noqa: E402
from stylegan.checkpoint import read_checkpoint, save_checkpoint  # noqa: E402
from stylegan.cli.main import main  # noqa: E402
from stylegan.serve import InferenceWorker, QueueFull, create_app  # noqa: E402
from stylegan.serve.background import BackgroundServer  # noqa: E402

from conftest import tiny_config  # noqa: E402

try:
    from fastapi.testclient import TestClient
except Exception as e:  # pragma: no cover - an httpx client is missing
    pytest.skip(f"TestClient unavailable: {e}", allow_module_level=True)


def _checkpoint(path, **kw):
    config = tiny_config(**kw)
    nets = stylegan.build_networks(config, seed=3)
    return save_checkpoint(path, config, nets)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("serve") / "tiny.safetensors")


@pytest.fixture(scope="module")
def G(ckpt):
    return stylegan.load(ckpt)


@pytest.fixture(scope="module")
def client(G):
    with TestClient(create_app(G, name="tiny", max_steps=8)) as c:
        yield c


def png(response, size=None, mode=None):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(response.content))
    img.load()
    assert img.format == "PNG"
    if size is not None:
        assert img.size == size
    if mode is not None:
        assert img.mode == mode
    return np.asarray(img)


# -- images ---------------------------------------------------------------------------------------------------
def test_image_is_a_png_of_the_network_size(client):
    png(client.get("/api/image", params={"seed": 1}), (16, 16), "RGB")
    png(client.get("/api/image", params={"seed": 2 ** 32 - 1, "psi": -2, "noise": "none"}), (16, 16))


def test_same_seed_and_psi_give_the_same_bytes(client):
    q = {"seed": 123, "psi": 0.7}
    a, b = client.get("/api/image", params=q), client.get("/api/image", params=q)
    assert a.status_code == b.status_code == 200 and a.content == b.content
    assert client.get("/api/image", params={"seed": 123, "psi": 0.3}).content != a.content
    assert client.get("/api/image", params={"seed": 124, "psi": 0.7}).content != a.content
    n = client.get("/api/image", params={**q, "noise": "none"})
    assert n.content == client.get("/api/image", params={**q, "noise": "none"}).content


def test_grayscale_network(tmp_path):
    G1 = stylegan.load(_checkpoint(tmp_path / "g.safetensors", img_channels=1))
    with TestClient(create_app(G1)) as c:
        png(c.get("/api/image", params={"seed": 5}), (16, 16), "L")
        assert c.get("/api/info").json()["channels"] == 1


def test_mix_takes_coarse_styles_from_a(client, G):
    a = client.get("/api/image", params={"seed": 10, "psi": 0.8}).content
    b = client.get("/api/image", params={"seed": 11, "psi": 0.8}).content
    mix = lambda x: client.get("/api/mix", params={"seed_a": 10, "seed_b": 11, "crossover": x, "psi": 0.8})  # noqa
    assert mix(G.num_ws).content == a
    assert mix(0).content == b
    middle = png(mix(3), (16, 16))
    assert middle.tobytes() not in (np.asarray(Image.open(io.BytesIO(a))).tobytes(),
                                    np.asarray(Image.open(io.BytesIO(b))).tobytes())


def test_interp_strip(client):
    strip = png(client.get("/api/interp", params={"seed_a": 10, "seed_b": 11, "steps": 5, "psi": 0.8}), (80, 16))
    a = png(client.get("/api/image", params={"seed": 10, "psi": 0.8}))
    b = png(client.get("/api/image", params={"seed": 11, "psi": 0.8}))
    assert (strip[:, :16] == a).all() and (strip[:, -16:] == b).all()
    assert not (strip[:, 32:48] == a).all()


def test_conditional_network_takes_a_class_and_nothing_picks_one(tmp_path):
    Gc = stylegan.load(_checkpoint(tmp_path / "c.safetensors", c_dim=3))
    with TestClient(create_app(Gc)) as c:
        info = c.get("/api/info").json()
        assert info["conditional"] and info["c_dim"] == 3
        r0 = c.get("/api/image", params={"seed": 1, "class": 0})
        r1 = c.get("/api/image", params={"seed": 1, "class": 1})
        png(r0, (16, 16))
        assert r0.content != r1.content
        png(c.get("/api/mix", params={"seed_a": 1, "seed_b": 2, "class": 2}))
        png(c.get("/api/interp", params={"seed_a": 1, "seed_b": 2, "steps": 2, "class": 2}), (32, 16))
        # Without a class: the same answer as Python and the command line, a clear error naming the parameter.
        for path, q in (("/api/image", {"seed": 4}), ("/api/mix", {"seed_a": 1, "seed_b": 2}),
                        ("/api/interp", {"seed_a": 1, "seed_b": 2})):
            r = c.get(path, params=q)
            assert r.status_code == 422 and "conditional (3 classes); give class in [0, 3)" in r.json()["message"]
        for q in ({"seed": 1, "class": 3}, {"seed": 1, "class": -1}, {"seed": 1, "class": "x"}):
            r = c.get("/api/image", params=q)
            assert r.status_code == 422 and "class" in r.json()["message"], (q, r.text)
        assert b"/api/image?seed=42&amp;psi=0.7&amp;class=0" in c.get("/").content  # the page's example answers
        assert c.get("/api/image", params={"seed": 42, "psi": 0.7, "class": 0}).status_code == 200


def test_truncation_keeps_the_class_by_default_on_conditional_networks(tmp_path):
    """The page's default (trunc=class): ψ 0 gives each class's own average image, so the class survives; the
    authors' global average (trunc=global) makes every class the same image at ψ 0."""
    Gc = stylegan.load(_checkpoint(tmp_path / "c.safetensors", c_dim=3))
    with TestClient(create_app(Gc)) as c:
        info = c.get("/api/info").json()
        assert info["default_trunc"] == "class"
        assert (info["slider_psi_min"], info["slider_psi_max"]) == (0.0, 1.0)
        assert (info["psi_min"], info["psi_max"]) == (-2.0, 2.0)  # beyond the slider, on request

        def img(seed, cls, trunc=None):
            q = {"seed": seed, "psi": 0, "class": cls, **({"trunc": trunc} if trunc else {})}
            r = c.get("/api/image", params=q)
            assert r.status_code == 200, r.text
            return r.content
        assert img(1, 0) == img(2, 0) == img(1, 0, "class")  # ψ 0: the class's average, whatever the seed
        assert img(1, 0) != img(1, 1)  # ... and each class its own
        assert img(1, 0, "global") == img(1, 1, "global")  # the global average forgets the class
        assert img(1, 0, "global") != img(1, 0)
        r = c.get("/api/image", params={"seed": 1, "class": 0, "trunc": "closest"})
        assert r.status_code == 422 and "trunc" in r.text
    G = stylegan.load(_checkpoint(tmp_path / "u.safetensors"))
    with TestClient(create_app(G)) as c:
        assert c.get("/api/info").json()["default_trunc"] == "global"
        r = c.get("/api/image", params={"seed": 1, "trunc": "class"})
        assert r.status_code == 422 and "unconditional" in r.json()["message"]
        assert c.get("/api/image", params={"seed": 1, "trunc": "global"}).status_code == 200


# -- validation -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path,query,words", [
    ("/api/image", "seed=-1", "seed"),
    ("/api/image", "seed=4294967296", "seed"),
    ("/api/image", "seed=99999999999999999999999", "seed"),
    ("/api/image", "seed=1.5", "valid integer"),
    ("/api/image", "seed=abc", "valid integer"),
    ("/api/image", "", "missing"),
    ("/api/image", "seed=1&psi=nan", "finite"),
    ("/api/image", "seed=1&psi=inf", "finite"),
    ("/api/image", "seed=1&psi=-inf", "finite"),
    ("/api/image", "seed=1&psi=5", "psi"),
    ("/api/image", "seed=1&psi=-2.01", "psi"),
    ("/api/image", "seed=1&psi=0.7x", "psi"),
    ("/api/image", "seed=1&noise=foo", "noise"),
    ("/api/image", "seed=1&class=0", "unconditional"),
    ("/api/image", "seed=1&size=1024", "unknown parameter"),
    ("/api/image", "seed=1&v=../../etc", "v"),
    ("/api/mix", "seed_a=1&seed_b=2&crossover=-1", "crossover"),
    ("/api/mix", "seed_a=1&seed_b=2&crossover=7", "crossover"),
    ("/api/mix", "seed_a=1&seed_b=-2", "seed_b"),
    ("/api/mix", "seed_a=1", "seed_b"),
    ("/api/interp", "seed_a=1&seed_b=2&steps=1", "steps"),
    ("/api/interp", "seed_a=1&seed_b=2&steps=9", "steps"),
    ("/api/interp", "seed_a=1&seed_b=2&steps=100000", "steps"),
    ("/api/interp", "seed_a=1&seed_b=2&psi=nan", "finite"),
    ("/api/info", "path=/etc/passwd", "unknown parameter"),
])
def test_bad_parameters_give_422_with_a_message(client, path, query, words):
    r = client.get(f"{path}?{query}")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid_parameter"
    assert words in body["message"], body["message"]
    assert r.headers["cache-control"] == "no-store"


def test_crossover_bounds_are_the_networks(client, G):
    assert G.num_ws == 6
    for x in (0, 6):
        assert client.get("/api/mix", params={"seed_a": 1, "seed_b": 2, "crossover": x}).status_code == 200


def test_unknown_paths_and_methods_are_json_errors(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.post("/api/image?seed=1")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    for p in ("/static/../app.py", "/static/..%2Fapp.py", "/static/%2e%2e%2f%2e%2e%2fpretrained%2fMODEL_CARD.md",
              "/static/app.py", "/static//etc/passwd", "/static/MODEL_CARD.md"):
        assert client.get(p).status_code == 404, p


def test_requests_never_open_files(client, monkeypatch):
    """Static files and images come from memory: no request opens anything on the file system."""
    opened = []
    real_open, real_os_open = builtins.open, os.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(f) or real_open(f, *a, **k))
    monkeypatch.setattr(io, "open", builtins.open)
    monkeypatch.setattr(os, "open", lambda f, *a, **k: opened.append(f) or real_os_open(f, *a, **k))
    pretrained.model_card_path("mnist32").read_text()  # the recorder works
    assert opened
    opened.clear()
    for p in ("/", "/static/app.js", "/static/style.css", "/static/../../../etc/passwd", "/static/%2Fetc%2Fpasswd",
              "/api/image?seed=77", "/api/info", "/api/interp?seed_a=1&seed_b=2&steps=3"):
        client.get(p)
    assert opened == []


# -- caching --------------------------------------------------------------------------------------------------
def test_cache_headers(client):
    r = client.get("/api/image", params={"seed": 9, "psi": 0.5})
    assert "public" in r.headers["cache-control"] and "max-age=" in r.headers["cache-control"]
    etag = r.headers["etag"]
    r304 = client.get("/api/image", params={"seed": 9, "psi": 0.5}, headers={"If-None-Match": etag})
    assert r304.status_code == 304 and r304.content == b"" and r304.headers["etag"] == etag
    assert client.get("/api/image", params={"seed": 9, "psi": 0.6}).headers["etag"] != etag
    assert "public" in client.get("/api/image", params={"seed": 9, "noise": "none"}).headers["cache-control"]
    rnd = client.get("/api/image", params={"seed": 9, "noise": "random"})
    assert rnd.status_code == 200 and rnd.headers["cache-control"] == "no-store" and "etag" not in rnd.headers
    assert client.get("/api/info").status_code == 200
    assert client.get("/").headers["cache-control"] == "no-cache"


# -- the queue ------------------------------------------------------------------------------------------------
def test_worker_runs_jobs_in_order_and_bounds_its_queue():
    w = InferenceWorker(max_queue=2).start()
    gate, order = threading.Event(), []
    try:
        first = w.submit(gate.wait, 10)
        while not w.stats()["running"]:
            time.sleep(0.005)
        jobs = [w.submit(order.append, i) for i in range(2)]
        with pytest.raises(QueueFull):
            w.submit(order.append, 99)
        failing = None
        gate.set()
        first.result(5)
        [j.result(5) for j in jobs]
        failing = w.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(5)
        assert w.submit(lambda: "alive").result(5) == "alive"  # an exception does not kill the worker
        assert order == [0, 1]
        s = w.stats()
        assert (s["rejected"], s["failed"], s["served"], s["queued"]) == (1, 1, 4, 0)
    finally:
        gate.set()
        w.stop()


def test_full_queue_gives_503_json(G):
    app = create_app(G, max_queue=1)
    worker = app.state.worker
    gate = threading.Event()
    with TestClient(app) as c:
        try:
            worker.submit(gate.wait, 10)
            while not worker.stats()["running"]:
                time.sleep(0.005)
            worker.submit(lambda: None)  # the queue (1) is now full
            r = c.get("/api/image", params={"seed": 1})
            assert r.status_code == 503
            assert r.json()["error"] == "busy" and "busy" in r.json()["message"]
            assert r.headers["retry-after"] == "1" and r.headers["cache-control"] == "no-store"
            assert c.get("/api/health").json()["rejected"] == 1
        finally:
            gate.set()
        png(c.get("/api/image", params={"seed": 1}))


def _get(port, path, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_concurrent_clients_against_a_slow_generator_get_503_not_a_crash(ckpt):
    """A real server, a tiny queue and a generator slowed to 0.2 s per image: 16 clients at once. Some get
    images, the others a clean 503; afterwards the server answers as before."""
    Gs = stylegan.load(ckpt)
    Gs.synthesis.register_forward_pre_hook(lambda module, args: time.sleep(0.2))
    app = create_app(Gs, max_queue=2)
    results = []
    with BackgroundServer(app) as server:
        barrier = threading.Barrier(16)

        def client(i):
            barrier.wait()
            results.append(_get(server.port, f"/api/image?seed={i}"))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        [t.start() for t in threads]
        [t.join(60) for t in threads]
        statuses = sorted(s for s, _, _ in results)
        assert len(results) == 16 and set(statuses) <= {200, 503}, statuses
        assert 1 <= statuses.count(200) <= 15 and statuses.count(503) >= 1, statuses
        for status, headers, body in results:
            if status == 503:
                assert json.loads(body)["error"] == "busy" and headers["retry-after"] == "1"
            else:
                assert Image.open(io.BytesIO(body)).size == (16, 16)
        status, _, body = _get(server.port, "/api/health")
        health = json.loads(body)
        assert status == 200 and health["rejected"] == statuses.count(503) and health["queued"] == 0
        status, _, body = _get(server.port, "/api/image?seed=3&psi=0.5")
        assert status == 200 and Image.open(io.BytesIO(body)).size == (16, 16)


# -- info, schema, page ---------------------------------------------------------------------------------------
def test_info(client, G):
    info = client.get("/api/info").json()
    assert (info["resolution"], info["channels"], info["num_ws"], info["conditional"]) == (16, 3, G.num_ws, False)
    assert info["name"] == "tiny" and re.fullmatch(r"[0-9a-f]{16}", info["model_id"])
    assert info["max_steps"] == 8 and info["max_queue"] == 16 and set(info["noise_modes"]) == {"const", "random", "none"}


def test_openapi_documents_every_endpoint_and_parameter(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for p in ("/api/image", "/api/mix", "/api/interp", "/api/info", "/api/health"):
        assert "get" in paths[p], p
    names = {}
    for p in ("/api/image", "/api/mix", "/api/interp"):
        op = paths[p]["get"]
        assert "image/png" in op["responses"]["200"]["content"]
        assert {"422", "503"} <= set(op["responses"])
        for param in op["parameters"]:
            assert param["in"] == "query" and param.get("description"), (p, param["name"])
        names[p] = {param["name"] for param in op["parameters"]}
    assert {"seed", "psi", "noise", "class"} <= names["/api/image"]
    assert {"seed_a", "seed_b", "crossover", "psi", "noise"} <= names["/api/mix"]
    assert {"seed_a", "seed_b", "steps", "psi"} <= names["/api/interp"]
    seed = next(q for q in paths["/api/image"]["get"]["parameters"] if q["name"] == "seed")["schema"]
    assert seed["minimum"] == 0 and seed["exclusiveMaximum"] == 2 ** 32
    assert client.get("/docs").status_code == 404  # its page would load scripts from a CDN


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href", "action", "poster", "srcset", "data") and v is not None:
                self.refs.append((tag, v))


def test_page_references_only_local_resources(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    parser = _Refs()
    parser.feed(r.text)
    assert parser.refs, "no references found"
    for tag, ref in parser.refs:
        parts = urlsplit(ref)
        assert not parts.scheme and not parts.netloc and (ref.startswith("/") or ref.startswith("#")), (tag, ref)
        if tag in ("script", "link", "img") and ref.startswith("/static/"):
            assert client.get(ref).status_code == 200, ref
    assert "{{" not in r.text
    for name in ("app.js", "style.css"):
        text = client.get(f"/static/{name}").text
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
        assert "@import" not in text and not re.search(r"url\(\s*['\"]?(https?:)?//", text)


def test_title_is_escaped(G):
    with TestClient(create_app(G, title="This <b>Digit</b> Does Not Exist")) as c:
        assert "This &lt;b&gt;Digit&lt;/b&gt; Does Not Exist" in c.get("/").text


# -- pretrained names -----------------------------------------------------------------------------------------
def test_resolve_network(ckpt, tmp_path, monkeypatch):
    assert pretrained.resolve_network(ckpt) == ckpt
    assert pretrained.resolve_network(str(ckpt)) == ckpt
    with pytest.raises(pretrained.PretrainedError, match="mnist32"):
        pretrained.resolve_network("no-such-model")
    with pytest.raises(stylegan.CheckpointError, match="not a file"):
        pretrained.resolve_network(tmp_path)
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    monkeypatch.setattr(pretrained, "PRETRAINED", {"ghost": "ghost.safetensors", "tiny": "tiny.safetensors"})
    with pytest.raises(pretrained.PretrainedError, match="not installed"):
        pretrained.resolve_network("ghost")
    (tmp_path / "tiny.safetensors").write_bytes(ckpt.read_bytes())
    assert pretrained.resolve_network("tiny") == tmp_path / "tiny.safetensors"
    assert pretrained.is_available("tiny") and not pretrained.is_available("ghost")


def test_registry_and_model_card():
    assert pretrained.PRETRAINED["mnist32"] == "mnist32.safetensors"
    assert pretrained.DEFAULT_NETWORK in pretrained.PRETRAINED
    card = pretrained.model_card("mnist32")
    assert card and "mnist32" in card and "FID" in card and "kimg" in card
    assert pretrained.model_card("unknown") is None


def test_packaged_model_loads():
    if not pretrained.is_available("mnist32"):
        pytest.skip("the packaged mnist32.safetensors is not installed yet (src/stylegan/pretrained/)")
    G = stylegan.load(pretrained.resolve_network("mnist32"))
    assert G.resolution == 32 and G.img_channels == 1 and G.c_dim == 10  # conditional: one class per digit
    with TestClient(create_app(G, name="mnist32")) as c:
        png(c.get("/api/image", params={"seed": 0, "psi": 0.7, "class": 3}), (32, 32), "L")
    # the file is G_ema and D (a few MB: a base for transfer), with its training provenance
    ckpt = read_checkpoint(pretrained.resolve_network("mnist32"))
    assert ckpt.networks == ["G_ema", "D"] and pretrained.resolve_network("mnist32").stat().st_size < 8 * 2 ** 20


# -- command line ---------------------------------------------------------------------------------------------
@pytest.fixture
def fake_registry(ckpt, tmp_path, monkeypatch):
    (tmp_path / "tiny.safetensors").write_bytes(ckpt.read_bytes())
    (tmp_path / "tiny.md").write_text("# tiny: a blob generator\n", encoding="utf-8")
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    monkeypatch.setattr(pretrained, "PRETRAINED", {"tiny": "tiny.safetensors"})
    monkeypatch.setattr(pretrained, "SUBJECTS", {"tiny": "Blob"})
    monkeypatch.setattr(pretrained, "DEFAULT_NETWORK", "tiny")
    return tmp_path


def test_commands_accept_a_pretrained_name(fake_registry, tmp_path):
    r = CliRunner().invoke(main, ["generate", "--network", "tiny", "--seeds", "1", "--outdir", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "seed0001.png").is_file()
    r = CliRunner().invoke(main, ["generate", "--network", "nope", "--seeds", "1", "--outdir", str(tmp_path / "o2")])
    assert r.exit_code != 0 and "known names: tiny" in r.output


def _serve(args, monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    r = CliRunner().invoke(main, ["serve", *args])
    assert r.exit_code == 0, r.output
    return seen, r.output


def test_serve_command_defaults_to_the_pretrained_network_on_loopback(fake_registry, monkeypatch):
    seen, out = _serve(["--port", "8123", "--max-queue", "3", "--device", "cpu"], monkeypatch)
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123 and seen["workers"] == 1
    assert "http://127.0.0.1:8123/" in out
    with TestClient(seen["app"], base_url="http://127.0.0.1:8123") as c:
        info = c.get("/api/info").json()
        assert info["name"] == "tiny" and info["title"] == "This Blob Does Not Exist" and info["max_queue"] == 3
        assert info["card"] == "# tiny: a blob generator\n"
        png(c.get("/api/image", params={"seed": 4}), (16, 16))
    with TestClient(seen["app"], base_url="http://evil.example") as c:  # DNS rebinding: foreign Host refused
        assert c.get("/api/info").status_code == 400


def test_serve_command_with_a_path(ckpt, monkeypatch):
    seen, out = _serve(["--network", str(ckpt), "--host", "0.0.0.0", "--port", "0", "--title", "T"], monkeypatch)
    assert seen["host"] == "0.0.0.0" and "reachable from other machines" in out
    with TestClient(seen["app"]) as c:
        info = c.get("/api/info").json()
        assert info["name"] == "tiny" and info["title"] == "T" and info["card"] is None


def test_serve_command_errors(tmp_path, monkeypatch):
    r = CliRunner().invoke(main, ["serve", "--network", str(tmp_path / "missing.safetensors")])
    assert r.exit_code != 0 and "no such network file" in r.output
    r = CliRunner().invoke(main, ["serve", "--help"])
    assert r.exit_code == 0 and "--max-queue" in r.output and "127.0.0.1" in r.output


def test_serve_command_refuses_a_card_that_is_not_text(ckpt, tmp_path):
    """--card with a binary file (here a checkpoint) ended in a UnicodeDecodeError traceback."""
    r = CliRunner().invoke(main, ["serve", "--network", str(ckpt), "--card", str(ckpt), "--device", "cpu"])
    assert r.exit_code == 1 and "not a text file in UTF-8" in r.output and "Traceback" not in r.output, r.output


def test_network_without_truncation_pins_psi_to_one():
    """ProGAN (no mapping network, no w_avg): the page starts at ψ = 1 and cannot move it; ψ ≠ 1 is a 4xx."""
    from stylegan.presets import make_config
    from stylegan.networks import build_networks

    config = make_config("progan", resolution=16, cbase=256, cmax=32, z_dim=32)
    G = build_networks(config, seed=0)["G_ema"].eval().requires_grad_(False)
    with TestClient(create_app(G, name="progan")) as c:
        info = c.get("/api/info").json()
        assert (info["psi_min"], info["psi_max"], info["default_psi"]) == (1.0, 1.0, 1.0)
        r = c.get("/api/image?seed=1&psi=1")
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size[0] == G.current_resolution
        bad = c.get("/api/image?seed=1&psi=0.5")
        assert 400 <= bad.status_code < 500 and "truncation" in bad.text


def test_head_requests_and_repeated_parameters(tmp_path):
    G = stylegan.load(_checkpoint(tmp_path / "u.safetensors"))
    with TestClient(create_app(G)) as c:
        for path in ("/", "/api/health", "/api/info", "/api/image?seed=3"):
            h, g = c.head(path), c.get(path)
            assert h.status_code == 200 == g.status_code and h.content == b"", path
            assert h.headers["content-type"] == g.headers["content-type"]
        r = c.get("/api/image?seed=1&seed=2")
        assert r.status_code == 422 and "more than once" in r.json()["message"]


def test_overlong_urls_get_414_from_a_real_server(ckpt):
    """A 1 MB request target is answered 414 with the API's error body (not a dropped connection), and the
    server answers normally afterwards; an ordinary long query still works."""
    app = create_app(stylegan.load(ckpt))
    with BackgroundServer(app) as server:
        status, headers, body = _get(server.port, "/api/image?seed=1&x=" + "a" * 2 ** 20)
        assert status == 414 and json.loads(body)["error"] == "uri_too_long"
        assert headers["cache-control"] == "no-store" and "content-security-policy" in headers
        status, _, _ = _get(server.port, "/?" + "b=1&" * 100)
        assert status in (200, 422)
        assert _get(server.port, "/api/image?seed=1")[0] == 200


def test_edit_sliders_move_the_image_along_the_networks_directions(G, client):
    """/api/info offers the first SeFa directions; `edit` moves w along them: amount 0 is the unedited image
    byte for byte, amounts change it, the same edit through the library gives the same pixels, and bad
    amounts are refused with 422."""
    from stylegan.tools.directions import edit, sefa

    info = client.get("/api/info").json()
    assert info["directions"] == min(5, G.w_dim) and info["direction_method"] == "sefa"
    r0 = client.get("/api/image", params={"seed": 3, "psi": 1})
    plain = png(r0)
    assert client.get("/api/image", params={"seed": 3, "psi": 1, "edit": "0,0"}).content == r0.content
    r = client.get("/api/image", params={"seed": 3, "psi": 1, "edit": "2.5"})
    edited = png(r)
    assert not np.array_equal(edited, plain)
    assert "edited" in r.headers["content-disposition"]
    ref = edit(G, seed=3, directions=sefa(G, num=info["directions"]), index=0, strengths=[2.5])
    assert np.abs(edited.astype(int) - stylegan.to_uint8(ref)[0].astype(int)).max() <= 1
    for bad in ("nan", "9", ",".join(["1"] * (info["directions"] + 1)), "1,,2", "x"):
        r = client.get("/api/image", params={"seed": 3, "edit": bad})
        assert r.status_code == 422, bad
    assert client.get("/api/mix", params={"seed_a": 1, "seed_b": 2, "edit": "1"}).status_code == 422


def test_no_sliders_on_request_or_without_a_latent_to_move(G):
    """sliders=0 turns edits off; ProGAN (no mapping network, no styles) has none; StyleGAN's AdaIN generator
    gets GANSpace directions."""
    from stylegan.networks import build_networks
    from stylegan.presets import make_config

    with TestClient(create_app(G, sliders=0)) as c:
        assert c.get("/api/info").json()["directions"] == 0
        assert c.get("/api/image", params={"seed": 1, "edit": "1"}).status_code == 422
    for cfg, method in (("progan", None), ("stylegan", "ganspace")):
        net = build_networks(make_config(cfg, resolution=8, cbase=64, cmax=16), seed=0)["G_ema"].eval()
        with TestClient(create_app(net)) as c:
            info = c.get("/api/info").json()
            assert info["direction_method"] == method and info["directions"] == (5 if method else 0)
            if method:
                assert c.get("/api/image", params={"seed": 1, "edit": "0,2"}).status_code == 200

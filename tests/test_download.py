"""Networks by URL, against a local HTTP server on 127.0.0.1 (no test reaches the internet): download then
cache hit, resume after a cut, hash checks, refusals (404, a web page, content that is not a network), the
progress bar, the published names, and a URL through ``stylegan.load`` and the command line."""
from __future__ import annotations

import hashlib
import http.server
import os
import threading

import pytest
from click.testing import CliRunner

import stylegan
from stylegan import pretrained
from stylegan.cli.main import main
from stylegan.pretrained import download as dl
from stylegan.pretrained.download import DownloadError, cached_path, download_url

PAYLOAD = b"\x80\x04" + bytes(range(256)) * 1200  # starts like a pickle; about 300 KB


class Server(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path → (body, content type)), honouring ``Range: bytes=N-``; ``cut`` > 0 makes the next
    response close the connection after that many body bytes. Every request is recorded as (path, Range)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut = 0
        self.ranges = True  # False: answer every request with the whole file (a server without Range support)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if self.path not in srv.files:
            self.send_error(404, "Not Found")
            return
        body, ctype = srv.files[self.path]
        start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") and srv.ranges else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        send = body[start:start + srv.cut] if srv.cut else body[start:]
        srv.cut = 0
        self.wfile.write(send)
        self.close_connection = True


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    srv = Server()
    srv.files["/net.pkl"] = (PAYLOAD, "application/octet-stream")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_download_then_cache_hit_without_a_second_request(server):
    url = server.url("/net.pkl")
    path = download_url(url, progress=False)
    assert path == cached_path(url) and path.read_bytes() == PAYLOAD and path.name == "net.pkl"
    assert str(path).startswith(os.environ["STYLEGAN_CACHE"])
    assert download_url(url, progress=False) == path
    assert server.requests == [("/net.pkl", None)]
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.pkl", "net.pkl.lock"]  # no .part left


def test_a_cut_download_is_reported_kept_as_part_and_resumed_with_range(server):
    url = server.url("/net.pkl")
    server.cut = 100_000
    with pytest.raises(DownloadError, match=r"stopped at 100,000 of 307,202 bytes.*resumes") as e:
        download_url(url, progress=False)
    assert "\n" not in str(e.value)
    final = cached_path(url)
    assert not final.exists() and final.with_name("net.pkl.part").stat().st_size == 100_000
    assert download_url(url, progress=False).read_bytes() == PAYLOAD
    assert server.requests == [("/net.pkl", None), ("/net.pkl", "bytes=100000-")]
    assert not final.with_name("net.pkl.part").exists()


def test_a_server_without_range_support_sends_the_whole_file_again(server):
    url = server.url("/net.pkl")
    server.cut, server.ranges = 50_000, False
    with pytest.raises(DownloadError, match="stopped at 50,000"):
        download_url(url, progress=False)
    assert download_url(url, progress=False).read_bytes() == PAYLOAD  # the partial file was replaced, not extended
    assert server.requests[1] == ("/net.pkl", "bytes=50000-")


def test_a_wrong_hash_is_refused_and_nothing_is_left_under_the_final_name(server):
    url = server.url("/net.pkl")
    with pytest.raises(DownloadError, match="SHA-256 .* does not match the expected 0{64}; the download was "
                                            "discarded"):
        download_url(url, sha256="0" * 64, progress=False)
    assert not cached_path(url).exists() and not cached_path(url).with_name("net.pkl.part").exists()
    good = hashlib.sha256(PAYLOAD).hexdigest()
    assert download_url(url + f"#sha256={good}", progress=False).read_bytes() == PAYLOAD  # pinned by the fragment
    assert cached_path(url + f"#sha256={good}") == cached_path(url)


def test_a_missing_file_is_refused_in_one_line(server):
    with pytest.raises(DownloadError) as e:
        download_url(server.url("/missing.pkl"), progress=False)
    assert str(e.value) == f"{server.url('/missing.pkl')}: HTTP 404 Not Found; nothing was downloaded"
    assert not cached_path(server.url("/missing.pkl")).exists()


@pytest.mark.parametrize("ctype", ["text/html; charset=utf-8", "application/octet-stream"])
def test_a_web_page_is_refused_whatever_its_declared_type(server, ctype):
    server.files["/page.pkl"] = (b"<!DOCTYPE html><html><body>Sign in to download</body></html>", ctype)
    with pytest.raises(DownloadError, match="not a network file") as e:
        download_url(server.url("/page.pkl"), progress=False)
    assert "\n" not in str(e.value)
    folder = cached_path(server.url("/page.pkl")).parent
    assert [p.name for p in folder.iterdir()] == ["page.pkl.lock"]  # neither the file nor a .part


def test_an_unreachable_server_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path))
    srv = Server()  # bound, then closed: nothing listens on the port
    url = srv.url("/x.pkl")
    srv.server_close()
    with pytest.raises(DownloadError, match=r"cannot download \(.*\)$"):
        download_url(url, progress=False)


def test_the_progress_bar_shows_percentage_size_and_speed(server, capsys):
    download_url(server.url("/net.pkl"))
    err = capsys.readouterr().err
    assert "\rdownloading net.pkl [" + "#" * 30 + "] 100% 0.3/0.3 MB" in err and "MB/s" in err
    assert err.endswith("\n")


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    from stylegan.cache import cache_root

    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "a"))
    assert cache_root() == tmp_path / "a" and dl.downloads_dir() == tmp_path / "a" / "networks"
    monkeypatch.delenv("STYLEGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("sys.platform", "linux")
    assert cache_root() == tmp_path / "xdg" / "stylegan"


def test_a_url_loads_through_the_same_reader_and_every_command(server, tmp_path):
    ckpt = pretrained.packaged_path("mnist32")
    if not ckpt.is_file():
        pytest.skip("the packaged mnist32.safetensors is not installed")
    server.files["/mnist32.safetensors"] = (ckpt.read_bytes(), "application/octet-stream")
    url = server.url("/mnist32.safetensors")
    G = stylegan.load(url)
    assert G.resolution == 32 and G.c_dim == 10
    r = CliRunner().invoke(main, ["generate", "--network", url, "--seeds", "0", "--class", "3", "--device", "cpu",
                                  "--outdir", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "seed0000.png").is_file()
    assert len(server.requests) == 1  # the command read the cached copy
    r = CliRunner().invoke(main, ["info", "--network", server.url("/gone.safetensors")])
    assert r.exit_code == 1 and r.output.strip().endswith("HTTP 404 Not Found; nothing was downloaded")
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_published_names_resolve_to_their_download(server, monkeypatch):
    entry = pretrained.PUBLISHED["stylegan3-t-ffhq-1024x1024"]
    assert entry.url == ("https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
                         "stylegan3-t-ffhq-1024x1024.pkl")
    assert (entry.resolution, entry.config) == (1024, "StyleGAN3-T")
    fake = pretrained.PUBLISHED["stylegan2-ada-afhqcat-512x512"].__class__(
        "test-net", server.url("/net.pkl"), 32, "StyleGAN2", "test", "none", "test")
    monkeypatch.setitem(pretrained.PUBLISHED, "test-net", fake)
    assert pretrained.where("test-net") == "downloaded on first use"
    assert pretrained.resolve_network("test-net").read_bytes() == PAYLOAD
    assert pretrained.where("test-net") == "downloaded"


def test_the_networks_command_lists_packaged_and_published_names(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path))
    r = CliRunner().invoke(main, ["networks"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    sg3 = next(line for line in lines if line.startswith("stylegan3-r-afhqv2-512x512 "))
    assert "downloaded on first use" in sg3 and "StyleGAN3-R" in sg3 and "512x512" in sg3
    assert any(line.startswith("mnist32 ") for line in lines)
    assert len([line for line in lines if line.startswith("stylegan")]) == len(pretrained.PUBLISHED) == 34

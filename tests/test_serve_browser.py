"""End to end in headless Chromium: the real server (uvicorn on a free loopback port) with a tiny network, the
page loaded, a new image clicked for, the ψ slider moved, a permalink opened.

Needs Chromium (Debian package ``chromium``, at /usr/bin/chromium or $STYLEGAN_CHROMIUM) and the Python
package ``playwright`` (no ``playwright install``: the system browser is used). Skipped when either is missing.
Set ``STYLEGAN_SCREENSHOTS=DIR`` to keep screenshots of the page (else they go to pytest's tmp_path).
"""
import os
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

import stylegan  # noqa: E402
from stylegan.checkpoint import save_checkpoint  # noqa: E402
from stylegan.serve import create_app  # noqa: E402
from stylegan.serve.background import BackgroundServer  # noqa: E402

from conftest import CHROMIUM, tiny_config  # noqa: E402

if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = tiny_config(resolution=32, img_channels=1)
    path = save_checkpoint(tmp_path_factory.mktemp("browser") / "tiny.safetensors", config,
                           stylegan.build_networks(config, seed=1))
    app = create_app(stylegan.load(path), name="tiny", title="This Blob Does Not Exist", card="# tiny\nA test net.")
    with BackgroundServer(app) as s:
        yield s


@pytest.fixture(scope="module")
def browser(chromium):
    return chromium


@pytest.fixture
def shots(tmp_path):
    d = Path(os.environ.get("STYLEGAN_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _fetch(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def _settled(page):
    page.wait_for_selector("body[data-ready='1']")
    sync_api.expect(page.locator(".loading")).to_have_count(0, timeout=TIMEOUT_MS)


def test_page_end_to_end(server, browser, shots):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    requests, problems = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(server.url)
    _settled(page)
    assert page.title() == "This Blob Does Not Exist"
    img = page.locator("#main-img")
    src1 = img.get_attribute("data-src")
    assert src1.startswith("/api/image?") and img.evaluate("i => i.naturalWidth") == 32
    seed1 = parse_qs(urlsplit(src1).query)["seed"][0]
    assert parse_qs(urlsplit(page.url).query)["seed"] == [seed1]  # the address is the permalink
    for sel in ("#a-img", "#b-img", "#mix-img"):
        assert page.locator(sel).evaluate("i => i.naturalWidth") == 32, sel
    assert page.locator("#interp-img").evaluate("i => i.naturalWidth") == 32 * 8
    page.screenshot(path=str(shots / "serve_page.png"), full_page=True)

    # New image: another seed, another picture.
    page.click("#new-btn")
    sync_api.expect(img).not_to_have_attribute("data-src", src1)
    _settled(page)
    src2 = img.get_attribute("data-src")
    seed2 = parse_qs(urlsplit(src2).query)["seed"][0]
    assert seed2 != seed1 and page.locator("#seed").input_value() == seed2
    assert _fetch(server.url + src1[1:]) != _fetch(server.url + src2[1:])

    # The ψ slider: same seed, ψ 0.2, a different picture.
    page.locator("#psi").fill("0.2")
    sync_api.expect(img).to_have_attribute("data-src", f"/api/image?seed={seed2}&psi=0.20&noise=const&v="
                                           + parse_qs(urlsplit(src2).query)["v"][0])
    _settled(page)
    src3 = img.get_attribute("data-src")
    assert _fetch(server.url + src3[1:]) != _fetch(server.url + src2[1:])
    assert "psi=0.20" in page.url and page.locator("#psi-out").text_content() == "0.20"
    assert "psi=0.20" in page.locator("#permalink").get_attribute("href")

    # An edit slider: the same seed moved along the network's second direction, kept in the permalink.
    before = img.get_attribute("data-src")
    page.locator("#edit-1").fill("2")
    sync_api.expect(img).not_to_have_attribute("data-src", before)
    _settled(page)
    edited = img.get_attribute("data-src")
    assert parse_qs(urlsplit(edited).query)["edit"] == ["0,2"] and "edit=0%2C2" in page.url
    assert _fetch(server.url + edited[1:]) != _fetch(server.url + before[1:])
    page.click("#edit-reset")
    sync_api.expect(img).to_have_attribute("data-src", before)
    _settled(page)

    # Style mixing: another crossover, another mix.
    mix1 = page.locator("#mix-img").get_attribute("data-src")
    page.locator("#crossover").fill("1")
    sync_api.expect(page.locator("#mix-img")).not_to_have_attribute("data-src", mix1)
    _settled(page)
    assert "crossover=1" in page.locator("#mix-img").get_attribute("data-src")

    # Noise mode and the download link (the shown pixels, named by seed).
    page.check("input[name=noise][value=random]")
    sync_api.expect(img).to_have_attribute("data-src", f"/api/image?seed={seed2}&psi=0.20&noise=random&v="
                                           + parse_qs(urlsplit(src2).query)["v"][0])
    _settled(page)
    dl = page.locator("#download")
    assert dl.get_attribute("href").startswith("blob:") and dl.get_attribute("download") == f"tiny-seed{seed2}-psi0.20.png"
    page.screenshot(path=str(shots / "serve_page_after.png"), full_page=True)

    # Only this server was asked for anything; no console errors (CSP violations would show here).
    for url in requests:
        parts = urlsplit(url)
        assert parts.scheme == "blob" or (parts.hostname, parts.port) == ("127.0.0.1", server.port), url
    assert problems == []
    page.close()


def test_permalink_and_narrow_screen(server, browser, shots):
    page = browser.new_page(viewport={"width": 420, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url + "?seed=123&psi=0.5&noise=none&a=7&b=8&x=2&steps=4")
    _settled(page)
    assert page.locator("#main-img").get_attribute("data-src").startswith("/api/image?seed=123&psi=0.50&noise=none")
    assert page.locator("#seed").input_value() == "123" and page.locator("#psi-out").text_content() == "0.50"
    assert "seed_a=7&seed_b=8&crossover=2" in page.locator("#mix-img").get_attribute("data-src")
    assert page.locator("#interp-img").evaluate("i => i.naturalWidth") == 32 * 4
    page.click("#about summary")
    assert "A test net." in page.locator("#card").text_content()
    page.screenshot(path=str(shots / "serve_page_narrow.png"), full_page=True)
    # A bad permalink falls back to defaults instead of failing.
    page.goto(server.url + "?seed=-5&psi=nan&noise=foo&steps=999")
    _settled(page)
    src = page.locator("#main-img").get_attribute("data-src")
    assert "psi=0.70&noise=const" in src and page.locator("#status").text_content().strip() == ""
    page.close()

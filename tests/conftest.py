import os
import shutil

import pytest
import torch

from stylegan.presets import make_config


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def tiny_config(resolution=16, g_arch="skip", d_arch="resnet", img_channels=3, c_dim=0, **kw):
    """A small network for fast tests (channels 32 at low resolution, 16 higher up)."""
    return make_config("stylegan2", resolution=resolution, cbase=256, cmax=32, map_depth=2, z_dim=32, w_dim=32,
                       g_arch=g_arch, d_arch=d_arch, img_channels=img_channels, c_dim=c_dim,
                       num_fp16_res=0, conv_clamp=None, **kw)


@pytest.fixture
def tiny():
    return tiny_config


#: Headless Chromium for the browser tests (the Debian package, or $STYLEGAN_CHROMIUM), driven by playwright
#: without `playwright install`.
CHROMIUM = os.environ.get("STYLEGAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium():
    """A launched headless Chromium (playwright), shared by the browser tests; skipped, saying why, when
    Chromium or playwright is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    try:
        pw = sync_api.sync_playwright().start()
    except Exception as e:  # pragma: no cover - the driver cannot start here
        pytest.skip(f"playwright cannot start: {e}")
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
    except Exception as e:  # pragma: no cover
        pw.stop()
        pytest.skip(f"Chromium does not start under playwright: {e}")
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """A tiny untrained StyleGAN2 checkpoint (16², 32-d z and w) written by `stylegan init`, for the CLI tests."""
    from click.testing import CliRunner

    from stylegan.cli.main import main

    out = tmp_path_factory.mktemp("net")
    r = CliRunner().invoke(main, ["init", "--cfg", "stylegan2", "--resolution", "16", "--cbase", "256",
                                  "--cmax", "32", "--map-depth", "2", "--z-dim", "32", "--w-dim", "32",
                                  "--seed", "5", "--outdir", str(out)])
    assert r.exit_code == 0, r.output
    return out / "network-init.safetensors"

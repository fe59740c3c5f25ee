"""The demo (`make demo` = `stylegan demo`): its pictures, its transfer run, its closing lines. The end-to-end run
trains for seconds and is slow (`make test-all`); the pieces are checked on tiny networks."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stylegan.cli.main import main
from stylegan.networks import build_networks
from stylegan.tools.demo import DemoResult, Picture, before_after, class_grid, closing_lines, upscale

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_the_makefile_demo_is_the_demo_command():
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^demo: .*?\n((?:\t.*\n)+)", text, re.M).group(1)
    assert "stylegan demo" in recipe


def test_pictures_are_upscaled_and_laid_out(tiny):
    nets = build_networks(tiny(resolution=16, c_dim=3), seed=1)
    G = nets["G_ema"].eval()
    grid = class_grid(G, [0, 1, 2, 3], pad=2)
    assert grid.shape == (3 * 16 + 2 * 2, 4 * 16 + 3 * 2, 3)  # rows: the 3 classes; columns: the 4 seeds
    big = upscale(grid, 4)
    assert big.shape == (grid.shape[0] * 4, grid.shape[1] * 4, 3) and big.dtype == np.uint8
    gray = upscale(np.zeros((8, 8, 1), np.uint8), 3)
    assert gray.shape == (24, 24, 1)


def test_before_after_shows_the_same_seeds_through_both(tiny):
    a = build_networks(tiny(resolution=16), seed=1)["G_ema"].eval()
    b = build_networks(tiny(resolution=16), seed=2)["G_ema"].eval()
    same = before_after(a, a, range(4), cols=2, gap=8)
    half = (same.shape[1] - 8) // 2
    assert np.array_equal(same[:, :half], same[:, half + 8:])  # one network twice: both halves alike
    assert (same[:, half:half + 8] == 255).all()
    diff = before_after(a, b, range(4), cols=2, gap=8)
    assert not np.array_equal(diff[:, :half], diff[:, half + 8:])


def test_closing_lines_say_where_each_picture_is_and_how_to_open_the_page(tmp_path):
    r = DemoResult([Picture(tmp_path / "x.png", "an x")], run_dir=tmp_path / "run",
                   snapshot=tmp_path / "run" / "snap.safetensors", fid_before=120.0, fid_after=60.5)
    text = "\n".join(closing_lines(r))
    assert str(tmp_path / "x.png") in text and "an x" in text and str(tmp_path / "run") in text
    assert "120.0" in text and "60.5" in text and f"stylegan serve --network {r.snapshot}" not in text
    assert "stylegan serve --network" in text and str(r.snapshot) in text


def test_the_demo_never_writes_over_an_earlier_one_without_force(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = CliRunner().invoke(main, ["demo", "--outdir", str(tmp_path)])
    assert r.exit_code == 1 and "--force" in r.output and (tmp_path / "keep.txt").read_text() == "mine"


def test_a_bad_base_or_data_is_refused_before_the_pictures(tmp_path):
    """They were found only when the training started, after the pictures: a corrected rerun then needed --force."""
    for args, message in ((["--base", "nope"], "no such network file"), (["--data", "builtin:nope"], "unknown built-in"),
                          (["--data", str(tmp_path / "missing")], "dataset not found")):
        r = CliRunner().invoke(main, ["demo", "--outdir", str(tmp_path / "demo"), *args])
        assert r.exit_code in (1, 2) and message in r.output, r.output
        assert not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    r = subprocess.run([str(BIN / "stylegan"), "demo", "--outdir", str(tmp_path / "demo"), "--minutes", "0.2",
                        "--procs", "1"], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("pictures/mnist32-classes.png", "pictures/emoji-grid.png", "pictures/emoji-style-mixing.png",
                 "pictures/emoji-edit.png", "pictures/emoji-interpolation.gif", "before-after.png"):
        assert (tmp_path / "demo" / name).is_file(), name
        assert str(tmp_path / "demo" / name) in r.stdout
    assert list((tmp_path / "demo" / "transfer").glob("*/network-snapshot-*.safetensors"))
    assert re.search(r"FID .* trained network .*: \d+\.\d \(lower", r.stdout)

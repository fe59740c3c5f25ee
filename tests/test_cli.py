"""The command line, end to end through click."""
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_info(network):
    r = run("info", "--network", network)
    assert r.exit_code == 0, r.output
    assert "16x16" in r.output and "params G" in r.output and "6 ws" in r.output


def test_generate_is_deterministic_and_names_files_by_seed(network, tmp_path):
    for d in ("a", "b"):
        r = run("generate", "--network", network, "--seeds", "0-2,7", "--trunc", "0.7", "--grid",
                "--outdir", tmp_path / d, "--device", "cpu")
        assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    img = np.asarray(Image.open(tmp_path / "a" / "seed0007.png"))
    assert img.shape == (16, 16, 3)
    assert np.asarray(Image.open(tmp_path / "a" / "grid.png")).shape == (32, 32, 3)


def test_style_mixing_grid(network, tmp_path):
    r = run("style-mixing", "--network", network, "--rows", "1,2", "--cols", "3,4,5", "--styles", "0-3",
            "--outdir", tmp_path)
    assert r.exit_code == 0, r.output
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (3 * 16, 4 * 16, 3)
    assert (grid[:16, :16] == 0).all()  # blank corner
    # Border images are the sources; cells differ from their row source when styles are swapped in.
    src1 = np.asarray(Image.open(tmp_path / "1-1.png"))
    assert (grid[16:32, :16] == src1).all()
    assert (grid[:16, 16:32] == np.asarray(Image.open(tmp_path / "3-3.png"))).all()
    assert not (grid[16:32, 16:32] == src1).all()


def test_style_mixing_all_styles_from_column_gives_column_image(network, tmp_path):
    r = run("style-mixing", "--network", network, "--rows", "1", "--cols", "3", "--styles", "0-5",
            "--outdir", tmp_path)
    assert r.exit_code == 0, r.output
    assert (np.asarray(Image.open(tmp_path / "1-3.png")) == np.asarray(Image.open(tmp_path / "3-3.png"))).all()


@pytest.mark.parametrize("args,message", [
    (["generate", "--seeds", "a-b"], "cannot parse"),
    (["generate", "--seeds", "0", "--noise-mode", "fixed"], "fixed"),
    (["style-mixing", "--rows", "1", "--cols", "2", "--styles", "0-40"], "style indices"),
    (["generate", "--seeds", "0", "--class", "3"], "unconditional"),
])
def test_bad_flags_get_clear_errors(network, tmp_path, args, message):
    r = run(*args[:1], "--network", network, *args[1:], "--outdir", tmp_path)
    assert r.exit_code != 0
    assert message in r.output


def test_bad_network_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    r = run("generate", "--network", bad, "--seeds", "0", "--outdir", tmp_path / "o")
    assert r.exit_code == 1 and "bad.safetensors" in r.output and "corrupted" in r.output
    assert not (tmp_path / "o").exists()


def test_init_rejects_nonsense(tmp_path):
    r = run("init", "--resolution", "48", "--outdir", tmp_path)
    assert r.exit_code == 2 and "power of two" in r.output
    r = run("init", "--g-arch", "unet", "--outdir", tmp_path)
    assert r.exit_code == 2


def test_outputs_are_never_replaced_without_force(network, tmp_path):
    out = tmp_path / "imgs"
    assert run("generate", "--network", network, "--seeds", "1", "--outdir", out).exit_code == 0
    before = (out / "seed0001.png").read_bytes()
    (out / "seed0001.png").write_bytes(b"mine")
    r = run("generate", "--network", network, "--seeds", "0-1", "--outdir", out)
    assert r.exit_code == 1 and "seed0001.png already exists" in r.output and "--force" in r.output
    assert (out / "seed0001.png").read_bytes() == b"mine" and not (out / "seed0000.png").exists()
    assert run("generate", "--network", network, "--seeds", "0-1", "--outdir", out, "--force").exit_code == 0
    assert (out / "seed0001.png").read_bytes() == before

    r = run("init", "--cfg", "stylegan2", "--resolution", "16", "--cbase", "256", "--cmax", "32",
            "--outdir", network.parent)
    assert r.exit_code == 1 and "already exists" in r.output
    r = run("style-mixing", "--network", network, "--rows", "1", "--cols", "2", "--styles", "0", "--outdir", out)
    assert r.exit_code == 0, r.output
    r = run("style-mixing", "--network", network, "--rows", "1", "--cols", "2", "--styles", "0", "--outdir", out)
    assert r.exit_code == 1 and "grid.png already exists" in r.output
    (out / "grid.png").unlink()  # the cells are outputs too: 1-2.png was replaced without --force
    (out / "1-2.png").write_bytes(b"mine")
    r = run("style-mixing", "--network", network, "--rows", "1", "--cols", "2", "--styles", "0", "--outdir", out)
    assert r.exit_code == 1 and "1-1.png already exists" in r.output and (out / "1-2.png").read_bytes() == b"mine"
    assert not (out / "grid.png").exists()


def test_convert_never_writes_over_its_source(network, tmp_path):
    snapshot = tmp_path / "snap.safetensors"
    snapshot.write_bytes(network.read_bytes())
    for extra in ([], ["--force"]):
        r = run("convert", "--source", snapshot, "--dest", snapshot, "--networks", "G_ema", *extra)
        assert r.exit_code == 2 and "is also this command's input" in r.output, r.output
    assert snapshot.read_bytes() == network.read_bytes()  # D and G survive
    dest = tmp_path / "g.safetensors"
    assert run("convert", "--source", snapshot, "--dest", dest, "--networks", "G_ema").exit_code == 0
    r = run("convert", "--source", snapshot, "--dest", dest)
    assert r.exit_code == 1 and "already exists" in r.output
    assert run("convert", "--source", snapshot, "--dest", dest, "--force").exit_code == 0


@pytest.mark.parametrize("args,message", [
    (["generate", "--seeds", "0", "--trunc", "nan"], "not a finite number"),
    (["generate", "--seeds", "0", "--trunc", "inf"], "Invalid value for '--trunc'"),
    (["generate", "--seeds", "0", "--trunc", "1e30"], "range"),
    (["generate", "--seeds", "0", "--trunc-cutoff", "-5"], "-5"),
    (["generate", "--seeds", "0-4294967295"], "more than 1,000,000"),
    (["generate", "--seeds", "0", "--device", "bogus"], "expected auto, cpu, cuda"),
])
def test_bad_values_are_one_line_usage_errors(network, tmp_path, args, message):
    r = run(*args, "--network", network, "--outdir", tmp_path / "o")
    assert r.exit_code == 2 and message in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()


def test_data_resolution_zero_is_refused(network, tmp_path):
    """--data-resolution 0 was taken as 'not given' (the network's resolution), with exit 0."""
    for args in (["reprojection-study", "--network", network, "--data", "builtin:mnist5k", "--num", "1",
                  "--num-steps", "1", "--outdir", tmp_path / "o"],
                 ["metrics", "--network", network, "--metrics", "fid10", "--data", "builtin:mnist5k"]):
        r = run(*args, "--data-resolution", "0")
        assert r.exit_code == 2 and "Invalid value for '--data-resolution'" in r.output, r.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flag", ["--kimg", "--tick", "--gamma", "--glr", "--minutes"])
def test_train_refuses_non_finite_numbers(tmp_path, flag):
    r = run("train", "--data", tmp_path, "--outdir", tmp_path / "runs", flag, "inf")
    assert r.exit_code == 2 and "not a finite number" in r.output, r.output


def test_write_failures_are_one_line_errors(network, tmp_path, monkeypatch):
    r = run("generate", "--network", network, "--seeds", "0", "--outdir", "/proc/nope/x")
    assert r.exit_code == 1 and "Traceback" not in r.output and "/proc/nope" in r.output, r.output
    import safetensors.torch

    def full_disk(*a, **k):
        raise safetensors.SafetensorError("Error while serializing: IoError(No space left on device (os error 28))")
    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    dest = tmp_path / "g.safetensors"
    r = run("convert", "--source", network, "--dest", dest, "--networks", "G_ema")
    assert r.exit_code == 1 and "No space left on device" in r.output and str(dest) in r.output, r.output
    assert not dest.exists() and not list(tmp_path.glob(".*.tmp"))


def test_info_and_convert_read_every_format_and_packaged_name(network, tmp_path):
    """info and convert take what every --network takes: .safetensors, rosinality .pt/.pth, packaged names."""
    pt = tmp_path / "ros.pt"
    r = run("convert", "--source", network, "--dest", pt)
    assert r.exit_code == 0, r.output
    pth = tmp_path / "ros.pth"
    pth.write_bytes(pt.read_bytes())
    for path in (pt, pth):
        r = run("info", "--network", path)
        assert r.exit_code == 0, r.output
        assert "16x16" in r.output and "imported_from rosinality" in r.output
    r = run("info", "--network", "mnist32")
    assert r.exit_code == 0 and "conditional, 10 classes" in r.output, r.output
    r = run("convert", "--source", "mnist32", "--dest", tmp_path / "m.safetensors", "--networks", "G_ema")
    assert r.exit_code == 0 and "wrote" in r.output, r.output
    r = run("convert", "--source", "mnist33", "--dest", tmp_path / "x.safetensors")
    assert r.exit_code == 1 and "pretrained network name" in r.output, r.output
    assert not (tmp_path / "x.safetensors").exists()

"""What commands write: never over an existing output without --force, each file atomically and as soon as it
is made, a failed write naming its file; snapshot names that cannot collide."""
import errno

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _full_disk_after(monkeypatch, n_ok):
    """PNG writes succeed ``n_ok`` times, then fail as a full disk does (after a partial write)."""
    real_save, calls = Image.Image.save, []

    def save(self, fp, *a, **k):
        calls.append(fp)
        if len(calls) > n_ok:
            with open(fp, "wb") as f:
                f.write(b"\x89PNG partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *a, **k)
    monkeypatch.setattr(Image.Image, "save", save)
    return calls


def test_generate_writes_each_image_as_it_is_made_and_names_the_file_it_cannot_write(network, tmp_path,
                                                                                       monkeypatch):
    out = tmp_path / "imgs"
    calls = _full_disk_after(monkeypatch, 5)
    r = run("generate", "--network", network, "--seeds", "0-999999", "--batch-size", "2", "--outdir", out)
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"{out / 'seed0005.png'}: No space left on device" in r.output
    assert len(calls) == 6  # a million seeds: the sixth write failed, the rest were never made
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"seed{s:04d}.png" for s in range(5)]  # no partial seed0005.png, no temporary file
    assert all(Image.open(out / n).size == (16, 16) for n in names)


def test_a_million_seeds_start_at_once_and_hold_one_batch(network):
    import stylegan
    from stylegan.tools.generate import iter_images

    G = stylegan.load(str(network))
    made = []
    G.synthesis.register_forward_hook(lambda module, args, out: made.append(len(out)))
    images = iter_images(G, range(1_000_000), batch_size=4)
    first = [next(images) for _ in range(6)]
    assert [s for s, _ in first] == list(range(6)) and first[0][1].shape == (16, 16, 3)
    assert made == [4, 4]  # two batches of four made so far, not a million images


def test_a_grid_of_more_images_than_fit_is_refused_before_any_work(network, tmp_path):
    r = run("generate", "--network", network, "--seeds", "0-4999", "--grid", "--outdir", tmp_path / "o")
    assert r.exit_code == 2 and "leave out --grid" in r.output and not (tmp_path / "o").exists()


def test_existing_outputs_of_a_million_seeds_are_found_by_one_listing(tmp_path, monkeypatch):
    import os

    from stylegan.tools.generate import existing_outputs

    for name in ("seed999999.png", "seed0007.png", "seed07.png", "seed1000000.png", "grid.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    listed = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: listed.append(p) or real(p))
    seeds = range(1_000_000)
    assert [p.name for p in existing_outputs(tmp_path, seeds)] == ["seed0007.png", "seed999999.png"]
    assert [p.name for p in existing_outputs(tmp_path, seeds, grid=True)] == ["grid.png", "seed0007.png",
                                                                              "seed999999.png"]
    assert len(listed) == 2 and existing_outputs(tmp_path / "new", seeds) == []


def test_style_mixing_and_edit_write_each_file_atomically(network, tmp_path, monkeypatch):
    _full_disk_after(monkeypatch, 1)
    r = run("style-mixing", "--network", network, "--rows", "1", "--cols", "2", "--styles", "0",
            "--outdir", tmp_path / "m")
    assert r.exit_code == 1 and "No space left on device" in r.output and str(tmp_path / "m") in r.output
    assert len(list((tmp_path / "m").iterdir())) == 1  # the one complete cell; nothing partial


@pytest.mark.parametrize("command,output", [
    (["project", "--target", "{dir}/t.png", "--num-steps", "3", "--outdir", "{dir}"], "proj.png"),
    (["project", "--target", "{dir}/t.png", "--outdir", "{dir}"], "proj.mp4"),  # an earlier run's video
    (["noise-study", "--realizations", "2", "--outdir", "{dir}"], "noise-std.npy"),
    (["resolution-study", "--num", "2", "--outdir", "{dir}"], "resolution-study.json"),
    (["video", "--seeds", "0-1", "--w-frames", "2", "--output", "{dir}/v.gif"], "v.gif"),
    (["reprojection-study", "--data", "{dir}", "--outdir", "{dir}"], "reprojection.png"),
])
def test_every_command_refuses_to_write_over_an_output_without_force(network, tmp_path, command, output):
    save_png = __import__("stylegan.images", fromlist=["save_png"]).save_png
    save_png(np.zeros((16, 16, 3), np.uint8), tmp_path / "t.png")
    (tmp_path / output).write_bytes(b"earlier")
    args = [a.format(dir=tmp_path) for a in command]
    r = run(command[0], "--network", network, *args[1:])
    assert r.exit_code == 1 and f"{tmp_path / output} already exists" in r.output and "--force" in r.output, r.output
    assert (tmp_path / output).read_bytes() == b"earlier"


def test_video_force_replaces_and_scale_enlarges_by_nearest_neighbour(network, tmp_path):
    out = tmp_path / "v.gif"
    out.write_bytes(b"earlier")
    args = ["video", "--network", network, "--seeds", "0-1", "--w-frames", "2", "--output", out]
    assert run(*args, "--scale", "3", "--force").exit_code == 0
    big = Image.open(out)
    assert big.size == (48, 48) and big.n_frames == 4
    frame = np.asarray(big.convert("RGB"))
    assert (frame[0::3, 0::3] == frame[2::3, 2::3]).all()  # every pixel a 3x3 block
    assert run(*args, "--scale", "0", "--force").exit_code == 2


def test_a_failed_video_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from stylegan.tools.video import write_video

    _full_disk_after(monkeypatch, 0)
    frames = [np.zeros((8, 8, 3), np.uint8)] * 2
    with pytest.raises(OSError):
        write_video(iter(frames), tmp_path / "v.gif")
    assert list(tmp_path.iterdir()) == []


def test_project_force_leaves_no_video_of_an_earlier_projection(network, tmp_path):
    from stylegan.metrics.features import load_lpips

    try:
        load_lpips()
    except Exception as e:  # noqa: BLE001 - no LPIPS weights here: say so
        pytest.skip(f"LPIPS weights not available: {e}")
    from stylegan.images import save_png

    save_png(np.full((16, 16, 3), 90, np.uint8), tmp_path / "t.png")
    for name in ("proj.png", "proj.mp4"):
        (tmp_path / "p" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "p" / name).write_bytes(b"a 100-step projection")
    r = run("project", "--network", network, "--target", tmp_path / "t.png", "--num-steps", "3", "--force",
            "--outdir", tmp_path / "p")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "p" / "proj.png").size == (16, 16) and not (tmp_path / "p" / "proj.mp4").exists()


def test_snapshot_names_are_distinct_at_any_tick_and_sort_by_time(tmp_path):
    from stylegan.training.runs import latest_snapshot
    from stylegan.training.snapshots import run_snapshots, snapshot_tag

    assert snapshot_tag(100_000) == "000100" and snapshot_tag(200) == "000000.200" and snapshot_tag(1_004) == "000001.004"
    nimgs = range(0, 5_000, 200)  # --tick 0.2 --snap 1: four snapshots a kimg
    assert len({snapshot_tag(n) for n in nimgs}) == len(nimgs)
    run = tmp_path / "00000-run"
    run.mkdir()
    for name in ["000000", "000000.200", "000001", "000000.800", "000001.200", "000012"]:  # old and new names
        (run / f"network-snapshot-{name}.safetensors").write_bytes(b"")
    (run / "network-snapshot-bad.safetensors").write_bytes(b"")
    assert [k for k, _ in run_snapshots(run)] == [0.0, 0.2, 0.8, 1.0, 1.2, 12.0]
    assert latest_snapshot(tmp_path).name == "network-snapshot-000012.safetensors"
    (run / "network-snapshot-000012.safetensors").unlink()
    assert latest_snapshot(tmp_path).name == "network-snapshot-000001.200.safetensors"


def test_training_with_ticks_shorter_than_a_kimg_keeps_every_snapshot_and_grid(tmp_path):
    from test_training import tiny_opts

    from stylegan.checkpoint import read_checkpoint
    from stylegan.training.loop import train
    from stylegan.training.runs import latest_snapshot

    run = train(tiny_opts(tmp_path, kimg=0.012, tick=0.004, snap=1))
    snaps = sorted(p.name for p in run.glob("network-snapshot-*"))
    assert snaps == [f"network-snapshot-000000.{n:03d}.safetensors" for n in (4, 8, 12)]
    assert sorted(p.name for p in run.glob("fakes0*")) == [f"fakes000000.{n:03d}.png" for n in (4, 8, 12)]
    assert [read_checkpoint(run / s).extra["training"]["cur_nimg"] for s in snaps] == [4, 8, 12]
    assert latest_snapshot(tmp_path / "runs") == run / snaps[-1]


@pytest.mark.parametrize("dest", ["ds", "ds.zip"])
def test_dataset_on_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch, dest):
    import pathlib
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(src / f"{i}.png")
    writes = []

    def full(real):
        def write(self, *a, **k):
            writes.append(1)
            if len(writes) > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, *a, **k)
        return write
    monkeypatch.setattr(pathlib.Path, "write_bytes", full(pathlib.Path.write_bytes))
    monkeypatch.setattr(zipfile.ZipFile, "writestr", full(zipfile.ZipFile.writestr))
    r = run("dataset", "--source", src, "--dest", tmp_path / dest, "--quiet")
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"{tmp_path / dest}: 00000/img00000002.png: No space left on device" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no dataset, no temporary folder or file


@pytest.mark.parametrize("args,option", [
    (["generate", "--network", "{net}", "--seeds", "0", "--outdir", ""], "--outdir"),
    (["train", "--outdir", " ", "--cfg", "small", "--data", "{dir}", "--dry-run"], "--outdir"),
    (["convert", "--source", "{net}", "--dest", ""], "--dest"),
    (["video", "--network", "{net}", "--seeds", "0-1", "--output", ""], "--output"),
    (["export", "--network", "{net}", "--onnx", ""], "--onnx"),
    (["demo", "--outdir", ""], "--outdir"),
])
def test_an_empty_output_path_is_refused_before_any_work(network, tmp_path, monkeypatch, args, option):
    monkeypatch.chdir(tmp_path)  # an empty path would have written here, under names the user never gave
    r = run(*[a.format(net=network, dir=tmp_path) for a in args])
    assert r.exit_code == 2 and option in r.output and "an empty path" in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing written"

"""Editing and analysis tools: projection, videos, noise study, resolution contributions."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import tiny_config
from stylegan.checkpoint import save_checkpoint
from stylegan.cli.main import main
from stylegan.images import save_png, to_uint8
from stylegan.networks import build_networks
from stylegan.tools.noise_study import noise_study
from stylegan.tools.projector import ProjectionConfig, load_projected_w, project, save_projected_w
from stylegan.tools.resolution_study import relative_std, resolution_contributions
from stylegan.tools.video import interpolation_frames, num_frames, slerp, write_video


def _G(res=16, strength=0.3, seed=0, **kw):
    G = build_networks(tiny_config(res, **kw), seed=seed)["G_ema"]
    for m in G.synthesis.modules():
        if hasattr(m, "strength"):
            m.strength.data.fill_(strength)
    G.mapping.w_avg.copy_(G.mapping(torch.randn(256, 32))[:, 0].mean(0))
    return G


def mse(a, b):
    return (a - b).square().mean(dim=[1, 2, 3])


def test_projection_recovers_a_generated_image():
    torch.manual_seed(0)
    G = _G(strength=0.0)
    target = G.synthesis(G.mapping(torch.randn(1, 32)), noise_mode="none").detach()
    random_img = G.synthesis(G.mapping(torch.randn(1, 32)), noise_mode="none").detach()
    proj = project(G, target, mse, ProjectionConfig(num_steps=150, w_avg_samples=1000), progress=False)
    assert proj.w.shape == (1, G.num_ws, 32)
    assert proj.final_distance < 0.1 * mse(random_img, target).item()
    assert proj.distances[-1] < proj.distances[0]


def test_projected_w_round_trips_through_generate(tmp_path):
    G = _G()
    cfg = tiny_config(16)
    nets = build_networks(cfg, seed=0)
    nets["G_ema"] = G
    net = save_checkpoint(tmp_path / "net.safetensors", cfg, nets)
    ws = G.mapping(torch.randn(1, 32))
    from stylegan.tools.projector import Projection

    save_projected_w(tmp_path / "projected_w.npz", Projection(w=ws, noise={}, image=None))
    assert torch.equal(load_projected_w(tmp_path / "projected_w.npz", G), ws)
    r = CliRunner().invoke(main, ["generate", "--network", str(net), "--projected-w", str(tmp_path / "projected_w.npz"),
                                  "--outdir", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    img = np.asarray(Image.open(tmp_path / "out" / "proj00.png"))
    assert (img == to_uint8(G.synthesis(ws, noise_mode="const"))[0]).all()
    np.savez(tmp_path / "bad.npz", w=np.zeros((1, 3, 32), np.float32))
    with pytest.raises(ValueError, match="needs"):
        load_projected_w(tmp_path / "bad.npz", G)


def test_a_projection_rendered_with_another_network_of_the_same_shape_says_so(tmp_path):
    """projected_w.npz holds w alone (the authors' format), so a projection made with one network rendered with
    another of the same shapes (another run, a fine-tuned copy) gave other images without a word. Ours also
    records which network it was made with; another one renders it (a fine-tuned copy is a use) with a warning;
    the same network, or a file without the record (the authors'), renders without one."""
    from stylegan.tools.projector import Projection, generator_fingerprint

    cfg = tiny_config(16)
    nets = build_networks(cfg, seed=0)
    net = save_checkpoint(tmp_path / "net.safetensors", cfg, nets)
    other = save_checkpoint(tmp_path / "other.safetensors", cfg, build_networks(cfg, seed=1))
    G = nets["G_ema"]
    save_projected_w(tmp_path / "p.npz", Projection(w=G.mapping(torch.randn(1, 32)), noise={}, image=None), G)
    np.savez(tmp_path / "authors.npz", w=np.load(tmp_path / "p.npz")["w"])
    G1 = build_networks(cfg, seed=1)["G_ema"]
    assert generator_fingerprint(G1) != generator_fingerprint(G) == generator_fingerprint(build_networks(cfg, 0)["G_ema"])
    said = []
    load_projected_w(tmp_path / "p.npz", G, warn=said.append)
    load_projected_w(tmp_path / "authors.npz", G1, warn=said.append)
    assert said == []
    load_projected_w(tmp_path / "p.npz", G1, warn=said.append)
    assert len(said) == 1 and "another network" in said[0]
    for network, warned in ((net, False), (other, True)):
        out = tmp_path / f"out-{network.stem}"
        r = CliRunner().invoke(main, ["generate", "--network", str(network), "--projected-w", str(tmp_path / "p.npz"),
                                      "--outdir", str(out)])
        assert r.exit_code == 0, r.output
        assert ("warning: " in r.output and "projected with another network" in r.output) == warned, r.output
        assert (out / "proj00.png").is_file()


def test_projected_w_refuses_empty_truncated_nan_and_no_ws(tmp_path):
    """An empty file ended `generate --projected-w` with 'Aborted!', a truncated one with a traceback; a nan w
    made a blank image and a w of no rows wrote nothing, both with exit 0."""
    G = _G()
    cfg = tiny_config(16)
    nets = build_networks(cfg, seed=0)
    nets["G_ema"] = G
    net = save_checkpoint(tmp_path / "net.safetensors", cfg, nets)
    np.savez(tmp_path / "good.npz", w=np.zeros((1, G.num_ws, 32), np.float32))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "truncated.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:100])
    np.savez(tmp_path / "nan.npz", w=np.full((1, G.num_ws, 32), np.nan, np.float32))
    np.savez(tmp_path / "none.npz", w=np.zeros((0, G.num_ws, 32), np.float32))
    for name, msg in (("empty", "not a projected_w.npz"), ("truncated", "not a projected_w.npz"),
                      ("nan", "nan or infinite"), ("none", "N ≥ 1")):
        with pytest.raises(ValueError, match=msg):
            load_projected_w(tmp_path / f"{name}.npz", G)
        r = CliRunner().invoke(main, ["generate", "--network", str(net), "--projected-w", str(tmp_path / f"{name}.npz"),
                                      "--outdir", str(tmp_path / name)])
        assert r.exit_code == 1 and msg in r.output and "Aborted" not in r.output, (name, r.output)
        assert not (tmp_path / name).exists()


def test_video_frames_count_and_loop_continuity(tmp_path):
    G = _G()
    seeds = [1, 2, 3, 4, 5, 6]
    frames = list(interpolation_frames(G, seeds, grid=(2, 1), w_frames=8, space="w"))
    assert len(frames) == num_frames(len(seeds), 2, 8) == 24
    assert frames[0].shape == (16, 32, 3)
    step = [np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(len(frames) - 1)]
    wrap = np.abs(frames[0].astype(int) - frames[-1]).mean()  # the loop closes: last -> first is one step
    assert wrap <= 2 * max(step)
    far = np.abs(frames[0].astype(int) - frames[8]).mean()  # one keyframe apart
    assert wrap < far
    zf = list(interpolation_frames(G, seeds[:2], w_frames=4, space="z"))
    assert len(zf) == 8
    a, b = torch.randn(3, 32), torch.randn(3, 32)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b, atol=1e-5, rtol=1e-5)
    gif = write_video(iter(frames), tmp_path / "v.gif", fps=10)
    assert Image.open(gif).n_frames == 24
    mp4 = write_video(iter(frames), tmp_path / "v.mp4", fps=10)
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    assert meta["size"] == (32, 16) and sum(1 for _ in reader) == 24
    with pytest.raises(ValueError, match="evenly"):
        list(interpolation_frames(G, [1, 2, 3], grid=(2, 1)))


def test_noise_study_std_zero_without_noise_and_positive_with_it():
    quiet = noise_study(_G(strength=0.0), seed=1, realizations=8)
    assert np.abs(quiet.std).max() == 0
    assert (quiet.images["all"] == quiet.images["none"]).all()
    loud = noise_study(_G(strength=0.5), seed=1, realizations=8)
    assert loud.std.mean() > 1e-3
    assert not (loud.images["all"] == loud.images["none"]).all()
    assert not (loud.images["fine"] == loud.images["coarse"]).all()
    assert loud.figure().shape == (16, 80, 3)


def test_noise_study_refuses_a_split_that_leaves_one_side_empty():
    """--split 0 was taken as the default; a split below the coarsest noise layer or at the finest one made a
    'coarse' or 'fine' image without noise, with exit 0."""
    G = _G(strength=0.5)  # noise layers at 4, 8 and 16
    for split, side in ((0, "coarse"), (-4, "coarse"), (2, "coarse"), (16, "fine"), (64, "fine")):
        with pytest.raises(ValueError, match=f"leaves no {side} noise layers: give a resolution from 4 to 8"):
            noise_study(G, seed=1, realizations=2, split=split)
    assert not (noise_study(G, seed=1, realizations=2, split=8).images["fine"]
                == noise_study(G, seed=1, realizations=2).images["fine"]).all()


def test_resolution_contributions_sum_to_the_image():
    G = _G(32)
    ws = G.mapping(torch.randn(3, 32))
    parts = resolution_contributions(G, ws)
    assert sorted(parts) == [4, 8, 16, 32]
    torch.testing.assert_close(sum(parts.values()), G.synthesis(ws, noise_mode="const"), atol=1e-5, rtol=1e-5)
    share = relative_std(G, num=8)
    assert sum(share.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="skip"):
        resolution_contributions(_G(16, g_arch="resnet"), G.mapping(torch.randn(1, 32))[:, :6])


def test_tool_commands(tmp_path):
    cfg = tiny_config(16)
    nets = build_networks(cfg, seed=0)
    net = str(save_checkpoint(tmp_path / "net.safetensors", cfg, nets))
    run = CliRunner().invoke
    r = run(main, ["video", "--network", net, "--seeds", "0-3", "--grid", "2x1", "--w-frames", "3",
                   "--output", str(tmp_path / "v.gif")])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "v.gif").n_frames == 6
    r = run(main, ["video", "--network", net, "--seeds", "0-3", "--grid", "2by2", "--output", str(tmp_path / "x.gif")])
    assert r.exit_code == 2 and "COLSxROWS" in r.output
    r = run(main, ["noise-study", "--network", net, "--realizations", "4", "--outdir", str(tmp_path / "n")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "n" / "noise-study.png").exists()
    r = run(main, ["resolution-study", "--network", net, "--num", "4", "--outdir", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r" / "resolution-study.json").read_text())[0]["share"]


def test_resolution_study_over_a_run(tmp_path):
    import shutil

    cfg = tiny_config(16)
    run_dir = tmp_path / "00000-run"
    run_dir.mkdir()
    for kimg, seed in ((0, 0), (4, 1)):
        save_checkpoint(run_dir / f"network-snapshot-{kimg:06d}.safetensors", cfg, build_networks(cfg, seed=seed))
    r = CliRunner().invoke(main, ["resolution-study", "--run", str(run_dir), "--num", "4", "--outdir", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "o" / "resolution-study.json").read_text())
    assert [row["kimg"] for row in rows] == [0.0, 4.0]
    assert Image.open(tmp_path / "o" / "resolution-study.png").size[0] > 100
    # One network into the same folder: refused without --force (the run's plot is there); with it, the table is
    # replaced and the run's plot removed, never left beside a table it does not show
    one = ["resolution-study", "--network", str(run_dir / "network-snapshot-000004.safetensors"), "--num", "4",
           "--outdir", str(tmp_path / "o")]
    r = CliRunner().invoke(main, one)
    assert r.exit_code == 1 and "already exists" in r.output and (tmp_path / "o" / "resolution-study.png").exists()
    r = CliRunner().invoke(main, one + ["--force"])
    assert r.exit_code == 0, r.output
    assert len(json.loads((tmp_path / "o" / "resolution-study.json").read_text())) == 1
    assert not (tmp_path / "o" / "resolution-study.png").exists()
    shutil.rmtree(run_dir)


def _lpips_or_skip():
    from stylegan.metrics.features import load_lpips

    try:
        return load_lpips()
    except Exception as e:  # noqa: BLE001 - any failure to find the weights means: skip, saying why
        pytest.skip(f"LPIPS (VGG16) weights not available: {e}")


def test_project_command_with_lpips(tmp_path):
    _lpips_or_skip()
    G = _G(strength=0.0)
    cfg = tiny_config(16)
    nets = build_networks(cfg, seed=0)
    nets["G_ema"] = G
    net = str(save_checkpoint(tmp_path / "net.safetensors", cfg, nets))
    with torch.no_grad():
        target = to_uint8(G(torch.randn(1, 32), noise_mode="none"))[0]
    save_png(target, tmp_path / "t.png")
    r = CliRunner().invoke(main, ["project", "--network", net, "--target", str(tmp_path / "t.png"), "--num-steps", "20",
                                  "--report", "--save-video", "--outdir", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    assert "final LPIPS distance" in r.output
    for name in ("target.png", "proj.png", "projected_w.npz", "losses.json", "proj.mp4"):
        assert (tmp_path / "p" / name).exists(), name
    losses = json.loads((tmp_path / "p" / "losses.json").read_text())
    assert len(losses["loss"]) == 20 and losses["distance"][-1] < losses["distance"][0]
    r = CliRunner().invoke(main, ["generate", "--network", net, "--projected-w", str(tmp_path / "p" / "projected_w.npz"),
                                  "--outdir", str(tmp_path / "g")])
    assert r.exit_code == 0 and "warning" not in r.output, r.output  # noise maps optimized, the network untouched
    r = CliRunner().invoke(main, ["project", "--network", net, "--target", str(tmp_path / "nope.png"),
                                  "--outdir", str(tmp_path / "q")])
    assert r.exit_code != 0
    # A bad second target was found only after the first projection had been written (a rerun then needed --force).
    r = CliRunner().invoke(main, ["project", "--network", net, "--target", str(tmp_path / "t.png"), "--target",
                                  str(tmp_path / "nope.png"), "--num-steps", "2", "--outdir", str(tmp_path / "q")])
    assert r.exit_code == 1 and "nope.png: cannot read the target image" in r.output
    assert not (tmp_path / "q").exists()


def test_reprojection_generated_closer_than_unrelated_images():
    distance = _lpips_or_skip()
    from stylegan.tools.reprojection import reprojection_distances

    torch.manual_seed(0)
    G = _G(strength=0.0)
    others = torch.rand(1, 3, 16, 16) * 2 - 1  # a noise image the network cannot make
    d = reprojection_distances(G, others, distance, 1, ProjectionConfig(num_steps=40, w_avg_samples=500))
    assert max(d["generated"]) < min(d["real"])


def test_reprojection_of_a_conditional_network():
    distance = _lpips_or_skip()
    from stylegan.presets import make_config
    from stylegan.networks import build_networks
    from stylegan.tools.reprojection import reprojection_distances

    cfg = make_config("stylegan2", resolution=16, cbase=256, cmax=32, map_depth=2, z_dim=32, w_dim=32, c_dim=3,
                      num_fp16_res=0, conv_clamp=None)
    G = build_networks(cfg, seed=0)["G_ema"].eval()
    d = reprojection_distances(G, torch.rand(2, 3, 16, 16) * 2 - 1, distance, 2, ProjectionConfig(num_steps=2, w_avg_samples=50))
    assert len(d["generated"]) == len(d["real"]) == 2


def test_projection_starts_from_the_requested_class(tmp_path):
    """project --class K starts from class K's own average w; without a class, a conditional network starts
    from the average over all classes, and the command says so; a class the network lacks is refused."""
    from stylegan.tools.projector import w_statistics

    G = build_networks(tiny_config(16, c_dim=3), seed=0)["G_ema"]
    w0, _ = w_statistics(G, 600, 1, class_idx=0)
    w_all, _ = w_statistics(G, 600, 1)
    z = torch.randn(600, 32, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(w0[0], G.mapping(z, torch.eye(3)[[0] * 600])[:, 0].mean(0), atol=1e-5)
    assert not torch.allclose(w0, w_all, atol=1e-3)
    with pytest.raises(ValueError, match="not a class of this network: give 0-2"):
        w_statistics(G, 10, 1, class_idx=3)
    cfg = tiny_config(16, c_dim=3)
    nets = build_networks(cfg, seed=0)
    nets["G_ema"] = G
    net = str(save_checkpoint(tmp_path / "net.safetensors", cfg, nets))
    save_png(np.zeros((16, 16, 3), np.uint8), tmp_path / "t.png")
    args = ["project", "--network", net, "--target", str(tmp_path / "t.png"), "--num-steps", "2"]
    r = CliRunner().invoke(main, [*args, "--class", "5", "--outdir", str(tmp_path / "p")])
    assert r.exit_code == 2 and "--class: 5 is not a class of this network: give 0-2" in r.output, r.output
    u = str(save_checkpoint(tmp_path / "u.safetensors", tiny_config(16), build_networks(tiny_config(16))))
    r = CliRunner().invoke(main, [*args[:2], u, *args[3:], "--class", "1", "--outdir", str(tmp_path / "p")])
    assert r.exit_code == 2 and "--class: this network is unconditional" in r.output, r.output
    assert not (tmp_path / "p").exists()
    _lpips_or_skip()
    r = CliRunner().invoke(main, [*args, "--outdir", str(tmp_path / "a")])
    assert r.exit_code == 0 and "without --class: the projection starts from the average w of all classes" in r.output
    r = CliRunner().invoke(main, [*args, "--class", "1", "--outdir", str(tmp_path / "b")])
    assert r.exit_code == 0 and "note" not in r.output, r.output


def test_npz_outputs_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """projected_w.npz and a directions file: exactly the path asked for, and nothing left when the write fails."""
    import errno

    from stylegan.tools.directions import Directions
    from stylegan.tools.projector import Projection

    d = Directions(directions=np.eye(4, dtype=np.float32), sigma=np.ones(4, np.float32), method="sefa")
    assert d.save(tmp_path / "dirs") == tmp_path / "dirs" and (tmp_path / "dirs").is_file()  # no ".npz" appended

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    for save in (lambda p: d.save(p), lambda p: save_projected_w(p, Projection(w=torch.zeros(1, 2, 3), noise={},
                                                                                  image=None))):
        with pytest.raises(OSError):
            save(tmp_path / "out" / "x.npz")
    assert not list((tmp_path / "out").iterdir())

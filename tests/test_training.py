"""Training: losses against formulas, phases on their intervals, exact resume, signals, DDP."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.checkpoint import read_checkpoint
from stylegan.training.ema import ema_beta, update_ema
from stylegan.training.loop import Trainer, train
from stylegan.training.runs import latest_snapshot
from stylegan.training.loss import path_lengths, r1_penalty
from stylegan.training.options import OptionsError, TrainingOptions

VENV_BIN = Path(sys.executable).parent


def make_images(folder: Path, n=24, res=16, seed=0):
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:res, 0:res] / res
    for i in range(n):
        a, b, c = rng.rand(3)
        img = np.stack([np.sin(6 * a * xx + 3 * b), np.cos(5 * b * yy), np.sin(4 * c * (xx + yy))], -1)
        Image.fromarray(((img * 0.5 + 0.5) * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def tiny_opts(tmp_path, **kw):
    data = make_images(tmp_path / "data") if not (tmp_path / "data").exists() else tmp_path / "data"
    base = dict(outdir=str(tmp_path / "runs"), data=str(data), cbase=256, cmax=32, map_depth=2, batch=4,
                kimg=0.04, tick=0.016, snap=1, workers=0, device="cpu", seed=3)
    base.update(kw)
    return TrainingOptions(**base)


def test_r1_penalty_formula():
    w = torch.randn(1, 3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * w).sum(dim=[1, 2, 3]).unsqueeze(1) ** 1  # linear D: gradient is w everywhere
    torch.testing.assert_close(r1_penalty(x, logits), w.square().sum().expand(5))


def test_path_length_formula():
    torch.manual_seed(0)
    k, res = 3.0, 64
    ws = torch.randn(6, 1, res * res, requires_grad=True)
    img = ws.reshape(6, 1, res, res) * k  # J = k·I, so |J^T y| = k·|y| and E|y|^2 = 1
    lengths = path_lengths(img, ws)
    assert lengths.shape == (6,)
    assert torch.allclose(lengths, torch.full((6,), k), rtol=0.05)


def test_ema():
    assert ema_beta(32, 0, 10, 0.05) == pytest.approx(0.0, abs=1e-12)  # start: copy G
    assert ema_beta(32, 10 ** 7, 10, 0.05) == pytest.approx(0.5 ** (32 / 10000))
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ref = b.weight.detach() + 0.9 * (a.weight.detach() - b.weight.detach())
    update_ema(a, b, 0.9)
    torch.testing.assert_close(a.weight, ref)


def test_options_validation(tmp_path):
    with pytest.raises(OptionsError, match="--data"):
        TrainingOptions().validate()
    with pytest.raises(OptionsError, match="--batch"):
        TrainingOptions(data="x", batch=0).validate()
    with pytest.raises(OptionsError, match="style-mixing"):
        TrainingOptions(data="x", style_mixing=1.5).validate()
    assert TrainingOptions(data="x", batch=8).resolved_gamma(64) == pytest.approx(0.0002 * 64 * 64 / 8)


def test_iterations_finite_and_phases_on_their_intervals(tmp_path):
    torch.manual_seed(0)
    t = Trainer(tiny_opts(tmp_path))
    calls = []
    grads_seen = {}
    for name in ("g_main", "g_pl", "d_main", "d_r1"):
        fn = getattr(t.loss, name)

        def wrapped(*a, _fn=fn, _name=name, **k):
            def grads():
                return ({n: p.grad.clone() for n, p in t.G.named_parameters() if p.grad is not None},
                        {n: p.grad.clone() for n, p in t.D.named_parameters() if p.grad is not None})
            before = grads()
            out = _fn(*a, **k)
            after = grads()
            calls.append((t.batch_idx, _name))
            # The parameters whose gradients this phase changed.
            grads_seen[_name] = tuple({n for n, g in af.items() if n not in bf or not torch.equal(g, bf[n])}
                                      for bf, af in zip(before, after))
            return out
        setattr(t.loss, name, wrapped)
    for _ in range(17):
        stats = t.step()
        assert all(torch.isfinite(v).all() for v in stats.values())
    assert [b for b, n in calls if n == "g_pl"] == [0, 4, 8, 12, 16]
    assert [b for b, n in calls if n == "d_r1"] == [0, 16]
    assert len([1 for _, n in calls if n in ("g_main", "d_main")]) == 34
    # Path length moves only G's weights, R1 only D's; the main phases move their own network.
    g_pl, d_pl = grads_seen["g_pl"]
    g_r1, d_r1 = grads_seen["d_r1"]
    assert g_pl and not d_pl and d_r1 and not g_r1
    assert "synthesis.blocks.16.conv1.weight" in g_pl and "mapping.layers.0.weight" in g_pl
    assert "blocks.16.fromrgb.weight" in d_r1
    assert t.cur_nimg == 17 * 4 and t.loss.pl_mean.item() > 0


def test_non_finite_gradients_are_replaced_and_logged(tmp_path):
    t = Trainer(tiny_opts(tmp_path))
    messages = []
    t.log = messages.append
    g_main = t.loss.g_main

    def poisoned(*a, **k):
        out = g_main(*a, **k)
        t.G.synthesis.blocks["16"].conv1.weight.grad[0, 0, 0, 0] = float("nan")
        t.G.mapping.layers[0].bias.grad[0] = float("inf")
        return out
    t.loss.g_main = poisoned
    t.step()
    assert t.nan_grads == 1
    assert any("non-finite" in m and "G main" in m for m in messages)
    assert all(torch.isfinite(p).all() for p in t.G.parameters())


def check_resume_continues_exactly(tmp_path, **kw):
    """Five steps, a snapshot, three more; a trainer resumed from the snapshot must give the same three steps'
    losses, networks and learning rate bit for bit. ``kw``: the training options (tiny_opts)."""
    opts = tiny_opts(tmp_path, **kw)
    torch.manual_seed(11)
    a = Trainer(opts)
    for _ in range(5):
        a.step()
    snap = a.save_snapshot(tmp_path / "snap.safetensors")
    losses_a = [{k: v.clone() for k, v in a.step().items()} for _ in range(3)]

    torch.manual_seed(999)  # whatever the global state now, the snapshot's RNG state is restored
    b = Trainer(tiny_opts(tmp_path, resume=str(snap), **kw))
    assert b.cur_nimg == 20 and b.batch_idx == 5
    sa, sb = a.opt_G.state_dict(), b.opt_G.state_dict()
    losses_b = [{k: v.clone() for k, v in b.step().items()} for _ in range(3)]
    for la, lb in zip(losses_a, losses_b):
        assert la.keys() == lb.keys()
        for k in la:
            assert torch.equal(la[k], lb[k]), k
    for (n, pa), pb in zip(a.G.named_parameters(), b.G.parameters()):
        assert torch.equal(pa, pb), n
    for (n, pa), pb in zip(a.G_ema.named_parameters(), b.G_ema.parameters()):
        assert torch.equal(pa, pb), n
    assert sa["param_groups"][0]["lr"] == sb["param_groups"][0]["lr"]
    return a, b


def test_resume_continues_exactly(tmp_path):
    check_resume_continues_exactly(tmp_path)


def test_snapshot_of_unfused_adam_resumes_exactly(tmp_path):
    """Snapshots written before the trainer used PyTorch's fused Adam restore the unfused one with their
    optimizer settings, and continue exactly as the run that wrote them."""
    opts = tiny_opts(tmp_path)
    torch.manual_seed(11)
    a = Trainer(opts)
    assert a.opt_G.param_groups[0]["fused"] and a.opt_D.param_groups[0]["fused"]
    for name in ("opt_G", "opt_D"):
        old = getattr(a, name)
        group = old.param_groups[0]
        setattr(a, name, torch.optim.Adam(group["params"], lr=group["lr"], betas=group["betas"], eps=group["eps"]))
    for _ in range(5):
        a.step()
    snap = a.save_snapshot(tmp_path / "snap.safetensors")
    losses_a = [{k: v.clone() for k, v in a.step().items()} for _ in range(3)]
    b = Trainer(tiny_opts(tmp_path, resume=str(snap)))
    assert not b.opt_G.param_groups[0]["fused"] and not b.opt_D.param_groups[0]["fused"]
    for la in losses_a:
        lb = b.step()
        for k in la:
            assert torch.equal(la[k], lb[k]), k
    for (n, pa), pb in zip(a.G.named_parameters(), b.G.parameters()):
        assert torch.equal(pa, pb), n


def test_a_resumed_snapshot_trains_at_the_rates_given_on_the_command_line(tmp_path):
    """Resuming with another --glr/--dlr keeps Adam's moments but steps at the new rates (the snapshot's
    param groups used to bring back its own learning rate, and the flag was printed but not used). Lazy
    regularization still scales each rate by interval / (interval + 1)."""
    a = Trainer(tiny_opts(tmp_path, glr=0.002, dlr=0.002))
    for _ in range(3):
        a.step()
    snap = a.save_snapshot(tmp_path / "snap.safetensors")
    b = Trainer(tiny_opts(tmp_path, resume=str(snap), glr=0.0005, dlr=0.001))
    n = a.recipe.r1_interval
    assert n > 1 and a.opt_D.param_groups[0]["lr"] == pytest.approx(0.002 * n / (n + 1))
    assert b.opt_G.param_groups[0]["lr"] == pytest.approx(a.opt_G.param_groups[0]["lr"] / 4)
    assert b.opt_D.param_groups[0]["lr"] == pytest.approx(0.001 * n / (n + 1))
    assert b.opt_D.param_groups[0]["betas"] == a.opt_D.param_groups[0]["betas"]
    for name in ("opt_G", "opt_D"):  # the moments are the snapshot's
        sa, sb = getattr(a, name).state_dict()["state"], getattr(b, name).state_dict()["state"]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    before = [p.detach().clone() for p in b.G.parameters()]
    a_step = [p.detach().clone() for p in a.G.parameters()]
    b.step()
    moved = max((p - q).abs().max().item() for p, q in zip(b.G.parameters(), before))
    a.step()
    moved_a = max((p - q).abs().max().item() for p, q in zip(a.G.parameters(), a_step))
    assert moved < 0.5 * moved_a  # a quarter of the rate: Adam's step is about a quarter as long


def test_full_run_outputs_and_resume_latest(tmp_path):
    run = train(tiny_opts(tmp_path))
    names = {p.name for p in run.iterdir()}
    assert {"options.json", "log.txt", "stats.jsonl", "reals.png", "fakes_init.png", "fakes000000.016.png",
            "fakes000000.040.png", "network-snapshot-000000.016.safetensors", "network-snapshot-000000.032.safetensors",
            "network-snapshot-000000.040.safetensors"} <= names  # ticks of 16 images: one name per snapshot
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["kimg"] >= 0.04 and all(np.isfinite(r["Loss/G/loss"]) for r in rows)
    assert any(n.startswith("events.out.tfevents") for n in names)
    ckpt = read_checkpoint(run / "network-snapshot-000000.040.safetensors")
    assert ckpt.extra["training"]["cur_nimg"] == 40 and ckpt.extra["options"]["batch"] == 4
    # Resume the same run for longer, from the newest snapshot.
    from stylegan.training.runs import resume_options

    opts = resume_options("latest", str(tmp_path / "runs"), {"kimg": 0.06})
    assert opts.batch == 4 and opts.cbase == 256
    run2 = train(opts)
    assert run2 == run
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["kimg"] >= 0.06


def test_resume_keeps_one_log_and_leaves_finished_runs_alone(tmp_path):
    """Resuming from an older snapshot drops the log rows after it; stale temporary files of killed writes go;
    a run that has reached its --kimg is not trained further; snapshots are as readable as the other files."""
    import shutil

    from stylegan.training.runs import resume_options

    run = train(tiny_opts(tmp_path, kimg=0.04, tick=0.02, snap=2))  # ticks 1, 2; snapshot at tick 2
    snap = run / "network-snapshot-000000.040.safetensors"
    assert oct(snap.stat().st_mode & 0o777) == oct((run / "log.txt").stat().st_mode & 0o777)
    mid = shutil.copy(snap, tmp_path / "mid.safetensors")
    assert train(resume_options("latest", str(tmp_path / "runs"), {"kimg": 0.08})) == run  # ticks 3, 4
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["tick"] for r in rows] == [1, 2, 3, 4]
    # Back to the tick-2 snapshot, in the run folder, as if the run had been killed after writing ticks 3, 4
    # but before their snapshot; with the leftovers of two writes cut short.
    shutil.copy(mid, snap)
    (run / "network-snapshot-000000.080.safetensors").unlink()  # killed before the tick-4 snapshot
    for stale in (".tmpAb12Cd", ".network-snapshot-000000.safetensors.x1y2.tmp"):
        (run / stale).write_bytes(b"partial")
    (run / "keep.tmp.txt").write_text("not ours")
    assert train(resume_options(str(snap), str(tmp_path / "runs"), {"kimg": 0.08})) == run
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["tick"] for r in rows] == [1, 2, 3, 4]  # one row per tick, kimg never backwards
    assert [r["kimg"] for r in rows] == sorted(r["kimg"] for r in rows)
    assert not (run / ".tmpAb12Cd").exists() and (run / "keep.tmp.txt").exists()
    assert not any(p.name.endswith(".tmp") for p in run.iterdir())
    # Finished: resuming the last snapshot with the same --kimg trains nothing and rewrites nothing.
    last = run / "network-snapshot-000000.080.safetensors"
    before = last.stat().st_mtime_ns
    train(resume_options(str(last), str(tmp_path / "runs"), {}))
    assert len((run / "stats.jsonl").read_text().splitlines()) == 4 and last.stat().st_mtime_ns == before
    assert "already reached" in (run / "log.txt").read_text()


def test_resuming_an_older_snapshot_branches_and_leaves_its_run_alone(tmp_path):
    """`--resume` of a snapshot that is not its run's newest (going back to try other options) used to continue in
    that run's folder: it dropped every log and metric row after the snapshot, rewrote options.json and would
    have written its snapshots over the run's own. It starts a new folder in --outdir instead, continuing the
    training state exactly. Metric rows that carry no kimg (`stylegan metrics` on a snapshot) survive a resume."""
    from stylegan.training.runs import resume_options

    run = train(tiny_opts(tmp_path, kimg=0.08, tick=0.02, snap=1))
    with open(run / "metric-fid2k_full.jsonl", "a") as f:  # as `stylegan metrics --network SNAPSHOT` appends
        f.write(json.dumps({"metric": "fid2k_full", "results": {"fid2k_full": 1.0}}) + "\n")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    older = run / "network-snapshot-000000.040.safetensors"
    other = tmp_path / "other"
    branch = train(resume_options(str(older), str(other), {"kimg": 0.06, "outdir": str(other)}))
    assert branch.parent == other and branch != run
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # untouched
    ticks = [json.loads(line) for line in (branch / "stats.jsonl").read_text().splitlines()]
    assert [r["tick"] for r in ticks] == [3] and ticks[0]["kimg"] == 0.06  # counts on from the snapshot
    assert "a new folder" in (branch / "log.txt").read_text()
    # The newest snapshot still continues in place, and keeps the metric row without kimg.
    assert train(resume_options("latest", str(tmp_path / "runs"), {"kimg": 0.1})) == run
    assert "fid2k_full" in (run / "metric-fid2k_full.jsonl").read_text()


def test_a_resumed_snapshot_keeps_the_recipe_it_trained_with(tmp_path, monkeypatch):
    """A configuration's recipe may change between versions (small-rpgan went from batch 64, R1 every step, to
    batch 16, R1 every 4th step): a resumed snapshot goes on with the recipe it saved, not the current one, and a
    flag given now still goes on top. A snapshot that saved none (older versions) takes the configuration's."""
    import dataclasses

    from stylegan.presets import PRESETS
    from stylegan.training.runs import resume_options

    t = Trainer(tiny_opts(tmp_path, cfg="stylegan2"))
    t.step()
    snap = t.save_snapshot(tmp_path / "snap.safetensors")
    assert t.recipe.r1_interval == 16 and t.recipe.pl_interval == 4
    changed = dataclasses.replace(PRESETS["stylegan2"].training, r1_interval=2, pl_interval=8)
    monkeypatch.setitem(PRESETS, "stylegan2", dataclasses.replace(PRESETS["stylegan2"], training=changed))
    r = Trainer(resume_options(str(snap), str(tmp_path / "runs"), {}))
    assert (r.recipe.r1_interval, r.recipe.pl_interval) == (16, 4)
    r = Trainer(resume_options(str(snap), str(tmp_path / "runs"), {"r1_interval": 3}))
    assert (r.recipe.r1_interval, r.recipe.pl_interval) == (3, 4)
    assert Trainer(tiny_opts(tmp_path, cfg="stylegan2")).recipe.r1_interval == 2  # a new run: the current one


def test_dry_run_writes_nothing(tmp_path, capsys):
    assert train(tiny_opts(tmp_path, dry_run=True)) is None
    assert "dry run" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_dataset_resolution_mismatch_is_reported(tmp_path):
    from stylegan.checkpoint import save_checkpoint
    from stylegan.presets import make_config
    from stylegan.networks import build_networks

    cfg = make_config("stylegan2", resolution=32, cbase=256, cmax=32, map_depth=2)
    path = save_checkpoint(tmp_path / "n.safetensors", cfg, build_networks(cfg))
    with pytest.raises(OptionsError, match="16x16"):
        Trainer(tiny_opts(tmp_path, resume=str(path)))


def _cli(tmp_path, *extra):
    data = tmp_path / "data"
    if not data.exists():
        make_images(data)
    return [str(VENV_BIN / "stylegan"), "train", "--outdir", str(tmp_path / "runs"), "--data", str(data),
            "--cbase", "256", "--cmax", "32", "--map-depth", "2", "--batch", "4", "--tick", "0.008", "--snap", "1",
            "--workers", "0", "--device", "cpu", *extra]


def _wait_for(predicate, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_leaves_valid_snapshots_and_resumes(tmp_path, sig):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(_cli(tmp_path, "--kimg", "10"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert _wait_for(lambda: len(list((tmp_path / "runs").glob("*/network-snapshot-*.safetensors"))) >= 1)
        time.sleep(0.5)
        p.send_signal(sig)
        out = p.communicate(timeout=120)[0].decode()
    finally:
        if p.poll() is None:
            p.kill()
    snap = latest_snapshot(tmp_path / "runs")
    ckpt = read_checkpoint(snap)  # verified: complete and uncorrupted
    if sig == signal.SIGTERM:
        assert not list(snap.parent.glob(".*.tmp"))
        assert p.returncode == 0, out
        assert "SIGTERM" in out and "stopped by signal" in out
    r = subprocess.run(_cli(tmp_path, "--resume", "latest", "--kimg", str(ckpt.extra["kimg"] + 0.008)), env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming" in (snap.parent / "log.txt").read_text()
    assert not list(snap.parent.glob(".*.tmp"))  # a partial write left by SIGKILL is cleaned up


def test_sigterm_to_the_process_group_stops_cleanly_with_loader_workers(tmp_path):
    """What `timeout`, a scheduler's preemption or `systemctl stop` do: SIGTERM to every process of the group,
    data-loading workers included. The run must still finish its step, write a snapshot and exit 0."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = _cli(tmp_path, "--kimg", "10")
    cmd[cmd.index("--workers") + 1] = "2"
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert _wait_for(lambda: len(list((tmp_path / "runs").glob("*/network-snapshot-*.safetensors"))) >= 1)
        time.sleep(0.5)
        os.killpg(p.pid, signal.SIGTERM)
        out = p.communicate(timeout=120)[0].decode()
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 0, out
    assert "stopped by signal" in out and "Traceback" not in out
    read_checkpoint(latest_snapshot(tmp_path / "runs"))


def test_two_process_gloo_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(VENV_BIN / "torchrun"), "--nproc-per-node", "2", "--master-port", "29517", "-m", "stylegan.cli.main",
           *_cli(tmp_path, "--kimg", "0.016")[1:]]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and "gpus2" in runs[0].name
    assert runs[0].joinpath("log.txt").read_text().count("starting training") == 1
    rows = [json.loads(line) for line in runs[0].joinpath("stats.jsonl").read_text().splitlines()]
    assert rows[-1]["kimg"] >= 0.016
    ckpt = read_checkpoint(latest_snapshot(tmp_path / "runs"))
    assert ckpt.extra["training"]["world_size"] == 2


def test_cpu_bfloat16_layers_train_with_finite_losses(tmp_path):
    t = Trainer(tiny_opts(tmp_path, cpu_bf16=True))
    assert t.config.G.num_fp16_res == 4 and t.config.G.conv_clamp == 256
    assert t.G.synthesis.cpu_half_dtype == torch.bfloat16
    for _ in range(2):
        stats = t.step()
        assert all(torch.isfinite(v).all() for v in stats.values())
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in t.G.parameters())


def test_fp32_option_clears_reduced_precision_and_clamp(tmp_path):
    t = Trainer(tiny_opts(tmp_path, fp32=True))
    assert t.config.G.num_fp16_res == 0 and t.config.G.conv_clamp is None and t.config.D.conv_clamp is None


@pytest.mark.parametrize("aug", ["noaug", "fixed", "diffaug", "ada"])
def test_augmentation_modes_train(tmp_path, aug):
    t = Trainer(tiny_opts(tmp_path, aug=aug, p=0.5))
    for _ in range(2):
        stats = t.step()
        assert all(torch.isfinite(v).all() for v in stats.values())
    assert (t.loss.augment is None) == (aug == "noaug")


def test_ada_strength_moves_is_logged_and_resumes(tmp_path):
    opts = tiny_opts(tmp_path, aug="ada", ada_kimg=0.01, target=0.99, p=0.5)  # r_t < target: p falls
    t = Trainer(opts)
    for _ in range(8):
        t.step()
    assert t.ada.rt is not None and float(t.augment_pipe.p) < 0.5
    snap = t.save_snapshot(tmp_path / "s.safetensors")
    t2 = Trainer(tiny_opts(tmp_path, aug="ada", ada_kimg=0.01, target=0.99, resume=str(snap)))
    assert float(t2.augment_pipe.p) == float(t.augment_pipe.p) and t2.ada.state_dict() == t.ada.state_dict()
    run = train(tiny_opts(tmp_path, aug="ada", p=0.2, outdir=str(tmp_path / "r2")))
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert all("Progress/augment" in r for r in rows)


def test_freezed_blocks_do_not_move(tmp_path):
    t = Trainer(tiny_opts(tmp_path, freezed=1))
    before = {n: p.detach().clone() for n, p in t.D.named_parameters()}
    for _ in range(2):
        t.step()
    moved = {n for n, p in t.D.named_parameters() if not torch.equal(p, before[n])}
    assert t.frozen_D and not (moved & t.frozen_D)
    assert all(n.startswith("blocks.16.") for n in t.frozen_D)
    assert moved  # the rest of D trains
    with pytest.raises(OptionsError, match="freezed"):
        Trainer(tiny_opts(tmp_path, freezed=9))


def test_metrics_at_snapshots(tmp_path, monkeypatch):
    import stylegan.metrics.registry as registry

    calls = []

    def fake_compute_metric(name, G, data_path, device, **kw):
        calls.append((name, data_path))
        return {"metric": name, "results": {name: 1.5}, "seconds": 0.1}
    monkeypatch.setattr(registry, "compute_metric", fake_compute_metric)
    run = train(tiny_opts(tmp_path, metrics="fid1k_full,kid1k_full", kimg=0.016, tick=0.008, snap=1))
    rows = [json.loads(line) for line in (run / "metric-fid1k_full.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[-1]["results"] == {"fid1k_full": 1.5} and rows[-1]["kimg"] == 0.016
    assert {c[0] for c in calls} == {"fid1k_full", "kid1k_full"} and calls[0][1] == str(tmp_path / "data")
    with pytest.raises(OptionsError, match="unknown metric"):
        tiny_opts(tmp_path, metrics="fid7").validate()


def test_snapshot_grids_spread_over_the_data_and_rows_follow_classes(tmp_path):
    """Files sorted by class (as MNIST's are): reals.png must not show only the first class; with --cond,
    row r of the grids is class r (mod the number of classes)."""
    data = tmp_path / "data"
    data.mkdir()
    labels = []
    for i in range(32):  # class 0: black images first, then class 1: white ones
        cls = int(i >= 16)
        Image.fromarray(np.full((16, 16, 3), 255 * cls, np.uint8)).save(data / f"{i:03d}.png")
        labels.append([f"{i:03d}.png", cls])
    (data / "dataset.json").write_text(json.dumps({"labels": labels}))
    for cond in (False, True):
        run = train(tiny_opts(tmp_path, data=str(data), cond=cond, kimg=0.004, desc=f"c{int(cond)}"))
        grid = np.asarray(Image.open(run / "reals.png").convert("L"), dtype=np.float64)
        cell = 16
        means = grid.reshape(grid.shape[0] // cell, cell, grid.shape[1] // cell, cell).mean(axis=(1, 3))
        assert 0 < (means > 127).mean() < 1  # both classes appear
        if cond:
            assert (means[0::2] < 1).all() and (means[1::2] > 254).all()


def test_minutes_budget_stops_the_run_and_counts_across_resumes(tmp_path):
    run = train(tiny_opts(tmp_path, kimg=1000, minutes=0.002))  # 0.12 s of training steps
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    spent = rows[-1]["train_minutes"]
    assert 0.002 <= spent < 1.0 and rows[-1]["kimg"] < 1000
    snap = latest_snapshot(tmp_path / "runs")
    assert read_checkpoint(snap).extra["training"]["train_seconds"] == pytest.approx(spent * 60)
    t = Trainer(tiny_opts(tmp_path, kimg=1000, minutes=0.002, resume=str(snap)))
    assert t.budget_spent()  # the budget is the run's, not the process's
    t = Trainer(tiny_opts(tmp_path, kimg=1000, minutes=1, resume=str(snap)))
    assert not t.budget_spent() and t.train_seconds == pytest.approx(spent * 60)
    t.step()
    assert t.train_seconds > spent * 60
    with pytest.raises(OptionsError, match="minutes"):
        tiny_opts(tmp_path, minutes=0).validate()


def test_small_recipe_builds_and_trains(tmp_path):
    from stylegan.presets import PRESETS

    opts = tiny_opts(tmp_path, cfg="small", cbase=None, cmax=None, map_depth=None, batch=None).validate()
    recipe = PRESETS["small"].training
    assert opts.batch == recipe.batch and opts.aug == recipe.aug  # taken from the recipe when not given
    t = Trainer(opts)
    assert not t.pl_on and t.recipe.style_mixing == 0 and t.config.cfg == "small"
    assert t.config.D.mbstd_group == PRESETS["small"].build().D.mbstd_group
    assert t.ema_kimg == opts.resolved_ema_kimg("small")
    before = [p.detach().clone() for p in t.G.parameters()]
    for _ in range(3):
        stats = t.step()
        assert all(torch.isfinite(v).all() for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters()))
    # Flags given on top of the recipe win; the papers' rows keep their own defaults.
    assert tiny_opts(tmp_path, cfg="small", batch=8, aug="ada").validate().batch == 8
    assert tiny_opts(tmp_path, batch=None, aug=None).validate().batch == 32
    assert tiny_opts(tmp_path, batch=None, aug=None).validate().aug == "ada"


def test_procs_option_trains_one_run_in_two_processes(tmp_path):
    r = subprocess.run(_cli(tmp_path, "--kimg", "0.016", "--procs", "2"), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and "gpus2" in runs[0].name
    assert read_checkpoint(latest_snapshot(tmp_path / "runs")).extra["training"]["world_size"] == 2
    bad = subprocess.run(_cli(tmp_path, "--kimg", "0.016", "--procs", "3"), capture_output=True, text=True)
    assert bad.returncode != 0 and "not divisible by --procs 3" in bad.stderr and "Traceback" not in bad.stderr


def _finish_at_different_times(folder):
    """A process of a two-process group: rank 0 is still busy (a snapshot being written) when rank 1 ends."""
    from stylegan.training.distributed import init_distributed, shutdown

    info = init_distributed("cpu")
    if info.rank == 0:
        time.sleep(1.0)
    Path(folder, f"before{info.rank}").write_text(str(time.time()))
    shutdown(info, finished=True)
    Path(folder, f"after{info.rank}").write_text(str(time.time()))


def test_finished_processes_leave_the_group_together(tmp_path):
    """A gloo group torn down in one process while its peer still works aborted that process's exit (CI, once:
    "terminate called without an active exception", exit 250): at the end of a run every process waits."""
    from stylegan.training.distributed import launch_local

    launch_local(_finish_at_different_times, (str(tmp_path),), procs=2, threads=1)
    t = {f.name: float(f.read_text()) for f in tmp_path.iterdir()}
    assert t["after1"] >= t["before0"] > t["before1"] + 0.5


def test_minibatch_std_gain_scales_only_its_channel():
    from stylegan.nn.mbstd import MinibatchStd

    x = torch.randn(8, 4, 3, 3)
    a, b = MinibatchStd(4, 1)(x), MinibatchStd(4, 1, gain=10.0)(x)
    torch.testing.assert_close(b[:, :4], a[:, :4])
    torch.testing.assert_close(b[:, 4:], a[:, 4:] * 10)


def test_recipe_knobs_reach_the_loss_and_train(tmp_path):
    t = Trainer(tiny_opts(tmp_path, betas=(0.5, 0.9), mbstd_gain=3.0, aug="noaug"))
    assert t.opt_D.param_groups[0]["betas"] == pytest.approx((0.5 ** (16 / 17), 0.9 ** (16 / 17)))
    assert t.D.epilogue.mbstd.gain == 3.0
    stats = t.step()
    assert all(torch.isfinite(v).all() for v in stats.values())


def test_options_that_left_the_package_load_when_off_and_are_refused_when_on(tmp_path):
    """Snapshots and packaged networks saved with the small-compute study's knobs (mode_seeking, train_noise)
    still load when those were off; a snapshot trained with one on is refused, naming it."""
    base = tiny_opts(tmp_path).to_dict()
    opts = TrainingOptions.from_dict({**base, "mode_seeking": None, "train_noise": "random"})
    assert not hasattr(opts, "mode_seeking")
    with pytest.raises(OptionsError, match="--mode-seeking 1.0: this option left the package"):
        TrainingOptions.from_dict({**base, "mode_seeking": 1.0})
    with pytest.raises(OptionsError, match="--train-noise 'none'"):
        TrainingOptions.from_dict({**base, "train_noise": "none"})


def test_metrics_that_cannot_score_the_run_are_refused_before_training(tmp_path):
    with pytest.raises(OptionsError, match="ls1k: needs a conditional generator"):
        Trainer(tiny_opts(tmp_path, metrics="ls1k"))
    assert not (tmp_path / "runs").exists()


def test_a_signal_during_start_up_ends_cleanly(tmp_path, monkeypatch, capsys):
    """SIGTERM while the trainer is being built (data, networks): a clean exit, nothing trained or written."""
    import stylegan.training.loop as loop

    real_init = loop.Trainer.__init__

    def init_then_signal(self, *a, **k):
        real_init(self, *a, **k)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by train()'s handler, which records it
    monkeypatch.setattr(loop.Trainer, "__init__", init_then_signal)
    before = signal.getsignal(signal.SIGTERM)
    assert train(tiny_opts(tmp_path)) is None
    assert "stopped by SIGTERM during start-up" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back


def test_a_run_is_resolved_once_into_a_frozen_object(tmp_path):
    """The options, the recipe, γ, the EMA length and the batch per process are decided in one place; the
    options cannot be changed afterwards, and filling them in returns new options."""
    import dataclasses

    from stylegan.training.run import Run

    opts = tiny_opts(tmp_path, batch=None, aug=None)
    t = Trainer(opts)
    run = t.run_spec
    assert isinstance(run, Run) and opts.batch is None and run.opts.batch == 32  # the caller's options unchanged
    assert (run.gamma, run.ema_kimg, run.batch_gpu) == (pytest.approx(0.0002 * 16 ** 2 / 32), 10.0, 32)
    assert t.opts is run.opts and t.recipe is run.recipe
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.opts.batch = 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.gamma = 1.0


def test_train_reads_a_resumed_snapshot_once(tmp_path, monkeypatch):
    """`stylegan train --resume latest`: the snapshot is read once and handed on to the training."""
    from click.testing import CliRunner

    import stylegan.loader
    from stylegan.cli.main import main

    train(tiny_opts(tmp_path, kimg=0.02, tick=0.02))
    reads = []
    real = stylegan.loader.read_network_file
    monkeypatch.setattr(stylegan.loader, "read_network_file", lambda p: reads.append(p) or real(p))
    import stylegan.training.runs

    monkeypatch.setattr(stylegan.training.runs, "read_network_file", stylegan.loader.read_network_file)
    r = CliRunner().invoke(main, ["train", "--resume", "latest", "--outdir", str(tmp_path / "runs"), "--kimg",
                                  "0.04", "--workers", "0"])
    assert r.exit_code == 0, r.output
    assert len(reads) == 1


def test_resume_refuses_architecture_flags_that_contradict_the_snapshot(tmp_path):
    """`--resume latest --cfg progan --cbase 64` used to keep training the snapshot's StyleGAN2 silently: an
    architecture flag that disagrees with the snapshot's networks is an error naming both values."""
    from click.testing import CliRunner

    from stylegan.cli.main import main

    train(tiny_opts(tmp_path, kimg=0.02, tick=0.02))
    runs = str(tmp_path / "runs")
    for flags, says in ((["--cfg", "progan"], "--cfg progan: the networks of network-snapshot-000000.020.safetensors "
                                              "have cfg stylegan2"),
                        (["--cbase", "64"], "--cbase 64: the networks of network-snapshot-000000.020.safetensors have "
                                            "cbase 256"),
                        (["--cmax", "16"], "have cmax 32")):
        r = CliRunner().invoke(main, ["train", "--resume", "latest", "--outdir", runs, *flags])
        assert r.exit_code == 2 and says in r.output, r.output
    # Flags that agree with the snapshot (an alias of its configuration included) are accepted.
    from stylegan.training.runs import read_resume

    opts, _ = read_resume("latest", runs, {"cfg": "stylegan2-f", "cbase": 256})
    assert opts.cbase == 256


def test_resume_says_which_derived_settings_change(tmp_path, capsys):
    """γ and the EMA half-life follow the batch: a resume with another batch says so (γ from 0.0128 to 0.0064
    here), and says how to keep the snapshot's."""
    from stylegan.training.runs import read_resume

    train(tiny_opts(tmp_path, kimg=0.02, tick=0.02))
    capsys.readouterr()
    run = train(*read_resume("latest", str(tmp_path / "runs"), {"kimg": 0.04, "batch": 8}))
    out = capsys.readouterr().out
    assert "changed from the snapshot: gamma 0.0064 (the snapshot trained with 0.0128; the batch is 8, was 4; " \
           "give --gamma 0.0128 to keep it)" in out
    assert "EMA half-life 2.5 kimg (the snapshot trained with 1.25" in out
    assert "changed from the snapshot: gamma" in (run / "log.txt").read_text()
    train(*read_resume("latest", str(tmp_path / "runs"), {"kimg": 0.06}))
    assert "changed from the snapshot" not in capsys.readouterr().out  # same batch: nothing changed

"""benchmarks/gpu_check.py (`make gpu-check`) on a CPU: a wrong checkout refused before anything runs, the time
budget's guard, the recording of the authors' CUDA builds, and the CPU smoke test of the side-by-side part
("peer") against real checkouts of the authors' stylegan2-ada-pytorch and stylegan3 where this machine has them
(/tmp/sg2ada, /tmp/sg3, or STYLEGAN2_ADA_CHECKOUT / STYLEGAN3_CHECKOUT; skipped otherwise)."""
import importlib.util
import json
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_stylegan3  # noqa: E402
import common  # noqa: E402
import gpu_check  # noqa: E402

SG2 = Path(os.environ.get("STYLEGAN2_ADA_CHECKOUT", "/tmp/sg2ada"))
SG3 = Path(os.environ.get("STYLEGAN3_CHECKOUT", "/tmp/sg3"))
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def run(*argv, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


@pytest.mark.parametrize("flag, what", [("--peer", "stylegan2-ada-pytorch"), ("--peer3", "stylegan3")])
@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_wrong_checkout_refused_before_anything_runs(tmp_path, flag, what, folder):
    path = tmp_path / "empty" if folder == "empty" else tmp_path / "nope"
    if folder == "empty":
        path.mkdir()
    out_json = tmp_path / "out.json"
    r = run("--device", "cpu", flag, str(path), "--json", str(out_json))
    assert r.returncode == 2
    assert r.stdout == ""  # no part started
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {flag} {path}: not a checkout of the authors' {what} (")
    assert ("no such folder" if folder == "missing" else "missing training/networks") in lines[0]
    assert not out_json.exists()


def test_parts_that_do_not_fit_the_budget_are_skipped_not_run(tmp_path):
    out_json = tmp_path / "out.json"
    r = run("--device", "cpu", "--budget", "0", "--json", str(out_json), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out_json.read_text())
    for name in ("train", "nccl", "compile"):
        assert data[name]["skipped"] == "time" and data[name]["ok"], data[name]
    assert data["skipped"] == ["train", "nccl", "compile"] and data["failed"] == []
    assert "skipped for time: train, nccl, compile" in r.stdout


def _module(init):
    return types.SimpleNamespace(_init=init)


def test_build_ops_records_success_failure_and_sends_failures_to_the_reference_path():
    def warns():  # stylegan2-ada's way: a warning with the details, then False
        warnings.warn("Failed to build CUDA kernels for upfirdn2d. Falling back to slow reference implementation. "
                      "Details:\n\nnvcc fatal")
        return False

    def raises():  # stylegan3's way
        raise RuntimeError("Error building extension 'filtered_lrelu_plugin'")

    def never():
        raise AssertionError("a build that failed in the background is not tried again")
    ops = dict(ok=_module(lambda: True), warns=_module(warns), raises=_module(raises), before=_module(never))
    rec = gpu_check.build_ops(ops, {"before": dict(built=False, error="nvcc: not found")})
    assert rec["ok"]["built"] is True and rec["ok"]["path"] == "CUDA" and rec["ok"]["error"] is None
    assert rec["warns"]["built"] is False and "nvcc fatal" in rec["warns"]["error"]
    assert rec["raises"]["built"] is False and rec["raises"]["error"].startswith("RuntimeError: Error building")
    assert rec["before"] == dict(built=False, seconds=0.0, error="nvcc: not found",
                                 path="reference (the build failed in the background)")
    for name in ("warns", "raises", "before"):
        assert rec[name]["path"].startswith("reference") and ops[name]._init() is False
    assert all(r["seconds"] >= 0 for r in rec.values())


def _is_stylegan3_checkout(root: Path) -> bool:
    return all((root / e).is_dir() if e.endswith("/") else (root / e).is_file() for e in bench_stylegan3.PEER_LAYOUT)


needs_checkouts = pytest.mark.skipif(
    common.peer_checkout_problem(SG2) is not None or not _is_stylegan3_checkout(SG3),
    reason="no checkouts of the authors' stylegan2-ada-pytorch and stylegan3 on this machine")


@needs_checkouts
def test_cpu_smoke_of_the_side_by_side_part(tmp_path):
    out_json = tmp_path / "out.json"
    r = run("--device", "cpu", "--skip", "train,nccl,compile", "--peer", str(SG2), "--peer3", str(SG3),
            "--json", str(out_json))
    data = json.loads(out_json.read_text())
    peer = data["peer"]
    sg2 = peer["stylegan2-ada"]
    assert sg2.get("error") is None, sg2
    assert sg2["device"] and set(sg2["ops"]) == {"bias_act", "upfirdn2d"}
    assert all(op["path"].startswith("reference") for op in sg2["ops"].values())
    assert [row["authors_precision"] for row in sg2["rows"]] == ["fp32", "fp16 (num_fp16_res 4, conv_clamp 256)"]
    for row in sg2["rows"]:
        assert row["setting"] == "smoke-32" and row["batch"] == 4 and row["reps"] == 1 and row["precision"] == "fp32"
        assert row["ours_s_per_kimg"] > 0 and row["authors_s_per_kimg"] > 0
        assert row["ratio"] == pytest.approx(row["authors_s_per_kimg"] / row["ours_s_per_kimg"])
        for ph in ("main", "r1", "pl"):
            assert row[f"{ph}_ratio"] == pytest.approx(row[f"{ph}_authors_s_per_img"] / row[f"{ph}_s_per_img"])
    sg3 = peer["stylegan3"]
    if importlib.util.find_spec("scipy") is None:  # their stylegan3 imports it; ours does not need it
        assert "No module named 'scipy'" in sg3["error"]
        assert data["peer_missing_packages"] == {"stylegan3": ["scipy"]} and "pip install scipy" in r.stderr
        assert peer["failed"] == ["stylegan3"] and data["failed"] == ["peer"] and r.returncode == 1
        return
    assert r.returncode == 0, r.stdout + r.stderr
    assert sg3.get("error") is None and set(sg3["ops"]) == {"bias_act", "upfirdn2d", "filtered_lrelu"}
    assert sg3["config"]["arch"] == "stylegan3-t" and sg3["config"]["resolution"] == 32
    assert sg3["max_rel_diff_vs_authors"] < 1e-4
    for key in ("forward", "train"):
        m = sg3[key]
        assert m["batch"] == 4 and m["reps"] == 1 and m["ratio"] > 0 and m["ratio_vs_authors_fp16"] > 0


@needs_checkouts
def test_failed_background_build_sends_the_timing_process_to_their_reference_path(tmp_path, monkeypatch):
    """The GPU run's flow on a CPU: the background build fails here (no CUDA), its record says so, and the
    timing process then times their reference implementation without building again, saying so."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "extensions"))  # what a build leaves, kept here
    monkeypatch.setattr(gpu_check, "DEADLINE", gpu_check.Deadline(300))
    folder = tmp_path / "work"
    folder.mkdir()
    builds = gpu_check.BackgroundBuilds({"stylegan2-ada": SG2}, folder)
    try:
        info = builds.wait("stylegan2-ada")
    finally:
        builds.stop()
    assert info["returncode"] == 0, info
    record = json.loads(builds.record("stylegan2-ada").read_text())
    assert {name: op["built"] for name, op in record["ops"].items()} == {"bias_act": False, "upfirdn2d": False}
    assert all(op["error"] for op in record["ops"].values())
    out = tmp_path / "time.json"
    record = builds.record("stylegan2-ada")
    r = subprocess.run([sys.executable, str(SCRIPT), "--child", "time:stylegan2-ada", "--child-root", str(SG2),
                        "--child-out", str(out), "--device", "cpu", "--child-build", str(record)],
                       capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    assert {op["path"] for op in data["ops"].values()} == {"reference (the build failed in the background)"}
    assert len(data["rows"]) == 2 and all(row["ratio"] > 0 for row in data["rows"])


def test_out_of_gpu_memory_halves_the_batch_and_says_so():
    import torch

    def measure(b):
        if b > 8:
            raise torch.cuda.OutOfMemoryError(f"batch {b}")
        return [b * 1.0]
    result = {}
    assert gpu_check.halving_on_oom(measure, 32, result, "train") == (8, [8.0])
    assert result["out_of_memory"] == ["train at batch 32", "train at batch 16"]
    with pytest.raises(torch.cuda.OutOfMemoryError):
        gpu_check.halving_on_oom(lambda b: measure(99), 8, {}, "forward")


@needs_checkouts
@pytest.mark.parametrize("side, root", [("stylegan2-ada", SG2), ("stylegan3", SG3)])
def test_peer_process_past_its_deadline_skips_its_steps(tmp_path, side, root):
    out = tmp_path / "time.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--child", f"time:{side}", "--child-root", str(root),
                        "--child-out", str(out), "--device", "cpu", "--budget", "-1"],
                       capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    if side == "stylegan2-ada":
        assert [row["skipped"] for row in data["rows"]] == ["time", "time"]
    elif "error" not in data:  # their stylegan3 imports scipy; without it there is nothing to skip
        assert data["forward"] == {"skipped": "time"} and data["train"] == {"skipped": "time"}


def test_loaded_extension_is_importable_by_name_as_the_authors_code_expects(monkeypatch):
    """Their get_plugin(): ``torch.utils.cpp_extension.load(name=...)``, then ``importlib.import_module(name)``,
    which fails after a successful build where the extension module does not register itself (pybind11 3)."""
    import importlib

    import torch.utils.cpp_extension as ext

    built = types.ModuleType("probe_plugin_for_test")
    monkeypatch.setattr(ext, "load", lambda name, **kwargs: built)
    monkeypatch.delitem(sys.modules, "probe_plugin_for_test", raising=False)
    with pytest.raises(ModuleNotFoundError):
        ext.load(name="probe_plugin_for_test", sources=[])
        importlib.import_module("probe_plugin_for_test")
    gpu_check.register_loaded_extensions()
    gpu_check.register_loaded_extensions()  # once only: not a wrapper around the wrapper
    assert ext.load.registers_module and ext.load(name="probe_plugin_for_test", sources=[]) is built
    assert importlib.import_module("probe_plugin_for_test") is built
    del sys.modules["probe_plugin_for_test"]


def test_stylegan2_row_out_of_gpu_memory_is_retried_at_half_the_batch(monkeypatch):
    """Ours running out of memory, then theirs (their code's failure is recorded by the peer as an error, which
    here means only that it ran out of memory): each time the row runs again at half the batch."""
    import torch

    import bench_training

    peer = types.SimpleNamespace(error=None)
    calls = []

    def bench(setting, reps, device, peak, precision, batch, peer_, peer_mixed, ceiling):
        calls.append((precision, batch))
        if batch == 16:
            raise torch.cuda.OutOfMemoryError("ours")
        if batch == 8:
            peer.error = "setting smoke-32: OutOfMemoryError: theirs"
            return dict(train_s_per_kimg=1.0, main_s_per_img=1.0)
        return dict(train_s_per_kimg=1.0, train_vs_authors=2.0, authors_train_images_per_s=0.5,
                    authors_precision="fp32", **{f"{ph}_vs_authors": 2.0 for ph in ("main", "r1", "pl")})
    monkeypatch.setattr(bench_training, "bench", bench)
    monkeypatch.setitem(gpu_check.SG2_SIZES, "cpu", ("smoke-32", 16, 1))
    monkeypatch.setattr(gpu_check, "DEADLINE", gpu_check.Deadline(3600))  # not the budget left since import
    result = {}
    gpu_check.time_stylegan2(peer, "cpu", result, lambda: None)
    assert calls == [("fp32", 16), ("fp32", 8), ("fp32", 4), ("fp32", 16), ("fp32", 8), ("fp32", 4)]
    assert [(row["batch"], row["ratio"]) for row in result["rows"]] == [(4, 2.0), (4, 2.0)]
    assert len(result["out_of_memory"]) == 4 and peer.error is None and "error" not in result


def test_build_that_would_leave_no_time_is_stopped_and_recorded_as_failed(tmp_path, monkeypatch):
    """A background build still running when only the timing's own time is left: stopped (SIGTERM, which the
    build processes turn into an exit that lets torch remove its lock file), and recorded as not built, so that
    the timing process goes to their reference implementations instead of building again."""
    monkeypatch.setattr(gpu_check, "DEADLINE", gpu_check.Deadline(gpu_check.PEER_NEEDS["stylegan3"] + 2))
    builds = gpu_check.BackgroundBuilds({}, tmp_path)
    builds.procs["stylegan3"] = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time\n"
         "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\ntime.sleep(120)"])
    info = builds.wait("stylegan3")
    assert info["stopped"] == "time" and builds.procs["stylegan3"].returncode == 143
    record = json.loads(builds.record("stylegan3").read_text())
    assert set(record["ops"]) == set(gpu_check.PEER_OPS["stylegan3"])
    assert all(op["built"] is False and "stopped" in op["error"] for op in record["ops"].values())


def test_build_tools_are_looked_up_and_recorded(monkeypatch):
    monkeypatch.setenv("PATH", os.environ["PATH"])  # both restored afterwards
    monkeypatch.delenv("CPLUS_INCLUDE_PATH", raising=False)
    tools = gpu_check.build_tools()
    assert {"ninja", "nvcc", "cusparse.h"} <= set(tools)
    assert all(v is None or Path(v.split(os.pathsep)[0]).exists() for v in tools.values())

"""The benchmarks compare with the authors' stylegan2-ada-pytorch only when both ran in the same run: `--peer`
refuses a folder that is not a checkout before measuring anything, and without a peer neither the printed
tables nor the JSON hold a ratio. A stand-in checkout written here (tiny modules with the authors' class and
method names) exercises the timed peer path without their code."""
import json
import statistics
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_generator  # noqa: E402
import bench_training  # noqa: E402
import common  # noqa: E402

SCRIPTS = {"training": bench_training, "generator": bench_generator}
RATIO = re.compile(r"\d\.\d+x\b")  # the printed ratio column ("1.23x")


@pytest.fixture
def isolated_imports(monkeypatch):
    """Undoes what loading a peer does to the interpreter: its packages in sys.modules, its path in sys.path."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in list(sys.modules):
        if name.split(".")[0] in common.PEER_PACKAGES:
            del sys.modules[name]
    # the stand-ins of absent packages (common.stand_in_for_absent_modules): pytest's own monkeypatch calls into
    # a pkg_resources it finds in sys.modules
    for name in ("requests", "pkg_resources"):
        if name not in before and name in sys.modules and getattr(sys.modules[name], "__file__", None) is None:
            del sys.modules[name]


@pytest.fixture
def no_peak(monkeypatch):
    """The measured peak (seconds of large matrix products) replaced by a fixed figure, which also records
    whether a refused --peer reached it; the thread set-up without the interop pool (fixed once per process)."""
    calls = []

    def fake(*args, **kwargs):
        calls.append(args)
        return 1e11
    for module in SCRIPTS.values():
        monkeypatch.setattr(module, "measured_peak_flops", fake)
        monkeypatch.setattr(module, "setup_threads", torch.set_num_threads)
    return calls


def run_main(monkeypatch, module, *argv):
    monkeypatch.setattr(sys, "argv", [module.__file__, *argv])
    module.main()


def run_tiny(monkeypatch, module, out_json, *argv):
    """The script at its smoke-test setting: one repetition, one thread (the machine may be shared)."""
    run_main(monkeypatch, module, "--settings", "tiny", "--reps", "1", "--threads", "1", "--json", str(out_json),
             *argv)


def layout(root: Path, entries) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for e in entries:
        if e.endswith("/"):
            (root / e).mkdir(parents=True, exist_ok=True)
        else:
            (root / e).parent.mkdir(parents=True, exist_ok=True)
            (root / e).write_text("")
    return root


def test_refusal_exit_status_and_one_line(tmp_path):
    """The script as `make bench PEER=...` runs it: an empty folder ends it with exit status 2 and one line."""
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_training.py"), "--peer", str(tmp_path),
                        "--json", ""], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "not a checkout of the authors' stylegan2-ada-pytorch" in lines[0]
    assert "missing training/networks.py, training/loss.py, torch_utils/ops/, dnnlib/" in lines[0]


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("present", [(), ("training/networks.py", "dnnlib/"),
                                     ("training/networks.py", "training/loss.py", "dnnlib/", "torch_utils/")])
def test_partial_checkout_refused_before_measuring(tmp_path, monkeypatch, capsys, no_peak, script, present):
    root = layout(tmp_path / "ada", present)
    with pytest.raises(SystemExit) as e:
        run_main(monkeypatch, SCRIPTS[script], "--peer", str(root), "--json", "")
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and not no_peak  # nothing measured, nothing printed on stdout
    missing = [x for x in common.PEER_LAYOUT if x not in present]
    assert err.strip().splitlines() == [
        f"error: --peer {root}: not a checkout of the authors' stylegan2-ada-pytorch (missing {', '.join(missing)})"]


def test_missing_folder_and_complete_layout(tmp_path):
    assert common.peer_checkout_problem(tmp_path / "nope") == "no such folder"
    (tmp_path / "file").write_text("")
    assert common.peer_checkout_problem(tmp_path / "file") == "not a folder"
    root = layout(tmp_path / "ada", common.PEER_LAYOUT)
    assert common.peer_checkout_problem(root) is None
    assert common.check_peer_path(str(root)) == root.resolve()
    assert common.check_peer_path(None) is None


def _no_ratio(out: str, data: dict):
    assert "authors" not in out and "2x needs" not in out and not RATIO.search(out), out
    for row in data["rows"]:
        assert not [k for k in row if "authors" in k or "2x" in k], row
    assert "peer" not in data


def _run_without_peer(module, tmp_path, monkeypatch, capsys) -> tuple[str, dict]:
    """The printed output and the JSON of ``module`` run at the tiny setting without a peer; neither has a ratio."""
    out_json = tmp_path / "out.json"
    run_tiny(monkeypatch, module, out_json)
    out = capsys.readouterr().out
    data = json.loads(out_json.read_text())
    _no_ratio(out, data)
    return out, data


def test_training_without_peer_prints_no_ratio(tmp_path, monkeypatch, capsys, no_peak):
    out, data = _run_without_peer(bench_training, tmp_path, monkeypatch, capsys)
    row = data["rows"][0]  # our figures stay
    for ph in ("main", "r1", "pl"):
        assert row[f"{ph}_s_per_img"] > 0 and row[f"{ph}_gflop_per_img"] > 0 and row[f"{ph}_peak_share"] > 0
    assert row["peak_rss_gb"] > 0 and "rss_growth_gb" in row
    assert "s/img" in out and "GFLOP/img" in out and "%peak" in out


def test_generator_without_peer_prints_no_ratio(tmp_path, monkeypatch, capsys, no_peak):
    out, data = _run_without_peer(bench_generator, tmp_path, monkeypatch, capsys)
    assert len(data["rows"]) == 3 and all(r["images_per_s"] > 0 and r["gflop_per_image"] > 0 for r in data["rows"])


def test_peer_that_does_not_import_gives_our_figures_only(tmp_path, monkeypatch, capsys, no_peak,
                                                          isolated_imports):
    root = layout(tmp_path / "ada", common.PEER_LAYOUT)
    (root / "training" / "networks.py").write_text("import a_package_this_machine_lacks\n")
    out_json = tmp_path / "g.json"
    run_tiny(monkeypatch, bench_generator, out_json, "--peer", str(root))
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        f"error: --peer {root.resolve()}: the authors' code does not run here as it is (importing its modules: "
        "ModuleNotFoundError: No module named 'a_package_this_machine_lacks' (a package their code imports: "
        "install it into this environment)); printing our figures only"]
    data = json.loads(out_json.read_text())
    assert "x authors" not in out and not RATIO.search(out)
    assert data["peer_error"].startswith("importing its modules") and len(data["rows"]) == 3
    assert not [k for r in data["rows"] for k in r if "authors" in k]


# A stand-in for the authors' modules: their constructor keywords, attributes and phase names, tiny networks.
STAND_IN_NETWORKS = """
import torch

class _Net(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc = torch.nn.Linear(n_in, n_out)

class Generator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs, synthesis_kwargs):
        super().__init__()
        assert synthesis_kwargs["num_fp16_res"] == 0 and synthesis_kwargs["conv_clamp"] is None
        assert mapping_kwargs["num_layers"] >= 1
        self.z_dim, self.c_dim, self.shape = z_dim, c_dim, (img_channels, img_resolution, img_resolution)
        self.mapping = _Net(z_dim, w_dim)
        self.synthesis = _Net(w_dim, img_channels * img_resolution ** 2)

    def forward(self, z, c, noise_mode="random"):
        return self.synthesis.fc(self.mapping.fc(z)).view(-1, *self.shape)

class Discriminator(torch.nn.Module):
    def __init__(self, c_dim, img_resolution, img_channels, channel_base, channel_max, architecture,
                 num_fp16_res, conv_clamp, epilogue_kwargs):
        super().__init__()
        assert num_fp16_res == 0 and conv_clamp is None and epilogue_kwargs["mbstd_group_size"] == 4
        self.fc = torch.nn.Linear(img_channels * img_resolution ** 2, 1)

    def forward(self, img, c):
        return self.fc(img.flatten(1))
"""
STAND_IN_LOSS = """
import torch

PHASES = []

class StyleGAN2Loss:
    def __init__(self, device, G_mapping, G_synthesis, D, style_mixing_prob, r1_gamma, pl_weight):
        self.G_mapping, self.G_synthesis, self.D = G_mapping, G_synthesis, D

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        PHASES.append((phase, gain))
        img = self.G_synthesis.fc(self.G_mapping.fc(gen_z)).view(real_img.shape)
        src = real_img if phase == "Dreg" else img
        self.D.fc(src.flatten(1)).mean().mul(gain).backward()
"""


def test_stand_in_peer_is_timed_alongside_ours(tmp_path, monkeypatch, capsys, no_peak, isolated_imports):
    root = layout(tmp_path / "ada", common.PEER_LAYOUT)
    (root / "training" / "networks.py").write_text(STAND_IN_NETWORKS)
    (root / "training" / "loss.py").write_text(STAND_IN_LOSS)
    out_json = tmp_path / "t.json"
    run_tiny(monkeypatch, bench_training, out_json, "--peer", str(root))
    out, err = capsys.readouterr()
    assert err == ""
    assert "x authors" in out and len(RATIO.findall(out)) >= 3
    data = json.loads(out_json.read_text())
    row = data["rows"][0]
    assert data["peer"] == str(root.resolve()) and data["peer_error"] is None
    for ph in ("main", "r1", "pl"):
        assert row[f"{ph}_vs_authors"] == pytest.approx(row[f"{ph}_authors_s_per_img"] / row[f"{ph}_s_per_img"])
    # their phases, as their training loop runs them: main = Gmain + Dmain, R1 = Dreg (gain 16), PL = Greg (4)
    phases = set(sys.modules["training.loss"].PHASES)
    assert phases == {("Gmain", 1), ("Dmain", 1), ("Dreg", 16), ("Greg", 4)}
    assert Path(sys.modules["training.networks"].__file__).resolve().is_relative_to(root.resolve())


def test_main_phase_alone_gives_one_ratio_per_pair(tmp_path, monkeypatch, capsys, no_peak, isolated_imports):
    """--phases main --no-ceiling (config F's many pairs): only the main phase, timed beside theirs; every pair
    of calls gives a ratio, and the median, least and greatest of them are printed and kept."""
    root = layout(tmp_path / "ada", common.PEER_LAYOUT)
    (root / "training" / "networks.py").write_text(STAND_IN_NETWORKS)
    (root / "training" / "loss.py").write_text(STAND_IN_LOSS)
    out_json = tmp_path / "t.json"
    run_tiny(monkeypatch, bench_training, out_json, "--peer", str(root), "--phases", "main", "--no-ceiling",
             "--reps", "3")
    out = capsys.readouterr().out
    row = json.loads(out_json.read_text())["rows"][0]
    assert "main_s_per_img" in row and "r1_s_per_img" not in row and "main_gflops" not in row
    pairs = row["main_vs_authors_pairs"]
    assert len(pairs) == 3 and all(p > 0 for p in pairs)
    assert row["main_vs_authors_pair_range"] == [statistics.median(pairs), min(pairs), max(pairs)]
    assert "pairs:" in out and "over 3" in out and "training" not in out


def test_stand_in_generator_is_timed_alongside_each_row(tmp_path, monkeypatch, capsys, no_peak, isolated_imports):
    root = layout(tmp_path / "ada", common.PEER_LAYOUT)
    (root / "training" / "networks.py").write_text(STAND_IN_NETWORKS)
    out_json = tmp_path / "g.json"
    run_tiny(monkeypatch, bench_generator, out_json, "--peer", str(root))
    out, err = capsys.readouterr()
    assert err == "" and len(RATIO.findall(out)) == 3
    for r in json.loads(out_json.read_text())["rows"]:
        assert r["authors_precision"] == "fp32"
        assert r["vs_authors"] == pytest.approx(r["authors_seconds"] / r["seconds"])


def test_peer_that_fails_at_run_time_gives_our_figures_only(tmp_path, monkeypatch, capsys, no_peak,
                                                            isolated_imports):
    root = layout(tmp_path / "ada", common.PEER_LAYOUT)
    (root / "training" / "networks.py").write_text(
        STAND_IN_NETWORKS.replace('        return self.synthesis.fc(', '        raise RuntimeError("not on this CPU")\n'
                                  '        return self.synthesis.fc('))
    out_json = tmp_path / "g.json"
    run_tiny(monkeypatch, bench_generator, out_json, "--peer", str(root))
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        f"error: --peer {root.resolve()}: the authors' code does not run here as it is (setting tiny: RuntimeError: "
        "not on this CPU); printing our figures only"]
    assert "authors" not in out and not RATIO.search(out)
    assert json.loads(out_json.read_text())["peer_error"] == "setting tiny: RuntimeError: not on this CPU"

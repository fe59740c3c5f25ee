"""The robustness suite of benchmarks/robustness.py at a small size: every crafted file and 20 random mutations of
each format, each loaded in a forked child. No load may raise anything but our errors, run code from the file, or
use much memory; every file that claims more than it holds is refused."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import robustness  # noqa: E402

# The largest peak RSS increase a load may cause, on either measure: over the parent's RSS at fork, and over the
# child's own RSS just after fork (higher by the parent's file-backed pages, about 90 MB, which the child counts
# only once it touches them again). Measured over the child's start: about 20 MB for the valid tiny files, about
# 65 MB for pickles stopped by the unpickler's budget, and 140 MB at worst, for a 6.5 MB safetensors header that
# lists 100,000 tensors (about 1.2 KB each, all read before the digest can be checked). Before the loaders refused
# shared storages, bounded the stand-ins' copies and estimated w_avg in steps, crafted files of 40 KB to 4.4 MB
# reached 270 MB to 4 GB.
MAX_PEAK_MB = 200


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("robustness") / "robustness.json"
    status = robustness.main(["--per-format", "20", "--seed", "1", "--json", str(out), "--no-progress",
                              "--max-peak-mb", str(MAX_PEAK_MB)])
    data = json.loads(out.read_text())
    data["status"] = status
    return data


def _results(report, **match):
    return [r for r in report["results"] if all(r[k] == v for k, v in match.items())]


def test_every_kind_of_file_was_tried(report):
    counts = {cat: s["files"] for cat, s in report["summary"].items()}
    assert counts["valid"] == 5 and all(counts[f"mutated {f}"] == 20 for f in robustness.FORMATS)
    for cat, least in (("truncated", 80), ("safetensors-metadata", 25), ("safetensors-huge", 10),
                       ("safetensors-header", 10), ("torch-huge", 15), ("amplify", 10), ("code", 70)):
        assert counts[cat] >= least, cat
    assert all(r["outcome"] == "loaded" for r in _results(report, category="valid"))


def test_no_tracebacks_no_crashes(report):
    bad = [f"{r['name']}: {r['outcome']} {r['error']}\n{r['traceback']}" for r in report["results"]
           if r["outcome"] in ("other_exception", "killed") or r["memory_cap"]]
    assert not bad, "\n".join(bad)


def test_no_code_is_executed(report):
    code = _results(report, category="code")
    assert not [r["name"] for r in report["results"] if r["code_executed"]]
    assert all(r["outcome"] == "our_error" for r in code if r["expect"] == "refused")
    # The authors' module source is kept as text: that file loads, and its os.system never runs.
    assert [r["outcome"] for r in code if r["expect"] == "loaded"] == ["loaded"]


def test_files_claiming_more_than_they_hold_are_refused(report):
    for cat in ("safetensors-huge", "safetensors-header", "torch-huge", "truncated", "safetensors-metadata"):
        rs = _results(report, category=cat)
        assert rs and all(r["outcome"] == "our_error" for r in rs), [r["name"] for r in rs
                                                                     if r["outcome"] != "our_error"]
    amplify = _results(report, category="amplify")
    assert all(r["outcome"] == "our_error" for r in amplify if r["expect"] == "refused")
    assert not [r["name"] for r in report["results"] if r["expect"] == "refused" and r["outcome"] != "our_error"]


def test_no_file_makes_the_loader_allocate_much(report):
    worst = max(report["results"], key=lambda r: max(r["peak_increase"], r["peak_over_start"]))
    peak = max(worst["peak_increase"], worst["peak_over_start"]) / 2 ** 20
    assert peak < MAX_PEAK_MB, f"{worst['name']} ({worst['size']} bytes): {peak:.0f} MB"


def test_exit_status(report):
    assert report["status"] == 0 and report["failures"] == []


# ---------------------------------------------------------------------------------------------------------
# The bugs the suite found, each checked directly (in this process, at small sizes).

@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return robustness.valid_files(tmp_path_factory.mktemp("valid"))


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("meta", [
    {"format_version": "9" * 5000},  # int() refuses more than 4300 digits
    {"format_version": "\u00b2"},  # a digit to str.isdigit, not to int()
    {"config": '{"G": {"z_dim": ' + "9" * 5000 + "}}"},  # json.loads raises a plain ValueError for these
    {"networks": "[" + "9" * 5000 + "]"},
    {"extra": '{"a": ' + "9" * 5000 + "}"},
])
def test_metadata_numbers_python_cannot_convert_are_our_error(valid, tmp_path, meta):
    from safetensors.torch import load, save

    import stylegan
    from stylegan.checkpoint import CheckpointError, tensors_digest

    tensors = load(valid["ours.safetensors"])  # a valid file's tensors under crafted metadata
    base = {"format": "stylegan-checkpoint", "format_version": "1", "networks": '["G", "G_ema", "D"]', "extra": "{}",
            "config": robustness.tiny_config().to_json(), "sha256": tensors_digest(tensors)}
    path = _write(tmp_path, "bad.safetensors", save(tensors, metadata={**base, **meta}))
    with pytest.raises(CheckpointError, match="invalid"):
        stylegan.load(path)


@pytest.mark.parametrize("name,make", [
    ("same.pt", lambda: robustness._ros_shared_mapping(4, 64, "same")),
    ("views.pt", lambda: robustness._ros_shared_mapping(4, 64, "views")),
    ("same.pkl", lambda: robustness._nvlabs_shared_mapping(4, 64, "same")),
    ("same-tf.pkl", lambda: robustness._tf_shared_mapping(4, 64, "same")),
])
def test_weights_sharing_one_stored_array_are_refused(tmp_path, name, make):
    """One tensor (or views of one storage, or one numpy array) for several layers: a small file that would build
    a network many times its size. Refused before anything is converted or built."""
    from stylegan.interop import InteropError, read_foreign

    with pytest.raises(InteropError, match="share their memory"):
        read_foreign(_write(tmp_path, name, make()))


@pytest.mark.parametrize("kind", ["latin1", "numpy", "blob"])
def test_stand_ins_cannot_copy_one_input_without_bound(kind):
    """A pickle handing one memoized 1 MB input to a stand-in 100 times would build 100 MB from 1 MB; the
    unpickler's budget (4 x the pickle's size + 16 MB) refuses it."""
    from stylegan.interop import InteropError
    from stylegan.interop.torch_files import load_pickle_bytes

    data = robustness._repeated_calls(kind, n=100)
    assert len(data) < 1.2 * 2 ** 20
    with pytest.raises(InteropError, match="builds more than"):
        load_pickle_bytes(data, "x")
    load_pickle_bytes(robustness._repeated_calls(kind, n=3), "x")  # within the budget: read as before


def test_w_avg_is_estimated_in_steps_with_the_same_samples(monkeypatch):
    """The rosinality importer's truncation average, computed in bounded steps, matches the mean over all 4096
    samples at once (a wide z no longer makes it hold 4096 x z_dim)."""
    import torch

    import stylegan.interop.rosinality as ros
    from stylegan.networks.mapping import MappingNetwork

    g = robustness.tiny_config(z_dim=48, w_dim=8, map_depth=2).G
    torch.manual_seed(0)
    state = {f"mapping.layers.{i}.{p}": torch.randn((8, 48 if i == 0 else 8) if p == "weight" else (8,))
             for i in range(2) for p in ("weight", "bias")}
    m = MappingNetwork(48, 0, 8, num_ws=None, num_layers=2, lr_mul=g.map_lr_mul, w_avg_beta=None)
    m.load_state_dict({k[len("mapping."):]: v for k, v in state.items()})
    with torch.no_grad():
        at_once = m(torch.randn(ros.W_AVG_SAMPLES, 48, generator=torch.Generator().manual_seed(0))).mean(dim=0)
    monkeypatch.setattr(ros, "W_AVG_CHUNK", 48 * 100)  # steps of 96 rows: 43 steps
    assert torch.allclose(ros._estimate_w_avg(g, state), at_once, rtol=1e-5, atol=1e-6)


def test_a_wide_z_file_loads_in_little_memory(tmp_path):
    import stylegan

    G = stylegan.load(_write(tmp_path, "wide.pt", robustness._ros_wide_z()))
    assert (G.z_dim, G.w_dim) == (8192, 1)

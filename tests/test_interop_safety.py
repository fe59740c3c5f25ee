"""Foreign files never execute code: malicious pickles are refused by name with no side effect, truncated and
mutated files fail with our documented errors (InteropError / CheckpointError), and Python's unpickler and
torch.load are never used."""
import io
import os
import pickle
import pickletools
import subprocess

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stylegan
from conftest import tiny_config
from stylegan.checkpoint import CheckpointError, save_checkpoint
from stylegan.interop import InteropError, read_foreign
from stylegan.interop.torch_files import load_pickle_bytes
from stylegan.networks import build_networks
from test_interop_support import nvlabs_kwargs, nvlabs_pickle_bytes, ours_to_nvlabs, tf_pickle_bytes


class Call:
    """Pickles as a call of ``fn(*args)``: what an attacker writes."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "pwned"
    yield m
    assert not m.exists(), "a side effect of the pickle happened"


def attacks(marker):
    cmd = f"touch {marker}"
    return {
        "posix.system": Call(os.system, cmd),
        "builtins.eval": Call(eval, f"open({str(marker)!r}, 'w')"),
        "builtins.exec": Call(exec, f"open({str(marker)!r}, 'w')"),
        "subprocess.call": Call(subprocess.call, ["touch", str(marker)]),
        "builtins.getattr": Call(getattr, Call(__import__, "os"), "system"),
    }


@pytest.mark.parametrize("name", ["posix.system", "builtins.eval", "builtins.exec", "subprocess.call",
                                  "builtins.getattr"])
@pytest.mark.parametrize("suffix", [".pkl", ".pt"])
def test_code_in_a_pickle_is_refused_by_name(name, suffix, marker, tmp_path):
    payload = attacks(marker)[name]
    path = tmp_path / f"evil{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps({"G": payload}))
    else:
        torch.save({"g_ema": {"x": payload}}, path)
    pattern = name.replace(".", r"\.").replace("builtins", "(builtins|__builtin__)").replace(
        "subprocess", "(subprocess|commands)")  # protocol 2 writes Python 2 names
    with pytest.raises(InteropError, match=pattern):
        stylegan.load(path)


def test_nested_reduce_inside_tensor_arguments_and_storage_blobs(marker, tmp_path):
    # A call hidden in a tensor's rebuild arguments.
    t = torch.zeros(2)
    data = pickle.dumps(t)
    hidden = pickle.dumps({"G": Call(torch._utils._rebuild_tensor_v2, Call(os.system, f"touch {marker}"), 0, (2,),
                                     (1,), False, None)})
    with pytest.raises(InteropError, match="posix.system"):
        load_pickle_bytes(hidden, "x")
    # A storage blob (torch.storage._load_from_bytes) whose inner torch.save stream calls os.system.
    inner = io.BytesIO()
    torch.save(Call(os.system, f"touch {marker}"), inner, _use_new_zipfile_serialization=False)
    evil = data  # the same tensor pickle with its storage blob replaced
    ops = [(op, arg) for op, arg, _ in pickletools.genops(evil)]
    blob = next(arg for op, arg in ops if op.name == "BINBYTES")
    evil = evil.replace(len(blob).to_bytes(4, "little") + blob, len(inner.getvalue()).to_bytes(4, "little") + inner.getvalue())
    with pytest.raises(InteropError, match="posix.system"):
        load_pickle_bytes(evil, "x")


def test_module_src_with_side_effects_is_never_executed(marker, tmp_path):
    config = tiny_config(8)
    nets = build_networks(config, seed=0)
    gk, dk = nvlabs_kwargs(config)
    src = f"import os\nos.system('touch {marker}')\nopen({str(marker)!r}, 'w').write('x')\n"
    path = tmp_path / "net.pkl"
    path.write_bytes(nvlabs_pickle_bytes(ours_to_nvlabs(nets["G"].state_dict(), "G"),
                                         ours_to_nvlabs(nets["D"].state_dict(), "D"), gk, dk, module_src=src))
    G = stylegan.load(path)  # loads: the source is only text
    assert G.resolution == 8


def test_truncated_files_fail_with_our_error(tmp_path):
    config = tiny_config(8)
    nets = build_networks(config, seed=0)
    gk, dk = nvlabs_kwargs(config)
    data = nvlabs_pickle_bytes(ours_to_nvlabs(nets["G"].state_dict(), "G"), None, gk, None)
    path = tmp_path / "cut.pkl"
    for cut in (0, 1, 10, len(data) // 3, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(InteropError, match=str(path.name)):
            stylegan.load(path)
    with pytest.raises(stylegan.CheckpointError, match="no such network file"):
        stylegan.load(tmp_path / "missing.pt")


def test_python_unpickler_and_torch_load_are_never_used(monkeypatch, tmp_path):
    config = tiny_config(8)
    nets = build_networks(config, seed=0)
    gk, dk = nvlabs_kwargs(config)
    pkl = tmp_path / "net.pkl"
    pkl.write_bytes(nvlabs_pickle_bytes(ours_to_nvlabs(nets["G"].state_dict(), "G"), None, gk, None))
    pt = tmp_path / "net.pt"
    from stylegan.interop.rosinality import to_rosinality
    states = {k: v.state_dict() for k, v in nets.items()}
    torch.save(to_rosinality(config, states)[0], pt)

    def refuse(*a, **k):
        raise AssertionError("a real unpickler was used")

    for mod, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(mod, name, refuse)
    assert stylegan.load(pkl).resolution == 8
    assert stylegan.load(pt).resolution == 8


# ---------------------------------------------------------------------------------------------------------
# Fuzzing: mutated files of every format.

def _tiny_inputs(tmp_path_factory):
    from stylegan.presets import make_config

    config = make_config("stylegan2", resolution=8, cbase=32, cmax=4, map_depth=1, z_dim=4, w_dim=4,
                         num_fp16_res=0, conv_clamp=None)
    nets = build_networks(config, seed=0)
    gk, dk = nvlabs_kwargs(config)
    out = {"nvlabs.pkl": nvlabs_pickle_bytes(ours_to_nvlabs(nets["G"].state_dict(), "G"),
                                             ours_to_nvlabs(nets["D"].state_dict(), "D"), gk, dk)}
    from stylegan.interop.rosinality import to_rosinality

    states = {k: v.state_dict() for k, v in nets.items()}
    ros = to_rosinality(config, states)[0]
    for name, zipped in (("ros-zip.pt", True), ("ros-legacy.pt", False)):
        buf = io.BytesIO()
        torch.save(ros, buf, _use_new_zipfile_serialization=zipped)
        out[name] = buf.getvalue()
    import numpy as np

    rng = np.random.default_rng(0)
    tfv = {"dlatent_avg": rng.standard_normal(4, dtype=np.float32),
           "mapping/Dense0/weight": rng.standard_normal((4, 4), dtype=np.float32),
           "mapping/Dense0/bias": np.zeros(4, np.float32)}
    out["tf.pkl"] = tf_pickle_bytes(tfv, {})
    d = tmp_path_factory.mktemp("fuzz")
    save_checkpoint(d / "ours.safetensors", config, nets)
    out["ours.safetensors"] = (d / "ours.safetensors").read_bytes()
    return out


@pytest.fixture(scope="module")
def fuzz_inputs(tmp_path_factory):
    return _tiny_inputs(tmp_path_factory)


mutation = st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]), st.floats(0, 1),
                     st.integers(0, 255), st.binary(min_size=1, max_size=8))


def mutate(data: bytes, muts) -> bytes:
    b = bytearray(data)
    for kind, where, value, chunk in muts:
        if not b:
            break
        i = min(int(where * len(b)), len(b) - 1)
        if kind == "flip":
            b[i] ^= 1 << (value % 8)
        elif kind == "set":
            b[i] = value
        elif kind == "cut":
            del b[i:]
        elif kind == "insert":
            b[i:i] = chunk
        else:
            del b[i:i + 1 + value % 16]
    return bytes(b)


@settings(max_examples=300, deadline=5000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.sampled_from(["nvlabs.pkl", "ros-zip.pt", "ros-legacy.pt", "tf.pkl", "ours.safetensors"]),
       muts=st.lists(mutation, min_size=1, max_size=4))
def test_fuzzed_files_load_or_fail_with_our_errors(fuzz_inputs, tmp_path, name, muts):
    marker = tmp_path / "pwned"
    data = mutate(fuzz_inputs[name], muts)
    path = tmp_path / name
    path.write_bytes(data)
    try:
        stylegan.load(path)
    except (InteropError, CheckpointError):
        pass
    if not name.endswith(".safetensors"):
        try:
            read_foreign(path)
        except InteropError:
            pass
    assert not marker.exists()


def test_fuzz_inputs_are_valid(fuzz_inputs, tmp_path):
    for name, data in fuzz_inputs.items():
        if name == "tf.pkl":
            continue  # a mapping network only: refused as incomplete, tested for robustness
        path = tmp_path / name
        path.write_bytes(data)
        assert stylegan.load(path).resolution == 8
    path = tmp_path / "tf.pkl"
    path.write_bytes(fuzz_inputs["tf.pkl"])
    with pytest.raises(InteropError, match="no 4x4 synthesis"):
        stylegan.load(path)


def test_views_of_one_storage_are_not_multiplied(tmp_path):
    """A small file can view one storage many times; reading it must not copy the storage once per view."""
    import io

    from stylegan.interop.torch_files import load_torch_bytes

    base = torch.arange(250_000, dtype=torch.float32)  # 1 MB
    buf = io.BytesIO()
    torch.save({f"t{i}": base[i:] for i in range(300)}, buf)  # 300 views: 300 MB if each were copied
    assert len(buf.getvalue()) < 2 * 2 ** 20
    top = load_torch_bytes(buf.getvalue(), "views.pt")
    ptrs = {t.untyped_storage().data_ptr() for t in top.values()}
    assert len(ptrs) == 1 and torch.equal(top["t7"], base[7:])
    (tmp_path / "views.pt").write_bytes(buf.getvalue())
    with pytest.raises(stylegan.CheckpointError):
        stylegan.load(tmp_path / "views.pt")

"""Checkpoints: exact round trip, atomic writes, and clean failures on bad files."""
import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

import stylegan
from conftest import tiny_config
from stylegan.checkpoint import CheckpointError, load_networks, read_checkpoint, save_checkpoint
from stylegan.networks import build_networks


@pytest.fixture
def saved(tmp_path):
    config = tiny_config(16)
    nets = build_networks(config, seed=1)
    for m in nets["G_ema"].synthesis.modules():  # make noise and w_avg matter
        if hasattr(m, "strength"):
            m.strength.data.fill_(0.3)
    nets["G_ema"].mapping.w_avg.normal_()
    path = save_checkpoint(tmp_path / "net.safetensors", config, nets, extra={"kimg": 12})
    return path, config, nets


def test_round_trip_bit_identical(saved):
    path, config, nets = saved
    z = torch.randn(3, 32)
    G = stylegan.load(path)
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    for psi in (1.0, 0.6):
        assert torch.equal(G(z, truncation_psi=psi, noise_mode="const"),
                           nets["G_ema"](z, truncation_psi=psi, noise_mode="const"))
    config2, loaded, ckpt = load_networks(path)
    assert config2 == config and ckpt.extra == {"kimg": 12}
    img = torch.randn(4, 3, 16, 16)
    assert torch.equal(loaded["D"](img), nets["D"](img))
    for name in ("G", "G_ema", "D"):
        for k, v in nets[name].state_dict().items():
            assert torch.equal(loaded[name].state_dict()[k], v), f"{name}.{k}"


def test_truncated_file_fails_cleanly(saved):
    path = saved[0]
    data = path.read_bytes()
    for cut in (len(data) // 2, 20, 3):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupted") as e:
            read_checkpoint(path)
        assert str(path) in str(e.value)


def test_tampered_tensor_bytes_detected(saved):
    path = saved[0]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40  # inside the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        stylegan.load(path)


def test_tampered_header_detected(saved):
    path = saved[0]
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    header = data[8:8 + n]
    i = header.index(b"{")
    header[i] = ord("[")
    path.write_bytes(bytes(data[:8] + header + data[8 + n:]))
    with pytest.raises(CheckpointError, match=str(path.name)):
        read_checkpoint(path)


def test_config_that_does_not_match_the_tensors(saved, tmp_path):
    path, config, _ = saved
    tensors = load_file(str(path))
    ckpt = read_checkpoint(path)
    meta = {"format": "stylegan-checkpoint", "format_version": "1", "networks": json.dumps(ckpt.networks),
            "extra": "{}", "config": tiny_config(32).to_json(),
            "sha256": __import__("stylegan.checkpoint", fromlist=["x"]).tensors_digest(tensors)}
    bad = tmp_path / "mismatch.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match="missing tensors.*blocks.32"):
        load_networks(bad)


def test_foreign_and_missing_files(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(CheckpointError, match="not a stylegan checkpoint"):
        stylegan.load(other)
    with pytest.raises(CheckpointError, match="no such network file"):
        stylegan.load(tmp_path / "nope.safetensors")


def test_loading_never_unpickles(saved, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("pickle used while loading a checkpoint")
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    stylegan.load(saved[0])


def test_failed_write_keeps_old_file_and_leaves_no_temp(saved, monkeypatch):
    path, config, nets = saved
    before = path.read_bytes()
    import safetensors.torch

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, config, nets)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def _crafted(tmp_path, saved, name, config=None, meta_overrides=None):
    """The saved checkpoint's tensors under crafted metadata (the digest kept valid)."""
    from stylegan.checkpoint import tensors_digest

    path, cfg, _ = saved
    tensors = load_file(str(path))
    meta = {"format": "stylegan-checkpoint", "format_version": "1", "networks": '["G", "G_ema", "D"]',
            "extra": "{}", "config": json.dumps(config) if config is not None else cfg.to_json(),
            "sha256": tensors_digest(tensors)}
    meta.update(meta_overrides or {})
    out = tmp_path / f"{name}.safetensors"
    save_file(tensors, str(out), metadata=meta)
    return out


def _with(cfg_dict, net, **fields):
    d = json.loads(json.dumps(cfg_dict))
    d[net].update(fields)
    return d


@pytest.mark.parametrize("net,fields,message", [
    ("G", {"conv_clamp": "256"}, "G.conv_clamp must be float or None"),
    ("G", {"conv_clamp": [256]}, "G.conv_clamp must be float or None"),
    ("G", {"map_lr_mul": "0.01"}, "G.map_lr_mul must be float"),
    ("G", {"w_avg_beta": None}, "G.w_avg_beta must be float"),
    ("D", {"cmap_dim": "x"}, "D.cmap_dim must be int or None"),
    ("G", {"z_dim": 5.5}, "G.z_dim must be int"),
    ("G", {"noise": 1}, "G.noise must be bool"),
    ("G", {"cbase": True}, "G.cbase must be int"),
    ("G", {"map_depth": 3000}, "G.map_depth must be an integer in"),
    ("G", {"z_dim": 50_000_000}, "G.z_dim must be an integer in"),
    ("G", {"c_dim": 10 ** 9}, "c_dim must be an integer in"),
    ("G", {"cmax": 100_000}, "G.cmax must be an integer in"),
])
def test_crafted_config_types_and_sizes_refused(saved, tmp_path, net, fields, message):
    cfg = saved[1].to_dict()
    path = _crafted(tmp_path, saved, "bad", config=_with(cfg, net, **fields))
    with pytest.raises(CheckpointError, match=message):
        stylegan.load(path)


@pytest.mark.parametrize("meta,message", [
    (dict(config="[" * 100_000 + "]" * 100_000), "not valid JSON"),
    (dict(networks="[" * 100_000 + "]" * 100_000), "invalid metadata"),
    (dict(networks='{"G": 1}'), "'networks' must be a list"),
    (dict(networks='["G", "evil"]'), "'networks' must be a list"),
    (dict(extra='[1, 2]'), "'extra' must be a JSON object"),
    (dict(extra='"text"'), "'extra' must be a JSON object"),
    (dict(format_version="1e9"), "format_version"),
])
def test_crafted_metadata_refused(saved, tmp_path, meta, message):
    path = _crafted(tmp_path, saved, "bad", meta_overrides=meta)
    with pytest.raises(CheckpointError, match=message):
        stylegan.load(path)
    with pytest.raises(CheckpointError):
        stylegan.loader.network_info(path)


@pytest.mark.parametrize("extra,message", [
    ({"kimg": "12"}, "extra 'kimg' must be a number, got str"),
    ({"kimg": True}, "extra 'kimg' must be a number, got bool"),
    ({"options": [1, 2]}, "extra 'options' must be a JSON object, got list"),
    ({"kimg": 1, "training": "x"}, "extra 'training' must be a JSON object, got str"),
    ({"gamma": {}}, "extra 'gamma' must be a number"),
])
def test_known_metadata_fields_of_the_wrong_type_are_one_clear_error(saved, tmp_path, extra, message):
    """The fields info and resume read (kimg, options, training...) are checked where the file is read: every
    command answers the same one-line error, `stylegan info` included (it used to raise a traceback)."""
    from click.testing import CliRunner

    from stylegan.cli.main import main

    path = _crafted(tmp_path, saved, "bad", meta_overrides={"extra": json.dumps(extra)})
    with pytest.raises(CheckpointError, match=message):
        stylegan.load(path)
    r = CliRunner().invoke(main, ["info", "--network", str(path)])
    assert r.exit_code == 1 and message in r.output and r.output.count("\n") == 1, r.output
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit)


def test_claimed_network_checked_before_it_is_built(saved, tmp_path, monkeypatch):
    """A valid but much larger claimed configuration (the file's tensors are the tiny network's) is refused
    from its tensor table, with nothing allocated for the claimed network."""
    import stylegan.networks as networks

    cfg = _with(saved[1].to_dict(), "G", cmax=4096, cbase=2 ** 20)
    cfg["D"].update(cmax=4096, cbase=2 ** 20)
    path = _crafted(tmp_path, saved, "big", config=cfg)
    built = []
    real = networks.build_generator

    def spy(config):
        built.append(torch.empty(0).device.type)  # the device networks are being built on
        return real(config)
    monkeypatch.setattr(networks, "build_generator", spy)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        stylegan.load(path)
    assert built == ["meta"]  # built once, on the meta device, then refused


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(where=st.sampled_from(["G", "D", "top", "networks", "extra"]), key=st.sampled_from(
    ["z_dim", "w_dim", "c_dim", "resolution", "cbase", "cmax", "map_depth", "map_lr_mul", "w_avg_beta", "conv_clamp",
     "num_fp16_res", "arch", "noise", "mbstd_group", "cmap_dim", "mbstd_gain", "growing", "style", "family"]),
       value=_json)
def test_fuzzed_metadata_loads_or_fails_with_our_error(saved, tmp_path, where, key, value):
    """Any JSON value in any field of the metadata: the loaders answer with a network or a CheckpointError."""
    cfg = saved[1].to_dict()
    meta = {}
    if where in ("G", "D"):
        cfg[where][key] = value
    elif where == "top":
        cfg[key] = value
    else:
        meta[where] = json.dumps(value)
    path = _crafted(tmp_path, saved, "fuzz", config=cfg, meta_overrides=meta)
    for fn in (stylegan.load, stylegan.loader.network_info):
        try:
            fn(path)
        except CheckpointError:
            pass


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.text(alphabet="0123456789-,:. eE+naif", max_size=30))
def test_fuzzed_value_parsers_answer_or_refuse(text):
    from stylegan.tools.directions import parse_strengths
    from stylegan.tools.generate import parse_range

    for parse in (parse_range, parse_strengths):
        try:
            out = parse(text)
        except ValueError:
            continue
        assert isinstance(out, list) and 0 < len(out) <= 1_000_000


@pytest.mark.parametrize("poison,message", [
    (lambda t: t.fill_(float("nan")), r"tensor mapping\.layers\.0\.weight holds \d+ non-finite"),
    (lambda t: t.fill_(float("inf")), r"tensor mapping\.layers\.0\.weight holds \d+ non-finite"),
    (lambda t: t.to(torch.int8), r"tensor mapping\.layers\.0\.weight has dtype int8, expected float32"),
])
def test_unusable_weights_refused_at_load_naming_the_tensor(saved, tmp_path, poison, message):
    """NaN/inf weights (a diverged run) and integer weights pass the digest (it is over what was written) but
    are refused by the one builder every reader goes through, for the image loader and for resuming alike."""
    path, config, nets = saved
    for name in ("G_ema", "G"):
        layer = nets[name].mapping.layers[0]
        layer._parameters["weight"] = torch.nn.Parameter(poison(layer.weight.detach().clone()), requires_grad=False)
    bad = save_checkpoint(tmp_path / "bad.safetensors", config, nets)
    with pytest.raises(CheckpointError, match=message):
        stylegan.load(bad)
    with pytest.raises(CheckpointError, match=message):
        load_networks(bad, ("G",))
    from stylegan.checkpoint import load_state_strict

    with pytest.raises(CheckpointError, match=message):  # the resume path loads into existing modules
        load_state_strict(build_networks(config)["G"], read_checkpoint(bad).state_dict("G"), "resume")


def test_unusable_weights_of_a_foreign_file_are_refused_too(saved, tmp_path):
    """The importers hand their tensors to the same builder: a rosinality file with a NaN weight or integer
    weights is refused naming our tensor."""
    from stylegan.interop import convert

    pt = tmp_path / "ros.pt"
    convert(saved[0], pt)
    theirs = torch.load(pt, weights_only=True)
    name = next(k for k, v in theirs["g_ema"].items() if k.startswith("style.") and k.endswith("weight"))
    for poison, message in ((lambda t: t.fill_(float("nan")), "non-finite"), (lambda t: t.to(torch.int8), "int8")):
        bad = {**theirs, "g_ema": {**theirs["g_ema"], name: poison(theirs["g_ema"][name].clone())}}
        torch.save(bad, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=rf"tensor mapping\.layers\.\d\.weight .*{message}"):
            stylegan.load(tmp_path / "bad.pt")

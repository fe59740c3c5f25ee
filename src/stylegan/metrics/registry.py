"""The metric registry and :func:`compute_metric`, the entry point for the command line and the training loop.

A metric is one function of :class:`MetricOptions` returning a dict with ``results`` (name → value) and the
sample counts; registering it is one decorator::

    @register_metric("fid20k", "FID, 20k generated vs 20k real images")
    def fid20k(opts):
        return compute_fid(opts, "fid20k", max_real=20_000, num_gen=20_000)
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import torch

from stylegan.metrics.features import FeatureNetwork, load_inception, load_lpips, load_vgg16_fc2
from stylegan.metrics.stats import (FeatureStats, dataset_feature_stats, generator_feature_stats,
                                    label_sampler)
from stylegan.metrics.weights import WEIGHTS


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[MetricOptions], dict]
    description: str
    needs_generator: bool = False   # PPL, LS: images from a folder cannot stand in
    needs_data: bool = True
    needs_vectors: bool = False     # KID, PR: feature vectors, not only their mean and covariance
    #: What a training run's generator must be for this metric, checked before training starts: a function of
    #: the generator's configuration giving the reason it cannot be scored, or None when it can.
    training_check: Callable[[Any], str | None] | None = None


class _Registry(dict):
    """The registered metrics by name. A name of a counted family that is not registered yet (``fid200``,
    ``kid3k_full``, ``pr3003``: :func:`counted_metric`) is registered when first looked up."""

    def __contains__(self, name) -> bool:
        return super().__contains__(name) or _register_counted(name)

    def __missing__(self, name):
        if _register_counted(name):
            return super().__getitem__(name)
        raise KeyError(name)


METRICS: dict[str, Metric] = _Registry()


def register_metric(name: str, description: str, needs_generator: bool = False, needs_data: bool = True,
                    needs_vectors: bool = False, training_check: Callable[[Any], str | None] | None = None):
    """Decorator: add ``fn(opts) -> dict`` to :data:`METRICS` under ``name``."""
    def wrap(fn):
        if dict.__contains__(METRICS, name):
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = Metric(name, fn, description, needs_generator, needs_data, needs_vectors, training_check)
        return fn
    return wrap


def training_metric_problems(names: list[str], g_config) -> list[str]:
    """Why each of ``names`` could not score the generator a training run builds (``g_config``: its
    GeneratorConfig): checked before the first step, so that a run does not train for hours and then stop at
    its first snapshot."""
    problems = []
    for name in names:
        check = METRICS[name].training_check if name in METRICS else None
        reason = check(g_config) if check is not None else None
        if reason:
            problems.append(f"{name}: {reason}")
    return problems


def list_metrics() -> dict[str, str]:
    return {name: m.description for name, m in METRICS.items()}


class MetricError(ValueError):
    """A metric cannot run with what it was given; the message says what is missing."""


# Feature networks are loaded once per process (the training loop computes metrics at every snapshot).
_LOADED: dict[tuple, Any] = {}


def _memo(key: tuple, make: Callable[[], Any]) -> Any:
    if key not in _LOADED:
        _LOADED[key] = make()
    return _LOADED[key]


@dataclass
class MetricOptions:
    """Everything a metric function may use. ``G`` may be None when ``data2`` (a folder of images to score)
    stands in for the generator."""

    G: Any = None
    data: str | None = None
    data2: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 32
    seed: int = 0
    progress: bool = True
    cache: bool = True
    cache_dir: str | None = None
    workers: int = 0
    inception: str | None = None
    inception_format: str = "auto"
    vgg16: str | None = None
    vgg16_fc2: str | None = None
    classifiers: list | None = None
    noise_mode: str = "random"
    truncation_psi: float = 1.0
    shared: dict | None = None  # generated-image statistics shared by the metrics of one compute_metrics call
    real_vectors: bool = False  # keep real feature vectors even for FID (a later KID/PR in the same call reuses them)
    mirror: bool = False  # the real images also x-flipped (the authors' --mirror)

    # --- feature networks ----------------------------------------------------------------------------

    def inception_net(self) -> FeatureNetwork:
        return _memo(("inception", self.inception or os.environ.get(WEIGHTS["inception"].env),
                      self.inception_format, str(self.device)),
                     lambda: load_inception(self.inception, self.inception_format, self.device))

    def pr_net(self) -> FeatureNetwork:
        """VGG16 fc2 features (the authors' precision/recall) when the user supplied them, else Inception."""
        fc2 = self.vgg16_fc2 or os.environ.get(WEIGHTS["vgg16_fc2"].env)
        if fc2:
            return _memo(("vgg16_fc2", fc2, str(self.device)), lambda: load_vgg16_fc2(fc2, self.device))
        return self.inception_net()

    def lpips(self):
        return _memo(("lpips", self.vgg16 or os.environ.get(WEIGHTS["vgg16"].env), str(self.device)),
                     lambda: load_lpips(self.vgg16, self.device))

    # --- statistics ----------------------------------------------------------------------------------

    def real_stats(self, net: FeatureNetwork, max_items: int | None, capture_all: bool) -> FeatureStats:
        if self.data is None:
            raise MetricError("this metric needs real data (--data PATH or builtin:NAME)")
        capture_all = capture_all or self.real_vectors
        return dataset_feature_stats(self.data, net, max_items=max_items, capture_all=capture_all,
                                     batch_size=self.batch_size, seed=self.seed, workers=self.workers,
                                     cache=self.cache, cache_dir=self.cache_dir, progress=self.progress,
                                     mirror=self.mirror)

    def gen_stats(self, net: FeatureNetwork, num_gen: int, capture_all: bool) -> FeatureStats:
        if self.shared is None:
            return self._gen_stats(net, num_gen, capture_all)
        # Kept with the vectors (num_gen × dim float32, 400 MB for 50k Inception features), so that FID, KID and
        # precision/recall in one call use one set of generated images whatever their order.
        key = (id(self.G), self.data2, net.identity, num_gen, self.seed, self.noise_mode, self.truncation_psi)
        if key not in self.shared:
            self.shared[key] = self._gen_stats(net, num_gen, capture_all=True)
        return self.shared[key]

    def _gen_stats(self, net: FeatureNetwork, num_gen: int, capture_all: bool) -> FeatureStats:
        if self.data2 is not None:
            return dataset_feature_stats(self.data2, net, max_items=num_gen, capture_all=capture_all,
                                         batch_size=self.batch_size, seed=self.seed, workers=self.workers,
                                         cache=self.cache, cache_dir=self.cache_dir, progress=self.progress,
                                         desc="data2 features")
        if self.G is None:
            raise MetricError("this metric needs a generator (--network) or a second image folder (--data2)")
        return generator_feature_stats(self.G, net, num_gen, capture_all=capture_all, batch_size=self.batch_size,
                                       seed=self.seed, labels=self.labels(), truncation_psi=self.truncation_psi,
                                       noise_mode=self.noise_mode, progress=self.progress)

    def labels(self):
        return label_sampler(self.G, self.data, self.seed)


# --- the metric families -----------------------------------------------------------------------------


def _need_reals(real: FeatureStats, need: int, name: str) -> None:
    """Refuse, before any image is generated, real data too small for the statistic to exist at all."""
    if real.num_items < need:
        raise MetricError(f"{name}: the real data has {real.num_items} image(s); it needs at least {need}")


def compute_fid(opts: MetricOptions, name: str, max_real: int | None, num_gen: int) -> dict:
    from stylegan.metrics.fid import frechet_distance

    net = opts.inception_net()
    real = opts.real_stats(net, max_real, capture_all=False)
    _need_reals(real, 2, name)  # a covariance
    gen = opts.gen_stats(net, num_gen, capture_all=False)
    value = frechet_distance(*real.mean_cov(), *gen.mean_cov())
    return {"results": {name: value}, "num_real": real.num_items, "num_gen": gen.num_items,
            "feature_network": net.describe()}


def compute_kid(opts: MetricOptions, name: str, max_real: int | None, num_gen: int, num_subsets: int = 100,
                max_subset_size: int = 1000) -> dict:
    from stylegan.metrics.kid import kernel_inception_distance

    net = opts.inception_net()
    real = opts.real_stats(net, max_real, capture_all=True)
    _need_reals(real, 2, name)  # the unbiased MMD estimate
    gen = opts.gen_stats(net, num_gen, capture_all=True)
    value = kernel_inception_distance(real.features(), gen.features(), num_subsets, max_subset_size, opts.seed)
    return {"results": {name: value}, "num_real": real.num_items, "num_gen": gen.num_items,
            "feature_network": net.describe(),
            "kid_subsets": {"num": num_subsets, "size": min(real.num_items, gen.num_items, max_subset_size)}}


def compute_pr(opts: MetricOptions, name: str, max_real: int | None, num_gen: int, k: int = 3,
               row_batch: int = 10_000, col_batch: int = 10_000) -> dict:
    from stylegan.metrics.precision_recall import precision_recall

    net = opts.pr_net()
    real = opts.real_stats(net, max_real, capture_all=True)
    _need_reals(real, k + 1, name)  # each real's k-th nearest other real
    gen = opts.gen_stats(net, num_gen, capture_all=True)
    p, r = precision_recall(real.features(), gen.features(), k, row_batch, col_batch, opts.device)
    note = ("features: VGG16 fc2, as in the StyleGAN2 paper" if net.name == "vgg16_fc2" else
            "features: Inception-v3 pool (2048-d), not the paper's VGG16 fc2; values are not comparable with "
            "published precision/recall")
    return {"results": {f"{name}_precision": p, f"{name}_recall": r}, "num_real": real.num_items,
            "num_gen": gen.num_items, "feature_network": net.describe(), "k": k, "note": note}


def compute_fid_mixed(opts: MetricOptions, name: str, num: int, k: int) -> dict:
    """FID of images whose styles mix ``k`` random latents at random crossovers (StyleGAN Table 2)."""
    from stylegan.metrics.mixing import MixedLatentGenerator

    if opts.G is None:
        raise MetricError(f"{name} needs a generator (--network)")
    try:
        G = MixedLatentGenerator(opts.G, k)
    except ValueError as e:
        raise MetricError(f"{name}: {e}") from None
    out = compute_fid(dataclasses.replace(opts, G=G, shared=None), name, num, num)
    out["mixing"] = {"latents": k, "crossovers": "uniform, distinct, per image"}
    return out


def compute_ppl_metric(opts: MetricOptions, name: str, num_samples: int, space: str, sampling: str,
                       crop: bool) -> dict:
    from stylegan.metrics.ppl import perceptual_path_length

    if opts.G is None:
        raise MetricError(f"{name} needs a generator (--network)")
    lpips = opts.lpips()
    labels = label_sampler(opts.G, opts.data, opts.seed) if opts.G.c_dim else None
    value = perceptual_path_length(opts.G, lpips, num_samples, 1e-4, space, sampling, crop,
                                   batch_size=max(1, opts.batch_size // 4), seed=opts.seed, labels=labels,
                                   progress=opts.progress)
    return {"results": {name: value}, "num_gen": num_samples, "feature_network": lpips.describe(),
            "ppl": {"space": space, "sampling": sampling, "crop": crop, "epsilon": 1e-4}}


def compute_ls(opts: MetricOptions, name: str, num_samples: int, num_keep: int) -> dict:
    from stylegan.metrics.separability import linear_separability

    if opts.G is None:
        raise MetricError(f"{name} needs a generator (--network)")
    res = linear_separability(opts.G, opts.classifiers, num_samples, num_keep, opts.batch_size, opts.seed,
                              opts.progress)
    results = {f"{name}_z": res["ls_z"], f"{name}_w": res["ls_w"]}
    return {"results": results, "num_gen": num_samples, "attributes_from": res["attributes_from"],
            "entropies": {"z": res["entropies_z"], "w": res["entropies_w"]}}


# --- registered names --------------------------------------------------------------------------------
# The authors' names and sample counts, plus smaller variants for quick checks.

_COUNTS = {"50k": 50_000, "10k": 10_000, "2k": 2_000, "1k": 1_000, "500": 500}
_FULL_REAL = {"fid": None, "kid": 1_000_000, "pr": 200_000}  # "_full": all real images (capped as the authors did)
#: Below this many generated images a record says it is a quick look (the papers' counts are 10k and 50k).
QUICK_LOOK = 10_000
#: A counted family's name with any count: fid200, kid3k_full, pr5003 (precision/recall, k=3, 500 images).
_COUNTED = re.compile(r"^(?:(fid|kid)(\d+)(k?)|(pr)(\d+)(k?)3)(_full)?$")
_MIN_COUNT, _MAX_COUNT = 10, 10_000_000


def _register_family(family: str, tag: str, n: int, full: bool) -> None:
    """Register the metric of one feature family (fid, kid, pr) at ``n`` generated images (tag: its text)."""
    suffix = "_full" if full else ""
    real_desc = "all real images" if full else f"{tag} real images"
    if family == "fid":
        name = f"fid{tag}{suffix}"
        register_metric(name, f"Frechet Inception distance, {tag} generated vs {real_desc}")(
            lambda opts: compute_fid(opts, name, None if full else n, n))
    elif family == "kid":
        name = f"kid{tag}{suffix}"
        register_metric(name, f"Kernel Inception distance, {tag} generated vs {real_desc}", needs_vectors=True)(
            lambda opts: compute_kid(opts, name, _FULL_REAL["kid"] if full else n, n))
    else:
        name = f"pr{tag}3{suffix}"
        register_metric(name, f"Precision and recall (k=3), {tag} generated vs {real_desc}", needs_vectors=True)(
            lambda opts: compute_pr(opts, name, _FULL_REAL["pr"] if full else n, n))


def counted_metric(name: str) -> tuple[str, str, int, bool] | None:
    """(family, count tag, count, full) of a feature metric's name with any count (``fid200`` -> ("fid", "200",
    200, False)), None for another name or a count outside 10 to 10 million."""
    m = _COUNTED.match(str(name))
    if m is None:
        return None
    family, digits, k = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
    n = int(digits) * (1000 if k else 1)
    if not _MIN_COUNT <= n <= _MAX_COUNT or digits != str(int(digits)):
        return None
    return family, digits + k, n, bool(m.group(7))


def _register_counted(name) -> bool:
    """Register ``name`` if it is a counted feature metric (:func:`counted_metric`); whether it now is one."""
    parsed = counted_metric(name)
    if parsed is None:
        return False
    _register_family(*parsed)
    return dict.__contains__(METRICS, name)


def _register_feature_metrics() -> None:
    for tag, n in _COUNTS.items():
        for full in (True, False):
            for family in ("fid", "kid", "pr"):
                _register_family(family, tag, n, full)


def _register_mixing_metrics() -> None:
    for tag, n in _COUNTS.items():
        for k in range(1, 5):
            name = f"fid{tag}_mix{k}"
            register_metric(name, f"FID with the styles of every image mixed from {k} random latent(s) at random "
                                  f"crossovers (StyleGAN Table 2 stress test), {tag} generated vs {tag} real images",
                            needs_generator=True)(
                lambda opts, name=name, n=n, k=k: compute_fid_mixed(opts, name, n, k))


_PPL = {  # name: (samples, space, sampling, crop); StyleGAN's ppl_* crop the face region, StyleGAN2's do not
    "ppl_zfull": (100_000, "z", "full", True),
    "ppl_wfull": (100_000, "w", "full", True),
    "ppl_zend": (100_000, "z", "end", True),
    "ppl_wend": (100_000, "w", "end", True),
    "ppl2_wend": (50_000, "w", "end", False),
}


def _register_ppl_metrics() -> None:
    for base, (n, space, sampling, crop) in _PPL.items():
        where = "cropped face region" if crop else "whole image"
        for tag, count in (("", n), ("10k", 10_000), ("1k", 1_000)):
            name = f"{base}{tag}"
            desc = f"Perceptual path length in {space.upper()}, {sampling} paths, {where}, {count:,} samples"
            register_metric(name, desc, needs_generator=True, needs_data=False)(
                lambda opts, name=name, count=count, space=space, sampling=sampling, crop=crop:
                compute_ppl_metric(opts, name, count, space, sampling, crop))


def _register_ls_metrics() -> None:
    for name, n in (("ls", 200_000), ("ls10k", 10_000), ("ls1k", 1_000)):
        register_metric(name, f"Linear separability in Z and W, {n:,} samples (classifiers, or the class labels "
                              "of a conditional generator)", needs_generator=True, needs_data=False,
                        training_check=lambda g: None if g.c_dim > 0 else
                        "needs a conditional generator while training (attribute classifiers are given to "
                        "`stylegan metrics --classifiers`, not to training)")(
            lambda opts, name=name, n=n: compute_ls(opts, name, n, n // 2))


def compute_coverage(opts: MetricOptions, name: str, num: int) -> dict:
    from stylegan.metrics.coverage import class_coverage

    out = class_coverage(opts.G, num=num, batch_size=max(opts.batch_size, 100), seed=opts.seed,
                         truncation_psi=opts.truncation_psi, noise_mode=opts.noise_mode, progress=opts.progress)
    results = {f"{name}_{k}": out.pop(k) for k in ("classes_covered", "class_kl", "confident", "within_class_std",
                                                    "class_accuracy", "min_class_accuracy") if k in out}
    return {"results": results, "num_gen": out.pop("num_gen"), **out}


def _register_coverage_metrics() -> None:
    for tag, n in (("10k", 10_000), ("1k", 1_000)):
        name = f"coverage{tag}"
        register_metric(name, f"Class coverage of digits, {n:,} samples read by the shipped digit classifier: "
                              "classes covered, KL from uniform, within-class spread; accuracy of requested "
                              "classes for conditional generators", needs_generator=True, needs_data=False,
                        training_check=lambda g: None if g.c_dim in (0, 10) else
                        f"reads digits: the generator has {g.c_dim} classes, not 0 or 10")(
            lambda opts, name=name, n=n: compute_coverage(opts, name, n))


def compute_equivariance(opts: MetricOptions, name: str, kind: str, num_samples: int) -> dict:
    """EQ-T, EQ-T_frac or EQ-R (:mod:`stylegan.metrics.equivariance`): PSNR in dB of the output under a
    transformed input against the transformed output, over the valid region."""
    from stylegan.metrics.equivariance import KAISER_BETA, RESAMPLE_RADIUS, equivariance_psnr

    labels = label_sampler(opts.G, opts.data, opts.seed)
    try:
        value, valid = equivariance_psnr(opts.G, kind, num_samples, batch_size=opts.batch_size, seed=opts.seed,
                                         truncation_psi=opts.truncation_psi, labels=labels,
                                         progress=opts.progress)
    except ValueError as e:
        raise MetricError(f"{name}: {e}") from None
    resampling = "none (whole pixels)" if kind == "int" else (
        f"Kaiser-windowed sinc, radius {RESAMPLE_RADIUS} px, beta {KAISER_BETA:g}")
    return {"results": {name: value}, "num_gen": num_samples,
            "equivariance": {"unit": "dB", "resampling": resampling, "valid_fraction": round(valid, 4)}}


_EQ = {  # name pattern (the authors' names at 50k): (kind, what is drawn)
    "eqt{tag}_int": ("int", "integer translations up to 1/8 of the image"),
    "eqt{tag}_frac": ("frac", "fractional translations up to 1/8 of the image, resampled"),
    "eqr{tag}": ("rot", "rotations in (-180, 180) degrees, resampled"),
}


def _alias_free_only(g) -> str | None:
    from stylegan.config import ALIAS_FREE_ARCHS

    return None if g.arch in ALIAS_FREE_ARCHS else (
        f"needs a StyleGAN3 (alias-free) generator (--cfg stylegan3-t or stylegan3-r), not arch {g.arch!r}")


def _register_equivariance_metrics() -> None:
    for tag, n in _COUNTS.items():
        for pattern, (kind, what) in _EQ.items():
            name = pattern.format(tag=tag)
            register_metric(name, f"Equivariance PSNR (dB) of a StyleGAN3 generator to {what}, {n:,} samples",
                            needs_generator=True, needs_data=False, training_check=_alias_free_only)(
                lambda opts, name=name, kind=kind, n=n: compute_equivariance(opts, name, kind, n))


_register_feature_metrics()
_register_coverage_metrics()
_register_mixing_metrics()
_register_ppl_metrics()
_register_ls_metrics()
_register_equivariance_metrics()


# --- entry point -------------------------------------------------------------------------------------


def compute_metric(name: str, G=None, data_path: str | os.PathLike | None = None,
                   device: str | torch.device = "cpu", *, data2: str | os.PathLike | None = None,
                   data_resolution: int | None = None, network: str | None = None, **options) -> dict:
    """Compute one registered metric and return its record::

        {"metric", "results": {name: value, ...}, "seconds", "num_real", "num_gen", "feature_network":
         {"name", "path", "sha256", ...}, "network", "data", "data2", "device", "timestamp", ...}

    ``G`` is a generator (``stylegan.load(path)``, or the training loop's G_ema); ``data_path`` a prepared
    dataset, a folder or zip of images, or ``builtin:NAME`` (built at ``data_resolution``, default G's).
    ``data2``, a second folder or zip, replaces the generator: its images are scored against ``data_path``.
    Other keyword arguments set :class:`MetricOptions` fields (``batch_size``, ``seed``, ``progress``,
    ``cache``, ``inception``, ``vgg16``, ``vgg16_fc2``, ``classifiers``, ``noise_mode``, ...).
    """
    from stylegan.data.builtin import resolve_data

    try:
        metric = METRICS[name]
    except KeyError:
        raise MetricError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None
    if metric.needs_generator and G is None:
        raise MetricError(f"{name} needs a generator; a folder of images (data2) cannot stand in for it")
    if metric.needs_data and data_path is None:
        raise MetricError(f"{name} needs real data (a dataset path or builtin:NAME)")
    if G is None and data2 is None:
        raise MetricError(f"{name} needs a generator or a second image folder (data2) to score")
    device = torch.device(device)
    progress = options.get("progress", True)
    resolved = None
    if data_path is not None:
        res = data_resolution or (G.resolution if G is not None else None)
        resolved = resolve_data(data_path, res, progress=progress)
    resolved2 = resolve_data(data2, data_resolution, progress=progress) if data2 is not None else None
    unknown = set(options) - set(MetricOptions.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown metric option(s): {', '.join(sorted(unknown))}")
    opts = MetricOptions(G=G, data=resolved, data2=resolved2, device=device, **options)
    start = time.perf_counter()
    # Metrics score the generator in float32, also one that trains with bfloat16 layers on a CPU
    # (stylegan.cpu.precision): its rounding moves FID by a few percent.
    synthesis = getattr(G, "synthesis", None)
    half = getattr(synthesis, "cpu_half_dtype", None)
    if G is not None:
        was_training = G.training
        G.eval()
    if half is not None:
        synthesis.cpu_half_dtype = None
    try:
        with torch.no_grad():
            out = metric.fn(opts)
    finally:
        if G is not None and was_training:
            G.train()
        if half is not None:
            synthesis.cpu_half_dtype = half
    seconds = time.perf_counter() - start
    record = {"metric": name, "results": out.pop("results"), "seconds": round(seconds, 3),
              "num_real": out.pop("num_real", None), "num_gen": out.pop("num_gen", None),
              "feature_network": out.pop("feature_network", None),
              "network": str(network) if network is not None else None,
              "data": os.fspath(data_path) if data_path is not None else None,
              "data2": os.fspath(data2) if data2 is not None else None,
              "device": str(device), "seed": opts.seed, **({"mirror": True} if opts.mirror else {}),
              "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    record.update(out)
    if isinstance(record["num_gen"], int) and record["num_gen"] < QUICK_LOOK:
        record["quick_look"] = (f"{record['num_gen']:,} generated images: a quick look (the papers use 50k); "
                                "compare it only with values at the same count")
    feature_dim = (record["feature_network"] or {}).get("dim")
    if isinstance(record["num_real"], int) and feature_dim and record["num_real"] <= feature_dim:
        record["few_reals"] = (f"{record['num_real']:,} real images, no more than the {feature_dim} feature "
                               "dimensions: their covariance is singular and the value leans on the count; compare "
                               "it only with values from the same real images")
    return record


def compute_metrics(names, G=None, data_path=None, device="cpu", **kwargs):
    """Compute several metrics, yielding one record each (as :func:`compute_metric`). Generated images are
    made once per feature network and sample count and shared by the metrics that need the same ones."""
    names = list(names)
    shared: dict = {}
    vectors = any(METRICS[n].needs_vectors for n in names if n in METRICS)
    for name in names:
        yield compute_metric(name, G, data_path, device, shared=shared, real_vectors=vectors, **kwargs)

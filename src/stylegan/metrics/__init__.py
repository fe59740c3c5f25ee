"""Metrics as users of the StyleGAN papers know them: FID, KID, precision/recall, perceptual path length and
linear separability, with the feature networks loaded from local files.

>>> import stylegan
>>> from stylegan.metrics import compute_metric, list_metrics
>>> G = stylegan.load("network.safetensors")
>>> rec = compute_metric("fid10k_full", G, "builtin:mnist5k", device="cpu")
>>> rec["results"]["fid10k_full"], rec["seconds"]

Get the feature networks once with ``stylegan weights`` (see :mod:`stylegan.metrics.weights`).
"""
from stylegan.metrics.features import (LPIPS, FeatureNetwork, InceptionV3Features, NumpyOnlyUnpickler,
                                       load_inception, load_lpips, load_numpy_pickle, load_vgg16_fc2)
from stylegan.metrics.fid import fid_from_features, frechet_distance, mean_cov
from stylegan.metrics.kid import kernel_inception_distance, mmd2_unbiased
from stylegan.metrics.ppl import perceptual_path_length
from stylegan.metrics.precision_recall import precision_recall
from stylegan.metrics.registry import (METRICS, MetricError, MetricOptions, compute_metric, compute_metrics,
                                       list_metrics, register_metric)
from stylegan.metrics.resize import resize_tf1_bilinear
from stylegan.metrics.separability import linear_separability
from stylegan.metrics.stats import FeatureStats, dataset_feature_stats, generator_feature_stats
from stylegan.metrics.weights import WEIGHTS, WeightsError, find_weights, install_weights

__all__ = [
    "FeatureNetwork", "FeatureStats", "InceptionV3Features", "LPIPS", "METRICS", "MetricError", "MetricOptions",
    "NumpyOnlyUnpickler", "WEIGHTS", "WeightsError", "compute_metric", "compute_metrics", "dataset_feature_stats",
    "fid_from_features", "find_weights", "frechet_distance", "generator_feature_stats", "install_weights",
    "kernel_inception_distance", "linear_separability", "list_metrics", "load_inception", "load_lpips",
    "load_numpy_pickle", "load_vgg16_fc2", "mean_cov", "mmd2_unbiased", "perceptual_path_length",
    "precision_recall", "register_metric", "resize_tf1_bilinear",
]

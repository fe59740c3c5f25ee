"""Training data: reading prepared datasets, the dataset tool, and built-in datasets.

>>> from stylegan.data import ImageDataset, infinite_loader, resolve_data
>>> ds = ImageDataset(resolve_data("builtin:mnist5k"), use_labels=True, xflip=False)
>>> batches = infinite_loader(ds, batch_size=32, seed=0)
>>> images, labels = next(batches)         # uint8 N×C×H×W, float32 N×label_dim
"""
from stylegan.data.builtin import (BUILTIN_DATASETS, TWEMOJI_CREDIT, BuiltinError, build_builtin, builtin_path,
                                   resolve_data)
from stylegan.data.dataset import ImageDataset, InfiniteLoader, InfiniteSampler, infinite_loader
from stylegan.data.sources import RestrictedUnpickler, Source, SourceItem, open_source
from stylegan.data.tool import ConvertSummary, DatasetError, convert_dataset

__all__ = [
    "BUILTIN_DATASETS", "TWEMOJI_CREDIT", "BuiltinError", "ConvertSummary", "DatasetError", "ImageDataset",
    "InfiniteLoader", "InfiniteSampler", "RestrictedUnpickler", "Source", "SourceItem", "build_builtin",
    "builtin_path", "convert_dataset", "infinite_loader", "open_source", "resolve_data",
]

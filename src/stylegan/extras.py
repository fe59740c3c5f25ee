"""The optional features and the packages each needs: one place that says which extra of the package to
install when a feature's package is missing (``pip install 'stylegan[serve]'``), in one line."""
from __future__ import annotations

import importlib
from types import ModuleType

#: Each extra of pyproject.toml: the feature it serves and the modules it provides.
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "serve": ("the web service, stylegan serve", ("fastapi", "uvicorn")),
    "video": ("MP4 videos: stylegan video, project --save-video", ("imageio_ffmpeg",)),
    "plots": ("plots: stylegan reprojection-study, resolution-study", ("matplotlib",)),
    "tensorboard": ("TensorBoard logs of training", ("tensorboard",)),
    "export": ("ONNX export: stylegan export, serve --static", ("onnx", "onnxscript", "onnxruntime")),
}


class MissingExtra(ImportError):
    """A feature's package is not installed; the message names the extra that installs it."""


def extra_for(module: str) -> str:
    """The extra whose packages provide ``module`` (``matplotlib.pyplot`` → ``plots``)."""
    top = module.split(".")[0]
    for extra, (_, modules) in EXTRAS.items():
        if top in modules:
            return extra
    raise KeyError(f"{module!r} belongs to no extra of the package")


def missing_extra_message(module: str) -> str:
    """One line: what is missing, for which feature, and the command that installs it."""
    extra = extra_for(module)
    return f"{module.split('.')[0]!r} is not installed ({EXTRAS[extra][0]}): pip install 'stylegan[{extra}]'"


def require(module: str) -> ModuleType:
    """``module`` imported, or :class:`MissingExtra` naming the extra to install (a module that is there but
    fails to import for another reason raises as it is)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingExtra(missing_extra_message(module)) from None

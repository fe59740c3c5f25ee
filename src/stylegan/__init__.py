"""stylegan: the StyleGAN family of image generators (ProGAN, StyleGAN, StyleGAN2).

>>> import stylegan, torch
>>> G = stylegan.load("network.safetensors")          # the EMA generator, eval mode (any format)
>>> G = stylegan.load("mnist32")                      # or a pretrained name (conditional: 10 classes)
>>> z, c = torch.randn(4, G.z_dim), torch.eye(G.c_dim)[[3, 3, 7, 7]]  # c=None for an unconditional network
>>> img = G(z, c, truncation_psi=0.7, noise_mode="const")  # NCHW float in [-1, 1]
>>> stylegan.to_pil(img)[0].save("seed.png")
"""
from stylegan.version import __version__  # noqa: E402,F401

#: The public names and the module of each, imported on first use (so that ``import stylegan`` and the command
#: line's help start without loading PyTorch).
_EXPORTS = {
    "CheckpointError": "stylegan.checkpoint", "load_networks": "stylegan.checkpoint",
    "save_checkpoint": "stylegan.checkpoint", "NetworkConfig": "stylegan.config", "make_config": "stylegan.presets",
    "to_pil": "stylegan.images", "to_uint8": "stylegan.images", "load": "stylegan.loader",
    "Discriminator": "stylegan.networks", "Generator": "stylegan.networks", "build_networks": "stylegan.networks",
    "mix_styles": "stylegan.networks",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    """A public name's object, from its module, or a submodule (``stylegan.loader``), imported now if it was
    not yet."""
    import importlib

    if name not in _EXPORTS:
        try:
            return importlib.import_module(f"stylegan.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"stylegan.{name}":
                raise
            raise AttributeError(f"module 'stylegan' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

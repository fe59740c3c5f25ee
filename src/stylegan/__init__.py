"""stylegan: the StyleGAN family of image generators (ProGAN, StyleGAN, StyleGAN2).

>>> import stylegan, torch
>>> G = stylegan.load("network.safetensors")          # the EMA generator, eval mode (any format)
>>> G = stylegan.load("mnist32")                      # or a pretrained name (conditional: 10 classes)
>>> z, c = torch.randn(4, G.z_dim), torch.eye(G.c_dim)[[3, 3, 7, 7]]  # c=None for an unconditional network
>>> img = G(z, c, truncation_psi=0.7, noise_mode="const")  # NCHW float in [-1, 1]
>>> stylegan.to_pil(img)[0].save("seed.png")
"""
from stylegan.version import __version__  # noqa: E402,F401

from stylegan.checkpoint import CheckpointError, load_networks, save_checkpoint  # noqa: E402
from stylegan.config import NetworkConfig  # noqa: E402
from stylegan.presets import make_config  # noqa: E402
from stylegan.images import to_pil, to_uint8  # noqa: E402
from stylegan.loader import load  # noqa: E402
from stylegan.networks import Discriminator, Generator, build_networks, mix_styles  # noqa: E402

__all__ = [
    "__version__", "CheckpointError", "Discriminator", "Generator", "NetworkConfig", "build_networks", "load",
    "load_networks", "make_config", "mix_styles", "save_checkpoint", "to_pil", "to_uint8",
]

import pytest
import torch

from stylegan.presets import make_config


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def tiny_config(resolution=16, g_arch="skip", d_arch="resnet", img_channels=3, c_dim=0, **kw):
    """A small network for fast tests (channels 32 at low resolution, 16 higher up)."""
    return make_config("stylegan2", resolution=resolution, cbase=256, cmax=32, map_depth=2, z_dim=32, w_dim=32,
                       g_arch=g_arch, d_arch=d_arch, img_channels=img_channels, c_dim=c_dim,
                       num_fp16_res=0, conv_clamp=None, **kw)


@pytest.fixture
def tiny():
    return tiny_config

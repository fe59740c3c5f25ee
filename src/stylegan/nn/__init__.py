"""Building blocks of the StyleGAN family, one concept per module.

- :mod:`stylegan.nn.activation`  bias + leaky ReLU with gain and optional clamp
- :mod:`stylegan.nn.equalized`   equalized-learning-rate linear and conv layers
- :mod:`stylegan.nn.conv`        convolutions whose derivatives of every order are convolutions (R1, PL)
- :mod:`stylegan.nn.upfirdn`     FIR resampling (upfirdn2d) and resampling convolutions
- :mod:`stylegan.nn.noise`       noise injection (random / const / none)
- :mod:`stylegan.nn.modconv`     modulated convolution with weight demodulation
- :mod:`stylegan.nn.rgb`         toRGB / fromRGB
- :mod:`stylegan.nn.mbstd`       minibatch standard deviation
- :mod:`stylegan.nn.normalize`   pixel norm (normalize by the second moment)
- :mod:`stylegan.nn.adain`       adaptive instance normalization (StyleGAN)
- :mod:`stylegan.nn.resample`    nearest-neighbour up / average-pool down (ProGAN, progressive growing)
"""
from stylegan.nn.activation import bias_act
from stylegan.nn.adain import AdaIN, adain, instance_norm
from stylegan.nn.equalized import EqualizedConv2d, EqualizedLinear
from stylegan.nn.mbstd import MinibatchStd
from stylegan.nn.modconv import ModulatedConv2d, modulated_conv2d
from stylegan.nn.noise import NOISE_MODES, NoiseInjection
from stylegan.nn.normalize import normalize_2nd_moment
from stylegan.nn.resample import downsample_avg, upsample_nearest
from stylegan.nn.rgb import FromRGB, ToRGB
from stylegan.nn.upfirdn import conv2d_resample, downsample2d, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "AdaIN", "adain", "instance_norm", "downsample_avg", "upsample_nearest",
    "bias_act", "EqualizedConv2d", "EqualizedLinear", "MinibatchStd", "ModulatedConv2d", "modulated_conv2d",
    "NOISE_MODES", "NoiseInjection", "normalize_2nd_moment", "FromRGB", "ToRGB", "conv2d_resample",
    "downsample2d", "setup_filter", "upfirdn2d", "upsample2d",
]

"""The benchmarks' FLOP counter: exact counts for a convolution, its first derivative and the double backward
that R1 and path length run."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from common import count_flops  # noqa: E402

from stylegan.nn.activation import leaky_relu  # noqa: E402
from stylegan.nn.conv import conv2d  # noqa: E402

N, C, K, H = 2, 4, 6, 8
CONV = 2 * N * K * C * 9 * H * H  # one 3x3 convolution pass, 2 FLOPs per multiply-add


def test_forward_and_first_derivative_counted():
    x = torch.randn(N, C, H, H, requires_grad=True)
    w = torch.randn(K, C, 3, 3, requires_grad=True)
    assert count_flops(lambda: conv2d(x, w, padding=1)) == CONV
    # backward: the input gradient and the weight gradient, one pass each
    assert count_flops(lambda: conv2d(x, w, padding=1).square().sum().backward()) == 3 * CONV


def _r1_like(x, w, act):
    (g,) = torch.autograd.grad(act(conv2d(x, w, padding=1)).sum(), x, create_graph=True)
    g.square().sum().backward()


def test_double_backward_counted():
    x = torch.randn(N, C, H, H, requires_grad=True)
    w = torch.randn(K, C, 3, 3, requires_grad=True)
    # Ours: forward, the input gradient (a transposed convolution), then w.r.t. w through that transposed
    # convolution. The leaky-ReLU derivative is a constant mask, so nothing flows back through the forward.
    assert count_flops(lambda: _r1_like(x, w, leaky_relu)) == 3 * CONV
    # PyTorch's own leaky-ReLU derivative depends on its input: a tensor of zeros flows back through the
    # forward convolution as well (its input and weight gradients: 2 more passes), and the first backward's
    # fused kernel also computes the weight gradient.
    assert count_flops(lambda: _r1_like(x, w, lambda t: torch.nn.functional.leaky_relu(t, 0.2))) == 6 * CONV

"""The benchmarks' convolution ceiling: every convolution a phase dispatches (forward, backward, the double
backward of R1 and path length) is recorded with its shapes, strides and arguments, and replayed alone."""
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import common  # noqa: E402

from stylegan.nn.conv import conv2d  # noqa: E402

CONV, CONV_BACKWARD = torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default


def _phase(x, w, create_graph):
    def fn():
        y = conv2d(x, w, padding=1)
        (gx,) = torch.autograd.grad(y.sum(), x, create_graph=create_graph)  # the gradient arrives expanded
        if create_graph:
            gx.square().sum().backward()
    return fn


def test_records_every_convolution_with_its_layout_and_replays_it():
    x = torch.randn(2, 4, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(5, 4, 3, 3, requires_grad=True)
    first = common.record_convolutions(_phase(x, w, create_graph=False))
    assert [f for f, _ in first] == [CONV, CONV_BACKWARD]
    spec = first[0][1][0]
    assert spec.shape == (2, 4, 6, 6) and spec.stride == x.stride()  # channels-last as dispatched
    plain = torch.randn(2, 4, 6, 6, requires_grad=True)
    gy = common.record_convolutions(_phase(plain, w, create_graph=False))[1][1][0]
    assert 0 in gy.stride  # sum's gradient: expanded, and replayed expanded
    assert gy.storage_size() == 1
    second = common.record_convolutions(_phase(x, w, create_graph=True))
    assert len(second) > len(first)  # the derivatives of the input gradient are convolutions too
    replay = common.convolution_replay(_phase(x, w, create_graph=True))
    assert common.record_convolutions(replay) == second  # the same operations, shapes, strides and arguments


def test_no_convolutions_no_ceiling():
    a = torch.randn(8, 8)
    assert common.record_convolutions(lambda: a @ a) == []
    common.convolution_replay(lambda: a @ a)()

"""Convolutions whose derivatives of every order are convolutions again (for R1 and path length).

R1 and path-length regularization differentiate through the networks twice. PyTorch's own second derivative
of a convolution (``_convolution_double_backward``) forms the weight term as a convolution of the transposed
batch with a kernel as large as the image, and for grouped convolutions (our depthwise FIR filters) loops
over the groups one small convolution at a time: an R1 step of the small speed setting ran ~3,100
convolution calls instead of ~130, half of its time.

Here a convolution ``y = conv(x, w)`` (plain or transposed) is an autograd function whose backward is written
with two linear maps, each again such a function:

- the input gradient ``∂L/∂x = conv_input_grad(gy, w)``: the transposed operation (a transposed convolution
  for a convolution and a convolution for a transposed one), with the output padding that restores x's size;
- the weight gradient ``∂L/∂w = conv_weight_grad(gy, x)``, bilinear in ``(gy, x)``: its derivative with
  respect to ``gy`` along ``h`` is ``conv(x, h)`` and with respect to ``x`` is ``conv_input_grad(gy, h)``.

So any order of derivative runs as ordinary oneDNN / cuDNN convolutions. Outside double differentiation the
backward is one fused ``convolution_backward`` call, as in PyTorch.

A gradient taken with ``torch.autograd.grad(..., inputs=[x])`` (R1 takes it w.r.t. the image, path length
w.r.t. the ws) computes only the terms the engine will use: the weight gradients, which PyTorch's own
derivative of a custom function would compute and discard, are skipped. :func:`reference_autograd` switches
back to PyTorch's own convolutions and activation derivative, for tests that compare the two.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch

_FAST = True
_FIRST_ORDER = False


def fast_autograd_enabled() -> bool:
    """Whether convolutions and leaky ReLU build the graph of this module's autograd functions (needed only
    where the graph is differentiated twice), not PyTorch's own."""
    return _FAST and not _FIRST_ORDER


@contextlib.contextmanager
def first_order() -> Iterator[None]:
    """Inside the ``with`` block, build graphs that will be differentiated once (the main training phase):
    PyTorch's own convolutions and leaky ReLU, whose first derivative is the same fused kernel as ours, less
    the Python of an autograd function per layer (demo setting main step: 1.03x, one thread, interleaved).
    Results are unchanged; a second derivative taken anyway is PyTorch's own, correct but slower."""
    global _FIRST_ORDER
    old, _FIRST_ORDER = _FIRST_ORDER, True
    try:
        yield
    finally:
        _FIRST_ORDER = old


@contextlib.contextmanager
def reference_autograd() -> Iterator[None]:
    """Use ``torch.nn.functional`` convolutions and leaky ReLU, with PyTorch's own derivatives, inside the
    ``with`` block."""
    global _FAST
    old, _FAST = _FAST, False
    try:
        yield
    finally:
        _FAST = old


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


_Params = tuple  # (transposed, stride, padding, output_padding, dilation, groups)


def _params(transposed, stride, padding, output_padding, dilation, groups) -> _Params:
    return (bool(transposed), _pair(stride), _pair(padding), _pair(output_padding), _pair(dilation), int(groups))


def _run(x: torch.Tensor, w: torch.Tensor, p: _Params) -> torch.Tensor:
    transposed, stride, padding, output_padding, dilation, groups = p
    return torch.ops.aten.convolution(x, w, None, list(stride), list(padding), list(dilation), transposed,
                                      list(output_padding), groups)


def _input_grad_params(p: _Params, x_shape: Sequence[int], gy_shape: Sequence[int], k: Sequence[int]) -> _Params:
    """The parameters of the operation that maps gy back to x's shape (the opposite of ``p``)."""
    transposed, stride, padding, output_padding, dilation, groups = p
    if transposed:  # the gradient of a transposed convolution is a convolution: sizes come out right
        return _params(False, stride, padding, 0, dilation, groups)
    op = tuple(x_shape[2 + i] - ((gy_shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1) + 1)
               for i in range(2))
    return _params(True, stride, padding, op, dilation, groups)


def _input_grad(gy: torch.Tensor, w: torch.Tensor, p: _Params, x_shape: Sequence[int]) -> torch.Tensor:
    return _conv(gy, w, _input_grad_params(p, x_shape, gy.shape, w.shape[2:]))


def _native_backward(gy: torch.Tensor, x: torch.Tensor, w: torch.Tensor, p: _Params, need_x: bool, need_w: bool):
    """PyTorch's fused (first-order) convolution backward: (∂L/∂x, ∂L/∂w), None where not needed."""
    transposed, stride, padding, output_padding, dilation, groups = p
    gx, gw, _ = torch.ops.aten.convolution_backward(gy, x, w, None, list(stride), list(padding), list(dilation),
                                                    transposed, list(output_padding), groups,
                                                    [need_x, need_w, False])
    return gx, gw


def _grad_node(t: torch.Tensor):
    """The autograd node that receives ``t``'s gradient (None if it needs none)."""
    return torch.autograd.graph.get_gradient_edge(t).node if t.requires_grad else None


def _will_run(node) -> bool:
    """Whether the running backward pass will use the gradient sent to ``node``."""
    if node is None:
        return False
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):  # private API: assume it is used
        return True


def _like_layout(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``g`` channels-last where ``x`` is: a gradient that arrives in NCHW (the path-length noise image, for
    one) would otherwise carry that layout back through every layer it reaches, and oneDNN's convolutions and
    PyTorch's elementwise kernels run slower in it or on mixed layouts."""
    if x.dim() == 4 and g.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return g.contiguous(memory_format=torch.channels_last)
    return g


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, p, nodes):
        ctx.p, ctx.nodes = p, nodes
        ctx.save_for_backward(x, w)
        return _run(x, w, p)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        p = ctx.p
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gy = _like_layout(gy, x)
        if not torch.is_grad_enabled():  # first-order backward: PyTorch's fused kernel
            return (*_native_backward(gy, x, w, p, need_x, need_w), None, None)
        # Differentiable backward (create_graph): compute only what this backward pass will use.
        gx = _input_grad(gy, w, p, x.shape) if need_x and _will_run(ctx.nodes[0]) else None
        gw = _WeightGrad.apply(gy, x, w, p) if need_w and _will_run(ctx.nodes[1]) else None
        return gx, gw, None, None


def _conv(x: torch.Tensor, w: torch.Tensor, p: _Params) -> torch.Tensor:
    if not torch.is_grad_enabled() or not (x.requires_grad or w.requires_grad):
        return _run(x, w, p)
    return _Conv.apply(x, w, p, (_grad_node(x), _grad_node(w)))


class _WeightGrad(torch.autograd.Function):
    """∂L/∂w of ``y = conv(x, w)`` given gy, as a function of (gy, x); ``w`` gives only the shape."""

    @staticmethod
    def forward(ctx, gy, x, w, p):
        ctx.p = p
        ctx.save_for_backward(gy, x, w)
        return _native_backward(gy, x, w, p, need_x=False, need_w=True)[1]

    @staticmethod
    def backward(ctx, h):
        gy, x, w = ctx.saved_tensors
        p = ctx.p
        g_gy = _conv(x, h, p) if ctx.needs_input_grad[0] else None
        g_x = _input_grad(gy, h, p, x.shape) if ctx.needs_input_grad[1] else None
        return g_gy, g_x, None, None


def conv2d(x: torch.Tensor, w: torch.Tensor, stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
           dilation: int | Sequence[int] = 1, groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` without bias, with convolution derivatives of every order."""
    if not fast_autograd_enabled():
        return torch.nn.functional.conv2d(x, w, None, stride, padding, dilation, groups)
    return _conv(x, w, _params(False, stride, padding, 0, dilation, groups))


def conv_transpose2d(x: torch.Tensor, w: torch.Tensor, stride: int | Sequence[int] = 1,
                     padding: int | Sequence[int] = 0, output_padding: int | Sequence[int] = 0,
                     groups: int = 1, dilation: int | Sequence[int] = 1) -> torch.Tensor:
    """``F.conv_transpose2d`` without bias, with convolution derivatives of every order."""
    if not fast_autograd_enabled():
        return torch.nn.functional.conv_transpose2d(x, w, None, stride, padding, output_padding, groups, dilation)
    return _conv(x, w, _params(True, stride, padding, output_padding, dilation, groups))

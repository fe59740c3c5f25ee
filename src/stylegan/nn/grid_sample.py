"""``grid_sample`` with derivatives of every order with respect to the image.

R1 differentiates the discriminator's output with respect to the real images *through the augmentation*, and
then differentiates that gradient again. PyTorch's CUDA ``grid_sample`` has no derivative for its own backward
("derivative for aten::grid_sampler_2d_backward is not implemented"), so ADA's geometric warp stopped training
on a GPU at the first R1 step with p > 0. Sampling is linear in the image: its derivative with respect to the
image is the adjoint map (a scatter, ``grid_sampler_2d_backward``), and the derivative of that adjoint is the
sampling again. Two autograd functions that call each other give every order. The sampling grid is a constant
here (the augmentation's random transforms carry no gradient); a grid that requires a gradient is refused.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_MODES = {"bilinear": 0, "nearest": 1, "bicubic": 2}
_PADDING = {"zeros": 0, "border": 1, "reflection": 2}


def grid_sample(x: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool = False) -> torch.Tensor:
    """``F.grid_sample(x, grid, ...)`` (4-D), differentiable to any order with respect to ``x``."""
    if grid.requires_grad:
        raise ValueError("grid_sample: the sampling grid must not require a gradient")
    if mode not in _MODES or padding_mode not in _PADDING:
        raise ValueError(f"grid_sample: unknown mode {mode!r} or padding {padding_mode!r}")
    return _Sample.apply(x, grid, (mode, padding_mode, align_corners))


class _Sample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, grid, opts):
        ctx.save_for_backward(grid)
        ctx.opts, ctx.x_shape = opts, x.shape
        mode, padding, align = opts
        return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=align)

    @staticmethod
    def backward(ctx, gy):
        (grid,) = ctx.saved_tensors
        return _Adjoint.apply(gy, grid, ctx.opts, ctx.x_shape), None, None


class _Adjoint(torch.autograd.Function):
    """The adjoint of sampling: scatters ``gy`` back onto the image grid (the gradient with respect to x)."""

    @staticmethod
    def forward(ctx, gy, grid, opts, x_shape):
        ctx.save_for_backward(grid)
        ctx.opts = opts
        mode, padding, align = opts
        # The image's values are not read when only the image's gradient is asked for (output_mask).
        shape_only = gy.new_zeros(x_shape)
        gx, _ = torch.ops.aten.grid_sampler_2d_backward(gy.contiguous(), shape_only, grid, _MODES[mode],
                                                          _PADDING[padding], align, [True, False])
        return gx

    @staticmethod
    def backward(ctx, ggx):
        (grid,) = ctx.saved_tensors
        return _Sample.apply(ggx, grid, ctx.opts), None, None, None

"""Option definitions and small helpers shared by the command modules (imported by all of them; it imports
none of them, so any command module can be run as ``python -m``)."""
from __future__ import annotations

import math
from pathlib import Path

import click

from stylegan.config import NOISE_MODES


class FiniteFloat(click.FloatRange):
    """A float option (optionally within bounds) that refuses nan and ±inf, which pass every range check."""

    name = "float"

    def convert(self, value, param, ctx):
        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return v


def _device(name: str):
    """--device: :func:`stylegan.device.choose_device` (the one chooser); a malformed value is a usage error, a
    device this machine lacks one line."""
    from stylegan.device import DeviceError, check_device_name, choose_device

    try:
        check_device_name(name)
    except DeviceError as e:
        raise click.UsageError(str(e)) from None
    try:
        return choose_device(name)
    except DeviceError as e:
        raise click.ClickException(str(e)) from None


def _int_list(ctx, param, value):
    from stylegan.tools.ranges import parse_range

    if value is None:
        return None
    try:
        return parse_range(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _load_generator(path: str, device):
    from stylegan.checkpoint import CheckpointError
    from stylegan.loader import load

    try:
        return load(path, device=device)  # a file of any format, or a pretrained name (stylegan.pretrained)
    except CheckpointError as e:
        raise click.ClickException(str(e)) from None


network_option = click.option("--network", "network", required=True, metavar="PATH",
                              help="A checkpoint (.safetensors), the authors' .pkl, a rosinality .pt, a pretrained "
                                   "name (mnist32, stylegan3-t-ffhq-1024x1024: `stylegan networks`) or an "
                                   "http(s):// URL (downloaded once into the cache).")
trunc_option = click.option("--trunc", "truncation_psi", type=FiniteFloat(-10, 10), default=1.0, show_default=True,
                            help="Truncation psi: 1 = none, 0 = the average image; 0.5-0.7 trades variety for quality.")
noise_option = click.option("--noise-mode", type=click.Choice(NOISE_MODES), default=None,
                            help="Noise inputs: const (fixed, deterministic; the default), random (new each image), "
                                 "none. Refused for a network without noise inputs (ProGAN, StyleGAN A-D).")


def _noise_mode(G, noise_mode: str | None) -> str:
    """--noise-mode: ``const`` unless given; given for a network without noise inputs, a usage error (every mode
    would make the same image)."""
    if noise_mode is None:
        return "const"
    if not G.synthesis.noise_layers():
        raise click.UsageError(f"--noise-mode {noise_mode}: this network has no noise inputs")
    return noise_mode
class_option = click.option("--class", "class_idx", type=int, default=None, metavar="INT",
                            help="Class index: required for a conditional network (nothing picks one for you), "
                                 "refused for an unconditional one.")
trunc_class_option = click.option("--trunc-class", "truncation_class", is_flag=True, default=False,
                                  help="Truncate towards the class's own average w instead of the overall one "
                                       "(conditional networks): a low --trunc then keeps the class.")


def check_truncation(G, cutoff: int | None, truncation_class: bool, class_idx: int | None) -> None:
    """Refuse, before any work, truncation options that do not fit the loaded network: a --trunc-cutoff past
    its ws, --trunc-class without a conditional network, and a conditional network without --class."""
    num_ws = G.mapping.num_ws
    if cutoff is not None and num_ws is not None and cutoff > num_ws:
        raise click.BadParameter(f"{cutoff} is past this network's {num_ws} ws; give at most {num_ws}",
                                 param_hint="--trunc-cutoff")
    if truncation_class and G.c_dim == 0:
        raise click.UsageError("--trunc-class: this network is unconditional (it has no classes)")
    if G.c_dim and class_idx is None:
        raise click.UsageError(f"this network is conditional ({G.c_dim} classes): give --class 0-{G.c_dim - 1}")
    if G.c_dim and not 0 <= class_idx < G.c_dim:
        raise click.BadParameter(f"{class_idx} is not a class of this network: give 0-{G.c_dim - 1}",
                                 param_hint="--class")
    if not G.c_dim and class_idx is not None:
        raise click.UsageError("--class: this network is unconditional (it has no classes)")


class OutputPath(click.Path):
    """A path an output is written to: as click.Path, and an empty one (which would write into the current folder
    under a name the user never gave) is refused."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path: give the file or folder to write to", param, ctx)
        return super().convert(value, param, ctx)


device_option = click.option("--device", default="auto", show_default=True,
                             help="Device to run on: auto (CUDA if present, else CPU), cpu, cuda, cuda:N, mps.")
outdir_option = click.option("--outdir", required=True, type=OutputPath(file_okay=False), metavar="DIR",
                             help="Folder for the outputs (created if needed).")


force_option = click.option("--force", is_flag=True, default=False,
                            help="Replace output files that already exist (never a file this command reads).")


def warn(message: str) -> None:
    """One line on stderr that says something is off without stopping the command."""
    click.echo(f"warning: {message}", err=True)


def refuse_overwrite(outputs, force: bool, inputs=()) -> None:
    """The one check every command makes before it writes: an output that is also one of its inputs is refused
    even with ``--force``; an existing output is refused unless ``--force``. Nothing is written either way."""
    ins = {Path(p).resolve() for p in inputs if p is not None}
    outs = [Path(p) for p in outputs]
    for p in outs:
        if p.resolve() in ins:
            raise click.UsageError(f"{p} is also this command's input; write the output to another file")
    refuse_existing([p for p in outs if p.exists()], force)


def refuse_existing(existing, force: bool) -> None:
    """The refusal of :func:`refuse_overwrite`, for outputs already found to exist (``generate`` finds its own
    by listing the folder once, for any number of seeds)."""
    if existing and not force:
        more = f" (and {len(existing) - 1} more output(s))" if len(existing) > 1 else ""
        raise click.ClickException(f"{existing[0]} already exists{more}; give --force to replace it")

"""``stylegan convert``: networks from other code into this package's checkpoints, and back out."""
from __future__ import annotations

import click

from stylegan.cli.common import OutputPath, force_option, refuse_overwrite


@click.command()
@click.option("--source", required=True, metavar="FILE",
              help="Network to convert: the authors' .pkl (stylegan2-ada-pytorch, stylegan3's StyleGAN2 "
                   "networks, TensorFlow StyleGAN2), a rosinality .pt, a .safetensors checkpoint, or a "
                   "pretrained name (mnist32).")
@click.option("--dest", required=True, type=OutputPath(dir_okay=False), metavar="OUT",
              help="Output: OUT.safetensors (this package's checkpoint) or OUT.pt (rosinality's layout, plain "
                   "tensors, loadable with torch.load(weights_only=True)).")
@click.option("--networks", default=None, metavar="LIST",
              help="Keep only these networks, comma-separated (e.g. G_ema for a generator-only file).")
@force_option
def convert(source, dest, networks, force):
    """Convert a network between formats. Nothing in the source file is executed: pickles are read with an
    allow-list of known globals, and anything else is refused with its name."""
    from stylegan.checkpoint import CheckpointError
    from stylegan.interop import convert as run_convert
    from stylegan.interop.formats import FORMAT_NAMES

    from stylegan.loader import resolve

    try:
        source = resolve(source)  # the resolver of every --network: a file, or a pretrained name
        refuse_overwrite([dest], force, inputs=[source])
        keep = [n.strip() for n in networks.split(",") if n.strip()] if networks else None
        r = run_convert(source, dest, networks=keep)
    except CheckpointError as e:  # InteropError included
        raise click.ClickException(str(e)) from None
    g = r.config.G
    click.echo(f"read {source}: {FORMAT_NAMES.get(r.source_format, r.source_format)}")
    click.echo(f"networks {', '.join(r.networks)}; {g.resolution}x{g.resolution}, {g.img_channels} channel(s), "
               f"G arch {g.arch}, D arch {r.config.D.arch}, z {g.z_dim}, w {g.w_dim}, mapping {g.map_depth} "
               f"layers, cbase {g.cbase}, cmax {g.cmax}" + (f", {g.c_dim} classes" if g.c_dim else ""))
    for note in r.notes:
        click.echo(f"note: {note}")
    click.echo(f"wrote {r.dest} ({FORMAT_NAMES.get(r.dest_format, r.dest_format)})")

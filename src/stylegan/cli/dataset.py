"""``stylegan dataset``: the dataset tool's command (a thin layer over :func:`stylegan.data.convert_dataset`)."""
from __future__ import annotations

import click

from stylegan.cli.common import OutputPath


def _background(ctx, param, value):
    if value is None:
        return None
    parts = value.split(",")
    try:
        rgb = tuple(int(p) for p in parts)
    except ValueError:
        rgb = ()
    if len(rgb) == 1:
        rgb = rgb * 3
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise click.BadParameter(f"want R,G,B with integers 0-255 (or one gray level), got {value!r}")
    return rgb


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--source", required=True, metavar="PATH",
              help="Images to convert: a folder or .zip of images (png, jpg, jpeg, webp, bmp; a prepared dataset's "
                   "labels are kept), MNIST-style *-images-idx3-ubyte[.gz] (labels from the matching labels file), "
                   "cifar-10-python.tar.gz, an LSUN lmdb folder (needs `pip install lmdb`), or a built-in dataset "
                   "(builtin:mnist5k, builtin:twemoji, builtin:twemoji-faces, builtin:twemoji-nofaces) to write "
                   "as a folder or .zip of your own.")
@click.option("--dest", required=True, type=OutputPath(), metavar="PATH",
              help="Where to write the prepared dataset: a new or empty folder, or a file ending in .zip. "
                   "Must not be the source or inside it.")
@click.option("--resolution", default=None, metavar="N|WxH",
              help="Output size: N×N, a power of two (resized with LANCZOS), or WxH for non-square images (64x48: "
                   "--aspect 4:3 at 64). Default: the first image's size.")
@click.option("--transform", type=click.Choice(["center-crop", "center-crop-wide"]), default=None,
              help="For non-square images (an error without it): center-crop takes the largest centered square; "
                   "center-crop-wide takes a centered 2:1 box and pads it with black to a square.")
@click.option("--aspect", type=click.Choice(["1:1", "4:3", "3:4", "2:1", "1:2", "4:1", "1:4"]), default=None,
              metavar="W:H", help="Non-square output: the largest centered W:H box (4:3, 3:4, 2:1, 1:2, 4:1, 1:4), "
                                  "its longer side N (--resolution), e.g. 512x384 for 4:3.")
@click.option("--max-images", type=click.IntRange(1), default=None, metavar="N",
              help="Write at most N images.")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None,
              help="1 (grayscale) or 3 (RGB). Default: from the first image; grayscale sources stay 1 channel.")
@click.option("--background", callback=_background, default="255,255,255", show_default=True, metavar="R,G,B",
              help="Colour that transparent (RGBA, LA, palette) images are composited onto.")
@click.option("--on-error", type=click.Choice(["skip", "fail"]), default="skip", show_default=True,
              help="For a file that cannot be read: skip it (warned and listed at the end) or stop.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def dataset(source, dest, resolution, transform, aspect, max_images, channels, background, on_error, quiet):
    """Prepare a training dataset: PNGs of one size (square, or --aspect) (00000/img00000000.png ...) and
    dataset.json with the labels, in a folder or a .zip, in the layout of the StyleGAN2-ADA dataset tool."""
    import warnings

    from stylegan.data.builtin import BUILTIN_PREFIX, resolve_data
    from stylegan.data.tool import DatasetError, convert_dataset, parse_size

    if resolution is not None:
        try:
            resolution, size_aspect = parse_size(resolution)
        except DatasetError as e:
            raise click.BadParameter(str(e), param_hint="--resolution") from None
        if size_aspect is not None and aspect not in (None, size_aspect):
            raise click.UsageError(f"--resolution gives the aspect {size_aspect}, --aspect {aspect}: give one")
        aspect = aspect or size_aspect
    try:
        if source.startswith(BUILTIN_PREFIX):  # prepared (and cached) at its own size, then converted as a folder
            source = resolve_data(source, progress=not quiet)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped files are listed in the summary instead
            summary = convert_dataset(source, dest, resolution, transform=transform, max_images=max_images,
                                      channels=None if channels is None else int(channels),
                                      rgba_background=background, on_error=on_error, progress=not quiet,
                                      aspect=aspect)
    except (ValueError, ImportError) as e:  # an OSError (a full disk) is the command group's one line, naming the file
        raise click.ClickException(str(e)) from None
    click.echo(str(summary))

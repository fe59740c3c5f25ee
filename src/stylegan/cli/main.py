"""``stylegan`` command: a thin layer over the library (stylegan.tools, stylegan.checkpoint)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from stylegan.config import D_ARCHS, G_ARCHS, ConfigError
from stylegan.presets import PRESETS


from stylegan.cli.common import (_device, _int_list, _load_generator, _noise_mode, check_truncation,  # noqa: E402
                                 class_option, device_option, force_option, network_option, noise_option,
                                 outdir_option, refuse_existing, refuse_overwrite, trunc_class_option, trunc_option,
                                 warn)


class _Commands(click.Group):
    """The command group: an operating-system error (disk full, read-only or missing folder, permissions)
    or a feature's missing package (:mod:`stylegan.extras`) ends any command with one line saying what failed,
    never a traceback. Writes are atomic, so the files
    that were there before stay intact."""

    def invoke(self, ctx):
        from stylegan.extras import MissingExtra

        try:
            return super().invoke(ctx)
        except MissingExtra as e:  # a feature's package is not installed: the extra that installs it
            raise click.ClickException(str(e)) from None
        except OSError as e:
            what = f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e)
            raise click.ClickException(what) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="stylegan")
def main():
    """The StyleGAN family: ProGAN, StyleGAN and StyleGAN2 networks, and tools that use them."""
    from stylegan.cpu.memory import keep_freed_memory

    keep_freed_memory()


def _float_pair(ctx, param, value):
    """X,Y → (x, y) floats."""
    if value is None:
        return None
    try:
        x, y = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected two numbers X,Y, got {value!r}") from None
    return (x, y)


@main.command()
@network_option
@click.option("--seeds", default=None, callback=_int_list, metavar="LIST",
              help="Seeds, as a list of numbers and inclusive ranges: 0-7,12.")
@click.option("--projected-w", default=None, type=click.Path(dir_okay=False), metavar="NPZ",
              help="Render the ws of a projection (projected_w.npz from `stylegan project`) instead of seeds.")
@trunc_option
@click.option("--trunc-cutoff", type=click.IntRange(0), default=None, metavar="INT",
              help="Apply truncation to the first INT style layers only (default: all).")
@trunc_class_option
@noise_option
@class_option
@click.option("--grid/--no-grid", default=False, show_default=True, help="Also write all images as one grid.png.")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Images per forward pass.")
@click.option("--fp32", is_flag=True, help="Float32 throughout. By default a CPU with native bfloat16 runs the "
              "reduced-precision layers of wide networks (256+ channels) in bfloat16: faster, images within about "
              "0.01 of float32 on average.")
@click.option("--translate", default=None, callback=_float_pair, metavar="X,Y",
              help="StyleGAN3 networks: move the image by X,Y image widths (x right, y down).")
@click.option("--rotate", type=float, default=None, metavar="DEG",
              help="StyleGAN3 networks: rotate the image by DEG degrees, counterclockwise.")
@device_option
@outdir_option
@force_option
def generate(network, seeds, projected_w, truncation_psi, trunc_cutoff, truncation_class, noise_mode, class_idx, grid,
             batch_size, fp32, translate, rotate, device, outdir, force):
    """Generate one image per seed (seedNNNN.png, each written as soon as it is made), and optionally a grid;
    or render a projection."""
    from stylegan.tools.generate import check_grid, existing_outputs, write_images

    if (seeds is None) == (projected_w is None):
        raise click.UsageError("give exactly one of --seeds and --projected-w")
    if seeds is not None:
        try:
            check_grid(len(seeds), grid)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        refuse_existing(existing_outputs(outdir, seeds, grid), force)
    from stylegan.cpu.precision import auto_cpu_bf16

    dev = _device(device)
    G = _load_generator(network, dev)
    if not fp32:
        auto_cpu_bf16(dev, G.synthesis)
    noise_mode = _noise_mode(G, noise_mode)
    if translate is not None or rotate is not None:
        from stylegan.networks.stylegan3 import set_input_transform

        try:
            set_input_transform(G, translate or (0.0, 0.0), rotate or 0.0)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
    if projected_w is not None:
        _render_projection(G, projected_w, noise_mode, outdir, force)
        return
    check_truncation(G, trunc_cutoff, truncation_class, class_idx)
    try:
        n = write_images(G, seeds, outdir, grid=grid, truncation_psi=truncation_psi, truncation_cutoff=trunc_cutoff,
                         noise_mode=noise_mode, class_idx=class_idx, batch_size=batch_size, progress=True,
                         truncation_class=truncation_class)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {n} image(s) to {outdir}" + (" and grid.png" if grid else ""))


def _render_projection(G, projected_w, noise_mode, outdir, force):
    """generate --projected-w: projNN.png for each ws of a projection."""
    import torch

    from stylegan.images import save_png, to_uint8
    from stylegan.tools.projector import load_projected_w

    try:
        ws = load_projected_w(projected_w, G, warn=warn).to(next(G.parameters()).device)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    with torch.no_grad():
        images = to_uint8(G.synthesis(ws, noise_mode=noise_mode))
    refuse_overwrite([Path(outdir) / f"proj{i:02d}.png" for i in range(len(images))], force, inputs=[projected_w])
    for i, img in enumerate(images):
        save_png(img, Path(outdir) / f"proj{i:02d}.png")
    click.echo(f"wrote {len(images)} image(s) to {outdir}")


@main.command("style-mixing")
@network_option
@click.option("--rows", "row_seeds", required=True, callback=_int_list, metavar="LIST",
              help="Seeds of the rows (the images that keep their other styles).")
@click.option("--cols", "col_seeds", required=True, callback=_int_list, metavar="LIST",
              help="Seeds of the columns (the images that give the chosen styles).")
@click.option("--styles", "col_styles", default="0-6", show_default=True, callback=_int_list, metavar="LIST",
              help="Style layers taken from the column seed (0-3 coarse, 4-7 middle, 8+ fine at 1024²).")
@trunc_option
@trunc_class_option
@noise_option
@class_option
@device_option
@outdir_option
@force_option
def style_mixing(network, row_seeds, col_seeds, col_styles, truncation_psi, truncation_class, noise_mode, class_idx,
                 device, outdir, force):
    """The style-mixing figure: grid.png with the sources on its borders, and every cell as a PNG."""
    from stylegan.images import save_png
    from stylegan.tools.style_mixing import style_mixing_grid

    out = Path(outdir)
    cells = dict.fromkeys([(s, s) for s in [*row_seeds, *col_seeds]] + [(r, c) for r in row_seeds for c in col_seeds])
    refuse_overwrite([out / "grid.png"] + [out / f"{r}-{c}.png" for r, c in cells], force, inputs=[network])

    G = _load_generator(network, _device(device))
    noise_mode = _noise_mode(G, noise_mode)
    check_truncation(G, None, truncation_class, class_idx)
    try:
        grid, images = style_mixing_grid(G, row_seeds, col_seeds, col_styles, truncation_psi=truncation_psi,
                                         noise_mode=noise_mode, class_idx=class_idx, truncation_class=truncation_class)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    for (r, c), img in images.items():
        save_png(img, out / f"{r}-{c}.png")
    save_png(grid, out / "grid.png")
    click.echo(f"wrote {out / 'grid.png'} ({len(row_seeds)} rows x {len(col_seeds)} columns)")


def _layers_summary(g: dict) -> str:
    """info's layers line: the synthesis network's input, noise and resampling (its configuration ``g``)."""
    from stylegan.config import ALIAS_FREE_ARCHS

    if g["arch"] in ALIAS_FREE_ARCHS:
        return "style demod, Fourier-feature input, no noise, filtered leaky ReLU (alias-free)"
    return (f"style {g['style']}, {'constant' if g['const_input'] else 'latent'} input, noise "
            f"{'on' if g['noise'] else 'off'}, {g['resample']} resampling"
            + (", progressive growing" if g["growing"] else ""))


@main.command()
@network_option
@click.option("--json", "as_json", is_flag=True, help="Print the full summary as JSON.")
def info(network, as_json):
    """Describe a network file (any format --network takes) or a pretrained name: configuration, parameter
    counts, resolution, training progress."""
    from stylegan.checkpoint import CheckpointError
    from stylegan.loader import network_info

    try:
        s = network_info(network)  # any format, or a pretrained name
    except CheckpointError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    g, d = s["config"]["G"], s["config"]["D"]
    click.echo(f"checkpoint   {s['path']}")
    click.echo(f"cfg          {s['cfg']} ({s['family']})")
    click.echo(f"resolution   {s['resolution']}x{s['resolution']}, {s['img_channels']} channel(s), "
               f"{'conditional, ' + str(s['c_dim']) + ' classes' if s['c_dim'] else 'unconditional'}")
    click.echo(f"G            arch {g['arch']}, z {g['z_dim']}, w {g['w_dim']}, mapping {g['map_depth']} layers, "
               f"cbase {g['cbase']}, cmax {g['cmax']}, {s['num_ws']} ws")
    click.echo(f"layers       {_layers_summary(g)}")
    click.echo(f"D            arch {d['arch']}, cbase {d['cbase']}, cmax {d['cmax']}, mbstd group {d['mbstd_group']}")
    for name, n in s["networks"].items():
        click.echo(f"params {name:<6}{n:,}")
    extra = s["extra"]
    if "kimg" in extra:
        t = extra.get("training", {})
        click.echo(f"trained      {extra['kimg']:g} kimg, {t.get('cur_tick', '?')} ticks, gamma {extra.get('gamma', '?')}")
    opts = extra.get("options")
    if opts:
        click.echo(f"options      data {opts.get('data')}, batch {opts.get('batch')}, glr {opts.get('glr') or 'preset'}, "
                   f"dlr {opts.get('dlr') or 'preset'}, mirror {opts.get('mirror')}, cond {opts.get('cond')}")
    for k, v in extra.items():
        if k not in ("kimg", "training", "options", "gamma"):
            click.echo(f"{k:<12} {v}")


@main.command()
@click.option("--cfg", type=click.Choice(sorted(PRESETS)), default="stylegan2", show_default=True,
              help="Named configuration (stylegan2 = StyleGAN2 config F).")
@click.option("--resolution", type=int, default=None, help="Image resolution, a power of two 4-1024 [preset: 1024].")
@click.option("--channels", "img_channels", type=click.Choice(["1", "3"]), default=None,
              help="Image channels, 1 (grayscale) or 3 (RGB) [preset: 3].")
@click.option("--cbase", type=int, default=None, help="Channel base: channels = min(cbase / res, cmax) [32768].")
@click.option("--cmax", type=int, default=None, help="Maximum channels per layer [512].")
@click.option("--map-depth", type=int, default=None, help="Mapping network layers [8].")
@click.option("--z-dim", type=int, default=None, help="Latent z size [512].")
@click.option("--w-dim", type=int, default=None, help="Intermediate latent w size [512].")
@click.option("--cond", "c_dim", type=int, default=None, help="Number of classes for a conditional network [0].")
@click.option("--g-arch", type=click.Choice(G_ARCHS), default=None, help="Generator architecture [skip].")
@click.option("--d-arch", type=click.Choice(D_ARCHS), default=None, help="Discriminator architecture [resnet].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random initialization.")
@outdir_option
@force_option
def init(cfg, resolution, img_channels, cbase, cmax, map_depth, z_dim, w_dim, c_dim, g_arch, d_arch, seed, outdir,
         force):
    """Write a randomly initialized checkpoint (DIR/network-init.safetensors)."""
    from stylegan.checkpoint import save_checkpoint
    from stylegan.presets import make_config
    from stylegan.networks import build_networks, num_parameters

    try:
        config = make_config(cfg, resolution=resolution, img_channels=int(img_channels) if img_channels else None,
                             cbase=cbase, cmax=cmax, map_depth=map_depth, z_dim=z_dim, w_dim=w_dim, c_dim=c_dim,
                             g_arch=g_arch, d_arch=d_arch)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    refuse_overwrite([Path(outdir) / "network-init.safetensors"], force)
    nets = build_networks(config, seed=seed)
    path = save_checkpoint(Path(outdir) / "network-init.safetensors", config, nets, extra={"init_seed": seed})
    click.echo(f"wrote {path} (G {num_parameters(nets['G']):,} params, D {num_parameters(nets['D']):,} params)")


#: Subcommands defined in their own modules: (module, attribute or list of commands).
COMMAND_MODULES = [
    ("stylegan.cli.train", "train"),
    ("stylegan.cli.dataset", "dataset"),
    ("stylegan.cli.tools", "COMMANDS"),
    ("stylegan.cli.metrics", "metrics"),
    ("stylegan.cli.weights", "weights"),
    ("stylegan.cli.convert", "convert"),
    ("stylegan.cli.serve", "serve"),
    ("stylegan.cli.configs", "configs"),
    ("stylegan.cli.demo", "demo"),
    ("stylegan.cli.networks", "networks"),
]


def _register() -> None:
    import importlib

    for module_name, attr in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:  # a command module absent from this install; a broken one still fails
            if e.name != module_name:
                raise
            continue
        commands = getattr(module, attr)
        for command in commands if isinstance(commands, list) else [commands]:
            main.add_command(command)


_register()

if __name__ == "__main__":
    sys.exit(main())

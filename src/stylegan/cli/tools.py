"""Commands for the editing and analysis tools: project, video, noise-study, resolution-study,
reprojection-study. Each parses its options and calls stylegan.tools."""
from __future__ import annotations

import json
from pathlib import Path

import click

from stylegan.cli.common import (FiniteFloat, OutputPath, _device, _int_list, _load_generator, _noise_mode,
                               class_option, device_option, force_option, network_option, noise_option,
                               outdir_option, refuse_overwrite, trunc_option, warn)


def _distance(device):
    """LPIPS (VGG16, v0.1 heads) from the metrics package, or a clear error saying how to get its weights."""
    from stylegan.metrics.features import load_lpips

    try:
        return load_lpips(device=device)
    except (OSError, ValueError, RuntimeError) as e:  # WeightsError (a RuntimeError) says how to get the weights
        raise click.ClickException(str(e)) from None


def _network_file(network: str) -> Path:
    """The local file of a --network value (a path, a pretrained name, a URL: downloaded), or a one-line error."""
    from stylegan.checkpoint import CheckpointError
    from stylegan.loader import resolve

    try:
        return Path(resolve(network))
    except CheckpointError as e:
        raise click.ClickException(str(e)) from None


def _project_class(G, class_idx: int | None) -> None:
    """project --class: refused for an unconditional network or a class it does not have; left out for a
    conditional one, a note that the start is the average over all classes."""
    if class_idx is not None and not G.c_dim:
        raise click.UsageError("--class: this network is unconditional (it has no classes)")
    if class_idx is not None and not 0 <= class_idx < G.c_dim:
        raise click.BadParameter(f"{class_idx} is not a class of this network: give 0-{G.c_dim - 1}",
                                 param_hint="--class")
    if class_idx is None and G.c_dim:
        click.echo(f"note: conditional network ({G.c_dim} classes) without --class: the projection starts from "
                   "the average w of all classes; give --class K to start from class K's", err=True)


#: What `project` writes for each target (proj.mp4 with --save-video).
PROJECT_FILES = ("target.png", "proj.png", "projected_w.npz", "losses.json", "proj.mp4")


def _write_text(path: Path, text: str) -> None:
    from stylegan.checkpoint import atomic_write_bytes

    atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(text))


@click.command()
@network_option
@click.option("--target", "targets", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Image to project (center-cropped and resized to the network's size); repeatable.")
@click.option("--num-steps", type=click.IntRange(1), default=1000, show_default=True, help="Optimization steps.")
@click.option("--seed", type=int, default=303, show_default=True, help="Random seed.")
@click.option("--w-plus", is_flag=True, help="Optimize one w per layer (W+) instead of a single w.")
@click.option("--save-video", is_flag=True, help="Also write proj.mp4: target beside the optimization, step by step.")
@click.option("--report", is_flag=True, help="Print the final LPIPS distance of each target (for attribution).")
@click.option("--class", "class_idx", type=int, default=None, metavar="INT",
              help="Conditional networks: start from this class's average w (the class of the targets); without "
                   "it, from the average over all classes (a note says so).")
@device_option
@outdir_option
@force_option
def project(network, targets, num_steps, seed, w_plus, save_video, report, class_idx, device, outdir, force):
    """Project images into the latent space: writes target.png, proj.png, projected_w.npz and
    losses.json per target (in DIR, or DIR/<n>/ for several); with --force, a proj.mp4 of an earlier
    projection is removed unless --save-video writes a new one."""
    import numpy as np

    from stylegan.images import save_png, to_uint8
    from stylegan.tools.projector import ProjectionConfig, load_target, project as run, save_projected_w
    from stylegan.tools.video import write_video

    folders = [Path(outdir)] if len(targets) == 1 else [Path(outdir) / f"{n:02d}" for n in range(len(targets))]
    refuse_overwrite([f / name for f in folders for name in PROJECT_FILES], force, inputs=[network, *targets])
    dev = _device(device)
    G = _load_generator(network, dev)
    _project_class(G, class_idx)
    distance = _distance(dev)
    try:  # every target read before the first projection: a bad one is refused before anything is written
        loaded = [load_target(p, G.img_shape, G.img_channels) for p in targets]
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    for out, target_path, target in zip(folders, targets, loaded):
        proj = run(G, target.to(dev), distance, ProjectionConfig(num_steps=num_steps, w_plus=w_plus, seed=seed,
                                                                  class_idx=class_idx), keep_steps=save_video)
        out.mkdir(parents=True, exist_ok=True)
        save_png(to_uint8(target)[0], out / "target.png")
        save_png(to_uint8(proj.image)[0], out / "proj.png")
        save_projected_w(out / "projected_w.npz", proj, G)
        _write_text(out / "losses.json", json.dumps({"distance": proj.distances, "loss": proj.losses}))
        (out / "proj.mp4").unlink(missing_ok=True)  # never left beside a projection it does not show
        if save_video:
            import torch

            tgt = to_uint8(target)[0]

            def frames():
                with torch.no_grad():
                    for w in proj.w_steps:
                        ws = w.expand(1, G.num_ws, -1) if not w_plus else w
                        img = to_uint8(G.synthesis(ws, noise_mode="none", noise=proj.noise))[0]
                        f = np.concatenate([tgt, img], axis=1)
                        yield np.repeat(f, 3, axis=2) if f.shape[2] == 1 else f
            write_video(frames(), out / "proj.mp4", fps=60)
        msg = f"{target_path}: final LPIPS distance {proj.final_distance:.4f} -> {out}"
        click.echo(msg if report else f"wrote {out}")


@click.command()
@network_option
@click.option("--seeds", required=True, callback=_int_list, metavar="LIST",
              help="Seeds, dealt to the grid cells in order (a multiple of the number of cells).")
@click.option("--grid", default="1x1", show_default=True, metavar="COLSxROWS", help="Grid of simultaneous loops.")
@click.option("--w-frames", type=click.IntRange(1), default=60, show_default=True,
              help="Frames between two keyframes.")
@click.option("--space", type=click.Choice(["w", "z"]), default="w", show_default=True,
              help="Interpolate in W (lerp) or in Z (slerp).")
@click.option("--fps", type=click.IntRange(1), default=30, show_default=True, help="Frames per second.")
@click.option("--scale", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Enlarge every frame this many times, nearest neighbour (8: a 32x32 network gives 256x256).")
@click.option("--rotate-turns", type=FiniteFloat(-100, 100), default=0.0, show_default=True, metavar="N",
              help="StyleGAN3 networks: turn the images N times counterclockwise over the loop (whole numbers loop "
                   "seamlessly).")
@click.option("--translate-circle", type=FiniteFloat(0, 10), default=0.0, show_default=True, metavar="R",
              help="StyleGAN3 networks: move the images once around a circle of radius R image widths over the "
                   "loop, starting and ending in place.")
@trunc_option
@noise_option
@class_option
@device_option
@click.option("--output", required=True, type=OutputPath(dir_okay=False), help="out.mp4 or out.gif.")
@force_option
def video(network, seeds, grid, w_frames, space, fps, scale, rotate_turns, translate_circle, truncation_psi,
          noise_mode, class_idx, device, output, force):
    """A looping interpolation video between seeds; for StyleGAN3 networks, also turning and travelling."""
    from stylegan.tools.video import interpolation_frames, scale_frames, write_video

    try:
        cols, rows = (int(v) for v in grid.lower().split("x"))
        assert cols >= 1 and rows >= 1
    except (ValueError, AssertionError):
        raise click.BadParameter(f"expected COLSxROWS such as 2x2, got {grid!r}", param_hint="--grid") from None
    refuse_overwrite([output], force, inputs=[network])
    G = _load_generator(network, _device(device))
    noise_mode = _noise_mode(G, noise_mode)
    try:
        frames = interpolation_frames(G, seeds, (cols, rows), w_frames, space, truncation_psi, noise_mode,
                                      class_idx, progress=True, rotate_turns=rotate_turns,
                                      translate_circle=translate_circle)
        path = write_video(scale_frames(frames, scale), output, fps=fps)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {path}")


@click.command("noise-study")
@network_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latent.")
@click.option("--realizations", type=click.IntRange(2), default=100, show_default=True,
              help="Noise realizations for the standard deviation.")
@click.option("--split", type=int, default=None, help="Highest 'coarse' resolution [lower half of the levels].")
@trunc_option
@class_option
@device_option
@outdir_option
@force_option
def noise_study(network, seed, realizations, split, truncation_psi, class_idx, device, outdir, force):
    """The effect of noise: all / none / fine only / coarse only, and the per-pixel std (noise-study.png)."""
    from stylegan.tools.noise_study import noise_study as run, output_files

    refuse_overwrite(output_files(outdir), force, inputs=[network])
    G = _load_generator(network, _device(device))
    try:
        study = run(G, seed, truncation_psi, realizations, split, class_idx)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    figure = study.save(outdir)
    click.echo(f"wrote {figure} (all | none | fine | coarse | std); mean std {study.std.mean():.4f}")


@click.command("resolution-study")
@click.option("--network", default=None, metavar="PATH", help="One checkpoint.")
@click.option("--run", "run_dir", default=None, type=click.Path(file_okay=False), help="A training run folder: every snapshot.")
@click.option("--num", type=click.IntRange(2), default=64, show_default=True, help="Images per measurement.")
@device_option
@outdir_option
@force_option
def resolution_study(network, run_dir, num, device, outdir, force):
    """Contribution of each resolution to the output of a skip generator (StyleGAN2 Fig. 8): resolution-study.json,
    and with --run resolution-study.png, the shares over training (with --force, a plot of an earlier run is
    removed when one network is measured)."""
    from stylegan.tools.resolution_study import plot_over_training, relative_std
    from stylegan.training.snapshots import run_snapshots

    if bool(network) == bool(run_dir):
        raise click.UsageError("give exactly one of --network and --run")
    out = Path(outdir)
    # The plot too when only the table is written: an earlier run's plot is never left beside a table it does not show
    refuse_overwrite([out / "resolution-study.json", out / "resolution-study.png"], force, inputs=[network])
    dev = _device(device)
    paths = [(0.0, _network_file(network))] if network else run_snapshots(run_dir)
    if not paths:
        raise click.ClickException(f"{run_dir}: no network-snapshot-*.safetensors")
    rows = []
    for kimg, p in paths:
        try:
            rows.append((kimg, relative_std(_load_generator(str(p), dev), num=num)))
        except ValueError as e:
            raise click.ClickException(f"{p}: {e}") from None
        click.echo(f"{p.name}: " + ", ".join(f"{r}²: {100 * v:.1f}%" for r, v in sorted(rows[-1][1].items())))
    _write_text(out / "resolution-study.json", json.dumps([{"kimg": k, "share": {str(r): v for r, v in s.items()}}
                                                           for k, s in rows], indent=2))
    if run_dir:
        click.echo(f"wrote {plot_over_training(rows, out / 'resolution-study.png')}")
    else:
        (out / "resolution-study.png").unlink(missing_ok=True)


@click.command()
@network_option
@click.option("--method", type=click.Choice(["sefa", "ganspace", "labels"]), default="sefa", show_default=True,
              help="sefa: eigenvectors of the style affine weights (no sampling); ganspace: principal components of "
                   "sampled w; labels: the normal of a linear boundary in W for --label (a conditional network's "
                   "class, or the digit classifier's reading of an unconditional one-channel digit generator; "
                   "colour networks are refused).")
@click.option("--label", type=click.IntRange(0), default=None, help="labels: the class to separate from the rest.")
@click.option("--num", type=click.IntRange(1, 512), default=10, show_default=True, help="Directions to keep.")
@click.option("--layers", default=None, callback=_int_list, metavar="LIST",
              help="sefa: the style layers (ws indices, e.g. 0-5) whose weights to factorize [all].")
@click.option("--samples", type=click.IntRange(100, 10_000_000), default=10_000, show_default=True,
              help="ganspace and labels: latents sampled.")
@click.option("--out", "out_path", required=True, type=OutputPath(dir_okay=False), metavar="NPZ",
              help="Where to write the directions (.npz).")
@force_option
@device_option
def directions(network, method, label, num, layers, samples, out_path, force, device):
    """Latent directions of a network (SeFa or GANSpace), written to an .npz for `stylegan edit`."""
    from stylegan.tools.directions import compute_directions

    if not out_path.endswith(".npz"):
        raise click.UsageError("--out must end in .npz")
    refuse_overwrite([out_path], force, inputs=[network])
    G = _load_generator(network, _device(device))
    if layers is not None and method != "sefa":
        raise click.UsageError("--layers applies to sefa (edit --layers chooses where any direction is applied)")
    if (label is not None) != (method == "labels"):
        raise click.UsageError("--label goes with --method labels, and that method needs it")
    try:
        d = compute_directions(G, method, num, layers, samples, label=label)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    d.save(out_path)
    click.echo(f"wrote {len(d.directions)} {method} direction(s) to {out_path}"
               + (f"; the boundary's held-out accuracy is {d.accuracy:.1%}" if d.accuracy is not None else ""))


@click.command()
@network_option
@click.option("--seeds", default=None, callback=_int_list, metavar="LIST", help="Seeds to edit: 0-7,12.")
@click.option("--projected-w", default=None, type=click.Path(exists=True, dir_okay=False), metavar="NPZ",
              help="Edit the ws of a projection (projected_w.npz from `stylegan project`) instead of seeds.")
@click.option("--directions", "directions_path", required=True, type=click.Path(exists=True, dir_okay=False),
              metavar="NPZ", help="Directions from `stylegan directions`.")
@click.option("--index", type=click.IntRange(0), default=0, show_default=True, help="Which direction.")
@click.option("--strength", default="-3:3:7", show_default=True, metavar="A:B:N|LIST",
              help="Strengths in units of σ along the direction: START:STOP:COUNT or a list (-2,0,2).")
@click.option("--layers", default=None, callback=_int_list, metavar="LIST",
              help="Style layers (ws indices) to move, e.g. 0-5 [the directions' own, else all].")
@trunc_option
@class_option
@noise_option
@device_option
@outdir_option
@force_option
def edit(network, seeds, projected_w, directions_path, index, strength, layers, truncation_psi, class_idx, noise_mode,
         device, outdir, force):
    """A strip per seed (seedNNNN-dirK.png) or per projected image (projNN-dirK.png): the image moved along one
    latent direction."""
    from stylegan.images import make_grid, save_png, to_uint8
    from stylegan.tools.directions import Directions, edit as edit_strip, edit_ws, parse_strengths
    from stylegan.tools.projector import load_projected_w

    if (seeds is None) == (projected_w is None):
        raise click.UsageError("give exactly one of --seeds and --projected-w")

    try:
        strengths = parse_strengths(strength)
        d = Directions.load(directions_path)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    G = _load_generator(network, _device(device))
    noise_mode = _noise_mode(G, noise_mode)
    try:
        if projected_w is not None:
            ws = load_projected_w(projected_w, G, warn=warn)
            outs = [Path(outdir) / f"proj{i:02d}-dir{index}.png" for i in range(len(ws))]
            jobs = [lambda w=w: edit_ws(G, w[None], d, index, strengths, layers, noise_mode) for w in ws]
        else:
            outs = [Path(outdir) / f"seed{s:04d}-dir{index}.png" for s in seeds]
            jobs = [lambda s=s: edit_strip(G, s, d, index, strengths, layers, truncation_psi, class_idx, noise_mode)
                    for s in seeds]
        refuse_overwrite(outs, force, inputs=[directions_path, network, projected_w])
        for job, out in zip(jobs, outs):
            save_png(make_grid(to_uint8(job()), cols=len(strengths)), out)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {len(outs)} strip(s) of {len(strengths)} to {outdir}")


COMMANDS = [project, video, noise_study, resolution_study, directions, edit]


@click.command("reprojection-study")
@network_option
@click.option("--data", required=True, metavar="PATH|builtin:NAME", help="The network's training data.")
@click.option("--data-resolution", type=click.IntRange(1), default=None, help="Resolution of a built-in dataset.")
@click.option("--num", type=click.IntRange(1), default=16, show_default=True, help="Images of each kind.")
@click.option("--num-steps", type=click.IntRange(1), default=1000, show_default=True, help="Steps per projection.")
@device_option
@outdir_option
@force_option
def reprojection_study(network, data, data_resolution, num, num_steps, device, outdir, force):
    """Project generated and real images; write their LPIPS distances (JSON) and histograms (PNG)."""
    import torch

    from stylegan.data import ImageDataset, resolve_data
    from stylegan.tools.projector import ProjectionConfig
    from stylegan.tools.reprojection import plot_distances, reprojection_distances

    out = Path(outdir)
    refuse_overwrite([out / "reprojection.json", out / "reprojection.png"], force, inputs=[network])
    dev = _device(device)
    G = _load_generator(network, dev)
    distance = _distance(dev)
    try:
        ds = ImageDataset(resolve_data(data, data_resolution or G.resolution))  # a built-in: at the network's
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    (h, w), (gh, gw) = ds.image_shape[1:], G.img_shape
    if (h, w, ds.num_channels) != (gh, gw, G.img_channels):
        raise click.ClickException(f"the data is {w}x{h}x{ds.num_channels}, the network makes "
                                   f"{gw}x{gh}x{G.img_channels}")
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(ds), generator=g)[:num]
    reals = torch.stack([ds[int(i)][0] for i in idx]).float() / 127.5 - 1
    dist = reprojection_distances(G, reals, distance, num, ProjectionConfig(num_steps=num_steps), progress=True)
    _write_text(out / "reprojection.json", json.dumps(dist, indent=2))
    plot_distances(dist, out / "reprojection.png")
    for k, v in dist.items():
        click.echo(f"{k}: mean LPIPS {sum(v) / len(v):.4f} (min {min(v):.4f}, max {max(v):.4f}, n={len(v)})")
    click.echo(f"wrote {out / 'reprojection.png'}")


COMMANDS.append(reprojection_study)


@click.command()
@network_option
@click.option("--onnx", "onnx_path", required=True, type=OutputPath(dir_okay=False),
              help="Output file: the generator as one ONNX graph (z, psi and, if conditional, c in; the image out).")
@click.option("--noise", "noise_mode", type=click.Choice(["const", "none", "random"]), default="const", show_default=True,
              help="Noise inputs: const and none inside the graph; random: an input 'noise' [N, sum of res^2] "
                   "that the caller fills with standard normal values.")
@click.option("--transform-input", "movable", is_flag=True,
              help="StyleGAN3 networks: the graph also takes 'transform' [3, 3], the Fourier input's matrix "
                   "(translate and rotate the image).")
@force_option
def export(network, onnx_path, noise_mode, movable, force):
    """Export the generator to ONNX, then run it with onnxruntime and print its largest difference from
    PyTorch (relative to the largest pixel value)."""
    from stylegan.extras import require

    for module in ("onnx", "onnxscript", "onnxruntime"):
        require(module)
    try:
        from stylegan.tools.export import export_and_check
    except ModuleNotFoundError as e:
        raise click.ClickException(f"export needs onnx, onnxscript and onnxruntime ({e}); "
                                   "pip install onnx onnxscript onnxruntime") from None
    refuse_overwrite([onnx_path], force, inputs=[network])
    G = _load_generator(network, _device("cpu"))
    try:
        path, err = export_and_check(G, onnx_path, noise_mode, progress=True, movable=movable)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {path} ({path.stat().st_size / 2 ** 20:.1f} MB); onnxruntime vs PyTorch: max relative "
               f"difference {err:.2e}")
COMMANDS.append(export)

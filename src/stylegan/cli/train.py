"""``stylegan train``: parse the options, read a resumed snapshot, call :func:`stylegan.training.loop.launch`. The
options are generated from their declarations in :class:`stylegan.training.options.TrainingOptions`."""
from __future__ import annotations

import dataclasses

import click

from stylegan.cli.common import FiniteFloat, OutputPath
from stylegan.training.options import TrainingOptions, cli_name, preset_default_text


def _click_option(f: dataclasses.Field):
    """The click option of one declared training option: type and bounds, default, help (with the
    configuration's default for [preset] options)."""
    m = f.metadata
    name, kind = cli_name(f.name), m["kind"]
    bounds = dict(min=m["low"], max=m["high"], min_open=m["low_open"], max_open=m["high_open"])
    help_text = m["help"] + (" " + preset_default_text(m["recipe"]) if m["recipe"] else "")
    kw = dict(default=None if f.name == "data" else f.default, help=help_text, metavar=m["metavar"],
              show_default=f.default not in (None, "", False) and kind != "bool")
    if kind == "bool":
        decl = name if m["flag"] == "is_flag" else f"{name}/{m['flag'] or '--no-' + name[2:]}"
        return click.option(decl, f.name, is_flag=True, default=f.default, show_default=m["flag"] != "is_flag",
                            help=m["help"])
    if m["choices"] is not None:
        kw["type"] = click.Choice(m["choices"])
    elif kind == "int":
        kw["type"] = click.IntRange(m["low"], m["high"])
    elif kind == "float":
        kw["type"] = FiniteFloat(**bounds)
    elif kind == "pair":
        kw["type"] = (FiniteFloat(**bounds), FiniteFloat(**bounds))
    elif m["directory"]:
        kw["type"] = OutputPath(file_okay=False)
    return click.option(name, f.name, **kw)


def training_options(command):
    """Decorate ``command`` with one click option per declared training option, in declaration order."""
    for f in reversed(dataclasses.fields(TrainingOptions)):
        command = _click_option(f)(command)
    return command


def _gpus_as_procs(ctx: click.Context, kwargs: dict) -> None:
    """--gpus N, the authors' spelling: N local training processes (--procs N), each on its own CUDA device
    when training on CUDA. Refused when it contradicts --procs or exceeds the CUDA devices present."""
    gpus = kwargs.pop("gpus")
    if gpus is None:
        return
    source = click.core.ParameterSource
    if ctx.get_parameter_source("procs") != source.DEFAULT and kwargs["procs"] != gpus:
        raise click.UsageError(f"--gpus {gpus} and --procs {kwargs['procs']} disagree: give one of them")
    if gpus > 1 and kwargs["device"] in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available() and gpus > torch.cuda.device_count():
            raise click.UsageError(f"--gpus {gpus}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    kwargs["procs"] = gpus
    ctx.set_parameter_source("procs", source.COMMANDLINE)  # a resumed run takes it as a flag given now


@click.command(context_settings={"max_content_width": 100})
@training_options
@click.option("--gpus", type=click.IntRange(1), default=None, metavar="N",
              help="As the authors' train.py: N training processes on this machine, each on its own GPU (CUDA), "
                   "or sharing the CPU's cores; the same as --procs N.")
@click.pass_context
def train(ctx, **kwargs):
    """Train any configuration of the lineage. Works on one CPU, one GPU, or many under
    `torchrun --nproc-per-node N -m stylegan.cli.main train ...`.

    When resuming, the options saved in the snapshot are used, with the flags given now on top.
    """
    from stylegan.checkpoint import CheckpointError
    from stylegan.training.runs import read_resume
    from stylegan.training.loop import launch
    from stylegan.training.options import OptionsError, TrainingOptions

    _gpus_as_procs(ctx, kwargs)
    try:
        checkpoint = None
        if kwargs["resume"]:  # the snapshot is read here, once, and handed on
            given = {k: v for k, v in kwargs.items()
                     if ctx.get_parameter_source(k) != click.core.ParameterSource.DEFAULT and k != "resume"}
            opts, checkpoint = read_resume(kwargs["resume"], kwargs["outdir"], given)
        else:
            opts = TrainingOptions(**{**kwargs, "data": kwargs["data"] or ""})
        launch(opts, checkpoint)  # validated once, where the run is resolved (stylegan.training.run)
    except (OptionsError, CheckpointError) as e:
        raise click.UsageError(str(e)) from None
    except ValueError as e:  # dataset problems and the like, already phrased for users
        raise click.ClickException(str(e)) from None

"""``stylegan train``: parse the options, validate them, call :func:`stylegan.training.loop.train`."""
from __future__ import annotations

import click

from stylegan.cli.common import FiniteFloat

from stylegan.config import AUG_MODES, D_ARCHS, G_ARCHS, LOSSES, PRESETS
from stylegan.training.options import AUG_PIPELINES


@click.command(context_settings={"max_content_width": 100})
@click.option("--outdir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Parent folder of the run folders (NNNNN-desc).")
@click.option("--data", default=None, metavar="PATH|builtin:NAME",
              help="Prepared dataset (folder or zip from `stylegan dataset`) or a built-in dataset, e.g. builtin:mnist5k.")
@click.option("--data-resolution", type=int, default=None, help="Resolution of a built-in dataset [its default].")
@click.option("--cfg", type=click.Choice(sorted(PRESETS)), default="stylegan2", show_default=True,
              help="Named configuration: progan, stylegan-a..f, stylegan2-a..f (stylegan = stylegan-f, stylegan2 = "
                   "stylegan2-f); `stylegan configs` lists them. It sets the networks and the defaults of the "
                   "training options marked [preset].")
@click.option("--cbase", type=int, default=None, help="Channel base: channels = min(cbase / res, cmax) [32768].")
@click.option("--cmax", type=int, default=None, help="Maximum channels per layer [512].")
@click.option("--map-depth", type=int, default=None, help="Mapping network layers [8].")
@click.option("--g-arch", type=click.Choice(G_ARCHS), default=None, help="Generator architecture [skip].")
@click.option("--d-arch", type=click.Choice(D_ARCHS), default=None, help="Discriminator architecture [resnet].")
@click.option("--mbstd-group", type=click.IntRange(1), default=None,
              help="Minibatch-std group size of the discriminator [4].")
@click.option("--mbstd-channels", type=click.IntRange(0), default=None,
              help="Minibatch-std channels of the discriminator (must divide its channels at 4x4) [1].")
@click.option("--mbstd-gain", type=FiniteFloat(0, min_open=True), default=None,
              help="Multiplier of the minibatch-std feature, so that D sees a lack of variety early [1].")
@click.option("--cond/--no-cond", default=False, show_default=True, help="Train on the dataset's class labels.")
@click.option("--mirror/--no-mirror", default=False, show_default=True, help="Add x-flipped copies of the images.")
@click.option("--batch", type=click.IntRange(1), default=None,
              help="Total batch size, split across processes [preset: 32; 16 for small].")
@click.option("--loss", type=click.Choice(LOSSES), default=None,
              help="Adversarial loss: non-saturating logistic, or WGAN-GP with drift [preset: nonsaturating; "
                   "wgangp for progan, stylegan-a].")
@click.option("--gamma", type=FiniteFloat(0), default=None,
              help="R1 regularization weight [preset: heuristic 0.0002 * res^2 / batch; 0 for progan].")
@click.option("--r1-interval", type=click.IntRange(1), default=None,
              help="Lazy R1 every N minibatches; 1 = in every D step [preset: 16; 1 for StyleGAN, StyleGAN2 A/B].")
@click.option("--kimg", type=FiniteFloat(0, min_open=True), default=25000, show_default=True,
              help="Training length in thousands of real images.")
@click.option("--minutes", type=FiniteFloat(0, min_open=True), default=None,
              help="Budget of training time (training steps only, counted across resumes); stops at --kimg or "
                   "--minutes, whichever comes first.")
@click.option("--tick", type=FiniteFloat(0, min_open=True), default=4, show_default=True,
              help="Progress report interval in kimg.")
@click.option("--snap", type=click.IntRange(1), default=50, show_default=True,
              help="Snapshot (image grid and checkpoint) interval in ticks.")
@click.option("--glr", type=FiniteFloat(0, min_open=True), default=None,
              help="G learning rate [preset: 0.002; 0.001 for ProGAN and StyleGAN].")
@click.option("--dlr", type=FiniteFloat(0, min_open=True), default=None,
              help="D learning rate [preset: 0.002; 0.001 for ProGAN and StyleGAN].")
@click.option("--betas", type=(FiniteFloat(0, 1, max_open=True), FiniteFloat(0, 1, max_open=True)),
              default=None, metavar="B1 B2", help="Adam's beta1 and beta2 [preset: 0 0.99].")
@click.option("--mode-seeking", type=FiniteFloat(0), default=None,
              help="Weight of the mode-seeking penalty on G (MSGAN), against early collapse [preset: 0].")
@click.option("--train-noise", type=click.Choice(["random", "const", "none"]), default=None,
              help="The synthesis network's noise inputs while training [preset: random].")
@click.option("--ema-kimg", type=FiniteFloat(0), default=None,
              help="Half-life of the G EMA in kimg [preset: batch * 10 / 32].")
@click.option("--style-mixing", type=FiniteFloat(0, 1), default=None,
              help="Style-mixing regularization probability, e.g. 0, 0.5, 0.9, 1 [preset: 0.9; 0 for stylegan-a..e].")
@click.option("--pl-weight", type=FiniteFloat(0), default=None,
              help="Path-length regularization weight, 0 disables it [preset: 2; 0 before stylegan2-d].")
@click.option("--pl-interval", type=click.IntRange(1), default=None,
              help="Lazy path-length regularization every N minibatches; 1 = in every G step [preset: 4].")
@click.option("--start-res", type=int, default=None,
              help="Progressive growing: first resolution [preset: 4 for progan, 8 for StyleGAN / StyleGAN2 A-D].")
@click.option("--fade-kimg", type=FiniteFloat(0), default=None,
              help="Progressive growing: thousands of images over which a new resolution fades in [preset: 600].")
@click.option("--stable-kimg", type=FiniteFloat(0), default=None,
              help="Progressive growing: thousands of images of stable training per resolution [preset: 600].")
@click.option("--metrics", default="", metavar="LIST",
              help="Metrics computed on G_ema at every snapshot, e.g. fid10k_full,kid10k_full (none by default).")
@click.option("--aug", type=click.Choice(AUG_MODES), default=None,
              help="Discriminator augmentation: adaptive (ADA), fixed strength --p, none, or DiffAugment "
                   "[preset: ada].")
@click.option("--augpipe", type=click.Choice(AUG_PIPELINES), default="bgc", show_default=True,
              help="Augmentation pipeline: blit, geom(etric), color, filter, noise, cutout and combinations.")
@click.option("--p", type=FiniteFloat(0, 1), default=0.0, show_default=True,
              help="Augmentation strength: fixed with --aug fixed, initial with --aug ada.")
@click.option("--target", type=FiniteFloat(0, 1, min_open=True, max_open=True), default=0.6, show_default=True,
              help="ADA target for r_t = E[sign(D(real))].")
@click.option("--ada-kimg", type=FiniteFloat(0, min_open=True), default=500, show_default=True,
              help="ADA adjustment speed: kimg for p to move from 0 to 1.")
@click.option("--freezed", type=click.IntRange(0), default=0, show_default=True,
              help="Freeze the first N discriminator blocks, from the top resolution (transfer learning).")
@click.option("--fp32/--mixed", default=False, show_default=True,
              help="--fp32 disables mixed precision (float16 in the highest resolutions on CUDA).")
@click.option("--cpu-bf16", is_flag=True, help="On the CPU, run the reduced-precision layers in bfloat16.")
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True, help="Data-loading processes.")
@click.option("--procs", type=click.IntRange(1), default=1, show_default=True,
              help="Training processes on this machine, sharing its cores and splitting the batch (2 uses both "
                   "cores of a 2-core CPU better than 2 threads for small networks).")
@click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=0, show_default=True, help="Random seed.")
@click.option("--resume", default=None, metavar="PATH|latest",
              help="Continue from a snapshot, or from the newest snapshot in --outdir ('latest'); or fine-tune "
                   "from the authors' .pkl or a rosinality .pt (networks only).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--desc", default=None, help="Extra text for the run folder name.")
@click.option("--dry-run", is_flag=True, help="Print the options and networks and exit without training.")
@click.pass_context
def train(ctx, **kwargs):
    """Train any configuration of the lineage. Works on one CPU, one GPU, or many under
    `torchrun --nproc-per-node N -m stylegan.cli.main train ...`.

    When resuming, the options saved in the snapshot are used, with the flags given now on top.
    """
    from stylegan.checkpoint import CheckpointError
    from stylegan.training.loop import resume_options
    from stylegan.training.loop import train as run_training
    from stylegan.training.options import OptionsError, TrainingOptions

    try:
        if kwargs["resume"]:
            given = {k: v for k, v in kwargs.items()
                     if ctx.get_parameter_source(k) != click.core.ParameterSource.DEFAULT and k != "resume"}
            opts = resume_options(kwargs["resume"], kwargs["outdir"], given)
        else:
            opts = TrainingOptions(**{**kwargs, "data": kwargs["data"] or ""}).validate()
        import os

        from stylegan.training.distributed import launch_local

        if opts.procs > 1 and "WORLD_SIZE" not in os.environ:
            launch_local(run_training, (opts,), opts.procs)
        else:
            run_training(opts)
    except (OptionsError, CheckpointError) as e:
        raise click.UsageError(str(e)) from None
    except ValueError as e:  # dataset problems and the like, already phrased for users
        raise click.ClickException(str(e)) from None

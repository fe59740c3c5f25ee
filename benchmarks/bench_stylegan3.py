"""StyleGAN3 on the CPU, side by side with the authors' code (NVlabs/stylegan3, their reference operations).

``--peer PATH`` names a checkout of the authors' stylegan3 repository; their modules are imported from it at
run time (nothing of theirs lives here). Their code needs scipy, ours does not: run this script with a Python
that has both their dependencies and ours, e.g.

    PYTHONPATH=src OMP_NUM_THREADS=1 /path/to/their-venv/bin/python benchmarks/bench_stylegan3.py \\
        --peer /path/to/stylegan3 --threads 1

What is measured, each on both sides with the same network: their ``Generator`` (and StyleGAN2
``Discriminator``) is built in float32 (``num_fp16_res=0``, their conv clamp 256), its state dict is carried
into ours through our importer (``stylegan.interop``), and the outputs are checked to agree within 1e-4 of the
largest value before anything is timed.

- G forward without gradients, img/s: StyleGAN3-T at 32² and 64², StyleGAN3-R at 32² (the "small" widths
  below; R doubles the channels as the authors' R configuration does).
- A training step, s/img, StyleGAN3-T at 32²: the generator pass (G forward, D, backward of the non-saturating
  loss softplus(-D(G(z))) into G) and the discriminator pass (G forward without gradients, D on fakes and
  reals, backward of softplus(D(fake)) + softplus(-D(real)) into D); no R1, no EMA.
- Peak memory of one G forward (no gradients) at 256², batch 1, StyleGAN3-T and R at the authors' default
  widths (cbase 32768, cmax 512; R doubled): each side in a fresh subprocess that builds the network, resets
  the kernel's resident-set high-water mark (``echo 5 > /proc/self/clear_refs``), reads VmRSS, runs the
  forward and reads VmHWM; the growth is VmHWM − VmRSS. Both children use glibc's default malloc (large
  blocks are mmapped and returned when freed), so the high-water mark follows the live tensors.

Times are interleaved (ours, theirs, ours, theirs, ...) after one untimed call of each; the median and the
range over ``--reps`` pairs are printed, with our speed as a multiple of theirs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import Peer  # noqa: E402

from stylegan.interop.nvlabs import config_from_nvlabs_stylegan3, discriminator_state_from_nvlabs  # noqa: E402
from stylegan.interop.nvlabs_stylegan3 import generator_state_from_nvlabs_stylegan3  # noqa: E402
from stylegan.networks import build_networks  # noqa: E402

#: What a checkout of the authors' stylegan3 holds (a trailing slash: a folder).
PEER_LAYOUT = ("training/networks_stylegan3.py", "training/networks_stylegan2.py",
               "torch_utils/ops/filtered_lrelu.py", "dnnlib/")

SMALL = dict(channel_base=8192, channel_max=256)
DEFAULT = dict(channel_base=32768, channel_max=512)  # the authors' train.py defaults
#: name: (arch, resolution, widths, batch)
FORWARD = {"T32": ("t", 32, SMALL, 8), "T64": ("t", 64, SMALL, 4), "R32": ("r", 32, SMALL, 8)}
TRAIN = {"T32": ("t", 32, SMALL, 4)}
MEMORY = {"T256": ("t", 256, DEFAULT, 1), "R256": ("r", 256, DEFAULT, 1)}


def g_kwargs(arch: str, res: int, widths: dict) -> dict:
    """The authors' ``Generator`` arguments for StyleGAN3-T/R as their train.py builds them (2 mapping layers;
    R: 1×1 convolutions, radial filters, channels doubled), float32."""
    k = dict(z_dim=512, w_dim=512, c_dim=0, img_resolution=res, img_channels=3, mapping_kwargs={"num_layers": 2},
             channel_base=widths["channel_base"], channel_max=widths["channel_max"], num_fp16_res=0, conv_clamp=256)
    if arch == "r":
        k.update(conv_kernel=1, use_radial_filters=True, channel_base=2 * k["channel_base"],
                 channel_max=2 * k["channel_max"])
    return k


def d_kwargs(res: int, widths: dict) -> dict:
    return dict(c_dim=0, img_resolution=res, img_channels=3, channel_base=widths["channel_base"],
                channel_max=widths["channel_max"], architecture="resnet", num_fp16_res=0, conv_clamp=256,
                mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": 4})


def setting_text(arch: str, res: int, widths: dict, batch: int) -> str:
    k = g_kwargs(arch, res, widths)
    return f"StyleGAN3-{arch.upper()} {res}², cbase {k['channel_base']}, cmax {k['channel_max']}, batch {batch}"


class Peer3(Peer):
    """The authors' stylegan3 checkout: ``training.networks_stylegan3`` and ``training.networks_stylegan2``."""

    MODULES = {"sg3": "training.networks_stylegan3", "sg2": "training.networks_stylegan2"}


def check_peer(path: str, flag: str = "--peer") -> Path:
    """The checkout's absolute path; anything else ends the program with one error line and exit status 2."""
    root = Path(path)
    missing = [e for e in PEER_LAYOUT if not ((root / e).is_dir() if e.endswith("/") else (root / e).is_file())]
    if not root.is_dir() or missing:
        why = "no such folder" if not root.is_dir() else f"missing {', '.join(missing)}"
        print(f"error: {flag} {path}: not a checkout of the authors' stylegan3 ({why})", file=sys.stderr, flush=True)
        raise SystemExit(2)
    return root.resolve()


def build_pair(peer: Peer3, arch: str, res: int, widths: dict, with_d: bool, seed: int = 0):
    """Their G (and D), and ours with their weights carried across by our importer."""
    gk, dk = g_kwargs(arch, res, widths), (d_kwargs(res, widths) if with_d else None)
    torch.manual_seed(seed)
    tG = peer.sg3.Generator(**gk)
    tD = peer.sg2.Discriminator(**dk) if with_d else None
    nets = build_networks(config_from_nvlabs_stylegan3(gk, dk), seed=seed)
    oG = nets["G"]
    oG.load_state_dict(generator_state_from_nvlabs_stylegan3(tG.state_dict()))
    oD = None
    if with_d:
        oD = nets["D"]
        oD.load_state_dict(discriminator_state_from_nvlabs(tD.state_dict()))
    return (oG, oD), (tG, tD)


def check_same(name: str, ours: torch.Tensor, theirs: torch.Tensor, rel: float = 1e-4) -> float:
    err = (ours - theirs).abs().max().item() / theirs.abs().max().item()
    if not err <= rel:
        print(f"error: {name}: ours and theirs differ by {err:.2e} of the largest value (> {rel}); not timing",
              file=sys.stderr)
        raise SystemExit(1)
    return err


def interleaved(fns, reps: int) -> list[list[float]]:
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return times


def bench_forward(peer: Peer3, name: str, reps: int) -> dict:
    arch, res, widths, batch = FORWARD[name]
    (oG, _), (tG, _) = build_pair(peer, arch, res, widths, with_d=False)
    oG.eval(), tG.eval()
    z = torch.randn(batch, 512, generator=torch.Generator().manual_seed(1))
    c0 = torch.zeros(batch, 0)

    def ours():
        with torch.no_grad():
            return oG(z, None)

    def theirs():
        with torch.no_grad():
            return tG(z, c0)
    err = check_same(name, ours(), theirs())
    to, tt = interleaved([ours, theirs], reps)
    return dict(kind="forward", name=name, setting=setting_text(arch, res, widths, batch), batch=batch,
                rel_err=err, ours=to, theirs=tt)


def bench_train(peer: Peer3, name: str, reps: int) -> dict:
    arch, res, widths, batch = TRAIN[name]
    (oG, oD), (tG, tD) = build_pair(peer, arch, res, widths, with_d=True)
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(batch, 512, generator=gen)
    real = torch.randn(batch, 3, res, res, generator=gen).clamp(-1, 1)
    c0 = torch.zeros(batch, 0)
    with torch.no_grad():
        err = check_same(name + " G", oG.eval()(z, None), tG.eval()(z, c0))
        err = max(err, check_same(name + " D", oD.eval()(real, None), tD.eval()(real, c0)))

    to, tt = interleaved([lambda: train_step(oG, oD, z, real, None), lambda: train_step(tG, tD, z, real, c0)], reps)
    return dict(kind="train", name=name, setting=setting_text(arch, res, widths, batch), batch=batch,
                rel_err=err, ours=to, theirs=tt)


def train_step(G, D, z: torch.Tensor, real: torch.Tensor, c) -> None:
    """The main phase of a training step, without optimizer: the generator pass (G forward, D, backward of
    softplus(-D(G(z))) into G), then the discriminator pass (G forward without gradients, D on fakes and reals,
    backward of softplus(D(fake)) + softplus(-D(real)) into D)."""
    G.train(), D.train()
    G.requires_grad_(True), D.requires_grad_(False)
    F.softplus(-D(G(z, c), c)).sum().backward()  # generator pass
    G.requires_grad_(False), D.requires_grad_(True)
    with torch.no_grad():
        fake = G(z, c)
    (F.softplus(D(fake, c)).sum() + F.softplus(-D(real, c)).sum()).backward()  # discriminator pass
    for p in list(G.parameters()) + list(D.parameters()):
        p.grad = None


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def memory_child(side: str, name: str, peer_root: str | None) -> None:
    """In a fresh process: build one side's G, reset the high-water mark, one forward; print JSON."""
    arch, res, widths, batch = MEMORY[name]
    gk = g_kwargs(arch, res, widths)
    torch.manual_seed(0)
    if side == "theirs":
        peer = Peer3(Path(peer_root))
        if peer.error:
            raise SystemExit(1)
        G, c = peer.sg3.Generator(**gk).eval(), torch.zeros(batch, 0)
    else:
        G, c = build_networks(config_from_nvlabs_stylegan3(gk), seed=0)["G"].eval(), None
    z = torch.randn(batch, 512)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    with torch.no_grad():
        img = G(z, c)
    after = _status("VmHWM")
    print(json.dumps(dict(side=side, name=name, rss_before=before, hwm=after, growth=after - before,
                          shape=list(img.shape))))


def bench_memory(peer_root: Path, name: str, threads: int) -> dict:
    arch, res, widths, batch = MEMORY[name]
    out = {}
    env = {**os.environ, "STYLEGAN_CPU_MALLOC": "system"}
    for side in ("ours", "theirs"):
        r = subprocess.run([sys.executable, __file__, "--memory-child", f"{side}:{name}", "--peer", str(peer_root),
                            "--threads", str(threads)], capture_output=True, text=True, env=env)
        if r.returncode:
            print(r.stderr, file=sys.stderr)
            raise SystemExit(f"error: the {side} memory child failed")
        out[side] = json.loads(r.stdout.strip().splitlines()[-1])
    return dict(kind="memory", name=name, setting=setting_text(arch, res, widths, batch), batch=batch, **out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", required=True, metavar="PATH", help="a checkout of the authors' stylegan3")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5, help="interleaved pairs per row (at least 5 for the table)")
    ap.add_argument("--forward", default=",".join(FORWARD), help=f"of {', '.join(FORWARD)} ('' for none)")
    ap.add_argument("--train", default=",".join(TRAIN), help=f"of {', '.join(TRAIN)} ('' for none)")
    ap.add_argument("--memory", default=",".join(MEMORY), help=f"of {', '.join(MEMORY)} ('' for none)")
    ap.add_argument("--json", default="bench-stylegan3.json", help="also write the results here ('' to skip)")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        side, name = args.memory_child.split(":")
        memory_child(side, name, args.peer)
        return
    root = check_peer(args.peer)
    peer = Peer3(root)
    if peer.error:
        raise SystemExit(1)
    from stylegan.cpu.memory import keep_freed_memory
    keep_freed_memory()  # as our trainer and command line do; their code runs in the same process with it
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {args.threads} thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"peer: {root} (their reference ops on the CPU), {args.reps} interleaved pairs per row")
    rows = []
    pick = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    for name in pick(args.forward):
        r = bench_forward(peer, name, args.reps)
        rows.append(r)
        _print_speed(r, "img/s")
    for name in pick(args.train):
        r = bench_train(peer, name, args.reps)
        rows.append(r)
        _print_speed(r, "s/img")
    for name in pick(args.memory):
        r = bench_memory(root, name, args.threads)
        rows.append(r)
        o, t = r["ours"]["growth"] / 2 ** 20, r["theirs"]["growth"] / 2 ** 20
        print(f"memory  {r['setting']:<46} peak growth ours {o:8.1f} MiB, theirs {t:8.1f} MiB, "
              f"ours/theirs {o / t:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(threads=args.threads, peer=str(root), rows=rows), indent=2))
        print(f"wrote {args.json}")


def _print_speed(r: dict, unit: str) -> None:
    b = r["batch"]
    if unit == "img/s":
        f = lambda ts: (b / statistics.median(ts), b / max(ts), b / min(ts))  # noqa: E731
    else:
        f = lambda ts: (statistics.median(ts) / b, min(ts) / b, max(ts) / b)  # noqa: E731
    ratio = statistics.median(r["theirs"]) / statistics.median(r["ours"])  # above 1: ours is faster
    (om, olo, ohi), (tm, tlo, thi) = f(r["ours"]), f(r["theirs"])
    r.update(ours_median=om, theirs_median=tm, ours_vs_theirs=ratio)
    print(f"{r['kind']:<8}{r['setting']:<46} {unit} ours {om:.4g} [{olo:.4g}-{ohi:.4g}], "
          f"theirs {tm:.4g} [{tlo:.4g}-{thi:.4g}], ours {ratio:.2f}x theirs (max rel diff {r['rel_err']:.1e})",
          flush=True)


if __name__ == "__main__":
    main()

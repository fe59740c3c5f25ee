"""Serving speed: what a visitor of `stylegan serve` waits for, and what the static site's graph takes per image.

For each network (the packaged mnist32 and twemoji32 by default; `--network PATH` adds a checkpoint), each thread
count and each synthesis path of `stylegan serve --synthesis` (eager float32; compiled: the synthesis network
compiled by torch.compile for one image; onnx: exported to ONNX for one image and run by onnxruntime), after
warm-up calls:

- image: the Renderer's ``image(seed, psi=0.7)`` call (mapping, synthesis, PNG encoding) at batch 1, over
  `--requests` distinct seeds; median and 90th percentile in ms;
- http image: ``GET /api/image?seed=...&psi=0.7`` through the real application served by uvicorn on a loopback
  port (stylegan.serve.background), one keep-alive connection, distinct seeds (no cache hit), end to end;
- mix: ``mix(seed_a, seed_b, crossover=num_ws // 2)``; interp: ``interp(seed_a, seed_b, steps=8)`` (the page's
  default strip), each over distinct seed pairs;
- site image: the static site's ONNX graph (`stylegan serve --static`, with the page's inputs for a seed:
  stylegan.serve.static_site.site_inputs) run by onnxruntime on this CPU at batch 1, with `threads` intra-op
  threads; median, p90 and images/s. (The browser runs the same graph in WebAssembly, one thread: slower than
  native onnxruntime; docs/web.md has browser figures.) Once per network: the seconds `write_static_site` takes
  (ONNX export and its check, files); for the compiled and onnx paths, the seconds building them takes at
  start-up.

The synthesis paths are timed interleaved request by request (eager, compiled, onnx, eager, ...), so that a
slower stretch of the machine falls on all alike; each faster path's image row also carries how far its images
are from eager's (max |diff| in [-1, 1] units over the timed seeds, and the largest uint8 pixel difference of
the PNGs).

Run with `make bench-serve` (`python benchmarks/bench_serve.py --threads 1,2 --json bench-serve.json`); about two
minutes for both packaged networks on a 2-core machine.
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import setup_threads  # noqa: E402

PACKAGED = ("mnist32", "twemoji32")
PATHS = ("eager", "compiled", "onnx")
PSI = 0.7
STEPS = 8  # the page's interpolation strip (create_app: min(8, max_steps))


def p90(ts: list[float]) -> float:
    """The 90th percentile (nearest rank) of ``ts``."""
    s = sorted(ts)
    return s[min(len(s) - 1, max(0, int(np.ceil(0.9 * len(s))) - 1))]


def row(network: str, threads: int, path: str, what: str, ts: list[float], **extra) -> dict:
    return dict(network=network, threads=threads, path=path, what=what, n=len(ts),
                median_ms=1e3 * statistics.median(ts), p90_ms=1e3 * p90(ts), **extra)


def interleaved(fns: dict[str, callable], n: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of ``fns[path](i)`` for i in [0, n), the paths timed in turn for every i, after ``warmup``
    untimed calls of each (with arguments -1, -2, ... so that no timed argument was seen before)."""
    for fn in fns.values():
        for i in range(warmup):
            fn(-1 - i)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(n):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn(i)
            times[k].append(time.perf_counter() - t)
    return times


def png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data))).astype(np.int16)


def bench_renderers(name: str, G, threads: int, paths, requests: int, warmup: int, with_http: bool) -> list[dict]:
    """The image, mix, interp (and http image) rows of one network at one thread count, ``paths`` interleaved."""
    from stylegan.serve import create_app
    from stylegan.serve.render import Renderer

    c = 0 if G.c_dim else None
    renderers, extra = {}, {}
    for path in paths:
        if path == "compiled":  # its kernels specialize on the thread count: compile again for this one
            torch._dynamo.reset()
        t = time.perf_counter()
        r = Renderer(G, synthesis=path)
        seconds = time.perf_counter() - t
        if r.synthesis != path:
            print(f"  {name}: {path} synthesis unavailable here, {r.synthesis} instead; its rows are skipped",
                  flush=True)
            continue
        renderers[path] = r
        extra[path] = {"startup_s": seconds} if path != "eager" else {}
    seed0 = 1000  # distinct seeds per row; the same seeds for every path
    rows = []

    def image_fn(r):
        return lambda i: r.image(seed0 + i, PSI, class_idx=c)
    times = interleaved({p: image_fn(r) for p, r in renderers.items()}, requests, warmup)
    if "eager" in renderers:  # how far the other paths' images are from eager's, on the timed seeds
        for p, r in renderers.items():
            if p == "eager":
                continue
            md = px = 0.0
            with torch.inference_mode():
                for i in range(requests):
                    ws = renderers["eager"]._ws([seed0 + i], PSI, c)
                    a = G.synthesis(ws, noise_mode="const")
                    b = r.fast(ws) if r.fast is not None else a
                    md = max(md, float((a - b).abs().max()))
                    px = max(px, float(np.abs(png_pixels(renderers["eager"].image(seed0 + i, PSI, class_idx=c))
                                                - png_pixels(r.image(seed0 + i, PSI, class_idx=c))).max()))
            extra[p].update(max_abs_diff_vs_eager=md, max_uint8_diff_vs_eager=int(px))
    rows += [row(name, threads, p, "image", ts, **extra[p]) for p, ts in times.items()]

    half = max(2, requests // 2)
    times = interleaved({p: (lambda r: lambda i: r.mix(seed0 + 2 * i, seed0 + 2 * i + 1, G.num_ws // 2, PSI,
                                                       class_idx=c))(r) for p, r in renderers.items()},
                        half, max(1, warmup // 2))
    rows += [row(name, threads, p, "mix", ts) for p, ts in times.items()]
    quarter = max(2, requests // 4)
    times = interleaved({p: (lambda r: lambda i: r.interp(seed0 + 2 * i, seed0 + 2 * i + 1, STEPS, PSI,
                                                          class_idx=c))(r) for p, r in renderers.items()},
                        quarter, 1)
    rows += [row(name, threads, p, f"interp {STEPS}", ts) for p, ts in times.items()]

    if with_http:
        from stylegan.serve.background import BackgroundServer

        servers, conns = {}, {}
        try:
            for p in renderers:
                app = create_app(G, name=name, sliders=0, synthesis=p)
                servers[p] = BackgroundServer(app).start()
                conns[p] = http.client.HTTPConnection("127.0.0.1", servers[p].port, timeout=60)

            def get(p):
                def fn(i):
                    conns[p].request("GET", f"/api/image?seed={seed0 + 5000 + i}&psi={PSI}"
                                     + (f"&class={c}" if c is not None else ""))
                    resp = conns[p].getresponse()
                    body = resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"/api/image answered {resp.status}: {body[:200]!r}")
                return fn
            times = interleaved({p: get(p) for p in renderers}, requests, warmup)
            rows += [row(name, threads, p, "http image", ts) for p, ts in times.items()]
        finally:
            for conn in conns.values():
                conn.close()
            for s in servers.values():
                s.stop()
    return rows


def build_site(G, folder: Path) -> tuple[float, Path]:
    """Seconds to write the static site of ``G`` into ``folder`` (onnxruntime-web replaced by empty stand-in
    files: copying three files is not what is measured), and its model.onnx."""
    from stylegan.serve.static_site import ORT_WEB_FILES, write_static_site

    ort = folder / "ort-stand-in"
    ort.mkdir(parents=True)
    for f in ORT_WEB_FILES:
        (ort / f).write_bytes(b"")
    t = time.perf_counter()
    write_static_site(G, folder / "site", title="bench", ort_web=ort)
    return time.perf_counter() - t, folder / "site" / "model.onnx"


def bench_site(name: str, G, model: Path, threads: int, requests: int, warmup: int, build_s: float) -> dict:
    """The static site's graph, one image per run, the page's inputs for distinct seeds (noise const)."""
    import onnxruntime

    from stylegan.serve.static_site import site_inputs

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    c = 0 if G.c_dim else None
    inputs = [site_inputs(G, 2000 + i, PSI, "const", c) for i in range(-warmup, requests)]
    for x in inputs[:warmup]:
        session.run(["img"], x)
    ts = []
    t_all = time.perf_counter()
    for x in inputs[warmup:]:
        t = time.perf_counter()
        session.run(["img"], x)
        ts.append(time.perf_counter() - t)
    total = time.perf_counter() - t_all
    return row(name, threads, "onnxruntime", "site image", ts, images_per_s=len(ts) / total, site_build_s=build_s)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", default=",".join(PACKAGED),
                    help="comma-separated pretrained names or checkpoint paths ('' for none)")
    ap.add_argument("--network", action="append", default=[], metavar="PATH", help="one more network (repeatable)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--paths", default=",".join(PATHS), help=f"synthesis paths, of {', '.join(PATHS)}")
    ap.add_argument("--requests", type=int, default=40, help="timed requests per row (mix: half, interp: a quarter)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed requests first, per path")
    ap.add_argument("--no-http", action="store_true", help="skip the end-to-end HTTP rows")
    ap.add_argument("--no-site", action="store_true", help="skip the static site rows")
    ap.add_argument("--json", default="bench-serve.json", help="also write the results here ('' to skip)")
    args = ap.parse_args(argv)
    from stylegan.loader import load

    names = [n for n in args.networks.split(",") if n] + args.network
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in PATHS]
    if unknown or not names:
        ap.error(f"--paths: unknown {', '.join(unknown)}" if unknown else "no network given")
    thread_counts = [int(t) for t in args.threads.split(",")]
    site = not args.no_site
    if site:
        try:
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as e:
            print(f"static site rows skipped: {e} (pip install onnx onnxscript onnxruntime)")
            site = False
    setup_threads(thread_counts[0])  # once: the interop pool is fixed for the process
    load_before = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, threads {args.threads}, {args.requests} requests per row after {args.warmup} "
          f"warm-up; load average {load_before[0]:.2f} (a busy machine slows every row, two threads most)")
    print(f"{'network':<12}{'thr':>4} {'path':<12}{'what':<12}{'median ms':>10}{'p90 ms':>9}  notes", flush=True)
    rows = []
    for name in names:
        G = load(name)
        label = Path(name).stem if Path(name).suffix else name
        build_s = model = None
        with tempfile.TemporaryDirectory() as tmp:
            torch.set_num_threads(thread_counts[0])
            if site:
                build_s, model = build_site(G, Path(tmp))
            for threads in thread_counts:
                torch.set_num_threads(threads)
                new = bench_renderers(label, G, threads, paths, args.requests, args.warmup, not args.no_http)
                if site:
                    new.append(bench_site(label, G, model, threads, args.requests, args.warmup, build_s))
                for r in new:
                    print_row(r, rows)
                    rows.append(r)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(torch=torch.__version__, machine=platform.processor()
                                                   or platform.machine(), cpus=os.cpu_count(), psi=PSI,
                                                   load_average_before=load_before[0],
                                                   load_average_after=os.getloadavg()[0], rows=rows), indent=2))
        print(f"wrote {args.json}")


def print_row(r: dict, previous: list[dict]) -> None:
    notes = []
    if "startup_s" in r:
        notes.append(f"built at start-up in {r['startup_s']:.1f} s")
    if "max_abs_diff_vs_eager" in r:
        notes.append(f"vs eager: max |diff| {r['max_abs_diff_vs_eager']:.1e}, uint8 {r['max_uint8_diff_vs_eager']}")
    eager = [e for e in previous if e["network"] == r["network"] and e["threads"] == r["threads"]
             and e["what"] == r["what"] and e["path"] == "eager"]
    if r["path"] != "eager" and eager and r["what"] != "site image":
        notes.append(f"{eager[0]['median_ms'] / r['median_ms']:.2f}x eager")
    if "images_per_s" in r:
        notes.append(f"{r['images_per_s']:.0f} img/s; site written in {r['site_build_s']:.1f} s")
    print(f"{r['network']:<12}{r['threads']:>4} {r['path']:<12}{r['what']:<12}{r['median_ms']:>10.2f}"
          f"{r['p90_ms']:>9.2f}  {'; '.join(notes)}", flush=True)


if __name__ == "__main__":
    main()

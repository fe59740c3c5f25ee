"""Load test of `stylegan serve` on this machine: N concurrent clients for T seconds, loopback only.

Starts the server as a subprocess (``--network PATH|NAME``) on a free 127.0.0.1 port, or targets a running
one (``--url http://127.0.0.1:PORT/``, ``--pid`` to read its memory). Each client is a thread with its own
keep-alive ``http.client`` connection that requests random seeds from /api/image, /api/mix and /api/interp
(weights ``--mix``). Bounded in time (``--duration``) and count (``--max-requests``).

Reports requests/s, p50/p90/p99 latency (all and per endpoint), status counts (503 = the queue bound at work,
counted apart; anything else non-200 is an error), and the server's resident memory before, at the peak
(VmHWM) and after. Example::

    stylegan init --cfg stylegan2 --resolution 32 --channels 1 --cbase 2048 --cmax 64 --map-depth 2 \\
        --seed 0 --outdir /tmp/servenet
    python benchmarks/load_test.py --network /tmp/servenet/network-init.safetensors --clients 20 --duration 30
"""
from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from urllib.parse import urlsplit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_memory(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, MiB (Linux /proc)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def wait_ready(base: str, timeout: float, proc: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode} during start-up")
        try:
            with urllib.request.urlopen(base + "api/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"the server at {base} did not answer within {timeout:.0f} s")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, round(q / 100 * (len(v) - 1))))
    return v[k]


class Client(threading.Thread):
    def __init__(self, host, port, stop_at, budget, weights, info, rng_seed, results, lock, backoff):
        super().__init__(daemon=True)
        self.host, self.port, self.stop_at, self.budget = host, port, stop_at, budget
        self.weights, self.info, self.rng = weights, info, random.Random(rng_seed)
        self.results, self.lock, self.backoff = results, lock, backoff
        self.conn = None

    def _path(self) -> tuple[str, str]:
        kind = self.rng.choices(list(self.weights), weights=list(self.weights.values()))[0]
        seed = lambda: self.rng.randrange(2 ** 32)  # noqa: E731
        psi = f"{self.rng.uniform(0.5, 1.0):.2f}"
        cls = f"&class={self.rng.randrange(self.info['c_dim'])}" if self.info["conditional"] else ""
        if kind == "image":
            return kind, f"/api/image?seed={seed()}&psi={psi}&noise=const{cls}"
        if kind == "mix":
            x = self.rng.randint(0, self.info["num_ws"])
            return kind, f"/api/mix?seed_a={seed()}&seed_b={seed()}&crossover={x}&psi={psi}{cls}"
        return kind, f"/api/interp?seed_a={seed()}&seed_b={seed()}&steps=8&psi={psi}{cls}"

    def run(self):
        while time.monotonic() < self.stop_at:
            with self.lock:
                if self.budget[0] <= 0:
                    return
                self.budget[0] -= 1
            kind, path = self._path()
            t0 = time.perf_counter()
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                status = r.status
                ok = status != 200 or body[:8] == b"\x89PNG\r\n\x1a\n"
                if not ok:
                    status = "bad-png"
            except (OSError, http.client.HTTPException) as e:
                status = f"{type(e).__name__}"
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
            dt = time.perf_counter() - t0
            with self.lock:
                self.results.append((kind, status, dt, time.monotonic()))
            if status == 503 and self.backoff > 0:
                time.sleep(self.backoff)
        if self.conn is not None:
            self.conn.close()


def summarize(results, seconds):
    statuses = Counter(str(s) for _, s, _, _ in results)
    ok = [dt for _, s, dt, _ in results if s == 200]
    per = defaultdict(list)
    for kind, s, dt, _ in results:
        if s == 200:
            per[kind].append(dt)
    return {
        "requests": len(results),
        "ok": len(ok),
        "rejected_503": statuses.get("503", 0),
        "errors": sum(n for s, n in statuses.items() if s not in ("200", "503")),
        "statuses": dict(statuses),
        "seconds": round(seconds, 2),
        "ok_per_s": round(len(ok) / seconds, 2),
        "all_per_s": round(len(results) / seconds, 2),
        "latency_ms": {"p50": round(1000 * percentile(ok, 50), 1), "p90": round(1000 * percentile(ok, 90), 1),
                       "p99": round(1000 * percentile(ok, 99), 1), "max": round(1000 * max(ok, default=0), 1)},
        "per_endpoint": {k: {"ok": len(v), "p50_ms": round(1000 * percentile(v, 50), 1),
                             "p99_ms": round(1000 * percentile(v, 99), 1)} for k, v in sorted(per.items())},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--network", help="Checkpoint or pretrained name: start `stylegan serve` on a free port.")
    src.add_argument("--url", help="A running server on this machine (loopback only).")
    ap.add_argument("--pid", type=int, default=None, help="With --url: the server's pid, for its memory.")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=float, default=30.0, help="Seconds of load (at most 600).")
    ap.add_argument("--max-requests", type=int, default=100_000, help="Stop after this many requests.")
    ap.add_argument("--max-queue", type=int, default=16, help="--max-queue of the started server.")
    ap.add_argument("--threads", type=int, default=2, help="--threads (torch) of the started server.")
    ap.add_argument("--mix", default="image=0.7,mix=0.2,interp=0.1", help="Endpoint weights.")
    ap.add_argument("--backoff", type=float, default=0.1, help="Seconds a client waits after a 503.")
    ap.add_argument("--seed", type=int, default=0, help="Seed of the clients' random requests.")
    ap.add_argument("--json", default=None, help="Also write the report to this file.")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= 200:
        ap.error("--clients must be in [1, 200]")
    if not 0 < args.duration <= 600:
        ap.error("--duration must be in (0, 600]")
    weights = {}
    for part in args.mix.split(","):
        k, _, v = part.partition("=")
        if k not in ("image", "mix", "interp"):
            ap.error(f"--mix: unknown endpoint {k!r}")
        weights[k] = float(v)

    load_before = os.getloadavg()[0]
    proc = None
    if args.network:
        port = free_port()
        cmd = [sys.executable, "-m", "stylegan.cli.main", "serve", "--network", args.network, "--host", "127.0.0.1",
               "--port", str(port), "--max-queue", str(args.max_queue), "--threads", str(args.threads),
               "--log-level", "warning", "--device", "cpu"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        base, pid = f"http://127.0.0.1:{port}/", proc.pid
    else:
        parts = urlsplit(args.url)
        host = parts.hostname or ""
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            ap.error("--url must be a loopback address: this script only loads servers on this machine")
        base, pid = f"http://{parts.netloc}/", args.pid
    try:
        wait_ready(base, 180, proc)
        with urllib.request.urlopen(base + "api/info", timeout=10) as r:
            info = json.load(r)
        # Warm-up: one request of each kind, so that the first-call costs are not in the figures.
        for p in ("api/image?seed=0", "api/mix?seed_a=0&seed_b=1", "api/interp?seed_a=0&seed_b=1&steps=8"):
            q = p + ("&class=0" if info["conditional"] else "")
            urllib.request.urlopen(base + q, timeout=120).read()
        mem_before = proc_memory(pid) if pid else {}
        parts = urlsplit(base)
        results, lock, budget = [], threading.Lock(), [args.max_requests]
        t0 = time.monotonic()
        stop_at = t0 + args.duration
        clients = [Client(parts.hostname, parts.port, stop_at, budget, weights, info, args.seed * 1000 + i,
                          results, lock, args.backoff) for i in range(args.clients)]
        for c in clients:
            c.start()
        rss_samples = []
        while any(c.is_alive() for c in clients):
            if pid:
                rss_samples.append(proc_memory(pid).get("VmRSS", float("nan")))
            time.sleep(0.5)
            if time.monotonic() > stop_at + 120:
                break
        seconds = min(time.monotonic(), max((r[3] for r in results), default=t0)) - t0
        with urllib.request.urlopen(base + "api/health", timeout=10) as r:
            health = json.load(r)
        mem_after = proc_memory(pid) if pid else {}
        report = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                       f"1-min load average before the test {load_before:.2f} (shared machine)",
            "network": args.network or args.url,
            "model": {k: info[k] for k in ("name", "resolution", "channels", "num_ws", "conditional")},
            "clients": args.clients, "duration_s": args.duration, "max_queue": info["max_queue"],
            "endpoint_weights": weights,
            **summarize(results, max(seconds, 1e-9)),
            "server_health_after": health,
            "server_rss_mib": {"before": round(mem_before.get("VmRSS", float("nan")), 1),
                               "max_sampled": round(max(rss_samples, default=float("nan")), 1),
                               "peak_hwm": round(mem_after.get("VmHWM", float("nan")), 1),
                               "after": round(mem_after.get("VmRSS", float("nan")), 1)},
        }
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

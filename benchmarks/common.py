"""Shared benchmark helpers: thread setup, the machine's measured peak FLOP rate, timing, FLOP counting, and the
authors' stylegan2-ada-pytorch as a peer timed in the same run (``--peer``)."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


def setup_threads(n: int) -> None:
    from stylegan.cpu.memory import keep_freed_memory

    keep_freed_memory()  # as the trainer and the command line do
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1) if hasattr(torch, "set_num_interop_threads") else None


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TensorFloat-32 matrix units for CUDA matrix products and cuDNN convolutions on (``enabled``) or off
    inside the block; off is true float32 (PyTorch's own default leaves TF32 on for convolutions)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def measured_peak_flops(dtype=torch.float32, reps: int = 5, device="cpu") -> float:
    """The best FLOP/s observed on dense float32 work (large matrix multiplies and a 3×3 convolution with
    256 channels): the practical peak of this machine, against which shares are reported."""
    import torch.nn.functional as F

    def gemm(n):
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        return (lambda: a @ b), 2 * n ** 3

    def conv():
        x = torch.randn(8, 256, 32, 32, dtype=dtype, device=device)
        w = torch.randn(256, 256, 3, 3, dtype=dtype, device=device)
        return (lambda: F.conv2d(x, w, padding=1)), 2 * 9 * 256 * 256 * 32 * 32 * 8

    best = 0.0
    for fn, flops in (gemm(2048), gemm(4096), conv()):
        fn()
        for _ in range(reps):
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            best = max(best, flops / (time.perf_counter() - t))
    return best


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class _FlopCount(TorchDispatchMode):
    """Counts the FLOPs of every dispatched operation that torch's FLOP formulas know (convolutions, their
    backward, matrix products), at the dispatcher: unlike ``FlopCounterMode`` it needs no module hooks, so it
    also follows ``torch.autograd.grad(..., create_graph=True)`` (R1, path length)."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-add) of one call of ``fn``: convolutions (forward and every derivative) and
    matrix products, as torch's FLOP formulas count them."""
    with _FlopCount() as counter:
        fn()
    return counter.total


class TensorSpec(NamedTuple):
    shape: tuple
    stride: tuple
    dtype: torch.dtype
    device: torch.device

    def storage_size(self) -> int:
        """Elements a tensor of this shape and these strides spans (stride 0: expanded, spans one)."""
        return 1 + sum((n - 1) * st for n, st in zip(self.shape, self.stride)) if all(self.shape) else 0


class _ConvRecord(TorchDispatchMode):
    """Records every convolution and convolution backward that passes the dispatcher: the operation and its
    arguments, tensors as :class:`TensorSpec`."""

    OPS = (torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default)

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.OPS:
            spec = tuple(TensorSpec(tuple(a.shape), a.stride(), a.dtype, a.device) if isinstance(a, torch.Tensor)
                         else a for a in args)
            self.calls.append((func, spec))
        return func(*args, **(kwargs or {}))


def record_convolutions(fn: Callable[[], object]) -> list[tuple]:
    """The convolutions (forward and every derivative) that one call of ``fn`` dispatches, in order:
    ``(operation, arguments)`` with tensors as :class:`TensorSpec`."""
    with _ConvRecord() as rec:
        fn()
    return rec.calls


def convolution_replay(fn: Callable[[], object]) -> Callable[[], None]:
    """A function that runs ``fn``'s convolutions (:func:`record_convolutions`) and nothing else: each on
    tensors of the same shapes, strides (memory format) and types, all views of one random buffer per type and
    device (as large as the largest of them, so memory stays small even at config F). Timed alongside ``fn``
    it says what ``fn`` would take if everything but its convolutions were free and each ran at the rate
    oneDNN (cuDNN) gives it, with its operands as warm in cache as one buffer keeps them: the ceiling of
    ``fn``'s share of the peak."""
    calls = record_convolutions(fn)
    sizes: dict = {}
    for _, spec in calls:
        for a in spec:
            if isinstance(a, TensorSpec):
                key = (a.dtype, a.device)
                sizes[key] = max(sizes.get(key, 0), a.storage_size())
    buffers = {key: torch.randn(n, dtype=key[0], device=key[1]) for key, n in sizes.items()}

    def replay():
        with torch.no_grad():
            for func, spec in calls:
                func(*[buffers[a.dtype, a.device][:a.storage_size()].as_strided(a.shape, a.stride)
                       if isinstance(a, TensorSpec) else a for a in spec])
    return replay


def median_seconds(fn: Callable[[], object], warmup: int = 1, reps: int = 5, device="cpu") -> float:
    return interleaved_median_seconds([fn], warmup=warmup, reps=reps, device=device)[0]


def interleaved_median_seconds(fns: Sequence[Callable[[], object]], warmup: int = 1, reps: int = 5,
                               device="cpu") -> list[float]:
    """The median seconds of one call of each of ``fns``, timed in turn (a, b, a, b, ...) after ``warmup``
    untimed calls of each, so that a slower or faster stretch of the machine falls on all of them alike."""
    return [statistics.median(ts) for ts in interleaved_seconds(fns, warmup, reps, device)]


def interleaved_seconds(fns: Sequence[Callable[[], object]], warmup: int = 1, reps: int = 5,
                        device="cpu") -> list[list[float]]:
    """Every timed call of :func:`interleaved_median_seconds`: per function, its ``reps`` seconds in order, so
    that the i-th times of two functions form a pair taken side by side."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, ts in zip(fns, times):
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            ts.append(time.perf_counter() - t)
    return times


# --- The authors' code as a peer -------------------------------------------------------------------------------
#
# Ratios against the authors' implementation are printed only when both ran in the same process, one after the
# other: their modules are imported at run time from a checkout the user names; none of their code lives here.

#: What a checkout of the authors' stylegan2-ada-pytorch holds (a trailing slash: a folder).
PEER_LAYOUT = ("training/networks.py", "training/loss.py", "torch_utils/ops/", "dnnlib/")
#: Their top-level packages, which must come from the checkout and nowhere else.
PEER_PACKAGES = ("training", "torch_utils", "dnnlib")

T = TypeVar("T")


def peer_checkout_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a checkout of the authors' stylegan2-ada-pytorch, or None when it looks like one."""
    root = Path(path)
    if not root.is_dir():
        return "no such folder" if not root.exists() else "not a folder"
    missing = [e for e in PEER_LAYOUT if not ((root / e).is_dir() if e.endswith("/") else (root / e).is_file())]
    return f"missing {', '.join(missing)}" if missing else None


def check_peer_path(path: str | None) -> Path | None:
    """The ``--peer`` argument checked before anything is measured: None without one, the checkout's absolute
    path with one; anything else ends the program with one error line and exit status 2."""
    if path is None:
        return None
    problem = peer_checkout_problem(path)
    if problem:
        print(f"error: --peer {path}: not a checkout of the authors' stylegan2-ada-pytorch ({problem})",
              file=sys.stderr, flush=True)
        raise SystemExit(2)
    return Path(path).resolve()


def stand_in_for_absent_modules() -> None:
    """Two packages the authors' code imports at the top and needs next to nothing of: ``requests`` (their
    ``dnnlib``, for downloading URLs, which no benchmark does) and ``pkg_resources`` (their stylegan3's
    ``conv2d_gradfix`` and ``grid_sample_gradfix``, for ``parse_version`` of torch's version; setuptools no
    longer ships it). Where either is not installed, a stand-in module takes its place: an empty one, and one
    whose ``parse_version`` is ``packaging.version.parse``."""
    if "requests" not in sys.modules and importlib.util.find_spec("requests") is None:
        sys.modules["requests"] = types.ModuleType("requests")
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None \
            and importlib.util.find_spec("packaging") is not None:
        from packaging.version import parse

        stand_in = types.ModuleType("pkg_resources")
        stand_in.parse_version = parse
        sys.modules["pkg_resources"] = stand_in


class Peer:
    """The authors' stylegan2-ada-pytorch, imported from the checkout at ``root`` (put first on ``sys.path``).

    Their networks are built with the architecture of ours (:meth:`generator`, :meth:`discriminator`), by
    default in float32: no reduced-precision layers and no clamp. On a CPU their custom CUDA operations fall back
    to their reference implementations by themselves. ``error`` is set, and one error line printed, once their code has
    failed to import or to run here; from then on only our figures are printed."""

    def __init__(self, root: Path):
        self.root = root
        self.error: str | None = None
        self.networks = self.loss = None
        self.attempt(self._import, "importing its modules")

    #: The checkout's modules this peer uses, by the attribute that holds each.
    MODULES = {"networks": "training.networks", "loss": "training.loss"}

    def _import(self) -> None:
        for name in list(sys.modules):  # same-named packages from elsewhere would shadow the checkout's
            if name.split(".")[0] in PEER_PACKAGES and not self._from_root(sys.modules[name]):
                del sys.modules[name]
        sys.path.insert(0, str(self.root))
        stand_in_for_absent_modules()
        for attr, name in self.MODULES.items():
            module = importlib.import_module(name)
            if not self._from_root(module):
                raise ImportError(f"{module.__name__} was imported from {getattr(module, '__file__', None)}")
            setattr(self, attr, module)

    def _from_root(self, module) -> bool:
        file = getattr(module, "__file__", None)
        return file is not None and Path(file).resolve().is_relative_to(self.root)

    def attempt(self, fn: Callable[[], T], what: str) -> T | None:
        """``fn()``, or None (with one error line) where the authors' code fails in it or has failed before."""
        if self.error is not None:
            return None
        try:
            return fn()
        except Exception as e:  # their code, on a torch and a machine it was not written for
            hint = " (a package their code imports: install it into this environment)" \
                if isinstance(e, ModuleNotFoundError) else ""
            self.error = f"{what}: {type(e).__name__}: {e}{hint}".replace("\n", " ")
            print(f"error: --peer {self.root}: the authors' code does not run here as it is ({self.error}); "
                  "printing our figures only", file=sys.stderr, flush=True)
            return None

    def generator(self, config, device="cpu", seed: int = 0, num_fp16_res: int = 0, conv_clamp: float | None = None):
        """Their ``Generator`` with the architecture of our ``config.G``, float32 (or with their float16 layers
        at the ``num_fp16_res`` highest resolutions and ``conv_clamp``), in training mode without gradients (as
        their training loop builds it)."""
        g = config.G
        with torch.random.fork_rng(devices=[]):  # their initialization leaves our random stream alone
            torch.manual_seed(seed)
            net = self.networks.Generator(
                z_dim=g.z_dim, c_dim=g.c_dim, w_dim=g.w_dim, img_resolution=g.resolution,
                img_channels=g.img_channels, mapping_kwargs={"num_layers": g.map_depth},
                synthesis_kwargs={"channel_base": g.cbase, "channel_max": g.cmax, "architecture": g.arch,
                                  "num_fp16_res": num_fp16_res, "conv_clamp": conv_clamp})
        return net.train().requires_grad_(False).to(device)

    def discriminator(self, config, device="cpu", seed: int = 0, num_fp16_res: int = 0,
                      conv_clamp: float | None = None):
        """Their ``Discriminator`` with the architecture of our ``config.D``, as :meth:`generator`."""
        d = config.D
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self.networks.Discriminator(
                c_dim=d.c_dim, img_resolution=d.resolution, img_channels=d.img_channels, channel_base=d.cbase,
                channel_max=d.cmax, architecture=d.arch, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
                epilogue_kwargs={"mbstd_group_size": d.mbstd_group, "mbstd_num_channels": d.mbstd_channels})
        return net.train().requires_grad_(False).to(device)


def load_peer(root: Path | None) -> Peer | None:
    """The peer of a checked ``--peer`` path (:func:`check_peer_path`), None without one. Where its modules do
    not import here, the peer comes back with its ``error`` set (and one error line printed)."""
    return Peer(root) if root is not None else None


def fmt_vs(ours: float, theirs: float, higher_is_faster: bool, width: int = 9) -> str:
    """The "x authors" column: how many times the authors' speed ours is (above 1: ours is faster)."""
    return f"{(ours / theirs if higher_is_faster else theirs / ours):>{width - 1}.2f}x"

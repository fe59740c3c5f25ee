"""Reading pickles and ``torch.save`` files without executing anything.

Python's own unpickler calls whatever a pickle names (``posix.system``, ``builtins.eval``, a module's source
given to ``exec`` by the authors' ``torch_utils.persistence``...). Pickles here are interpreted by the package's
restricted unpickler (:class:`stylegan.unpickler.AllowListUnpickler`, which executes nothing a pickle names)
with this allow-list of stand-ins:

- ``collections.OrderedDict``, ``builtins.set``/``frozenset``, ``_codecs.encode`` (protocol-2 bytes);
- tensors: ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` / ``_rebuild_parameter`` /
  ``_rebuild_parameter_with_state``, the typed storage classes ``torch.FloatStorage`` etc. (markers with a
  dtype), ``torch.storage._load_from_bytes`` (a nested ``torch.save`` blob, read again by this module);
- numpy: ``dtype``, ``ndarray`` + ``multiarray._reconstruct``, ``multiarray.scalar``, ``numeric._frombuffer``,
  numeric dtypes only (no object arrays); arrays come back as :class:`NpArray` (see :func:`as_numpy`);
- the authors' containers: ``torch_utils.persistence._reconstruct_persistent_obj`` (captures its ``meta``
  as a :class:`PersistentObject` and never looks at ``module_src`` beyond keeping the text),
  ``dnnlib.util.EasyDict`` (a dict), ``dnnlib.tflib.network.Network`` (captures the state dict as a
  :class:`TFNetwork`), ``argparse.Namespace`` (captures its attributes as a :class:`Namespace`).

Any other global is refused with an :class:`InteropError` that names it. The interpreter keeps its memo in a
dict (no pre-sized tables), only accepts scalar (or flat tuple) dictionary keys, bounds tensor views by their
storage, charges what stand-ins copy to the pickle's budget (:func:`stylegan.unpickler.charge`), and converts
every failure on malformed input into :class:`InteropError`.

Tensors are views of their storage, so a file can name one storage (or one tensor) for many weights. The
importers refuse that with :func:`check_no_shared_memory` before they convert or build anything: otherwise a small
file could claim a network many times its size.

``torch.save`` files are read in both of torch's formats: the zip archive (``<dir>/data.pkl`` with storages in
``<dir>/data/<key>``) and the legacy stream (magic number, protocol, system info, the object, the storage keys,
then the raw storages).
"""
from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from stylegan.interop.errors import InteropError
from stylegan.unpickler import (ITEM_BYTES, MAX_DIM, AllowList, Allowed, AllowListUnpickler, NpArray, allow, charge,
                                    check_shape, guard, latin1_bytes, make_set, new_dict, numpy_array_globals,
                                    numpy_scalar_globals, pairs_dict)

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_NESTING = 3  # torch.storage._load_from_bytes inside a pickle inside ...: more is refused

__all__ = ["MAX_DIM", "Namespace", "NpArray", "PersistentObject", "SafeUnpickler", "TFNetwork", "allowed_globals",
           "as_numpy", "check_no_shared_memory", "is_torch_file", "load_pickle_bytes", "load_torch_bytes"]


# ---------------------------------------------------------------------------------------------------------
# Stand-in objects the interpreter produces.

@dataclass
class PersistentObject:
    """One object of the authors' ``torch_utils.persistence``: its class name, the module source it came with
    (kept as text, never executed) and its state (the module's ``__dict__``)."""

    class_name: str
    module_src: str
    version: Any
    state: dict

    def init_kwargs(self) -> dict:
        kw = self.state.get("_init_kwargs", self.state.get("init_kwargs", {}))
        return kw if isinstance(kw, dict) else {}

    def init_args(self) -> tuple:
        a = self.state.get("_init_args", self.state.get("init_args", ()))
        return tuple(a) if isinstance(a, (tuple, list)) else ()


class TFNetwork:
    """A ``dnnlib.tflib.network.Network`` of the authors' TensorFlow code: only its pickled state."""

    def __init__(self):
        self.state: dict = {}

    def _safe_setstate(self, state):
        if not isinstance(state, dict):
            raise InteropError("TensorFlow network state is not a dict")
        self.state = state


class Namespace:
    """An ``argparse.Namespace``: its attributes as a dict."""

    def __init__(self, **kw):
        self.attrs: dict = dict(kw)

    def _safe_setstate(self, state):
        if not isinstance(state, dict):
            raise InteropError("argparse.Namespace state is not a dict")
        charge(ITEM_BYTES * len(state))
        self.attrs.update(state)


@dataclass
class _StorageType:
    name: str
    dtype: torch.dtype


@dataclass
class _Storage:
    dtype: torch.dtype
    data: bytes | None  # None while only discovering which storages a legacy file holds
    numel: int
    _flat: torch.Tensor | None = field(default=None, repr=False)

    def flat(self) -> torch.Tensor:
        if self._flat is None:
            if self.numel == 0:
                self._flat = torch.empty(0, dtype=self.dtype)
            else:
                self._flat = torch.frombuffer(bytearray(self.data), dtype=self.dtype)
        return self._flat


class _Placeholder:
    """A tensor whose storage is not read yet (first pass over a legacy torch file)."""


_PLACEHOLDER = _Placeholder()


def _byte_span(x) -> tuple[int, int]:
    """The addresses [first, last + 1) of the bytes a tensor or array reads; (0, 0) when it has no elements."""
    if isinstance(x, torch.Tensor):
        if x.numel() == 0:
            return 0, 0
        start, esize = x.data_ptr(), x.element_size()
        return start, start + (1 + sum((d - 1) * s for d, s in zip(x.shape, x.stride()))) * esize
    if x.size == 0:
        return 0, 0
    start = x.__array_interface__["data"][0]
    low = sum(min(0, (d - 1) * s) for d, s in zip(x.shape, x.strides))
    high = sum(max(0, (d - 1) * s) for d, s in zip(x.shape, x.strides))
    return start + low, start + high + x.itemsize


def check_no_shared_memory(items: dict[str, Any], what: str) -> None:
    """Refuses tensors or numpy arrays (by name) that share memory: the same tensor, or views of one storage,
    under two names. Network files never hold that, and a file that did could claim a network many times its
    own size (every weight one view of a single stored array)."""
    spans = sorted((*_byte_span(x), name) for name, x in items.items())
    reach, reach_name = 0, ""
    for start, end, name in spans:
        if start == end:
            continue
        if start < reach:
            raise InteropError(f"{what}: {reach_name} and {name} share their memory (one stored array used for "
                               "several weights); refusing the file, which could claim a network many times its "
                               "own size this way")
        if end > reach:
            reach, reach_name = end, name


def as_numpy(x) -> np.ndarray:
    """A numpy array from what the interpreter produced for one (or a tensor)."""
    if isinstance(x, NpArray) and x.array is not None:
        return x.array
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, torch.Tensor):
        return x.numpy()
    raise InteropError(f"expected an array, found {type(x).__name__}")


# ---------------------------------------------------------------------------------------------------------
# The allow-list: every callable a pickle may reach, each a stand-in (see stylegan.unpickler).

_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


def _int(v, what) -> int:
    if type(v) is not int:
        raise InteropError(f"{what} must be an integer")
    return v


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    if not isinstance(storage, _Storage):
        raise InteropError("tensor rebuilt from something that is not a storage")
    if storage.data is None:
        return _PLACEHOLDER
    size = check_shape(tuple(size) if isinstance(size, (list, tuple)) else size)
    stride = check_shape(tuple(stride) if isinstance(stride, (list, tuple)) else stride)
    offset = _int(storage_offset, "storage offset")
    if len(size) != len(stride) or offset < 0:
        raise InteropError("malformed tensor size/stride/offset")
    numel = 1
    for d in size:
        numel *= d
    if numel > 0:
        last = offset + sum((d - 1) * s for d, s in zip(size, stride))
        if last >= storage.numel or numel > storage.numel:
            raise InteropError(f"tensor view {size} (stride {stride}, offset {offset}) exceeds its storage of "
                               f"{storage.numel} elements")
        # A view, not a copy: a file that views one storage many times must not multiply its memory (the
        # importers copy only the tensors they use, after checking names and shapes).
        return torch.as_strided(storage.flat(), size, stride, offset)
    return torch.empty(size, dtype=storage.dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, (torch.Tensor, _Placeholder)):
        raise InteropError("parameter rebuilt from something that is not a tensor")
    return data


def _torch_size(*args):
    if len(args) != 1:
        raise InteropError("torch.Size takes one tuple")
    return check_shape(tuple(args[0]) if isinstance(args[0], (list, tuple)) else args[0])


def _persistent_obj(meta):
    if not isinstance(meta, dict):
        raise InteropError("persistent object metadata is not a dict")
    if meta.get("type", "class") != "class":
        raise InteropError(f"persistent object of type {meta.get('type')!r}; only 'class' is known")
    name, src, state = meta.get("class_name"), meta.get("module_src", ""), meta.get("state")
    if state is None:
        state = {}
    if not isinstance(name, str) or not isinstance(src, str) or not isinstance(state, dict):
        raise InteropError("malformed persistent object metadata (class_name, module_src, state)")
    return PersistentObject(class_name=name, module_src=src, version=meta.get("version"), state=state)


def _new_tfnetwork(args, kwargs=None):
    return TFNetwork()


def _new_namespace(args, kwargs=None):
    return Namespace()


def _namespace(**kw):
    return Namespace(**kw)


def _build_allowlist(load_nested: Callable[[bytes], Any]) -> AllowList:
    allowed: AllowList = {**numpy_array_globals(), **numpy_scalar_globals()}
    allow(allowed, "collections.OrderedDict", pairs_dict)
    allow(allowed, ["builtins.set", "__builtin__.set"], make_set)
    allow(allowed, ["builtins.frozenset", "__builtin__.frozenset"], lambda *a: make_set(*a, frozen=True))
    allow(allowed, "_codecs.encode", latin1_bytes)
    allow(allowed, "torch._utils._rebuild_tensor_v2", _rebuild_tensor_v2)
    allow(allowed, "torch._utils._rebuild_tensor", _rebuild_tensor)
    allow(allowed, ["torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"],
          _rebuild_parameter)
    allow(allowed, "torch.Size", _torch_size)
    allow(allowed, "torch.storage._load_from_bytes", load_nested)
    for name, dt in _STORAGE_DTYPES.items():  # markers only: storages are never called
        # storages saved from a GPU: the bytes are the same
        allow(allowed, [f"torch.{name}", f"torch.cuda.{name}"], marker=_StorageType(name, dt))
    allow(allowed, "torch_utils.persistence._reconstruct_persistent_obj", _persistent_obj)
    allow(allowed, ["dnnlib.util.EasyDict", "dnnlib.EasyDict"], new=new_dict)
    allow(allowed, "dnnlib.tflib.network.Network", new=_new_tfnetwork)
    allow(allowed, "argparse.Namespace", _namespace, new=_new_namespace)
    return allowed


def allowed_globals() -> list[str]:
    """The names a pickle may refer to (for documentation and tests)."""
    return sorted(_build_allowlist(lambda b: None))


# ---------------------------------------------------------------------------------------------------------
# The interpreter.

class SafeUnpickler(AllowListUnpickler):
    """Interprets one pickle from ``data`` at ``pos`` against the allow-list above, raising :class:`InteropError`.
    ``persistent_load(pid)`` resolves persistent ids (torch storages); without it they are refused. ``nesting``
    counts the ``torch.save`` blobs this pickle sits in."""

    def __init__(self, data: bytes, what: str, persistent_load: Callable[[Any], Any] | None = None,
                 nesting: int = 0):
        super().__init__(data, _build_allowlist(self._load_nested), what, InteropError, persistent_load)
        self.nesting = nesting

    def _load_nested(self, blob):
        if not isinstance(blob, (bytes, bytearray)):
            raise InteropError("torch.storage._load_from_bytes needs bytes")
        if self.nesting + 1 > MAX_NESTING:
            raise InteropError("torch.save blobs nested too deeply")
        charge(2 * len(blob))  # its storage is copied out of it, then into the tensor's buffer
        obj = load_torch_bytes(bytes(blob), f"{self.what} (nested storage)", nesting=self.nesting + 1)
        if not isinstance(obj, _Storage):
            raise InteropError("torch.storage._load_from_bytes did not hold a storage")
        return obj


def load_pickle_bytes(data: bytes, what: str) -> Any:
    """A plain pickle (no persistent ids), e.g. the authors' network pickles."""
    obj, end = _guard(lambda: SafeUnpickler(data, what).load(0), what)
    return obj


def _guard(fn, what):
    return guard(fn, what, InteropError)


# ---------------------------------------------------------------------------------------------------------
# torch.save files.

def _storage_pid(pid, what):
    if (not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage"
            or not isinstance(pid[1], Allowed) or not isinstance(pid[1].marker, _StorageType)):
        raise InteropError(f"{what}: unsupported persistent reference (only tensor storages are allowed)")
    st: _StorageType = pid[1].marker
    key, numel = pid[2], pid[4]
    if not isinstance(key, (str, int)) or type(numel) is not int or numel < 0 or numel > MAX_DIM:
        raise InteropError(f"{what}: malformed storage reference")
    if len(pid) == 6 and pid[5] is not None:
        raise InteropError(f"{what}: storage views (legacy torch < 0.4) are not supported")
    return st.dtype, str(key), numel


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


def _load_zip(data: bytes, what: str, nesting: int):
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = {i.filename: i for i in zf.infolist()}
    except Exception as e:
        raise InteropError(f"{what}: not a readable torch zip archive ({type(e).__name__}: {e})") from None
    pkls = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise InteropError(f"{what}: torch zip archive without a single <name>/data.pkl")
    prefix = pkls[0][: -len("data.pkl")]

    def read(name):
        info = infos.get(name)
        if info is None:
            raise InteropError(f"{what}: archive member {name} is missing")
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
            raise InteropError(f"{what}: archive member {name} is compressed or larger than the archive")
        with zf.open(info) as fh:
            return fh.read()

    byteorder = read(prefix + "byteorder").decode("ascii", "replace") if prefix + "byteorder" in infos else "little"
    if byteorder not in ("little", "big"):
        raise InteropError(f"{what}: unknown byte order {byteorder!r}")
    storages: dict[str, _Storage] = {}

    def persistent_load(pid):
        dtype, key, numel = _storage_pid(pid, what)
        if key not in storages:
            raw = read(f"{prefix}data/{key}")
            esize = _element_size(dtype)
            if len(raw) < numel * esize:
                raise InteropError(f"{what}: storage {key} holds {len(raw)} bytes, fewer than its {numel} elements")
            raw = raw[: numel * esize]
            if byteorder == "big" and esize > 1:
                raw = np.frombuffer(raw, dtype=f">u{esize}" if esize in (2, 4, 8) else ">u1").byteswap().tobytes()
            storages[key] = _Storage(dtype, raw, numel)
        elif storages[key].dtype != dtype:
            raise InteropError(f"{what}: storage {key} used with two dtypes")
        return storages[key]

    obj, _ = SafeUnpickler(read(pkls[0]), what, persistent_load, nesting).load(0)
    return obj


def _load_legacy(data: bytes, what: str, nesting: int):
    pos = 0
    magic, pos = SafeUnpickler(data, what, None, nesting).load(pos)
    if magic != LEGACY_MAGIC:
        raise InteropError(f"{what}: not a torch file (bad magic number)")
    proto, pos = SafeUnpickler(data, what, None, nesting).load(pos)
    if proto != LEGACY_PROTOCOL:
        raise InteropError(f"{what}: unsupported legacy torch protocol {proto!r}")
    sys_info, pos = SafeUnpickler(data, what, None, nesting).load(pos)
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    main_pos = pos

    # First pass: which storages the object uses (their dtype and size), and where the object ends.
    found: dict[str, tuple[torch.dtype, int]] = {}

    def discover(pid):
        dtype, key, numel = _storage_pid(pid, what)
        found.setdefault(key, (dtype, numel))
        return _Storage(dtype, None, numel)

    _, pos = SafeUnpickler(data, what, discover, nesting).load(main_pos)
    keys, pos = SafeUnpickler(data, what, None, nesting).load(pos)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InteropError(f"{what}: malformed storage key list")
    storages: dict[str, _Storage] = {}
    for key in keys:
        if key not in found:
            raise InteropError(f"{what}: storage {key} is listed but never used")
        dtype, _ = found[key]
        if pos + 8 > len(data):
            raise InteropError(f"{what}: truncated storage data")
        (count,) = struct.unpack("<q" if little else ">q", data[pos:pos + 8])
        esize = _element_size(dtype)
        pos += 8
        if count < 0 or pos + count * esize > len(data):
            raise InteropError(f"{what}: truncated storage data")
        raw = data[pos:pos + count * esize]
        if not little and esize > 1:
            raw = np.frombuffer(raw, dtype=f">u{esize}").byteswap().tobytes()
        storages[key] = _Storage(dtype, raw, count)
        pos += count * esize
    missing = sorted(set(found) - set(storages))
    if missing:
        raise InteropError(f"{what}: storages {missing[:5]} are used but not stored")

    def persistent_load(pid):
        _, key, numel = _storage_pid(pid, what)
        s = storages[key]
        if numel > s.numel:
            raise InteropError(f"{what}: storage {key} is shorter than declared")
        return s

    obj, _ = SafeUnpickler(data, what, persistent_load, nesting).load(main_pos)
    return obj


def load_torch_bytes(data: bytes, what: str, nesting: int = 0) -> Any:
    """The object in a ``torch.save`` file (zip or legacy format), tensors as CPU tensors."""
    def run():
        if data[:4] == b"PK\x03\x04":
            return _load_zip(data, what, nesting)
        return _load_legacy(data, what, nesting)
    return _guard(run, what)


def is_torch_file(data: bytes) -> bool:
    """Zip archive or a pickle that starts with torch's legacy magic number."""
    if data[:4] == b"PK\x03\x04":
        return True
    try:
        magic, _ = SafeUnpickler(data[:64], "probe").load(0)
    except Exception:
        return False
    return magic == LEGACY_MAGIC

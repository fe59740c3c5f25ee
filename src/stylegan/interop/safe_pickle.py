"""Reading pickles and ``torch.save`` files without executing anything.

Python's own unpickler calls whatever a pickle names (``posix.system``, ``builtins.eval``, a module's source
given to ``exec`` by the authors' ``torch_utils.persistence``...). This module interprets the pickle opcodes
itself (the stream is decoded by :func:`pickletools.genops`, which only parses) and resolves every global
through an explicit allow-list of *stand-ins written here*:

- ``collections.OrderedDict``, ``builtins.set``/``frozenset``, ``_codecs.encode`` (protocol-2 bytes);
- tensors: ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` / ``_rebuild_parameter`` /
  ``_rebuild_parameter_with_state``, the typed storage classes ``torch.FloatStorage`` etc. (markers with a
  dtype), ``torch.storage._load_from_bytes`` (a nested ``torch.save`` blob, read again by this module);
- numpy: ``dtype``, ``ndarray`` + ``multiarray._reconstruct``, ``multiarray.scalar``, ``numeric._frombuffer``,
  numeric dtypes only (no object arrays);
- the authors' containers: ``torch_utils.persistence._reconstruct_persistent_obj`` (captures its ``meta``
  as a :class:`PersistentObject` and never looks at ``module_src`` beyond keeping the text),
  ``dnnlib.util.EasyDict`` (a dict), ``dnnlib.tflib.network.Network`` (captures the state dict as a
  :class:`TFNetwork`), ``argparse.Namespace`` (captures its attributes as a :class:`Namespace`).

Any other global is refused with an :class:`InteropError` that names it. The interpreter keeps its memo in a
dict (no pre-sized tables), only accepts scalar (or flat tuple) dictionary keys, bounds tensor views by their
storage, and converts every failure on malformed input into :class:`InteropError`.

``torch.save`` files are read in both of torch's formats: the zip archive (``<dir>/data.pkl`` with storages in
``<dir>/data/<key>``) and the legacy stream (magic number, protocol, system info, the object, the storage keys,
then the raw storages).
"""
from __future__ import annotations

import io
import pickletools
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from stylegan.interop.errors import InteropError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_NESTING = 3  # torch.storage._load_from_bytes inside a pickle inside ...: more is refused
MAX_DIM = 1 << 40


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


class _NpDType:
    def __init__(self, code: str):
        self.code = code
        self.byteorder = "="

    def _safe_setstate(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "=", "|"):
            raise InteropError("malformed numpy dtype state")
        self.byteorder = state[1]

    def resolve(self) -> np.dtype:
        if not isinstance(self.code, str) or len(self.code) > 4 or self.code[:1] not in "fiubc":
            raise InteropError(f"numpy dtype {self.code!r} is not a plain numeric type")
        dt = np.dtype(self.code).newbyteorder(self.byteorder if self.byteorder in "<>" else "=")
        if dt.kind not in "fiubc" or dt.hasobject:
            raise InteropError(f"numpy dtype {self.code!r} is not a plain numeric type")
        return dt


class NpArray:
    """A numpy array being rebuilt (``_reconstruct`` then ``BUILD``); ``.array`` once complete."""

    def __init__(self):
        self.array: np.ndarray | None = None

    def _safe_setstate(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise InteropError("malformed numpy array state")
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran, raw = state
        if isinstance(raw, str):  # Python 2 pickles
            raw = raw.encode("latin-1")
        if not isinstance(dtype, _NpDType) or not isinstance(raw, (bytes, bytearray)):
            raise InteropError("numpy array with an object dtype or no raw data")
        self.array = _array_from_bytes(raw, dtype.resolve(), shape, bool(fortran))


def _check_shape(shape) -> tuple[int, ...]:
    if not isinstance(shape, (tuple, list)) or len(shape) > 16:
        raise InteropError("malformed array shape")
    for d in shape:
        if type(d) is not int or d < 0 or d > MAX_DIM:
            raise InteropError("malformed array shape")
    return tuple(shape)


def _array_from_bytes(raw, dt: np.dtype, shape, fortran: bool) -> np.ndarray:
    shape = _check_shape(shape)
    n = 1
    for d in shape:
        n *= d
    if n * dt.itemsize != len(raw):
        raise InteropError(f"numpy array of shape {shape} and dtype {dt} does not match its {len(raw)} bytes")
    a = np.frombuffer(bytes(raw), dtype=dt).reshape(shape, order="F" if fortran else "C")
    return np.ascontiguousarray(a).astype(dt.newbyteorder("="), copy=True)


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
# The allow-list: every callable a pickle may reach. Each is a _Safe wrapper so that REDUCE and NEWOBJ
# never call anything else.

class _Safe:
    def __init__(self, name: str, fn: Callable | None = None, new: Callable | None = None):
        self.name, self.fn, self.new = name, fn, new

    def __repr__(self):
        return f"<allowed {self.name}>"


_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


def _is_key(k, depth=0) -> bool:
    if k is None or type(k) in (str, bytes, int, float, bool):
        return True
    return type(k) is tuple and depth == 0 and len(k) <= 16 and all(_is_key(v, 1) for v in k)


def _checked_key(k):
    if not _is_key(k):
        raise InteropError(f"dictionary key of type {type(k).__name__} is not allowed")
    return k


def _ordered_dict(*args):
    if len(args) > 1:
        raise InteropError("OrderedDict takes at most one argument")
    out = {}
    if args:
        items = args[0]
        if not isinstance(items, (list, tuple)):
            raise InteropError("OrderedDict argument must be a list of pairs")
        for kv in items:
            if not isinstance(kv, (list, tuple)) or len(kv) != 2:
                raise InteropError("OrderedDict argument must be a list of pairs")
            out[_checked_key(kv[0])] = kv[1]
    return out


def _make_set(*args, frozen=False):
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple, set, frozenset))):
        raise InteropError("set() takes one list")
    items = [_checked_key(v) for v in (args[0] if args else ())]
    return frozenset(items) if frozen else set(items)


def _codecs_encode(s, encoding="utf-8", *rest):
    if not isinstance(s, str) or encoding not in ("latin1", "latin-1") or rest:
        raise InteropError("_codecs.encode is allowed only for latin-1 text (protocol-2 bytes)")
    return s.encode("latin-1")


def _int(v, what) -> int:
    if type(v) is not int:
        raise InteropError(f"{what} must be an integer")
    return v


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    if not isinstance(storage, _Storage):
        raise InteropError("tensor rebuilt from something that is not a storage")
    if storage.data is None:
        return _PLACEHOLDER
    size = _check_shape(tuple(size) if isinstance(size, (list, tuple)) else size)
    stride = _check_shape(tuple(stride) if isinstance(stride, (list, tuple)) else stride)
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
    return _check_shape(tuple(args[0]) if isinstance(args[0], (list, tuple)) else args[0])


def _np_dtype(code, align=False, copy=True):
    if not isinstance(code, str):
        raise InteropError("numpy dtype must be given by name")
    return _NpDType(code)


def _np_reconstruct(cls, shape, typecode):
    if not (isinstance(cls, _Safe) and cls.name == "numpy.ndarray"):
        raise InteropError("numpy _reconstruct of something other than ndarray")
    return NpArray()


def _np_scalar(dtype, raw=None):
    if not isinstance(dtype, _NpDType) or not isinstance(raw, (bytes, str)):
        raise InteropError("numpy scalar with an object dtype")
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    a = _array_from_bytes(raw, dtype.resolve(), (), False)
    return a.item()


def _np_frombuffer(buf, dtype, shape, order):
    if not isinstance(dtype, _NpDType) or not isinstance(buf, (bytes, bytearray)):
        raise InteropError("numpy buffer with an object dtype")
    a = NpArray()
    a.array = _array_from_bytes(buf, dtype.resolve(), shape, order == "F")
    return a


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


def _new_dict(args, kwargs=None):
    return {}


def _new_tfnetwork(args, kwargs=None):
    return TFNetwork()


def _new_namespace(args, kwargs=None):
    return Namespace()


def _namespace(**kw):
    return Namespace(**kw)


def _build_allowlist(load_nested: Callable[[bytes], Any]) -> dict[str, _Safe]:
    allowed: dict[str, _Safe] = {}

    def add(names, fn=None, new=None):
        for n in names if isinstance(names, (list, tuple)) else [names]:
            allowed[n] = _Safe(n, fn, new)

    add("collections.OrderedDict", _ordered_dict)
    add(["builtins.set", "__builtin__.set"], _make_set)
    add(["builtins.frozenset", "__builtin__.frozenset"], lambda *a: _make_set(*a, frozen=True))
    add("_codecs.encode", _codecs_encode)
    add("torch._utils._rebuild_tensor_v2", _rebuild_tensor_v2)
    add("torch._utils._rebuild_tensor", _rebuild_tensor)
    add(["torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"], _rebuild_parameter)
    add("torch.Size", _torch_size)
    add("torch.storage._load_from_bytes", load_nested)
    for name, dt in _STORAGE_DTYPES.items():
        for mod in ("torch", "torch.cuda"):  # storages saved from a GPU: the bytes are the same
            allowed[f"{mod}.{name}"] = _Safe(f"{mod}.{name}")
            allowed[f"{mod}.{name}"].storage_type = _StorageType(name, dt)  # type: ignore[attr-defined]
    for np_core in ("numpy.core", "numpy._core"):
        add(f"{np_core}.multiarray._reconstruct", _np_reconstruct)
        add(f"{np_core}.multiarray.scalar", _np_scalar)
        add(f"{np_core}.numeric._frombuffer", _np_frombuffer)
    add("numpy.ndarray")
    add("numpy.dtype", _np_dtype)
    add("torch_utils.persistence._reconstruct_persistent_obj", _persistent_obj)
    add(["dnnlib.util.EasyDict", "dnnlib.EasyDict"], new=_new_dict)
    add("dnnlib.tflib.network.Network", new=_new_tfnetwork)
    add("argparse.Namespace", _namespace, new=_new_namespace)
    return allowed


def allowed_globals() -> list[str]:
    """The names a pickle may refer to (for documentation and tests)."""
    return sorted(_build_allowlist(lambda b: None))


# ---------------------------------------------------------------------------------------------------------
# The interpreter.

_MARK = object()


class SafeUnpickler:
    """Interprets one pickle from ``data`` at ``pos``. ``persistent_load(pid)`` resolves persistent ids
    (torch storages); without it they are refused."""

    def __init__(self, data: bytes, what: str, persistent_load: Callable[[Any], Any] | None = None,
                 nesting: int = 0):
        self.data, self.what, self.persistent_load, self.nesting = data, what, persistent_load, nesting
        self.allowed = _build_allowlist(self._load_nested)

    def _load_nested(self, blob):
        if not isinstance(blob, (bytes, bytearray)):
            raise InteropError("torch.storage._load_from_bytes needs bytes")
        if self.nesting + 1 > MAX_NESTING:
            raise InteropError("torch.save blobs nested too deeply")
        obj = load_torch_bytes(bytes(blob), f"{self.what} (nested storage)", nesting=self.nesting + 1)
        if not isinstance(obj, _Storage):
            raise InteropError("torch.storage._load_from_bytes did not hold a storage")
        return obj

    def _global(self, module, name):
        if not isinstance(module, str) or not isinstance(name, str):
            raise InteropError(f"{self.what}: malformed global reference")
        full = f"{module}.{name}"
        if full not in self.allowed:
            shown = full if len(full) < 200 else full[:200] + "..."
            raise InteropError(f"{self.what}: the pickle refers to the global {shown!r}, which is not on the "
                               "list of allowed globals; refusing to load it (through such references a pickle "
                               "can run arbitrary code)")
        return self.allowed[full]

    def load(self, pos: int = 0) -> tuple[Any, int]:
        """The object and the position just after its STOP opcode."""
        with warnings.catch_warnings():  # pickletools warns about odd escapes in protocol-0 strings
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._load(pos)

    def _load(self, pos: int) -> tuple[Any, int]:
        f = io.BytesIO(self.data)
        f.seek(pos)
        stack: list = []
        metastack: list = []
        memo: dict = {}

        def pop_mark():
            nonlocal stack
            items = stack
            stack = metastack.pop()
            return items

        for op, arg, _ in pickletools.genops(f):
            name = op.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                if len(stack) != 1 or metastack:
                    raise InteropError(f"{self.what}: malformed pickle (stack not balanced at STOP)")
                return stack.pop(), f.tell()
            if name == "MARK":
                metastack.append(stack)
                stack = []
            elif name == "POP":
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in ("NONE",):
                stack.append(None)
            elif name == "NEWTRUE":
                stack.append(True)
            elif name == "NEWFALSE":
                stack.append(False)
            elif name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
                          "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
                          "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"):
                stack.append(arg)
            elif name == "BYTEARRAY8":
                stack.append(bytearray(arg))
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "EMPTY_SET":
                stack.append(set())
            elif name == "LIST":
                items = pop_mark()
                stack.append(list(items))
            elif name == "TUPLE":
                items = pop_mark()
                stack.append(tuple(items))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                if len(stack) < n:
                    raise InteropError(f"{self.what}: malformed pickle (stack underflow)")
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif name == "DICT":
                items = pop_mark()
                stack.append(self._setitems({}, items))
            elif name == "FROZENSET":
                items = pop_mark()
                stack.append(frozenset(_checked_key(v) for v in items))
            elif name == "APPEND":
                v = stack.pop()
                self._target(stack, list).append(v)
            elif name == "APPENDS":
                items = pop_mark()
                self._target(stack, list).extend(items)
            elif name == "SETITEM":
                v = stack.pop()
                k = stack.pop()
                self._setitems(self._target(stack, dict), [k, v])
            elif name == "SETITEMS":
                items = pop_mark()
                self._setitems(self._target(stack, dict), items)
            elif name == "ADDITEMS":
                items = pop_mark()
                target = self._target(stack, set)
                for v in items:
                    target.add(_checked_key(v))
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise InteropError(f"{self.what}: malformed pickle (memo entry {arg} missing)")
                stack.append(memo[arg])
            elif name == "GLOBAL":
                module, _, gname = str(arg).partition(" ")
                stack.append(self._global(module, gname))
            elif name == "STACK_GLOBAL":
                gname = stack.pop()
                module = stack.pop()
                stack.append(self._global(module, gname))
            elif name == "REDUCE":
                args = stack.pop()
                func = stack.pop()
                stack.append(self._call(func, args))
            elif name in ("NEWOBJ", "NEWOBJ_EX"):
                kwargs = stack.pop() if name == "NEWOBJ_EX" else {}
                args = stack.pop()
                cls = stack.pop()
                if not isinstance(cls, _Safe) or cls.new is None or not isinstance(args, tuple):
                    raise InteropError(f"{self.what}: the pickle creates an object of {cls!r}, which is not allowed")
                stack.append(cls.new(args, kwargs))
            elif name == "BUILD":
                state = stack.pop()
                self._build(stack[-1], state)
            elif name in ("PERSID", "BINPERSID"):
                pid = arg if name == "PERSID" else stack.pop()
                if self.persistent_load is None:
                    raise InteropError(f"{self.what}: unexpected persistent reference in a plain pickle")
                stack.append(self.persistent_load(pid))
            else:  # INST, OBJ, EXT1/2/4, NEXT_BUFFER, READONLY_BUFFER
                raise InteropError(f"{self.what}: pickle opcode {name} is not supported")
        raise InteropError(f"{self.what}: pickle ended without STOP")

    def _target(self, stack, kind):
        if not stack or type(stack[-1]) is not kind:
            raise InteropError(f"{self.what}: malformed pickle (item added to something not a {kind.__name__})")
        return stack[-1]

    @staticmethod
    def _setitems(target: dict, items: list) -> dict:
        if len(items) % 2:
            raise InteropError("malformed pickle (odd number of dict items)")
        for i in range(0, len(items), 2):
            target[_checked_key(items[i])] = items[i + 1]
        return target

    def _call(self, func, args):
        if not isinstance(func, _Safe) or func.fn is None:
            raise InteropError(f"{self.what}: the pickle calls {func!r}, which is not allowed")
        if not isinstance(args, tuple):
            raise InteropError(f"{self.what}: malformed pickle (call arguments are not a tuple)")
        if func.name.startswith("torch.") and func.name.endswith("Storage"):
            raise InteropError(f"{self.what}: the pickle calls {func.name}, which is not allowed")
        try:
            return func.fn(*args)
        except TypeError:
            raise InteropError(f"{self.what}: wrong arguments for {func.name}") from None

    def _build(self, inst, state):
        setter = getattr(type(inst), "_safe_setstate", None)
        if setter is not None:
            setter(inst, state)
        elif state is None:
            pass
        elif type(inst) is dict and isinstance(state, dict):
            # An OrderedDict's pickled state is its instance attributes, not items: ``module.state_dict()``
            # carries ``_metadata`` (per-module version numbers). Attributes hold no tensors; they are dropped.
            pass
        else:
            raise InteropError(f"{self.what}: the pickle sets the state of a {type(inst).__name__}, "
                               "which is not allowed")


def load_pickle_bytes(data: bytes, what: str) -> Any:
    """A plain pickle (no persistent ids), e.g. the authors' network pickles."""
    obj, end = _guard(lambda: SafeUnpickler(data, what).load(0), what)
    return obj


def _guard(fn, what):
    try:
        return fn()
    except InteropError:
        raise
    except RecursionError:
        raise InteropError(f"{what}: structure nested too deeply") from None
    except MemoryError:
        raise InteropError(f"{what}: structure too large for memory") from None
    except Exception as e:  # malformed input surfaces as many exception types; all mean the same
        raise InteropError(f"{what}: not a readable pickle; it may be truncated or corrupted "
                           f"({type(e).__name__}: {str(e)[:200]})") from None


# ---------------------------------------------------------------------------------------------------------
# torch.save files.

def _storage_pid(pid, what):
    if (not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage"
            or not isinstance(pid[1], _Safe) or not hasattr(pid[1], "storage_type")):
        raise InteropError(f"{what}: unsupported persistent reference (only tensor storages are allowed)")
    st: _StorageType = pid[1].storage_type  # type: ignore[attr-defined]
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

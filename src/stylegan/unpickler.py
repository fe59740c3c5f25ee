"""The package's one restricted unpickler: pickles are interpreted here, and nothing a pickle names is executed.

Python's own unpickler imports and calls whatever global a pickle names (``posix.system``, ``builtins.eval``...).
:class:`AllowListUnpickler` instead decodes the stream with :func:`pickletools.genops`, which only parses, and
resolves every global through an allow-list its caller gives: a dict from the global's dotted name to an
:class:`Allowed` stand-in written in this package. ``REDUCE`` calls only a stand-in's ``fn``, ``NEWOBJ`` only its
``new``, and ``BUILD`` sets state only through a ``_safe_setstate`` method of an object the interpreter made. Any
other global, call or opcode is refused, by name, with the caller's error class.

The interpreter keeps its memo in a dict (a huge memo index costs one entry, not a pre-sized table), admits only
scalars or flat tuples of them as dictionary keys and set items, and with :func:`guard` turns every failure on
malformed input into the caller's error class.

Through the memo a pickle can hand one input to a stand-in many times for a few bytes each: a 1 MB string
encoded to bytes a thousand times, or the same raw bytes decoded into a thousand arrays, would build a gigabyte
from a 1 MB file. Stand-ins that copy what they are given therefore :func:`charge` what they build to the pickle
being read, which may build at most ``BUDGET_FACTOR`` times its own size plus ``BUDGET_SLACK`` bytes.

The stand-ins that more than one reader needs live here too: numeric numpy arrays and scalars
(:func:`numpy_array_globals`, :func:`numpy_scalar_globals`; arrays come back as :class:`NpArray`, see
:func:`plain_arrays`) and a few containers. Each reader composes its own allow-list from them and its own
stand-ins: the dataset tool's CIFAR-10 batches (:mod:`stylegan.data.sources`) and the foreign network files
(:mod:`stylegan.interop.torch_files`, which adds torch tensors and the authors' classes).

This module depends on the standard library and numpy only.
"""
from __future__ import annotations

import contextvars
import io
import pickle
import pickletools
import warnings
from typing import Any, Callable

import numpy as np

MAX_DIM = 1 << 40  # the largest array dimension (and storage size) a pickle may declare
BUDGET_FACTOR = 4  # stand-ins may build this many times the pickle's size...
BUDGET_SLACK = 16 << 20  # ...plus this many bytes
ITEM_BYTES = 64  # what one entry of a container a stand-in builds is charged


class PickleRefused(pickle.UnpicklingError):
    """A pickle that names something not allowed, or cannot be read: the default error class."""


def _prefix(what: str) -> str:
    return f"{what}: " if what else ""


# ---------------------------------------------------------------------------------------------------------
# What stand-ins build.

class _Budget:
    __slots__ = ("limit", "size", "used")

    def __init__(self, size: int):
        self.size, self.limit, self.used = size, BUDGET_FACTOR * size + BUDGET_SLACK, 0


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("stylegan_unpickle_budget", default=None)


def charge(nbytes: int) -> None:
    """Counts ``nbytes`` that a stand-in is about to build against the budget of the pickle being read (see the
    module's docstring); :class:`PickleRefused` once the budget is exceeded. Outside a pickle: nothing."""
    budget = _budget.get()
    if budget is None:
        return
    budget.used += nbytes
    if budget.used > budget.limit:
        raise PickleRefused(f"the pickle builds more than {budget.limit >> 20} MB of data from its {budget.size} "
                            "bytes (the same input copied over and over); refusing it")


# ---------------------------------------------------------------------------------------------------------
# Allow-lists.

class Allowed:
    """One global a pickle may name. ``fn(*args)`` is what ``REDUCE`` calls, ``new(args, kwargs)`` what ``NEWOBJ``
    calls; a stand-in with neither can only be passed to other stand-ins. ``marker`` is the caller's data about
    it (e.g. the dtype of a tensor storage class)."""

    __slots__ = ("name", "fn", "new", "marker")

    def __init__(self, name: str, fn: Callable | None = None, new: Callable | None = None, marker: Any = None):
        self.name, self.fn, self.new, self.marker = name, fn, new, marker

    def __repr__(self):
        return f"<allowed {self.name}>"


AllowList = dict[str, Allowed]


def allow(allowed: AllowList, names: str | list[str], fn: Callable | None = None, new: Callable | None = None,
          marker: Any = None) -> None:
    """Adds one stand-in to ``allowed`` under each of ``names``."""
    for n in [names] if isinstance(names, str) else names:
        allowed[n] = Allowed(n, fn, new, marker)


def lookup_global(allowed: AllowList, module, name, what: str = "", error: type[Exception] = PickleRefused):
    """The stand-in for ``module.name``, or ``error`` saying that the pickle may not refer to it."""
    if not isinstance(module, str) or not isinstance(name, str):
        raise error(f"{_prefix(what)}malformed global reference")
    full = f"{module}.{name}"
    if full not in allowed:
        shown = full if len(full) < 200 else full[:200] + "..."
        raise error(f"{_prefix(what)}the pickle refers to the global {shown!r}, which is not on the list of allowed "
                    "globals; refusing to load it (through such references a pickle can run arbitrary code)")
    return allowed[full]


# ---------------------------------------------------------------------------------------------------------
# Containers.

def _is_key(k, depth=0) -> bool:
    if k is None or type(k) in (str, bytes, int, float, bool):
        return True
    return type(k) is tuple and depth == 0 and len(k) <= 16 and all(_is_key(v, 1) for v in k)


def checked_key(k):
    """``k`` if it may be a dictionary key or set item (a scalar or a flat tuple of scalars)."""
    if not _is_key(k):
        raise PickleRefused(f"dictionary key of type {type(k).__name__} is not allowed")
    return k


def pairs_dict(*args) -> dict:
    """A dict from nothing or a list of (key, value) pairs (``collections.OrderedDict``)."""
    if len(args) > 1:
        raise PickleRefused("OrderedDict takes at most one argument")
    out = {}
    if args:
        items = args[0]
        if not isinstance(items, (list, tuple)):
            raise PickleRefused("OrderedDict argument must be a list of pairs")
        charge(ITEM_BYTES * len(items))
        for kv in items:
            if not isinstance(kv, (list, tuple)) or len(kv) != 2:
                raise PickleRefused("OrderedDict argument must be a list of pairs")
            out[checked_key(kv[0])] = kv[1]
    return out


def builtin_dict(*args) -> dict:
    """``dict()`` of nothing, a dict or a list of pairs."""
    if len(args) == 1 and type(args[0]) is dict:
        charge(ITEM_BYTES * len(args[0]))
        return {checked_key(k): v for k, v in args[0].items()}
    return pairs_dict(*args)


def builtin_list(*args) -> list:
    """``list()`` of nothing or of a list or tuple."""
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple))):
        raise PickleRefused("list() takes one list")
    charge(ITEM_BYTES * len(args[0]) if args else 0)
    return list(args[0]) if args else []


def new_dict(args, kwargs=None) -> dict:
    return {}


def new_list(args, kwargs=None) -> list:
    return []


def make_set(*args, frozen=False):
    """``set()`` or ``frozenset()`` of nothing or one collection of scalars."""
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple, set, frozenset))):
        raise PickleRefused("set() takes one list")
    charge(ITEM_BYTES * len(args[0]) if args else 0)
    items = [checked_key(v) for v in (args[0] if args else ())]
    return frozenset(items) if frozen else set(items)


def latin1_bytes(s, encoding="utf-8", *rest) -> bytes:
    """``_codecs.encode(text, "latin1")``: how protocol-2 pickles written by Python 3 hold bytes."""
    if not isinstance(s, str) or encoding not in ("latin1", "latin-1") or rest:
        raise PickleRefused("_codecs.encode is allowed only for latin-1 text (protocol-2 bytes)")
    charge(len(s))
    return s.encode("latin-1")


# ---------------------------------------------------------------------------------------------------------
# numpy: numeric arrays and scalars, never object arrays.

def _text(v):
    """Python 2 strings read as bytes (``encoding="bytes"``) where numpy expects text."""
    return v.decode("latin-1") if isinstance(v, (bytes, bytearray)) else v


class NpDType:
    """A numpy dtype being rebuilt (``numpy.dtype`` then ``BUILD``); :meth:`resolve` gives the real one."""

    def __init__(self, code: str):
        self.code = code
        self.byteorder = "="

    def _safe_setstate(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or _text(state[1]) not in ("<", ">", "=", "|"):
            raise PickleRefused("malformed numpy dtype state")
        self.byteorder = _text(state[1])

    def resolve(self) -> np.dtype:
        if not isinstance(self.code, str) or len(self.code) > 4 or self.code[:1] not in "fiubc":
            raise PickleRefused(f"numpy dtype {self.code!r} is not a plain numeric type")
        dt = np.dtype(self.code).newbyteorder(self.byteorder if self.byteorder in "<>" else "=")
        if dt.kind not in "fiubc" or dt.hasobject:
            raise PickleRefused(f"numpy dtype {self.code!r} is not a plain numeric type")
        return dt


class NpArray:
    """A numpy array being rebuilt (``_reconstruct`` then ``BUILD``); ``.array`` once complete."""

    def __init__(self):
        self.array: np.ndarray | None = None

    def _safe_setstate(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise PickleRefused("malformed numpy array state")
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran, raw = state
        if isinstance(raw, str):  # Python 2 pickles
            raw = raw.encode("latin-1")
        if not isinstance(dtype, NpDType) or not isinstance(raw, (bytes, bytearray)):
            raise PickleRefused("numpy array with an object dtype or no raw data")
        self.array = array_from_bytes(raw, dtype.resolve(), shape, bool(fortran))


def check_shape(shape) -> tuple[int, ...]:
    """``shape`` as a tuple of at most 16 dimensions, each an int in [0, MAX_DIM]."""
    if not isinstance(shape, (tuple, list)) or len(shape) > 16:
        raise PickleRefused("malformed array shape")
    for d in shape:
        if type(d) is not int or d < 0 or d > MAX_DIM:
            raise PickleRefused("malformed array shape")
    return tuple(shape)


def array_from_bytes(raw, dt: np.dtype, shape, fortran: bool) -> np.ndarray:
    """A native-byte-order copy of ``raw`` as an array of ``shape``; the sizes must match exactly."""
    shape = check_shape(shape)
    n = 1
    for d in shape:
        n *= d
    if n * dt.itemsize != len(raw):
        raise PickleRefused(f"numpy array of shape {shape} and dtype {dt} does not match its {len(raw)} bytes")
    charge(len(raw))
    a = np.frombuffer(bytes(raw), dtype=dt).reshape(shape, order="F" if fortran else "C")
    return np.ascontiguousarray(a).astype(dt.newbyteorder("="), copy=True)


def _np_dtype(code, align=False, copy=True):
    code = _text(code)
    if not isinstance(code, str):
        raise PickleRefused("numpy dtype must be given by name")
    return NpDType(code)


def _np_reconstruct(cls, shape, typecode):
    if not (isinstance(cls, Allowed) and cls.name == "numpy.ndarray"):
        raise PickleRefused("numpy _reconstruct of something other than ndarray")
    return NpArray()


def _np_scalar(dtype, raw=None):
    if not isinstance(dtype, NpDType) or not isinstance(raw, (bytes, str)):
        raise PickleRefused("numpy scalar with an object dtype")
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    a = array_from_bytes(raw, dtype.resolve(), (), False)
    return a.item()


def _np_frombuffer(buf, dtype, shape, order):
    if not isinstance(dtype, NpDType) or not isinstance(buf, (bytes, bytearray)):
        raise PickleRefused("numpy buffer with an object dtype")
    a = NpArray()
    a.array = array_from_bytes(buf, dtype.resolve(), shape, order == "F")
    return a


_NP_CORES = ("numpy.core", "numpy._core")  # numpy 1.x and 2.x name their core module differently


def numpy_array_globals() -> AllowList:
    """Numeric numpy arrays, as every numpy pickles them: ``ndarray`` + ``multiarray._reconstruct`` (then
    ``BUILD``), ``numeric._frombuffer`` (protocol 5) and ``dtype``. They come back as :class:`NpArray`."""
    allowed: AllowList = {}
    for core in _NP_CORES:
        allow(allowed, f"{core}.multiarray._reconstruct", _np_reconstruct)
        allow(allowed, f"{core}.numeric._frombuffer", _np_frombuffer)
    allow(allowed, "numpy.ndarray")
    allow(allowed, "numpy.dtype", _np_dtype)
    return allowed


def numpy_scalar_globals() -> AllowList:
    """Numeric numpy scalars (``multiarray.scalar``), which come back as Python numbers."""
    allowed: AllowList = {}
    for core in _NP_CORES:
        allow(allowed, f"{core}.multiarray.scalar", _np_scalar)
    return allowed


def plain_arrays(obj):
    """``obj`` with every :class:`NpArray` in it replaced by its numpy array: lists and dicts are changed in place,
    tuples rebuilt; objects referenced twice stay shared."""
    done: dict[int, tuple[Any, Any]] = {}  # id → (the original, kept alive; its replacement)

    def convert(x):
        if isinstance(x, NpArray):
            if x.array is None:
                raise PickleRefused("numpy array without its data")
            return x.array
        if type(x) not in (list, dict, tuple):
            return x
        if id(x) in done:
            return done[id(x)][1]
        done[id(x)] = (x, x)
        if type(x) is tuple:
            done[id(x)] = (x, tuple(convert(v) for v in x))
        elif type(x) is list:
            x[:] = [convert(v) for v in x]
        else:
            for k, v in list(x.items()):
                x[k] = convert(v)
        return done[id(x)][1]

    return convert(obj)


# ---------------------------------------------------------------------------------------------------------
# The interpreter.

_LITERALS = frozenset({
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "BINBYTES",
    "SHORT_BINBYTES", "BINBYTES8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"})
_PY2_STRINGS = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING"})

# Opcode → the method that runs it. Not listed (INST, OBJ, EXT1/2/4, NEXT_BUFFER, READONLY_BUFFER): refused.
_HANDLERS = {
    **dict.fromkeys(("PROTO", "FRAME"), "_op_framing"),
    **dict.fromkeys(("MARK", "POP", "POP_MARK", "DUP"), "_op_stack"),
    **dict.fromkeys(("NONE", "NEWTRUE", "NEWFALSE", "BYTEARRAY8", *_LITERALS, *_PY2_STRINGS), "_op_value"),
    **dict.fromkeys(("EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_SET", "LIST", "TUPLE", "TUPLE1", "TUPLE2",
                     "TUPLE3", "DICT", "FROZENSET"), "_op_container"),
    **dict.fromkeys(("APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS"), "_op_add_items"),
    **dict.fromkeys(("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET"), "_op_memo"),
    **dict.fromkeys(("GLOBAL", "STACK_GLOBAL", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"), "_op_object"),
    **dict.fromkeys(("PERSID", "BINPERSID"), "_op_persistent"),
}


class AllowListUnpickler:
    """Interprets one pickle of ``data`` (at a position given to :meth:`load`) against the allow-list ``allowed``.

    ``what`` names the input in messages; ``error`` is the class of every error raised (errors of the shared
    stand-ins are re-raised as it, with the same message). ``persistent_load(pid)`` resolves persistent ids;
    without it they are refused. Python 2 strings are decoded with ``encoding`` and ``errors`` as by
    :class:`pickle.Unpickler`, or kept as bytes with ``encoding="bytes"``."""

    def __init__(self, data: bytes, allowed: AllowList, what: str = "", error: type[Exception] = PickleRefused,
                 persistent_load: Callable[[Any], Any] | None = None, encoding: str = "latin-1",
                 errors: str = "strict"):
        self.data, self.allowed, self.what, self.error = data, allowed, what, error
        self.persistent_load, self.encoding, self.errors = persistent_load, encoding, errors
        self._stack: list = []
        self._metastack: list = []
        self._memo: dict = {}

    def _fail(self, message: str) -> Exception:
        return self.error(f"{_prefix(self.what)}{message}")

    def load(self, pos: int = 0) -> tuple[Any, int]:
        """The object and the position just after its STOP opcode. A pickle read inside another one (a stand-in
        that reads nested pickled bytes) shares the outer one's budget."""
        token = _budget.set(_Budget(len(self.data))) if _budget.get() is None else None
        with warnings.catch_warnings():  # pickletools warns about odd escapes in protocol-0 strings
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                return self._run(pos)
            except PickleRefused as e:
                if isinstance(e, self.error):
                    raise
                raise self.error(str(e)) from None
            finally:
                if token is not None:
                    _budget.reset(token)

    def _run(self, pos: int) -> tuple[Any, int]:
        f = io.BytesIO(self.data)
        f.seek(pos)
        self._stack, self._metastack, self._memo = [], [], {}
        for op, arg, _ in pickletools.genops(f):
            name = op.name
            if name == "STOP":
                if len(self._stack) != 1 or self._metastack:
                    raise self._fail("malformed pickle (stack not balanced at STOP)")
                return self._stack.pop(), f.tell()
            handler = _HANDLERS.get(name)
            if handler is None:
                raise self._fail(f"pickle opcode {name} is not supported")
            getattr(self, handler)(name, arg)
        raise self._fail("pickle ended without STOP")

    def _pop_mark(self) -> list:
        items = self._stack
        self._stack = self._metastack.pop()
        return items

    def _op_framing(self, name, arg):
        pass

    def _op_stack(self, name, arg):
        stack = self._stack
        if name == "MARK":
            self._metastack.append(stack)
            self._stack = []
        elif name == "POP":
            if stack:
                stack.pop()
            else:
                self._pop_mark()
        elif name == "POP_MARK":
            self._pop_mark()
        else:  # DUP
            stack.append(stack[-1])

    def _op_value(self, name, arg):
        if name == "NONE":
            arg = None
        elif name in ("NEWTRUE", "NEWFALSE"):
            arg = name == "NEWTRUE"
        elif name == "BYTEARRAY8":
            arg = bytearray(arg)
        elif name in _PY2_STRINGS:
            arg = self._py2_string(arg)
        self._stack.append(arg)

    def _py2_string(self, text: str):
        # pickletools gives the bytes as latin-1 text (STRING: ASCII after its escapes are undone)
        if self.encoding == "bytes":
            return text.encode("latin-1")
        if self.encoding.lower().replace("-", "").replace("_", "") in ("latin1", "iso88591"):
            return text
        return text.encode("latin-1").decode(self.encoding, self.errors)

    def _op_container(self, name, arg):
        stack = self._stack
        empty = {"EMPTY_LIST": list, "EMPTY_TUPLE": tuple, "EMPTY_DICT": dict, "EMPTY_SET": set}.get(name)
        if empty is not None:
            stack.append(empty())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            if len(stack) < n:
                raise self._fail("malformed pickle (stack underflow)")
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        else:
            items = self._pop_mark()
            if name == "LIST":
                made = list(items)
            elif name == "TUPLE":
                made = tuple(items)
            elif name == "DICT":
                made = self._setitems({}, items)
            else:  # FROZENSET
                made = frozenset(checked_key(v) for v in items)
            self._stack.append(made)

    def _op_add_items(self, name, arg):
        if name == "APPEND":
            v = self._stack.pop()
            self._target(list).append(v)
        elif name == "APPENDS":
            items = self._pop_mark()
            self._target(list).extend(items)
        elif name == "SETITEM":
            v = self._stack.pop()
            k = self._stack.pop()
            self._setitems(self._target(dict), [k, v])
        elif name == "SETITEMS":
            items = self._pop_mark()
            self._setitems(self._target(dict), items)
        else:  # ADDITEMS
            items = self._pop_mark()
            target = self._target(set)
            for v in items:
                target.add(checked_key(v))

    def _target(self, kind):
        if not self._stack or type(self._stack[-1]) is not kind:
            raise self._fail(f"malformed pickle (item added to something not a {kind.__name__})")
        return self._stack[-1]

    @staticmethod
    def _setitems(target: dict, items: list) -> dict:
        if len(items) % 2:
            raise PickleRefused("malformed pickle (odd number of dict items)")
        for i in range(0, len(items), 2):
            target[checked_key(items[i])] = items[i + 1]
        return target

    def _op_memo(self, name, arg):
        if name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self._memo[arg] = self._stack[-1]
        elif name == "MEMOIZE":
            self._memo[len(self._memo)] = self._stack[-1]
        else:  # GET, BINGET, LONG_BINGET
            if arg not in self._memo:
                raise self._fail(f"malformed pickle (memo entry {arg} missing)")
            self._stack.append(self._memo[arg])

    def _op_object(self, name, arg):
        stack = self._stack
        if name == "GLOBAL":
            module, _, gname = str(arg).partition(" ")
            stack.append(lookup_global(self.allowed, module, gname, self.what, self.error))
        elif name == "STACK_GLOBAL":
            gname = stack.pop()
            module = stack.pop()
            stack.append(lookup_global(self.allowed, module, gname, self.what, self.error))
        elif name == "REDUCE":
            args = stack.pop()
            func = stack.pop()
            stack.append(self._call(func, args))
        elif name in ("NEWOBJ", "NEWOBJ_EX"):
            kwargs = stack.pop() if name == "NEWOBJ_EX" else {}
            args = stack.pop()
            cls = stack.pop()
            if not isinstance(cls, Allowed) or cls.new is None or not isinstance(args, tuple):
                raise self._fail(f"the pickle creates an object of {cls!r}, which is not allowed")
            stack.append(cls.new(args, kwargs))
        else:  # BUILD
            state = stack.pop()
            self._build(stack[-1], state)

    def _op_persistent(self, name, arg):
        pid = arg if name == "PERSID" else self._stack.pop()
        if self.persistent_load is None:
            raise self._fail("unexpected persistent reference in a plain pickle")
        self._stack.append(self.persistent_load(pid))

    def _call(self, func, args):
        if not isinstance(func, Allowed) or func.fn is None:
            raise self._fail(f"the pickle calls {func!r}, which is not allowed")
        if not isinstance(args, tuple):
            raise self._fail("malformed pickle (call arguments are not a tuple)")
        try:
            return func.fn(*args)
        except TypeError:
            raise self._fail(f"wrong arguments for {func.name}") from None

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
            raise self._fail(f"the pickle sets the state of a {type(inst).__name__}, which is not allowed")


def guard(fn: Callable[[], Any], what: str = "", error: type[Exception] = PickleRefused) -> Any:
    """``fn()``, with every failure on malformed input raised as ``error`` (one line naming ``what``)."""
    p = _prefix(what)
    try:
        return fn()
    except error:
        raise
    except PickleRefused as e:
        raise error(str(e)) from None
    except RecursionError:
        raise error(f"{p}structure nested too deeply") from None
    except MemoryError:
        raise error(f"{p}structure too large for memory") from None
    except Exception as e:  # malformed input surfaces as many exception types; all mean the same
        raise error(f"{p}not a readable pickle; it may be truncated or corrupted "
                    f"({type(e).__name__}: {str(e)[:200]})") from None

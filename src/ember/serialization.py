"""Checkpoints: `ember.save(obj, f)` and `ember.load(f, map_location=None)`, in the safetensors format.

A checkpoint is a plain safetensors file: every tensor of `obj` is stored under its key path (the keys
of a model state dict are kept as they are: 'layer.weight'; nested containers join keys with '.'),
and the structure around the tensors - dicts (any hashable simple keys, insertion order kept), lists,
tuples, numbers, strings, booleans, None, dtypes, devices - is stored as JSON in the file's metadata
(key 'ember.tree'). A tensor that appears several times in `obj` is stored once and loads as one
tensor. Loading never unpickles and never imports or calls anything named by the file: only JSON and
raw tensor bytes are read, so a checkpoint from an untrusted source cannot run code. Pickle files
(e.g. from `torch.save`) are rejected with a clear error.

Objects of other classes are refused, unless the user names their classes as safe globals
(`ember.serialization.add_safe_globals([MyConfig, MyModel])`, or `with ember.serialization.safe_globals([...])`),
as torch's weights_only loading takes them: an object is then stored as its class's qualified name and its
`__dict__` (a module as its plain attributes, parameters, buffers and submodules; hooks are not saved), and
loading rebuilds it with `cls.__new__` only when that class is a safe global at load time too. A class the
file names but the loader was not given is refused with an error that says how to allow it: nothing is
imported by name.

Saving to a path is atomic: the file is written under a temporary name in the same directory,
flushed and fsync'ed, then renamed over `f` (and the directory fsync'ed); if anything fails, the
temporary file is removed and an existing checkpoint at `f` is left untouched.
"""
from __future__ import annotations

import json
import math
import os
import stat
import struct
import uuid
from collections import Counter, OrderedDict

import ml_dtypes
import numpy as np
try:  # safetensors is the file format's library; ember itself imports without it
    from safetensors import TensorSpec, deserialize, safe_open, serialize, serialize_file
except ImportError:  # pragma: no cover - depends on the environment
    TensorSpec = deserialize = safe_open = serialize = serialize_file = None

from ._tensor import Size, Tensor
from .core import dtype as _dt
from .core.device import device as _device

__all__ = ["save", "load", "CheckpointError", "add_safe_globals", "get_safe_globals", "clear_safe_globals",
           "safe_globals"]

FORMAT_KEY = "ember.format"
TREE_KEY = "ember.tree"
FORMAT_VERSION = "1"

# safetensors dtype tags <-> NumPy dtypes of ember's dtypes
_ST_TO_NP = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8), "I16": np.dtype(np.int16),
    "I32": np.dtype(np.int32), "I64": np.dtype(np.int64), "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16), "F32": np.dtype(np.float32), "F64": np.dtype(np.float64),
}


class CheckpointError(RuntimeError):
    """The file is not an ember checkpoint (or not a safetensors file), is corrupt, or holds pickle data."""


def _need_safetensors(fn: str) -> None:
    if serialize_file is None:
        raise ImportError(f"ember.{fn} needs the 'safetensors' package (checkpoints are safetensors files); "
                          "install it with: pip install safetensors")


# ---- saving -----------------------------------------------------------------------------------------

def _path_str(path: tuple) -> str:
    return "obj" + "".join(f"[{k!r}]" for k in path)


def _unsupported(obj, path) -> TypeError:
    t = type(obj)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    where = _path_str(path)
    if callable(getattr(obj, "state_dict", None)):     # a whole module, optimizer or scheduler (torch pickles them)
        what = "model" if callable(getattr(obj, "parameters", None)) else "object"
        return TypeError(f"ember.save: cannot save the {name} itself at {where}: ember never pickles objects, so "
                         f"a {what} is saved as its state dict. Save `{what}.state_dict()` instead, and to load it, "
                         f"build the {what} the same way and call `{what}.load_state_dict(ember.load(path))`. (To "
                         f"save the {what} object itself, name its classes safe: "
                         f"ember.serialization.add_safe_globals([{name}, ...]) when saving and loading.)")
    return TypeError(f"ember.save: cannot save an object of type {name} at {where}; checkpoints hold "
                     "tensors, dicts, lists, tuples, str, int, float, bool, None, ember.dtype and ember.device "
                     f"(no pickle), and objects of classes named safe: ember.serialization.add_safe_globals([{name}])")


# ---- safe globals: the classes whose objects a checkpoint may hold ----------------------------------------------

_SAFE: dict = {}            # "module.qualname" -> class, from add_safe_globals
_SCOPED: list = []          # stacks of such dicts from `with safe_globals(...)`


def _class_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _as_classes(classes, fn):
    out = {}
    for c in classes:
        if isinstance(c, tuple) and len(c) == 2:     # torch's (class, "name") form
            c = c[0]
        if not isinstance(c, type):
            raise TypeError(f"ember.serialization.{fn}: expected classes, got {c!r}")
        out[_class_name(c)] = c
    return out


def add_safe_globals(classes) -> None:
    """Allows objects of these classes in checkpoints (saved as their attributes, rebuilt with cls.__new__)."""
    _SAFE.update(_as_classes(classes, "add_safe_globals"))


def get_safe_globals() -> list:
    return list(_SAFE.values())


def clear_safe_globals() -> None:
    _SAFE.clear()


class safe_globals:  # noqa: N801 - torch's name
    """`with safe_globals([A, B]):` allows A and B in checkpoints within the block."""

    def __init__(self, classes):
        self.classes = _as_classes(classes, "safe_globals")

    def __enter__(self):
        _SCOPED.append(self.classes)
        return self

    def __exit__(self, *exc):
        _SCOPED.remove(self.classes)


def _allowed(name: str):
    for scope in reversed(_SCOPED):
        if name in scope:
            return scope[name]
    return _SAFE.get(name)


_MODULE_INTERNALS = frozenset(("training", "_parameters", "_buffers", "_non_persistent_buffers_set", "_modules"))


class _Writer:
    def __init__(self):
        self.arrays: dict = {}   # tensor name -> C-contiguous CPU array
        self.by_id: dict = {}    # id(tensor) -> name (a tensor seen twice is stored once)
        self.keep: list = []     # keeps the saved tensors alive while their pointers are in use

    def tensor_name(self, path) -> str:
        base = ".".join(str(k) for k in path) if path else "tensor"
        name, n = base, 1
        while name in self.arrays:
            n += 1
            name = f"{base}#{n}"
        return name

    def encode_tensor(self, t: Tensor, path) -> dict:
        name = self.by_id.get(id(t))
        if name is None:
            name = self.tensor_name(path)
            arr = t._host_array()
            if not arr.flags.c_contiguous:
                arr = arr.copy(order="C")
            self.arrays[name] = arr
            self.by_id[id(t)] = name
            self.keep.append(t)
        node = {"T": name, "dev": str(t.device)}
        if t.requires_grad:
            node["rg"] = True
        if type(t) is not Tensor and type(t).__name__ == "Parameter" and type(t).__module__.startswith("ember.nn"):
            node["param"] = True
        return node

    def encode_key(self, k, path):
        if k is None or isinstance(k, (bool, int, str)):
            return k
        if isinstance(k, float):
            return k if math.isfinite(k) else {"F": repr(k)}
        if isinstance(k, tuple):
            return {"U": [self.encode_key(x, path) for x in k]}
        raise TypeError(f"ember.save: cannot save a dict key of type {type(k).__name__} ({k!r}) in "
                        f"{_path_str(path)}; keys must be str, int, float, bool, None or tuples of those")

    def encode(self, obj, path):
        if obj is None or obj is True or obj is False:
            return obj
        if isinstance(obj, str):
            return obj + ""  # a plain str, also for str subclasses
        if isinstance(obj, Tensor):
            return self.encode_tensor(obj, path)
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            obj = float(obj)
            return obj if math.isfinite(obj) else {"F": repr(obj)}
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            return self.encode(obj.item(), path)
        if isinstance(obj, dict):
            if isinstance(obj, Counter):
                tag = "C"
            elif isinstance(obj, OrderedDict):
                tag = "OD"
            else:
                tag = "D"
            if all(k.__class__ is str for k in obj):
                return {tag: {k: self.encode(v, path + (k,)) for k, v in obj.items()}}
            return {tag + "I": [[self.encode_key(k, path), self.encode(v, path + (k,))] for k, v in obj.items()]}
        if isinstance(obj, list):
            return [self.encode(v, path + (i,)) for i, v in enumerate(obj)]
        if isinstance(obj, Size):
            return {"S": [int(x) for x in obj]}
        if isinstance(obj, tuple):
            return {"U": [self.encode(v, path + (i,)) for i, v in enumerate(obj)]}
        if isinstance(obj, _dt.dtype):
            return {"dtype": obj.name}
        if isinstance(obj, _device):
            return {"device": str(obj)}
        name = _class_name(type(obj))
        if _allowed(name) is type(obj):
            return self.encode_object(obj, name, path)
        raise _unsupported(obj, path)

    def encode_object(self, obj, name, path):
        """An object of a safe-global class: its class name and attributes (a module: its parts)."""
        if _is_module(obj):
            attrs = {k: v for k, v in obj.__dict__.items() if k not in _MODULE_INTERNALS and not k.startswith("_")}
            return {"M": [name, self.encode({"attrs": attrs, "params": obj._parameters, "buffers": obj._buffers,
                                             "transient": sorted(obj._non_persistent_buffers_set),
                                             "modules": obj._modules, "training": obj.training}, path)]}
        state = obj.__getstate__() if hasattr(obj, "__getstate__") else obj.__dict__
        if state is None:
            state = {}
        if not isinstance(state, dict):
            raise TypeError(f"ember.save: cannot save the {name} at {_path_str(path)}: its state is a "
                            f"{type(state).__name__}, not a dict of attributes")
        return {"O": [name, self.encode(dict(state), path)]}

    def specs(self) -> dict:
        return {name: TensorSpec(dtype=a.dtype.name, shape=list(a.shape), data_ptr=a.ctypes.data, data_len=a.nbytes)
                for name, a in self.arrays.items()}


def _is_module(obj) -> bool:
    from .nn import Module
    return isinstance(obj, Module)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(specs: dict, metadata: dict, path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"ember.save: {path!r} is a directory; pass a file path")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)  # 0o666 less the umask, as open() would give
    finally:
        os.close(fd)
    try:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)  # an overwritten checkpoint keeps its permissions
        except OSError:
            pass
        serialize_file(specs, tmp, metadata=metadata)
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def save(obj, f) -> None:
    """Saves `obj` (a tensor, or dicts/lists/tuples of tensors and plain values) to `f`.

    `f` is a path (str or os.PathLike; written atomically) or a binary file object with `write`.
    Raises TypeError, naming the key path and type, for objects a checkpoint can't hold.
    """
    _need_safetensors("save")
    writer = _Writer()
    tree = writer.encode(obj, ())
    metadata = {FORMAT_KEY: FORMAT_VERSION, TREE_KEY: json.dumps(tree, allow_nan=False, separators=(",", ":"))}
    specs = writer.specs()
    if hasattr(f, "write") and not isinstance(f, (str, bytes, os.PathLike)):
        f.write(serialize(specs, metadata=metadata))
        return
    _write_atomic(specs, metadata, os.fspath(f))


# ---- loading ----------------------------------------------------------------------------------------

def _sniff(head: bytes, total: int, where: str) -> None:
    """Accepts a safetensors header; rejects pickle / torch zip files and anything else with a clear error."""
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if n + 8 <= total and head[8:9] == b"{":
            return
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        raise CheckpointError(f"ember.load: {where} holds pickle data (e.g. a file written by torch.save or "
                              "pickle.dump). ember never unpickles, because loading pickle can run arbitrary code; "
                              "save the tensors with ember.save or as safetensors instead")
    if head[:4] == b"PK\x03\x04":
        raise CheckpointError(f"ember.load: {where} is a zip archive (the torch.save format, which holds pickle "
                              "data). ember never unpickles, because loading pickle can run arbitrary code; save "
                              "the tensors with ember.save or as safetensors instead")
    if total < 9:
        raise CheckpointError(f"ember.load: {where} is not an ember checkpoint (a safetensors file): it has only "
                              f"{total} bytes")
    raise CheckpointError(f"ember.load: {where} is not an ember checkpoint (a safetensors file): its first 8 "
                          "bytes are not the length of a JSON header")


class _PathReader:
    def __init__(self, path: str):
        self.handle = safe_open(path, framework="numpy")
        self.metadata = self.handle.metadata() or {}
        self.names = list(self.handle.keys())

    def get(self, name: str) -> np.ndarray:
        return self.handle.get_tensor(name)

    def close(self):
        self.handle = None


class _BytesReader:
    def __init__(self, data: bytes):
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        self.metadata = header.get("__metadata__") or {}
        self.entries = {name: info for name, info in deserialize(data)}
        self.names = list(self.entries)

    def get(self, name: str) -> np.ndarray:
        info = self.entries[name]
        npdt = _ST_TO_NP.get(info["dtype"])
        if npdt is None:
            raise CheckpointError(f"ember.load: tensor {name!r} has dtype {info['dtype']}, which ember lacks")
        return np.frombuffer(info["data"], dtype=npdt).reshape(info["shape"])

    def close(self):
        self.entries = None


class _Loader:
    def __init__(self, reader, map_location, where: str):
        self.reader = reader
        self.map_location = map_location
        self.where = where
        self.cache: dict = {}
        self.names = set(reader.names)

    def corrupt(self, why: str) -> CheckpointError:
        return CheckpointError(f"ember.load: {self.where} is a corrupt ember checkpoint: {why}")

    def tensor(self, node: dict) -> Tensor:
        name = node.get("T")
        if name in self.cache:
            return self.cache[name]
        if name not in self.names:
            raise self.corrupt(f"its structure refers to a tensor {name!r} that the file does not hold")
        try:
            arr = self.reader.get(name)
        except CheckpointError:
            raise
        except Exception as e:  # an unknown dtype tag, a truncated file...
            raise self.corrupt(f"tensor {name!r} can't be read ({e})") from e
        if arr.dtype not in _dt._FROM_NP:
            raise CheckpointError(f"ember.load: tensor {name!r} in {self.where} has dtype {arr.dtype}, which ember "
                                  "lacks")
        if not arr.flags.writeable or not arr.flags.c_contiguous:
            arr = np.array(arr, copy=True, order="C")
        t = Tensor._from_numpy(arr, _dt.from_numpy_dtype(arr.dtype))
        t = self.place(t, node.get("dev", "cpu"), name)
        if node.get("rg"):
            t.requires_grad_(True)
        if node.get("param"):
            try:  # a fixed class, never one named by the file
                from .nn import Parameter
                t = Parameter(t, requires_grad=bool(node.get("rg")))
            except (ImportError, TypeError):
                pass
        self.cache[name] = t
        return t

    def place(self, t: Tensor, saved: str, name: str) -> Tensor:
        ml = self.map_location
        if ml is None:
            target = saved
        elif isinstance(ml, (str, _device)):
            target = ml
        elif isinstance(ml, dict):
            target = ml.get(saved, saved)
        elif callable(ml):
            out = ml(t, saved)
            if out is None:
                target = saved
            elif isinstance(out, Tensor):
                return out
            else:
                target = out
        else:
            raise TypeError(f"ember.load: map_location must be None, a str, an ember.device, a dict or a callable, "
                            f"got {type(ml).__name__}")
        if isinstance(target, str) and target.startswith("cpu") and t.device.type == "cpu":
            return t
        try:
            return t.to(target)
        except (RuntimeError, ValueError, TypeError) as e:
            raise RuntimeError(f"ember.load: can't place tensor {name!r} (saved on {saved}) on {target}: {e}; "
                               "pass map_location='cpu' (or a device that exists here)") from e

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(x) for x in node]
        if not isinstance(node, dict) or len(node) == 0:
            raise self.corrupt(f"unexpected node {node!r} in its structure")
        if "T" in node:
            return self.tensor(node)
        if len(node) != 1:
            raise self.corrupt(f"unexpected node with keys {sorted(node)} in its structure")
        (tag, val), = node.items()
        if tag in ("D", "OD", "C"):
            items = ((k, self.decode(v)) for k, v in val.items())
        elif tag in ("DI", "ODI", "CI"):
            items = ((self.decode_key(k), self.decode(v)) for k, v in val)
            tag = tag[:-1]
        elif tag == "U":
            return tuple(self.decode(x) for x in val)
        elif tag == "S":
            return Size(int(x) for x in val)
        elif tag == "F":
            return float(val)
        elif tag == "dtype":
            try:
                return _dt._by_name(val)
            except KeyError:
                raise self.corrupt(f"unknown dtype {val!r}") from None
        elif tag == "device":
            return _device(val)
        elif tag in ("O", "M"):
            return self.decode_object(tag, val)
        else:
            raise self.corrupt(f"unknown node tag {tag!r} in its structure")
        if tag == "D":
            return dict(items)
        if tag == "OD":
            return OrderedDict(items)
        return Counter(dict(items))

    def decode_object(self, tag, val):
        if not (isinstance(val, list) and len(val) == 2 and isinstance(val[0], str)):
            raise self.corrupt(f"unexpected object node {val!r}")
        name, state = val
        cls = _allowed(name)
        if cls is None:
            raise CheckpointError(f"ember.load: {self.where} holds an object of class {name}, which is not a safe "
                                  f"global here. If you trust this file, allow the class: "
                                  f"ember.serialization.add_safe_globals([{name.rsplit('.', 1)[-1]}]) (or `with "
                                  f"ember.serialization.safe_globals([...]):` around the load); ember never imports "
                                  f"a class the file names")
        state = self.decode(state)
        obj = cls.__new__(cls)
        if tag == "M":
            from .nn import Module      # a fixed class, never one named by the file
            if not issubclass(cls, Module) or not isinstance(state, dict):
                raise self.corrupt(f"a module node for {name}, which is not an nn.Module")
            Module.__init__(obj)
            for k, v in state["attrs"].items():
                object.__setattr__(obj, k, v)
            obj._parameters.update(state["params"])
            obj._buffers.update(state["buffers"])
            obj._non_persistent_buffers_set = set(state["transient"])
            obj._modules.update(state["modules"])
            obj.training = bool(state["training"])
            return obj
        if not isinstance(state, dict):
            raise self.corrupt(f"the state of a {name} is not a dict")
        if hasattr(obj, "__setstate__"):
            obj.__setstate__(state)
        else:
            obj.__dict__.update(state)
        return obj

    def decode_key(self, k):
        if isinstance(k, dict):
            if "U" in k:
                return tuple(self.decode_key(x) for x in k["U"])
            if "F" in k:
                return float(k["F"])
            raise self.corrupt(f"unexpected dict key node {k!r}")
        return k


def load(f, map_location=None, *, weights_only: bool = True, mmap=None, **kwargs):
    """Loads an object saved by `ember.save` from a path or a binary file object.

    map_location: None (tensors go back to the device they were saved from), a device or device
    string (all tensors go there), a dict mapping saved device strings to target ones (e.g.
    {'cuda:1': 'cuda:0'}), or a callable `fn(tensor, saved_location) -> tensor or None` (None keeps
    the default placement).

    A safetensors file written by other tools (no ember structure) loads as a dict of tensors.
    `weights_only` and `mmap` are accepted for torch compatibility; loading never unpickles.
    Raises FileNotFoundError for a missing file and CheckpointError for pickle data and for files that
    are not (valid) checkpoints.
    """
    _need_safetensors("load")
    if kwargs:
        raise TypeError(f"ember.load() got unexpected keyword arguments {sorted(kwargs)} (there is no pickle "
                        "module to pass them to)")
    if hasattr(f, "read") and not isinstance(f, (str, bytes, os.PathLike)):
        data = f.read()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"ember.load: the file object must be opened in binary mode (read() returned "
                            f"{type(data).__name__})")
        data = bytes(data)
        where = "the given file object"
        _sniff(data[:9], len(data), where)
        try:
            reader = _BytesReader(data)
        except (ValueError, KeyError, struct.error) as e:
            raise CheckpointError(f"ember.load: {where} is not a valid safetensors file: {e}") from e
        except Exception as e:  # safetensors' own error type
            raise CheckpointError(f"ember.load: {where} is not a valid safetensors file: {e}") from e
    else:
        path = os.fspath(f)
        where = repr(path)
        if not os.path.exists(path):
            raise FileNotFoundError(2, f"ember.load: no such file: {path!r}", path)
        if os.path.isdir(path):
            raise IsADirectoryError(21, f"ember.load: {path!r} is a directory, not a checkpoint file", path)
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(9)
        _sniff(head, size, where)
        try:
            reader = _PathReader(path)
        except Exception as e:
            raise CheckpointError(f"ember.load: {where} is not a valid safetensors file: {e}") from e
    loader = _Loader(reader, map_location, where)
    try:
        meta = reader.metadata
        if FORMAT_KEY not in meta:
            # A plain safetensors file: its tensors by name.
            return {name: loader.tensor({"T": name, "dev": "cpu"}) for name in reader.names}
        if meta[FORMAT_KEY] != FORMAT_VERSION:
            raise CheckpointError(f"ember.load: {where} has ember checkpoint format {meta[FORMAT_KEY]!r}; this "
                                  f"version of ember reads format {FORMAT_VERSION!r}")
        try:
            tree = json.loads(meta.get(TREE_KEY, ""))
        except ValueError as e:
            raise loader.corrupt(f"its structure metadata is not valid JSON ({e})") from e
        return loader.decode(tree)
    finally:
        reader.close()

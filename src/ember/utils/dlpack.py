"""DLPack and `__cuda_array_interface__`: ember tensors to and from NumPy, torch, CuPy, JAX, ... without a copy.

- `Tensor.__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None)` and
  `Tensor.__dlpack_device__()`, as the Python array API has them: a "dltensor_versioned" capsule
  (DLPack 1.x) for a consumer that passes max_version >= (1, 0), the legacy "dltensor" one otherwise.
  On CUDA, the consumer's stream (None or 1: the legacy default stream, 2: the per-thread default
  stream, another int: a cudaStream_t) waits on ember's current stream through an event; -1 skips it.
- `from_dlpack(x, *, device=None, copy=None)`: an ember tensor over the memory of any object with
  `__dlpack__`/`__dlpack_device__`, of a DLPack capsule, or of an object with
  `__cuda_array_interface__`. The result keeps the producer's memory alive and releases it (the
  managed tensor's deleter, called once) when the last ember tensor or NumPy view using it is gone.
- `to_dlpack(t)`: a legacy capsule, as `torch.utils.dlpack.to_dlpack`.
- `Tensor.__cuda_array_interface__` (version 3) on CUDA tensors; an AttributeError elsewhere, so that
  `hasattr(cpu_tensor, "__cuda_array_interface__")` is False, as in torch.

Exported tensors stay alive through the capsule (see ember._dlpack). Tensors that require grad are
refused (BufferError), as torch does. A read-only producer (a NumPy array with writeable=False) is
imported without a copy, as torch does; ember's storage is then read-only, so an in-place op raises
as it does on `ember.from_numpy` of that array, and re-exporting it sets DLPack's read-only flag
(a legacy capsule cannot say so, and is refused, as NumPy refuses).
"""
from __future__ import annotations

import ctypes
from math import prod

import numpy as np

from .. import _dlpack as _dl
from .._dlpack import DLDeviceType, DLDataTypeCode
from .._tensor import Tensor
from ..core import dtype as _dt
from ..core.device import CPU, canonical, device as _device
from ..core.shape import contiguous_strides
from ..core.storage import Storage

__all__ = ["from_dlpack", "to_dlpack", "DLDeviceType"]

# ---- dtypes ---------------------------------------------------------------------------------------

_TO_DL = {
    _dt.bool: (DLDataTypeCode.kDLBool, 8), _dt.uint8: (DLDataTypeCode.kDLUInt, 8),
    _dt.int8: (DLDataTypeCode.kDLInt, 8), _dt.int16: (DLDataTypeCode.kDLInt, 16),
    _dt.int32: (DLDataTypeCode.kDLInt, 32), _dt.int64: (DLDataTypeCode.kDLInt, 64),
    _dt.float16: (DLDataTypeCode.kDLFloat, 16), _dt.bfloat16: (DLDataTypeCode.kDLBfloat, 16),
    _dt.float32: (DLDataTypeCode.kDLFloat, 32), _dt.float64: (DLDataTypeCode.kDLFloat, 64),
}
_FROM_DL = {(int(c), b): d for d, (c, b) in _TO_DL.items()}
_SUPPORTED = ", ".join(f"{d.name} ({DLDataTypeCode(c).name}, {b} bits)" for d, (c, b) in _TO_DL.items())

# __cuda_array_interface__ type strings, as torch writes them (bfloat16 is "<V2", as ml_dtypes has it)
_TYPESTR = {_dt.bool: "|b1", _dt.uint8: "|u1", _dt.int8: "|i1", _dt.int16: "<i2", _dt.int32: "<i4",
            _dt.int64: "<i8", _dt.float16: "<f2", _dt.bfloat16: "<V2", _dt.float32: "<f4", _dt.float64: "<f8"}
_FROM_TYPESTR = {v: d for d, v in _TYPESTR.items()}
_FROM_TYPESTR.update({"<b1": _dt.bool, "<u1": _dt.uint8, "<i1": _dt.int8, "|V2": _dt.bfloat16})


def _dl_type_name(code: int, bits: int, lanes: int) -> str:
    try:
        name = DLDataTypeCode(code).name
    except ValueError:
        name = f"code {code}"
    return f"{name}, {bits} bits" + (f", {lanes} lanes" if lanes != 1 else "")


def _ember_dtype(code: int, bits: int, lanes: int):
    d = _FROM_DL.get((code, bits)) if lanes == 1 else None
    if d is None:
        raise BufferError(f"ember.from_dlpack: the DLPack dtype ({_dl_type_name(code, bits, lanes)}) has no ember "
                          f"equivalent; ember takes {_SUPPORTED}")
    return d


# ---- devices --------------------------------------------------------------------------------------

_HOST = (DLDeviceType.kDLCPU, DLDeviceType.kDLCUDAHost)
_CUDA = (DLDeviceType.kDLCUDA, DLDeviceType.kDLCUDAManaged)


def _dl_device_name(dev_type: int, dev_id: int) -> str:
    try:
        return f"{DLDeviceType(dev_type).name} ({int(dev_type)}, {dev_id})"
    except ValueError:
        return f"device type {dev_type} ({dev_type}, {dev_id})"


def _ember_device(dev_type: int, dev_id: int, who: str = "ember.from_dlpack"):
    if dev_type in _HOST:
        return CPU
    if dev_type in _CUDA:
        return _device("cuda", dev_id)
    raise BufferError(f"{who}: the producer's memory is on {_dl_device_name(dev_type, dev_id)}, which ember "
                      f"cannot use; ember takes kDLCPU (1), kDLCUDAHost (3), kDLCUDA (2) and kDLCUDAManaged (13)")


def _dlpack_device(self) -> tuple:
    """(DLDeviceType, index) of this tensor's memory: kDLCUDAHost for pinned CPU memory, as torch reports."""
    dev = self._storage.device
    if dev.type == "cuda":
        return (DLDeviceType.kDLCUDA, dev.index or 0)
    if self._storage.pinned:
        return (DLDeviceType.kDLCUDAHost, 0)
    return (DLDeviceType.kDLCPU, 0)


# ---- CUDA helpers (imported lazily: this module loads without cuda-bindings) ------------------------

def _stream_int(s) -> int:
    """A stream as the array API passes it: the legacy default stream (handle 0) is 1."""
    return s.ptr if s.ptr else 1


def _consumer_stream(stream, index: int):
    from ..backends.cuda.stream import ExternalStream, default_stream
    if stream is None or stream == 1:
        return default_stream(index)    # the legacy default stream
    if stream == 0:
        raise ValueError("__dlpack__: stream=0 is ambiguous on CUDA and the array API disallows it; pass 1 for the "
                         "legacy default stream, 2 for the per-thread default stream, or a cudaStream_t")
    return ExternalStream(stream, index)    # 2 is CU_STREAM_PER_THREAD, which the driver takes as a handle


def _same_stream(a, b) -> bool:
    return (a.ptr or 1) == (b.ptr or 1)


def _wait(waiter, producer, index: int) -> None:
    """`waiter` waits for the work queued on `producer` so far (nothing to do when they are the same)."""
    if _same_stream(waiter, producer):
        return
    from ..backends.cuda.device import device as _cuda_device
    from ..backends.cuda.stream import Event
    with _cuda_device(index):
        ev = Event()
        ev.record(producer)
        waiter.wait_event(ev)


def _sync_to_consumer(index: int, stream) -> None:
    """The producer's half of the array API's handshake: the consumer's stream waits on ember's current one."""
    if stream == -1:
        return
    from ..backends.cuda.stream import current_stream
    _wait(_consumer_stream(stream, index), current_stream(index), index)


def _foreign_cuda_buffer(ptr: int, nbytes: int, owner, readonly: bool):
    """A CUDA storage's `data` over memory ember did not allocate: the caching allocator never sees it;
    `owner` (what keeps the memory alive) is dropped when the storage dies."""
    global _ForeignCudaBuffer
    if _ForeignCudaBuffer is None:
        from ..backends.cuda.memory import CudaBuffer

        class ForeignCudaBuffer(CudaBuffer):
            __slots__ = ("owner", "readonly")

            def __init__(self, ptr, nbytes, owner, readonly):
                CudaBuffer.__init__(self, None, None, nbytes)   # no block: nothing returns to the allocator
                self.ptr = ptr
                self.owner = owner
                self.readonly = readonly
        _ForeignCudaBuffer = ForeignCudaBuffer
    return _ForeignCudaBuffer(ptr, nbytes, owner, readonly)


_ForeignCudaBuffer = None


def _pointer_device(ptr: int) -> int:
    """The CUDA device that owns `ptr` (the current device when the driver cannot tell)."""
    from ..backends.cuda.device import current_device
    from ..backends.cuda.driver import driver, ensure_context
    if not ptr:
        return current_device()
    d = driver()
    try:
        ensure_context(current_device())
        err, value = d.cuPointerGetAttribute(d.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, ptr)
        if err == d.CUresult.CUDA_SUCCESS:
            return int(value)
    except Exception:  # noqa: BLE001
        pass
    return current_device()


# ---- export ---------------------------------------------------------------------------------------

def _read_only(t: Tensor) -> bool:
    data = t._storage.data
    if isinstance(data, np.ndarray):
        return not data.flags.writeable
    return bool(getattr(data, "readonly", False))


def _export_target(self, dl_device, copy):
    """(tensor to export, whether it is a copy) for a dl_device request."""
    src = _dlpack_device(self)
    try:
        dev_type, dev_id = int(dl_device[0]), int(dl_device[1])
    except (TypeError, ValueError, IndexError):
        raise TypeError(f"__dlpack__: dl_device must be a (DLDeviceType, index) tuple such as (1, 0), "
                        f"got {dl_device!r}") from None
    if (dev_type, dev_id) == (int(src[0]), src[1]) or \
            (dev_type == DLDeviceType.kDLCPU and dev_id == 0 and src[0] == DLDeviceType.kDLCUDAHost):
        return self, False      # already there (pinned host memory is CPU memory too)
    if dev_type == DLDeviceType.kDLCPU and dev_id == 0:
        target = CPU
    elif dev_type == DLDeviceType.kDLCUDA:
        target = _device("cuda", dev_id)
    else:
        raise BufferError(f"__dlpack__: ember cannot export to dl_device {_dl_device_name(dev_type, dev_id)}; it "
                          f"exports to kDLCPU (1, 0) and kDLCUDA (2, index); this tensor is on "
                          f"{_dl_device_name(*src)}")
    if copy is False:
        raise BufferError(f"__dlpack__: exporting this tensor on {_dl_device_name(*src)} to dl_device "
                          f"{_dl_device_name(dev_type, dev_id)} needs a copy, but copy=False")
    return self.to(target), True


def _dlpack(self, *, stream=None, max_version=None, dl_device=None, copy=None):
    """A DLPack capsule sharing this tensor's memory (see the module's docstring)."""
    if self.requires_grad:
        raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
    if stream is not None and type(stream) is not int:
        raise TypeError(f"__dlpack__: stream must be an int or None, got {type(stream).__name__}")
    if copy not in (None, True, False):
        raise TypeError(f"__dlpack__: copy must be True, False or None, got {copy!r}")
    t, copied = (self, False) if dl_device is None else _export_target(self, dl_device, copy)
    if copy and not copied:
        t, copied = t.clone(), True
    dev = t._storage.device
    if dev.type == "cuda":
        _sync_to_consumer(dev.index or 0, stream)
    elif stream is not None and stream != -1 and self._storage.device.type != "cuda":
        # (a CUDA tensor exported to dl_device=kDLCPU was copied with a blocking copy: nothing to order)
        raise ValueError(f"__dlpack__: stream must be None (or -1) for a tensor on the CPU, got {stream}")
    if max_version is None:
        versioned = False
    else:
        try:
            versioned = int(max_version[0]) >= 1
        except (TypeError, ValueError, IndexError):
            raise TypeError(f"__dlpack__: max_version must be a (major, minor) tuple, got {max_version!r}") from None
    read_only = _read_only(t)
    if read_only and not versioned:
        raise BufferError("__dlpack__: this tensor's memory is read-only, which a legacy (unversioned) DLPack "
                          "capsule cannot signal; pass max_version=(1, 0) for a versioned capsule, or export a "
                          "copy (copy=True)")
    st = t._storage
    # empty tensors point at the storage (their offset may be past its end; a CUDA one may have no memory)
    data = st.data_ptr() + t._offset * t._dtype.itemsize if t.numel() else st.data_ptr()
    flags = (_dl.DLPACK_FLAG_BITMASK_READ_ONLY if read_only else 0) | \
        (_dl.DLPACK_FLAG_BITMASK_IS_COPIED if copied else 0)
    return _dl.make_capsule(st, data, _dlpack_device(t), _TO_DL[t._dtype], t._shape, t._stride,
                            versioned=versioned, flags=flags)


def to_dlpack(tensor: Tensor):
    """A legacy "dltensor" capsule of `tensor` (torch.utils.dlpack.to_dlpack); `from_dlpack` takes it once."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack expects an ember.Tensor, got {type(tensor).__name__}")
    return _dlpack(tensor)


def _cuda_array_interface(self) -> dict:
    """The CUDA Array Interface (version 3) of a CUDA tensor, with ember's current stream to synchronise on."""
    if self._storage.device.type != "cuda":
        raise AttributeError(f"Can't get __cuda_array_interface__ on a non-CUDA tensor (device {self.device}); if "
                             f"CUDA data is required use tensor.cuda() to copy the tensor to device memory")
    if self.requires_grad:
        raise RuntimeError("Can't get __cuda_array_interface__ on a tensor that requires grad; if gradients "
                           "aren't required, use tensor.detach() to get a tensor that doesn't require grad")
    from ..backends.cuda.stream import current_stream
    it = self._dtype.itemsize
    strides = None if self.is_contiguous() else tuple(s * it for s in self._stride)
    ptr = self.data_ptr() if self.numel() else 0
    return {"typestr": _TYPESTR[self._dtype], "shape": tuple(self._shape), "strides": strides,
            "data": (ptr, _read_only(self)), "version": 3,
            "stream": _stream_int(current_stream(self._storage.device.index or 0))}


# ---- import ---------------------------------------------------------------------------------------

def _empty(shape, dtype, dev) -> Tensor:
    if dev is CPU:
        return Tensor._from_numpy(np.empty(shape, dtype.np), dtype)
    from ..backends.cuda.memory import empty_cuda
    return empty_cuda(tuple(shape), dtype, dev.index or 0)


def _wrap(start: int, nbytes: int, dev, owner, read_only: bool, pinned: bool = False) -> Storage:
    """A storage over `nbytes` of foreign memory at `start`, holding `owner` for as long as it is used."""
    if dev is CPU:
        buf = (ctypes.c_uint8 * nbytes).from_address(start)
        buf._ember_owner = owner        # the NumPy array's base is `buf`: every view keeps the owner alive
        data = np.frombuffer(buf, np.uint8)
        if read_only:
            data.flags.writeable = False
        st = Storage(data, CPU, nbytes)
        st.pinned = pinned
        return st
    return Storage(_foreign_cuda_buffer(start, nbytes, owner, read_only), dev, nbytes)


def _from_memory(who: str, base: int, shape: tuple, strides, dtype, dev, owner, *, read_only: bool, copy,
                 pinned: bool = False, release=None) -> Tensor:
    """An ember tensor over foreign memory: element 0 at `base`, `strides` in elements (None: contiguous).
    `release()` gives the memory back at once (when nothing of it is kept)."""
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise BufferError(f"{who}: negative size in shape {shape}")
    strides = contiguous_strides(shape) if strides is None else tuple(int(s) for s in strides)
    # a dimension of size 1 never moves along its stride: a negative one there is no reason to copy
    strides = tuple(0 if s < 0 and n == 1 else s for n, s in zip(shape, strides))
    it = dtype.itemsize
    if prod(shape) == 0:
        if release is not None:
            release()
        return _empty(shape, dtype, dev)
    lo = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    nbytes = (hi - lo + 1) * it
    start = base + lo * it
    if lo < 0:  # ember tensors have no negative strides: only a copy can hold this
        if copy is False:
            raise BufferError(f"{who}: strides {strides} are negative, which an ember tensor cannot view; a copy "
                              f"is needed but copy=False")
        if dev is not CPU:
            raise BufferError(f"{who}: strides {strides} are negative, which an ember tensor cannot view; make "
                              f"the producer's array contiguous first")
        st = _wrap(start, nbytes, dev, owner, True)
        view = np.ndarray(shape, dtype.np, st.data, -lo * it, tuple(s * it for s in strides))
        out = Tensor._from_numpy(np.array(view, copy=True, order="C"), dtype)
        del view, st
        return out
    t = Tensor._make(_wrap(start, nbytes, dev, owner, read_only, pinned), shape, strides, 0, dtype)
    return t.clone() if copy else t


def _import_capsule(capsule, copy=None) -> Tensor:
    """An ember tensor over a DLPack capsule's memory (consumed; a copy when `copy` is True)."""
    m = _dl.consume(capsule)    # from here on, m.owner calls the producer's deleter when it is dropped
    who = "ember.from_dlpack"
    dtype = _ember_dtype(m.code, m.bits, m.lanes)
    dev = _ember_device(m.device_type, m.device_id)
    base = m.data + m.byte_offset
    return _from_memory(who, base, m.shape, m.strides, dtype, dev, m.owner, read_only=m.read_only,
                        copy=None if copy and m.is_copied else copy, pinned=m.device_type == DLDeviceType.kDLCUDAHost,
                        release=m.owner.release)


def _import_cai(obj, copy=None) -> Tensor:
    """An ember CUDA tensor over an object's `__cuda_array_interface__` (versions 0 to 3); `obj` stays alive."""
    who = "ember.from_dlpack"
    cai = obj.__cuda_array_interface__
    if not isinstance(cai, dict):
        raise TypeError(f"{who}: __cuda_array_interface__ of {type(obj).__name__} is a {type(cai).__name__}, "
                        f"not a dict")
    version = cai.get("version", 0)
    if version > 3:
        raise BufferError(f"{who}: __cuda_array_interface__ version {version}; ember reads versions 0 to 3")
    if cai.get("mask") is not None:
        raise BufferError(f"{who}: __cuda_array_interface__ with a mask is not supported")
    typestr = cai["typestr"]
    dtype = _FROM_TYPESTR.get(typestr)
    if dtype is None:
        raise BufferError(f"{who}: __cuda_array_interface__ typestr {typestr!r} has no ember dtype; ember takes "
                          + ", ".join(f"{v} ({d.name})" for d, v in _TYPESTR.items()))
    ptr, read_only = cai["data"]
    ptr = int(ptr or 0)
    shape = tuple(int(n) for n in cai["shape"])
    it = dtype.itemsize
    strides = cai.get("strides")
    if strides is not None:
        if any(s % it for s in strides):
            raise BufferError(f"{who}: __cuda_array_interface__ strides {tuple(strides)} (bytes) are not multiples "
                              f"of the element size {it}")
        strides = tuple(s // it for s in strides)
    index = _pointer_device(ptr)
    stream = cai.get("stream")
    if stream is not None:  # version 3: ember's current stream waits on the producer's before using the data
        from ..backends.cuda.stream import current_stream
        if stream == 0:
            raise BufferError(f"{who}: __cuda_array_interface__ stream 0 is disallowed (ambiguous)")
        _wait(current_stream(index), _consumer_stream(stream, index), index)
    return _from_memory(who, ptr, shape, strides, dtype, _device("cuda", index), obj,
                        read_only=bool(read_only), copy=copy)


def _call_dlpack(x, kwargs: dict):
    """x.__dlpack__(**kwargs), dropping the keywords an older producer does not take (as torch does).
    Returns (capsule, whether `copy` reached the producer)."""
    for drop in ((), ("max_version",), ("copy",), ("dl_device",)):
        for k in drop:
            kwargs.pop(k, None)
        try:
            return x.__dlpack__(**kwargs), "copy" in kwargs
        except TypeError:
            if drop == ("dl_device",):
                raise
    raise AssertionError("unreachable")


def from_dlpack(x, *, device=None, copy=None) -> Tensor:
    """An ember tensor sharing the memory of `x`: an object with `__dlpack__` and `__dlpack_device__`
    (NumPy, torch, CuPy, JAX arrays, ember tensors), a DLPack capsule (taken once), or an object with
    `__cuda_array_interface__`.

    device: where the result lives (default: where `x` is); another device means a copy.
    copy: True always copies, False never does (raises when a copy is needed), None copies only when needed.
    """
    if copy not in (None, True, False):
        raise TypeError(f"from_dlpack: copy must be True, False or None, got {copy!r}")
    target = canonical(device) if device is not None else None
    if _dl.is_capsule(x):
        t = _import_capsule(x, copy)
    elif hasattr(x, "__dlpack__"):
        src_type, src_id = x.__dlpack_device__()
        src = _ember_device(int(src_type), int(src_id))
        cross = target is not None and target is not src
        if cross and copy is False:
            raise ValueError(f"from_dlpack: cannot move the tensor from {_dl_device_name(src_type, src_id)} to "
                             f"{target} without copying; pass copy=None or copy=True")
        kwargs = {"max_version": (_dl.DLPACK_MAJOR_VERSION, _dl.DLPACK_MINOR_VERSION)}
        if copy is not None:
            kwargs["copy"] = copy
        if target is not None and not cross:
            kwargs["dl_device"] = (src_type, src_id)
        if src.type == "cuda":  # the consumer's half of the handshake: name the stream ember will use
            from ..backends.cuda.stream import current_stream
            kwargs["stream"] = _stream_int(current_stream(src.index or 0))
        capsule, copy_handled = _call_dlpack(x, kwargs)
        # a copy the producer made is not made again; copy=False still refuses a copy on ember's side
        t = _import_capsule(capsule, None if copy and copy_handled else copy)
    elif hasattr(x, "__cuda_array_interface__"):
        t = _import_cai(x, copy)
    else:
        raise TypeError(f"from_dlpack expects an object with __dlpack__ and __dlpack_device__ (a NumPy, torch, "
                        f"CuPy or JAX array, an ember tensor), a DLPack capsule, or an object with "
                        f"__cuda_array_interface__; got {type(x).__name__}")
    if target is not None and t._storage.device is not target:
        if copy is False:
            raise ValueError(f"from_dlpack: cannot move the tensor from {t.device} to {target} without copying; "
                             f"pass copy=None or copy=True")
        t = t.to(target)
    return t


Tensor.__dlpack__ = _dlpack
Tensor.__dlpack_device__ = _dlpack_device
Tensor.__cuda_array_interface__ = property(_cuda_array_interface)

"""DLPack's C ABI through ctypes: the structures of dlpack.h (1.x), and PyCapsules that carry them.

Nothing here knows about ember tensors: `ember.utils.dlpack` maps tensors to and from these records.

Exporting. A managed tensor (`DLManagedTensor` in a "dltensor" capsule, `DLManagedTensorVersioned`
in a "dltensor_versioned" one) is one PyMem_Malloc block holding the struct, then its shape and
strides. Its `manager_ctx` is a strong reference to a Python holder (the ember storage); its
`deleter` frees the block and drops that reference. The capsule's destructor calls the deleter
only when the capsule was never consumed (its name is still "dltensor"/"dltensor_versioned"); a
consumer renames it "used_..." and calls the deleter itself when done.

Why the deleter and the destructor are C functions borrowed from NumPy rather than ctypes
callbacks: a consumer calls them at any time, often while a Python exception is being raised (a
temporary `np.from_dlpack(t)` freed because `.reshape` failed; NumPy dropping a capsule whose dtype
it refused). A ctypes callback run while an exception is pending loses that exception and turns it
into "SystemError: error return without exception set". NumPy's own DLPack deleter does exactly
what ours must (`PyMem_Free(self); Py_XDECREF(self->manager_ctx)`, under the GIL) and its capsule
destructor is the one the DLPack spec mandates, so exports reuse them: their addresses are read from
a capsule NumPy exports, and a probe checks that they free a block and release its holder. Where the
probe fails (a NumPy without versioned capsules, or one that changed them), ctypes callbacks with
the same behaviour take over. The holder is released by a plain decref; whatever Python code that
starts runs as a finalizer (`__del__`), which CPython runs with the pending exception saved.

Importing. `consume(capsule)` checks the name and version, renames the capsule "used_..." and
returns the tensor's description with an `Owner` that calls the producer's deleter exactly once,
from its `__del__`, when the last user of the memory is gone.
"""
from __future__ import annotations

import ctypes
import datetime
import enum
import weakref
from ctypes import POINTER, Structure, c_char_p, c_int32, c_int64, c_size_t, c_uint8, c_uint16, c_uint32, \
    c_uint64, c_void_p, py_object

__all__ = ["DLDeviceType", "DLDataTypeCode", "DLDevice", "DLDataType", "DLTensor", "DLManagedTensor",
           "DLPackVersion", "DLManagedTensorVersioned", "DLPACK_MAJOR_VERSION", "DLPACK_MINOR_VERSION",
           "DLPACK_FLAG_BITMASK_READ_ONLY", "DLPACK_FLAG_BITMASK_IS_COPIED", "is_capsule", "make_capsule",
           "consume", "Imported", "Owner"]

# the version ember's versioned capsules carry: 1.0 has every field and flag ember uses
DLPACK_MAJOR_VERSION = 1
DLPACK_MINOR_VERSION = 0

DLPACK_FLAG_BITMASK_READ_ONLY = 1 << 0
DLPACK_FLAG_BITMASK_IS_COPIED = 1 << 1
DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED = 1 << 2


class DLDeviceType(enum.IntEnum):
    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14
    kDLWebGPU = 15
    kDLHexagon = 16
    kDLMAIA = 17


class DLDataTypeCode(enum.IntEnum):
    kDLInt = 0
    kDLUInt = 1
    kDLFloat = 2
    kDLOpaqueHandle = 3
    kDLBfloat = 4
    kDLComplex = 5
    kDLBool = 6
    kDLFloat8_e3m4 = 7
    kDLFloat8_e4m3 = 8
    kDLFloat8_e4m3b11fnuz = 9
    kDLFloat8_e4m3fn = 10
    kDLFloat8_e4m3fnuz = 11
    kDLFloat8_e5m2 = 12
    kDLFloat8_e5m2fnuz = 13
    kDLFloat8_e8m0fnu = 14
    kDLFloat6_e2m3fn = 15
    kDLFloat6_e3m2fn = 16
    kDLFloat4_e2m1fn = 17


class DLDevice(Structure):
    _fields_ = [("device_type", c_int32), ("device_id", c_int32)]


class DLDataType(Structure):
    _fields_ = [("code", c_uint8), ("bits", c_uint8), ("lanes", c_uint16)]


class DLTensor(Structure):
    _fields_ = [("data", c_void_p), ("device", DLDevice), ("ndim", c_int32), ("dtype", DLDataType),
                ("shape", POINTER(c_int64)), ("strides", POINTER(c_int64)), ("byte_offset", c_uint64)]


class DLManagedTensor(Structure):
    # deleter: void (*)(DLManagedTensor *self), kept as an address
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", c_void_p), ("deleter", c_void_p)]


class DLPackVersion(Structure):
    _fields_ = [("major", c_uint32), ("minor", c_uint32)]


class DLManagedTensorVersioned(Structure):
    _fields_ = [("version", DLPackVersion), ("manager_ctx", c_void_p), ("deleter", c_void_p),
                ("flags", c_uint64), ("dl_tensor", DLTensor)]


_STRUCT = {False: DLManagedTensor, True: DLManagedTensorVersioned}
_NAME = {False: b"dltensor", True: b"dltensor_versioned"}
_USED = {False: b"used_dltensor", True: b"used_dltensor_versioned"}
_CapsuleType = type(datetime.datetime_CAPI)


def is_capsule(obj) -> bool:
    return type(obj) is _CapsuleType


# ---- the C API, through prototypes of our own (the argtypes of ctypes.pythonapi's shared function
# objects are left alone for other libraries) ----------------------------------------------------

def _pyfn(name, restype, *argtypes):
    """A C API function that runs with the GIL held and raises the Python error it sets."""
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


_DELETER_T = ctypes.CFUNCTYPE(None, c_void_p)        # void (*)(DLManagedTensor*), also a capsule destructor

_PyCapsule_New = _pyfn("PyCapsule_New", py_object, c_void_p, c_char_p, c_void_p)
_PyCapsule_GetPointer = _pyfn("PyCapsule_GetPointer", c_void_p, py_object, c_char_p)
_PyCapsule_GetName = _pyfn("PyCapsule_GetName", c_char_p, py_object)
_PyCapsule_SetName = _pyfn("PyCapsule_SetName", ctypes.c_int, py_object, c_char_p)
_PyCapsule_IsValid = _pyfn("PyCapsule_IsValid", ctypes.c_int, py_object, c_char_p)
_PyCapsule_GetDestructor = _pyfn("PyCapsule_GetDestructor", c_void_p, py_object)
_PyMem_Malloc = _pyfn("PyMem_Malloc", c_void_p, c_size_t)
_PyMem_Free = _pyfn("PyMem_Free", None, c_void_p)
_Py_IncRef = _pyfn("Py_IncRef", None, py_object)
_Py_DecRef = _pyfn("Py_DecRef", None, c_void_p)
# the same capsule calls on a bare PyObject* (inside a capsule destructor, the capsule is being freed)
_IsValid_raw = _pyfn("PyCapsule_IsValid", ctypes.c_int, c_void_p, c_char_p)
_GetPointer_raw = _pyfn("PyCapsule_GetPointer", c_void_p, c_void_p, c_char_p)


def _forever(obj):
    """Keeps `obj` alive to the very end of the process: a capsule or a managed tensor may outlive
    this module's globals at interpreter shutdown, and its name string or callback must still be valid."""
    _Py_IncRef(obj)
    return obj


# capsule names outlive the capsules that point at them (PyCapsule_New and SetName keep the pointer)
_NAME_BUF = {k: _forever(ctypes.create_string_buffer(v)) for k, v in
             [((False, False), _NAME[False]), ((True, False), _NAME[True]),
              ((False, True), _USED[False]), ((True, True), _USED[True])]}
_NAME_PTR = {k: ctypes.cast(b, c_char_p) for k, b in _NAME_BUF.items()}


def _name_ptr(versioned: bool, used: bool = False) -> c_char_p:
    return _NAME_PTR[(versioned, used)]


# ---- releasing exported managed tensors -----------------------------------------------------------

def _shape_offset(versioned: bool) -> int:
    size = ctypes.sizeof(_STRUCT[versioned])
    return (size + 7) // 8 * 8


def _alloc(versioned: bool, ndim: int) -> int:
    """A zeroed PyMem block for a managed tensor and its shape and strides (freed by the deleter)."""
    size = _shape_offset(versioned) + 16 * ndim
    p = _PyMem_Malloc(size)
    if not p:
        raise MemoryError(f"DLPack: could not allocate a managed tensor of {size} bytes")
    ctypes.memset(p, 0, size)
    return p


def _py_deleter(versioned: bool):
    ctx_offset = getattr(_STRUCT[versioned], "manager_ctx").offset

    def deleter(p):
        try:
            ctx = c_void_p.from_address(p + ctx_offset).value
            _PyMem_Free(p)
            if ctx:
                _Py_DecRef(ctx)
        except BaseException:  # noqa: BLE001 - nothing can be raised into the consumer's C code
            pass
    return _forever(_DELETER_T(deleter))


def _py_destructor(versioned: bool):
    name = _name_ptr(versioned)
    deleter_offset = getattr(_STRUCT[versioned], "deleter").offset

    def destructor(capsule):
        try:
            if _IsValid_raw(capsule, name):     # still "dltensor(_versioned)": never consumed
                p = _GetPointer_raw(capsule, name)
                fn = c_void_p.from_address(p + deleter_offset).value
                if fn:
                    _DELETER_T(fn)(p)
        except BaseException:  # noqa: BLE001
            pass
    return _forever(_DELETER_T(destructor))


class _Probe:
    __slots__ = ("__weakref__",)


def _releases(deleter: int, destructor: int, versioned: bool) -> bool:
    """Whether `deleter` frees a managed tensor and releases its holder, and `destructor` calls the
    deleter of a capsule nobody consumed: one export of a probe object, dropped unconsumed."""
    probe = _Probe()
    ref = weakref.ref(probe)
    p = _alloc(versioned, 0)
    m = _STRUCT[versioned].from_address(p)
    _Py_IncRef(probe)
    m.manager_ctx = id(probe)
    m.deleter = deleter
    if versioned:
        m.version.major, m.version.minor = DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION
    del m
    cap = _PyCapsule_New(p, _name_ptr(versioned), destructor)
    del cap, probe
    return ref() is None


def _numpy_functions(versioned: bool):
    """NumPy's deleter and capsule destructor for this kind of capsule, or None."""
    import numpy as np
    a = np.zeros(1, np.uint8)
    try:
        cap = a.__dlpack__(max_version=(1, 0)) if versioned else a.__dlpack__()
    except (TypeError, BufferError):
        return None     # a NumPy without versioned capsules
    if not _PyCapsule_IsValid(cap, _name_ptr(versioned)):
        return None
    m = _STRUCT[versioned].from_address(_PyCapsule_GetPointer(cap, _name_ptr(versioned)))
    if m.manager_ctx != id(a) or not m.deleter:
        return None
    fns = (m.deleter, _PyCapsule_GetDestructor(cap))
    del m, cap          # NumPy's capsule, unconsumed: its destructor frees it
    if not fns[1] or not _releases(*fns, versioned):
        return None
    return fns


_release_fns = {}


def _release_functions(versioned: bool):
    """(deleter, capsule destructor) addresses for exported managed tensors of this kind."""
    fns = _release_fns.get(versioned)
    if fns is None:
        try:
            fns = _numpy_functions(versioned)
        except Exception:  # noqa: BLE001 - any surprise: use our own callbacks
            fns = None
        if fns is None:
            fns = (ctypes.cast(_py_deleter(versioned), c_void_p).value,
                   ctypes.cast(_py_destructor(versioned), c_void_p).value)
        _release_fns[versioned] = fns
    return fns


def make_capsule(holder, data: int, device: tuple, dtype: tuple, shape, strides, *, versioned: bool,
                 flags: int = 0):
    """A "dltensor(_versioned)" capsule describing `data`; `holder` (any Python object) stays alive
    until the consumer calls the deleter, or until the capsule dies unconsumed.
    device: (DLDeviceType, index); dtype: (DLDataTypeCode, bits); shape and strides in elements."""
    ndim = len(shape)
    deleter, destructor = _release_functions(versioned)
    p = _alloc(versioned, ndim)
    m = _STRUCT[versioned].from_address(p)
    dims = (c_int64 * (2 * ndim)).from_address(p + _shape_offset(versioned))
    dims[:ndim] = list(shape)
    dims[ndim:] = list(strides)
    t = m.dl_tensor
    t.data = data or None
    t.device.device_type, t.device.device_id = int(device[0]), int(device[1])
    t.ndim = ndim
    t.dtype.code, t.dtype.bits, t.dtype.lanes = int(dtype[0]), int(dtype[1]), 1
    if ndim:
        t.shape = ctypes.cast(p + _shape_offset(versioned), POINTER(c_int64))
        t.strides = ctypes.cast(p + _shape_offset(versioned) + 8 * ndim, POINTER(c_int64))
    t.byte_offset = 0
    if versioned:
        m.version.major, m.version.minor = DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION
        m.flags = flags
    _Py_IncRef(holder)
    m.manager_ctx = id(holder)
    m.deleter = deleter
    del t, m, dims
    try:
        return _PyCapsule_New(p, _name_ptr(versioned), destructor)
    except BaseException:
        _DELETER_T(deleter)(p)
        raise


# ---- importing ------------------------------------------------------------------------------------

class Owner:
    """The consumer's hold on a foreign managed tensor: calls its deleter once, when this object dies
    (or at `release()`). The deleter is called without the GIL, as the DLPack spec allows."""

    __slots__ = ("ptr", "deleter", "__weakref__")

    def __init__(self, ptr: int, deleter: int):
        self.ptr = ptr
        self.deleter = deleter

    def release(self) -> None:
        fn, self.deleter = self.deleter, 0
        if fn:
            _DELETER_T(fn)(self.ptr)

    def __del__(self):
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class Imported:
    """What a consumed capsule describes. `owner` must stay referenced while `data` is in use."""

    __slots__ = ("data", "device_type", "device_id", "code", "bits", "lanes", "shape", "strides", "byte_offset",
                 "flags", "versioned", "version", "owner")

    @property
    def read_only(self) -> bool:
        return bool(self.flags & DLPACK_FLAG_BITMASK_READ_ONLY)

    @property
    def is_copied(self) -> bool:
        return bool(self.flags & DLPACK_FLAG_BITMASK_IS_COPIED)


def consume(capsule) -> Imported:
    """Takes ownership of the managed tensor in a "dltensor" or "dltensor_versioned" capsule (renaming
    it "used_...", so that it is consumed once) and reads its description."""
    if not is_capsule(capsule):
        raise TypeError(f"expected a DLPack capsule (PyCapsule), got {type(capsule).__name__}")
    name = _PyCapsule_GetName(capsule)
    if name == _NAME[True]:
        versioned = True
    elif name == _NAME[False]:
        versioned = False
    elif name in (_USED[True], _USED[False]):
        raise RuntimeError(f"this DLPack capsule was already consumed (its name is {name.decode()!r}): a capsule "
                           f"can be imported only once; call __dlpack__() again (or to_dlpack) for a new one")
    else:
        shown = repr(name.decode(errors="replace")) if name is not None else "no name"
        raise TypeError(f"expected a DLPack capsule named 'dltensor' or 'dltensor_versioned', got a capsule with "
                        f"{shown}")
    p = _PyCapsule_GetPointer(capsule, _name_ptr(versioned))
    m = _STRUCT[versioned].from_address(p)
    r = Imported()
    r.versioned = versioned
    if versioned:
        r.version = (m.version.major, m.version.minor)
        if m.version.major > DLPACK_MAJOR_VERSION:
            # not renamed: the producer's capsule destructor still frees it
            raise BufferError(f"the DLPack capsule has version {r.version[0]}.{r.version[1]}; ember reads DLPack "
                              f"{DLPACK_MAJOR_VERSION}.x (a newer major version changes the ABI)")
        r.flags = m.flags
    else:
        r.version, r.flags = (0, 0), 0
    t = m.dl_tensor
    r.data = t.data or 0
    r.device_type, r.device_id = t.device.device_type, t.device.device_id
    r.code, r.bits, r.lanes = t.dtype.code, t.dtype.bits, t.dtype.lanes
    ndim = t.ndim
    if ndim < 0:
        raise BufferError(f"the DLPack tensor has ndim {ndim}")
    r.shape = tuple(t.shape[i] for i in range(ndim)) if ndim else ()
    r.strides = tuple(t.strides[i] for i in range(ndim)) if ndim and t.strides else None
    r.byte_offset = t.byte_offset
    deleter = m.deleter or 0
    del t, m
    _PyCapsule_SetName(capsule, _name_ptr(versioned, used=True))
    r.owner = Owner(p, deleter)
    return r

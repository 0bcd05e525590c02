"""DLPack and __cuda_array_interface__: zero-copy exchange with NumPy and torch (CPU here; the CUDA tests at the
end run on the GPU machine with `pytest -m cuda`)."""
import ctypes
import gc
import weakref

import numpy as np
import pytest
import torch

import ember
from ember import _dlpack
from ember.utils import dlpack as edl
from helpers import DTYPES

NUMPY_DTYPES = [n for n in DTYPES if n != "bfloat16"]   # NumPy has no bfloat16 to import kDLBfloat into


def _data(n: int, name: str) -> ember.Tensor:
    e_dt, _ = DTYPES[name]
    return (ember.arange(n) % 5).to(e_dt) if name != "bool" else ember.arange(n) % 3 == 0


def _values(x):
    """A comparable list of any of ember, NumPy or torch's values (bfloat16 read as float)."""
    if isinstance(x, torch.Tensor):
        return (x.float() if x.dtype is torch.bfloat16 else x).tolist()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return (x.float() if x.dtype is ember.bfloat16 else x).tolist()


def _capsule_pointer(capsule, versioned):
    return _dlpack._PyCapsule_GetPointer(capsule, _dlpack._name_ptr(versioned))


def _capsule_name(capsule) -> bytes:
    return _dlpack._PyCapsule_GetName(capsule)


# ---- every dtype, both ways -----------------------------------------------------------------------

@pytest.mark.parametrize("name", NUMPY_DTYPES)
def test_numpy_round_trip_every_dtype(name):
    e = _data(12, name).reshape(3, 4)
    n = np.from_dlpack(e)
    assert n.dtype == e.dtype.np and n.shape == (3, 4) and n.ctypes.data == e.data_ptr()
    assert n.tolist() == e.tolist()
    back = ember.from_dlpack(n)
    assert back.dtype is e.dtype and back.data_ptr() == e.data_ptr() and back.tolist() == e.tolist()
    a = np.asarray(e.numpy()).copy()
    f = ember.from_dlpack(a)                      # a NumPy array as producer
    assert f.dtype is e.dtype and f.data_ptr() == a.ctypes.data and f.tolist() == a.tolist()


def test_numpy_cannot_read_bfloat16_and_says_so():
    """NumPy has no bfloat16 (ember's comes from ml_dtypes, which NumPy cannot export or import through
    DLPack): NumPy refuses the capsule, and its own error reaches the caller intact (the capsule dies with
    that exception pending, which a ctypes capsule destructor would have turned into a SystemError)."""
    e = ember.ones(3, dtype=ember.bfloat16)
    ref = weakref.ref(e._storage)
    with pytest.raises((BufferError, RuntimeError), match="[Uu]nsupported dtype"):
        np.from_dlpack(e)
    del e
    gc.collect()
    assert ref() is None        # the refused capsule released its export


@pytest.mark.parametrize("name", list(DTYPES))
def test_torch_round_trip_every_dtype(name):
    e_dt, t_dt = DTYPES[name]
    e = _data(12, name).reshape(3, 4)
    t = torch.from_dlpack(e)
    assert t.dtype is t_dt and t.shape == (3, 4) and t.data_ptr() == e.data_ptr()
    assert _values(t) == _values(e)
    back = ember.from_dlpack(t)
    assert back.dtype is e_dt and back.data_ptr() == e.data_ptr() and _values(back) == _values(e)
    x = torch.arange(6).reshape(2, 3).to(t_dt)         # a torch tensor as producer
    f = ember.from_dlpack(x)
    assert f.dtype is e_dt and f.data_ptr() == x.data_ptr() and _values(f) == _values(x)


def test_device_and_module_api():
    e = ember.arange(3)
    assert e.__dlpack_device__() == (edl.DLDeviceType.kDLCPU, 0) == (1, 0)
    assert ember.from_dlpack is edl.from_dlpack
    c = edl.to_dlpack(e)
    assert _capsule_name(c) == b"dltensor"
    assert edl.from_dlpack(c).data_ptr() == e.data_ptr()
    assert _capsule_name(c) == b"used_dltensor"
    with pytest.raises(TypeError, match="ember.Tensor"):
        edl.to_dlpack(np.arange(3))
    with pytest.raises(TypeError, match="__dlpack__ and __dlpack_device__.*got object"):
        ember.from_dlpack(object())


def test_ember_to_ember():
    e = ember.arange(10.0)[2:8:2]
    f = ember.from_dlpack(e)
    assert f.data_ptr() == e.data_ptr() and f.stride() == (2,) and f.tolist() == [2.0, 4.0, 6.0]
    f.mul_(10)
    assert e.tolist() == [20.0, 40.0, 60.0]


# ---- views: strides, offsets, 0-d, empty ----------------------------------------------------------

def _views():
    base = ember.arange(60.0).reshape(3, 4, 5)
    return {
        "contiguous": base,
        "transposed": base.transpose(0, 2),
        "sliced with offset": base[1:, 2:, 1:4],
        "step slices": base[::2, 1::2, ::3],
        "0-d": base[1, 2, 3],
        "empty": base[:, 4:],
        "broadcast (stride 0)": ember.arange(5.0).broadcast_to((3, 5)),
    }


VIEWS = list(_views())


@pytest.mark.parametrize("kind", VIEWS)
def test_strided_views_to_numpy_and_torch(kind):
    v = _views()[kind]
    it = v.element_size()
    n = np.from_dlpack(v)
    assert n.shape == tuple(v.shape) and n.tolist() == v.tolist()
    t = torch.from_dlpack(v)
    assert tuple(t.shape) == tuple(v.shape) and t.tolist() == v.tolist()
    if v.numel():
        assert n.strides == tuple(s * it for s in v.stride()) and n.ctypes.data == v.data_ptr()
        assert t.stride() == v.stride() and t.data_ptr() == v.data_ptr()


@pytest.mark.parametrize("kind", ["transposed", "sliced with offset", "step slices", "0-d", "empty"])
def test_strided_views_from_numpy_and_torch(kind):
    a = np.arange(60.0).reshape(3, 4, 5)
    x = torch.arange(60.0).reshape(3, 4, 5)
    pick = {"transposed": lambda b: b.transpose(2, 1, 0) if isinstance(b, np.ndarray) else b.permute(2, 1, 0),
            "sliced with offset": lambda b: b[1:, 2:, 1:4], "step slices": lambda b: b[::2, 1::2, ::3],
            "0-d": lambda b: b[1, 2, 3], "empty": lambda b: b[:, 4:]}[kind]
    na, tx = pick(a), pick(x)
    if kind == "0-d":
        na = a[1:2, 2:3, 3:4].reshape(())    # NumPy's a[1, 2, 3] is a scalar, not a 0-d array
    for src, ptr, strides in ((na, na.ctypes.data, tuple(s // 8 for s in na.strides)),
                              (tx, tx.data_ptr(), tx.stride())):
        e = ember.from_dlpack(src)
        assert tuple(e.shape) == tuple(src.shape) and e.tolist() == src.tolist()
        if e.numel():
            assert e.stride() == strides and e.data_ptr() == ptr


def test_negative_strides_are_copied_or_refused():
    a = np.arange(10.0)[::-2]
    e = ember.from_dlpack(a)                     # copy=None: copies, an ember tensor has no negative strides
    assert e.tolist() == a.tolist() and e.data_ptr() != a.ctypes.data
    with pytest.raises(BufferError, match=r"strides \(-2,\) are negative.*copy=False"):
        ember.from_dlpack(a, copy=False)
    b = np.lib.stride_tricks.as_strided(np.arange(3.0), shape=(1, 3), strides=(-24, 8))
    e = ember.from_dlpack(b, copy=False)         # a negative stride on a dimension of size 1 moves nowhere
    assert e.stride() == (0, 1) and e.data_ptr() == b.ctypes.data and e.tolist() == [[0.0, 1.0, 2.0]]


# ---- shared memory ------------------------------------------------------------------------------

def test_writes_are_seen_both_ways_numpy():
    e = ember.zeros(4, 6)
    v = e[1:, ::2]
    n = np.from_dlpack(v)
    n[0, 1] = 7.0                                # NumPy writes, ember sees
    assert e[1, 2].item() == 7.0
    v.add_(1)                                    # ember writes, NumPy sees
    assert n[0, 1] == 8.0 and n[2, 2] == 1.0
    a = np.zeros((3, 4), np.int32)
    f = ember.from_dlpack(a[:, 1:])
    f[1, 1] = 5                                  # ember writes into NumPy's array
    assert a[1, 2] == 5
    a[2, 3] = 9                                  # NumPy writes, ember sees
    assert f[2, 2].item() == 9


def test_writes_are_seen_both_ways_torch():
    e = ember.zeros(3, 4, dtype=ember.bfloat16)
    t = torch.from_dlpack(e.t())
    t[1, 2] = 2.5
    assert e[2, 1].item() == 2.5
    e.fill_(-1)
    assert (t == -1).all()
    x = torch.zeros(5, dtype=torch.int64)
    f = ember.from_dlpack(x[1:])
    f.add_(3)
    assert x.tolist() == [0, 3, 3, 3, 3]
    x[0:2] = 11
    assert f.tolist() == [11, 3, 3, 3]


# ---- lifetimes ----------------------------------------------------------------------------------

def test_export_lifetime_numpy_and_torch():
    for consume in (np.from_dlpack, torch.from_dlpack):
        e = ember.arange(8.0)
        ref = weakref.ref(e._storage)
        other = consume(e[2:])
        del e
        gc.collect()
        assert ref() is not None                 # the consumer still holds the memory
        assert other.tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        del other
        gc.collect()
        assert ref() is None                     # freed once both are gone


def test_import_lifetime_numpy():
    a = np.arange(8.0)
    ref = weakref.ref(a)
    e = ember.from_dlpack(a)
    view = e[3:]
    arr = view.numpy()                           # a NumPy view of the ember view
    del a, e
    gc.collect()
    assert ref() is not None and view.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]
    del view
    gc.collect()
    assert ref() is not None and arr.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]
    del arr
    gc.collect()
    assert ref() is None                         # NumPy's deleter ran when the last user went


def test_ember_to_ember_lifetime():
    e = ember.arange(6.0)
    ref = weakref.ref(e._storage)
    f = ember.from_dlpack(e)
    assert f._storage is not e._storage
    del e
    gc.collect()
    assert ref() is not None and f.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    del f
    gc.collect()
    assert ref() is None


def test_unconsumed_capsules_release_their_export():
    for make in (lambda t: t.__dlpack__(), lambda t: t.__dlpack__(max_version=(1, 0)), edl.to_dlpack):
        e = ember.arange(4.0)
        ref = weakref.ref(e._storage)
        c = make(e)
        del e
        gc.collect()
        assert ref() is not None
        del c
        gc.collect()
        assert ref() is None


def test_errors_on_temporaries_stay_intact():
    """A consumer frees an exported tensor while an exception is being raised (a temporary dropped by a
    failing call): the exception must reach the caller unchanged."""
    e = ember.arange(12.0)
    with pytest.raises(ValueError, match="cannot reshape"):
        np.from_dlpack(e).reshape(7)
    with pytest.raises(RuntimeError, match="invalid for input of size 12"):
        torch.from_dlpack(e).view(7)
    with pytest.raises(BufferError, match="kDLComplex"):
        ember.from_dlpack(np.ones(2, np.complex64))


# ---- a hand-made producer: the deleter is called exactly once -----------------------------------

class HandMade:
    """A DLPack producer written against the C ABI: a capsule over a NumPy buffer, whose deleter counts calls."""

    def __init__(self, buf, shape, strides=None, byte_offset=0, versioned=True, flags=0, version=(1, 0),
                 device=(1, 0), dtype=(2, 64)):
        self.buf, self.calls = buf, []
        struct = _dlpack.DLManagedTensorVersioned if versioned else _dlpack.DLManagedTensor
        self.m = m = struct()
        self.dims = (ctypes.c_int64 * max(1, len(shape)))(*shape)
        self.strides = (ctypes.c_int64 * max(1, len(shape)))(*strides) if strides is not None else None
        t = m.dl_tensor
        t.data = buf.ctypes.data
        t.device.device_type, t.device.device_id = device
        t.ndim = len(shape)
        t.dtype.code, t.dtype.bits, t.dtype.lanes = dtype[0], dtype[1], 1
        t.shape = ctypes.cast(self.dims, ctypes.POINTER(ctypes.c_int64))
        if self.strides is not None:
            t.strides = ctypes.cast(self.strides, ctypes.POINTER(ctypes.c_int64))
        t.byte_offset = byte_offset
        if versioned:
            m.version.major, m.version.minor = version
            m.flags = flags
        self.deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda p: self.calls.append(p))
        m.deleter = ctypes.cast(self.deleter, ctypes.c_void_p).value
        self.versioned = versioned

    def capsule(self):   # no capsule destructor: the test checks who calls the deleter
        return _dlpack._PyCapsule_New(ctypes.addressof(self.m), _dlpack._name_ptr(self.versioned), None)


@pytest.mark.parametrize("versioned", [True, False])
def test_foreign_deleter_called_once_after_the_last_user(versioned):
    buf = np.arange(20.0)
    p = HandMade(buf, (2, 3), strides=None, byte_offset=16, versioned=versioned)   # contiguous, from element 2
    e = ember.from_dlpack(p.capsule())
    assert e.tolist() == [[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]] and e.data_ptr() == buf.ctypes.data + 16
    v = e[1]
    del e
    gc.collect()
    assert p.calls == []
    assert v.tolist() == [5.0, 6.0, 7.0]
    del v
    gc.collect()
    assert p.calls == [ctypes.addressof(p.m)]


def test_foreign_refusals():
    buf = np.zeros(8)
    # a newer major version is not consumed: the capsule keeps its name, for its producer to free
    p = HandMade(buf, (8,), version=(2, 0))
    c = p.capsule()
    with pytest.raises(BufferError, match="version 2.0"):
        ember.from_dlpack(c)
    assert _capsule_name(c) == b"dltensor_versioned" and p.calls == []
    # a type ember lacks, or a device it cannot use: consumed, so ember calls the deleter
    for kw, match in ((dict(dtype=(5, 128)), r"kDLComplex, 128 bits.*ember takes bool"),
                      (dict(dtype=(1, 32)), r"kDLUInt, 32 bits"),
                      (dict(device=(4, 0)), r"kDLOpenCL \(4, 0\).*ember takes kDLCPU")):
        p = HandMade(buf, (4,), **kw)
        with pytest.raises(BufferError, match=match):
            ember.from_dlpack(p.capsule())
        gc.collect()
        assert len(p.calls) == 1


def test_a_capsule_is_consumed_once():
    e = ember.arange(3)
    c = e.__dlpack__(max_version=(1, 0))
    assert _capsule_name(c) == b"dltensor_versioned"
    ember.from_dlpack(c)
    assert _capsule_name(c) == b"used_dltensor_versioned"
    with pytest.raises(RuntimeError, match="already consumed.*only once"):
        ember.from_dlpack(c)
    c = edl.to_dlpack(e)
    torch.from_dlpack(c)
    with pytest.raises(RuntimeError, match="already consumed"):
        ember.from_dlpack(c)
    c = edl.to_dlpack(e)
    ember.from_dlpack(c)
    with pytest.raises(RuntimeError, match="consumed only once"):
        torch.from_dlpack(c)


def test_versioned_and_legacy_capsules():
    e = ember.arange(6, dtype=ember.int16).reshape(2, 3)[:, 1:]
    for kw, versioned in ((dict(), False), (dict(max_version=(0, 8)), False), (dict(max_version=(1, 0)), True),
                          (dict(max_version=(1, 7)), True)):
        c = e.__dlpack__(**kw)
        assert _capsule_name(c) == (b"dltensor_versioned" if versioned else b"dltensor")
        m = (_dlpack.DLManagedTensorVersioned if versioned else _dlpack.DLManagedTensor).from_address(
            _capsule_pointer(c, versioned))
        if versioned:
            assert (m.version.major, m.version.minor) == (1, 0) and m.flags == 0
        t = m.dl_tensor
        assert (t.device.device_type, t.device.device_id, t.ndim) == (1, 0, 2)
        assert (t.dtype.code, t.dtype.bits, t.dtype.lanes) == (0, 16, 1) and t.byte_offset == 0
        assert t.data == e.data_ptr() and [t.shape[i] for i in range(2)] == [2, 2]
        assert [t.strides[i] for i in range(2)] == [3, 1]
        del m, t
        for consume in (ember.from_dlpack, torch.from_dlpack):
            c = e.__dlpack__(**kw)
            assert consume(c).tolist() == [[1, 2], [4, 5]]


def test_python_callback_fallback(monkeypatch):
    """Where NumPy's deleter cannot be borrowed, ctypes callbacks release exports (same lifetimes)."""
    fns = {v: (ctypes.cast(_dlpack._py_deleter(v), ctypes.c_void_p).value,
               ctypes.cast(_dlpack._py_destructor(v), ctypes.c_void_p).value) for v in (False, True)}
    for v in (False, True):
        assert _dlpack._releases(*fns[v], v)
    monkeypatch.setattr(_dlpack, "_release_fns", fns)
    for consume in (np.from_dlpack, torch.from_dlpack, ember.from_dlpack, lambda t: t.__dlpack__(),
                    lambda t: t.__dlpack__(max_version=(1, 0))):
        e = ember.arange(5.0)
        ref = weakref.ref(e._storage)
        x = consume(e)
        del e
        gc.collect()
        assert ref() is not None
        del x
        gc.collect()
        assert ref() is None


# ---- read-only memory, copies, devices, errors --------------------------------------------------

def test_read_only_numpy_array():
    a = np.arange(6.0)
    a.flags.writeable = False
    assert torch.from_dlpack(a).data_ptr() == a.ctypes.data     # torch imports it without a copy...
    e = ember.from_dlpack(a)                                    # ...and so does ember
    assert e.data_ptr() == a.ctypes.data and e.tolist() == a.tolist()
    with pytest.raises(ValueError, match="read-only"):          # as for ember.from_numpy of that array
        e.add_(1)
    n = np.from_dlpack(e[2:])                                   # re-exported with DLPack's read-only flag
    assert not n.flags.writeable and n.ctypes.data == a.ctypes.data + 16
    with pytest.raises(BufferError, match="read-only.*legacy"):
        e.__dlpack__()
    c = ember.from_dlpack(a, copy=True)
    assert c.data_ptr() != a.ctypes.data and c.add_(1).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert e.__dlpack__(copy=True) is not None                  # a copy is writable: any capsule will do


def test_copy_semantics():
    e = ember.arange(6.0).reshape(2, 3)
    n = np.from_dlpack(e, copy=True)
    assert n.ctypes.data != e.data_ptr() and n.tolist() == e.tolist()
    c = e.__dlpack__(max_version=(1, 0), copy=True)
    m = _dlpack.DLManagedTensorVersioned.from_address(_capsule_pointer(c, True))
    assert m.flags == _dlpack.DLPACK_FLAG_BITMASK_IS_COPIED and m.dl_tensor.data != e.data_ptr()
    del m
    assert np.from_dlpack(e, copy=False).ctypes.data == e.data_ptr()
    a = np.arange(4)
    assert ember.from_dlpack(a, copy=False).data_ptr() == a.ctypes.data
    cp = ember.from_dlpack(a, copy=True)
    assert cp.data_ptr() != a.ctypes.data and cp.tolist() == [0, 1, 2, 3]
    x = torch.arange(4.0)
    assert ember.from_dlpack(x, copy=True).data_ptr() != x.data_ptr()
    assert ember.from_dlpack(x, copy=False).data_ptr() == x.data_ptr()


def test_devices():
    e = ember.arange(4.0)
    assert np.from_dlpack(e, device="cpu").ctypes.data == e.data_ptr()      # NumPy passes dl_device=(1, 0)
    assert e.__dlpack__(dl_device=(1, 0)) is not None
    with pytest.raises(BufferError, match=r"dl_device kDLOpenCL \(4, 0\).*kDLCPU \(1, 0\) and kDLCUDA"):
        e.__dlpack__(dl_device=(4, 0))
    with pytest.raises(BufferError, match="needs a copy, but copy=False"):
        e.__dlpack__(dl_device=(2, 0), copy=False)
    with pytest.raises(TypeError, match="dl_device must be"):
        e.__dlpack__(dl_device="cpu")
    with pytest.raises(ValueError, match="without copying"):
        ember.from_dlpack(np.ones(3), device="cuda", copy=False)
    assert ember.from_dlpack(np.ones(3), device="cpu").tolist() == [1.0, 1.0, 1.0]


def test_export_errors():
    g = ember.ones(2, requires_grad=True)
    for consume in (lambda t: t.__dlpack__(), np.from_dlpack, torch.from_dlpack):
        with pytest.raises(BufferError, match="require gradient, use tensor.detach()"):
            consume(g)
    assert np.from_dlpack(g.detach()).tolist() == [1.0, 1.0]
    e = ember.arange(3)
    with pytest.raises(ValueError, match="stream must be None"):
        e.__dlpack__(stream=5)
    with pytest.raises(TypeError, match="stream must be an int"):
        e.__dlpack__(stream=1.0)
    assert e.__dlpack__(stream=-1) is not None
    with pytest.raises(TypeError, match="max_version"):
        e.__dlpack__(max_version=1)


def test_unsupported_dtype_import():
    with pytest.raises(BufferError, match=r"\(kDLComplex, 64 bits\) has no ember equivalent; ember takes"):
        ember.from_dlpack(np.ones(3, np.complex64))
    with pytest.raises(BufferError, match=r"kDLUInt, 16 bits"):
        ember.from_dlpack(np.ones(3, np.uint16))
    with pytest.raises(BufferError, match=r"kDLComplex"):
        ember.from_dlpack(torch.ones(3, dtype=torch.complex64))


def test_cuda_array_interface_is_absent_on_cpu_tensors():
    e = ember.arange(3.0)
    assert not hasattr(e, "__cuda_array_interface__")
    assert not hasattr(torch.arange(3.0), "__cuda_array_interface__")     # as torch
    with pytest.raises(AttributeError, match="non-CUDA tensor.*tensor.cuda()"):
        e.__cuda_array_interface__


# ---- CUDA (the GPU machine: pytest -m cuda) -----------------------------------------------------

cuda = [pytest.mark.cuda,
        pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]
torch_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA build of torch")


def _cuda(f):
    for m in cuda:
        f = m(f)
    return f


@_cuda
def test_cuda_ember_to_ember_same_pointer_and_lifetime():
    g = ember.arange(12.0, device="cuda").reshape(3, 4)
    assert g.__dlpack_device__() == (2, 0)
    v = g.t()[1:]
    h = ember.from_dlpack(v)
    assert h.device == ember.device("cuda:0") and h.data_ptr() == v.data_ptr() and h.stride() == v.stride()
    assert h.cpu().tolist() == v.cpu().tolist()
    ref = weakref.ref(g._storage)
    del g, v
    gc.collect()
    assert ref() is not None
    h.add_(1)
    del h
    gc.collect()
    assert ref() is None


@_cuda
@pytest.mark.parametrize("name", list(DTYPES))
def test_cuda_every_dtype_ember_to_ember(name):
    g = _data(6, name).cuda()
    h = ember.from_dlpack(g)
    assert h.dtype is g.dtype and h.data_ptr() == g.data_ptr() and _values(h.cpu()) == _values(g.cpu())


@_cuda
@torch_cuda
@pytest.mark.parametrize("name", list(DTYPES))
def test_cuda_torch_both_ways_same_pointer(name):
    e_dt, t_dt = DTYPES[name]
    g = _data(12, name).reshape(3, 4).cuda()
    t = torch.from_dlpack(g)
    assert t.is_cuda and t.dtype is t_dt and t.data_ptr() == g.data_ptr()
    assert _values(t.cpu()) == _values(g.cpu())
    back = ember.from_dlpack(t)
    assert back.is_cuda and back.dtype is e_dt and back.data_ptr() == g.data_ptr()
    x = torch.arange(6, device="cuda").to(t_dt)[::2]
    f = ember.from_dlpack(x)
    assert f.data_ptr() == x.data_ptr() and f.stride() == (2,) and _values(f.cpu()) == _values(x.cpu())


@_cuda
@torch_cuda
def test_cuda_torch_writes_seen_both_ways():
    g = ember.zeros(4, 4, device="cuda")
    t = torch.from_dlpack(g)
    t[1, 2] = 5.0
    torch.cuda.synchronize()
    assert g[1, 2].item() == 5.0
    g.add_(1)
    ember.cuda.synchronize()
    assert t[1, 2].item() == 6.0 and t[0, 0].item() == 1.0


@_cuda
def test_cuda_stream_handshake():
    """The consumer's stream waits for work queued on ember's current (side) stream before the export."""
    s = ember.cuda.Stream()
    with ember.cuda.stream(s):
        x = ember.full((2048, 2048), 1.0, device="cuda")
        for _ in range(4):
            x = (x @ x) / 2048.0                 # long work on the side stream, ending in all ones
        c = x.__dlpack__(stream=1, max_version=(1, 0))    # the consumer uses the legacy default stream
    y = ember.from_dlpack(c)                     # default stream, no synchronisation of ours
    assert y.sum().item() == 2048 * 2048
    e = ember.arange(3.0, device="cuda")
    for stream in (None, 1, 2, -1, s.cuda_stream):
        assert ember.from_dlpack(e.__dlpack__(stream=stream)).data_ptr() == e.data_ptr()
    with pytest.raises(ValueError, match="stream=0"):
        e.__dlpack__(stream=0)


@_cuda
@torch_cuda
def test_cuda_torch_stream_handshake():
    ts = torch.cuda.Stream()
    s = ember.cuda.Stream()
    with ember.cuda.stream(s):
        x = ember.full((2048, 2048), 1.0, device="cuda")
        for _ in range(4):
            x = (x @ x) / 2048.0
        with torch.cuda.stream(ts):
            t = torch.from_dlpack(x)             # torch passes ts: ts waits on ember's side stream
            total = t.sum()
    ts.synchronize()
    assert total.item() == 2048 * 2048


@_cuda
def test_cuda_array_interface_both_ways():
    g = ember.arange(12, dtype=ember.int32, device="cuda").reshape(3, 4)
    cai = g.__cuda_array_interface__
    assert cai["typestr"] == "<i4" and cai["shape"] == (3, 4) and cai["strides"] is None
    assert cai["data"] == (g.data_ptr(), False) and cai["version"] == 3 and cai["stream"] not in (None, 0)
    v = g.t()
    assert v.__cuda_array_interface__["strides"] == (4, 16)
    assert ember.ones(2, dtype=ember.bfloat16, device="cuda").__cuda_array_interface__["typestr"] == "<V2"

    class Holder:                                # only __cuda_array_interface__, and it keeps `g` alive
        def __init__(self, t):
            self.t = t
            self.__cuda_array_interface__ = t.__cuda_array_interface__

    h = ember.from_dlpack(Holder(v))
    assert h.data_ptr() == v.data_ptr() and h.stride() == v.stride() and h.dtype is ember.int32
    assert ember.as_tensor(Holder(v)).data_ptr() == v.data_ptr()         # as torch.as_tensor
    ref = weakref.ref(g._storage)
    del g, v
    gc.collect()
    assert ref() is not None and h.cpu().tolist() == [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
    del h
    gc.collect()
    assert ref() is None
    with pytest.raises(RuntimeError, match="requires grad"):
        ember.ones(2, device="cuda", requires_grad=True).__cuda_array_interface__


@_cuda
@torch_cuda
def test_cuda_array_interface_with_torch():
    g = ember.arange(6.0, device="cuda")
    t = torch.as_tensor(g, device="cuda")        # torch reads ember's __cuda_array_interface__
    assert t.data_ptr() == g.data_ptr() and t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    x = torch.arange(6.0, device="cuda")[1::2]

    class Wrapper:
        __cuda_array_interface__ = x.__cuda_array_interface__

    e = ember.from_dlpack(Wrapper())
    assert e.data_ptr() == x.data_ptr() and e.stride() == (2,) and e.cpu().tolist() == [1.0, 3.0, 5.0]


@_cuda
def test_cuda_cupy_both_ways():
    cupy = pytest.importorskip("cupy")
    g = ember.arange(6.0, device="cuda")
    c = cupy.from_dlpack(g)
    assert c.data.ptr == g.data_ptr()
    assert cupy.asarray(g).data.ptr == g.data_ptr()                      # through __cuda_array_interface__
    a = cupy.arange(6, dtype=cupy.float32)
    e = ember.from_dlpack(a)
    assert e.data_ptr() == a.data.ptr and e.cpu().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


@_cuda
def test_cuda_jax_both_ways():
    jax = pytest.importorskip("jax")
    g = ember.arange(6.0, device="cuda")
    j = jax.numpy.from_dlpack(g)
    assert j.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        pytest.skip("JAX has no GPU backend on this machine")
    e = ember.from_dlpack(jax.device_put(jax.numpy.arange(4.0, dtype="float32"), gpu))
    assert e.is_cuda and e.cpu().tolist() == [0.0, 1.0, 2.0, 3.0]

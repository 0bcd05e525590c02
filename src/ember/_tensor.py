"""Tensor: metadata (storage, sizes, strides, offset, dtype) and the Python protocol.

Ops are not written here: `ember.ops` attaches each op declared with `method=True` (and the
operators) to this class, so a method call goes straight into the dispatcher.
"""
from __future__ import annotations

import numpy as np

from .core import dtype as _dt
from .core.device import CPU
from .core.layout import contiguous_format, is_contiguous_in
from .core.shape import contiguous_strides
from .core.storage import Storage

__all__ = ["Tensor", "Size"]

_ndarray = np.ndarray


class Size(tuple):
    """`tensor.shape`: a tuple of ints that prints as `ember.Size([2, 3])`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ember.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, i):
        r = tuple.__getitem__(self, i)
        return Size(r) if isinstance(i, slice) else r

    # as torch.Size: concatenating or repeating a Size gives a Size (`x.shape[:-1] + (n,)`)
    def __add__(self, other):
        return Size(tuple.__add__(self, other)) if isinstance(other, tuple) else NotImplemented

    def __radd__(self, other):
        return Size(tuple.__add__(other, self)) if isinstance(other, tuple) else NotImplemented

    def __mul__(self, n):
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__


class Tensor:
    __array_ufunc__ = None  # `np.float64(2) * t` defers to Tensor.__rmul__ instead of making an ndarray

    __slots__ = ("_storage", "_shape", "_stride", "_offset", "_dtype", "_np", "_base",
                 "requires_grad", "grad", "_grad_fn", "_out_nr", "_vver", "__weakref__", "__dict__")

    def __init__(self, *args, **kwargs):
        raise TypeError("create tensors with ember.tensor(...), ember.empty(...) or ember.zeros(...)")

    # ---- construction (internal) ----------------------------------------------------------
    @staticmethod
    def _make(storage: Storage, shape: tuple, stride: tuple, offset: int, dtype, base=None) -> "Tensor":
        t = _new(Tensor)
        t._storage = storage
        t._shape = shape
        t._stride = stride
        t._offset = offset
        t._dtype = dtype
        t._np = None
        t._base = base
        t.requires_grad = False
        t.grad = None
        t._grad_fn = None
        t._out_nr = 0
        t._vver = None
        return t

    @staticmethod
    def _from_numpy(arr: np.ndarray, dtype=None) -> "Tensor":
        """Wraps a freshly computed array (a kernel's output) without copying when it is C-contiguous."""
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        if dtype is None:
            dtype = _dt.from_numpy_dtype(arr.dtype)
        shape = arr.shape
        # the fields are set here, not through _make: this runs for every CPU kernel's output, and the
        # extra call would cost about 0.25 us of a 4x4 add's 6.7 us
        t = _new(Tensor)
        t._storage = Storage(arr, CPU, arr.nbytes)  # any C-contiguous array serves as the byte buffer
        t._shape = shape
        t._stride = contiguous_strides(shape)
        t._offset = 0
        t._dtype = dtype
        t._np = arr
        t._base = None
        t.requires_grad = False
        t.grad = None
        t._grad_fn = None
        t._out_nr = 0
        t._vver = None
        return t

    def _as_view(self, shape: tuple, stride: tuple, offset: int) -> "Tensor":
        """A tensor over the same storage (and version counter) with new geometry."""
        t = _new(Tensor)            # fields set inline, as in _from_numpy: every view op comes here
        t._storage = self._storage
        t._shape = shape
        t._stride = stride
        t._offset = offset
        t._dtype = self._dtype
        t._np = None
        base = self._base
        t._base = self if base is None else base
        t.requires_grad = False
        t.grad = None
        t._grad_fn = None
        t._out_nr = 0
        t._vver = self._storage.version
        return t

    @property
    def _array(self) -> np.ndarray:
        """The NumPy view of this CPU tensor (built once, then cached)."""
        a = self._np
        if a is None:
            st = self._storage
            if st.device is not CPU:
                raise TypeError(f"can't convert {st.device} device type tensor to numpy; use Tensor.cpu() first")
            itemsize = self._dtype.itemsize
            if 0 in self._shape:  # an empty view may point past its storage's end
                a = np.empty(self._shape, self._dtype.np)
            else:
                a = _ndarray(self._shape, self._dtype.np, st.data, self._offset * itemsize,
                             tuple(s * itemsize for s in self._stride))
            self._np = a
        return a

    # ---- metadata -------------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._shape)
        from .core.shape import normalize_dim
        return self._shape[normalize_dim(dim, len(self._shape))]

    def stride(self, dim: int | None = None):
        if dim is None:
            return self._stride
        from .core.shape import normalize_dim
        return self._stride[normalize_dim(dim, len(self._shape))]

    def storage_offset(self) -> int:
        return self._offset

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return self._storage.device

    @property
    def is_cuda(self) -> bool:
        return self._storage.device.type == "cuda"

    @property
    def is_cpu(self) -> bool:
        return self._storage.device.type == "cpu"

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def dim(self) -> int:
        return len(self._shape)

    def ndimension(self) -> int:
        return len(self._shape)

    def numel(self) -> int:
        n = 1
        for s in self._shape:
            n *= s
        return n

    nelement = numel

    def element_size(self) -> int:
        return self._dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self._dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.numel() * self._dtype.itemsize

    def is_floating_point(self) -> bool:
        return self._dtype.is_floating_point

    def is_complex(self) -> bool:
        return False

    def is_contiguous(self, memory_format=None) -> bool:
        if memory_format is not None and memory_format is not contiguous_format:
            return is_contiguous_in(self._shape, self._stride, memory_format)
        if 0 in self._shape:
            return True
        expected = 1
        for n, s in zip(reversed(self._shape), reversed(self._stride)):
            if n != 1:
                if s != expected:
                    return False
                expected *= n
        return True

    def data_ptr(self) -> int:
        return self._storage.data_ptr() + self._offset * self._dtype.itemsize

    def untyped_storage(self) -> Storage:
        return self._storage

    @property
    def _version(self) -> int:
        return self._storage.version

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None or not self.requires_grad

    @property
    def grad_fn(self):
        """The node that produced this tensor (None for leaves); views see in-place changes of their base."""
        if self._vver is not None and self._vver != self._storage.version and self._base is not None \
                and self.requires_grad:
            from .autograd.derivatives import edge_of
            edge_of(self)
        return self._grad_fn

    @property
    def output_nr(self) -> int:
        return self._out_nr

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and not self._dtype.is_floating_point:
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, got {self._dtype}")
        if not requires_grad and self._grad_fn is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf variables; "
                               "use detach() to get a tensor that does not require grad")
        self.requires_grad = requires_grad
        return self

    # ---- conversion to Python and NumPy ---------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """Zero-copy NumPy view of a CPU tensor (shares memory and sees in-place changes)."""
        if self.requires_grad and not force:
            from .autograd.grad_mode import state
            if state.enabled:  # kernels (which run with grad mode off) may look at their inputs' data
                raise RuntimeError("Can't call numpy() on a Tensor that requires grad; use tensor.detach().numpy()")
        if force and self._storage.device is not CPU:
            return self.cpu()._array
        return self._array

    def _host_array(self) -> np.ndarray:
        return self._array if self._storage.device is CPU else self.cpu()._array

    def item(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError(f"a Tensor with {n} elements cannot be converted to Scalar")
        x = self._host_array().reshape(())[()]
        d = self._dtype
        return float(x) if d.is_floating_point else (int(x) if d.is_integer else bool(x))

    def tolist(self):
        a = self._host_array()
        if self._dtype is _dt.bfloat16 or self._dtype is _dt.float16:
            a = a.astype(np.float64)
        return a.tolist()

    def __array__(self, dtype=None, copy=None):
        a = self._host_array()
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    def __iter__(self):
        if not self._shape:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __bool__(self) -> bool:
        n = self.numel()
        if n != 1:
            raise RuntimeError(f"Boolean value of Tensor with {n} elements is ambiguous; use .any() or .all()")
        return bool(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __index__(self) -> int:
        if not self._dtype.is_integer or self.numel() != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an index, "
                            f"got dtype {self._dtype} with {self.numel()} elements")
        return int(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats as its Python number (`f"{loss:.4f}"`), as in torch; any other tensor only
        with an empty spec (its str), else the TypeError object.__format__ raises."""
        if not self._shape:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __repr__(self) -> str:
        from ._format import format_tensor
        return format_tensor(self)

    __str__ = __repr__

    def __reduce_ex__(self, protocol):
        # For worker processes and deepcopy; checkpoints use ember.save (safetensors, no pickle).
        arr = np.ascontiguousarray(self._host_array())
        return (_rebuild, (arr, self._dtype.name, str(self.device), self.requires_grad))


def _rebuild(arr, dtype_name, device, requires_grad):
    t = Tensor._from_numpy(np.require(arr, requirements=("C", "W")), _dt._by_name(dtype_name))  # fresh from pickle
    if device != "cpu":
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


_new = object.__new__

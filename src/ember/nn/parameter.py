"""`ember.nn.Parameter`: a Tensor subclass that a Module registers as one of its parameters."""
from __future__ import annotations

from .._tensor import Tensor

__all__ = ["Parameter", "Buffer", "is_lazy"]

_new = object.__new__


class Parameter(Tensor):
    """A leaf tensor that is a module parameter: `Parameter(tensor, requires_grad=True)`.

    It shares `tensor`'s storage (no copy) and is detached from any graph that produced `tensor`.
    Results of ops on a Parameter are plain Tensors, as in PyTorch.
    """

    __slots__ = ()

    def __new__(cls, data=None, requires_grad: bool = True):
        if data is None:
            from ..ops.creation import empty
            data = empty(0)
        elif not isinstance(data, Tensor):
            raise TypeError(f"Parameter(data) expects an ember.Tensor (or None), got {type(data).__name__}")
        if requires_grad and not data._dtype.is_floating_point:
            raise RuntimeError(f"Only Tensors of floating point dtype can require gradients, got {data._dtype}; "
                               f"pass requires_grad=False for a {data._dtype} Parameter")
        p = _new(cls)
        p._storage = data._storage
        p._shape = data._shape
        p._stride = data._stride
        p._offset = data._offset
        p._dtype = data._dtype
        p._np = data._np
        p._base = None
        p.requires_grad = bool(requires_grad)
        p.grad = None
        p._grad_fn = None
        p._out_nr = 0
        p._vver = None
        return p

    def __init__(self, data=None, requires_grad: bool = True):
        pass  # everything happens in __new__ (Tensor.__init__ refuses direct construction)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)

    __str__ = __repr__

    def __reduce_ex__(self, protocol):
        import numpy as np
        arr = np.ascontiguousarray(self._host_array())
        return (_rebuild_parameter, (arr, self._dtype.name, str(self.device), self.requires_grad))

    def __deepcopy__(self, memo):
        key = id(self)
        if key in memo:
            return memo[key]
        from ..autograd.grad_mode import no_grad
        with no_grad():
            data = self.detach().clone()
        r = Parameter(data, self.requires_grad)
        if self.grad is not None:
            import copy
            r.grad = copy.deepcopy(self.grad, memo)
        memo[key] = r
        return r


def _rebuild_parameter(arr, dtype_name, device, requires_grad):
    from .._tensor import _rebuild
    return Parameter(_rebuild(arr, dtype_name, device, False), requires_grad)


class Buffer(Tensor):
    """Marker for `module.x = Buffer(tensor, persistent=True)`: assigning it registers a buffer.

    Like PyTorch's `nn.Buffer`, the Module unwraps it: the registered buffer is a plain Tensor
    sharing the data.
    """

    __slots__ = ()

    def __new__(cls, data=None, *, persistent: bool = True):
        if data is None:
            from ..ops.creation import empty
            data = empty(0)
        elif not isinstance(data, Tensor):
            raise TypeError(f"Buffer(data) expects an ember.Tensor (or None), got {type(data).__name__}")
        b = _new(cls)
        for slot in ("_storage", "_shape", "_stride", "_offset", "_dtype", "_np"):
            setattr(b, slot, getattr(data, slot))
        b._base = None
        b.requires_grad = data.requires_grad
        b.grad = None
        b._grad_fn = None
        b._out_nr = 0
        b._vver = None
        b.__dict__["persistent"] = persistent
        return b

    def __init__(self, data=None, *, persistent: bool = True):
        pass


def _plain(t: Tensor) -> Tensor:
    """A plain Tensor over the same data as `t` (keeps requires_grad)."""
    r = t.detach()
    if t.requires_grad:
        r.requires_grad_(True)
    return r


def is_lazy(param) -> bool:
    return False

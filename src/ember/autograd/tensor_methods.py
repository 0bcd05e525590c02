"""Autograd's methods on Tensor: backward, detach, hooks, retain_grad, .data."""
from __future__ import annotations

from .._tensor import Tensor
from ..core.layout import contiguous_format
from ..dispatch import OPS
from .graph import RemovableHandle, _HookDict


def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    from . import backward as _backward
    _backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs=inputs)


def detach(self):
    """A tensor sharing storage (and version counter) with self, outside the graph."""
    t = self._as_view(self._shape, self._stride, self._offset)
    t._base = self._base
    t._vver = None
    return t


def zero_grads(tensors, set_to_none: bool = True) -> None:
    """What Module.zero_grad and Optimizer.zero_grad do to each tensor's `.grad`: drop it (the default),
    or detach it from any graph and zero it in place."""
    for p in tensors:
        g = p.grad
        if g is None:
            continue
        if set_to_none:
            p.grad = None
            continue
        if g._grad_fn is not None:
            detach_(g)
        else:
            g.requires_grad = False
        OPS["zero_"].fn(g)


def detach_(self):
    if self._base is not None and self._base.requires_grad:
        raise RuntimeError("Can't detach views in-place. Use detach() instead.")
    self._grad_fn = None
    self._out_nr = 0
    self.requires_grad = False
    return self


def _hooks(self, key):
    d = self.__dict__.get(key)
    if d is None:
        d = self.__dict__[key] = _HookDict()
    return d


def register_hook(self, hook):
    """`hook(grad)` runs when this tensor's gradient is computed; it may return a replacement."""
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self.grad_fn is not None:
        return self.grad_fn._add_pre_hook(self._out_nr, hook)
    d = _hooks(self, "_hooks")
    h = RemovableHandle(d)
    d[h.id] = hook
    return h


def register_post_accumulate_grad_hook(self, hook):
    """`hook(tensor)` runs after the gradient was accumulated into this leaf's `.grad`."""
    if self.grad_fn is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    d = _hooks(self, "_post_acc_hooks")
    h = RemovableHandle(d)
    d[h.id] = hook
    return h


def retain_grad(self):
    """Keep `.grad` of this non-leaf tensor after backward (a no-op on leaves)."""
    if not self.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    if self.grad_fn is None or self.__dict__.get("_retains_grad"):
        return
    import weakref
    ref = weakref.ref(self)

    def keep(grad):
        t = ref()
        if t is None:
            return
        from .grad_mode import state
        if t.grad is None:
            prev = state.enabled
            state.enabled = False
            try:
                t.grad = OPS["clone"].fn(grad, memory_format=contiguous_format)   # (a non-leaf's: row-major)
            finally:
                state.enabled = prev
        else:
            t.grad = OPS["add"].fn(t.grad, grad)
    self.grad_fn._add_pre_hook(self._out_nr, keep)
    self.__dict__["_retains_grad"] = True


def _retains_grad(self) -> bool:
    return bool(self.__dict__.get("_retains_grad"))


def _get_data(self):
    return detach(self)


def _set_data(self, new):
    if not isinstance(new, Tensor):
        raise TypeError(f"data must be a Tensor, got {type(new).__name__}")
    self._storage, self._shape, self._stride, self._offset = new._storage, new._shape, new._stride, new._offset
    self._dtype, self._np = new._dtype, new._np


Tensor.backward = backward
Tensor.detach = detach
Tensor.detach_ = detach_
Tensor.register_hook = register_hook
Tensor.register_post_accumulate_grad_hook = register_post_accumulate_grad_hook
Tensor.retain_grad = retain_grad
Tensor.retains_grad = property(_retains_grad)
Tensor.data = property(_get_data, _set_data)

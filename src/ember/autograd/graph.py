"""The autograd graph: nodes, edges, saved tensors and hooks.

A node is one backward function. `next_functions` holds one edge `(node, output_nr)` per
differentiable input (None where that input needs no grad). Each leaf that requires grad has
one `AccumulateGrad` node, shared by all its uses. Saved tensors keep the version they had when
saved, and unpacking checks it.
"""
from __future__ import annotations

import itertools
import weakref

from ..core.hooks import RemovableHandle

__all__ = ["Node", "AccumulateGrad", "SavedTensor", "RemovableHandle"]

_seq = itertools.count()
_new = object.__new__


class _HookDict(dict):
    __slots__ = ("__weakref__",)


class SavedTensor:
    """A tensor saved for backward with the version it had; `unpack` refuses a modified one.

    An op's own output is saved as an alias without grad_fn (no reference cycle), and is given
    the node back as grad_fn when unpacked, so double backward sees it connected.
    """

    __slots__ = ("tensor", "version", "is_output", "output_nr")

    def __init__(self, t, is_output: bool = False, output_nr: int = 0, version=None):
        if is_output:
            alias = t._as_view(t._shape, t._stride, t._offset)
            alias._base = t._base  # an alias of t, not a view of it: keep the same base
            alias._vver = t._vver
            t = alias
        self.tensor = t
        self.version = t._storage.version if version is None else version
        self.is_output = is_output
        self.output_nr = output_nr

    @staticmethod
    def of(t) -> "SavedTensor":
        """A saved input (the fast path used by generated recording code)."""
        s = _new(SavedTensor)
        s.tensor = t
        s.version = t._storage.version
        s.is_output = False
        s.output_nr = 0
        return s

    def unpack(self, node):
        t = self.tensor
        if t is None:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (or directly access saved tensors "
                f"after they have already been freed). Saved intermediate values of the graph are freed "
                f"when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
                f"backward through the graph a second time or if you need to access saved tensors after "
                f"calling backward. (node: {node.name()})")
        v = t._storage.version
        if v != self.version:
            what = (f"output {self.output_nr} of {node.name()}" if self.is_output else
                    (f"output {t._out_nr} of {t.grad_fn.name()}" if t.grad_fn is not None else "a leaf tensor")
                    + f" saved by {node.name()}")
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: [{t._dtype} tensor of shape {list(t._shape)}], which is {what}, is at version "
                f"{v}; expected version {self.version} instead. Hint: the inplace operation happened after "
                f"this tensor was saved for backward; use an out-of-place op or .clone() before it "
                f"(detect_anomaly() shows where the failing node was created).")
        if self.is_output:
            out = t._as_view(t._shape, t._stride, t._offset)
            out._base = t._base
            out._vver = t._vver
            out._grad_fn = node
            out._out_nr = self.output_nr
            out.requires_grad = True
            return out
        return t


class Node:
    """One backward function of the graph."""

    materialize = True  # the engine fills missing output grads with zeros before apply()
    materialize_upto = 1 << 30  # ... of its first this many outputs (an op whose formulas read only grads[0]: 1)
    # rarely set; class-level defaults keep node creation cheap (an instance value goes to __dict__)
    _pre_hooks = None     # {output_nr: _HookDict} for Tensor.register_hook on non-leaf outputs
    _hooks = None         # node hooks (grad_fn.register_hook)
    _trace = None         # forward stack, under detect_anomaly()

    __slots__ = ("next_functions", "_released", "_seq", "__weakref__", "__dict__")

    def __init__(self, next_functions=()):
        self.next_functions = tuple(next_functions)
        self._released = False
        self._seq = next(_seq)

    def name(self) -> str:
        return type(self).__name__

    @property
    def num_outputs(self) -> int:
        return 1

    def apply(self, grads: list) -> list:
        """Input grads (one per next_functions edge) from output grads."""
        raise NotImplementedError

    def release(self) -> None:
        self._released = True

    def register_hook(self, fn) -> RemovableHandle:
        """`fn(grad_inputs, grad_outputs)` after this node runs; may return replacement grad_inputs."""
        if self._hooks is None:
            self._hooks = _HookDict()
        h = RemovableHandle(self._hooks)
        self._hooks[h.id] = fn
        return h

    def register_prehook(self, fn) -> RemovableHandle:
        """`fn(grad_outputs)` before this node runs; may return replacement grad_outputs."""
        return self._add_pre_hook(-1, fn)

    def _add_pre_hook(self, output_nr: int, fn) -> RemovableHandle:
        if self._pre_hooks is None:
            self._pre_hooks = {}
        d = self._pre_hooks.get(output_nr)
        if d is None:
            d = self._pre_hooks[output_nr] = _HookDict()
        h = RemovableHandle(d)
        d[h.id] = fn
        return h

    def __repr__(self) -> str:
        return f"<{self.name()} object at {hex(id(self))}>"


class AccumulateGrad(Node):
    """The node of a leaf: adds the incoming gradient into `variable.grad`."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        super().__init__(())
        self.variable = variable

    def apply(self, grads):
        raise AssertionError("AccumulateGrad is run by the engine")


def accumulator(t) -> AccumulateGrad:
    """The leaf's unique AccumulateGrad node (created on first use, held weakly by the tensor)."""
    ref = t.__dict__.get("_acc")
    node = ref() if ref is not None else None
    if node is None:
        node = AccumulateGrad(t)
        t.__dict__["_acc"] = weakref.ref(node)
    return node

"""`ember.autograd.Function`: user-defined forward/backward pairs, as in PyTorch."""
from __future__ import annotations

import functools

from .._tensor import Tensor
from .grad_mode import state
from .graph import Node, SavedTensor

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The `ctx` of a custom Function."""

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save tensors (or None), got {type(t).__name__}")
        self._to_save = tensors

    def mark_dirty(self, *tensors):
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors):
        self._non_diff = tensors

    def set_materialize_grads(self, value: bool):
        self._materialize = bool(value)

    @property
    def saved_tensors(self):
        node = self._node
        saved = node._saved
        if saved is None:
            raise RuntimeError("Trying to backward through the graph a second time (or directly access saved "
                               "tensors after they have already been freed); pass retain_graph=True")
        return tuple(s.unpack(node) if s is not None else None for s in saved)


class _FunctionNode(Node):
    __slots__ = ("ctx", "fn_cls", "_saved", "out_meta", "in_meta")
    materialize = False  # ctx.set_materialize_grads decides

    @property
    def num_outputs(self):
        return len(self.out_meta)

    def apply(self, grads):
        ctx = self.ctx
        if ctx._materialize:
            from ..dispatch import OPS
            grads = [g if g is not None or m is None else OPS["zeros"].fn(*m[0], dtype=m[1], device=m[2])
                     for g, m in zip(grads, self.out_meta)]
        res = self.fn_cls.backward(ctx, *grads)
        if not isinstance(res, tuple):
            res = (res,)
        n = len(self.in_meta)
        if len(res) < n:
            raise RuntimeError(f"function {self.fn_cls.__name__}.backward returned an incorrect number of "
                               f"gradients (expected {n}, got {len(res)})")
        if len(res) > n:
            extra = res[n:]
            if any(r is not None for r in extra):
                raise RuntimeError(f"function {self.fn_cls.__name__}.backward returned an incorrect number of "
                                   f"gradients (expected {n}, got {len(res)})")
            res = res[:n]
        out = []
        for i, (g, e, m) in enumerate(zip(res, self.next_functions, self.in_meta)):
            if g is None or e is None:
                out.append(None)
                continue
            if not isinstance(g, Tensor):
                raise TypeError(f"{self.fn_cls.__name__}.backward must return tensors or None, got {type(g).__name__}")
            if g._shape != m[0]:
                from .derivatives import sum_to
                try:
                    g = sum_to(g, m[0])
                except RuntimeError:
                    raise RuntimeError(f"Function {self.fn_cls.__name__}Backward returned an invalid gradient at "
                                       f"index {i} - got {list(g._shape)} but expected shape compatible with "
                                       f"{list(m[0])}") from None
            if g._dtype is not m[1]:
                g = g.to(m[1])
            out.append(g)
        return out

    def release(self):
        self._saved = None
        self._released = True


class Function:
    """Subclass with static `forward(ctx, *args)` and `backward(ctx, *grads)`; call `.apply(*args)`."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("a Function subclass must define backward(ctx, *grads) to be differentiated")

    @classmethod
    def apply(cls, *args, **kwargs):
        from .derivatives import edge_of
        ctx = FunctionCtx()
        ctx._to_save = ()
        ctx._dirty = ()
        ctx._non_diff = ()
        ctx._materialize = True
        tensors = [a for a in args if isinstance(a, Tensor)]
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = state.enabled and any(ctx.needs_input_grad)
        prev = state.enabled
        state.enabled = False
        try:
            out = cls.forward(ctx, *args, **kwargs)
        finally:
            state.enabled = prev
        if not record:
            return out
        edges = [edge_of(a) if isinstance(a, Tensor) and a.requires_grad else None for a in args]
        node_cls = cls.__dict__.get("_node_cls")
        if node_cls is None:
            node_cls = type(cls.__name__ + "Backward", (_FunctionNode,), {"__slots__": ()})
            cls._node_cls = node_cls
        node = node_cls(edges)
        node.ctx = ctx
        node.fn_cls = cls
        node.in_meta = [(a._shape, a._dtype) if isinstance(a, Tensor) else None for a in args]
        ctx._node = node
        outs = (out,) if isinstance(out, Tensor) else tuple(out)
        node.out_meta = [(o._shape, o._dtype, o.device) if isinstance(o, Tensor) else None for o in outs]
        dirty = {id(t) for t in ctx._dirty}
        non_diff = {id(t) for t in ctx._non_diff}
        inputs = {id(t) for t in tensors}
        new_outs = []
        for k, o in enumerate(outs):
            if isinstance(o, Tensor):
                if id(o) in inputs and id(o) not in dirty:
                    # returning an input unchanged: hand back a view so the input keeps its own history
                    o = o._as_view(o._shape, o._stride, o._offset)
                if id(o) in dirty:
                    o._storage.version += 0  # already bumped by the in-place ops inside forward
                if o._dtype.is_floating_point and id(o) not in non_diff:
                    o._grad_fn = node
                    o._out_nr = k
                    o.requires_grad = True
            new_outs.append(o)
        outs_by_id = {id(o): o for o in new_outs if isinstance(o, Tensor)}
        node._saved = [None if t is None else
                       SavedTensor(t, is_output=id(t) in outs_by_id and outs_by_id[id(t)]._grad_fn is node,
                                   output_nr=new_outs.index(t) if id(t) in outs_by_id else 0)
                       for t in ctx._to_save]
        return new_outs[0] if isinstance(out, Tensor) else type(out)(new_outs) if isinstance(out, tuple) else new_outs


def once_differentiable(fn):
    """Marks a backward that cannot itself be differentiated: runs it without recording."""
    @functools.wraps(fn)
    def wrapper(ctx, *grads):
        from .grad_mode import no_grad
        with no_grad():
            return fn(ctx, *grads)
    return wrapper

"""The backward engine: dependency-counted, iterative, no global lock.

1. Walk the graph from the roots once (iteratively) and count, per node, how many edges lead
   into it.
2. Run ready nodes (all their consumers done) in reverse creation order, adding each input grad
   into its producer's buffer; a node whose count reaches zero becomes ready.
3. Each node frees what it saved as soon as it has run, unless `retain_graph`.
With `inputs=`, only nodes on a path to an input run, and the grads reaching those inputs are
captured (autograd.grad) or accumulated into `.grad` (backward(inputs=...)).
"""
from __future__ import annotations

import heapq
from sys import getrefcount

import numpy as np

from .._tensor import Tensor
from ..core.layout import contiguous_format, dense_strides
from ..core.shape import contiguous_strides
from ..dispatch import OPS, PROFILER
from .grad_mode import state
from .graph import AccumulateGrad

__all__ = ["run_backward"]

def _add(a, b):
    if a is None:
        return b
    return OPS["add"].fn(a, b)


def _zeros_for(meta, device):
    return OPS["zeros"].fn(*meta[0], dtype=meta[1], device=device)


def _topo_needed(roots, targets):
    """Dependency counts, and (with targets) the set of nodes on some path to a target."""
    deps = {}
    seen = set(roots)
    if targets is None:     # `backward()`: the counts alone, from a plain walk (no post-order needed)
        stack = list(roots)
        while stack:
            for e in stack.pop().next_functions:
                if e is not None:
                    child = e[0]
                    n = deps.get(child)
                    if n is not None:
                        deps[child] = n + 1
                    else:
                        deps[child] = 1
                        if child not in seen:   # (a root reached from another root is walked already)
                            seen.add(child)
                            stack.append(child)
        return deps, None
    order = []
    stack = [(r, iter(r.next_functions)) for r in roots]
    # iterative DFS producing a post-order (children before parents)
    visited_post = set()
    while stack:
        node, it = stack[-1]
        advanced = False
        for e in it:
            if e is None:
                continue
            child = e[0]
            deps[child] = deps.get(child, 0) + 1
            if child not in seen:
                seen.add(child)
                stack.append((child, iter(child.next_functions)))
                advanced = True
                break
        if not advanced:
            stack.pop()
            if node not in visited_post:
                visited_post.add(node)
                order.append(node)
    needed = None
    if targets is not None:
        needed = set()
        for node in order:  # children come first
            if node in targets or any(e is not None and e[0] in needed for e in node.next_functions):
                needed.add(node)
    return deps, needed


def run_backward(tensors, grad_tensors, retain_graph: bool, create_graph: bool, inputs=None,
                 allow_unused: bool = False, accumulate: bool = True):
    """Backpropagates from `tensors`; returns the grads of `inputs` when `accumulate` is False."""
    from .derivatives import edge_of
    roots, root_grads = [], []
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        e = edge_of(t) if t.requires_grad else None
        if e is None:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        roots.append(e)
        root_grads.append(g)

    # what to capture: leaf inputs by their AccumulateGrad node, others by (node, output_nr)
    capture = None
    targets = None
    if inputs is not None:
        capture = {}
        targets = set()
        for k, t in enumerate(inputs):
            e = edge_of(t) if t.requires_grad else None
            if e is None:
                if not t.requires_grad:
                    raise RuntimeError(f"One of the differentiated Tensors (input {k}) does not require grad")
                continue
            capture.setdefault(e, []).append(k)
            targets.add(e[0])
    results = [None] * (len(inputs) if inputs is not None else 0)

    root_nodes = list(dict.fromkeys(e[0] for e in roots))
    deps, needed = _topo_needed(root_nodes, targets)
    buffers = {}
    for (node, nr), g in zip(roots, root_grads):
        buf = buffers.get(node)
        if buf is None:
            buf = buffers[node] = [None] * node.num_outputs
        buf[nr] = _add(buf[nr], g)

    ready = []
    for node in root_nodes:
        if deps.get(node, 0) == 0:
            heapq.heappush(ready, (-node._seq, id(node), node))
    prev = state.enabled
    state.enabled = create_graph
    try:
        while ready:
            _, _, node = heapq.heappop(ready)
            grads = buffers.pop(node, None) or [None] * node.num_outputs
            if node._pre_hooks:
                grads = _run_pre_hooks(node, grads)
            if capture is not None:
                for nr, g in enumerate(grads):
                    ks = capture.get((node, nr))
                    if ks:
                        for k in ks:
                            results[k] = g
            if needed is not None and node not in needed:
                in_grads = None
            elif type(node) is AccumulateGrad:
                in_grads = g = None     # no stale references: _accumulate may take the gradient over
                if capture is None or accumulate:
                    _accumulate(node.variable, grads, create_graph)
            elif grads.count(None) == len(grads):
                in_grads = None
            else:
                in_grads = _apply(node, grads)
                if not retain_graph:
                    node.release()
            nexts = node.next_functions
            for i, e in enumerate(nexts):
                if e is None:
                    continue
                child, nr = e
                g = in_grads[i] if in_grads is not None else None
                if g is not None:
                    buf = buffers.get(child)
                    if buf is None:
                        buf = buffers[child] = [None] * child.num_outputs
                        buf[nr] = g
                    else:
                        have = buf[nr]      # (not `prev`: that name holds the grad mode to restore)
                        buf[nr] = g if have is None else OPS["add"].fn(have, g)
                n = deps[child] - 1
                deps[child] = n
                if n == 0:
                    heapq.heappush(ready, (-child._seq, id(child), child))
    finally:
        state.enabled = prev

    if inputs is not None and not accumulate:
        for k, r in enumerate(results):
            if r is None and not allow_unused:
                raise RuntimeError(f"One of the differentiated Tensors (input {k}) appears to not have been used "
                                   f"in the graph. Set allow_unused=True if this is the desired behavior.")
        return results
    if inputs is not None and accumulate:
        for t, g in zip(inputs, results):
            if g is not None and not t.is_leaf:
                _accumulate(t, [g], create_graph)
    return None


def _run_pre_hooks(node, grads):
    grads = list(grads)
    for nr, hooks in list(node._pre_hooks.items()):
        if nr < 0:
            for h in list(hooks.values()):
                r = h(tuple(grads))
                if r is not None:
                    grads = list(r)
            continue
        g = grads[nr]
        if g is None:
            continue
        for h in list(hooks.values()):
            r = h(g)
            if r is not None:
                g = r
        grads[nr] = g
    return grads


def _apply(node, grads):
    if len(grads) > 1 and node.materialize and any(g is None for g in grads):
        meta = getattr(node, "out_meta", None)
        upto = node.materialize_upto
        # on the device of the grads that came (an op's outputs share it): zeros() alone would make CPU ones
        device = next((g.device for g in grads if g is not None), None)
        grads = [g if g is not None or meta is None or meta[i] is None or i >= upto else _zeros_for(meta[i], device)
                 for i, g in enumerate(grads)]
    try:
        out = node.apply(grads) if not PROFILER.on else PROFILER.node(node, grads)
    except Exception as exc:
        if node._trace:
            note = ("Traceback of the forward call that created the failing node " + node.name() + ":\n"
                    + "".join(node._trace))
            if hasattr(exc, "add_note"):
                exc.add_note(note)
        raise
    if node._hooks:
        for h in list(node._hooks.values()):
            r = h(tuple(out), tuple(grads))
            if r is not None:
                out = list(r)
    if state.anomaly and state.anomaly_nan:
        for i, g in enumerate(out):
            if g is not None and g._dtype.is_floating_point and bool(OPS["isnan"].fn(g).any()):
                msg = f"Function '{node.name()}' returned nan values in its {i}th output."
                if node._trace:
                    msg += " Forward call that created it:\n" + "".join(node._trace)
                raise RuntimeError(msg)
    return out


def _can_take(t, grads) -> bool:
    """May `grads[0]` become `t.grad` as it is, instead of a copy? Only when nothing else can reach
    it or its memory (PyTorch's AccumulateGrad steals a gradient under the same condition): a plain
    contiguous layout of t's shape, dtype and device, and no reference to the tensor but the
    engine's list (and `g` here), none to its storage and buffer but their owners' (and the names
    here); a view qualifies when only it holds its base (a reshaped reduction, say).

    Every count below is of a fresh reference from a subscript or attribute load, which is owned
    on every CPython, never of a local passed on: from 3.14 the interpreter may borrow a local's
    reference instead of counting it, so `getrefcount(g)` would miss one. Every other holder
    counted is a container slot or a local assigned here, which hold strong references. Callers
    keep no local of the gradient (`_accumulate` reads it from the list)."""
    g = grads[0]
    if g.__class__ is not Tensor or g.requires_grad or g._offset or g._shape != t._shape or g._dtype is not t._dtype:
        return False
    st = g._storage
    data = st.data
    if (st.device is not t._storage.device or g._stride != (dense_strides(t) or contiguous_strides(g._shape))
            or st.nbytes != g.numel() * g._dtype.itemsize or getattr(data, "base", None) is not None):
        return False
    base = g._base
    return (getrefcount(grads[0]) <= 3                                  # grads' slot, g, the argument
            and (base is None or getrefcount(g._base) <= 3)             # g._base, base, the argument
            and getrefcount(g._storage) <= 3 + (base is not None)       # + the base's _storage
            and getrefcount(st.data) <= 3 + (g._np is not None) + (base is not None and base._np is not None))
    # (on the CPU a tensor's cached NumPy view, or the array itself, holds one more reference to its data)


def _calibrate() -> bool:
    """Checks `_can_take` on tensors whose holders are known, in the calling shape the engine uses
    (the gradient in a list slot): a fresh tensor and a view of a fresh base qualify; one whose
    tensor, base, storage or buffer is also held elsewhere does not. On an interpreter that counts
    references otherwise than `_can_take` assumes, the engine never takes a gradient over: it
    copies, which is always safe."""
    def fresh():
        return Tensor._from_numpy(np.zeros(2, np.float32))

    def view(t):
        return t._as_view((2,), (1,), 0)

    leaf, kept = fresh(), []    # `kept` is the holder the engine does not know about
    takes = _can_take(leaf, [fresh()]) and _can_take(leaf, [view(fresh())])
    shared = False
    for part in (lambda g: g, lambda g: g._storage, lambda g: g._storage.data):
        box = [fresh()]
        kept.append(part(box[0]))
        shared = shared or _can_take(leaf, box)
    box = [view(fresh())]
    kept.append(box[0]._base)
    shared = shared or _can_take(leaf, box)
    return takes and not shared


TAKES_GRADIENTS = _calibrate()      # False: this interpreter's reference counts can't be trusted


def grad_copy(t, g):
    """A copy of gradient g laid out as leaf t's .grad must be (torch's layout contract): t's strides where t is
    dense and not row-major (a transposed or channels-last parameter, whose fused optimizer step then walks
    parameter, gradient and state as one block each), else row-major."""
    st = dense_strides(t)
    if st is None:
        return OPS["clone"].fn(g, memory_format=contiguous_format)
    return OPS["empty_strided"].fn(t._shape, st, dtype=g._dtype, device=g.device).copy_(g)


def _run_hooks(hooks, g):
    for h in list(hooks.values()):
        r = h(g)
        if r is not None:
            g = r
    return g


def _accumulate(t, grads, create_graph: bool):
    """Adds the gradient `grads[0]` into leaf `t`'s .grad (hooks first; `grads` is the engine's list,
    or a one-element list made for the call). The gradient stays in the list, never in a local
    here, so that `_can_take` counts every other holder."""
    d = t.__dict__
    hooks = d.get("_hooks")
    if hooks:
        grads[0] = _run_hooks(hooks, grads[0])
    if t.grad is None:
        if create_graph:
            t.grad = grads[0]
        elif TAKES_GRADIENTS and _can_take(t, grads):
            t.grad = grads[0]
            grads[0] = None
        else:
            prev = state.enabled
            state.enabled = False
            try:        # never alias: the gradient may be shared or an expanded view
                t.grad = grad_copy(t, grads[0])
            finally:
                state.enabled = prev
    elif create_graph or t.grad.requires_grad:
        t.grad = OPS["add"].fn(t.grad, grads[0])
    else:
        prev = state.enabled
        state.enabled = False
        try:
            OPS["add_"].fn(t.grad, grads[0])
        finally:
            state.enabled = prev
    post = d.get("_post_acc_hooks")
    if post:
        for h in list(post.values()):
            h(t)

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

from .._tensor import Tensor
from ..core.shape import contiguous_strides
from ..dispatch import OPS
from .grad_mode import state
from .graph import AccumulateGrad

__all__ = ["run_backward"]

# Set by the CUDA backend: a context manager making `stream` current (backward of a node runs on
# the stream its forward used).
stream_guard = None


def _add(a, b):
    if a is None:
        return b
    return OPS["add"].fn(a, b)


def _zeros_for(meta):
    return OPS["zeros"].fn(*meta[0], dtype=meta[1])


def _topo_needed(roots, targets):
    """Dependency counts, and (with targets) the set of nodes on some path to a target."""
    deps = {}
    seen = set(roots)
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
            elif all(g is None for g in grads):
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
                    buf[nr] = _add(buf[nr], g)
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
        grads = [g if g is not None or meta is None or meta[i] is None or i >= upto else _zeros_for(meta[i])
                 for i, g in enumerate(grads)]
    try:
        if node.stream is not None and stream_guard is not None:
            with stream_guard(node.stream):
                out = node.apply(grads)
        else:
            out = node.apply(grads)
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
            if g is not None and g._dtype.category == 2 and bool(OPS["isnan"].fn(g).any()):
                msg = f"Function '{node.name()}' returned nan values in its {i}th output."
                if node._trace:
                    msg += " Forward call that created it:\n" + "".join(node._trace)
                raise RuntimeError(msg)
    return out


_G_REFS = 4     # the engine's list, _accumulate's and _can_take's names, getrefcount's argument


def _can_take(t, g) -> bool:
    """May `g` become `t.grad` as it is, instead of a copy? Only when nothing else can reach it or its
    memory (PyTorch's AccumulateGrad steals a gradient under the same condition): no other
    reference to the tensor than the engine's list and the names here, none to its storage and
    buffer but their owners' (and the names here), a plain contiguous layout of t's shape, dtype
    and device."""
    if g.__class__ is not Tensor or g.requires_grad or g._offset or g._shape != t._shape or g._dtype is not t._dtype:
        return False
    base = g._base      # a view (a reshaped reduction, say) qualifies when only it holds its base
    if base is not None and getrefcount(base) > 3:     # g._base, the name here, the argument
        return False
    st = g._storage
    data = st.data
    return (st.device is t._storage.device and g._stride == contiguous_strides(g._shape)
            and st.nbytes == g.numel() * g._dtype.itemsize and getattr(data, "base", None) is None
            and getrefcount(g) <= _G_REFS and getrefcount(st) <= 3 + (base is not None)
            and getrefcount(data) <= 3 + (g._np is not None) + (base is not None and base._np is not None))
    # (on the CPU a tensor's cached NumPy view holds one more reference to its data)


def _accumulate(t, grads, create_graph: bool):
    """Adds the gradient `grads[0]` into leaf `t`'s .grad (hooks first; `grads` is the engine's list,
    or a one-element list made for the call)."""
    g = grads[0]
    d = t.__dict__
    hooks = d.get("_hooks")
    if hooks:
        for h in list(hooks.values()):
            r = h(g)
            if r is not None:
                g = r
    if t.grad is None:
        if create_graph:
            t.grad = g
        elif _can_take(t, g):
            grads[0] = None
            t.grad = g
        else:
            prev = state.enabled
            state.enabled = False
            try:
                t.grad = OPS["clone"].fn(g)  # never alias: g may be shared or an expanded view
            finally:
                state.enabled = prev
    elif create_graph or t.grad.requires_grad:
        t.grad = OPS["add"].fn(t.grad, g)
    else:
        prev = state.enabled
        state.enabled = False
        try:
            OPS["add_"].fn(t.grad, g)
        finally:
            state.enabled = prev
    post = d.get("_post_acc_hooks")
    if post:
        for h in list(post.values()):
            h(t)

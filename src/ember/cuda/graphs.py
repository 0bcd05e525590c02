"""Whole-step CUDA graphs as a library feature: `graphed_step` (forward, backward and the optimizer step as one
graph per input signature) and `make_graphed_callables` (torch's: a module's or function's forward and
backward as two graphs inside an ordinary autograd graph).

Both build on `ember.cuda.CUDAGraph` and follow its rules: a graph replays the addresses it captured, so
what it reads and writes must stay alive and in place (the helpers keep their static inputs and outputs;
the caller keeps its model, optimizer and any tensor the step closes over), and nothing in a captured
region may synchronise with the host (`.item()`, printing a CUDA tensor, a data-dependent shape).
"""
from __future__ import annotations

import warnings

from .. import autograd
from .._tensor import Tensor
from ..backends.cuda.graphs import CaptureError, CUDAGraph, graph, graph_pool_handle
from ..backends.cuda.stream import Stream, current_stream, stream

__all__ = ["graphed_step", "make_graphed_callables"]


def _signature(args, kwargs, who):
    """The key a step's graph is cached under: each tensor argument's shape, dtype, device and requires_grad,
    and every other argument's value (it is baked into the capture)."""
    key = []
    for name, a in list(enumerate(args)) + sorted(kwargs.items()):
        if isinstance(a, Tensor):
            if a.device.type != "cuda":
                raise ValueError(f"{who}: argument {name!r} is a tensor on {a.device}; a CUDA graph replays "
                                 f"CUDA work, so tensor arguments must be on a CUDA device (move it with .cuda())")
            key.append((name, "tensor", tuple(a.shape), a.dtype, a.device, a.requires_grad))
        else:
            try:
                hash(a)
            except TypeError:
                raise TypeError(f"{who}: argument {name!r} of type {type(a).__name__} is neither a tensor nor "
                                f"hashable; other arguments are part of the captured step and key its graph, "
                                f"so pass tensors, numbers, strings or tuples of them") from None
            key.append((name, "value", a))
    return tuple(key)


class _Captured:
    __slots__ = ("warmup", "graph", "args", "kwargs", "out")

    def __init__(self, warmup):
        self.warmup = warmup
        self.graph = self.args = self.kwargs = self.out = None


class graphed_step:  # noqa: N801 - a function-like wrapper, named as one
    """`step = ember.cuda.graphed_step(fn, warmup=3)`: calls of `step(*args, **kwargs)` run `fn` as one CUDA
    graph.

    `fn` is a whole training step (forward, loss, backward, clipping, optimizer step) whose tensor arguments
    are CUDA tensors, typically the batch. For each new input signature (tensor shapes, dtypes, devices and
    requires_grad; the values of other arguments) the first `warmup` calls run `fn` eagerly on a side stream
    (real steps: optimizer state and lazily built buffers come into being), the next call captures `fn`
    into a graph, with clones of its tensor arguments as the graph's static inputs, and replays it; later
    calls copy their tensors into the static inputs and replay. All the graphs share one memory pool, as
    torch's CUDA graph trees do, and at most `max_graphs` signatures are kept (the least recently used is
    dropped beyond that).

    The return value is the captured call's result: each replay rewrites the same tensors, as with
    `torch.cuda.CUDAGraph`, so read it (or clone it) before the next call. Tensors the step leaves behind in
    other objects (`p.grad` after `zero_grad(set_to_none=True)` inside the step) are those of the latest
    capture: with several input signatures, read such results through the return value instead. Use an optimizer built with
    `capturable=True` where it has the option, so its step count lives on the device.

    If `fn` does something that cannot be captured (it synchronises with the host: `.item()`, a
    data-dependent shape, printing a CUDA tensor), the capture is abandoned with a warning naming the
    operation, and from then on `fn` runs eagerly. The abandoned capture ran `fn`'s Python code once without
    its GPU work: a plain Python counter it keeps has moved on by one; its tensors have not.
    """

    def __init__(self, fn, warmup: int = 3, pool=None, max_graphs: int = 8):
        if not callable(fn):
            raise TypeError(f"graphed_step: fn must be callable, got {type(fn).__name__}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"graphed_step: warmup must be an int >= 0, got {warmup!r}")
        if isinstance(max_graphs, bool) or not isinstance(max_graphs, int) or max_graphs < 1:
            raise ValueError(f"graphed_step: max_graphs must be an int >= 1, got {max_graphs!r}")
        self.fn, self.warmup, self.max_graphs = fn, warmup, max_graphs
        self.pool = pool if pool is not None else graph_pool_handle()
        self.eager_reason = None    # why fn runs eagerly (an abandoned capture), or None
        self._graphs = {}           # signature -> _Captured, least recently used first
        self._side = None

    def __call__(self, *args, **kwargs):
        if self.eager_reason is not None:
            return self.fn(*args, **kwargs)
        key = _signature(args, kwargs, "graphed_step")
        entry = self._graphs.pop(key, None)
        if entry is None:
            entry = _Captured(self.warmup)
            while len(self._graphs) >= self.max_graphs:
                self._graphs.pop(next(iter(self._graphs)))
        self._graphs[key] = entry           # most recently used last
        if entry.graph is not None:
            for static, a in zip(entry.args, args):
                if isinstance(a, Tensor) and a is not static:
                    static.copy_(a)
            for k, a in kwargs.items():
                if isinstance(a, Tensor) and a is not entry.kwargs[k]:
                    entry.kwargs[k].copy_(a)
            entry.graph.replay()
            return entry.out
        if self._side is None:
            self._side = Stream()
        self._side.wait_stream(current_stream())
        if entry.warmup > 0:
            entry.warmup -= 1
            with stream(self._side):
                out = self.fn(*args, **kwargs)
            current_stream().wait_stream(self._side)
            return out
        s_args = tuple(a.clone() if isinstance(a, Tensor) else a for a in args)
        s_kwargs = {k: a.clone() if isinstance(a, Tensor) else a for k, a in kwargs.items()}
        g = CUDAGraph()
        try:
            with graph(g, pool=self.pool, stream=self._side):
                out = self.fn(*s_args, **s_kwargs)
        except CaptureError as exc:
            g.reset()
            self._graphs.clear()
            self.eager_reason = str(exc)
            warnings.warn(f"ember.cuda.graphed_step: the step cannot be captured as a CUDA graph ({exc}); it "
                          f"runs eagerly from now on", RuntimeWarning, stacklevel=2)
            return self.fn(*args, **kwargs)
        entry.graph, entry.args, entry.kwargs, entry.out = g, s_args, s_kwargs, out
        g.replay()                           # the capture ran nothing: this is the call's real run
        return out

    def reset(self):
        """Drops every captured graph (the next calls warm up and capture again)."""
        for e in self._graphs.values():
            if e.graph is not None:
                e.graph.reset()
        self._graphs.clear()
        self.eager_reason = None


def _flat_tensors(out, who):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"{who}: the callable's outputs must be tensors (or a tuple of tensors); output {i} is "
                            f"{type(o).__name__}")
    return tuple(outs), isinstance(out, (tuple, list))


def _graph_one(fn, sample_args, params, warmup, pool, allow_unused, who):
    """Captures fn's forward and its backward (autograd.grad of its outputs with respect to the
    differentiable inputs and `params`) into two graphs; returns the autograd-aware replaying callable."""
    inputs = tuple(sample_args) + tuple(params)
    diff = [i for i, t in enumerate(inputs) if t.requires_grad]
    side = Stream()
    side.wait_stream(current_stream())
    with stream(side):
        for _ in range(warmup):
            outs, _ = _flat_tensors(fn(*sample_args), who)
            needs = [o for o in outs if o.requires_grad]
            if needs and diff:
                autograd.grad(needs, [inputs[i] for i in diff], grad_outputs=[o.detach().new_ones(o.shape)
                                                                                 for o in needs],
                              allow_unused=allow_unused)
    current_stream().wait_stream(side)
    fwd, bwd = CUDAGraph(), CUDAGraph()
    with graph(fwd, pool=pool, stream=side):
        out = fn(*sample_args)
    static_outs, as_tuple = _flat_tensors(out, who)
    grad_idx = [i for i, o in enumerate(static_outs) if o.requires_grad]
    static_grad_outs = [static_outs[i].detach().new_zeros(static_outs[i].shape) for i in grad_idx]
    static_grads = [None] * len(inputs)
    if grad_idx and diff:
        with graph(bwd, pool=fwd.pool(), stream=side):
            got = autograd.grad([static_outs[i] for i in grad_idx], [inputs[i] for i in diff],
                                grad_outputs=static_grad_outs, allow_unused=allow_unused)
        for i, gr in zip(diff, got):
            static_grads[i] = gr
    else:
        bwd = None
    n_user = len(sample_args)

    class Graphed(autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            for static, a in zip(sample_args, args[:n_user]):
                if a.data_ptr() != static.data_ptr():
                    static.copy_(a)
            fwd.replay()
            # fresh detached views each call: the Function gives them this call's grad_fn
            return tuple(o.detach() for o in static_outs) if as_tuple else static_outs[0].detach()

        @staticmethod
        @autograd.once_differentiable
        def backward(ctx, *grads):
            if bwd is None:
                return (None,) * len(inputs)
            for static, gr in zip(static_grad_outs, (grads[i] for i in grad_idx)):
                if gr is None:
                    static.zero_()
                elif gr.data_ptr() != static.data_ptr():
                    static.copy_(gr)
            bwd.replay()
            return tuple(g.detach() if g is not None else None for g in static_grads)

    def replay(*args):
        if len(args) != n_user:
            raise TypeError(f"{who}: the graphed callable was captured with {n_user} argument(s), got {len(args)}")
        for i, (a, s) in enumerate(zip(args, sample_args)):
            if not isinstance(a, Tensor) or tuple(a.shape) != tuple(s.shape) or a.dtype != s.dtype \
                    or a.requires_grad != s.requires_grad:
                what = (f"{type(a).__name__}" if not isinstance(a, Tensor) else
                        f"shape {list(a.shape)}, {a.dtype}, requires_grad={a.requires_grad}")
                raise ValueError(f"{who}: argument {i} must match its sample (shape {list(s.shape)}, {s.dtype}, "
                                 f"requires_grad={s.requires_grad}); got {what}")
        return Graphed.apply(*(tuple(args) + tuple(params)))

    replay.graphs = (fwd, bwd)
    replay.static = (sample_args, static_outs, static_grad_outs, static_grads)   # kept alive with the callable
    return replay


def make_graphed_callables(callables, sample_args, num_warmup_iters: int = 3, allow_unused_input: bool = False,
                           pool=None):
    """torch.cuda.make_graphed_callables: each callable (an `nn.Module` or a function) has its forward and
    its backward captured as CUDA graphs, and is returned as a callable that replays them inside an ordinary
    autograd graph (so a loss built on its outputs backpropagates into its inputs and parameters as before).

    `callables` is one callable or a tuple of them; `sample_args` a tuple of CUDA tensors (or a tuple of such
    tuples, one per callable) with the shapes, dtypes and requires_grad of every later call. A module is
    returned with its `forward` replaced: the graphs run while `module.training` is what it was at capture,
    the original forward otherwise. As in torch, the callables run `num_warmup_iters` times on a side stream
    first (gradients computed there are discarded); the graphs share one memory pool, captured in order."""
    from ..nn import Module
    who = "make_graphed_callables"
    single = not isinstance(callables, tuple)
    fns = (callables,) if single else callables
    samples = (sample_args,) if single else sample_args
    if not isinstance(samples, tuple) or len(samples) != len(fns):
        raise ValueError(f"{who}: expected one tuple of sample arguments per callable ({len(fns)}), got "
                         f"{sample_args!r:.120}")
    if isinstance(num_warmup_iters, bool) or not isinstance(num_warmup_iters, int) or num_warmup_iters < 0:
        raise ValueError(f"{who}: num_warmup_iters must be an int >= 0, got {num_warmup_iters!r}")
    pool = pool if pool is not None else graph_pool_handle()
    out = []
    for n, (fn, args) in enumerate(zip(fns, samples)):
        if not callable(fn):
            raise TypeError(f"{who}: callable {n} is a {type(fn).__name__}")
        if not isinstance(args, tuple):
            raise TypeError(f"{who}: the sample arguments of callable {n} must be a tuple of tensors, got "
                            f"{type(args).__name__}")
        for i, a in enumerate(args):
            if not isinstance(a, Tensor) or a.device.type != "cuda":
                got = type(a).__name__ if not isinstance(a, Tensor) else f"a tensor on {a.device}"
                raise TypeError(f"{who}: sample argument {i} of callable {n} must be a CUDA tensor, got {got}")
        params = tuple(p for p in fn.parameters() if p.requires_grad) if isinstance(fn, Module) else ()
        if isinstance(fn, Module):
            if fn._forward_hooks or fn._forward_pre_hooks:
                raise RuntimeError(f"{who}: module {n} ({type(fn).__name__}) has forward hooks; a graph would "
                                   f"replay without them (remove them first, as torch requires)")
            replay = _graph_one(fn.forward, args, params, num_warmup_iters, pool, allow_unused_input, who)
            original, training = fn.forward, fn.training

            def forward(*a, _replay=replay, _orig=original, _mod=fn, _training=training):
                return _replay(*a) if _mod.training == _training else _orig(*a)
            forward.graphs = replay.graphs
            fn.forward = forward
            out.append(fn)
        else:
            out.append(_graph_one(fn, args, (), num_warmup_iters, pool, allow_unused_input, who))
    return out[0] if single else tuple(out)

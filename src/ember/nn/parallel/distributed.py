"""DistributedDataParallel: torch's data parallelism over an ember.distributed process group.

At construction the module's parameters and buffers are broadcast from rank 0, so every replica starts equal.
The parameters that need grads are grouped into buckets of about `bucket_cap_mb`, in reverse registration
order (the order the backward usually produces their grads). A post-accumulate-grad hook on each parameter
counts its bucket down; when a bucket's last grad has arrived, its grads are copied into the bucket's flat
buffer and an asynchronous all_reduce starts, so communication overlaps the rest of the backward. When the
last bucket has started, the hook waits for all of them and writes the averaged grads back (with
`gradient_as_bucket_view`, the grads are views of the bucket buffers and nothing is copied back).

`no_sync()` skips the reductions (gradient accumulation: the grads reduced at the first backward outside it
include the ones accumulated inside). `find_unused_parameters=True` lets a forward leave some parameters out:
after each forward the autograd graph is searched from the outputs, and the parameters it does not reach count
as ready at once, contributing zeros, so every bucket is reduced during the backward; their grad is the
average of the other ranks' (zeros where no rank used them). Without it, a backward that leaves a bucket
incomplete raises at the next forward, naming the parameters that got no grad.

On the "mpi" backend (CPU tensors) each bucket's all_reduce runs asynchronously and the last hook waits for all
of them. On the "nccl" backend (CUDA tensors, each rank's module on its rank's device) each bucket's all_reduce
runs on a communication stream of DDP's own, after an event wait for the copies of its grads on the current
stream, so the GPU reduces a bucket beside the rest of the backward's kernels. The last hook makes the current
stream wait for the communication stream before it writes the grads back: whatever follows there (the
optimizer step) sees the averaged grads. The host never waits, and the fork and join are stream waits on
events, so a training step with DDP can be captured in a CUDA graph (`ember.cuda.graphed_step`). The bucket
buffers live as long as the module, so no memory crosses streams that the allocator could hand out early.
"""
from __future__ import annotations

import contextlib

from ... import distributed as dist
from ...autograd.grad_mode import no_grad
from ...core.device import canonical
from ...ops.creation import zeros
from ..modules.module import Module


class _Bucket:
    __slots__ = ("params", "numels", "buffer", "pending", "work", "started")

    def __init__(self, params):
        self.params = params
        self.numels = [p.numel() for p in params]
        p0 = params[0]
        self.buffer = zeros(sum(self.numels), dtype=p0.dtype, device=p0.device)
        self.pending = len(params)
        self.work = None
        self.started = False

    def reset(self):
        self.pending = len(self.params)
        self.work = None
        self.started = False

    def views(self):
        out, off = [], 0
        for p, n in zip(self.params, self.numels):
            out.append(self.buffer[off:off + n].view(p.shape))
            off += n
        return out


def _broadcast(t, src, group) -> None:
    """Rank src's values of parameter or buffer t on every rank; a strided one (a parameter made by an op on a
    transposed tensor) goes through a contiguous copy, as torch's DDP flattens its tensors (the collectives
    themselves take contiguous tensors only)."""
    if t.is_contiguous():
        dist.broadcast(t, src=src, group=group)
        return
    c = t.contiguous()
    dist.broadcast(c, src=src, group=group)
    t.copy_(c)


def _check_device_ids(module, device_ids) -> None:
    """torch's rules for device_ids: None or one device, none for a CPU module; and (ember's check, where torch would
    fail later or not at all) that one device is the module's."""
    if device_ids is None or len(device_ids) == 0:
        return
    if len(device_ids) > 1:
        raise ValueError(f"DistributedDataParallel: device_ids can only be None or contain a single element, got "
                         f"{list(device_ids)}")
    devices = {t.device for t in list(module.parameters()) + list(module.buffers())}
    if all(d.type == "cpu" for d in devices):
        raise ValueError(f"DistributedDataParallel: device_ids {list(device_ids)} is for a module on one GPU; this "
                         f"module's parameters are on the CPU: pass device_ids=None")
    d = device_ids[0]
    index = d if isinstance(d, int) else (canonical(d).index or 0)
    (on,) = devices if len(devices) == 1 else (None,)
    if on is not None and on.type == "cuda" and (on.index or 0) != index:
        raise ValueError(f"DistributedDataParallel: device_ids {list(device_ids)}, but the module's parameters are "
                         f"on {on}: move the module there with .to() or pass its device")


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim: int = 0, broadcast_buffers: bool = True,
                 process_group=None, bucket_cap_mb: float = 25.0, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False, static_graph: bool = False):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the default process group has not been initialized: call "
                               "ember.distributed.init_process_group first")
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an nn.Module, got {type(module).__name__}")
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        _check_device_ids(module, device_ids)
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.require_backward_grad_sync = True
        self._world = dist.get_world_size(process_group)
        self._src = 0 if process_group is None else process_group._ranks[0]
        with no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                _broadcast(t.detach(), self._src, process_group)
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = self._make_buckets(params[::-1], bucket_cap_mb * (1 << 20))
        self._bucket_of = {}
        for b in self._buckets:
            for p in b.params:
                self._bucket_of[id(p)] = b
        self._started = 0
        self._seen = set()
        self._comm = None           # CUDA: the communication stream, and whether this backward used it
        self._comm_used = False
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]

    @staticmethod
    def _make_buckets(params, cap_bytes):
        buckets, cur, size = [], [], 0
        for p in params:
            key = (p.dtype, p.device)
            if cur and (size + p.numel() * p.element_size() > cap_bytes or (cur[0].dtype, cur[0].device) != key):
                buckets.append(_Bucket(cur))
                cur, size = [], 0
            cur.append(p)
            size += p.numel() * p.element_size()
        if cur:
            buckets.append(_Bucket(cur))
        return buckets

    # ---- the reduction, driven by the grads' arrival ----------------------------------------------------------

    def _grad_ready(self, p):
        if not self.require_backward_grad_sync:
            return
        self._seen.add(id(p))
        b = self._bucket_of[id(p)]
        b.pending -= 1
        if b.pending == 0:
            self._launch(b)
        if self._started == len(self._buckets):
            self._finish()

    def _launch(self, b):
        with no_grad():
            for v, q in zip(b.views(), b.params):
                if q.grad is None:          # unused here (find_unused_parameters): contributes zeros
                    v.zero_()
                else:
                    v.copy_(q.grad)
            b.buffer.div_(self._world)
            if b.buffer.is_cuda:    # on the communication stream, after the copies above; _finish joins it
                from ...backends.cuda.stream import Stream, current_stream, stream
                main = current_stream(b.buffer.device)
                if self._comm is None:
                    self._comm = Stream(b.buffer.device)
                self._comm.wait_stream(main)
                with stream(self._comm):
                    dist.all_reduce(b.buffer, group=self.process_group)
                self._comm_used = True
            else:
                b.work = dist.all_reduce(b.buffer, group=self.process_group, async_op=True)
        b.started = True
        self._started += 1

    def _finish(self):
        if self._comm_used:
            from ...backends.cuda.stream import current_stream
            current_stream(self._comm.device).wait_stream(self._comm)
            self._comm_used = False
        with no_grad():
            for b in self._buckets:
                if b.work is not None:
                    b.work.wait()
                for v, q in zip(b.views(), b.params):
                    if q.grad is None and id(q) not in self._seen and not self.find_unused_parameters:
                        continue
                    if self.gradient_as_bucket_view:
                        q.grad = v
                    elif q.grad is None:
                        q.grad = v.clone()
                    else:
                        q.grad.copy_(v)
                b.reset()
        self._started = 0
        self._seen = set()

    def _flush_unused(self):  # a backward that stopped short of the graph the forward built
        """find_unused_parameters: start the buckets the backward left incomplete, then finish."""
        for b in self._buckets:
            if not b.started:
                self._launch(b)
        self._finish()

    # ---- module interface ---------------------------------------------------------------------------------------

    def forward(self, *inputs, **kwargs):
        if self._started or any(b.pending != len(b.params) for b in self._buckets):
            if self.find_unused_parameters:
                self._flush_unused()
            else:
                missing = [n for n, p in self.module.named_parameters()
                           if p.requires_grad and id(p) not in self._seen]
                for b in self._buckets:
                    b.reset()
                self._started, self._seen = 0, set()
                raise RuntimeError(f"DistributedDataParallel: the previous backward did not produce grads for "
                                   f"{len(missing)} parameter(s), so their buckets were never reduced: "
                                   f"{missing[:8]}{' ...' if len(missing) > 8 else ''}. Pass "
                                   f"find_unused_parameters=True when the forward leaves parameters out")
        if self.broadcast_buffers and self._world > 1:
            with no_grad():
                for buf in self.module.buffers():
                    _broadcast(buf, self._src, self.process_group)
        out = self.module(*inputs, **kwargs)
        if self.find_unused_parameters and self.require_backward_grad_sync:
            self._mark_unused(out)
        return out

    def _mark_unused(self, out):
        """Counts the parameters the output's graph does not reach as ready now (they contribute zeros), so that
        every bucket completes during the backward, as torch's reducer does after its graph search."""
        from ..._tensor import Tensor
        from ...autograd.graph import AccumulateGrad
        stack = [t.grad_fn for t in _tensors(out) if isinstance(t, Tensor) and t.grad_fn is not None]
        reached, seen = set(), set()
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, AccumulateGrad):
                reached.add(id(node.variable))
            stack.extend(edge[0] for edge in node.next_functions if edge is not None)
        for b in self._buckets:
            for p in b.params:
                if id(p) not in reached:
                    b.pending -= 1
            if b.pending == 0 and not b.started:
                self._launch(b)

    @contextlib.contextmanager
    def no_sync(self):
        """Backwards inside accumulate grads locally; the first backward after it reduces them all."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old


def _tensors(out):
    """The tensors in a forward's output (a tensor, or lists, tuples and dicts of them)."""
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return [out]

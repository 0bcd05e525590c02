"""Autocast: inside `with ember.autocast("cuda", dtype=ember.bfloat16):`, each op runs in the dtype its
policy gives, as torch.autocast does.

The policy is a property of the op (`POLICY`, by device type, with torch's lists as the reference):
- "lower": the op runs in the autocast dtype (matmul, mm, bmm, linear, addmm, baddbmm, attention, ...);
  its float32 (and low-precision) tensor arguments are cast to it; float64 ones are left alone;
- "fp32": the op runs in float32 (losses, exp and log on CUDA, softmax and sum on CUDA, ...);
- "promote": mixed float arguments are cast to the widest of them (cat, stack, addcmul, index_put, ...).
Ops not listed run as they are.

How it runs: while any thread is inside an enabled region, the dispatcher's op hook (`push_op_hook`) hands
each op call to `_call` here, which applies the policy for the calling thread's state; outside every region
no hook is pushed and an op call costs nothing extra. The casts are ordinary ops (`to`), so autograd takes
gradients back through them to each tensor's own dtype. Within one region, a float32 leaf that requires grad
(a Parameter) is cast once per target dtype and reused (the cast cache); the cache empties when the outermost
region exits, as in torch.
"""
from __future__ import annotations

import functools
import threading

from .._tensor import Tensor
from ..core import dtype as D
from ..dispatch import OPS, pop_op_hook, push_op_hook

__all__ = ["autocast", "is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled", "set_autocast_dtype",
           "custom_fwd", "custom_bwd", "POLICY"]

# ---- the policy, by device type (torch 2.x's autocast op lists as the reference) ---------------------

_LOWER_BOTH = {"matmul", "mm", "bmm", "linear", "addmm", "baddbmm", "addbmm", "_fused_attention",
               "_fused_attention_dropout", "_packed_self_attention"}
_PROMOTE_BOTH = {"cat", "stack", "index_copy", "addcdiv", "addcmul", "atan2", "index_put", "scatter_add",
                 "tensordot", "dot", "vdot"}
_RNN_CELLS = {"_thnn_fused_lstm_cell", "_thnn_fused_gru_cell"}
POLICY = {
    # torch's CPU autocast has no fused cells (its CPU LSTM is one oneDNN op): ember's take mixed gates and
    # states by promotion, as the composite cell they replace did
    "cpu": {**{n: "lower" for n in _LOWER_BOTH},
            **{n: "fp32" for n in ("prod", "nll_loss_forward", "nll_loss_backward")},
            **{n: "promote" for n in _PROMOTE_BOTH | _RNN_CELLS}},
    # rms_norm is not on torch's CUDA float32 list (torch 2.11 on the H100: F.rms_norm of a float16 input under
    # autocast returns float16): it runs in the input's dtype, and ember's kernel keeps its statistics in float32
    "cuda": {**{n: "lower" for n in _LOWER_BOTH | _RNN_CELLS | {"mv", "addmv", "outer", "ger"}},
             **{n: "fp32" for n in ("exp", "expm1", "log", "log10", "log1p", "log2", "acos", "asin", "cosh",
                                    "sinh", "tan", "reciprocal", "rsqrt", "pow", "softplus", "native_layer_norm",
                                    "norm", "nll_loss_forward", "nll_loss_backward", "logsumexp")},
             **{n: "fp32_dtype" for n in ("softmax", "log_softmax", "cumsum", "cumprod", "sum", "prod")},
             **{n: "promote" for n in _PROMOTE_BOTH}},
}
_CPU_POLICY, _CUDA_POLICY = POLICY["cpu"], POLICY["cuda"]    # (the dicts themselves: edits to them count)
_DEFAULT_DTYPE = {"cpu": D.bfloat16, "cuda": D.float16}
_LOW = (D.float16, D.bfloat16)

# ---- state: per thread, per device type -------------------------------------------------------------

_tls = threading.local()
_lock = threading.Lock()
_regions = [0]          # enabled regions open in every thread (the hook is pushed while > 0)


def _state() -> dict:
    st = getattr(_tls, "state", None)
    if st is None:
        st = _tls.state = {"cpu": [False, D.bfloat16], "cuda": [False, D.float16], "depth": 0, "cache": {},
                           "cache_enabled": True}
    return st


def _device_type(device_type) -> str:
    if not isinstance(device_type, str) or device_type not in ("cpu", "cuda"):
        raise ValueError(f"autocast: device_type must be 'cpu' or 'cuda', got {device_type!r}")
    return device_type


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether autocast is on for `device_type` (default "cuda", as torch) in this thread."""
    return _state()[_device_type(device_type or "cuda")][0]


def get_autocast_dtype(device_type: str) -> D.dtype:
    return _state()[_device_type(device_type)][1]


def set_autocast_enabled(device_type: str, enabled: bool) -> None:
    _state()[_device_type(device_type)][0] = bool(enabled)


def set_autocast_dtype(device_type: str, dtype) -> None:
    _check_dtype(device_type, dtype)
    _state()[_device_type(device_type)][1] = dtype


def _check_dtype(device_type, dtype):
    if dtype not in _LOW:
        raise ValueError(f"autocast({device_type!r}): dtype must be ember.float16 or ember.bfloat16, got {dtype!r}")


class autocast:
    """torch.autocast: `with ember.autocast("cuda"):` or `@ember.autocast("cpu", dtype=ember.bfloat16)`.
    Defaults: float16 on CUDA, bfloat16 on the CPU. Thread-local and nestable; `enabled=False` inside turns
    it off for that device type."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True, cache_enabled: bool | None = None):
        self.device_type = _device_type(device_type)
        self.fast_dtype = _DEFAULT_DTYPE[self.device_type] if dtype is None else dtype
        if enabled:
            _check_dtype(self.device_type, self.fast_dtype)
        self._enabled = bool(enabled)
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        self._prev = None

    def __enter__(self):
        st = _state()
        slot = st[self.device_type]
        self._prev = (slot[0], slot[1], st["cache_enabled"])
        slot[0], slot[1] = self._enabled, self.fast_dtype if self._enabled else slot[1]
        st["cache_enabled"] = self._cache_enabled
        st["depth"] += 1
        if self._enabled:
            with _lock:
                _regions[0] += 1
                if _regions[0] == 1:
                    push_op_hook(_call)
        return self

    def __exit__(self, *exc):
        st = _state()
        slot = st[self.device_type]
        slot[0], slot[1], st["cache_enabled"] = self._prev
        st["depth"] -= 1
        if st["depth"] == 0:
            st["cache"].clear()          # the cast cache lives as long as the outermost region
        if self._enabled:
            with _lock:
                _regions[0] -= 1
                if _regions[0] == 0:
                    pop_op_hook(_call)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*a, **k):
            with autocast(self.device_type, self.fast_dtype, self._enabled, self._cache_enabled):
                return fn(*a, **k)
        return wrapped


# ---- applying the policy ------------------------------------------------------------------------

def _eligible(v, dev_type) -> bool:
    return (isinstance(v, Tensor) and v._dtype.is_floating_point and v._dtype is not D.float64
            and v._storage.device.type == dev_type)


def _cast(v, dtype, st):
    """v cast to dtype; a float32 leaf that requires grad is cast once per region (the cast cache)."""
    if v._dtype is dtype:
        return v
    cache = st["cache"] if st["cache_enabled"] and v.requires_grad and v._grad_fn is None and \
        v._dtype is D.float32 and dtype in _LOW else None
    if cache is not None:
        hit = cache.get((id(v), dtype))
        if hit is not None and hit[0] is v and hit[1] == v._storage.version:
            return hit[2]
    r = OPS["to_dtype"].fn(v, dtype, False)     # the op itself: Tensor.to's argument parsing is not needed
    if cache is not None:
        cache[(id(v), dtype)] = (v, v._storage.version, r)
    return r


def _map(v, fn):
    if isinstance(v, Tensor):
        return fn(v)
    if isinstance(v, (list, tuple)) and v and any(isinstance(t, Tensor) for t in v):
        return type(v)(fn(t) if isinstance(t, Tensor) else t for t in v)
    return v


def _first_device_type(pos, kw):
    for v in (*pos, *kw.values()):
        if isinstance(v, Tensor):
            return v._storage.device.type
        if isinstance(v, (list, tuple)):
            for t in v:
                if isinstance(t, Tensor):
                    return t._storage.device.type
    return None


def _call(op, plain, pos, kw):
    """The op hook: the calling thread's autocast state applied to one op call."""
    st = getattr(_tls, "state", None)
    name = op.name
    if st is None or st["depth"] == 0 or (name not in _CUDA_POLICY and name not in _CPU_POLICY):
        return plain(*pos, **kw)        # most ops: no policy on either device
    dev = _first_device_type(pos, kw)
    if dev is None or dev not in ("cpu", "cuda"):
        return plain(*pos, **kw)
    enabled, low = st[dev]
    policy = POLICY[dev].get(op.name) if enabled else None
    if policy is None:
        return plain(*pos, **kw)
    if policy == "lower":
        target = low
    elif policy == "fp32":
        target = D.float32
    elif policy == "fp32_dtype":
        if kw.get("dtype") is not None:
            return plain(*pos, **kw)
        target = D.float32
    else:   # promote: the widest float dtype among the eligible arguments
        dts = [t._dtype for v in (*pos, *kw.values()) for t in (v if isinstance(v, (list, tuple)) else (v,))
               if _eligible(t, dev)]
        if len(set(dts)) < 2:
            return plain(*pos, **kw)
        target = dts[0]
        for d in dts[1:]:
            target = D.promote_types(target, d)
    cast = lambda t: _cast(t, target, st) if _eligible(t, dev) else t  # noqa: E731
    pos = tuple(_map(v, cast) for v in pos)
    kw = {k: _map(v, cast) for k, v in kw.items()}
    return plain(*pos, **kw)


# ---- custom autograd Functions --------------------------------------------------------------------

def custom_fwd(fwd=None, *, device_type: str = "cuda", cast_inputs=None):
    """For `Function.forward`: with `cast_inputs` (a float dtype), inside an enabled autocast region the
    floating tensor arguments are cast to it and forward runs with autocast off; without it, forward runs
    under the caller's autocast state. Either way `custom_bwd` runs backward under that same state."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    dev = _device_type(device_type)

    @functools.wraps(fwd)
    def wrapped(*args, **kwargs):
        ctx = args[0]
        ctx._fwd_autocast = (is_autocast_enabled(dev), get_autocast_dtype(dev), dev)
        if cast_inputs is None or not is_autocast_enabled(dev):
            return fwd(*args, **kwargs)
        ctx._fwd_autocast = (False, get_autocast_dtype(dev), dev)
        cast = lambda v: v.to(cast_inputs) if _eligible(v, dev) else v  # noqa: E731
        args = (ctx,) + tuple(_map(a, cast) for a in args[1:])
        kwargs = {k: _map(v, cast) for k, v in kwargs.items()}
        with autocast(dev, enabled=False):
            return fwd(*args, **kwargs)
    return wrapped


def custom_bwd(bwd=None, *, device_type: str = "cuda"):
    """For `Function.backward`: runs it under the autocast state its forward ran under."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def wrapped(ctx, *grads):
        enabled, dtype, dev = getattr(ctx, "_fwd_autocast", (False, None, _device_type(device_type)))
        with autocast(dev, dtype=dtype, enabled=enabled):
            return bwd(ctx, *grads)
    return wrapped

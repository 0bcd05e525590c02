"""Kernel launch plumbing: load a cubin once per device, look functions up, and launch through a
`Plan`, ember's one launch mechanism: an argument array built once per compiled kernel, into which
a launch writes only the new pointers and scalars. It takes kernels already compiled (compiler.py,
above it, compiles them and asks here for their plans); it never compiles.

A Triton 3.6 kernel takes, after its own parameters, two more pointers (global and profile
scratch); a plan appends them as NULL, and refuses a kernel whose metadata asks for that memory.
"""
from __future__ import annotations

import ctypes
import threading

from .driver import check, driver, ensure_context
from .stream import _tls as _stream_tls, current_stream

__all__ = ["Module", "load_module", "Function", "Plan", "plan_for", "launch_triton"]

_cache = {}
_lock = threading.Lock()


class Module:
    __slots__ = ("handle", "device_index", "_functions")

    def __init__(self, handle, device_index):
        self.handle = handle
        self.device_index = device_index
        self._functions = {}

    def function(self, name: str) -> "Function":
        f = self._functions.get(name)
        if f is None:
            h = check(driver().cuModuleGetFunction(self.handle, name.encode()), f"cuModuleGetFunction({name!r})")
            f = self._functions[name] = Function(h, name, self)
        return f


def load_module(image: bytes, device_index: int = 0, key=None) -> Module:
    """Loads a cubin (cached per device by `key`, default the image bytes' hash)."""
    k = (device_index, key if key is not None else hash(image))
    m = _cache.get(k)
    if m is None:
        with _lock:
            m = _cache.get(k)
            if m is None:
                ensure_context(device_index)
                h = check(driver().cuModuleLoadData(image), "cuModuleLoadData")
                m = _cache[k] = Module(h, device_index)
    return m


class Function:
    __slots__ = ("handle", "name", "module", "shared_configured")

    def __init__(self, handle, name, module):
        self.handle = handle
        self.name = name
        self.module = module
        self.shared_configured = 0

    def set_max_dynamic_shared(self, nbytes: int) -> None:
        if nbytes > 48 * 1024 and nbytes > self.shared_configured:
            d = driver()
            attr = d.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            check(d.cuFuncSetAttribute(self.handle, attr, nbytes), "cuFuncSetAttribute")
            self.shared_configured = nbytes


# ---- launch plans: the per-launch hot path ------------------------------------------------------

_CTYPES = {"i32": ctypes.c_int32, "i64": ctypes.c_int64, "fp32": ctypes.c_float, "fp64": ctypes.c_double,
           "i1": ctypes.c_int32}


class Plan:
    """One compiled kernel variant with its argument buffers, built once: a launch writes the new
    argument values into `vals` (ctypes objects, in the kernel's parameter order) and calls
    `plan(gx, gy, gz)`, which goes straight to cuLaunchKernel on the device's current stream.
    The buffers are shared: launches of one plan from several threads at once would race (ember's
    ops, like the rest of its dispatcher, assume one thread issues them)."""

    __slots__ = ("handle", "name", "index", "vals", "arr", "addr", "threads", "shared", "_launch")

    def __call__(self, gx: int, gy: int = 1, gz: int = 1) -> None:
        s = _stream_tls.streams.get(self.index) or current_stream(self.index)
        err, = self._launch(self.handle, gx, gy, gz, self.threads, 1, 1, self.shared, s.handle, self.addr, 0)
        if err:
            check((err,), f"cuLaunchKernel({self.name})")

    def on(self, stream, gx: int, gy: int = 1, gz: int = 1) -> None:
        """Launches on `stream` rather than the current one."""
        err, = self._launch(self.handle, gx, gy, gz, self.threads, 1, 1, self.shared, stream.handle, self.addr, 0)
        if err:
            check((err,), f"cuLaunchKernel({self.name})")


def plan_for(c, types, index: int) -> Plan:
    """The launch plan of `c`, a kernel compiled by `triton.compile`, on device `index`.
    types: its parameters' Triton types in order ('*fp32' pointers get c_void_p)."""
    md = c.metadata
    if getattr(md, "global_scratch_size", 0) or getattr(md, "profile_scratch_size", 0):
        raise NotImplementedError(f"kernel {md.name} needs scratch memory; ember's launcher does not provide it yet")
    f = load_module(c.asm["cubin"], index, key=id(c)).function(md.name)
    f.set_max_dynamic_shared(md.shared)
    p = Plan()
    p.handle, p.name, p.index = f.handle, md.name, index
    vals = [ctypes.c_void_p() if ty[0] == "*" else _CTYPES[ty]() for ty in types]
    vals += [ctypes.c_void_p(), ctypes.c_void_p()]  # Triton 3.6's global and profile scratch (unused: NULL)
    p.vals = vals
    p.arr = (ctypes.c_void_p * len(vals))(*[ctypes.addressof(v) for v in vals])
    p.addr = ctypes.addressof(p.arr)
    p.threads = 32 * md.num_warps
    p.shared = md.shared
    p._launch = driver().cuLaunchKernel
    return p


_triton_plans = {}


def launch_triton(compiled, grid, args, stream=None, device_index: int = 0) -> None:
    """Launches a kernel compiled by `triton.compile` through its cached plan, on `stream` (default:
    the current stream of `device_index`). args: the kernel's non-constexpr arguments in order, as
    Python numbers (device pointers as ints, e.g. `t.data_ptr()`) or ctypes values."""
    key = (compiled.hash, device_index)
    plan = _triton_plans.get(key)
    if plan is None:
        types = [ty for ty in compiled.src.signature.values() if ty != "constexpr"]
        plan = _triton_plans[key] = plan_for(compiled, types, device_index)
    if len(args) != len(plan.vals) - 2:
        raise TypeError(f"launch_triton: kernel {plan.name} takes {len(plan.vals) - 2} arguments, got {len(args)}")
    for slot, v in zip(plan.vals, args):
        slot.value = v.value if isinstance(v, ctypes._SimpleCData) else v
    g = tuple(grid) + (1, 1)
    if stream is None:
        plan(g[0], g[1], g[2])
    else:
        plan.on(stream, g[0], g[1], g[2])

"""The CUDA driver API through NVIDIA's `cuda-bindings`, imported lazily.

Every call goes through `check`, which turns a failing CUresult into `CudaError` carrying the
CUDA error name and the call that failed. Contexts are the devices' primary contexts, made
current per thread on first use.
"""
from __future__ import annotations

import threading

__all__ = ["CudaError", "CudaUnavailable", "driver", "check", "is_available", "device_count", "ensure_context",
           "device_attribute", "device_name", "total_memory", "capability"]


class CudaError(RuntimeError):
    """A CUDA driver call failed: `.name` is the CUDA error name, `.call` the driver function."""

    def __init__(self, name: str, call: str, code: int, detail: str = ""):
        self.name, self.call, self.code = name, call, code
        super().__init__(f"CUDA error {name} ({code}) in {call}" + (f": {detail}" if detail else ""))


class CudaUnavailable(RuntimeError):
    pass


_drv = None
_init_error = None
_lock = threading.Lock()


def driver():
    """The `cuda.bindings.driver` module, initialised (raises CudaUnavailable with the reason)."""
    global _drv, _init_error
    if _drv is not None:
        return _drv
    with _lock:
        if _drv is not None:
            return _drv
        if _init_error is not None:
            raise CudaUnavailable(_init_error)
        try:
            from cuda.bindings import driver as d
        except ImportError as e:
            _init_error = (f"ember's CUDA backend needs NVIDIA's cuda-bindings (pip install 'ember[cuda]'): {e}")
            raise CudaUnavailable(_init_error) from None
        try:
            err, = d.cuInit(0)
        except Exception as e:  # noqa: BLE001 - no driver library on this machine
            _init_error = f"the NVIDIA driver could not be loaded: {e}"
            raise CudaUnavailable(_init_error) from None
        if err != d.CUresult.CUDA_SUCCESS:
            _init_error = f"cuInit failed with {_err_name(d, err)}"
            raise CudaUnavailable(_init_error)
        _drv = d
        return d


def _err_name(d, err) -> str:
    try:
        e, name = d.cuGetErrorName(err)
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001
        return str(err)


def check(res, call: str):
    """Unpacks a cuda-bindings result tuple `(CUresult, *values)`; raises CudaError on failure."""
    err = res[0]
    if err != _SUCCESS:
        raise CudaError(_err_name(_drv, err), call, int(err))
    n = len(res)
    return None if n == 1 else (res[1] if n == 2 else res[1:])


_SUCCESS = 0


def is_available() -> bool:
    try:
        d = driver()
    except CudaUnavailable:
        return False
    err, n = d.cuDeviceGetCount()
    return err == d.CUresult.CUDA_SUCCESS and n > 0


def device_count() -> int:
    try:
        d = driver()
    except CudaUnavailable:
        return 0
    return check(d.cuDeviceGetCount(), "cuDeviceGetCount")


_devices = {}
_contexts = {}
_tls = threading.local()


def cu_device(index: int):
    dev = _devices.get(index)
    if dev is None:
        n = device_count()
        if not 0 <= index < n:
            raise RuntimeError(f"CUDA device {index} does not exist: this machine has {n} CUDA device(s)")
        dev = _devices[index] = check(driver().cuDeviceGet(index), "cuDeviceGet")
    return dev


def ensure_context(index: int) -> None:
    """Makes device `index`'s primary context current on this thread (cheap when it already is)."""
    if getattr(_tls, "ctx_index", None) == index:
        return
    d = driver()
    ctx = _contexts.get(index)
    if ctx is None:
        with _lock:
            ctx = _contexts.get(index)
            if ctx is None:
                ctx = _contexts[index] = check(d.cuDevicePrimaryCtxRetain(cu_device(index)),
                                               "cuDevicePrimaryCtxRetain")
    check(d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    _tls.ctx_index = index


def device_attribute(index: int, attr_name: str) -> int:
    d = driver()
    attr = getattr(d.CUdevice_attribute, attr_name)
    return check(d.cuDeviceGetAttribute(attr, cu_device(index)), "cuDeviceGetAttribute")


def device_name(index: int) -> str:
    name = check(driver().cuDeviceGetName(256, cu_device(index)), "cuDeviceGetName")
    return name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)


def total_memory(index: int) -> int:
    return check(driver().cuDeviceTotalMem(cu_device(index)), "cuDeviceTotalMem")


def capability(index: int) -> tuple:
    return (device_attribute(index, "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR"),
            device_attribute(index, "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR"))

"""Samples of the factory ops (src/ember/ops/creation.py): empty, zeros, ones, full, empty_strided,
arange, linspace, eye, scalar_tensor, and _to_device.

Factories take no tensor: each samples dtype=None (the default dtype, or the one torch infers from
the values) beside explicit dtypes, and one sample passes `device`. empty and empty_strided return
uninitialised memory: shape and dtype only.
"""
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register

NO_GRAD = "a factory: no tensor input"
CUDA_ALLOC = "allocates through the CUDA caching allocator (backends/cuda/tensor.py), which needs a GPU"
NEG = (RuntimeError, r"negative dimension")


def size_samples():
    return [
        Sample((2, 3), desc="sizes as arguments, default dtype"),
        Sample(((2, 3),), {"dtype": ember.float64}, desc="a tuple, float64"),
        Sample(([4],), {"dtype": ember.int64, "device": "cpu"}, desc="a list, int64, device"),
        Sample((3, 1), {"dtype": ember.int8}, desc="int8"),
        Sample((2, 2), {"dtype": ember.bool}, desc="bool"),
        Sample((5,), {"dtype": ember.float16}, desc="float16"),
        Sample((2, 3), {"dtype": ember.bfloat16}, desc="bfloat16"),
        Sample(((),), desc="0-d"),
        Sample((0, 3), {"dtype": ember.uint8}, desc="empty, uint8"),
    ]


def size_errors():
    return [ErrorSample((2, -1), {}, *NEG, desc="a size of -1"),
            ErrorSample((2,), {"dtype": "float32"}, TypeError, r"dtype", desc="a dtype given as a string")]


def full_samples():
    return [
        Sample(((2, 3), 1.5), desc="a float fill: the default dtype"),
        Sample(((2,), 7), desc="an int fill: int64"),
        Sample(((2, 2), True), desc="a bool fill: bool"),
        Sample(((3,), 2), {"dtype": ember.float64, "device": "cpu"}, desc="float64, device"),
        Sample(((2, 2), -3), {"dtype": ember.int32}, desc="int32"),
        Sample(((2,), 0.1), {"dtype": ember.float16}, desc="float16"),
        Sample(((1, 2), 2.5), {"dtype": ember.bfloat16}, desc="bfloat16"),
        Sample(((), 3.0), desc="0-d"),
        Sample(((0, 2), 1), {"dtype": ember.bool}, desc="empty"),
    ]


def empty_strided_samples():
    return [
        Sample(((2, 3), (1, 2)), desc="column-major"),
        Sample(((2, 3), (3, 1)), {"dtype": ember.int64}, desc="row-major int64"),
        Sample(((3,), (0,)), {"dtype": ember.float16}, desc="a zero stride, float16"),
        Sample(((2, 2), (4, 2)), {"dtype": ember.bool}, desc="gaps, bool"),
        Sample(((), ()), {"dtype": ember.bfloat16}, desc="0-d bfloat16"),
        Sample(((0, 3), (3, 1)), desc="empty"),
    ]


def empty_strided_errors():
    return [ErrorSample(((2, 3), (1,)), {}, RuntimeError, r"dimensionality of sizes \(2\) must match",
                        desc="two sizes, one stride"),
            ErrorSample(((2,), (-1,)), {}, RuntimeError, r"overflowed", desc="a negative stride"),
            ErrorSample(((-2,), (1,)), {}, *NEG, desc="a negative size")]


for _name in ("empty", "zeros", "ones"):
    register(OpInfo(_name, size_samples, size_errors, ref=getattr(torch, _name), values=_name != "empty",
                    grad=NO_GRAD, interp=CUDA_ALLOC if _name != "ones" else True))
register(OpInfo("full", full_samples, lambda: [ErrorSample(((-1,), 0), {}, *NEG, desc="a size of -1")],
                ref=torch.full, grad=NO_GRAD))
register(OpInfo("empty_strided", empty_strided_samples, empty_strided_errors, ref=torch.empty_strided, values=False,
                grad=NO_GRAD, interp=CUDA_ALLOC))


# ---- arange, linspace, eye, scalar_tensor ---------------------------------------------------------

def arange_samples():
    return [
        Sample((5,), desc="end only: int64"),
        Sample((1, 4, 0.5), desc="a float step: the default dtype"),
        Sample((10, -3, -2), desc="a negative step"),
        Sample((0, 1, 0.1), {"dtype": ember.float64}, desc="float64"),
        Sample((0, 3), {"dtype": ember.float16, "device": "cpu"}, desc="float16, device"),
        Sample((-2, 3), {"dtype": ember.bfloat16}, desc="bfloat16"),
        Sample((-3, 260, 7), {"dtype": ember.uint8}, desc="uint8 wraps"),
        Sample((-2.7, 9.2, 2.6), {"dtype": ember.int32}, desc="float bounds, int32: start and step truncate"),
        Sample((0.5, 6.5, 1.5), {"dtype": ember.int64}, desc="float bounds, int64: the whole range truncates"),
        Sample((3, 3), desc="empty"),
    ]


def arange_errors():
    return [ErrorSample((0, 1, 0), {}, RuntimeError, r"step must be nonzero", desc="step 0"),
            ErrorSample((0, 3, 0.5), {"dtype": ember.int64}, RuntimeError, r"step must be nonzero",
                        desc="step 0.5 truncates to 0 for int64"),
            ErrorSample((0, 5, -1), {}, RuntimeError, r"inconsistent with step sign", desc="the wrong sign"),
            ErrorSample((0, float("inf")), {}, RuntimeError, r"unsupported range", desc="an infinite end"),
            ErrorSample((0, 4), {"dtype": ember.bool}, NotImplementedError, r"Bool", desc="bool")]


def linspace_samples():
    return [
        Sample((0, 1, 5), desc="default dtype"),
        Sample((-2.5, 7.0, 8), {"dtype": ember.float64}, desc="float64"),
        Sample((0, 10, 4), {"dtype": ember.int64, "device": "cpu"}, desc="int64 truncates, device"),
        Sample((3, -3, 7), {"dtype": ember.bfloat16}, desc="decreasing, bfloat16"),
        Sample((-1, 1, 3), {"dtype": ember.float16}, desc="float16"),
        Sample((1, 2, 1), desc="one step"),
        Sample((1, 2, 0), desc="no steps"),
    ]


def linspace_errors():
    return [ErrorSample((0, 1, -1), {}, RuntimeError, r"number of steps must be non-negative", desc="steps -1"),
            ErrorSample((0, 1, 3), {"dtype": ember.bool}, NotImplementedError, r"Bool", desc="bool")]


def eye_samples():
    return [
        Sample((3,), desc="square, default dtype"),
        Sample((2, 4), {"dtype": ember.float64}, desc="wide, float64"),
        Sample((4, 1), {"dtype": ember.int64, "device": "cpu"}, desc="tall, int64, device"),
        Sample((2,), {"dtype": ember.bool}, desc="bool"),
        Sample((3, 2), {"dtype": ember.float16}, desc="float16"),
        Sample((2, 2), {"dtype": ember.bfloat16}, desc="bfloat16"),
        Sample((0, 3), desc="empty"),
    ]


def eye_errors():
    return [ErrorSample((-1,), {}, RuntimeError, r"n must be greater or equal to 0, got -1", desc="n -1"),
            ErrorSample((2, -1), {}, RuntimeError, r"m must be greater or equal to 0, got -1", desc="m -1")]


def scalar_tensor_samples():
    return [
        Sample((3,), desc="an int: still the default dtype"),
        Sample((2.5,), {"dtype": ember.float64, "device": "cpu"}, desc="float64, device"),
        Sample((True,), {"dtype": ember.bool}, desc="bool"),
        Sample((-7,), {"dtype": ember.int32}, desc="int32"),
        Sample((0.1,), {"dtype": ember.float16}, desc="float16"),
        Sample((1.5,), {"dtype": ember.bfloat16}, desc="bfloat16"),
    ]


register(OpInfo("arange", arange_samples, arange_errors, ref=torch.arange, grad=NO_GRAD))
register(OpInfo("linspace", linspace_samples, linspace_errors, ref=torch.linspace, grad=NO_GRAD))
register(OpInfo("eye", eye_samples, eye_errors, ref=torch.eye, grad=NO_GRAD))
register(OpInfo("scalar_tensor", scalar_tensor_samples, ref=torch.scalar_tensor, grad=NO_GRAD))


# ---- _to_device ---------------------------------------------------------------------------------------

def to_device_samples():
    x = make_pair((2, 3), "float32", layout="transposed")[0]
    return [Sample((x, ember.device("cpu")),
                   desc="KNOWN: a CPU tensor sent to the CPU goes through the CUDA backend's device-to-host "
                        "copy (backends/cuda/tensor.py to_device), which needs the CUDA driver; torch copies")]


register(OpInfo("_to_device", to_device_samples,
                ref=lambda x, device, non_blocking=False: torch.ops.aten._to_copy(x, device=device),
                grad="moves between devices: a CPU-only machine has one device",
                interp="copies through the CUDA driver (host-device transfers need a GPU)"))

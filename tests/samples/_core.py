"""The sample-input table's types: one `OpInfo` per op of `ember.dispatch.OPS`, in the spirit of
PyTorch's OpInfo (torch/testing/_internal/common_methods_invocations.py).

Each family file (`tests/samples/<family>.py`) calls `register(OpInfo(...))` once per op. The suites
read the whole table:
  tests/test_samples.py               CPU: the meta's shape/dtype equal the result's, values against torch, errors
  tests/test_cuda_samples_interp.py   the CUDA host code with Triton's interpreter, against the CPU (CI)
  tests/test_cuda_samples.py          CUDA against torch CUDA on the GPU machine (-m cuda)
  tests/test_samples_gradcheck.py     gradcheck on the float64 samples of differentiable ops
A new op gets all four by registering its OpInfo.

Sample arguments are ember CPU tensors (any layout), lists of them, Python scalars, ember dtypes,
devices and strings, in the form of the op's schema (`ember.dispatch.OPS[name].schema`), which is
also the form the suites bind to find the kernel's positional arguments. `samples()` and `errors()`
are called afresh for every use, so in-place ops may mutate what they get.

A sample whose `desc` starts with "KNOWN:" is a known divergence from torch: the CPU suite runs it as
a strict xfail (it must fail until the bug is fixed), the other suites leave it out.
Machinery: `_convert.py` (ember -> torch / ember CUDA with the same layout, `kernel_args`) and
`_check.py` (the meta against a result, results against the reference).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional


@dataclass
class Sample:
    args: tuple
    kwargs: dict = field(default_factory=dict)
    desc: str = ""
    # non-empty: ember's CUDA kernel refuses this sample by design, and this says why (torch CUDA has no
    # integer matrix products either; float64 layer norm takes the composite in nn.functional). The CUDA
    # suites then require NotImplementedError instead of a result.
    cuda: str = ""


@dataclass
class ErrorSample:
    """An input the op must refuse: ember raises `exc` with a message matching `match` (a regex).
    With `torch_raises` (the default) torch's reference must raise too."""
    args: tuple
    kwargs: dict
    exc: type | tuple   # an exception type, or a tuple of them (either may be raised)
    match: str
    desc: str = ""
    torch_raises: bool = True


@dataclass
class OpInfo:
    name: str                                   # the key in ember.dispatch.OPS
    samples: Callable[[], Iterable[Sample]]
    errors: Optional[Callable[[], Iterable[ErrorSample]]] = None
    # torch's counterpart, called with the samples' arguments converted to torch; None when torch has
    # no such op, and then `ref_reason` says why (the CPU suite still checks meta against result)
    ref: Optional[Callable] = None
    ref_reason: str = ""
    values: bool = True        # False for random or uninitialised results: shape and dtype only
    tol: dict = field(default_factory=dict)     # dtype name -> (rtol, atol); else helpers.default_tol
    grad: object = True        # True: gradcheck the float64 samples; a str says why not
    interp: object = True      # True: the CUDA kernel runs through Triton's interpreter; a str says why not
    # compare results as an unordered set (unique without sorting, ...), or other special comparisons:
    # a function (ember_result, torch_result) -> None that asserts; None uses helpers.assert_same
    compare: Optional[Callable] = None


REGISTRY: dict = {}


def register(info: OpInfo) -> OpInfo:
    if info.name in REGISTRY:
        raise ValueError(f"op {info.name!r} already has samples")
    if info.ref is None and not info.ref_reason:
        raise ValueError(f"{info.name}: an OpInfo without a torch reference must say why (ref_reason)")
    REGISTRY[info.name] = info
    return info

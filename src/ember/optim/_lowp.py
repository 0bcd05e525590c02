"""torch's CPU arithmetic on float16/bfloat16 tensors, where the optimizers' steps need more than ember's ops.

ember's CPU kernels take Python scalars with float16/bfloat16 tensors as torch's do (add's alpha rounded to
the dtype, mul_/div_'s scalar and lerp_'s weight kept in float32, fused multiply-adds where torch's
vectorised code fuses them; see ember/backends/cpu/elementwise.py), so the single-tensor steps are torch's
ops one for one. What remains is torch's foreach step on the CPU: `torch._foreach_mul_` (its slow path)
rounds its scalar to the tensors' dtype, where `Tensor.mul_` keeps it in float32.
Not reproduced: torch's scalar loop, which computes the last numel % 32 elements of a tensor (AVX2 and
AVX-512) and rounds add's alpha * other to the dtype before adding it.
"""
from __future__ import annotations

from ..core.dtype import bfloat16, float16, float32
from ..ops.creation import tensor

_LOW = (float16, bfloat16)


def low_cpu(t) -> bool:
    """A float16/bfloat16 tensor on the CPU (where torch's `_foreach_mul_` rounds its scalar to the dtype)."""
    return t._dtype in _LOW and t._storage.device.type == "cpu"


def rounded(x: float, dtype) -> float:
    """The Python number x as torch's CPU kernels take it into a tensor of `dtype`: float32, then dtype."""
    return tensor(float(x), dtype=float32).to(dtype).item()


"""The fused rotary-embedding Triton kernel through Triton's interpreter on CPU tensors, against the CPU
kernel: strided inputs (views of a fused qkv projection), broadcast and strided tables, every dtype."""
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernel is tested by tests/test_cuda_rotary.py", allow_module_level=True)
pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from ember.backends.cuda import rotary as R  # noqa: E402
from ember.dispatch import OPS  # noqa: E402

CPU = OPS["_rotary_embedding"].kernels["cpu"]


def _tables(shape, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return tuple(ember.tensor(rng.standard_normal(shape)).to(dtype) for _ in range(2))


def _inputs(layout, dtype):
    """(x, cos, sin) of one layout: x (..., T, D) and tables broadcasting to (..., T, D/2)."""
    rng = np.random.default_rng(0)
    if layout == "qkv":           # k of a fused (B, T, 3 * H * E) projection as (B, H, T, E)
        x = ember.tensor(rng.standard_normal((2, 9, 3 * 3 * 20))).to(dtype)
        return (x.view(2, 9, 3, 3, 20).permute(2, 0, 3, 1, 4)[1],) + _tables((9, 10), dtype)
    if layout == "per_sequence":  # tables (B, 1, T, D/2), the input (B, H, T, D) contiguous
        return (ember.tensor(rng.standard_normal((2, 3, 5, 12))).to(dtype),) + _tables((2, 1, 5, 6), dtype)
    if layout == "strided_tables":  # a window of larger column-major tables, the input's rows sliced
        x = ember.tensor(rng.standard_normal((4, 7, 32))).to(dtype)[..., ::2]
        c, s = (t.t().contiguous().t()[3:10] for t in _tables((12, 8), dtype))
        return x, c, s
    if layout == "deep":          # four non-mergeable leading dims (a program's outer index spans three)
        x = ember.tensor(rng.standard_normal((3, 2, 5, 4, 8))).to(dtype).permute(1, 0, 3, 2, 4)
        return (x,) + _tables((3, 1, 5, 4), dtype)
    if layout == "many_rows":     # more rows and pairs than one program holds
        return (ember.tensor(rng.standard_normal((3, 70, 300))).to(dtype),) + _tables((70, 150), dtype)
    return (ember.tensor(rng.standard_normal((7, 6))).to(dtype),) + _tables((7, 3), dtype)   # (T, D)


@pytest.mark.parametrize("layout", ["qkv", "per_sequence", "strided_tables", "deep", "many_rows", "2d"])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_rotary_kernel_matches_cpu(layout, interleaved, dtype):
    x, c, s = _inputs(layout, getattr(ember, dtype))
    y = R.rotary_embedding(x, c, s, interleaved)
    want = CPU(x, c, s, interleaved)
    assert y.dtype is x.dtype and tuple(y.shape) == tuple(x.shape) and y.is_contiguous()
    tol = 1e-2 if dtype == "bfloat16" else 1e-6
    np.testing.assert_allclose(y.float().numpy(), want.float().numpy(), rtol=tol, atol=tol)


def test_rotary_kernel_float32_tables_for_a_float16_input_and_no_positions():
    x, c, s = _inputs("qkv", ember.float16)
    y = R.rotary_embedding(x, c.float(), s.float(), False)
    np.testing.assert_allclose(y.float().numpy(), CPU(x, c.float(), s.float(), False).float().numpy(), rtol=2e-3,
                               atol=2e-3)
    e = ember.zeros(2, 0, 8)
    assert tuple(R.rotary_embedding(e, ember.zeros(0, 4), ember.zeros(0, 4), True).shape) == (2, 0, 8)

"""Every Triton kernel of the CUDA backend, run on the CPU through Triton's interpreter
(`TRITON_INTERPRET=1`) on zero-copy views of ember's CPU buffers, compared with the CPU backend.

The host code of the CUDA ops (shape/dtype logic, dimension collapsing, launch arguments) runs
unchanged; only the launch goes to the interpreter. On a machine with a GPU these tests are left
to `tests/test_cuda_ops.py`, which runs the same kernels compiled (the interpreter and the
compiler cannot share one process).
"""
import os

import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_ops.py", allow_module_level=True)
triton = pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from helpers import assert_same, make_pair  # noqa: E402

from ember.backends.cuda import elementwise as EW  # noqa: E402


def ref(name, *args, **kw):
    return getattr(ember, name)(*args, **kw)


POS_OK = {"log", "sqrt", "rsqrt", "log2", "log10", "log1p", "reciprocal"}


@pytest.mark.parametrize("name", sorted(n for n in EW.UNARY_OPS if n in ember.dispatch.OPS))
def test_unary_kernel_matches_cpu(name):
    low = 0.1 if name in POS_OK else -2.0
    for dtype in ("float32", "float16"):
        x, _ = make_pair((5, 7), dtype, low=low, high=2.0, layout="transposed")
        if name in ("bitwise_not",):
            x, _ = make_pair((5, 7), "int32", layout="sliced")
        if name in ("logical_not",):
            x, _ = make_pair((5, 7), "bool")
        oop, _ = EW._unary_kernel(name, EW.UNARY_OPS[name], ember.ops.elementwise.UNARY[name])
        expected = ref(name, x)
        got = oop(x)
        tol = {"float16": (2e-3, 2e-3)}.get(x.dtype.name, (2e-5, 1e-6))
        assert got.dtype is expected.dtype and got.shape == expected.shape
        if got.dtype.is_floating_point:
            import numpy as np
            np.testing.assert_allclose(got.float().numpy(), expected.float().numpy(), rtol=tol[0], atol=tol[1])
        else:
            assert got.tolist() == expected.tolist()


@pytest.mark.parametrize("name", sorted(EW.BINARY_OPS))
def test_binary_kernel_matches_cpu_with_broadcast_and_scalars(name):
    is_bit = name.startswith("bitwise")
    dt = "int32" if is_bit else "float32"
    low = 0.1 if name == "pow" else -3.0
    x, _ = make_pair((4, 1, 6), dt, low=low, layout="contiguous")
    y, _ = make_pair((3, 6), dt, low=low, seed=1, layout="sliced")
    oop, ip = EW._binary_kernel(name, EW.BINARY_OPS[name], ember.ops.elementwise.BINARY[name])
    expected = ref(name, x, y)
    got = oop(x, y)
    assert got.dtype is expected.dtype and got.shape == expected.shape
    import numpy as np
    np.testing.assert_allclose(got.float().numpy(), expected.float().numpy(), rtol=1e-5, atol=1e-6)
    if name not in ("maximum", "minimum", "hypot", "logical_and", "logical_or", "logical_xor"):
        s = 2 if is_bit else 1.5
        np.testing.assert_allclose(oop(x, s).float().numpy(), ref(name, x, s).float().numpy(), rtol=1e-5, atol=1e-6)


def test_add_sub_alpha_int_promotion_and_inplace():
    a, _ = make_pair((3, 4), "int64", layout="transposed")
    b, _ = make_pair((4,), "float32", seed=2)
    assert_same_cpu(EW.OPS["add"].kernels["cuda"](a, b, alpha=2.0), ember.add(a, b, alpha=2.0))
    assert_same_cpu(EW.OPS["sub"].kernels["cuda"](a, 3, alpha=2), ember.sub(a, 3, alpha=2))
    h, _ = make_pair((2, 3), "float16")
    exp = ember.add(h, 1.5)
    assert_same_cpu(EW.OPS["add"].kernels["cuda"](h, 1.5), exp)
    c = ember.zeros(6, 4)[::2]                       # an in-place target that is itself strided
    EW.OPS["add_"].kernels["cuda"](c, b)
    assert c.tolist() == ember.zeros(3, 4).add(b).tolist()
    assert_same_cpu(EW.OPS["div"].kernels["cuda"](a, b), ember.div(a, b))


def assert_same_cpu(got, expected):
    import numpy as np
    assert got.dtype is expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(got.double().numpy(), expected.double().numpy(), rtol=2e-3, atol=1e-5)


@pytest.mark.parametrize("src_dt,dst_dt", [("float32", "float16"), ("float64", "int32"), ("int64", "float32"),
                                           ("bfloat16", "float32"), ("float32", "bool"), ("uint8", "int64")])
def test_copy_cast_strided(src_dt, dst_dt):
    src, _ = make_pair((4, 5, 6), src_dt, layout="transposed")
    dst = ember.zeros(6, 5, 4, dtype=getattr(ember, dst_dt)).permute(2, 1, 0)   # a strided destination
    EW.copy_cast(dst, src)
    expected = src.to(getattr(ember, dst_dt))
    assert dst.tolist() == expected.tolist()


def test_broadcast_copy_and_many_dims():
    src = ember.arange(6.0).reshape(1, 2, 1, 3)
    dst = ember.zeros(2, 2, 2, 3, 2, 1).select(5, 0)   # 5 dims, broadcasting from src
    EW.copy_cast(dst, src.unsqueeze(-1))
    assert dst.tolist() == src.unsqueeze(-1).expand(2, 2, 2, 3, 2).tolist()

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


# ---- the ternary kernel: where, clamp, lerp, addcmul, addcdiv, masked_fill ----------------------

def _cuda_kernel(name):
    return ember.dispatch.OPS[name].kernels["cuda"]


def test_where_and_masked_fill():
    c = ember.tensor([[True, False, True], [False, True, False]])
    x, _ = make_pair((2, 3), "float32")
    y, _ = make_pair((3,), "float32", seed=1)
    assert_same_cpu(_cuda_kernel("where")(c, x, y), ember.where(c, x, y))
    assert_same_cpu(_cuda_kernel("where")(c, x, 0.5), ember.where(c, x, 0.5))
    assert_same_cpu(_cuda_kernel("masked_fill")(x, c, -1.0), x.masked_fill(c, -1.0))
    z = x.clone()
    _cuda_kernel("masked_fill_")(z, ember.tensor([True, False, False]), 7.0)
    assert z.tolist() == x.masked_fill(ember.tensor([True, False, False]), 7.0).tolist()


def test_clamp_lerp_addc():
    x, _ = make_pair((4, 5), "float32", layout="transposed")
    lo, _ = make_pair((5,), "float32", seed=2, low=-1, high=0)
    assert_same_cpu(_cuda_kernel("clamp")(x, -0.5, 0.7), ember.clamp(x, -0.5, 0.7))
    assert_same_cpu(_cuda_kernel("clamp")(x, lo, None), ember.clamp(x, lo, None))
    assert_same_cpu(_cuda_kernel("clamp")(x, None, 1.0), ember.clamp(x, None, 1.0))
    i, _ = make_pair((6,), "int64")
    assert_same_cpu(_cuda_kernel("clamp")(i, -1, None), ember.clamp(i, -1, None))
    e, _ = make_pair((4, 5), "float32", seed=3)
    w, _ = make_pair((4, 5), "float32", seed=4, low=0, high=1)
    assert_same_cpu(_cuda_kernel("lerp")(x, e, 0.3), ember.lerp(x, e, 0.3))
    assert_same_cpu(_cuda_kernel("lerp")(x, e, w), ember.lerp(x, e, w))
    p, _ = make_pair((4, 5), "float32", seed=5, low=0.5, high=2)
    assert_same_cpu(_cuda_kernel("addcmul")(x, e, p, value=0.5), ember.addcmul(x, e, p, value=0.5))
    assert_same_cpu(_cuda_kernel("addcdiv")(x, e, p, value=-2), ember.addcdiv(x, e, p, value=-2))
    t = x.clone()
    _cuda_kernel("addcdiv_")(t, e, p, value=0.1)
    assert_same_cpu(t, ember.addcdiv(x, e, p, value=0.1))


# ---- gather / scatter-add kernels and their composites ------------------------------------------

def test_gather_index_select_embedding():
    from ember.backends.cuda import indexing as IX
    x, _ = make_pair((4, 5), "float32", layout="transposed")
    idx = ember.tensor([[0, 2, 1], [3, 3, 0], [1, 0, 4], [2, 2, 2]])
    assert IX.gather(x, 1, idx).tolist() == x.gather(1, idx).tolist()
    i0 = ember.tensor([[1, 0, 3, 2, 0]])
    assert IX.gather(x, 0, i0).tolist() == x.gather(0, i0).tolist()
    sel = ember.tensor([3, 0, 3])
    assert IX.index_select(x, 0, sel).tolist() == x.index_select(0, sel).tolist()
    assert IX.index_select(x, 1, sel).tolist() == x.index_select(1, sel).tolist()
    w, _ = make_pair((6, 3), "float32")
    ids = ember.tensor([[0, 5], [2, 2]])
    assert IX.embedding(w, ids).tolist() == ember.embedding(w, ids).tolist()


def test_scatter_add_and_index_add():
    from ember.backends.cuda import indexing as IX
    base, _ = make_pair((3, 4), "float32")
    src, _ = make_pair((2, 4), "float32", seed=1)
    idx = ember.tensor([[0, 2, 2, 1], [0, 0, 1, 2]])
    assert_same_cpu(IX.scatter_add(base, 0, idx, src), base.scatter_add(0, idx, src))
    rows = ember.tensor([2, 0, 2])
    srcr, _ = make_pair((3, 4), "float32", seed=2)
    assert_same_cpu(IX.index_add(base, 0, rows, srcr, alpha=0.5), base.index_add(0, rows, srcr, alpha=0.5))
    t = base.clone()
    IX.index_add_(t, 1, ember.tensor([1, 1]), base[:, :2])
    assert_same_cpu(t, base.index_add(1, ember.tensor([1, 1]), base[:, :2]))


def test_cat_stack_tri_norm():
    from ember.backends.cuda import indexing as IX
    a, _ = make_pair((2, 3), "float32")
    b, _ = make_pair((4, 3), "float32", seed=1)
    assert IX.cat([a, b], 0).tolist() == ember.cat([a, b], 0).tolist()
    assert IX.stack([a, a], 1).tolist() == ember.stack([a, a], 1).tolist()
    assert IX.stack([ember.tensor(1.0), ember.tensor(2.0)]).tolist() == [1.0, 2.0]
    m, _ = make_pair((4, 5), "float32")
    assert IX._tri(True)(m, 1).tolist() == m.triu(1).tolist()
    assert IX._tri(False)(m, -1).tolist() == m.tril(-1).tolist()

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

from helpers import assert_same, cuda_host_code_on_cpu, make_pair  # noqa: E402

from ember.backends.cuda import elementwise as EW  # noqa: E402


def ref(name, *args, **kw):
    return getattr(ember, name)(*args, **kw)


POS_OK = {"log", "sqrt", "rsqrt", "log2", "log10", "log1p", "reciprocal"}
DOMAIN = {"asin": (-0.99, 0.99), "acos": (-0.99, 0.99), "atanh": (-0.99, 0.99), "acosh": (1.0, 4.0),
          "sinh": (-5.0, 5.0), "cosh": (-5.0, 5.0), "tan": (-1.5, 1.5), "round": (-4.0, 4.0), "frac": (-4.0, 4.0)}


@pytest.mark.parametrize("name", sorted(n for n in EW.UNARY_OPS if n in ember.dispatch.OPS))
def test_unary_kernel_matches_cpu(name):
    low, high = DOMAIN.get(name, (0.1 if name in POS_OK else -2.0, 2.0))
    for dtype in ("float32", "float16"):
        x, _ = make_pair((5, 7), dtype, low=low, high=high, layout="transposed")
        if name in ("bitwise_not",):
            x, _ = make_pair((5, 7), "int32", layout="sliced")
        if name in ("logical_not",):
            x, _ = make_pair((5, 7), "bool")
        oop, _, _ = EW._unary_kernel(name, EW.UNARY_OPS[name], ember.ops.elementwise.UNARY[name])
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
    oop, ip, _, _ = EW._binary_kernel(name, EW.BINARY_OPS[name], ember.ops.elementwise.BINARY[name])
    expected = ref(name, x, y)
    got = oop(x, y)
    assert got.dtype is expected.dtype and got.shape == expected.shape
    import numpy as np
    np.testing.assert_allclose(got.float().numpy(), expected.float().numpy(), rtol=1e-5, atol=1e-6)
    if "Scalar" in str(EW.OPS[name].schema):   # ops whose `other` may be a number (the schema says so)
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


# ---- math, integer division, reflected and parametrised elementwise ops --------------------------

def _same_values(got, expected, rtol=2e-5, atol=1e-6):
    import numpy as np
    assert got.dtype is expected.dtype and got.shape == expected.shape, (got.dtype, expected.dtype)
    if got.dtype.is_floating_point:
        np.testing.assert_allclose(got.double().numpy(), expected.double().numpy(), rtol=rtol, atol=atol)
    else:
        assert got.tolist() == expected.tolist()


SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.0, 1e-30, 89.0, -89.0, 1e20, -1e20,
           float("inf"), float("-inf"), float("nan")]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_math_at_special_values(dtype):
    x = ember.tensor(SPECIAL, dtype=getattr(ember, dtype))
    for name in ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "frac", "round",
                 "expm1", "log1p", "signbit", "isposinf", "isneginf"):
        _same_values(_cuda_kernel(name)(x), ref(name, x))       # NaN/inf positions, round half to even, -0.0
    assert _cuda_kernel("signbit")(x).tolist()[:2] == [False, True]


def test_binary_math_at_special_values():
    import itertools
    values = [0.0, -0.0, 2.0, -2.0, 7.5, -7.5, float("inf"), float("-inf"), float("nan")]
    pairs = list(itertools.product(values, repeat=2))
    for dtype in (ember.float32, ember.float64):
        a = ember.tensor([p[0] for p in pairs], dtype=dtype)
        b = ember.tensor([p[1] for p in pairs], dtype=dtype)
        for name in ("atan2", "fmod", "remainder", "floor_divide", "fmax", "fmin"):
            _same_values(_cuda_kernel(name)(a, b), ref(name, a, b))
        for mode in ("trunc", "floor"):
            _same_values(_cuda_kernel("div")(a, b, rounding_mode=mode), ember.div(a, b, rounding_mode=mode))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_division_family_is_exact(dtype):
    x, _ = make_pair((40, 25), dtype, low=-50, high=50, layout="transposed")
    y, _ = make_pair((25,), dtype, low=-4, high=4, seed=1)
    # exact in float32 (done in float64); the interpreter does not fuse the float64 fma, so allow an ulp there
    tol = (0, 0) if dtype == "float32" else (1e-12, 1e-12)
    for name in ("fmod", "remainder", "floor_divide"):
        _same_values(_cuda_kernel(name)(x, y), ref(name, x, y), *tol)
        _same_values(_cuda_kernel(name)(x, -1.75), ref(name, x, -1.75), *tol)
    _same_values(_cuda_kernel("div")(x, y, rounding_mode="trunc"), ember.div(x, y, rounding_mode="trunc"), 0, 0)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8"])
def test_integer_division_pow_and_rounding(dtype):
    import numpy as np
    lo = 0 if dtype == "uint8" else -40
    x, _ = make_pair((6, 9), dtype, low=lo, high=40, layout="transposed")
    yy = np.random.default_rng(3).integers(lo, 12, size=9)
    yy[yy == 0] = 5                                            # the CPU kernel refuses division by zero
    y = ember.tensor(yy, dtype=getattr(ember, dtype))
    for name in ("floor_divide", "remainder", "fmod"):          # Python floor vs C truncation
        _same_values(_cuda_kernel(name)(x, y), ref(name, x, y))
        for s in (7,) if dtype == "uint8" else (7, -7):
            _same_values(_cuda_kernel(name)(x, s), ref(name, x, s))
    for name in ("fmax", "fmin"):
        _same_values(_cuda_kernel(name)(x, y), ref(name, x, y))
    for mode in ("trunc", "floor"):
        _same_values(_cuda_kernel("div")(x, y, rounding_mode=mode), ember.div(x, y, rounding_mode=mode))
    for name in ("round", "floor", "ceil", "trunc", "signbit", "isposinf", "isneginf"):
        _same_values(_cuda_kernel(name)(x), ref(name, x))
    dt = getattr(ember, dtype)
    base = ember.tensor([[0], [1], [2], [3]] if dtype == "uint8" else [[-2], [-1], [0], [1], [2], [3]], dtype=dt)
    exp = ember.tensor([0, 1, 2, 3, 5, 7] if dtype == "uint8" else [-3, -2, -1, 0, 1, 2, 3, 5, 7], dtype=dt)
    _same_values(_cuda_kernel("pow")(base, exp), ember.pow(base, exp))      # negative exponents as torch
    _same_values(_cuda_kernel("pow")(base, 3), ember.pow(base, 3))
    _same_values(_cuda_kernel("_rpow")(exp, 2), ember.dispatch.OPS["_rpow"].fn(exp, 2))


def test_reflected_ops_with_scalars():
    x, _ = make_pair((4, 6), "float32", low=0.5, high=3.0, layout="sliced")
    i, _ = make_pair((4, 6), "int32", low=1, high=9)
    OPS = ember.dispatch.OPS
    for name in ember.ops.elementwise.REFLECTED:
        for t, s in ((x, 2.5), (x, -1), (i, 17), (i, -3), (i, 1.5)):
            if name == "pow" and t is i and s == -3:
                continue
            _same_values(_cuda_kernel("_r" + name)(t, s), OPS["_r" + name].fn(t, s))
    assert (7 // i).tolist() == _cuda_kernel("_rfloor_divide")(i, 7).tolist()


def test_inplace_forms():
    x, _ = make_pair((3, 5), "float32", low=-0.9, high=0.9, layout="transposed")
    y, _ = make_pair((5,), "float32", low=0.5, high=2.0, seed=4)
    for name in ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "atanh", "frac", "round"):
        t = x.clone()
        _cuda_kernel(name + "_")(t)
        _same_values(t, ref(name, x))
    for name in ("atan2", "fmod", "remainder", "floor_divide"):
        t = x.clone()
        _cuda_kernel(name + "_")(t, y)
        _same_values(t, ref(name, x, y))
    for mode in ("trunc", "floor"):
        t = (x * 10).clone()
        _cuda_kernel("div_")(t, y, rounding_mode=mode)
        _same_values(t, ember.div(x * 10, y, rounding_mode=mode))
    n = ember.tensor([[7, -7], [5, -5]])
    _cuda_kernel("div_")(n, 2, rounding_mode="floor")
    assert n.tolist() == [[3, -4], [2, -3]]
    with cuda_host_code_on_cpu("div_"), pytest.raises(RuntimeError, match="can't be cast"):   # the meta's check
        ember.tensor([1, 2]).div_(2)
    with pytest.raises(RuntimeError, match="more than one element"):
        _cuda_kernel("fmod_")(ember.zeros(3).expand(2, 3), 2.0)


def test_operands_sharing_out_s_permuted_layout_collapse_to_one_run():
    """Dims are walked in the order of out's strides: an in-place op on a permuted tensor, with another operand of
    the same layout (or a scalar), is one contiguous run; other operands (contiguous, broadcast) stay right."""
    import numpy as np
    a = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    x = ember.tensor(a).permute(2, 0, 1)
    assert EW._geometry(x._shape, x, x, None)[0] == [60]
    assert EW._geometry(x._shape, x, x, x.contiguous())[0] != [60]    # a contiguous other operand: strided
    want = a.transpose(2, 0, 1) * 2 + a.transpose(2, 0, 1) + a[0:1].transpose(2, 0, 1)
    t = ember.tensor(a).permute(2, 0, 1)
    _cuda_kernel("mul_")(t, 2.0)
    _cuda_kernel("add_")(t, ember.tensor(a).permute(2, 0, 1))
    _cuda_kernel("add_")(t, ember.tensor(a)[0:1].permute(2, 0, 1))     # broadcast over dim 1
    np.testing.assert_allclose(t.numpy(), want, rtol=1e-6)
    out = ember.empty(4, 3).t()
    _cuda_kernel("add_")(out.fill_(1.0), ember.arange(4.0))
    assert out.tolist() == [[1.0, 2.0, 3.0, 4.0]] * 3


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_parametrised_activations_and_nan_to_num(dtype):
    x, _ = make_pair((6, 7), dtype, low=-4, high=4, layout="transposed")
    rtol = 2e-3 if dtype == "float16" else 2e-5
    F = ember.nn.functional
    _same_values(_cuda_kernel("leaky_relu")(x, 0.2), F.leaky_relu(x, 0.2), rtol)
    _same_values(_cuda_kernel("softplus")(x), F.softplus(x), rtol)
    _same_values(_cuda_kernel("softplus")(x, beta=2, threshold=3), F.softplus(x, beta=2, threshold=3), rtol)
    s = ember.tensor([1.0, float("nan"), float("inf"), float("-inf"), -2.0], dtype=getattr(ember, dtype))
    for kw in ({}, {"nan": 1.5, "posinf": 9.0}, {"neginf": -7.0}):
        _same_values(_cuda_kernel("nan_to_num")(s, **kw), ember.nan_to_num(s, **kw))
        t = s.clone()
        _cuda_kernel("nan_to_num_")(t, **kw)
        _same_values(t, ember.nan_to_num(s, **kw))
    with cuda_host_code_on_cpu("leaky_relu"), pytest.raises(NotImplementedError, match="leaky_relu"):
        F.leaky_relu(ember.tensor([1, 2]))
    g, _ = make_pair((6, 7), dtype, seed=3)
    for approx in ("none", "tanh"):
        _same_values(_cuda_kernel("gelu_backward")(g, x, approximate=approx),
                     ember.ops.gelu_backward(g, x, approximate=approx), rtol * 4, 1e-5)   # cancellation in the tails
    with cuda_host_code_on_cpu("gelu_backward"), \
            pytest.raises(RuntimeError, match="approximate argument must be either 'none' or 'tanh', got 'fast'"):
        ember.ops.gelu_backward(g, x, approximate="fast")


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int64", "uint8", "bool"])
def test_isclose(dtype):
    import torch
    from helpers import to_torch
    a, _ = make_pair((5, 8), dtype, low=-20, high=20, layout="transposed")
    d, _ = make_pair((8,), dtype, low=-2, high=2, seed=2)
    b = a + d * 1e-3 if a.dtype.is_floating_point else (a | d if dtype == "bool" else a + d)
    if a.dtype.is_floating_point:
        a[0, 0], b[0, 0], a[1, 1], b[1, 1] = float("nan"), float("nan"), float("inf"), float("inf")
    for kw in ({}, {"rtol": 1e-3, "atol": 1e-3}, {"equal_nan": True}, {"rtol": 0.0, "atol": 0.0},
               {"rtol": 0.1, "atol": 1.0}):
        got = _cuda_kernel("isclose")(a, b, **kw)
        if a.dtype.is_floating_point:
            _same_values(got, ember.isclose(a, b, **kw))
        else:   # torch's: the error in float, where the CPU kernel lets uint8 a - b wrap
            assert got.tolist() == torch.isclose(to_torch(a), to_torch(b), **kw).tolist()
    with cuda_host_code_on_cpu("isclose"), pytest.raises(RuntimeError, match="did not match"):
        ember.isclose(a, b.to(ember.int32 if dtype != "int32" else ember.int64))


def test_dtype_errors_are_the_same_with_the_cuda_host_code():
    """The meta raises them before either backend's kernel runs."""
    b, i = ember.tensor([True, False]), ember.tensor([1, -2])
    cases = (("frac", (i,)), ("round", (b,)), ("remainder", (b, b)), ("floor_divide", (b, True)), ("pow", (b, b)),
             ("softplus", (i,)), ("neg", (b,)), ("pow", (i, -1)))
    for name, args, kw in [c + ({},) for c in cases] + [("div", (i, i), {"rounding_mode": "round"})]:
        fn = ember.dispatch.OPS[name].fn
        with pytest.raises((RuntimeError, NotImplementedError)) as cpu_err:
            fn(*args, **kw)
        with cuda_host_code_on_cpu(name), \
                pytest.raises(cpu_err.type, match="^" + __import__("re").escape(str(cpu_err.value)) + "$"):
            fn(*args, **kw)


# ---- divergences from torch fixed in issue 12 (the GPU versions are in tests/test_cuda_ops.py) ---------

def test_gelu_of_integers_raises_through_the_cuda_host_code():
    """The CUDA kernel returned a float tensor for gelu of an int64 tensor; torch and the CPU raise."""
    with cuda_host_code_on_cpu("gelu", "gelu_backward"):
        for dtype in ("int64", "int32", "uint8", "bool"):
            i = ember.ones(3, dtype=getattr(ember, dtype))
            with pytest.raises(NotImplementedError, match="gelu"):
                ember.nn.functional.gelu(i)
            with pytest.raises(NotImplementedError, match="gelu_backward"):
                ember.dispatch.OPS["gelu_backward"].fn(i, i)
        x, _ = make_pair((3, 4), "float32")
        assert ember.nn.functional.gelu(x).dtype is ember.float32


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scalar_divided_by_tensor_is_torch_s_reciprocal_times_scalar(dtype):
    """`s / t` is what torch computes: `Tensor.__rdiv__` is `t.reciprocal() * s` (two roundings; 1e-39 / 1e-40
    is inf in float32). The reciprocal is IEEE-rounded, as torch's (Triton's fp32 `/` was an ulp off)."""
    import numpy as np
    import torch
    x, tx = make_pair((64, 32), dtype, low=0.1, high=10.0, layout="transposed")
    rdiv = _cuda_kernel("_rdiv")
    for s in (3.0, 0.7, -13.0, 1e-3):
        got = rdiv(x, s).numpy()
        np.testing.assert_array_equal(got, (s / tx).numpy())      # torch's, bit for bit
    tiny = ember.tensor([1e-40, -1e-40, 2e-40], dtype=getattr(ember, dtype))
    ttiny = torch.tensor([1e-40, -1e-40, 2e-40], dtype=getattr(torch, dtype))
    np.testing.assert_array_equal(rdiv(tiny, 1e-39).numpy(), (1e-39 / ttiny).numpy())
    i = ember.arange(1, 7)
    with cuda_host_code_on_cpu("_rdiv"):
        assert (3 / i).dtype is ember.float32
        np.testing.assert_array_equal((3 / i).numpy(), (3 / torch.arange(1, 7)).numpy())


def test_float_results_of_integer_inputs_follow_the_default_dtype():
    """The CUDA kernels cached an op's result dtype per input dtype: after set_default_dtype(float64)
    exp of an int tensor stayed float32."""
    i = ember.arange(1, 5)
    with cuda_host_code_on_cpu("exp", "atan2", "sqrt"):
        assert ember.exp(i).dtype is ember.float32 and ember.atan2(i, i).dtype is ember.float32
        ember.set_default_dtype(ember.float64)
        try:
            for r in (ember.exp(i), ember.atan2(i, i), ember.sqrt(i)):
                assert r.dtype is ember.float64
            assert ember.exp(ember.ones(2, dtype=ember.float32)).dtype is ember.float32   # a float input keeps it
            assert _cuda_kernel("exp")(i).dtype is ember.float64       # the kernel alone too
        finally:
            ember.set_default_dtype(ember.float32)
        assert ember.exp(i).dtype is ember.float32 and ember.atan2(i, i).dtype is ember.float32


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


def test_cat_stack():
    from ember.backends.cuda import shape as SH
    a, _ = make_pair((2, 3), "float32")
    b, _ = make_pair((4, 3), "float32", seed=1)
    assert SH.cat([a, b], 0).tolist() == ember.cat([a, b], 0).tolist()
    assert SH.stack([a, a], 1).tolist() == ember.stack([a, a], 1).tolist()
    assert SH.stack([ember.tensor(1.0), ember.tensor(2.0)]).tolist() == [1.0, 2.0]

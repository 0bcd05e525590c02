"""Elementwise ops against PyTorch: every dtype, layout, broadcasting, scalars, in-place forms."""
from __future__ import annotations

import functools
import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ember
from ember.ops.elementwise import BINARY, UNARY
from helpers import DTYPES, E2T, FLOATS, INTS, LAYOUTS, assert_same, from_torch, to_torch
from helpers import make_pair as _make_pair

ALL = tuple(DTYPES)
# NumPy's overflow/invalid warnings are silenced by ember at import; pytest resets warning filters per test.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def each_dtype(dtypes=ALL):
    """Runs the test once per dtype inside one test item (keeps the item count, and the run time, low)."""
    def deco(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            for dt in dtypes:
                try:
                    fn(*args, dt=dt, **kwargs)
                except BaseException as exc:
                    exc.add_note(f"(with dtype {dt})")
                    raise
        sig = inspect.signature(fn)
        run.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "dt"])
        return run
    return deco


def make_pair(shape, *args, **kwargs):
    """helpers.make_pair, plus 0-dim shapes (np.ascontiguousarray turns a 0-d array into shape (1,))."""
    if tuple(shape) == ():
        e, t = _make_pair((1,), *args, **kwargs)
        return e.reshape(()), t.reshape(())
    return _make_pair(shape, *args, **kwargs)


# ---- the comparison harness ----------------------------------------------------------------

def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - the exception itself is compared
        return None, exc


def check(e_fn, t_fn, e_args, t_args, rtol=None, atol=None, **kwargs):
    """ember and torch agree: the same values/dtype, or both raise exceptions of the same type."""
    t_res, t_exc = _run(t_fn, *t_args, **kwargs)
    e_res, e_exc = _run(e_fn, *e_args, **kwargs)
    if t_exc is not None:
        assert e_exc is not None, f"torch raised {type(t_exc).__name__}: {t_exc}; ember returned {e_res!r}"
        assert isinstance(e_exc, type(t_exc)), \
            f"torch raised {type(t_exc).__name__} ({t_exc}), ember {type(e_exc).__name__} ({e_exc})"
        return None
    if e_exc is not None:
        raise AssertionError(f"ember raised {type(e_exc).__name__}: {e_exc}; torch returned {t_res}") from e_exc
    assert_same(e_res, t_res, rtol=rtol, atol=atol)
    return e_res


def tol(dtype_name, loose=False):
    """(rtol, atol): float16/bfloat16 are computed in float32 then rounded (one ulp apart at most)."""
    if dtype_name == "float16":
        return (2e-3, 2e-3) if loose else (1e-3, 1e-3)
    if dtype_name == "bfloat16":
        return (1.6e-2, 1.6e-2)
    if dtype_name == "float32" and loose:
        return (1e-5, 1e-5)
    return (None, None)


# ---- unary ops -----------------------------------------------------------------------------

_T_UNARY = {"silu": F.silu}
# (low, high) inputs inside the op's domain
_DOMAIN = {
    "log": (0.1, 3), "log2": (0.1, 3), "log10": (0.1, 3), "log1p": (-0.5, 3), "sqrt": (0, 3), "rsqrt": (0.1, 3),
    "asin": (-0.9, 0.9), "acos": (-0.9, 0.9), "atanh": (-0.9, 0.9), "acosh": (1.1, 4), "reciprocal": (0.2, 3),
}


def t_unary(name):
    return _T_UNARY.get(name) or getattr(torch, name)


def unary_inputs(name, dt, shape=(3, 4), layout="contiguous", seed=0):
    lo, hi = _DOMAIN.get(name, (-3, 3))
    if dt in INTS:
        lo, hi = max(math.ceil(lo), 1 if name in ("reciprocal", "rsqrt", "log", "log2", "log10") else lo), \
            max(math.floor(hi), 1)
    return make_pair(shape, dt, low=lo, high=hi, seed=seed, layout=layout)


@each_dtype()
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name, dt):
    rtol, atol = tol(dt)
    for layout in LAYOUTS:
        e, t = unary_inputs(name, dt, layout=layout)
        check(getattr(ember, name), t_unary(name), (e,), (t,), rtol, atol)
        check(getattr(ember.Tensor, name), getattr(torch.Tensor, name, t_unary(name)), (e,), (t,), rtol, atol)
    for shape in [(), (0,), (2, 0, 3)]:
        e, t = unary_inputs(name, dt, shape=shape)
        check(getattr(ember, name), t_unary(name), (e,), (t,), rtol, atol)


@each_dtype()
@pytest.mark.parametrize("name", sorted(n for n in UNARY if hasattr(torch.Tensor, n + "_")))
def test_unary_inplace(name, dt):
    rtol, atol = tol(dt)
    for layout in ("contiguous", "transposed", "sliced"):
        e, t = unary_inputs(name, dt, layout=layout)
        v0 = e._version
        r = check(getattr(ember.Tensor, name + "_"), getattr(torch.Tensor, name + "_"), (e,), (t,), rtol, atol)
        if r is not None:
            assert r is e
            assert e._version == v0 + 1
            assert_same(e, t, rtol, atol)
        else:
            assert e._version == v0  # a refused op leaves self untouched


def test_unary_inplace_through_view_writes_base():
    base = ember.zeros(3, 4)
    tb = torch.zeros(3, 4)
    v = base[:, 1::2]
    assert v._base is base
    v0 = base._version
    v.exp_()
    tb[:, 1::2].exp_()
    assert base._version == v0 + 1 == v._version
    assert_same(base, tb)


def test_unary_nan_inf():
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e30, -1e-30, -float("nan")])
    for dt in ("float32", "float64", "float16", "bfloat16"):
        tx = x.to(DTYPES[dt][1])
        ex = from_torch(tx)
        for name in sorted(UNARY):
            rtol, atol = tol(dt)
            check(getattr(ember, name), t_unary(name), (ex,), (tx,), rtol, atol)


def test_unary_extremes():
    # exp/sigmoid/tanh/erf in the tails, rounding ties, frac of negatives
    x = torch.tensor([-100.0, -20.0, -5.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 5.5, 20.0, 100.0])
    e = from_torch(x)
    for name in ("exp", "expm1", "sigmoid", "tanh", "erf", "round", "frac", "floor", "ceil", "trunc", "sign",
                 "silu", "sinh", "cosh"):
        check(getattr(ember, name), t_unary(name), (e,), (x,), 1e-6, 1e-30)


def test_unary_errors_match_torch():
    b = ember.tensor([True, False])
    with pytest.raises(RuntimeError, match="Negation"):
        -b
    with pytest.raises(RuntimeError):
        b.neg_()
    with pytest.raises(RuntimeError, match="Boolean"):
        ember.relu(b)
    with pytest.raises(RuntimeError):
        ember.abs(b)
    with pytest.raises(RuntimeError):
        ember.frac(ember.tensor([1, 2]))
    i = ember.tensor([1, 4])
    assert ember.sqrt(i).dtype is ember.float32  # integer inputs give float results
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.sqrt_()
    with pytest.raises(TypeError):
        ember.exp([1.0, 2.0])


# ---- binary ops ----------------------------------------------------------------------------

_DIVLIKE = {"remainder", "fmod", "floor_divide", "div"}


def binary_inputs(name, dt, shape_a, shape_b, layout="contiguous", seed=0):
    ea, ta = make_pair(shape_a, dt, seed=seed, layout=layout)
    lo = 1 if (name in _DIVLIKE and dt in INTS) or (name == "pow" and dt in INTS) else -3
    if name == "pow" and dt in FLOATS:
        ea, ta = make_pair(shape_a, dt, low=0.1, high=3, seed=seed, layout=layout)
    eb, tb = make_pair(shape_b, dt, low=lo, high=3, seed=seed + 1)
    if name in _DIVLIKE and dt in FLOATS:  # keep divisors away from 0 to avoid +-inf tie-breaking
        eb, tb = eb + 4.0 * (eb >= 0) - 2.0, tb + 4.0 * (tb >= 0) - 2.0
        eb = eb.to(DTYPES[dt][0])
        tb = tb.to(DTYPES[dt][1])
    return ea, ta, eb, tb


def t_binary(name):
    return getattr(torch, name)


@each_dtype()
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name, dt):
    rtol, atol = tol(dt, loose=name in ("pow", "atan2", "hypot"))
    e_fn, t_fn = getattr(ember, name), t_binary(name)
    for layout in LAYOUTS:
        ea, ta, eb, tb = binary_inputs(name, dt, (3, 4), (3, 4), layout)
        check(e_fn, t_fn, (ea, eb), (ta, tb), rtol, atol)
        check(getattr(ember.Tensor, name), getattr(torch.Tensor, name), (ea, eb), (ta, tb), rtol, atol)
    for sa, sb in [((3, 1, 4), (2, 4)), ((4,), (2, 3, 1)), ((), (2, 3)), ((2, 3), ()), ((0, 3), (1, 3)),
                   ((2, 0), (2, 1)), ((), ())]:
        ea, ta, eb, tb = binary_inputs(name, dt, sa, sb)
        check(e_fn, t_fn, (ea, eb), (ta, tb), rtol, atol)


@each_dtype()
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_scalar(name, dt):
    rtol, atol = tol(dt, loose=name in ("pow", "atan2", "hypot"))
    e_fn, t_fn = getattr(ember, name), t_binary(name)
    ea, ta = make_pair((2, 3), dt, low=1, high=3) if name in ("pow",) else make_pair((2, 3), dt)
    scalars = [True, False, 2, -3, 2.5, -0.5, 0]
    for s in scalars:
        if name in _DIVLIKE and not s and dt not in FLOATS:
            continue
        check(e_fn, t_fn, (ea, s), (ta, s), rtol, atol)
        check(e_fn, t_fn, (ea[0, 0], s), (ta[0, 0], s), rtol, atol)  # 0-dim tensor with a scalar


@pytest.mark.parametrize("name", ["mul", "remainder", "floor_divide", "fmod", "pow", "atan2", "hypot", "bitwise_and",
                                  "eq", "lt", "logical_and", "maximum", "fmin"])
def test_binary_mixed_dtypes(name):
    """Promotion through real ops: all 100 dtype pairs, dimensioned and 0-dim operands."""
    e_fn, t_fn = getattr(ember, name), t_binary(name)
    for da in ALL:
        for db in ALL:
            lo = 1 if name in _DIVLIKE | {"pow"} else -3
            ea, ta = make_pair((2, 3), da, low=1 if name == "pow" else -3, high=3, seed=1)
            eb, tb = make_pair((2, 3), db, low=lo, high=3, seed=2)
            if name in _DIVLIKE and db in FLOATS:
                eb, tb = eb.abs() + 1, tb.abs() + 1
            rtol, atol = tol("bfloat16" if "bfloat16" in (da, db) else "float16" if "float16" in (da, db)
                             else "float32", loose=True)
            check(e_fn, t_fn, (ea, eb), (ta, tb), rtol, atol)
            check(e_fn, t_fn, (ea, eb[0, 0]), (ta, tb[0, 0]), rtol, atol)
            check(e_fn, t_fn, (ea[0, 0], eb), (ta[0, 0], tb), rtol, atol)


@each_dtype()
@pytest.mark.parametrize("name", sorted(n for n in BINARY if hasattr(torch.Tensor, n + "_")))
def test_binary_inplace(name, dt):
    rtol, atol = tol(dt, loose=name in ("pow", "atan2", "hypot"))
    for layout in ("contiguous", "transposed", "sliced"):
        for other_kind in ("tensor", "bcast", "scalar_int", "scalar_float", "zero_dim_f64"):
            ea, ta, eb, tb = binary_inputs(name, dt, (3, 4), (4,) if other_kind == "bcast" else (3, 4), layout)
            if other_kind == "scalar_int":
                eb = tb = 2
            elif other_kind == "scalar_float":
                eb = tb = 1.5
            elif other_kind == "zero_dim_f64":
                eb, tb = ember.tensor(1.5, dtype=ember.float64), torch.tensor(1.5, dtype=torch.float64)
            v0 = ea._version
            r = check(getattr(ember.Tensor, name + "_"), getattr(torch.Tensor, name + "_"), (ea, eb), (ta, tb),
                      rtol, atol)
            if r is not None:
                assert r is ea and ea._version == v0 + 1
                assert_same(ea, ta, rtol, atol)
            else:
                assert ea._version == v0


def test_binary_inplace_shape_errors():
    a = ember.zeros(3, 1)
    with pytest.raises(RuntimeError):
        a.mul_(ember.ones(3, 4))  # self can't take the broadcast shape
    with pytest.raises(RuntimeError):
        ember.ones(3).add(ember.ones(4))
    with pytest.raises(RuntimeError, match="broadcast"):
        ember.mul(ember.ones(2, 3), ember.ones(3, 2))


def test_binary_nan_inf():
    vals = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -2.0]
    a = torch.tensor(vals).repeat_interleave(len(vals))
    b = torch.tensor(vals).repeat(len(vals))
    for dt in ("float32", "float64", "float16", "bfloat16"):
        ta, tb = a.to(DTYPES[dt][1]), b.to(DTYPES[dt][1])
        ea, eb = from_torch(ta), from_torch(tb)
        for name in sorted(BINARY):
            if name.startswith("bitwise"):
                continue
            check(getattr(ember, name), t_binary(name), (ea, eb), (ta, tb))
        check(ember.div, torch.div, (ea, eb), (ta, tb))
        check(ember.add, torch.add, (ea, eb), (ta, tb))
        check(ember.sub, torch.sub, (ea, eb), (ta, tb))
        for mode in ("trunc", "floor"):
            check(ember.div, torch.div, (ea, eb), (ta, tb), rounding_mode=mode)


def test_integer_division_by_zero():
    a, z = ember.tensor([5, -3]), ember.tensor([0, 1])
    for fn in (ember.floor_divide, ember.remainder, ember.fmod):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(a, z)
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(a, 0)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        ember.div(a, z, rounding_mode="trunc")
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        ember.div(a, z, rounding_mode="floor")
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        5 // ember.tensor([0, 1])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        a // 0
    # true division of integers is float division
    assert_same(ember.div(a, z), torch.div(torch.tensor([5, -3]), torch.tensor([0, 1])))


def test_integer_pow():
    ta, tb = torch.tensor([2, -1, 1, 0, 3, -2]), torch.tensor([-1, -3, -2, 3, 0, -1])
    assert_same(ember.pow(from_torch(ta), from_torch(tb)), torch.pow(ta, tb))
    with pytest.raises(RuntimeError, match="negative integer powers"):
        ember.pow(from_torch(ta), -1)
    assert_same(ember.pow(from_torch(ta), 0.5), torch.pow(ta, 0.5))
    assert_same(ember.pow(from_torch(ta), 2), torch.pow(ta, 2))
    assert_same(2 ** from_torch(tb.abs()), 2 ** tb.abs())
    # overflow wraps like C
    big = torch.tensor([3, 7], dtype=torch.int64)
    assert_same(ember.pow(from_torch(big), 40), torch.pow(big, 40))
    u = torch.tensor([3, 200], dtype=torch.uint8)
    assert_same(ember.pow(from_torch(u), 3), torch.pow(u, 3))


def test_bitwise_errors():
    f = ember.ones(2)
    with pytest.raises(RuntimeError):
        ember.bitwise_and(f, f)
    with pytest.raises(RuntimeError):
        f | 1
    with pytest.raises(TypeError):  # as torch: TypeError from the operator, RuntimeError from the op
        ~f
    with pytest.raises(RuntimeError):
        ember.bitwise_not(f)
    with pytest.raises(RuntimeError):
        ember.tensor([1, 2]) & 1.5
    b = ember.tensor([True, False])
    assert_same(b & True, torch.tensor([True, False]) & True)
    assert_same(~b, ~torch.tensor([True, False]))
    assert_same(ember.tensor([5, 3]) ^ True, torch.tensor([5, 3]) ^ True)


# ---- add / sub / rsub / div ----------------------------------------------------------------

@each_dtype()
@pytest.mark.parametrize("name", ["add", "sub", "rsub"])
def test_add_sub_alpha(name, dt):
    rtol, atol = tol(dt)
    e_fn, t_fn = getattr(ember, name), getattr(torch, name)
    for layout in LAYOUTS:
        ea, ta = make_pair((3, 4), dt, layout=layout)
        eb, tb = make_pair((4,), dt, seed=3)
        for alpha in (1, 2, -1, 0.5, True):
            check(e_fn, t_fn, (ea, eb), (ta, tb), rtol, atol, alpha=alpha)
            check(e_fn, t_fn, (ea, 3), (ta, 3), rtol, atol, alpha=alpha)
            check(e_fn, t_fn, (ea, 2.5), (ta, 2.5), rtol, atol, alpha=alpha)
            check(e_fn, t_fn, (ea, True), (ta, True), rtol, atol, alpha=alpha)
    for sa, sb in [((3, 1, 4), (2, 4)), ((), (2,)), ((0, 2), (2,)), ((), ())]:
        ea, ta = make_pair(sa, dt)
        eb, tb = make_pair(sb, dt, seed=3)
        check(e_fn, t_fn, (ea, eb), (ta, tb), rtol, atol)


@each_dtype()
@pytest.mark.parametrize("name", ["add", "sub"])
def test_add_sub_inplace(name, dt):
    rtol, atol = tol(dt)
    for layout in ("contiguous", "transposed", "sliced"):
        for other in ("tensor", 2, 1.5, True):
            ea, ta = make_pair((3, 4), dt, layout=layout)
            if other == "tensor":
                eb, tb = make_pair((4,), dt, seed=5)
            else:
                eb = tb = other
            for alpha in (1, 2, 0.5):
                v0 = ea._version
                r = check(getattr(ember.Tensor, name + "_"), getattr(torch.Tensor, name + "_"), (ea, eb),
                          (ta, tb), rtol, atol, alpha=alpha)
                if r is not None:
                    assert r is ea and ea._version == v0 + 1
                    assert_same(ea, ta, rtol, atol)


@pytest.mark.parametrize("da", ALL)
def test_add_sub_mixed(da):
    for db in ALL:
        ea, ta = make_pair((2, 3), da)
        eb, tb = make_pair((2, 3), db, seed=4)
        rtol, atol = tol("bfloat16" if "bfloat16" in (da, db) else "float16" if "float16" in (da, db) else "x")
        for name in ("add", "sub", "rsub"):
            check(getattr(ember, name), getattr(torch, name), (ea, eb), (ta, tb), rtol, atol)
            check(getattr(ember, name), getattr(torch, name), (ea, eb[1, 2]), (ta, tb[1, 2]), rtol, atol)
            check(getattr(ember, name), getattr(torch, name), (ea, eb), (ta, tb), rtol, atol, alpha=2)


@each_dtype()
def test_div(dt):
    rtol, atol = tol(dt)
    for layout in LAYOUTS:
        ea, ta = make_pair((3, 4), dt, layout=layout, low=-9, high=9)
        eb, tb = make_pair((4,), dt, seed=7, low=1, high=4)
        if dt == "bool":
            eb, tb = ember.ones(4, dtype=ember.bool), torch.ones(4, dtype=torch.bool)
        for mode in (None, "trunc", "floor"):
            for other_e, other_t in ((eb, tb), (-eb, -tb) if dt not in ("bool", "uint8") else (eb, tb),
                                     (3, 3), (-2, -2), (2.5, 2.5), (-0.75, -0.75), (True, True)):
                check(ember.div, torch.div, (ea, other_e), (ta, other_t), rtol, atol, rounding_mode=mode)
                check(ember.div, torch.div, (other_e, ea.abs() + 1 if dt != "bool" else ea),
                      (other_t, ta.abs() + 1 if dt != "bool" else ta), rtol, atol, rounding_mode=mode) \
                    if isinstance(other_e, ember.Tensor) else None
            v0 = ea._version
            ec, tc = ea.clone(), ta.clone()
            r = check(ember.Tensor.div_, torch.Tensor.div_, (ec, eb), (tc, tb), rtol, atol, rounding_mode=mode)
            if r is not None:
                assert r is ec
                assert_same(ec, tc, rtol, atol)
            assert ea._version == v0
    with pytest.raises(RuntimeError, match="rounding_mode"):
        ember.div(ember.ones(2), 2, rounding_mode="round")


def test_div_rounding_exact_values():
    a = torch.tensor([7, -7, 7, -7, 0, 6, -6], dtype=torch.int32)
    b = torch.tensor([2, 2, -2, -2, 3, 4, 4], dtype=torch.int32)
    for mode in (None, "trunc", "floor"):
        assert_same(ember.div(from_torch(a), from_torch(b), rounding_mode=mode), torch.div(a, b, rounding_mode=mode))
        assert_same(ember.div(from_torch(a.double()), from_torch(b.double()), rounding_mode=mode),
                    torch.div(a.double(), b.double(), rounding_mode=mode))
    # int64 values beyond float precision
    a = torch.tensor([2 ** 62 + 1, -(2 ** 62) - 1, 2 ** 63 - 1])
    for mode in ("trunc", "floor"):
        assert_same(ember.div(from_torch(a), 3, rounding_mode=mode), torch.div(a, 3, rounding_mode=mode))
    assert_same(from_torch(a) // 7, a // 7)
    assert_same(from_torch(a) % 7, a % 7)
    assert_same(from_torch(a) % -7, a % -7)


# ---- operators and reflected scalar forms ---------------------------------------------------

@each_dtype()
def test_operators(dt):
    rtol, atol = tol(dt, loose=True)
    ea, ta = make_pair((3, 4), dt, low=1, high=4)
    eb, tb = make_pair((4,), dt, seed=2, low=1, high=3)
    import operator as op
    for f in (op.add, op.sub, op.mul, op.truediv, op.floordiv, op.mod, op.pow, op.and_, op.or_, op.xor,
              op.eq, op.ne, op.lt, op.le, op.gt, op.ge):
        check(f, f, (ea, eb), (ta, tb), rtol, atol)
        for s in (2, 2.5, True, -1):
            if f in (op.floordiv, op.mod) and s is True and dt == "bool":
                continue
            check(f, f, (ea, s), (ta, s), rtol, atol)
            check(f, f, (s, ea), (s, ta), rtol, atol)  # reflected: 2 / t, 2 ** t, 5 // t, 5 % t, 2 - t
    for f in (op.neg, op.invert, abs, op.pos):
        if (f is op.invert and dt in FLOATS) or (f is op.pos and dt == "bool"):
            continue  # operators.py differs from torch here: see test_operator_error_types
        check(f, f, (ea,), (ta,), rtol, atol)
    for f in (op.iadd, op.isub, op.imul, op.itruediv, op.ifloordiv, op.imod, op.ipow, op.iand, op.ior, op.ixor):
        for other in ((eb, tb), (2, 2), (1.5, 1.5)):
            ec, tc = ea.clone(), ta.clone()
            v0 = ec._version
            r = check(f, f, (ec, other[0]), (tc, other[1]), rtol, atol)
            if r is not None:
                assert r is ec and ec._version == v0 + 1
                assert_same(ec, tc, rtol, atol)


def test_reflected_scalar_forms():
    for dt in ("float32", "int64", "int32", "uint8", "float16"):
        e, t = make_pair((5,), dt, low=1, high=4)
        for fn in (lambda x: 2 / x, lambda x: 2 ** x, lambda x: 5 // x, lambda x: 5 % x, lambda x: 2 - x,
                   lambda x: 2.5 - x, lambda x: 1.5 ** x, lambda x: -7 // x, lambda x: -7 % x, lambda x: 3 * x,
                   lambda x: 3 + x, lambda x: 0.5 / x, lambda x: True - x if dt != "bool" else x):
            rtol, atol = tol(dt, loose=True)
            check(fn, fn, (e,), (t,), rtol, atol)


def test_eq_with_non_tensor_is_not_implemented():
    e = ember.ones(2)
    assert (e == "a") is False
    assert (e != None) is True  # noqa: E711
    with pytest.raises(TypeError):
        e + "a"


# ---- activations ---------------------------------------------------------------------------

@each_dtype()
def test_activations(dt):
    rtol, atol = tol(dt, loose=True)
    for layout in LAYOUTS:
        e, t = make_pair((3, 4), dt, layout=layout, low=-4, high=4)
        for approx in ("none", "tanh"):
            check(ember.gelu, F.gelu, (e,), (t,), rtol, atol, approximate=approx)
            check(ember.nn.functional.gelu if hasattr(ember, "nn") else ember.gelu, F.gelu, (e,), (t,), rtol, atol,
                  approximate=approx)
            g, tg = make_pair((3, 4), dt, seed=5)
            check(ember.ops.gelu_backward, torch.ops.aten.gelu_backward, (g, e), (tg, t), rtol, atol,
                  approximate=approx)
        check(ember.softplus, F.softplus, (e,), (t,), rtol, atol)
        check(ember.softplus, F.softplus, (e,), (t,), rtol, atol, beta=2, threshold=3)
        check(ember.softplus, F.softplus, (e,), (t,), rtol, atol, beta=0.5, threshold=1)
        check(ember.leaky_relu, F.leaky_relu, (e,), (t,), rtol, atol)
        check(ember.leaky_relu, F.leaky_relu, (e,), (t,), rtol, atol, negative_slope=0.2)
        check(ember.silu, F.silu, (e,), (t,), rtol, atol)
        check(ember.relu, F.relu, (e,), (t,), rtol, atol)
    for shape in [(), (0, 3)]:
        e, t = make_pair(shape, dt)
        check(ember.gelu, F.gelu, (e,), (t,), rtol, atol)
        check(ember.softplus, F.softplus, (e,), (t,), rtol, atol)
        check(ember.leaky_relu, F.leaky_relu, (e,), (t,), rtol, atol)


def test_activation_tails():
    x = torch.tensor([-50.0, -10.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 10.0, 19.9, 20.1, 50.0, 100.0,
                      float("inf"), -float("inf"), float("nan")])
    e = from_torch(x)
    # torch's float32 kernels are less accurate in the tails (gelu(-3) is off by 1e-4 relative, and
    # gelu(inf) is nan): compare float32 results with torch's float64 ones rounded to float32.
    for dt in ("float32", "float64"):
        ex = e.to(DTYPES[dt][0])
        for fn, efn, kw in ((F.gelu, ember.gelu, {}), (F.gelu, ember.gelu, {"approximate": "tanh"}),
                            (F.softplus, ember.softplus, {}), (F.softplus, ember.softplus, {"beta": -1}),
                            (F.softplus, ember.softplus, {"beta": 2, "threshold": 5}),
                            (F.leaky_relu, ember.leaky_relu, {}), (F.silu, ember.silu, {})):
            assert_same(efn(ex, **kw), fn(x.double(), **kw).to(DTYPES[dt][1]), rtol=2e-7 if dt == "float64" else 2e-5,
                        atol=1e-44 if dt == "float64" else 1e-7)
    with pytest.raises(RuntimeError, match="approximate"):
        ember.gelu(e, approximate="fast")


# ---- clamp / where / lerp / addcmul / addcdiv / nan_to_num / isclose --------------------------

@each_dtype()
def test_clamp(dt):
    rtol, atol = tol(dt)
    for layout in LAYOUTS:
        e, t = make_pair((3, 4), dt, layout=layout, low=-5, high=5)
        lo_e, lo_t = make_pair((4,), dt, seed=2, low=-3, high=0)
        hi_e, hi_t = make_pair((3, 1), dt, seed=3, low=0, high=3)
        for mn, mx in ((-1, 2), (-1.5, 2.5), (None, 1), (0, None), (2, -1), (True, None), (-1, 2.5)):
            check(ember.clamp, torch.clamp, (e, mn, mx), (t, mn, mx), rtol, atol)
            check(ember.clamp, torch.clamp, (e,), (t,), rtol, atol, min=mn, max=mx)
        check(ember.clamp, torch.clamp, (e, lo_e, hi_e), (t, lo_t, hi_t), rtol, atol)
        check(ember.clamp, torch.clamp, (e, lo_e), (t, lo_t), rtol, atol)
        check(ember.clamp, torch.clamp, (e, None, hi_e), (t, None, hi_t), rtol, atol)
        check(ember.Tensor.clamp_min, torch.Tensor.clamp_min, (e, 0), (t, 0), rtol, atol)
        check(ember.Tensor.clamp_max, torch.Tensor.clamp_max, (e, 1), (t, 1), rtol, atol)
        check(ember.Tensor.clip, torch.Tensor.clip, (e, -1, 1), (t, -1, 1), rtol, atol)
        ec, tc = e.clone(), t.clone()
        v0 = ec._version
        r = check(ember.Tensor.clamp_, torch.Tensor.clamp_, (ec, -1, 1), (tc, -1, 1), rtol, atol)
        if r is not None:
            assert r is ec and ec._version == v0 + 1
            assert_same(ec, tc)
        ec, tc = e.clone(), t.clone()
        check(ember.Tensor.clamp_, torch.Tensor.clamp_, (ec, -1.5, 1.5), (tc, -1.5, 1.5), rtol, atol)
    # a mixed-dtype tensor bound
    e, t = make_pair((3, 4), dt)
    lo_e, lo_t = make_pair((4,), "float64", seed=2)
    check(ember.clamp, torch.clamp, (e, lo_e), (t, lo_t), rtol, atol)
    with pytest.raises(RuntimeError):
        ember.clamp(e)


def test_clamp_nan():
    t = torch.tensor([float("nan"), 1.0, -5.0, 5.0])
    e = from_torch(t)
    check(ember.clamp, torch.clamp, (e, -1, 1), (t, -1, 1))
    check(ember.clamp, torch.clamp, (e, from_torch(t.flip(0))), (t, t.flip(0)))
    check(ember.clamp, torch.clamp, (e, float("nan"), 1), (t, float("nan"), 1))


@each_dtype()
def test_where(dt):
    for layout in LAYOUTS:
        ea, ta = make_pair((3, 4), dt, layout=layout)
        eb, tb = make_pair((4,), dt, seed=2)
        ec, tc = make_pair((3, 1), "bool", seed=3)
        check(ember.where, torch.where, (ec, ea, eb), (tc, ta, tb))
        check(ember.where, torch.where, (ec, ea, 2), (tc, ta, 2))
        check(ember.where, torch.where, (ec, 1.5, ea), (tc, 1.5, ta))
        check(ember.where, torch.where, (ec, ea, eb[0]), (tc, ta, tb[0]))
        check(ember.where, torch.where, (ec, 1, 0), (tc, 1, 0))
        check(ember.where, torch.where, (ec, 1.0, 0), (tc, 1.0, 0))
        check(ember.where, torch.where, (ec, True, False), (tc, True, False))
    em, tm = make_pair((3, 4), "float64", seed=5)
    check(ember.where, torch.where, (ec, ea, em), (tc, ta, tm))
    check(ember.where, torch.where, (ec[:0], ea[:0], em[:0]), (tc[:0], ta[:0], tm[:0]))
    with pytest.raises(RuntimeError):
        ember.where(ea.to(ember.float32), ea, eb)
    with pytest.raises(RuntimeError):
        ember.where(ember.ones(2, dtype=ember.bool), ember.ones(3), ember.ones(3))


@each_dtype(FLOATS)
def test_lerp(dt):
    rtol, atol = tol(dt)
    for layout in LAYOUTS:
        ea, ta = make_pair((3, 4), dt, layout=layout)
        eb, tb = make_pair((4,), dt, seed=2)
        ew, tw = make_pair((3, 1), dt, seed=3, low=-0.5, high=1.5)
        for w in (0.25, 0.75, 2, -1.0):
            check(ember.lerp, torch.lerp, (ea, eb, w), (ta, tb, w), rtol, atol)
        check(ember.lerp, torch.lerp, (ea, eb, ew), (ta, tb, tw), rtol, atol)
        ec, tc = ea.clone(), ta.clone()
        v0 = ec._version
        r = check(ember.Tensor.lerp_, torch.Tensor.lerp_, (ec, eb, 0.3), (tc, tb, 0.3), rtol, atol)
        assert r is ec and ec._version == v0 + 1
        assert_same(ec, tc, rtol, atol)


def test_lerp_errors():
    for dt in ("int64", "bool"):
        ea, ta = make_pair((3,), dt)
        check(ember.lerp, torch.lerp, (ea, ea, 1), (ta, ta, 1))
    check(ember.lerp, torch.lerp, (ember.ones(3), ember.ones(3, dtype=ember.float64), 0.5),
          (torch.ones(3), torch.ones(3, dtype=torch.float64), 0.5))


@each_dtype()
@pytest.mark.parametrize("name", ["addcmul", "addcdiv"])
def test_addcmul_addcdiv(name, dt):
    rtol, atol = tol(dt, loose=True)
    for layout in LAYOUTS:
        ea, ta = make_pair((3, 4), dt, layout=layout)
        e1, t1 = make_pair((4,), dt, seed=2)
        e2, t2 = make_pair((3, 1), dt, seed=3, low=1, high=3)
        for value in (1, 0.5, -2, True):
            check(getattr(ember, name), getattr(torch, name), (ea, e1, e2), (ta, t1, t2), rtol, atol, value=value)
        ec, tc = ea.clone(), ta.clone()
        v0 = ec._version
        r = check(getattr(ember.Tensor, name + "_"), getattr(torch.Tensor, name + "_"), (ec, e1, e2), (tc, t1, t2),
                  rtol, atol, value=2)
        if r is not None:
            assert r is ec and ec._version == v0 + 1
            assert_same(ec, tc, rtol, atol)
    ef, tf = make_pair((3, 4), "float64")
    check(getattr(ember, name), getattr(torch, name), (ea, e1, ef), (ta, t1, tf), rtol, atol)


@each_dtype()
def test_nan_to_num(dt):
    if dt in FLOATS:
        t = torch.tensor([float("nan"), float("inf"), -float("inf"), 1.5, -2.0]).to(DTYPES[dt][1])
        e = from_torch(t)
    else:
        e, t = make_pair((5,), dt)
    for kw in ({}, {"nan": 1.0}, {"nan": -1.0, "posinf": 9.0, "neginf": -9.0}, {"posinf": 1e300}):
        check(ember.nan_to_num, torch.nan_to_num, (e,), (t,), **kw)
    ec, tc = e.clone(), t.clone()
    v0 = ec._version
    r = ec.nan_to_num_(nan=2.0)
    tc.nan_to_num_(nan=2.0)
    assert r is ec and ec._version == v0 + 1
    assert_same(ec, tc)
    ev, tv = e[1:], t[1:]  # through a view
    check(ember.nan_to_num, torch.nan_to_num, (ev,), (tv,))


@each_dtype()
def test_isclose(dt):
    ea, ta = make_pair((3, 4), dt)
    eb, tb = make_pair((3, 4), dt, seed=1)
    for kw in ({}, {"rtol": 0.5, "atol": 1.0}, {"equal_nan": True}, {"rtol": 0.0, "atol": 0.0}):
        check(ember.isclose, torch.isclose, (ea, eb), (ta, tb), **kw)
        check(ember.isclose, torch.isclose, (ea, ea), (ta, ta), **kw)
        check(ember.isclose, torch.isclose, (ea, eb[0]), (ta, tb[0]), **kw)
    ef, tf = make_pair((3, 4), "float64" if dt != "float64" else "float32")
    check(ember.isclose, torch.isclose, (ea, ef), (ta, tf))


def test_isclose_special():
    a = torch.tensor([float("nan"), float("inf"), -float("inf"), float("inf"), 1.0, 1.0 + 1e-6, 0.0])
    b = torch.tensor([float("nan"), float("inf"), float("inf"), 1e38, 1.0, 1.0, 1e-9])
    for kw in ({}, {"equal_nan": True}, {"atol": 0.0}):
        check(ember.isclose, torch.isclose, (from_torch(a), from_torch(b)), (a, b), **kw)
    i = torch.tensor([1, 5, 100])
    j = torch.tensor([1, 6, 99])
    check(ember.isclose, torch.isclose, (from_torch(i), from_torch(j)), (i, j), rtol=0.2, atol=0.0)
    check(ember.isclose, torch.isclose, (from_torch(i), from_torch(j)), (i, j), atol=1)


# ---- conversions and copies -----------------------------------------------------------------

_CONV = ("float", "double", "half", "bfloat16", "long", "int", "short", "char", "byte", "bool")


@each_dtype()
def test_conversions(dt):
    for layout in LAYOUTS:
        e, t = make_pair((3, 4), dt, layout=layout, low=-300, high=300)
        for m in _CONV:
            if dt in FLOATS and m in ("byte", "char", "short", "int", "long"):
                e2, t2 = e.trunc() % 100, t.trunc() % 100  # float->int casts of out-of-range values are UB in C
                check(getattr(ember.Tensor, m), getattr(torch.Tensor, m), (e2,), (t2,))
            else:
                check(getattr(ember.Tensor, m), getattr(torch.Tensor, m), (e,), (t,))
        for target in ALL:
            if dt in FLOATS and target in INTS:
                continue
            r = e.to(DTYPES[target][0])
            assert_same(r, t.to(DTYPES[target][1]))
            assert (r is e) == (target == dt)
            assert_same(e.type(DTYPES[target][0]), t.type(DTYPES[target][1]))
    e, t = make_pair((2, 2), dt)
    assert e.to(e.dtype, copy=True) is not e
    assert e.float() is e if dt == "float32" else e.float() is not e
    assert e.type() == f"ember.{dt}"


def test_int_to_smaller_int_wraps():
    t = torch.tensor([-1, 255, 256, 300, -129, 2 ** 40])
    e = from_torch(t)
    for m in ("byte", "char", "short", "int", "bool", "half", "bfloat16", "float"):
        assert_same(getattr(e, m)(), getattr(t, m)())


def test_float64_to_low_precision_rounds_through_float32():
    """torch narrows double to half/bfloat16 through float: some values round differently than directly."""
    x = torch.tensor([-890.74998212, -623.250016, 645.74998631, 1114.50000537, 1 + 2 ** -11 + 2 ** -40],
                     dtype=torch.float64)
    e = from_torch(x)
    for m in ("half", "bfloat16"):
        assert_same(getattr(e, m)(), getattr(x, m)(), rtol=0, atol=0)
        d = ember.zeros(5, dtype=e.half().dtype if m == "half" else ember.bfloat16)
        td = torch.zeros(5, dtype=torch.float16 if m == "half" else torch.bfloat16)
        assert_same(d.copy_(e), td.copy_(x), rtol=0, atol=0)
        assert_same(d.zero_().add_(e), td.zero_().add_(x), rtol=0, atol=0)
        assert_same(d.zero_() + e[0], td.zero_() + x[0], rtol=0, atol=0)
    h = ember.zeros(5, dtype=ember.float16)
    th = torch.zeros(5, dtype=torch.float16)
    for v in x.tolist():
        assert_same(h + v, th + v, rtol=0, atol=0)


def test_float_to_bool_and_special():
    t = torch.tensor([0.0, -0.0, 0.1, float("nan"), float("inf")])
    e = from_torch(t)
    assert_same(e.bool(), t.bool())
    assert_same(e.half(), t.half())
    assert_same(e.bfloat16(), t.bfloat16())
    big = torch.tensor([1e6, 70000.0, 65519.0, 65520.0, -3e38, 3.4e38], dtype=torch.float32)  # overflow to inf
    assert_same(from_torch(big).half(), big.half())
    assert_same(from_torch(big).bfloat16(), big.bfloat16())
    assert_same(from_torch(big.double()).float(), big.double().float())
    # float -> int truncates toward zero
    t = torch.tensor([1.7, -1.7, 2.5, -2.5, 0.0])
    assert_same(from_torch(t).long(), t.long())
    assert_same(from_torch(t.abs()).byte(), t.abs().byte())
    # rounding to nearest even when narrowing floats, and ints beyond float precision
    t = torch.tensor([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8 + 2 ** -20], dtype=torch.float64)
    for m in ("half", "bfloat16", "float"):
        assert_same(getattr(from_torch(t), m)(), getattr(t, m)(), rtol=0, atol=0)
    i = torch.tensor([2 ** 24 + 1, 2 ** 53 + 1, -(2 ** 62) - 3, 2049, 4097])
    for m in ("half", "bfloat16", "float", "double"):
        assert_same(getattr(from_torch(i), m)(), getattr(i, m)(), rtol=0, atol=0)


@each_dtype()
def test_copy_(dt):
    for layout in ("contiguous", "transposed", "sliced"):
        for src_dt in ALL:
            ed, td = make_pair((3, 4), dt, layout=layout)
            es, ts = make_pair((4,), src_dt, seed=9, low=0, high=5)
            v0 = ed._version
            r = ed.copy_(es)
            td.copy_(ts)
            assert r is ed and ed._version == v0 + 1
            assert_same(ed, td)
    # a source overlapping the destination: torch refuses, ember copies as if from a clone
    ed, td = make_pair((3, 3), dt)
    ed.copy_(ed.t())
    assert_same(ed, td.t().clone())
    ed, td = make_pair((3, 3), dt)
    es, ts = make_pair((), dt, seed=4)
    ed.copy_(es)
    td.copy_(ts)
    assert_same(ed, td)
    with pytest.raises(RuntimeError):
        ed.copy_(ember.ones(2, dtype=ed.dtype))


def test_copy_into_view_writes_base():
    base = ember.zeros(3, 4)
    tb = torch.zeros(3, 4)
    src = ember.arange(3, dtype=ember.int64)
    base[:, 2].copy_(src)
    tb[:, 2].copy_(torch.arange(3))
    assert_same(base, tb)
    assert base._version == 1
    base[1] = 7.5
    tb[1] = 7.5
    assert_same(base, tb)
    assert base._version == 2
    with pytest.raises(TypeError):
        base.copy_([1, 2])  # not a tensor


@each_dtype()
def test_fill_zero_clone(dt):
    for layout in ("contiguous", "transposed", "sliced"):
        e, t = make_pair((3, 4), dt, layout=layout)
        for v in (0, 1, True, 2.5, -1):
            if dt in INTS + ("bool",) and isinstance(v, float):
                continue
            if dt == "uint8" and v == -1:
                continue
            ec, tc = e.clone(), t.clone()
            v0 = ec._version
            r = ec.fill_(v)
            tc.fill_(v)
            assert r is ec and ec._version == v0 + 1
            assert_same(ec, tc)
        ec, tc = e.clone(), t.clone()
        ec.fill_(ember.tensor(3, dtype=ember.int64))
        tc.fill_(torch.tensor(3))
        assert_same(ec, tc)
        with pytest.raises(RuntimeError):
            ec.fill_(ember.ones(2))
        ec, tc = e.clone(), t.clone()
        v0 = ec._version
        assert ec.zero_() is ec and ec._version == v0 + 1
        assert_same(ec, tc.zero_())
        c = e.clone()
        assert_same(c, t.clone())
        assert c.stride() == t.clone().stride() and c._base is None and c.data_ptr() != e.data_ptr()  # preserved
        c.fill_(1)
        assert_same(e, t)  # the source is untouched
    base, tb = make_pair((3, 4), dt)
    base[1:, ::2].fill_(1)
    tb[1:, ::2].fill_(1)
    assert_same(base, tb)
    base[:, 1].zero_()
    tb[:, 1].zero_()
    assert_same(base, tb)
    assert base._version == 2


def test_fill_casts_like_torch():
    for dt in INTS:
        e, t = make_pair((3,), dt)
        check(ember.Tensor.fill_, torch.Tensor.fill_, (e, 2.7), (t, 2.7))
        for v in (-1, 255, 256, -129, -255, -256, 2 ** 31, 2 ** 63 - 1, 1e19, float("nan"), float("inf")):
            check(ember.Tensor.fill_, torch.Tensor.fill_, (e, v), (t, v))  # out of range: RuntimeError
        check(ember.Tensor.fill_, torch.Tensor.fill_, (e, ember.tensor(300)), (t, torch.tensor(300)))  # wraps
    for dt in FLOATS:
        e, t = make_pair((3,), dt)
        for v in (1e6, 65519.0, 1e300, float("inf"), -float("nan"), 1 + 2 ** -11 + 2 ** -30, 3):
            check(ember.Tensor.fill_, torch.Tensor.fill_, (e, v), (t, v), rtol=0, atol=0)
        for v in (1e6, 1 + 2 ** -11 + 2 ** -30):
            ev, tv = ember.tensor(v, dtype=ember.float64), torch.tensor(v, dtype=torch.float64)
            check(ember.Tensor.fill_, torch.Tensor.fill_, (e, ev), (t, tv), rtol=0, atol=0)
    e, t = make_pair((3,), "float16")
    check(ember.Tensor.fill_, torch.Tensor.fill_, (e, 1e6), (t, 1e6))
    e, t = make_pair((3,), "bool")
    check(ember.Tensor.fill_, torch.Tensor.fill_, (e, 0.5), (t, 0.5))
    check(ember.Tensor.fill_, torch.Tensor.fill_, (e, 2), (t, 2))


# ---- in-place semantics shared by every op ---------------------------------------------------

def test_inplace_refuses_impossible_casts():
    i = ember.tensor([1, 2, 3])
    for f in (lambda x: x.add_(1.5), lambda x: x.mul_(0.5), lambda x: x.div_(2), lambda x: x.sub_(ember.ones(3)),
              lambda x: x.pow_(0.5), lambda x: x.exp_(), lambda x: x.clamp_(0.5, 2)):
        v0 = i._version
        with pytest.raises(RuntimeError, match="can't be cast"):
            f(i)
        assert i._version == v0
        assert i.tolist() == [1, 2, 3]
    b = ember.tensor([True, False])
    with pytest.raises(RuntimeError):
        b.add_(2)
    with pytest.raises(RuntimeError):
        b.mul_(ember.tensor([1, 2]))
    with pytest.raises(RuntimeError):
        i.add_(1, alpha=0.5)
    u = ember.tensor([1, 2], dtype=ember.uint8)
    u.add_(ember.tensor([-1, 300]))  # int64 -> uint8 is allowed (wraps)
    assert u.tolist() == (torch.tensor([1, 2], dtype=torch.uint8).add_(torch.tensor([-1, 300]))).tolist()
    f16 = ember.tensor([1.0, 2.0], dtype=ember.float16)
    f16.add_(ember.tensor([1.0, 2.0], dtype=ember.float64))
    assert f16.dtype is ember.float16 and f16.tolist() == [2.0, 4.0]


def test_inplace_on_view_shares_version_and_base():
    base = ember.ones(4, 4)
    tb = torch.ones(4, 4)
    v = base.t()[1:3]
    tv = tb.t()[1:3]
    v.mul_(3).add_(1)
    tv.mul_(3).add_(1)
    assert base._version == v._version == 2
    assert_same(base, tb)
    v += 1
    tv += 1
    v *= 2
    tv *= 2
    v /= 4
    tv /= 4
    v -= 1
    tv -= 1
    assert base._version == 6
    assert_same(base, tb)


def test_inplace_with_aliasing_input():
    """Inputs overlapping self: torch refuses most of these; ember reads the inputs first (clone semantics)."""
    a = ember.arange(6, dtype=ember.float32)
    ta = torch.arange(6, dtype=torch.float32)
    a[1:].add_(a[:-1])
    ta[1:].add_(ta[:-1].clone())
    assert_same(a, ta)
    for dt in ("float32", "int64", "float16"):
        e, t = make_pair((3, 3), dt, low=1, high=3)
        for f in (lambda x, y: x.add_(y), lambda x, y: x.mul_(y), lambda x, y: x.sub_(y, alpha=2),
                  lambda x, y: x.clamp_(min=y), lambda x, y: x.addcmul_(y, y) if dt != "int64" else x.add_(y)):
            ec, tc = e.clone(), t.clone()
            f(ec, ec.t())
            f(tc, tc.t().clone())
            assert_same(ec, tc)
            ec, tc = e.clone(), t.clone()
            f(ec, ec)
            f(tc, tc.clone())
            assert_same(ec, tc)


def test_inplace_into_expanded_tensor_refused():
    for f in (lambda x: x.add_(1), lambda x: x.exp_(), lambda x: x.mul_(2), lambda x: x.clamp_(0, 1),
              lambda x: x.lerp_(x, 0.5), lambda x: x.addcmul_(x, x), lambda x: x.nan_to_num_(),
              lambda x: x.eq_(1), lambda x: x.copy_(x.clone()), lambda x: x.fill_(1), lambda x: x.zero_(),
              lambda x: x.neg_(), lambda x: x.sub_(1, alpha=2), lambda x: x.div_(2), lambda x: x.pow_(2)):
        e, t = ember.zeros(1, 4), torch.zeros(1, 4)
        check(f, f, (e.expand(3, 4),), (t.expand(3, 4),))
        assert_same(e, t)
        check(f, f, (e.expand(1, 4),), (t.expand(1, 4),))  # size-1 expanded dims are fine
        assert_same(e, t)


def test_inplace_errors_leave_self_untouched():
    for dt in ("float32", "int32", "float16"):
        e, t = make_pair((3, 1), dt, low=1, high=3)
        big, tbig = make_pair((3, 4), dt, low=1, high=3, seed=1)
        for f in (lambda x, y: x.add_(y), lambda x, y: x.sub_(y, alpha=2), lambda x, y: x.mul_(y),
                  lambda x, y: x.div_(y) if dt != "int32" else x.floor_divide_(y), lambda x, y: x.remainder_(y),
                  lambda x, y: x.clamp_(min=y), lambda x, y: x.clamp_(x, y), lambda x, y: x.clamp_(y, y),
                  lambda x, y: x.addcmul_(y, y), lambda x, y: x.addcdiv_(y, y),
                  lambda x, y: x.lerp_(y, 0.3) if dt != "int32" else x.add_(y),
                  lambda x, y: x.copy_(y)):
            ec, tc = e.clone(), t.clone()
            v0 = ec._version
            check(f, f, (ec, big), (tc, tbig))
            assert_same(ec, t)  # unchanged
            assert ec._version == v0
    i = ember.tensor([4, 5, 6])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        i.floor_divide_(ember.tensor([1, 0, 1]))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        i.remainder_(0)
    assert i.tolist() == [4, 5, 6] and i._version == 0


def test_inplace_fast_paths_match_generic():
    """Same-dtype in-place ops write straight into self; mixed/low-precision ones go through a cast."""
    for dt in ALL:
        for other_dt in ("float64", "int64", dt):
            e, t = make_pair((3, 4), dt, low=1, high=3, layout="transposed")
            o, to_ = make_pair((4,), other_dt, low=1, high=2, seed=3)
            for name, args in (("add_", (o,)), ("sub_", (o,)), ("mul_", (o,)), ("div_", (o,)), ("clamp_", (o, None)),
                               ("clamp_", (None, 2)), ("addcmul_", (o, o)), ("addcdiv_", (o, o)), ("lerp_", (o, 0.25)),
                               ("lerp_", (o, 0.75)), ("exp_", ()), ("neg_", ()), ("floor_", ()), ("sqrt_", ())):
                targs = tuple(to_ if a is o else a for a in args)
                ec, tc = e.clone(), t.clone()
                r = check(getattr(ember.Tensor, name), getattr(torch.Tensor, name), (ec, *args), (tc, *targs),
                          *tol(dt, loose=True))
                if r is not None:
                    assert r is ec
                    assert_same(ec, tc, *tol(dt, loose=True))


def test_erf_gelu_large_and_strided():
    """erf in float32 runs in blocks past 131072 elements."""
    x = torch.randn(300, 700, generator=torch.Generator().manual_seed(0)) * 3
    e = from_torch(x)
    assert_same(ember.erf(e), torch.erf(x), rtol=2e-6, atol=1e-6)
    assert_same(ember.erf(e.t()), torch.erf(x.t()), rtol=2e-6, atol=1e-6)
    assert_same(ember.erf(e[:, ::3]), torch.erf(x[:, ::3]), rtol=2e-6, atol=1e-6)
    # torch's float32 gelu is off by up to 1.2e-6 in the tails, ember's by 0.9e-6: compare with float64
    assert_same(ember.gelu(e), F.gelu(x.double()).float(), rtol=2e-6, atol=1e-6)
    assert_same(ember.gelu(e), F.gelu(x), rtol=2e-6, atol=3e-6)
    assert_same(ember.erf(e.double()), torch.erf(x.double()), rtol=1e-14, atol=1e-15)
    assert_same(ember.erf(e.half()), torch.erf(x.half()))


def test_scalar_kinds():
    e = ember.tensor([1, 2, 3])
    assert (e * np.int64(2)).dtype is ember.int64
    assert (e * np.float64(0.5)).dtype is ember.float32
    assert_same(e * np.float32(0.5), torch.tensor([1, 2, 3]) * 0.5)
    big = ember.tensor([1], dtype=ember.int8)
    assert_same(big + 1000, torch.tensor([1], dtype=torch.int8) + 1000)
    assert_same(big * 2 ** 40, torch.tensor([1], dtype=torch.int8) * 2 ** 40)
    f16 = ember.tensor([1.0], dtype=ember.float16)
    assert_same(f16 * 1e10, torch.tensor([1.0], dtype=torch.float16) * 1e10)


def test_to_torch_roundtrip_sanity():
    e, t = make_pair((2, 3), "bfloat16")
    assert_same(from_torch(to_torch(e)), t)
    assert E2T[e.dtype] == t.dtype


def test_operator_error_types():
    with pytest.raises(TypeError):
        ~ember.ones(2)
    with pytest.raises(RuntimeError):
        +ember.ones(2, dtype=ember.bool)


def test_numpy_scalar_operands():
    e = ember.tensor([1, 2, 3])
    assert isinstance(np.float64(0.5) * e, ember.Tensor)
    assert isinstance(e + np.bool_(True), ember.Tensor)


# ---- the op's rules in its meta (issue 12) -----------------------------------------------------------

def test_gelu_of_integers_is_refused_by_meta_and_kernel():
    """The meta said int64 for gelu of an int64 tensor while the kernel raised (as torch does)."""
    i = ember.arange(4)
    for fn in (ember.dispatch.OPS["gelu"].meta, ember.nn.functional.gelu):
        with pytest.raises(NotImplementedError, match="gelu"):
            fn(i)
    with pytest.raises(NotImplementedError):
        F.gelu(torch.arange(4))
    with pytest.raises(NotImplementedError, match="gelu_backward"):
        ember.dispatch.OPS["gelu_backward"].meta(i, i)


def test_metas_read_the_default_dtype_when_called():
    i = ember.arange(4)
    metas = {n: ember.dispatch.OPS[n].meta for n in ("exp", "atan2", "div", "_rdiv")}
    ember.set_default_dtype(ember.float64)
    try:
        assert metas["exp"](i) == ((4,), ember.float64) and ember.exp(i).dtype is ember.float64
        assert metas["atan2"](i, i)[1] is ember.float64 and ember.atan2(i, i).dtype is ember.float64
        assert metas["div"](i, 2)[1] is ember.float64 and metas["_rdiv"](i, 2)[1] is ember.float64
    finally:
        ember.set_default_dtype(ember.float32)
    assert metas["exp"](i)[1] is ember.float32 and ember.exp(i).dtype is ember.float32


def test_div_meta_with_a_rounding_mode_keeps_the_promoted_dtype():
    i = ember.arange(4)
    meta = ember.dispatch.OPS["div"].meta
    assert meta(i, 2, "floor") == ((4,), ember.int64) == (tuple(i.div(2, rounding_mode="floor").shape), ember.int64)
    assert meta(i, 2, None)[1] is ember.float32


def test_inplace_metas_check_the_destination():
    a, i = ember.ones(3), ember.arange(3)
    OPS = ember.dispatch.OPS
    assert OPS["add_"].meta(a, 2.5, 1) == ((3,), ember.float32)
    with pytest.raises(RuntimeError, match="can't be cast"):
        OPS["exp_"].meta(i)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        OPS["mul_"].meta(a, ember.ones(2, 3))
    with pytest.raises(RuntimeError, match="can't be cast"):
        OPS["add_"].meta(i, a, 1)
    with pytest.raises(RuntimeError, match="without overflow"):
        OPS["fill_"].meta(ember.zeros(2, dtype=ember.uint8), 256)


def test_writes_into_empty_tensors_with_zero_strides():
    """NumPy gives an empty array zero strides: that is no overlap (copy_ and the in-place ops raised)."""
    e = ember.from_numpy(np.zeros((0, 3), np.float32))
    assert 0 in e.stride()
    assert e.copy_(ember.ones(3)).shape == (0, 3)
    assert e.add_(1.0).shape == e.lerp_(ember.ones(3), 0.5).shape == (0, 3)


def test_gelu_backward_promotes_like_torch():
    g, x = make_pair((5,), "float32")[0], ember.arange(-2, 3)
    expected = torch.ops.aten.gelu_backward(to_torch(g), to_torch(x))
    assert_same(ember.dispatch.OPS["gelu_backward"].fn(g, x), expected)
    assert ember.dispatch.OPS["gelu_backward"].meta(g, x) == ((5,), ember.float32)

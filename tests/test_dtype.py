"""dtypes and type promotion against PyTorch: promote_types, result_type, can_cast, default dtype."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import ember
from helpers import DTYPES, E2T, FLOATS, INTS, assert_same

NAMES = tuple(DTYPES)
PAIRS = [(a, b) for a in NAMES for b in NAMES]
SCALARS = [True, False, 0, 3, -7, 2 ** 40, 2.5, -0.0, float("inf")]


def e_t(name, shape=(2,)):
    e_dt, t_dt = DTYPES[name]
    return ember.zeros(shape, dtype=e_dt), torch.zeros(shape, dtype=t_dt)


@pytest.fixture
def restore_default_dtype():
    yield
    ember.set_default_dtype(ember.float32)
    torch.set_default_dtype(torch.float32)


def test_promote_types_every_pair():
    for a, b in PAIRS:
        got = ember.promote_types(DTYPES[a][0], DTYPES[b][0])
        assert E2T[got] == torch.promote_types(DTYPES[a][1], DTYPES[b][1]), (a, b)


def test_can_cast_every_pair():
    for a, b in PAIRS:
        assert ember.can_cast(DTYPES[a][0], DTYPES[b][0]) == torch.can_cast(DTYPES[a][1], DTYPES[b][1]), (a, b)


def test_dtype_functions_refuse_non_dtypes():
    with pytest.raises(TypeError):
        ember.promote_types(ember.float32, 1)
    with pytest.raises(TypeError):
        ember.promote_types("float32", ember.float32)
    with pytest.raises(TypeError):
        ember.can_cast(ember.float32, 3)
    with pytest.raises(TypeError):
        ember.result_type(ember.float32, 1)
    with pytest.raises(TypeError):
        ember.result_type(ember.ones(1), "a")


@pytest.mark.parametrize("shapes", [((2,), (2,)), ((), (2,)), ((2,), ()), ((), ()), ((0,), ())])
def test_result_type_tensor_pairs(shapes):
    """dimensioned > zero-dim: a zero-dim tensor only matters when it brings a higher category."""
    for a, b in PAIRS:
        ea, ta = e_t(a, shapes[0])
        eb, tb = e_t(b, shapes[1])
        assert E2T[ember.result_type(ea, eb)] == torch.result_type(ta, tb), (a, b, shapes)


@pytest.mark.parametrize("shape", [(2,), ()])
def test_result_type_tensor_and_scalar(shape):
    for name in NAMES:
        e, t = e_t(name, shape)
        for s in SCALARS:
            assert E2T[ember.result_type(e, s)] == torch.result_type(t, s), (name, shape, s)
            assert E2T[ember.result_type(s, e)] == torch.result_type(s, t), (name, shape, s)


def test_result_type_scalars_only():
    for a in SCALARS:
        for b in SCALARS:
            assert E2T[ember.result_type(a, b)] == torch.result_type(a, b), (a, b)


def test_result_type_many_operands():
    """ember takes any number of operands: the same as folding torch's rules over all of them."""
    i8, u8, f16 = ember.ones(2, dtype=ember.int8), ember.ones(2, dtype=ember.uint8), ember.ones((), dtype=ember.float16)
    assert ember.result_type(i8, u8, 2.5) is ember.float32
    assert ember.result_type(i8, u8, f16) is ember.float16
    assert ember.result_type(i8, ember.ones((), dtype=ember.int64), True) is ember.int8
    assert ember.result_type(ember.ones((), dtype=ember.bool), 1, 1.5) is ember.float32
    assert ember.result_type(u8, ember.ones((), dtype=ember.int8), 1) is ember.uint8


def test_numpy_scalars_promote_like_python_scalars():
    e = ember.ones(2, dtype=ember.int16)
    assert ember.result_type(e, np.int64(3)) is ember.int16
    assert ember.result_type(e, np.float64(3)) is ember.float32
    assert ember.result_type(e, np.bool_(True)) is ember.int16


def test_dtype_attributes():
    for name in NAMES:
        e, t = DTYPES[name]
        assert e.itemsize == t.itemsize, name
        assert e.is_floating_point == t.is_floating_point, name
        assert e.is_integer == (not t.is_floating_point and t is not torch.bool), name  # bool is not an integer
        assert e.is_signed == t.is_signed, name
        assert e.is_complex is False
        assert repr(e) == f"ember.{name}"
        assert str(e) == f"ember.{name}"
        assert pickle.loads(pickle.dumps(e)) is e
        assert ember.ones(1, dtype=e).element_size() == t.itemsize
    assert ember.float is ember.float32 and ember.double is ember.float64 and ember.half is ember.float16
    assert ember.long is ember.int64 and ember.int is ember.int32 and ember.short is ember.int16


def test_default_dtype(restore_default_dtype):
    assert ember.get_default_dtype() is ember.float32
    assert ember.tensor([1.0]).dtype is ember.float32
    for name in ("float64", "float16", "bfloat16"):
        e_dt, t_dt = DTYPES[name]
        ember.set_default_dtype(e_dt)
        torch.set_default_dtype(t_dt)
        assert ember.get_default_dtype() is e_dt
        assert ember.tensor([1.0]).dtype is e_dt
        assert ember.tensor([1]).dtype is ember.int64
        assert ember.result_type(ember.ones(2, dtype=ember.int32), 2.5) is e_dt
        assert ember.result_type(1, 2.0) is e_dt
        for a in NAMES:
            e, t = e_t(a)
            assert E2T[ember.result_type(e, 2.5)] == torch.result_type(t, 2.5), (name, a)
        # ops follow it: int tensor * 2.5, integer true division, exp of ints
        i, ti = ember.tensor([1, 2]), torch.tensor([1, 2])
        assert_same(i * 2.5, ti * 2.5)
        assert_same(i / 2, ti / 2)
        assert_same(ember.exp(i), torch.exp(ti))
        assert_same(ember.sqrt(i), torch.sqrt(ti))
    ember.set_default_dtype(ember.float32)
    assert ember.tensor([1.0]).dtype is ember.float32
    with pytest.raises(TypeError):
        ember.set_default_dtype(ember.int32)
    with pytest.raises(TypeError):
        ember.set_default_dtype("float64")
    assert ember.get_default_dtype() is ember.float32


def test_default_dtype_is_process_wide(restore_default_dtype):
    import threading
    ember.set_default_dtype(ember.float64)
    seen = []
    th = threading.Thread(target=lambda: seen.append((ember.get_default_dtype(), ember.tensor([1.0]).dtype)))
    th.start()
    th.join()
    assert seen == [(ember.float64, ember.float64)]


def test_promotion_through_ops():
    def pair(name, values, shape=None):
        t = torch.tensor(values, dtype=DTYPES[name][1])
        from helpers import from_torch
        return from_torch(t), t

    i, ti = pair("int64", [1, 2, 3])
    assert (i * 2.5).dtype is ember.float32
    assert_same(i * 2.5, ti * 2.5)
    h, th = pair("float16", [1.0, 2.0])
    assert (h + 1.0).dtype is ember.float16
    assert (h + 1).dtype is ember.float16
    assert (h + ember.tensor(1.0, dtype=ember.float64)).dtype is ember.float16  # zero-dim: same category
    assert (h + ember.tensor([1.0, 1.0], dtype=ember.float64)).dtype is ember.float64
    u, tu = pair("uint8", [1, 200])
    s, ts = pair("int8", [-1, 100])
    assert_same(u + s, tu + ts)
    assert (u + s).dtype is ember.int16
    b, tb = pair("bool", [True, False])
    assert_same(b + b, tb + tb)
    assert (b + b).dtype is ember.bool
    assert (b * b).dtype is ember.bool
    assert_same(b + 1, tb + 1)
    assert_same(b + 1.5, tb + 1.5)
    assert_same(b + True, tb + True)
    i32, ti32 = pair("int32", [1, 2])
    assert (i32 + ember.tensor(5)).dtype is ember.int32  # zero-dim int64 doesn't widen
    assert (i32 + 2 ** 33).dtype is ember.int32
    assert_same(i32 + ember.tensor(5), ti32 + torch.tensor(5))
    assert (i32 + ember.tensor(5.0, dtype=ember.float64)).dtype is ember.float64
    assert (ember.tensor(5) + ember.tensor(5.0, dtype=ember.float16)).dtype is ember.float16
    bf, tbf = pair("bfloat16", [1.5, 2.0])
    assert_same(bf + h, tbf + th)
    assert (bf + h).dtype is ember.float32
    assert (i32 / i32).dtype is ember.float32
    assert (i32 // i32).dtype is ember.int32
    assert (u == 1.5).dtype is ember.bool
    assert (i32 < ember.tensor(1.5)).dtype is ember.bool
    assert_same(i32 < ember.tensor(1.5), ti32 < torch.tensor(1.5))  # compared in float, not truncated
    assert_same(u == -56, tu == -56)  # the scalar wraps to uint8 like C: 200 == -56 (mod 256)


@pytest.mark.parametrize("op", ["add", "mul", "sub", "div", "maximum", "eq", "atan2", "remainder"])
def test_promotion_matches_torch_for_real_ops(op):
    from helpers import make_pair
    for a, b in PAIRS:
        if op == "sub" and "bool" in (a, b):
            continue
        ea, ta = make_pair((2, 2), a, low=1, high=3, seed=1)
        eb, tb = make_pair((2, 2), b, low=1, high=3, seed=2)
        if b == "uint8" or b == "bool":
            eb, tb = ember.ones((2, 2), dtype=eb.dtype), torch.ones((2, 2), dtype=tb.dtype)
        for x, y, tx, ty in ((ea, eb, ta, tb), (ea, eb[0, 0], ta, tb[0, 0]), (ea[0, 0], eb, ta[0, 0], tb)):
            try:
                expected = getattr(torch, op)(tx, ty)
            except (RuntimeError, NotImplementedError):
                with pytest.raises(RuntimeError):
                    getattr(ember, op)(x, y)
                continue
            got = getattr(ember, op)(x, y)
            assert E2T[got.dtype] == expected.dtype, (op, a, b)


def test_inplace_keeps_self_dtype_and_refuses_unsafe_casts():
    for a, b in PAIRS:
        ea, ta = e_t(a)
        eb, tb = e_t(b)
        try:
            ta.add_(tb)
        except RuntimeError:
            with pytest.raises(RuntimeError):
                ea.add_(eb)
            continue
        assert ea.add_(eb).dtype is ea.dtype
    for name in INTS + ("bool",):
        e, _ = e_t(name)
        with pytest.raises(RuntimeError, match="can't be cast"):
            e.mul_(1.5)
    for name in FLOATS:
        e, t = e_t(name)
        assert e.mul_(ember.ones(2, dtype=ember.float64)).dtype is e.dtype

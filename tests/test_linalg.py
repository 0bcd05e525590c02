"""Linear algebra (matmul family, addmm family, einsum, tensordot, linear) against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from helpers import DTYPES, LAYOUTS, assert_same, from_torch, make_pair

# The reference only: torch's intra-op thread pool costs milliseconds per tiny op on a busy machine.
torch.set_num_threads(1)

MM_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8")
TOL = {"float16": dict(rtol=3e-3, atol=3e-3), "bfloat16": dict(rtol=2e-2, atol=2e-2)}


def _pair(shape, dtype, layout="contiguous", seed=0):
    if shape == ():  # make_pair's np.ascontiguousarray turns 0-d data into shape (1,)
        e, t = make_pair((1,), dtype, seed=seed, low=-3, high=3)
        return e.reshape(()), t.reshape(())
    return make_pair(shape, dtype, layout=layout, seed=seed, low=-3, high=3)


def check(e, t, dtype=None):
    assert_same(e, t, **TOL.get(dtype, {}))


# ---- matmul ----------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)), ((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 2, 3), (3, 4)),
    ((3,), (2, 3, 4)), ((2, 2, 3), (3,)), ((2, 1, 2, 3), (3, 3, 2)), ((1, 2, 3), (4, 3, 2)),
    ((2, 2, 3), (2, 3, 4)), ((2, 0), (0, 3)), ((0, 3), (3, 2)), ((0, 2, 3), (3, 4)), ((0,), (0,)),
    ((4, 1, 2, 5), (1, 3, 5, 2)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", MM_DTYPES)
def test_matmul_shapes_dtypes(shapes, dtype):
    (ea, ta), (eb, tb) = _pair(shapes[0], dtype, seed=1), _pair(shapes[1], dtype, seed=2)
    check(ember.matmul(ea, eb), torch.matmul(ta, tb), dtype)
    check(ea @ eb, ta @ tb, dtype)
    check(ea.matmul(eb), ta.matmul(tb), dtype)


@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", LAYOUTS)
@pytest.mark.parametrize("dtype", ("float32", "float64", "int64", "bfloat16"))
def test_matmul_layouts(la, lb, dtype):
    for sa, sb in (((4, 3), (3, 5)), ((2, 4, 3), (2, 3, 5)), ((2, 4, 3), (3, 5))):
        (ea, ta), (eb, tb) = _pair(sa, dtype, la, seed=3), _pair(sb, dtype, lb, seed=4)
        check(ea @ eb, ta @ tb, dtype)


def test_matmul_does_not_modify_or_alias_inputs():
    ea, ta = _pair((3, 4), "float32", "transposed")
    eb, tb = _pair((4, 2), "float32", "sliced")
    r = ea @ eb
    r.zero_()
    assert_same(ea, ta)
    assert_same(eb, tb)


def test_matmul_integer_exact():
    a = torch.tensor([[2 ** 40 + 1, 3], [5, -(2 ** 41) + 7]], dtype=torch.int64)
    b = torch.tensor([[2 ** 20 + 3, 1], [7, 2 ** 19 - 1]], dtype=torch.int64)
    assert_same(from_torch(a) @ from_torch(b), a @ b)
    a32 = torch.tensor([[70000, 3], [5, -70000]], dtype=torch.int32)
    assert_same(from_torch(a32) @ from_torch(a32), a32 @ a32)  # wraps like int32 arithmetic


def test_matmul_lowp_dtype_preserved():
    for dt in ("float16", "bfloat16"):
        (ea, ta), (eb, tb) = _pair((3, 8), dt), _pair((8, 2), dt, seed=5)
        r = ea @ eb
        assert r.dtype is DTYPES[dt][0]
        check(r, ta @ tb, dt)


@pytest.mark.parametrize("sa,sb,msg", [
    ((3,), (4,), r"inconsistent tensor size, expected tensor \[3\] and src \[4\]"),
    ((2, 3), (4, 5), r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"),
    ((3,), (4, 5), r"mat1 and mat2 shapes cannot be multiplied \(1x3 and 4x5\)"),
    ((2, 3), (4,), r"size mismatch, got input \(2\), mat \(2x3\), vec \(4\)"),
    ((2, 2, 3), (2, 4, 5), r"shapes cannot be multiplied"),
    ((3, 2, 3), (2, 3, 5), r"batch dimensions"),
    ((), (3,), r"both arguments to matmul need to be at least 1D, but they are 0D and 1D"),
    ((3,), (), r"at least 1D, but they are 1D and 0D"),
])
def test_matmul_shape_errors(sa, sb, msg):
    a, b = ember.zeros(sa), ember.zeros(sb)
    with pytest.raises(RuntimeError, match=msg):
        ember.matmul(a, b)
    with pytest.raises(RuntimeError):
        torch.matmul(torch.zeros(sa), torch.zeros(sb))


def test_matmul_dtype_errors():
    with pytest.raises(RuntimeError, match=r"expected m1 and m2 to have the same dtype, but got: float != double"):
        ember.zeros(2, 3) @ ember.zeros(3, 4, dtype=ember.float64)
    with pytest.raises(RuntimeError, match=r"long int != double"):
        ember.zeros(2, 3, dtype=ember.int64) @ ember.zeros(3, 4, dtype=ember.float64)
    with pytest.raises(RuntimeError, match=r"c10::Half != c10::BFloat16"):
        ember.zeros(2, 3, dtype=ember.float16) @ ember.zeros(3, dtype=ember.bfloat16)
    with pytest.raises(RuntimeError, match=r"expected both vectors to have same dtype, but found Float and Double"):
        ember.zeros(3) @ ember.zeros(3, dtype=ember.float64)
    with pytest.raises(NotImplementedError, match="Bool"):
        ember.zeros(2, 3, dtype=ember.bool) @ ember.zeros(3, 2, dtype=ember.bool)
    with pytest.raises(TypeError, match="must be Tensor"):
        ember.matmul(ember.zeros(2), [1.0, 2.0])


# ---- mm / bmm / mv / dot / outer ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", MM_DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_mm_bmm_mv(dtype, layout):
    (ea, ta), (eb, tb) = _pair((3, 4), dtype, layout, 1), _pair((4, 2), dtype, layout, 2)
    check(ember.mm(ea, eb), torch.mm(ta, tb), dtype)
    check(ea.mm(eb), ta.mm(tb), dtype)
    (ea, ta), (eb, tb) = _pair((2, 3, 4), dtype, layout, 1), _pair((2, 4, 5), dtype, layout, 2)
    check(ember.bmm(ea, eb), torch.bmm(ta, tb), dtype)
    (ea, ta), (ev, tv) = _pair((3, 4), dtype, layout, 1), _pair((4,), dtype, layout, 2)
    check(ember.mv(ea, ev), torch.mv(ta, tv), dtype)
    check(ea.mv(ev), ta.mv(tv), dtype)


def test_mm_bmm_mv_empty():
    for e, t in ((ember.mm(ember.zeros(2, 0), ember.zeros(0, 3)), torch.mm(torch.zeros(2, 0), torch.zeros(0, 3))),
                 (ember.bmm(ember.zeros(0, 2, 3), ember.zeros(0, 3, 4)), torch.bmm(torch.zeros(0, 2, 3),
                                                                                  torch.zeros(0, 3, 4))),
                 (ember.mv(ember.zeros(0, 3), ember.zeros(3)), torch.mv(torch.zeros(0, 3), torch.zeros(3)))):
        assert_same(e, t)


def test_mm_bmm_mv_errors():
    with pytest.raises(RuntimeError, match="self must be a matrix"):
        ember.mm(ember.zeros(3), ember.zeros(3, 4))
    with pytest.raises(RuntimeError, match="mat2 must be a matrix"):
        ember.mm(ember.zeros(2, 3), ember.zeros(3))
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
        ember.mm(ember.zeros(2, 3), ember.zeros(4, 5))
    with pytest.raises(RuntimeError, match="same dtype, but got: float != double"):
        ember.mm(ember.zeros(2, 3), ember.zeros(3, 4, dtype=ember.float64))
    with pytest.raises(RuntimeError, match="batch1 must be a 3D tensor"):
        ember.bmm(ember.zeros(2, 3), ember.zeros(2, 3, 4))
    with pytest.raises(RuntimeError, match="same number of batches, got 2 and 3"):
        ember.bmm(ember.zeros(2, 2, 3), ember.zeros(3, 3, 4))
    with pytest.raises(RuntimeError, match=r"Expected size for first two dimensions of batch2 tensor to be: \[2, 3\]"):
        ember.bmm(ember.zeros(2, 2, 3), ember.zeros(2, 4, 4))
    with pytest.raises(RuntimeError, match=r"size mismatch, got input \(2\), mat \(2x3\), vec \(4\)"):
        ember.mv(ember.zeros(2, 3), ember.zeros(4))
    with pytest.raises(RuntimeError, match="vector"):
        ember.mv(ember.zeros(3), ember.zeros(3))


@pytest.mark.parametrize("dtype", MM_DTYPES)
@pytest.mark.parametrize("layout", ("contiguous", "sliced", "expanded"))
def test_dot_vdot(dtype, layout):
    (ea, ta), (eb, tb) = _pair((5,), dtype, layout, 1), _pair((5,), dtype, layout, 2)
    check(ember.dot(ea, eb), torch.dot(ta, tb), dtype)
    check(ea.dot(eb), ta.dot(tb), dtype)
    check(ember.vdot(ea, eb), torch.vdot(ta, tb), dtype)
    assert_same(ember.dot(ember.zeros(0), ember.zeros(0)), torch.dot(torch.zeros(0), torch.zeros(0)))


def test_dot_errors():
    with pytest.raises(RuntimeError, match=r"inconsistent tensor size, expected tensor \[3\] and src \[4\]"):
        ember.dot(ember.zeros(3), ember.zeros(4))
    with pytest.raises(RuntimeError, match="1D tensors expected, but got 2D and 1D tensors"):
        ember.dot(ember.zeros(2, 3), ember.zeros(3))
    with pytest.raises(RuntimeError, match="same dtype, but found Float and Double"):
        ember.vdot(ember.zeros(3), ember.zeros(3, dtype=ember.float64))
    with pytest.raises(NotImplementedError, match="Bool"):
        ember.dot(ember.zeros(3, dtype=ember.bool), ember.zeros(3, dtype=ember.bool))


@pytest.mark.parametrize("da,db", [("float32", "float32"), ("float32", "float64"), ("int64", "bool"),
                                   ("bool", "bool"), ("float16", "float16"), ("int8", "uint8")])
def test_outer_ger(da, db):
    (ea, ta), (eb, tb) = _pair((3,), da, seed=1), _pair((4,), db, "sliced", seed=2)
    check(ember.outer(ea, eb), torch.outer(ta, tb), da)
    check(ember.ger(ea, eb), torch.ger(ta, tb), da)
    check(ea.outer(eb), ta.outer(tb), da)
    check(ea.ger(eb), ta.outer(tb), da)
    with pytest.raises(RuntimeError, match="outer: Expected 1-D argument self, but got 2-D"):
        ember.outer(ember.zeros(2, 3), ember.zeros(4))
    with pytest.raises(RuntimeError, match="Expected 1-D argument vec2, but got 0-D"):
        ember.ger(ember.zeros(3), ember.zeros(()))


# ---- addmm family ------------------------------------------------------------------------------

ADD_CASES = [
    ("addmm", (2, 4), (2, 3), (3, 4)), ("addmm", (4,), (2, 3), (3, 4)), ("addmm", (), (2, 3), (3, 4)),
    ("addmm", (2, 1), (2, 3), (3, 4)), ("addmv", (2,), (2, 3), (3,)), ("addmv", (1,), (2, 3), (3,)),
    ("addbmm", (2, 4), (5, 2, 3), (5, 3, 4)), ("addbmm", (4,), (0, 2, 3), (0, 3, 4)),
    ("baddbmm", (5, 2, 4), (5, 2, 3), (5, 3, 4)), ("baddbmm", (2, 1, 4), (2, 2, 3), (2, 3, 4)),
    ("baddbmm", (4,), (2, 2, 3), (2, 3, 4)),
]


@pytest.mark.parametrize("case", ADD_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
@pytest.mark.parametrize("dtype", ("float32", "float64", "float16", "bfloat16", "int64", "int32"))
def test_addmm_family(case, dtype):
    for beta, alpha in [(1, 1), (0.5, -2.0), (0, 3), (2, 0.5)]:
        _check_addmm(case, dtype, beta, alpha)


def _check_addmm(case, dtype, beta, alpha):
    name, ss, s1, s2 = case
    if dtype in ("int64", "int32") and (isinstance(beta, float) or isinstance(alpha, float)):
        beta, alpha = int(beta), int(alpha)
    (es, ts), (e1, t1), (e2, t2) = _pair(ss, dtype, seed=1), _pair(s1, dtype, seed=2), _pair(s2, dtype, seed=3)
    e = getattr(ember, name)(es, e1, e2, beta=beta, alpha=alpha)
    t = getattr(torch, name)(ts, t1, t2, beta=beta, alpha=alpha)
    check(e, t, dtype)
    check(getattr(es, name)(e1, e2, beta=beta, alpha=alpha), t, dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_addmm_layouts(layout):
    (es, ts), (e1, t1), (e2, t2) = (_pair((3, 4), "float32", layout, 1), _pair((3, 5), "float32", layout, 2),
                                    _pair((5, 4), "float32", layout, 3))
    assert_same(ember.addmm(es, e1, e2, beta=0.5, alpha=2), torch.addmm(ts, t1, t2, beta=0.5, alpha=2))


def test_addmm_beta_zero_ignores_nan():
    nan = torch.full((2, 2), float("nan"))
    a = torch.ones(2, 2)
    assert_same(ember.addmm(from_torch(nan), from_torch(a), from_torch(a), beta=0),
                torch.addmm(nan, a, a, beta=0))


def test_addmm_integer_scalars_truncate():
    a = torch.tensor([[1, 2], [3, 4]])
    e = from_torch(a)
    assert_same(ember.addmm(e, e, e, beta=0.5, alpha=1.7), torch.addmm(a, a, a, beta=0.5, alpha=1.7))


@pytest.mark.parametrize("case", [("addmm", (2, 4), (2, 3), (3, 4)), ("addmv", (2,), (2, 3), (3,)),
                                  ("addbmm", (2, 4), (3, 2, 3), (3, 3, 4)),
                                  ("baddbmm", (3, 2, 4), (3, 2, 3), (3, 3, 4))])
def test_addmm_family_inplace(case):
    name, ss, s1, s2 = case
    (es, ts), (e1, t1), (e2, t2) = (_pair(ss, "float64", seed=1), _pair(s1, "float64", seed=2),
                                    _pair(s2, "float64", seed=3))
    v = es._version
    r = getattr(es, name + "_")(e1, e2, beta=2, alpha=0.5)
    getattr(ts, name + "_")(t1, t2, beta=2, alpha=0.5)
    assert r is es and es._version == v + 1
    assert_same(es, ts)


def test_addmm_family_errors():
    with pytest.raises(RuntimeError, match=r"mat1 must be a matrix"):
        ember.addmm(ember.zeros(3), ember.zeros(3), ember.zeros(3, 3))
    with pytest.raises(RuntimeError, match="must have the same dtype, but got Double, Float and Float"):
        ember.addmm(ember.zeros(2, 3, dtype=ember.float64), ember.zeros(2, 3), ember.zeros(3, 3))
    with pytest.raises(RuntimeError, match="expanded size"):
        ember.addmm(ember.zeros(2, 4), ember.zeros(2, 3), ember.zeros(3, 3))
    with pytest.raises(RuntimeError, match="expanded size"):
        ember.baddbmm(ember.zeros(3, 2, 3), ember.zeros(2, 2, 3), ember.zeros(2, 3, 3))
    with pytest.raises(RuntimeError, match="same number of batches, got 2 and 3"):
        ember.addbmm(ember.zeros(2, 3), ember.zeros(2, 2, 3), ember.zeros(3, 3, 3))
    with pytest.raises(RuntimeError, match=r"size mismatch, got input \(2\), mat \(2x3\), vec \(4\)"):
        ember.addmv(ember.zeros(2), ember.zeros(2, 3), ember.zeros(4))
    with pytest.raises(RuntimeError, match=r"Bad in-place call: input tensor size \[3\] and output tensor size "
                                           r"\[2, 3\]"):
        ember.zeros(3).addmm_(ember.zeros(2, 3), ember.zeros(3, 3))
    with pytest.raises(NotImplementedError, match="Bool"):
        b = ember.zeros(2, 2, dtype=ember.bool)
        ember.addmm(b, b, b)


# ---- linear -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ("float32", "float64", "float16", "bfloat16", "int64"))
@pytest.mark.parametrize("xs,ws,bs", [((2, 3), (4, 3), (4,)), ((2, 3), (4, 3), None), ((5, 2, 3), (4, 3), (4,)),
                                      ((3,), (4, 3), (4,)), ((2, 3), (3,), None), ((3,), (3,), ()),
                                      ((2, 3), (4, 3), ()), ((0, 3), (4, 3), (4,)), ((2, 0), (4, 0), (4,))])
def test_linear(dtype, xs, ws, bs):
    (ex, tx), (ew, tw) = _pair(xs, dtype, seed=1), _pair(ws, dtype, "transposed", seed=2)
    eb, tb = _pair(bs, dtype, seed=3) if bs is not None else (None, None)
    check(ember.linear(ex, ew, eb), torch.nn.functional.linear(tx, tw, tb), dtype)


def test_linear_errors():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 5x4\)"):
        ember.linear(ember.zeros(2, 3), ember.zeros(4, 5))
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype, but got: float != double"):
        ember.linear(ember.zeros(2, 3), ember.zeros(4, 3, dtype=ember.float64))
    with pytest.raises(RuntimeError, match="same dtype"):
        ember.linear(ember.zeros(2, 3), ember.zeros(4, 3), ember.zeros(4, dtype=ember.float64))
    with pytest.raises(RuntimeError, match=r"The expanded size of the tensor \(4\) must match the existing size \(5\)"):
        ember.linear(ember.zeros(2, 3), ember.zeros(4, 3), ember.zeros(5))
    with pytest.raises(RuntimeError, match="at least 1D, but they are 0D and 0D"):
        ember.linear(ember.zeros(()), ember.zeros(()))


# ---- einsum -----------------------------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("ij->ji", [(2, 3)]), ("ij->j", [(2, 3)]),
    ("ii", [(3, 3)]), ("ii->i", [(3, 3)]), ("i,i", [(4,), (4,)]), ("i,j->ij", [(2,), (3,)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]), ("...ij,...jk", [(5, 2, 3), (3, 4)]), ("i...->...i", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]), ("b i j, b j k -> b i k", [(2, 2, 3), (2, 3, 4)]),
    ("ij,jk->ik", [(2, 3), (1, 4)]), ("ij->", [(2, 3)]), ("ij,->ij", [(2, 3), ()]), ("", [()]),
    ("...", [()]), ("Ab,bC->AC", [(2, 3), (3, 2)]), ("ij,ij->ij", [(2, 3), (2, 3)]), ("ij,kj->ik", [(0, 3), (2, 3)]),
    ("ij,jk->ik", [(40, 30), (30, 50)]), ("...ij->ij", [(2, 3, 4)]), ("...i,...i->...", [(2, 1, 3), (4, 3)]),
    ("i...,i...->...", [(3,), (3, 2)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
@pytest.mark.parametrize("dtype", ("float32", "float64", "float16", "int64"))
def test_einsum(eq, shapes, dtype):
    pairs = [_pair(s, dtype, "sliced" if len(s) >= 1 else "contiguous", seed=i) for i, s in enumerate(shapes)]
    es, ts = [p[0] for p in pairs], [p[1] for p in pairs]
    t = torch.einsum(eq, *ts)
    check(ember.einsum(eq, *es), t, dtype)
    check(ember.einsum(eq, es), t, dtype)


def test_einsum_dtypes_and_sublists():
    (ea, ta), (eb, tb) = _pair((2, 3), "int8", seed=1), _pair((3, 4), "int8", seed=2)
    assert_same(ember.einsum("ij,jk->ik", ea, eb), torch.einsum("ij,jk->ik", ta, tb))
    assert_same(ember.einsum("ij->j", ea), torch.einsum("ij->j", ta))  # a sum: int64 like torch
    eb_, tb_ = _pair((2, 3), "bool", seed=3)
    assert_same(ember.einsum("ij->ji", eb_), torch.einsum("ij->ji", tb_))
    assert_same(ember.einsum("ij->j", eb_), torch.einsum("ij->j", tb_))
    (ex, tx), (ey, ty) = _pair((2, 3), "float32", seed=1), _pair((3, 4), "float32", seed=2)
    assert_same(ember.einsum(ex, [0, 1], ey, [1, 2], [0, 2]), torch.einsum(tx, [0, 1], ty, [1, 2], [0, 2]))
    assert_same(ember.einsum(ex, [0, 1], ey, [1, 2]), torch.einsum(tx, [0, 1], ty, [1, 2]))
    assert_same(ember.einsum(ex, [Ellipsis, 1], [1]), torch.einsum(tx, [Ellipsis, 1], [1]))


@pytest.mark.parametrize("eq,shapes,exc,msg", [
    ("ij,jk->ik", [(2, 3)], RuntimeError, "fewer operands were provided than specified in the equation"),
    ("ij", [(2, 3), (3,)], RuntimeError, "more operands were provided than specified in the equation"),
    ("ij->ik", [(2, 3)], RuntimeError, "output subscript k does not appear in the equation for any input operand"),
    ("ijk", [(2, 3)], RuntimeError, r"number of subscripts in the equation \(3\) does not match the number of "
                                    r"dimensions \(2\) for operand 0 and no ellipsis was given"),
    ("...ijk", [(2, 3)], RuntimeError, r"\(3\) is more than the number of dimensions \(2\) for operand 0"),
    ("ij,jk->ik", [(2, 3), (4, 4)], RuntimeError, "subscript j has size 4 for operand 1 which does not broadcast "
                                                  "with previously seen size 3"),
    ("i1", [(2, 3)], RuntimeError, "invalid subscript given at index 1 in the equation string"),
    ("ij->i->j", [(2, 3)], RuntimeError, "invalid subscript given at index 5"),
    ("ij->ii", [(2, 3)], RuntimeError, "output subscript i appears more than once in the output"),
    ("ii", [(3, 4)], RuntimeError, "subscript i is repeated for operand 0 but the sizes don't match, 4 != 3"),
    ("...i...", [(2, 3)], RuntimeError, "for which an ellipsis was already found"),
    ("i.j", [(2, 3)], RuntimeError, "that is not part of any ellipsis"),
])
def test_einsum_errors(eq, shapes, exc, msg):
    with pytest.raises(exc, match=msg):
        ember.einsum(eq, *[ember.zeros(*s) for s in shapes])
    with pytest.raises(exc, match=msg):
        torch.einsum(eq, *[torch.zeros(*s) for s in shapes])


def test_einsum_argument_errors():
    with pytest.raises(ValueError, match="at least one operand"):
        ember.einsum("ij,jk->ik")
    with pytest.raises(TypeError, match="must be str"):
        ember.einsum(3, ember.zeros(3))
    with pytest.raises(TypeError, match="must be Tensor"):
        ember.einsum("ij", 3)
    with pytest.raises(NotImplementedError, match="Bool"):
        b = ember.zeros(2, 2, dtype=ember.bool)
        ember.einsum("ij,jk->ik", b, b)


# ---- tensordot --------------------------------------------------------------------------------

@pytest.mark.parametrize("sa,sb,dims", [
    ((2, 3), (3, 4), 1), ((2, 3, 4), (3, 4, 5), 2), ((2, 3, 4), (3, 4, 5), ([1, 2], [0, 1])),
    ((2, 3), (2, 3), 0), ((2, 3, 4), (4, 2), ([0, 2], [1, 0])), ((2, 3), (3, 2), [[1], [0]]),
    ((2, 3), (1, 4), ([1], [0])), ((2, 3, 4), (4, 3, 2), ([-1], [0])),
])
@pytest.mark.parametrize("dtype", ("float32", "float64", "int64", "bfloat16"))
def test_tensordot(sa, sb, dims, dtype):
    (ea, ta), (eb, tb) = _pair(sa, dtype, "sliced", 1), _pair(sb, dtype, seed=2)
    check(ember.tensordot(ea, eb, dims), torch.tensordot(ta, tb, dims), dtype)
    check(ember.tensordot(ea, eb, dims=dims), torch.tensordot(ta, tb, dims=dims), dtype)


def test_tensordot_errors():
    a, b = ember.zeros(2, 3), ember.zeros(3, 4)
    with pytest.raises(RuntimeError, match="contracted dimensions need to match, but first has size 3"):
        ember.tensordot(a, ember.zeros(4, 4), 1)
    with pytest.raises(RuntimeError, match="both inputs should have same dtype"):
        ember.tensordot(a, ember.zeros(3, 4, dtype=ember.float64), 1)
    with pytest.raises(RuntimeError, match="both dimension lists should have same length"):
        ember.tensordot(a, b, ([1], [0, 1]))
    with pytest.raises(RuntimeError, match="dims >= 0"):
        ember.tensordot(a, b, -1)
    with pytest.raises(RuntimeError, match="dims < ndim_a or ndim_b"):
        ember.tensordot(a, b, 3)
    with pytest.raises(IndexError, match="out of range"):
        ember.tensordot(a, b, ([1], [3]))
    with pytest.raises(RuntimeError, match="appears multiple times"):
        ember.tensordot(a, b, ([1, 1], [0, 0]))


def _torch_linear_backward(x, g, w):
    """What aten.linear_backward computes (torch has it only for MKLDNN tensors)."""
    g2, x2 = g.reshape(-1, w.shape[0]), x.reshape(-1, w.shape[1])
    return g @ w, g2.T @ x2, g2.sum(0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_backward_op_matches_torch(dtype):
    rng = np.random.default_rng(3)
    for shape in ((2, 5, 9), (7, 9), (0, 9), (9,)):
        x, w, g = (rng.standard_normal(s).astype(dtype) for s in (shape, (12, 9), shape[:-1] + (12,)))
        for mask in ((True, True, True), (False, True, False), (True, False, True)):
            got = ember.ops.linear_backward(ember.tensor(x), ember.tensor(g), ember.tensor(w), *mask)
            want = _torch_linear_backward(torch.tensor(x), torch.tensor(g), torch.tensor(w))
            for e, t, m in zip(got, want, mask):
                assert (e is None) == (not m)
                if m:
                    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="linear_backward: expected input"):
        ember.ops.linear_backward(ember.zeros(3, 4), ember.zeros(3, 5), ember.zeros(5, 3), True, True, True)


def test_linear_bias_of_other_shapes_and_double_backward_still_match_torch():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 5, 9)), rng.standard_normal((12, 9)), rng.standard_normal((5, 12))
    ex, ew, eb = (ember.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ge = ember.autograd.grad((ember.nn.functional.linear(ex, ew, eb) ** 2).sum(), [ex, ew, eb], create_graph=True)
    gt = torch.autograd.grad((torch.nn.functional.linear(tx, tw, tb) ** 2).sum(), [tx, tw, tb], create_graph=True)
    for e, t in zip(ge, gt):
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-10)
    sum(g.sum() for g in ge).backward()
    sum(g.sum() for g in gt).backward()
    for e, t in ((ex, tx), (ew, tw), (eb, tb)):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)

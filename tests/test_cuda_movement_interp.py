"""The CUDA ops on the two kernels of `backends/cuda/kernels/movement.py` (data movement in
`backends/cuda/shape.py`, one_hot in `indexing.py`, device-side factories in `creation.py`) run on
CPU tensors through Triton's interpreter (`TRITON_INTERPRET=1`), compared with ember's CPU backend.
On a machine with a GPU these tests are left to `tests/test_cuda_movement.py`. The kernels are called
directly, so with valid arguments only: the ops' checks are their metas', run by the entry point and
tested for every backend by the sample table (tests/samples/shape.py, creation.py)."""
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_movement.py",
                allow_module_level=True)
triton = pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from helpers import make_pair  # noqa: E402

from ember.backends.cuda import checks  # noqa: E402
from ember.backends.cuda import creation as CR  # noqa: E402
from ember.backends.cuda import indexing as IX  # noqa: E402
from ember.backends.cuda import shape as SH  # noqa: E402
from ember.dispatch import OPS  # noqa: E402

CPU = ember.device("cpu")


@pytest.fixture(autouse=True)
def nothing_left_unreported():
    yield
    checks.raise_pending()      # the device-side index checks found nothing out of range


def cpu(name):
    return OPS[name].kernels["cpu"]


def same(got, expected, exact=True):
    assert got.dtype is expected.dtype, (got.dtype, expected.dtype)
    assert tuple(got.shape) == tuple(expected.shape), (got.shape, expected.shape)
    assert got.stride() == expected.stride(), (got.stride(), expected.stride())   # (flip keeps x's layout)
    if exact or not got.dtype.is_floating_point:
        np.testing.assert_array_equal(got.numpy() if got.dtype is not ember.bfloat16 else got.float().numpy(),
                                      expected.numpy() if got.dtype is not ember.bfloat16 else
                                      expected.float().numpy())
    else:
        np.testing.assert_allclose(got.double().numpy(), expected.double().numpy(), rtol=1e-6, atol=1e-6)


# ---- flip / roll / repeat ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int64", "bool"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "expanded"])
def test_flip(dtype, layout):
    x, _ = make_pair((3, 4, 5), dtype, layout=layout)
    for dims in [(0,), (-1,), (1, 2), (0, 1, 2), ()]:
        same(SH.flip(x, dims), cpu("flip")(x, dims))


def test_flip_0d_empty_and_many_dims():
    x, _ = make_pair((), "float32")
    same(SH.flip(x, (0,)), cpu("flip")(x, (0,)))
    e = ember.zeros(3, 0, 2)
    same(SH.flip(e, (0, 2)), cpu("flip")(e, (0, 2)))
    x, _ = make_pair((2, 3, 2, 3, 2, 3, 2), "int32")
    same(SH.flip(x, (1, 3, 5, 6)), cpu("flip")(x, (1, 3, 5, 6)))      # 6 collapsed dims: the limit
    with pytest.raises(NotImplementedError, match="at most 6"):
        SH.flip(x, (0, 2, 4, 6))                                      # 7 dims that cannot be merged


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_roll(layout):
    x, _ = make_pair((3, 4, 5), "float16", layout=layout)
    for shifts, dims in [((1,), (0,)), ((-2,), (-1,)), ((7, 3), (1, 2)), ((1, 1), (0, 0)), ((0,), (1,)),
                         ((13,), None), ((-4,), None), ((60,), None)]:
        same(SH.roll(x, shifts, dims), cpu("roll")(x, shifts, dims))


def test_roll_edges():
    x, _ = make_pair((), "int64")
    same(SH.roll(x, (3,)), cpu("roll")(x, (3,)))
    e = ember.zeros(0, 4, dtype=ember.int64)
    same(SH.roll(e, (1,), (1,)), cpu("roll")(e, (1,), (1,)))
    same(SH.roll(e, (1,)), cpu("roll")(e, (1,)))
    y, _ = make_pair((4, 5), "bool")
    same(SH.roll(y, 2, 1), cpu("roll")(y, 2, 1))


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "expanded"])
def test_repeat(layout):
    x, _ = make_pair((2, 3), "float32", layout=layout)
    for reps in [(1, 1), (2, 1), (1, 3), (2, 3), (2, 1, 1), (3, 2, 2), (2, 0), (1, 2, 1, 2)]:
        same(SH.repeat(x, reps), cpu("repeat")(x, reps))


def test_repeat_0d_bool():
    x, _ = make_pair((), "bool")
    same(SH.repeat(x, (2, 3)), cpu("repeat")(x, (2, 3)))
    y, _ = make_pair((3, 1, 2), "int64", layout="sliced")
    same(SH.repeat(y, (2, 4, 2)), cpu("repeat")(y, (2, 4, 2)))


# ---- triu / tril ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["triu", "tril"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_tri(name, layout):
    kern = SH._tri(name, name == "triu", False)
    for shape in [(4, 6), (2, 5, 3), (1, 1)]:
        x, _ = make_pair(shape, "float32", layout=layout)
        for d in (-7, -2, -1, 0, 1, 3, 9):
            same(kern(x, d), cpu(name)(x, d))
    b, _ = make_pair((3, 4), "bool")
    same(kern(b, 1), cpu(name)(b, 1))
    e = ember.zeros(0, 3)
    same(kern(e), cpu(name)(e))


@pytest.mark.parametrize("name", ["triu_", "tril_"])
def test_tri_inplace_on_strided_views(name):
    kern = SH._tri(name, name == "triu_", True)
    for layout in ("contiguous", "transposed", "sliced"):
        for d in (-1, 0, 2):
            x, _ = make_pair((2, 4, 5), "bfloat16", layout=layout)
            y, _ = make_pair((2, 4, 5), "bfloat16", layout=layout)
            assert kern(x, d) is x
            cpu(name)(y, d)
            assert x.stride() == y.stride()
            np.testing.assert_array_equal(x.float().numpy(), y.float().numpy())


# ---- one_hot -------------------------------------------------------------------------------------

def test_one_hot():
    x = ember.tensor([[3, 0, 1], [2, 2, 5]])
    for c in (-1, 6, 9):
        same(IX.one_hot(x, c), cpu("one_hot")(x, c))
    t = x.t()
    same(IX.one_hot(t), cpu("one_hot")(t))
    s = ember.tensor(4)
    same(IX.one_hot(s, 5), cpu("one_hot")(s, 5))
    e = ember.zeros(0, 2, dtype=ember.int64)
    same(IX.one_hot(e, 3), cpu("one_hot")(e, 3))


@pytest.mark.parametrize("bad", [3, 7, -1])
def test_one_hot_class_out_of_range_is_reported_at_the_next_check(bad):
    IX.one_hot(ember.tensor([[0, 2], [bad, 1]]), 3)
    with pytest.raises(RuntimeError, match=rf"index out of range in one_hot: got index {bad} for num_classes = 3 "
                                           r"\(found on the device"):
        checks.raise_pending()
    assert checks._words["cpu"].tolist() == [0, 0, 0, 0] and not checks._pending   # reset
    same(IX.one_hot(ember.tensor([2, 0]), 3), cpu("one_hot")(ember.tensor([2, 0]), 3))
    checks.raise_pending()                        # a valid call reports nothing
    SH.flip(ember.tensor([bad, 1]), [0])          # kernels that check nothing do not ask for a read
    assert not checks._pending


def test_one_hot_negative_class_found_while_inferring_num_classes():
    with pytest.raises(RuntimeError, match="non-negative"):   # the kernel's one check: it reads the data
        IX.one_hot(ember.tensor([1, -1, 2]))


# ---- diag / diag_embed ---------------------------------------------------------------------------

def test_diag():
    v, _ = make_pair((4,), "float32", layout="sliced")
    for d in (-2, 0, 3):
        same(SH.diag(v, d), cpu("diag")(v, d))
    m, _ = make_pair((3, 5), "int64", layout="transposed")
    for d in (-4, -1, 0, 2, 7):
        same(SH.diag(m, d), cpu("diag")(m, d))


def test_diag_embed():
    x, _ = make_pair((2, 3), "float16", layout="transposed")
    for off, d1, d2 in [(0, -2, -1), (1, 0, 2), (-2, 2, 0), (0, 1, 0)]:
        same(SH.diag_embed(x, off, d1, d2), cpu("diag_embed")(x, off, d1, d2))


# ---- factories -----------------------------------------------------------------------------------

def test_arange():
    for args, dt in [((5,), None), ((2, 11, 3), None), ((10, -3, -2), None), ((0.5, 4.0, 0.25), None),
                     ((1, 2.5, 0.5), ember.float64), ((0, 3, 1), ember.float16), ((0.5, 7, 1.5), ember.int64),
                     ((0, 4), ember.bool), ((-3, 260, 7), ember.uint8), ((0, 1, 0.1), ember.float64),
                     ((3, 3), None)]:
        same(CR.arange(*args, dtype=dt, device=CPU), cpu("arange")(*args, dtype=dt), exact=False)


def test_linspace():
    for args, dt in [((0, 1, 5), None), ((-2.5, 7.0, 8), ember.float64), ((1, 2, 1), None), ((1, 2, 0), None),
                     ((0, 10, 4), ember.int64), ((-1, 1, 5), ember.bool), ((3, -3, 7), ember.bfloat16)]:
        same(CR.linspace(*args, dtype=dt, device=CPU), cpu("linspace")(*args, dtype=dt), exact=False)


def test_eye_full_ones_scalar_tensor():
    for n, m, dt in [(3, None, None), (2, 5, ember.int64), (4, 1, ember.bool), (0, 3, None), (3, 2, ember.float16)]:
        same(CR.eye(n, m, dt, CPU), cpu("eye")(n, m, dt))
    for value, dt in [(2.5, ember.float64), (7, ember.int64), (200, ember.uint8), (3.9, ember.int32),
                      (0.1, ember.bfloat16), (True, ember.bool), (float("inf"), ember.float32),
                      (2 ** 40 + 1, ember.int64)]:
        same(CR.full((2, 3), value, dt, CPU), cpu("full")((2, 3), value, dt))
        same(CR.scalar_tensor(value, dt, CPU), cpu("scalar_tensor")(value, dt))
    same(CR.ones((4,), ember.float64, CPU), cpu("ones")((4,), ember.float64))
    same(CR.full((0, 2), 1.0, None, CPU), cpu("full")((0, 2), 1.0, None))

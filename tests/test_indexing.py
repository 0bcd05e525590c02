"""Indexing ops and Tensor.__getitem__/__setitem__, checked against PyTorch on the same inputs."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

import ember
from helpers import DTYPES, FLOATS, LAYOUTS, assert_same, make_pair

ALL = tuple(DTYPES)
NUMERIC = tuple(d for d in ALL if d != "bool")
WRITE_LAYOUTS = ("contiguous", "transposed", "sliced")  # in-place targets: no overlapping (expanded) memory
SHAPE = (3, 4, 5)


def ipair(data, dtype="int64"):
    """The same index data as an ember tensor and a torch tensor."""
    e_dt, t_dt = DTYPES[dtype]
    return ember.tensor(data, dtype=e_dt), torch.tensor(data, dtype=t_dt)


def mpair(shape, seed=1):
    if shape == ():
        return zpair("bool", seed)
    return make_pair(shape, "bool", seed=seed)


def zpair(dtype, seed=0):
    """A 0-dim pair (helpers.make_pair(()) returns 1-element tensors: np.ascontiguousarray is >= 1-d)."""
    e, t = make_pair((1,), dtype, seed=seed)
    return e.reshape(()), t.reshape(())


def _builders():
    """(I, M) for ember and for torch: I(data, dtype) builds an index tensor, M(shape, seed) a mask."""
    e = (lambda d, dt="int64": ipair(d, dt)[0], lambda s, seed=1: mpair(s, seed)[0])
    t = (lambda d, dt="int64": ipair(d, dt)[1], lambda s, seed=1: mpair(s, seed)[1])
    return e, t


E_B, T_B = _builders()


def both(fn, *pairs):
    """fn applied to the ember halves and to the torch halves of `pairs`."""
    return fn(*[p[0] for p in pairs]), fn(*[p[1] for p in pairs])


# ---- __getitem__ -----------------------------------------------------------------------------

# Each case indexes a (3, 4, 5) tensor x; I builds integer/bool index tensors, M random bool masks.
GETITEM = {
    "int_tensor": lambda x, I, M: x[I([0, 2, -1])],
    "int32_tensor": lambda x, I, M: x[I([1, -3], "int32")],
    "list": lambda x, I, M: x[[0, 2]],
    "idx2d": lambda x, I, M: x[I([[0, 1], [2, -1]])],
    "empty_idx": lambda x, I, M: x[I([], "int64")],
    "zero_dim_idx": lambda x, I, M: x[I(1)],
    "mask_full": lambda x, I, M: x[M((3, 4, 5))],
    "mask_2d": lambda x, I, M: x[M((3, 4))],
    "mask_1d": lambda x, I, M: x[M((3,), seed=3)],
    "mask_after_slice": lambda x, I, M: x[:, M((4,))],
    "mask_ellipsis": lambda x, I, M: x[..., M((4, 5))],
    "mask_and_idx": lambda x, I, M: x[I([True, False, True], "bool"), :, I([0, 4])],
    "bool_list": lambda x, I, M: x[[True, False, True]],
    "uint8_mask": lambda x, I, M: x[I([1, 0, 1], "uint8")],
    "slice_idx": lambda x, I, M: x[:, I([3, 0])],
    "idx_slice_idx": lambda x, I, M: x[I([0, 2]), :, I([1, -1])],
    "adjacent": lambda x, I, M: x[I([0, 2]), I([1, 3])],
    "adjacent_middle": lambda x, I, M: x[:, I([0, 2]), I([1, 3])],
    "broadcast_2d": lambda x, I, M: x[I([[0], [2]]), I([1, 3, 0])],
    "ellipsis_idx": lambda x, I, M: x[..., I([4, 0])],
    "int_idx": lambda x, I, M: x[0, I([3, 1])],
    "idx_int": lambda x, I, M: x[I([2, 0]), 1],
    "int_slice_idx": lambda x, I, M: x[1, :, I([0, 3, 4])],
    "none_idx": lambda x, I, M: x[None, I([0, 1])],
    "idx_none": lambda x, I, M: x[I([0, 1]), None],
    "slice_step_idx": lambda x, I, M: x[::2, I([1, 2]), 1:],
    "neg_slice_idx": lambda x, I, M: x[1:, I([-1])],
    "true": lambda x, I, M: x[True],
    "none_true": lambda x, I, M: x[None, True],
    "zero_dim_mask": lambda x, I, M: x[I(True, "bool")],
    "noncontig_idx": lambda x, I, M: x[I([[0, 1, 2], [2, 1, 0]]).t()],
    "duplicates": lambda x, I, M: x[I([1, 1, 0, 1])],
}
# Cases that fail because of the indexing glue in ops/operators.py (see the report for fixes).
GLUE_BUGS = {
    "nested_list": (lambda x, I, M: x[[[0, 1], [2, 0]]],
                    "torch treats a short list holding sequences as a tuple (x[[0, 1], [2, 0]])"),
    "false": (lambda x, I, M: x[False], "x[False]: _as_index_tensor([]) builds a float tensor"),
    "none_false": (lambda x, I, M: x[None, False], "x[False]: _as_index_tensor([]) builds a float tensor"),
    "empty_list": (lambda x, I, M: x[[]], "x[[]]: ember.tensor([]) is float; torch indexes with an empty long"),
    "ellipsis_zero_dim_mask": (lambda x, I, M: x[..., I(True, "bool")], "n_real counts a 0-d mask as a dim"),
}


def _getitem_pair(case, dtype="float32", layout="contiguous"):
    e, t = make_pair(SHAPE, dtype, layout=layout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates uint8 masks
        return case(e, *E_B), case(t, *T_B)


@pytest.mark.parametrize("name", list(GETITEM))
def test_getitem_cases(name):
    for layout in LAYOUTS:
        assert_same(*_getitem_pair(GETITEM[name], layout=layout))


@pytest.mark.parametrize("dtype", ALL)
def test_getitem_dtypes(dtype):
    for name in ("int_tensor", "mask_2d", "idx_slice_idx", "broadcast_2d", "ellipsis_idx", "zero_dim_idx"):
        assert_same(*_getitem_pair(GETITEM[name], dtype, layout="transposed"))


@pytest.mark.parametrize("name", list(GLUE_BUGS))
def test_getitem_glue_cases(name):
    case, _reason = GLUE_BUGS[name]
    assert_same(*_getitem_pair(case))


def test_getitem_returns_copy():
    e, _ = make_pair((3, 4))
    i, _ = ipair([0, 1])
    r = e[i]
    r[...] = 100.0
    assert (e.numpy() < 100).all()
    assert r.is_contiguous()


def test_getitem_errors():
    e, _ = make_pair((3, 4))
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        e[ember.tensor([0, 3])]
    with pytest.raises(IndexError, match="index -5 is out of bounds for dimension 1 with size 4"):
        e[:, ember.tensor([-5])]
    with pytest.raises(IndexError, match="must be long, int, byte or bool"):
        e[ember.tensor([0.0])]
    with pytest.raises(IndexError, match="must be long, int, byte or bool"):
        e[ember.tensor([0], dtype=ember.int16)]
    with pytest.raises(IndexError, match=r"shape mismatch.*\[2\], \[3\]"):
        e[ember.tensor([0, 1]), ember.tensor([0, 1, 2])]
    with pytest.raises(IndexError, match="too many indices"):
        e[0, 0, ember.tensor([0])]


# ---- __setitem__ -----------------------------------------------------------------------------

SETITEM = ["int_tensor", "int32_tensor", "list", "idx2d", "empty_idx", "zero_dim_idx", "mask_full", "mask_2d",
           "mask_1d", "mask_after_slice", "mask_ellipsis", "mask_and_idx", "bool_list", "slice_idx",
           "idx_slice_idx", "adjacent", "adjacent_middle", "broadcast_2d", "ellipsis_idx", "int_idx", "idx_int",
           "int_slice_idx", "none_idx", "idx_none", "slice_step_idx", "neg_slice_idx", "noncontig_idx"]


def _setter(name):
    """Turns a GETITEM case `x[<index>]` into `x[<index>] = value` by capturing the index."""
    class Grab:
        def __getitem__(self, idx):
            return idx
    get = GETITEM[name]
    return lambda x, I, M: get(Grab(), I, M)


def _value_pair(kind, result_shape, dtype, seed=7):
    if kind == "scalar":
        return (True, True) if dtype == "bool" else ((2, 2) if dtype not in FLOATS else (1.5, 1.5))
    if kind == "tensor":
        return make_pair(result_shape, dtype, seed=seed)
    if kind == "broadcast":
        return make_pair(result_shape[-1:], dtype, seed=seed)
    return zpair(dtype, seed)  # 0-dim tensor


@pytest.mark.parametrize("name", SETITEM)
def test_setitem_cases(name):
    dtype = "float32"
    for layout, kind in itertools.product(WRITE_LAYOUTS, ["scalar", "tensor", "broadcast", "zero_dim"]):
        e, t = make_pair(SHAPE, dtype, layout=layout)
        shape = tuple(GETITEM[name](t, *T_B).shape)
        ve, vt = _value_pair(kind, shape, dtype)
        idx_e, idx_t = _setter(name)(None, *E_B), _setter(name)(None, *T_B)
        v0 = e._version
        e[idx_e] = ve
        t[idx_t] = vt
        assert_same(e, t)
        assert e._version > v0


@pytest.mark.parametrize("dtype", ALL)
def test_setitem_dtypes(dtype):
    for name, kind in itertools.product(["int_tensor", "mask_2d", "idx_slice_idx", "mask_full"], ["scalar", "tensor"]):
        e, t = make_pair(SHAPE, dtype, layout="sliced")
        shape = tuple(GETITEM[name](t, *T_B).shape)
        ve, vt = _value_pair(kind, shape, dtype)
        e[_setter(name)(None, *E_B)] = ve
        t[_setter(name)(None, *T_B)] = vt
        assert_same(e, t)


def test_setitem_writes_through_views():
    base_e, base_t = make_pair((4, 6))
    ve, vt = base_e[1:, ::2], base_t[1:, ::2]
    ie, it = ipair([0, 2])
    ve[ie] = 9.0
    vt[it] = 9.0
    ve[ve < 0] = 0.0
    vt[vt < 0] = 0.0
    assert_same(base_e, base_t)


def test_setitem_mask_value_tensor():
    e, t = make_pair((3, 4))
    me, mt = e > 0, t > 0
    n = int(mt.sum())
    se, st = make_pair((n,), seed=5)
    e[me] = se
    t[mt] = st
    assert_same(e, t)


def test_setitem_value_other_dtype():
    """Like torch, advanced-index assignment does not cast a tensor value (basic indexing does)."""
    e, t = make_pair((3, 4))
    ve, vt = make_pair((4,), "float64")
    with pytest.raises(RuntimeError, match="dtypes match"):
        t[torch.tensor([0])] = vt
    with pytest.raises(RuntimeError, match="dtypes match"):
        e[ember.tensor([0])] = ve
    e[0] = ve
    t[0] = vt
    assert_same(e, t)


def test_setitem_value_leading_ones():
    e, t = make_pair((3, 4))
    ie, it = ipair([0, 2])
    ve, vt = make_pair((1, 2, 4))
    e[ie] = ve
    t[it] = vt
    assert_same(e, t)


def test_setitem_errors():
    e, _ = make_pair((3, 4))
    with pytest.raises(IndexError, match="index 3 is out of bounds"):
        e[ember.tensor([3])] = 1.0
    with pytest.raises(RuntimeError, match="shape mismatch"):
        e[ember.tensor([0, 1])] = ember.ones(3, 4)


def test_mask_shape_mismatch():
    """torch refuses a mask whose shape differs from the dims it indexes; the op does too."""
    e = ember.zeros(3, 4)
    with pytest.raises(IndexError, match=r"shape of the mask \[2\] at index 0 does not match"):
        ember.index(e, [ember.tensor([True, False])])
    with pytest.raises(IndexError, match="mask"):
        e.index_put_([ember.tensor([True, False])], ember.tensor(1.0))
    with pytest.raises(IndexError, match="mask"):
        e[ember.tensor([True, False])] = 1.0
    with pytest.raises(IndexError, match="mask"):
        e[ember.tensor([True, False])]


# ---- index / index_put ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL)
def test_index_op(dtype):
    for layout in LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout)
        i, j = ipair([2, 0, 1]), ipair([[2], [0]], "int32")
        assert_same(*both(lambda x, i, j: ember.index(x, [None, None, i]) if isinstance(x, ember.Tensor)
                          else torch.ops.aten.index(x, [None, None, i]), x, i, j))
        assert_same(ember.index(x[0], [j[0], None, i[0]]), torch.ops.aten.index(x[1], [j[1], None, i[1]]))
        assert_same(ember.index(x[0], [i[0]]), torch.ops.aten.index(x[1], [i[1]]))
        m = mpair((3, 4))
        assert_same(ember.index(x[0], [m[0]]), torch.ops.aten.index(x[1], [m[1]]))


@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put(dtype, accumulate):
    for layout in WRITE_LAYOUTS:
        if accumulate:
            idx = ([2, 0, 2, 2], [1, 3, 1, 1])  # duplicates accumulate
        else:
            idx = ([2, 0, 1], [1, 3, 1])
        i, j = ipair(idx[0]), ipair(idx[1], "int32")
        v = make_pair((len(idx[0]), 5), dtype, seed=4)
        x = make_pair(SHAPE, dtype, layout=layout)
        assert_same(x[0].index_put([i[0], j[0]], v[0], accumulate), x[1].index_put([i[1], j[1]], v[1], accumulate))
        r = x[0].index_put_((i[0], j[0]), v[0], accumulate)
        x[1].index_put_((i[1], j[1]), v[1], accumulate)
        assert r is x[0]
        assert_same(x[0], x[1])
        # broadcast values and a mask
        m = mpair((3, 4), seed=2)
        b = make_pair((5,), dtype, seed=9)
        x[0].index_put_([m[0]], b[0], accumulate)
        x[1].index_put_([m[1]], b[1], accumulate)
        assert_same(x[0], x[1])


def test_index_put_out_of_place_keeps_self():
    e, t = make_pair((3, 4))
    before = e.numpy().copy()
    r = e.index_put([ember.tensor([1])], ember.tensor(5.0))
    assert (e.numpy() == before).all()
    assert_same(r, t.index_put([torch.tensor([1])], torch.tensor(5.0)))


def test_index_put_errors():
    e, _ = make_pair((3, 4))
    with pytest.raises(RuntimeError, match="dtypes match"):
        e.index_put_([ember.tensor([0])], ember.ones(4, dtype=ember.float64))
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        e.index_put_([ember.tensor([5])], ember.tensor(1.0), True)
    with pytest.raises(IndexError, match="must be long, int, byte or bool"):
        e.index_put_([ember.tensor([0.5])], ember.tensor(1.0))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        e.index_put_([ember.tensor([0, 1])], ember.ones(3))
    with pytest.raises(IndexError, match="too many indices"):
        e.index_put_([None, None, ember.tensor([0])], ember.tensor(1.0))
    with pytest.raises(TypeError, match="must be Tensor"):
        e.index_put_([[0, 1]], ember.tensor(1.0))


# ---- nonzero / argwhere ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL)
def test_nonzero(dtype):
    for layout in LAYOUTS:
        x = make_pair((3, 4), dtype, low=-1, high=1, layout=layout)
        assert_same(*both(lambda x: x.nonzero(), x))
        assert_same(*both(lambda x: x.nonzero(as_tuple=True), x))
        assert_same(ember.argwhere(x[0]), torch.argwhere(x[1]))
        assert_same(x[0].argwhere(), x[1].argwhere())


@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 0, 3), (2, 1, 3)])
@pytest.mark.parametrize("fill", [0, 1])
def test_nonzero_shapes(shape, fill):
    e, t = ember.full(shape, fill, dtype=ember.float32), torch.full(shape, fill, dtype=torch.float32)
    assert_same(ember.ops.nonzero(e), torch.nonzero(t))
    assert_same(ember.ops.indexing.nonzero(e, as_tuple=True), torch.nonzero(t, as_tuple=True))
    assert_same(ember.argwhere(e), torch.argwhere(t))


def test_nonzero_nan_and_negative_zero():
    data = [0.0, -0.0, float("nan"), 1.0]
    assert_same(ember.tensor(data).nonzero(), torch.tensor(data).nonzero())


# ---- index_select / gather / take / embedding / one_hot -------------------------------------

@pytest.mark.parametrize("dtype", ALL)
def test_index_select(dtype):
    for layout in LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout)
        for dim, data, idt in ((0, [2, 0, 2], "int64"), (1, [3], "int32"), (-1, [4, 0, 1, 1], "int64"),
                               (2, [], "int64"), (1, 2, "int64")):
            i = ipair(data, idt)
            assert_same(*both(lambda x, i: x.index_select(dim, i), x, i))
        assert_same(ember.index_select(x[0], 0, ipair([1])[0]), torch.index_select(x[1], 0, ipair([1])[1]))


def test_index_select_scalar_and_errors():
    s = (ember.tensor(5.0), torch.tensor(5.0))
    assert_same(s[0].index_select(0, ember.tensor([0])), s[1].index_select(0, torch.tensor([0])))
    e, _ = make_pair((3, 4))
    with pytest.raises(IndexError, match="index 3 is out of range for dimension 0 with size 3"):
        e.index_select(0, ember.tensor([0, 3]))
    with pytest.raises(IndexError, match="index -1 is out of range"):
        e.index_select(0, ember.tensor([-1]))
    with pytest.raises(RuntimeError, match="int32/int64"):
        e.index_select(0, ember.tensor([0], dtype=ember.int16))
    with pytest.raises(RuntimeError, match="int32/int64"):
        e.index_select(0, ember.tensor([0.0]))
    with pytest.raises(IndexError, match="vector"):
        e.index_select(0, ember.tensor([[0]]))
    with pytest.raises(IndexError, match="Dimension out of range|dimension out of range"):
        e.index_select(2, ember.tensor([0]))


@pytest.mark.parametrize("dtype", ALL)
def test_gather(dtype):
    for layout in LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout)
        rng = np.random.default_rng(0)
        for dim, ishape in ((0, (5, 4, 5)), (1, (3, 2, 5)), (2, (2, 3, 7)), (-1, (1, 1, 1)), (1, (0, 4, 5))):
            n = SHAPE[dim]
            data = rng.integers(0, n, size=ishape).tolist()
            i = ipair(data, "int32" if dim == 1 else "int64")
            if ishape[0] == 0:
                i = (ember.zeros(ishape, dtype=ember.int64), torch.zeros(ishape, dtype=torch.int64))
            assert_same(*both(lambda x, i: x.gather(dim, i), x, i))
            assert_same(*both(lambda x, i: x.gather(dim, i.transpose(0, 1).transpose(0, 1)), x, i))
        i = ipair([[0, 2], [1, 1]])
        it = (i[0].t(), i[1].t())  # non-contiguous index
        assert_same(*both(lambda x, i: x[:, :, 0].gather(1, i), x, it))
        assert_same(ember.gather(x[0][0, 0], 0, ipair([3, 0])[0]), torch.gather(x[1][0, 0], 0, ipair([3, 0])[1]))


def test_gather_scalar_and_errors():
    s = (ember.tensor(5.0), torch.tensor(5.0))
    assert_same(s[0].gather(0, ember.tensor(0)), s[1].gather(0, torch.tensor(0)))
    assert_same(s[0].gather(0, ember.tensor([0, 0])), s[1].gather(0, torch.tensor([0, 0])))
    e, _ = make_pair((3, 4))
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        e.gather(0, ember.tensor([0]))
    with pytest.raises(RuntimeError, match="Size does not match at dimension 1"):
        e.gather(0, ember.zeros(2, 5, dtype=ember.int64))
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 0 with size 3"):
        e.gather(0, ember.full((2, 2), 3, dtype=ember.int64))
    with pytest.raises(RuntimeError, match="index -1 is out of bounds"):
        e.gather(0, ember.full((2, 2), -1, dtype=ember.int64))
    with pytest.raises(RuntimeError, match="int32/int64"):
        e.gather(0, ember.zeros(2, 2, dtype=ember.int16))
    with pytest.raises(IndexError, match="out of range"):
        e.gather(2, ember.zeros(2, 2, dtype=ember.int64))


@pytest.mark.parametrize("dtype", ALL)
def test_take(dtype):
    for layout in LAYOUTS:
        x = make_pair((3, 4), dtype, layout=layout)
        for data in ([0, 11, -1, 5, 5], [[1, -12], [3, 7]], [], 4):
            i = ipair(data)
            assert_same(*both(lambda x, i: x.take(i), x, i))
        assert_same(ember.take(x[0], ipair([2])[0]), torch.take(x[1], ipair([2])[1]))


def test_take_errors():
    e, _ = make_pair((3, 4))
    with pytest.raises(IndexError, match="tried to access index 12 on a tensor of 12 elements"):
        e.take(ember.tensor([12]))
    with pytest.raises(IndexError, match="index -13"):
        e.take(ember.tensor([-13]))
    with pytest.raises(RuntimeError, match="long"):
        e.take(ember.tensor([0], dtype=ember.int32))


@pytest.mark.parametrize("dtype", ALL)
def test_embedding(dtype):
    for layout in LAYOUTS:
        w = make_pair((6, 3), dtype, layout=layout)
        for data, idt in (([0, 5, 2, 2], "int64"), ([[1, 0], [4, 3]], "int32"), (3, "int64"), ([], "int64")):
            i = ipair(data, idt)
            assert_same(ember.embedding(w[0], i[0]), torch.embedding(w[1], i[1]))
        i = ipair([1, 0, 2])
        assert_same(ember.embedding(w[0], i[0], padding_idx=0), torch.embedding(w[1], i[1], padding_idx=0))


def test_embedding_errors():
    w = ember.ones(4, 3)
    with pytest.raises(IndexError, match="index 4 out of range"):
        ember.embedding(w, ember.tensor([4]))
    with pytest.raises(IndexError, match="index -1 out of range"):
        ember.embedding(w, ember.tensor([-1]))
    with pytest.raises(RuntimeError, match="Long, Int"):
        ember.embedding(w, ember.tensor([1], dtype=ember.int16))
    with pytest.raises(RuntimeError, match="2-D"):
        ember.embedding(ember.ones(4), ember.tensor([1]))


@pytest.mark.parametrize("data,num_classes", [([0, 2, 1], -1), ([[0, 3], [1, 1]], 5), (2, -1), ([], 3), ([4], 5)])
def test_one_hot(data, num_classes):
    i = ipair(data)
    assert_same(ember.one_hot(i[0], num_classes), torch.nn.functional.one_hot(i[1], num_classes))
    assert_same(ember.one_hot(i[0].t() if i[0].ndim == 2 else i[0], num_classes),
                torch.nn.functional.one_hot(i[1].t() if i[1].ndim == 2 else i[1], num_classes))


def test_one_hot_errors():
    with pytest.raises(RuntimeError, match="non-negative"):
        ember.one_hot(ember.tensor([-1, 0]))
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        ember.one_hot(ember.tensor([3]), 3)
    with pytest.raises(RuntimeError, match="empty tensor"):
        ember.one_hot(ember.tensor([], dtype=ember.int64))
    with pytest.raises(RuntimeError, match="empty tensor"):
        ember.one_hot(ember.tensor([], dtype=ember.int64), 0)
    with pytest.raises(RuntimeError, match="int64"):
        ember.one_hot(ember.tensor([1], dtype=ember.int32))


# ---- scatter family ------------------------------------------------------------------------

def _perm_index(shape, dim, n, seed=0, unique=True):
    """A scatter index of `shape` along `dim` (of size n); unique along dim unless asked otherwise."""
    rng = np.random.default_rng(seed)
    dim %= len(shape)
    if not unique:
        return rng.integers(0, n, size=shape).tolist()
    moved = (shape[dim],) + tuple(s for k, s in enumerate(shape) if k != dim)
    flat = np.stack([rng.permutation(n)[:shape[dim]] for _ in range(int(np.prod(moved[1:])))], axis=1)
    return np.moveaxis(flat.reshape(moved), 0, dim).tolist()


SCATTER_CASES = [(0, (2, 4, 5)), (1, (3, 3, 2)), (-1, (2, 2, 5)), (2, (1, 1, 3))]


@pytest.mark.parametrize("dtype", ALL)
def test_scatter(dtype):
    for layout in LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout)
        src = make_pair((3, 4, 6), dtype, seed=3)  # larger than index: the leading block is used
        for dim, ishape in SCATTER_CASES:
            i = ipair(_perm_index(ishape, dim, SHAPE[dim]), "int32" if dim == 1 else "int64")
            assert_same(*both(lambda x, i, s: x.scatter(dim, i, s), x, i, src))
            value = True if dtype == "bool" else 2
            assert_same(*both(lambda x, i: x.scatter(dim, i, value), x, i))
            assert_same(*both(lambda x, i: x.scatter(dim, i, value=value), x, i))
        assert_same(*both(lambda x, i, s: torch.scatter(x, 0, i, s) if isinstance(x, torch.Tensor)
                          else ember.scatter(x, 0, i, s), x, ipair([[[0, 2, 1, 0, 2]] * 2]), src))


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("reduce", ["add", "multiply"])
def test_scatter_reduce_arg(dtype, reduce):
    x = make_pair(SHAPE, dtype, layout="transposed", low=-2, high=2)
    src = make_pair((3, 4, 5), dtype, seed=3, low=-2, high=2)
    i = ipair(_perm_index((3, 4, 5), 1, 4, unique=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same(*both(lambda x, i, s: x.scatter(1, i, s, reduce=reduce), x, i, src))
        assert_same(*both(lambda x, i: x.scatter(1, i, 3, reduce=reduce), x, i))


@pytest.mark.parametrize("dtype", ALL)
def test_scatter_inplace(dtype):
    for layout in WRITE_LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout)
        src = make_pair(SHAPE, dtype, seed=3)
        i = ipair(_perm_index((2, 4, 5), 0, 3))
        r = x[0].scatter_(0, i[0], src[0])
        x[1].scatter_(0, i[1], src[1])
        assert r is x[0]
        assert_same(x[0], x[1])
        v = False if dtype == "bool" else 1
        x[0].scatter_(2, i[0][:, :, :2], v)
        x[1].scatter_(2, i[1][:, :, :2], v)
        assert_same(x[0], x[1])


@pytest.mark.parametrize("dtype", ALL)
def test_scatter_add(dtype):
    for layout in LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout, low=-2, high=2)
        src = make_pair((4, 4, 5), dtype, seed=3, low=-2, high=2)
        for dim, ishape in SCATTER_CASES + [(0, (4, 4, 5))]:
            i = ipair(_perm_index(ishape, dim, SHAPE[dim], unique=False))
            assert_same(*both(lambda x, i, s: x.scatter_add(dim, i, s), x, i, src))
        if layout != "expanded":
            i = ipair(_perm_index((4, 2, 5), 0, 3, unique=False))
            x[0].scatter_add_(0, i[0], src[0])
            x[1].scatter_add_(0, i[1], src[1])
            assert_same(x[0], x[1])


@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(dtype, reduce, include_self):
    if dtype == "bool" and reduce == "mean":  # torch has no bool mean either
        with pytest.raises(RuntimeError, match="mean"):
            ember.zeros(3, dtype=ember.bool).scatter_reduce(0, ember.tensor([0]), ember.tensor([True]), "mean")
        return
    x = make_pair(SHAPE, dtype, layout="sliced", low=-2, high=2)
    src = make_pair((4, 4, 5), dtype, seed=3, low=-2, high=2)
    i = ipair(_perm_index((4, 3, 5), 0, 3, unique=False))
    assert_same(*both(lambda x, i, s: x.scatter_reduce(0, i, s, reduce, include_self=include_self), x, i, src))
    x2 = make_pair(SHAPE, dtype, layout="transposed", low=-2, high=2)
    x2[0].scatter_reduce_(1, i[0][:, :, :4].transpose(0, 1), src[0], reduce, include_self=include_self)
    x2[1].scatter_reduce_(1, i[1][:, :, :4].transpose(0, 1), src[1], reduce, include_self=include_self)
    assert_same(x2[0], x2[1])


def test_scatter_reduce_nan():
    x = (ember.zeros(3), torch.zeros(3))
    s = (ember.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 1.0]))
    i = ipair([0, 0])
    for r in ("amax", "amin", "sum"):
        assert_same(*both(lambda x, i, s: x.scatter_reduce(0, i, s, r), x, i, s))


def test_scatter_scalar_and_empty():
    x = (ember.tensor(1.0), torch.tensor(1.0))
    assert_same(*both(lambda x: x.scatter(0, x.new_tensor([0]).long(), 5.0), x))
    y = make_pair((3, 4))
    e_idx = (ember.zeros(0, 4, dtype=ember.int64), torch.zeros(0, 4, dtype=torch.int64))
    assert_same(*both(lambda y, i: y.scatter(0, i, 1.0), y, e_idx))
    assert_same(*both(lambda y, i: y.scatter_add(0, i, y), y, e_idx))


def test_scatter_value_casts():
    x = (ember.zeros(3, dtype=ember.int64), torch.zeros(3, dtype=torch.int64))
    i = ipair([1])
    assert_same(*both(lambda x, i: x.scatter(0, i, 2.7), x, i))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        o = (ember.ones(3, dtype=ember.int64), torch.ones(3, dtype=torch.int64))
        assert_same(*both(lambda x, i: x.scatter(0, i, 2.7, reduce="multiply"), o, ipair([1, 1])))


def test_scatter_errors():
    e = ember.zeros(3, 4)
    i = ember.zeros(1, 2, dtype=ember.int64)
    with pytest.raises(RuntimeError, match="self.dtype to be equal to src.dtype"):
        e.scatter(0, i, ember.ones(1, 2, dtype=ember.float64))
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 0 with size 3"):
        e.scatter(0, ember.full((1, 2), 3, dtype=ember.int64), 1.0)
    with pytest.raises(RuntimeError, match="index -1 is out of bounds"):
        e.scatter_add(0, ember.full((1, 2), -1, dtype=ember.int64), ember.ones(1, 2))
    with pytest.raises(RuntimeError, match="no larger size than src"):
        e.scatter(0, ember.zeros(2, 2, dtype=ember.int64), ember.ones(1, 2))
    with pytest.raises(RuntimeError, match="no larger than self"):
        e.scatter(0, ember.zeros(2, 5, dtype=ember.int64), 1.0)
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        e.scatter(0, ember.zeros(2, dtype=ember.int64), 1.0)
    with pytest.raises(RuntimeError, match="same number of dimensions as src"):
        e.scatter(0, i, ember.tensor(2.0))
    with pytest.raises(RuntimeError, match="int32/int64"):
        e.scatter(0, i.float(), 1.0)
    with pytest.raises(RuntimeError, match="add or multiply|'add' or 'multiply'"):
        e.scatter(0, i, 1.0, reduce="max")
    with pytest.raises(RuntimeError, match="sum, prod, mean, amax or amin"):
        e.scatter_reduce(0, i, ember.ones(1, 2), "max")
    with pytest.raises(TypeError, match="src"):
        e.scatter(0, i)
    with pytest.raises(IndexError, match="out of range"):
        e.scatter(2, i, 1.0)
    with pytest.raises(RuntimeError, match="overflow"):
        ember.zeros(3, dtype=ember.int8).scatter(0, ember.tensor([0]), 300)


# ---- index_add / index_copy / index_fill ----------------------------------------------------

@pytest.mark.parametrize("dtype", ALL)
def test_index_add_copy_fill(dtype):
    for layout in LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout, low=-2, high=2)
        for dim, data, idt in ((0, [2, 0, 2, 2], "int64"), (1, [3, 1], "int32"), (-1, [4], "int64"), (2, [], "int64")):
            i = ipair(data, idt)
            sshape = list(SHAPE)
            sshape[dim] = len(data)
            src = make_pair(sshape, dtype, seed=5, low=-2, high=2)
            assert_same(*both(lambda x, i, s: x.index_add(dim, i, s), x, i, src))
            if dtype != "bool":
                alpha = 2 if dtype not in FLOATS else 0.5
                assert_same(*both(lambda x, i, s: x.index_add(dim, i, s, alpha=alpha), x, i, src))
            ul = ipair(sorted(set(data)))  # index_copy: unique indices
            sshape[dim] = len(set(data))
            src = make_pair(sshape, dtype, seed=6)
            assert_same(*both(lambda x, i, s: x.index_copy(dim, i, s), x, ul, src))
            neg = ipair([d - SHAPE[dim] for d in data])  # index_fill wraps negative indices
            value = True if dtype == "bool" else 3
            assert_same(*both(lambda x, i: x.index_fill(dim, i, value), x, neg))
            v0 = zpair(dtype, seed=8)
            assert_same(*both(lambda x, i, v: x.index_fill(dim, i, v), x, ipair(sorted(set(data))), v0))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "bool"])
def test_index_add_copy_fill_inplace(dtype):
    for layout in WRITE_LAYOUTS:
        i = ipair([2, 0])
        src = make_pair((3, 2, 5), dtype, seed=5)
        for op, args in (("index_add_", (1, i, src)), ("index_copy_", (1, i, src)), ("index_fill_", (1, i, 1))):
            x = make_pair(SHAPE, dtype, layout=layout)
            pe = [a[0] if isinstance(a, tuple) else a for a in args]
            pt = [a[1] if isinstance(a, tuple) else a for a in args]
            r = getattr(x[0], op)(*pe)
            getattr(x[1], op)(*pt)
            assert r is x[0]
            assert_same(x[0], x[1])


def test_index_ops_scalar_self():
    s = (ember.tensor(1.0), torch.tensor(1.0))
    assert_same(*both(lambda s: s.index_fill(0, s.new_tensor([0]).long(), 2.0), s))
    assert_same(*both(lambda s: s.index_fill(0, s.new_tensor(0).long(), 2.0), s))
    assert_same(*both(lambda s: s.index_add(0, s.new_tensor([0]).long(), s.new_tensor(2.0)), s))
    with pytest.raises(RuntimeError, match="dimensions|shape must match"):
        s[0].index_add(0, ember.tensor([0]), ember.tensor([2.0]))  # index_add wants equal dims, as torch
    assert_same(*both(lambda s: s.index_copy(0, s.new_tensor([0]).long(), s.new_tensor([3.0])), s))


def test_index_add_int_alpha_truncates():
    x = (ember.zeros(3, dtype=ember.int64), torch.zeros(3, dtype=torch.int64))
    s = ipair([3])
    assert_same(*both(lambda x, i, s: x.index_add(0, i, s, alpha=1.5), x, ipair([0]), s))


def test_index_add_copy_fill_errors():
    e = ember.zeros(3, 4)
    with pytest.raises(RuntimeError, match="same dtype"):
        e.index_add(0, ember.tensor([0]), ember.ones(1, 4, dtype=ember.float64))
    with pytest.raises(RuntimeError, match=r"Number of indices \(1\) should be equal to source.size\(dim\) \(2\)"):
        e.index_add(0, ember.tensor([0]), ember.ones(2, 4))
    with pytest.raises(RuntimeError, match="source tensor shape must match"):
        e.index_add(0, ember.tensor([0]), ember.ones(1, 3))
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 0 with size 3"):
        e.index_add(0, ember.tensor([3]), ember.ones(1, 4))
    with pytest.raises(RuntimeError, match="index -1 is out of bounds"):
        e.index_add(0, ember.tensor([-1]), ember.ones(1, 4))
    with pytest.raises(RuntimeError, match="int32/int64"):
        e.index_add(0, ember.tensor([0], dtype=ember.int16), ember.ones(1, 4))
    with pytest.raises(IndexError, match="vector"):
        e.index_add(0, ember.tensor([[0]]), ember.ones(1, 4))
    with pytest.raises(RuntimeError, match="long"):
        e.index_copy(0, ember.tensor([0], dtype=ember.int32), ember.ones(1, 4))
    with pytest.raises(IndexError, match="index -1 is out of bounds"):
        e.index_copy(0, ember.tensor([-1]), ember.ones(1, 4))
    with pytest.raises(RuntimeError, match="same dtype"):
        e.index_copy(0, ember.tensor([0]), ember.ones(1, 4, dtype=ember.float64))
    with pytest.raises(IndexError, match="long"):
        e.index_fill(0, ember.tensor([0], dtype=ember.int32), 1.0)
    with pytest.raises(IndexError, match="index 3 is out of bounds"):
        e.index_fill(0, ember.tensor([3]), 1.0)
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        e.index_fill(0, ember.tensor([0]), ember.tensor([1.0]))
    with pytest.raises(RuntimeError, match="vector"):
        e.index_fill(0, ember.tensor([[0]]), 1.0)


# ---- masked ops ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL)
def test_masked_fill_select(dtype):
    for layout in LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout)
        value = False if dtype == "bool" else (-7 if dtype not in FLOATS else 0.25)
        for mshape in (SHAPE, (4, 5), (5,), (1, 4, 1), ()):
            m = mpair(mshape, seed=len(mshape))
            assert_same(*both(lambda x, m: x.masked_fill(m, value), x, m))
            assert_same(*both(lambda x, m: x.masked_select(m), x, m))
        m = mpair(SHAPE)
        v = zpair(dtype, seed=4)
        assert_same(*both(lambda x, m, v: x.masked_fill(m, v), x, m, v))
        mt = mpair((5, 4, 3), seed=6)  # a non-contiguous mask
        assert_same(*both(lambda x, m: x.masked_fill(m.permute(2, 1, 0), value), x, mt))
        assert_same(*both(lambda x, m: x.masked_select(m.permute(2, 1, 0)), x, mt))
        big = mpair((2,) + SHAPE)  # the mask broadcasts self in the out-of-place forms
        assert_same(*both(lambda x, m: x.masked_fill(m, value), x, big))
        assert_same(*both(lambda x, m: x.masked_select(m), x, big))
        assert_same(ember.masked_select(x[0], m[0]), torch.masked_select(x[1], m[1]))


@pytest.mark.parametrize("dtype", ALL)
def test_masked_fill_inplace(dtype):
    for layout in WRITE_LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout)
        m = mpair((4, 5))
        value = True if dtype == "bool" else 5
        r = x[0].masked_fill_(m[0], value)
        x[1].masked_fill_(m[1], value)
        assert r is x[0]
        assert_same(x[0], x[1])
        m2 = mpair((3, 5, 4))
        x[0].masked_fill_(m2[0].transpose(1, 2), ember.tensor(1.0))  # non-contiguous mask, 0-d tensor value
        x[1].masked_fill_(m2[1].transpose(1, 2), torch.tensor(1.0))
        assert_same(x[0], x[1])


def test_masked_fill_value_casts():
    m = (ember.ones(3, dtype=ember.bool), torch.ones(3, dtype=torch.bool))
    for dt, v in ((ember.int64, 2.7), (ember.bool, 2), (ember.float16, 1e-3)):
        x = (ember.zeros(3, dtype=dt), torch.zeros(3, dtype=DTYPES[dt.name][1]))
        assert_same(*both(lambda x, m: x.masked_fill(m, v), x, m))
    x = (ember.zeros(3), torch.zeros(3))
    v = (ember.tensor(2.5, dtype=ember.float64), torch.tensor(2.5, dtype=torch.float64))
    assert_same(*both(lambda x, m, v: x.masked_fill(m, v), x, m, v))


def test_fill_values_convert_as_torch():
    """A fill value out of the destination's range raises as in torch: a Python scalar in the meta
    (every backend), a 0-d tensor's value in the kernel; floats overflow too, inf does not."""
    m = (ember.ones(2, dtype=ember.bool), torch.ones(2, dtype=torch.bool))
    for dt, v in ((ember.int8, ember.tensor(300)), (ember.float16, 1e10), (ember.bfloat16, -1e39),
                  (ember.float32, 1e39), (ember.uint8, -256)):
        x = ember.zeros(2, dtype=dt)
        with pytest.raises(RuntimeError, match="overflow"):
            x.masked_fill(m[0], v)
        with pytest.raises(RuntimeError):
            torch.zeros(2, dtype=DTYPES[dt.name][1]).masked_fill(m[1], v if not isinstance(v, ember.Tensor)
                                                                 else torch.tensor(300))
    for dt, v in ((ember.float16, float("inf")), (ember.uint8, -200), (ember.int8, ember.tensor(2.9))):
        x = (ember.zeros(2, dtype=dt), torch.zeros(2, dtype=DTYPES[dt.name][1]))
        tv = torch.tensor(2.9) if isinstance(v, ember.Tensor) else v
        assert_same(x[0].masked_fill(m[0], v), x[1].masked_fill(m[1], tv))
        assert_same(x[0].index_fill(0, ember.tensor([1]), v), x[1].index_fill(0, torch.tensor([1]), tv))


def test_masked_errors():
    e = ember.zeros(3, 4)
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        e.masked_fill(ember.ones(3, 4, dtype=ember.uint8), 1.0)
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        e.masked_fill_(ember.ones(3, 4), 1.0)
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        e.masked_fill(ember.ones(3, 4, dtype=ember.bool), ember.tensor([1.0]))
    with pytest.raises(RuntimeError, match="broadcast"):
        e.masked_fill(ember.ones(3, dtype=ember.bool), 1.0)
    with pytest.raises(RuntimeError, match="broadcast"):
        ember.zeros(4).masked_fill_(ember.ones(3, 4, dtype=ember.bool), 1.0)
    with pytest.raises(RuntimeError, match="overflow"):
        ember.zeros(2, dtype=ember.int8).masked_fill(ember.ones(2, dtype=ember.bool), 300)
    with pytest.raises(RuntimeError, match="overflow"):
        ember.zeros(2, dtype=ember.int64).masked_fill(ember.ones(2, dtype=ember.bool), float("nan"))
    with pytest.raises(RuntimeError, match="boolean masks|BoolTensor"):
        e.masked_select(ember.ones(3, 4, dtype=ember.uint8))
    with pytest.raises(RuntimeError, match="broadcast"):
        e.masked_select(ember.ones(2, dtype=ember.bool))
    with pytest.raises(RuntimeError, match="number of ones in mask"):
        e.masked_scatter(ember.ones(3, 4, dtype=ember.bool), ember.ones(5))
    with pytest.raises(RuntimeError, match="same dtype"):
        e.masked_scatter(ember.ones(3, 4, dtype=ember.bool), ember.ones(12, dtype=ember.float64))
    with pytest.raises(RuntimeError, match="boolean masks"):
        e.masked_scatter_(ember.ones(3, 4, dtype=ember.uint8), ember.ones(12))
    with pytest.raises(RuntimeError, match="broadcast"):
        ember.zeros(4).masked_scatter_(ember.ones(3, 4, dtype=ember.bool), ember.ones(12))


@pytest.mark.parametrize("dtype", ALL)
def test_masked_scatter(dtype):
    for layout in LAYOUTS:
        x = make_pair(SHAPE, dtype, layout=layout)
        src = make_pair((70,), dtype, seed=2)
        for mshape in (SHAPE, (4, 5), (2,) + SHAPE):
            m = mpair(mshape)
            assert_same(*both(lambda x, m, s: x.masked_scatter(m, s), x, m, src))
        s2 = make_pair((8, 9), dtype, seed=2, layout="transposed")  # a non-contiguous source is read row-major
        m = mpair(SHAPE)
        assert_same(*both(lambda x, m, s: x.masked_scatter(m, s), x, m, s2))
        if layout != "expanded":
            r = x[0].masked_scatter_(m[0], src[0])
            x[1].masked_scatter_(m[1], src[1])
            assert r is x[0]
            assert_same(x[0], x[1])


# ---- put_ ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("accumulate", [False, True])
def test_put(dtype, accumulate):
    for layout in WRITE_LAYOUTS:
        x = make_pair((3, 4), dtype, layout=layout, low=-2, high=2)
        data = [0, 11, -1, 5, 5, -12] if accumulate else [0, 10, -1, 5, -8]
        i = ipair(data)
        src = make_pair((len(data),), dtype, seed=3, low=-2, high=2)
        assert_same(*both(lambda x, i, s: x.put(i, s, accumulate), x, i, src))
        r = x[0].put_(i[0], src[0], accumulate)
        x[1].put_(i[1], src[1], accumulate)
        assert r is x[0]
        assert_same(x[0], x[1])


def test_put_errors():
    e = ember.zeros(2, 3)
    with pytest.raises(IndexError, match="tried to access index 6 on a tensor of 6 elements"):
        e.put_(ember.tensor([6]), ember.tensor([1.0]))
    with pytest.raises(IndexError, match="same number of elements"):
        e.put_(ember.tensor([1, 2]), ember.tensor([1.0]))
    with pytest.raises(RuntimeError, match="long"):
        e.put_(ember.tensor([1], dtype=ember.int32), ember.tensor([1.0]))
    with pytest.raises(RuntimeError, match="same dtype"):
        e.put_(ember.tensor([1]), ember.tensor([1.0], dtype=ember.float64))


# ---- dispatcher integration ------------------------------------------------------------------

def test_inplace_ops_bump_version_and_share_storage():
    base = ember.zeros(4, 6)
    v = base[:, ::2]
    i = ember.tensor([0, 2])
    for op, args in (("index_put_", lambda: ([i], ember.tensor(1.0))), ("masked_fill_", lambda: (v > 0.5, 2.0)),
                     ("scatter_", lambda: (0, ember.zeros(1, 3, dtype=ember.int64), 3.0)),
                     ("index_fill_", lambda: (1, i, 4.0)), ("put_", lambda: (i, ember.tensor([5.0, 6.0])))):
        before = base._version
        assert getattr(v, op)(*args()) is v
        assert base._version == before + 1, op
    expected = torch.zeros(4, 6)
    tv = expected[:, ::2]
    ti = torch.tensor([0, 2])
    tv.index_put_([ti], torch.tensor(1.0))
    tv.masked_fill_(tv > 0.5, 2.0)
    tv.scatter_(0, torch.zeros(1, 3, dtype=torch.int64), 3.0)
    tv.index_fill_(1, ti, 4.0)
    tv.put_(ti, torch.tensor([5.0, 6.0]))
    assert_same(base, expected)


def test_exports():
    for name in ("index", "index_put", "index_select", "gather", "scatter", "scatter_add", "scatter_reduce",
                 "index_add", "index_copy", "index_fill", "masked_fill", "masked_select", "masked_scatter",
                 "take", "embedding", "one_hot", "argwhere"):
        assert callable(getattr(ember, name)), name
    for name in ("index_put_", "scatter_", "scatter_add_", "scatter_reduce_", "index_add_", "index_copy_",
                 "index_fill_", "masked_fill_", "masked_scatter_", "put_", "nonzero", "argwhere", "take"):
        assert callable(getattr(ember.Tensor, name)), name


def test_empty_masks_and_scalar_self():
    e, t = make_pair((3, 4))
    assert_same(e[e > 100], t[t > 100])  # no match: empty index tensors
    e[e > 100] = 0.0
    t[t > 100] = 0.0
    assert_same(e, t)
    e3, t3 = make_pair((2, 3, 4), layout="transposed")
    assert_same(e3[:, e3[0] > 100], t3[:, t3[0] > 100])
    s = (ember.tensor(5.0), torch.tensor(5.0))
    for mask in (True, False):
        m = ipair(mask, "bool")
        assert_same(s[0][m[0]], s[1][m[1]])
    with pytest.raises(IndexError, match="too many indices"):
        s[1][None, torch.tensor([0, 0])]
    with pytest.raises(IndexError, match="0-dim tensor"):
        s[0][None, ember.tensor([0, 0])]

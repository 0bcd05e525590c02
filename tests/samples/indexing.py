"""Samples of the indexing family (src/ember/ops/indexing.py): advanced indexing, nonzero/argwhere,
index_select, gather, the scatter family, index_add/copy/fill, masked_*, take/put, embedding, one_hot.

Index tensors hold valid indices. Where an op writes without accumulating (scatter, index_copy,
index_put, put), the indices of each sample are distinct, so that the result does not depend on
which duplicate wins (it need not be the last on CUDA) and gradcheck sees a differentiable op.
scatter_reduce's amax/amin samples hold distinct values (no ties). Out-of-range index values are
ErrorSamples matched on "out of range|out of bounds": the CPU raises at the call, CUDA at the next
synchronisation (a RuntimeError from the device's error word).
"""
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register


def T(shape, dtype="float32", layout="contiguous", seed=0, low=-3.0, high=3.0):
    return make_pair(shape, dtype, low=low, high=high, seed=seed, layout=layout)[0]


def L(values, dtype=ember.int64):
    return ember.tensor(values, dtype=dtype)


def I32(values):
    return L(values, ember.int32)


def with_zeros(shape, dtype="float32", layout="contiguous", seed=0):
    """Data with zeros in it (nonzero, masked ops): integers in [-1, 1] as `dtype`."""
    return T(shape, "int64", layout, seed, low=-1, high=1).to(getattr(ember, dtype))


def mask(shape, seed=1, layout="contiguous"):
    return T(shape, "bool", layout, seed)


OOB = (IndexError, RuntimeError)      # CPU: the call raises; CUDA: the next synchronisation
OOB_MATCH = r"out of (range|bounds)"
IDX_DTYPE = (RuntimeError, r"int32/int64")
LONG_ONLY = (RuntimeError, r"long \(int64\)")
BAD_DIM = (IndexError, r"[Dd]imension out of range")


def inplace(name, samples, errors=None, **kw):
    """Registers `name` and `name_` with the same samples (torch's function and Tensor method)."""
    ref = getattr(torch, name, None) or getattr(torch.Tensor, name)
    register(OpInfo(name, samples, errors, ref=ref, **kw))
    register(OpInfo(name + "_", samples, errors, ref=getattr(torch.Tensor, name + "_"), **kw))


# ---- index / index_put -----------------------------------------------------------------------------

def index_samples():
    return [
        Sample((T((3, 4)), [L([2, 0, 2])]), desc="rows, a repeat"),
        Sample((T((3, 4, 5), "int64"), [None, L([[0, 3], [1, 2]])]), desc="2-d index on dim 1, int64"),
        Sample((T((3, 4, 5), "float64"), [L([0, 2]), L([[1], [3]])]), desc="adjacent indices broadcast, float64"),
        Sample((T((3, 4, 5), "float16"), [L([0, 2]), None, I32([1, -4])]), desc="separated: batch first, int32, "
                                                                                 "negative"),
        Sample((T((3, 4), "bfloat16"), [mask((3, 4))]), desc="a full mask, bfloat16"),
        Sample((T((3, 4), "bool"), [None, mask((4,))]), desc="a mask on dim 1, bool"),
        Sample((T((4, 3), layout="transposed"), [L([1, 0])]), desc="transposed"),
        Sample((T((3, 4)), [L(1)]), desc="0-d index"),
        Sample((T((0, 4)), [None, L([1, 2])]), desc="empty self"),
        Sample((T((3, 4), "int32"), [L([], ember.int64)]), desc="empty index"),
    ]


def index_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, [ember.tensor([0.0])]), {}, IndexError, r"must be long, int, byte or bool", desc="float index"),
        ErrorSample((x, [L([0]), L([0]), L([0])]), {}, IndexError, r"too many indices", desc="3 indices, 2 dims"),
        ErrorSample((x, [mask((2,))]), {}, IndexError, r"shape of the mask \[2\]", desc="mask shape"),
        ErrorSample((x, [L([0, 1]), L([0, 1, 2])]), {}, IndexError, r"shape mismatch", desc="no broadcast"),
        ErrorSample((x, [L([3])]), {}, OOB, OOB_MATCH, desc="index 3 of size 3"),
    ]


register(OpInfo("index", index_samples, index_errors, ref=torch.ops.aten.index))


def index_put_samples():
    return [
        Sample((T((3, 4)), [L([0, 2])], T((2, 4), seed=1)), desc="rows"),
        Sample((T((3, 4)), [L([0, 2, 0])], T((3, 4), seed=1), True), desc="accumulate, a repeat"),
        Sample((T((3, 4), "int64"), [None, L([1, 3])], T((1, 2), "int64", seed=1)), desc="dim 1, values broadcast"),
        Sample((T((3, 4), "float64"), [L([2, 0]), I32([1, 3])], T((2,), "float64", seed=1)), desc="two indices, "
                                                                                                 "float64"),
        Sample((T((3, 4), "float64"), [L([1, 0, 1])], T((4,), "float64", seed=1), True), desc="accumulate, float64"),
        Sample((T((3, 4), "float16"), [mask((3, 4))], T((), "float16", seed=1)), desc="a mask, one value, float16"),
        Sample((T((3, 4), "bool"), [L([1])], T((1, 4), "bool", seed=1)), desc="bool"),
        Sample((T((4, 3), "bfloat16", layout="transposed"), [None, L([2, 0])], T((4, 2), "bfloat16", seed=1,
                                                                                  layout="transposed")),
               desc="transposed self and values, bfloat16"),
        Sample((T((3, 4)), [L([], ember.int64)], T((0, 4), seed=1)), desc="empty index"),
    ]


def index_put_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, [L([0])], T((1, 4), "float64")), {}, RuntimeError, r"dtypes match", desc="values dtype"),
        ErrorSample((x, [L([0])], T((3,))), {}, RuntimeError, r"shape mismatch", desc="values shape"),
        ErrorSample((x, [I32([0]).to(ember.int16)], T((4,))), {}, IndexError, r"long, int, byte or bool",
                    desc="int16 index"),
    ]


register(OpInfo("index_put", index_put_samples, index_put_errors, ref=torch.ops.aten.index_put))
register(OpInfo("index_put_", index_put_samples, index_put_errors, ref=torch.ops.aten.index_put_))


# ---- nonzero / argwhere ----------------------------------------------------------------------------

def nonzero_samples():
    return [
        Sample((with_zeros((3, 4)),), desc="float32"),
        Sample((with_zeros((2, 3, 2), "int64"),), desc="3-d int64"),
        Sample((mask((5,)),), desc="1-d bool"),
        Sample((with_zeros((4, 3), "float16", "transposed"),), desc="transposed float16"),
        Sample((ember.tensor(2.0),), desc="0-d non-zero"),
        Sample((ember.tensor(0),), desc="0-d zero"),
        Sample((T((0, 3)),), desc="empty"),
    ]


for _name in ("nonzero", "argwhere"):
    register(OpInfo(_name, nonzero_samples, ref=getattr(torch, _name), grad="integer output"))


# ---- index_select / gather -------------------------------------------------------------------------

def index_select_samples():
    return [
        Sample((T((3, 4)), 0, L([2, 0, 2])), desc="dim 0, a repeat"),
        Sample((T((3, 4), "int64"), -1, I32([3, 1])), desc="dim -1, int32 index"),
        Sample((T((3, 4), "float64"), 1, L([0, 3, 0])), desc="float64"),
        Sample((T((3, 4), "float16", "sliced"), 1, L(2)), desc="0-d index, sliced float16"),
        Sample((T(()), 0, L([0])), desc="0-d self"),
        Sample((T((2, 3), "bool"), 0, L([], ember.int64)), desc="empty index, bool"),
        Sample((T((4, 3), "bfloat16", "transposed"), 0, L([3, 0])), desc="transposed bfloat16"),
    ]


def index_select_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, 0, ember.tensor([0.0])), {}, *IDX_DTYPE, desc="float index"),
        ErrorSample((x, 0, L([[0]])), {}, IndexError, r"vector", desc="2-d index"),
        ErrorSample((x, 2, L([0])), {}, *BAD_DIM, desc="dim 2 of 2"),
        ErrorSample((T(()), 0, L([0, 0])), {}, RuntimeError, r"Index to scalar can have only 1 value",
                    desc="two indices into a 0-d self"),
        ErrorSample((x, 0, L([3])), {}, OOB, OOB_MATCH, desc="index 3 of size 3"),
    ]


register(OpInfo("index_select", index_select_samples, index_select_errors, ref=torch.index_select))


def gather_samples():
    return [
        Sample((T((3, 4)), 1, L([[0, 3], [1, 1], [2, 0]])), desc="dim 1"),
        Sample((T((3, 4), "int64"), 0, I32([[2, 0, 1, 1], [0, 0, 2, 1]])), desc="dim 0, int32 index, int64"),
        Sample((T((3, 4), "float64"), -1, L([[3, 0], [1, 2]])), desc="dim -1, index smaller than self, float64"),
        Sample((T((4, 3), "float16", "transposed"), 0, L([[3, 0, 1]])), desc="transposed float16"),
        Sample((T(()), 0, L(0)), desc="0-d self and index"),
        Sample((T((2, 3), "bool"), 1, L([[0, 2]])), desc="bool"),
        Sample((T((2, 3), "bfloat16"), 0, ember.zeros(0, 3, dtype=ember.int64)), desc="empty index, bfloat16"),
    ]


def gather_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, 0, ember.tensor([[0.0]])), {}, *IDX_DTYPE, desc="float index"),
        ErrorSample((x, 0, L([0])), {}, RuntimeError, r"same number of dimensions", desc="1-d index, 2-d self"),
        ErrorSample((x, 0, ember.zeros(2, 5, dtype=ember.int64)), {}, RuntimeError, r"Size does not match",
                    desc="index wider than self"),
        ErrorSample((x, 2, L([[0]])), {}, *BAD_DIM, desc="dim 2 of 2"),
        ErrorSample((x, 0, L([[3]])), {}, OOB, OOB_MATCH, desc="index 3 of size 3"),
    ]


register(OpInfo("gather", gather_samples, gather_errors, ref=torch.gather))


# ---- scatter family --------------------------------------------------------------------------------

# Along dim 0 of a (3, 4) tensor, each column's indices are distinct.
COLS = [[0, 1, 2, 0], [2, 0, 1, 1]]


def scatter_samples():
    return [
        Sample((T((3, 4)), 0, L(COLS), T((2, 4), seed=1)), desc="src"),
        Sample((T((3, 4), "float64"), 1, L([[3, 0], [1, 2], [0, 1]]), T((3, 2), "float64", seed=1)),
               desc="dim 1, float64"),
        Sample((T((3, 4), "int64"), 0, I32(COLS), T((3, 5), "int64", seed=1)), desc="src larger than index, int32"),
        Sample((T((3, 4), "float16"), -2, L(COLS), 2.5), desc="a scalar src, dim -2, float16"),
        Sample((T((3, 4), "int32"), 0, L(COLS)), {"value": 7}, desc="value=, int32"),
        Sample((T((3, 4)), 0, L([[0, 0, 1, 1]]), T((1, 4), seed=1)), {"reduce": "add"}, desc="reduce add"),
        Sample((T((3, 4), "int64"), 0, L(COLS), 3), {"reduce": "multiply"}, desc="reduce multiply, scalar"),
        Sample((T((4, 3), "bfloat16", "transposed"), 1, L([[2, 0], [1, 2], [0, 1], [2, 1]]),
                T((4, 2), "bfloat16", "transposed", seed=1)), desc="transposed self and src, bfloat16"),
        Sample((T((2, 3), "bool"), 1, L([[1], [0]]), T((2, 1), "bool", seed=1)), desc="bool"),
        Sample((T(()), 0, L(0), T((), seed=1)), desc="0-d"),
        Sample((T((3, 4)), 0, ember.zeros(0, 4, dtype=ember.int64), T((0, 4), seed=1)), desc="empty index"),
    ]


def scatter_errors():
    x, i = T((3, 4)), L(COLS)
    return [
        ErrorSample((x, 0, i, T((2, 4), "float64")), {}, RuntimeError, r"self.dtype to be equal to src.dtype",
                    desc="src dtype"),
        ErrorSample((x, 0, i.to(ember.float32), T((2, 4))), {}, *IDX_DTYPE, desc="float index"),
        ErrorSample((x, 0, L([0, 1]), T((2,))), {}, RuntimeError, r"same number of dimensions", desc="1-d index"),
        ErrorSample((x, 0, i, T((1, 4))), {}, RuntimeError, r"no larger size than src", desc="src smaller"),
        ErrorSample((x, 0, ember.zeros(2, 5, dtype=ember.int64), T((2, 5))), {}, RuntimeError,
                    r"no larger than self", desc="index wider than self"),
        ErrorSample((x, 2, i, T((2, 4))), {}, *BAD_DIM, desc="dim 2 of 2"),
        ErrorSample((x, 0, i, T((2, 4))), {"reduce": "max"}, RuntimeError, r"'add' or 'multiply'",
                    desc="reduce='max'"),
        ErrorSample((x, 0, i), {}, TypeError, r"src", desc="neither src nor value"),
        ErrorSample((T((3, 4), "int8"), 0, i, 300), {}, RuntimeError, r"overflow", desc="300 into int8"),
        ErrorSample((x, 0, L([[3, 0, 0, 0]]), T((1, 4))), {}, OOB, OOB_MATCH, desc="index 3 of size 3"),
    ]


inplace("scatter", scatter_samples, scatter_errors)


def scatter_add_samples():
    return [
        Sample((T((3, 4)), 0, L([[0, 0, 2, 1], [0, 1, 2, 2]]), T((2, 4), seed=1)), desc="repeats accumulate"),
        Sample((T((3, 4), "float64"), -1, L([[3, 3], [0, 1], [2, 2]]), T((3, 2), "float64", seed=1)),
               desc="dim -1, float64"),
        Sample((T((3, 4), "int64"), 0, I32([[1, 1, 1, 1]]), T((2, 5), "int64", seed=1)),
               desc="src larger than index, int32 index"),
        Sample((T((3, 4), "float16"), 1, L([[0, 0], [3, 3], [1, 2]]), T((3, 2), "float16", seed=1)),
               desc="float16"),
        Sample((T((4, 3), "float32", "transposed"), 0, L([[3, 0, 3]]), T((1, 3), layout="transposed", seed=1)),
               desc="transposed"),
        Sample((T(()), 0, L([0]), T((1,), seed=1)), desc="0-d self, 1-d index and src"),
    ]


def scatter_add_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, 0, L([[0]]), T((1, 1), "int64")), {}, RuntimeError, r"self.dtype to be equal to src.dtype",
                    desc="src dtype"),
        ErrorSample((x, 0, L([[0]]), T((1, 1, 1))), {}, RuntimeError, r"same number of dimensions",
                    desc="3-d src"),
    ]


inplace("scatter_add", scatter_add_samples, scatter_add_errors)


def _distinct(shape, dtype="float32", offset=0, layout="contiguous"):
    """Distinct values (no ties for amax/amin), away from 0 (prod), exact in every dtype."""
    n = 1
    for s in shape:
        n *= s
    base = (shape[-1], shape[-2]) if layout == "transposed" else shape
    x = (ember.arange(n, dtype=ember.float64) * 0.5 + 0.25 + offset).reshape(*base)
    x = x * ember.tensor([(-1.0) ** k for k in range(base[-1])], dtype=ember.float64)
    x = x.to(getattr(ember, dtype))
    return x.transpose(0, 1) if layout == "transposed" else x


def scatter_reduce_samples():
    idx = L([[0, 0, 2, 1], [0, 1, 2, 2], [1, 0, 0, 2]])
    return [
        Sample((_distinct((3, 4), "float64"), 0, idx, _distinct((3, 4), "float64", 7), "sum"), desc="sum, float64"),
        Sample((_distinct((3, 4), "float64"), 1, L([[3, 3], [0, 1], [2, 2]]), _distinct((3, 2), "float64", 7), "sum"),
               {"include_self": False}, desc="sum, include_self=False, float64"),
        Sample((_distinct((3, 4)), 0, idx, _distinct((3, 4), offset=7), "prod"), desc="prod"),
        Sample((_distinct((3, 4)), 0, idx, _distinct((3, 4), offset=7), "amax"), {"include_self": False},
               desc="amax, include_self=False"),
        Sample((_distinct((3, 4)), 0, idx, _distinct((3, 4), offset=7), "mean"), desc="mean"),
        Sample((_distinct((3, 4), "float16"), 0, idx, _distinct((3, 4), "float16", 7), "amin"),
               desc="amin, float16"),
        Sample((T((3, 4), "int64"), 0, I32([[2, 2, 0, 0]]), T((1, 4), "int64", seed=1), "mean"),
               {"include_self": False}, desc="integer mean floors, include_self=False, int32 index"),
        Sample((T((3, 4), "bfloat16"), 1, L([[0, 0], [3, 3], [1, 2]]), T((3, 2), "bfloat16", seed=1), "sum"),
               desc="bfloat16"),
        Sample((_distinct((4, 3), layout="transposed"), 1, L([[0, 0], [2, 2], [1, 2]]),
                _distinct((3, 2), offset=9), "amax"), desc="transposed self"),
        Sample((T(()), 0, L(0), T((), seed=1), "prod"), desc="0-d"),
    ]


def scatter_reduce_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, 0, L([[0]]), T((1, 1)), "add"), {}, RuntimeError, r"sum, prod, mean, amax or amin",
                    desc="reduce='add'"),
        ErrorSample((T((3,), "bool"), 0, L([0]), T((1,), "bool"), "mean"), {}, NotImplementedError, r"mean",
                    desc="mean of bool"),
        ErrorSample((x, 0, L([[0]]), T((1, 1), "float64"), "sum"), {}, RuntimeError, r"self.dtype",
                    desc="src dtype"),
    ]


inplace("scatter_reduce", scatter_reduce_samples, scatter_reduce_errors)


# ---- index_add / index_copy / index_fill -----------------------------------------------------------

def index_add_samples():
    return [
        Sample((T((3, 4)), 0, L([2, 0, 2]), T((3, 4), seed=1)), desc="dim 0, a repeat"),
        Sample((T((3, 4), "float64"), 1, L([3, 1]), T((3, 2), "float64", seed=1)), {"alpha": 1.5},
               desc="alpha, float64"),
        Sample((T((3, 4), "int64"), -1, I32([0, 0]), T((3, 2), "int64", seed=1)), {"alpha": 2},
               desc="int alpha, int32 index"),
        Sample((T((3, 4), "float16"), 0, L([1]), T((1, 4), "float16", "transposed", seed=1)),
               desc="transposed source, float16"),
        Sample((T(()), 0, L([0]), T((), seed=1)), desc="0-d"),
        Sample((T((3, 4), "bool"), 0, L([1]), T((1, 4), "bool", seed=1)), desc="bool"),
        Sample((T((3, 4)), 0, L([], ember.int64), T((0, 4), seed=1)), desc="empty index"),
    ]


def index_add_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, 0, L([0]), T((1, 4), "float64")), {}, RuntimeError, r"same dtype", desc="source dtype"),
        ErrorSample((x, 0, L([0]), T((2, 4))), {}, RuntimeError, r"Number of indices \(1\)", desc="count"),
        ErrorSample((x, 0, L([0]), T((1, 3))), {}, RuntimeError, r"source tensor shape must match",
                    desc="slice shape"),
        ErrorSample((x, 0, L([[0]]), T((1, 4))), {}, IndexError, r"vector", desc="2-d index"),
        ErrorSample((x, 0, ember.tensor([0.0]), T((1, 4))), {}, *IDX_DTYPE, desc="float index"),
        ErrorSample((x, 0, L([3]), T((1, 4))), {}, OOB, OOB_MATCH, desc="index 3 of size 3"),
    ]


inplace("index_add", index_add_samples, index_add_errors)


def index_copy_samples():
    return [
        Sample((T((3, 4)), 0, L([2, 0]), T((2, 4), seed=1)), desc="dim 0"),
        Sample((T((3, 4), "float64"), 1, L([3, 1]), T((3, 2), "float64", seed=1)), desc="dim 1, float64"),
        Sample((T((3, 4), "int64"), -1, L([0]), T((3, 1), "int64", seed=1)), desc="dim -1, int64"),
        Sample((T((4, 3), "float16", "transposed"), 0, L([1]), T((1, 3), "float16", seed=1)),
               desc="transposed self, float16"),
        Sample((T(()), 0, L([0]), T((1,), seed=1)), desc="0-d self, 1-d source"),
        Sample((T((2, 3), "bool"), 1, L([2, 0]), T((2, 2), "bool", seed=1)), desc="bool"),
    ]


def index_copy_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, 0, I32([0]), T((1, 4))), {}, *LONG_ONLY, desc="int32 index"),
        ErrorSample((x, 0, L([0]), T((2, 4))), {}, IndexError, r"Number of indices \(1\)", desc="count"),
        ErrorSample((x, 0, L([0]), T((1, 3))), {}, RuntimeError, r"source tensor shape must match",
                    desc="slice shape"),
        ErrorSample((x, 0, L([0]), T((1, 4), "float64")), {}, RuntimeError, r"same dtype", desc="source dtype"),
    ]


inplace("index_copy", index_copy_samples, index_copy_errors)


def index_fill_samples():
    return [
        Sample((T((3, 4)), 0, L([2, -1]), 1.5), desc="negative index, scalar"),
        Sample((T((3, 4), "float64"), 1, L([3, 0]), T((), "float64", seed=1)), desc="0-d value tensor, float64"),
        Sample((T((3, 4), "int64"), -1, L(2), -7), desc="0-d index, int64"),
        Sample((T((4, 3), "float16", "transposed"), 0, L([1, 3]), 2.0), desc="transposed float16"),
        Sample((T(()), 0, L([0]), 4.0), desc="0-d self"),
        Sample((T((2, 3), "bool"), 1, L([1]), True), desc="bool"),
        Sample((T((2, 3), "uint8"), 0, L([0]), -1), desc="-1 wraps into uint8"),
    ]


def index_fill_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, 0, I32([0]), 1.0), {}, IndexError, r"long \(int64\)", desc="int32 index"),
        ErrorSample((x, 0, L([[0]]), 1.0), {}, RuntimeError, r"vector", desc="2-d index"),
        ErrorSample((x, 0, L([0]), T((1,))), {}, RuntimeError, r"0-dimensional value tensor", desc="1-d value"),
        ErrorSample((T((3,), "int8"), 0, L([0]), 300), {}, RuntimeError, r"overflow", desc="300 into int8"),
        ErrorSample((x, 2, L([0]), 1.0), {}, *BAD_DIM, desc="dim 2 of 2"),
    ]


inplace("index_fill", index_fill_samples, index_fill_errors)


# ---- masked ops ------------------------------------------------------------------------------------

def masked_fill_samples(out_of_place=True):
    out = [
        Sample((T((3, 4)), mask((3, 4)), 1.5), desc="scalar"),
        Sample((T((3, 4), "float64"), mask((4,)), T((), "float64", seed=2)), desc="broadcast mask, 0-d value, "
                                                                                 "float64"),
        Sample((T((3, 4), "int64"), mask((3, 1)), -7), desc="int64"),
        Sample((T((4, 3), "float16", "transposed"), mask((4, 3), layout="transposed"), 2.0), desc="transposed"),
        Sample((T((2, 3), "bfloat16"), mask((2, 3)), -1e3), desc="bfloat16"),
        Sample((T((2, 3), "bool"), mask((2, 3)), True), desc="bool"),
        Sample((T(()), ember.tensor(True), 4.0), desc="0-d"),
        Sample((T((0, 3)), mask((0, 3)), 1.0), desc="empty"),
    ]
    if out_of_place:
        out.append(Sample((T((4,)), mask((3, 4)), 1.0), desc="the mask broadcasts self"))
    return out


def masked_fill_errors(out_of_place=True):
    x = T((3, 4))
    out = [
        ErrorSample((x, T((3, 4), "uint8"), 1.0), {}, RuntimeError, r"only supports boolean masks", desc="uint8 mask"),
        ErrorSample((x, mask((3, 4)), T((1,))), {}, RuntimeError, r"0-dimensional value tensor", desc="1-d value"),
        ErrorSample((T((3,), "int8"), mask((3,)), 300), {}, RuntimeError, r"overflow", desc="300 into int8"),
        ErrorSample((T((3,), "float16"), mask((3,)), 1e10), {}, RuntimeError, r"overflow", desc="1e10 into float16"),
        ErrorSample((x, mask((3,)), 1.0), {}, RuntimeError, r"broadcast", desc="mask (3,) on (3, 4)"),
    ]
    if not out_of_place:
        out.append(ErrorSample((T((4,)), mask((3, 4)), 1.0), {}, RuntimeError, r"broadcast",
                               desc="in place, the mask is larger than self"))
    return out


register(OpInfo("masked_fill", masked_fill_samples, masked_fill_errors, ref=torch.masked_fill))
register(OpInfo("masked_fill_", lambda: masked_fill_samples(False), lambda: masked_fill_errors(False),
                ref=torch.Tensor.masked_fill_))


def masked_scatter_samples(out_of_place=True):
    out = [
        Sample((T((3, 4)), mask((3, 4)), T((12,), seed=2)), desc="1-d source"),
        Sample((T((3, 4), "float64"), mask((4,)), T((3, 5), "float64", seed=2)), desc="broadcast mask, float64"),
        Sample((T((3, 4), "int64"), mask((3, 4)), T((4, 3), "int64", "transposed", seed=2)),
               desc="transposed source, int64"),
        Sample((T((2, 3), "bool"), mask((2, 3)), T((6,), "bool", seed=2)), desc="bool"),
        Sample((T(()), ember.tensor(True), T((2,), seed=2)), desc="0-d self"),
    ]
    if out_of_place:
        out.append(Sample((T((4,), "float16"), mask((3, 4)), T((12,), "float16", seed=2)),
                          desc="the mask broadcasts self, float16"))
    return out


def masked_scatter_errors(out_of_place=True):
    x = T((3, 4))
    out = [
        ErrorSample((x, T((3, 4), "uint8"), T((12,))), {}, RuntimeError, r"boolean masks", desc="uint8 mask"),
        ErrorSample((x, mask((3, 4)), T((12,), "float64")), {}, RuntimeError, r"same dtype", desc="source dtype"),
    ]
    if not out_of_place:
        out.append(ErrorSample((T((4,)), mask((3, 4)), T((12,))), {}, RuntimeError, r"broadcast",
                               desc="in place, the mask is larger than self"))
    return out


register(OpInfo("masked_scatter", masked_scatter_samples, masked_scatter_errors, ref=torch.masked_scatter))
register(OpInfo("masked_scatter_", lambda: masked_scatter_samples(False), lambda: masked_scatter_errors(False),
                ref=torch.Tensor.masked_scatter_))


def masked_select_samples():
    return [
        Sample((T((3, 4)), mask((3, 4))), desc="same shape"),
        Sample((T((3, 4), "float64"), mask((4,))), desc="broadcast mask, float64"),
        Sample((T((4,), "int64"), mask((3, 4))), desc="the mask broadcasts self, int64"),
        Sample((T((4, 3), "float16", "transposed"), mask((4, 3))), desc="transposed float16"),
        Sample((T((2, 3), "bool"), mask((2, 3))), desc="bool"),
        Sample((T(()), ember.tensor(True)), desc="0-d"),
        Sample((T((0, 3)), mask((0, 3))), desc="empty"),
    ]


def masked_select_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, T((3, 4), "uint8")), {}, RuntimeError, r"boolean masks", desc="uint8 mask"),
        ErrorSample((x, mask((3,))), {}, RuntimeError, r"broadcast", desc="mask (3,) on (3, 4)"),
    ]


register(OpInfo("masked_select", masked_select_samples, masked_select_errors, ref=torch.masked_select))


# ---- take / put ------------------------------------------------------------------------------------

def take_samples():
    return [
        Sample((T((3, 4)), L([[0, 11], [-1, 5]])), desc="2-d index, negative"),
        Sample((T((3, 4), "float64"), L([2, 2, 7])), desc="a repeat, float64"),
        Sample((T((4, 3), "int64", "transposed"), L([1, 4, -12])), desc="transposed int64"),
        Sample((T((), "float16"), L([0, -1])), desc="0-d self, float16"),
        Sample((T((2, 3), "bool"), L(4)), desc="0-d index, bool"),
        Sample((T((0, 3)), L([], ember.int64)), desc="empty"),
    ]


def take_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, I32([0])), {}, *LONG_ONLY, desc="int32 index"),
        ErrorSample((x, L([12])), {}, OOB, OOB_MATCH, desc="index 12 of 12 elements"),
        ErrorSample((T((0, 3)), L([0])), {}, IndexError, r"empty tensor", desc="take from an empty tensor"),
    ]


register(OpInfo("take", take_samples, take_errors, ref=torch.take))


def put_samples():
    return [
        Sample((T((3, 4)), L([0, 11, 5]), T((3,), seed=1)), desc="distinct indices"),
        Sample((T((3, 4)), L([[0, 1], [0, -1]]), T((4,), seed=1), True), desc="accumulate a repeat, shapes differ"),
        Sample((T((3, 4), "float64"), L([-2, 3]), T((2,), "float64", seed=1)), desc="float64"),
        Sample((T((3, 4), "float64"), L([1, 1]), T((2,), "float64", seed=1), True), desc="accumulate, float64"),
        Sample((T((4, 3), "int64", "transposed"), L([1, 4]), T((2,), "int64", seed=1)), desc="transposed int64"),
        Sample((T((), "float16"), L([0]), T((1,), "float16", seed=1)), desc="0-d self, float16"),
        Sample((T((2, 3), "bool"), L([5]), T((1,), "bool", seed=1)), desc="bool"),
    ]


def put_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, L([0, 1]), T((1,))), {}, IndexError, r"same number of elements", desc="numel"),
        ErrorSample((x, I32([0]), T((1,))), {}, *LONG_ONLY, desc="int32 index"),
        ErrorSample((x, L([0]), T((1,), "float64")), {}, RuntimeError, r"same dtype", desc="source dtype"),
        ErrorSample((x, L([12]), T((1,))), {}, OOB, OOB_MATCH, desc="index 12 of 12 elements"),
    ]


inplace("put", put_samples, put_errors)


# ---- embedding / one_hot ---------------------------------------------------------------------------

def embedding_samples():
    return [
        Sample((T((5, 3)), L([[0, 4, 2], [4, 4, 1]])), desc="2-d indices"),
        Sample((T((5, 3), "float64"), L([1, 3, 1])), desc="a repeat, float64"),
        Sample((T((5, 3)), L([1, 3, 1]), 1), desc="padding_idx (the forward ignores it)"),
        Sample((T((5, 3), "float16"), I32([0, 2])), desc="int32 indices, float16"),
        Sample((T((3, 5), "bfloat16", "transposed"), L(2)), desc="0-d index, transposed bfloat16"),
        Sample((T((5, 3)), L([], ember.int64)), desc="empty"),
    ]


def embedding_errors():
    return [
        ErrorSample((T((5,)), L([0])), {}, RuntimeError, r"'weight' must be 2-D", desc="1-d weight"),
        ErrorSample((T((5, 3)), ember.tensor([0.0])), {}, RuntimeError, r"Long, Int", desc="float indices"),
        ErrorSample((T((5, 3)), L([5])), {}, OOB, OOB_MATCH, desc="index 5 of 5 rows"),
    ]


register(OpInfo("embedding", embedding_samples, embedding_errors, ref=torch.embedding))


def one_hot_samples():
    return [
        Sample((L([0, 2, 1]),), desc="num_classes inferred"),
        Sample((L([[0, 2], [3, 3]]), 5), desc="2-d, num_classes=5"),
        Sample((L(1), 3), desc="0-d"),
        Sample((L([[4, 0, 1], [2, 3, 0]]).t(),), desc="transposed"),
        Sample((ember.zeros(0, 2, dtype=ember.int64), 3), desc="empty with num_classes"),
    ]


def one_hot_errors():
    return [
        ErrorSample((I32([0]), 3), {}, RuntimeError, r"int64", desc="int32 input"),
        ErrorSample((ember.zeros(0, dtype=ember.int64),), {}, RuntimeError, r"Can not infer",
                    desc="empty, num_classes inferred"),
        ErrorSample((L([0]), -2), {}, RuntimeError, r"smaller than num_classes", desc="num_classes=-2"),
        ErrorSample((L([0, 3]), 3), {}, RuntimeError, r"smaller than num_classes|out of range",
                    desc="class 3 of 3"),
    ]


register(OpInfo("one_hot", one_hot_samples, one_hot_errors, ref=torch.nn.functional.one_hot, grad="integer output"))

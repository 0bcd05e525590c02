"""Samples of the view family (src/ember/ops/view.py): view, view(dtype), reshape, as_strided,
transpose, permute, expand, squeeze, unsqueeze, select, slice, diagonal, unfold and basic indexing.

Every view op has one kernel for every device, so the interpreter suite runs the same geometry on
the CUDA path. Inputs come in every layout (transposed, sliced, expanded) because a view's strides
and offset are built from its input's.
"""
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register


def T(shape, dtype="float32", layout="contiguous", seed=0):
    return make_pair(shape, dtype, seed=seed, layout=layout)[0]


BAD_DIM = (IndexError, r"out of range")


# ---- view, view(dtype), reshape ----------------------------------------------------------------------

def view_samples():
    return [
        Sample((T((2, 3)), 3, 2), desc="sizes as arguments"),
        Sample((T((2, 3, 4), "float64"), (6, -1)), desc="a tuple with -1, float64"),
        Sample((T((4, 3), layout="sliced"), 4, 3, 1), desc="sliced: a new unit dim"),
        Sample((T((2, 3, 4), "int64", layout="transposed"), 2, 1, 3, 4), desc="transposed int64: a new unit dim"),
        Sample((T((3, 4), "bool", layout="expanded"), 3, 2, 2), desc="expanded bool: split the last dim"),
        Sample((T((2, 3), "float16"), -1), desc="float16 flattened"),
        Sample((T((2, 3), "bfloat16"), 1, 6), desc="bfloat16"),
        Sample((T(()), ()), desc="0-d to 0-d"),
        Sample((T(()), 1, 1), desc="0-d to (1, 1)"),
        Sample((T((2, 0, 3)), 0, 6), desc="empty"),
    ]


def view_errors():
    x = T((2, 3))
    return [
        ErrorSample((x.t(), 6), {}, RuntimeError, r"view size is not compatible", desc="a transposed tensor flattened"),
        ErrorSample((x, 4, 2), {}, RuntimeError, r"is invalid for input of size 6", desc="8 elements from 6"),
        ErrorSample((x, -1, -1), {}, RuntimeError, r"only one dimension can be inferred", desc="two -1"),
        ErrorSample((x, -2, 3), {}, RuntimeError, r"invalid shape dimension -2", desc="a size of -2"),
    ]


def view_dtype_samples():
    return [
        Sample((T((2, 3)), ember.int32), desc="same element size"),
        Sample((T((2, 3), "int16"), ember.float16), desc="int16 as float16"),
        Sample((T((2, 3), "bfloat16"), ember.int16), desc="bfloat16 as int16"),
        Sample((T((2, 3)), ember.float16), desc="float32 as float16: the last dim doubles"),
        Sample((T((2, 4), "uint8"), ember.int32), desc="uint8 as int32: the last dim quarters"),
        Sample((T((3, 8), "int16")[:, :4], ember.int8), desc="narrowed rows (stride 1 inside)"),
        Sample((T((2, 4), "int64")[:, 2:], ember.int32), desc="an offset view, narrower type"),
        Sample((T((2, 4), "bool"), ember.uint8), desc="bool as uint8"),
        Sample((T(()), ember.int32), desc="0-d, same element size"),
        Sample((ember.zeros(0, 4, dtype=ember.int8), ember.int16), desc="empty"),
    ]


def view_dtype_errors():
    x = T((2, 3))
    return [
        ErrorSample((T(()), ember.float16), {}, RuntimeError, r"self.dim\(\) cannot be 0", desc="0-d, other size"),
        ErrorSample((x.t(), ember.float16), {}, RuntimeError, r"self.stride\(-1\) must be 1", desc="transposed"),
        ErrorSample((x, ember.float64), {}, RuntimeError, r"self.size\(-1\) must be divisible by 2",
                    desc="3 floats as doubles"),
        ErrorSample((T((2, 4))[:, 1:3], ember.float64), {}, RuntimeError, r"storage_offset\(\) must be divisible",
                    desc="an odd offset as doubles"),
        ErrorSample((T((2, 3))[:, :2], ember.float64), {}, RuntimeError, r"self.stride\(0\) must be divisible",
                    desc="an odd row stride as doubles"),
    ]


def reshape_samples():
    return [
        Sample((T((2, 3)), 3, 2), desc="contiguous: a view"),
        Sample((T((2, 3, 4), "float64", layout="transposed"), (-1,)), desc="transposed float64: a copy"),
        Sample((T((3, 4), "int32", layout="sliced"), 2, 6), desc="sliced int32: a copy"),
        Sample((T((3, 4), "bool", layout="expanded"), 12), desc="expanded bool: a copy"),
        Sample((T((2, 3), "float16"), 6, 1), desc="float16"),
        Sample((T((2, 3), "bfloat16"), -1, 2), desc="bfloat16"),
        Sample((T(()), 1), desc="0-d to 1-d"),
        Sample((T((1,), "int64"), ()), desc="to 0-d"),
        Sample((T((0, 3)), 3, 0), desc="empty"),
    ]


def reshape_errors():
    x = T((2, 3))
    return [
        ErrorSample((x, 4, -1), {}, RuntimeError, r"is invalid for input of size 6", desc="6 into rows of 4"),
        ErrorSample((T((0, 3)), -1, 0), {}, RuntimeError, r"ambiguous", desc="-1 with another size 0"),
        ErrorSample((x, -1, -1), {}, RuntimeError, r"only one dimension can be inferred", desc="two -1"),
    ]


register(OpInfo("_view", view_samples, view_errors, ref=lambda x, *size: x.view(*size)))
register(OpInfo("view_dtype", view_dtype_samples, view_dtype_errors, ref=torch.Tensor.view,
                grad="reinterprets the bits: not differentiable"))
register(OpInfo("reshape", reshape_samples, reshape_errors, ref=lambda x, *shape: x.reshape(*shape)))


# ---- as_strided, transpose, permute, expand -------------------------------------------------------

def as_strided_samples():
    return [
        Sample((T((3, 4)), (2, 2), (4, 1)), desc="a 2x2 window"),
        Sample((T((3, 4), "float64"), (3, 2), (1, 4), 1), desc="storage offset, transposed strides, float64"),
        Sample((T((4, 3), "int64", layout="transposed"), (2,), (5,)), desc="transposed input: its offset kept"),
        Sample((T((3, 4), layout="sliced"), (2, 3), (8, 2), 1), desc="sliced input"),
        Sample((T((2, 3), "bool"), (2, 2), (0, 1)), desc="bool, a zero stride"),
        Sample((T((2, 3), "float16"), (), ()), desc="0-d from float16"),
        Sample((T((2, 3), "bfloat16"), (0, 5), (1, 1), 6), desc="empty at the storage's end"),
    ]


def as_strided_errors():
    x = T((2, 3))
    return [
        ErrorSample((x, (2, 2), (1,)), {}, RuntimeError, r"mismatch in length of strides and shape",
                    desc="two sizes, one stride"),
        ErrorSample((x, (2, 2), (-1, 1)), {}, RuntimeError, r"Negative strides are not supported",
                    desc="a negative stride"),
        ErrorSample((x, (10,), (1,)), {}, RuntimeError, r"out of bounds", desc="past the storage's end"),
        ErrorSample((x, (2,), (1,), -1), {}, RuntimeError, r"invalid storage offset -1", desc="negative offset"),
    ]


def transpose_samples():
    return [
        Sample((T((2, 3)), 0, 1), desc="2-d"),
        Sample((T((2, 3, 4), "float64", layout="transposed"), -1, 0), desc="negative dim, transposed, float64"),
        Sample((T((2, 3), "int8", layout="sliced"), 1, 1), desc="the same dim twice, sliced int8"),
        Sample((T((2, 3), "bool", layout="expanded"), 0, -1), desc="expanded bool"),
        Sample((T((2, 3), "float16"), 1, 0), desc="float16"),
        Sample((T((2, 3), "bfloat16"), 0, 1), desc="bfloat16"),
        Sample((T(()), 0, -1), desc="0-d"),
        Sample((T((0, 3), "int64"), 0, 1), desc="empty int64"),
    ]


def permute_samples():
    return [
        Sample((T((2, 3, 4)), 2, 0, 1), desc="dims as arguments"),
        Sample((T((2, 3, 4), "float64", layout="transposed"), (-1, 0, 1)), desc="a tuple, negative, float64"),
        Sample((T((2, 3), "int32", layout="sliced"), [1, 0]), desc="a list, sliced int32"),
        Sample((T((2, 3), "bool", layout="expanded"), 1, 0), desc="expanded bool"),
        Sample((T((2, 3), "float16"), 0, 1), desc="identity, float16"),
        Sample((T((2, 3), "bfloat16"), 1, 0), desc="bfloat16"),
        Sample((T(()), ()), desc="0-d, no dims"),
        Sample((T((0, 2, 3)), 2, 1, 0), desc="empty"),
    ]


def permute_errors():
    x = T((2, 3))
    return [
        ErrorSample((x, 0), {}, RuntimeError, r"number of dims", desc="one dim for a 2-d tensor"),
        ErrorSample((x, 0, 0), {}, RuntimeError, r"appears multiple times", desc="dim 0 twice"),
        ErrorSample((x, 0, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
    ]


def expand_samples():
    return [
        Sample((T((3, 1)), 3, 4), desc="a unit dim"),
        Sample((T((3, 1), "float64"), (2, 3, -1)), desc="a new leading dim and -1, float64"),
        Sample((T((1, 3), "int64", layout="transposed"), 2, 1, 3, 3), desc="transposed int64, two new dims"),
        Sample((T((2, 3), "bool", layout="sliced"), 2, 3), desc="sliced bool, no change"),
        Sample((T((1,), "float16", layout="expanded"), 4), desc="float16"),
        Sample((T((2, 1), "bfloat16"), -1, 0), desc="bfloat16 expanded to an empty dim"),
        Sample((T(()), 2, 3), desc="0-d"),
        Sample((T(()), ()), desc="0-d, no sizes"),
    ]


def expand_errors():
    x = T((2, 3))
    return [
        ErrorSample((x, 3), {}, RuntimeError, r"must be greater or equal to the number of dimensions",
                    desc="fewer sizes than dims"),
        ErrorSample((x, 2, 4), {}, RuntimeError, r"must match the existing size \(3\)", desc="3 to 4"),
        ErrorSample((x, -1, 2, 3), {}, RuntimeError, r"-1 isn't allowed in a leading, non-existing dimension",
                    desc="-1 in a new leading dim"),
        ErrorSample((x, 2, -2), {}, RuntimeError, r"-2", desc="a size of -2"),
    ]


register(OpInfo("as_strided", as_strided_samples, as_strided_errors, ref=torch.as_strided))
register(OpInfo("transpose", transpose_samples, lambda: [ErrorSample((T((2, 3)), 0, 2), {}, *BAD_DIM,
                                                                      desc="dim 2 of a 2-d tensor")],
                ref=torch.transpose))
register(OpInfo("permute", permute_samples, permute_errors, ref=torch.Tensor.permute))
register(OpInfo("expand", expand_samples, expand_errors, ref=torch.Tensor.expand))


# ---- squeeze, unsqueeze, select, slice ----------------------------------------------------------------

def squeeze_samples():
    return [
        Sample((T((2, 1, 3, 1)),), desc="all unit dims"),
        Sample((T((2, 1, 3), "float64"), 1), desc="one dim, float64"),
        Sample((T((2, 1, 1), "int64", layout="transposed"), (0, -1)), desc="a tuple of dims, transposed int64"),
        Sample((T((1, 4), "bool", layout="sliced"), -2), desc="sliced bool"),
        Sample((T((1, 3), "float16", layout="expanded"), 0), desc="a non-unit dim stays, float16"),
        Sample((T((1, 1), "bfloat16"),), desc="bfloat16 to 0-d"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 1)),), desc="empty"),
    ]


def squeeze_ref(x, dim=None):
    return x.squeeze() if dim is None else x.squeeze(dim)


def unsqueeze_samples():
    return [
        Sample((T((2, 3)), 0), desc="leading"),
        Sample((T((2, 3), "float64"), -1), desc="trailing, float64"),
        Sample((T((2, 3), "int32", layout="transposed"), 1), desc="middle, transposed int32"),
        Sample((T((2, 3), "bool", layout="sliced"), 2), desc="sliced bool"),
        Sample((T((3,), "float16", layout="expanded"), 0), desc="float16"),
        Sample((T((3,), "bfloat16"), -2), desc="bfloat16"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 2)), 1), desc="empty"),
    ]


def select_samples():
    return [
        Sample((T((3, 4)), 0, 1), desc="a row"),
        Sample((T((3, 4), "float64"), 1, -1), desc="last column, float64"),
        Sample((T((2, 3, 4), "int64", layout="transposed"), -1, 2), desc="transposed int64"),
        Sample((T((3, 4), "bool", layout="sliced"), 1, 3), desc="sliced bool"),
        Sample((T((3, 4), "float16", layout="expanded"), 0, 2), desc="expanded float16"),
        Sample((T((3,), "bfloat16"), 0, 0), desc="to 0-d, bfloat16"),
        Sample((T((2, 0)), 0, 1), desc="an empty row"),
    ]


def select_errors():
    x = T((2, 3))
    return [
        ErrorSample((T(()), 0, 0), {}, IndexError, r"cannot be applied to a 0-dim tensor", desc="0-d"),
        ErrorSample((x, 0, 2), {}, IndexError, r"index 2 is out of bounds", desc="index 2 of 2 rows"),
        ErrorSample((x, 1, -4), {}, IndexError, r"index -4 is out of bounds", desc="index -4 of 3"),
        ErrorSample((x, 2, 0), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
    ]


def slice_samples():
    return [
        Sample((T((4, 5)),), desc="all defaults"),
        Sample((T((4, 5), "float64"), 1, 1, 4), desc="columns 1..3, float64"),
        Sample((T((6, 3), "int64", layout="transposed"), 0, -5, None, 2), desc="negative start, step 2"),
        Sample((T((4, 5), "bool", layout="sliced"), -1, None, -2), desc="negative end, sliced bool"),
        Sample((T((4, 5), "float16", layout="expanded"), 0, 1, 100, 3), desc="end past the size, float16"),
        Sample((T((4, 5), "bfloat16"), 1, 3, 1), desc="start after end: empty, bfloat16"),
        Sample((T((0, 3)), 0, 0, 1), desc="empty input"),
    ]


def slice_errors():
    x = T((2, 3))
    return [
        ErrorSample((x, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
        ErrorSample((x, 0, 0, 2, 0), {}, RuntimeError, r"slice step must be positive", desc="step 0"),
        ErrorSample((T(()), 0), {}, IndexError, r"cannot be applied to a 0-dim tensor", desc="0-d"),
    ]


register(OpInfo("squeeze", squeeze_samples, lambda: [ErrorSample((T((2, 1)), 2), {}, *BAD_DIM, desc="dim 2")],
                ref=squeeze_ref))
register(OpInfo("unsqueeze", unsqueeze_samples, lambda: [ErrorSample((T((2, 3)), 3), {}, *BAD_DIM, desc="dim 3")],
                ref=torch.unsqueeze))
register(OpInfo("select", select_samples, select_errors, ref=torch.select))
register(OpInfo("slice", slice_samples, slice_errors,
                ref=lambda x, dim=0, start=None, end=None, step=1: torch.ops.aten.slice(x, dim, start, end, step)))


# ---- diagonal, unfold, basic indexing -------------------------------------------------------------------

def diagonal_samples():
    return [
        Sample((T((3, 4)),), desc="main diagonal"),
        Sample((T((3, 4), "float64"), 1), desc="above, float64"),
        Sample((T((2, 3, 4), "int64", layout="transposed"), -1, 0, 2), desc="below, dims 0 and 2, transposed"),
        Sample((T((3, 4), "bool", layout="sliced"), 0, 1, 0), desc="dims swapped, sliced bool"),
        Sample((T((3, 3), "float16", layout="expanded"), 2), desc="expanded float16"),
        Sample((T((3, 3), "bfloat16"), 5), desc="offset past the matrix: empty, bfloat16"),
        Sample((T((0, 3)),), desc="empty"),
    ]


def diagonal_errors():
    x = T((2, 3))
    return [ErrorSample((x, 0, 1, 1), {}, RuntimeError, r"diagonal dimensions cannot be identical", desc="dim 1 twice"),
            ErrorSample((x, 0, 0, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor")]


def unfold_samples():
    return [
        Sample((T((2, 6)), 1, 2, 2), desc="windows of 2, step 2"),
        Sample((T((5, 2), "float64"), 0, 3, 1), desc="overlapping windows, float64"),
        Sample((T((4, 3), "int32", layout="transposed"), -1, 3, 3), desc="one window, transposed int32"),
        Sample((T((3, 4), "bool", layout="sliced"), 1, 1, 2), desc="sliced bool"),
        Sample((T((3, 4), "float16", layout="expanded"), 0, 2, 1), desc="expanded float16"),
        Sample((T((3,), "bfloat16"), 0, 0, 1), desc="empty windows, bfloat16"),
        Sample((T(()), 0, 1, 1), desc="0-d"),
    ]


def unfold_errors():
    x = T((2, 3))
    return [ErrorSample((x, 1, 4, 1), {}, RuntimeError, r"maximum size for tensor at dimension 1 is 3",
                        desc="a window longer than the dim"),
            ErrorSample((x, 1, 2, 0), {}, RuntimeError, r"step is 0 but must be > 0", desc="step 0"),
            ErrorSample((x, 1, -1, 1), {}, RuntimeError, r"size is -1 but must be >= 0", desc="size -1")]


def index_view_samples():
    return [
        Sample((T((3, 4)), (1,)), desc="an int"),
        Sample((T((3, 4), "float64"), (slice(None), slice(1, None, 2))), desc="a stepped slice, float64"),
        Sample((T((2, 3, 4), "int64", layout="transposed"), (Ellipsis, -1)), desc="ellipsis, negative int"),
        Sample((T((3, 4), "bool", layout="sliced"), (None, 0, None)), desc="None around an int, sliced bool"),
        Sample((T((3, 4), "float16", layout="expanded"), (slice(-2, None), Ellipsis, None)), desc="float16"),
        Sample((T((3,), "bfloat16"), (slice(5, 9),)), desc="a slice past the end: empty, bfloat16"),
        Sample((T(()), (None, Ellipsis)), desc="0-d"),
    ]


def index_view_errors():
    return [ErrorSample((T((2, 3)), (0, 0, 0)), {}, IndexError, r"too many indices", desc="3 ints for 2 dims"),
            ErrorSample((T(()), (0,)), {}, IndexError, r"invalid index of a 0-dim tensor", desc="0-d"),
            ErrorSample((T((2, 3)), (0, 3)), {}, IndexError, r"index 3 is out of bounds", desc="index 3 of 3")]


register(OpInfo("diagonal", diagonal_samples, diagonal_errors, ref=torch.diagonal))
register(OpInfo("unfold", unfold_samples, unfold_errors, ref=torch.Tensor.unfold))
register(OpInfo("_index_view", index_view_samples, index_view_errors, ref=lambda x, index: x[index]))


def unbind_samples():
    return [
        Sample((T((3, 4)),), desc="rows"),
        Sample((T((3, 4), "float64"), 1), desc="columns, float64"),
        Sample((T((2, 3, 4), "int64", layout="transposed"), -1), desc="transposed int64, last dim"),
        Sample((T((3, 4), "bool", layout="sliced"), 0), desc="sliced bool"),
        Sample((T((3, 5, 4), "float64", layout="transposed"), 0), desc="transposed float64 (q, k, v = qkv)"),
        Sample((T((2, 3), "bfloat16", layout="expanded"), 0), desc="expanded bfloat16"),
        Sample((T((0, 3)), 1), desc="empty: three empty views"),
        Sample((T((0, 3)), 0), desc="empty: no views"),
    ]


def unbind_errors():
    return [
        ErrorSample((T(()),), {}, IndexError, r"no dimensions", desc="0-d"),
        ErrorSample((T((2, 3)), 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
    ]


register(OpInfo("unbind", unbind_samples, unbind_errors, ref=torch.unbind))


def split_with_sizes_samples():
    return [
        Sample((T((6, 4)), [2, 4]), desc="rows 2 + 4"),
        Sample((T((2, 12), "float64"), [4, 4, 4], -1), desc="q, k, v = qkv.split(d, -1), float64"),
        Sample((T((3, 5), "int64", layout="transposed"), [1, 0, 4], 1), desc="transposed int64, an empty piece"),
        Sample((T((4, 3), "bool", layout="sliced"), [3, 1]), desc="sliced bool"),
        Sample((T((4, 2), "bfloat16", layout="expanded"), [4], 0), desc="expanded bfloat16, one piece"),
        Sample((T((0, 3)), [0, 0], 0), desc="empty"),
    ]


def split_with_sizes_errors():
    x = T((4, 3))
    return [
        ErrorSample((T(()), [1]), {}, RuntimeError, r"at least a 1-dimensional tensor", desc="0-d"),
        ErrorSample((x, [1, 2]), {}, RuntimeError, r"to sum exactly to 4", desc="sizes sum to 3 of 4"),
        ErrorSample((x, [5, -1]), {}, RuntimeError, r"non-negative entries", desc="a negative size"),
        ErrorSample((x, [4], 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
    ]


register(OpInfo("split_with_sizes", split_with_sizes_samples, split_with_sizes_errors, ref=torch.split_with_sizes))

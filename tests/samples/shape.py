"""Samples of the shape family (src/ember/ops/shape.py): cat and its aliases, stack, h/v/dstack,
repeat, tile, flip, fliplr, flipud, roll, tril/triu (and in place), sort, argsort, topk, kthvalue,
unique, diag, diag_embed, meshgrid.

Sorting and selection samples use distinct values (`distinct`), so that the indices of ties cannot
differ from torch's; one sort sample has NaNs (sorted last, as torch does).
"""
import math

import numpy as np
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register


def T(shape, dtype="float32", layout="contiguous", seed=0):
    return make_pair(shape, dtype, seed=seed, layout=layout)[0]


def distinct(shape, dtype="float32", layout="contiguous", seed=0):
    """A permutation of -n/2..n/2 (no ties, exact in every dtype but bool), in the given layout."""
    base = {"transposed": shape[:-2] + shape[-2:][::-1], "sliced": shape[:-1] + (2 * shape[-1],)}.get(layout, shape)
    n = math.prod(base)
    x = ember.tensor((np.random.default_rng(seed).permutation(n) - n // 2).reshape(base), dtype=getattr(ember, dtype))
    return {"transposed": lambda: x.transpose(-1, -2), "sliced": lambda: x[..., ::2]}.get(layout, lambda: x)()


BAD_DIM = (IndexError, r"out of range")
INDICES = "integer indices: not differentiable"


# ---- cat and friends ------------------------------------------------------------------------------

def cat_samples():
    return [
        Sample(([T((2, 3)), T((1, 3), seed=1)],), desc="dim 0"),
        Sample(([T((2, 3), "float64"), T((2, 2), "float64", layout="transposed")], 1), desc="dim 1, transposed float64"),
        Sample(([T((2, 3), "int64", layout="sliced"), T((2, 3), "bool")], -1), desc="int64 with bool: int64"),
        Sample(([T((2, 2), "float16"), T((1, 2), "bfloat16", layout="expanded")],), desc="float16 with bfloat16"),
        Sample(([T((2, 2), "int8"), T((0,), "float64"), T((1, 2), "int8")],), desc="a legacy 1-D empty: skipped"),
        Sample(([T((0, 3)), T((2, 3))],), desc="an empty 2-D tensor"),
        Sample(([T((3,), "int32")],), desc="one tensor"),
    ]


def cat_errors(name="cat"):
    x = T((2, 3))
    return [
        ErrorSample(([x, T((3, 3))], 1), {}, RuntimeError, r"Sizes of tensors must match except in dimension 1",
                    desc="mismatched shapes"),
        ErrorSample(([x, T((3,))],), {}, RuntimeError, r"same number of dimensions", desc="2-D with 1-D"),
        ErrorSample(([x, T(())],), {}, RuntimeError, r"zero-dimensional tensor \(at position 1\)", desc="a 0-d tensor"),
        ErrorSample(([x, x], 2), {}, *BAD_DIM, desc="dim 2 of 2-d tensors"),
        ErrorSample(([],), {}, ValueError, r"non-empty", desc="no tensors"),
    ]


def stack_samples():
    return [
        Sample(([T((2, 3)), T((2, 3), seed=1)],), desc="dim 0"),
        Sample(([T((2, 3), "float64", layout="transposed"), T((2, 3), "float64")], 2), desc="a new last dim"),
        Sample(([T((3,), "int32", layout="sliced"), T((3,), "int64")], -1), desc="int32 with int64"),
        Sample(([T((2,), "bool"), T((2,), "bool", layout="expanded")], 1), desc="bool"),
        Sample(([T((2,), "float16"), T((2,), "bfloat16")],), desc="float16 with bfloat16"),
        Sample(([T(()), T((), seed=1), T((), seed=2)],), desc="0-d"),
        Sample(([T((0, 2)), T((0, 2))], 1), desc="empty"),
    ]


def stack_errors():
    x = T((2, 3))
    return [
        ErrorSample(([x, T((3, 2))],), {}, RuntimeError, r"stack expects each tensor to be equal size",
                    desc="mismatched shapes"),
        ErrorSample(([x, x], 3), {}, *BAD_DIM, desc="dim 3 for 2-d tensors"),
        ErrorSample(([],), {}, RuntimeError, r"non-empty",
                    desc="KNOWN: no tensors: the entry point raises ValueError for an empty Tensor[] before the "
                         "meta (torch: RuntimeError 'stack expects a non-empty TensorList'; cat's ValueError matches)"),
    ]


def hvdstack_samples():
    return [
        Sample(([T((2,)), T((3,), seed=1)],), desc="1-D"),
        Sample(([T((2, 2), "float64", layout="transposed"), T((2, 1), "float64")],), desc="2-D, float64"),
        Sample(([T(()), T((), seed=1)],), desc="0-d"),
        Sample(([T((1, 2, 2), "int64"), T((1, 2, 2), "bool", layout="sliced")],), desc="3-D, int64 with bool"),
        Sample(([T((2,), "float16"), T((2,), "bfloat16")],), desc="float16 with bfloat16"),
    ]


def vstack_samples():
    return [
        Sample(([T((3,)), T((3,), seed=1)],), desc="1-D rows"),
        Sample(([T((2, 3), "float64", layout="transposed"), T((1, 3), "float64")],), desc="2-D, float64"),
        Sample(([T(()), T((1,), "int64")],), desc="0-d with 1-D"),
        Sample(([T((1, 2, 2), "bool"), T((2, 2, 2), "int8", layout="sliced")],), desc="3-D"),
        Sample(([T((2,), "float16"), T((2,), "bfloat16")],), desc="float16 with bfloat16"),
    ]


def dstack_samples():
    return [
        Sample(([T((3,)), T((3,), seed=1)],), desc="1-D"),
        Sample(([T((2, 3), "float64", layout="transposed"), T((2, 3), "float64")],), desc="2-D, float64"),
        Sample(([T(()), T((), seed=1)],), desc="0-d"),
        Sample(([T((2, 2, 1), "int32"), T((2, 2, 2), "bool", layout="sliced")],), desc="3-D"),
        Sample(([T((2,), "float16"), T((2,), "bfloat16")],), desc="float16 with bfloat16"),
    ]


def stack_like_errors(name, bad):
    return [ErrorSample((bad,), {}, RuntimeError, r"Sizes of tensors must match", desc="mismatched shapes"),
            ErrorSample(([],), {}, RuntimeError, rf"{name} expects a non-empty TensorList", desc="no tensors")]


register(OpInfo("cat", cat_samples, cat_errors, ref=torch.cat))
register(OpInfo("concat", cat_samples, cat_errors, ref=torch.concat))
register(OpInfo("concatenate", cat_samples, cat_errors, ref=torch.concatenate))
register(OpInfo("stack", stack_samples, stack_errors, ref=torch.stack))
register(OpInfo("hstack", hvdstack_samples, lambda: stack_like_errors("hstack", [T((2, 2)), T((3, 2))]),
                ref=torch.hstack))
register(OpInfo("vstack", vstack_samples, lambda: stack_like_errors("vstack", [T((2,)), T((3,))]), ref=torch.vstack))
register(OpInfo("dstack", dstack_samples, lambda: stack_like_errors("dstack", [T((2,)), T((3,))]), ref=torch.dstack))


# ---- repeat, tile, flip, roll ---------------------------------------------------------------------

def repeat_samples():
    return [
        Sample((T((2, 3)), 2, 1), desc="as arguments"),
        Sample((T((2, 3), "float64", layout="transposed"), (1, 2, 2)), desc="a new leading dim, transposed float64"),
        Sample((T((3, 1), "int64", layout="expanded"), 2, 3), desc="expanded int64"),
        Sample((T((2, 2), "bool", layout="sliced"), 1, 2), desc="sliced bool"),
        Sample((T((2,), "float16"), 3), desc="float16"),
        Sample((T((2,), "bfloat16"), 0, 2), desc="a zero repeat, bfloat16"),
        Sample((T(()), 2, 3), desc="0-d"),
        Sample((T(()), ()), desc="0-d, no repeats"),
    ]


def repeat_errors():
    x = T((2, 3))
    return [
        ErrorSample((x, 2), {}, RuntimeError, r"Number of dimensions of repeat dims can not be smaller",
                    desc="fewer repeats than dims"),
        ErrorSample((x, -1, 2), {}, RuntimeError, r"negative dimension", desc="a negative repeat"),
        ErrorSample((x,), {}, TypeError, r"missing 1 required positional arguments", desc="no repeats"),
    ]


def tile_samples():
    return [
        Sample((T((2, 3)), 2), desc="fewer dims than the tensor: padded with ones"),
        Sample((T((2, 3), "float64", layout="transposed"), (2, 1, 2)), desc="more dims, transposed float64"),
        Sample((T((2, 2), "int8", layout="sliced"), 1, 3), desc="sliced int8"),
        Sample((T((2,), "bool"), 2), desc="bool"),
        Sample((T((2,), "float16", layout="expanded"), 0), desc="zero, float16"),
        Sample((T((2, 1), "bfloat16"), ()), desc="no dims: a copy, bfloat16"),
        Sample((T(()), ()), desc="0-d, no dims"),
    ]


def flip_samples():
    return [
        Sample((T((2, 3)), 0), desc="one dim"),
        Sample((T((2, 3, 4), "float64", layout="transposed"), (0, -1)), desc="two dims, transposed float64"),
        Sample((T((3, 4), "int64", layout="sliced"), 1), desc="sliced int64"),
        Sample((T((2, 3), "bool", layout="expanded"), 0, 1), desc="expanded bool"),
        Sample((T((4,), "float16"), -1), desc="float16"),
        Sample((T((2, 2), "bfloat16"), ()), desc="no dims, bfloat16"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 3)), 1), desc="empty"),
    ]


def flip_errors():
    x = T((2, 3))
    return [ErrorSample((x, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
            ErrorSample((x, 0, 0), {}, RuntimeError, r"appears multiple times", desc="dim 0 twice")]


def fliplr_samples():
    return [
        Sample((T((2, 3)),), desc="2-D"),
        Sample((T((2, 3, 2), "float64", layout="transposed"),), desc="3-D transposed float64"),
        Sample((T((2, 3), "int32", layout="sliced"),), desc="sliced int32"),
        Sample((T((2, 3), "bool"),), desc="bool"),
        Sample((T((2, 2), "float16"),), desc="float16"),
        Sample((T((2, 2), "bfloat16", layout="expanded"),), desc="expanded bfloat16"),
    ]


def flipud_samples():
    return [
        Sample((T((3,)),), desc="1-D"),
        Sample((T((2, 3), "float64", layout="transposed"),), desc="transposed float64"),
        Sample((T((3, 2), "int16", layout="sliced"),), desc="sliced int16"),
        Sample((T((3,), "bool"),), desc="bool"),
        Sample((T((2, 2), "float16"),), desc="float16"),
        Sample((T((2, 2), "bfloat16", layout="expanded"),), desc="expanded bfloat16"),
        Sample((T((0, 2)),), desc="empty"),
    ]


def roll_samples():
    return [
        Sample((T((2, 3)), 1, 1), desc="one dim"),
        Sample((T((3, 4), "float64", layout="transposed"), (1, -2), (0, 1)), desc="two dims, transposed float64"),
        Sample((T((3, 4), "int64", layout="sliced"), 5), desc="flattened, sliced int64"),
        Sample((T((2, 3), "bool", layout="expanded"), [2], [-1]), desc="expanded bool"),
        Sample((T((4,), "float16"), -1, 0), desc="float16"),
        Sample((T((2, 2), "bfloat16"), (1, 1), (0, 0)), desc="the same dim twice, bfloat16"),
        Sample((T(()), 3), desc="0-d, flattened"),
        Sample((T((0, 3)), 1, 1), desc="empty"),
    ]


def roll_errors():
    x = T((2, 3))
    return [ErrorSample((x, [1, 2]), {}, RuntimeError, r"shifts and dimensions must align. shifts: 2, dims:0",
                        desc="two shifts, no dims"),
            ErrorSample((x, 1, [0, 1]), {}, RuntimeError, r"shifts and dimensions must align. shifts: 1, dims:2",
                        desc="one shift, two dims"),
            ErrorSample((x, []), {}, RuntimeError, r"`shifts` required", desc="no shifts"),
            ErrorSample((T(()), 1, 0), {}, IndexError, r"tensor has no dimensions", desc="a dim of a 0-d tensor"),
            ErrorSample((x, 1, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor")]


register(OpInfo("repeat", repeat_samples, repeat_errors, ref=lambda x, *repeats: x.repeat(*repeats)))
register(OpInfo("tile", tile_samples,
                lambda: [ErrorSample((T((2, 3)), -1), {}, RuntimeError, r"negative dimension", desc="a negative dim")],
                ref=lambda x, *dims: x.tile(*dims)))
register(OpInfo("flip", flip_samples, flip_errors, ref=lambda x, *dims: x.flip(*dims)))
register(OpInfo("fliplr", fliplr_samples,
                lambda: [ErrorSample((T((3,)),), {}, RuntimeError, r"Input must be >= 2-d", desc="1-D")],
                ref=torch.fliplr))
register(OpInfo("flipud", flipud_samples,
                lambda: [ErrorSample((T(()),), {}, RuntimeError, r"Input must be >= 1-d", desc="0-d")],
                ref=torch.flipud))
register(OpInfo("roll", roll_samples, roll_errors, ref=torch.roll))


# ---- tril / triu ------------------------------------------------------------------------------------

def tri_samples():
    return [
        Sample((T((3, 4)),), desc="main diagonal"),
        Sample((T((2, 3, 4), "float64", layout="transposed"), 1), desc="batched, above, transposed float64"),
        Sample((T((3, 4), "int64", layout="sliced"), -1), desc="below, sliced int64"),
        Sample((T((3, 3), "bool"), 2), desc="bool"),
        Sample((T((3, 3), "float16"), -5), desc="past the matrix, float16"),
        Sample((T((2, 3), "bfloat16"), 0), desc="bfloat16"),
        Sample((T((0, 3)),), desc="empty"),
    ]


def tri_inplace_samples():
    # an expanded tensor cannot be written in place (its elements overlap)
    return [s for s in tri_samples()] + [Sample((T((4, 3), "float64")[:, 1:], -1), desc="an offset view, float64")]


def tri_errors():
    return [ErrorSample((T((3,)),), {}, RuntimeError, r"input tensor must have at least 2 dimensions", desc="1-D"),
            ErrorSample((T(()),), {}, RuntimeError, r"input tensor must have at least 2 dimensions", desc="0-d")]


register(OpInfo("tril", tri_samples, tri_errors, ref=torch.tril))
register(OpInfo("triu", tri_samples, tri_errors, ref=torch.triu))
register(OpInfo("tril_", tri_inplace_samples, tri_errors, ref=torch.Tensor.tril_))
register(OpInfo("triu_", tri_inplace_samples, tri_errors, ref=torch.Tensor.triu_))


# ---- sorting and selection ----------------------------------------------------------------------

def with_nans():
    x = distinct((3, 4))
    x[0, 1] = float("nan")
    x[2, 3] = float("nan")
    return x


def sort_samples():
    return [
        Sample((distinct((3, 4)),), desc="last dim"),
        Sample((distinct((3, 4), "float64", layout="transposed"), 0, True), desc="dim 0 descending, transposed"),
        Sample((distinct((2, 5), "int64", layout="sliced"), -1, True), desc="sliced int64 descending"),
        Sample((T((2, 4), "bool"),), {"dim": 1, "stable": True}, desc="bool, stable"),
        Sample((distinct((4,), "float16"),), desc="float16"),
        Sample((distinct((2, 3), "bfloat16"), 0), desc="bfloat16"),
        Sample((with_nans(), 1), desc="NaNs sort last"),
        Sample((T(()),), desc="0-d"),
        Sample((T((0, 3)), 0), desc="empty"),
    ]


def argsort_samples():
    return [
        Sample((distinct((3, 4)),), desc="last dim"),
        Sample((distinct((3, 4), "float64", layout="transposed"), 0, True), desc="dim 0 descending"),
        Sample((distinct((2, 5), "int8", layout="sliced"), -1), desc="sliced int8"),
        Sample((T((2, 4), "bool"),), {"dim": 1, "stable": True}, desc="bool, stable"),
        Sample((distinct((4,), "float16"),), desc="float16"),
        Sample((distinct((2, 3), "bfloat16"), 0), desc="bfloat16"),
        Sample((T(()),), desc="0-d"),
        Sample((T((0, 3)), 1), desc="empty"),
    ]


def topk_samples():
    return [
        Sample((distinct((3, 5)), 2), desc="the 2 largest"),
        Sample((distinct((4, 3), "float64", layout="transposed"), 3, 0, False), desc="the 3 smallest along dim 0"),
        Sample((distinct((2, 5), "int32", layout="sliced"), 1, -1), desc="sliced int32"),
        Sample((distinct((5,), "float16"), 5), desc="all, float16"),
        Sample((distinct((2, 4), "bfloat16"), 2, 1, True), desc="bfloat16"),
        Sample((T(()), 1), desc="0-d"),
        Sample((T((2, 0)), 0), desc="k 0 of an empty dim"),
    ]


def topk_errors():
    x = T((2, 3))
    return [ErrorSample((x, 4), {}, RuntimeError, r"selected index k out of range", desc="k larger than the dim"),
            ErrorSample((x, -1), {}, RuntimeError, r"selected index k out of range", desc="k -1"),
            ErrorSample((T((2, 3), "bool"), 1), {}, RuntimeError, r"topk does not support bool", desc="bool"),
            ErrorSample((x, 1, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor")]


def kthvalue_samples():
    return [
        Sample((distinct((3, 5)), 2), desc="the 2nd smallest"),
        Sample((distinct((4, 3), "float64", layout="transposed"), 4, 0, True), desc="dim 0, keepdim"),
        Sample((distinct((2, 5), "int64", layout="sliced"), 5, -1), desc="the largest, sliced int64"),
        Sample((distinct((5,), "float16"), 1), desc="float16"),
        Sample((distinct((2, 4), "bfloat16"), 3, 1), desc="bfloat16"),
        Sample((T(()), 1), desc="0-d"),
        Sample((T((0, 3)), 1), desc="no rows"),
    ]


def kthvalue_errors():
    x = T((2, 3))
    return [ErrorSample((x, 0), {}, RuntimeError, r"selected number k out of range", desc="k 0"),
            ErrorSample((x, 4), {}, RuntimeError, r"selected number k out of range", desc="k past the dim"),
            ErrorSample((T((2, 3), "bool"), 1), {}, NotImplementedError, r"Bool", desc="bool"),
            ErrorSample((T((2, 0)), 1), {}, IndexError, r"Expected reduction dim 1 to have non-zero size",
                        desc="an empty dim"),
            ErrorSample((T(()), 2), {}, RuntimeError, r"selected number k out of range", desc="k 2 of a 0-d tensor")]


def unique_samples():
    dup = ember.tensor([[3, 1, 3], [2, 1, 2], [3, 1, 3]])
    return [
        Sample((dup,), desc="flattened"),
        Sample((dup.double().t(),), {"return_inverse": True, "return_counts": True}, desc="inverse and counts"),
        Sample((dup, True, False, True, 0), desc="rows, with counts"),
        Sample((dup.t(), True, True, False, 1), desc="columns of a transposed tensor, with inverse"),
        Sample((T((6,), "bool"),), {"return_counts": True}, desc="bool"),
        Sample((dup.to(ember.float16),), desc="float16"),
        Sample((dup.to(ember.bfloat16)[::2],), {"return_inverse": True}, desc="sliced bfloat16"),
        Sample((ember.tensor(2.0),), {"return_inverse": True}, desc="0-d"),
        Sample((T((0, 2), "int32"),), {"return_inverse": True, "return_counts": True}, desc="empty"),
    ]


register(OpInfo("sort", sort_samples, lambda: [ErrorSample((T((2, 3)), 2), {}, *BAD_DIM, desc="dim 2")],
                ref=torch.sort))
register(OpInfo("argsort", argsort_samples, lambda: [ErrorSample((T((2, 3)), -3), {}, *BAD_DIM, desc="dim -3")],
                ref=torch.argsort, grad=INDICES))
register(OpInfo("topk", topk_samples, topk_errors, ref=torch.topk))
register(OpInfo("kthvalue", kthvalue_samples, kthvalue_errors, ref=torch.kthvalue))
register(OpInfo("unique", unique_samples,
                lambda: [ErrorSample((T(()),), {"dim": 0}, IndexError, r"no dimensions", desc="dim of a 0-d tensor")],
                ref=torch.unique, grad="integer results and data-dependent sizes"))


# ---- diag, diag_embed, meshgrid -------------------------------------------------------------------

def diag_samples():
    return [
        Sample((T((3,)),), desc="vector to matrix"),
        Sample((T((3,), "float64", layout="sliced"), 2), desc="above, sliced float64"),
        Sample((T((3, 4), "float64", layout="transposed"), -1), desc="matrix to vector, below, transposed float64"),
        Sample((T((3, 3), "int64", layout="expanded"), 1), desc="expanded int64"),
        Sample((T((2,), "bool"), -1), desc="bool"),
        Sample((T((2, 2), "float16"),), desc="float16"),
        Sample((T((2,), "bfloat16"),), desc="bfloat16"),
        Sample((T((0,)),), desc="empty vector"),
        Sample((T((2, 3)), 5), desc="past the matrix: empty"),
    ]


def diag_errors():
    return [ErrorSample((T((2, 2, 2)),), {}, RuntimeError, r"Supports 1D or 2D tensors. Got 3D", desc="3-D"),
            ErrorSample((T(()),), {}, RuntimeError, r"Supports 1D or 2D tensors. Got 0D", desc="0-d")]


def diag_embed_samples():
    return [
        Sample((T((2, 3)),), desc="the last two dims"),
        Sample((T((2, 3), "float64", layout="transposed"), 1, 0, 2), desc="offset, dims 0 and 2, float64"),
        Sample((T((3,), "int64", layout="sliced"), -1, 1, 0), desc="below, dims swapped, sliced int64"),
        Sample((T((2,), "bool"),), desc="bool"),
        Sample((T((2, 2), "float16", layout="expanded"), 0, -1, 0), desc="expanded float16"),
        Sample((T((2,), "bfloat16"), 2), desc="bfloat16"),
        Sample((T((2, 0)),), desc="empty"),
    ]


def diag_embed_errors():
    return [ErrorSample((T((3,)), 0, 0, 0), {}, RuntimeError, r"diagonal dimensions cannot be identical",
                        desc="dim 0 twice"),
            ErrorSample((T((3,)), 0, 0, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d result"),
            ErrorSample((T(()),), {}, *BAD_DIM, desc="0-d: dim -2 of a 1-d result")]


def meshgrid_samples():
    return [
        Sample(([T((2,)), T((3,), seed=1)],), desc="default indexing ij"),
        Sample(([T((2,), "float64", layout="sliced"), T((3,), "float64")],), {"indexing": "xy"}, desc="xy, float64"),
        Sample(([T((2,), "int64"), T(((1,)), "int64"), T((3,), "int64", layout="expanded")],), {"indexing": "ij"},
               desc="three int64"),
        Sample(([T((), "bool"), T((2,), "bool")],), {"indexing": "xy"}, desc="0-d with 1-D, bool"),
        Sample(([T((2,), "float16")],), desc="one float16"),
        Sample(([T((2,), "bfloat16"), T((0,), "bfloat16")],), desc="empty, bfloat16"),
    ]


def meshgrid_errors():
    return [ErrorSample(([T((2, 2)), T((3,))],), {}, RuntimeError, r"Expected 0D or 1D tensor", desc="a 2-D tensor"),
            ErrorSample(([T((2,)), T((3,), "float64")],), {}, RuntimeError, r"same dtype", desc="two dtypes"),
            ErrorSample(([T((2,))],), {"indexing": "yx"}, RuntimeError, r"indexing must be one of", desc="'yx'")]


register(OpInfo("diag", diag_samples, diag_errors, ref=torch.diag))
register(OpInfo("diag_embed", diag_embed_samples, diag_embed_errors, ref=torch.diag_embed))
register(OpInfo("meshgrid", meshgrid_samples, meshgrid_errors,
                ref=lambda tensors, indexing=None: torch.meshgrid(*tensors, indexing=indexing or "ij")))

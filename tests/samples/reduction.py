"""Samples of the reduction family (src/ember/ops/reduction.py): sums, means, extrema, arg-extrema,
var/std, logsumexp, norm, all/any, count_nonzero, scans and softmax.

Data comes from `helpers.make_pair` (seeded), so every call of `samples()` builds the same tensors.
Extremum samples (argmax, max over a dim, cummax, ...) use distinct values so that the index of a
tie cannot differ from torch's; var/std samples have nonzero spread (the gradient of std at a zero
spread is the lead's known bug, fixed in autograd/formulas.py).
"""
import math

import numpy as np
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register


def T(shape, dtype="float32", layout="contiguous", seed=0, low=-3.0, high=3.0):
    return make_pair(shape, dtype, low=low, high=high, seed=seed, layout=layout)[0]


def distinct(shape, dtype="float32", layout="contiguous", seed=0):
    """A permutation of -n/2..n/2 (no ties, exact in every dtype), in the given layout."""
    rng = np.random.default_rng(seed)
    if layout == "transposed":
        base = shape[:-2] + (shape[-1], shape[-2])
    elif layout == "sliced":
        base = shape[:-1] + (2 * shape[-1],)
    else:
        base = shape
    n = math.prod(base)
    x = ember.tensor((rng.permutation(n) - n // 2).reshape(base), dtype=getattr(ember, dtype))
    if layout == "transposed":
        return x.transpose(-1, -2)
    if layout == "sliced":
        return x[..., ::2]
    return x


def with_nans(shape, dtype="float32", layout="contiguous", seed=0):
    x = T(shape, dtype, layout, seed)
    x[(0,) * len(shape)] = float("nan")
    if len(shape) >= 2:
        x[(1,) * len(shape)] = float("nan")
    return x


BAD_DIM = (IndexError, r"out of range")
DUP_DIM = (RuntimeError, r"appears multiple times")


def dim_errors(name, list_dims=True):
    x = T((2, 3))
    out = [ErrorSample((x, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
           ErrorSample((x, -3), {}, *BAD_DIM, desc="dim -3 of a 2-d tensor"),
           ErrorSample((T(()), 1), {}, *BAD_DIM, desc="dim 1 of a 0-d tensor")]
    if list_dims:
        out.append(ErrorSample((x, [0, -2]), {}, *DUP_DIM, desc="dim 0 twice"))
    return out


# ---- sum, nansum, prod ------------------------------------------------------------------------------

def sum_samples():
    return [
        Sample((T((3, 4)),), desc="all dims"),
        Sample((T((3, 4), "float64"), 1), desc="dim int, float64"),
        Sample((T((2, 3, 4), layout="transposed"), [0, -1], True), desc="dim list with a negative, keepdim, transposed"),
        Sample((T((3, 4)),), {"dim": []}, desc="empty dim list means all dims"),
        Sample((T((3, 4), "int32"),), desc="int32 accumulates to int64"),
        Sample((T((3, 4), "bool"), 0), desc="bool counts to int64"),
        Sample((T((3, 4), "int64"), 1), {"dtype": ember.float32}, desc="dtype="),
        Sample((T((4, 5), "float16"), -1), desc="float16"),
        Sample((T((4, 5), "bfloat16"), 0, True), desc="bfloat16 keepdim"),
        Sample((T(()),), desc="0-d"),
        Sample((T(()), 0, True), desc="0-d dim 0 keepdim"),
        Sample((T((0, 3)), 0), desc="empty dim gives zeros"),
        Sample((T((0, 3)),), desc="empty, all dims"),
        Sample((T((3, 4), layout="sliced"), 1), desc="sliced"),
        Sample((T((3, 4), "float64", layout="expanded"), 0), desc="expanded, float64"),
    ]


def nansum_samples():
    return [
        Sample((with_nans((3, 4)),), desc="all dims"),
        Sample((with_nans((3, 4), "float64"), 1, True), desc="dim, keepdim, float64"),
        Sample((with_nans((2, 3, 4), layout="transposed"), [0, 2]), desc="dim list, transposed"),
        Sample((T((3, 4), "int32"), 0), desc="int32 to int64"),
        Sample((with_nans((4, 5), "float16"), -1), desc="float16"),
        Sample((with_nans((4, 5), "bfloat16"),), desc="bfloat16"),
        Sample((T(()),), desc="0-d"),
        Sample((T((0, 2)), 0), desc="empty"),
        Sample((with_nans((3, 4)), 1), {"dtype": ember.float64}, desc="dtype="),
        Sample((T((3, 4), "float64", layout="expanded"), -1), desc="expanded, float64"),
    ]


def prod_samples():
    return [
        Sample((T((3, 4), low=0.5, high=1.5),), desc="all elements"),
        Sample((T((3, 4), "float64", low=0.5, high=1.5), 1), desc="dim, float64"),
        Sample((T((3, 4), layout="transposed", low=-1.5, high=1.5), -1, True), desc="negative dim, keepdim, transposed"),
        Sample((T((3, 4), "int32", low=-2, high=2), 0), desc="int32 to int64"),
        Sample((T((3, 4), "bool"),), desc="bool to int64"),
        Sample((T((3, 4), "int64", low=-2, high=2), 1), {"dtype": ember.float64}, desc="dtype="),
        Sample((T((3, 4), "float16", low=0.5, high=1.5), 0), desc="float16"),
        Sample((T((3, 4), "bfloat16", low=0.5, high=1.5), 1), desc="bfloat16"),
        Sample((T(()), 0), desc="0-d dim 0"),
        Sample((T((0, 3)), 0), desc="empty dim gives ones"),
        Sample((T((3, 4), "float64", layout="sliced", low=0.5, high=1.5), 0), desc="sliced float64"),
    ]


def prod_errors():
    x = T((2, 3))
    return [ErrorSample((x, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
            ErrorSample((x, (0, 1)), {}, TypeError, r"must be int", desc="prod takes one int dim")]


register(OpInfo("sum", sum_samples, lambda: dim_errors("sum"), ref=torch.sum))
register(OpInfo("nansum", nansum_samples, lambda: dim_errors("nansum"), ref=torch.nansum))
register(OpInfo("prod", prod_samples, prod_errors, ref=torch.prod))


# ---- mean, nanmean ---------------------------------------------------------------------------------

def mean_samples(nan):
    make = with_nans if nan else T
    return [
        Sample((make((3, 4)),), desc="all dims"),
        Sample((make((3, 4), "float64"), 1), desc="dim, float64"),
        Sample((make((2, 3, 4), layout="transposed"), [-1, 0], True), desc="dim list, keepdim, transposed"),
        Sample((make((4, 5), "float16"), 0), desc="float16"),
        Sample((make((4, 5), "bfloat16"), -1), desc="bfloat16"),
        Sample((make((3, 4)), 1), {"dtype": ember.float64}, desc="dtype="),
        Sample((T(()),), desc="0-d"),
        Sample((T((0, 3)), 1), desc="empty rows (no dim emptied)"),
        Sample((T((3, 4), "float64", layout="expanded"), 0), desc="expanded, float64"),
    ]


def mean_errors(name):
    i = T((2, 3), "int64")
    msg = r"expected input to have floating point" if name == "nanmean" else r"Input dtype must be either a floating"
    return dim_errors(name) + [
        ErrorSample((i,), {}, RuntimeError, msg, desc=f"{name} of int64"),
        ErrorSample((T((2, 3)),), {"dtype": ember.int64}, RuntimeError, r"Optional dtype must be either a floating",
                    desc="dtype=int64")]


register(OpInfo("mean", lambda: mean_samples(False), lambda: mean_errors("mean"), ref=torch.mean))
register(OpInfo("nanmean", lambda: mean_samples(True), lambda: mean_errors("nanmean"), ref=torch.nanmean))


# ---- amax, amin, argmax, argmin, max/min over a dim -----------------------------------------------

def amax_samples():
    return [
        Sample((T((3, 4)),), desc="all dims (dim=())"),
        Sample((T((3, 4), "float64"), 1), desc="dim, float64"),
        Sample((T((2, 3, 4), layout="transposed"), [0, -1], True), desc="dim list, keepdim, transposed"),
        Sample((T((3, 4), "int32"), 0), desc="int32"),
        Sample((T((3, 4), "bool"), 1), desc="bool"),
        Sample((T((4, 5), "float16"), -1), desc="float16"),
        Sample((T((4, 5), "bfloat16"),), desc="bfloat16"),
        Sample((T(()),), desc="0-d"),
        Sample((T((0, 3)), 1), desc="empty rows, non-empty dim"),
        Sample((with_nans((3, 4)), 1), desc="NaN propagates"),
        Sample((distinct((3, 4), "float64", layout="sliced"), 0), desc="sliced float64"),
    ]


def amax_errors(name):
    return dim_errors(name) + [
        ErrorSample((T((0, 3)), 0), {}, IndexError, r"Expected reduction dim 0 to have non-zero size",
                    desc="reducing an empty dim"),
        ErrorSample((T((0, 3)),), {}, RuntimeError, r"numel\(\) == 0", desc="all dims of an empty tensor")]


def argmax_samples():
    return [
        Sample((distinct((3, 4)),), desc="all elements"),
        Sample((distinct((3, 4), "float64"), 1), desc="dim, float64"),
        Sample((distinct((3, 4), layout="transposed"), -1, True), desc="negative dim, keepdim, transposed"),
        Sample((distinct((3, 4)),), {"keepdim": True}, desc="all elements, keepdim"),
        Sample((distinct((3, 4), "int32"), 0), desc="int32"),
        Sample((distinct((4, 5), "float16"), 1), desc="float16"),
        Sample((distinct((4, 5), "bfloat16"), 0), desc="bfloat16"),
        Sample((T(()),), desc="0-d"),
        Sample((T(()), 0), desc="0-d dim 0"),
        Sample((T((0, 3)), 1), desc="empty rows"),
        Sample((distinct((3, 4), layout="sliced"), 1), desc="sliced"),
    ]


def argmax_errors(name):
    return dim_errors(name, list_dims=False) + [
        ErrorSample((T((0, 3)),), {}, IndexError, r"numel\(\) == 0", desc="all elements of an empty tensor"),
        ErrorSample((T((0, 3)), 0), {}, IndexError, r"dim 0 to have non-zero size", desc="reducing an empty dim"),
        ErrorSample((T((2, 3), "bool"), 1), {}, RuntimeError, r"does not support bool", desc="bool input")]


def max_dim_samples():
    return [
        Sample((distinct((3, 4)), 1), desc="dim"),
        Sample((distinct((3, 4), "float64"), 0, True), desc="keepdim, float64"),
        Sample((distinct((2, 3, 4), layout="transposed"), -1), desc="negative dim, transposed"),
        Sample((distinct((3, 4), "int64"), 1), desc="int64"),
        Sample((ember.tensor([[True, False, False]]), 1), desc="bool"),
        Sample((distinct((4, 5), "float16"), 0), desc="float16"),
        Sample((distinct((4, 5), "bfloat16"), -1, True), desc="bfloat16"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 3)), 1), desc="empty rows"),
        Sample((distinct((3, 4), "float64", layout="sliced"), 1), desc="sliced float64"),
    ]


def max_dim_errors(name):
    return dim_errors(name, list_dims=False) + [
        ErrorSample((T((0, 3)), 0), {}, IndexError, r"non-zero size", desc="reducing an empty dim")]


register(OpInfo("amax", amax_samples, lambda: amax_errors("amax"), ref=torch.amax))
register(OpInfo("amin", amax_samples, lambda: amax_errors("amin"), ref=torch.amin))
register(OpInfo("argmax", argmax_samples, lambda: argmax_errors("argmax"), ref=torch.argmax,
                grad="integer indices"))
register(OpInfo("argmin", argmax_samples, lambda: argmax_errors("argmin"), ref=torch.argmin,
                grad="integer indices"))
register(OpInfo("_max_dim", max_dim_samples, lambda: max_dim_errors("max"),
                ref=lambda x, dim, keepdim=False: torch.max(x, dim, keepdim)))
register(OpInfo("_min_dim", max_dim_samples, lambda: max_dim_errors("min"),
                ref=lambda x, dim, keepdim=False: torch.min(x, dim, keepdim)))


# ---- var, std ------------------------------------------------------------------------------------

def var_samples():
    return [
        Sample((T((3, 4)),), desc="all elements"),
        Sample((T((3, 4), "float64"), 1), desc="dim, float64"),
        Sample((T((2, 3, 4), layout="transposed"), [0, -1]), {"keepdim": True}, desc="dim list, keepdim, transposed"),
        Sample((T((3, 4), "float64"),), {"dim": 0, "correction": 0}, desc="correction=0, float64"),
        Sample((T((3, 4)), 1), {"unbiased": False}, desc="unbiased=False"),
        Sample((T((3, 4)), False), desc="legacy positional unbiased"),
        Sample((T((3, 4), "float64"),), {"dim": [1], "correction": 2, "keepdim": True}, desc="correction=2"),
        Sample((T((4, 5), "float16"), 0), desc="float16"),
        Sample((T((4, 5), "bfloat16"), -1), desc="bfloat16"),
        Sample((T((0, 3)), 1), desc="empty rows"),
        Sample((T((3, 4), "float64", layout="sliced"), 0), desc="sliced float64"),
    ]


def var_errors(name):
    return dim_errors(name) + [
        ErrorSample((T((2, 3), "int64"),), {}, RuntimeError, r"only support floating point", desc="int64 input"),
        ErrorSample((T((2, 3)), 0), {"unbiased": True, "correction": 1}, TypeError, r"only one of",
                    desc="unbiased and correction")]


register(OpInfo("var", var_samples, lambda: var_errors("var"), ref=torch.var))
register(OpInfo("std", var_samples, lambda: var_errors("std"), ref=torch.std))


# ---- logsumexp, norm -----------------------------------------------------------------------------

def logsumexp_samples():
    return [
        Sample((T((3, 4)), 1), desc="dim"),
        Sample((T((3, 4), "float64"), [0, 1]), desc="all dims as a list, float64"),
        Sample((T((2, 3, 4), layout="transposed"), [-1, 0], True), desc="dim list, keepdim, transposed"),
        Sample((T((3, 4), "int64"), 1), desc="int64 gives the default float dtype"),
        Sample((T((4, 5), "float16"), 0), desc="float16"),
        Sample((T((4, 5), "bfloat16"), -1), desc="bfloat16"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 3)), 0), desc="empty dim gives -inf"),
        Sample((T((3, 4), "float64", layout="expanded"), 0, True), desc="expanded float64"),
    ]


def norm_samples():
    return [
        Sample((T((3, 4)),), desc="frobenius of all elements"),
        Sample((T((3, 4), "float64"), 2, 1), desc="p=2 over a dim, float64"),
        Sample((T((3, 4), "float64"), 1, [0], True), desc="p=1, dim list, keepdim, float64"),
        Sample((T((3, 4)), float("inf"), -1), desc="p=inf"),
        Sample((T((3, 4)), float("-inf"), 0), desc="p=-inf"),
        Sample((T((3, 4)), 0), desc="p=0 counts nonzeros"),
        Sample((T((3, 4), "float64"), 3.5, 1), desc="p=3.5, float64"),
        Sample((T((3, 4), "float64"), "nuc"), desc="nuclear norm",
               cuda="the nuclear norm needs an SVD, which ember's CUDA backend does not have"),
        Sample((T((2, 3, 4), layout="transposed"), "fro", [0, 2]), desc="fro over two dims, transposed"),
        Sample((T((4, 5), "float16"), 2, 0), desc="float16"),
        Sample((T((4, 5), "bfloat16"),), desc="bfloat16"),
        Sample((T((3, 4)), 2), {"dtype": ember.float64}, desc="dtype= widening"),
        Sample((T(()),), desc="0-d"),
        Sample((T((0, 3)), 2, 0), desc="empty dim gives zeros"),
        Sample((T((3, 4), "float64", layout="sliced"), 2, 1), desc="sliced float64"),
    ]


def norm_errors():
    x = T((2, 3))
    return [
        ErrorSample((x, 2, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
        ErrorSample((T((2, 3), "int64"),), {}, RuntimeError, r"floating point", desc="int64 input"),
        ErrorSample((T((2, 3), "float64"), 2), {"dtype": ember.float32}, RuntimeError, r"without narrowing",
                    desc="narrowing dtype="),
        ErrorSample((T((0, 3)), float("inf")), {}, RuntimeError, r"identity", desc="inf norm of an empty tensor"),
        ErrorSample((x, "nuc", 0), {}, RuntimeError, r"2-tuple", desc="nuclear norm over one dim")]


register(OpInfo("logsumexp", logsumexp_samples, lambda: dim_errors("logsumexp"), ref=torch.logsumexp))
register(OpInfo("norm", norm_samples, norm_errors, ref=torch.norm, tol={"float16": (2e-3, 2e-3)}))


# ---- all, any, count_nonzero ----------------------------------------------------------------------

def all_samples():
    return [
        Sample((T((3, 4), "bool"),), desc="bool, all elements"),
        Sample((T((3, 4), "bool"), 1), desc="bool, dim"),
        Sample((T((2, 3, 4), "bool", layout="transposed"), (0, -1), True), desc="dim tuple, keepdim, transposed"),
        Sample((T((3, 4), low=-1, high=1).round(), 0), desc="float input gives bool"),
        Sample((T((3, 4), "int32", low=0, high=2), -1), desc="int32"),
        Sample((T((3, 4), "uint8", low=0, high=2), 1), desc="uint8 gives uint8"),
        Sample((T((3, 4), "float16", low=-1, high=1).round(),), desc="float16"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 3), "bool"), 0), desc="empty dim"),
        Sample((T((0, 3), "bool"),), desc="empty, all elements"),
        Sample((T((3, 4), "bool", layout="sliced"), 1), desc="sliced"),
    ]


def count_nonzero_samples():
    return [
        Sample((T((3, 4), low=-1, high=1).round(),), desc="all elements"),
        Sample((T((3, 4), "int64", low=-1, high=1), 1), desc="int64, dim"),
        Sample((T((2, 3, 4), "bool", layout="transposed"), [0, -1]), desc="dim list, transposed"),
        Sample((T((3, 4), "float64", low=-1, high=1).round(), -1), desc="float64"),
        Sample((T((4, 5), "bfloat16", low=-1, high=1).round(), 0), desc="bfloat16"),
        Sample((T(()),), desc="0-d"),
        Sample((T((0, 3)), 0), desc="empty"),
        Sample((T((3, 4), "int32", layout="expanded", low=-1, high=1), 0), desc="expanded"),
    ]


register(OpInfo("all", all_samples, lambda: dim_errors("all"), ref=torch.all, grad="boolean result"))
register(OpInfo("any", all_samples, lambda: dim_errors("any"), ref=torch.any, grad="boolean result"))
register(OpInfo("count_nonzero", count_nonzero_samples, lambda: dim_errors("count_nonzero"), ref=torch.count_nonzero,
                grad="integer result"))


# ---- scans: cumsum, cumprod, cummax, cummin, logcumsumexp ----------------------------------------

def cumsum_samples(prod):
    lo, hi = (0.5, 1.5) if prod else (-3.0, 3.0)
    return [
        Sample((T((3, 4), low=lo, high=hi), 1), desc="dim"),
        Sample((T((3, 4), "float64", low=lo, high=hi), 0), desc="float64"),
        Sample((T((2, 3, 4), layout="transposed", low=lo, high=hi), -1), desc="negative dim, transposed"),
        Sample((T((3, 4), "int32", low=-2, high=2), 1), desc="int32 to int64"),
        Sample((T((3, 4), "bool"), 0), desc="bool to int64"),
        Sample((T((3, 4), "int64", low=-2, high=2), 1), {"dtype": ember.float64}, desc="dtype="),
        Sample((T((4, 5), "float16", low=lo, high=hi), 1), desc="float16"),
        Sample((T((4, 5), "bfloat16", low=lo, high=hi), 0), desc="bfloat16"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 3)), 0), desc="empty"),
        Sample((T((3, 4), "float64", layout="sliced", low=lo, high=hi), 1), desc="sliced float64"),
    ]


def cummax_samples():
    return [
        Sample((distinct((3, 4)), 1), desc="dim"),
        Sample((distinct((3, 4), "float64"), 0), desc="float64"),
        Sample((distinct((2, 3, 4), layout="transposed"), -1), desc="negative dim, transposed"),
        Sample((distinct((3, 4), "int64"), 1), desc="int64"),
        Sample((ember.tensor([[False, True, False]]), 1), desc="bool"),
        Sample((distinct((4, 5), "float16"), 0), desc="float16"),
        Sample((distinct((4, 5), "bfloat16"), 1), desc="bfloat16"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 3)), 0), desc="empty"),
        Sample((distinct((3, 4), "float64", layout="sliced"), 1), desc="sliced float64"),
    ]


def logcumsumexp_samples():
    return [
        Sample((T((3, 4)), 1), desc="dim"),
        Sample((T((3, 4), "float64"), 0), desc="float64"),
        Sample((T((2, 3, 4), layout="transposed"), -1), desc="negative dim, transposed"),
        Sample((T((4, 5), "float16"), 1), desc="float16"),
        Sample((T((4, 5), "bfloat16"), 0), desc="bfloat16"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 3)), 0), desc="empty"),
        Sample((T((3, 4), "float64", layout="expanded"), 1), desc="expanded float64"),
    ]


def scan_errors(name, floats_only=False):
    x = T((2, 3))
    out = [ErrorSample((x, 2), {}, *BAD_DIM, desc="dim 2 of a 2-d tensor"),
           ErrorSample((x, -3), {}, *BAD_DIM, desc="dim -3 of a 2-d tensor"),
           ErrorSample((T(()), 1), {}, *BAD_DIM, desc="dim 1 of a 0-d tensor")]
    if floats_only:
        out.append(ErrorSample((T((2, 3), "int64"), 0), {}, NotImplementedError, r"floating point",
                               desc="int64 input"))
    return out


register(OpInfo("cumsum", lambda: cumsum_samples(False), lambda: scan_errors("cumsum"), ref=torch.cumsum))
register(OpInfo("cumprod", lambda: cumsum_samples(True), lambda: scan_errors("cumprod"), ref=torch.cumprod))
register(OpInfo("cummax", cummax_samples, lambda: scan_errors("cummax"), ref=torch.cummax))
register(OpInfo("cummin", cummax_samples, lambda: scan_errors("cummin"), ref=torch.cummin))
register(OpInfo("logcumsumexp", logcumsumexp_samples, lambda: scan_errors("logcumsumexp", True),
                ref=torch.logcumsumexp))


# ---- softmax, log_softmax ------------------------------------------------------------------------

def softmax_samples():
    return [
        Sample((T((3, 4)), 1), desc="dim"),
        Sample((T((3, 4), "float64"), 0), desc="float64"),
        Sample((T((2, 3, 4), layout="transposed"), -1), desc="negative dim, transposed"),
        Sample((T((3, 4), "float16"), 1, ember.float32), desc="float16 with dtype=float32"),
        Sample((T((3, 4), "int64"), 1, ember.float64), desc="int64 with dtype=float64"),
        Sample((T((4, 5), "float16"), 0), desc="float16"),
        Sample((T((4, 5), "bfloat16"), -1), desc="bfloat16"),
        Sample((T(()), 0), desc="0-d"),
        Sample((T((0, 3)), 1), desc="empty"),
        Sample((T((3, 4), "float64", layout="sliced"), 1), desc="sliced float64"),
    ]


register(OpInfo("softmax", softmax_samples, lambda: scan_errors("softmax", True), ref=torch.softmax))
register(OpInfo("log_softmax", softmax_samples, lambda: scan_errors("log_softmax", True), ref=torch.log_softmax))

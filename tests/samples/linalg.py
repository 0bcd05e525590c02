"""Samples of the linear-algebra family (src/ember/ops/linalg.py): matmul, mm, bmm, mv, dot, vdot, outer,
ger, the addmm family (and in-place forms), einsum, tensordot, linear and linear_backward.

Matrix operands must share one dtype (no promotion, as in PyTorch); integer products are CPU only in
torch and in ember (the CUDA kernels raise NotImplementedError, as torch CUDA does), so the int
samples are for the CPU. Float64 samples come first (gradcheck takes the first three of an op).
"""
import torch
from helpers import make_pair

from ._core import ErrorSample, OpInfo, Sample, register

CUBLAS = ("the CUDA kernel's products run through cuBLASLt/cuBLAS, which need a GPU; "
          "tests/test_cuda_linalg_host.py runs this host code against models of both libraries")
INT_MM = "torch CUDA has no integer matrix products either (cuBLASLt takes floating types)"


def T(shape, dtype="float32", layout="contiguous", seed=0):
    return make_pair(shape, dtype, low=-3, high=3, seed=seed, layout=layout)[0]


def B(shape, seed=0):
    return T(shape, "bool", seed=seed)


DT_MISMATCH = (RuntimeError, r"same dtype")
BOOL = (NotImplementedError, r"Bool")
SHAPES = (RuntimeError, r"shapes cannot be multiplied")
TOL = {"float16": (2e-3, 2e-3), "bfloat16": (2e-2, 2e-2)}


# ---- matmul, mm, bmm, mv, dot, vdot ---------------------------------------------------------------

def matmul_samples():
    return [
        Sample((T((2, 3), "float64"), T((3, 4), "float64", seed=1)), desc="2-D @ 2-D"),
        Sample((T((3,), "float64"), T((3, 4), "float64", seed=1)), desc="1-D @ 2-D"),
        Sample((T((2, 1, 2, 3), "float64"), T((3, 3, 2), "float64", seed=1)), desc="broadcast batch dims"),
        Sample((T((3,)), T((3,), seed=1)), desc="1-D @ 1-D (a dot)"),
        Sample((T((2, 2, 3), layout="transposed"), T((3,), layout="sliced", seed=1)), desc="batched @ 1-D, strided"),
        Sample((T((2, 2, 3)), T((3, 2), layout="transposed", seed=1)), desc="batched @ transposed matrix"),
        Sample((T((2, 3), "float16"), T((3, 2), "float16", seed=1)), desc="float16"),
        Sample((T((2, 3), "bfloat16"), T((3, 2), "bfloat16", seed=1)), desc="bfloat16"),
        Sample((T((2, 3), "int64"), T((3, 2), "int64", seed=1)), desc="int64 (CPU)", cuda=INT_MM),
        Sample((T((0, 3)), T((3, 2), seed=1)), desc="0 rows"),
        Sample((T((2, 0)), T((0, 3), seed=1)), desc="empty inner dim gives zeros"),
    ]


def matmul_errors():
    return [
        ErrorSample((T(()), T((3,))), {}, RuntimeError, r"at least 1D, but they are 0D and 1D", desc="0-d"),
        ErrorSample((T((2, 3)), T((4, 5))), {}, *SHAPES, desc="inner dims 3 and 4"),
        ErrorSample((T((3, 2, 3)), T((2, 3, 5))), {}, RuntimeError, r"batch dimensions", desc="batch 3 vs 2"),
        ErrorSample((T((2, 3)), T((3, 4), "float64")), {}, RuntimeError, r"float != double", desc="float32 @ float64"),
        ErrorSample((B((2, 3)), B((3, 2))), {}, *BOOL, desc="bool"),
    ]


def mm_samples():
    return [
        Sample((T((2, 3), "float64"), T((3, 4), "float64", seed=1)), desc="float64"),
        Sample((T((2, 3), "float64", "transposed"), T((3, 4), "float64", "sliced", seed=1)),
               desc="transposed @ sliced"),
        Sample((T((2, 3)), T((3, 4), seed=1)), desc="float32"),
        Sample((T((2, 3), "float16"), T((3, 2), "float16", seed=1)), desc="float16"),
        Sample((T((2, 3), "bfloat16"), T((3, 2), "bfloat16", seed=1)), desc="bfloat16"),
        Sample((T((2, 3), "int32"), T((3, 2), "int32", seed=1)), desc="int32 (CPU)", cuda=INT_MM),
        Sample((T((2, 0)), T((0, 3), seed=1)), desc="empty inner dim"),
    ]


def mm_errors():
    return [
        ErrorSample((T((3,)), T((3, 4))), {}, RuntimeError, r"self must be a matrix", desc="1-D self"),
        ErrorSample((T((2, 3)), T((4, 5))), {}, *SHAPES, desc="inner dims 3 and 4"),
        ErrorSample((T((2, 3)), T((3, 4), "float64")), {}, RuntimeError, r"float != double", desc="dtypes"),
        ErrorSample((B((2, 2)), B((2, 2))), {}, *BOOL, desc="bool"),
    ]


def bmm_samples():
    return [
        Sample((T((2, 2, 3), "float64"), T((2, 3, 4), "float64", seed=1)), desc="float64"),
        Sample((T((2, 2, 3), "float64", "transposed"), T((2, 3, 2), "float64", "expanded", seed=1)),
               desc="transposed @ expanded"),
        Sample((T((2, 2, 3)), T((2, 3, 4), seed=1)), desc="float32"),
        Sample((T((2, 2, 3), "float16"), T((2, 3, 2), "float16", seed=1)), desc="float16"),
        Sample((T((2, 2, 3), "bfloat16"), T((2, 3, 2), "bfloat16", seed=1)), desc="bfloat16"),
        Sample((T((2, 2, 3), "int64"), T((2, 3, 2), "int64", seed=1)), desc="int64 (CPU)", cuda=INT_MM),
        Sample((T((0, 2, 3)), T((0, 3, 4), seed=1)), desc="no batches"),
    ]


def bmm_errors():
    return [
        ErrorSample((T((2, 3)), T((2, 3, 4))), {}, RuntimeError, r"batch1 must be a 3D tensor", desc="2-D batch1"),
        ErrorSample((T((2, 2, 3)), T((2, 4, 4))), {}, RuntimeError, r"Expected size for first two dimensions of "
                    r"batch2 tensor to be: \[2, 3\]", desc="inner dims 3 and 4"),
        ErrorSample((T((2, 2, 3)), T((2, 3, 4), "float64")), {}, RuntimeError, r"float != double", desc="dtypes"),
        ErrorSample((B((2, 2, 2)), B((2, 2, 2))), {}, *BOOL, desc="bool"),
    ]


def mv_samples():
    return [
        Sample((T((2, 3), "float64"), T((3,), "float64", seed=1)), desc="float64"),
        Sample((T((2, 3), "float64", "transposed"), T((3,), "float64", "sliced", seed=1)), desc="strided"),
        Sample((T((2, 3)), T((3,), seed=1)), desc="float32"),
        Sample((T((2, 3), "float16"), T((3,), "float16", seed=1)), desc="float16"),
        Sample((T((2, 3), "bfloat16"), T((3,), "bfloat16", seed=1)), desc="bfloat16"),
        Sample((T((2, 3), "int64"), T((3,), "int64", seed=1)), desc="int64 (CPU)", cuda=INT_MM),
        Sample((T((0, 3)), T((3,), seed=1)), desc="no rows"),
    ]


def mv_errors():
    return [
        ErrorSample((T((2, 3)), T((4,))), {}, RuntimeError, r"size mismatch, got input \(2\), mat \(2x3\), vec \(4\)",
                    desc="sizes"),
        ErrorSample((T((3,)), T((3,))), {}, RuntimeError, r"vector", desc="1-D matrix"),
        ErrorSample((T((2, 3)), T((3,), "float64")), {}, *DT_MISMATCH, desc="dtypes"),
        ErrorSample((B((2, 3)), B((3,))), {}, *BOOL, desc="bool"),
    ]


def dot_samples():
    return [
        Sample((T((4,), "float64"), T((4,), "float64", seed=1)), desc="float64"),
        Sample((T((4,), "float64", "sliced"), T((4,), "float64", "expanded", seed=1)), desc="sliced, expanded"),
        Sample((T((4,)), T((4,), seed=1)), desc="float32"),
        Sample((T((4,), "float16"), T((4,), "float16", seed=1)), desc="float16"),
        Sample((T((4,), "bfloat16"), T((4,), "bfloat16", seed=1)), desc="bfloat16"),
        Sample((T((4,), "int32"), T((4,), "int32", seed=1)), desc="int32 (CPU)", cuda=INT_MM),
        Sample((T((0,)), T((0,), seed=1)), desc="empty: 0"),
    ]


def dot_errors():
    return [
        ErrorSample((T((3,)), T((4,))), {}, RuntimeError, r"inconsistent tensor size", desc="sizes 3 and 4"),
        ErrorSample((T((2, 3)), T((3,))), {}, RuntimeError, r"1D tensors expected, but got 2D and 1D", desc="2-D"),
        ErrorSample((T((3,)), T((3,), "float64")), {}, RuntimeError, r"same dtype, but found Float and Double",
                    desc="dtypes"),
        ErrorSample((B((3,)), B((3,))), {}, *BOOL, desc="bool"),
    ]


# ---- outer / ger: a broadcast multiply (dtypes promote) -------------------------------------------

def outer_samples():
    return [
        Sample((T((3,), "float64"), T((4,), "float64", seed=1)), desc="float64"),
        Sample((T((3,), "float64", "sliced"), T((2,), "float64", "expanded", seed=1)), desc="sliced, expanded"),
        Sample((T((3,)), T((4,), "float64", seed=1)), desc="float32 x float64 promotes"),
        Sample((T((3,), "int64"), B((2,))), desc="int64 x bool"),
        Sample((B((3,)), B((2,), seed=1)), desc="bool"),
        Sample((T((3,), "float16"), T((2,), "float16", seed=1)), desc="float16"),
        Sample((T((3,), "bfloat16"), T((2,), "bfloat16", seed=1)), desc="bfloat16"),
        Sample((T((0,)), T((3,), seed=1)), desc="empty"),
    ]


def outer_errors():
    return [
        ErrorSample((T((2, 3)), T((4,))), {}, RuntimeError, r"Expected 1-D argument self, but got 2-D", desc="2-D"),
        ErrorSample((T((3,)), T(())), {}, RuntimeError, r"Expected 1-D argument vec2, but got 0-D", desc="0-d"),
    ]


# ---- beta * self + alpha * product -----------------------------------------------------------------

def _nan_self(shape):
    s = T(shape)
    s[(0,) * len(shape)] = float("nan")
    return s


def addmm_samples():
    return [
        Sample((T((2, 4), "float64"), T((2, 3), "float64", seed=1), T((3, 4), "float64", seed=2)),
               {"beta": 0.5, "alpha": -2}, desc="float64, beta and alpha"),
        Sample((T((4,), "float64"), T((2, 3), "float64", "transposed", seed=1), T((3, 4), "float64", seed=2)),
               desc="self broadcast from a row, transposed mat1"),
        Sample((T((2, 4)), T((2, 3), seed=1), T((3, 4), seed=2)), desc="float32"),
        Sample((T(()), T((2, 3), seed=1), T((3, 4), "float32", "sliced", seed=2)), desc="0-d self, sliced mat2"),
        Sample((_nan_self((2, 4)), T((2, 3), seed=1), T((3, 4), seed=2)), {"beta": 0},
               desc="beta 0 ignores self's NaN"),
        Sample((T((2, 1), "float16"), T((2, 3), "float16", seed=1), T((3, 4), "float16", seed=2)), desc="float16"),
        Sample((T((2, 4), "bfloat16"), T((2, 3), "bfloat16", seed=1), T((3, 4), "bfloat16", seed=2)),
               desc="bfloat16"),
        Sample((T((2, 4), "int64"), T((2, 3), "int64", seed=1), T((3, 4), "int64", seed=2)),
               {"beta": 2, "alpha": 3}, desc="int64 (CPU)", cuda=INT_MM),
        Sample((T((2, 4)), T((2, 0), seed=1), T((0, 4), seed=2)), {"beta": 2}, desc="empty inner dim"),
    ]


def addmm_errors():
    return [
        ErrorSample((T((2, 4)), T((2, 3)), T((3, 5))), {}, RuntimeError, r"expanded size of the tensor \(5\)",
                    desc="self (2, 4) for a (2, 5) product"),
        ErrorSample((T((2, 4)), T((3,)), T((3, 4))), {}, RuntimeError, r"mat1 must be a matrix", desc="1-D mat1"),
        ErrorSample((T((2, 4), "float64"), T((2, 3)), T((3, 4))), {}, RuntimeError,
                    r"must have the same dtype, but got Double, Float and Float", desc="dtypes"),
        ErrorSample((B((2, 2)), B((2, 2)), B((2, 2))), {}, *BOOL, desc="bool"),
    ]


def addmm__samples():
    return [
        Sample((T((2, 4), "float64"), T((2, 3), "float64", seed=1), T((3, 4), "float64", seed=2)),
               {"beta": 2, "alpha": 0.5}, desc="float64"),
        Sample((T((2, 4), "float32", "transposed"), T((2, 3), seed=1), T((3, 4), seed=2)), desc="transposed self"),
        Sample((T((2, 4), "float32", "sliced"), T((2, 3), seed=1), T((3, 4), seed=2)), desc="sliced self"),
        Sample((T((2, 4), "bfloat16"), T((2, 3), "bfloat16", seed=1), T((3, 4), "bfloat16", seed=2)),
               desc="bfloat16"),
        Sample((T((2, 4), "int32"), T((2, 3), "int32", seed=1), T((3, 4), "int32", seed=2)), desc="int32 (CPU)", cuda=INT_MM),
    ]


def addmm__errors():
    return [ErrorSample((T((4,)), T((2, 3)), T((3, 4))), {}, RuntimeError,
                        r"Bad in-place call: input tensor size \[4\] and output tensor size \[2, 4\]",
                        desc="self (4,) for a (2, 4) product")]


def addmv_samples():
    return [
        Sample((T((2,), "float64"), T((2, 3), "float64", seed=1), T((3,), "float64", seed=2)),
               {"beta": 0.5, "alpha": 2}, desc="float64"),
        Sample((T((1,), "float64"), T((2, 3), "float64", "transposed", seed=1), T((3,), "float64", "sliced", seed=2)),
               desc="broadcast self, strided"),
        Sample((T((2,)), T((2, 3), seed=1), T((3,), seed=2)), desc="float32"),
        Sample((T((2,), "float16"), T((2, 3), "float16", seed=1), T((3,), "float16", seed=2)), desc="float16"),
        Sample((T((2,), "bfloat16"), T((2, 3), "bfloat16", seed=1), T((3,), "bfloat16", seed=2)), desc="bfloat16"),
        Sample((T((2,), "int64"), T((2, 3), "int64", seed=1), T((3,), "int64", seed=2)), desc="int64 (CPU)", cuda=INT_MM),
        Sample((T((0,)), T((0, 3), seed=1), T((3,), seed=2)), desc="no rows"),
    ]


def addmv_errors():
    return [
        ErrorSample((T((2,)), T((2, 3)), T((4,))), {}, RuntimeError, r"size mismatch, got input \(2\), mat \(2x3\)",
                    desc="vec of 4 for 3 columns"),
        ErrorSample((T((2,)), T((2, 3)), T((3,), "float64")), {}, *DT_MISMATCH, desc="dtypes"),
        ErrorSample((T((3,)), T((2, 3)), T((3,))), {}, RuntimeError, r"expanded size", desc="self (3,) for (2,)"),
    ]


def addmv__samples():
    return [
        Sample((T((2,), "float64"), T((2, 3), "float64", seed=1), T((3,), "float64", seed=2)),
               {"beta": 2, "alpha": 0.5}, desc="float64"),
        Sample((T((2,), "float32", "sliced"), T((2, 3), seed=1), T((3,), seed=2)), desc="sliced self"),
    ]


def addmv__errors():
    return [ErrorSample((T((1,)), T((2, 3)), T((3,))), {}, RuntimeError, r"Bad in-place call", desc="self (1,)")]


def addbmm_samples():
    return [
        Sample((T((2, 4), "float64"), T((3, 2, 3), "float64", seed=1), T((3, 3, 4), "float64", seed=2)),
               {"beta": 0.5, "alpha": 2}, desc="float64"),
        Sample((T((4,), "float64"), T((3, 2, 3), "float64", "transposed", seed=1), T((3, 3, 4), "float64", seed=2)),
               desc="broadcast self, transposed batch1"),
        Sample((T((2, 4)), T((3, 2, 3), seed=1), T((3, 3, 4), seed=2)), desc="float32"),
        Sample((T((2, 4), "float16"), T((2, 2, 3), "float16", seed=1), T((2, 3, 4), "float16", seed=2)),
               desc="float16"),
        Sample((T((2, 4), "bfloat16"), T((2, 2, 3), "bfloat16", seed=1), T((2, 3, 4), "bfloat16", seed=2)),
               desc="bfloat16"),
        Sample((T((2, 4), "int64"), T((2, 2, 3), "int64", seed=1), T((2, 3, 4), "int64", seed=2)), desc="int64 (CPU)", cuda=INT_MM),
        Sample((T((2, 4)), T((0, 2, 3), seed=1), T((0, 3, 4), seed=2)), desc="no batches: beta * self"),
    ]


def addbmm_errors():
    return [
        ErrorSample((T((2, 3)), T((2, 2, 3)), T((3, 3, 3))), {}, RuntimeError, r"same number of batches, got 2 and 3",
                    desc="batches 2 and 3"),
        ErrorSample((T((2, 3)), T((2, 2, 3)), T((2, 3, 3), "float64")), {}, *DT_MISMATCH, desc="dtypes"),
    ]


def addbmm__samples():
    return [
        Sample((T((2, 4), "float64"), T((3, 2, 3), "float64", seed=1), T((3, 3, 4), "float64", seed=2)),
               {"beta": 2, "alpha": 0.5}, desc="float64"),
        Sample((T((2, 4), "float32", "transposed"), T((3, 2, 3), seed=1), T((3, 3, 4), seed=2)), desc="transposed"),
    ]


def addbmm__errors():
    return [ErrorSample((T((4,)), T((3, 2, 3)), T((3, 3, 4))), {}, RuntimeError, r"Bad in-place call",
                        desc="self (4,)")]


def baddbmm_samples():
    return [
        Sample((T((2, 2, 4), "float64"), T((2, 2, 3), "float64", seed=1), T((2, 3, 4), "float64", seed=2)),
               {"beta": 0.5, "alpha": 2}, desc="float64"),
        Sample((T((2, 1, 4), "float64"), T((2, 2, 3), "float64", "transposed", seed=1),
                T((2, 3, 4), "float64", seed=2)), desc="broadcast self, transposed batch1"),
        Sample((T((4,)), T((2, 2, 3), seed=1), T((2, 3, 4), seed=2)), desc="float32, self a row"),
        Sample((T((2, 2, 4), "float16"), T((2, 2, 3), "float16", seed=1), T((2, 3, 4), "float16", seed=2)),
               desc="float16"),
        Sample((T((2, 2, 4), "bfloat16"), T((2, 2, 3), "bfloat16", seed=1), T((2, 3, 4), "bfloat16", seed=2)),
               desc="bfloat16"),
        Sample((T((2, 2, 4), "int64"), T((2, 2, 3), "int64", seed=1), T((2, 3, 4), "int64", seed=2)),
               desc="int64 (CPU)", cuda=INT_MM),
        Sample((T((0, 2, 4)), T((0, 2, 3), seed=1), T((0, 3, 4), seed=2)), desc="no batches"),
    ]


def baddbmm_errors():
    return [
        ErrorSample((T((3, 2, 4)), T((2, 2, 3)), T((2, 3, 4))), {}, RuntimeError, r"expanded size of the tensor \(2\)",
                    desc="self of 3 batches for 2"),
        ErrorSample((T((2, 2, 4)), T((2, 2, 3)), T((2, 3, 4), "float64")), {}, *DT_MISMATCH, desc="dtypes"),
    ]


def baddbmm__samples():
    return [
        Sample((T((2, 2, 4), "float64"), T((2, 2, 3), "float64", seed=1), T((2, 3, 4), "float64", seed=2)),
               {"beta": 2, "alpha": 0.5}, desc="float64"),
        Sample((T((2, 2, 4), "float32", "transposed"), T((2, 2, 3), seed=1), T((2, 3, 4), seed=2)),
               desc="transposed self"),
    ]


def baddbmm__errors():
    return [ErrorSample((T((2, 4)), T((2, 2, 3)), T((2, 3, 4))), {}, RuntimeError, r"Bad in-place call",
                        desc="self (2, 4)")]


# ---- einsum and tensordot ----------------------------------------------------------------------------

def einsum_samples():
    return [
        Sample(("ij,jk->ik", [T((2, 3), "float64"), T((3, 4), "float64", seed=1)]), desc="a matrix product"),
        Sample(("bij,bjk->bik", [T((2, 3, 2), "float64", "transposed"), T((2, 2, 4), "float64", seed=1)]),
               desc="batched, transposed"),
        Sample(("...i,...i->...", [T((2, 1, 3), "float64"), T((4, 3), "float64", "sliced", seed=1)]),
               desc="ellipsis broadcast, sliced"),
        Sample(("ii->i", [T((3, 3))]), desc="diagonal (float32: its backward is not implemented)"),
        Sample(("i,j->ij", [T((2,)), T((3,), "float64", seed=1)]), desc="no contraction: dtypes promote"),
        Sample(("ij->", [T((2, 3), "int32")]), desc="an int32 sum is int64"),
        Sample(("ij->ji", [B((2, 3))]), desc="bool transpose"),
        Sample(("ij,jk", [T((2, 3), "float16"), T((3, 2), "float16", seed=1)]), desc="implicit output, float16"),
        Sample(("ij,jk->ik", [T((2, 3), "bfloat16"), T((3, 2), "bfloat16", seed=1)]), desc="bfloat16"),
        Sample(("ij,jk->ik", [T((2, 3), "int64"), T((3, 2), "int64", seed=1)]), desc="int64"),
        Sample(("ij,kj->ik", [T((0, 3)), T((2, 3), seed=1)]), desc="empty"),
    ]


def einsum_errors():
    return [
        ErrorSample(("ij,jk->ik", [T((2, 3))]), {}, RuntimeError, r"fewer operands were provided", desc="1 of 2"),
        ErrorSample(("ij,jk->ik", [T((2, 3)), T((4, 4))]), {}, RuntimeError,
                    r"subscript j has size 4 for operand 1 which does not broadcast", desc="j of 3 and 4"),
        ErrorSample(("ij,jk->ik", [T((2, 3)), T((3, 4), "float64")]), {}, RuntimeError,
                    r"expected scalar type Float but found Double", desc="a contraction of two dtypes"),
        ErrorSample(("ij,jk->ik", [B((2, 2)), B((2, 2))]), {}, *BOOL, desc="bool contraction"),
        ErrorSample(("i1", [T((2, 3))]), {}, RuntimeError, r"invalid subscript given at index 1", desc="a digit"),
    ]


def tensordot_samples():
    return [
        Sample((T((2, 3, 4), "float64"), T((3, 4, 5), "float64", seed=1)), desc="dims=2 (the default)"),
        Sample((T((3, 2), "float64", "transposed"), T((3, 4), "float64", seed=1), ([0], [0])), desc="dim lists"),
        Sample((T((2, 3)), T((1, 4), seed=1), ([1], [0])),
               desc="a size-1 contracted dim broadcasts (float32: tensordot_backward fails on it)"),
        Sample((T((2, 3, 4)), T((4, 3, 2), seed=1)), {"dims": ([-1, 1], [0, 1])}, desc="negative dims, keyword"),
        Sample((T((2, 3)), T((2,), "float32", "sliced", seed=1), 0), desc="dims=0: an outer product"),
        Sample((T((2, 3), "float16"), T((3, 2), "float16", seed=1), 1), desc="float16"),
        Sample((T((2, 3), "bfloat16"), T((3, 2), "bfloat16", seed=1), 1), desc="bfloat16"),
        Sample((T((2, 3), "int64"), T((3, 2), "int64", seed=1), 1), desc="int64"),
        Sample((T((0, 3)), T((3, 2), seed=1), 1), desc="empty"),
    ]


def tensordot_errors():
    a, b = T((2, 3)), T((3, 4))
    return [
        ErrorSample((a, T((4, 4)), 1), {}, RuntimeError, r"contracted dimensions need to match", desc="3 vs 4"),
        ErrorSample((a, T((3, 4), "float64"), 1), {}, RuntimeError, r"both inputs should have same dtype",
                    desc="dtypes"),
        ErrorSample((a, b, -1), {}, RuntimeError, r"dims >= 0", desc="dims -1"),
        ErrorSample((a, b, 3), {}, RuntimeError, r"dims < ndim_a or ndim_b", desc="dims 3 of 2-d"),
        ErrorSample((a, b, ([1, 1], [0, 0])), {}, RuntimeError, r"appears multiple times", desc="dim 1 twice"),
        ErrorSample((a, b, ([1], [0, 1])), {}, RuntimeError, r"same length", desc="lists of 1 and 2"),
        ErrorSample((B((2, 3)), B((3, 4)), 1), {}, *BOOL, desc="bool"),
    ]


# ---- linear, linear_backward -----------------------------------------------------------------------

def linear_samples():
    return [
        Sample((T((2, 3), "float64"), T((4, 3), "float64", seed=1), T((4,), "float64", seed=2)), desc="float64"),
        Sample((T((2, 2, 3), "float64"), T((4, 3), "float64", "transposed", seed=1)),
               desc="3-D input, transposed weight, no bias"),
        Sample((T((2, 3), "float64"), T((4, 3), "float64", seed=1), T((2, 4), "float64", seed=2)),
               desc="a bias of the output's shape"),
        Sample((T((2, 3)), T((3,), seed=1)), desc="1-D weight"),
        Sample((T((3,)), T((3,), seed=1), T((), seed=2)), desc="1-D input and weight, 0-d bias"),
        Sample((T((3,), layout="sliced"), T((4, 3), seed=1), T((4,), seed=2)), desc="1-D sliced input"),
        Sample((T((2, 3), "float16"), T((4, 3), "float16", seed=1), T((4,), "float16", seed=2)), desc="float16"),
        Sample((T((2, 3), "bfloat16"), T((4, 3), "bfloat16", seed=1), T((4,), "bfloat16", seed=2)), desc="bfloat16"),
        Sample((T((2, 3), "int64"), T((4, 3), "int64", seed=1), T((4,), "int64", seed=2)), desc="int64 (CPU)", cuda=INT_MM),
        Sample((T((0, 3)), T((4, 3), seed=1), T((4,), seed=2)), desc="no rows"),
    ]


def linear_errors():
    return [
        ErrorSample((T((2, 3)), T((4, 5))), {}, RuntimeError,
                    r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 5x4\)", desc="in_features 3 vs 5"),
        ErrorSample((T((2, 3)), T((4, 3), "float64")), {}, RuntimeError, r"float != double", desc="dtypes"),
        ErrorSample((T((2, 3)), T((4, 3)), T((4,), "float64")), {}, RuntimeError, r"same dtype", desc="bias dtype"),
        ErrorSample((T((2, 3)), T((4, 3)), T((5,))), {}, RuntimeError, r"expanded size of the tensor \(4\)",
                    desc="bias of 5 for 4 features"),
        ErrorSample((T(()), T(())), {}, RuntimeError, r"at least 1D", desc="0-d"),
        ErrorSample((T((2, 3)), T((3,)), T(())), {}, RuntimeError, r"mat2 must be a matrix, got 1-D tensor",
                    desc="1-D weight with a bias, 2-D input"),
        ErrorSample((B((2, 3)), B((4, 3))), {}, *BOOL, desc="bool"),
    ]


def linear_backward_samples():
    out = []
    for dt in ("float64", "float32", "float16", "bfloat16"):
        out.append(Sample((T((2, 3), dt), T((2, 4), dt, seed=1), T((4, 3), dt, seed=2), True, True, True), desc=dt))
    out += [
        Sample((T((2, 2, 3), "float64", "transposed"), T((2, 2, 4), "float64", seed=1),
                T((4, 3), "float64", "transposed", seed=2), True, False, True), desc="3-D input, strided, no weight"),
        Sample((T((3,)), T((4,), seed=1), T((4, 3), seed=2), False, True, False), desc="1-D input, weight only"),
        Sample((T((0, 3)), T((0, 4), seed=1), T((4, 3), seed=2), True, True, True), desc="no rows"),
    ]
    return out


def linear_backward_errors():
    return [
        ErrorSample((T((3, 4)), T((3, 5)), T((5, 3)), True, True, True), {}, RuntimeError,
                    r"linear_backward: expected input \(\*, in\)", desc="weight (5, 3) for 4 features",
                    torch_raises=True),
        ErrorSample((T((3, 4)), T((3, 5), "float64"), T((5, 4)), True, True, True), {}, RuntimeError,
                    r"floating tensors of one dtype", desc="dtypes", torch_raises=False),
    ]


def _linear_backward_ref(x, g, w, need_input, need_weight, need_bias):
    """What aten.linear_backward computes (torch has it only for MKLDNN tensors), from torch's products."""
    g2, x2 = g.reshape(-1, w.shape[0]), x.reshape(-1, w.shape[1])
    return (g @ w if need_input else None, g2.T @ x2 if need_weight else None,
            g2.sum(0) if need_bias else None)


# ---- the table -------------------------------------------------------------------------------------

register(OpInfo("matmul", matmul_samples, matmul_errors, ref=torch.matmul, tol=TOL, interp=CUBLAS))
register(OpInfo("mm", mm_samples, mm_errors, ref=torch.mm, tol=TOL, interp=CUBLAS))
register(OpInfo("bmm", bmm_samples, bmm_errors, ref=torch.bmm, tol=TOL, interp=CUBLAS))
register(OpInfo("mv", mv_samples, mv_errors, ref=torch.mv, tol=TOL, interp=CUBLAS))
register(OpInfo("dot", dot_samples, dot_errors, ref=torch.dot, tol=TOL, interp=CUBLAS))
register(OpInfo("vdot", dot_samples, dot_errors, ref=torch.vdot, tol=TOL, interp=CUBLAS))
register(OpInfo("outer", outer_samples, outer_errors, ref=torch.outer))
register(OpInfo("ger", outer_samples, outer_errors, ref=torch.ger))
for _name, _ref in (("addmm", torch.addmm), ("addmv", torch.addmv), ("addbmm", torch.addbmm),
                    ("baddbmm", torch.baddbmm)):
    register(OpInfo(_name, globals()[f"{_name}_samples"], globals()[f"{_name}_errors"], ref=_ref, tol=TOL,
                    interp=CUBLAS))
    register(OpInfo(_name + "_", globals()[f"{_name}__samples"], globals()[f"{_name}__errors"],
                    ref=getattr(torch.Tensor, _name + "_"), tol=TOL, interp=CUBLAS))
register(OpInfo("einsum", einsum_samples, einsum_errors, ref=torch.einsum, tol=TOL, interp=CUBLAS))
register(OpInfo("tensordot", tensordot_samples, tensordot_errors, ref=torch.tensordot, tol=TOL, interp=CUBLAS))
register(OpInfo("linear", linear_samples, linear_errors, ref=torch.nn.functional.linear, tol=TOL, interp=CUBLAS))
register(OpInfo("linear_backward", linear_backward_samples, linear_backward_errors, ref=_linear_backward_ref,
                tol={"float32": (1e-5, 1e-5), **TOL}, interp=CUBLAS,
                grad="no derivative: linear's backward under create_graph takes the composite (matmul/sum ops)"))

"""The codes that host code and Triton kernels share: which operation a generic kernel runs (a
`tl.constexpr` `OP`/`MODE`), and which type it computes in (`CK`). One named enum per kernel
family; the host passes a member, the kernel compares with the same name:

    # kernels/elementwise.py                    # elementwise.py
    from .. import opcodes as C                 from .opcodes import Unary
    if OP == C.Unary.EXP: ...                   launch_ew(Unary.EXP, ...)

A kernel reads the enum through the module (`C.Unary.EXP`): Triton admits a module attribute in a
kernel, where it refuses a bare global that is not a `tl.constexpr`. Triton's on-disk cache keys a
kernel by its source, which names the members but not their values, so `compiler.compile_kernel`
salts the key with `FINGERPRINT`: renumbering a member recompiles every kernel.

This module imports nothing from Triton, so the host code can use it without loading Triton.
"""
from __future__ import annotations

import hashlib
from enum import IntEnum

__all__ = ["Compute", "Unary", "Binary", "Ternary", "Reduce", "Post", "Merge", "Scan", "ScanPass", "Move", "Fill",
           "FillOut", "Scatter", "Bounds", "Compact", "Mask", "Reduction", "WeightDecay", "Dist", "SortKey",
           "FINGERPRINT"]


class Compute(IntEnum):
    """The compute type `CK` of the elementwise kernels (float16/bfloat16 compute in float32), and
    the accumulation type of the reductions and scans (F32, F64, or I64 for integers and bools)."""
    F32 = 0
    F64 = 1
    I64 = 2
    I32 = 3
    I16 = 4
    I8 = 5
    U8 = 6
    BOOL = 7


class Unary(IntEnum):
    """`ew_kernel`'s one-input ops (`NIN == 1`); `scalar` and `alpha` carry an op's parameters."""
    NEG = 0
    ABS = 1
    EXP = 2
    LOG = 3
    SQRT = 4
    RSQRT = 5
    SIN = 6
    COS = 7
    TANH = 8
    SIGMOID = 9
    RELU = 10
    ERF = 11
    SILU = 12
    GELU = 13           # the erf form
    GELU_TANH = 14
    RECIPROCAL = 15
    SQUARE = 16
    EXP2 = 17
    LOG2 = 18
    LOG1P = 19
    EXPM1 = 20
    FLOOR = 21
    CEIL = 22
    TRUNC = 23
    SIGN = 24
    LOGICAL_NOT = 25
    ISNAN = 26
    ISINF = 27
    ISFINITE = 28
    BITWISE_NOT = 29
    LOG10 = 30
    IDENTITY = 31       # copies and casts
    TAN = 32
    ASIN = 33
    ACOS = 34
    ATAN = 35
    SINH = 36
    COSH = 37
    ASINH = 38
    ACOSH = 39
    ATANH = 40
    FRAC = 41
    ROUND = 42
    SIGNBIT = 43
    ISPOSINF = 44
    ISNEGINF = 45
    LEAKY_RELU = 46     # negative_slope = scalar
    SOFTPLUS = 47       # beta = scalar, threshold = alpha


class Binary(IntEnum):
    """`ew_kernel`'s two-input ops (`NIN == 2`); `REFLECTED + op` is op(other, self) (`2 ** t`)."""
    ADD = 0             # x + alpha * y
    SUB = 1             # x - alpha * y
    MUL = 2
    DIV = 3             # true division, IEEE-rounded
    MAXIMUM = 4
    MINIMUM = 5
    EQ = 6
    NE = 7
    LT = 8
    LE = 9
    GT = 10
    GE = 11
    LOGICAL_AND = 12
    LOGICAL_OR = 13
    LOGICAL_XOR = 14
    BITWISE_AND = 15
    BITWISE_OR = 16
    BITWISE_XOR = 17
    POW = 18
    RSUB = 19           # y - alpha * x
    HYPOT = 20
    ATAN2 = 21
    FLOOR_DIVIDE = 22   # also div(rounding_mode="floor")
    FMOD = 23
    REMAINDER = 24
    FMAX = 25
    FMIN = 26
    DIV_TRUNC = 27      # div(rounding_mode="trunc")
    GELU_BACKWARD = 28  # gelu_backward(grad, input), the erf form
    GELU_TANH_BACKWARD = 29
    LOGADDEXP = 30
    REFLECTED = 64      # not an op: the offset of the reflected forms


class Ternary(IntEnum):
    """`tern_kernel`'s ops: out = op(c, x, y) with x, y tensors or scalars."""
    WHERE = 0           # where(c, x, y)
    CLAMP = 1           # clamp(c, lo=x, hi=y)
    LERP = 2            # lerp(start=c, end=x, weight=y)
    ADDCMUL = 3
    ADDCDIV = 4
    NAN_TO_NUM = 5      # nan_to_num(c, posinf=x, neginf=y, nan=alpha)
    ISCLOSE = 6         # isclose(c, x, atol=y, rtol=alpha) of floats
    ISCLOSE_NAN = 7     # the same with equal_nan
    ISCLOSE_INT = 8     # of integers and bools


class Reduce(IntEnum):
    """`reduce_kernel`'s reductions `OP`."""
    SUM = 0
    AMAX = 1
    AMIN = 2
    PROD = 3
    NANSUM = 4
    COUNT_NONZERO = 5
    COUNT_NONNAN = 6
    EXP_SUM = 7         # sum of exp(x - c) (logsumexp's second pass, c the row maxima)


class Post(IntEnum):
    """What a reduction does to each row's result before storing it (`POST`)."""
    NONE = 0
    SQRT = 1            # std from var
    LOG_ADD = 2         # log(result) + c (logsumexp)
    DIV_INTO = 3        # c / result (nanmean: sums over counts)
    WELFORD_PARTS = 4   # store (count, mean, M2) partials of a split Welford pass


class Merge(IntEnum):
    """`welford_kernel`'s input (`MERGE`): raw values, or (count, mean, M2) partials to combine."""
    VALUES = 0
    PARTIALS = 1


class Scan(IntEnum):
    """`scan_kernel`'s scans `OP`."""
    CUMSUM = 0
    CUMPROD = 1
    LOGCUMSUMEXP = 2
    CUMMAX = 3
    CUMMIN = 4


class ScanPass(IntEnum):
    """`scan_kernel`'s `MODE`: whole rows in one launch, or rows split into chunks over two launches."""
    WHOLE = 0           # each program scans whole rows
    TOTALS = 1          # the first of two: each chunk's total
    CARRY_IN = 2        # the second: each chunk's scan after the totals of the chunks before it


class Move(IntEnum):
    """`move_kernel`'s `MODE`: how each output element finds its source (see `kernels/movement.py`)."""
    GATHER = 0          # per-dim strides (flip: negated)
    ROLL = 1
    REPEAT = 2
    ROLL_FLAT = 3       # roll without dims
    TRI = 4             # triu / tril
    ONE_HOT = 5


class Fill(IntEnum):
    """`fill_kernel`'s `MODE`: what it writes from the flat index."""
    FILL = 0
    ARANGE = 1
    LINSPACE = 2
    EYE = 3


class FillOut(IntEnum):
    """`fill_kernel`'s `OUT`: how the value is stored."""
    F64 = 0
    FLOAT = 1           # the other floats, through float32
    INT = 2
    BOOL = 3


class Scatter(IntEnum):
    """`scatter_kernel`'s `MODE`: how a value combines with the one it lands on."""
    STORE = 0
    ADD = 1             # atomic
    MUL = 2
    MAX = 3
    MIN = 4


class Bounds(IntEnum):
    """The gather/scatter kernels' `WRAP`: which index values are valid."""
    PLAIN = 0           # [0, size)
    WRAP = 1            # [-size, size), negatives wrapped
    LIN = 2             # linearised by `lin_kernel`, which reported the bad ones already


class Compact(IntEnum):
    """`compact_kernel`'s `MODE`: what it does at each selected position."""
    NONZERO = 0         # writes the coordinates
    MASKED_SELECT = 1
    MASKED_SCATTER = 2


class Mask(IntEnum):
    """The attention kernels' `MASK`: the kind of `attn_mask`."""
    NONE = 0
    BOOL = 1            # True keeps a score
    FLOAT = 2           # added to the scores


class Reduction(IntEnum):
    """The loss kernels' `RED`: aten's reduction argument (`nll_loss_forward(..., reduction)`)."""
    NONE = 0
    MEAN = 1
    SUM = 2


class WeightDecay(IntEnum):
    """The Adam kernels' `WD`."""
    NONE = 0
    DECOUPLED = 1       # AdamW: p *= 1 - lr * weight_decay
    L2 = 2              # Adam: g += weight_decay * p


class Dist(IntEnum):
    """`rng`'s `DIST`: what one draw is (see `kernels/rng.py` `_draw`)."""
    UNIFORM = 0         # [a, b)
    NORMAL = 1          # mean a, std b
    EXPONENTIAL = 2     # rate a
    INTEGER = 3         # a + [0, b); b = 0: all 2^64 values
    BERNOULLI = 4       # probability a
    BERNOULLI_TENSOR = 5  # probability p_ptr[i]


class SortKey(IntEnum):
    """`kernels/sort.py`'s `KIND`: how an element becomes an int64 sort key."""
    F32 = 0             # float16, bfloat16, float32 (through float32)
    F64 = 1
    I32 = 2             # integers of at most 32 bits and bool
    I64 = 3


def _fingerprint() -> str:
    """A hash of every enum here, names and values."""
    h = hashlib.sha256()
    for name, enum in sorted(globals().items()):
        if isinstance(enum, type) and issubclass(enum, IntEnum) and enum is not IntEnum:
            h.update(f"{name}:{sorted((m.name, int(m)) for m in enum)}".encode())
    return h.hexdigest()


FINGERPRINT = _fingerprint()

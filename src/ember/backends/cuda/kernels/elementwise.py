"""One Triton kernel for every unary and binary elementwise op, and one for the ternary ones.

`OP` (a constexpr) picks the operation, so each (op, dtypes, layout) specialisation compiles to
straight-line code. Operands are read through their own strides over up to 6 collapsed
dimensions (`NDIM`), or by flat index when every operand is contiguous (`CONTIG`); the output
may be strided too (in-place ops). Indexing is 64-bit. `OP` is a member of `opcodes.Unary`,
`opcodes.Binary` or `opcodes.Ternary` and `CK`, the compute type, of `opcodes.Compute`; binary codes
from `Binary.REFLECTED` on are the reflected forms (the op with its operands swapped: `2 ** t`,
`5.0 % t`).

The math functions Triton lacks (atan, asin, acos, tan, the hyperbolics, fmod, rint) are built
here from exp/log/sqrt/sin/cos and Cephes' rational atan, so that Triton's interpreter runs the
same code as the GPU (it cannot call libdevice). On the GPU Triton's fp32 `exp` is the fast
`ex2.approx` and fp32 `/` is `div.full` (2 ulp), so results there may differ from torch's by a
few ulp; IEEE division is used where an exact quotient matters (fmod, floor and trunc division),
and fp32 pow goes through float64.
"""
import triton
import triton.language as tl

from .. import opcodes


@triton.jit
def _offset(i, s1, s2, s3, s4, s5, t0, t1, t2, t3, t4, t5, NDIM: tl.constexpr):
    r = i
    off = i * 0
    if NDIM >= 6:
        off += (r % s5) * t5
        r = r // s5
    if NDIM >= 5:
        off += (r % s4) * t4
        r = r // s4
    if NDIM >= 4:
        off += (r % s3) * t3
        r = r // s3
    if NDIM >= 3:
        off += (r % s2) * t2
        r = r // s2
    if NDIM >= 2:
        off += (r % s1) * t1
        r = r // s1
    off += r * t0
    return off


@triton.jit
def _cast(v, CK: tl.constexpr):
    if CK == opcodes.Compute.F32:
        return v.to(tl.float32)
    elif CK == opcodes.Compute.F64:
        return v.to(tl.float64)
    elif CK == opcodes.Compute.I64:
        return v.to(tl.int64)
    elif CK == opcodes.Compute.I32:
        return v.to(tl.int32)
    elif CK == opcodes.Compute.I16:
        return v.to(tl.int16)
    elif CK == opcodes.Compute.I8:
        return v.to(tl.int8)
    elif CK == opcodes.Compute.U8:
        return v.to(tl.uint8)
    else:
        return v != 0


@triton.jit
def _extreme(LOWEST: tl.constexpr, CK: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """A [BLOCK_R, BLOCK_C] tile of CK's lowest (LOWEST: the identity of max) or highest value (of min):
    -inf / +inf, the int64 bounds for `Compute.I64`."""
    if CK == opcodes.Compute.I64:
        if LOWEST:
            return tl.full([BLOCK_R, BLOCK_C], -9223372036854775807, tl.int64) - 1
        else:
            return tl.full([BLOCK_R, BLOCK_C], 9223372036854775807, tl.int64)
    else:
        if LOWEST:
            return _cast(tl.full([BLOCK_R, BLOCK_C], float("-inf"), tl.float32), CK)
        else:
            return _cast(tl.full([BLOCK_R, BLOCK_C], float("inf"), tl.float32), CK)


# ---- math helpers ---------------------------------------------------------------------------

@triton.jit
def _signbit(x, CK: tl.constexpr):
    if CK == opcodes.Compute.F32:
        return x.to(tl.int32, bitcast=True) < 0
    elif CK == opcodes.Compute.F64:
        return x.to(tl.int64, bitcast=True) < 0
    elif CK >= opcodes.Compute.U8:           # uint8, bool
        return x != x
    else:
        return x < 0


@triton.jit
def _trunc(x):
    return tl.where(x < 0, tl.ceil(x), tl.floor(x))


@triton.jit
def _div_rn(x, y, CK: tl.constexpr):
    """x / y rounded as IEEE division (Triton's fp32 `/` is within 2 ulp)."""
    if CK == opcodes.Compute.F32:
        return tl.div_rn(x, y)
    else:
        return x / y


@triton.jit
def _log1p(x):
    u = 1.0 + x     # log(u) * x / (u - 1) corrects the rounding of 1 + x
    return tl.where(u == 1.0, x, tl.where(u == float("inf"), u, tl.log(u) * (x / (u - 1.0))))


@triton.jit
def _expm1(x):
    u = tl.exp(x)   # (u - 1) * x / log(u) corrects the rounding of exp(x)
    r = tl.where(u - 1.0 == -1.0, -1.0, (u - 1.0) * x / tl.log(u))
    r = tl.where(u == float("inf"), u, r)
    return tl.where(u == 1.0, x, r)


@triton.jit
def _atan(x):
    """Cephes' atan: reduction to |t| <= 0.66 (by pi/4 or pi/2) and a [4/5] rational in t^2, accurate to
    an ulp in double precision."""
    ax = tl.abs(x)
    big = ax > 2.414213562373095   # tan(3 pi / 8)
    mid = ax > 0.66
    t = tl.where(big, -1.0 / ax, tl.where(mid, (ax - 1.0) / (ax + 1.0), ax))
    z = t * t
    p = (((-8.750608600031904122785e-1 * z - 1.615753718733365076637e1) * z - 7.500855792314704667340e1) * z
         - 1.228866684490136173410e2) * z - 6.485021904942025371773e1
    q = ((((z + 2.485846490142306297962e1) * z + 1.650270098316988542046e2) * z + 4.328810604912902668951e2) * z
         + 4.853903996359136964868e2) * z + 1.945506571482613964425e2
    r = t + t * (z * p / q)
    r = tl.where(big, (r + 6.123233995736765886130e-17) + 1.5707963267948966,
                 tl.where(mid, (r + 3.061616997868382943065e-17) + 0.7853981633974483, r))
    return tl.where(x < 0, -r, r)


@triton.jit
def _atan2(y, x, CK: tl.constexpr):
    """atan2 with C's signed zeros and infinities: atan of min/max in [0, 1], then the octant."""
    ax = tl.abs(x)
    ay = tl.abs(y)
    mx = tl.maximum(ax, ay)
    mn = tl.minimum(ax, ay)
    a = _atan(mn / mx)
    a = tl.where(mx == 0, 0.0, tl.where(mn == float("inf"), 0.7853981633974483, a))
    a = tl.where(ay > ax, 1.5707963267948966 - a, a)
    a = tl.where(_signbit(x, CK), 3.141592653589793 - a, a)
    a = tl.where(_signbit(y, CK), -a, a)
    return tl.where((x != x) | (y != y), x + y, a)


@triton.jit
def _fmod(x, y, CK: tl.constexpr):
    """C fmod (sign of x). Floats: |x| - q |y| with q = trunc(|x| / |y|), exact while q < 2^29 (float32,
    done in float64) or q < 2^53 (float64, through an fma); larger quotients lose that exactness."""
    if CK >= opcodes.Compute.I64:
        return x % y            # integers: C truncation
    else:
        ax = tl.abs(x)
        ay = tl.abs(y)
        if CK == opcodes.Compute.F32:
            a = ax.to(tl.float64)
            b = ay.to(tl.float64)
            r = a - tl.floor(a / b) * b
            r = tl.where(r < 0, r + b, r).to(tl.float32)
        else:
            q = tl.floor(ax / ay)
            r = tl.fma(-q, ay, ax)
            r = tl.where(r < 0, r + ay, r)     # the rounded quotient was one too large
        r = tl.where((ay == float("inf")) & (ax != float("inf")), ax, r)
        return tl.where(x < 0, -r, r)


@triton.jit
def _remainder(x, y, CK: tl.constexpr):
    """Python's %: the sign of y."""
    r = _fmod(x, y, CK)
    if CK >= opcodes.Compute.U8:
        return r
    else:
        return tl.where((r != 0) & ((r < 0) != (y < 0)), r + y, r)


@triton.jit
def _floor_divide(x, y, CK: tl.constexpr):
    """Python's //. Floats as torch and NumPy: (x - fmod(x, y)) / y, then rounded to the nearest integer."""
    if CK >= opcodes.Compute.I64:
        q = x // y              # C truncation
        if CK == opcodes.Compute.U8:
            return q
        else:
            r = x - q * y
            return tl.where((r != 0) & ((r < 0) != (y < 0)), q - 1, q)
    else:
        m = _fmod(x, y, CK)
        d = _div_rn(x - m, y, CK)
        d = tl.where((m != 0) & ((y < 0) != (m < 0)), d - 1.0, d)
        f = tl.floor(d)
        f = tl.where(d - f > 0.5, f + 1.0, f)
        f = tl.where(d == 0, 0.0 * _div_rn(x, y, CK), f)
        return tl.where(y == 0, _div_rn(x, y, CK), f)


@triton.jit
def _ipow(x, y, CK: tl.constexpr):
    """Integer power by squaring (wrapping like C); a negative exponent gives 1 for base 1, +-1 for
    base -1 and 0 otherwise, as torch."""
    e = tl.where(y < 0, 0, y)
    r = x * 0 + 1
    b = x
    while tl.reduce(e, 0, tl.standard._elementwise_max) > 0:    # tl.max's combine: NumPy in the interpreter
        r = tl.where((e & 1) != 0, r * b, r)
        b = b * b
        e = e >> 1
    if CK == opcodes.Compute.U8:
        return r
    else:
        one = x * 0 + 1
        s = tl.where(x == 1, one, tl.where(x == -1, tl.where((y & 1) != 0, -one, one), one * 0))
        return tl.where(y < 0, s, r)


@triton.jit
def _sinh_cosh(x, SINH: tl.constexpr):
    """sinh: (e + e / (e + 1)) / 2 with e = expm1(|x|), h^2 / 2 with h = exp(|x|/2) for |x| > 20;
    cosh: (h^2 + 1/h^2) / 2 (no overflow before the result overflows)."""
    ax = tl.abs(x)
    h = tl.exp(0.5 * ax)
    if SINH:
        e = _expm1(ax)
        r = tl.where(ax > 20.0, (0.5 * h) * h, 0.5 * (e + e / (e + 1.0)))
        return tl.where(x < 0, -r, r)
    else:
        return (0.5 * h) * h + (0.5 / h) / h


@triton.jit
def _round_half_even(x):
    r = tl.floor(x)
    d = x - r                    # exact
    odd = (r - 2.0 * tl.floor(r * 0.5)) == 1.0
    return tl.where((d > 0.5) | ((d == 0.5) & odd), r + 1.0, r)


# ---- unary, binary ------------------------------------------------------------------------------

@triton.jit
def _unary(x, scalar, alpha, OP: tl.constexpr, CK: tl.constexpr):
    if OP == opcodes.Unary.NEG:
        return -x
    elif OP == opcodes.Unary.ABS:
        return tl.abs(x)
    elif OP == opcodes.Unary.EXP:
        return tl.exp(x)
    elif OP == opcodes.Unary.LOG:
        return tl.log(x)
    elif OP == opcodes.Unary.SQRT:
        return tl.sqrt(x)
    elif OP == opcodes.Unary.RSQRT:
        return tl.rsqrt(x)
    elif OP == opcodes.Unary.SIN:
        return tl.sin(x)
    elif OP == opcodes.Unary.COS:
        return tl.cos(x)
    elif OP == opcodes.Unary.TANH:    # tanh (through exp, stable at both ends)
        e = tl.exp(-2.0 * tl.abs(x))
        t = (1.0 - e) / (1.0 + e)
        return tl.where(x < 0, -t, t)
    elif OP == opcodes.Unary.SIGMOID:
        return 1.0 / (1.0 + tl.exp(-x))
    elif OP == opcodes.Unary.RELU:
        return tl.where(x > 0, x, x * 0)
    elif OP == opcodes.Unary.ERF:
        return tl.erf(x)
    elif OP == opcodes.Unary.SILU:
        return x / (1.0 + tl.exp(-x))
    elif OP == opcodes.Unary.GELU:    # gelu (erf)
        return 0.5 * x * (1.0 + tl.erf(x * 0.7071067811865476))
    elif OP == opcodes.Unary.GELU_TANH:    # gelu (tanh)
        u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        e = tl.exp(-2.0 * tl.abs(u))
        t = (1.0 - e) / (1.0 + e)
        t = tl.where(u < 0, -t, t)
        return 0.5 * x * (1.0 + t)
    elif OP == opcodes.Unary.RECIPROCAL:    # IEEE-rounded, as torch's (Triton's fp32 `/` is within 2 ulp)
        return _div_rn(tl.full(x.shape, 1.0, x.dtype), x, CK)
    elif OP == opcodes.Unary.SQUARE:
        return x * x
    elif OP == opcodes.Unary.EXP2:
        return tl.exp2(x)
    elif OP == opcodes.Unary.LOG2:
        return tl.log2(x)
    elif OP == opcodes.Unary.LOG1P:
        return _log1p(x)
    elif OP == opcodes.Unary.EXPM1:
        return _expm1(x)
    elif (OP == opcodes.Unary.FLOOR or OP == opcodes.Unary.CEIL or OP == opcodes.Unary.TRUNC
          or OP == opcodes.Unary.ROUND):     # integers unchanged
        if CK >= opcodes.Compute.I64:
            return x
        elif OP == opcodes.Unary.FLOOR:
            return tl.floor(x)
        elif OP == opcodes.Unary.CEIL:
            return tl.ceil(x)
        elif OP == opcodes.Unary.TRUNC:
            return _trunc(x)
        else:          # round half to even
            return _round_half_even(x)
    elif OP == opcodes.Unary.SIGN:
        return tl.where(x > 0, 1, tl.where(x < 0, -1, 0)).to(x.dtype)
    elif OP == opcodes.Unary.LOGICAL_NOT:
        return x == 0
    elif OP == opcodes.Unary.ISNAN:
        return x != x
    elif OP == opcodes.Unary.ISINF:
        return tl.abs(x) == float("inf")
    elif OP == opcodes.Unary.ISFINITE:
        return (x == x) & (tl.abs(x) != float("inf"))
    elif OP == opcodes.Unary.BITWISE_NOT:
        return ~x
    elif OP == opcodes.Unary.LOG10:
        return tl.log2(x) * 0.30102999566398120
    elif OP == opcodes.Unary.IDENTITY:    # identity (copies and casts)
        return x
    elif OP == opcodes.Unary.TAN:
        return tl.sin(x) / tl.cos(x)
    elif OP == opcodes.Unary.ASIN:
        return _atan2(x, tl.sqrt((1.0 - x) * (1.0 + x)), CK)
    elif OP == opcodes.Unary.ACOS:
        return _atan2(tl.sqrt((1.0 - x) * (1.0 + x)), x, CK)
    elif OP == opcodes.Unary.ATAN:
        return _atan(x)
    elif OP == opcodes.Unary.SINH or OP == opcodes.Unary.COSH:     # fp32 in fp64: the fast fp32 exp loses ~|x| ulp
        if CK == opcodes.Compute.F32:
            return _sinh_cosh(x.to(tl.float64), OP == opcodes.Unary.SINH).to(tl.float32)
        else:
            return _sinh_cosh(x, OP == opcodes.Unary.SINH)
    elif OP == opcodes.Unary.ASINH:    # asinh: log1p(|x| + x^2 / (1 + sqrt(1 + x^2))), log(2|x|) for |x| > 1e8
        ax = tl.abs(x)
        x2 = ax * ax
        r = tl.where(ax > 1e8, tl.log(ax) + 0.6931471805599453, _log1p(ax + x2 / (1.0 + tl.sqrt(1.0 + x2))))
        return tl.where(x < 0, -r, r)
    elif OP == opcodes.Unary.ACOSH:    # acosh: log1p(t + sqrt(t (t + 2))) with t = x - 1, log(2x) for x > 1e8
        t = x - 1.0
        r = tl.where(x > 1e8, tl.log(x) + 0.6931471805599453, _log1p(t + tl.sqrt(t * (t + 2.0))))
        return tl.where(x < 1.0, float("nan"), r)
    elif OP == opcodes.Unary.ATANH:    # atanh: log1p(2|x| / (1 - |x|)) / 2
        ax = tl.abs(x)
        r = 0.5 * _log1p(2.0 * ax / (1.0 - ax))
        return tl.where(x < 0, -r, r)
    elif OP == opcodes.Unary.FRAC:
        return x - _trunc(x)
    elif OP == opcodes.Unary.SIGNBIT:
        return _signbit(x, CK)
    elif OP == opcodes.Unary.ISPOSINF:
        if CK >= opcodes.Compute.I64:
            return x != x
        else:
            return x == float("inf")
    elif OP == opcodes.Unary.ISNEGINF:
        if CK >= opcodes.Compute.I64:
            return x != x
        else:
            return x == float("-inf")
    elif OP == opcodes.Unary.LEAKY_RELU:    # leaky_relu(negative_slope=scalar)
        return tl.where(x > 0, x, x * scalar)
    elif OP == opcodes.Unary.SOFTPLUS:    # softplus(beta=scalar, threshold=alpha)
        bx = x * scalar
        return tl.where(bx > alpha, x, _log1p(tl.exp(bx)) / scalar)
    else:
        tl.static_assert(False, "unknown unary op")


@triton.jit
def _binary(x, y, alpha, OP: tl.constexpr, CK: tl.constexpr):
    if OP == opcodes.Binary.ADD:    # add (alpha)
        return x + y * alpha
    elif OP == opcodes.Binary.SUB:    # sub (alpha)
        return x - y * alpha
    elif OP == opcodes.Binary.MUL:
        return x * y
    elif OP == opcodes.Binary.DIV:    # div (true, IEEE-rounded as torch's); 67 is `scalar / t`
        return _div_rn(x, y, CK)
    elif OP == opcodes.Binary.MAXIMUM:    # maximum (NaN propagates)
        return tl.where((x != x) | (x > y), x, y)
    elif OP == opcodes.Binary.MINIMUM:
        return tl.where((x != x) | (x < y), x, y)
    elif OP == opcodes.Binary.EQ:
        return x == y
    elif OP == opcodes.Binary.NE:
        return x != y
    elif OP == opcodes.Binary.LT:
        return x < y
    elif OP == opcodes.Binary.LE:
        return x <= y
    elif OP == opcodes.Binary.GT:
        return x > y
    elif OP == opcodes.Binary.GE:
        return x >= y
    elif OP == opcodes.Binary.LOGICAL_AND:
        return (x != 0) & (y != 0)
    elif OP == opcodes.Binary.LOGICAL_OR:
        return (x != 0) | (y != 0)
    elif OP == opcodes.Binary.LOGICAL_XOR:
        return (x != 0) ^ (y != 0)
    elif OP == opcodes.Binary.BITWISE_AND:
        return x & y
    elif OP == opcodes.Binary.BITWISE_OR:
        return x | y
    elif OP == opcodes.Binary.BITWISE_XOR:
        return x ^ y
    elif OP == opcodes.Binary.POW:
        if CK >= opcodes.Compute.I64:
            return _ipow(x, y, CK)
        else:          # |x|^y with the sign of x for odd integer y, NaN for x < 0 and fractional y
            ax = tl.abs(x)
            if CK == opcodes.Compute.F32:        # in float64: the error of log2 is amplified by y
                r = tl.exp2(y.to(tl.float64) * tl.log2(ax.to(tl.float64))).to(tl.float32)
            else:
                r = tl.exp2(y * tl.log2(ax))
            yi = tl.floor(y)
            is_int = yi == y
            odd = is_int & ((yi - 2.0 * tl.floor(yi * 0.5)) == 1.0)
            r = tl.where((x < 0) & odd, -r, r)
            r = tl.where((x < 0) & (~is_int), float("nan"), r)
            r = tl.where(y == 0, 1.0, r)
            return r
    elif OP == opcodes.Binary.RSUB:    # rsub: y - alpha * x
        return y - x * alpha
    elif OP == opcodes.Binary.HYPOT:
        return tl.sqrt(x * x + y * y)
    elif OP == opcodes.Binary.ATAN2:    # atan2(x, y)
        return _atan2(x, y, CK)
    elif OP == opcodes.Binary.FLOOR_DIVIDE:    # floor_divide, div(rounding_mode='floor')
        return _floor_divide(x, y, CK)
    elif OP == opcodes.Binary.FMOD:
        return _fmod(x, y, CK)
    elif OP == opcodes.Binary.REMAINDER:
        return _remainder(x, y, CK)
    elif OP == opcodes.Binary.FMAX:    # fmax: NaN only where both are
        if CK == opcodes.Compute.BOOL:
            return x | y
        else:
            return tl.where((x > y) | (y != y), x, y)
    elif OP == opcodes.Binary.FMIN:
        if CK == opcodes.Compute.BOOL:
            return x & y
        else:
            return tl.where((x < y) | (y != y), x, y)
    elif OP == opcodes.Binary.DIV_TRUNC:    # div(rounding_mode='trunc')
        if CK >= opcodes.Compute.I64:
            return x // y
        else:
            return _trunc(_div_rn(x, y, CK))
    elif OP == opcodes.Binary.GELU_BACKWARD:    # gelu_backward(grad x, input y), erf form: x * (cdf(y) + y * pdf(y))
        cdf = 0.5 * (1.0 + tl.erf(y * 0.7071067811865476))
        return x * (cdf + y * (tl.exp(-0.5 * y * y) * 0.3989422804014327))
    elif OP == opcodes.Binary.GELU_TANH_BACKWARD:    # gelu_backward, tanh form
        u = 0.7978845608028654 * (y + 0.044715 * y * y * y)
        e = tl.exp(-2.0 * tl.abs(u))
        t = (1.0 - e) / (1.0 + e)
        t = tl.where(u < 0, -t, t)
        d = 0.7978845608028654 * (1.0 + 0.134145 * y * y)
        return x * (0.5 * (1.0 + t) + 0.5 * y * (1.0 - t * t) * d)
    elif OP == opcodes.Binary.LOGADDEXP:    # the larger plus log1p(exp(-|x - y|)); equal infinities give themselves
        d = tl.abs(x - y)
        r = tl.maximum(x, y) + _log1p(tl.exp(-d))
        return tl.where(x == y, x + 0.6931471805599453, tl.where(d != d, d, r))
    else:
        tl.static_assert(False, "unknown binary op")


@triton.jit
def ew_kernel(out_ptr, x_ptr, y_ptr, n, scalar, alpha,
              s1, s2, s3, s4, s5,
              ot0, ot1, ot2, ot3, ot4, ot5,
              xt0, xt1, xt2, xt3, xt4, xt5,
              yt0, yt1, yt2, yt3, yt4, yt5,
              OP: tl.constexpr, NIN: tl.constexpr, NDIM: tl.constexpr, CONTIG: tl.constexpr,
              Y_SCALAR: tl.constexpr, CK: tl.constexpr, BLOCK: tl.constexpr):
    # indices in n's type: int64, or int32 where the host found every index and offset to fit (strided
    # operands: the divisions and remainders of `_offset` are much cheaper in 32 bits)
    pid = tl.program_id(0).to(n.dtype)
    i = pid * BLOCK + tl.arange(0, BLOCK).to(n.dtype)
    mask = i < n
    if CONTIG:
        oo = i
        xo = i
        yo = i
    else:
        oo = _offset(i, s1, s2, s3, s4, s5, ot0, ot1, ot2, ot3, ot4, ot5, NDIM)
        xo = _offset(i, s1, s2, s3, s4, s5, xt0, xt1, xt2, xt3, xt4, xt5, NDIM)
        yo = _offset(i, s1, s2, s3, s4, s5, yt0, yt1, yt2, yt3, yt4, yt5, NDIM)
    x = _cast(tl.load(x_ptr + xo, mask=mask), CK)
    if NIN == 1:
        r = _unary(x, scalar, alpha, OP, CK)
    else:
        if Y_SCALAR:
            y = _cast(tl.full([BLOCK], scalar, x.dtype), CK)
        else:
            y = _cast(tl.load(y_ptr + yo, mask=mask), CK)
        if OP >= opcodes.Binary.REFLECTED:   # op(y, x)
            r = _binary(y, x, alpha, OP - opcodes.Binary.REFLECTED, CK)
        else:
            r = _binary(x, y, alpha, OP, CK)
    if r.dtype == tl.int1 and out_ptr.dtype.element_ty == tl.bfloat16:
        r = r.to(tl.float32)    # (a comparison into bfloat16: Triton's interpreter casts int1 to it wrongly)
    tl.store(out_ptr + oo, r.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _ternary(c, x, y, alpha, OP: tl.constexpr, ST: tl.constexpr):
    if OP == opcodes.Ternary.WHERE:    # where(c, x, y)
        return tl.where(c, x, y)
    elif OP == opcodes.Ternary.CLAMP:    # clamp(c, lo=x, hi=y); NaN in c propagates
        r = tl.where(c < x, x, c)
        r = tl.where(r > y, y, r)
        return tl.where(c != c, c, r)
    elif OP == opcodes.Ternary.LERP:    # lerp(start=c, end=x, weight=y), PyTorch's two-sided formula
        d = x - c
        return tl.where(tl.abs(y) < 0.5, c + y * d, x - d * (1.0 - y))
    elif OP == opcodes.Ternary.ADDCMUL:
        return c + alpha * x * y
    elif OP == opcodes.Ternary.ADDCDIV:
        return c + alpha * x / y
    elif OP == opcodes.Ternary.NAN_TO_NUM:    # nan_to_num(c, posinf=x, neginf=y, nan=alpha)
        r = tl.where(c == float("inf"), x, c)
        r = tl.where(c == float("-inf"), y, r)
        return tl.where(c != c, alpha, r)
    elif OP == opcodes.Ternary.ISCLOSE or OP == opcodes.Ternary.ISCLOSE_NAN:
        # isclose(c, x, atol=y, rtol=alpha) of floats; the errors rounded to the tensors' dtype ST
        close = c == x
        if OP == opcodes.Ternary.ISCLOSE_NAN:
            close = close | ((c != c) & (x != x))
        allowed = (y + tl.abs(alpha * x)).to(ST).to(c.dtype)
        actual = tl.abs(c - x).to(ST).to(c.dtype)
        return close | ((actual != float("inf")) & (actual <= allowed))
    elif OP == opcodes.Ternary.ISCLOSE_INT:    # of integers and bools, as torch: the errors in the float compute type
        return tl.abs(c - x) <= y + tl.abs(alpha * x)
    else:
        tl.static_assert(False, "unknown ternary op")


@triton.jit
def tern_kernel(out_ptr, c_ptr, x_ptr, y_ptr, n, xs, ys, alpha,
                s1, s2, s3, s4, s5,
                ot0, ot1, ot2, ot3, ot4, ot5,
                ct0, ct1, ct2, ct3, ct4, ct5,
                xt0, xt1, xt2, xt3, xt4, xt5,
                yt0, yt1, yt2, yt3, yt4, yt5,
                OP: tl.constexpr, NDIM: tl.constexpr, X_SCALAR: tl.constexpr, Y_SCALAR: tl.constexpr,
                C_BOOL: tl.constexpr, CK: tl.constexpr, BLOCK: tl.constexpr):
    """out = op(c, x, y) (where/clamp/lerp/addcmul/addcdiv/nan_to_num/isclose); x and y may be
    scalars; c is a condition (C_BOOL) or a value in the compute type."""
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    oo = _offset(i, s1, s2, s3, s4, s5, ot0, ot1, ot2, ot3, ot4, ot5, NDIM)
    co = _offset(i, s1, s2, s3, s4, s5, ct0, ct1, ct2, ct3, ct4, ct5, NDIM)
    cv = tl.load(c_ptr + co, mask=mask)
    if C_BOOL:
        c = cv != 0
        ref = _cast(tl.full([BLOCK], 0, tl.float32), CK)
    else:
        c = _cast(cv, CK)
        ref = c
    if X_SCALAR:
        x = _cast(tl.full([BLOCK], xs, ref.dtype), CK)
    else:
        x = _cast(tl.load(x_ptr + _offset(i, s1, s2, s3, s4, s5, xt0, xt1, xt2, xt3, xt4, xt5, NDIM), mask=mask), CK)
    if Y_SCALAR:
        y = _cast(tl.full([BLOCK], ys, ref.dtype), CK)
    else:
        y = _cast(tl.load(y_ptr + _offset(i, s1, s2, s3, s4, s5, yt0, yt1, yt2, yt3, yt4, yt5, NDIM), mask=mask), CK)
    r = _ternary(c, x, y, alpha, OP, c_ptr.dtype.element_ty)
    tl.store(out_ptr + oo, r.to(out_ptr.dtype.element_ty), mask=mask)

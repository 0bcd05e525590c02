"""One Triton kernel for every unary and binary elementwise op.

`OP` (a constexpr) picks the operation, so each (op, dtypes, layout) specialisation compiles to
straight-line code. Operands are read through their own strides over up to 6 collapsed
dimensions (`NDIM`), or by flat index when every operand is contiguous (`CONTIG`); the output
may be strided too (in-place ops). Indexing is 64-bit. `CK` is the compute type: 0 float32,
1 float64, 2 int64, 3 int32, 4 int16, 5 int8, 6 uint8, 7 bool.
"""
import triton
import triton.language as tl


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
    if CK == 0:
        return v.to(tl.float32)
    elif CK == 1:
        return v.to(tl.float64)
    elif CK == 2:
        return v.to(tl.int64)
    elif CK == 3:
        return v.to(tl.int32)
    elif CK == 4:
        return v.to(tl.int16)
    elif CK == 5:
        return v.to(tl.int8)
    elif CK == 6:
        return v.to(tl.uint8)
    else:
        return v != 0


@triton.jit
def _unary(x, OP: tl.constexpr, CK: tl.constexpr):
    if OP == 0:        # neg
        return -x
    elif OP == 1:      # abs
        return tl.abs(x)
    elif OP == 2:      # exp
        return tl.exp(x)
    elif OP == 3:      # log
        return tl.log(x)
    elif OP == 4:      # sqrt
        return tl.sqrt(x)
    elif OP == 5:      # rsqrt
        return tl.rsqrt(x)
    elif OP == 6:      # sin
        return tl.sin(x)
    elif OP == 7:      # cos
        return tl.cos(x)
    elif OP == 8:      # tanh (through exp, stable at both ends)
        e = tl.exp(-2.0 * tl.abs(x))
        t = (1.0 - e) / (1.0 + e)
        return tl.where(x < 0, -t, t)
    elif OP == 9:      # sigmoid
        return 1.0 / (1.0 + tl.exp(-x))
    elif OP == 10:     # relu
        return tl.where(x > 0, x, x * 0)
    elif OP == 11:     # erf
        return tl.erf(x)
    elif OP == 12:     # silu
        return x / (1.0 + tl.exp(-x))
    elif OP == 13:     # gelu (erf)
        return 0.5 * x * (1.0 + tl.erf(x * 0.7071067811865476))
    elif OP == 14:     # gelu (tanh)
        u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        e = tl.exp(-2.0 * tl.abs(u))
        t = (1.0 - e) / (1.0 + e)
        t = tl.where(u < 0, -t, t)
        return 0.5 * x * (1.0 + t)
    elif OP == 15:     # reciprocal
        return 1.0 / x
    elif OP == 16:     # square
        return x * x
    elif OP == 17:     # exp2
        return tl.exp2(x)
    elif OP == 18:     # log2
        return tl.log2(x)
    elif OP == 19:     # log1p (accurate near 0)
        u = 1.0 + x
        return tl.where(u == 1.0, x, tl.log(u) * (x / (u - 1.0)))
    elif OP == 20:     # expm1 (accurate near 0)
        u = tl.exp(x)
        return tl.where(u == 1.0, x, tl.where(u - 1.0 == -1.0, -1.0, (u - 1.0) * x / tl.log(u)))
    elif OP == 21:     # floor
        return tl.floor(x)
    elif OP == 22:     # ceil
        return tl.ceil(x)
    elif OP == 23:     # trunc
        return tl.where(x < 0, tl.ceil(x), tl.floor(x))
    elif OP == 24:     # sign
        return tl.where(x > 0, 1, tl.where(x < 0, -1, 0)).to(x.dtype)
    elif OP == 25:     # logical_not
        return x == 0
    elif OP == 26:     # isnan
        return x != x
    elif OP == 27:     # isinf
        return tl.abs(x) == float("inf")
    elif OP == 28:     # isfinite
        return (x == x) & (tl.abs(x) != float("inf"))
    elif OP == 29:     # bitwise_not
        return ~x
    elif OP == 30:     # log10
        return tl.log2(x) * 0.30102999566398120
    elif OP == 31:     # identity (copies and casts)
        return x
    else:
        tl.static_assert(False, "unknown unary op")


@triton.jit
def _binary(x, y, alpha, OP: tl.constexpr):
    if OP == 0:        # add (alpha)
        return x + y * alpha
    elif OP == 1:      # sub (alpha)
        return x - y * alpha
    elif OP == 2:      # mul
        return x * y
    elif OP == 3:      # div (true)
        return x / y
    elif OP == 4:      # maximum (NaN propagates)
        return tl.where((x != x) | (x > y), x, y)
    elif OP == 5:      # minimum
        return tl.where((x != x) | (x < y), x, y)
    elif OP == 6:      # eq
        return x == y
    elif OP == 7:      # ne
        return x != y
    elif OP == 8:      # lt
        return x < y
    elif OP == 9:      # le
        return x <= y
    elif OP == 10:     # gt
        return x > y
    elif OP == 11:     # ge
        return x >= y
    elif OP == 12:     # logical_and
        return (x != 0) & (y != 0)
    elif OP == 13:     # logical_or
        return (x != 0) | (y != 0)
    elif OP == 14:     # logical_xor
        return (x != 0) ^ (y != 0)
    elif OP == 15:     # bitwise_and
        return x & y
    elif OP == 16:     # bitwise_or
        return x | y
    elif OP == 17:     # bitwise_xor
        return x ^ y
    elif OP == 18:     # pow (float): |x|^y with the sign of x for odd integer y, NaN for x < 0 and fractional y
        ax = tl.abs(x)
        r = tl.exp2(y * tl.log2(ax))
        yi = tl.floor(y)
        is_int = yi == y
        odd = is_int & ((yi - 2.0 * tl.floor(yi * 0.5)) == 1.0)
        r = tl.where((x < 0) & odd, -r, r)
        r = tl.where((x < 0) & (~is_int), float("nan"), r)
        r = tl.where(y == 0, 1.0, r)
        return r
    elif OP == 19:     # rsub: y - alpha * x
        return y - x * alpha
    elif OP == 20:     # atan2-free helper slot: hypot
        return tl.sqrt(x * x + y * y)
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
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
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
        r = _unary(x, OP, CK)
    else:
        if Y_SCALAR:
            y = _cast(tl.full([BLOCK], scalar, x.dtype), CK)
        else:
            y = _cast(tl.load(y_ptr + yo, mask=mask), CK)
        r = _binary(x, y, alpha, OP)
    tl.store(out_ptr + oo, r.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _ternary(c, x, y, alpha, OP: tl.constexpr):
    if OP == 0:        # where(c, x, y)
        return tl.where(c, x, y)
    elif OP == 1:      # clamp(c, lo=x, hi=y); NaN in c propagates
        r = tl.where(c < x, x, c)
        r = tl.where(r > y, y, r)
        return tl.where(c != c, c, r)
    elif OP == 2:      # lerp(start=c, end=x, weight=y), PyTorch's two-sided formula
        d = x - c
        return tl.where(tl.abs(y) < 0.5, c + y * d, x - d * (1.0 - y))
    elif OP == 3:      # addcmul
        return c + alpha * x * y
    elif OP == 4:      # addcdiv
        return c + alpha * x / y
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
    """out = op(c, x, y) (where/clamp/lerp/addcmul/addcdiv); x and y may be scalars; c is a
    condition (C_BOOL) or a value in the compute type."""
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
    r = _ternary(c, x, y, alpha, OP)
    tl.store(out_ptr + oo, r.to(out_ptr.dtype.element_ty), mask=mask)

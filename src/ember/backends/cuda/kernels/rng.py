"""Triton kernels of the random ops, on Triton's counter-based Philox (`tl.randint4x`'s).

Counter scheme (`backends/cuda/random.py` keeps it): a generator holds (seed, offset); a launch uses the Philox
counters offset, offset + 1, ... (each gives four 32-bit words; the key is the 64-bit seed) and
the generator's offset then moves past them, so a result depends only on (seed, offset, shape).
With `graph` set (a launch captured into a CUDA graph) seed and base offset are read from `state_ptr`
at run time, so that every replay draws new numbers; `offset` is then relative to that base.

The fill kernels give program p the counters p*BLOCK + j (j < BLOCK) and write its values in
two or four contiguous quarters: element p*4*BLOCK + k*BLOCK + j takes word k of counter
p*BLOCK + j (32-bit draws), or p*2*BLOCK + h*BLOCK + j takes words 2h, 2h+1 (64-bit draws: float64
and integer ranges over 2^32). Normals are Box-Muller pairs of words (0, 1) and (2, 3).
"""
import triton
import triton.language as tl

from .. import opcodes


@triton.jit
def _add(a, b):     # tl.sum/tl.max are jit functions of triton.language: unusable under the CI interpreter
    return a + b


@triton.jit
def _max(a, b):
    return tl.maximum(a, b)


@triton.jit
def _min(a, b):
    return tl.minimum(a, b)


@triton.jit
def _randint4x(seed, offset):
    """Four uint32 words per int64 counter: `tl.randint4x`'s Philox-4x32-10 (key: the 64-bit seed;
    counter: (offset lo, offset hi, 0, 0)), written out because triton.language's own jit functions
    cannot run under the CI interpreter once triton was imported before TRITON_INTERPRET was set."""
    seed = tl.cast(seed, tl.int64).to(tl.uint64, bitcast=True)
    k0 = (seed & 0xFFFFFFFF).to(tl.uint32)
    k1 = (seed >> 32).to(tl.uint32)
    c0 = offset.to(tl.uint32)
    c1 = (offset >> 32).to(tl.uint32)
    c2 = c0 * 0
    c3 = c2
    for _ in tl.static_range(10):
        a0 = c0
        a2 = c2
        c0 = tl.umulhi(0xCD9E8D57, a2) ^ c1 ^ k0
        c2 = tl.umulhi(0xD2511F53, a0) ^ c3 ^ k1
        c1 = tl.mul(a2, 0xCD9E8D57, sanitize_overflow=False)
        c3 = tl.mul(a0, 0xD2511F53, sanitize_overflow=False)
        k0 = tl.add(k0, 0x9E3779B9, sanitize_overflow=False)
        k1 = tl.add(k1, 0xBB67AE85, sanitize_overflow=False)
    return c0, c1, c2, c3


@triton.jit
def _state(state_ptr, seed, offset, graph):
    """(seed, base counter) of this launch: the arguments, or (graph != 0: captured launches) read
    from the device and offset by `offset`. A runtime flag, not a constexpr: the variant compiled
    eagerly serves the capture (no compilation or module load while a stream captures)."""
    seed = tl.cast(seed, tl.int64)
    offset = tl.cast(offset, tl.int64)
    if graph != 0:
        seed = tl.load(state_ptr)
        offset += tl.load(state_ptr + 1)
    return seed, offset


@triton.jit
def _u32(w, BITS: tl.constexpr):
    """A float32 in [0, 1) on the grid 2^-BITS from the top BITS bits of a uint32 word (BITS <= 24:
    exact in float32, and in float16 / bfloat16 with 11 / 8 bits, so it never rounds up to 1)."""
    return (w >> (32 - BITS)).to(tl.float32) * (1.0 / (1 << BITS))


@triton.jit
def _u64(hi, lo):
    """A float64 in [0, 1) with 53 random bits from two uint32 words."""
    return ((hi >> 6).to(tl.float64) * 134217728.0 + (lo >> 5).to(tl.float64)) * (1.0 / 9007199254740992.0)


@triton.jit
def _bits64(hi, lo):
    return (hi.to(tl.uint64) << 32) | lo.to(tl.uint64)


@triton.jit
def _draw(wx, wy, wz, ww, i, p_ptr, a, b, WHICH: tl.constexpr, DIST: tl.constexpr, WIDE: tl.constexpr,
          UBITS: tl.constexpr):
    """The value of one element. Narrow: words (wx, wy) are the pair, WHICH picks the word (or cos/sin
    for normals). Wide: (wx, wy) and (wz, ww) are the two 64-bit draws, WHICH picks one.
    DIST 0 uniform [a, b), 1 normal(a, b), 2 exponential(a), 3 integer a + [0, b) (b = 0: all 2^64),
    4 bernoulli(a), 5 bernoulli(p_ptr[i])."""
    if DIST == opcodes.Dist.INTEGER:
        if WIDE:
            if WHICH == 0:
                r = _bits64(wx, wy)
            else:
                r = _bits64(wz, ww)
        else:
            if WHICH == 0:
                r = wx.to(tl.uint64)
            else:
                r = wy.to(tl.uint64)
        span = tl.cast(b, tl.int64).to(tl.uint64)         # same width: the bits are kept
        q = tl.where(span == 0, r, r % tl.where(span == 0, 1, span))
        v = q.to(tl.int64, bitcast=True) + a
    else:
        if WIDE:
            ux = _u64(wx, wy)
            uy = _u64(wz, ww)
        else:
            ux = _u32(wx, UBITS)
            uy = _u32(wy, UBITS)
        if WHICH == 0:
            u = ux
        else:
            u = uy
        if DIST == opcodes.Dist.UNIFORM:
            v = a + u * (b - a)
        elif DIST == opcodes.Dist.NORMAL:
            r = tl.sqrt(-2.0 * tl.log(1.0 - ux))      # 1 - u in (0, 1]
            if WHICH == 0:
                v = a + b * (r * tl.cos(6.283185307179586 * uy))
            else:
                v = a + b * (r * tl.sin(6.283185307179586 * uy))
        elif DIST == opcodes.Dist.EXPONENTIAL:
            v = -tl.log(1.0 - u) / a
        elif DIST == opcodes.Dist.BERNOULLI:
            v = u < a
        else:
            v = u < tl.load(p_ptr + i).to(u.dtype)
    return v


@triton.jit
def _put(out_ptr, i, n, wx, wy, wz, ww, p_ptr, a, b, WHICH: tl.constexpr, DIST: tl.constexpr, WIDE: tl.constexpr,
         UBITS: tl.constexpr, OUT_BOOL: tl.constexpr):
    """out[i] = draw WHICH of the words (wx, wy, wz, ww) (see `_draw`), where i < n."""
    v = _draw(wx, wy, wz, ww, tl.where(i < n, i, 0), p_ptr, a, b, WHICH, DIST, WIDE, UBITS)
    if OUT_BOOL:
        v = v != 0
    if out_ptr.dtype.element_ty == tl.bfloat16:
        v = v.to(tl.float32)        # integers and bools reach bfloat16 through float32
    tl.store(out_ptr + i, v.to(out_ptr.dtype.element_ty), mask=i < n)


@triton.jit
def fill_kernel(out_ptr, p_ptr, state_ptr, seed, offset, graph, n, a, b,
                DIST: tl.constexpr, WIDE: tl.constexpr, UBITS: tl.constexpr, OUT_BOOL: tl.constexpr,
                BLOCK: tl.constexpr):
    """out (contiguous, n elements) = draws of distribution DIST (see `_draw`)."""
    pid = tl.program_id(0).to(tl.int64)
    seed, base = _state(state_ptr, seed, offset, graph)
    j = tl.arange(0, BLOCK)
    w0, w1, w2, w3 = _randint4x(seed, base + pid * BLOCK + j)
    if WIDE:                # two 64-bit draws from the four words
        i = pid * (2 * BLOCK) + j
        _put(out_ptr, i, n, w0, w1, w2, w3, p_ptr, a, b, 0, DIST, WIDE, UBITS, OUT_BOOL)
        _put(out_ptr, i + BLOCK, n, w0, w1, w2, w3, p_ptr, a, b, 1, DIST, WIDE, UBITS, OUT_BOOL)
    else:                   # four 32-bit draws, two from each pair of words
        i = pid * (4 * BLOCK) + j
        _put(out_ptr, i, n, w0, w1, w0, w1, p_ptr, a, b, 0, DIST, WIDE, UBITS, OUT_BOOL)
        _put(out_ptr, i + BLOCK, n, w0, w1, w0, w1, p_ptr, a, b, 1, DIST, WIDE, UBITS, OUT_BOOL)
        _put(out_ptr, i + 2 * BLOCK, n, w2, w3, w2, w3, p_ptr, a, b, 0, DIST, WIDE, UBITS, OUT_BOOL)
        _put(out_ptr, i + 3 * BLOCK, n, w2, w3, w2, w3, p_ptr, a, b, 1, DIST, WIDE, UBITS, OUT_BOOL)


@triton.jit
def _drop(x_ptr, out_ptr, mask_ptr, i, n, w, keep, scale, F64: tl.constexpr):
    m = i < n
    k = _u32(w, 24) < keep
    x = tl.load(x_ptr + i, mask=m, other=0.0)
    if F64:
        x = x.to(tl.float64)
    else:
        x = x.to(tl.float32)
    y = tl.where(k, x * scale, 0.0)
    tl.store(out_ptr + i, y.to(out_ptr.dtype.element_ty), mask=m)
    tl.store(mask_ptr + i, k.to(mask_ptr.dtype.element_ty), mask=m)


@triton.jit
def dropout_kernel(x_ptr, out_ptr, mask_ptr, state_ptr, seed, offset, graph, n, keep, scale,
                   F64: tl.constexpr, BLOCK: tl.constexpr):
    """Fused dropout over contiguous x: mask = u < keep (bool), out = mask ? x * scale : 0 (the
    counters and element layout of `fill_kernel`'s 32-bit draws)."""
    pid = tl.program_id(0).to(tl.int64)
    seed, base = _state(state_ptr, seed, offset, graph)
    j = tl.arange(0, BLOCK)
    w0, w1, w2, w3 = _randint4x(seed, base + pid * BLOCK + j)
    i = pid * (4 * BLOCK) + j
    _drop(x_ptr, out_ptr, mask_ptr, i, n, w0, keep, scale, F64)
    _drop(x_ptr, out_ptr, mask_ptr, i + BLOCK, n, w1, keep, scale, F64)
    _drop(x_ptr, out_ptr, mask_ptr, i + 2 * BLOCK, n, w2, keep, scale, F64)
    _drop(x_ptr, out_ptr, mask_ptr, i + 3 * BLOCK, n, w3, keep, scale, F64)


@triton.jit
def dropout_bwd_kernel(g_ptr, mask_ptr, out_ptr, n, scale, F64: tl.constexpr, BLOCK: tl.constexpr):
    """out = mask ? g * scale : 0 (contiguous operands)."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = i < n
    k = tl.load(mask_ptr + i, mask=m, other=0) != 0
    g = tl.load(g_ptr + i, mask=m, other=0.0)
    if F64:
        g = g.to(tl.float64)
    else:
        g = g.to(tl.float32)
    tl.store(out_ptr + i, tl.where(k, g * scale, 0.0).to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def _weights(p_ptr, row, stride_r, stride_c, C, q, K: tl.constexpr):
    """(weights, indices) of categories j = 4q + K; past C: weight -inf, index the int64 maximum."""
    j = 4 * q + K
    jm = j < C
    p = tl.load(p_ptr + row * stride_r + tl.where(jm, j, 0) * stride_c, mask=jm, other=0.0).to(tl.float32)
    return tl.where(jm, p, float("-inf")), tl.where(jm, j, 9223372036854775807)


@triton.jit
def _exp1(w):
    """Exp(1) draws > 0 from uint32 words (through a uniform in the open interval (0, 1))."""
    return -tl.log(((w >> 8).to(tl.float32) + 0.5) * (1.0 / 16777216.0))


@triton.jit
def _best(key, j, best, bidx, AXIS: tl.constexpr):
    """Merges the largest key of a tile (lowest index among ties) along AXIS into (best, bidx)."""
    m = tl.reduce(key, AXIS, _max)
    if AXIS == 1:
        mi = tl.reduce(tl.where(key == m[:, None], j, 9223372036854775807), AXIS, _min)
    else:
        mi = tl.reduce(tl.where(key == m, j, 9223372036854775807), AXIS, _min)
    take = (m > best) | ((m == best) & (mi < bidx))
    return tl.where(take, m, best), tl.where(take, mi, bidx)


@triton.jit
def _race(p_ptr, row, stride_r, stride_c, C, q, w, best, bidx, K: tl.constexpr):
    """Exponential race of one sample per row of `w` ([BS, BQ]) over categories 4q + K: key p_j / E_j;
    the largest key over all categories is a draw from p / sum(p)."""
    p, j = _weights(p_ptr, row, stride_r, stride_c, C, q, K)
    return _best(p[None, :] / _exp1(w), j[None, :], best, bidx, 1)


@triton.jit
def _next(p_ptr, row, stride_r, stride_c, C, q, w, pk, pi, best, bidx, K: tl.constexpr):
    """The largest key (p_j / E_j) after the previous pick (pk, pi) in the order (key desc, index asc)."""
    p, j = _weights(p_ptr, row, stride_r, stride_c, C, q, K)
    key = p / _exp1(w)
    after = (key < pk) | ((key == pk) & (j > pi))
    return _best(tl.where(after, key, float("-inf")), tl.where(after, j, 9223372036854775807), best, bidx, 0)


@triton.jit
def multinomial_kernel(p_ptr, out_ptr, state_ptr, seed, offset, graph, C, S, Q, stride_r, stride_c,
                       REPLACEMENT: tl.constexpr, BS: tl.constexpr, BQ: tl.constexpr):
    """out[row, :S] sampled from the (unnormalised) weights of row `row` by exponential races
    (Q = ceil(C / 4) counters per race). With replacement, each (row, sample) runs its own race on
    counters (row * S + s) * Q + q (grid: rows x ceil(S / BS)). Without, one race per row on counters
    row * Q + q: its S largest keys in order are the samples, one pass over the row for each.
    Once every positive weight is taken, zero weights follow in index order (no device check)."""
    row = tl.program_id(0).to(tl.int64)
    seed, base = _state(state_ptr, seed, offset, graph)
    qr = tl.arange(0, BQ).to(tl.int64)
    if REPLACEMENT:
        s = tl.program_id(1).to(tl.int64) * BS + tl.arange(0, BS)
        best = tl.full([BS], float("-inf"), tl.float32)
        bidx = tl.full([BS], 9223372036854775807, tl.int64)
        q0 = 0
        while q0 < Q:
            q = q0 + qr
            w0, w1, w2, w3 = _randint4x(seed, base + (row * S + s)[:, None] * Q + q[None, :])
            best, bidx = _race(p_ptr, row, stride_r, stride_c, C, q, w0, best, bidx, 0)
            best, bidx = _race(p_ptr, row, stride_r, stride_c, C, q, w1, best, bidx, 1)
            best, bidx = _race(p_ptr, row, stride_r, stride_c, C, q, w2, best, bidx, 2)
            best, bidx = _race(p_ptr, row, stride_r, stride_c, C, q, w3, best, bidx, 3)
            q0 += BQ
        tl.store(out_ptr + row * S + s, bidx, mask=s < S)
    else:
        pk = tl.full([], float("inf"), tl.float32)
        pi = tl.full([], -1, tl.int64)
        t = 0
        while t < S:
            best = tl.full([], float("-inf"), tl.float32)
            bidx = tl.full([], 9223372036854775807, tl.int64)
            q0 = 0
            while q0 < Q:
                q = q0 + qr
                w0, w1, w2, w3 = _randint4x(seed, base + row * Q + q)
                best, bidx = _next(p_ptr, row, stride_r, stride_c, C, q, w0, pk, pi, best, bidx, 0)
                best, bidx = _next(p_ptr, row, stride_r, stride_c, C, q, w1, pk, pi, best, bidx, 1)
                best, bidx = _next(p_ptr, row, stride_r, stride_c, C, q, w2, pk, pi, best, bidx, 2)
                best, bidx = _next(p_ptr, row, stride_r, stride_c, C, q, w3, pk, pi, best, bidx, 3)
                q0 += BQ
            tl.store(out_ptr + row * S + t, bidx)
            pk = best
            pi = bidx
            t += 1


@triton.jit
def randperm_rank_kernel(out_ptr, state_ptr, seed, offset, graph, n, BI: tl.constexpr,
                         BJ: tl.constexpr):
    """A uniform random permutation of [0, n): element i draws a 64-bit key (words 0, 1 of counter i)
    and goes to position rank(i) = #{j: (key_j, j) < (key_i, i)}. O(n^2) compares: for small n."""
    seed, base = _state(state_ptr, seed, offset, graph)
    i = tl.program_id(0).to(tl.int64) * BI + tl.arange(0, BI)
    a0, a1, a2, a3 = _randint4x(seed, base + i)
    rank = tl.full([BI], 0, tl.int64)
    j0 = 0
    while j0 < n:
        j = j0 + tl.arange(0, BJ).to(tl.int64)
        b0, b1, b2, b3 = _randint4x(seed, base + j)
        lo = (b0[None, :] < a0[:, None]) | ((b0[None, :] == a0[:, None]) & (
            (b1[None, :] < a1[:, None]) | ((b1[None, :] == a1[:, None]) & (j[None, :] < i[:, None]))))
        rank += tl.reduce((lo & (j[None, :] < n)).to(tl.int64), 1, _add)
        j0 += BJ
    tl.store(out_ptr + tl.where(i < n, rank, 0), i.to(out_ptr.dtype.element_ty), mask=i < n)


@triton.jit
def _feistel(x, seed, base, H, ROUNDS: tl.constexpr):
    """A keyed bijection of [0, 4^H): ROUNDS Feistel rounds on H-bit halves, round function Philox
    (word 0 of counter r * 2^H + right half)."""
    half = (1 << H) - 1
    left = x >> H
    right = x & half
    for r in tl.static_range(ROUNDS):
        f, f1, f2, f3 = _randint4x(seed, base + r * (half + 1) + right)
        f = f.to(tl.int64) & half
        left, right = right, left ^ f
    return (left << H) | right


@triton.jit
def randperm_feistel_kernel(out_ptr, state_ptr, seed, offset, graph, n, H, ROUNDS: tl.constexpr,
                            BLOCK: tl.constexpr):
    """out[i] = the keyed Feistel bijection of [0, 4^H) restricted to [0, n) by cycle walking
    (apply it again while the value is >= n; 4^H < 4n, so a few times on average)."""
    seed, base = _state(state_ptr, seed, offset, graph)
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    im = i < n
    x = _feistel(tl.where(im, i, 0), seed, base, H, ROUNDS)
    more = tl.reduce((x >= n).to(tl.int32), 0, _max)
    while more > 0:
        x = tl.where(x >= n, _feistel(x, seed, base, H, ROUNDS), x)
        more = tl.reduce((x >= n).to(tl.int32), 0, _max)
    tl.store(out_ptr + i, x.to(out_ptr.dtype.element_ty), mask=im)


@triton.jit
def philox_state_kernel(state_ptr, seed, offset):
    """state = (seed, offset): before a CUDA graph replay, the base its random kernels read."""
    tl.store(state_ptr, seed.to(tl.int64))
    tl.store(state_ptr + 1, offset.to(tl.int64))

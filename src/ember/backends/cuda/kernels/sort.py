"""Triton kernels for sorting and selection (sort/argsort/topk/kthvalue) and unique.

Each element becomes an int64 key whose signed order is the wanted order (`_key`): floats through
their bits made order-preserving (-0.0 as +0.0, every NaN as the largest), descending through the
bitwise complement (`desc`, so equal elements keep input order either way). Keys of dtypes up to 32 bits
carry the element's column in their low 32 bits (`KIND` 0/2), so all keys differ and sorting them
is stable; 64-bit keys (`KIND` 1/3) are sorted as (key, column) pairs instead.

- `sort_tile_kernel`: one program sorts a [ROWS, BLOCK] tile (ROWS rows, or BLOCK columns of one
  row) in registers with a bitonic network (`_bitonic`, on the tile viewed as a [2]*NDIM
  hypercube, as `tl.sort` does; written here because `tl.sort`/`xor_sum` are jit functions of
  triton.language that break under the interpreter of the CI tests), then writes either the
  results (`FINAL`: sorted positions [c0, c0 + K) of each row) or the (key, column) pairs.
- `merge_kernel`: one pass of a merge sort over rows longer than a tile: runs of length L are
  merged pairwise, each element finding its place by a binary search in the other run.
- unique: `unique_count_kernel` (groups starting in each block), `unique_scan_kernel` (one
  program: exclusive scan of those counts, and the total), `unique_scatter_kernel` (group ids,
  inverse, unique values or slices, group starts) and `unique_counts_kernel`.

`GATHER` reads column c of a row as column perm[c] and reports perm[index]: the passes of
unique(dim=...)'s lexicographic (least significant slice element first) sort.
"""
import triton
import triton.language as tl

from .. import opcodes


@triton.jit
def _xor_fn(a, b):
    return a ^ b


@triton.jit
def _add_fn(a, b):
    return a + b


@triton.jit
def _key(x, col, desc, KIND: tl.constexpr):
    """int64 sort keys of x (columns col): KIND 0 float16/bfloat16/float32, 1 float64, 2 integers of
    at most 32 bits and bool, 3 int64; KIND 0/2 pack the column into the low 32 bits. desc (0/1):
    complemented, for a descending order."""
    if KIND == opcodes.SortKey.F32:
        f = x.to(tl.float32)
        b = tl.where(f == 0, 0.0, f).to(tl.int32, bitcast=True)
        b = tl.where(b < 0, b ^ 0x7FFFFFFF, b)
        b = tl.where(f != f, 0x7FFFFFFF, b)
    elif KIND == opcodes.SortKey.F64:
        b = tl.where(x == 0, 0.0, x).to(tl.int64, bitcast=True)
        b = tl.where(b < 0, b ^ 0x7FFFFFFFFFFFFFFF, b)
        b = tl.where(x != x, 0x7FFFFFFFFFFFFFFF, b)
    elif KIND == opcodes.SortKey.I32:
        b = x.to(tl.int32)
    else:
        b = x.to(tl.int64)
    b = b ^ (0 - desc)
    if KIND % 2 == 0:
        b = (b.to(tl.int64) << 32) | col
    return b


@triton.jit
def _indicator(NDIM: tl.constexpr, j: tl.constexpr):
    """0 / 1 along hypercube axis NDIM - 1 - j (bit j of the flat position)."""
    return tl.reshape(tl.arange(0, 2), [1] * (NDIM - j - 1) + [2] + [1] * j)


@triton.jit
def _cas(k, v, flip, i: tl.constexpr, NDIM: tl.constexpr, PAIR: tl.constexpr):
    """Compare-and-swap of the elements whose flat positions differ in bit i."""
    ok = k ^ tl.reduce(k, NDIM - 1 - i, _xor_fn, keep_dims=True)
    if PAIR:
        ov = v ^ tl.reduce(v, NDIM - 1 - i, _xor_fn, keep_dims=True)
        gt = (k > ok) | ((k == ok) & (v > ov))
    else:
        ov = v
        gt = k > ok
    swap = gt != (flip ^ _indicator(NDIM, i))
    return tl.where(swap, ok, k), tl.where(swap, ov, v)


@triton.jit
def _merge_stage(k, v, stage: tl.constexpr, ALT: tl.constexpr, NDIM: tl.constexpr, PAIR: tl.constexpr):
    """Bitonic merge of runs of 2**stage: alternately ascending/descending (ALT) or all ascending."""
    if ALT:
        flip = _indicator(NDIM, stage)
    else:
        flip = 0
    for i in tl.static_range(stage):
        k, v = _cas(k, v, flip, stage - 1 - i, NDIM, PAIR)
    return k, v


@triton.jit
def _bitonic(k, v, NDIM: tl.constexpr, LOGB: tl.constexpr, PAIR: tl.constexpr):
    """Sorts k (with v, PAIR: by (k, v)) ascending over each run of 2**LOGB flat positions."""
    for stage in tl.static_range(1, LOGB + 1):
        k, v = _merge_stage(k, v, stage, stage < LOGB, NDIM, PAIR)
    return k, v


@triton.jit
def _write(x_ptr, perm_ptr, vals_ptr, idx_ptr, col, pos, keep, a, b, sa, sb, sc, B, K, c0,
           GATHER: tl.constexpr, HAS_VALS: tl.constexpr):
    """Element `col` of row (a, b), sorted to position pos, into the outputs' column pos - c0."""
    if GATHER:
        col = tl.load(perm_ptr + col, mask=keep, other=0)
    o = a * (K * B) + (pos - c0) * B + b
    tl.store(idx_ptr + o, col, mask=keep)
    if HAS_VALS:
        tl.store(vals_ptr + o, tl.load(x_ptr + a * sa + b * sb + col * sc, mask=keep), mask=keep)


@triton.jit
def sort_tile_kernel(x_ptr, perm_ptr, vals_ptr, idx_ptr, key_ptr, kix_ptr, R, N, B, sa, sb, sc, K, c0, ntiles, desc,
                     KIND: tl.constexpr, GATHER: tl.constexpr, HAS_VALS: tl.constexpr,
                     FINAL: tl.constexpr, ROWS: tl.constexpr, BLOCK: tl.constexpr, LOGB: tl.constexpr,
                     NDIM: tl.constexpr):
    """Sorts columns [t * BLOCK, (t + 1) * BLOCK) of rows [p * ROWS, (p + 1) * ROWS) (program p * ntiles + t).

    Row r is (a, b) = (r // B, r % B) and its column c is at x_ptr + a * sa + b * sb + c * sc.
    FINAL: writes indices (and values) of sorted positions [c0, c0 + K) to the contiguous
    [A, K, B] outputs; else the sorted keys (int64) and columns (int32) to [R, N] scratch.
    """
    pid = tl.program_id(0).to(tl.int64)
    rows = (pid // ntiles) * ROWS + tl.arange(0, ROWS).to(tl.int64)[:, None]
    cols = (pid % ntiles) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)[None, :]
    m = (rows < R) & (cols < N)
    a = rows // B
    b = rows % B
    src = cols
    if GATHER:
        src = tl.load(perm_ptr + cols, mask=cols < N, other=0)
    x = tl.load(x_ptr + a * sa + b * sb + src * sc, mask=m, other=0)
    k = tl.where(m, _key(x, cols, desc, KIND), 0x7FFFFFFFFFFFFFFF)
    PAIR: tl.constexpr = KIND % 2 == 1    # 64-bit keys: (key, column) pairs
    if PAIR:
        v = tl.broadcast_to(cols.to(tl.int32), [ROWS, BLOCK])
    else:
        v = k
    k, v = _bitonic(tl.reshape(k, [2] * NDIM), tl.reshape(v, [2] * NDIM), NDIM, LOGB, PAIR)
    k = tl.reshape(k, [ROWS, BLOCK])
    if PAIR:
        v = tl.reshape(v, [ROWS, BLOCK])
    else:
        v = (k & 0xFFFFFFFF).to(tl.int32)
    if FINAL:
        pos = tl.arange(0, BLOCK).to(tl.int64)[None, :]
        keep = (rows < R) & (pos >= c0) & (pos < c0 + K)
        _write(x_ptr, perm_ptr, vals_ptr, idx_ptr, v.to(tl.int64), pos, keep, a, b, sa, sb, sc, B, K, c0,
               GATHER, HAS_VALS)
    else:
        tl.store(key_ptr + rows * N + cols, k, mask=m)
        tl.store(kix_ptr + rows * N + cols, v, mask=m)


@triton.jit
def merge_kernel(key_ptr, kix_ptr, okey_ptr, okix_ptr, x_ptr, perm_ptr, vals_ptr, idx_ptr, N, B, sa, sb, sc,
                 K, c0, L, steps, nblk, GATHER: tl.constexpr, HAS_VALS: tl.constexpr, FINAL: tl.constexpr,
                 BLOCK: tl.constexpr):
    """Merges the sorted runs [2jL, (2j+1)L) and [(2j+1)L, (2j+2)L) of every row's (key, column) pairs
    (program r * nblk + i: columns [i * BLOCK, (i + 1) * BLOCK) of row r). An element's place is its
    rank in its run plus the number of smaller pairs in the other run (a binary search of `steps`
    halvings); all pairs differ, so this is a permutation. FINAL: writes the results as in
    sort_tile_kernel; else the merged pairs to okey/okix."""
    pid = tl.program_id(0).to(tl.int64)
    r = pid // nblk
    c = (pid % nblk) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    m = c < N
    base = r * N
    k = tl.load(key_ptr + base + c, mask=m, other=0)
    v = tl.load(kix_ptr + base + c, mask=m, other=0)
    q = c // L
    start = q * L
    first = (q // 2) * (2 * L)
    left = (q % 2) == 0
    pstart = tl.where(left, start + L, first)
    pend = tl.where(left, tl.minimum(start + L + L, N), start)
    lo = c * 0
    hi = tl.maximum(pend - pstart, 0)
    i = 0
    while i < steps:     # a while loop: the CI interpreter needs Python ints for range()
        act = m & (lo < hi)
        mid = (lo + hi) // 2
        pk = tl.load(key_ptr + base + pstart + mid, mask=act, other=0)
        pv = tl.load(kix_ptr + base + pstart + mid, mask=act, other=0)
        less = (pk < k) | ((pk == k) & (pv < v))
        lo = tl.where(act & less, mid + 1, lo)
        hi = tl.where(act & (less == 0), mid, hi)
        i += 1
    pos = first + (c - start) + lo
    if FINAL:
        keep = m & (pos >= c0) & (pos < c0 + K)
        _write(x_ptr, perm_ptr, vals_ptr, idx_ptr, v.to(tl.int64), pos, keep, r // B, r % B, sa, sb, sc, B, K,
               c0, GATHER, HAS_VALS)
    else:
        tl.store(okey_ptr + base + pos, k, mask=m)
        tl.store(okix_ptr + base + pos, v, mask=m)


# ---- unique ----------------------------------------------------------------------------------------

@triton.jit
def _new_group(src_ptr, order_ptr, j, m, S, KIND: tl.constexpr, GATHER: tl.constexpr):
    """Whether sorted item j starts a group: j == 0, or an element of its S-element slice differs
    from item j - 1's (NaN differs from everything). Item j is slice order[j] (GATHER) or j."""
    p = tl.maximum(j - 1, 0)
    if GATHER:
        ra = tl.load(order_ptr + j, mask=m, other=0) * S
        rb = tl.load(order_ptr + p, mask=m, other=0) * S
    else:
        ra = j * S
        rb = p * S
    new = j == 0
    s = 0
    while s < S:
        xa = tl.load(src_ptr + ra + s, mask=m, other=0)
        xb = tl.load(src_ptr + rb + s, mask=m, other=0)
        if KIND == opcodes.SortKey.F32:
            xa = xa.to(tl.float32)
            xb = xb.to(tl.float32)
        new = new | (xa != xb)
        s += 1
    return new & m


@triton.jit
def unique_count_kernel(src_ptr, order_ptr, cnt_ptr, M, S, KIND: tl.constexpr, GATHER: tl.constexpr,
                        BLOCK: tl.constexpr):
    """cnt[p] = the number of groups starting among sorted items [p * BLOCK, (p + 1) * BLOCK)."""
    pid = tl.program_id(0).to(tl.int64)
    j = pid * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    new = _new_group(src_ptr, order_ptr, j, j < M, S, KIND, GATHER)
    tl.store(cnt_ptr + pid, tl.reduce(new.to(tl.int64), 0, _add_fn))


@triton.jit
def unique_scan_kernel(cnt_ptr, off_ptr, nb, BLOCK: tl.constexpr):
    """off[p] = cnt[0] + ... + cnt[p - 1] for p <= nb (off[nb]: the number of groups); one program."""
    carry = tl.full([], 0, tl.int64)
    start = 0
    while start < nb:
        p = start + tl.arange(0, BLOCK).to(tl.int64)
        c = tl.load(cnt_ptr + p, mask=p < nb, other=0)
        tl.store(off_ptr + p, carry + tl.associative_scan(c, 0, _add_fn) - c, mask=p < nb)
        carry += tl.reduce(c, 0, _add_fn)
        start += BLOCK
    tl.store(off_ptr + nb, carry)


@triton.jit
def unique_scatter_kernel(src_ptr, order_ptr, off_ptr, out_ptr, inv_ptr, first_ptr, M, S, POST, G,
                          KIND: tl.constexpr, GATHER: tl.constexpr, HAS_INV: tl.constexpr,
                          HAS_FIRST: tl.constexpr, BLOCK: tl.constexpr):
    """For sorted items [p * BLOCK, (p + 1) * BLOCK): g = the item's group; inv[order[j]] = g;
    a group's first item writes its slice to out (element s of group g at
    (s // POST) * G * POST + g * POST + s % POST) and first[g] = j."""
    pid = tl.program_id(0).to(tl.int64)
    j = pid * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    m = j < M
    new = _new_group(src_ptr, order_ptr, j, m, S, KIND, GATHER)
    g = tl.load(off_ptr + pid) + tl.associative_scan(new.to(tl.int64), 0, _add_fn) - 1
    if HAS_INV:
        tl.store(inv_ptr + tl.load(order_ptr + j, mask=m, other=0), g, mask=m)
    if HAS_FIRST:
        tl.store(first_ptr + g, j, mask=new)
    if GATHER:
        row = tl.load(order_ptr + j, mask=new, other=0)
    else:
        row = j
    s = 0
    while s < S:
        tl.store(out_ptr + (s // POST) * (G * POST) + g * POST + s % POST,
                 tl.load(src_ptr + row * S + s, mask=new), mask=new)
        s += 1


@triton.jit
def unique_counts_kernel(first_ptr, cnt_ptr, G, M, BLOCK: tl.constexpr):
    """cnt[g] = first[g + 1] - first[g], with first[G] = M."""
    g = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    nxt = tl.load(first_ptr + g + 1, mask=g + 1 < G, other=0)
    nxt = tl.where(g + 1 < G, nxt, M)
    tl.store(cnt_ptr + g, nxt - tl.load(first_ptr + g, mask=g < G, other=0), mask=g < G)

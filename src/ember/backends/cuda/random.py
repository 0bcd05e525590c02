"""CUDA random ops on Triton's counter-based Philox (`kernels/rng.py`), and `ember.cuda`'s seeding API.

A CUDA `ember.Generator` holds (seed, offset). Every launch takes the next range of Philox
counters from its generator (`Generator._philox_advance`), so results are reproducible for a seed
and a sequence of shapes, and consecutive calls differ. Sampling never touches the host.

Ops: rand, randn, randint, randperm (factories); uniform_, normal_, random_, exponential_,
bernoulli_ (scalar or tensor p), bernoulli, multinomial (with and without replacement); the fused
native_dropout / native_dropout_backward under `nn.functional.dropout`.

Random kernels inside a CUDA graph capture read their seed and base offset from a small device
tensor that is refreshed before each replay (the generator then moves past what a replay uses),
so every replay draws new numbers, as in PyTorch.

The ops' metas (ops/random.py) have checked the arguments before a kernel runs.

Different from PyTorch (values never match theirs; the distributions do): float16 / bfloat16
`rand` and `uniform_` draw on a grid of 2^-11 / 2^-8 (exact there, never rounding up to `to`);
float32 draws have 24 random bits, float64 53. Checks that would need the values on the host are
not made on CUDA: probabilities of `bernoulli` from a tensor outside [0, 1] and invalid
`multinomial` weights (negative, inf, NaN) give unspecified results, and `multinomial` without
replacement, asked for more samples than there are positive weights, continues with zero-weight
categories in index order. `randperm` of n <= RANK_MAX elements is uniform (ranks of random 64-bit
keys); above, it is a keyed Feistel bijection restricted to [0, n) by cycle walking (no sort).
"""
from __future__ import annotations

from math import prod


from ..._tensor import Tensor
from ...core import dtype as D
from ...core.device import device as _device
from ...core.layout import dense_strides
from ...dispatch import OPS
from ...ops.creation import factory_dtype
from ...ops.random import dropout_backward_dtype, integer_dtype, random_range
from ...random import _default_for, get_generator
from .compiler import next_power_of_2, pointer_arg, run
from .elementwise import copy_cast
from .capture import capturing as _capturing
from .memory import new_tensor
from .opcodes import Dist

BLOCK = 256             # Philox counters per program of the fill and dropout kernels
RANK_MAX = 1 << 14      # randperm by counting ranks up to this n (O(n^2) compares), Feistel above
FEISTEL_ROUNDS = 8
_UBITS = {D.float16: 11, D.bfloat16: 8}   # rand/uniform_ grids exact in the output dtype
_K = None


def _kernels():
    global _K
    if _K is None:
        from .kernels import rng
        _K = rng
    return _K


def _i64(v: int) -> int:
    """A 64-bit unsigned value as the signed int64 a kernel argument holds (same bits)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _index(t: Tensor) -> int:
    return t._storage.device.index or 0


# ---- Philox counters --------------------------------------------------------------------------

def _philox(generator, dev, counters: int, dummy: Tensor) -> list:
    """The kernel arguments (state_ptr, seed, offset, graph) of a launch that uses `counters` Philox
    counters of the generator; `dummy` stands in for the state tensor outside captures."""
    g = get_generator(generator, dev)
    cg = _capturing.get(dev.index or 0) if _capturing and dev.type == "cuda" else None
    if cg is None:
        seed, off = g._philox_advance(counters)
        state, graph = dummy, 0
    else:
        state, seed, off, graph = _captured(cg, g, dev, counters)
    return [("state_ptr", state, "*i64"), ("seed", _i64(seed), "i64"), ("offset", off, "i64"), ("graph", graph, "i32")]


def _captured(cg, g, dev, counters: int):
    """(state tensor, 0, offset within a replay, 1) for a launch captured into CUDA graph `cg`."""
    hook = next((h for h in cg._before_replay if isinstance(h, _PhiloxReplay)), None)
    if hook is None:
        hook = _PhiloxReplay()
        cg._before_replay.append(hook)
    rec = hook.states.get(g)
    if rec is None:
        rec = hook.states[g] = [new_tensor((2,), D.int64, dev), 0]
    off = rec[1]
    rec[1] += counters
    return rec[0], 0, off, 1


class _PhiloxReplay:
    """Runs before each replay of a CUDA graph that captured random kernels: writes each generator's
    (seed, offset) into the state tensor those kernels read, and moves the generator past the
    counters one replay uses."""

    def __init__(self):
        self.states = {}    # generator -> [int64 state tensor (seed, base offset), counters per replay]

    def __call__(self):
        for g, (state, counters) in self.states.items():
            seed, off = g._philox_advance(counters)
            set_philox_state(state, seed, off)


def set_philox_state(state: Tensor, seed: int, offset: int) -> None:
    run(_kernels().philox_state_kernel, (1,), [pointer_arg("state_ptr", state), ("seed", _i64(seed), "i64"),
                                               ("offset", offset, "i64")], {}, _index(state))


# ---- fills ------------------------------------------------------------------------------------

def _fill(out: Tensor, dist: int, a, b, generator, p=None, wide=None, ubits=24) -> Tensor:
    """Fills contiguous `out` with draws of `dist` (see kernels/rng.py `_draw`) in one launch."""
    n = prod(out._shape)
    if n == 0:
        return out
    if wide is None:
        wide = out._dtype is D.float64
    per = 2 * BLOCK if wide else 4 * BLOCK
    grid = (n + per - 1) // per
    sty = "i64" if dist == Dist.INTEGER else ("fp64" if wide else "fp32")
    cast = int if dist == Dist.INTEGER else float
    args = [pointer_arg("out_ptr", out), pointer_arg("p_ptr", out if p is None else p),
            *_philox(generator, out._storage.device, grid * BLOCK, out),
            ("n", n, "i64"), ("a", cast(a), sty), ("b", cast(b), sty)]
    consts = {"DIST": dist, "WIDE": int(wide), "UBITS": ubits, "OUT_BOOL": int(out._dtype is D.bool),
              "BLOCK": BLOCK}
    run(_kernels().fill_kernel, (grid,), args, consts, _index(out))
    return out


def _fill_(self: Tensor, dist: int, a, b, generator, **kw) -> Tensor:
    """In place: directly when self is contiguous, else through a contiguous buffer."""
    if self.is_contiguous():
        return _fill(self, dist, a, b, generator, **kw)
    tmp = _fill(new_tensor(self._shape, self._dtype, self._storage.device), dist, a, b, generator, **kw)
    return copy_cast(self, tmp)


def rand(size, generator=None, dtype=None, device=None):
    dt = factory_dtype(dtype)
    return _fill(new_tensor(size, dt, device), Dist.UNIFORM, 0.0, 1.0, generator, ubits=_UBITS.get(dt, 24))


def randn(size, generator=None, dtype=None, device=None):
    dt = factory_dtype(dtype)
    return _fill(new_tensor(size, dt, device), Dist.NORMAL, 0.0, 1.0, generator)


def _integers(out: Tensor, low: int, high: int, generator) -> Tensor:
    """Integers in [low, high) (as out's dtype); 64-bit draws when the range exceeds 2^32."""
    span = high - low
    if span > 1 << 64:
        raise RuntimeError(f"random_: the range [{low}, {high}) is wider than 2^64")
    return _fill_(out, Dist.INTEGER, _i64(low), _i64(span), generator, wide=span > 1 << 32)


def randint(low, high, size, generator=None, dtype=None, device=None):
    return _integers(new_tensor(size, integer_dtype(dtype), device), low, high, generator)


def normal_(self, mean=0.0, std=1.0, generator=None):
    return _fill_(self, Dist.NORMAL, mean, std, generator)


def uniform_(self, from_=0.0, to=1.0, generator=None):
    return _fill_(self, Dist.UNIFORM, from_, to, generator, ubits=_UBITS.get(self._dtype, 24))


def random_(self, from_=0, to=None, generator=None):
    return _integers(self, *random_range(self._dtype, from_, to), generator)


def exponential_(self, lambd=1.0, generator=None):
    return _fill_(self, Dist.EXPONENTIAL, lambd, 0.0, generator)


def bernoulli(self, p=None, generator=None):
    out = new_tensor(self._shape, self._dtype, self._storage.device)
    if p is not None:
        return _fill(out, Dist.BERNOULLI, p, 0.0, generator)
    probs = self if self.is_contiguous() else self.contiguous()
    return _fill(out, Dist.BERNOULLI_TENSOR, 0.0, 0.0, generator, p=probs, wide=self._dtype is D.float64)


def bernoulli_(self, p=0.5, generator=None):
    if isinstance(p, Tensor) and p._storage.device is not self._storage.device:
        p = p.item()  # a 0-dim CPU tensor: its value
    if not isinstance(p, Tensor):
        return _fill_(self, Dist.BERNOULLI, p, 0.0, generator)
    if p._shape != self._shape or not p.is_contiguous():
        p = p.expand(*self._shape).contiguous()
    return _fill_(self, Dist.BERNOULLI_TENSOR, 0.0, 0.0, generator, p=p, wide=p._dtype is D.float64)


# ---- multinomial, randperm -------------------------------------------------------------------

def multinomial(self, num_samples, replacement=False, generator=None):
    C = self._shape[-1]
    rows = self._shape[0] if self.ndim == 2 else 1
    S = num_samples
    out = new_tensor(self._shape[:-1] + (S,), D.int64, self._storage.device)
    if rows == 0 or S == 0:
        return out
    Q = (C + 3) // 4
    BQ = min(32 if replacement else 1024, next_power_of_2(Q))
    BS = min(next_power_of_2(S), 512 // BQ)
    counters = rows * S * Q if replacement else rows * Q
    args = [pointer_arg("p_ptr", self), pointer_arg("out_ptr", out),
            *_philox(generator, self._storage.device, counters, out),
            ("C", C, "i64"), ("S", S, "i64"), ("Q", Q, "i64"),
            ("stride_r", self._stride[0] if self.ndim == 2 else 0, "i64"), ("stride_c", self._stride[-1], "i64")]
    grid = (rows, (S + BS - 1) // BS) if replacement else (rows,)
    run(_kernels().multinomial_kernel, grid, args, {"REPLACEMENT": int(replacement), "BS": BS, "BQ": BQ},
        _index(self))
    return out


def randperm(n, generator=None, dtype=None, device=None):
    out = new_tensor((n,), integer_dtype(dtype), device)
    if n == 0:
        return out
    K = _kernels()
    if n <= RANK_MAX:
        BI, BJ = min(32, max(16, next_power_of_2(n))), min(64, max(16, next_power_of_2(n)))
        args = [pointer_arg("out_ptr", out), *_philox(generator, device, n, out), ("n", n, "i64")]
        run(K.randperm_rank_kernel, ((n + BI - 1) // BI,), args, {"BI": BI, "BJ": BJ}, device.index or 0)
        return out
    H = ((n - 1).bit_length() + 1) // 2
    args = [pointer_arg("out_ptr", out), *_philox(generator, device, FEISTEL_ROUNDS << H, out), ("n", n, "i64"),
            ("H", H, "i64")]
    run(K.randperm_feistel_kernel, ((n + 255) // 256,), args, {"ROUNDS": FEISTEL_ROUNDS, "BLOCK": 256},
        device.index or 0)
    return out


# ---- dropout ----------------------------------------------------------------------------------

def native_dropout(input, p, train=None):
    if train is False:
        return input.clone(), OPS["fill_"].fn(new_tensor(input._shape, D.bool, input.device, dense_strides(input)), 1)
    st = dense_strides(input)       # a transposed or channels-last input: walked flat, output and mask in its layout
    x = input if st is not None or input.is_contiguous() else input.contiguous()
    dev = input._storage.device
    out = new_tensor(input._shape, input._dtype, dev, st)
    mask = new_tensor(input._shape, D.bool, dev, st)
    n = prod(input._shape)
    if n == 0:
        return out, mask
    grid = (n + 4 * BLOCK - 1) // (4 * BLOCK)
    sty = "fp64" if input._dtype is D.float64 else "fp32"
    args = [pointer_arg("x_ptr", x), pointer_arg("out_ptr", out), pointer_arg("mask_ptr", mask),
            *_philox(None, dev, grid * BLOCK, out),
            ("n", n, "i64"), ("keep", 1.0 - p, "fp32"), ("scale", 0.0 if p == 1 else 1.0 / (1.0 - p), sty)]
    run(_kernels().dropout_kernel, (grid,), args, {"F64": int(sty == "fp64"), "BLOCK": BLOCK}, _index(out))
    return out, mask


def native_dropout_backward(grad_output, mask, scale):
    dt = dropout_backward_dtype(grad_output)
    g = grad_output if grad_output._dtype is dt else grad_output.to(dt)
    m = mask if mask._shape == g._shape else mask.expand(*g._shape)
    st = dense_strides(g)           # grad and mask in one dense layout (the forward's): walked flat, as it is
    if st is None or m._stride != st:
        st = None
        g = g if g.is_contiguous() else g.contiguous()
        m = m if m.is_contiguous() else m.contiguous()
    out = new_tensor(g._shape, g._dtype, g._storage.device, st)
    n = prod(g._shape)
    if n:
        sty = "fp64" if g._dtype is D.float64 else "fp32"
        args = [pointer_arg("g_ptr", g), pointer_arg("mask_ptr", m), pointer_arg("out_ptr", out), ("n", n, "i64"),
                ("scale", float(scale), sty)]
        run(_kernels().dropout_bwd_kernel, ((n + 1023) // 1024,), args, {"F64": int(sty == "fp64"), "BLOCK": 1024},
            _index(out))
    return out


# ---- ember.cuda seeding API -------------------------------------------------------------------

def _generator(device=None):
    from .device import current_device
    if device is None or device == "cuda":
        return _default_for(_device("cuda", current_device()))
    d = _device(device) if not isinstance(device, int) else _device("cuda", device)
    if d.type != "cuda":
        raise ValueError(f"expected a CUDA device, got {d}")
    return _default_for(_device("cuda", d.index or 0))


def _all_generators():
    from .driver import device_count
    return [_default_for(_device("cuda", i)) for i in range(max(1, device_count()))]


def manual_seed(seed: int) -> None:
    """Seeds the current CUDA device's default generator."""
    _generator().manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    """Seeds every CUDA device's default generator."""
    for g in _all_generators():
        g.manual_seed(seed)


def seed() -> None:
    _generator().seed()


def seed_all() -> None:
    s = _generator().seed()
    manual_seed_all(s)


def initial_seed() -> int:
    return _generator().initial_seed()


def get_rng_state(device="cuda"):
    """The state (seed, offset) of a CUDA device's default generator, as a CPU uint8 tensor."""
    return _generator(device).get_state()


def set_rng_state(new_state, device="cuda") -> None:
    _generator(device).set_state(new_state)


def get_rng_state_all() -> list:
    return [g.get_state() for g in _all_generators()]


def set_rng_state_all(new_states) -> None:
    for g, s in zip(_all_generators(), new_states):
        g.set_state(s)


def _register():
    for fn in (rand, randn, randint, randperm, normal_, uniform_, random_, exponential_, bernoulli, bernoulli_,
               multinomial, native_dropout, native_dropout_backward):
        OPS[fn.__name__].register("cuda")(fn)


_register()

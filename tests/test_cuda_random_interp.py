"""The CUDA random kernels (`backends/cuda/random.py`) on CPU tensors through Triton's interpreter
(`TRITON_INTERPRET=1`): ranges and moments of each distribution, reproducibility for the same
(seed, offset), the Philox offset bookkeeping, the graph-replay state path, and the CUDA generator
API (which needs no GPU). On a machine with a GPU these are left to `tests/test_cuda_random.py`. The
kernels get valid arguments only: the ops' checks are their metas', run by the entry point and tested
for every backend by the sample table (tests/samples/random.py)."""
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_random.py", allow_module_level=True)
pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from ember.backends.cuda import random as R  # noqa: E402
from ember.backends.cuda.compiler import pointer_arg, run  # noqa: E402
from ember.core.device import CPU  # noqa: E402

N = 4096


def gen(seed=0):
    return ember.Generator().manual_seed(seed)


def vals(t):
    return t.double().numpy() if t.dtype.is_floating_point else t.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_rand_and_randn_moments(dtype):
    dt = getattr(ember, dtype)
    g = gen(1)
    u = R.rand((N,), g, dt, CPU)
    assert u.dtype is dt and u.shape == (N,)
    u = vals(u)
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.03 and abs(u.var() - 1 / 12) < 0.01
    z = R.randn((64, 64), g, dt, CPU)
    assert z.shape == (64, 64)
    z = vals(z).ravel()
    assert abs(z.mean()) < 0.08 and abs(z.std() - 1) < 0.05
    assert abs(np.mean(z ** 3)) < 0.2 and abs(np.mean(z ** 4) - 3) < 0.4   # skew, kurtosis of a normal
    assert len(np.unique(z)) > N * 0.9 if dtype in ("float32", "float64") else len(np.unique(z)) > 100


def test_low_precision_rand_never_rounds_up_to_one():
    for dt in (ember.float16, ember.bfloat16):
        u = vals(R.rand((N,), gen(2), dt, CPU))
        assert u.max() < 1
        assert len(np.unique(u)) > 200          # the 2^-11 / 2^-8 grids are used, not a few values


def test_same_seed_same_values_and_offsets_advance():
    g1, g2 = gen(7), gen(7)
    a, b = R.randn((3, 1000), g1, ember.float32, CPU), R.randn((3, 1000), g2, ember.float32, CPU)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    # one program per 4 * BLOCK 32-bit values: ceil(3000 / 1024) programs of BLOCK counters
    assert g1._offset == 3 * R.BLOCK
    c = R.randn((3, 1000), g1, ember.float32, CPU)
    assert g1._offset == 6 * R.BLOCK
    assert not np.array_equal(a.numpy(), c.numpy())
    d = R.randn((3, 1000), gen(8), ember.float32, CPU)
    assert not np.array_equal(a.numpy(), d.numpy())
    # float64 draws take two words: twice the counters
    g = gen(7)
    R.rand((1000,), g, ember.float64, CPU)
    assert g._offset == 2 * R.BLOCK


def test_values_depend_on_the_flat_index_only():
    """The same (seed, offset) gives the same values whatever the shape, and a prefix of a longer draw."""
    a = R.rand((6, 700), gen(3), ember.float32, CPU).numpy().ravel()
    b = R.rand((4200,), gen(3), ember.float32, CPU).numpy()
    np.testing.assert_array_equal(a, b)


def test_graph_state_path_reads_seed_and_offset_from_the_device():
    """Captured launches (graph=1) read (seed, base) from a state tensor (written by philox_state_kernel
    before a replay) and add their own offset: the values equal a direct launch at base + offset."""
    seed, base, off, n = (1 << 64) - 12345, 4096, 512, 3000
    state = ember.zeros(2, dtype=ember.int64)
    R.set_philox_state(state, seed, base)
    assert state.tolist() == [R._i64(seed), base]

    def launch(graph, seed_arg, off_arg):
        out = ember.empty(n)
        args = [pointer_arg("out_ptr", out), pointer_arg("p_ptr", out), ("state_ptr", state, "*i64"),
                ("seed", seed_arg, "i64"), ("offset", off_arg, "i64"), ("graph", graph, "i32"), ("n", n, "i64"),
                ("a", 0.0, "fp32"), ("b", 1.0, "fp32")]
        consts = {"DIST": 1, "WIDE": 0, "UBITS": 24, "OUT_BOOL": 0, "BLOCK": R.BLOCK}
        run(R._kernels().fill_kernel, (3,), args, consts, 0)
        return out.numpy()
    np.testing.assert_array_equal(launch(1, 0, off), launch(0, R._i64(seed), base + off))


def test_replay_hook_sets_state_and_advances_the_generator():
    g = gen(11)
    g._offset = 40
    state = ember.zeros(2, dtype=ember.int64)
    hook = R._PhiloxReplay()
    hook.states[g] = [state, 1000]
    hook()
    assert state.tolist() == [11, 40] and g._offset == 1040
    hook()
    assert state.tolist() == [11, 1040] and g._offset == 2040


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_uniform_normal_exponential_in_place(dtype):
    dt = getattr(ember, dtype)
    g = gen(4)
    x = R.uniform_(ember.empty(N, dtype=dt), -2.0, 3.0, g)
    v = vals(x)
    assert -2 <= v.min() and v.max() < 3 and abs(v.mean() - 0.5) < 0.1 and abs(v.var() - 25 / 12) < 0.15
    v = vals(R.normal_(ember.empty(N, dtype=dt), 5.0, 0.5, g))
    assert abs(v.mean() - 5) < 0.04 and abs(v.std() - 0.5) < 0.03
    v = vals(R.exponential_(ember.empty(N, dtype=dt), 4.0, g))
    assert v.min() >= 0 and abs(v.mean() - 0.25) < 0.02 and abs(v.std() - 0.25) < 0.03


def test_in_place_on_a_strided_view():
    base = ember.zeros(40, 50)
    view = base.t()[::2]            # (25, 40), not contiguous
    R.uniform_(view, 1.0, 2.0, gen(5))
    b = base.numpy()
    assert ((b[:, ::2] >= 1) & (b[:, ::2] < 2)).all() and (b[:, 1::2] == 0).all()


def test_randint_and_random_ranges():
    g = gen(6)
    x = R.randint(-3, 5, (N,), g, None, CPU)
    assert x.dtype is ember.int64
    counts = np.bincount(x.numpy() + 3)
    assert len(counts) == 8 and counts.min() > N / 8 * 0.8
    big = R.randint(0, 1 << 40, (N,), g, ember.int64, CPU).numpy()      # 64-bit draws
    assert big.min() >= 0 and big.max() < 1 << 40 and abs(big.mean() / (1 << 40) - 0.5) < 0.03
    full = R.randint(-(1 << 63), (1 << 63) - 1, (N,), g, None, CPU).numpy()
    assert (full < 0).mean() > 0.4 and (full > 0).mean() > 0.4
    i8 = R.random_(ember.empty(N, dtype=ember.int8), generator=g).numpy()   # [0, 127]
    assert i8.min() == 0 and i8.max() == 127
    u8 = R.random_(ember.empty(N, dtype=ember.uint8), 10, 20, g).numpy()
    assert set(np.unique(u8)) == set(range(10, 20))
    b = R.random_(ember.empty(N, dtype=ember.bool), generator=g).numpy()
    assert 0.4 < b.mean() < 0.6
    f = vals(R.random_(ember.empty(N, dtype=ember.float16), generator=g))   # [0, 2^11]
    assert f.min() >= 0 and f.max() < 2048 and (f == np.round(f)).all() and f.max() > 1900
    h = R.randint(0, 7, (N,), g, ember.float32, CPU).numpy()
    assert set(np.unique(h)) == set(range(7))
    bf = vals(R.random_(ember.empty(N, dtype=ember.bfloat16), generator=g))   # integers reach bfloat16 via float32
    assert bf.min() == 0 and bf.max() == 255 and (bf == np.round(bf)).all()
    i32 = R.random_(ember.empty(N, dtype=ember.int32), generator=g).numpy()   # [0, 2^31): a range past int32
    assert i32.min() >= 0 and i32.max() > 0.99 * 2 ** 31


def test_random_with_one_number_draws_below_it_as_torch():
    # the op layer's rule (ops/random.py), the same for every backend: random_(to), random_(from, to)
    assert set(np.unique(ember.empty(N).random_(5).numpy())) == set(range(5))
    assert set(np.unique(ember.empty(N, dtype=ember.int8).random_(120, None).numpy())) == set(range(120, 128))


def test_bernoulli_scalar_tensor_and_broadcast_p():
    g = gen(9)
    b = R.bernoulli_(ember.empty(N), 0.3, g).numpy()
    assert set(np.unique(b)) == {0.0, 1.0} and abs(b.mean() - 0.3) < 0.03
    b = vals(R.bernoulli_(ember.empty(N, dtype=ember.bfloat16), 0.6, g))
    assert set(np.unique(b)) == {0.0, 1.0} and abs(b.mean() - 0.6) < 0.03
    p = ember.tensor([0.0, 0.25, 0.9, 1.0]).reshape(4, 1)
    b = R.bernoulli_(ember.empty(4, 1000, dtype=ember.bool), p, g).numpy()      # p broadcast over rows
    m = b.mean(1)
    assert m[0] == 0 and m[3] == 1 and abs(m[1] - 0.25) < 0.06 and abs(m[2] - 0.9) < 0.04
    b = R.bernoulli_(ember.empty(N, dtype=ember.int32), ember.tensor(0.75, dtype=ember.float64), g).numpy()
    assert abs(b.mean() - 0.75) < 0.03
    probs = ember.linspace(0, 1, N)
    out = R.bernoulli(probs, None, g)
    assert out.dtype is ember.float32
    o = out.numpy()
    assert abs(o[: N // 2].mean() - 0.25) < 0.04 and abs(o[N // 2:].mean() - 0.75) < 0.04
    assert o[0] == 0 and o[-1] == 1
    assert abs(R.bernoulli(ember.zeros(N, dtype=ember.float64), 0.6, g).numpy().mean() - 0.6) < 0.03


def test_multinomial_with_replacement_frequencies():
    p = ember.tensor([[1.0, 0.0, 6.0, 3.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    s = R.multinomial(p, 400, True, gen(12))
    assert s.dtype is ember.int64 and s.shape == (2, 400)
    f0 = np.bincount(s.numpy()[0], minlength=5) / 400
    f1 = np.bincount(s.numpy()[1], minlength=5) / 400
    np.testing.assert_allclose(f0, [0.1, 0, 0.6, 0.3, 0], atol=0.09)
    np.testing.assert_allclose(f1, [0.2] * 5, atol=0.09)
    np.testing.assert_array_equal(R.multinomial(p, 400, True, gen(12)).numpy(), s.numpy())
    one = R.multinomial(ember.tensor([0.0, 0.0, 2.0]), 7, True, gen(1))
    assert one.shape == (7,) and one.tolist() == [2] * 7


def test_multinomial_without_replacement():
    g = gen(13)
    w = ember.tensor([[0.0, 5.0, 1.0, 0.0, 2.0, 0.5, 0.0, 3.0, 1.0], [1.0] * 9])
    s = R.multinomial(w.t().contiguous().t(), 6, False, g).numpy()    # column-major weights
    for row in s:
        assert len(set(row.tolist())) == 6
    assert set(s[0].tolist()) == {1, 2, 4, 5, 7, 8}                  # the six positive weights, no zero one
    firsts = np.array([R.multinomial(w[0], 1, False, g).item() for _ in range(20)])
    assert (firsts == 1).mean() > 0.15 and 0 not in firsts             # 5/12.5 = 0.4 expected
    # more samples than positive weights: zero weights follow, still without repeats
    s = R.multinomial(ember.tensor([0.0, 1.0, 0.0, 2.0]), 4, False, g).tolist()
    assert sorted(s) == [0, 1, 2, 3] and set(s[:2]) == {1, 3}


def test_randperm_rank_path_is_uniform_on_small_n():
    g = gen(14)
    perms = [tuple(R.randperm(3, g, None, CPU).tolist()) for _ in range(40)]
    counts = {p: perms.count(p) for p in set(perms)}
    assert len(counts) == 6 and max(counts.values()) <= 16     # 6.7 expected each
    p = R.randperm(40, g, ember.int32, CPU)
    assert p.dtype is ember.int32 and sorted(p.tolist()) == list(range(40))
    assert R.randperm(0, g, None, CPU).shape == (0,)


def test_randperm_feistel_path(monkeypatch):
    monkeypatch.setattr(R, "RANK_MAX", 8)
    g = gen(15)
    p, q, p9 = (R.randperm(n, g, None, CPU).numpy() for n in (1000, 1000, 9))
    assert sorted(p9.tolist()) == list(range(9)) and sorted(p.tolist()) == list(range(1000))
    assert not np.array_equal(p, q)
    assert abs(np.corrcoef(np.arange(1000), p)[0, 1]) < 0.15      # no visible order left
    np.testing.assert_array_equal(R.randperm(1000, gen(15), None, CPU).numpy(), p)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_dropout_kernels(dtype):
    dt = getattr(ember, dtype)
    x = ember.randn(N).to(dt)
    ember.manual_seed(3)
    out, mask = R.native_dropout(x, 0.25)
    assert mask.dtype is ember.bool and out.dtype is dt
    m = mask.numpy()
    assert abs(m.mean() - 0.75) < 0.03
    want = np.where(m, x.double().numpy() / 0.75, 0)
    np.testing.assert_allclose(out.double().numpy(), want, rtol=2e-3 if dt is ember.float16 else 1e-6)
    ember.manual_seed(3)
    np.testing.assert_array_equal(R.native_dropout(x, 0.25)[1].numpy(), m)
    g = ember.randn(N).to(dt)
    gi = R.native_dropout_backward(g, mask, 1 / 0.75)
    np.testing.assert_allclose(gi.double().numpy(), np.where(m, g.double().numpy() / 0.75, 0),
                               rtol=2e-3 if dt is ember.float16 else 1e-6)
    gs = R.native_dropout_backward(ember.ones(1).to(dt).expand(N), mask, 2.0)   # a broadcast grad
    np.testing.assert_array_equal(gs.double().numpy(), np.where(m, 2.0, 0.0))


def test_dropout_p_one_and_eval():
    x = ember.randn(100)
    out, mask = R.native_dropout(x, 1.0)
    assert (out.numpy() == 0).all() and not mask.numpy().any()
    out, mask = R.native_dropout(x, 0.5, False)
    np.testing.assert_array_equal(out.numpy(), x.numpy())
    assert mask.numpy().all()


def test_cuda_generator_api_without_a_gpu():
    g = ember.Generator(device="cuda")
    assert g.device == ember.device("cuda", 0) and g._offset == 0
    g.manual_seed(-1)
    assert g.initial_seed() == (1 << 64) - 1
    g._offset = 12345
    s = g.get_state()
    assert s.dtype is ember.uint8 and s.shape == (16,)
    g.manual_seed(1)
    assert g._offset == 0
    g.set_state(s)
    assert (g.initial_seed(), g._offset) == ((1 << 64) - 1, 12345)
    with pytest.raises(RuntimeError, match="16 bytes"):
        g.set_state(ember.zeros(3, dtype=ember.uint8))
    ember.manual_seed(5)
    cg = R._generator()
    assert cg.initial_seed() == 5 and cg._offset == 0
    cg._offset = 99
    st = ember.cuda.get_rng_state()
    ember.cuda.manual_seed(6)
    assert ember.cuda.initial_seed() == 6 and cg._offset == 0 and ember.initial_seed() == 5
    ember.cuda.set_rng_state(st)
    assert (cg.initial_seed(), cg._offset) == (5, 99)
    ember.cuda.manual_seed_all(8)
    assert cg.initial_seed() == 8 and [s.tolist() for s in ember.cuda.get_rng_state_all()] == [cg.get_state().tolist()]
    ember.manual_seed(9)                               # seeds the CUDA default generators too, as PyTorch
    assert cg.initial_seed() == 9 and ember.initial_seed() == 9
    with ember.random.fork_rng():
        cg._offset = 7
    assert cg._offset == 0
    with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but found 'cuda'"):
        R.rand((2,), g, None, CPU)

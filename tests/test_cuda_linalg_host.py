"""Host logic of the CUDA matrix products (src/ember/backends/cuda/linalg.py), without a GPU.

The CUDA kernels run here on CPU tensors with cuBLASLt and cuBLAS replaced by Python models of
their documented column-major semantics (layouts of rows x cols with a leading dim, transposes,
strided batches, host alpha/beta, the BIAS epilogue, alignment preferences), reading and writing
the tensors' host memory through the pointers the kernels pass. So the layout and transpose
decisions, the descriptors and layouts built for cuBLASLt, the plan cache, the bias/C-input
choice, the in-place paths and the einsum/tensordot lowering are checked against the CPU
kernels. What the models can't tell: that the real libraries accept these calls (that is
tests/test_cuda_linalg.py's job on the GPU).
"""
import ctypes
import enum

import ml_dtypes
import numpy as np
import pytest

import ember
from ember.backends.cuda import linalg as blas
from ember.dispatch import OPS

_NP = {0: np.dtype(np.float32), 1: np.dtype(np.float64), 2: np.dtype(np.float16), 14: np.dtype(ml_dtypes.bfloat16)}


def _mat(ptr, code, rows, cols, ld, batch=1, stride=0):
    """The batch x rows x cols column-major matrices at `ptr` as a writable NumPy view."""
    assert rows >= 0 and cols >= 0 and ld >= max(1, rows), (rows, cols, ld)
    dt = _NP[code]
    n = (batch - 1) * stride + (cols - 1) * ld + rows
    base = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_uint8)), shape=(n * dt.itemsize,))
    return np.lib.stride_tricks.as_strided(base.view(dt), (batch, rows, cols),
                                           (stride * dt.itemsize, dt.itemsize, ld * dt.itemsize), writeable=True)


def _gemm(ta, tb, m, n, k, alpha, A, B, beta, C, Dm, bias=None):
    a = A.astype(np.float64)
    b = B.astype(np.float64)
    a = a.transpose(0, 2, 1) if ta else a
    b = b.transpose(0, 2, 1) if tb else b
    assert a.shape[1:] == (m, k) and b.shape[1:] == (k, n) and Dm.shape[1:] == (m, n), (a.shape, b.shape, Dm.shape)
    r = alpha * (a @ b)
    if beta != 0:
        r = r + beta * C.astype(np.float64)
    if bias is not None:
        r = r + bias.astype(np.float64)[:, None]  # one value per row of D
    Dm[...] = r.astype(Dm.dtype)


def _scalar(ptr, double):
    return (ctypes.c_double if double else ctypes.c_float).from_address(ptr).value


class FakeCublas:
    """cublasGemmEx / cublasGemmStridedBatchedEx on host memory."""

    def __init__(self):
        self.calls = []

    def gemm_ex(self, h, ta, tb, m, n, k, alpha, A, atype, lda, B, btype, ldb, beta, C, ctype, ldc, compute, algo):
        self.gemm_strided_batched_ex(h, ta, tb, m, n, k, alpha, A, atype, lda, 0, B, btype, ldb, 0, beta, C, ctype,
                                     ldc, 0, 1, compute, algo)

    def gemm_strided_batched_ex(self, h, ta, tb, m, n, k, alpha, A, atype, lda, sa, B, btype, ldb, sb, beta, C, ctype,
                                ldc, sc, batch, compute, algo):
        assert atype == btype == ctype and compute in (68, 70, 77) and (compute == 70) == (ctype == 1)
        self.calls.append(dict(D=C, compute=compute, batch=batch))
        dbl = compute == 70
        A_ = _mat(A, atype, *((k, m) if ta else (m, k)), lda, batch, sa)
        B_ = _mat(B, btype, *((n, k) if tb else (k, n)), ldb, batch, sb)
        Cm = _mat(C, ctype, m, n, ldc, batch, sc)
        _gemm(ta, tb, m, n, k, _scalar(alpha, dbl), A_, B_, _scalar(beta, dbl), Cm, Cm)


class _DescAttr(enum.IntEnum):
    TRANSA = 3
    TRANSB = 4
    EPILOGUE = 7
    BIAS_POINTER = 8


class _LayoutAttr(enum.IntEnum):
    BATCH_COUNT = 5
    STRIDED_BATCH_OFFSET = 6


class _PrefAttr(enum.IntEnum):
    MAX_WORKSPACE_BYTES = 1
    REDUCTION_SCHEME_MASK = 3
    MIN_ALIGNMENT_A_BYTES = 5
    MIN_ALIGNMENT_B_BYTES = 6
    MIN_ALIGNMENT_C_BYTES = 7
    MIN_ALIGNMENT_D_BYTES = 8


class _Epilogue(enum.IntEnum):
    DEFAULT = 1
    BIAS = 4


class _Reduction(enum.IntEnum):
    COMPUTE_TYPE = 2


class FakeLtError(Exception):
    pass


class FakeCublasLt:
    """cuBLASLt (handles, descriptors, layouts, preferences, heuristic, matmul) on host memory.

    Attribute types follow cublasLt.h; the heuristic hands out a numbered algorithm and matmul
    checks it gets that algorithm back, the layouts it was planned with and pointers as aligned
    as the preferences promised. `refuse(desc, layouts)` makes the heuristic find nothing."""

    MatmulDescAttribute, MatrixLayoutAttribute, MatmulPreferenceAttribute = _DescAttr, _LayoutAttr, _PrefAttr
    Epilogue, ReductionScheme, cuBLASLtError = _Epilogue, _Reduction, FakeLtError
    matmul_heuristic_result_dtype = np.dtype([("algo", np.uint64, (8,)), ("workspace_size", np.uint64),
                                              ("state", np.int32), ("waves_count", np.float32),
                                              ("reserved", np.int32, (4,))])
    _DESC_T = {3: np.int32, 4: np.int32, 7: np.uint32, 8: np.intp}
    _LAYOUT_T = {5: np.int32, 6: np.int64}
    _PREF_T = {1: np.uint64, 3: np.uint32, 5: np.uint32, 6: np.uint32, 7: np.uint32, 8: np.uint32}

    def __init__(self, refuse=None):
        self.objs = {}
        self.next = 100
        self.heuristics = 0
        self.matmuls = []
        self.refuse = refuse or (lambda desc, layouts: False)

    def _new(self, **kw):
        self.next += 1
        self.objs[self.next] = kw
        return self.next

    def get_matmul_desc_attribute_dtype(self, attr):
        return np.dtype(self._DESC_T[int(attr)])

    def get_matrix_layout_attribute_dtype(self, attr):
        return np.dtype(self._LAYOUT_T[int(attr)])

    def get_matmul_preference_attribute_dtype(self, attr):
        return np.dtype(self._PREF_T[int(attr)])

    @staticmethod
    def _read(buf, size, dt):
        dt = np.dtype(dt)
        assert size == dt.itemsize, (size, dt)
        return np.frombuffer((ctypes.c_char * size).from_address(buf), dtype=dt)[0].item()

    def matmul_desc_create(self, compute, scale):
        assert (compute, scale) in ((68, 0), (77, 0), (70, 1)), (compute, scale)
        return self._new(kind="desc", compute=compute, scale=scale, attrs={3: 0, 4: 0, 7: 1})

    def matmul_desc_set_attribute(self, desc, attr, buf, size):
        assert self.objs[desc]["kind"] == "desc"
        self.objs[desc]["attrs"][int(attr)] = self._read(buf, size, self._DESC_T[int(attr)])

    def matrix_layout_create(self, code, rows, cols, ld):
        assert code in _NP and ld >= max(1, rows), (code, rows, cols, ld)
        return self._new(kind="layout", code=code, rows=rows, cols=cols, ld=ld, attrs={5: 1, 6: 0})

    def matrix_layout_set_attribute(self, lay, attr, buf, size):
        assert self.objs[lay]["kind"] == "layout"
        self.objs[lay]["attrs"][int(attr)] = self._read(buf, size, self._LAYOUT_T[int(attr)])

    def matmul_preference_create(self):
        return self._new(kind="pref", attrs={})

    def matmul_preference_set_attribute(self, pref, attr, buf, size):
        self.objs[pref]["attrs"][int(attr)] = self._read(buf, size, self._PREF_T[int(attr)])

    def _destroy(self, obj, kind):
        assert self.objs.pop(obj)["kind"] == kind

    def matmul_desc_destroy(self, desc):
        self._destroy(desc, "desc")

    def matrix_layout_destroy(self, lay):
        self._destroy(lay, "layout")

    def matmul_preference_destroy(self, pref):
        self._destroy(pref, "pref")

    def _shapes(self, desc, la, lb, lc, ld):
        d, A, B, C, Dl = (self.objs[x] for x in (desc, la, lb, lc, ld))
        assert C == Dl and A["code"] == B["code"] == Dl["code"]
        ta, tb = d["attrs"][3], d["attrs"][4]
        m, k = (A["cols"], A["rows"]) if ta else (A["rows"], A["cols"])
        k2, n = (B["cols"], B["rows"]) if tb else (B["rows"], B["cols"])
        assert k == k2 and (Dl["rows"], Dl["cols"]) == (m, n), (A, B, Dl, ta, tb)
        batch = Dl["attrs"][5]
        assert A["attrs"][5] == B["attrs"][5] == batch
        return d, A, B, Dl, ta, tb, m, n, k, batch

    def matmul_algo_get_heuristic(self, h, desc, la, lb, lc, ld, pref, requested, results, count):
        self._shapes(desc, la, lb, lc, ld)
        p = self.objs[pref]["attrs"]
        assert p[1] == blas.WORKSPACE_BYTES and requested == 1
        assert all(p[a] in (1, 2, 4, 8, 16, 32, 64, 128, 256) for a in (5, 6, 7, 8))
        if self.refuse(self.objs[desc], [self.objs[x] for x in (la, lb, ld)]):
            raise FakeLtError("CUBLAS_STATUS_NOT_SUPPORTED")
        self.heuristics += 1
        res = np.frombuffer((ctypes.c_char * self.matmul_heuristic_result_dtype.itemsize).from_address(results),
                            dtype=self.matmul_heuristic_result_dtype)
        res["algo"][0, 0] = 7000 + self.heuristics
        ctypes.c_int32.from_address(count).value = 1
        self.objs[desc]["planned"] = (7000 + self.heuristics, dict(p), (la, lb, ld))

    def matmul(self, h, desc, alpha, A, la, B, lb, beta, C, lc, Dp, ld, algo, ws, ws_size, stream):
        d, Al, Bl, Dl, ta, tb, m, n, k, batch = self._shapes(desc, la, lb, lc, ld)
        marker, pref, lays = d["planned"]
        assert ctypes.c_uint64.from_address(algo).value == marker and lays == (la, lb, ld)
        assert ws_size == blas.WORKSPACE_BYTES and C == Dp
        isz = _NP[Dl["code"]].itemsize
        for ptr, lay, a in ((A, Al, 5), (B, Bl, 6), (Dp, Dl, 8)):
            for i in range(batch):
                assert (ptr + i * lay["attrs"][6] * isz) % pref[a] == 0, "pointer less aligned than planned"
        dbl = d["scale"] == 1
        bias = None
        if d["attrs"][7] == _Epilogue.BIAS:
            bias = _mat(d["attrs"][8], Dl["code"], m, 1, m)[0, :, 0]
        self.matmuls.append(dict(D=Dp, bias=bias is not None, compute=d["compute"], batch=batch))
        A_ = _mat(A, Al["code"], Al["rows"], Al["cols"], Al["ld"], batch, Al["attrs"][6])
        B_ = _mat(B, Bl["code"], Bl["rows"], Bl["cols"], Bl["ld"], batch, Bl["attrs"][6])
        Dm = _mat(Dp, Dl["code"], Dl["rows"], Dl["cols"], Dl["ld"], batch, Dl["attrs"][6])
        _gemm(ta, tb, m, n, k, _scalar(alpha, dbl), A_, B_, _scalar(beta, dbl), Dm, Dm, bias)


@pytest.fixture
def libs(monkeypatch):
    lt, cb = FakeCublasLt(), FakeCublas()
    monkeypatch.setattr(blas, "_lt", lambda: lt)
    monkeypatch.setattr(blas, "_lt_context", lambda index: (1, 0, 0x10000))
    monkeypatch.setattr(blas, "_cublas_context", lambda index: (cb, 1))
    monkeypatch.setattr(blas, "_lt_plans", {})
    monkeypatch.setattr(blas, "use_cublaslt", True)
    return lt, cb


@pytest.fixture(params=["cublaslt", "cublas"])
def path(request, libs, monkeypatch):
    monkeypatch.setattr(blas, "use_cublaslt", request.param == "cublaslt")
    return request.param


def K(name):
    return OPS[name].kernels["cuda"]


def rand(shape, dtype=ember.float32, seed=0, layout="contiguous"):
    """A CPU tensor of `shape`: contiguous, 'transposed' (last two dims swapped in memory),
    'sliced' (a window of a wider buffer: leading dim > cols, element 0 not at the buffer's start)
    or 'strided' (every other element along the last dim: neither row- nor column-major)."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    if layout == "transposed":
        return ember.tensor(rng.uniform(-1, 1, shape[:-2] + shape[-2:][::-1]), dtype=dtype).mT
    if layout == "sliced":
        big = ember.tensor(rng.uniform(-1, 1, shape[:-1] + (shape[-1] + 3,)), dtype=dtype)
        return big[..., 1:shape[-1] + 1]
    if layout == "strided":
        return ember.tensor(rng.uniform(-1, 1, shape[:-1] + (2 * shape[-1],)), dtype=dtype)[..., ::2]
    return ember.tensor(rng.uniform(-1, 1, shape), dtype=dtype)


TOL = {ember.float32: 1e-5, ember.float64: 1e-12, ember.float16: 2e-3, ember.bfloat16: 2e-2}


def same(got, exp):
    assert got.dtype is exp.dtype and tuple(got.shape) == tuple(exp.shape), (got.dtype, got.shape, exp.shape)
    assert got.is_contiguous()
    tol = TOL.get(exp.dtype, 0)
    np.testing.assert_allclose(got.double().numpy(), exp.double().numpy(), rtol=tol, atol=tol)


# ---- layouts ------------------------------------------------------------------------------------------

LAYOUTS = ["contiguous", "transposed", "sliced", "strided"]


@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", LAYOUTS)
def test_mm_every_layout(path, libs, la, lb):
    a, b = rand((5, 7), layout=la), rand((7, 4), seed=1, layout=lb)
    same(K("mm")(a, b), ember.mm(a, b))
    lt, cb = libs
    assert len(lt.matmuls if path == "cublaslt" else cb.calls) == 1


def test_plan_passes_row_and_column_major_operands_as_they_are():
    a, b = rand((5, 7)), rand((7, 4), layout="transposed")
    out = ember.empty(5, 4)
    g, a2, b2 = blas.plan_gemm(out, a, b)
    assert a2 is a and b2 is b  # no copies
    # column-major D^T (4 x 5) = op(A) op(B): A is b stored transposed (ld = its column stride 7), B is a
    assert g == blas.Gemm(ta=True, tb=False, m=4, n=5, k=7, lda=7, ldb=7, ldc=4, batch=1, sa=0, sb=0, sc=0)
    s = rand((5, 7), layout="sliced")
    g, s2, _ = blas.plan_gemm(out, s, b)
    assert s2 is s and g.ldb == 10 and not g.tb
    x = rand((5, 7), layout="strided")
    _, x2, _ = blas.plan_gemm(out, x, b)
    assert x2 is not x and x2.is_contiguous()


def test_plan_of_vectors_and_degenerate_dims():
    v = ember.arange(12.0)[::3]                    # a strided vector as a row and as a column
    out = ember.empty(1, 1)
    g, _, _ = blas.plan_gemm(out, v.unsqueeze(0), v.unsqueeze(-1))
    assert (g.m, g.n, g.k) == (1, 1, 4) and g.lda == 3 and g.ldb == 3
    a = ember.empty(1, 6).expand(3, 6)             # stride 0 rows: neither layout -> a copy
    _, a2, _ = blas.plan_gemm(ember.empty(3, 2), a, ember.empty(6, 2))
    assert a2.is_contiguous()


def test_writable():
    assert blas._writable(ember.empty(3, 4)) and blas._writable(ember.empty(8, 6)[:, 1:5])
    assert not blas._writable(ember.empty(4, 3).t()) and blas._writable(ember.empty(4, 3).t().mT)
    assert not blas._writable(ember.empty(3, 8)[:, ::2])
    assert blas._writable(ember.empty(2, 3, 4)) and not blas._writable(ember.empty(1, 3, 4).expand(2, 3, 4))


def test_alignment():
    assert blas._alignment(0) == 256 and blas._alignment(4096) == 256 and blas._alignment(4096 + 2) == 2
    assert blas._alignment(4096, 6) == 2 and blas._alignment(4096 + 16, 32) == 16


# ---- products ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [ember.float32, ember.float64, ember.float16, ember.bfloat16])
def test_dtypes_and_compute_types(path, libs, dtype):
    a, b = rand((6, 5), dtype), rand((5, 3), dtype, seed=1, layout="transposed")
    same(K("mm")(a, b), ember.mm(a, b))
    lt, cb = libs
    call = (lt.matmuls if path == "cublaslt" else cb.calls)[-1]
    assert call["compute"] == (70 if dtype is ember.float64 else 68)


def test_tf32_flag_and_plan_cache(libs, monkeypatch):
    lt, _ = libs
    a, b = rand((6, 5)), rand((5, 3), seed=1)
    K("mm")(a, b)
    K("mm")(a, b)   # same shapes, strides and alignments: the cached plan
    assert lt.heuristics == 1 and len(blas._lt_plans) == 1
    ember.backends.cuda.matmul.allow_tf32 = True
    try:
        assert blas.allow_tf32
        same(K("mm")(a, b), ember.mm(a, b))
        h = K("mm")(rand((6, 5), ember.float16), rand((5, 3), ember.float16))
        assert h.dtype is ember.float16
    finally:
        ember.backends.cuda.matmul.allow_tf32 = False
    assert [m["compute"] for m in lt.matmuls] == [68, 68, 77, 68] and lt.heuristics == 3
    K("mm")(rand((7, 6))[1:, 1:], b)   # an operand aligned to 4 bytes only: planned anew
    assert lt.heuristics == 4


def test_plan_cache_is_bounded(libs, monkeypatch):
    lt, _ = libs
    monkeypatch.setattr(blas, "_LT_PLANS_MAX", 3)
    for n in range(2, 9):
        K("mm")(rand((n, 3)), rand((3, 2)))
    assert len(blas._lt_plans) <= 3
    live = {v["kind"] for v in lt.objs.values()}
    assert len([v for v in lt.objs.values() if v["kind"] == "desc"]) == len(blas._lt_plans) and "pref" not in live


@pytest.mark.parametrize("la", ["contiguous", "transposed", "sliced"])
def test_bmm_and_broadcast_matmul(path, libs, la):
    a, b = rand((4, 5, 3), layout=la), rand((4, 3, 6), seed=1, layout="transposed")
    same(K("bmm")(a, b), ember.bmm(a, b))
    c, d = rand((3, 1, 5, 7), seed=2), rand((2, 7, 4), seed=3, layout=la)
    same(K("matmul")(c, d), ember.matmul(c, d))
    e = rand((5, 3), seed=4)
    same(K("matmul")(e, b), ember.matmul(e, b))        # a broadcast left operand: batch offset 0
    same(K("matmul")(a, rand((3, 2), seed=5)), ember.matmul(a, rand((3, 2), seed=5)))
    one = rand((1, 5, 3), seed=6).expand(4, 5, 3)
    same(K("bmm")(one, b), ember.bmm(one, b))
    z, y = rand((0, 3, 0)), rand((2, 1, 0, 4), seed=7)               # empty batch and inner dims
    same(K("matmul")(z, y), ember.matmul(z, y))


def test_matmul_vector_cases(path, libs):
    v, m = rand((7,)), rand((7, 4), seed=1)
    w = ember.arange(14.0)[::2]
    for x, y in ((v, m), (m.t(), v), (v, w), (w, v), (rand((2, 3, 7)), v), (v, rand((2, 7, 3)))):
        same(K("matmul")(x, y), ember.matmul(x, y))


def test_odd_batch_strides_and_misaligned_pointers(path, libs):
    base = rand((3, 5, 8), ember.float16)
    a = base[:, :, 1:6]                                 # element 0 at 2 bytes into the buffer
    b = rand((3, 5, 4), ember.float16, seed=1, layout="transposed")
    same(K("bmm")(a, b), ember.bmm(a, b))
    odd = rand((15, 5), seed=2).as_strided((3, 5, 5), (5, 5, 1), 0)   # overlapping matrices, batch stride 5
    same(K("bmm")(odd, rand((3, 5, 2), seed=3)), ember.bmm(odd, rand((3, 5, 2), seed=3)))


def test_empty_and_zero_inner_dim(path, libs):
    same(K("mm")(ember.ones(3, 0), ember.ones(0, 4)), ember.zeros(3, 4))
    assert K("mm")(ember.ones(0, 3), ember.ones(3, 4)).shape == (0, 4)
    same(K("bmm")(ember.ones(2, 3, 0), ember.ones(2, 0, 1)), ember.zeros(2, 3, 1))
    same(K("dot")(ember.ones(0), ember.ones(0)), ember.tensor(0.0))
    same(K("addmm")(ember.ones(4), ember.ones(3, 0), ember.ones(0, 4), beta=2.0), ember.full((3, 4), 2.0))
    same(K("addmm")(ember.ones(4), ember.ones(3, 0), ember.ones(0, 4)), ember.ones(3, 4))
    same(K("mv")(ember.ones(0, 3), ember.ones(3)), ember.zeros(0))


# ---- linear and the bias epilogue ----------------------------------------------------------------

def test_linear_fuses_a_1d_bias(libs):
    lt, cb = libs
    x, w, bias = rand((2, 5, 6)), rand((4, 6), seed=1), rand((4,), seed=2)
    same(K("linear")(x, w, bias), ember.linear(x, w, bias))
    assert [m["bias"] for m in lt.matmuls] == [True] and not cb.calls
    F = ember.nn.functional
    same(K("linear")(x, w, None), F.linear(x, w))
    assert [m["bias"] for m in lt.matmuls] == [True, False]


@pytest.mark.parametrize("case", ["beta", "broadcast", "strided", "misaligned", "one_row", "one_inner"])
def test_bias_that_is_not_fused_goes_through_c(libs, case):
    lt, _ = libs
    m1, m2, bias, kw = rand((5, 6)), rand((6, 4), seed=1), rand((4,), seed=2), {}
    if case == "beta":
        kw = dict(beta=0.5, alpha=2.0)
    elif case == "broadcast":
        bias = rand((1,), seed=2)
    elif case == "strided":
        bias = rand((8,), seed=2)[::2]
    elif case == "misaligned":
        bias = rand((5,), seed=2)[1:]
    elif case == "one_row":
        m1 = rand((1, 6))
    else:
        m1, m2 = rand((5, 1)), rand((1, 4), seed=1)
    same(K("addmm")(bias, m1, m2, **kw), ember.addmm(bias, m1, m2, **kw))
    assert [m["bias"] for m in lt.matmuls] == [False]


def test_fused_and_unfused_bias_agree(libs, monkeypatch):
    x, w, bias = rand((7, 6)), rand((5, 6), seed=1), rand((5,), seed=2)
    fused = K("linear")(x, w, bias)
    monkeypatch.setattr(blas, "use_cublaslt", False)
    same(K("linear")(x, w, bias), fused)
    same(fused, ember.linear(x, w, bias))


def test_linear_shapes(path, libs):
    x = rand((3, 6), layout="transposed")
    for w, bias in ((rand((4, 6), seed=1), rand((3, 4), seed=2)),    # a bias over the batch too
                    (rand((6,), seed=1), None),                      # a 1-D weight
                    (rand((4, 6), seed=1, layout="transposed"), rand((1, 4), seed=2))):
        same(K("linear")(x, w, bias), ember.linear(x, w, bias))
    v = rand((6,))
    same(K("linear")(v, rand((4, 6), seed=1), rand((4,))), ember.linear(v, rand((4, 6), seed=1), rand((4,))))
    same(K("linear")(v, rand((6,), seed=1), rand(())), ember.linear(v, rand((6,), seed=1), rand(())))
    x3 = rand((2, 5, 6))
    same(K("linear")(x3, v), ember.linear(x3, v))
    with pytest.raises(RuntimeError, match="mat2 must be a matrix, got 1-D tensor"):   # as torch
        ember.linear(x3, v, rand((5,)))


# ---- addmm family -----------------------------------------------------------------------------

@pytest.mark.parametrize("self_shape", [(5, 4), (1, 4), (5, 1), (4,), ()])
@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, 2.0), (0, 1.5)])
def test_addmm(path, libs, self_shape, beta, alpha):
    s, m1, m2 = rand(self_shape, seed=3), rand((5, 6), layout="transposed"), rand((6, 4), seed=1)
    same(K("addmm")(s, m1, m2, beta=beta, alpha=alpha), ember.addmm(s, m1, m2, beta=beta, alpha=alpha))


def test_addmm_beta_zero_ignores_nan(path, libs):
    s = ember.full((3, 2), float("nan"))
    r = K("addmm")(s, rand((3, 4)), rand((4, 2)), beta=0)
    assert not np.isnan(r.numpy()).any()


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "strided"])
def test_addmm_inplace(path, libs, layout):
    lt, cb = libs
    m1, m2 = rand((5, 6), seed=1), rand((6, 4), seed=2)
    s = rand((5, 4), layout=layout)
    exp = ember.addmm(s, m1, m2, beta=0.5, alpha=2.0)
    r = K("addmm_")(s, m1, m2, beta=0.5, alpha=2.0)
    assert r is s
    np.testing.assert_allclose(s.numpy(), exp.numpy(), rtol=1e-5, atol=1e-5)
    d = (lt.matmuls if path == "cublaslt" else cb.calls)[-1]["D"]
    assert (d == s.data_ptr()) == (layout != "strided")   # written straight into self unless strided


def test_inplace_with_self_among_the_operands(path, libs):
    s = rand((4, 4))
    exp = ember.addmm(s, s, s)
    K("addmm_")(s, s, s)
    np.testing.assert_allclose(s.numpy(), exp.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("self_shape", [(3, 5, 4), (5, 4), (4,), (3, 1, 1)])
def test_baddbmm(path, libs, self_shape):
    s, b1, b2 = rand(self_shape), rand((3, 5, 6), seed=1, layout="transposed"), rand((3, 6, 4), seed=2)
    same(K("baddbmm")(s, b1, b2, beta=0.5, alpha=-1.0), ember.baddbmm(s, b1, b2, beta=0.5, alpha=-1.0))
    same(K("baddbmm")(s, b1, b2), ember.baddbmm(s, b1, b2))


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_baddbmm_inplace(path, libs, layout):
    s, b1, b2 = rand((3, 5, 4), layout=layout), rand((3, 5, 6), seed=1), rand((3, 6, 4), seed=2)
    exp = ember.baddbmm(s, b1, b2, beta=2.0)
    assert K("baddbmm_")(s, b1, b2, beta=2.0) is s
    np.testing.assert_allclose(s.numpy(), exp.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("self_shape", [(5, 4), (4,), ()])
def test_addbmm(path, libs, self_shape):
    s, b1, b2 = rand(self_shape), rand((3, 5, 6), seed=1), rand((3, 6, 4), seed=2, layout="transposed")
    same(K("addbmm")(s, b1, b2, beta=0.5, alpha=2.0), ember.addbmm(s, b1, b2, beta=0.5, alpha=2.0))
    t = rand((5, 4))
    exp = ember.addbmm(t, b1, b2)
    K("addbmm_")(t, b1, b2)
    np.testing.assert_allclose(t.numpy(), exp.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_addmv_mv_dot_vdot_outer(path, libs, layout):
    m, v, s = rand((5, 6), layout=layout), rand((12,), seed=1)[::2], rand((5,), seed=2)
    same(K("mv")(m, v), ember.mv(m, v))
    same(K("addmv")(s, m, v, beta=0.5, alpha=2.0), ember.addmv(s, m, v, beta=0.5, alpha=2.0))
    same(K("addmv")(rand(()), m, v), ember.addmv(rand(()), m, v))
    t = rand((10,), seed=3)[::2]
    exp = ember.addmv(t, m, v, beta=-1.0)
    assert K("addmv_")(t, m, v, beta=-1.0) is t
    np.testing.assert_allclose(t.numpy(), exp.numpy(), rtol=1e-5, atol=1e-5)
    u = rand((6,), seed=4)
    same(K("dot")(u, v), ember.dot(u, v))
    same(K("vdot")(v, u), ember.vdot(v, u))
    h = rand((6,), ember.bfloat16, seed=5)
    same(K("dot")(h, h), ember.dot(h, h))
    same(K("outer")(s, u), ember.outer(s, u))
    i = ember.arange(4)
    same(K("outer")(i, u), ember.outer(i, u))          # promotes like the CPU kernel
    same(K("outer")(i, i), ember.outer(i, i))


# ---- einsum and tensordot -----------------------------------------------------------------------

EQS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,bkj->bik", [(2, 3, 4), (2, 5, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(5,), (5,)]),
    ("i,i->i", [(5,), (5,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,kj,j->ik", [(2, 3), (4, 3), (3,)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("abc,cd,ae->bde", [(2, 3, 4), (4, 5), (2, 6)]),
    ("i,j,k->ijk", [(2,), (3,), (4,)]),
    (",->", [(), ()]),
    ("i,->i", [(3,), ()]),
    ("ij,ij->", [(1, 4), (3, 4)]),            # a size-1 label broadcasts
    ("ij,jk->ik", [(3, 1), (4, 5)]),          # a contracted label of size 1 on one side
    ("ij,jk->ik", [(3, 0), (0, 5)]),
    ("ab,ab->ba", [(3, 2), (3, 2)]),
]


@pytest.mark.parametrize("eq,shapes", EQS, ids=[e for e, _ in EQS])
def test_einsum_matches_cpu(path, libs, eq, shapes):
    ops = [rand(s, seed=i, layout="transposed" if len(s) >= 2 and i == 0 else "contiguous")
           for i, s in enumerate(shapes)]
    same(K("einsum")(eq, ops), ember.einsum(eq, ops))


@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(3, 4), (4, 5)]), ("ij->j", [(3, 4)]),
                                       ("i,j->ij", [(3,), (4,)]), ("bij,bjk->bik", [(2, 3, 4), (1, 4, 5)]),
                                       ("ii->", [(3, 3)])])
@pytest.mark.parametrize("dtype", [ember.int32, ember.int64, ember.uint8, ember.bool])
def test_einsum_integers_and_bool(libs, eq, shapes, dtype):
    ops = [ember.tensor(np.random.default_rng(i).integers(0, 4, s), dtype=dtype) for i, s in enumerate(shapes)]
    if dtype is ember.bool and len(ops) > 1 and eq != "i,j->ij":
        with pytest.raises(NotImplementedError, match="Bool"):
            K("einsum")(eq, ops)
        return
    exp = ember.einsum(eq, ops)
    got = K("einsum")(eq, ops)
    assert got.dtype is exp.dtype and got.tolist() == exp.tolist()
    assert not libs[0].matmuls and not libs[1].calls


def test_einsum_mixed_dtypes_and_fresh_results(libs):
    a, b = rand((3, 4)), rand((4, 2), ember.float64, seed=1)
    same(K("einsum")("ij,jk->ijk", [a, b]), ember.einsum("ij,jk->ijk", [a, b]))  # no contraction: promotes
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        K("einsum")("ij,jk->ik", [a, b])   # a contraction needs one dtype, as in PyTorch
    c = rand((3, 4))
    r = K("einsum")("ij->ij", [c])
    assert r is not c and r._storage is not c._storage
    same(r, c)
    h = rand((3, 4), ember.float16)
    same(K("einsum")("ij,kj->ik", [h, h]), ember.einsum("ij,kj->ik", [h, h]))


TD = [((3, 4, 5), (4, 5, 6), 2), ((3, 4), (4, 5), 1), ((2, 3), (4,), 0), ((3, 4, 5), (5, 3, 2), ([0, 2], [1, 0])),
      ((3, 1), (4, 2), ([1], [0])), ((3, 4), (1, 2), ([1], [0])), ((2, 3), (3, 2), ([0, 1], [1, 0]))]


@pytest.mark.parametrize("sa,sb,dims", TD)
def test_tensordot_matches_cpu(path, libs, sa, sb, dims):
    a, b = rand(sa, layout="transposed" if len(sa) > 1 else "contiguous"), rand(sb, seed=1)
    same(K("tensordot")(a, b, dims), ember.tensordot(a, b, dims))
    ia, ib = ember.arange(int(np.prod(sa))).reshape(*sa), ember.arange(int(np.prod(sb))).reshape(*sb)
    assert K("tensordot")(ia, ib, dims).tolist() == ember.tensordot(ia, ib, dims).tolist()


# ---- errors: the metas' (the kernels check nothing the meta checks) ------------------------------

E = ember.ones
ERRORS = [
    ("mm", (E(2, 3), E(4, 5))), ("mm", (E(2, 3, 1), E(3, 5))), ("mm", (E(2, 3), E(3, 5, dtype=ember.float64))),
    ("bmm", (E(2, 3, 4), E(3, 4, 5))), ("bmm", (E(2, 3, 4), E(2, 3, 5))), ("bmm", (E(3, 4), E(2, 4, 5))),
    ("matmul", (E(2, 3), E(4, 5))), ("matmul", (E(()), E(3))), ("matmul", (E(3), E(4))),
    ("matmul", (E(2, 2, 3), E(3, 3, 4))), ("matmul", (E(3, 4), E(3))),
    ("matmul", (E(2, 3), E(3, 2, dtype=ember.float16))),
    ("mv", (E(3, 4), E(5))), ("mv", (E(3), E(3))), ("mv", (E(3, 4), E(4, dtype=ember.float64))),
    ("dot", (E(3), E(4))), ("dot", (E(3, 1), E(3))), ("vdot", (E(3), E(3, dtype=ember.float64))),
    ("outer", (E(3, 1), E(3))),
    ("addmm", (E(2, 2), E(3, 4), E(4, 5))), ("addmm", (E(3), E(3, 4), E(4, 5))),
    ("addmm", (E(5), E(3, 4), E(4, 5, dtype=ember.float64))), ("addmm_", (E(5), E(3, 4), E(4, 5))),
    ("addmm_", (E(2, 5), E(3, 4), E(4, 5))),
    ("baddbmm", (E(2, 2, 4), E(2, 3, 4), E(2, 4, 4))), ("baddbmm", (E(4), E(2, 3, 4), E(3, 4, 4))),
    ("baddbmm_", (E(4), E(2, 3, 4), E(2, 4, 4))),
    ("addbmm", (E(3, 3), E(2, 3, 4), E(2, 4, 4))), ("addbmm_", (E(4), E(2, 3, 4), E(2, 4, 4))),
    ("addmv", (E(4), E(3, 4), E(4))), ("addmv", (E(3), E(3, 4), E(5))), ("addmv_", (E(1), E(3, 4), E(4))),
    ("linear", (E(3, 4), E(5, 3))), ("linear", (E(3, 4), E(2, 5, 4))), ("linear", (E(()), E(3, 4))),
    ("linear", (E(3, 4), E(5, 4), E(3))), ("linear", (E(3, 4), E(5, 4, dtype=ember.float16))),
    ("tensordot", (E(3, 4), E(4, 5), 3)), ("tensordot", (E(3, 4), E(4, 5), -1)),
    ("tensordot", (E(3, 4), E(4, 5), ([1], [1]))), ("tensordot", (E(3, 4), E(4, 5), ([0, 1], [0]))),
    ("tensordot", (E(3, 4), E(4, 5), ([1, 1], [0, 0]))), ("tensordot", (E(3, 4), E(4, 5, dtype=ember.float64), 1)),
    ("tensordot", (E(3, 4), E(4, 5), "x")),
    ("einsum", ("ij,jk->ik", [E(3, 4), E(5, 6)])), ("einsum", ("ij->k", [E(3, 4)])), ("einsum", ("ij", [E(3)])),
    ("einsum", ("ij,jk", [E(3, 4)])), ("einsum", ("i,i", [E(3), E(3), E(3)])), ("einsum", ("i.j", [E(3, 4)])),
    ("einsum", ("ii", [E(3, 4)])), ("einsum", ("...i,...i", [E(2, 3), E(4, 3)])), ("einsum", ("i#", [E(3, 4)])),
    ("einsum", ("ij", E(3, 4))), ("einsum", ("ij->ii", [E(3, 4)])),
]


@pytest.mark.parametrize("name,args", ERRORS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ERRORS)])
def test_bad_arguments_are_refused_by_the_meta(name, args):
    """The entry point runs the op's meta before the kernel of any device, so both backends refuse
    these with the meta's error, and neither kernel checks them again."""
    with pytest.raises(Exception) as meta:
        OPS[name].meta(*args)
    entry = getattr(OPS[name].fn, "_dispatch", OPS[name].fn)    # past einsum's/tensordot's front ends
    with pytest.raises(type(meta.value)) as called:
        entry(*args)
    assert str(called.value) == str(meta.value)


@pytest.mark.parametrize("name,args", [("mm", (E(2, 3, dtype=ember.int64), E(3, 2, dtype=ember.int64))),
                                       ("addmm", (E(2, dtype=ember.int32),) + (E(2, 2, dtype=ember.int32),) * 2),
                                       ("dot", (E(3, dtype=ember.int64), E(3, dtype=ember.int64))),
                                       ("linear", (E(2, 3, dtype=ember.int64), E(4, 3, dtype=ember.int64)))])
def test_integer_matrix_products_are_not_implemented(libs, name, args):
    with pytest.raises(NotImplementedError, match="supports float32, float64, float16 and bfloat16"):
        K(name)(*args)


def test_bool_products_are_refused(libs):
    b = E(2, 2, dtype=ember.bool)
    with pytest.raises(NotImplementedError, match="not implemented for 'Bool' tensors"):
        OPS["mm"].meta(b, b)
    with pytest.raises(NotImplementedError, match="supports float32, float64, float16 and bfloat16"):
        K("mm")(b, b)   # the CUDA kernel alone refuses it too (no integer or bool products on CUDA)


# ---- the cuBLAS fallback ------------------------------------------------------------------------

def test_products_cublaslt_cannot_plan_run_on_cublas(libs, monkeypatch):
    lt, cb = libs
    lt.refuse = lambda desc, layouts: desc["attrs"][7] == _Epilogue.BIAS or layouts[2]["attrs"][5] > 1
    x, w, bias = rand((5, 6)), rand((4, 6), seed=1), rand((4,), seed=2)
    same(K("linear")(x, w, bias), ember.linear(x, w, bias))           # no BIAS epilogue: bias through C
    a, b = rand((3, 5, 6)), rand((3, 6, 2), seed=1)
    same(K("bmm")(a, b), ember.bmm(a, b))                               # no batched plan
    same(K("mm")(a[0], b[0]), ember.mm(a[0], b[0]))                     # this one runs on cuBLASLt
    assert len(cb.calls) == 2 and len(lt.matmuls) == 1
    assert sorted(v is None for v in blas._lt_plans.values()) == [False, True, True]
    assert [v["kind"] for v in lt.objs.values()].count("desc") == 1     # refused plans were destroyed
    K("bmm")(a, b)
    assert len(cb.calls) == 3 and lt.heuristics == 1                    # the refusal is cached


def test_cublaslt_can_be_switched_off(libs, monkeypatch):
    lt, cb = libs
    monkeypatch.setattr(blas, "use_cublaslt", False)
    x, w, bias = rand((5, 6)), rand((4, 6), seed=1), rand((4,), seed=2)
    same(K("linear")(x, w, bias), ember.linear(x, w, bias))
    assert not lt.matmuls and len(cb.calls) == 1 and not blas._lt_plans


def test_env_var_switches_cublaslt_off():
    import subprocess
    import sys
    code = "import ember; from ember.backends.cuda import linalg as blas; print(blas.use_cublaslt)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "EMBER_CUBLASLT": "0"}, check=True).stdout
    assert out.strip() == "False"


def test_linear_backward_matrix_views():
    """`_matrix` (the (rows, features) view linear_backward hands to the GEMMs) on host tensors: a view
    of a contiguous input, a view of a contiguous copy of a transposed one, an empty one."""
    x = ember.arange(24.0).reshape(2, 3, 4)
    m = blas._matrix(x, 4)
    assert m.shape == (6, 4) and m._stride == (4, 1) and m._storage is x._storage
    np.testing.assert_array_equal(m.numpy(), x.numpy().reshape(6, 4))
    t = ember.arange(12.0).reshape(4, 3).t()          # (3, 4), not contiguous
    mt = blas._matrix(t, 4)
    assert mt.shape == (3, 4) and mt._storage is not t._storage
    np.testing.assert_array_equal(mt.numpy(), t.numpy())
    assert blas._matrix(ember.zeros(0, 4), 4).shape == (0, 4)

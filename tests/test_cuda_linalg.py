"""Matrix products on CUDA against torch CUDA (`pytest -m cuda`), through cuBLASLt and through the
plain cuBLAS fallback (the `path` fixture runs each test on both)."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]
torch = pytest.importorskip("torch")
if ember.cuda.is_available():  # elsewhere the cuda marker deselects this module's tests
    pytest.importorskip("nvmath")
from helpers import DTYPES, E2T  # noqa: E402

from ember.backends.cuda import linalg as blas  # noqa: E402

TOL = {"float32": 2e-4, "float64": 1e-10, "float16": 2e-2, "bfloat16": 5e-2}
LOWP = ("float32", "float16", "bfloat16")


@pytest.fixture(params=["cublaslt", "cublas"])
def path(request, monkeypatch):
    monkeypatch.setattr(blas, "use_cublaslt", request.param == "cublaslt")
    return request.param


def pair(shape, dtype="float32", seed=0, layout="contiguous"):
    """The same data as ember and torch CUDA tensors: contiguous, 'transposed' (last two dims
    swapped in memory), 'sliced' (a window of a wider buffer: element 0 is one element into it,
    so the pointer is only element-aligned) or 'expanded' (dim 0 broadcast from size 1)."""
    shape = tuple(shape)
    if layout == "transposed":
        base = shape[:-2] + shape[-2:][::-1]
    elif layout == "sliced":
        base = shape[:-1] + (shape[-1] + 3,)
    elif layout == "expanded":
        base = (1,) + shape[1:]
    else:
        base = shape
    a = np.random.default_rng(seed).uniform(-1, 1, size=base)
    e_dt, t_dt = DTYPES[dtype]
    e, t = ember.tensor(a, dtype=e_dt).cuda(), torch.tensor(a).to(t_dt).cuda()
    if layout == "transposed":
        e, t = e.transpose(-1, -2), t.transpose(-1, -2)
    elif layout == "sliced":
        e, t = e[..., 1:shape[-1] + 1], t[..., 1:shape[-1] + 1]
    elif layout == "expanded":
        e, t = e.expand(*shape), t.expand(*shape)
    return e, t


def check(e, t, dtype="float32", tol=None):
    assert e.device.type == "cuda" and tuple(e.shape) == tuple(t.shape) and E2T[e.dtype] == t.dtype
    assert e.is_contiguous()
    tol = TOL[dtype] if tol is None else tol
    np.testing.assert_allclose(e.cpu().double().numpy(), t.detach().cpu().double().numpy(), rtol=tol, atol=tol)


# ---- mm, bmm, matmul ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("la", ["contiguous", "transposed", "sliced"])
@pytest.mark.parametrize("lb", ["contiguous", "transposed", "sliced"])
def test_mm_layouts(path, dtype, la, lb):
    a, tA = pair((37, 29), dtype, layout=la)
    b, tB = pair((29, 41), dtype, seed=1, layout=lb)
    check(ember.mm(a, b), torch.mm(tA, tB), dtype)
    check(a @ b, tA @ tB, dtype)


def test_mm_strided_operand_is_copied(path):
    a, tA = pair((12, 20))
    check(ember.mm(a[:, ::2], a[:10, 1::2]), torch.mm(tA[:, ::2], tA[:10, 1::2]))


@pytest.mark.parametrize("dtype", LOWP + ("float64",))
def test_bmm_and_batched_matmul(path, dtype):
    a, tA = pair((4, 17, 9), dtype)
    b, tB = pair((4, 9, 13), dtype, seed=1, layout="transposed")
    check(ember.bmm(a, b), torch.bmm(tA, tB), dtype)
    s, tS = pair((4, 17, 9), dtype, seed=4, layout="sliced")     # misaligned base, batch stride 17 * 12
    check(ember.bmm(s, b), torch.bmm(tS, tB), dtype)
    x, tX = pair((4, 17, 9), dtype, seed=5, layout="expanded")   # batch stride 0
    check(ember.bmm(x, b), torch.bmm(tX, tB), dtype)
    c, tC = pair((3, 1, 5, 9), dtype, seed=2)
    d, tD = pair((7, 9, 6), dtype, seed=3)
    check(c @ d, tC @ tD, dtype)                       # broadcast batch dims
    check(a @ d[0], tA @ tD[0], dtype)                 # (b, m, k) @ (k, n): folded into one GEMM
    check(d[0].t() @ a.mT, tD[0].t() @ tA.mT, dtype)   # (m, k) @ (b, k, n)


@pytest.mark.parametrize("dtype", LOWP)
def test_vector_cases(path, dtype):
    v, tv = pair((9,), dtype)
    m, tm = pair((9, 4), dtype, seed=1)
    check(v @ m, tv @ tm, dtype)
    check(m.t() @ v, tm.t() @ tv, dtype)
    check(v @ v, tv @ tv, dtype)
    w, tw = pair((18,), dtype, seed=2)
    check(w[::2] @ m, tw[::2] @ tm, dtype)             # a strided vector
    x, tx = pair((2, 3, 9), dtype, seed=3)
    check(x @ v, tx @ tv, dtype)


def test_empty_and_zero_inner_dim(path):
    z = ember.ones(3, 0, device="cuda") @ ember.ones(0, 4, device="cuda")
    assert z.cpu().tolist() == [[0.0] * 4] * 3
    assert tuple((ember.ones(0, 3, device="cuda") @ ember.ones(3, 4, device="cuda")).shape) == (0, 4)
    assert ember.dot(ember.ones(0, device="cuda"), ember.ones(0, device="cuda")).item() == 0.0
    r = ember.addmm(ember.ones(4, device="cuda"), ember.ones(3, 0, device="cuda"), ember.ones(0, 4, device="cuda"),
                    beta=2.0)
    assert r.cpu().tolist() == [[2.0] * 4] * 3
    assert tuple(ember.bmm(ember.ones(2, 3, 0, device="cuda"), ember.ones(2, 0, 5, device="cuda")).shape) == (2, 3, 5)


# ---- linear and the bias epilogue ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", LOWP)
def test_linear(path, dtype):
    F = torch.nn.functional
    x, tx = pair((2, 5, 9), dtype)
    w, tw = pair((12, 9), dtype, seed=1)
    bias, tbias = pair((12,), dtype, seed=2)
    check(ember.linear(x, w, bias), F.linear(tx, tw, tbias), dtype)
    check(ember.linear(x, w), F.linear(tx, tw), dtype)
    b2, tb2 = pair((5, 12), dtype, seed=3)
    check(ember.linear(x, w, b2), F.linear(tx, tw, tb2), dtype)          # a bias over a batch dim
    v, tv = pair((9,), dtype, seed=4)
    check(ember.linear(v, w, bias), F.linear(tv, tw, tbias), dtype)
    check(ember.linear(x, v), F.linear(tx, tv), dtype)                  # a 1-D weight
    xt, txt = pair((7, 9), dtype, seed=5, layout="transposed")
    check(ember.linear(xt, w, bias), F.linear(txt, tw, tbias), dtype)


@pytest.mark.parametrize("dtype", LOWP + ("float64",))
def test_bias_epilogue_matches_unfused_and_torch(monkeypatch, dtype):
    monkeypatch.setattr(blas, "_lt_plans", {})
    x, tx = pair((33, 40), dtype)
    w, tw = pair((24, 40), dtype, seed=1)
    bias, tbias = pair((24,), dtype, seed=2)
    monkeypatch.setattr(blas, "use_cublaslt", True)
    fused = ember.linear(x, w, bias)
    fused_mm = ember.addmm(bias, x, w.t(), alpha=0.5)
    epilogue = [v for k, v in blas._lt_plans.items() if k[-1] is not None]   # keys end with the bias alignment
    assert epilogue
    if dtype != "float64":  # cuBLASLt may have no float64 BIAS kernel (the fallback then covers it)
        assert None not in epilogue, "cuBLASLt found no algorithm with the BIAS epilogue"
    monkeypatch.setattr(blas, "use_cublaslt", False)
    plain = ember.linear(x, w, bias)
    check(fused, torch.nn.functional.linear(tx, tw, tbias), dtype)
    check(fused_mm, torch.addmm(tbias, tx, tw.t(), alpha=0.5), dtype)
    np.testing.assert_allclose(fused.cpu().double().numpy(), plain.cpu().double().numpy(),
                               rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_cublaslt_plans_every_product(monkeypatch, dtype):
    """The products run on cuBLASLt, not on its silent cuBLAS fallback."""
    monkeypatch.setattr(blas, "_lt_plans", {})
    monkeypatch.setattr(blas, "use_cublaslt", True)
    a, _ = pair((64, 48), dtype)
    b, _ = pair((48, 32), dtype, seed=1, layout="transposed")
    s, _ = pair((64, 48), dtype, seed=2, layout="sliced")
    ember.mm(a, b)
    ember.mm(s, b)
    ember.bmm(pair((3, 16, 8), dtype, seed=3)[0], pair((3, 8, 4), dtype, seed=4, layout="transposed")[0])
    ember.bmm(pair((3, 16, 8), dtype, seed=5, layout="expanded")[0], pair((3, 8, 4), dtype, seed=6)[0])
    ember.mv(a, pair((48,), dtype, seed=7)[0])
    ember.addmm(pair((64, 32), dtype, seed=8)[0], a, b, beta=0.5)   # C input: mm(a, b)'s plan
    ember.cuda.synchronize()
    refused = [k for k, v in blas._lt_plans.items() if v is None]
    assert len(blas._lt_plans) >= 5 and not refused, f"cuBLASLt refused {refused}"


# ---- addmm, baddbmm, addbmm, addmv ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", LOWP)
@pytest.mark.parametrize("self_shape", [(17, 12), (1, 12), (17, 1), (12,), ()])
@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, 2.0), (0, -1.5)])
def test_addmm(path, dtype, self_shape, beta, alpha):
    s, tS = pair(self_shape, dtype, seed=2)
    m1, t1 = pair((17, 9), dtype, layout="transposed")
    m2, t2 = pair((9, 12), dtype, seed=1)
    check(ember.addmm(s, m1, m2, beta=beta, alpha=alpha), torch.addmm(tS, t1, t2, beta=beta, alpha=alpha), dtype)


def test_addmm_beta_zero_ignores_nan_in_self(path):
    s = ember.full((3, 2), float("nan"), device="cuda")
    r = ember.addmm(s, ember.ones(3, 4, device="cuda"), ember.ones(4, 2, device="cuda"), beta=0)
    assert r.cpu().tolist() == [[4.0, 4.0]] * 3


@pytest.mark.parametrize("dtype", LOWP)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_addmm_inplace(path, dtype, layout):
    s, tS = pair((17, 12), dtype, layout=layout)
    m1, t1 = pair((17, 9), dtype, seed=1)
    m2, t2 = pair((9, 12), dtype, seed=2, layout="transposed")
    assert s.addmm_(m1, m2, beta=0.5, alpha=2.0) is s
    tS.addmm_(t1, t2, beta=0.5, alpha=2.0)
    np.testing.assert_allclose(s.cpu().double().numpy(), tS.cpu().double().numpy(), rtol=TOL[dtype],
                               atol=TOL[dtype])
    q, tQ = pair((9, 9), dtype, seed=3)
    q.addmm_(q, q)                                     # self among the operands
    tQ.addmm_(tQ.clone(), tQ.clone())
    np.testing.assert_allclose(q.cpu().double().numpy(), tQ.cpu().double().numpy(), rtol=TOL[dtype],
                               atol=TOL[dtype])


@pytest.mark.parametrize("dtype", LOWP)
@pytest.mark.parametrize("self_shape", [(3, 5, 4), (5, 4), (4,), (3, 1, 1)])
def test_baddbmm(path, dtype, self_shape):
    s, tS = pair(self_shape, dtype)
    b1, t1 = pair((3, 5, 6), dtype, seed=1, layout="transposed")
    b2, t2 = pair((3, 6, 4), dtype, seed=2)
    check(ember.baddbmm(s, b1, b2, beta=0.5, alpha=-1.0), torch.baddbmm(tS, t1, t2, beta=0.5, alpha=-1.0), dtype)
    check(ember.baddbmm(s, b1, b2), torch.baddbmm(tS, t1, t2), dtype)
    u, tU = pair((3, 5, 4), dtype, seed=3, layout="transposed")
    u.baddbmm_(b1, b2, beta=2.0)
    tU.baddbmm_(t1, t2, beta=2.0)
    np.testing.assert_allclose(u.cpu().double().numpy(), tU.cpu().double().numpy(), rtol=TOL[dtype],
                               atol=TOL[dtype])


@pytest.mark.parametrize("dtype", LOWP)
@pytest.mark.parametrize("self_shape", [(5, 4), (4,), ()])
def test_addbmm(path, dtype, self_shape):
    s, tS = pair(self_shape, dtype)
    b1, t1 = pair((3, 5, 6), dtype, seed=1)
    b2, t2 = pair((3, 6, 4), dtype, seed=2, layout="transposed")
    check(ember.addbmm(s, b1, b2, beta=0.5, alpha=2.0), torch.addbmm(tS, t1, t2, beta=0.5, alpha=2.0), dtype)
    u, tU = pair((5, 4), dtype, seed=3)
    u.addbmm_(b1, b2)
    tU.addbmm_(t1, t2)
    np.testing.assert_allclose(u.cpu().double().numpy(), tU.cpu().double().numpy(), rtol=TOL[dtype],
                               atol=TOL[dtype])


@pytest.mark.parametrize("dtype", LOWP)
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_addmv_mv_dot_vdot_outer(path, dtype, layout):
    m, tm = pair((13, 9), dtype, layout=layout)
    w, tw = pair((18,), dtype, seed=1)
    v, tv = w[::2], tw[::2]
    s, tS = pair((13,), dtype, seed=2)
    check(ember.mv(m, v), torch.mv(tm, tv), dtype)
    check(ember.addmv(s, m, v, beta=0.5, alpha=2.0), torch.addmv(tS, tm, tv, beta=0.5, alpha=2.0), dtype)
    c, tc = pair((), dtype, seed=3)
    check(ember.addmv(c, m, v), torch.addmv(tc, tm, tv), dtype)
    s.addmv_(m, v, beta=-1.0)
    tS.addmv_(tm, tv, beta=-1.0)
    check(s, tS, dtype)
    u, tu = pair((9,), dtype, seed=4)
    check(ember.dot(u, v), torch.dot(tu, tv), dtype)
    check(ember.vdot(v, u), torch.vdot(tv, tu), dtype)
    check(ember.outer(s, u), torch.outer(tS, tu), dtype)
    i, ti = ember.arange(4).cuda(), torch.arange(4).cuda()
    check(ember.outer(i, u), torch.outer(ti, tu), dtype)    # promotes
    assert ember.outer(i, i).cpu().tolist() == torch.outer(ti, ti).cpu().tolist()


# ---- einsum and tensordot ---------------------------------------------------------------------

EQS = [
    ("ij,jk->ik", [(13, 14), (14, 15)]),
    ("bij,bjk->bik", [(2, 13, 14), (2, 14, 15)]),
    ("bij,bkj->bik", [(2, 3, 4), (2, 5, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(5,), (5,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,kj,j->ik", [(2, 3), (4, 3), (3,)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("abc,cd,ae->bde", [(2, 3, 4), (4, 5), (2, 6)]),
    ("ij,ij->", [(1, 4), (3, 4)]),
]


@pytest.mark.parametrize("eq,shapes", EQS, ids=[e for e, _ in EQS])
def test_einsum(path, eq, shapes):
    ps = [pair(s, seed=i, layout="transposed" if len(s) >= 2 and i == 0 else "contiguous")
          for i, s in enumerate(shapes)]
    check(ember.einsum(eq, *[p[0] for p in ps]), torch.einsum(eq, *[p[1] for p in ps]))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_einsum_half(path, dtype):
    a, tA = pair((2, 3, 8, 16), dtype)
    b, tB = pair((2, 3, 8, 16), dtype, seed=1)
    check(ember.einsum("bhqd,bhkd->bhqk", a, b), torch.einsum("bhqd,bhkd->bhqk", tA, tB), dtype)


def test_einsum_integers_and_broadcast_labels_match_cpu(path):
    a = ember.arange(12).reshape(3, 4)
    b = ember.arange(20).reshape(4, 5)
    assert ember.einsum("ij,jk->ik", a.cuda(), b.cuda()).cpu().tolist() == ember.einsum("ij,jk->ik", a, b).tolist()
    assert ember.einsum("ij->j", a.cuda()).cpu().tolist() == ember.einsum("ij->j", a).tolist()
    x, y = ember.randn(3, 1), ember.randn(4, 5)   # a contracted label of size 1 on one side
    np.testing.assert_allclose(ember.einsum("ij,jk->ik", x.cuda(), y.cuda()).cpu().numpy(),
                               ember.einsum("ij,jk->ik", x, y).numpy(), rtol=1e-5, atol=1e-5)


TD = [((3, 4, 5), (4, 5, 6), 2), ((3, 4), (4, 5), 1), ((2, 3), (4,), 0), ((3, 4, 5), (5, 3, 2), ([0, 2], [1, 0]))]


@pytest.mark.parametrize("sa,sb,dims", TD)
def test_tensordot(path, sa, sb, dims):
    a, tA = pair(sa, layout="transposed" if len(sa) > 1 else "contiguous")
    b, tB = pair(sb, seed=1)
    check(ember.tensordot(a, b, dims), torch.tensordot(tA, tB, dims))


# ---- tf32 --------------------------------------------------------------------------------------

def test_allow_tf32_flag(path):
    a, tA = pair((512, 512), seed=0)
    b, tB = pair((512, 512), seed=1)
    ref = tA.double().cpu().numpy() @ tB.double().cpu().numpy()
    assert ember.backends.cuda.matmul.allow_tf32 is False and blas.allow_tf32 is False
    err_fp32 = np.abs((a @ b).cpu().double().numpy() - ref).max()
    ember.backends.cuda.matmul.allow_tf32 = True
    try:
        assert blas.allow_tf32 is True
        err_tf32 = np.abs((a @ b).cpu().double().numpy() - ref).max()
    finally:
        ember.backends.cuda.matmul.allow_tf32 = False
    assert err_fp32 < 1e-4, err_fp32
    assert 10 * err_fp32 < err_tf32 < 5e-2, (err_fp32, err_tf32)   # TF32 keeps 10 mantissa bits


# ---- streams and graphs ------------------------------------------------------------------------

def test_products_run_on_the_current_stream(path):
    a, tA = pair((256, 128))
    b, tB = pair((128, 64), seed=1)
    s = ember.cuda.Stream()
    s.wait_stream(ember.cuda.current_stream())
    with ember.cuda.stream(s):
        c = a @ b
        d = ember.linear(a, b.t(), ember.ones(64, device="cuda"))
    s.synchronize()
    check(c, tA @ tB)
    check(d, tA @ tB + 1)
    if path == "cublaslt":
        assert (0, int(s.handle)) in blas._workspaces


def test_matmul_in_a_cuda_graph(path):
    a, tA = pair((64, 32))
    b, tB = pair((32, 16), seed=1)
    bias = ember.ones(16, device="cuda")
    s = ember.cuda.Stream()
    s.wait_stream(ember.cuda.current_stream())
    with ember.cuda.stream(s):
        ember.linear(a, b.t(), bias)                   # warm-up: plans and the stream's workspace
    s.synchronize()
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g, stream=s):
        out = ember.linear(a, b.t(), bias)
    a.copy_(ember.full((64, 32), 0.5, device="cuda"))
    g.replay()
    ember.cuda.synchronize()
    check(out, torch.full((64, 32), 0.5, device="cuda") @ tB + 1)
    g.reset()


# ---- errors ------------------------------------------------------------------------------------

def test_errors(path):
    a = ember.ones(3, 4, device="cuda")
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        a @ ember.ones(3, 4, device="cuda")
    with pytest.raises(RuntimeError, match="same dtype"):
        a @ ember.ones(4, 2, dtype=ember.float64, device="cuda")
    with pytest.raises(RuntimeError, match=r"The expanded size of the tensor \(2\)"):
        ember.addmm(ember.ones(3, device="cuda"), a, ember.ones(4, 2, device="cuda"))
    with pytest.raises(NotImplementedError, match="supports float32"):
        ember.ones(3, 4, dtype=ember.int64, device="cuda") @ ember.ones(4, 2, dtype=ember.int64, device="cuda")


# ---- gradients ---------------------------------------------------------------------------------

def grads_match(fn_e, fn_t, shapes, dtype="float32", tol=None):
    es, ts = [], []
    for i, s in enumerate(shapes):
        e, t = pair(s, dtype, seed=i)
        es.append(e.requires_grad_())
        ts.append(t.requires_grad_())
    out_e, out_t = fn_e(*es), fn_t(*ts)
    w, tw = pair(tuple(out_t.shape), dtype, seed=99)
    (out_e * w).sum().backward()
    (out_t * tw).sum().backward()
    check(out_e.detach(), out_t, dtype, tol)
    for e, t in zip(es, ts):
        check(e.grad, t.grad, dtype, tol)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gradients(path, dtype):
    tol = None if dtype == "float32" else 1e-1
    grads_match(lambda a, b: a @ b, lambda a, b: a @ b, [(6, 5), (5, 3)], dtype, tol)
    grads_match(lambda s, a, b: ember.addmm(s, a, b, beta=0.5, alpha=2.0),
                lambda s, a, b: torch.addmm(s, a, b, beta=0.5, alpha=2.0), [(3,), (6, 5), (5, 3)], dtype, tol)
    grads_match(lambda s, a, b: ember.addmm(s, a, b), lambda s, a, b: torch.addmm(s, a, b),
                [(3,), (6, 5), (5, 3)], dtype, tol)
    grads_match(lambda s, a, b: ember.baddbmm(s, a, b, alpha=0.5), lambda s, a, b: torch.baddbmm(s, a, b, alpha=0.5),
                [(1, 4, 3), (2, 4, 5), (2, 5, 3)], dtype, tol)
    grads_match(lambda s, a, b: ember.addbmm(s, a, b), lambda s, a, b: torch.addbmm(s, a, b),
                [(4, 3), (2, 4, 5), (2, 5, 3)], dtype, tol)
    grads_match(ember.mv, torch.mv, [(4, 5), (5,)], dtype, tol)
    grads_match(lambda s, m, v: ember.addmv(s, m, v, beta=2.0), lambda s, m, v: torch.addmv(s, m, v, beta=2.0),
                [(4,), (4, 5), (5,)], dtype, tol)
    grads_match(ember.dot, torch.dot, [(7,), (7,)], dtype, tol)
    grads_match(ember.outer, torch.outer, [(4,), (3,)], dtype, tol)
    grads_match(lambda x, w, b: ember.linear(x, w, b), lambda x, w, b: torch.nn.functional.linear(x, w, b),
                [(2, 3, 5), (4, 5), (4,)], dtype, tol)


GRAD_EQS = [("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
            ("i,j->ij", [(3,), (4,)]), ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]), ("ij->j", [(3, 4)]),
            ("abc,cd,ae->bde", [(2, 3, 4), (4, 5), (2, 6)])]


@pytest.mark.parametrize("eq,shapes", GRAD_EQS, ids=[e for e, _ in GRAD_EQS])
def test_einsum_gradients(path, eq, shapes):
    grads_match(lambda *xs: ember.einsum(eq, *xs), lambda *xs: torch.einsum(eq, *xs), shapes)


def test_tensordot_gradients(path):
    grads_match(lambda a, b: ember.tensordot(a, b, ([0, 2], [1, 0])),
                lambda a, b: torch.tensordot(a, b, ([0, 2], [1, 0])), [(3, 4, 5), (5, 3, 2)])


def _torch_linear_backward(x, g, w):
    """What aten.linear_backward computes (torch has it only for MKLDNN tensors)."""
    g2, x2 = g.reshape(-1, w.shape[0]), x.reshape(-1, w.shape[1])
    return g @ w, g2.T @ x2, g2.sum(0)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_linear_backward_op_vs_torch(dtype):
    """The one-call linear backward (two GEMMs and a column sum on views) against torch's matrix products,
    for contiguous, transposed and empty inputs and each subset of grads."""
    tol = {"float32": 1e-4, "bfloat16": 5e-2, "float64": 1e-10}[dtype]
    cases = [((2, 5, 9), "contiguous"), ((7, 9), "transposed"), ((0, 9), "contiguous"), ((3, 1, 9), "contiguous")]
    for shape, layout in cases:
        x, tx = pair(shape, dtype, layout=layout)
        w, tw = pair((12, 9), dtype, seed=1)
        g, tg = pair(shape[:-1] + (12,), dtype, seed=2)
        for mask in ((True, True, True), (True, False, False), (False, True, True), (False, False, True)):
            got = ember.ops.linear_backward(x, g, w, *mask)
            want = _torch_linear_backward(tx, tg, tw)
            for e, t, m in zip(got, want, mask):
                assert (e is None) == (not m)
                if m:
                    assert tuple(e.shape) == tuple(t.shape) and e.is_contiguous()
                    np.testing.assert_allclose(e.cpu().double().numpy(), t.cpu().double().numpy(), rtol=tol,
                                               atol=tol * 10)
    with pytest.raises(RuntimeError, match=r"linear_backward: expected input \(\*, in\)"):
        ember.ops.linear_backward(x, g, ember.zeros(5, 4, device="cuda", dtype=x.dtype), True, True, True)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_linear_backward_takes_the_bias_grad_from_the_gemm_epilogue(dtype, monkeypatch):
    """At a transformer's sizes the bias grad comes from cuBLASLt's BGRADB epilogue on the weight-grad GEMM:
    no reduction kernel is launched, and the values equal torch's column sums."""
    from ember.backends.cuda import reduction as R
    monkeypatch.setattr(blas, "fuse_bias_grad", True)
    tol = {"float32": 1e-4, "bfloat16": 5e-2, "float16": 1e-2}[dtype]
    x, tx = pair((64, 128, 256), dtype)
    w, tw = pair((768, 256), dtype, seed=1)
    g, tg = pair((64, 128, 768), dtype, seed=2)
    before = R._last[0]
    got = ember.ops.linear_backward(x, g, w, True, True, True)
    assert R._last[0] == before, "the bias grad took a reduction kernel, not the GEMM's epilogue"
    for e, t in zip(got, _torch_linear_backward(tx, tg, tw)):
        np.testing.assert_allclose(e.cpu().double().numpy(), t.cpu().double().numpy(), rtol=tol,
                                   atol=tol * float(t.abs().max()))

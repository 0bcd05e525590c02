"""The fused layer-norm and RMS-norm Triton kernels through Triton's interpreter on CPU tensors, against
the CPU kernels of the same ops."""
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_normalization.py",
                allow_module_level=True)
pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from ember.backends.cuda import normalization as N  # noqa: E402
from ember.dispatch import OPS  # noqa: E402

CPU_FWD = OPS["native_layer_norm"].kernels["cpu"]
CPU_BWD = OPS["native_layer_norm_backward"].kernels["cpu"]
CPU_RMS_FWD = OPS["_fused_rms_norm"].kernels["cpu"]
CPU_RMS_BWD = OPS["_fused_rms_norm_backward"].kernels["cpu"]


@pytest.mark.parametrize("shape,ns", [((37, 24), (24,)), ((3, 5, 2, 7), (2, 7)), ((1, 100), (100,)), ((1200, 8), (8,))])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_layer_norm_kernels_match_cpu(shape, ns, affine, dtype):
    rng = np.random.default_rng(0)
    dt = getattr(ember, dtype)
    x = ember.tensor(rng.standard_normal(shape) * 3 + 1).to(dt)
    w = ember.tensor(rng.standard_normal(ns)).to(dt) if affine else None
    b = ember.tensor(rng.standard_normal(ns)).to(dt) if affine else None
    gy = ember.tensor(rng.standard_normal(shape)).to(dt)
    tol = 1e-5 if dtype == "float32" else 2e-2
    y, m, r = N.native_layer_norm(x, ns, w, b, 1e-5)
    # the CPU reference in float32 (the kernels' input and output roundings differ for float16)
    xf, wf, bf = x.float(), (w.float() if affine else None), (b.float() if affine else None)
    ey, em, er = CPU_FWD(xf, ns, wf, bf, 1e-5)
    assert y.dtype is dt and m.dtype is ember.float32 and tuple(m.shape) == tuple(em.shape)
    np.testing.assert_allclose(y.float().numpy(), ey.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(m.numpy(), em.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.numpy(), er.numpy(), rtol=1e-5, atol=1e-6)
    for mask in ((True, True, True), (True, False, False), (False, True, True)):
        got = N.native_layer_norm_backward(gy, x, ns, m, r, w, b, *mask)
        want = CPU_BWD(gy.float(), xf, ns, em, er, wf, bf, *mask)
        for g, e in zip(got, want):
            assert (g is None) == (e is None)
            if g is not None:
                np.testing.assert_allclose(g.float().numpy(), e.numpy(), rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("shape,ns", [((37, 24), (24,)), ((3, 5, 2, 7), (2, 7)), ((1, 100), (100,)), ((0, 8), (8,))])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_rms_norm_kernels_match_cpu(shape, ns, affine, dtype):
    rng = np.random.default_rng(1)
    dt = getattr(ember, dtype)
    x = ember.tensor(rng.standard_normal(shape) * 3 + 1).to(dt)
    w = ember.tensor(rng.standard_normal(ns)).to(dt) if affine else None
    gy = ember.tensor(rng.standard_normal(shape)).to(dt)
    tol = 1e-5 if dtype == "float32" else 2e-2
    y, r = N.fused_rms_norm(x, ns, w, 1e-6)
    xf, wf = x.float(), (w.float() if affine else None)
    ey, er = CPU_RMS_FWD(xf, ns, wf, 1e-6)
    assert y.dtype is dt and r.dtype is ember.float32 and tuple(r.shape) == tuple(er.shape)
    np.testing.assert_allclose(y.float().numpy(), ey.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(r.numpy(), er.numpy(), rtol=1e-5, atol=1e-6)
    for mask in ((True, True), (True, False), (False, True)):
        got = N.fused_rms_norm_backward(gy, x, ns, r, w, *mask)
        want = CPU_RMS_BWD(gy.float(), xf, ns, er, wf, *mask)
        for g, e in zip(got, want):
            assert (g is None) == (e is None)
            if g is not None:
                assert tuple(g.shape) == tuple(e.shape)
                np.testing.assert_allclose(g.float().numpy(), e.numpy(), rtol=tol, atol=tol * 10)


def test_norm_kernels_refuse_what_they_cannot_do():
    with pytest.raises(NotImplementedError, match="float16/bfloat16/float32 rows of at most 16384.*layer_norm"):
        N.native_layer_norm(ember.zeros(2, 3, dtype=ember.float64), (3,), None, None, 1e-5)
    with pytest.raises(NotImplementedError, match="rows of at most 16384 elements \\(got ember.float32 rows of "
                                                  "16385\\); nn.functional.rms_norm takes the composite"):
        N.fused_rms_norm(ember.zeros(1, 16385), (16385,), None, 1e-5)


def test_norm_kernels_take_strided_affine_parameters():
    """A weight and bias over two normalised dims given as transposed views (or kept-layout results of ops on
    them) are read in their logical order: the host code makes them dense first."""
    rng = np.random.default_rng(2)
    x = ember.tensor(rng.standard_normal((5, 3, 4)).astype(np.float32))
    gy = ember.tensor(rng.standard_normal((5, 3, 4)).astype(np.float32))
    wt = ember.tensor(rng.standard_normal((4, 3)).astype(np.float32)).t()
    bt = ember.tensor(rng.standard_normal((4, 3)).astype(np.float32)).t() * 2     # strides (1, 3): a kept layout
    assert wt.stride() == bt.stride() == (1, 3)
    w, b = wt.contiguous(), bt.contiguous()
    got, want = N.native_layer_norm(x, (3, 4), wt, bt, 1e-5), CPU_FWD(x, (3, 4), w, b, 1e-5)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-6)
    m, r = want[1], want[2]
    for g, e in zip(N.native_layer_norm_backward(gy, x, (3, 4), m, r, wt, bt, True, True, True),
                    CPU_BWD(gy, x, (3, 4), m, r, w, b, True, True, True)):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-5)
    got, want = N.fused_rms_norm(x, (3, 4), wt, 1e-6), CPU_RMS_FWD(x, (3, 4), w, 1e-6)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-6)
    for g, e in zip(N.fused_rms_norm_backward(gy, x, (3, 4), want[1], wt, True, True),
                    CPU_RMS_BWD(gy, x, (3, 4), want[1], w, True, True)):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-5)

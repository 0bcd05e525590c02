"""The fused NLL Triton kernels through Triton's interpreter on CPU tensors, against the CPU kernels."""
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_loss.py", allow_module_level=True)
pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from ember.backends.cuda import checks  # noqa: E402
from ember.backends.cuda import loss as L  # noqa: E402
from ember.dispatch import OPS  # noqa: E402


@pytest.fixture(autouse=True)
def nothing_left_unreported():
    yield
    checks.raise_pending()      # the device-side index checks found nothing out of range


@pytest.mark.parametrize("reduction", [0, 1, 2])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_nll_kernels_match_cpu(reduction, weighted, dtype):
    rng = np.random.default_rng(0)
    N, C = 37, 11
    x = ember.tensor(rng.standard_normal((N, C))).to(getattr(ember, dtype))
    t = ember.tensor(rng.integers(0, C, N))
    t[::5] = -100
    w = ember.tensor(rng.random(C) + 0.5).to(x.dtype) if weighted else None
    got = L.nll_loss_forward(x, t, w, reduction, -100)
    want = OPS["nll_loss_forward"].kernels["cpu"](x, t, w, reduction, -100)
    tol = 1e-5 if dtype == "float32" else 3e-3
    for g, e in zip(got, want):
        assert g.shape == e.shape and g.dtype is e.dtype
        np.testing.assert_allclose(g.float().numpy(), e.float().numpy(), rtol=tol, atol=tol)
    go = ember.tensor(rng.standard_normal(got[0].shape)).to(x.dtype)
    gi = L.nll_loss_backward(go, x, t, w, reduction, -100, got[1])
    ei = OPS["nll_loss_backward"].kernels["cpu"](go, x, t, w, reduction, -100, want[1])
    np.testing.assert_allclose(gi.float().numpy(), ei.float().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", [0, 1])
@pytest.mark.parametrize("bad", [4, 9, -1])
def test_out_of_range_class_is_reported_at_the_next_check(reduction, bad):
    x = ember.zeros(3, 4)
    t = ember.tensor([0, bad, -100])              # -100 is ignore_index: fine
    msg = rf"CUDA error: index out of range in nll_loss: got index {bad} for 4 classes \(found on the device"
    loss, tw = L.nll_loss_forward(x, t, None, reduction, -100)
    with pytest.raises(RuntimeError, match=msg):
        checks.raise_pending()
    assert checks._words["cpu"].tolist() == [0, 0, 0, 0] and not checks._pending   # reset
    g = ember.ones(3) if reduction == 0 else ember.tensor(1.0)
    gi = L.nll_loss_backward(g, x, t, None, reduction, -100, ember.tensor(1.0))
    assert gi[1].tolist() == [0.0] * 4            # the bad row's gradient is not written anywhere else
    with pytest.raises(RuntimeError, match=msg):
        checks.raise_pending()
    ok = ember.tensor([0, 3, -100])
    loss, _ = L.nll_loss_forward(x, ok, None, reduction, -100)
    checks.raise_pending()                        # a valid call afterwards reports nothing
    want, _ = OPS["nll_loss_forward"].kernels["cpu"](x, ok, None, reduction, -100)
    np.testing.assert_allclose(loss.numpy(), want.numpy())


def test_cross_entropy_out_of_range_class_is_reported():
    x = ember.zeros(3, 4)
    msg = r"CUDA error: index out of range in cross_entropy: got index 7 for 4 classes \(found on the device"
    loss, lse, tw = L.cross_entropy(x, ember.tensor([0, 7, -100]), None, 1, -100, 0.0)
    with pytest.raises(RuntimeError, match=msg):
        checks.raise_pending()
    gi = L.cross_entropy_backward(ember.tensor(1.0), x, ember.tensor([0, 7, -100]), None, 1, -100, 0.0, lse, tw)
    assert gi[1].tolist() == [0.0] * 4 and gi[2].tolist() == [0.0] * 4     # bad and ignored rows: no gradient
    with pytest.raises(RuntimeError, match=msg):
        checks.raise_pending()


@pytest.mark.parametrize("smoothing,weighted", [(0.0, False), (0.1, True)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cross_entropy_kernels_over_several_column_tiles_match_cpu(smoothing, weighted, dtype):
    """C = 4500: three column tiles of the online logsumexp, whose running max and sum are kept per lane and
    reduced once per row. The rows' maxima sit in different tiles, some logits are -inf, one row is all -inf
    but its target's (an inf loss in both), and a row holds a large spread (exp underflows across lanes)."""
    rng = np.random.default_rng(3)
    N, C = 6, 4500
    a = rng.standard_normal((N, C)).astype(np.float32)
    a[0, 10] = 30.0         # the max in the first tile
    a[1, 4400] = 30.0       # ... in the last
    a[2, ::7] = -np.inf
    a[3, :] = -np.inf
    a[3, 5] = 0.0
    a[4, 2100] = 90.0       # every other exp(x - max) underflows
    x = ember.tensor(a).to(getattr(ember, dtype))
    t = ember.tensor([1, 2, 3, 5, 2100, -100])
    w = ember.tensor(rng.random(C).astype(np.float32) + 0.5).to(x.dtype) if weighted else None
    cpu = OPS["_cross_entropy"].kernels["cpu"]
    tol = 1e-5 if dtype == "float32" else 2e-2
    for reduction in (0, 1):
        got = L.cross_entropy(x, t, w, reduction, -100, smoothing)
        want = cpu(x, t, w, reduction, -100, smoothing)
        for g, e in zip(got, want):
            np.testing.assert_allclose(g.float().numpy(), e.float().numpy(), rtol=tol, atol=tol)
        if reduction == 1:
            gi = L.cross_entropy_backward(ember.tensor(1.0).to(x.dtype), x, t, w, 1, -100, smoothing, got[1], got[2])
            ei = OPS["_cross_entropy_backward"].kernels["cpu"](ember.tensor(1.0).to(x.dtype), x, t, w, 1, -100,
                                                                 smoothing, want[1], want[2])
            np.testing.assert_allclose(gi.float().numpy(), ei.float().numpy(), rtol=tol, atol=tol)

"""Two GPUs in one process (`pytest -m cuda` on a machine with two or more; skipped, and reported as skipped,
elsewhere): copies between devices ordered against both devices' streams, and autograd through a model split over
cuda:0 and cuda:1 (model parallel through `.to(device)`) giving the grads of the same model on one device."""
import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings"),
              pytest.mark.skipif(ember.cuda.is_available() and ember.cuda.device_count() < 2,
                                 reason="needs two GPUs")]


def test_copy_to_another_gpu_waits_for_the_source_stream():
    """The source is still being written by a long chain of kernels on cuda:0 when the copy is issued."""
    a = ember.full((1 << 22,), 1.0, device="cuda:0")
    for _ in range(50):
        a = a * 1.01
    b = a.to("cuda:1")
    c = ember.empty((1 << 22,), device="cuda:1")
    c.copy_(a)
    want = np.float32(1.0)
    for _ in range(50):
        want = np.float32(want * np.float32(1.01))
    assert b.device == ember.device("cuda:1") and c.device == ember.device("cuda:1")
    np.testing.assert_allclose(b.cpu().numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(c.cpu().numpy(), want, rtol=1e-6)


def test_cast_copy_between_gpus():
    a = ember.arange(12, dtype=ember.float32, device="cuda:0").reshape(3, 4).t()
    out = ember.empty((4, 3), dtype=ember.bfloat16, device="cuda:1")
    out.copy_(a)
    np.testing.assert_array_equal(out.float().cpu().numpy(), np.arange(12, dtype=np.float32).reshape(3, 4).T)


class _Split(nn.Module):
    """The first half on `d0`, the second on `d1` (model parallel through .to(device))."""

    def __init__(self, d0, d1):
        super().__init__()
        self.d0, self.d1 = d0, d1
        self.a = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.LayerNorm(64)).to(d0)
        self.b = nn.Sequential(nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 5)).to(d1)

    def forward(self, x):
        return self.b(self.a(x.to(self.d0)).to(self.d1))


def test_autograd_across_two_gpus_equals_one_gpu():
    ember.manual_seed(0)
    split = _Split("cuda:0", "cuda:1")
    one = _Split("cuda:0", "cuda:0")
    one.load_state_dict({k: v.to("cuda:0") for k, v in split.state_dict().items()})
    g = np.random.default_rng(0)
    x = ember.tensor(g.standard_normal((32, 16)).astype(np.float32))
    y = ember.tensor(g.integers(0, 5, 32))
    for m in (split, one):
        F.cross_entropy(m(x), y.to(m.d1)).backward()
    for (name, p), q in zip(split.named_parameters(), one.parameters()):
        assert p.grad is not None and p.grad.device == p.device, name
        np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.cpu().numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)

"""ember runs on the GPU with torch blocked from import (`pytest -m cuda`)."""
import subprocess
import sys

import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]

CODE = """
import builtins, sys
real = builtins.__import__
def guard(name, *a, **k):
    if name == "torch" or name.startswith("torch."):
        raise ImportError("torch is blocked in this test")
    return real(name, *a, **k)
builtins.__import__ = guard
import ember
import ember.nn.functional as F
x = ember.randn(64, 32, device="cuda", requires_grad=True)
w = ember.randn(16, 32, device="cuda", requires_grad=True)
y = F.linear(x, w).gelu().softmax(-1)
loss = (y * y).sum()
loss.backward()
assert x.grad.device.type == "cuda" and w.grad.shape == (16, 32)
g = ember.cuda.CUDAGraph()
s = ember.zeros(8, device="cuda")
with ember.cuda.graph(g):
    t = (s + 1).exp()
g.replay()
assert abs(t.sum().item() - 8 * 2.718281828) < 1e-3
assert "torch" not in sys.modules
print("ok")
"""


def test_ember_on_gpu_without_torch():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")

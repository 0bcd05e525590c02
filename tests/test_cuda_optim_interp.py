"""The fused Adam/AdamW kernel through Triton's interpreter on CPU tensors, against ember's
single-tensor Adam loop on the CPU (which matches torch.optim.Adam; see test_optim.py)."""
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernel is tested by tests/test_cuda_optim.py", allow_module_level=True)
pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from ember.backends.cuda.optim import adam_step_  # noqa: E402


def _run_loop(p0, grads, **kw):
    p = ember.nn.Parameter(ember.tensor(p0))
    opt = ember.optim.Adam([p], **kw)
    for g in grads:
        p.grad = ember.tensor(g)
        opt.step()
    return p.detach().numpy(), opt.state[p]


@pytest.mark.parametrize("kw", [dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
                                dict(lr=1e-2, weight_decay=0.1),
                                dict(lr=3e-3, betas=(0.8, 0.99), amsgrad=True, maximize=True),
                                dict(lr=1e-3)])
@pytest.mark.parametrize("device_step", [False, True])
def test_fused_adam_kernel_matches_the_loop(kw, device_step):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((37, 29)).astype(np.float32)
    grads = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(3)]
    want, st_want = _run_loop(p0, grads, **kw)
    b1, b2 = kw.get("betas", (0.9, 0.999))
    p = ember.tensor(p0.copy())
    m, v = ember.zeros_like(p), ember.zeros_like(p)
    vmax = ember.zeros_like(p) if kw.get("amsgrad") else None
    for k, g in enumerate(grads, 1):
        step = ember.tensor(float(k)) if device_step else k
        adam_step_(p, ember.tensor(g), m, v, vmax, step, kw["lr"], b1, b2, 1e-8, kw.get("weight_decay", 0.0),
                   kw.get("decoupled_weight_decay", False), kw.get("maximize", False))
    # in-kernel (device-step) bias corrections are float32, as PyTorch's capturable Adam
    tol = 2e-5 if device_step else 2e-6
    np.testing.assert_allclose(p.numpy(), want, rtol=tol, atol=tol)
    np.testing.assert_allclose(m.numpy(), st_want["exp_avg"].numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(v.numpy(), st_want["exp_avg_sq"].numpy(), rtol=1e-6, atol=1e-9)
    assert p._version == 3


def test_fused_adam_rejects_mismatched_state():
    p = ember.zeros(4, 3)
    with pytest.raises(RuntimeError, match="exp_avg must be contiguous with the parameter's shape"):
        adam_step_(p, ember.zeros(4, 3), ember.zeros(3, 4), ember.zeros(4, 3), None, 1, 1e-3, 0.9, 0.999, 1e-8,
                   0.0, False, False)


def test_fused_and_capturable_need_cuda_params():
    p = ember.nn.Parameter(ember.zeros(3))
    for flag in ("fused", "capturable"):
        with pytest.raises(RuntimeError, match=f"{flag}=True requires all the params to be floating point CUDA"):
            ember.optim.AdamW([p], **{flag: True})


def test_fused_adam_reads_a_tensor_lr():
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(50).astype(np.float32)
    grads = [rng.standard_normal(50).astype(np.float32) for _ in range(2)]
    want, _ = _run_loop(p0, grads, lr=5e-3, weight_decay=0.1, decoupled_weight_decay=True)
    p, lr = ember.tensor(p0.copy()), ember.tensor(5e-3)
    m, v = ember.zeros_like(p), ember.zeros_like(p)
    for k, g in enumerate(grads, 1):
        adam_step_(p, ember.tensor(g), m, v, None, ember.tensor(float(k)), lr, 0.9, 0.999, 1e-8, 0.1, True, False)
    np.testing.assert_allclose(p.numpy(), want, rtol=2e-5, atol=2e-5)
    with pytest.raises(ValueError, match="a tensor lr needs the step count as a tensor"):
        adam_step_(p, ember.tensor(grads[0]), m, v, None, 3, lr, 0.9, 0.999, 1e-8, 0.1, True, False)


def test_fused_total_norm_and_clip_match_the_composite(monkeypatch):
    from ember.backends.cuda import optim
    from ember.backends.cuda.optim import clip_scale_, total_norm2
    monkeypatch.setattr(optim, "SUMSQ_PROGRAMS", 4)   # the interpreter runs programs one by one
    rng = np.random.default_rng(5)
    ts = [ember.tensor(rng.standard_normal(s).astype(np.float32)) for s in ((1500,), (7, 5), (1,))]
    want = np.sqrt(sum(float((t.numpy().astype(np.float64) ** 2).sum()) for t in ts))
    total = total_norm2(ts)
    assert total.shape == () and total.dtype is ember.float32
    np.testing.assert_allclose(total.item(), want, rtol=1e-6)
    for max_norm in (want / 2, want * 2):
        g = ember.tensor(ts[1].numpy().copy())
        clip_scale_(g, total, max_norm)
        np.testing.assert_allclose(g.numpy(), ts[1].numpy() * min(max_norm / (total.item() + 1e-6), 1.0),
                                   rtol=1e-6)

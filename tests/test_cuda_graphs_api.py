"""`ember.cuda.graphed_step` and `ember.cuda.make_graphed_callables` on the GPU (`pytest -m cuda`): graphed
training gives the eager run's numbers, a new batch shape captures a second graph, an uncapturable step falls
back to eager with a warning; make_graphed_callables' forward and backward match the eager module's."""
import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]


def _model_and_opt():
    ember.manual_seed(0)
    m = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4)).cuda()
    return m, ember.optim.AdamW(m.parameters(), lr=1e-2, capturable=True)


def _batches(n, rows=8):
    g = np.random.default_rng(0)
    return [(ember.tensor(g.standard_normal((rows, 16)).astype(np.float32)).cuda(),
             ember.tensor(g.integers(0, 4, rows)).cuda()) for _ in range(n)]


def _trainer(m, opt):
    def step(x, y):
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


def test_graphed_step_trains_as_the_eager_step():
    batches = _batches(12)
    m1, o1 = _model_and_opt()
    eager = [float(_trainer(m1, o1)(x, y)) for x, y in batches]
    m2, o2 = _model_and_opt()
    step = ember.cuda.graphed_step(_trainer(m2, o2), warmup=2)
    graphed = [float(step(x, y)) for x, y in batches]
    assert len(step._graphs) == 1 and step.eager_reason is None
    np.testing.assert_allclose(graphed, eager, rtol=1e-5, atol=1e-6)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p2.detach().cpu().numpy(), p1.detach().cpu().numpy(), rtol=1e-5, atol=1e-6)


def test_graphed_step_captures_again_for_a_new_shape():
    m, o = _model_and_opt()
    step = ember.cuda.graphed_step(_trainer(m, o), warmup=1)
    for (x, y), (x2, y2) in zip(_batches(4), _batches(4, rows=5)):
        step(x, y)
        step(x2, y2)
    assert len(step._graphs) == 2
    assert all(e.graph is not None for e in step._graphs.values())


def test_uncapturable_step_falls_back_to_eager_with_a_warning():
    m, o = _model_and_opt()
    inner = _trainer(m, o)
    seen = []

    def step_with_item(x, y):
        loss = inner(x, y)
        seen.append(loss.item())       # a host synchronisation: not capturable
        return loss
    step = ember.cuda.graphed_step(step_with_item, warmup=1)
    batches = _batches(3)
    step(*batches[0])
    with pytest.warns(RuntimeWarning, match="cannot be captured.*copying a CUDA tensor to the CPU"):
        step(*batches[1])
    step(*batches[2])
    assert step.eager_reason is not None and len(seen) == 3


def test_make_graphed_callables_matches_the_module():
    ember.manual_seed(0)
    ref = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4)).cuda()
    ember.manual_seed(0)
    mod = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4)).cuda()
    sample = ember.randn(8, 16, device="cuda", requires_grad=True)
    graphed = ember.cuda.make_graphed_callables(mod, (sample,))
    assert graphed is mod
    for x, _ in _batches(3):
        x1 = x.clone().requires_grad_()
        x2 = x.clone().requires_grad_()
        out1, out2 = ref(x1), graphed(x2)
        np.testing.assert_allclose(out2.detach().cpu().numpy(), out1.detach().cpu().numpy(), rtol=1e-5, atol=1e-6)
        (out1 * out1).sum().backward()
        (out2 * out2).sum().backward()
        np.testing.assert_allclose(x2.grad.cpu().numpy(), x1.grad.cpu().numpy(), rtol=1e-5, atol=1e-6)
    for p1, p2 in zip(ref.parameters(), mod.parameters()):    # grads accumulated over the 3 calls, as eager
        np.testing.assert_allclose(p2.grad.cpu().numpy(), p1.grad.cpu().numpy(), rtol=1e-5, atol=1e-5)
    mod.eval()
    ref.eval()          # in the other mode the module runs its own forward again
    x = _batches(1)[0][0]
    np.testing.assert_allclose(mod(x).detach().cpu().numpy(), ref(x).detach().cpu().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="argument 0 must match its sample"):
        mod.train()
        mod(ember.randn(3, 16, device="cuda", requires_grad=True))

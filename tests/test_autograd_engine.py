"""The backward engine's gradient takeover (engine._can_take), without torch: this file runs on any
CPython that requires-python admits (`pytest --noconftest tests/test_autograd_engine.py` in a venv
with only ember, numpy, ml_dtypes and pytest).

A leaf's first gradient becomes its .grad as it is when nothing else can reach the tensor or its
memory, and is copied otherwise. The reference counts that decide it are read so that they mean
the same on every CPython (3.14 borrows references it used to count), and checked once at import
(engine.TAKES_GRADIENTS); whatever the answer, a taken-over gradient must never alias a tensor
that someone still holds.
"""
import sys
import weakref

import numpy as np
import pytest

import ember
from ember import autograd
from ember.autograd import engine
from ember.core.storage import Storage
from ember.dispatch import OPS


@pytest.fixture
def clones(monkeypatch):
    """The tensors the engine copied into a .grad (instead of taking them over)."""
    seen = []
    clone = OPS["clone"].fn
    monkeypatch.setattr(OPS["clone"], "fn", lambda t, **kw: seen.append(t.shape) or clone(t, **kw))
    return seen


def test_this_interpreter_counts_references_as_the_engine_assumes():
    assert engine.TAKES_GRADIENTS, (f"engine._calibrate() failed on Python {sys.version}: every leaf gradient "
                                    f"is copied (safe, but slower); see engine._can_take")


def test_fresh_gradients_are_taken_over(clones):
    x, w, bias = ember.randn(5, 4), ember.randn(4, 3, requires_grad=True), ember.randn(3, requires_grad=True)
    (x @ w + bias).sum().backward()         # bias's gradient: a view of a reduction's fresh output
    assert clones == []
    assert np.allclose(w.grad.numpy(), (x.t() @ ember.ones(5, 3)).numpy())
    assert bias.grad.tolist() == [5.0] * 3


class _Returns(autograd.Function):
    """backward returns whatever `make(grad)` gives (a fresh tensor, or one the test keeps)."""

    @staticmethod
    def forward(ctx, x, make):
        ctx.make = make
        return x * 1.0

    @staticmethod
    def backward(ctx, grad):
        return ctx.make(grad), None


def test_a_custom_backward_s_fresh_result_is_the_grad_itself(clones):
    made = []

    def make(grad):
        g = grad * 3.0
        made.append(weakref.ref(g))     # a weak reference is no holder
        return g

    x = ember.ones(4, requires_grad=True)
    _Returns.apply(x, make).sum().backward()
    assert x.grad is made[0]() and clones == []
    assert x.grad.tolist() == [3.0] * 4


def _user_keeps_tensor(kept):
    def make(grad):
        kept.append(grad * 3.0)
        return kept[-1]
    return make


def _user_keeps_storage(kept):
    def make(grad):
        g = grad * 3.0
        kept.append(g._storage)
        return g
    return make


def _user_keeps_numpy_view(kept):
    def make(grad):
        g = grad * 3.0
        kept.append(g.numpy())
        return g
    return make


def _user_keeps_base(kept):
    def make(grad):
        kept.append((grad * 3.0).reshape(2, 2))
        return kept[-1].reshape(4)      # a view whose base the user holds
    return make


def _user_keeps_view(kept):
    def make(grad):
        g = grad * 3.0
        kept.append(g[1:])
        return g
    return make


def _values(kept):
    if isinstance(kept, np.ndarray):
        return kept
    if isinstance(kept, Storage):
        return kept.data.view(np.float32)
    return kept.numpy()


@pytest.mark.parametrize("keeps", [_user_keeps_tensor, _user_keeps_storage, _user_keeps_numpy_view,
                                   _user_keeps_base, _user_keeps_view])
def test_a_gradient_someone_holds_is_copied(keeps, clones):
    kept = []
    x = ember.ones(4, requires_grad=True)
    _Returns.apply(x, keeps(kept)).sum().backward()
    assert clones == [(4,)]
    before = [_values(k).copy() for k in kept]
    x.grad.add_(100.0)      # an optimizer step on .grad must not reach what the user holds
    for b, k in zip(before, kept):
        assert np.array_equal(b, _values(k))
    assert x.grad.tolist() == [103.0] * 4


def test_shared_root_and_hooked_gradients_are_copied(clones):
    # add's backward hands one tensor to both leaves: the first to arrive is copied, the last takes it
    a, b = ember.ones(3, requires_grad=True), ember.ones(3, requires_grad=True)
    (a * 2.0 + b).backward(ember.ones(3))
    b.grad.add_(1.0)
    assert a.grad.tolist() == [2.0] * 3 and b.grad.tolist() == [2.0] * 3
    # the caller's gradient for a leaf is never taken over
    g = ember.full((3,), 5.0)
    c = ember.ones(3, requires_grad=True)
    c.backward(g)
    c.grad.add_(1.0)
    assert g.tolist() == [5.0] * 3 and c.grad.tolist() == [6.0] * 3
    # a gradient a tensor hook keeps is shared, so it is copied
    kept = []
    d = ember.ones(2, 2, requires_grad=True)
    d.register_hook(lambda gr: kept.append(gr))
    (d @ ember.ones(2, 2)).sum().backward()
    d.grad.mul_(0.0)
    assert kept[0].tolist() == [[2.0, 2.0], [2.0, 2.0]]
    # ... and so is one a node hook keeps
    kept.clear()
    e = ember.ones(3, requires_grad=True)
    y = e * 2.0
    y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: kept.append(grad_inputs[0]))
    y.sum().backward()
    e.grad.mul_(0.0)
    assert kept[0].tolist() == [2.0] * 3


def test_a_hook_s_replacement_gradient_is_taken_over(clones):
    made = []

    def hook(grad):
        g = grad * 2.0
        made.append(weakref.ref(g))
        return g

    x = ember.ones(3, requires_grad=True)
    x.register_hook(hook)
    (x * 3.0).sum().backward()
    assert x.grad is made[0]() and x.grad.tolist() == [6.0] * 3 and clones == []


def test_nothing_is_taken_over_where_the_counts_are_not_trusted(monkeypatch, clones):
    monkeypatch.setattr(engine, "TAKES_GRADIENTS", False)
    w = ember.randn(4, 3, requires_grad=True)
    (ember.randn(5, 4) @ w).sum().backward()
    assert clones == [(4, 3)]


def test_backward_leaves_grad_mode_as_it_found_it():
    """A node fed by several consumers (its buffer filled twice) and create_graph on or off: grad mode after the
    backward is the caller's, a bool (the engine restores it from a local that nothing else may reuse)."""
    for create_graph in (False, True):
        x = ember.randn(3, requires_grad=True)
        y = x * 2
        (y * y + y.exp()).sum().backward(create_graph=create_graph)
        assert ember.is_grad_enabled() is True
        with ember.no_grad():
            z = x * 2
            assert ember.is_grad_enabled() is False
        assert not z.requires_grad and (x * 2).requires_grad

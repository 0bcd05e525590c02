"""`out=`, as torch has it: the dtype rule each op declares (`defop(out=...)`), resizing, the refusals,
and the out-kernels that write straight into `out` (`Op.register_out`), on the CPU against torch.
The samples of every out= op also run with out tensors in tests/test_samples.py."""
import warnings

import numpy as np
import pytest
import torch

import ember
from ember.dispatch import OPS

F = [1.5, -2.5, 3.0]


def _pair(values=F, dtype="float32"):
    return ember.tensor(values, dtype=getattr(ember, dtype)), torch.tensor(values, dtype=getattr(torch, dtype))


def _outcome(fn):
    """(the result as a list and its dtype name) or (the exception's type, None)."""
    try:
        r = fn()
    except (RuntimeError, TypeError) as e:
        return type(e).__name__, None
    return r.tolist(), str(r.dtype).split(".")[-1]


# (description, ember call, torch call) over x (float32 [3]) and i (int64 [3]) with an out tensor `o` of dtype
# `odt` and shape [3] (or [] for full reductions, [1] for keepdim sums)
CASES = [
    ("add int into float", lambda m, x, i, o: m.add(i, i, out=o), "float32"),
    ("add float into int", lambda m, x, i, o: m.add(x, x, out=o), "int64"),
    ("add float into double", lambda m, x, i, o: m.add(x, 1, alpha=2, out=o), "float64"),
    ("mul float into float16", lambda m, x, i, o: m.mul(x, x, out=o), "float16"),
    ("eq into float", lambda m, x, i, o: m.eq(i, i, out=o), "float32"),
    ("eq into bool", lambda m, x, i, o: m.eq(x, x, out=o), "bool"),
    ("neg int into bool", lambda m, x, i, o: m.neg(i, out=o), "bool"),
    ("exp int into float", lambda m, x, i, o: m.exp(i, out=o), "float32"),
    ("div int into int", lambda m, x, i, o: m.div(i, 2, out=o), "int64"),
    ("div floor int into int", lambda m, x, i, o: m.div(i, 2, rounding_mode="floor", out=o), "int64"),
    ("pow into double", lambda m, x, i, o: m.pow(x, 2, out=o), "float64"),
    ("addcmul into double", lambda m, x, i, o: m.addcmul(x, x, x, value=0.5, out=o), "float64"),
    ("lerp into int", lambda m, x, i, o: m.lerp(x, x, 0.5, out=o), "int64"),
    ("clamp into double (exact)", lambda m, x, i, o: m.clamp(x, 0, 2, out=o), "float64"),
    ("where into float", lambda m, x, i, o: m.where(x > 0, x, x, out=o), "float32"),
    ("cumsum float into int (its dtype)", lambda m, x, i, o: m.cumsum(x, 0, out=o), "int64"),
    ("cumsum int into float (its dtype)", lambda m, x, i, o: m.cumsum(i, 0, out=o), "float32"),
    ("cat into double", lambda m, x, i, o: m.cat([x[:1], x[1:]], out=o), "float64"),
    ("cat float into int", lambda m, x, i, o: m.cat([x[:1], x[1:]], out=o), "int64"),
    ("index_select into double (exact)", lambda m, x, i, o: m.index_select(x, 0, i - i, out=o), "float64"),
    ("softmax into float", lambda m, x, i, o: m.softmax(x, 0, out=o), "float32"),
    ("arange into double (its dtype)", lambda m, x, i, o: m.arange(3, out=o), "float64"),
    ("ones into int (its dtype)", lambda m, x, i, o: m.ones(3, out=o), "int64"),
    ("zeros: dtype= against out's", lambda m, x, i, o: m.zeros(3, dtype=m.float32, out=o), "int64"),
    ("randn: shape and dtype", lambda m, x, i, o: (m.randn(3, out=o), o.zero_())[1], "float64"),
]


@pytest.mark.parametrize("desc,call,odt", CASES, ids=[c[0] for c in CASES])
def test_out_dtype_rules_follow_torch(desc, call, odt):
    x, tx = _pair()
    i, ti = _pair([1, 2, 3], "int64")
    o, to = ember.empty(3, dtype=getattr(ember, odt)), torch.empty(3, dtype=getattr(torch, odt))
    got = _outcome(lambda: call(ember, x, i, o))
    want = _outcome(lambda: call(torch, tx, ti, to))
    if want[1] is None:
        assert got[1] is None, f"{desc}: torch raises {want[0]}, ember gave {got}"
        return
    assert got[1] == want[1], f"{desc}: dtype {got[1]} vs torch's {want[1]}"
    np.testing.assert_allclose(np.array(got[0], dtype=np.float64), np.array(want[0], dtype=np.float64), rtol=1e-3)
    assert o.tolist() == got[0], f"{desc}: the returned tensor is not out"


def test_out_is_returned_and_written_in_place():
    x, _ = _pair()
    o = ember.zeros(3)
    v = o._version
    r = ember.mul(x, 2, out=o)
    assert r is o and o.tolist() == [3.0, -5.0, 6.0] and o._version > v


def test_out_of_another_shape_is_resized():
    x, tx = _pair()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        o = ember.empty(0)
        ember.add(x, x, out=o)                       # an empty out: resized silently
    assert o.shape == (3,) and o.tolist() == [3.0, -5.0, 6.0]
    o = ember.ones(2, 2)
    with pytest.warns(UserWarning, match="resized since it had shape \\[2, 2\\]"):
        ember.add(x, x, out=o)
    with pytest.warns(UserWarning):
        torch.add(tx, tx, out=torch.ones(2, 2))      # torch warns too
    assert o.shape == (3,) and o.tolist() == [3.0, -5.0, 6.0]
    big = ember.zeros(10)
    view = big[2:4]
    ember.add(x[:2], 1, out=view)                    # same shape: written into the view, the base sees it
    assert big.tolist()[2:4] == [2.5, -1.5]


def test_reduction_out_shapes_follow_torch():
    x, tx = _pair()
    for keep in (False, True):
        o, to = ember.empty(0), torch.empty(0)
        ember.sum(x, (0,), keep, out=o)
        torch.sum(tx, (0,), keep, out=to)
        assert tuple(o.shape) == tuple(to.shape) and o.tolist() == pytest.approx(to.tolist())


def test_out_refuses_autograd_as_torch_does():
    x = ember.tensor(F, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add\(\): functions with out=\.\.\. arguments don't support automatic "
                                           r"differentiation, but one of the arguments requires grad"):
        ember.add(x, 1, out=ember.empty(3))
    with ember.no_grad():
        assert ember.add(x, 1, out=ember.empty(3)).tolist() == [2.5, -1.5, 4.0]
    leaf = ember.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        ember.add(ember.ones(3), 1, out=leaf)


def test_out_must_be_a_tensor():
    with pytest.raises(TypeError, match=r"add\(\): argument 'out' must be Tensor, not list"):
        ember.add(ember.ones(2), 1, out=[0, 0])


def test_exact_dtype_message_names_both():
    with pytest.raises(RuntimeError, match="expected out tensor to have dtype float, but got double instead"):
        ember.mm(ember.ones(2, 2), ember.ones(2, 2), out=ember.empty(2, 2, dtype=ember.float64))
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        ember.add(ember.ones(2), 1, out=ember.empty(2, dtype=ember.int64))


def test_out_aliasing_an_input():
    x, tx = _pair()
    ember.add(x, x, out=x)                          # out is an input: the out-kernel writes in place
    torch.add(tx, tx, out=tx)
    assert x.tolist() == tx.tolist()
    y = ember.arange(6.0)
    ty = torch.arange(6.0)
    ember.add(y[:3], y[1:4], out=y[2:5])            # overlapping views: computed, then copied
    torch.add(ty[:3], ty[1:4], out=ty[2:5].clone())  # (torch refuses partial overlap; ember computes first)
    assert y.tolist()[2:5] == [1.0, 3.0, 5.0]


def test_direct_out_kernels_exist_for_elementwise_ops():
    """The elementwise families write into out without a temporary tensor (CPU and CUDA); the other
    out= ops compute and copy."""
    for name in ("add", "sub", "mul", "div", "exp", "eq", "pow", "maximum", "lerp"):
        assert "cpu" in OPS[name].out_kernels, name
    for name in ("add", "mul", "div", "exp", "eq", "maximum"):
        assert "cuda" in OPS[name].out_kernels, name
    calls = []
    k = OPS["mul"].out_kernels["cpu"]
    OPS["mul"].out_kernels["cpu"] = lambda out, *a: (calls.append(out), k(out, *a))
    try:
        o = ember.empty(3)
        ember.mul(ember.ones(3), 2, out=o)
        assert calls == [o] and o.tolist() == [2.0, 2.0, 2.0]
        ember.mul(ember.ones(3), 2, out=ember.empty(3, dtype=ember.float64))  # another dtype: compute and copy
        assert len(calls) == 1
    finally:
        OPS["mul"].out_kernels["cpu"] = k


def test_defop_refuses_out_on_ops_it_cannot_serve():
    from ember.dispatch import defop
    with pytest.raises(ValueError, match="out= is one of"):
        defop("_test_out_a(Tensor self) -> (Tensor, Tensor)", out="cast")
    with pytest.raises(ValueError, match="has no dtype argument"):
        defop("_test_out_b(Tensor self) -> Tensor", out="dtype")
    assert "_test_out_a" not in OPS and "_test_out_b" not in OPS


def test_an_input_given_as_out_of_a_larger_shape():
    x, y = ember.tensor([1.0, 2.0]), ember.tensor([[10.0, 20.0], [30.0, 40.0]])
    tx, ty = torch.tensor([1.0, 2.0]), torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    with pytest.raises(RuntimeError, match=r"output with shape \[2\] doesn't match the broadcast shape \[2, 2\]"):
        torch.add(tx, ty, out=tx)
    assert "cpu" in OPS["add"].out_kernels and "cpu" not in OPS["where"].out_kernels
    for call in (lambda: ember.add(x, y, out=x), lambda: ember.where(y > 0, x, y, out=x)):   # out-kernel or not
        with pytest.raises(RuntimeError, match=r"output with shape \[2\] doesn't match the broadcast shape \[2, 2\]"):
            call()
    assert x.tolist() == [1.0, 2.0]

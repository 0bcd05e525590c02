"""The op's rules live in its declaration: the dispatcher runs the meta before the kernel, once per
input signature, and a few divergences between backends that this fixed (issue 12)."""
import numpy as np
import pytest
import torch

import ember
from ember.dispatch import OPS


@pytest.fixture
def lib():
    lib = ember.library.Library("ruletest")
    yield lib
    lib._destroy()


def _counting_meta(calls, check=None):
    def meta(x, k=1):
        calls.append((tuple(x.shape), k))
        if check is not None:
            check(x, k)
        return x._shape, x._dtype
    return meta


def test_meta_runs_before_the_kernel_once_per_signature(lib):
    calls, ran = [], []

    def check(x, k):
        if k < 0:
            raise ValueError(f"scale(): k must be >= 0, got {k}")
    lib.define("scale(Tensor x, int k=1) -> Tensor", meta=_counting_meta(calls, check))

    @lib.impl("scale", "cpu")
    def scale(x, k=1):
        ran.append(k)
        return x * k
    fn = OPS["ruletest::scale"].fn
    a, b = ember.ones(2, 3), ember.ones(4)
    fn(a, 2)
    fn(ember.zeros(2, 3), 2)          # same shapes, dtype, device and k: no second meta call
    assert calls == [((2, 3), 2)] and ran == [2, 2]
    fn(b, 2)
    fn(a, 3)
    fn(a.double(), 2)
    assert calls == [((2, 3), 2), ((4,), 2), ((2, 3), 3), ((2, 3), 2)]
    with pytest.raises(ValueError, match=r"k must be >= 0, got -1"):
        fn(a, -1)
    assert ran == [2, 2, 2, 3, 2]     # the meta refused before the kernel ran
    with pytest.raises(ValueError):   # a signature that raised is not cached: it raises again
        fn(a, -1)


def test_meta_cache_off_and_scalars_by_class(lib):
    calls = []
    meta = _counting_meta(calls)
    meta.cache = False
    lib.define("every(Tensor x, int k=1) -> Tensor", meta=meta)
    lib.impl("every", "cpu")(lambda x, k=1: x)
    a = ember.ones(3)
    OPS["ruletest::every"].fn(a)
    OPS["ruletest::every"].fn(a)
    assert len(calls) == 2

    seen = []

    def by_class(x, s):
        seen.append(s)
        return x._shape, x._dtype
    by_class.scalars_by_class = True
    lib.define("mulby(Tensor x, Scalar s) -> Tensor", meta=by_class)
    lib.impl("mulby", "cpu")(lambda x, s: x * s)
    f = OPS["ruletest::mulby"].fn
    for s in (0.5, 0.25, 0.125):       # a changing learning rate: one meta call per scalar type
        f(a, s)
    f(a, 2)
    assert seen == [0.5, 2]


def test_unhashable_arguments_run_the_meta_uncached(lib):
    calls = []

    def meta(x, dims):
        calls.append(dims)
        return x._shape, x._dtype
    lib.define("dims(Tensor x, int[] dims) -> Tensor", meta=meta)
    lib.impl("dims", "cpu")(lambda x, dims: x)
    f = OPS["ruletest::dims"].fn
    x = ember.ones(2)
    f(x, [0, 1])
    f(x, [0, 1])                       # a list is keyed as a tuple
    f(x, (0, 1))                       # a tuple is another signature (the key holds the argument's type)
    f(x, (0, 1))
    f(x, [[0], 1])                     # nested lists too
    f(x, [[0], 1])
    f(x, [{}, 1])                      # unhashable even so: the meta runs on every call
    f(x, [{}, 1])
    assert calls == [[0, 1], (0, 1), [[0], 1], [{}, 1], [{}, 1]]


def test_default_dtype_change_reaches_cached_metas():
    i = ember.arange(4)
    assert ember.exp(i).dtype is ember.float32
    old = ember.get_default_dtype()
    ember.set_default_dtype(ember.float64)
    try:
        assert ember.exp(i).dtype is ember.float64
        assert (i / 2).dtype is ember.float64
    finally:
        ember.set_default_dtype(old)
    assert ember.exp(i).dtype is ember.float32


def test_built_in_meta_errors_name_the_op():
    # nansum's meta once borrowed sum's rule and named the wrong op
    with pytest.raises(IndexError, match=r"nansum\(\): dim out of range"):
        ember.ones(2, 3).nansum(dim=5)


@pytest.mark.parametrize("values, kw", [([2.0], dict(correction=0)), ([2.0, 2.0, 2.0], {}),
                                        ([[2.0, 2.0], [1.0, 3.0]], dict(dim=1)),
                                        ([[2.0, 2.0], [1.0, 3.0]], dict(dim=0, keepdim=True))])
def test_std_gradient_where_the_deviation_is_zero(values, kw):
    """torch's gradient of std is 0 where the standard deviation is 0 (ember's was NaN)."""
    x = ember.tensor(values, requires_grad=True)
    y = x.std(**kw)
    y.backward(ember.ones(*y.shape))
    t = torch.tensor(values, requires_grad=True)
    z = t.std(**kw)
    z.backward(torch.ones(z.shape))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)
    assert not np.isnan(x.grad.numpy()).any()


@pytest.mark.parametrize("fn", ["tensordot", "einsum"])
@pytest.mark.parametrize("sa, sb", [((2, 3), (1, 4)), ((2, 1), (3, 4))])
def test_contraction_gradient_with_a_size_one_label_on_one_side(fn, sa, sb):
    """A contracted label of size 1 in one operand broadcasts (torch allows it); its gradient sums back
    (the backward raised 'shape [2, 3] is invalid for input of size 2')."""
    rng = np.random.default_rng(0)
    a0, b0 = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    a, b = ember.tensor(a0, requires_grad=True), ember.tensor(b0, requires_grad=True)
    ta, tb = torch.tensor(a0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    if fn == "tensordot":
        ember.tensordot(a, b, ([1], [0])).sum().backward()
        torch.tensordot(ta, tb, ([1], [0])).sum().backward()
    else:
        ember.einsum("ij,jk->ik", a, b).sum().backward()
        torch.einsum("ij,jk->ik", ta, tb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_written_tensor_lists_bump_every_version(lib):
    """`Tensor(a!)[]` marks a list the op writes: the entry point bumps each tensor's version counter,
    so autograd notices a saved tensor changed (as for `Tensor(a!)`)."""
    lib.define("fill_all_(Tensor(a!)[] self, float value) -> ()")
    lib.impl("fill_all_", "cpu")(lambda ts, value: None)
    a, b = ember.ones(2), ember.ones(3)
    va, vb = a._storage.version, b._storage.version
    OPS["ruletest::fill_all_"].fn([a, b], 1.0)
    assert (a._storage.version, b._storage.version) == (va + 1, vb + 1)


@pytest.mark.parametrize("p", [3.0, -1.0, 0.5])
def test_norm_of_a_0d_tensor_with_a_general_p(p):
    # raised TypeError (np.power's out= given a NumPy scalar)
    assert ember.tensor(-2.0).norm(p).item() == pytest.approx(torch.tensor(-2.0).norm(p).item())


def test_masked_fill_with_a_mask_that_broadcasts_self_on_the_cuda_host_path():
    """The CUDA kernel (run here through Triton's interpreter when there is no GPU) gave self's shape
    when the mask broadcasts self to a larger one."""
    if ember.cuda.is_available():
        pytest.skip("tests/test_cuda_samples.py runs masked_fill's samples on the GPU")
    pytest.importorskip("triton")
    import os
    os.environ["TRITON_INTERPRET"] = "1"
    x = ember.tensor([1.0, 2.0, 3.0])
    m = ember.tensor([[True, False, True], [False, False, True]])
    got = OPS["masked_fill"].kernels["cuda"](x, m, -1.0)
    assert got.tolist() == x.masked_fill(m, -1.0).tolist() == [[-1.0, 2.0, -1.0], [1.0, 2.0, -1.0]]


def test_logaddexp_special_values_on_both_backends():
    """logaddexp, the op added through the four places of ARCHITECTURE.md's "how to add an op": equal
    infinities, NaN and large gaps as torch (the CUDA kernel through Triton's interpreter without a GPU)."""
    inf, nan = float("inf"), float("nan")
    a = [1.0, -2.0, inf, -inf, 0.5, nan, 80.0, -1e30]
    b = [0.0, 3.0, inf, -inf, inf, 1.0, -80.0, -1e30]
    want = torch.logaddexp(torch.tensor(a), torch.tensor(b)).numpy()
    x, y = ember.tensor(a), ember.tensor(b)
    np.testing.assert_allclose(ember.logaddexp(x, y).numpy(), want, rtol=1e-6)
    with pytest.raises(NotImplementedError, match="logaddexp"):
        ember.logaddexp(ember.arange(3), ember.arange(3))
    if not ember.cuda.is_available():
        pytest.importorskip("triton")
        import os
        os.environ["TRITON_INTERPRET"] = "1"
        np.testing.assert_allclose(OPS["logaddexp"].kernels["cuda"](x, y).numpy(), want, rtol=1e-6)


def test_replacing_a_kernel_reaches_cached_signatures(lib, monkeypatch):
    """The meta cache maps signatures to kernels; a kernel swapped into op.kernels (a monkeypatch,
    a re-registration) is the one the next call runs."""
    lib.define("which(Tensor x) -> Tensor", meta=lambda x: (x._shape, x._dtype))
    lib.impl("which", "cpu")(lambda x: x + 1)
    f, x = OPS["ruletest::which"].fn, ember.zeros(2)
    assert f(x).tolist() == [1.0, 1.0]
    monkeypatch.setitem(OPS["ruletest::which"].kernels, "cpu", lambda x: x + 2)
    assert f(x).tolist() == [2.0, 2.0]
    lib.impl("which", "cpu")(lambda x: x + 3)
    assert f(x).tolist() == [3.0, 3.0]


def test_a_planner_makes_the_kernel_once_per_signature(lib):
    """Op.planner: plan(meta result, *args) -> kernel, called on a meta-cache miss only; the entry point
    then calls the planned kernel for that signature, and the plain kernel where nothing is cached."""
    plans = []
    lib.define("scaled(Tensor x, int k) -> Tensor", meta=lambda x, k: (x._shape, x._dtype))
    lib.impl("scaled", "cpu")(lambda x, k: x * k)
    op = OPS["ruletest::scaled"]

    @op.planner("cpu")
    def plan(meta, x, k):
        plans.append((meta, k))
        factor = float(k)     # fixed once for the signature
        return lambda x, k: x * factor
    a = ember.ones(2)
    assert op.fn(a, 3).tolist() == [3.0, 3.0] and op.fn(ember.zeros(2), 3).tolist() == [0.0, 0.0]
    assert op.fn(a, 4).tolist() == [4.0, 4.0]
    assert plans == [(((2,), ember.float32), 3), (((2,), ember.float32), 4)]


def test_a_tensor_given_for_an_int_is_never_cached():
    """x.sum(dim=t) with a 0-d tensor t: t's value may change in place, so the signature is not cached
    (a cached entry once gave the old axis, and skipped select's bounds check)."""
    import weakref
    x = ember.arange(6.0).reshape(2, 3)
    d = ember.tensor(0)
    assert x.sum(dim=d).tolist() == [3.0, 5.0, 7.0]
    d.fill_(1)
    assert x.sum(dim=d).tolist() == [3.0, 12.0]
    d.fill_(7)
    with pytest.raises(IndexError):
        x.sum(dim=d)
    i = ember.tensor(1)
    x.select(0, i)
    i.fill_(5)
    with pytest.raises(IndexError):
        x.select(0, i)
    ref = weakref.ref(d)
    del d
    assert ref() is None                # the cache keeps no argument alive


def test_equal_values_of_other_types_are_other_signatures():
    """1, 1.0 and True compare equal, but the meta refuses a float or bool dim: the key holds the type."""
    x = ember.ones(4, 6)
    assert x.sum(dim=1).shape == (4,)
    with pytest.raises(TypeError):
        x.sum(dim=1.0)
    with pytest.raises(TypeError):
        x.sum(dim=True)


def test_a_new_kernel_drops_the_planner_made_for_the_old_one(monkeypatch):
    called = []
    x = ember.ones(3)
    ember.exp(x)
    monkeypatch.setitem(OPS["exp"].kernels, "cpu", lambda t: called.append(1) or t)
    ember.exp(x)
    assert called == [1]


def test_the_meta_cache_keeps_no_generator_alive():
    import weakref
    g = ember.Generator()
    ember.rand(3, generator=g)
    ref = weakref.ref(g)
    del g
    assert ref() is None


def test_a_second_backward_through_nodes_that_saved_no_tensor():
    """As in torch, only freed saved tensors make a second backward an error: a transpose or a sum
    saved none, so backward through them twice accumulates; a product saved its inputs, so it raises."""
    x = ember.ones(2, 3, requires_grad=True)
    y = x.t()
    y.sum().backward()
    y.sum().backward()
    assert x.grad.tolist() == [[2.0] * 3] * 2
    a = ember.ones(3, requires_grad=True)
    b = a * a
    b.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        b.sum().backward()
    t = (ember.ones(4, 4, requires_grad=True) * 2).t()
    t.sum().backward()
    assert t.grad_fn.saved[0] is None      # the released node no longer holds the input it never read


# ---- one rule for a scalar fill value (core.dtype.checked_scalar), as c10's checked_convert -------------------------

@pytest.mark.parametrize("dtype,value", [("int8", 127.5), ("int8", -128.5), ("uint8", -3), ("uint8", 256),
                                         ("float16", 70000.0), ("float32", 1e39), ("float32", -1e39),
                                         ("int64", float("inf")), ("float16", float("inf")), ("int32", 7.9)])
def test_fill_value_rule_is_torch_s_for_fill_masked_fill_and_index_fill(dtype, value):
    import torch
    mask = [True, False]
    for name, call in (("fill_", lambda m, t: t.fill_(value)),
                       ("masked_fill", lambda m, t: t.masked_fill(m.tensor(mask), value)),
                       ("index_fill", lambda m, t: t.index_fill(0, m.tensor([0]), value))):
        t_out = e_out = None
        try:
            t_out = call(torch, torch.zeros(2, dtype=getattr(torch, dtype))).tolist()
        except RuntimeError:
            pass
        try:
            e_out = call(ember, ember.zeros(2, dtype=getattr(ember, dtype))).tolist()
        except RuntimeError as e:
            assert "cannot be converted to type" in str(e)
        assert e_out == t_out, f"{name}({dtype}, {value}): ember {e_out}, torch {t_out}"

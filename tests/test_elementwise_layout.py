"""The layout of elementwise ops' results, against torch: `core.shape.elementwise_strides` (torch's TensorIterator
rule) on random geometries, and the ops' results on the CPU, through the CUDA host code in Triton's interpreter,
and on the GPU (`-m cuda`): strides equal to torch's, values too."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as EF
from ember.core.shape import contiguous_strides, elementwise_strides
from ember.dispatch import OPS
from helpers import cuda_host_code_on_cpu


class _Geometry:
    """A stand-in operand: a torch tensor's shape and strides, as `elementwise_strides` reads them."""

    def __init__(self, t):
        self._shape = tuple(t.shape)
        self._stride = tuple(t.stride())


def _random_layout(rng, shape):
    """A torch tensor of `shape` in a random layout: contiguous, permuted, sliced, permuted and sliced, expanded."""
    nd = len(shape)
    kind = rng.choice(["contiguous", "permuted", "sliced", "expanded", "permuted_sliced"])
    if kind == "contiguous" or nd == 0:
        return torch.randn(shape)
    if kind in ("permuted", "permuted_sliced"):
        p = list(range(nd))
        rng.shuffle(p)
        base = [shape[i] for i in p]
        t = torch.randn([2 * n for n in base])[tuple(slice(None, None, 2) for _ in base)] \
            if kind == "permuted_sliced" else torch.randn(base)
        return t.permute([p.index(i) for i in range(nd)])
    if kind == "sliced":
        return torch.randn([n + 1 for n in shape])[tuple(slice(0, n) for n in shape)]
    return torch.randn([1 if rng.random() < 0.5 else n for n in shape]).expand(shape)


def _strides(shape, operands):
    st = elementwise_strides(tuple(shape), operands)
    return contiguous_strides(tuple(shape)) if st is None else st


def test_elementwise_strides_equal_torchs_on_random_geometries():
    """2,000 random cases of exp(x), x + y (a Python scalar y too) and where(c, x, y), operands of up to 4 dims in
    random layouts, some broadcast: the strides equal those of torch's result, size-1 dims included."""
    rng = random.Random(0)
    checked = {"unary": 0, "binary": 0, "scalar": 0, "where": 0}
    for _ in range(2000):
        nd = rng.randint(1, 4)
        shape = [rng.choice([1, 2, 3, 4]) for _ in range(nd)]

        def operand():
            sub = shape[rng.randint(0, nd):] if rng.random() < 0.3 else shape
            if rng.random() < 0.2:
                sub = [1 if rng.random() < 0.5 else n for n in sub]
            return _random_layout(rng, sub)
        kind = rng.choice(list(checked))
        x = operand()
        x = x.expand(shape) if kind in ("unary", "scalar") else x
        if kind == "unary":
            ops, r = [x], x.exp()
        elif kind == "scalar":
            ops, r = [x, 2.5], x + 2.5
        elif kind == "binary":
            y = operand()
            ops, r = [x, y], x + y
        else:
            c, y = operand() > 0, operand()
            ops, r = [c, x, y], torch.where(c, x, y)
        got = _strides(r.shape, [_Geometry(o) if isinstance(o, torch.Tensor) else o for o in ops])
        assert got == r.stride(), (kind, [(tuple(o.shape), o.stride()) if isinstance(o, torch.Tensor) else o
                                          for o in ops], tuple(r.shape))
        checked[kind] += 1
    assert min(checked.values()) > 300, checked


def test_channels_last_operands_give_a_channels_last_output():
    x = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    assert _strides(x.shape, [_Geometry(x), _Geometry(x)]) == (x + x).stride() == (60, 1, 15, 3)
    assert elementwise_strides((2, 3, 4, 5), [_Geometry(torch.randn(2, 3, 4, 5))]) is None
    assert elementwise_strides((3, 4), [2.0, None]) is None       # scalars and absent operands only


# ---- the ops -----------------------------------------------------------------------------------------------

def _cases(lib, F):
    """name -> (inputs -> result), written once for either framework."""
    return {
        "add": lambda a, b: a + b,
        "add_reversed": lambda a, b: b + a,
        "add_alpha": lambda a, b: lib.add(a, b, alpha=2.0),
        "sub_scalar": lambda a, b: a - 1.5,
        "rsub": lambda a, b: 1.5 - a,
        "mul_scalar": lambda a, b: a * 3.0,
        "div": lambda a, b: a / (b.abs() + 1),
        "rdiv": lambda a, b: 2.0 / (a.abs() + 1),
        "maximum": lambda a, b: lib.maximum(a, b),
        "gt": lambda a, b: a > b,
        "pow": lambda a, b: a ** 2,
        "exp": lambda a, b: a.exp(),
        "neg": lambda a, b: -a,
        "sigmoid": lambda a, b: a.sigmoid(),
        "gelu": lambda a, b: F.gelu(a),
        "gelu_tanh": lambda a, b: F.gelu(a, approximate="tanh"),
        "leaky_relu": lambda a, b: F.leaky_relu(a, 0.1),
        "softplus": lambda a, b: F.softplus(a),
        "where": lambda a, b: lib.where(a > 0, a, b),
        "where_scalar": lambda a, b: lib.where(a > 0, a, 0.0),
        "clamp": lambda a, b: a.clamp(-0.5, 0.5),
        "clamp_tensor": lambda a, b: lib.clamp(a, min=b),
        "lerp": lambda a, b: lib.lerp(a, b, 0.3),
        "addcmul": lambda a, b: lib.addcmul(a, a, b, value=0.5),
        "nan_to_num": lambda a, b: lib.nan_to_num(a),
        "isclose": lambda a, b: lib.isclose(a, a + b * 1e-6),
        # not elementwise, but torch's results keep self's layout too (a preserve_format clone, then the op)
        "flip": lambda a, b: a.flip(0),
        "flip_two": lambda a, b: a.flip(1, 2),
        "index_fill": lambda a, b: a.index_fill(1, lib.tensor([0, 2], device=a.device), 1.5),
        "index_put": lambda a, b: a.index_put((lib.tensor([0, 1], device=a.device),), lib.tensor(2.0, device=a.device)),
        "put": lambda a, b: a.put(lib.tensor([0, 7], device=a.device), lib.tensor([1.0, 3.0], device=a.device)),
        "index_put_mask": lambda a, b: a.index_put(((a + b).contiguous() > 0,), lib.tensor(2.0, device=a.device)),
    }


# (name, ember/torch a, b from one contiguous base array each) - the layouts of the two operands
def _layouts(lib, xa, ya):
    t = lib.tensor
    return {
        "permuted": (t(xa).permute(2, 0, 1), t(ya).permute(2, 0, 1)),
        "permuted_and_contiguous": (t(xa).permute(2, 0, 1), t(ya).permute(2, 0, 1).contiguous()),
        "contiguous_and_permuted": (t(xa).permute(2, 0, 1).contiguous(), t(ya).permute(2, 0, 1)),
        "transposed_and_broadcast": (t(xa).transpose(0, 2), t(ya)[:, :1, :1].transpose(0, 2)),
        "sliced": (t(xa)[:, ::2].permute(2, 0, 1), t(ya)[:, ::2].permute(2, 0, 1)),
    }


def _arrays():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 4, 5)).astype(np.float32), rng.standard_normal((3, 4, 5)).astype(np.float32)


def _check_layouts(device=None, names=None, layouts=None):
    xa, ya = _arrays()
    ecases, tcases = _cases(ember, EF), _cases(torch, TF)
    el, tl = _layouts(ember, xa, ya), _layouts(torch, xa, ya)
    checked = 0
    for lname in layouts or tl:
        (ea, eb), (ta, tb) = el[lname], tl[lname]
        if device is not None:
            ea, eb = ea.to(device), eb.to(device)
        for name in names or tcases:
            want = tcases[name](ta, tb)
            got = ecases[name](ea, eb)
            where = f"{name} on {lname} operands"
            assert got.stride() == want.stride(), f"{where}: strides {got.stride()}, torch {want.stride()}"
            np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-5, atol=1e-6, err_msg=where)
            checked += 1
    return checked


def test_cpu_results_take_torchs_layout():
    assert _check_layouts() == 32 * 5


def test_cpu_permuted_result_is_a_dense_tensor_of_its_own():
    """The kept layout is a dense block of its own: writes through it land, views and reshapes of it behave."""
    x = ember.arange(24.0).reshape(2, 3, 4).permute(2, 0, 1)
    y = x * 2
    assert y.stride() == (1, 12, 4) and not y.is_contiguous()
    assert y._storage is not x._storage and y._storage.nbytes == 24 * 4
    y[0, 0, 0] = -1.0
    assert float(x[0, 0, 0]) == 0.0 and float(y[0, 0, 0]) == -1.0
    want = x.numpy() * 2
    want[0, 0, 0] = -1.0
    np.testing.assert_array_equal(y.numpy(), want)
    np.testing.assert_array_equal(y.contiguous().numpy(), want)
    assert y.contiguous().is_contiguous()
    np.testing.assert_array_equal(y.permute(1, 2, 0).view(-1).numpy(), want.transpose(1, 2, 0).reshape(-1))


def test_gradients_of_permuted_elementwise_chains_are_contiguous_and_equal_torchs():
    """Grads flow through outputs in kept layouts; a leaf's .grad is laid out as the leaf (contiguous), as in torch."""
    xa, _ = _arrays()
    res = {}
    for lib, F in ((ember, EF), (torch, TF)):
        w = lib.tensor(xa, requires_grad=True)
        h = F.gelu(w.permute(2, 0, 1) * 2.0 + 1.0).sigmoid()
        (h * h).sum().backward()
        res[lib.__name__] = w.grad
    assert res["ember"].is_contiguous() and res["torch"].is_contiguous()
    np.testing.assert_allclose(res["ember"].numpy(), res["torch"].numpy(), rtol=1e-5, atol=1e-6)


_INTERP_OPS = ("add", "sub", "rsub", "mul", "div", "_rdiv", "maximum", "gt", "pow", "exp", "neg", "sigmoid", "gelu",
               "leaky_relu", "softplus", "where", "clamp", "lerp", "addcmul", "abs", "nan_to_num", "isclose", "flip",
               "index_fill", "index_put", "put", "copy_", "masked_fill", "masked_fill_")


@pytest.mark.skipif(ember.cuda.is_available(), reason="a GPU is present: test_cuda_results_take_torchs_layout runs")
def test_cuda_host_code_gives_torchs_layout_through_the_interpreter():
    pytest.importorskip("triton")
    os.environ["TRITON_INTERPRET"] = "1"
    with cuda_host_code_on_cpu(*_INTERP_OPS):
        n = _check_layouts(names=("add", "add_reversed", "rsub", "mul_scalar", "rdiv", "gt", "exp", "gelu",
                                  "where_scalar", "clamp_tensor", "lerp", "addcmul", "isclose", "flip", "flip_two",
                                  "index_fill", "index_put", "put", "index_put_mask"),
                           layouts=("permuted", "contiguous_and_permuted", "transposed_and_broadcast"))
    assert n == 19 * 3


@pytest.mark.cuda
@pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")
def test_cuda_results_take_torchs_layout():
    assert _check_layouts(device="cuda") == 32 * 5


def test_large_permuted_gelu_and_erf_keep_the_layout_and_values():
    """erf's blocked float32 path (over 2 x 65,536 elements) walks a permuted input in memory order."""
    a = np.random.default_rng(1).standard_normal((8, 160, 128)).astype(np.float32)
    for fn_e, fn_t in ((EF.gelu, TF.gelu), (ember.erf, torch.erf)):
        got, want = fn_e(ember.tensor(a).permute(0, 2, 1)), fn_t(torch.tensor(a).permute(0, 2, 1))
        assert got.stride() == want.stride() == (160 * 128, 1, 128)
        same = fn_e(ember.tensor(np.ascontiguousarray(a.transpose(0, 2, 1))))   # the layout changes no bit
        np.testing.assert_array_equal(got.numpy(), same.numpy())
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_parameters_and_scalar_powers_take_torchs_layout():
    """A Parameter (a Tensor subclass) in a kept layout counts as one; `2 ** x` is contiguous, as torch's
    pow(Scalar, Tensor); an empty tensor's channels-last contiguity is torch's stride check."""
    a = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    for lib, F in ((ember, EF), (torch, TF)):
        w = lib.nn.Parameter(lib.tensor(a).t())
        x = lib.tensor(a).t()
        got = [(w * 2).stride(), F.gelu(w).stride(), w.clamp(-1, 1).stride(), lib.lerp(w, w, 0.5).stride(),
               (2.0 ** x).stride(), (x ** 2).stride()]
        if lib is ember:
            mine = got
    assert mine == got == [(1, 4)] * 4 + [(3, 1), (1, 4)], (mine, got)
    for lib in (ember, torch):
        z = lib.zeros(2, 3, 0, 5)
        assert not z.is_contiguous(memory_format=lib.channels_last) and z.is_contiguous()
        assert z.contiguous(memory_format=lib.channels_last).stride() == (0, 1, 15, 3)


def test_dropout_keeps_the_layout_on_the_cpu_and_through_the_cuda_host_code():
    """native_dropout's output and mask, and its backward, take the input's layout, as torch's; on CUDA a
    transposed input is walked flat (one dense block) with no copy."""
    a = np.random.default_rng(4).standard_normal((6, 8)).astype(np.float32)
    tx = torch.tensor(a).t()
    want = [t.stride() for t in torch.native_dropout(tx, 0.5, True)]
    assert want == [(1, 8), (1, 8)]

    def check():
        x = ember.tensor(a).t()
        out, mask = OPS["native_dropout"].fn(x, 0.5, True)
        assert [out.stride(), mask.stride()] == want
        keep = mask.numpy()
        np.testing.assert_allclose(out.numpy(), np.where(keep, x.numpy() * 2, 0), rtol=1e-6)
        g = OPS["native_dropout_backward"].fn(out, mask, 2.0)
        assert g.stride() == (1, 8)
        np.testing.assert_allclose(g.numpy(), np.where(keep, x.numpy() * 4, 0), rtol=1e-6)
    check()
    if not ember.cuda.is_available():
        pytest.importorskip("triton")
        os.environ["TRITON_INTERPRET"] = "1"
        with cuda_host_code_on_cpu("native_dropout", "native_dropout_backward"):
            check()

"""Memory formats against torch: `ember.preserve_format` (clone, the *_like factories and `to` keep a tensor's
layout), `contiguous_format`, `channels_last(_3d)`, `contiguous(memory_format=)`, `is_contiguous(memory_format=)`,
`Module.to(memory_format=)`, and clear errors; on the CPU, through the CUDA host code in the interpreter, and on
the GPU (`-m cuda`)."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

import ember
from ember.core.shape import contiguous_strides
from helpers import cuda_host_code_on_cpu


def _geometries(lib):
    """name -> a tensor of lib in that layout (the same values in both frameworks)."""
    def base(*shape):
        return lib.arange(float(np.prod(shape))).reshape(*shape)
    return {
        "contiguous": base(3, 4, 5),
        "permuted": base(3, 4, 5).permute(2, 0, 1),
        "permuted_sliced": base(4, 5, 6).permute(2, 0, 1)[:, :, ::2],
        "sliced": base(4, 6)[:, ::2],
        "expanded": base(5, 1).expand(5, 3),
        "size1_odd_stride": base(3, 1).as_strided((3, 1), (1, 3)),
        "channels_last": base(2, 4, 5, 3).permute(0, 3, 1, 2),
        "channels_last_3d": base(2, 3, 4, 5, 6).permute(0, 4, 1, 2, 3),
        "empty_permuted": base(0, 3).t(),
    }


FACTORIES = {
    "clone": lambda L, t: t.clone(),
    "empty_like": lambda L, t: L.empty_like(t),
    "zeros_like": lambda L, t: L.zeros_like(t),
    "ones_like": lambda L, t: L.ones_like(t),
    "full_like": lambda L, t: L.full_like(t, 2.5),
    "rand_like": lambda L, t: L.rand_like(t),
    "randn_like": lambda L, t: L.randn_like(t),
    "randint_like": lambda L, t: L.randint_like(t, 5),
    "to_float64": lambda L, t: t.to(L.float64),
    "double": lambda L, t: t.double(),
    "to_copy": lambda L, t: t.to(t.dtype, copy=True),
    "clone_contiguous": lambda L, t: t.clone(memory_format=L.contiguous_format),
    "to_contiguous": lambda L, t: t.to(memory_format=L.contiguous_format),
}
VALUES = ("clone", "zeros_like", "ones_like", "full_like", "to_float64", "double", "to_copy", "clone_contiguous",
          "to_contiguous")


@pytest.mark.parametrize("what", FACTORIES)
def test_new_tensors_take_torchs_layout(what):
    eg, tg = _geometries(ember), _geometries(torch)
    for name in tg:
        got, want = FACTORIES[what](ember, eg[name]), FACTORIES[what](torch, tg[name])
        assert got.stride() == want.stride(), f"{what} of a {name} tensor: strides {got.stride()}, torch {want.stride()}"
        assert tuple(got.shape) == tuple(want.shape) and got.dtype is getattr(ember, str(want.dtype).split(".")[1])
        if what in VALUES:
            np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"{what} of a {name} tensor")


@pytest.mark.parametrize("fmt", ["contiguous_format", "channels_last", "channels_last_3d"])
def test_contiguous_and_is_contiguous_in_each_format(fmt):
    ef, tf = getattr(ember, fmt), getattr(torch, fmt)
    eg, tg = _geometries(ember), _geometries(torch)
    rank = {"channels_last": 4, "channels_last_3d": 5}.get(fmt)
    for name in tg:
        e, t = eg[name], tg[name]
        assert e.is_contiguous(memory_format=ef) == t.is_contiguous(memory_format=tf), (name, fmt)
        if rank is not None and t.dim() != rank:
            with pytest.raises(RuntimeError, match=f"required rank {rank} tensor to use {fmt} format"):
                e.contiguous(memory_format=ef)
            continue
        got, want = e.contiguous(memory_format=ef), t.contiguous(memory_format=tf)
        assert got.stride() == want.stride(), (name, fmt)
        assert (got is e) == (want is t), (name, fmt)       # already in that format: itself
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        c = e.clone(memory_format=ef)
        assert c.stride() == t.clone(memory_format=tf).stride() and c.is_contiguous(memory_format=ef)


def test_module_to_channels_last_and_a_conv_on_it():
    torch.manual_seed(0)
    tm = torch.nn.Conv2d(3, 8, 3, padding=1)
    em = ember.nn.Conv2d(3, 8, 3, padding=1)
    em.load_state_dict({k: ember.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    w = em.weight
    em.to(memory_format=ember.channels_last)
    tm.to(memory_format=torch.channels_last)
    assert em.weight is w and em.weight.stride() == tm.weight.stride() == (27, 1, 9, 3)
    assert em.bias.stride() == tm.bias.stride()          # 1-d: left as it is
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(np.float32)
    ex = ember.tensor(x).to(memory_format=ember.channels_last)
    tx = torch.tensor(x).to(memory_format=torch.channels_last)
    assert ex.stride() == tx.stride() == (126, 1, 21, 3)
    np.testing.assert_allclose(em(ex).detach().numpy(), tm(tx).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_memory_formats_are_torchs_objects_by_name_and_identity():
    assert repr(ember.channels_last) == "ember.channels_last" and isinstance(ember.preserve_format, ember.memory_format)
    for f in (ember.preserve_format, ember.contiguous_format, ember.channels_last, ember.channels_last_3d):
        assert pickle.loads(pickle.dumps(f)) is f


def test_bad_memory_formats_fail_clearly():
    x = ember.randn(3, 4)
    with pytest.raises(TypeError, match=r"clone\(\): memory_format must be an ember.memory_format .* got 'cl'"):
        x.clone(memory_format="cl")
    with pytest.raises(TypeError, match=r"to\(\): memory_format must be an ember.memory_format"):
        x.to(memory_format=torch.channels_last)
    with pytest.raises(TypeError, match=r"to\(\): memory_format must be an ember.memory_format"):
        ember.nn.Linear(2, 2).to(memory_format="channels_last")        # no 4-d tensor in it: still refused
    with pytest.raises(RuntimeError, match=r"to\(\): required rank 4 tensor to use channels_last format"):
        x.to(ember.float64, memory_format=ember.channels_last)
    with pytest.raises(RuntimeError, match="clone\\(\\): required rank 4 tensor to use channels_last format, got a "
                                           "tensor of shape \\[3, 4\\]"):
        x.clone(memory_format=ember.channels_last)
    assert x.contiguous(memory_format=ember.preserve_format) is x       # as torch: a contiguous self is fine
    with pytest.raises(RuntimeError, match="preserve memory format is unsupported by the contiguous operator"):
        x.t().contiguous(memory_format=ember.preserve_format)
    assert x.is_contiguous(memory_format=ember.preserve_format) and not x.t().is_contiguous(ember.preserve_format)
    with pytest.raises(RuntimeError, match="empty_like\\(\\): required rank 5 tensor to use channels_last_3d"):
        ember.empty_like(x, memory_format=ember.channels_last_3d)


def test_grads_through_a_preserving_clone_and_cast():
    a = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(np.float32)
    res = {}
    for lib in (ember, torch):
        w = lib.tensor(a, requires_grad=True)
        y = w.permute(2, 0, 1).clone().double() * 2
        assert y.stride() == (1, 20, 5)
        y.sin().sum().backward()
        res[lib.__name__] = w.grad.numpy()
    np.testing.assert_allclose(res["ember"], res["torch"], rtol=1e-6)


@pytest.mark.skipif(ember.cuda.is_available(), reason="a GPU is present: test_cuda_layouts_match_torch runs")
def test_cuda_cast_keeps_the_layout_through_the_interpreter():
    pytest.importorskip("triton")
    os.environ["TRITON_INTERPRET"] = "1"
    eg, tg = _geometries(ember), _geometries(torch)
    with cuda_host_code_on_cpu("to_dtype"):
        for name in ("permuted", "permuted_sliced", "channels_last", "expanded"):
            got, want = eg[name].to(ember.float16), tg[name].to(torch.float16)
            assert got.stride() == want.stride(), name
            np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())


@pytest.mark.cuda
@pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")
def test_cuda_layouts_match_torch():
    eg, tg = _geometries(ember), _geometries(torch)
    for name in tg:
        e, t = eg[name].cuda(), tg[name]
        if name in ("permuted", "channels_last", "channels_last_3d", "size1_odd_stride"):   # dense: kept, as torch
            assert e.stride() == t.cuda().stride() == t.stride(), name
        elif name in ("sliced", "permuted_sliced", "expanded"):     # not dense: .cuda() copies row-major, as torch
            assert e.stride() == t.cuda().stride() == contiguous_strides(tuple(t.shape)), name
        np.testing.assert_array_equal(e.cpu().numpy(), t.numpy())
        # the factories from a CUDA tensor of that geometry in either framework
        tc = torch.empty_strided(tuple(e.shape), e.stride(), dtype=t.dtype, device="cuda").copy_(t)
        for what in ("clone", "zeros_like", "full_like", "randn_like", "to_float64", "clone_contiguous"):
            got, want = FACTORIES[what](ember, e), FACTORIES[what](torch, tc)
            assert got.device.type == "cuda" and got.stride() == want.stride(), (what, name)
            if what in VALUES:
                np.testing.assert_array_equal(got.cpu().numpy(), want.cpu().numpy(), err_msg=f"{what} of {name}")
        if t.dim() == 4:
            got = e.contiguous(memory_format=ember.channels_last)
            assert got.stride() == t.contiguous(memory_format=torch.channels_last).stride()
            np.testing.assert_array_equal(got.cpu().numpy(), t.numpy())


def test_to_copies_only_as_torch_does():
    """`to(memory_format=f)` alone returns self where torch's suggest_memory_format already gives f (a permuted
    3-d tensor counts as contiguous_format), and copies into f otherwise or when a copy is made anyway."""
    for name in ("contiguous", "permuted", "channels_last", "channels_last_3d", "sliced"):
        e, t = _geometries(ember)[name], _geometries(torch)[name]
        for fmt in ("contiguous_format", "channels_last", "preserve_format"):
            if fmt == "channels_last" and t.dim() != 4:
                continue
            for kw in ({}, {"copy": True}):
                got = e.to(memory_format=getattr(ember, fmt), **kw)
                want = t.to(memory_format=getattr(torch, fmt), **kw)
                assert (got is e) == (want is t) and got.stride() == want.stride(), (name, fmt, kw)
            got, want = e.to(ember.float64, memory_format=getattr(ember, fmt)), t.to(torch.float64,
                                                                                  memory_format=getattr(torch, fmt))
            assert got.stride() == want.stride(), (name, fmt, "float64")
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_to_a_dtype_and_a_format_casts_in_one_copy_that_grads_flow_through():
    a = np.random.default_rng(2).standard_normal((2, 3, 4, 5)).astype(np.float32)
    res = {}
    for lib in (ember, torch):
        w = lib.tensor(a, requires_grad=True)
        y = w.to(lib.float64, memory_format=lib.channels_last)
        assert y.stride() == (60, 1, 15, 3) and y.dtype is lib.float64
        if lib is ember:
            assert type(y.grad_fn).__name__ == "CopyBackward0"     # the cast and the layout: one copy, not two
        (y.sin() * 3).sum().backward()
        res[lib.__name__] = w.grad
    assert res["ember"].dtype is ember.float32 and res["ember"].is_contiguous()
    np.testing.assert_allclose(res["ember"].numpy(), res["torch"].numpy(), rtol=1e-6)


def test_leaf_grads_take_their_leafs_layout_as_torchs():
    """torch's layout contract: a dense leaf that is not row-major (transposed, channels-last) gets a .grad in its
    own strides, one with gaps a row-major one; optimizer state (zeros_like) follows the parameter."""
    a = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    got = {}
    for lib in (ember, torch):
        leaves = [lib.tensor(a).t().requires_grad_(), lib.tensor(a)[:, ::2].requires_grad_(),
                  lib.tensor(a).reshape(1, 2, 3, 4).to(memory_format=lib.channels_last).requires_grad_()]
        for w in leaves:
            (w * w).sum().backward()
            (w * 3).sum().backward()            # the second backward accumulates into the first grad
        opt = lib.optim.SGD(leaves, lr=0.1, momentum=0.9)
        opt.step()
        got[lib.__name__] = [(w.grad.stride(), opt.state[w]["momentum_buffer"].stride(), w.grad.numpy().copy())
                             for w in leaves]
    for (es, eb, eg), (ts, tb, tg) in zip(got["ember"], got["torch"]):
        assert es == ts and eb == tb, (es, ts, eb, tb)
        np.testing.assert_allclose(eg, tg, rtol=1e-6)

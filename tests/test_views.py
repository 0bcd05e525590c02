"""View ops against PyTorch: geometry (shape, stride, offset), values, storage and version sharing."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember
from helpers import assert_same

# torch warns about x.T on tensors that are not 2-D
pytestmark = pytest.mark.filterwarnings("ignore:The use of `x.T`", "ignore:Tensor.T is deprecated",
                                        "ignore:Tensor.mT is deprecated")


def base_pair(shape, dtype="float32"):
    """A fresh contiguous root tensor with distinct values (so values pin the geometry down)."""
    n = int(np.prod(shape)) if shape else 1
    e = ember.arange(n, dtype=ember.float32).reshape(*shape) if shape else ember.tensor(0.0)
    t = torch.arange(n, dtype=torch.float32).reshape(*shape) if shape else torch.tensor(0.0)
    if dtype != "float32":
        from helpers import DTYPES
        e, t = e.to(DTYPES[dtype][0]), t.to(DTYPES[dtype][1])
    e, t = e.clone(), t.clone()
    assert e._base is None and t._base is None
    return e, t


def assert_view(ev, tv, eroot, troot, *, is_view=True):
    """Same geometry and values as torch, and a view of `eroot` exactly when torch's is one of `troot`."""
    assert tuple(ev.shape) == tuple(tv.shape), f"shape {tuple(ev.shape)} != torch {tuple(tv.shape)}"
    assert tuple(ev.stride()) == tuple(tv.stride()), f"stride {ev.stride()} != torch {tv.stride()}"
    assert_same(ev, tv)
    t_shares = tv.untyped_storage().data_ptr() == troot.untyped_storage().data_ptr()
    e_shares = ev.untyped_storage() is eroot.untyped_storage()
    assert e_shares == t_shares, f"ember shares storage: {e_shares}, torch: {t_shares}"
    if t_shares:
        assert ev.storage_offset() == tv.storage_offset(), \
            f"storage_offset {ev.storage_offset()} != torch {tv.storage_offset()}"
        assert ev.data_ptr() - eroot.data_ptr() == ev.storage_offset() * ev.element_size()
        assert ev._version == eroot._version
    assert (ev._base is eroot) == (tv._base is troot), f"_base: ember {ev._base is eroot}, torch {tv._base is troot}"
    assert (ev._base is None) == (tv._base is None)
    if is_view:
        assert t_shares


def check_write_through(ev, eroot, tv, troot):
    """Writing into a (non-overlapping) view changes the base, like torch, and bumps the shared version."""
    if ev.numel() == 0 or _overlapping(tv):
        return
    v0 = eroot._version
    src = torch.arange(tv.numel(), dtype=torch.float32).reshape(tv.shape) * -1 - 1
    tv.copy_(src)
    from helpers import from_torch
    ev.copy_(from_torch(src))
    assert_same(eroot, troot)
    assert eroot._version == v0 + 1 == ev._version


def _overlapping(t):
    offs = {t.storage_offset() + sum(i * s for i, s in zip(idx, t.stride())) for idx in np.ndindex(*t.shape)}
    return len(offs) != t.numel()


# ---- each view op ---------------------------------------------------------------------------

SHAPE = (2, 3, 4)

CASES = [
    ("view", lambda x: x.view(6, 4)), ("view_-1", lambda x: x.view(-1)), ("view_tuple", lambda x: x.view((4, -1))),
    ("view_same", lambda x: x.view(2, 3, 4)), ("view_as", lambda x: x.view_as(x.reshape(4, 6))),
    ("view_1s", lambda x: x.view(1, 2, 1, 12, 1)),
    ("reshape", lambda x: x.reshape(3, 8)), ("reshape_list", lambda x: x.reshape([4, -1])),
    ("as_strided", lambda x: x.as_strided((3, 3), (4, 1), 2)), ("as_strided_overlap", lambda x: x.as_strided((4, 3), (1, 1))),
    ("transpose", lambda x: x.transpose(0, 2)), ("transpose_neg", lambda x: x.transpose(-1, -2)),
    ("swapaxes", lambda x: x.swapaxes(0, 1)), ("swapdims", lambda x: x.swapdims(2, 0)),
    ("permute", lambda x: x.permute(2, 0, 1)), ("permute_tuple", lambda x: x.permute((1, 2, 0))),
    ("permute_neg", lambda x: x.permute(-1, 0, -2)), ("mT", lambda x: x.mT), ("T", lambda x: x.T),
    ("expand", lambda x: x[:, :1].expand(2, 5, 4)), ("expand_new", lambda x: x.expand(3, 1, 2, 3, 4)),
    ("expand_-1", lambda x: x[:1].expand(-1, -1, 4)), ("expand_as", lambda x: x[:1].expand_as(x)),
    ("broadcast_to", lambda x: x[:, :, :1].broadcast_to((2, 3, 5))),
    ("squeeze", lambda x: x[:1, :, None].squeeze()), ("squeeze_dim", lambda x: x[:1].squeeze(0)),
    ("squeeze_dim_noop", lambda x: x.squeeze(1)), ("squeeze_tuple", lambda x: x[:1, :, None].squeeze((0, 2))),
    ("squeeze_neg", lambda x: x[:, :, :1].squeeze(-1)),
    ("unsqueeze", lambda x: x.unsqueeze(1)), ("unsqueeze_end", lambda x: x.unsqueeze(3)),
    ("unsqueeze_neg", lambda x: x.unsqueeze(-1)), ("unsqueeze_0", lambda x: x.unsqueeze(0)),
    ("flatten", lambda x: x.flatten()), ("flatten_range", lambda x: x.flatten(1)), ("flatten_neg", lambda x: x.flatten(0, -2)),
    ("unflatten", lambda x: x.unflatten(2, (2, 2))), ("unflatten_-1", lambda x: x.unflatten(-1, (-1, 2))),
    ("narrow", lambda x: x.narrow(2, 1, 2)), ("narrow_neg", lambda x: x.narrow(1, -2, 2)),
    ("select", lambda x: x.select(1, 2)), ("select_neg", lambda x: x.select(-1, -1)),
    ("diagonal", lambda x: x.diagonal()), ("diagonal_offset", lambda x: x.diagonal(1, 1, 2)),
    ("diagonal_neg_offset", lambda x: x.diagonal(-1, 2, 1)), ("diagonal_empty", lambda x: x.diagonal(5, 1, 2)),
    ("movedim", lambda x: x.movedim(0, -1)), ("movedim_tuple", lambda x: x.movedim((0, 1), (2, 0))),
    ("moveaxis", lambda x: x.moveaxis(1, 0)),
    ("unfold", lambda x: x.unfold(2, 2, 1)), ("unfold_step", lambda x: x.unfold(1, 2, 2)),
    ("t_2d", lambda x: x[0].t()), ("t_1d", lambda x: x[0, 0].t()),
    ("getitem_int", lambda x: x[1]), ("getitem_neg", lambda x: x[-1, -2]), ("getitem_slice", lambda x: x[:, 1:]),
    ("getitem_step", lambda x: x[..., ::2]), ("getitem_step3", lambda x: x[:, ::2, 1::3]),
    ("getitem_none", lambda x: x[None]), ("getitem_none_mid", lambda x: x[:, None, 1]),
    ("getitem_none_end", lambda x: x[..., None]), ("getitem_ellipsis", lambda x: x[..., 1]),
    ("getitem_ellipsis_mid", lambda x: x[1, ..., 2]), ("getitem_all", lambda x: x[1, 2, 3]),
    ("getitem_empty", lambda x: x[:, 3:1]), ("getitem_past_end", lambda x: x[5:]),
    ("getitem_neg_slice", lambda x: x[:, -2:-1, -3:]), ("getitem_nones", lambda x: x[None, 0, None, ..., None]),
    ("getitem_np_int", lambda x: x[np.int64(1)]), ("getitem_big_step", lambda x: x[:, ::5]),
    ("chain", lambda x: x.transpose(0, 1)[1:].unsqueeze(0).expand(2, 2, 2, 4).select(-1, 3)),
    ("unfold_0", lambda x: x.unfold(0, 0, 1)), ("narrow_tensor_start", lambda x: x.narrow(0, x.new_tensor(1).long(), 1)),
]


@pytest.mark.parametrize("name,fn", CASES, ids=[c[0] for c in CASES])
def test_view_op(name, fn):
    for layout in ("contiguous", "view"):
        e, t = base_pair(SHAPE)
        eroot, troot = e, t
        if layout == "view":  # the op applied to a view: _base is still the root
            e, t = e.transpose(0, 1).transpose(0, 1), t.transpose(0, 1).transpose(0, 1)
        ev, tv = fn(e), fn(t)
        assert_view(ev, tv, eroot, troot)
        check_write_through(ev, eroot, tv, troot)


@pytest.mark.parametrize("dtype", ["bool", "int64", "float16", "bfloat16", "float64"])
def test_views_other_dtypes(dtype):
    e, t = base_pair(SHAPE, dtype)
    for _, fn in CASES:
        assert_view(fn(e), fn(t), e, t)


MULTI = [
    ("unbind", lambda x: x.unbind(1)), ("unbind0", lambda x: x.unbind()), ("split", lambda x: x.split(2, 2)),
    ("split_sizes", lambda x: x.split([1, 2], 1)), ("split_big", lambda x: x.split(10)),
    ("split_neg_dim", lambda x: x.split(3, -1)), ("chunk", lambda x: x.chunk(3, 2)), ("chunk_more", lambda x: x.chunk(5, 1)),
    ("chunk_uneven", lambda x: x.chunk(3, -1)), ("fn_split", lambda x: (ember if isinstance(x, ember.Tensor) else torch).split(x, 1)),
    ("fn_chunk", lambda x: (ember if isinstance(x, ember.Tensor) else torch).chunk(x, 2, 1)),
    ("fn_unbind", lambda x: (ember if isinstance(x, ember.Tensor) else torch).unbind(x, 2)),
    ("iter", lambda x: tuple(iter(x))),
]


@pytest.mark.parametrize("name,fn", MULTI, ids=[c[0] for c in MULTI])
def test_multi_view_ops(name, fn):
    e, t = base_pair(SHAPE)
    ev, tv = fn(e), fn(t)
    assert isinstance(ev, tuple) and len(ev) == len(tv)
    for a, b in zip(ev, tv):
        assert_view(a, b, e, t)
        check_write_through(a, e, b, t)


def test_empty_and_zero_dim_views():
    cases = [
        ((0, 3), lambda x: x.view(3, 0)), ((0, 3), lambda x: x.view(-1)), ((0, 3), lambda x: x.t().view(3, 0)),
        ((0, 3), lambda x: x.t().reshape(3, 0)), ((0, 3), lambda x: x.reshape(0, 1, 3)),
        ((0, 3), lambda x: x[None]), ((0, 3), lambda x: x.expand(2, 0, 3)), ((0, 3), lambda x: x.transpose(0, 1)),
        ((0, 3), lambda x: x.unsqueeze(1)), ((0, 3), lambda x: x.diagonal()), ((0, 3), lambda x: x[:, 1]),
        ((0, 3), lambda x: x.chunk(2)), ((0, 3), lambda x: x.split(0)), ((0, 3), lambda x: x.chunk(2, 1)),
        ((0, 3), lambda x: x.unbind(1)), ((0, 3), lambda x: x.unbind(0)), ((0, 3), lambda x: x.unfold(1, 2, 1)),
        ((0, 3), lambda x: x.flatten()), ((3, 0, 2), lambda x: x.flatten(1)), ((3, 0, 2), lambda x: x.view(3, 2, 0)),
        ((), lambda x: x.view(1, 1)), ((), lambda x: x.view(-1)), ((), lambda x: x.reshape(())),
        ((), lambda x: x.unsqueeze(0)), ((), lambda x: x.unsqueeze(-1)), ((), lambda x: x.squeeze()),
        ((), lambda x: x.squeeze(0)), ((), lambda x: x.squeeze((0,))), ((), lambda x: x.expand(2, 3)),
        ((), lambda x: x.expand(1, 1)), ((), lambda x: x.expand(())), ((), lambda x: x.transpose(0, -1)),
        ((), lambda x: x.permute(())), ((), lambda x: x.T), ((), lambda x: x.t()), ((), lambda x: x.flatten()),
        ((), lambda x: x.unfold(0, 1, 1)), ((), lambda x: x[None]), ((), lambda x: x[...]), ((), lambda x: x[..., None]),
        ((), lambda x: x.movedim(0, 0)), ((), lambda x: x.as_strided((2, 2), (0, 0))),
        ((1,), lambda x: x.expand(3, 4, 1)), ((1,), lambda x: x.flatten()), ((4,), lambda x: x.t()),
        ((4,), lambda x: x.T), ((4,), lambda x: x.flatten(0, 0)),
    ]
    for shape, fn in cases:
        e, t = base_pair(shape)
        ev, tv = fn(e), fn(t)
        if isinstance(tv, tuple):
            assert len(ev) == len(tv)
            for a, b in zip(ev, tv):
                assert_view(a, b, e, t)
            continue
        if tv is t:  # torch returns the input itself (flatten of a 1-D tensor)
            assert ev is e
            continue
        assert_view(ev, tv, e, t)


# ---- reshape / contiguous: a view when possible, else a copy ------------------------------

RESHAPES = [
    (lambda x: x, (6, 4)), (lambda x: x.transpose(0, 1), (6, 4)), (lambda x: x.transpose(0, 1), (3, 8)),
    (lambda x: x.transpose(0, 1), (3, 2, 4)), (lambda x: x.transpose(0, 1), (3, 2, 2, 2)),
    (lambda x: x.transpose(1, 2), (2, 12)), (lambda x: x.transpose(1, 2), (2, 4, 3)), (lambda x: x.permute(2, 0, 1), (4, 6)),
    (lambda x: x[:, :, ::2], (2, 6)), (lambda x: x[:, :, ::2], (6, 2)), (lambda x: x[:, :, ::2], (12,)),
    (lambda x: x[:, 1:], (4, 4)), (lambda x: x[:, 1:], (2, 2, 2, 2)), (lambda x: x[:1], (3, 4)),
    (lambda x: x[:, :1], (2, 4)), (lambda x: x[:, :1], (8,)), (lambda x: x[..., :1], (6,)),
    (lambda x: x[:, :, :1].expand(2, 3, 4), (6, 4)), (lambda x: x[:, :, :1].expand(2, 3, 4), (2, 3, 2, 2)),
    (lambda x: x[:, :1].expand(2, 5, 4), (10, 4)), (lambda x: x[:, :1].expand(2, 5, 4), (2, 20)),
    (lambda x: x.unsqueeze(1).transpose(1, 3), (2, 4, 3)), (lambda x: x.diagonal(0, 1, 2), (6,)),
    (lambda x: x.unfold(2, 2, 1), (2, 3, 6)), (lambda x: x.unfold(2, 2, 2), (2, 3, 4)),
    (lambda x: x[0, 0], (2, 2)), (lambda x: x[0].t(), (12,)), (lambda x: x[0].t(), (4, 3)),
]


@pytest.mark.parametrize("i", range(len(RESHAPES)))
def test_reshape_view_or_copy(i):
    prep, shape = RESHAPES[i]
    e, t = base_pair(SHAPE)
    ep, tp = prep(e), prep(t)
    er, tr = ep.reshape(shape), tp.reshape(shape)
    t_view = tr.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
    assert_view(er, tr, e, t, is_view=False)
    # view() succeeds exactly when reshape() can return a view
    try:
        tp.view(shape)
    except RuntimeError:
        assert not t_view
        with pytest.raises(RuntimeError, match="view size is not compatible with input tensor's size and stride"):
            ep.view(shape)
    else:
        assert t_view
        assert_view(ep.view(shape), tp.view(shape), e, t)
    if not t_view:  # a copy: writing to it leaves the base alone
        er.fill_(-5)
        assert_same(e, t)


@pytest.mark.parametrize("i", range(len(RESHAPES)))
def test_contiguous_copies_only_when_needed(i):
    prep, _ = RESHAPES[i]
    e, t = base_pair(SHAPE)
    ep, tp = prep(e), prep(t)
    assert ep.is_contiguous() == tp.is_contiguous()
    ec, tc = ep.contiguous(), tp.contiguous()
    assert (ec is ep) == (tc is tp)
    assert ec.is_contiguous()
    assert_same(ec, tc)
    if ec is not ep:
        assert ec._base is None and ec.untyped_storage() is not e.untyped_storage()
        assert tuple(ec.stride()) == tuple(tc.stride())


# ---- errors -------------------------------------------------------------------------------

ERRORS = [
    (lambda x: x.transpose(0, 1).view(6, 4), RuntimeError, "view size is not compatible with input tensor's size and stride"),
    (lambda x: x.transpose(0, 1).view(-1), RuntimeError, "view size is not compatible with input tensor's size and stride"),
    (lambda x: x[:, :, :2].view(12), RuntimeError, "view size is not compatible"),
    (lambda x: x[:, :2].view(16), RuntimeError, "view size is not compatible"),
    (lambda x: x.view(-1, -1), RuntimeError, "only one dimension can be inferred"),
    (lambda x: x.view(5, -1), RuntimeError, "invalid for input of size 24"),
    (lambda x: x.view(2, 3, 4, 0), RuntimeError, "invalid for input of size 24"),
    (lambda x: x.view(-2, 12), RuntimeError, "invalid shape dimension"),
    (lambda x: x.reshape(-1, -1), RuntimeError, "only one dimension can be inferred"),
    (lambda x: x.reshape(7, -1), RuntimeError, "invalid"),
    (lambda x: x[:0].view(-1, 0), RuntimeError, None),
    (lambda x: x.transpose(0, 3), IndexError, "out of range"), (lambda x: x.transpose(-4, 0), IndexError, "out of range"),
    (lambda x: x.permute(0, 1), RuntimeError, None), (lambda x: x.permute(0, 0, 1), RuntimeError, None),
    (lambda x: x.permute(0, 1, 3), IndexError, None),
    (lambda x: x.squeeze(3), IndexError, None), (lambda x: x.squeeze((0, 0)), RuntimeError, None),
    (lambda x: x.unsqueeze(4), IndexError, None), (lambda x: x.unsqueeze(-5), IndexError, None),
    (lambda x: x.select(0, 2), IndexError, None), (lambda x: x.select(3, 0), IndexError, None),
    (lambda x: x.select(1, -4), IndexError, None),
    (lambda x: x.diagonal(0, 0, 0), RuntimeError, None), (lambda x: x.diagonal(0, 0, 3), IndexError, None),
    (lambda x: x.unfold(0, 3, 1), RuntimeError, None), (lambda x: x.unfold(0, 1, 0), RuntimeError, None),
    (lambda x: x.unfold(3, 1, 1), IndexError, None),
    (lambda x: x.unflatten(1, (4, -1)), RuntimeError, None), (lambda x: x.unflatten(1, (-1, -1)), RuntimeError, None),
    (lambda x: x.unflatten(3, (1, 4)), IndexError, None),
    (lambda x: x.movedim((0, 1), (1,)), RuntimeError, None), (lambda x: x.movedim(0, 3), IndexError, None),
    (lambda x: x.movedim((0, 0), (1, 2)), RuntimeError, None),
    (lambda x: x.expand(3, 4), RuntimeError, None), (lambda x: x.expand(2, 3, 5), RuntimeError, "must match the existing size"),
    (lambda x: x.expand(-1, -1, -1, -1), RuntimeError, None),
    (lambda x: x.as_strided((2, 2), (1, 1), 100), RuntimeError, None), (lambda x: x.as_strided((2,), (1, 1)), RuntimeError, None),
    (lambda x: x.as_strided((2,), (-1,)), RuntimeError, None),
    (lambda x: x.flatten(2, 1), RuntimeError, None), (lambda x: x.flatten(0, 5), IndexError, None),
    (lambda x: x.narrow(0, 1, 2), RuntimeError, None), (lambda x: x.narrow(0, 3, 0), IndexError, None),
    (lambda x: x.narrow(3, 0, 1), IndexError, None), (lambda x: x.narrow(0, 0, -1), RuntimeError, None),
    (lambda x: x.split(0), RuntimeError, None), (lambda x: x.split(-1), RuntimeError, None),
    (lambda x: x.split([1, 2]), RuntimeError, None), (lambda x: x.split(1, 3), IndexError, None),
    (lambda x: x.chunk(0), RuntimeError, None), (lambda x: x.chunk(2, 3), IndexError, None),
    (lambda x: x.unbind(3), IndexError, None),
    (lambda x: x.t(), RuntimeError, None), (lambda x: x[0, 0].mT, RuntimeError, None),
    (lambda x: x[0, 0, 0, 0], IndexError, "too many indices"), (lambda x: x[2], IndexError, None),
    (lambda x: x[:, -4], IndexError, None), (lambda x: x[1.5], IndexError, None), (lambda x: x[::-1], ValueError, None),
    (lambda x: x[::0], ValueError, None), (lambda x: x[0, 0, 0][0], IndexError, "0-dim"),
    (lambda x: x[0, 0, 0].select(0, 0), IndexError, None), (lambda x: x[0, 0, 0].narrow(0, 0, 1), RuntimeError, None),
    (lambda x: x[0, 0, 0].chunk(1), RuntimeError, None), (lambda x: x[0, 0, 0].split(1), RuntimeError, None),
    (lambda x: x[0, 0, 0].unbind(), IndexError, None), (lambda x: x[0, 0, 0].diagonal(), IndexError, None),
    (lambda x: x[0, 0, 0].unfold(0, 2, 1), RuntimeError, None),
    (lambda x: x.as_strided((2,), (1,), -1), RuntimeError, "storage offset"),
    (lambda x: x.unfold(0, -1, 1), RuntimeError, None), (lambda x: x.unflatten(1, ()), RuntimeError, "non-empty"),
    (lambda x: x.split([4, -1], 2), RuntimeError, "non-negative"), (lambda x: x.expand(2, 3, -2), RuntimeError, None),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_view_errors(i):
    fn, exc, match = ERRORS[i]
    e, t = base_pair(SHAPE)
    with pytest.raises(exc):
        fn(t)
    with pytest.raises(exc, match=match):
        fn(e)


def test_view_shares_version_counter():
    e = ember.zeros(3, 4)
    v = e[1:]
    w = v.t().unsqueeze(0)
    assert e._version == v._version == w._version == 0
    w.add_(1)
    assert e._version == v._version == w._version == 1
    e.mul_(2)
    assert w._version == 2
    assert e.tolist() == [[0.0] * 4] + [[2.0] * 4] * 2
    u = e.reshape(12)
    u[3] = 7.0
    assert e[0, 3].item() == 7.0 and e._version == 3
    c = e.t().reshape(12)  # a copy
    assert c._version == 0 and c._base is None


def test_setitem_through_views():
    e, t = base_pair(SHAPE)
    for idx, val in (((0, slice(None), 1), 5.0), ((Ellipsis, 2), -1.0), ((1, None, slice(1, None, 2)), 9.0),
                     ((slice(None), -1), 3.5)):
        e[idx] = val
        t[idx] = val
    e[0] = ember.ones(3, 4) * 2
    t[0] = torch.ones(3, 4) * 2
    e[1, :, ::2] = ember.tensor([1.0, 2.0])
    t[1, :, ::2] = torch.tensor([1.0, 2.0])
    assert_same(e, t)


# ---- property tests: random chains of view ops --------------------------------------------

def _factor_shape(draw, n, zero_dims):
    """A random shape with `n` elements (or containing a 0 when n == 0)."""
    if n == 0:
        k = draw(st.integers(1, 3))
        shape = [draw(st.integers(0, 4)) for _ in range(k)]
        shape[draw(st.integers(0, k - 1))] = 0
        return shape
    primes, m, p = [], n, 2
    while m > 1:
        while m % p == 0:
            primes.append(p)
            m //= p
        p += 1
    primes = draw(st.permutations(primes))
    k = draw(st.integers(1, 4))
    shape = [1] * k
    for f in primes:
        shape[draw(st.integers(0, k - 1))] *= f
    if draw(st.booleans()):
        shape[draw(st.integers(0, k - 1))] = -1
    return shape


@st.composite
def view_step(draw, shape):
    """One view op, applicable or not, as (description, fn)."""
    nd = len(shape)
    dim = st.integers(-nd - 1, nd) if nd else st.integers(-1, 1)
    kinds = ["view", "reshape", "transpose", "permute", "unsqueeze", "squeeze", "squeeze_dim", "flatten", "getitem",
             "expand", "movedim", "T", "mT", "t", "narrow", "select", "diagonal", "unfold", "unflatten", "split",
             "chunk", "unbind", "as_strided_same"]
    kind = draw(st.sampled_from(kinds))
    n = int(np.prod(shape)) if shape else 1
    if kind in ("view", "reshape"):
        s = _factor_shape(draw, n, shape)
        return f"{kind}{tuple(s)}", lambda x: getattr(x, kind)(*s)
    if kind == "transpose":
        a, b = draw(dim), draw(dim)
        return f"transpose({a},{b})", lambda x: x.transpose(a, b)
    if kind == "permute":
        p = list(draw(st.permutations(range(nd))))
        if p and draw(st.booleans()):
            p[0] -= nd
        return f"permute{tuple(p)}", lambda x: x.permute(tuple(p))
    if kind == "unsqueeze":
        d = draw(st.integers(-nd - 2, nd + 1))
        return f"unsqueeze({d})", lambda x: x.unsqueeze(d)
    if kind == "squeeze":
        return "squeeze()", lambda x: x.squeeze()
    if kind == "squeeze_dim":
        ds = tuple(draw(st.lists(dim, min_size=1, max_size=2)))
        ds = ds[0] if len(ds) == 1 and draw(st.booleans()) else ds
        return f"squeeze({ds})", lambda x: x.squeeze(ds)
    if kind == "flatten":
        a, b = draw(dim), draw(dim)
        return f"flatten({a},{b})", lambda x: x.flatten(a, b)
    if kind == "getitem":
        idx = []
        for d in range(nd):
            size = shape[d]
            c = draw(st.sampled_from(["int", "slice", "full", "none", "skip"]))
            if c == "int":
                idx.append(draw(st.integers(-size - 1, size)))
            elif c == "slice":
                idx.append(slice(draw(st.none() | st.integers(-5, 5)), draw(st.none() | st.integers(-5, 5)),
                                 draw(st.none() | st.integers(1, 3))))
            elif c == "full":
                idx.append(slice(None))
            elif c == "none":
                idx.extend([None, slice(None)])
            else:
                break
        if draw(st.booleans()):
            idx.insert(draw(st.integers(0, len(idx))), Ellipsis)
        if draw(st.booleans()):
            idx.append(None)
        idx = tuple(idx)
        return f"[{idx}]", lambda x: x[idx]
    if kind == "expand":
        lead = draw(st.lists(st.integers(1, 3), max_size=2))
        sizes = [draw(st.sampled_from([s, -1, 2, 3])) if s == 1 else draw(st.sampled_from([s, -1, s + 1]))
                 for s in shape]
        sz = tuple(lead + sizes)
        return f"expand{sz}", lambda x: x.expand(sz)
    if kind == "movedim":
        k = draw(st.integers(1, max(1, nd)))
        src = draw(st.lists(dim, min_size=k, max_size=k))
        dst = draw(st.lists(dim, min_size=k, max_size=k))
        return f"movedim({src},{dst})", lambda x: x.movedim(src, dst)
    if kind in ("T", "mT"):
        return kind, lambda x: getattr(x, kind)
    if kind == "t":
        return "t()", lambda x: x.t()
    if kind == "narrow":
        d = draw(dim)
        a, ln = draw(st.integers(-5, 5)), draw(st.integers(0, 4))
        return f"narrow({d},{a},{ln})", lambda x: x.narrow(d, a, ln)
    if kind == "select":
        d, i = draw(dim), draw(st.integers(-4, 4))
        return f"select({d},{i})", lambda x: x.select(d, i)
    if kind == "diagonal":
        o, a, b = draw(st.integers(-3, 3)), draw(dim), draw(dim)
        return f"diagonal({o},{a},{b})", lambda x: x.diagonal(o, a, b)
    if kind == "unfold":
        d, s, step = draw(dim), draw(st.integers(0, 3)), draw(st.integers(1, 3))
        return f"unfold({d},{s},{step})", lambda x: x.unfold(d, s, step)
    if kind == "unflatten":
        d = draw(dim)
        size = shape[d] if nd and -nd <= d < nd else 1
        s = _factor_shape(draw, size, None)
        return f"unflatten({d},{s})", lambda x: x.unflatten(d, s)
    if kind in ("split", "chunk", "unbind"):
        d = draw(dim)
        arg = draw(st.integers(1, 3))
        pick = draw(st.integers(0, 5))

        def fn(x):
            parts = x.unbind(d) if kind == "unbind" else getattr(x, kind)(arg, d)
            return parts[pick % len(parts)] if parts else x.view(x.shape)
        return f"{kind}({arg},{d})[{pick}]", fn
    # as_strided with the current geometry: the identity view
    return "as_strided_same", lambda x: x.as_strided(tuple(x.shape), tuple(x.stride()), x.storage_offset())


@st.composite
def chains(draw):
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    if int(np.prod(shape)) == 0 and draw(st.booleans()):  # keep most cases non-empty
        shape = tuple(max(s, 1) for s in shape)
    return shape, draw(st.integers(1, 4)), draw(st.data())


def _numpy_view(root_e, v):
    """The view's elements read with NumPy's strided semantics from the root's flat buffer."""
    flat = np.asarray(root_e.numpy()).reshape(-1)
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat[v.storage_offset():], shape=tuple(v.shape),
                                           strides=tuple(s * item for s in v.stride()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_random_view_chains(case):
    shape, n_ops, data = case
    e, t = base_pair(shape)
    ev, tv = e, t
    for _ in range(n_ops):
        desc, fn = data.draw(view_step(tuple(tv.shape)), label="op")
        try:
            tn = fn(tv)
        except (RuntimeError, IndexError, ValueError, TypeError) as exc:
            with pytest.raises(type(exc)):
                fn(ev)
            break
        en = fn(ev)
        if tn is tv:
            assert en is ev, desc
            continue
        ev, tv = en, tn
        assert_view(ev, tv, e, t, is_view=False)
        if tv.untyped_storage().data_ptr() == t.untyped_storage().data_ptr():
            np.testing.assert_array_equal(_numpy_view(e, ev), tv.numpy())
        else:  # a copy (reshape): not a view of the root any more
            e, t = ev, tv
    check_write_through(ev, e, tv, t)


def test_empty_tensors_are_contiguous():
    e = ember.empty(3, 0).t()
    assert e.is_contiguous() == torch.empty(3, 0).t().is_contiguous()
    assert e.contiguous() is e


def test_zero_dim_integer_tensor_index_is_a_view():
    e, t = base_pair(SHAPE)
    assert_view(e[ember.tensor(1)], t[torch.tensor(1)], e, t)

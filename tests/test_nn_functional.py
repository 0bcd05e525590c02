"""ember.nn.functional against torch.nn.functional: outputs and input gradients, float32 and float64."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
from helpers import assert_same, from_torch, make_pair, to_torch

FLOATS = ["float32", "float64"]
TOL = {"float32": (2e-5, 2e-5), "float64": (1e-10, 1e-10)}


def _leaf_pairs(shapes, dtype, seed=0, low=-2.0, high=2.0):
    es, ts = [], []
    for i, s in enumerate(shapes):
        e, t = make_pair(s, dtype, low=low, high=high, seed=seed + i)
        es.append(e.requires_grad_())
        ts.append(t.requires_grad_())
    return es, ts


def check(e_fn, t_fn, shapes, dtype, seed=0, tol=None, low=-2.0, high=2.0):
    """Runs both functions on the same leaves; compares outputs, then gradients for a random upstream grad."""
    rtol, atol = tol or TOL[dtype]
    es, ts = _leaf_pairs(shapes, dtype, seed, low, high)
    ye, yt = e_fn(*es), t_fn(*ts)
    assert_same(ye, yt, rtol=rtol, atol=atol)
    ge, gt = make_pair(tuple(yt.shape), dtype, seed=seed + 100)
    ye.backward(ge)
    yt.backward(gt)
    for i, (e, t) in enumerate(zip(es, ts)):
        assert t.grad is not None, f"torch has no grad for input {i}"
        assert e.grad is not None, f"ember has no grad for input {i}"
        assert_same(e.grad, t.grad, rtol=rtol, atol=atol)
    return ye, yt


# ---- linear / embedding ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(dtype, bias):
    shapes = [(2, 3, 5), (4, 5)] + ([(4,)] if bias else [])
    check(lambda x, w, *b: F.linear(x, w, *b), lambda x, w, *b: TF.linear(x, w, *b), shapes, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding(dtype, padding_idx):
    idx = torch.tensor([[0, 2, 4], [2, 2, 1]])
    check(lambda w: F.embedding(from_torch(idx), w, padding_idx), lambda w: TF.embedding(idx, w, padding_idx),
          [(5, 3)], dtype)


def test_embedding_max_norm_renormalises_rows_in_place():
    w_e, w_t = make_pair((6, 4), "float64", seed=3)
    idx = torch.tensor([1, 3, 3])
    ye = F.embedding(from_torch(idx), w_e, max_norm=1.0)
    yt = TF.embedding(idx, w_t, max_norm=1.0)
    assert_same(ye, yt)
    assert_same(w_e, w_t)  # the weight rows were rescaled in place


def test_embedding_padding_idx_out_of_range():
    w = ember.randn(4, 2)
    with pytest.raises(AssertionError, match="Padding_idx"):
        F.embedding(ember.tensor([0]), w, padding_idx=4)


# ---- normalisation ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm(dtype, affine):
    ns = (4, 5)
    shapes = [(3, 4, 5)] + ([ns, ns] if affine == "both" else [ns] if affine == "weight" else [])
    check(lambda x, *wb: F.layer_norm(x, ns, *wb, eps=1e-4),
          lambda x, *wb: TF.layer_norm(x, ns, *wb, eps=1e-4), shapes, dtype)


def test_layer_norm_int_shape_and_error():
    e, t = make_pair((2, 6), "float64")
    assert_same(F.layer_norm(e, 6), TF.layer_norm(t, (6,)))
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[5\]"):
        F.layer_norm(e, (5,))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("eps", [None, 1e-3])
@pytest.mark.parametrize("weight", [True, False])
def test_rms_norm(dtype, eps, weight):
    shapes = [(3, 2, 8)] + ([(8,)] if weight else [])
    check(lambda x, *w: F.rms_norm(x, (8,), *w, eps=eps), lambda x, *w: TF.rms_norm(x, (8,), *w, eps=eps),
          shapes, dtype)


def test_group_norm():
    check(lambda x, w, b: F.group_norm(x, 2, w, b), lambda x, w, b: TF.group_norm(x, 2, w, b),
          [(2, 4, 3, 3), (4,), (4,)], "float64")


def test_normalize():
    check(lambda x: F.normalize(x, dim=-1), lambda x: TF.normalize(x, dim=-1), [(3, 4)], "float64")


# ---- activations ------------------------------------------------------------------------------

ACTS = {
    "relu": (F.relu, TF.relu), "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "silu": (F.silu, TF.silu), "tanh": (F.tanh, torch.tanh), "sigmoid": (F.sigmoid, torch.sigmoid),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "softplus": (F.softplus, TF.softplus), "elu": (F.elu, TF.elu), "mish": (F.mish, TF.mish),
    "relu6": (lambda x: F.relu6(x * 4), lambda x: TF.relu6(x * 4)),
    "softmax0": (lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0)),
    "softmax-1": (lambda x: F.softmax(x, dim=-1), lambda x: TF.softmax(x, dim=-1)),
    "log_softmax1": (lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1)),
    "softmin": (lambda x: F.softmin(x, 1), lambda x: TF.softmin(x, 1)),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(ACTS))
def test_activation(name, dtype):
    fe, ft = ACTS[name]
    check(fe, ft, [(3, 4, 5)], dtype)


def test_relu_inplace_and_softmax_dtype():
    e, t = make_pair((3, 4), "float32")
    r = F.relu(e, inplace=True)
    assert r is e
    assert_same(e, TF.relu(t))
    e, t = make_pair((3, 4), "float32")
    assert_same(F.softmax(e, -1, dtype=ember.float64), TF.softmax(t, -1, dtype=torch.float64))
    assert_same(F.log_softmax(e, -1, dtype=ember.float64), TF.log_softmax(t, -1, dtype=torch.float64))


def test_softmax_implicit_dim_warns_and_matches():
    e, t = make_pair((2, 3, 4), "float64")
    with pytest.warns(UserWarning, match="Implicit dimension"):
        ye = F.softmax(e)
    assert_same(ye, TF.softmax(t, 0))


def test_gelu_bad_approximate():
    with pytest.raises(RuntimeError, match="approximate"):
        F.gelu(ember.randn(2), approximate="fast")


# ---- dropout ----------------------------------------------------------------------------------

def test_dropout_eval_and_p0_are_identity():
    x = ember.randn(10, 10)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_statistics_and_scaling():
    ember.manual_seed(0)
    x = ember.ones(200, 500)
    y = F.dropout(x, 0.3)
    a = y.numpy()
    frac_zero = float((a == 0).mean())
    assert abs(frac_zero - 0.3) < 0.01
    kept = a[a != 0]
    np.testing.assert_allclose(kept, 1 / 0.7, rtol=1e-6)


def test_dropout_gradient_is_mask_times_scale():
    ember.manual_seed(1)
    x = ember.randn(50, 40, dtype=ember.float64).requires_grad_()
    y = F.dropout(x, 0.25)
    y.sum().backward()
    mask = (y.detach().numpy() != 0)
    np.testing.assert_allclose(x.grad.numpy(), mask / 0.75)
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() * mask / 0.75)


def test_dropout_uses_ember_rng():
    ember.manual_seed(123)
    a = F.dropout(ember.ones(64), 0.5)
    ember.manual_seed(123)
    b = F.dropout(ember.ones(64), 0.5)
    c = F.dropout(ember.ones(64), 0.5)
    assert np.array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(b.numpy(), c.numpy())


def test_dropout_p1_and_bad_p():
    x = ember.randn(4, 4).requires_grad_()
    y = F.dropout(x, 1.0)
    assert float(y.abs().sum()) == 0.0
    y.sum().backward()
    assert float(x.grad.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        F.dropout(x, 1.5)


def test_dropout_inplace():
    ember.manual_seed(0)
    x = ember.ones(100)
    y = F.dropout(x, 0.5, inplace=True)
    assert y is x
    assert set(np.unique(x.numpy()).tolist()) <= {0.0, 2.0}


# ---- losses -----------------------------------------------------------------------------------

def _ce_case(shape, C, dtype, seed, ignore_some=True, ignore_index=-100):
    x_e, x_t = make_pair(shape, dtype, seed=seed)
    tshape = (shape[0],) + tuple(shape[2:]) if len(shape) > 1 else ()
    rng = np.random.default_rng(seed)
    tgt = rng.integers(0, C, size=tshape)
    if ignore_some and tgt.size > 1:
        tgt.reshape(-1)[::3] = ignore_index
    return x_e, x_t, from_torch(torch.tensor(tgt)), torch.tensor(tgt)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 2, 2), (5,)])
def test_cross_entropy_class_indices(dtype, reduction, weighted, smoothing, shape):
    C = 5
    x_e, x_t, t_e, t_t = _ce_case(shape, C, dtype, seed=len(shape))
    w_e, w_t = make_pair((C,), dtype, low=0.2, high=2.0, seed=9)
    kw_e = dict(reduction=reduction, label_smoothing=smoothing, weight=w_e if weighted else None)
    kw_t = dict(reduction=reduction, label_smoothing=smoothing, weight=w_t if weighted else None)
    check(lambda x: F.cross_entropy(x, t_e, **kw_e), lambda x: TF.cross_entropy(x, t_t, **kw_t),
          [shape], dtype, seed=len(shape))


def test_cross_entropy_custom_ignore_index():
    x_e, x_t, t_e, t_t = _ce_case((8, 4), 4, "float64", seed=2, ignore_index=1)
    check(lambda x: F.cross_entropy(x, t_e, ignore_index=1), lambda x: TF.cross_entropy(x, t_t, ignore_index=1),
          [(8, 4)], "float64", seed=2)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x = ember.randn(3, 4)
    t = ember.full((3,), -100, dtype=ember.int64)
    assert np.isnan(F.cross_entropy(x, t).item())
    assert np.isnan(TF.cross_entropy(torch.randn(3, 4), torch.full((3,), -100)).item())


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_probability_targets(dtype, reduction, weighted, smoothing):
    p_e, p_t = make_pair((4, 3, 2), dtype, low=0.0, high=1.0, seed=5)
    p_t = p_t / p_t.sum(1, keepdim=True)
    p_e = from_torch(p_t)
    w_e, w_t = make_pair((3,), dtype, low=0.5, high=1.5, seed=6)
    kw_e = dict(reduction=reduction, label_smoothing=smoothing, weight=w_e if weighted else None)
    kw_t = dict(reduction=reduction, label_smoothing=smoothing, weight=w_t if weighted else None)
    check(lambda x: F.cross_entropy(x, p_e, **kw_e), lambda x: TF.cross_entropy(x, p_t, **kw_t),
          [(4, 3, 2)], dtype)


def test_cross_entropy_errors():
    with pytest.raises(ValueError, match="batch_size"):
        F.cross_entropy(ember.randn(3, 4), ember.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(ember.randn(3, 4), ember.tensor([0, 1, 2]), reduction="avg")
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(ember.randn(3, 4), ember.tensor([0, 1, 7]))
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        F.cross_entropy(ember.randn(3, 4), ember.tensor([0, 1, 2]), weight=ember.ones(3))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(reduction, weighted):
    x_e, x_t, t_e, t_t = _ce_case((7, 4, 3), 4, "float64", seed=11)
    w_e, w_t = make_pair((4,), "float64", low=0.2, high=2.0, seed=12)
    check(lambda x: F.nll_loss(x.log_softmax(1), t_e, w_e if weighted else None, reduction=reduction),
          lambda x: TF.nll_loss(x.log_softmax(1), t_t, w_t if weighted else None, reduction=reduction),
          [(7, 4, 3)], "float64", seed=11)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_l1_smooth_l1(dtype, reduction):
    check(lambda a, b: F.mse_loss(a, b, reduction=reduction), lambda a, b: TF.mse_loss(a, b, reduction=reduction),
          [(3, 4), (3, 4)], dtype)
    check(lambda a, b: F.l1_loss(a, b, reduction=reduction), lambda a, b: TF.l1_loss(a, b, reduction=reduction),
          [(3, 4), (3, 4)], dtype)
    check(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=0.5),
          lambda a, b: TF.smooth_l1_loss(a, b, reduction=reduction, beta=0.5), [(3, 4), (3, 4)], dtype)


def test_mse_legacy_reduce_args():
    e1, t1 = make_pair((3, 4), "float64", seed=1)
    e2, t2 = make_pair((3, 4), "float64", seed=2)
    with pytest.warns(UserWarning):
        ye = F.mse_loss(e1, e2, size_average=False)
    with pytest.warns(UserWarning):
        yt = TF.mse_loss(t1, t2, size_average=False)
    assert_same(ye, yt)


def test_binary_cross_entropy_variants():
    p_e, p_t = make_pair((4, 3), "float64", low=0.05, high=0.95, seed=3)
    check(lambda x: F.binary_cross_entropy(x, p_e), lambda x: TF.binary_cross_entropy(x, p_t),
          [(4, 3)], "float64", low=0.05, high=0.95)
    pw_e, pw_t = make_pair((3,), "float64", low=0.5, high=2.0, seed=4)
    check(lambda x: F.binary_cross_entropy_with_logits(x, p_e, pos_weight=pw_e),
          lambda x: TF.binary_cross_entropy_with_logits(x, p_t, pos_weight=pw_t), [(4, 3)], "float64")


# ---- scaled_dot_product_attention --------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", ["plain", "bool_mask", "float_mask", "causal", "causal_rect", "scale", "3d", "5d"])
def test_sdpa(dtype, case):
    B = (2, 3)
    Lq, S, E, Ev = 4, 5, 6, 3
    if case == "3d":
        B = (2,)
    if case == "5d":
        B = (2, 1, 2)
    if case == "causal":
        S = Lq
    shapes = [B + (Lq, E), B + (S, E), B + (S, Ev)]
    kw = {}
    if case == "bool_mask":
        m = torch.rand(Lq, S, generator=torch.Generator().manual_seed(0)) > 0.3
        m[:, 0] = True
        kw_t, kw_e = dict(attn_mask=m), dict(attn_mask=from_torch(m))
    elif case == "float_mask":
        m = torch.randn(B[-1], Lq, S, dtype=getattr(torch, dtype), generator=torch.Generator().manual_seed(1))
        kw_t, kw_e = dict(attn_mask=m), dict(attn_mask=from_torch(m))
    elif case in ("causal", "causal_rect"):
        kw_t = kw_e = dict(is_causal=True)
    elif case == "scale":
        kw_t = kw_e = dict(scale=0.3)
    else:
        kw_t = kw_e = kw
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw_e),
          lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, **kw_t), shapes, dtype)


def test_sdpa_fully_masked_row_gives_zeros_like_torch():
    m = torch.ones(3, 5, dtype=torch.bool)
    m[1] = False
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=from_torch(m)),
          lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, attn_mask=m),
          [(2, 3, 4), (2, 5, 4), (2, 5, 4)], "float64")


def test_sdpa_gqa():
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
          lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, enable_gqa=True),
          [(2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8)], "float64")


def test_sdpa_causal_with_mask_raises():
    q = ember.randn(1, 2, 4)
    with pytest.raises(RuntimeError, match="is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=ember.ones(2, 2, dtype=ember.bool), is_causal=True)


def test_sdpa_dropout_matches_explicit_composition():
    q = ember.randn(2, 3, 4, dtype=ember.float64)
    k = ember.randn(2, 5, 4, dtype=ember.float64)
    v = ember.randn(2, 5, 4, dtype=ember.float64)
    ember.manual_seed(7)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)
    ember.manual_seed(7)
    attn = ((q @ k.mT) / 2.0).softmax(-1)
    ref = F.dropout(attn, 0.4) @ v
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-12)
    assert not np.allclose(out.numpy(), (attn @ v).numpy())


# ---- pad / one_hot ----------------------------------------------------------------------------

@pytest.mark.parametrize("pad", [(1, 2), (0, 1, 2, 0), (1, 1, 1, 1, 1, 1), (-1, 2), (2, -1, 0, 1),
                                 (1, 0, 0, 0, 0, 0, 2, 1)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_pad_constant(pad, dtype):
    check(lambda x: F.pad(x, pad, value=0.5), lambda x: TF.pad(x, pad, value=0.5), [(2, 3, 4, 5)], dtype)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_other_modes(mode):
    check(lambda x: F.pad(x, (1, 2, 2, 1), mode=mode), lambda x: TF.pad(x, (1, 2, 2, 1), mode=mode),
          [(2, 3, 4, 5)], "float64")
    check(lambda x: F.pad(x, (2, 1), mode=mode), lambda x: TF.pad(x, (2, 1), mode=mode), [(2, 3, 4)], "float64")


def test_pad_int_and_errors():
    x = ember.tensor([[1, 2], [3, 4]])
    assert_same(F.pad(x, (1, 1)), TF.pad(torch.tensor([[1, 2], [3, 4]]), (1, 1)))
    with pytest.raises(ValueError, match="divisible by 2"):
        F.pad(x, (1,))
    with pytest.raises(ValueError, match="two times the input dimension"):
        F.pad(x, (1, 1, 1, 1, 1, 1))


def test_one_hot():
    t = torch.tensor([[0, 3], [2, 1]])
    assert_same(F.one_hot(from_torch(t), 5), TF.one_hot(t, 5))
    assert_same(F.one_hot(from_torch(t)), TF.one_hot(t))


# ---- convolution ------------------------------------------------------------------------------

CONV_CASES = [
    dict(),
    dict(stride=2),
    dict(padding=1),
    dict(padding=(2, 1), stride=(2, 1)),
    dict(dilation=2, padding=2),
    dict(groups=2),
    dict(groups=4, stride=2, padding=1),
    dict(padding="same", dilation=(1, 2)),
    dict(padding="valid"),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(dtype, case, bias):
    kw = CONV_CASES[case]
    g = kw.get("groups", 1)
    shapes = [(2, 4, 7, 6), (6 if g != 4 else 8, 4 // g, 3, 2)]
    if bias:
        shapes.append((shapes[1][0],))
    check(lambda x, w, *b: F.conv2d(x, w, *b, **kw), lambda x, w, *b: TF.conv2d(x, w, *b, **kw), shapes, dtype,
          tol=(1e-5, 1e-5) if dtype == "float32" else None)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("hw", [(8, 12), (9, 13)])
def test_conv2d_patch_embedding_fast_path(dtype, hw):
    shapes = [(2, 3) + hw, (5, 3, 4, 4), (5,)]
    ye, _ = check(lambda x, w, b: F.conv2d(x, w, b, stride=4), lambda x, w, b: TF.conv2d(x, w, b, stride=4),
                  shapes, dtype, tol=(1e-5, 1e-5) if dtype == "float32" else None)
    # the ViT idiom: flatten(2).transpose(1, 2)
    assert tuple(ye.flatten(2).transpose(1, 2).shape) == (2, (hw[0] // 4) * (hw[1] // 4), 5)


def test_conv2d_unbatched_and_errors():
    check(lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: TF.conv2d(x, w, padding=1),
          [(3, 5, 5), (2, 3, 3, 3)], "float64")
    with pytest.raises(RuntimeError, match="channels"):
        F.conv2d(ember.randn(1, 3, 5, 5), ember.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(ember.randn(1, 3, 5, 5), ember.randn(2, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(RuntimeError, match="Kernel size can't be greater"):
        F.conv2d(ember.randn(1, 3, 2, 2), ember.randn(2, 3, 3, 3))


def test_conv1d_and_unfold():
    check(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), lambda x, w, b: TF.conv1d(x, w, b, stride=2,
                                                                                            padding=1),
          [(2, 3, 9), (4, 3, 3), (4,)], "float64")
    check(lambda x: F.unfold(x, (2, 3), padding=1, stride=2), lambda x: TF.unfold(x, (2, 3), padding=1, stride=2),
          [(2, 3, 5, 6)], "float64")


def test_conv2d_non_contiguous_input():
    xe, xt = make_pair((2, 3, 6, 5), "float64", layout="transposed")
    we, wt = make_pair((4, 3, 3, 3), "float64", seed=1)
    assert_same(F.conv2d(xe, we, padding=1), TF.conv2d(xt, wt, padding=1))


def test_functional_outputs_follow_input_dtype():
    x = ember.randn(2, 4, dtype=ember.float64)
    w = ember.randn(3, 4, dtype=ember.float64)
    assert F.linear(x, w).dtype is ember.float64
    assert F.layer_norm(x, (4,)).dtype is ember.float64
    assert F.scaled_dot_product_attention(x[None], x[None], x[None]).dtype is ember.float64
    assert to_torch(F.pad(x, (1, 1))).dtype == torch.float64

"""nn.TransformerDecoderLayer, nn.TransformerDecoder and nn.Transformer against torch 2.13 (CPU): state dict
keys both ways, outputs and the gradients of the inputs and of every parameter, masks, errors, init."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
from helpers import assert_same, from_torch, to_torch

pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")]

TOL = {"float32": 1e-5, "float64": 1e-10}
D, H, FF = 8, 2, 16
N, T, S = 2, 5, 4  # batch, target length, source (memory) length


def _tdt(dtype):
    return getattr(torch, dtype)


def _edt(dtype):
    return getattr(ember, dtype)


def _randomize(tm, seed=0):
    """Random non-trivial biases and LayerNorm weights, so every parameter shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in tm.named_parameters():
            if "norm" in n and n.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) + 0.5)
            elif n.endswith("bias"):
                p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 0.6 - 0.3)


def _load(em, tm):
    em.load_state_dict(OrderedDict((k, from_torch(v)) for k, v in tm.state_dict().items()))


def _layer_pair(dtype, **kw):
    torch.manual_seed(0)
    tm = torch.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, dtype=_tdt(dtype), **kw)
    em = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, dtype=_edt(dtype), **kw)
    _randomize(tm)
    _load(em, tm)
    return em, tm


def _decoder_pair(dtype, num_layers=2, **kw):
    torch.manual_seed(0)
    tl = torch.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, dtype=_tdt(dtype), **kw)
    tm = torch.nn.TransformerDecoder(tl, num_layers, norm=torch.nn.LayerNorm(D, dtype=_tdt(dtype)))
    el = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, dtype=_edt(dtype), **kw)
    em = nn.TransformerDecoder(el, num_layers, norm=nn.LayerNorm(D, dtype=_edt(dtype)))
    _randomize(tm)
    _load(em, tm)
    return em, tm


def _transformer_pair(dtype, **kw):
    torch.manual_seed(0)
    tm = torch.nn.Transformer(D, H, 2, 2, FF, dropout=0.0, dtype=_tdt(dtype), **kw)
    em = nn.Transformer(D, H, 2, 2, FF, dropout=0.0, dtype=_edt(dtype), **kw)
    _randomize(tm)
    _load(em, tm)
    return em, tm


def _x(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=_tdt(dtype))


def _seq(L, dtype, batch_first, seed, batched=True):
    if not batched:
        return _x((L, D), dtype, seed)
    return _x((N, L, D) if batch_first else (L, N, D), dtype, seed)


def _kpm(L, batched=True):
    """Bool key padding mask (True = padded): the last positions of the second sequence."""
    m = torch.zeros(N, L, dtype=torch.bool)
    m[1, L - 2:] = True
    return m if batched else m[1]


def _memory_mask(kind, dtype):
    if kind == "float":
        return _x((T, S), dtype, 7)
    m = torch.zeros(T, S, dtype=torch.bool)
    m[0, 1:] = True
    m[2, 0] = True
    m[4, 2] = True
    return m


def _conv(v):
    return from_torch(v) if isinstance(v, torch.Tensor) else v


def _check(em, tm, inputs, dtype, **kwargs):
    """Same inputs (leaves) and kwargs into both modules; compares outputs, input grads and every parameter
    grad after backward of a random weighting of the output."""
    tol = TOL[dtype]
    ts = [t.clone().requires_grad_() for t in inputs]
    es = [from_torch(t).requires_grad_() for t in inputs]
    yt = tm(*ts, **kwargs)
    ye = em(*es, **{k: _conv(v) for k, v in kwargs.items()})
    assert_same(ye, yt, rtol=tol, atol=tol)
    w = _x(tuple(yt.shape), dtype, 99)
    (yt * w).sum().backward()
    (ye * from_torch(w)).sum().backward()
    for e, t in zip(es, ts):
        assert_same(e.grad, t.grad, rtol=tol, atol=tol)
    tgrads = dict(tm.named_parameters())
    names = [n for n, _ in em.named_parameters()]
    assert names == list(tgrads)
    for n, p in em.named_parameters():
        assert tgrads[n].grad is not None, n
        assert p.grad is not None, n
        assert_same(p.grad, tgrads[n].grad, rtol=tol, atol=tol)
    return ye, yt


# ---- structure and state dicts ------------------------------------------------------------------------------

def _structure_equal(em, tm):
    assert [n for n, _ in em.named_modules()] == [n for n, _ in tm.named_modules()]
    assert list(em.state_dict()) == list(tm.state_dict())
    assert {k: tuple(v.shape) for k, v in em.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    # both ways, strict
    _load(em, tm)
    tm.load_state_dict(OrderedDict((k, to_torch(v)) for k, v in em.state_dict().items()))


@pytest.mark.parametrize("kw", [dict(), dict(norm_first=True, activation="gelu", batch_first=True),
                                dict(bias=False), dict(layer_norm_eps=1e-6)])
def test_state_dicts_and_modules_match_torch(kw):
    _structure_equal(nn.TransformerDecoderLayer(D, H, FF, **kw), torch.nn.TransformerDecoderLayer(D, H, FF, **kw))
    _structure_equal(nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, FF, **kw), 3, nn.LayerNorm(D)),
                     torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, H, FF, **kw), 3,
                                                 torch.nn.LayerNorm(D)))
    _structure_equal(nn.Transformer(D, H, 2, 3, FF, **kw), torch.nn.Transformer(D, H, 2, 3, FF, **kw))


def test_module_activation_and_attributes():
    em = nn.TransformerDecoderLayer(D, H, FF, activation=nn.GELU())
    tm = torch.nn.TransformerDecoderLayer(D, H, FF, activation=torch.nn.GELU())
    _structure_equal(em, tm)
    assert nn.TransformerDecoderLayer(D, H).activation is ember.nn.functional.relu
    assert nn.TransformerDecoderLayer(D, H, activation="gelu").activation is ember.nn.functional.gelu
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerDecoderLayer(D, H, activation="tanh")
    m = nn.Transformer(D, H, 1, 2, FF, batch_first=True)
    assert (m.d_model, m.nhead, m.batch_first) == (D, H, True)
    assert m.decoder.num_layers == 2 and m.encoder.num_layers == 1
    assert isinstance(m.encoder.norm, nn.LayerNorm) and isinstance(m.decoder.norm, nn.LayerNorm)
    assert m.decoder.layers[0] is not m.decoder.layers[1]
    assert m.decoder.layers[0].linear1.weight is not m.decoder.layers[1].linear1.weight
    assert repr(m).replace("ember", "torch") == repr(torch.nn.Transformer(D, H, 1, 2, FF, batch_first=True))


def test_custom_encoder_and_decoder():
    enc, dec = nn.Identity(), nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, FF), 1)
    m = nn.Transformer(D, H, custom_encoder=enc, custom_decoder=dec)
    assert m.encoder is enc and m.decoder is dec
    assert list(m.state_dict()) == ["decoder." + k for k in dec.state_dict()]


def test_transformer_init_is_xavier_uniform():
    ember.manual_seed(0)
    m = nn.Transformer(D, H, 1, 1, FF, dtype=ember.float64)
    seen = 0
    for n, p in m.named_parameters():
        a = p.detach().numpy()
        if p.dim() > 1:
            fan_out, fan_in = p.shape
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            assert np.abs(a).max() <= bound, n
            assert np.abs(a).max() > 0.8 * bound, n  # Linear's default bound is 1/sqrt(fan_in), smaller here
            seen += 1
    assert seen == 10  # encoder layer: 4, decoder layer: 6
    assert not m.decoder.layers[0].multihead_attn.in_proj_bias.detach().numpy().any()


# ---- generate_square_subsequent_mask ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [None, "float64", "float32", "bool"])
def test_generate_square_subsequent_mask(dtype):
    e = nn.Transformer.generate_square_subsequent_mask(5, dtype=None if dtype is None else _edt(dtype))
    t = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=None if dtype is None else _tdt(dtype))
    assert_same(e, t, rtol=0, atol=0)
    e = nn.Transformer.generate_square_subsequent_mask(3, device="cpu")
    assert e.device == ember.device("cpu") and e.dtype is ember.get_default_dtype()


# ---- TransformerDecoderLayer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_layer_matches_torch(dtype, norm_first, batch_first, activation):
    em, tm = _layer_pair(dtype, norm_first=norm_first, batch_first=batch_first, activation=activation)
    tgt, mem = _seq(T, dtype, batch_first, 1), _seq(S, dtype, batch_first, 2)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=_tdt(dtype))
    _check(em, tm, [tgt, mem], dtype, tgt_mask=causal, memory_mask=_memory_mask("float", dtype),
           tgt_key_padding_mask=_kpm(T), memory_key_padding_mask=_kpm(S))


CAUSAL_BOOL = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.bool)


@pytest.mark.parametrize("case", [
    dict(),
    dict(tgt_mask="causal"),  # float causal mask without padding: the is_causal path when hinted
    dict(tgt_mask="causal", tgt_is_causal=True),
    dict(tgt_mask=CAUSAL_BOOL, tgt_is_causal=True),
    dict(tgt_mask=CAUSAL_BOOL, tgt_key_padding_mask=_kpm(T), memory_mask="bool"),
    dict(memory_mask="bool", memory_key_padding_mask=_kpm(S)),
    dict(tgt_mask="causal", memory_mask="float", unbatched=True),
    dict(tgt_mask=CAUSAL_BOOL, tgt_key_padding_mask=_kpm(T, False), memory_key_padding_mask=_kpm(S, False),
         unbatched=True),
])
def test_decoder_layer_masks_match_torch(case):
    dtype = "float64"
    case = dict(case)
    batched = not case.pop("unbatched", False)
    if isinstance(case.get("tgt_mask"), str):
        case["tgt_mask"] = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
    if isinstance(case.get("memory_mask"), str):
        case["memory_mask"] = _memory_mask(case["memory_mask"], dtype)
    em, tm = _layer_pair(dtype, batch_first=True, norm_first=True)
    _check(em, tm, [_seq(T, dtype, True, 1, batched), _seq(S, dtype, True, 2, batched)], dtype, **case)


def test_decoder_layer_is_causal_needs_mask():
    em, tm = _layer_pair("float64")
    tgt, mem = _seq(T, "float64", False, 1), _seq(S, "float64", False, 2)
    with pytest.raises(RuntimeError) as te:
        tm(tgt, mem, tgt_is_causal=True)
    with pytest.raises(RuntimeError) as ee:
        em(from_torch(tgt), from_torch(mem), tgt_is_causal=True)
    assert str(ee.value) == str(te.value)


def test_decoder_layer_dropout_train_and_eval():
    em, tm = _layer_pair("float32")
    em.dropout = nn.Dropout(0.5)
    tgt, mem = from_torch(_seq(T, "float32", False, 1)), from_torch(_seq(S, "float32", False, 2))
    ember.manual_seed(0)
    a = em(tgt, mem)
    ember.manual_seed(1)
    b = em(tgt, mem)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    em.eval()
    np.testing.assert_array_equal(em(tgt, mem).detach().numpy(), em(tgt, mem).detach().numpy())


# ---- TransformerDecoder ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("norm_first,batch_first,activation", [(False, False, "relu"), (True, True, "gelu"),
                                                               (False, True, "gelu"), (True, False, "relu")])
@pytest.mark.parametrize("causal", ["float", "bool"])
def test_decoder_matches_torch(dtype, norm_first, batch_first, activation, causal):
    em, tm = _decoder_pair(dtype, norm_first=norm_first, batch_first=batch_first, activation=activation)
    tgt, mem = _seq(T, dtype, batch_first, 1), _seq(S, dtype, batch_first, 2)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=_tdt(dtype) if causal == "float" else
                                                                torch.bool)
    _check(em, tm, [tgt, mem], dtype, tgt_mask=mask, memory_mask=_memory_mask(causal, dtype),
           tgt_key_padding_mask=_kpm(T), memory_key_padding_mask=_kpm(S))


@pytest.mark.parametrize("case", [dict(), dict(tgt_mask="causal"), dict(tgt_mask="causal", tgt_is_causal=False),
                                  dict(unbatched=True, tgt_mask="causal")])
def test_decoder_causal_detection_and_unbatched(case):
    dtype = "float64"
    case = dict(case)
    batched = not case.pop("unbatched", False)
    if "tgt_mask" in case:
        case["tgt_mask"] = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
    em, tm = _decoder_pair(dtype, num_layers=1)
    _check(em, tm, [_seq(T, dtype, False, 1, batched), _seq(S, dtype, False, 2, batched)], dtype, **case)


# ---- Transformer ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_matches_torch(dtype, norm_first, batch_first, activation):
    em, tm = _transformer_pair(dtype, norm_first=norm_first, batch_first=batch_first, activation=activation)
    src, tgt = _seq(S, dtype, batch_first, 1), _seq(T, dtype, batch_first, 2)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=_tdt(dtype))
    _check(em, tm, [src, tgt], dtype, tgt_mask=causal, memory_mask=_memory_mask("float", dtype),
           src_key_padding_mask=_kpm(S), tgt_key_padding_mask=_kpm(T), memory_key_padding_mask=_kpm(S))


@pytest.mark.parametrize("case", [
    dict(),
    dict(tgt_mask=CAUSAL_BOOL, memory_mask="bool"),
    dict(src_mask="src", tgt_mask="causal", tgt_is_causal=True),
    dict(unbatched=True, tgt_mask="causal", src_key_padding_mask=_kpm(S, False),
         memory_key_padding_mask=_kpm(S, False)),
])
def test_transformer_masks_and_unbatched(case):
    dtype = "float64"
    case = dict(case)
    batched = not case.pop("unbatched", False)
    if isinstance(case.get("tgt_mask"), str):
        case["tgt_mask"] = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
    if isinstance(case.get("memory_mask"), str):
        case["memory_mask"] = _memory_mask(case["memory_mask"], dtype)
    if isinstance(case.get("src_mask"), str):
        case["src_mask"] = _x((S, S), dtype, 11)
    em, tm = _transformer_pair(dtype)
    _check(em, tm, [_seq(S, dtype, False, 1, batched), _seq(T, dtype, False, 2, batched)], dtype, **case)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("shapes", ["batch", "src_d", "tgt_d"])
def test_transformer_errors_match_torch(batch_first, shapes):
    em = nn.Transformer(D, H, 1, 1, FF, batch_first=batch_first)
    tm = torch.nn.Transformer(D, H, 1, 1, FF, batch_first=batch_first)
    src = (N, S, D) if batch_first else (S, N, D)
    tgt = (N + 1, T, D) if batch_first else (T, N + 1, D)
    if shapes == "src_d":
        src, tgt = src[:2] + (D + 2,), tgt[:1] + (N,) + tgt[2:] if not batch_first else (N,) + tgt[1:]
    elif shapes == "tgt_d":
        tgt = ((N, T, D + 2) if batch_first else (T, N, D + 2))
    with pytest.raises(RuntimeError) as te:
        tm(torch.zeros(src), torch.zeros(tgt))
    with pytest.raises(RuntimeError) as ee:
        em(ember.zeros(src), ember.zeros(tgt))
    assert str(ee.value) == str(te.value)
    expected = "batch number" if shapes == "batch" else "feature number"
    assert expected in str(ee.value)


def test_transformer_unbatched_feature_check():
    em = nn.Transformer(D, H, 1, 1, FF)
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
        em(ember.zeros(S, D), ember.zeros(T, D + 1))


@pytest.mark.parametrize("mask,hint", [("float", None), ("bool", None), ("other", None), ("float", False),
                                       (None, None), ("other", True)])
def test_decoder_detects_causal_mask_as_torch(mask, hint):
    """The tgt_is_causal each layer gets: the hint when given, else whether tgt_mask is the causal mask."""
    em, tm = _decoder_pair("float64", num_layers=2)
    seen = {"e": [], "t": []}
    for key, mod in (("e", em), ("t", tm)):
        for layer in mod.layers:
            def spy(*a, _f=layer.forward, _k=key, **kw):
                seen[_k].append(kw["tgt_is_causal"])
                return _f(*a, **kw)
            layer.forward = spy
    m = {"float": torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64),
         "bool": CAUSAL_BOOL, "other": _x((T, T), "float64", 5), None: None}[mask]
    tgt, mem = _seq(T, "float64", False, 1), _seq(S, "float64", False, 2)
    yt = tm(tgt, mem, tgt_mask=m, tgt_is_causal=hint)
    ye = em(from_torch(tgt), from_torch(mem), tgt_mask=_conv(m), tgt_is_causal=hint)
    assert seen["e"] == seen["t"] and len(seen["e"]) == 2
    assert_same(ye, yt, rtol=1e-10, atol=1e-10)

"""Samples of the fused attention family (src/ember/ops/attention.py): _fused_attention,
_packed_self_attention and their backwards.

torch has no op with these outputs; the references are built from
torch.nn.functional.scaled_dot_product_attention (the output, and autograd through it for the
backwards) and torch.logsumexp of the scaled, masked scores (the lse: float32, float64 for float64
inputs). The CUDA kernels take float16/bfloat16/float32 (float64 takes the composite in
nn.functional), and Triton's interpreter multiplies the bit patterns of bfloat16 operands of tl.dot
(triton-lang/triton#11584): the samples the interpreter suite picks (the first three and every strided
one) are float32/float16; the bfloat16 ones run on the CPU and the GPU. The float64 samples
(gradcheck's) have bool masks or none, since a float mask gets no grad.
"""
import torch
import torch.nn.functional as F
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register

TOL = {"float16": (5e-3, 5e-3), "bfloat16": (3e-2, 3e-2), "float32": (1e-5, 1e-5)}


F64 = "the fused CUDA kernel takes float16/bfloat16/float32; float64 takes the composite in nn.functional"

def T(shape, dtype="float32", layout="contiguous", seed=0):
    return make_pair(shape, dtype, low=-2, high=2, seed=seed, layout=layout)[0]


def mask(shape, seed=0):
    """A bool mask (True = may attend) whose every row keeps its first position."""
    m = make_pair(shape, "bool", seed=seed)[0]
    m[..., 0] = True
    return m


def qkv(batch, L, S, E, Ev, dt="float32", layout="contiguous"):
    return T(batch + (L, E), dt, layout), T(batch + (S, E), dt, seed=1), T(batch + (S, Ev), dt, seed=2)


# ---- references --------------------------------------------------------------------------------

def _lse(q, k, attn_mask, is_causal, scale):
    s = (q.double() @ k.double().transpose(-1, -2)) * scale
    if is_causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device).triu(1), float("-inf"))
    elif attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else s + attn_mask.double()
    return torch.logsumexp(s, -1).to(torch.float64 if q.dtype == torch.float64 else torch.float32)


def attention_ref(query, key, value, attn_mask, is_causal, scale):
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, is_causal=is_causal, scale=scale)
    return out, _lse(query, key, attn_mask, is_causal, scale)


def attention_backward_ref(grad_out, query, key, value, attn_mask, out, lse, is_causal, scale, *need):
    ins = [t.detach().requires_grad_() for t in (query, key, value)]
    o = F.scaled_dot_product_attention(*ins, attn_mask=attn_mask, is_causal=is_causal, scale=scale)
    grads = torch.autograd.grad(o, ins, grad_out)
    return tuple(g if n else None for g, n in zip(grads, need))


def _heads(qkv_t, num_heads):
    B, L, E3 = qkv_t.shape
    return [t.reshape(B, L, num_heads, E3 // 3 // num_heads).transpose(1, 2) for t in qkv_t.chunk(3, -1)]


def packed_ref(qkv_t, num_heads, attn_mask, is_causal, scale):
    q, k, v = _heads(qkv_t, num_heads)
    out, lse = attention_ref(q, k, v, attn_mask, is_causal, scale)
    B, H, L, hd = out.shape
    return out.transpose(1, 2).reshape(B, L, H * hd), lse


def packed_backward_ref(grad_out, qkv_t, num_heads, attn_mask, out, lse, is_causal, scale):
    x = qkv_t.detach().requires_grad_()
    o, _ = packed_ref(x, num_heads, attn_mask, is_causal, scale)
    return torch.autograd.grad(o, x, grad_out)[0]


# ---- _fused_attention -------------------------------------------------------------------------

def attention_samples():
    return [
        Sample((*qkv((2,), 3, 5, 4, 6), None, False, 0.5), desc="float32, L 3, S 5, Ev 6"),
        Sample((*qkv((1, 2), 3, 5, 8, 8, "float16"), mask((3, 5)), False, 0.35), desc="float16, a broadcast bool mask"),
        Sample((*qkv((2,), 4, 4, 4, 4), None, True, 0.5), desc="float32, causal"),
        Sample((*qkv((2,), 3, 4, 4, 4, "float32", "sliced"), T((2, 3, 4), seed=3), False, 0.5),
               desc="sliced query, a float mask"),
        Sample((*qkv((2,), 4, 4, 8, 8, "bfloat16"), None, True, 0.35), desc="bfloat16, causal"),
        Sample((*qkv((1,), 0, 4, 4, 4), None, False, 0.5), desc="no queries"),
        Sample((*qkv((2,), 3, 5, 4, 6, "float64"), None, False, 0.5), desc="float64", cuda=F64),
        Sample((*qkv((2,), 4, 4, 4, 4, "float64"), None, True, 0.5), desc="float64, causal", cuda=F64),
        Sample((*qkv((2,), 3, 5, 4, 4, "float64"), mask((2, 3, 5), seed=4), False, 0.5), desc="float64, bool mask", cuda=F64),
    ]


def attention_errors():
    q, k, v = qkv((2,), 3, 5, 4, 6)
    return [
        ErrorSample((q, T((2, 5, 3)), v, None, False, 0.5), {}, RuntimeError, r"expected key of shape \[2, 5, 4\]",
                    desc="key's head dim 3 for 4"),
        ErrorSample((q, k, v, mask((3, 5)), True, 0.5), {}, RuntimeError, r"attn_mask should not be set when "
                    r"is_causal=True", desc="a mask and causal"),
        ErrorSample((q, k, v, mask((4, 5)), False, 0.5), {}, RuntimeError, r"broadcastable to \[2, 3, 5\]",
                    desc="mask (4, 5)"),
        ErrorSample((q, k.double(), v, None, False, 0.5), {}, RuntimeError, r"same floating dtype",
                    desc="float64 key", torch_raises=True),
        ErrorSample((T((3,)), T((3,)), T((3,)), None, False, 0.5), {}, RuntimeError, r">= 2", desc="1-d"),
    ]


def _attention_backward_sample(batch, L, S, E, Ev, dt, m, causal, need, layout="contiguous", desc="", cuda=""):
    q, k, v = qkv(batch, L, S, E, Ev, dt, layout)
    out, lse = ember.ops._fused_attention(q, k, v, m, causal, 0.5)
    return Sample((T(batch + (L, Ev), dt, seed=5), q, k, v, m, out, lse, causal, 0.5, *need), desc=desc, cuda=cuda)


def attention_backward_samples():
    return [
        _attention_backward_sample((2,), 3, 5, 4, 6, "float32", None, False, (True, True, True), desc="float32"),
        _attention_backward_sample((1, 2), 3, 5, 8, 8, "float16", mask((3, 5)), False, (True, False, True),
                                   desc="float16, bool mask, no key grad"),
        _attention_backward_sample((2,), 4, 4, 4, 4, "float32", None, True, (False, True, True),
                                   desc="float32, causal, no query grad"),
        _attention_backward_sample((2,), 3, 4, 4, 4, "float32", T((2, 3, 4), seed=3), False, (True, True, True),
                                   layout="sliced", desc="sliced query, float mask"),
        _attention_backward_sample((2,), 4, 4, 8, 8, "bfloat16", None, True, (True, True, True),
                                   desc="bfloat16, causal"),
        _attention_backward_sample((2,), 3, 5, 4, 6, "float64", None, False, (True, True, True), desc="float64", cuda=F64),
        _attention_backward_sample((2,), 4, 4, 4, 4, "float64", None, True, (True, True, False),
                                   desc="float64, causal, no value grad", cuda=F64),
    ]


def attention_backward_errors():
    s = attention_backward_samples()[0].args
    return [
        ErrorSample((T((2, 3, 5)),) + s[1:], {}, RuntimeError, r"expected grad_out of shape \[2, 3, 6\]",
                    desc="grad_out (2, 3, 5)", torch_raises=False),
        ErrorSample(s[:6] + (T((2, 4)),) + s[7:], {}, RuntimeError, r"expected lse of shape \[2, 3\]",
                    desc="lse (2, 4)", torch_raises=False),
    ]


# ---- _packed_self_attention --------------------------------------------------------------------

def packed_samples():
    return [
        Sample((T((2, 3, 12)), 2, None, False, 0.5), desc="float32, 2 heads of 2"),
        Sample((T((1, 4, 36), "float16"), 3, None, True, 0.25), desc="float16, 3 heads, causal"),
        Sample((T((2, 3, 12)), 1, mask((3, 3)), False, 0.5), desc="float32, one head, a bool mask"),
        Sample((T((2, 3, 12), "float32", "sliced"), 2, T((2, 1, 3, 3), seed=3), False, 0.5),
               desc="sliced, a float mask per batch"),
        Sample((T((2, 3, 24), "bfloat16"), 1, mask((3, 3)), False, 0.35), desc="bfloat16, a bool mask"),
        Sample((T((2, 3, 12), "float64"), 2, None, False, 0.5), desc="float64", cuda=F64),
        Sample((T((1, 4, 12), "float64"), 1, None, True, 0.5), desc="float64, causal", cuda=F64),
    ]


def packed_errors():
    x = T((2, 3, 12))
    return [
        ErrorSample((x, 3, None, False, 0.5), {}, RuntimeError, r"E divisible by num_heads", desc="E 4, 3 heads"),
        ErrorSample((T((2, 3, 10)), 1, None, False, 0.5), {}, RuntimeError, r"\(B, L, 3 \* E\)", desc="10 columns"),
        ErrorSample((x, 2, mask((2, 3)), False, 0.5), {}, RuntimeError, r"broadcastable to \[2, 2, 3, 3\]",
                    desc="mask (2, 3)"),
    ]


def _packed_backward_sample(shape, heads, dt, m, causal, layout="contiguous", desc="", cuda=""):
    x = T(shape, dt, layout)
    out, lse = ember.ops._packed_self_attention(x, heads, m, causal, 0.5)
    return Sample((T(shape[:2] + (shape[2] // 3,), dt, seed=5), x, heads, m, out, lse, causal, 0.5), desc=desc, cuda=cuda)


def packed_backward_samples():
    return [
        _packed_backward_sample((2, 3, 12), 2, "float32", None, False, desc="float32"),
        _packed_backward_sample((1, 4, 36), 3, "float16", None, True, desc="float16, causal"),
        _packed_backward_sample((2, 3, 12), 1, "float32", mask((3, 3)), False, desc="float32, bool mask"),
        _packed_backward_sample((2, 3, 12), 2, "float32", None, False, "sliced", desc="sliced qkv"),
        _packed_backward_sample((2, 3, 24), 1, "bfloat16", mask((3, 3)), False, desc="bfloat16, bool mask"),
        _packed_backward_sample((2, 3, 12), 2, "float64", None, False, desc="float64", cuda=F64),
    ]


def packed_backward_errors():
    s = packed_backward_samples()[0].args
    return [ErrorSample((T((2, 3, 5)),) + s[1:], {}, RuntimeError, r"expected grad_out of shape \[2, 3, 4\]",
                        desc="grad_out (2, 3, 5)", torch_raises=False)]


NO_GRAD = "no derivative: under create_graph the attention backward recomputes the composite"
LSE = ("the lse output is not differentiable (as torch's fused attention's) while autograd.gradcheck compares "
       "every output; tests/test_attention.py gradchecks the attention output and double backward")

register(OpInfo("_fused_attention", attention_samples, attention_errors, ref=attention_ref, tol=TOL, grad=LSE))
register(OpInfo("_fused_attention_backward", attention_backward_samples, attention_backward_errors,
                ref=attention_backward_ref, tol=TOL, grad=NO_GRAD))
register(OpInfo("_packed_self_attention", packed_samples, packed_errors, ref=packed_ref, tol=TOL, grad=LSE))
register(OpInfo("_packed_self_attention_backward", packed_backward_samples, packed_backward_errors,
                ref=packed_backward_ref, tol=TOL, grad=NO_GRAD))


# ---- _fused_attention_dropout ------------------------------------------------------------------
# The reference rebuilds the dropout mask with Philox-4x32-10 written here in torch int64 ops (independent of
# ember's NumPy and Triton versions): score (b, l, s) of the flattened batch is kept where word s % 4 at counter
# base + (b * L + l) * ceil(S / 4) + s // 4, as a 24-bit uniform, is below 1 - p. The (seed, base) are those the op just
# drew: the reference runs after the op (in every suite), and reads the device's default generator, moved
# back by the N * L * ceil(S / 4) counters one call takes. The interpreter suite's CPU and CUDA calls draw different
# counters: tests/test_attention_dropout.py seeds both and compares them exactly instead.

def philox4(seed, counters):
    M = 0xFFFFFFFF
    k0, k1 = seed & M, (seed >> 32) & M
    c0, c1 = counters & M, (counters >> 32) & M
    c2 = torch.zeros_like(c0)
    c3 = c2
    for _ in range(10):
        p0 = c0 * 0xD2511F53            # wraps modulo 2^64 in int64: the unsigned product's bits
        p2 = c2 * 0xCD9E8D57
        c0, c1, c2, c3 = ((p2 >> 32) & M) ^ c1 ^ k0, p2 & M, ((p0 >> 32) & M) ^ c3 ^ k1, p0 & M
        k0, k1 = (k0 + 0x9E3779B9) & M, (k1 + 0xBB67AE85) & M
    return c0, c1, c2, c3


def dropout_scale(rng, shape, p, dtype, device):
    seed, base = (int(v) & ((1 << 64) - 1) for v in rng.tolist())
    S = shape[-1]
    S4 = (S + 3) // 4
    rows = 1
    for d in shape[:-1]:
        rows *= d
    ctr = torch.arange(rows, dtype=torch.int64, device=device)[:, None] * S4 + torch.arange(S4, device=device) + base
    w = torch.stack(philox4(seed, ctr), -1).reshape(rows, 4 * S4)[:, :S]     # key c: word c % 4 of counter c // 4
    kept = (w >> 8).to(torch.float32) * (1.0 / (1 << 24)) < (1.0 - p)
    return kept.reshape(shape).to(dtype) / (1.0 - p)


def _dropout_attention(query, key, value, attn_mask, is_causal, scale, p, rng):
    """The attention output with the dropout mask of `rng`, computed in float64."""
    q, k, v = (t.double() for t in (query, key, value))
    s = (q @ k.transpose(-1, -2)) * scale
    if is_causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device).triu(1), float("-inf"))
    elif attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else s + attn_mask.double()
    probs = torch.softmax(s, -1)
    return ((probs * dropout_scale(rng, s.shape, p, torch.float64, s.device)) @ v).to(query.dtype)


def _last_draw(device, counters):
    """(seed, base) of the last `counters` Philox counters drawn from ember's default generator of `device`."""
    g = ember.random.get_generator(None, ember.device(device.type, device.index) if device.type == "cuda"
                                   else ember.device("cpu"))
    seed = g.initial_seed()
    return torch.tensor([seed - (1 << 64) if seed >= 1 << 63 else seed, g._offset - counters], dtype=torch.int64)


def attention_dropout_ref(query, key, value, attn_mask, is_causal, scale, p):
    n = (key.shape[-2] + 3) // 4         # counters: one per 4 keys of each query row
    for d in query.shape[:-1]:
        n *= d
    rng = _last_draw(query.device, n)
    return (_dropout_attention(query, key, value, attn_mask, is_causal, scale, p, rng),
            _lse(query, key, attn_mask, is_causal, scale), rng.to(query.device))


def attention_dropout_samples():
    return [
        Sample((*qkv((2,), 3, 5, 4, 6), None, False, 0.5, 0.3), desc="float32, L 3, S 5, Ev 6"),
        Sample((*qkv((1, 2), 6, 9, 8, 8, "float16"), mask((6, 9)), False, 0.35, 0.5),
               desc="float16, a broadcast bool mask"),
        Sample((*qkv((2, 3), 7, 7, 4, 4), None, True, 0.5, 0.1), desc="float32, causal"),
        Sample((*qkv((2,), 3, 4, 4, 4, "float32", "sliced"), T((2, 3, 4), seed=3), False, 0.5, 0.2),
               desc="sliced query, a float mask"),
        Sample((*qkv((2,), 4, 4, 8, 8, "bfloat16"), None, True, 0.35, 0.25), desc="bfloat16, causal"),
        Sample((*qkv((1,), 0, 4, 4, 4), None, False, 0.5, 0.5), desc="no queries"),
    ]


def attention_dropout_errors():
    q, k, v = qkv((2,), 3, 5, 4, 6)
    return [
        ErrorSample((q, k, v, None, False, 0.5, 0.0), {}, RuntimeError, r"dropout_p must be in \(0, 1\), got 0.0",
                    desc="p 0", torch_raises=False),
        ErrorSample((q, k, v, None, False, 0.5, 1.0), {}, RuntimeError, r"dropout_p must be in \(0, 1\), got 1.0",
                    desc="p 1", torch_raises=False),
        ErrorSample((q, T((2, 5, 3)), v, None, False, 0.5, 0.1), {}, RuntimeError,
                    r"expected key of shape \[2, 5, 4\]", desc="key's head dim 3 for 4", torch_raises=False),
    ]


def attention_dropout_backward_ref(grad_out, query, key, value, attn_mask, out, lse, rng, is_causal, scale, p,
                                   *need):
    ins = [t.detach().requires_grad_() for t in (query, key, value)]
    o = _dropout_attention(*ins, attn_mask, is_causal, scale, p, rng)
    grads = torch.autograd.grad(o, ins, grad_out)
    return tuple(g if n else None for g, n in zip(grads, need))


def _dropout_backward_sample(batch, L, S, E, Ev, dt, m, causal, p, need, layout="contiguous", desc=""):
    q, k, v = qkv(batch, L, S, E, Ev, dt, layout)
    out, lse, rng = ember.ops._fused_attention_dropout(q, k, v, m, causal, 0.5, p)
    return Sample((T(batch + (L, Ev), dt, seed=5), q, k, v, m, out, lse, rng, causal, 0.5, p, *need), desc=desc)


def attention_dropout_backward_samples():
    return [
        _dropout_backward_sample((2,), 3, 5, 4, 6, "float32", None, False, 0.3, (True, True, True), desc="float32"),
        _dropout_backward_sample((1, 2), 6, 9, 8, 8, "float16", mask((6, 9)), False, 0.5, (True, False, True),
                                 desc="float16, bool mask, no key grad"),
        _dropout_backward_sample((2, 3), 7, 7, 4, 4, "float32", None, True, 0.1, (False, True, True),
                                 desc="float32, causal, no query grad"),
        _dropout_backward_sample((2,), 3, 4, 4, 4, "float32", T((2, 3, 4), seed=3), False, 0.2, (True, True, True),
                                 layout="sliced", desc="sliced query, float mask"),
        _dropout_backward_sample((2,), 4, 4, 8, 8, "bfloat16", None, True, 0.25, (True, True, True),
                                 desc="bfloat16, causal"),
    ]


def attention_dropout_backward_errors():
    s = attention_dropout_backward_samples()[0].args
    return [
        ErrorSample(s[:7] + (ember.zeros(3, dtype=ember.int64),) + s[8:], {}, RuntimeError,
                    r"expected rng, the forward's int64 \(seed, offset\) pair", desc="rng of 3", torch_raises=False),
        ErrorSample((T((2, 3, 5)),) + s[1:], {}, RuntimeError, r"expected grad_out of shape \[2, 3, 6\]",
                    desc="grad_out (2, 3, 5)", torch_raises=False),
    ]


DROP_GRAD = ("the mask is a function of the generator state, not of the inputs: tests/test_attention_dropout.py "
             "gradchecks the op with the generator reseeded at every call")
DROP_INTERP = ("the CPU and CUDA calls of this suite draw different counters: tests/test_attention_dropout.py seeds "
               "both and compares them exactly")
register(OpInfo("_fused_attention_dropout", attention_dropout_samples, attention_dropout_errors,
                ref=attention_dropout_ref, tol=TOL, grad=DROP_GRAD, interp=DROP_INTERP))
register(OpInfo("_fused_attention_dropout_backward", attention_dropout_backward_samples,
                attention_dropout_backward_errors, ref=attention_dropout_backward_ref, tol=TOL, grad=NO_GRAD))

"""`ember.nn.functional`: stateless layer functions with PyTorch's signatures and formulas.

Everything is composed from ember ops (so autograd, double backward included, works through
the ops' own derivatives) except two custom autograd Functions whose backward is itself written
in ember ops: constant padding and the im2col gather of a convolution. Nothing here assumes a
device: tensors are created on the input's device.
"""
from __future__ import annotations

import functools
import math
import warnings

from .._tensor import Tensor
from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from ..amp import autocast_mode as _amp
from ..core import dtype as _D
from ..dispatch import OPS
from ..ops.normalization import check_layer_norm, rms_norm_eps

__all__ = [
    "linear", "bilinear", "embedding", "layer_norm", "rms_norm", "group_norm", "dropout", "relu", "relu_", "gelu",
    "silu", "tanh", "sigmoid", "leaky_relu", "softplus", "elu", "hardtanh", "relu6", "mish", "softmax",
    "log_softmax", "softmin", "normalize", "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "scaled_dot_product_attention", "pad", "one_hot",
    "conv1d", "conv2d", "multi_head_attention_forward", "unfold", "rotary_embedding",
]

_linear = OPS["linear"].fn
_embedding = OPS["embedding"].fn
_matmul = OPS["matmul"].fn
_where = OPS["where"].fn
_zeros = OPS["zeros"].fn
_full = OPS["full"].fn
_ones = OPS["ones"].fn
_arange = OPS["arange"].fn
_one_hot = OPS["one_hot"].fn
_gelu = OPS["gelu"].fn
_relu = OPS["relu"].fn
_relu_ = OPS["relu_"].fn
_silu = OPS["silu"].fn
_cat = OPS["cat"].fn
_bmm = OPS["bmm"].fn
_baddbmm = OPS["baddbmm"].fn
_index_select = OPS["index_select"].fn
_NEG_INF = float("-inf")

# ---- reductions (PyTorch's legacy size_average / reduce arguments) ----------------------------

_REDUCTIONS = ("none", "mean", "sum")


def _legacy_reduction(size_average, reduce, emit_warning=True) -> str:
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    if size_average and reduce:
        ret = "mean"
    elif reduce:
        ret = "sum"
    else:
        ret = "none"
    if emit_warning:
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
                      stacklevel=3)
    return ret


def _reduction(reduction, size_average, reduce) -> str:
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


# ---- linear layers ----------------------------------------------------------------------------

def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weight.T + bias over any leading dims of `input`."""
    return _linear(input, weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y_k = x1 @ W_k @ x2 + b_k."""
    y = OPS["einsum"].fn("...i,kij,...j->...k", input1, weight, input2)
    return y if bias is None else y + bias


# ---- embeddings -------------------------------------------------------------------------------

def _embedding_renorm_(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    with no_grad():
        idx = input.reshape(-1).unique()
        rows = _index_select(weight, 0, idx)
        norms = rows.norm(norm_type, 1, True)
        scale = _where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight.index_copy_(0, idx, rows * scale)


def _embedding_padding_idx(padding_idx: int | None, num_embeddings: int) -> int | None:
    """`padding_idx` checked against `num_embeddings` (PyTorch's AssertionError) and made non-negative."""
    if padding_idx is None:
        return None
    if (padding_idx > 0 and padding_idx >= num_embeddings) or padding_idx < -num_embeddings:
        raise AssertionError("Padding_idx must be within num_embeddings")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` picked by the integer `input`; the `padding_idx` row gets no gradient."""
    padding_idx = _embedding_padding_idx(padding_idx, weight.shape[0])
    if padding_idx is None:
        padding_idx = -1
    if max_norm is not None:
        _embedding_renorm_(weight, input, max_norm, norm_type)
    return _embedding(weight, input, padding_idx, scale_grad_by_freq, sparse)


def rotary_embedding(input: Tensor, cos: Tensor, sin: Tensor, interleaved: bool = False) -> Tensor:
    """Rotary position embeddings (RoPE, RoFormer): rotates pairs of features of `input` (..., T, D), D even,
    by position-dependent angles. ember's own (torch has none); one fused op, any strided `input`.

    cos, sin: (T, D/2), the cosines and sines of the angles t * theta_i (or any shape broadcasting to the
    input's (..., T, D/2), e.g. (B, 1, T, D/2) for per-sequence positions); of the input's dtype, or float32
    for a float16/bfloat16 input (computed in float32 either way). `nn.RotaryEmbedding` builds them.
    Pairs (a, b) are (i, i + D/2) (GPT-NeoX / Llama "half rotation") or, with `interleaved`, (2i, 2i + 1)
    (RoFormer, GPT-J): y_a = x_a cos_i - x_b sin_i, y_b = x_b cos_i + x_a sin_i. Returns a contiguous
    tensor of the input's shape and dtype; differentiable in input, cos and sin.
    """
    return OPS["_rotary_embedding"].fn(input, cos, sin, interleaved)


# ---- normalisation ----------------------------------------------------------------------------

def _norm_dims(input: Tensor, normalized_shape, fn: str) -> tuple:
    ns = check_layer_norm(input, normalized_shape, None, None, fn)
    return tuple(range(-len(ns), 0)), ns


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing `normalized_shape` dims
    (the fused `native_layer_norm` op; on CUDA the composite for float64 and rows over 16384)."""
    if input._storage.device.type == "cuda":
        from ..backends.cuda.normalization import fused_ok
        dims, ns = _norm_dims(input, normalized_shape, "layer_norm")
        if not fused_ok(input, math.prod(ns)):
            return _layer_norm_composite(input, dims, weight, bias, eps)
    return OPS["native_layer_norm"].fn(input, normalized_shape, weight, bias, eps)[0]


def _layer_norm_composite(input, dims, weight, bias, eps):
    x = input
    low = x._dtype is _D.float16 or x._dtype is _D.bfloat16
    if low:
        x = x.float()
    mean = x.mean(dims, True)
    xc = x - mean
    var = (xc * xc).mean(dims, True)
    y = xc * (var + eps).rsqrt()
    if low:
        y = y.to(input._dtype)
    if weight is not None:
        y = y * weight if bias is None else OPS["addcmul"].fn(bias, y, weight)
    elif bias is not None:
        y = y + bias
    return y


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the trailing `normalized_shape` dims, computed in float32 for
    float16/bfloat16 (the fused `_fused_rms_norm` op; on CUDA the composite for float64 and rows over 16384).
    eps None: the machine epsilon of float32 (of float64 for a float64 input), as torch's."""
    eps = rms_norm_eps(input._dtype, eps)
    if input._storage.device.type == "cuda":
        from ..backends.cuda.normalization import fused_ok
        dims, ns = _norm_dims(input, normalized_shape, "rms_norm")
        if not fused_ok(input, math.prod(ns)):
            x = input.float() if input._dtype is _D.float16 or input._dtype is _D.bfloat16 else input
            y = x * ((x * x).mean(dims, True) + eps).rsqrt()
            return (y if weight is None else y * weight).to(input._dtype)
    return OPS["_fused_rms_norm"].fn(input, normalized_shape, weight, eps)[0]


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalises each of `num_groups` channel groups of (N, C, *) over its channels and spatial dims."""
    N, C = input.shape[0], input.shape[1]
    if C % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                           f"shape {list(input.shape)} and num_groups={num_groups}")
    x = input.reshape(N, num_groups, -1)
    mean = x.mean(-1, True)
    xc = x - mean
    y = (xc * ((xc * xc).mean(-1, True) + eps).rsqrt()).reshape(input.shape)
    bshape = (1, C) + (1,) * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(bshape)
    if bias is not None:
        y = y + bias.reshape(bshape)
    return y


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p, eps) along `dim`."""
    return input / input.norm(p, dim, True).clamp(min=eps)


# ---- dropout ----------------------------------------------------------------------------------

def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeroes each element with probability p (ember's RNG) and scales the rest by 1 / (1 - p): the
    fused native_dropout op (one kernel; its bool mask is what the backward uses)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input.mul_(0.0) if inplace else input * 0.0
    out = OPS["native_dropout"].fn(input, p, True)[0]
    return input.copy_(out) if inplace else out


# ---- activations ------------------------------------------------------------------------------

def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _relu_(input) if inplace else _relu(input)


def relu_(input: Tensor) -> Tensor:
    return _relu_(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return _gelu(input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    if inplace:
        return input.copy_(_silu(input))
    return _silu(input)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    y = input * softplus(input).tanh()
    return input.copy_(y) if inplace else y


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    y = OPS["leaky_relu"].fn(input, negative_slope)
    return input.copy_(y) if inplace else y


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return OPS["softplus"].fn(input, beta, threshold)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    y = _where(input > 0, input, input.expm1() * alpha)
    return input.copy_(y) if inplace else y


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    return input.clamp_(min_val, max_val) if inplace else input.clamp(min_val, max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  f"as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    return input.softmax(dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return input.log_softmax(dim, dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return (-input).softmax(dim, dtype)


# ---- losses -----------------------------------------------------------------------------------

def _check_target_dtype(target: Tensor, fn: str) -> None:
    if target._dtype is not _D.int64 and target._dtype is not _D.int32 and target._dtype is not _D.uint8:
        raise RuntimeError(f"{fn}: expected target of an integer dtype (class indices, int64) or, for "
                           f"cross_entropy, a floating dtype (class probabilities); got {target._dtype}")


def _check_nll_shapes(input: Tensor, target: Tensor, weight, fn: str) -> int:
    """PyTorch's checks of an NLL's input, class-index target and weight; the class count."""
    nd = input.ndim
    if nd < 1:
        raise ValueError(f"{fn}: expected input with at least 1 dimension, got a 0-d tensor")
    if nd == 1:
        if target.ndim != 0:
            raise ValueError(f"{fn}: for an unbatched input of shape {list(input.shape)} the target must be 0-d, "
                             f"got shape {list(target.shape)}")
    else:
        exp = (input._shape[0],) + input._shape[2:]
        if target._shape != exp:
            if target._shape[:1] != input._shape[:1]:
                raise ValueError(f"Expected input batch_size ({input._shape[0]}) to match target batch_size "
                                 f"({target._shape[0] if target._shape else 0}).")
            raise RuntimeError(f"{fn}: expected target of shape {list(exp)} for input of shape "
                               f"{list(input.shape)}, got {list(target.shape)}")
    C = input._shape[0] if nd == 1 else input._shape[1]
    if weight is not None and weight._shape != (C,):
        raise RuntimeError(f"{fn}: weight tensor should be defined either for all {C} classes or no classes but "
                           f"got weight tensor of shape: {list(weight.shape)}")
    return C


def _class_rows(input: Tensor, target: Tensor, C: int):
    """(N, C) rows of class scores and their (N,) targets: classes on dim 1 (dim 0 unbatched) moved last."""
    nd = input.ndim
    if nd == 1:
        return input.unsqueeze(0), target.reshape(1)
    if nd == 2:
        return input, target
    return input.movedim(1, -1).reshape(-1, C), target.reshape(-1)


def _nll_fused(input: Tensor, target: Tensor, weight, ignore_index: int, reduction: str, fn: str) -> Tensor:
    """The NLL of log-probabilities `input` through the fused nll_loss_forward op (classes on dim 1,
    or dim 0 when unbatched); the loss with `reduction` applied."""
    C = _check_nll_shapes(input, target, weight, fn)
    x, t = _class_rows(input, target, C)
    if t._dtype is _D.uint8:
        t = t.long()
    out = OPS["nll_loss_forward"].fn(x, t, weight, _NLL_REDUCTION[reduction], ignore_index)[0]
    return out.reshape(target._shape) if reduction == "none" and out._shape != target._shape else out


_NLL_REDUCTION = {"none": 0, "mean": 1, "sum": 2}


def _fp32_under_autocast(devices, refuse=()):
    """torch's autocast rule for a loss it lists as fp32 (these are composites here, so the op-level policy
    cannot see them): under autocast on one of `devices`, floating tensor arguments become float32 and the
    loss runs with autocast off. On a device in `refuse` the loss is refused under autocast, as torch does."""
    def deco(fn):
        name = fn.__name__

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if _amp._regions[0] and args and isinstance(args[0], Tensor):
                dev = args[0].device.type
                if _amp.is_autocast_enabled(dev):
                    if dev in refuse:
                        raise RuntimeError(f"ember.nn.functional.{name} is unsafe to autocast on {dev} (as in "
                                           f"torch): its input is usually a sigmoid's output, whose low-precision "
                                           f"rounding the log amplifies. Combine the two with "
                                           f"binary_cross_entropy_with_logits (nn.BCEWithLogitsLoss), which is "
                                           f"safe to autocast, or leave the autocast region for this loss")
                    if dev in devices:
                        args = [_to_fp32(a) for a in args]
                        kwargs = {k: _to_fp32(v) for k, v in kwargs.items()}
                        with _amp.autocast(dev, enabled=False):
                            return fn(*args, **kwargs)
            return fn(*args, **kwargs)
        return wrapper
    return deco


def _to_fp32(a):
    """float16/bfloat16 tensors as float32; float64 ones are left alone, as torch's autocast leaves them."""
    return a.float() if isinstance(a, Tensor) and (a._dtype is _D.float16 or a._dtype is _D.bfloat16) else a


_FP32_LOSS = _fp32_under_autocast(("cpu", "cuda"))

@_FP32_LOSS
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class-index targets (input holds log-probabilities, classes on dim 1)."""
    reduction = _reduction(reduction, size_average, reduce)
    _check_target_dtype(target, "nll_loss")
    return _nll_fused(input, target, weight, ignore_index, reduction, "nll_loss")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the class dim (dim 1, or 0 for unbatched input) followed by the NLL; targets are
    class indices (integer, with ignore_index) or class probabilities (floating, same shape as input).

    Class indices take one fused op (`_cross_entropy`: the log-probabilities are never written, and the
    backward reads the logits once). Under autocast (where torch computes this loss in float32), 16-bit
    logits are read as they are and the op computes and returns the loss in float32: the same values as
    a float32 copy of them would give, without the copy."""
    if _amp._regions[0] and isinstance(input, Tensor) and isinstance(target, Tensor) \
            and not target._dtype.is_floating_point and _amp.is_autocast_enabled(input.device.type):
        low = input._dtype in (_D.float16, _D.bfloat16)
        with _amp.autocast(input.device.type, enabled=False):
            return _cross_entropy(input, target, _to_fp32(weight), size_average, ignore_index, reduce, reduction,
                                  label_smoothing, _D.float32 if low else None)
    return _cross_entropy_fp32(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)


def _cross_entropy(input: Tensor, target: Tensor, weight, size_average, ignore_index: int, reduce, reduction: str,
                   label_smoothing: float, loss_dtype=None) -> Tensor:
    reduction = _reduction(reduction, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if target._dtype.is_floating_point:
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing)
    _check_target_dtype(target, "cross_entropy")
    C = _check_nll_shapes(input, target, weight, "cross_entropy")
    x, t = _class_rows(input, target, C)
    if C == 0:      # nothing to normalise over: torch's composite gives NaN per counted row
        return _nll_fused(input.log_softmax(1 if input.ndim > 1 else 0), target, weight, ignore_index, reduction,
                          "cross_entropy")
    if t._dtype is _D.uint8:
        t = t.long()
    out = OPS["_cross_entropy"].fn(x, t, weight, _NLL_REDUCTION[reduction], ignore_index, float(label_smoothing),
                                   loss_dtype)[0]
    return out.reshape(target._shape) if reduction == "none" and out._shape != target._shape else out


_cross_entropy_fp32 = _FP32_LOSS(_cross_entropy)


def _cross_entropy_probs(input: Tensor, target: Tensor, weight, reduction: str, label_smoothing: float) -> Tensor:
    """cross_entropy with class-probability targets (a composite, as in torch)."""
    class_dim = 0 if input.ndim == 1 else 1
    if target._shape != input._shape:
        raise RuntimeError(f"cross_entropy: Expected target size {list(input.shape)} (class probabilities "
                           f"with the input's shape), got {list(target.shape)}")
    C = input._shape[class_dim]
    logp = input.log_softmax(class_dim)
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / C
    prod = logp * target
    if weight is not None:
        prod = prod * weight.reshape((C,) + (1,) * (input.ndim - class_dim - 1))
    if reduction == "none":
        return -prod.sum(class_dim)
    if reduction == "sum":
        return -prod.sum()
    n = input.numel() // C if C else 0
    return -prod.sum() / n if n else -prod.sum() * float("nan")


@_FP32_LOSS
def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    """(input - target)^2, reduced."""
    if target._shape != input._shape:
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      f"This will likely lead to incorrect results due to broadcasting. Please ensure they have "
                      f"the same size.", stacklevel=2)
    reduction = _reduction(reduction, size_average, reduce)
    d = input - target
    loss = d * d
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


@_FP32_LOSS
def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _reduction(reduction, size_average, reduce)
    return _reduce((input - target).abs(), reduction)


@_FP32_LOSS
def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    reduction = _reduction(reduction, size_average, reduce)
    d = (input - target).abs()
    if beta == 0.0:
        return _reduce(d, reduction)
    loss = _where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, reduction)


@_fp32_under_autocast(("cpu",), refuse=("cuda",))
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _reduction(reduction, size_average, reduce)
    if target._shape != input._shape:
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    # PyTorch clamps the logs at -100
    loss = -(target * input.log().clamp(min=-100.0) + (1.0 - target) * (1.0 - input).log().clamp(min=-100.0))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


@_FP32_LOSS
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    reduction = _reduction(reduction, size_average, reduce)
    if target._shape != input._shape:
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    # log(1 + exp(-x)) computed stably as softplus(-x)
    log_sig_neg = OPS["softplus"].fn(-input, 1, 20)   # -log(sigmoid(x))
    if pos_weight is not None:
        lw = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * input + lw * log_sig_neg
    else:
        loss = (1.0 - target) * input + log_sig_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# ---- attention --------------------------------------------------------------------------------

_causal_cache: dict = {}


def _causal_mask(L: int, S: int, device) -> Tensor:
    """Bool (L, S): True above the diagonal (the positions a causal query may not see); cached."""
    key = (L, S, device)
    m = _causal_cache.get(key)
    if m is None:
        if len(_causal_cache) > 32:
            _causal_cache.clear()
        m = _ones(L, S, dtype=_D.bool, device=device).triu(1)
        _causal_cache[key] = m
    return m


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(q @ k^T * scale + mask) @ v over any leading batch dims.

    A bool `attn_mask` marks with True the positions that take part in attention; a float mask is
    added to the scores. Rows where every position is masked give zeros, as PyTorch does. Without
    dropout this is the fused `_fused_attention` op where it takes the inputs (see `_sdpa_fusable`); with
    dropout on CUDA, `_fused_attention_dropout`.
    """
    L, E = query._shape[-2], query._shape[-1]
    S = key._shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(E)
    if enable_gqa:
        hq, hk = query._shape[-3], key._shape[-3]
        if hq != hk:
            if hq % hk:
                raise RuntimeError(f"scaled_dot_product_attention: number of query heads ({hq}) must be a multiple "
                                   f"of the key/value heads ({hk}) with enable_gqa=True")
            r = hq // hk
            key = key.unsqueeze(-3).expand(*key._shape[:-2], r, S, key._shape[-1]).reshape(
                *key._shape[:-3], hq, S, key._shape[-1])
            value = value.unsqueeze(-3).expand(*value._shape[:-2], r, S, value._shape[-1]).reshape(
                *value._shape[:-3], hq, S, value._shape[-1])
    if dropout_p <= 0.0:
        if _sdpa_fusable(query, key, value, attn_mask):
            return OPS["_fused_attention"].fn(query, key, value, attn_mask, is_causal, scale)[0]
    elif dropout_p < 1.0 and query._storage.device.type == "cuda" and _sdpa_fusable(query, key, value, attn_mask):
        # dropout inside the fused kernels (the mask regenerated in the backward, never stored); on the CPU
        # the composite below, whose dropout draws from NumPy's generator far faster than Philox in NumPy
        return OPS["_fused_attention_dropout"].fn(query, key, value, attn_mask, is_causal, scale, dropout_p)[0]
    scores = _matmul(query * scale, key.mT)
    masked = False
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                               "is_causal=True")
        scores = scores.masked_fill(_causal_mask(L, S, scores.device), _NEG_INF)
    elif attn_mask is not None:
        if attn_mask._dtype is _D.bool:
            scores = scores.masked_fill(attn_mask.logical_not(), _NEG_INF)
        else:
            scores = scores + attn_mask
        masked = True
    if masked:
        dead = scores.isneginf().all(-1, True)  # fully masked rows: zeros instead of NaN
        attn = scores.masked_fill(dead, 0.0).softmax(-1).masked_fill(dead, 0.0)
    else:
        attn = scores.softmax(-1)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return _matmul(attn, value)


def _sdpa_fusable(query, key, value, attn_mask) -> bool:
    """Whether the fused attention op takes these inputs: one floating dtype, the same batch dims,
    a bool mask or one of that dtype that needs no grad (on CUDA also: no float64, head dims <= 128)."""
    dt = query._dtype
    nd = query.ndim
    if not dt.is_floating_point or key._dtype is not dt or value._dtype is not dt or nd < 2 or key.ndim != nd or \
            value.ndim != nd or key._shape[:-2] != query._shape[:-2] or value._shape[:-2] != query._shape[:-2]:
        return False
    if attn_mask is not None and (attn_mask.requires_grad or attn_mask.ndim > nd or
                                  (attn_mask._dtype is not _D.bool and attn_mask._dtype is not dt)):
        return False
    if query._storage.device.type == "cuda":
        from ..backends.cuda.attention import fused_ok
        return fused_ok(query, key, value)
    return True


def _packed_fusable(query, head_dim: int, attn_mask) -> bool:
    """Whether `_packed_self_attention` takes a self-attention with these heads and mask (what
    `_sdpa_fusable` checks, for the heads of one packed projection)."""
    dt = query._dtype
    if not dt.is_floating_point or (attn_mask is not None and (attn_mask.requires_grad or
                                                       (attn_mask._dtype is not _D.bool and attn_mask._dtype is not dt))):
        return False
    if query._storage.device.type == "cuda":
        from ..backends.cuda.attention import MAX_HEAD_DIM
        return dt in (_D.float32, _D.float16, _D.bfloat16) and head_dim <= MAX_HEAD_DIM
    return True


def _none_or_dtype(input):
    if input is None:
        return None
    if isinstance(input, Tensor):
        return input.dtype
    raise RuntimeError("input to _none_or_dtype() must be None or ember.Tensor")


def _canonical_mask(mask, mask_name: str, other_type, other_name: str, target_type, check_other: bool = True,
                    convert: bool = True):
    """A bool mask (True = masked out) becomes a float mask with -inf; float masks pass through.
    convert=False: checked only (for a mask the attention will drop: causal, without padding mask)."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{mask_name} must be an ember.Tensor or None, got {type(mask).__name__}")
    if check_other and other_type is not None and mask._dtype is not other_type:
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for both "
                      f"instead.", stacklevel=3)
    if mask._dtype is _D.bool:
        if not convert:
            return mask
        return _zeros(*mask._shape, dtype=target_type, device=mask.device).masked_fill_(mask, _NEG_INF)
    if not mask._dtype.is_floating_point:
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    return mask


def _in_projection_packed(q, k, v, w, b=None):
    E = q._shape[-1]
    if k is v:
        if q is k:  # self-attention: one projection, then split
            proj = _linear(q, w, b)
            proj = proj.unflatten(-1, (3, E))
            return proj.select(-2, 0), proj.select(-2, 1), proj.select(-2, 2)
        w_q, w_kv = w.split([E, E * 2])
        b_q, b_kv = (None, None) if b is None else b.split([E, E * 2])
        kv = _linear(k, w_kv, b_kv).unflatten(-1, (2, E))
        return _linear(q, w_q, b_q), kv.select(-2, 0), kv.select(-2, 1)
    w_q, w_k, w_v = w.chunk(3)
    b_q, b_k, b_v = (None, None, None) if b is None else b.chunk(3)
    return _linear(q, w_q, b_q), _linear(k, w_k, b_k), _linear(v, w_v, b_v)


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int, in_proj_weight,
                                 in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight, out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
                                 q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True, is_causal: bool = False):
    """PyTorch's multi-head attention on (L, N, E) inputs (or unbatched (L, E)); returns (output, weights)."""
    is_batched = query.ndim == 3
    if query.ndim not in (2, 3):
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D "
                             f"query tensor")
    if not is_batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query._shape
    src_len = key._shape[0]
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", _none_or_dtype(attn_mask),
                                       "attn_mask", query._dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", None, "", query._dtype, False)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if attn_mask._shape != (tgt_len, src_len):
                raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but should be "
                                   f"{(tgt_len, src_len)}.")
            attn_mask = attn_mask.unsqueeze(0)
        elif attn_mask.ndim == 3:
            if attn_mask._shape != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                                   f"{(bsz * num_heads, tgt_len, src_len)}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    if query is key and key is value and not use_separate_proj_weight and bias_k is None and bias_v is None \
            and not add_zero_attn and static_k is None and static_v is None and not need_weights \
            and key_padding_mask is None and (dropout_p <= 0.0 or not training) \
            and _packed_fusable(query, head_dim, attn_mask):
        # self-attention on one packed projection: the fused op reads the heads in place and writes
        # the output with the heads side by side, ready for out_proj (no reshape copies, one node)
        if attn_mask is not None and attn_mask._shape[0] != 1:    # (N * H, L, L) -> (N, H, L, L); (1, L, L)
            attn_mask = attn_mask.reshape(bsz, num_heads, tgt_len, tgt_len)   # broadcasts as it is
        proj = _linear(query.transpose(0, 1), in_proj_weight, in_proj_bias)     # (N, L, 3E)
        out = OPS["_packed_self_attention"].fn(proj, num_heads, attn_mask, is_causal,
                                               1.0 / math.sqrt(head_dim))[0]
        out = _linear(out, out_proj_weight, out_proj_bias).transpose(0, 1)     # (L, N, E)
        return (out if is_batched else out.squeeze(1)), None
    if not use_separate_proj_weight:
        q, k, v = _in_projection_packed(query, key, value, in_proj_weight, in_proj_bias)
    else:
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = in_proj_bias.chunk(3)
        q, k, v = _linear(query, q_proj_weight, b_q), _linear(key, k_proj_weight, b_k), \
            _linear(value, v_proj_weight, b_v)
    if bias_k is not None and bias_v is not None:
        k = _cat([k, bias_k.repeat(1, bsz, 1)])
        v = _cat([v, bias_v.repeat(1, bsz, 1)])
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = (k.reshape(k._shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_k is None else static_k)
    v = (v.reshape(v._shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_v is None else static_v)
    if add_zero_attn:
        z = _zeros(bsz * num_heads, 1, head_dim, dtype=k._dtype, device=k.device)
        k = _cat([k, z], 1)
        v = _cat([v, z], 1)
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    src_len = k._shape[1]
    if key_padding_mask is not None:
        if key_padding_mask._shape != (bsz, src_len):
            raise AssertionError(f"expecting key_padding_mask shape of {(bsz, src_len)}, but got "
                                 f"{key_padding_mask.shape}")
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len) \
            .reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0
    if need_weights:
        E = q._shape[-1]
        q_scaled = q * math.sqrt(1.0 / float(E))
        if attn_mask is not None:
            w = _baddbmm(attn_mask, q_scaled, k.transpose(-2, -1))
        else:
            w = _bmm(q_scaled, k.transpose(-2, -1))
        w = w.softmax(-1)
        if dropout_p > 0.0:
            w = dropout(w, dropout_p)
        out = _bmm(w, v)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = _linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, out_proj_weight._shape[0])
        w = w.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            w = w.mean(1)
        if not is_batched:
            out = out.squeeze(1)
            w = w.squeeze(0)
        return out, w
    if attn_mask is not None:
        if attn_mask._shape[0] == 1 and attn_mask.ndim == 3:
            attn_mask = attn_mask.unsqueeze(0)
        else:
            attn_mask = attn_mask.reshape(bsz, num_heads, -1, src_len)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = _linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, out_proj_weight._shape[0])
    if not is_batched:
        out = out.squeeze(1)
    return out, None


# ---- padding ----------------------------------------------------------------------------------

def _pad_geometry(shape, pad):
    """Per padded dim (from the last): (dim, left, right); and the output shape."""
    n = len(shape)
    out = list(shape)
    spec = []
    for i in range(len(pad) // 2):
        d = n - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        size = shape[d] + lo + hi
        if size < 0:
            raise RuntimeError(f"The input size {shape[d]}, plus negative padding {lo} and {hi} resulted in a "
                               f"negative output size, which is invalid. Check dimension {d} of your input.")
        out[d] = size
        spec.append((d, lo, hi))
    return spec, tuple(out)


def _regions(shape, spec):
    """Index tuples of the overlap in the output and in the input (negative padding crops)."""
    out_idx = [slice(None)] * len(shape)
    in_idx = [slice(None)] * len(shape)
    for d, lo, hi in spec:
        n = shape[d]
        in_idx[d] = slice(max(0, -lo), n - max(0, -hi))
        start = max(0, lo)
        out_idx[d] = slice(start, start + max(0, n - max(0, -lo) - max(0, -hi)))
    return tuple(out_idx), tuple(in_idx)


class _ConstantPad(Function):
    @staticmethod
    def forward(ctx, input, pad, value):
        spec, out_shape = _pad_geometry(input._shape, pad)
        out = _full(out_shape, value, dtype=input._dtype, device=input.device)
        oi, ii = _regions(input._shape, spec)
        if out.numel() and input.numel():
            src = input[ii]
            if src.numel():
                out[oi].copy_(src)
        ctx.geom = (input._shape, oi, ii, input._dtype)
        return out

    @staticmethod
    def backward(ctx, grad):
        shape, oi, ii, dt = ctx.geom
        g = grad[oi]
        if all(s == slice(None) for s in ii):
            return g, None, None
        gi = _zeros(*shape, dtype=grad._dtype, device=grad.device)
        gi[ii] = g
        return gi, None, None


def _index_pad(input, spec, mode):
    """reflect / replicate / circular padding: one index_select per padded dim."""
    x = input
    for d, lo, hi in spec:
        n = x._shape[d]
        idx = _arange(-lo, n + hi, device=x.device)
        if mode == "replicate":
            idx = idx.clamp(0, n - 1)
        elif mode == "circular":
            if lo > n or hi > n:
                raise RuntimeError(f"Padding value causes wrapping around more than once (dim {d} of size {n}, "
                                   f"padding {lo}, {hi})")
            idx = idx.remainder(n)
        else:  # reflect
            if lo >= n or hi >= n:
                raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input "
                                   f"dimension, but got: padding ({lo}, {hi}) at dimension {d} of input "
                                   f"{list(input.shape)}")
            idx = (n - 1) - ((n - 1) - idx.abs()).abs()
        x = _index_select(x, d, idx)
    return x


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pads the last len(pad) // 2 dims: pad = (last_left, last_right, 2nd_last_left, ...).

    mode 'constant' pads with `value` (0 by default) and takes negative amounts (cropping);
    'reflect', 'replicate' and 'circular' are supported for any trailing dims.
    """
    pad = tuple(pad)
    if len(pad) % 2:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise ValueError(f"Padding length should be less than or equal to two times the input dimension but got "
                         f"padding length {len(pad)} and input of dimension {input.ndim}")
    if mode == "constant":
        if value is None:
            value = 0.0 if input._dtype.is_floating_point else 0
        if not any(pad):
            return input.clone()
        return _ConstantPad.apply(input, pad, value)
    if value is not None and value != 0:
        raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}; expected 'constant', 'reflect', 'replicate' "
                                  f"or 'circular'")
    spec, _ = _pad_geometry(input._shape, pad)
    if mode != "circular" and any(lo < 0 or hi < 0 for _, lo, hi in spec):
        raise RuntimeError(f"negative padding is only supported for the 'constant' and 'circular' modes, got {pad}")
    return _index_pad(input, spec, mode)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    return _one_hot(tensor, num_classes)


# ---- convolution ------------------------------------------------------------------------------

def _pair(v, name: str) -> tuple:
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    if len(v) == 1:
        return (v[0], v[0])
    if len(v) != 2:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of 2 values to match the "
                           f"convolution dimensions, but got {name}={list(v)}")
    return v


class _Im2col(Function):
    """(N, C, H, W) -> (N, C, KH, KW, OH, OW) patches of the zero-padded input (a copy).

    The backward adds each kernel offset's slab of the gradient back onto a strided slice of the
    padded input: KH * KW in-place adds of ember ops, so it runs on any device.
    """

    @staticmethod
    def forward(ctx, x, kernel, stride, dilation, padding):
        N, C, H, W = x._shape
        (kh, kw), (sh, sw), (dh, dw), (pt, pb, pl, pr) = kernel, stride, dilation, padding
        Hp, Wp = H + pt + pb, W + pl + pr
        OH = (Hp - dh * (kh - 1) - 1) // sh + 1
        OW = (Wp - dw * (kw - 1) - 1) // sw + 1
        if pt or pb or pl or pr:
            xp = _zeros(N, C, Hp, Wp, dtype=x._dtype, device=x.device)
            xp[:, :, pt:pt + H, pl:pl + W] = x
        else:
            xp = x
        s0, s1, s2, s3 = xp._stride
        cols = xp.as_strided((N, C, kh, kw, OH, OW), (s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw),
                             xp._offset).contiguous()
        ctx.geom = (x._shape, kernel, stride, dilation, padding, OH, OW)
        return cols

    @staticmethod
    def backward(ctx, g):
        (N, C, H, W), (kh, kw), (sh, sw), (dh, dw), (pt, pb, pl, pr), OH, OW = ctx.geom
        gp = _zeros(N, C, H + pt + pb, W + pl + pr, dtype=g._dtype, device=g.device)
        for i in range(kh):
            r0 = i * dh
            for j in range(kw):
                c0 = j * dw
                gp[:, :, r0:r0 + sh * (OH - 1) + 1:sh, c0:c0 + sw * (OW - 1) + 1:sw].add_(g[:, :, i, j])
        if pt or pb or pl or pr:
            gp = gp[:, :, pt:pt + H, pl:pl + W]
        return gp, None, None, None, None


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) of (N, C, H, W) or (C, H, W) input with (O, C/groups, KH, KW) weight.

    im2col + one matmul; when stride == kernel size with no padding/dilation/groups (a ViT patch
    embedding) the patches are a reshape/permute of the input and the matmul is one `linear`.
    """
    unbatched = input.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    if input.ndim != 4:
        raise RuntimeError(f"Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: "
                           f"{list(input.shape)}")
    N, C, H, W = input._shape
    O, Cg, kh, kw = weight._shape
    if C != Cg * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {Cg * groups} channels, but got {C} channels instead")
    if O % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                           f"but got weight of size {list(weight.shape)} instead")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of 'valid' or 'same'")
    else:
        ph, pw = _pair(padding, "padding")
        pads = (ph, ph, pw, pw)
    sh, sw = stride
    if (sh, sw) == (kh, kw) and pads == (0, 0, 0, 0) and dilation == (1, 1) and groups == 1:
        OH, OW = H // kh, W // kw
        x = input
        if OH * kh != H or OW * kw != W:
            x = x[:, :, :OH * kh, :OW * kw]
        p = x.reshape(N, C, OH, kh, OW, kw).permute(0, 2, 4, 1, 3, 5).reshape(N * OH * OW, C * kh * kw)
        out = _linear(p, weight.reshape(O, C * kh * kw), bias).reshape(N, OH, OW, O).permute(0, 3, 1, 2)
        return out.squeeze(0) if unbatched else out
    Hp, Wp = H + pads[0] + pads[1], W + pads[2] + pads[3]
    if Hp < dilation[0] * (kh - 1) + 1 or Wp < dilation[1] * (kw - 1) + 1:
        raise RuntimeError(f"Calculated padded input size per channel: ({Hp} x {Wp}). Kernel size: "
                           f"({dilation[0] * (kh - 1) + 1} x {dilation[1] * (kw - 1) + 1}). Kernel size can't be "
                           f"greater than actual input size")
    cols = _Im2col.apply(input, (kh, kw), stride, dilation, pads)
    OH, OW = cols._shape[4], cols._shape[5]
    K = Cg * kh * kw
    if groups == 1:
        out = _matmul(weight.reshape(O, K), cols.reshape(N, K, OH * OW))
    else:
        out = _matmul(weight.reshape(groups, O // groups, K), cols.reshape(N, groups, K, OH * OW))
    out = out.reshape(N, O, OH, OW)
    if bias is not None:
        out = out + bias.reshape(O, 1, 1)
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution of (N, C, L) or (C, L) input with (O, C/groups, K) weight (through conv2d)."""
    def one(v):
        return v if isinstance(v, int) else tuple(v)[0]
    p = padding if isinstance(padding, str) else (0, one(padding))
    y = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, one(stride)), p, (1, one(dilation)), groups)
    return y.squeeze(-2)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col: (N, C, H, W) -> (N, C * KH * KW, L) sliding blocks, as torch.nn.functional.unfold."""
    if input.ndim != 4:
        raise NotImplementedError(f"Input Error: Only 4D input Tensors are supported (got {input.ndim}D)")
    ph, pw = _pair(padding, "padding")
    kh, kw = _pair(kernel_size, "kernel_size")
    cols = _Im2col.apply(input, (kh, kw), _pair(stride, "stride"), _pair(dilation, "dilation"), (ph, ph, pw, pw))
    N, C = input._shape[:2]
    return cols.reshape(N, C * kh * kw, cols._shape[4] * cols._shape[5])

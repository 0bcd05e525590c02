"""Fused negative log-likelihood over class indices, as PyTorch's `nll_loss_forward` /
`nll_loss_backward`: `nn.functional.nll_loss` and `cross_entropy` (after `log_softmax`) make one
forward and one backward kernel of what was ten ops each way. Input (N, C) log-probabilities
(`nn.functional` flattens other shapes to it), target (N,) class indices of an integer dtype;
reduction 0 none, 1 mean, 2 sum. Returns (loss, total weight): the loss (N,) for reduction 0, else
0-d; the total weight 0-d (0 for reduction 0, as PyTorch).
"""
from __future__ import annotations

from ..autograd.derivatives import derivative
from ..core import dtype as D
from ..dispatch import defop
from .linalg import SCALAR_TYPE


def check_nll(self, target, weight, reduction, fn="nll_loss_forward") -> int:
    """The class count, after PyTorch's checks of input, target, weight and reduction."""
    if self.ndim != 2:
        raise RuntimeError(f"{fn}: input tensor should be 2D (N, C), got shape {list(self._shape)}")
    if target.ndim != 1 or target._shape[0] != self._shape[0]:
        raise RuntimeError(f"{fn}: size mismatch (got input: {list(self._shape)}, target: {list(target._shape)}); "
                           f"expected input (N, C) and target (N,)")
    dt = self._dtype
    if not dt.is_floating_point:
        raise NotImplementedError(f"{fn}: \"nll_loss\" not implemented for '{SCALAR_TYPE[dt]}': the input must be "
                                  f"floating-point log-probabilities, got {dt}")
    if target._dtype.is_floating_point or target._dtype is D.bool:
        raise RuntimeError(f"{fn}: expected target of an integer dtype (class indices), got {target._dtype}")
    C = self._shape[1]
    if weight is not None:
        if weight._shape != (C,):
            raise RuntimeError(f"{fn}: weight tensor should be defined either for all {C} classes or no classes "
                               f"but got weight tensor of shape: {list(weight._shape)}")
        if weight._dtype is not dt:
            raise RuntimeError(f"{fn}: expected scalar type {SCALAR_TYPE[dt]} but found "
                               f"{SCALAR_TYPE[weight._dtype]} (weight must have the input's dtype)")
    if reduction not in (0, 1, 2):
        raise ValueError(f"{fn}: reduction must be 0 (none), 1 (mean) or 2 (sum), got {reduction}")
    return C


def _check_total_weight(fn, total_weight):
    if total_weight.numel() != 1:
        raise RuntimeError(f"{fn}: expected total_weight to be a single element tensor, got: "
                           f"{list(total_weight._shape)} ({total_weight.numel()} elements)")


def nll_loss_forward_meta(self, target, weight, reduction, ignore_index):
    check_nll(self, target, weight, reduction)
    dt = self._dtype
    return (self._shape[:1] if reduction == 0 else (), dt), ((), dt)


def nll_loss_backward_meta(grad_output, self, target, weight, reduction, ignore_index, total_weight):
    fn = "nll_loss_backward"
    check_nll(self, target, weight, reduction, fn)
    want = self._shape[:1] if reduction == 0 else ()
    if grad_output._shape != want and (reduction == 0 or grad_output.numel() != 1):
        raise RuntimeError(f"{fn}: expected grad_output of shape {list(want)} for reduction {reduction}, got "
                           f"{list(grad_output._shape)}")
    _check_total_weight(fn, total_weight)
    if grad_output._dtype is not self._dtype:
        raise RuntimeError(f"{fn}: expected scalar type {SCALAR_TYPE[self._dtype]} but found "
                           f"{SCALAR_TYPE[grad_output._dtype]} (grad_output must have the input's dtype)")
    return self._shape, self._dtype


defop("nll_loss_forward(Tensor self, Tensor target, Tensor? weight, int reduction, int ignore_index) "
      "-> (Tensor, Tensor)", meta=nll_loss_forward_meta)
defop("nll_loss_backward(Tensor grad_output, Tensor self, Tensor target, Tensor? weight, int reduction, "
      "int ignore_index, Tensor total_weight) -> Tensor", meta=nll_loss_backward_meta)

derivative("nll_loss_forward", self="nll_loss_backward(grad, self, target, weight, reduction, ignore_index, result1)")
# the backward is linear in grad_output (and constant in self): its derivative is the forward again
derivative("nll_loss_backward", grad_output="nll_loss_forward(grad, target, weight, reduction, ignore_index)[0]")


# ---- cross-entropy from logits -----------------------------------------------------------------------
# `_cross_entropy(self, target, weight, reduction, ignore_index, label_smoothing, dtype)`: log_softmax,
# the NLL and torch's label smoothing of `nn.functional.cross_entropy` over (N, C) logits as one op, so
# that the (N, C) log-probabilities are never written and the backward reads the logits once. Returns
# (loss, lse, total_weight): the loss in `dtype` (default: the logits' dtype; float32 for 16-bit logits
# under autocast, which then need no float32 copy), per row (reduction 0) or 0-d; lse (N,) the rows'
# logsumexp in the compute dtype (float64 for float64 logits, else float32), saved for the backward; and
# the total weight of the counted targets (0 for reduction 0), as nll_loss_forward's.

def _compute_dtype(dt):
    return D.float64 if dt is D.float64 else D.float32


def check_cross_entropy(self, target, weight, reduction, label_smoothing, dtype, fn="_cross_entropy"):
    """The loss dtype, after the checks of nll_loss_forward and of label_smoothing and dtype."""
    check_nll(self, target, None, reduction, fn)
    dt = self._dtype
    out = dt if dtype is None else dtype
    if out is not dt and not (out is D.float32 and dt in (D.float16, D.bfloat16)):
        raise RuntimeError(f"{fn}: dtype must be the logits' dtype ({dt}), or float32 for float16/bfloat16 "
                           f"logits, got {out}")
    C = self._shape[1]
    if weight is not None:
        if weight._shape != (C,):
            raise RuntimeError(f"{fn}: weight tensor should be defined either for all {C} classes or no classes "
                               f"but got weight tensor of shape: {list(weight._shape)}")
        if weight._dtype is not dt and weight._dtype is not out:
            raise RuntimeError(f"{fn}: expected scalar type {SCALAR_TYPE[out]} but found "
                               f"{SCALAR_TYPE[weight._dtype]} (weight must have the logits' or the loss's dtype)")
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"{fn}: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if C == 0 and self._shape[0]:
        raise RuntimeError(f"{fn}: the logits have 0 classes (shape {list(self._shape)}): nothing to normalise over")
    return out


def cross_entropy_meta(self, target, weight, reduction, ignore_index, label_smoothing, dtype=None):
    out = check_cross_entropy(self, target, weight, reduction, label_smoothing, dtype)
    return (self._shape[:1] if reduction == 0 else (), out), (self._shape[:1], _compute_dtype(self._dtype)), ((), out)


def cross_entropy_backward_meta(grad, self, target, weight, reduction, ignore_index, label_smoothing, lse,
                                total_weight):
    fn = "_cross_entropy_backward"
    out = check_cross_entropy(self, target, weight, reduction, label_smoothing,
                              grad._dtype if grad._dtype is D.float32 else None, fn)
    want = self._shape[:1] if reduction == 0 else ()
    if grad._shape != want and (reduction == 0 or grad.numel() != 1):
        raise RuntimeError(f"{fn}: expected grad of shape {list(want)} for reduction {reduction}, got "
                           f"{list(grad._shape)}")
    if grad._dtype is not out:
        raise RuntimeError(f"{fn}: expected scalar type {SCALAR_TYPE[out]} but found {SCALAR_TYPE[grad._dtype]} "
                           f"(grad must have the loss's dtype)")
    if lse._shape != self._shape[:1] or lse._dtype is not _compute_dtype(self._dtype):
        raise RuntimeError(f"{fn}: expected lse of shape {list(self._shape[:1])} and dtype "
                           f"{_compute_dtype(self._dtype)} (the forward's), got {list(lse._shape)} {lse._dtype}")
    _check_total_weight(fn, total_weight)
    return self._shape, self._dtype


defop("_cross_entropy(Tensor self, Tensor target, Tensor? weight, int reduction, int ignore_index, "
      "float label_smoothing, ScalarType? dtype=None) -> (Tensor, Tensor, Tensor)", meta=cross_entropy_meta)
defop("_cross_entropy_backward(Tensor grad, Tensor self, Tensor target, Tensor? weight, int reduction, "
      "int ignore_index, float label_smoothing, Tensor lse, Tensor total_weight) -> Tensor",
      meta=cross_entropy_backward_meta)

derivative("_cross_entropy", self="cross_entropy_backward(grad, self, target, weight, reduction, ignore_index, "
                                  "label_smoothing, result1, result2)")

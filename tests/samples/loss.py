"""Samples of the loss family (src/ember/ops/loss.py): nll_loss_forward and nll_loss_backward, against
torch.ops.aten's ops of those names.

Reductions: 0 none, 1 mean, 2 sum. The float64 samples (gradcheck's) have no class weights: torch and
ember differentiate neither the weights nor the backward's total_weight (nor, for the backward, the
mean's divisor), so those are float32 here.
"""
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register

TOL = {"float16": (2e-3, 2e-3), "bfloat16": (2e-2, 2e-2)}


def T(shape, dtype="float32", layout="contiguous", seed=0):
    return make_pair(shape, dtype, low=-3, high=0, seed=seed, layout=layout)[0]


def target(*classes, dtype=ember.int64):
    return ember.tensor(list(classes), dtype=dtype)


def forward_samples():
    return [
        Sample((T((3, 4), "float64"), target(0, 3, 1), None, 1, -100), desc="float64, mean"),
        Sample((T((3, 4), "float64", "transposed"), target(2, 1, 2), None, 0, 1), desc="none, ignore class 1, "
               "transposed"),
        Sample((T((4, 3), "float64"), target(0, 2, -100, 1), None, 2, -100), desc="sum, an ignored row"),
        Sample((T((3, 4)), target(0, 3, 1), T((4,), seed=1), 1, -100), desc="float32, class weights, mean"),
        Sample((T((3, 4), "float32", "sliced"), target(1, 1, 0, dtype=ember.uint8), T((4,), seed=1), 0, -100),
               desc="sliced input, uint8 target, weights, none"),
        Sample((T((3, 4), "float16"), target(0, 3, 1), None, 1, -100), desc="float16"),
        Sample((T((3, 4), "bfloat16"), target(0, 3, 1), T((4,), "bfloat16", seed=1), 2, -100), desc="bfloat16"),
        Sample((T((0, 4)), target(), None, 0, -100), desc="no rows, none"),
        Sample((T((2, 4)), target(1, 1), None, 1, 1), desc="every row ignored: mean is nan"),
    ]


def forward_errors():
    x = T((3, 4))
    return [
        ErrorSample((x, target(0, 1), None, 1, -100), {}, RuntimeError, r"size mismatch \(got input: \[3, 4\], "
                    r"target: \[2\]\)", desc="2 targets for 3 rows"),
        ErrorSample((x, target(0, 1, 2), T((3,)), 1, -100), {}, RuntimeError, r"weight tensor should be defined "
                    r"either for all 4 classes", desc="3 weights for 4 classes"),
        ErrorSample((x, ember.tensor([0.0, 1.0, 2.0]), None, 1, -100), {}, RuntimeError, r"integer dtype",
                    desc="float target"),
        ErrorSample((T((2, 3, 4)), target(0, 1), None, 1, -100), {}, RuntimeError, r"2D", desc="3-d input"),
        ErrorSample((x, target(0, 5, 1), None, 1, -100), {}, IndexError, r"out of bounds", desc="class 5 of 4"),
        ErrorSample((x, target(0, -1, 1), None, 1, -100), {}, IndexError, r"out of bounds", desc="class -1"),
        ErrorSample((T((3, 4), "bfloat16"), target(0, 1, 2), T((4,)), 1, -100), {}, RuntimeError,
                    r"expected scalar type BFloat16 but found Float", desc="float32 weights, bfloat16 input"),
        ErrorSample((T((3, 4), "int64"), target(0, 1, 2), None, 1, -100), {}, NotImplementedError, r"'Long'",
                    desc="int64 input"),
        ErrorSample((x, target(0, 1, 2), None, 3, -100), {}, ValueError, r"reduction must be 0 \(none\), 1 \(mean\) "
                    r"or 2 \(sum\), got 3", desc="reduction 3 (torch takes it as sum)", torch_raises=False),
    ]


def _backward_sample(shape, dt, classes, weighted, reduction, ignore_index=-100, layout="contiguous", seed=0,
                     desc=""):
    """A backward sample whose total_weight is the forward's (ember's CPU op)."""
    x = T(shape, dt, layout, seed)
    t = target(*classes)
    w = T(shape[1:], dt, seed=seed + 1) if weighted else None
    _, tw = ember.ops.nll_loss_forward(x, t, w, reduction, ignore_index)
    g = T(shape[:1] if reduction == 0 else (), dt, seed=seed + 2)
    return Sample((g, x, t, w, reduction, ignore_index, tw), desc=desc)


def backward_samples():
    return [
        _backward_sample((3, 4), "float64", (0, 3, 1), False, 2, desc="float64, sum"),
        _backward_sample((3, 4), "float64", (2, 1, 2), False, 0, 1, layout="transposed",
                         desc="float64, none, ignore class 1, transposed"),
        _backward_sample((3, 4), "float32", (0, 3, 1), True, 1, desc="float32, weights, mean"),
        _backward_sample((3, 4), "float16", (0, 3, -100), False, 1, desc="float16, an ignored row"),
        _backward_sample((3, 4), "bfloat16", (0, 3, 1), True, 0, desc="bfloat16, weights, none"),
        _backward_sample((0, 4), "float32", (), False, 0, desc="no rows"),
    ]


def backward_errors():
    s = backward_samples()[2].args
    return [
        ErrorSample((T((3,)),) + s[1:], {}, RuntimeError, r"expected grad_output of shape \[\] for reduction 1",
                    desc="grad_output (3,) for mean"),
        ErrorSample(s[:6] + (T((2,)),), {}, RuntimeError, r"total_weight to be a single element",
                    desc="total_weight (2,)"),
        ErrorSample((T((), "float64"),) + s[1:], {}, RuntimeError, r"expected scalar type Float but found Double",
                    desc="float64 grad_output for float32 input"),
        ErrorSample(s[:2] + (target(0, 1),) + s[3:], {}, RuntimeError, r"size mismatch", desc="2 targets, 3 rows"),
    ]


register(OpInfo("nll_loss_forward", forward_samples, forward_errors, ref=torch.ops.aten.nll_loss_forward, tol=TOL))
register(OpInfo("nll_loss_backward", backward_samples, backward_errors, ref=torch.ops.aten.nll_loss_backward, tol=TOL))


# ---- _cross_entropy / _cross_entropy_backward: torch's F.cross_entropy, logsumexp and autograd as reference ----

def _ce_torch(x, t, w, reduction, ignore_index, label_smoothing):
    cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.detach().to(cdt).requires_grad_()
    wf = w.to(cdt) if w is not None else None
    loss = torch.nn.functional.cross_entropy(xf, t.long(), wf, ignore_index=ignore_index,
                                             reduction=("none", "mean", "sum")[reduction],
                                             label_smoothing=label_smoothing)
    return xf, wf, loss


def cross_entropy_ref(x, t, w, reduction, ignore_index, label_smoothing, dtype=None):
    out = dtype or x.dtype
    xf, wf, loss = _ce_torch(x, t, w, reduction, ignore_index, label_smoothing)
    counted = t.long() != ignore_index
    if reduction == 0:
        tw = torch.zeros((), dtype=out)
    else:
        tw = wf[t.long()[counted]].sum() if wf is not None else counted.sum()
    return loss.detach().to(out), torch.logsumexp(xf.detach(), 1), tw.to(out)


def cross_entropy_backward_ref(grad, x, t, w, reduction, ignore_index, label_smoothing, lse, total_weight):
    xf, _, loss = _ce_torch(x, t, w, reduction, ignore_index, label_smoothing)
    gi, = torch.autograd.grad(loss, xf, grad.to(xf.dtype))
    return gi.to(x.dtype)


def L(shape, dtype="float32", layout="contiguous", seed=0):
    """Logits: any real values."""
    return make_pair(shape, dtype, low=-4, high=4, seed=seed, layout=layout)[0]


def ce_samples():
    f32 = ember.float32
    return [
        Sample((L((3, 4), "float64"), target(0, 3, 1), None, 1, -100, 0.0), desc="float64, mean"),
        Sample((L((4, 5), "float64", "transposed"), target(2, 1, 2, 4), None, 0, 1, 0.1),
               desc="float64, none, ignore class 1, transposed, smoothing"),
        Sample((L((4, 3), "float64"), target(0, 2, -100, 1), None, 2, -100, 0.25), desc="sum, an ignored row, "
               "smoothing"),
        Sample((L((3, 4)), target(0, 3, 1), L((4,), seed=1).abs(), 1, -100, 0.0), desc="float32, weights, mean"),
        Sample((L((5, 4)), target(0, 3, 1, -100, 2), L((4,), seed=1).abs(), 1, -100, 0.2),
               desc="float32, weights, smoothing, mean"),
        Sample((L((3, 4), "float32", "sliced"), target(1, 1, 0, dtype=ember.uint8), None, 0, -100, 0.0),
               desc="sliced input, uint8 target, none"),
        Sample((L((6, 2500)), target(0, 2499, 7, 1000, -100, 3), None, 1, -100, 0.1),
               desc="2500 classes: two column tiles"),
        Sample((L((3, 4), "float16"), target(0, 3, 1), None, 1, -100, 0.0), desc="float16"),
        Sample((L((3, 4), "bfloat16"), target(0, 3, 1), L((4,), "bfloat16", seed=1).abs(), 2, -100, 0.1),
               desc="bfloat16, weights, smoothing"),
        Sample((L((3, 4), "bfloat16"), target(0, 3, 1), L((4,), seed=1).abs(), 1, -100, 0.0, f32),
               desc="bfloat16 logits, float32 loss and weights (autocast's form)"),
        Sample((L((0, 4)), target(), None, 0, -100, 0.0), desc="no rows, none"),
        Sample((L((2, 4)), target(1, 1), None, 1, 1, 0.0), desc="every row ignored: mean is nan"),
    ]


def ce_errors():
    x = L((3, 4))
    return [
        ErrorSample((x, target(0, 1), None, 1, -100, 0.0), {}, RuntimeError, r"size mismatch \(got input: \[3, 4\], "
                    r"target: \[2\]\)", desc="2 targets for 3 rows", torch_raises=False),
        ErrorSample((x, target(0, 1, 2), L((3,)), 1, -100, 0.0), {}, RuntimeError, r"weight tensor should be "
                    r"defined either for all 4 classes", desc="3 weights for 4 classes"),
        ErrorSample((x, target(0, 5, 1), None, 1, -100, 0.0), {}, IndexError, r"cross_entropy: Target out of "
                    r"bounds", desc="class 5 of 4"),
        ErrorSample((x, target(0, 1, 2), None, 1, -100, 1.5), {}, RuntimeError, r"label_smoothing must be between "
                    r"0.0 and 1.0. Got: 1.5", desc="smoothing 1.5"),
        ErrorSample((x, target(0, 1, 2), None, 1, -100, 0.0, ember.float16), {}, RuntimeError, r"dtype must be the "
                    r"logits' dtype \(ember.float32\), or float32 for float16/bfloat16 logits, got ember.float16",
                    desc="float16 loss of float32 logits", torch_raises=False),
        ErrorSample((L((3, 4), "bfloat16"), target(0, 1, 2), L((4,), "float16"), 1, -100, 0.0), {}, RuntimeError,
                    r"expected scalar type BFloat16 but found Half", desc="float16 weights, bfloat16 logits",
                    torch_raises=False),
        ErrorSample((L((3, 0)), target(0, 1, 2), None, 1, -100, 0.0), {}, RuntimeError, r"0 classes",
                    desc="no classes", torch_raises=False),
    ]


def _ce_backward_sample(shape, dt, classes, weighted, reduction, ignore_index=-100, smoothing=0.0,
                        layout="contiguous", seed=0, dtype=None, desc=""):
    x = L(shape, dt, layout, seed)
    t = target(*classes)
    w = L(shape[1:], dtype and "float32" or dt, seed=seed + 1).abs() if weighted else None
    loss, lse, tw = ember.ops._cross_entropy(x, t, w, reduction, ignore_index, smoothing, dtype)
    g = L(loss.shape, "float32" if dtype else dt, seed=seed + 2)
    return Sample((g, x, t, w, reduction, ignore_index, smoothing, lse, tw), desc=desc)


def ce_backward_samples():
    return [
        _ce_backward_sample((3, 4), "float64", (0, 3, 1), False, 2, desc="float64, sum"),
        _ce_backward_sample((4, 5), "float64", (2, 1, 2, 0), False, 0, 1, 0.1, layout="transposed",
                            desc="float64, none, ignore class 1, smoothing, transposed"),
        _ce_backward_sample((3, 4), "float32", (0, 3, 1), True, 1, desc="float32, weights, mean"),
        _ce_backward_sample((5, 4), "float32", (0, 3, 1, -100, 2), True, 1, smoothing=0.2,
                            desc="float32, weights, smoothing, mean"),
        _ce_backward_sample((6, 2500), "float32", (0, 2499, 7, 1000, -100, 3), False, 1, smoothing=0.1,
                            desc="2500 classes: two column tiles"),
        _ce_backward_sample((3, 4), "float16", (0, 3, -100), False, 1, desc="float16, an ignored row"),
        _ce_backward_sample((3, 4), "bfloat16", (0, 3, 1), False, 0, smoothing=0.1, desc="bfloat16, none"),
        _ce_backward_sample((3, 4), "bfloat16", (0, 3, 1), True, 1, dtype=ember.float32,
                            desc="bfloat16 logits, float32 loss (autocast's form)"),
        _ce_backward_sample((0, 4), "float32", (), False, 0, desc="no rows"),
    ]


def ce_backward_errors():
    s = ce_backward_samples()[2].args
    return [
        ErrorSample((L((3,)),) + s[1:], {}, RuntimeError, r"expected grad of shape \[\] for reduction 1",
                    desc="grad (3,) for mean", torch_raises=False),
        ErrorSample(s[:8] + (L((2,)),), {}, RuntimeError, r"total_weight to be a single element",
                    desc="total_weight (2,)", torch_raises=False),
        ErrorSample(s[:7] + (L((2,)),) + s[8:], {}, RuntimeError, r"expected lse of shape \[3\]",
                    desc="lse (2,)", torch_raises=False),
        ErrorSample((L((), "float64"),) + s[1:], {}, RuntimeError, r"expected scalar type Float but found Double",
                    desc="float64 grad for float32 logits", torch_raises=False),
    ]


CE_LSE = ("the lse output carries no gradient (it is saved for the backward) while autograd.gradcheck compares every "
          "output; tests/test_nll_fused.py gradchecks F.cross_entropy (weights, smoothing, every reduction) and its "
          "double backward")
CE_NO_GRAD = "no derivative: under create_graph the cross-entropy backward recomputes the composite"
register(OpInfo("_cross_entropy", ce_samples, ce_errors, ref=cross_entropy_ref, tol=TOL, grad=CE_LSE))
register(OpInfo("_cross_entropy_backward", ce_backward_samples, ce_backward_errors, ref=cross_entropy_backward_ref,
                tol=TOL, grad=CE_NO_GRAD))

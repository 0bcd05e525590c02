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

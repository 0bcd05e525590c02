"""Samples of the optimizer family (src/ember/ops/optim.py): _fused_adam_, _fused_adamw_ and _fused_sgd_
(against torch.ops.aten's ops of those names, on the CPU), _foreach_add_ (aten's _foreach_add_.Scalar),
_total_norm (torch.nn.utils.get_total_norm) and _clip_grads_with_norm_ (torch's foreach clipping: aten's
_foreach_mul_.Tensor by the clamped coefficient). As aten's, the in-place ops return None.

The in-place ops return nothing; what they write is in their tensor lists. Those are not marked
`(a!)` in the schemas yet (the dispatcher bumps versions of single tensors only), so the suites compare
the None results, the metas and the errors; tests/test_optim.py compares the written lists with
torch. The CUDA Adam kernel computes in float32 (float64 too), and reads step counts held with the
parameters on the device (the interpreter's case) with float32 bias corrections: the float64 and
float32 tolerances cover that. Step counts are 0-d CPU float32 tensors, as ember.optim.Adam keeps them.
The SGD kernels compute float64 parameters in float64, the others in float32.
"""
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register

FUSED_TOL = {"float32": (2e-5, 2e-6), "float64": (2e-5, 2e-6), "float16": (2e-3, 2e-3), "bfloat16": (2e-2, 2e-2)}
NOT_DIFFERENTIABLE = "an optimizer-side op (run under no_grad): no derivative is declared"


def T(shape, dtype="float32", layout="contiguous", seed=0, low=-3.0, high=3.0):
    return make_pair(shape, dtype, low=low, high=high, seed=seed, layout=layout)[0]


def _adam_args(shapes, dtype="float32", amsgrad=False, seed=0, grad_layout="contiguous", step=3.0):
    """(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps) for `shapes`."""
    params = [T(s, dtype, seed=seed + i) for i, s in enumerate(shapes)]
    grads = [T(s, dtype, grad_layout if len(s) >= 2 else "contiguous", seed=seed + 10 + i) for i, s in enumerate(shapes)]
    exp_avgs = [T(s, dtype, seed=seed + 20 + i, low=-0.5, high=0.5) for i, s in enumerate(shapes)]
    exp_avg_sqs = [T(s, dtype, seed=seed + 30 + i, low=0.0, high=0.5) for i, s in enumerate(shapes)]
    maxes = [T(s, dtype, seed=seed + 40 + i, low=0.25, high=1.0) for i, s in enumerate(shapes)] if amsgrad else []
    steps = [ember.tensor(step + i) for i in range(len(shapes))]
    return params, grads, exp_avgs, exp_avg_sqs, maxes, steps


def _adam_kw(amsgrad=False, maximize=False, lr=1e-2, weight_decay=0.1, **extra):
    return dict(lr=lr, beta1=0.9, beta2=0.99, weight_decay=weight_decay, eps=1e-8, amsgrad=amsgrad, maximize=maximize,
                **extra)


def adam_samples():
    return [
        Sample(_adam_args([(3, 4), (5,), (2, 3)]), _adam_kw(), desc="float32, weight decay"),
        Sample(_adam_args([(3, 4), (6,)], "float64", amsgrad=True), _adam_kw(True, True, lr=ember.tensor(3e-3)),
               desc="float64, amsgrad, maximize, a tensor lr (capturable)"),
        Sample(_adam_args([(4, 3), (0, 2)], grad_layout="transposed"), _adam_kw(weight_decay=0.0),
               desc="a transposed grad, an empty parameter"),
        Sample(_adam_args([()], "float64"), _adam_kw(), desc="a 0-d parameter"),
        Sample(_adam_args([(3, 4), (5,)]), _adam_kw(grad_scale=ember.tensor(4.0), found_inf=ember.tensor(0.0)),
               desc="grad_scale (grads divided, written back), found_inf 0"),
        Sample(_adam_args([(3, 4)]), _adam_kw(grad_scale=ember.tensor(4.0), found_inf=ember.tensor(1.0)),
               desc="found_inf 1: nothing written"),
        Sample(_adam_args([(3, 4), (7,)], "bfloat16"), _adam_kw(), desc="bfloat16 (computed in float32)"),
        Sample(_adam_args([(5,)], "float16", amsgrad=True), _adam_kw(True), desc="float16, amsgrad"),
    ]


def adam_errors():
    def edit(k, fn, **kw):
        args = list(_adam_args([(3, 4), (5,)], amsgrad=kw.pop("amsgrad_state", False)))
        fn(args[k])
        return tuple(args), _adam_kw(**kw)

    return [
        ErrorSample(*edit(1, lambda g: g.pop()), RuntimeError, "expected grads to hold one tensor per parameter",
                    desc="one grad for two parameters"),
        ErrorSample(*edit(4, lambda m: None, amsgrad=True), RuntimeError,
                    "expected max_exp_avg_sqs to hold one tensor per parameter", desc="amsgrad without its state"),
        ErrorSample(*edit(4, lambda m: None, amsgrad_state=True), RuntimeError, "expected max_exp_avg_sqs to be empty",
                    desc="max_exp_avg_sqs without amsgrad"),
        ErrorSample(*edit(2, lambda m: m.__setitem__(0, T((3, 4), "float64"))), RuntimeError,
                    r"expected scalar type ember.float32 but found ember.float64", desc="a float64 exp_avg"),
        ErrorSample(*edit(5, lambda s: s.__setitem__(1, ember.zeros(2))), RuntimeError, "a Tensor with 2 elements",
                    desc="a step count of 2 elements"),
        ErrorSample(*edit(3, lambda v: v.__setitem__(1, T((6,)))), RuntimeError, "of the parameter's shape",
                    desc="exp_avg_sq of another shape (torch reads past it)", torch_raises=False),
        ErrorSample(tuple([T((3,), "int64")] for _ in range(4)) + ([], [ember.tensor(1.0)]), _adam_kw(),
                    NotImplementedError, "not implemented for ember.int64", desc="int64 parameters"),
    ]


def _fused_ref(name):
    """torch's fused Adam, AdamW or SGD; on CUDA it refuses grads laid out unlike their parameters (ember
    takes them), so such grads are handed to torch as contiguous copies (the update does not depend on
    the layout)."""
    fn = getattr(torch.ops.aten, name)

    def ref(params, grads, *rest, **kw):
        if any(g.is_cuda and g.stride() != p.stride() for p, g in zip(params, grads)):
            grads = [g.contiguous() for g in grads]
        return fn(params, grads, *rest, **kw)
    return ref


for _name in ("_fused_adam_", "_fused_adamw_"):
    register(OpInfo(_name, adam_samples, adam_errors, ref=_fused_ref(_name), tol=FUSED_TOL,
                    grad=NOT_DIFFERENTIABLE))


def _sgd_args(shapes, dtype="float32", momentum=True, seed=0, grad_layout="contiguous"):
    """(params, grads, momentum_buffer_list) for `shapes` (no buffers without momentum)."""
    params = [T(s, dtype, seed=seed + i) for i, s in enumerate(shapes)]
    grads = [T(s, dtype, grad_layout if len(s) >= 2 else "contiguous", seed=seed + 10 + i)
             for i, s in enumerate(shapes)]
    bufs = [T(s, dtype, seed=seed + 20 + i, low=-0.5, high=0.5) for i, s in enumerate(shapes)] if momentum else []
    return params, grads, bufs


def _sgd_kw(momentum=0.9, weight_decay=0.1, lr=1e-2, dampening=0.0, nesterov=False, maximize=False,
            is_first_step=False, **extra):
    return dict(weight_decay=weight_decay, momentum=momentum, lr=lr, dampening=dampening, nesterov=nesterov,
                maximize=maximize, is_first_step=is_first_step, **extra)


def sgd_samples():
    # float16/bfloat16 on the CPU: torch 2.13's fused SGD skips their vectorised blocks (pytorch#191763); the
    # suites compare the None results only, and tests/test_optim.py checks those values by hand
    return [
        Sample(_sgd_args([(3, 4), (5,), (2, 3)]), _sgd_kw(), desc="float32, momentum, weight decay"),
        Sample(_sgd_args([(3, 4), (6,)], "float64"), _sgd_kw(nesterov=True, maximize=True, lr=ember.tensor(3e-3)),
               desc="float64, nesterov, maximize, a tensor lr"),
        Sample(_sgd_args([(4, 3), (0, 2)], momentum=False, grad_layout="transposed"), _sgd_kw(momentum=0.0),
               desc="no momentum (no buffers), a transposed grad, an empty parameter"),
        Sample(_sgd_args([()], "float64"), _sgd_kw(dampening=0.3, is_first_step=True),
               desc="a 0-d parameter, the first step (buffer = grad)"),
        Sample(_sgd_args([(3, 4), (5,)]), _sgd_kw(dampening=0.3, grad_scale=ember.tensor(4.0),
                                                  found_inf=ember.tensor(0.0)),
               desc="grad_scale (grads divided, written back), found_inf 0"),
        Sample(_sgd_args([(3, 4)]), _sgd_kw(grad_scale=ember.tensor(4.0), found_inf=ember.tensor(1.0)),
               desc="found_inf 1: nothing written"),
        Sample(_sgd_args([(3, 4), (7,)], "bfloat16"), _sgd_kw(), desc="bfloat16 (computed in float32)"),
        Sample(_sgd_args([(5,)], "float16"), _sgd_kw(nesterov=True), desc="float16, nesterov"),
    ]


def sgd_errors():
    def edit(k, fn, **kw):
        args = list(_sgd_args([(3, 4), (5,)], momentum=kw.pop("buffers", True)))
        fn(args[k])
        return tuple(args), _sgd_kw(**kw)

    return [
        ErrorSample(*edit(1, lambda g: g.pop()), RuntimeError, "expected grads to hold one tensor per parameter",
                    desc="one grad for two parameters"),
        ErrorSample(*edit(2, lambda b: None, buffers=False), RuntimeError,
                    "expected momentum_buffer_list to hold one tensor per parameter", desc="momentum without buffers"),
        ErrorSample(*edit(2, lambda b: None, momentum=0.0), RuntimeError, "expected momentum_buffer_list to be empty",
                    desc="buffers without momentum"),
        ErrorSample(*edit(2, lambda b: b.__setitem__(0, T((3, 4), "float64"))), RuntimeError,
                    r"expected scalar type ember.float32 but found ember.float64", desc="a float64 buffer"),
        ErrorSample(*edit(1, lambda g: g.__setitem__(1, T((6,)))), RuntimeError, "of the parameter's shape",
                    desc="a grad of another shape (torch reads past it)", torch_raises=False),
        ErrorSample(*edit(0, lambda p: None, lr=ember.zeros(2)), RuntimeError, "a Tensor with 2 elements",
                    desc="an lr of 2 elements"),
        ErrorSample(tuple([T((3,), "int64")] for _ in range(3)), _sgd_kw(), NotImplementedError,
                    "not implemented for ember.int64", desc="int64 parameters"),
    ]


register(OpInfo("_fused_sgd_", sgd_samples, sgd_errors, ref=_fused_ref("_fused_sgd_"), tol=FUSED_TOL,
                grad=NOT_DIFFERENTIABLE))


def foreach_add_samples():
    return [
        Sample(([ember.tensor(1.0), ember.tensor(5.0)], 1), desc="0-d float32 step counts"),
        Sample(([T((2, 3)), T((4,), "float64"), T((3,), "int64"), T((2,), "float16")], 2),
               desc="mixed dtypes, an int scalar"),
        Sample(([T((3, 4), layout="transposed"), T((0, 3)), T((2,), "bfloat16")], 0.5),
               desc="transposed, empty, bfloat16, a float scalar"),
        Sample(([T((3,), "bool"), ember.tensor(True)], True), desc="bool tensors and a bool scalar"),
        Sample(([ember.tensor(3, dtype=ember.int32), ember.tensor(2.0, dtype=ember.float64)], -4),
               desc="0-d int32 and float64"),
    ]


def foreach_add_errors():
    return [
        ErrorSample(([T((2,)), T((2,), "int64")], 1.5), {}, RuntimeError,
                    "result type ember.float32 can't be cast to the desired output type ember.int64",
                    desc="a float scalar into an int64 tensor"),
        ErrorSample(([T((2,), "bool")], 1), {}, RuntimeError, "can't be cast to the desired output type ember.bool",
                    desc="an int scalar into a bool tensor"),
    ]


register(OpInfo("_foreach_add_", foreach_add_samples, foreach_add_errors, ref=torch.ops.aten._foreach_add_.Scalar,
                grad=NOT_DIFFERENTIABLE))


def total_norm_samples():
    # contiguous float32 with p = 2 takes the fused CUDA launches, about 10 s in the interpreter at their
    # real sizes: that sample comes after the three the interpreter suite runs (test_cuda_optim_interp.py
    # runs those launches at small sizes)
    return [
        Sample(([T((3, 4), "float64"), T((5,), "float64", seed=1)], 1.0), desc="float64, the 1-norm"),
        Sample(([T((3, 4), "float64"), T((5,), seed=1)], float("inf")), desc="float64 and float32: inf, promoted"),
        Sample(([T((6,), "float16"), T((3,), "bfloat16", seed=1)], 2.0), desc="float16 and bfloat16: float32"),
        Sample(([T((3, 4)), T((5,), seed=1), T((1,), seed=2)], 2.0), desc="float32, the 2-norm"),
        Sample(([T((3, 4), "float64", "transposed"), T((), "float64", seed=3), T((0, 2), "float64")], 2.0),
               desc="transposed, 0-d and empty tensors"),
        Sample(([T((3, 4), "float64"), T((2,), "float64", seed=1)], 0.0), desc="the 0-norm: a count of tensors"),
        Sample(([T((3, 4), "float64"), T((2,), "float64", seed=1)], 3.0), desc="the 3-norm"),
    ]


def total_norm_errors():
    return [
        ErrorSample(([T((2,)), T((2,), "int64")], 2.0), {}, RuntimeError,
                    "Expected a floating point or complex tensor as input. Got ember.int64", desc="an int64 tensor"),
        ErrorSample(([T((2,)), T((0,))], float("inf")), {}, RuntimeError,
                    "cannot compute the inf norm on an empty tensor", desc="the inf norm of an empty tensor"),
    ]


register(OpInfo("_total_norm", total_norm_samples, total_norm_errors,
                ref=lambda tensors, norm_type=2.0: torch.nn.utils.get_total_norm(tensors, norm_type),
                tol={"float16": (2e-3, 2e-3), "bfloat16": (2e-2, 2e-2)}, grad=NOT_DIFFERENTIABLE))


def clip_samples():
    return [
        Sample(([T((3, 4)), T((5,), seed=1)], 1.0, ember.tensor(7.5)), desc="float32, scaled down"),
        Sample(([T((3, 4), "float64"), T((5,), "float64", seed=1)], 1e3, ember.tensor(7.5, dtype=ember.float64)),
               desc="float64, a coefficient clamped to 1"),
        Sample(([T((4, 3), layout="transposed"), T((), seed=1), T((0,))], 0.5, ember.tensor(2.0)),
               desc="transposed, 0-d and empty gradients"),
        Sample(([T((6,), "float16"), T((2, 2), "float16", seed=1)], 1.0, ember.tensor(3.0, dtype=ember.float16)),
               desc="float16 gradients and total"),
        Sample(([T((4,), "bfloat16"), T((3,), seed=1)], 1.0, ember.tensor(3.0)),
               desc="bfloat16 and float32 gradients, a float32 total"),
    ]


def clip_errors():
    return [
        ErrorSample(([T((2,))], 1.0, ember.tensor([2.0])), {}, RuntimeError,
                    "expected total_norm to be a 0-dim tensor", desc="a 1-d total"),
        ErrorSample(([T((2,), "int64")], 1.0, ember.tensor(2.0)), {}, RuntimeError,
                    "can't be cast to the desired output type ember.int64", desc="int64 gradients"),
    ]


register(OpInfo("_clip_grads_with_norm_", clip_samples, clip_errors,
                ref=lambda grads, max_norm, total_norm: torch.ops.aten._foreach_mul_.Tensor(
                    grads, torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)),
                grad=NOT_DIFFERENTIABLE))

"""Reverse-mode automatic differentiation, built into the dispatcher.

When grad mode is on and an input of an op requires grad, the generated dispatcher calls
`derivatives.record`, which runs the kernel and records one graph node holding what the op's
derivative formulas need. `backward` / `grad` run the engine over those nodes.
"""
from __future__ import annotations

from .._tensor import Tensor
from ..dispatch import OPS, install_autograd
from . import tensor_methods  # noqa: F401  (Tensor.backward, detach, hooks, ...)
from .anomaly_mode import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .derivatives import derivative, nondifferentiable
from .engine import run_backward
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled)
from .gradcheck import gradcheck, gradgradcheck
from .graph import Node
from .derivatives import record as _record
from .grad_mode import state as _state

install_autograd(_record, _state)   # the dispatcher's autograd layer (it does not import this package)

__all__ = ["backward", "grad", "Function", "FunctionCtx", "once_differentiable", "no_grad", "enable_grad",
           "set_grad_enabled", "inference_mode", "is_grad_enabled", "is_inference_mode_enabled",
           "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "gradcheck", "gradgradcheck",
           "derivative", "nondifferentiable", "Node"]


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _make_grads(outputs, grads, create_graph):
    out = []
    if grads is None:
        grads = [None] * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"grad can be implicitly created only for scalar outputs; got {len(grads)} "
                           f"grad_tensors for {len(outputs)} tensors")
    for i, (t, g) in enumerate(zip(outputs, grads)):
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs (output {i} has "
                                   f"shape {list(t._shape)}); pass a gradient of that shape")
            if not t._dtype.is_floating_point:
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {t._dtype}")
            g = OPS["ones"].fn(*t._shape, dtype=t._dtype, device=t.device)
        elif not isinstance(g, Tensor):
            g = OPS["full"].fn(t._shape, g, dtype=t._dtype, device=t.device)
        elif g._shape != t._shape:
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {list(g._shape)} and "
                               f"output[{i}] has a shape of {list(t._shape)}.")
        out.append(g)
    return out


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulates the gradients of `tensors` into the `.grad` of the leaves (or of `inputs`)."""
    tensors = _as_list(tensors)
    grads = _make_grads(tensors, _as_list(grad_tensors), create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    inputs = _as_list(inputs)
    if inputs is not None and len(inputs) == 0:
        raise RuntimeError("backward() received an empty list of inputs")
    run_backward(tensors, grads, retain_graph, create_graph, inputs=inputs, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs` (returned, not accumulated into `.grad`)."""
    outputs = _as_list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = _as_list(inputs)
    grads = _make_grads(outputs, _as_list(grad_outputs), create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    res = run_backward(outputs, grads, retain_graph, create_graph, inputs=inputs,
                       allow_unused=allow_unused, accumulate=False)
    if materialize_grads:
        res = [r if r is not None else OPS["zeros"].fn(*t._shape, dtype=t._dtype, device=t.device)
               for r, t in zip(res, inputs)]
    return tuple(res)

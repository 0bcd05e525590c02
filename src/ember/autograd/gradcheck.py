"""Finite-difference checks of gradients (`gradcheck`, `gradgradcheck`), in float64."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    pass


def _as_tuple(x):
    return (x,) if isinstance(x, Tensor) else tuple(x)


def _numerical_jacobian(fn, inputs, k, eps):
    """Jacobian of every output (flattened) w.r.t. input k, by central differences."""
    x = inputs[k]
    a = x.numpy(force=True)
    cols = []
    for idx in np.ndindex(*a.shape):
        orig = float(a[idx])
        a[idx] = orig + eps
        plus = [o.detach().numpy().astype(np.float64).ravel().copy() for o in _as_tuple(fn(*inputs))]
        a[idx] = orig - eps
        minus = [o.detach().numpy().astype(np.float64).ravel().copy() for o in _as_tuple(fn(*inputs))]
        a[idx] = orig
        cols.append(np.concatenate([(p - m) / (2 * eps) for p, m in zip(plus, minus)]) if plus else np.zeros(0))
    n_out = sum(o.numel() for o in _as_tuple(fn(*inputs)))
    return np.stack(cols, axis=1) if cols else np.zeros((n_out, 0))


def _analytical_jacobian(fn, inputs, diff_idx):
    from . import grad as _grad
    from ..core.layout import contiguous_format
    from ..ops.creation import zeros_like
    outs = [o for o in _as_tuple(fn(*inputs))]
    n_out = sum(o.numel() for o in outs)
    jac = {k: np.zeros((n_out, inputs[k].numel())) for k in diff_idx}
    row = 0
    for o in outs:
        for j in range(o.numel()):
            g = zeros_like(o, memory_format=contiguous_format)
            g.view(-1)[j] = 1.0
            if not o.requires_grad:
                row += 1
                continue
            gs = _grad([o], [inputs[k] for k in diff_idx], [g], retain_graph=True, allow_unused=True)
            for k, gk in zip(diff_idx, gs):
                if gk is not None:
                    jac[k][row] = gk.detach().numpy().astype(np.float64).ravel()
            row += 1
    return jac


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, **_ignored) -> bool:
    """Compares analytical gradients with central finite differences (inputs should be float64)."""
    inputs = _as_tuple(inputs)
    diff_idx = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff_idx:
        raise ValueError("gradcheck expects at least one input tensor to require gradient")
    for k in diff_idx:
        if inputs[k].dtype.name != "float64":
            import warnings
            warnings.warn(f"gradcheck: input {k} is {inputs[k].dtype}, not float64; the check may fail "
                          f"from rounding alone", stacklevel=2)
    analytical = _analytical_jacobian(func, inputs, diff_idx)
    for k in diff_idx:
        numerical = _numerical_jacobian(func, inputs, k, eps)
        a = analytical[k]
        if not np.allclose(a, numerical, rtol=rtol, atol=atol):
            bad = np.argmax(np.abs(a - numerical))
            msg = (f"Jacobian mismatch for output 0 with respect to input {k},\n"
                   f"numerical:{numerical}\nanalytical:{a}\n(largest difference at flat index {bad})")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, **_ignored) -> bool:
    """gradcheck of the function inputs -> grads (built with create_graph=True)."""
    from . import grad as _grad
    from ..ops.random import randn
    inputs = _as_tuple(inputs)
    diff_idx = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    outs = _as_tuple(func(*inputs))
    if grad_outputs is None:
        grad_outputs = [randn(*o.shape, dtype=o.dtype).requires_grad_() for o in outs]
    grad_outputs = list(_as_tuple(grad_outputs))
    n = len(inputs)

    def first_grads(*args):
        xs, gos = args[:n], args[n:]
        o = _as_tuple(func(*xs))
        gs = _grad(list(o), [xs[k] for k in diff_idx], list(gos), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)
    return gradcheck(first_grads, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)

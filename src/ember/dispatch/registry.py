"""The op table and the dispatcher.

Every op is declared once with a schema (`defop`). From the schema the registry generates the
op's Python entry point: a plain function whose body checks and collects the tensor arguments'
devices inline and calls the backend kernel registered for that device. Generating the body per
op keeps the per-call path to a few attribute loads and one dict lookup, with no argument
re-parsing and no isinstance chains.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..core.device import CPU, canonical
from ..core.shape import as_shape
from .schema import Schema, parse_schema

__all__ = ["Op", "OPS", "defop", "get_op"]

OPS: dict = {}
_SCALARS = frozenset((int, float, bool, np.bool_))


class Op:
    """One entry of the op table: schema, kernels per backend, shape/dtype rule, derivative."""

    __slots__ = ("name", "schema", "kernels", "meta", "derivative", "fn", "method", "cross_device", "__weakref__")

    def __init__(self, schema: Schema, meta=None):
        self.name = schema.name
        self.schema = schema
        self.kernels: dict = {}
        self.meta = meta
        self.derivative = None
        self.fn = None
        self.method = None
        self.cross_device = False  # copy_: tensors on two devices are allowed (the non-CPU one's kernel runs)

    def register(self, *backends):
        """Decorator: `@op.register('cpu')` (several backends may share one kernel)."""
        if not backends:
            raise ValueError(f"register() for {self.name} needs at least one backend name")

        def deco(kernel):
            for b in backends:
                self.kernels[b] = kernel
            return kernel
        return deco

    def __repr__(self) -> str:
        return f"<ember op {self.schema}; kernels: {sorted(self.kernels)}>"


def get_op(name: str) -> Op:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"no op named {name!r} is declared; see ember.dispatch.OPS for the table") from None


# ---- errors, kept off the generated fast path --------------------------------------------------

def _bad_tensor(op: Op, argname: str, value):
    raise TypeError(f"{op.name}(): argument '{argname}' must be Tensor, not {type(value).__name__}")


def _mixed(op: Op, named):
    """The tensor arguments are not all on one device (off the fast path): the op's device, or an error.

    `named` holds (argument name, tensor or list of tensors) for every tensor argument. As in
    PyTorch, a 0-dim CPU tensor may go along with tensors of another device (it is read as a
    scalar); anything else on a second device is an error naming the argument. copy_ may take two
    devices; its non-CPU one runs the kernel."""
    from .._tensor import Tensor
    first = {}
    scalar_cpu = False
    for argname, v in named:
        for t in (v if isinstance(v, (list, tuple)) else (v,)):
            if not isinstance(t, Tensor):
                continue
            d = t._storage.device
            if d is CPU and not t._shape and not op.cross_device:
                scalar_cpu = True
                continue
            first.setdefault(d, argname)
    if op.cross_device and len(first) == 2 and CPU in first:
        return next(d for d in first if d is not CPU)
    if len(first) <= 1:
        return next(iter(first)) if first else (CPU if scalar_cpu else None)
    (d0, a0), (d1, a1) = list(first.items())[:2]
    raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                       f"{d0} (argument '{a0}') and {d1} (argument '{a1}') in {op.name}; "
                       f"move them with .to(device) first (only a 0-dim CPU tensor may go along with "
                       f"another device's tensors)")


def _bad_scalar(op: Op, argname: str, value):
    raise TypeError(f"{op.name}(): argument '{argname}' must be Tensor or a number, not {type(value).__name__}")


def _no_kernel(op: Op, dev):
    have = sorted(op.kernels) or ["none"]
    raise NotImplementedError(f"{op.name} has no kernel for the '{dev.type}' backend "
                              f"(kernels registered for: {', '.join(have)})")


def _factory_device(d):
    return CPU if d is None else canonical(d)


def _empty_tensor_list(op: Op, argname: str):
    raise ValueError(f"{op.name}(): argument '{argname}' must be a non-empty sequence of tensors")


# ---- code generation -----------------------------------------------------------------------

def _params(schema: Schema) -> str:
    out, star = [], False
    for a in schema.args:
        if a.variadic:
            out.append("*" + a.name)
            star = True
            continue
        if a.kwonly and not star:
            out.append("*")
            star = True
        out.append(f"{a.name}={a.default!r}" if a.has_default else a.name)
    return ", ".join(out)


def _generate(op: Op, pyname: str):
    schema = op.schema
    lines = [f"def {pyname}({_params(schema)}):"]
    for a in schema.args:
        if a.variadic:
            lines.append(f"    {a.name} = _as_shape({a.name}, {a.name!r})")
    have_dev = False
    named = "(" + "".join(f"({a.name!r}, {a.name}), " for a in schema.tensor_args) + ")"
    for a in schema.tensor_args:
        n = a.name
        if a.type == "Tensor" and not a.optional:
            get = [f"    try:", f"        _d = {n}._storage.device",
                   f"    except AttributeError:", f"        _bad(_op, {n!r}, {n})"]
            lines += get
            if not have_dev:
                lines.append("    dev = _d")
            else:
                lines.append(f"    if _d is not dev: dev = _mixed(_op, {named})")
        elif a.type in ("Tensor", "Tensor|Scalar"):
            cond = f"{n} is not None" if a.type == "Tensor" else f"isinstance({n}, _T)"
            if a.type == "Tensor":
                lines.append(f"    if {cond} and not isinstance({n}, _T): _bad(_op, {n!r}, {n})")
            else:
                none_ok = f"{n} is not None and " if a.optional else ""
                lines.append(f"    if {none_ok}{n}.__class__ not in _SCALARS and not isinstance({n}, (_T, _Number)): "
                             f"_bad_scalar(_op, {n!r}, {n})")
            if have_dev:
                lines.append(f"    if {cond} and {n}._storage.device is not dev: dev = _mixed(_op, {named})")
            else:
                lines.append(f"    dev = {n}._storage.device if {cond} else None")
        else:  # Tensor[] / Tensor?[]
            if not have_dev:
                lines.append("    dev = None")
            lines.append(f"    for _t in {n}:")
            if a.type == "Tensor?[]":
                lines.append("        if _t is None: continue")
            lines += [f"        if not isinstance(_t, _T): _bad(_op, {n!r}, _t)",
                      f"        if dev is None: dev = _t._storage.device",
                      f"        elif _t._storage.device is not dev: dev = _mixed(_op, {named})"]
            if a.type == "Tensor[]":
                lines.append(f"    if dev is None: _empty(_op, {n!r})")
        have_dev = True
    names = [a.name for a in schema.args]
    set_rg = "requires_grad" in names  # factory ops: the flag is set here, kernels never see it
    if set_rg:
        names.remove("requires_grad")
    if "device" in names and not have_dev:
        lines.append("    dev = device = _factory_device(device)")
        have_dev = True
    elif not have_dev:
        lines.append("    dev = _CPU")
    elif any(a.type != "Tensor" or a.optional for a in schema.tensor_args[:1]):
        lines.append("    if dev is None: dev = _CPU")
    lines.append("    _k = _kernels.get(dev.type)")
    lines.append("    if _k is None: _no_kernel(_op, dev)")
    call = f"_k({', '.join(names)})"
    conds = []
    for a in schema.tensor_args:
        n = a.name
        if a.type == "Tensor" and not a.optional:
            conds.append(f"{n}.requires_grad")
        elif a.type in ("Tensor", "Tensor|Scalar"):
            conds.append(f"(isinstance({n}, _T) and {n}.requires_grad)")
        else:
            conds.append(f"any(_t is not None and _t.requires_grad for _t in {n})")
    if conds:  # the autograd layer: only when an input requires grad and grad mode is on
        tup = ", ".join(names) + ("," if len(names) == 1 else "")
        lines.append(f"    if ({' or '.join(conds)}) and _gs.enabled: return _record(_op, _k, ({tup}))")
    mutated = schema.mutated
    if set_rg:
        lines.append(f"    _r = {call}")
        lines.append("    if requires_grad: _r.requires_grad_(True)")
        lines.append("    return _r")
    elif mutated:
        lines.append(f"    _r = {call}")
        for a in mutated:
            lines.append(f"    {a.name}._storage.version += 1")
        lines.append("    return _r")
    else:
        lines.append(f"    return {call}")
    from .._tensor import Tensor
    from ..autograd.derivatives import record
    from ..autograd.grad_mode import state
    env = {"_record": record, "_gs": state, "_op": op, "_kernels": op.kernels, "_bad": _bad_tensor, "_mixed": _mixed, "_no_kernel": _no_kernel,
           "_as_shape": as_shape, "_T": Tensor, "_CPU": CPU, "_factory_device": _factory_device,
           "_empty": _empty_tensor_list,
           "_SCALARS": _SCALARS, "_Number": numbers.Number, "_bad_scalar": _bad_scalar}
    src = "\n".join(lines)
    exec(compile(src, f"<ember op {op.name}>", "exec"), env)  # noqa: S102 - generated from a parsed schema
    fn = env[pyname]
    fn.__qualname__ = pyname
    fn._op = op
    fn._source = src
    return fn


def defop(schema_text: str, *, meta=None, method: bool | str = False, doc: str | None = None):
    """Declares an op; returns its Op (whose `.fn` is the callable users see as `ember.<name>`)."""
    schema = parse_schema(schema_text)
    if schema.name in OPS:
        raise ValueError(f"op {schema.name!r} is already declared: {OPS[schema.name].schema}")
    op = Op(schema, meta)
    pyname = schema.name.split("::")[-1]
    op.fn = _generate(op, pyname)
    op.fn.__doc__ = doc or f"ember op: {schema}"
    OPS[schema.name] = op
    if method:
        from .._tensor import Tensor
        op.method = pyname if method is True else method
        setattr(Tensor, op.method, op.fn)
    return op


"""The op table and the dispatcher.

Every op is declared once with a schema (`defop`), its meta (the op's rules: argument checks, the
result's shape and dtype) and, in `ops/`, its derivative. From the schema the registry generates the
op's Python entry point: a plain function whose body checks and collects the tensor arguments'
devices inline, runs the meta, and calls the backend kernel registered for that device. Generating
the body per op keeps the per-call path to a few attribute loads and dict lookups, with no argument
re-parsing and no isinstance chains.

The meta runs once per input signature. The entry point builds a key from the arguments (the device,
each tensor's shape and dtype, every other argument's value; lists count as tuples, a tensor list by its
tensors' shapes and dtypes) and looks it up in the op's meta cache, which maps a signature the meta
accepted to its kernel. Only a miss calls the meta, which raises for bad arguments, so a signature that
raised is never cached. A meta may therefore read shapes, dtypes and argument values, not strides or
data. Flags on the meta function tune this:
  cache = False           it runs on every call (a rule that reads strides);
  scalars_by_class = True  Scalars count by type only, so `x * lr` with a changing `lr` keeps hitting;
  in_kernel = True         the op's one kernel serves every device and is this rule (views, basic
                           indexing): the entry point does not run it a second time.
An `Any` argument makes the meta run on every call. A backend may register a planner for an op
(`Op.planner`): on a miss it turns the meta's result into the kernel for that signature, so what the
signature fixes is worked out once. Changing the default dtype (`core.dtype.on_default_dtype_change`)
or an op's kernels empties the caches.

Arrows point down: the dispatcher does not import autograd. `ember.autograd` hands its recorder
and its grad-mode state to `install_autograd`; until then no call records a graph.
"""
from __future__ import annotations

import numbers
import threading
import warnings

import numpy as np

from .._tensor import Tensor
from ..core.device import CPU, canonical
from ..core.dtype import CPP_TYPE, SCALAR_TYPE, can_cast, on_default_dtype_change
from ..core.shape import as_shape, contiguous_strides
from .schema import Schema, parse_schema

__all__ = ["Op", "OPS", "defop", "get_op", "install_autograd", "PROFILER", "push_op_hook", "pop_op_hook"]

OPS: dict = {}
_SCALARS = frozenset((int, float, bool, np.bool_))
_META_CACHE_SIZE = 4096      # entries per op before its cache starts over
_ENVS: list = []             # the globals of every generated entry point (install_autograd rewrites them)


class _NoAutograd:
    enabled = False          # grad mode as seen before ember.autograd installs its state


def _no_record(op, kernel, args):
    raise RuntimeError(f"{op.name}: ember.autograd is not installed, so no graph can be recorded")


_AUTOGRAD = {"_record": _no_record, "_gs": _NoAutograd()}


class _ProfilerSlot:
    """The op hooks' slot, set through `push_op_hook`: while `on`, each entry point runs
    `call(op, plain, pos, kw)`, which runs `plain(*pos, **kw)` (the entry point's body) inside a range, and
    the autograd engine runs `node(node, grads)`. `ember.profiler` sets them; the dispatcher does not import it."""
    __slots__ = ("on", "call", "node")

    def __init__(self):
        self.on = False
        self.call = None
        self.node = None    # node(node, grads) -> node.apply(grads) inside a range (the autograd engine's)


PROFILER = _ProfilerSlot()


def install_autograd(record, state) -> None:
    """Called once by `ember.autograd`: `record(op, kernel, args)` runs a kernel and records its graph
    node; `state.enabled` is the grad mode. Entry points generated before and after both see them."""
    _AUTOGRAD["_record"] = record
    _AUTOGRAD["_gs"] = state
    for env in _ENVS:
        env.update(_AUTOGRAD)


def _clear_meta_caches():
    for op in OPS.values():
        op.meta_cache.clear()


on_default_dtype_change(_clear_meta_caches)


class _KernelTable(dict):
    """An op's kernels (or planners) by backend name. The op's meta cache maps signatures to kernels, so
    any change here (a registration, a test's or user's monkeypatch) empties it; a new kernel also drops
    its backend's planner, which was made for the kernel it replaces."""

    __slots__ = ("cache", "dependent")

    def __init__(self, cache: dict, dependent: dict | None = None):
        super().__init__()
        self.cache = cache
        self.dependent = dependent   # entries made for this table's entries (a kernel's plan)

    def _changed(self, key=None):
        self.cache.clear()
        if self.dependent is not None:
            if key is None:
                dict.clear(self.dependent)
            else:
                dict.pop(self.dependent, key, None)

    def __setitem__(self, key, kernel):
        super().__setitem__(key, kernel)
        self._changed(key)

    def __delitem__(self, key):
        super().__delitem__(key)
        self._changed(key)

    def pop(self, key, *default):
        self._changed(key)
        return super().pop(key, *default)

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self._changed()

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self):
        super().clear()
        self._changed()


class Op:
    """One entry of the op table: schema, kernels per backend, shape/dtype rule, derivative."""

    __slots__ = ("name", "schema", "kernels", "planners", "meta", "meta_cache", "value_slots", "derivative", "fn",
                 "method", "cross_device", "out_kind", "out_kernels", "entry", "entry_codes", "__weakref__")

    def __init__(self, schema: Schema, meta=None):
        self.name = schema.name
        self.schema = schema
        self.meta = meta
        self.meta_cache: dict = {}   # input signature -> kernel, for signatures the meta accepted (module docstring)
        self.planners = _KernelTable(self.meta_cache)   # backend -> plan(meta result, *args) -> kernel
        self.kernels = _KernelTable(self.meta_cache, self.planners)   # a new kernel drops its backend's plan
        # positions (among the kernel's arguments) of the non-tensor arguments the meta reads by value
        self.value_slots = tuple(i for i, a in enumerate(x for x in schema.args if x.name != "requires_grad")
                                 if a.type in ("int", "float", "bool", "int[]", "Scalar", "Any"))
        self.derivative = None
        self.fn = None
        self.method = None
        self.cross_device = False  # copy_: tensors on two devices are allowed (the non-CPU one's kernel runs)
        self.out_kind = None       # how `out=` is taken, if it is (`defop(out=...)`, see `_with_out`)
        self.out_kernels = {}      # backend -> kernel(out, *args) that writes the result into `out`

    def register(self, *backends):
        """Decorator: `@op.register('cpu')` (several backends may share one kernel)."""
        if not backends:
            raise ValueError(f"register() for {self.name} needs at least one backend name")

        def deco(kernel):
            for b in backends:
                self.kernels[b] = kernel    # (which empties the meta cache: it maps signatures to kernels)
            return kernel
        return deco

    def planner(self, *backends):
        """Decorator: `@op.planner('cpu')` registers `plan(meta_result, *args) -> kernel`, called once per input
        signature the meta accepts; the kernel it returns (same arguments as the registered one) is what the
        entry point calls for that signature. A plan may fix anything the signature determines (the result's
        dtype, reduced dims, the compute type), so the kernel only computes; never data or strides."""
        def deco(plan):
            for b in backends:
                self.planners[b] = plan
            return plan
        return deco

    def register_out(self, *backends):
        """Decorator: `@op.register_out('cpu')` registers `kernel(out, *args)`, which computes the op into `out`
        (a tensor of the result's shape and dtype, on the device, any strides, sharing no memory with the
        inputs unless it is one of them): `op(..., out=t)` then writes into t without a temporary."""
        def deco(kernel):
            for b in backends:
                self.out_kernels[b] = kernel
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


def _freeze(x):
    """`x` with its lists (and lists in tuples) made tuples, for a key."""
    if x.__class__ is list or x.__class__ is tuple:
        return tuple([_freeze(v) for v in x])
    return x


def _meta_unhashable(op: Op, key, dev, args):
    """The key held a list: look it up with lists made tuples; if it still can't be hashed (a tensor in an
    int list, ...), run the meta uncached."""
    try:
        key = _freeze(key)
        k = op.meta_cache.get(key)
    except TypeError:
        k = op.kernels.get(dev.type)
        if k is None:
            _no_kernel(op, dev)
        op.meta(*args)
        return k
    return k if k is not None else _meta_miss(op, key, dev, args)


def _holds_tensor(op: Op, args) -> bool:
    """Whether a non-tensor argument (an int, a list of ints, a Scalar) is given as a tensor."""
    for i in op.value_slots:
        v = args[i]
        if isinstance(v, Tensor) or (v.__class__ is list or v.__class__ is tuple) and \
                any(isinstance(x, Tensor) for x in v):
            return True
    return False


def _meta_miss(op: Op, key, dev, args):
    """A signature not seen before: find the kernel, run the meta (it raises for bad arguments) and
    remember the kernel under the signature (the backend's plan for it, where the op has a planner)."""
    k = op.kernels.get(dev.type)
    if k is None:
        _no_kernel(op, dev)
    r = op.meta(*args)
    if _holds_tensor(op, args):
        return k      # a tensor where a value is expected (dim=t): its value can change, so no caching
    plan = op.planners.get(dev.type)
    if plan is not None:
        k = plan(r, *args)
    cache = op.meta_cache
    if len(cache) >= _META_CACHE_SIZE:
        cache.clear()
    cache[key] = k
    return k


# ---- out= ---------------------------------------------------------------------------------------

OUT_KINDS = ("cast", "dtype", "exact")


def _resize_out(op: Op, out: Tensor, shape: tuple) -> None:
    """Gives `out` the result's shape as torch does: an empty tensor silently, one with elements with a
    warning; its storage is kept where it is large enough (from out's offset), else replaced."""
    if out._shape == shape:
        return
    if out.numel():
        warnings.warn(f"{op.name}: an output with one or more elements was resized since it had shape "
                      f"{list(out._shape)}, which does not match the required output shape {list(shape)}. "
                      "This behavior is deprecated (as in PyTorch); pass an out tensor of the right shape or an "
                      "empty one", UserWarning, stacklevel=4)
    n = 1
    for d in shape:
        n *= d
    itemsize = out._dtype.itemsize
    if (out._offset + n) * itemsize > out._storage.nbytes:
        fresh = OPS["empty"].fn(shape, dtype=out._dtype, device=out._storage.device)
        out._storage, out._offset, out._base = fresh._storage, 0, None
    out._shape = tuple(shape)
    out._stride = contiguous_strides(out._shape)
    out._np = None


def _overlaps(out: Tensor, tensors) -> bool:
    """Whether out shares memory with an input other than as that very tensor (out=x of an elementwise op)."""
    st = out._storage
    for t in tensors:
        if t is not out and isinstance(t, Tensor) and t._storage is st:
            return True
    return False


def _with_out(op: Op, out, pos, kw, args, tensors):
    """`op(..., out=out)`. `op.fn(*pos, **kw)` computes the op as usual; `args` are the kernel's arguments,
    `tensors` the tensor inputs. The declaration's `out_kind` says how out's dtype is taken, as in torch:
      "cast"  the result's dtype must cast to out's (`can_cast`: no float into an integer, nothing but
              bool into bool); the elementwise ops;
      "dtype" out's dtype is the op's `dtype=` (sum(x, 0, out=t) sums in t's dtype; factories);
      "exact" out's dtype must be the result's (mm, gather, ...).
    A result of another shape resizes out (with a warning if out has elements). Where the backend has an
    out-kernel (`Op.register_out`) and out has the result's dtype, the kernel writes into out; else the
    result is computed and copied in. Nothing here records a graph: torch refuses out= when an input
    requires grad, and so does ember."""
    name = op.name.split("::")[-1]
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if _AUTOGRAD["_gs"].enabled and (out.requires_grad or any(
            isinstance(t, Tensor) and t.requires_grad for t in tensors)):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                           "but one of the arguments requires grad.")
    kind = op.out_kind
    dev = out._storage.device
    if kind == "dtype":
        dtype = kw["dtype"]
        if dtype is None:
            kw["dtype"] = out._dtype
        elif dtype is not out._dtype:
            raise RuntimeError(f"{name}: dtype {SCALAR_TYPE[dtype]} does not match dtype of out parameter "
                               f"({SCALAR_TYPE[out._dtype]})")
    else:
        direct = op.out_kernels.get(dev.type)
        if direct is not None and all(t._storage.device is dev for t in tensors if isinstance(t, Tensor)) \
                and not _overlaps(out, tensors):
            shape, dt = op.meta(*args)        # the op's checks; the shape and dtype out must take
            if dt is out._dtype:
                _check_input_out(out, shape, tensors)
                _resize_out(op, out, shape)
                direct(out, *args)
                out._storage.version += 1
                return out
    r = op.fn(*pos, **kw)
    rdev = r._storage.device
    if rdev is not dev:
        raise RuntimeError(f"{name}: expected out tensor to have device {rdev}, but got {dev} instead")
    if kind == "exact" and r._dtype is not out._dtype:
        raise RuntimeError(f"{name}: expected out tensor to have dtype {CPP_TYPE[r._dtype]}, but got "
                           f"{CPP_TYPE[out._dtype]} instead")
    if kind == "cast" and not can_cast(r._dtype, out._dtype):
        raise RuntimeError(f"{name}: result type {SCALAR_TYPE[r._dtype]} can't be cast to the desired output type "
                           f"{SCALAR_TYPE[out._dtype]}")
    _check_input_out(out, r._shape, tensors)
    _resize_out(op, out, r._shape)
    return OPS["copy_"].fn(out, r)


def _check_input_out(out, shape, tensors) -> None:
    """An input passed as out is never resized (torch refuses it too: it would lose its values)."""
    if out._shape != shape and any(t is out for t in tensors):
        raise RuntimeError(f"output with shape {list(out._shape)} doesn't match the broadcast shape {list(shape)}")


# ---- code generation -----------------------------------------------------------------------

def _params(schema: Schema, with_out: bool = False) -> str:
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
    if with_out:
        out += ([] if star else ["*"]) + ["out=None"]
    return ", ".join(out)


def _pass_on(schema: Schema, with_out: bool = False):
    """(positional, keyword) text that passes the entry point's arguments on as received: up to and
    including a variadic one positionally (spread), the rest by keyword."""
    cut = next((i + 1 for i, a in enumerate(schema.args) if a.variadic), 0)
    pos = "".join(f"*{a.name}, " if a.variadic else f"{a.name}, " for a in schema.args[:cut])
    kw = [f"{a.name!r}: {a.name}" for a in schema.args[cut:]] + (["'out': out"] if with_out else [])
    return pos, ", ".join(kw)


def _profile_line(schema: Schema, with_out: bool) -> str:
    """The body of an entry point while a hook is pushed: `PROFILER.call(op, _plain, pos, kw)` runs the call
    (`_plain`, the entry point's own body) inside the hooks. Popping the last hook leaves this code in place
    (swapping every op's code back costs 0.1-0.2 ms, twice per autocast region): the first call after it
    finds no hook, puts the plain code back for its own op and runs the body."""
    pos, kw = _pass_on(schema, with_out)
    return (f"    if _P.on: return _P.call(_op, _plain, ({pos}), {{{kw}}})\n"
            f"    _unhook(_op)\n"
            f"    return _plain({pos}**{{{kw}}})")


_HOOKS: list = []      # (call, node) pairs pushed by push_op_hook; the last one runs


def push_op_hook(call, node=None) -> None:
    """Makes `call(op, plain, pos, kw)` run every op call (it must run `plain(*pos, **kw)`, the entry point's
    body, possibly with other arguments) and `node(node, grads)`, if given, every autograd node, until
    `pop_op_hook(call)`. Hooks chain: the last pushed runs first, and its `plain` runs the one pushed before
    (autocast's casts, then the profiler's range, then memory history's op name). Every entry point swaps its
    code for a one-line hand-over to the chain while a hook is pushed, and back when none is, so an op call
    costs nothing extra without hooks."""
    _HOOKS.append((call, node))
    _set_hook()


def pop_op_hook(call) -> None:
    """Removes the hook `call` pushed (the last push of it)."""
    for i in range(len(_HOOKS) - 1, -1, -1):
        if _HOOKS[i][0] == call:     # (a bound method is a new object at each access)
            del _HOOKS[i]
            break
    else:
        raise RuntimeError(f"pop_op_hook: {call!r} is not installed")
    _set_hook()


def _chain_link(hook, inner):
    def call(op, plain, pos, kw):
        return hook(op, lambda *p, **k: inner(op, plain, p, k), pos, kw)
    return call


_PLAIN: set = set()    # the ops whose entry point runs its plain code (the others hand over to the hooks)
_SWAP = threading.Lock()   # a push's swap and another thread's _unhook: no op left plain while hooks are on


def _set_hook() -> None:
    with _SWAP:
        if _HOOKS:
            call = _HOOKS[0][0]
            for hook, _ in _HOOKS[1:]:
                call = _chain_link(hook, call)
            PROFILER.call = call
            nodes = [n for _, n in _HOOKS if n is not None]
            PROFILER.node = nodes[-1] if nodes else _plain_node
            PROFILER.on = True
            for op in _PLAIN:     # only the ops called since the last hook was popped (_unhook)
                op.entry.__code__ = op.entry_codes[1]
            _PLAIN.clear()
        else:   # the entry points keep the hand-over code until their next call (_unhook)
            PROFILER.on, PROFILER.call, PROFILER.node = False, None, None


def _unhook(op) -> None:
    """Called by `op`'s hand-over code when no hook is pushed: its entry point runs the plain code again (unless
    another thread has pushed a hook since the test)."""
    with _SWAP:
        if not PROFILER.on:
            op.entry.__code__ = op.entry_codes[0]
            _PLAIN.add(op)


def _plain_node(node, grads):
    return node.apply(grads)


def _out_line(schema: Schema) -> str:
    """The entry point's out= test: `_with_out` gets the arguments as received (`_pass_on`) to call the entry
    point again without out, plus the kernel's arguments and the tensors.
    (No lambda here: one would turn every parameter into a closure cell and slow the whole body down.)"""
    pos, kw = _pass_on(schema)
    kargs = "".join(f"{a.name}, " for a in schema.args if a.name != "requires_grad")
    tensors = "".join(f"{a.name}, " for a in schema.tensor_args)
    return f"    if out is not None: return _with_out(_op, out, ({pos}), {{{kw}}}, ({kargs}), ({tensors}))"


_UNCACHED = frozenset(("Any",))


def _key_part(a, by_class: bool) -> str:
    """The expression for argument `a`'s part of the meta-cache key (`by_class`: a Scalar counts by its
    type alone, for metas that read no scalar's value)."""
    n = a.name
    if a.type == "Tensor":
        return f"{n}._shape, {n}._dtype" if not a.optional else f"({n}._shape, {n}._dtype) if {n} is not None else None"
    if a.type == "Tensor|Scalar":
        scalar = f"{n}.__class__" if by_class else f"({n}.__class__, {n})"
        return f"({n}._shape, {n}._dtype) if _is_{n} else {scalar}"
    if a.type == "Scalar":
        return f"{n}.__class__" if by_class else f"{n}.__class__, {n}"
    if a.type == "Tensor[]":    # the entry point has checked that every item is a tensor; a list may mix
        return f"tuple([(_t._shape, _t._dtype, _t._storage.device) for _t in {n}])"   # in 0-d CPU ones
    if a.type == "Tensor?[]":
        return f"tuple([None if _t is None else (_t._shape, _t._dtype, _t._storage.device) for _t in {n}])"
    if a.type == "Generator":   # the meta may read its device; the generator itself is not kept alive
        return f"None if {n} is None else getattr({n}, 'device', {n})"   # (the meta refuses a non-generator)
    if a.type in ("int", "float", "bool", "int[]"):   # 1, 1.0 and True are equal keys but not equal arguments
        return f"{n}.__class__, {n}"
    return n


def _meta_lines(op: Op, names) -> list:
    """The entry point's kernel lookup and meta step (before autograd and the kernel). With a cacheable
    meta, one dict lookup on the input signature gives the kernel: a hit means the meta has already
    accepted this signature."""
    lookup = ["    _k = _kernels.get(dev.type)", "    if _k is None: _no_kernel(_op, dev)"]
    meta = op.meta
    if meta is None or getattr(meta, "in_kernel", False):
        return lookup
    call = ", ".join(names) + ("," if len(names) == 1 else "")
    args = {a.name: a for a in op.schema.args}
    if not getattr(meta, "cache", True) or any(args[n].type in _UNCACHED for n in names):
        return lookup + [f"    _meta({', '.join(names)})"]
    by_class = getattr(meta, "scalars_by_class", False)
    key = ", ".join(["dev"] + [_key_part(args[n], by_class) for n in names])
    return ["    _key = (" + key + ")",
            "    try:",
            "        _k = _mc[_key]",
            "    except KeyError:",
            f"        _k = _meta_miss(_op, _key, dev, ({call}))",
            "    except TypeError:   # a list among the arguments (dims given as [0, 1], ...)",
            f"        _k = _meta_unhashable(_op, _key, dev, ({call}))"]


def _generate(op: Op, pyname: str):
    schema = op.schema
    with_out = op.out_kind is not None
    lines = [f"def {pyname}({_params(schema, with_out)}):"]
    if with_out:   # out=: its own path (`_with_out`), one test here when out is not given
        lines.append(_out_line(schema))
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
            cond = f"{n} is not None" if a.type == "Tensor" else f"_is_{n}"
            if a.type == "Tensor":
                lines.append(f"    if {cond} and not isinstance({n}, _T): _bad(_op, {n!r}, {n})")
            else:   # whether it is a tensor is asked once, here
                none_ok = f"{n} is not None and " if a.optional else ""
                lines.append(f"    _is_{n} = isinstance({n}, _T)")
                lines.append(f"    if not _is_{n} and {none_ok}{n}.__class__ not in _SCALARS and "
                             f"not isinstance({n}, _Number): _bad_scalar(_op, {n!r}, {n})")
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
    lines += _meta_lines(op, names)
    call = f"_k({', '.join(names)})"
    conds = []
    for a in schema.tensor_args:
        n = a.name
        if a.type == "Tensor" and not a.optional:
            conds.append(f"{n}.requires_grad")
        elif a.type == "Tensor":
            conds.append(f"(isinstance({n}, _T) and {n}.requires_grad)")
        elif a.type == "Tensor|Scalar":
            conds.append(f"(_is_{n} and {n}.requires_grad)")
        else:
            conds.append(f"any(_t is not None and _t.requires_grad for _t in {n})")
    if conds:  # the autograd layer: only when an input requires grad and grad mode is on
        tup = ", ".join(names) + ("," if len(names) == 1 else "")
        test = f"({' or '.join(conds)}) and _gs.enabled"
        if any(a.type in ("Tensor[]", "Tensor?[]") for a in schema.tensor_args):
            test = f"_gs.enabled and ({' or '.join(conds)})"   # the flag before a loop over a list
        lines.append(f"    if {test}: return _record(_op, _k, ({tup}))")
    mutated = schema.mutated
    if set_rg:
        lines.append(f"    _r = {call}")
        lines.append("    if requires_grad: _r.requires_grad_(True)")
        lines.append("    return _r")
    elif mutated:
        lines.append(f"    _r = {call}")
        for a in mutated:
            if a.type == "Tensor[]":
                lines.append(f"    for _t in {a.name}: _t._storage.version += 1")
            elif a.type == "Tensor?[]":
                lines.append(f"    for _t in {a.name}:")
                lines.append("        if _t is not None: _t._storage.version += 1")
            else:
                lines.append(f"    {a.name}._storage.version += 1")
        lines.append("    return _r")
    else:
        lines.append(f"    return {call}")
    env = {"_op": op, "_kernels": op.kernels, "_bad": _bad_tensor, "_mixed": _mixed, "_no_kernel": _no_kernel,
           "_as_shape": as_shape, "_T": Tensor, "_CPU": CPU, "_factory_device": _factory_device,
           "_empty": _empty_tensor_list, "_SCALARS": _SCALARS, "_Number": numbers.Number, "_bad_scalar": _bad_scalar,
           "_meta": op.meta, "_mc": op.meta_cache, "_meta_miss": _meta_miss, "_meta_unhashable": _meta_unhashable,
           "_with_out": _with_out, "_P": PROFILER, "_unhook": _unhook, **_AUTOGRAD}
    # The entry point, `_plain` (the same body, which the profiler calls inside its range) and the code the
    # entry point takes while a profiler records (`push_op_hook`): nothing is tested per call when none does.
    src = "\n".join(lines)
    plain = "\n".join([f"def _plain({_params(schema, with_out)}):"] + lines[1:])
    profiled = f"def _profiled({_params(schema, with_out)}):\n" + _profile_line(schema, with_out)
    exec(compile("\n\n".join((src, plain, profiled)), f"<ember op {op.name}>", "exec"), env)  # noqa: S102
    _ENVS.append(env)
    fn = env[pyname]
    fn.__qualname__ = pyname
    fn._op = op
    fn._source = src
    op.entry_codes = (fn.__code__, env["_profiled"].__code__)
    op.entry = fn
    if PROFILER.on:
        fn.__code__ = op.entry_codes[1]
    else:
        _PLAIN.add(op)
    return fn


def defop(schema_text: str, *, meta=None, method: bool | str = False, doc: str | None = None, out: str | None = None):
    """Declares an op; returns its Op (whose `.fn` is the callable users see as `ember.<name>`).
    out: "cast", "dtype" or "exact" gives the entry point torch's `out=` keyword, with that dtype rule
    (`_with_out`); for ops that return one new tensor."""
    schema = parse_schema(schema_text)
    if schema.name in OPS:
        raise ValueError(f"op {schema.name!r} is already declared: {OPS[schema.name].schema}")
    if out is not None and (out not in OUT_KINDS or schema.returns != "Tensor" or schema.mutated):
        raise ValueError(f"defop({schema.name!r}, out={out!r}): out= is one of {OUT_KINDS}, for an op that returns "
                         f"one new tensor (this one returns {schema.returns!r})")
    if out == "dtype" and not any(a.name == "dtype" for a in schema.args):
        raise ValueError(f"defop({schema.name!r}, out='dtype'): the op has no dtype argument")
    op = Op(schema, meta)
    op.out_kind = out
    pyname = schema.name.split("::")[-1]
    op.fn = _generate(op, pyname)
    op.fn.__doc__ = doc or f"ember op: {schema}"
    OPS[schema.name] = op
    if method:
        op.method = pyname if method is True else method
        setattr(Tensor, op.method, op.fn)
    return op


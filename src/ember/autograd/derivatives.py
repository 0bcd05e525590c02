"""Derivatives declared beside each op, and the recording of graph nodes by the dispatcher.

`derivative("mul", self="grad * other", other="grad * self")` attaches a backward formula per
differentiable input to op `mul`. Formulas are Python expressions over ember ops; the names in
them decide what the forward saves: a tensor argument named in a formula is saved (with its
version), `result` saves the output, `self_shape` / `self_dtype` keep only metadata, and
non-tensor arguments (`dim`, `alpha`, ...) are kept as they are. From the formulas one backward
function per op is generated, so that `create_graph=True` needs nothing more: the formulas run
through the dispatcher and are recorded themselves.

The engine reduces each input grad to the input's shape (broadcasting) and casts it to the
input's dtype, so formulas need not.
"""
from __future__ import annotations

import ast
import traceback

from .._tensor import Tensor
from ..dispatch import OPS
from .grad_mode import state
from . import graph as _graph
from .graph import Node, SavedTensor, accumulator

__all__ = ["derivative", "record", "OpNode", "edge_of", "nondifferentiable"]

_T = Tensor
_SLOW = object()  # returned by a generated recorder to hand the call to the general path


class OpNode(Node):
    """The backward node of one recorded op call (subclassed per op for its name)."""

    __slots__ = ("saved", "shapes", "results", "arg_needs", "out_meta", "meta")
    _deriv = None
    list_lens = None

    def apply(self, grads):
        d = self._deriv
        if self.saved is None:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (or directly access saved tensors "
                f"after they have already been freed): {self.name()} has already run and released what it "
                f"saved. Specify retain_graph=True in the first backward() or autograd.grad() call if you "
                f"need to backward through the graph a second time.")
        out = d.backward(self, grads)
        meta = self.meta
        for i, g in enumerate(out):
            if g is not None:
                shape, dt = meta[i]
                if g._shape != shape:
                    g = sum_to(g, shape)
                if g._dtype is not dt:
                    g = g.to(dt)
                out[i] = g
        return out

    def release(self):
        """Frees what the node saved. A node that saved no tensor (a transpose, a sum) keeps its
        non-tensor values, so a second backward through it works, as in torch, where only freed
        saved tensors make that an error."""
        self._released = True
        saved, results = self.saved, self.results
        if results is not None and results.count(None) != len(results):
            self.saved = self.results = None
            return
        if saved is None:
            return
        for s in saved:     # (a loop, not any(): this runs once per node of every backward)
            c = s.__class__
            if c is SavedTensor or c is list:
                self.saved = self.results = None
                return
        self.saved = [None if isinstance(s, _T) else s for s in saved]  # inputs no formula reads: not kept alive

    @property
    def num_outputs(self) -> int:
        return len(self.out_meta)


class NotImplementedNode(OpNode):
    __slots__ = ()

    def apply(self, grads):
        raise RuntimeError(f"the derivative for '{self._deriv}' is not implemented; declare one with "
                           f"ember.autograd.derivative({self._deriv!r}, ...) or use ember.autograd.Function")


def sum_to(g, shape):
    """Sums a broadcast gradient back to `shape`."""
    gs = g._shape
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    if lead < 0:
        raise RuntimeError(f"gradient of shape {list(gs)} cannot be reduced to the input's shape {list(shape)}")
    inner = [lead + i for i, n in enumerate(shape) if n == 1 and gs[lead + i] != 1]
    if not inner and lead:      # only leading dims to sum away (a bias): no reshape after
        return OPS["sum"].fn(g, list(range(lead)), False)
    if inner:
        g = OPS["sum"].fn(g, list(range(lead)) + inner, True)
    return OPS["reshape"].fn(g, *shape) if g._shape != shape else g


def edge_of(t):
    """The graph edge `(node, output_nr)` a tensor's gradient flows into (None if it needs none)."""
    if t._vver is not None and t._vver != t._storage.version and t._base is not None:
        return _refresh_view(t)
    fn = t._grad_fn
    if fn is None:
        return (accumulator(t), 0) if t.requires_grad else None
    return (fn, t._out_nr)


# ---- declaring derivatives -----------------------------------------------------------------

class Derivative:
    """A compiled derivative for one op."""

    def __init__(self, op, formulas: dict, inplace: bool = False, source=None):
        schema = op.schema
        self.op = op
        self.inplace = inplace
        self.mut_idx = tuple(i for i, a in enumerate(op.schema.args) if a.mutated)
        # a joint formula ("input, weight, bias": one expression giving a tuple) runs once for all
        # of its inputs, as in derivatives.yaml; inside it `grad_input_mask` says which are needed
        self.joints, self.joint_of = [], {}
        if any("," in k for k in formulas):
            expanded = {}
            for k, f in formulas.items():
                names = [n.strip() for n in k.split(",")]
                if len(names) > 1:
                    if not isinstance(f, str):
                        raise ValueError(f"derivative for {op.name}: the joint formula for {k!r} must be a string")
                    for pos, n in enumerate(names):
                        self.joint_of[n] = (len(self.joints), pos)
                    self.joints.append((f, names))
                for n in names:
                    expanded[n] = f
            formulas = expanded
        self.formulas = formulas
        argnames = [a.name for a in schema.args]
        names_used = set()
        per_formula = {}
        for k, f in formulas.items():
            if isinstance(f, str):
                per_formula[k] = {n.id for n in ast.walk(ast.parse(f, mode="eval")) if isinstance(n, ast.Name)}
                names_used |= per_formula[k]
        self.uses_all = any(not isinstance(f, str) for f in formulas.values())
        for name in formulas:
            if name not in argnames:
                raise ValueError(f"derivative for {op.name}: {name!r} is not an argument of {schema}")
            a = schema.args[argnames.index(name)]
            if not a.is_tensor:
                raise ValueError(f"derivative for {op.name}: argument {name!r} is not a tensor ({a.type})")
        # per argument: 0 keep value, 1 save tensor, 2 keep shape only
        self.kinds = []
        self.diff = []     # (arg index, is_list) of differentiable args, in schema order
        for i, a in enumerate(schema.args):
            if a.is_tensor:
                self.kinds.append(1 if (a.name in names_used or self.uses_all) else 2)
                if a.name in formulas:
                    self.diff.append((i, a.type in ("Tensor[]", "Tensor?[]")))
            else:
                self.kinds.append(0)
        # which differentiable inputs' formulas use each argument / the result: save only if one is needed
        diff_names = [schema.args[i].name for i, _ in self.diff]
        self.users = [tuple(j for j, dn in enumerate(diff_names)
                            if self.uses_all or not isinstance(formulas[dn], str) or a.name in per_formula[dn])
                      for a in schema.args]
        self.result_users = tuple(j for j, dn in enumerate(diff_names)
                                  if self.uses_all or not isinstance(formulas[dn], str)
                                  or any(n == "result" or n.startswith("result") for n in per_formula[dn]))
        self.save_result = "result" in names_used or any(f"result{k}" in names_used for k in range(8)) \
            or self.uses_all
        # which of a multi-output op's results the formulas read (None: all of them): the others are not kept
        # (native_layer_norm's backward reads mean and rstd, not the output, which the next op often saves
        # in another dtype under autocast)
        self.kept_results = None if self.uses_all or any(not isinstance(f, str) for f in formulas.values()) \
            else frozenset([0] * ("result" in names_used) + [k for k in range(8) if f"result{k}" in names_used])
        # zeros for the grads of outputs nothing used only where a formula reads them (native_layer_norm's
        # mean and rstd, the attention's logsumexp: none of their formulas does; the LSTM cell's reads grad1
        # but not its workspace's grad2)
        upto = 1 << 30 if self.uses_all or "grads" in names_used else \
            1 + max((k for k in range(1, 8) if f"grad{k}" in names_used), default=0)
        self.node_cls = type(_camel(op.name) + "Backward0", (OpNode,),
                             {"__slots__": (), "_deriv": self, "materialize_upto": upto})
        self._source = source
        self.backward = self._compile(names_used)
        self.fast = None if inplace or any(a.type in ("Tensor[]", "Tensor?[]") for a in schema.args) \
            else self._compile_record()

    def _compile(self, used):
        schema = self.op.schema
        lines = ["def backward(node, grads):", "    grad = grads[0]", "    _s = node.saved"]
        lines += [f"    grad{k} = grads[{k}] if len(grads) > {k} else None" for k in range(4) if f"grad{k}" in used]
        for i, a in enumerate(schema.args):
            n = a.name
            if n in used or self.uses_all:
                unpack = f"_unpack(_s[{i}], node)" if a.is_tensor else f"_s[{i}]"
                lines.append(f"    {n} = {unpack}")
            if f"{n}_shape" in used or f"{n}_shapes" in used:
                lines.append(f"    {n}_shape = {n}_shapes = node.shapes[{i}]")
            if f"{n}_dtype" in used:
                lines.append(f"    {n}_dtype = node.shapes[{i}] and _dtype_of(_s[{i}], node, {i})")
        if self.save_result:
            lines.append("    result = _unpack_res(node, 0)")
            for k in range(8):
                if f"result{k}" in used:
                    lines.append(f"    result{k} = _unpack_res(node, {k})")
        lines.append("    _n = node.arg_needs")
        lines.append("    out = []")
        diff_pos = {schema.args[i].name: j for j, (i, _) in enumerate(self.diff)}
        for ji, (f, names) in enumerate(self.joints):
            needs = [f"_n[{diff_pos[n]}]" for n in names]
            lines.append(f"    grad_input_mask = ({', '.join(needs)},)")
            lines.append(f"    _J{ji} = ({f}) if ({' or '.join(needs)}) else None")
        for j, (i, is_list) in enumerate(self.diff):
            f = self.formulas[schema.args[i].name]
            jp = self.joint_of.get(schema.args[i].name)
            expr = f"_J{jp[0]}[{jp[1]}]" if jp is not None else \
                (f"_f{j}(node, grads)" if not isinstance(f, str) else f"({f})")
            if is_list:
                lines.append(f"    if _n[{j}]: out.extend({expr})")
                lines.append(f"    else: out.extend([None] * node.list_lens[{j}])")
            else:
                lines.append(f"    out.append({expr} if _n[{j}] else None)")
        lines.append("    return out")
        env = _formula_env()
        for j, (i, _) in enumerate(self.diff):
            f = self.formulas[schema.args[i].name]
            if not isinstance(f, str):
                env[f"_f{j}"] = f
        src = "\n".join(lines)
        try:
            exec(compile(src, f"<derivative of {self.op.name}>", "exec"), env)  # noqa: S102
        except SyntaxError as e:
            raise SyntaxError(f"bad derivative formula for {self.op.name}: {e}") from None
        fn = env["backward"]
        fn._source = src
        return fn


    def _compile_record(self):
        """A recording function unrolled for this op's arguments (the autograd layer's hot path)."""
        schema = self.op.schema
        n = len(schema.args)
        names = [f"a{i}" for i in range(n)]
        L = ["def rec(kernel, args):", "    if _st.anomaly: return _SLOW"]
        L.append(f"    {', '.join(names)}{',' if n == 1 else ''} = args")
        diff_pos = [i for i, _ in self.diff]
        for j, i in enumerate(diff_pos):
            a = schema.args[i]
            v = f"a{i}"
            test = f"{v}.requires_grad" if (a.type == "Tensor" and not a.optional) else \
                f"isinstance({v}, _T) and {v}.requires_grad"
            L += [f"    if {test}:",
                  f"        _fn = {v}._grad_fn",
                  f"        e{j} = (_fn, {v}._out_nr) if _fn is not None and {v}._vver is None else edge_of({v})",
                  f"    else:",
                  f"        e{j} = None"]
        es = [f"e{j}" for j in range(len(diff_pos))]
        none_all = " and ".join(f"{e} is None" for e in es) or "True"
        # a plain (non-optional) Tensor argument is a tensor here: the entry point checked it
        sure = [a.type == "Tensor" and not a.optional for a in schema.args]
        single = schema.returns == "Tensor"     # one output: no tuple, loop or list comprehension for it
        L += ["    st = _st", "    st.enabled = False", "    try:", "        out = kernel(*args)",
              "    finally:", "        st.enabled = True",
              f"    if {none_all}:", "        return out"]
        if single:
            L += ["    if not out._dtype.is_floating_point: return out"]
        else:
            L += ["    if out.__class__ is _T or isinstance(out, _T):",
                  "        if not out._dtype.is_floating_point: return out",
                  "        outs = (out,)",
                  "    else:",
                  "        outs = out",
                  "        if not any(isinstance(o, _T) and o._dtype.is_floating_point for o in outs): return out"]
        meta = [f"(a{i}._shape, a{i}._dtype)" if sure[i] else f"(a{i}._shape, a{i}._dtype) if isinstance(a{i}, _T) "
                f"else None" for i in diff_pos]
        L += ["    node = _new(_cls)",
              f"    node.next_functions = ({', '.join(es)}{',' if len(es) == 1 else ''})",
              "    node._released = False",
              "    node._seq = next(_seqc)",
              f"    node.meta = ({', '.join(meta)}{',' if len(diff_pos) == 1 else ''})",
              f"    node.arg_needs = needs = ({', '.join(f'{e} is not None' for e in es)}{',' if len(es) == 1 else ''})"]
        saved, shapes = [], []
        for i, a in enumerate(schema.args):
            v = f"a{i}"
            if not a.is_tensor:
                saved.append(v)
                shapes.append("None")
                continue
            shapes.append(f"{v}._shape" if sure[i] else f"({v}._shape if isinstance({v}, _T) else None)")
            if self.kinds[i] == 1 and self.users[i]:
                cond = " or ".join(f"needs[{j}]" for j in self.users[i])
                saved.append(f"(_saved({v}) if ({cond}) else None)" if sure[i] else
                             f"(_saved({v}) if ({cond}) and isinstance({v}, _T) else "
                             f"(None if isinstance({v}, _T) else {v}))")
            else:
                saved.append("None" if sure[i] else f"(None if isinstance({v}, _T) else {v})")
        L.append(f"    node.saved = [{', '.join(saved)}]")
        L.append(f"    node.shapes = ({', '.join(shapes)}{',' if n == 1 else ''})")
        keep = None
        if self.save_result and self.result_users:
            keep = " or ".join(f"needs[{j}]" for j in self.result_users)
        if single:
            L += ["    node.out_meta = [(out._shape, out._dtype)]",
                  "    out._grad_fn = node",
                  "    out._out_nr = 0",
                  "    out.requires_grad = True",
                  f"    node.results = [_SavedTensor(out, True, 0)] if ({keep}) else None" if keep else
                  "    node.results = None",
                  "    return out"]
        else:
            L.append("    node.out_meta = [(o._shape, o._dtype) if isinstance(o, _T) else None for o in outs]")
            L.append(f"    res = [] if ({keep}) else None" if keep else "    res = None")
            L += ["    for k, o in enumerate(outs):",
                  "        if isinstance(o, _T) and o._dtype.is_floating_point:",
                  "            o._grad_fn = node",
                  "            o._out_nr = k",
                  "            o.requires_grad = True",
                  "            if res is not None: res.append(_SavedTensor(o, True, k) if _kept is None or k in _kept "
                  "else None)",
                  "        elif res is not None:",
                  "            res.append(_saved(o) if isinstance(o, _T) else None)",
                  "    node.results = res",
                  "    return out"]
        src = "\n".join(L)
        env = {"_T": _T, "edge_of": edge_of, "_st": state, "_new": object.__new__, "_cls": self.node_cls,
               "_seqc": _graph._seq, "_saved": SavedTensor.of, "_SavedTensor": SavedTensor, "_SLOW": _SLOW,
               "_kept": self.kept_results}
        exec(compile(src, f"<autograd record of {self.op.name}>", "exec"), env)  # noqa: S102
        fn = env["rec"]
        fn._source = src
        return fn


def _camel(name: str) -> str:
    name = name.split("::")[-1].strip("_")
    return "".join(p[:1].upper() + p[1:] for p in name.split("_")) or "Op"


def _unpack(s, node):
    return s.unpack(node) if isinstance(s, SavedTensor) else s


def _unpack_res(node, k):
    r = node.results
    if r is None:
        if not node._released:
            return None  # not saved: no input whose formula uses the result needed a grad
        raise RuntimeError(f"Trying to backward through the graph a second time: {node.name()} has released "
                           f"its saved results; pass retain_graph=True to the first backward()")
    return r[k].unpack(node) if k < len(r) and r[k] is not None else None


def _dtype_of(s, node, i):
    return node.out_meta[0][1] if s is None else (s.tensor._dtype if isinstance(s, SavedTensor) else None)


_ENV = None


def _formula_env() -> dict:
    global _ENV
    if _ENV is None:
        from . import formulas
        env = {n: op.fn for n, op in OPS.items() if "::" not in n}
        env.update({k: getattr(formulas, k) for k in formulas.__all__})
        env.update(_unpack=_unpack, _unpack_res=_unpack_res, _dtype_of=_dtype_of, sum_to=sum_to)
        _ENV = env
    return dict(_ENV)


def derivative(opname: str, **formulas):
    """Declares op `opname`'s backward: one formula (string or callable `(node, grads)`) per input.

    The in-place form `opname_`, if declared, gets the same formulas (with `self` meaning the
    input before the op and `result` the updated tensor).
    """
    op = OPS.get(opname)
    if op is None:
        raise KeyError(f"derivative: no op named {opname!r}")
    op.derivative = Derivative(op, formulas, inplace=bool(op.schema.mutated))
    _ENV_dirty()
    ip = OPS.get(opname + "_") if not opname.endswith("_") else None
    if ip is not None and ip.schema.mutated and ip.derivative is None:
        ip.derivative = Derivative(ip, formulas, inplace=True)
    return op.derivative


def _ENV_dirty():  # noqa: N802
    global _ENV
    _ENV = None


def nondifferentiable(*opnames):
    """Marks ops whose float outputs carry no gradient (their results never require grad)."""
    for n in opnames:
        OPS[n].derivative = False


# ---- recording (called by the generated dispatcher) -------------------------------------------

def record(op, kernel, args):
    d = op.derivative
    if d:
        f = d.fast
        if f is not None:
            r = f(kernel, args)
            if r is not _SLOW:
                return r
            # anomaly mode: the general path below also records the forward stack trace
    if d is False:
        st = state
        st.enabled = False
        try:
            return kernel(*args)
        finally:
            st.enabled = True
    if d is None:
        d = _not_implemented(op)
    if d.inplace:
        return _record_inplace(op, d, kernel, args)
    edges, meta, arg_needs, list_lens, any_req = _edges(d, args)
    st = state
    st.enabled = False
    try:
        out = kernel(*args)
    finally:
        st.enabled = True
    if not any_req:
        return out
    outs = (out,) if isinstance(out, _T) else out
    if not any(isinstance(o, _T) and o._dtype.is_floating_point for o in outs):
        return out  # integer/bool results carry no gradient
    node = d.node_cls()
    node.next_functions = tuple(edges)
    node.meta = meta
    node.arg_needs = arg_needs
    if list_lens and any(is_list for _, is_list in d.diff):
        node.list_lens = list_lens
    _save(node, d, args)
    node.out_meta = [(o._shape, o._dtype) if isinstance(o, _T) else None for o in outs]
    res = [] if d.save_result and any(arg_needs[j] for j in d.result_users) else None
    for k, o in enumerate(outs):
        if isinstance(o, _T) and o._dtype.is_floating_point:
            o._grad_fn = node
            o._out_nr = k
            o.requires_grad = True
            if res is not None:
                res.append(SavedTensor(o, True, k) if d.kept_results is None or k in d.kept_results else None)
        elif res is not None:  # e.g. the indices of max(dim): saved as plain data
            res.append(SavedTensor(o) if isinstance(o, _T) else None)
    node.results = res
    if st.anomaly:
        node._trace = traceback.format_stack()[:-2]
    return out


def _edges(d, args):
    edges, meta, arg_needs, list_lens = [], [], [], []
    any_req = False
    for i, is_list in d.diff:
        a = args[i]
        if is_list:
            need = False
            for t in a:
                e = edge_of(t) if t is not None and t.requires_grad else None
                edges.append(e)
                meta.append((t._shape, t._dtype) if t is not None else None)
                need = need or e is not None
            list_lens.append(len(a))
        else:
            if isinstance(a, _T) and a.requires_grad:
                e = edge_of(a)
                need = e is not None
            else:
                e, need = None, False
            edges.append(e)
            meta.append((a._shape, a._dtype) if isinstance(a, _T) else None)
            list_lens.append(1)
        arg_needs.append(need)
        any_req = any_req or need
    return edges, meta, arg_needs, list_lens, any_req


def _save(node, d, args, original_self=None):
    saved, shapes = [], []
    needs = node.arg_needs
    users = d.users
    for i, (a, k) in enumerate(zip(args, d.kinds)):
        if k == 0 or not isinstance(a, (_T, list, tuple)):
            saved.append(a)
            shapes.append(None)
        elif isinstance(a, _T):
            shapes.append(a._shape)
            if k == 1 and any(needs[j] for j in users[i]):
                saved.append(SavedTensor(original_self if (i == 0 and original_self is not None) else a))
            else:
                saved.append(None)
        else:  # tensor lists
            shapes.append([t._shape if t is not None else None for t in a])
            saved.append(list(a) if k == 1 else None)
    node.saved = saved
    node.shapes = shapes


_NOT_IMPL = {}


def _not_implemented(op):
    d = _NOT_IMPL.get(op.name)
    if d is None:
        d = Derivative.__new__(Derivative)
        d.op, d.inplace, d.formulas = op, bool(op.schema.mutated), {}
        d.mut_idx = tuple(i for i, a in enumerate(op.schema.args) if a.mutated)
        d.kinds = [0] * len(op.schema.args)
        d.diff = [(i, a.type in ("Tensor[]", "Tensor?[]")) for i, a in enumerate(op.schema.args) if a.is_tensor]
        d.save_result, d.kept_results = False, None
        d.users = [()] * len(op.schema.args)
        d.result_users = ()
        d.node_cls = type(_camel(op.name) + "Backward0", (NotImplementedNode,), {"__slots__": (), "_deriv": op.name})
        d.backward = None
        _NOT_IMPL[op.name] = d
    return d


# ---- in-place ops and views ---------------------------------------------------------------------

def _check_inplace(op, self):
    if self.requires_grad:
        if self._grad_fn is None and self._base is None:
            raise RuntimeError(f"a leaf Variable that requires grad is being used in an in-place operation "
                               f"({op.name}); wrap it in `with ember.no_grad():` (e.g. for parameter updates) "
                               f"or use the out-of-place op")
    base = self._base
    if base is not None and base.requires_grad and base._grad_fn is None:
        raise RuntimeError(f"a view of a leaf Variable that requires grad is being used in an in-place "
                           f"operation ({op.name}); wrap it in `with ember.no_grad():` or clone the leaf first")


def _record_inplace(op, d, kernel, args):
    self = args[0]
    _check_inplace(op, self)
    edges, meta, arg_needs, list_lens, any_req = _edges(d, args)
    st = state
    original = None
    if any_req and d.kinds[0] == 1 and any(arg_needs[j] for j in d.users[0]):
        # self before the op, for the formulas that read it: a recorded clone (grad mode is on here), so that
        # a double backward through those formulas reaches self's history (torch saves the original likewise)
        original = OPS["clone"].fn(self)
    node = None
    if any_req:  # build the node and save inputs before the kernel changes any version
        node = d.node_cls()
        node.next_functions = tuple(edges)
        node.meta = meta
        node.arg_needs = arg_needs
        if any(is_list for _, is_list in d.diff):
            node.list_lens = list_lens
        _save(node, d, args, original)
    st.enabled = False
    try:
        out = kernel(*args)
    finally:
        st.enabled = True
    for i in d.mut_idx:  # the version bump the dispatcher does for the plain path
        args[i]._storage.version += 1
    if node is None:
        return out
    node.out_meta = [(self._shape, self._dtype)]
    node.results = [SavedTensor(self, True, 0)] if d.save_result and any(arg_needs[j] for j in d.result_users) \
        else None
    if st.anomaly:
        node._trace = traceback.format_stack()[:-2]
    base = self._base
    if base is None:
        self._grad_fn = node
        self._out_nr = 0
        self.requires_grad = True
    else:
        cs = CopySlices(base, self, node)
        base._grad_fn = cs
        base._out_nr = 0
        base.requires_grad = True
        _refresh_view(self)
    return out


def _geometry(t):
    return (t._shape, t._stride, t._offset)


class CopySlices(Node):
    """In-place op on a view: the base's gradient, with the view's region routed through the op."""

    __slots__ = ("base_geom", "view_geom", "fn", "dtype")

    def __init__(self, base, view, fn):
        super().__init__((edge_of_base(base),) + fn.next_functions[1:])
        self.base_geom = _geometry(base)
        self.view_geom = _geometry(view)
        self.fn = fn
        self.dtype = base._dtype

    @property
    def num_outputs(self):
        return 1

    def apply(self, grads):
        g = grads[0]
        shape, stride, off = self.base_geom
        result = OPS["empty_strided"].fn(shape, stride, dtype=g._dtype, device=g.device)
        OPS["copy_"].fn(result, g)
        vs, vst, voff = self.view_geom
        region = OPS["as_strided"].fn(result, vs, vst, voff - off)
        res = self.fn.apply([OPS["clone"].fn(region)])
        if res[0] is not None:
            OPS["copy_"].fn(region, res[0])
        else:
            OPS["zero_"].fn(region)
        return [result] + list(res[1:])

    def release(self):
        self.fn.release()
        self._released = True


def edge_of_base(base):
    """The base's current edge (before the CopySlices that is about to replace it)."""
    if not base.requires_grad:
        return None
    return edge_of(base)


class AsStridedViewBackward(Node):
    """A view's gradient flowing into its base: zeros of the base's layout with the view's region filled."""

    __slots__ = ("base_geom", "view_geom")

    def __init__(self, base_edge, base, view):
        super().__init__((base_edge,))
        self.base_geom = _geometry(base)
        self.view_geom = _geometry(view)

    def name(self):
        return "AsStridedBackward0"

    def apply(self, grads):
        g = grads[0]
        shape, stride, off = self.base_geom
        result = OPS["empty_strided"].fn(shape, stride, dtype=g._dtype, device=g.device)
        OPS["zero_"].fn(result)
        vs, vst, voff = self.view_geom
        region = OPS["as_strided"].fn(result, vs, vst, voff - off)
        OPS["copy_"].fn(region, g)
        return [result]


def _refresh_view(t):
    """After an in-place change through the base or a sibling view, a view's gradient flows through the base."""
    base = t._base
    be = edge_of(base) if base.requires_grad else None
    t._vver = t._storage.version
    if be is None:
        t._grad_fn = None
        return None
    node = AsStridedViewBackward(be, base, t)
    t._grad_fn = node
    t._out_nr = 0
    t.requires_grad = True
    return (node, 0)

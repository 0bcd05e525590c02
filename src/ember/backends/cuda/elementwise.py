"""CUDA elementwise ops on the generated Triton kernel (`kernels/elementwise.py`): broadcasting,
type promotion, arbitrary strides (dimension collapsing), in-place forms, strided copies and casts.

The op's meta (`ops/elementwise.py`) has checked the arguments before a kernel runs; the kernels
refuse only a `self` with an expanded dimension (the meta reads no strides). Integer division by
zero (floor_divide, remainder, fmod, div with a rounding mode) is not checked, as that would need
a host synchronisation (like torch on CUDA, the result is unspecified), and isclose of integers
measures |a - b| in the default float dtype, as torch does, where the CPU kernel lets the integer
difference wrap."""
from __future__ import annotations

from math import prod

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.layout import layout_strides
from ...core.shape import any_strided, broadcast_shapes, contiguous_strides, elementwise_strides
from ...dispatch import OPS
from ...ops.elementwise import BINARY, UNARY, check_internal_overlap, div_dtype, out_dtype
from .compiler import ALIGN, LazyKernels, make_plan, pointer_arg, pointer_type, run
from .opcodes import Binary, Compute, Ternary, Unary
from .memory import empty_cuda, new_tensor

K = LazyKernels("elementwise")

# the ops that share ew_kernel's generic entry points, by name (their codes: opcodes.Unary / opcodes.Binary)
UNARY_OPS = {name: Unary[name.upper()] for name in (
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "erf", "silu", "reciprocal",
    "square", "exp2", "log2", "log1p", "expm1", "floor", "ceil", "trunc", "sign", "logical_not", "isnan", "isinf",
    "isfinite", "bitwise_not", "log10", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
    "frac", "round", "signbit", "isposinf", "isneginf")}
BINARY_OPS = {name: Binary[name.upper()] for name in (
    "mul", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "bitwise_and", "bitwise_or", "bitwise_xor", "pow", "hypot", "atan2", "floor_divide", "fmod", "remainder", "fmax",
    "fmin", "logaddexp")}
_FLOAT_MAX = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38, "float32": 3.4028234663852886e38,
              "float64": 1.7976931348623157e308}
# the compute type of each dtype: float16/bfloat16 compute in float32
_CK = {D.float32: Compute.F32, D.float16: Compute.F32, D.bfloat16: Compute.F32, D.float64: Compute.F64,
       D.int64: Compute.I64, D.int32: Compute.I32, D.int16: Compute.I16, D.int8: Compute.I8, D.uint8: Compute.U8,
       D.bool: Compute.BOOL}
_SCALAR_TY = {Compute.F32: "fp32", Compute.F64: "fp64"}
_F64 = Compute.F64     # (a global: the hot path reads it without the enum class lookup)
BLOCK = 1024
MAXDIM = 6


def _kernel():
    from .kernels.elementwise import ew_kernel
    return ew_kernel


def _compute_dtype(dt):
    return D.float32 if dt is D.float16 or dt is D.bfloat16 else dt


def _strides_for(t, shape):
    """t's strides broadcast to `shape` (0 on broadcast dims)."""
    nd, tn = len(shape), len(t._shape)
    out = [0] * nd
    for i in range(tn):
        if t._shape[i] != 1:
            out[nd - tn + i] = t._stride[i]
    return out


def _collapse(shape, strides_list):
    """Drops size-1 dims and merges dims that are contiguous with each other in every operand."""
    dims = [i for i, n in enumerate(shape) if n != 1]
    if not dims:
        return [1], [[0] for _ in strides_list]
    sizes = [shape[dims[0]]]
    sts = [[s[dims[0]]] for s in strides_list]
    for i in dims[1:]:
        n = shape[i]
        if all(st[-1] == s[i] * n for st, s in zip(sts, strides_list)):
            sizes[-1] *= n
            for st, s in zip(sts, strides_list):
                st[-1] = s[i]
        else:
            sizes.append(n)
            for st, s in zip(sts, strides_list):
                st.append(s[i])
    return sizes, sts


def _fast_lane(code: int, nin: int, x: Tensor, y, dt, ck: int, alpha, plans: dict):
    """op(x[, y]) into a new tensor of dtype dt when x (and y, a tensor of x's shape, dtype and device)
    are contiguous CUDA tensors: the lane of the common case, with the launch plan cached by the
    caller (`plans`, by device index) and no layout work. None when it doesn't apply."""
    st = x._storage
    dev = st.device
    shape = x._shape
    cs = contiguous_strides(shape)
    if dev.type != "cuda" or x._stride != cs or (y is not None and y._stride != cs):
        return None
    index = dev.index or 0
    out = empty_cuda(shape, dt, index)
    it = x._dtype.itemsize
    po = out._storage.data.ptr
    px = st.data.ptr + x._offset * it
    py = px if y is None else y._storage.data.ptr + y._offset * it
    aligned = not (po | px | py) & 15        # 16-byte aligned operands: a variant with vectorized loads/stores
    plan = plans.get((index, aligned))
    if plan is None:
        yy = x if y is None else y
        key = (code, nin, 1, True, y is None, ck, dt, x._dtype, yy._dtype, index, False, aligned)
        plan = plans[(index, aligned)] = _plans.get(key) or _make_plan(key)
    n = prod(shape)
    if n:
        v = plan.vals
        v[0].value = po
        v[1].value = px
        v[2].value = py
        v[3].value = n
        v[5].value = alpha if ck <= _F64 else int(alpha)
        plan((n + BLOCK - 1) // BLOCK)
    return out


def launch_ew(op: int, nin: int, out: Tensor, x: Tensor, y, ck: int, alpha=1) -> Tensor:
    """out = op(x[, y]) over out's shape; y may be a Python scalar (or None for unary)."""
    shape = out._shape
    n = prod(shape)
    if n == 0:
        return out
    y_scalar = not isinstance(y, Tensor)
    yy = x if y_scalar else y
    st = out._storage
    ost = out._stride
    i32 = False
    if ost == contiguous_strides(shape) and x._stride == ost and x._shape == shape and \
            (y_scalar or (y._stride == ost and y._shape == shape)):
        nd, contig = 1, True          # the hot path: every operand contiguous, no layout work
    else:
        sizes, sts = _geometry(shape, out, x, None if y_scalar else y)
        nd = len(sizes)
        contig = nd == 1 and sts[0][0] == 1 and sts[1][0] == 1 and sts[2][0] == (0 if y_scalar else 1)
        # strided: the per-element index arithmetic (a division and a remainder per dim) in 32 bits where
        # every index and offset fits, several times cheaper on the GPU than in 64 bits
        i32 = INDEX32 and not contig and n < _I32 - BLOCK and all(sum((k - 1) * abs(t) for k, t in zip(sizes, st)) < _I32
                                              for st in sts)
    if st.device.type == "cuda":      # a cached launch plan: only the argument values change
        po = st.data.ptr + out._offset * out._dtype.itemsize
        px = x._storage.data.ptr + x._offset * x._dtype.itemsize
        py = yy._storage.data.ptr + yy._offset * yy._dtype.itemsize
        aligned = contig and not (po | px | py) & 15
        key = (op, nin, nd, contig, y_scalar, ck, out._dtype, x._dtype, yy._dtype, st.device.index or 0, i32,
               aligned)
        plan = _plans.get(key) or _make_plan(key)
        v = plan.vals
        if not contig:
            for k in range(1, nd):
                v[5 + k].value = sizes[k]
            for j in range(3):
                base = 11 + 6 * j
                for k, stv in enumerate(sts[j]):
                    v[base + k].value = stv
        v[0].value = po
        v[1].value = px
        v[2].value = py
        v[3].value = n
        if y_scalar and y is not None:
            v[4].value = float(y) if ck <= _F64 else int(y)
        v[5].value = alpha if ck <= _F64 else int(alpha)
        plan((n + BLOCK - 1) // BLOCK)
        return out
    if contig:
        sizes, sts = [n], [[1], [1], [0 if y_scalar else 1]]
    sty = _SCALAR_TY.get(ck, "i64" if ck != Compute.BOOL else "i32")
    pad = lambda v: list(v) + [0] * (MAXDIM - len(v))  # noqa: E731
    s = pad(sizes)
    args = [pointer_arg("out_ptr", out), pointer_arg("x_ptr", x),
            pointer_arg("y_ptr", yy), ("n", n, "i64"),
            ("scalar", (0 if y is None else (int(y) if sty != "fp32" and sty != "fp64" else float(y)))
             if y_scalar else 0, sty),
            ("alpha", alpha if sty.startswith("fp") else int(alpha), sty)]
    args += [(f"s{k}", s[k], "i64") for k in range(1, MAXDIM)]
    for name, t in (("ot", sts[0]), ("xt", sts[1]), ("yt", sts[2])):
        t = pad(t)
        args += [(f"{name}{k}", t[k], "i64") for k in range(MAXDIM)]
    consts = {"OP": op, "NIN": nin, "NDIM": nd, "CONTIG": int(contig), "Y_SCALAR": int(y_scalar), "CK": ck,
              "BLOCK": BLOCK}
    run(_kernel(), ((n + BLOCK - 1) // BLOCK,), args, consts, st.device.index or 0)
    return out


def new_out(shape, dtype, device, operands) -> Tensor:
    """An elementwise op's new output, laid out as torch lays it out over `operands` (contiguous when they all are;
    see `core.shape.elementwise_strides`): `x.permute(0, 2, 1) * 2` keeps x's layout, and its kernel walks both
    in one contiguous run."""
    if not any_strided(operands):
        return new_tensor(shape, dtype, device)     # every operand contiguous: so is the output
    return new_tensor(shape, dtype, device, elementwise_strides(shape, operands))


def _in_out_order(shape, operands):
    """The shape and operand strides (out's first) with the dims in the order of out's strides, largest first (as
    torch's TensorIterator orders them), so that operands sharing a permuted layout with out (a permuted input, or
    an in-place op on a transposed tensor) collapse to one contiguous run."""
    ost = operands[0]
    if any(ost[k] < ost[k + 1] for k in range(len(ost) - 1)):
        order = sorted(range(len(shape)), key=lambda k: -ost[k])   # stable: ties keep their order
        shape = [shape[k] for k in order]
        operands = [[st[k] for k in order] for st in operands]
    return shape, operands


def _geometry(shape, out, x, y):
    """Collapsed sizes and the (out, x, y) strides over them (y's all 0 when it is a scalar), dims in out's
    order (`_in_out_order`)."""
    operands = [list(out._stride), _strides_for(x, shape)]
    if y is not None:
        operands.append(_strides_for(y, shape))
    sizes, sts = _collapse(*_in_out_order(shape, operands))
    if len(sizes) > MAXDIM:
        raise NotImplementedError(f"elementwise op on CUDA over {len(sizes)} non-mergeable dims (at most {MAXDIM})")
    if y is None:
        sts.append([0] * len(sizes))
    return sizes, sts


_plans = {}


_I32 = 1 << 31
# 32-bit index arithmetic for strided operands whose offsets fit (tests/test_cuda_ops.py's strided test turns it on
# for itself; it passed on an H100 on 2026-12-07); False gives the 64-bit path everywhere
INDEX32 = True


def _make_plan(key):
    """The launch plan of ew_kernel for `key`; with i32, the element count, sizes and strides are 32-bit
    arguments and the kernel's index arithmetic follows their type; with aligned (contiguous operands on
    16-byte boundaries) the pointers are compiled as such, and Triton vectorizes the loads and stores."""
    op, nin, nd, contig, y_scalar, ck, odt, xdt, ydt, index, i32, aligned = key
    sty = _SCALAR_TY.get(ck, "i64" if ck != Compute.BOOL else "i32")
    ity = "i32" if i32 else "i64"
    sig = {"out_ptr": pointer_type(odt), "x_ptr": pointer_type(xdt), "y_ptr": pointer_type(ydt),
           "n": ity, "scalar": sty, "alpha": sty}
    sig.update({f"s{k}": ity for k in range(1, MAXDIM)})
    for name in ("ot", "xt", "yt"):
        sig.update({f"{name}{k}": ity for k in range(MAXDIM)})
    consts = {"OP": op, "NIN": nin, "NDIM": nd, "CONTIG": int(contig), "Y_SCALAR": int(y_scalar), "CK": ck,
              "BLOCK": BLOCK}
    plan = _plans[key] = make_plan(_kernel(), sig, consts, index,
                                   aligned=("out_ptr", "x_ptr", "y_ptr") if aligned and ALIGN else ())
    return plan


def _scalar_of(v, self):
    """A 0-dim CPU tensor operand of a CUDA op acts as its value."""
    if isinstance(v, Tensor) and v._storage.device is not self._storage.device and not v._shape:
        return v.item()
    return v


def _unary_kernel(name, code, rule):
    # input dtype -> (output dtype, compute-type code, plans by device index); where the output is the
    # default dtype (a float op of an integer tensor), keyed by (input dtype, default dtype) instead
    fast = {}

    def entry(self):
        sdt = self._dtype
        key = (sdt, D.get_default_dtype()) if rule == "float" and not sdt.is_floating_point else sdt
        k = fast.get(key)
        if k is None:
            dt = out_dtype(rule, self)
            k = fast[key] = (dt, _CK[sdt if rule == "bool" else dt], {})
        return k

    def out_of_place(self):
        k = fast.get(self._dtype) or entry(self)
        if self._shape:
            r = _fast_lane(code, 1, self, None, k[0], k[1], 1, k[2])
            if r is not None:
                return r
        return launch_ew(code, 1, new_out(self._shape, k[0], self.device, (self,)), self, None, k[1])

    def in_place(self):
        if 0 in self._stride:
            check_internal_overlap(name + "_", self)
        dt = out_dtype(rule, self)
        return launch_ew(code, 1, self, self, None, _CK[dt])

    def into(out, self):      # out= (out has the result's shape and dtype)
        return launch_ew(code, 1, out, self, None, _CK[self._dtype if rule == "bool" else out._dtype])
    return out_of_place, in_place, into


def _binary_kernel(name, code, rule):
    # for same-dtype tensor operands: their dtype -> (output dtype, compute-type code, plans by device
    # index); keyed by (dtype, default dtype) where the output is the default dtype (atan2 of integers)
    fast = {}

    def entry(self, other):
        sdt = self._dtype
        key = (sdt, D.get_default_dtype()) if rule == "float" and not sdt.is_floating_point else sdt
        k = fast.get(key)
        if k is None:
            dt, cdt = dtypes(self, other)
            k = fast[key] = (dt, _CK[cdt], {})
        return k

    def dtypes(self, other, reflected=False):
        dt = out_dtype(rule, self, other)
        cdt = D.result_type(self, other) if rule == "bool" else dt
        if cdt is D.bool and name == "pow" and not reflected:
            cdt = D.uint8   # a bool tensor to a bool power (the meta refuses a bool tensor exponent): self or ones
        return dt, _compute_dtype(cdt)

    def out_of_place(self, other):
        if isinstance(other, Tensor) and other._dtype is self._dtype and other._shape == self._shape and \
                other._storage.device is self._storage.device and self._shape:   # the common case, kept short
            k = fast.get(self._dtype) or entry(self, other)
            r = _fast_lane(code, 2, self, other, k[0], k[1], 1, k[2])
            if r is not None:
                return r
            return launch_ew(code, 2, new_out(self._shape, k[0], self._storage.device, (self, other)), self, other,
                             k[1])
        dt, cdt = dtypes(self, other)
        o = _scalar_of(other, self)
        shape = broadcast_shapes(self._shape, o._shape) if isinstance(o, Tensor) else self._shape
        return launch_ew(code, 2, new_out(shape, dt, self.device, (self, o)), self, o, _CK[cdt])

    def in_place(self, other):
        dt, cdt = dtypes(self, other)
        if 0 in self._stride:
            check_internal_overlap(name + "_", self)
        return launch_ew(code, 2, self, self, _scalar_of(other, self), _CK[cdt])

    def reflected(self, other):   # name(other, self), `other` a Python scalar
        dt, cdt = dtypes(self, other, True)
        ops = () if name == "pow" else (other, self)     # torch's pow(Scalar, Tensor) is contiguous
        return launch_ew(code + Binary.REFLECTED, 2, new_out(self._shape, dt, self.device, ops), self, other, _CK[cdt])

    def into(out, self, other):   # out= (out has the result's shape and dtype)
        return launch_ew(code, 2, out, self, _scalar_of(other, self), _CK[dtypes(self, other)[1]])
    return out_of_place, in_place, reflected, into


def _add_kernels():
    def make(name, code):
        fast = {}     # dtype -> (compute-type code, plans by device index)

        def out_of_place(self, other, alpha=1):
            if other.__class__ is Tensor and other._dtype is self._dtype and other._shape == self._shape and \
                    other._storage.device is self._storage.device and self._shape:   # the common case
                dt = self._dtype
                k = fast.get(dt) or fast.setdefault(dt, (_CK[dt], {}))
                r = _fast_lane(code, 2, self, other, dt, k[0], alpha, k[1])
                if r is not None:
                    return r
                return launch_ew(code, 2, new_out(self._shape, dt, self._storage.device, (self, other)), self, other,
                                 k[0], alpha)
            dt = D.result_type(self, other)
            o = _scalar_of(other, self)
            shape = broadcast_shapes(self._shape, o._shape) if isinstance(o, Tensor) else self._shape
            return launch_ew(code, 2, new_out(shape, dt, self.device, (self, o)), self, o, _CK[dt], alpha)

        def in_place(self, other, alpha=1):
            if 0 in self._stride:
                check_internal_overlap(name + "_", self)
            dt = D.result_type(self, other)
            return launch_ew(code, 2, self, self, _scalar_of(other, self), _CK[dt], alpha)

        def into(out, self, other, alpha=1):
            return launch_ew(code, 2, out, self, _scalar_of(other, self), _CK[out._dtype], alpha)
        OPS[name].register("cuda")(out_of_place)
        OPS[name].register_out("cuda")(into)
        OPS[name + "_"].register("cuda")(in_place)
    make("add", Binary.ADD)
    make("sub", Binary.SUB)

    def rsub(self, other, alpha=1):
        dt = D.result_type(self, other)
        o = _scalar_of(other, self)
        shape = broadcast_shapes(self._shape, o._shape) if isinstance(o, Tensor) else self._shape
        return launch_ew(Binary.RSUB, 2, new_out(shape, dt, self.device, (o, self)), self, o, _CK[dt], alpha)
    OPS["rsub"].register("cuda")(rsub)

    def div_dtypes(self, other, rounding_mode):
        """(result dtype, op code) of div; with a rounding mode the result keeps the promoted dtype."""
        dt = div_dtype(D.result_type(self, other), rounding_mode)
        return dt, (Binary.DIV if rounding_mode is None else Binary.FLOOR_DIVIDE if rounding_mode == "floor"
                    else Binary.DIV_TRUNC)

    def div(self, other, rounding_mode=None):
        dt, code = div_dtypes(self, other, rounding_mode)
        o = _scalar_of(other, self)
        shape = broadcast_shapes(self._shape, o._shape) if isinstance(o, Tensor) else self._shape
        return launch_ew(code, 2, new_out(shape, dt, self.device, (self, o)), self, o, _CK[dt])

    def div_(self, other, rounding_mode=None):
        if 0 in self._stride:
            check_internal_overlap("div_", self)
        dt, code = div_dtypes(self, other, rounding_mode)
        return launch_ew(code, 2, self, self, _scalar_of(other, self), _CK[dt])
    def div_into(out, self, other, rounding_mode=None):
        dt, code = div_dtypes(self, other, rounding_mode)
        return launch_ew(code, 2, out, self, _scalar_of(other, self), _CK[dt])
    OPS["div"].register("cuda")(div)
    OPS["div"].register_out("cuda")(div_into)
    OPS["div_"].register("cuda")(div_)

    def rdiv(self, other):  # other / self as torch: self.reciprocal() * other (Tensor.__rdiv__), two roundings
        dt = out_dtype("float", self, other)
        out = launch_ew(Unary.RECIPROCAL, 1, new_out(self._shape, dt, self.device, (self, other)), self, None, _CK[dt])
        return launch_ew(Binary.MUL, 2, out, out, other, _CK[dt])
    OPS["_rdiv"].register("cuda")(rdiv)


def copy_cast(dst: Tensor, src: Tensor) -> Tensor:
    """dst[...] = src with broadcasting, any strides on both sides, and a dtype cast."""
    return launch_ew(Unary.IDENTITY, 1, dst, src, None, _CK[dst._dtype])


def _register():
    for name, code in UNARY_OPS.items():
        if name not in OPS:
            continue
        oop, ip, into = _unary_kernel(name, code, UNARY[name])
        OPS[name].register("cuda")(oop)
        OPS[name].register_out("cuda")(into)
        if name + "_" in OPS:
            OPS[name + "_"].register("cuda")(ip)
    for name, code in BINARY_OPS.items():
        oop, ip, rev, into = _binary_kernel(name, code, BINARY[name])
        OPS[name].register("cuda")(oop)
        OPS[name].register_out("cuda")(into)
        if name + "_" in OPS:
            OPS[name + "_"].register("cuda")(ip)
        if "_r" + name in OPS:
            OPS["_r" + name].register("cuda")(rev)
    _add_kernels()

    def gelu(self, approximate="none"):
        dt = self._dtype
        code = Unary.GELU if approximate == "none" else Unary.GELU_TANH
        return launch_ew(code, 1, new_out(self._shape, dt, self.device, (self,)), self, None, _CK[dt])
    OPS["gelu"].register("cuda")(gelu)

    def gelu_backward(grad_output, self, approximate="none"):
        dt = D.result_type(grad_output, self)
        return launch_ew(Binary.GELU_BACKWARD if approximate == "none" else Binary.GELU_TANH_BACKWARD, 2,
                         new_out(broadcast_shapes(grad_output._shape, self._shape), dt, self.device, (grad_output, self)),
                         grad_output, self, _CK[dt])
    OPS["gelu_backward"].register("cuda")(gelu_backward)

    def leaky_relu(self, negative_slope=0.01):
        ck = _CK[self._dtype]
        out = new_out(self._shape, self._dtype, self.device, (self,))
        return launch_ew(Unary.LEAKY_RELU, 1, out, self, float(negative_slope), ck)
    OPS["leaky_relu"].register("cuda")(leaky_relu)

    def softplus(self, beta=1, threshold=20):
        ck = _CK[self._dtype]
        return launch_ew(Unary.SOFTPLUS, 1, new_out(self._shape, self._dtype, self.device, (self,)), self, float(beta), ck,
                         float(threshold))
    OPS["softplus"].register("cuda")(softplus)

    def to_dtype(self, dtype, copy=False):
        if dtype is self._dtype and not copy:
            return self
        st = None if self._stride == contiguous_strides(self._shape) else layout_strides(self, None, "to")
        return copy_cast(new_tensor(self._shape, dtype, self.device, st), self)   # (preserve_format, as torch)
    OPS["to_dtype"].register("cuda")(to_dtype)


_register()


# ---- ternary ops: where, clamp, lerp, addcmul, addcdiv, masked_fill ------------------------------

def launch_tern(op: int, out: Tensor, c: Tensor, x, y, ck: int, c_bool: bool, alpha=1.0) -> Tensor:
    """out = op(c, x, y); x / y may be Python scalars. Goes through the compile cache (no launch plan yet)."""
    shape = out._shape
    n = out.numel()
    if n == 0:
        return out
    xs, ys = not isinstance(x, Tensor), not isinstance(y, Tensor)
    tens = [out, c] + [t for t in (x, y) if isinstance(t, Tensor)]
    sizes, sts = _collapse(*_in_out_order(shape, [list(out._stride)] + [_strides_for(t, shape) for t in tens[1:]]))
    nd = len(sizes)
    if nd > MAXDIM:
        raise NotImplementedError(f"ternary op on CUDA over {nd} non-mergeable dims (at most {MAXDIM})")
    pad = lambda v: list(v) + [0] * (MAXDIM - len(v))  # noqa: E731
    it = iter(sts[2:])
    xt = [0] * MAXDIM if xs else pad(next(it))
    yt = [0] * MAXDIM if ys else pad(next(it))
    sty = _SCALAR_TY.get(ck, "i64" if ck != Compute.BOOL else "i32")
    conv = (lambda v: float(v)) if sty[0] == "f" else (lambda v: int(v))  # noqa: E731
    xp = c if xs else x
    yp = c if ys else y
    args = [pointer_arg("out_ptr", out), pointer_arg("c_ptr", c),
            pointer_arg("x_ptr", xp), pointer_arg("y_ptr", yp), ("n", n, "i64"),
            ("xs", conv(x) if xs else 0, sty), ("ys", conv(y) if ys else 0, sty), ("alpha", conv(alpha), sty)]
    s = pad(sizes)
    args += [(f"s{k}", s[k], "i64") for k in range(1, MAXDIM)]
    for name, t in (("ot", pad(sts[0])), ("ct", pad(sts[1])), ("xt", xt), ("yt", yt)):
        args += [(f"{name}{k}", t[k], "i64") for k in range(MAXDIM)]
    consts = {"OP": op, "NDIM": nd, "X_SCALAR": int(xs), "Y_SCALAR": int(ys), "C_BOOL": int(c_bool), "CK": ck,
              "BLOCK": BLOCK}
    run(K.tern_kernel, ((n + BLOCK - 1) // BLOCK,), args, consts, out._storage.device.index or 0)
    return out


def _int_bound(dt, upper: bool) -> int:
    import numpy as np
    if dt is D.bool:
        return int(upper)
    info = np.iinfo(dt.np)
    return int(info.max if upper else info.min)


def select_into(out, condition, a, b):
    """out = where(condition, a, b), `a`/`b` tensors or scalars (a 0-d CPU tensor counts as its value),
    computed in out's dtype: where's kernel, and masked_fill's on the indexing side."""
    return launch_tern(Ternary.WHERE, out, condition, _scalar_of(a, condition), _scalar_of(b, condition),
                       _CK[out._dtype], True)


def _shape_of(*vs):
    return broadcast_shapes(*[v._shape for v in vs if isinstance(v, Tensor)])


def _register_ternary():
    def where(condition, self, other):
        ops = (condition, _scalar_of(self, condition), _scalar_of(other, condition))
        out = new_out(_shape_of(*ops), D.result_type(self, other), condition.device, ops)
        return select_into(out, condition, self, other)
    OPS["where"].register("cuda")(where)

    def clamp_args(self, min, max):
        dt = D.result_type(*[v for v in (self, min, max) if v is not None])
        inf = float("inf") if dt.is_floating_point else None
        lo = _scalar_of(min, self) if min is not None else (-inf if inf else _int_bound(dt, False))
        hi = _scalar_of(max, self) if max is not None else (inf if inf else _int_bound(dt, True))
        return dt, lo, hi

    def clamp(self, min=None, max=None):
        dt, lo, hi = clamp_args(self, min, max)
        out = new_out(_shape_of(self, lo, hi), dt, self.device, [v for v in (self, min, max) if isinstance(v, Tensor)])
        return launch_tern(Ternary.CLAMP, out, self, lo, hi, _CK[dt], False)

    def clamp_(self, min=None, max=None):
        if 0 in self._stride:
            check_internal_overlap("clamp_", self)
        dt, lo, hi = clamp_args(self, min, max)
        return launch_tern(Ternary.CLAMP, self, self, lo, hi, _CK[dt], False)
    OPS["clamp"].register("cuda")(clamp)
    OPS["clamp_"].register("cuda")(clamp_)

    def lerp(self, end, weight):
        w = _scalar_of(weight, self)
        out = new_out(_shape_of(self, end, w), self._dtype, self.device, [v for v in (self, end, w)
                                                                         if isinstance(v, Tensor)])
        return launch_tern(Ternary.LERP, out, self, end, w, _CK[self._dtype], False)

    def lerp_(self, end, weight):
        if 0 in self._stride:
            check_internal_overlap("lerp_", self)
        return launch_tern(Ternary.LERP, self, self, end, _scalar_of(weight, self), _CK[self._dtype],
                           False)
    OPS["lerp"].register("cuda")(lerp)
    OPS["lerp_"].register("cuda")(lerp_)

    for name, code in (("addcmul", Ternary.ADDCMUL), ("addcdiv", Ternary.ADDCDIV)):
        def oop(self, tensor1, tensor2, value=1, _code=code):
            dt = D.result_type(self, tensor1, tensor2)
            out = new_out(_shape_of(self, tensor1, tensor2), dt, self.device, (self, tensor1, tensor2))
            return launch_tern(_code, out, self, tensor1, tensor2, _CK[dt], False, value)

        def ip(self, tensor1, tensor2, value=1, _code=code, _name=name):
            if 0 in self._stride:
                check_internal_overlap(_name + "_", self)
            dt = D.result_type(self, tensor1, tensor2)
            return launch_tern(_code, self, self, tensor1, tensor2, _CK[dt], False, value)
        OPS[name].register("cuda")(oop)
        OPS[name + "_"].register("cuda")(ip)

    def nan_to_num_args(self, nan, posinf, neginf):
        mx = _FLOAT_MAX[self._dtype.name]
        return (mx if posinf is None else posinf), (-mx if neginf is None else neginf), (0.0 if nan is None else nan)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        if not self._dtype.is_floating_point:
            return copy_cast(new_out(self._shape, self._dtype, self.device, (self,)), self)
        hi, lo, v = nan_to_num_args(self, nan, posinf, neginf)
        out = new_out(self._shape, self._dtype, self.device, (self,))
        return launch_tern(Ternary.NAN_TO_NUM, out, self, hi, lo, _CK[self._dtype], False, v)

    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None):
        if 0 in self._stride:
            check_internal_overlap("nan_to_num_", self)
        if not self._dtype.is_floating_point:
            return self
        hi, lo, v = nan_to_num_args(self, nan, posinf, neginf)
        return launch_tern(Ternary.NAN_TO_NUM, self, self, hi, lo, _CK[self._dtype], False, v)
    OPS["nan_to_num"].register("cuda")(nan_to_num)
    OPS["nan_to_num_"].register("cuda")(nan_to_num_)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        dt = self._dtype
        dev = self._storage.device
        if other._storage.device is not dev:
            raise NotImplementedError("isclose on CUDA takes two CUDA tensors (got a 0-dim CPU tensor); move it "
                                      "with .to(device) first")
        out = new_out(_shape_of(self, other), D.bool, dev, (self, other))
        if dt.is_floating_point:   # the errors in the tensors' dtype
            return launch_tern(Ternary.ISCLOSE_NAN if equal_nan else Ternary.ISCLOSE, out, self, other, float(atol),
                               _CK[dt], False, float(rtol))
        if rtol == 0 and atol == 0:
            return launch_ew(Binary.EQ, 2, out, self, other, _CK[dt])    # eq
        # integers and bools as torch (not wrapping like the CPU kernel): |a - b| in the default float dtype
        f = _compute_dtype(D.get_default_dtype())
        return launch_tern(Ternary.ISCLOSE_INT, out, self, other, float(atol), _CK[f], False, float(rtol))
    OPS["isclose"].register("cuda")(isclose)


_register_ternary()

"""Linear-algebra ops: matmul and its family (mm, bmm, mv, dot, outer, addmm, ...), einsum,
tensordot and linear.

PyTorch semantics: the matrix operands must share one dtype (no promotion; `outer` is the
exception since it is a broadcast multiply), integer matmul is exact in the integer dtype and
float16/bfloat16 compute in float32. The alias `ger` is an op of its own whose user-facing
function calls `outer` (so autograd records `outer`).
"""
from __future__ import annotations

from .._tensor import Tensor
from ..dispatch import OPS, defop

_ALL = ("cpu", "cuda")
_BS = "*, Scalar beta=1, Scalar alpha=1"


def _declare():
    defop("matmul(Tensor self, Tensor other) -> Tensor", method=True)
    defop("mm(Tensor self, Tensor mat2) -> Tensor", method=True)
    defop("bmm(Tensor self, Tensor mat2) -> Tensor", method=True)
    defop("mv(Tensor self, Tensor vec) -> Tensor", method=True)
    defop("dot(Tensor self, Tensor tensor) -> Tensor", method=True)
    defop("vdot(Tensor self, Tensor other) -> Tensor", method=True)
    defop("outer(Tensor self, Tensor vec2) -> Tensor", method=True)
    defop("ger(Tensor self, Tensor vec2) -> Tensor", method=True)
    defop(f"addmm(Tensor self, Tensor mat1, Tensor mat2, {_BS}) -> Tensor", method=True)
    defop(f"addmm_(Tensor(a!) self, Tensor mat1, Tensor mat2, {_BS}) -> Tensor(a!)", method=True)
    defop(f"addmv(Tensor self, Tensor mat, Tensor vec, {_BS}) -> Tensor", method=True)
    defop(f"addmv_(Tensor(a!) self, Tensor mat, Tensor vec, {_BS}) -> Tensor(a!)", method=True)
    defop(f"addbmm(Tensor self, Tensor batch1, Tensor batch2, {_BS}) -> Tensor", method=True)
    defop(f"addbmm_(Tensor(a!) self, Tensor batch1, Tensor batch2, {_BS}) -> Tensor(a!)", method=True)
    defop(f"baddbmm(Tensor self, Tensor batch1, Tensor batch2, {_BS}) -> Tensor", method=True)
    defop(f"baddbmm_(Tensor(a!) self, Tensor batch1, Tensor batch2, {_BS}) -> Tensor(a!)", method=True)
    defop("einsum(str equation, Tensor[] tensors) -> Tensor")
    defop("tensordot(Tensor a, Tensor b, Any dims=2) -> Tensor")
    defop("linear(Tensor input, Tensor weight, Tensor? bias=None) -> Tensor")
    # linear's three grads in one op call (as aten::linear_backward): grad_output and input as
    # (rows, features) matrices, the bias grad as the column sums of grad_output; the need_* flags say which
    defop("linear_backward(Tensor self, Tensor grad_output, Tensor weight, bool need_input, bool need_weight, "
          "bool need_bias) -> (Tensor, Tensor, Tensor)")


_declare()


# ---- aliases: compositions over the main op ---------------------------------------------------

def ger(self, vec2):
    """Alias of outer."""
    return OPS["outer"].fn(self, vec2)


OPS["ger"].register(*_ALL)(ger)
ger._op = OPS["ger"]
ger._dispatch = OPS["ger"].fn
OPS["ger"].fn = ger
Tensor.ger = ger


# ---- einsum's front end: varargs, one list, or the sublist format --------------------------------

_einsum_op = OPS["einsum"].fn


def _sublist_label(v, pos):
    if v is Ellipsis:
        return "..."
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 52:
        raise ValueError(f"einsum(): subscript in a sublist must be an int in [0, 52) or Ellipsis, got {v!r} "
                         f"(sublist {pos})")
    return chr(ord("A") + v) if v < 26 else chr(ord("a") + v - 26)


def _from_sublists(args):
    """einsum(op0, [0, 1], op1, [1, 2], [0, 2]) -> ('AB,BC->AC', [op0, op1])."""
    operands, terms = [], []
    i = 0
    while i + 1 < len(args):
        operands.append(args[i])
        terms.append("".join(_sublist_label(v, len(terms)) for v in args[i + 1]))
        i += 2
    eq = ",".join(terms)
    if i < len(args):  # a trailing output sublist
        eq += "->" + "".join(_sublist_label(v, "output") for v in args[i])
    return eq, operands


def einsum(*args):
    """einsum(equation, *operands), einsum(equation, [operands]) or the sublist format."""
    if not args or (isinstance(args[0], str) and len(args) == 1):
        raise ValueError("einsum(): must specify the equation string and at least one operand, "
                         "or at least one operand and its subscripts list")
    eq = args[0]
    if isinstance(eq, str):
        operands = args[1:]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = operands[0]
    elif isinstance(eq, Tensor):
        eq, operands = _from_sublists(args)
    else:
        raise TypeError(f"einsum(): argument 'equation' (position 1) must be str, not {type(eq).__name__}")
    return _einsum_op(eq, list(operands))


einsum._op = OPS["einsum"]
einsum._dispatch = _einsum_op
OPS["einsum"].fn = einsum


# ---- derivatives ----------------------------------------------------------------------------------

def _derivatives():
    from ..autograd.derivatives import derivative as d
    d("matmul", self="matmul_backward(grad, self, other, True)", other="matmul_backward(grad, self, other, False)")
    d("mm", self="matmul(grad, mat2.mT)", mat2="matmul(self.mT, grad)")
    d("bmm", self="matmul(grad, mat2.mT)", mat2="matmul(self.mT, grad)")
    d("mv", self="outer(grad, vec)", vec="matmul(self.mT, grad)")
    d("dot", self="grad * tensor", tensor="grad * self")
    d("vdot", self="grad * other", other="grad * self")
    d("outer", self="matmul(grad, vec2)", vec2="matmul(grad.mT, self)")
    d("addmm", self="grad * beta", mat1="matmul(grad, mat2.mT) * alpha", mat2="matmul(mat1.mT, grad) * alpha")
    d("addmv", self="grad * beta", mat="outer(grad, vec) * alpha", vec="matmul(mat.mT, grad) * alpha")
    d("addbmm", self="grad * beta",
      batch1="matmul(grad.expand(batch1.shape[0], *grad.shape), batch2.mT) * alpha",
      batch2="matmul(batch1.mT, grad.expand(batch1.shape[0], *grad.shape)) * alpha")
    d("baddbmm", self="grad * beta", batch1="matmul(grad, batch2.mT) * alpha",
      batch2="matmul(batch1.mT, grad) * alpha")
    d("einsum", tensors="einsum_backward(grad, equation, tensors)")
    d("tensordot", a="tensordot_backward(grad, a, b, dims)[0]", b="tensordot_backward(grad, a, b, dims)[1]")
    d("linear", **{"input, weight, bias": "linear_backward(grad, input, weight, bias_shape, grad_input_mask)"})


_derivatives()


def check_linear_backward(self, grad_output, weight) -> tuple:
    """(rows, in_features, out_features) of linear_backward's matrices, after checking the shapes."""
    if self.ndim < 1 or weight.ndim != 2 or grad_output._shape != self._shape[:-1] + weight._shape[:1] or \
            self._shape[-1] != weight._shape[1]:
        raise RuntimeError(f"linear_backward: expected input (*, in), grad_output (*, out) and weight (out, in), got "
                           f"shapes {list(self.shape)}, {list(grad_output.shape)} and {list(weight.shape)}")
    dt = self._dtype
    if grad_output._dtype is not dt or weight._dtype is not dt or dt.category != 2:
        raise RuntimeError(f"linear_backward: expected floating tensors of one dtype, got {self._dtype}, "
                           f"{grad_output._dtype} and {weight._dtype}")
    rows = 1
    for n in self._shape[:-1]:
        rows *= n
    return rows, weight._shape[1], weight._shape[0]

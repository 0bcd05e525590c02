"""Indexing ops: advanced indexing, gather/scatter, index_*, masked_*, take/put, embedding, one_hot.

`index(self, indices)` is aten::index: `indices` holds one entry per leading dim of `self`, an
integer (int64/int32) tensor or None for "the whole dim" (a bool/uint8 mask consumes as many dims
as it has). The index tensors broadcast together; as in NumPy/PyTorch, the indexed dims stay in
place when they are adjacent and move to the front when a full dim separates them.
`Tensor.__getitem__`/`__setitem__` (ops/operators.py) reduce a Python index to one view plus such a
list and call `index` / `index_put_`.

Index dtypes follow PyTorch op by op: `index`/`index_put_` take int64/int32 and bool/uint8 masks;
`index_select`, `gather`, `scatter*`, `index_add`, `embedding` take int64/int32; `index_copy`,
`index_fill`, `take`, `put_` and `one_hot` take int64 only.
"""
from __future__ import annotations

from .._tensor import Tensor
from ..core import dtype as D
from ..dispatch import OPS, defop

__all__ = ["nonzero", "argwhere"]


def _declare():
    defop("index(Tensor self, Tensor?[] indices) -> Tensor")
    defop("index_put_(Tensor(a!) self, Tensor?[] indices, Tensor values, bool accumulate=False) -> Tensor(a!)",
          method=True)
    defop("index_put(Tensor self, Tensor?[] indices, Tensor values, bool accumulate=False) -> Tensor", method=True)
    defop("nonzero(Tensor self) -> Tensor")  # Tensor.nonzero / as_tuple: the composite below
    defop("argwhere(Tensor self) -> Tensor", method=True)
    defop("index_select(Tensor self, int dim, Tensor index) -> Tensor", method=True)
    defop("gather(Tensor self, int dim, Tensor index, *, bool sparse_grad=False) -> Tensor", method=True)
    # Out-of-place and in-place forms; scatter(dim, index, src) also takes a Python scalar `src`
    # or `value=`, as torch.scatter's two overloads do.
    for suffix, self_t, ret in (("", "Tensor", "Tensor"), ("_", "Tensor(a!)", "Tensor(a!)")):
        defop(f"scatter{suffix}({self_t} self, int dim, Tensor index, Tensor|Scalar? src=None, *, "
              f"Scalar? value=None, str? reduce=None) -> {ret}", method=True)
        defop(f"scatter_add{suffix}({self_t} self, int dim, Tensor index, Tensor src) -> {ret}", method=True)
        defop(f"scatter_reduce{suffix}({self_t} self, int dim, Tensor index, Tensor src, str reduce, *, "
              f"bool include_self=True) -> {ret}", method=True)
        defop(f"index_add{suffix}({self_t} self, int dim, Tensor index, Tensor source, *, Scalar alpha=1) -> {ret}",
              method=True)
        defop(f"index_copy{suffix}({self_t} self, int dim, Tensor index, Tensor source) -> {ret}", method=True)
        defop(f"index_fill{suffix}({self_t} self, int dim, Tensor index, Tensor|Scalar value) -> {ret}", method=True)
        defop(f"masked_fill{suffix}({self_t} self, Tensor mask, Tensor|Scalar value) -> {ret}", method=True)
        defop(f"masked_scatter{suffix}({self_t} self, Tensor mask, Tensor source) -> {ret}", method=True)
        defop(f"put{suffix}({self_t} self, Tensor index, Tensor source, bool accumulate=False) -> {ret}", method=True)
    defop("masked_select(Tensor self, Tensor mask) -> Tensor", method=True)
    defop("take(Tensor self, Tensor index) -> Tensor", method=True)
    defop("embedding(Tensor weight, Tensor indices, int padding_idx=-1, bool scale_grad_by_freq=False, "
          "bool sparse=False) -> Tensor")
    defop("one_hot(Tensor self, int num_classes=-1) -> Tensor")


_declare()
_nonzero = OPS["nonzero"].fn
_empty = OPS["empty"].fn
argwhere = OPS["argwhere"].fn


def nonzero(input: Tensor, *, as_tuple: bool = False):
    """Indices of the non-zero elements: an int64 tensor [n, ndim], or with as_tuple=True one
    1-D index tensor per dim (a 0-d input counts as 1-D, as in PyTorch)."""
    if not as_tuple:
        return _nonzero(input)
    if not input._shape:
        input = input.reshape(1)
    r = _nonzero(input)
    if not r._shape[0]:  # fresh empties: views of an empty result would point past its storage
        return tuple(_empty(0, dtype=D.int64, device=input.device) for _ in range(r._shape[1]))
    return r.unbind(1)


Tensor.nonzero = nonzero


# ---- derivatives ----------------------------------------------------------------------------------

def _derivatives():
    from ..autograd.derivatives import derivative as d, nondifferentiable
    d("index", self="index_backward(grad, self_shape, indices)")
    for name in ("index_put", "index_put_"):
        d(name, self="grad if accumulate else index_put(grad, indices, zeros_for(grad, ()), False)",
          values="index(grad, indices)")
    d("index_select", self="index_add(zeros_for(grad, self_shape), dim, index, grad)")
    d("gather", self="scatter_add(zeros_for(grad, self_shape), dim, index, grad)")
    d("scatter", self="scatter(grad, dim, index, 0.0)", src="grad.gather(dim, index)")
    d("scatter_add", self="grad", src="grad.gather(dim, index)")
    d("scatter_reduce", self="scatter_reduce_backward(grad, self, index, dim, reduce, include_self, True)",
      src="scatter_reduce_backward(grad, self, index, dim, reduce, include_self, False)")
    d("index_add", self="grad", source="grad.index_select(dim, index) * alpha")
    d("index_copy", self="grad.index_fill(dim, index, 0.0)", source="grad.index_select(dim, index)")
    d("index_fill", self="grad.index_fill(dim, index, 0.0)", value="grad.index_select(dim, index).sum()")
    d("masked_fill", self="grad.masked_fill(mask, 0.0)", value="where(mask, grad, 0.0).sum()")
    d("masked_scatter", self="grad.masked_fill(mask, 0.0)", source="masked_scatter_backward(grad, mask, source_shape)")
    d("put", self="grad if accumulate else grad.put(index, zeros_for(grad, index.shape), False)",
      source="grad.take(index)")
    d("masked_select", self="masked_select_backward(grad, self_shape, mask)")
    d("take", self="put(zeros_for(grad, self_shape), index, grad, True)")
    d("embedding", weight="embedding_backward(grad, weight_shape, indices, padding_idx, scale_grad_by_freq)")
    nondifferentiable("nonzero", "argwhere", "one_hot")


_derivatives()

"""Rotary position embeddings (RoPE; Su et al., "RoFormer", 2021) as one fused op, `_rotary_embedding`:
`nn.functional.rotary_embedding` and `nn.RotaryEmbedding` go through it (torch has no such op).

Each pair (a, b) of the last dim of x (..., T, D) is rotated by the angle of its position t and
frequency i: y_a = x_a cos - x_b sin, y_b = x_b cos + x_a sin, with cos and sin of shape (T, D/2) (or
any shape that broadcasts to x's (..., T, D/2)). The pairs are (i, i + D/2) ("half rotation", GPT-NeoX
and Llama), or (2i, 2i + 1) with `interleaved` (the RoFormer paper, GPT-J). Both kernels read x, cos and
sin through their strides (a permuted view of a fused qkv projection needs no copy) and compute in
float32 for float16/bfloat16 (float64 for float64); the output is contiguous, of x's dtype.

The derivative of a rotation is the rotation by the opposite angle: the input's grad is the same op with
sin negated; cos and sin get theirs from a composite formula (the engine sums it to their shapes).
"""
from __future__ import annotations

from ..autograd.derivatives import derivative
from ..core import dtype as D
from ..core.shape import broadcast_shapes
from ..dispatch import defop


def rotary_embedding_meta(input, cos, sin, interleaved):
    fn = "rotary_embedding"
    shape, dt = input._shape, input._dtype
    if not dt.is_floating_point:
        raise RuntimeError(f"{fn}: expected a floating point input, got {dt}")
    if not shape or shape[-1] % 2:
        raise RuntimeError(f"{fn}: expected an input (..., T, D) with an even last dim D (pairs of features are "
                           f"rotated), got shape {list(shape)}")
    if cos._shape != sin._shape:
        raise RuntimeError(f"{fn}: expected cos and sin of the same shape, got cos {list(cos._shape)} and sin "
                           f"{list(sin._shape)}")
    half = shape[:-1] + (shape[-1] // 2,)
    try:
        ok = broadcast_shapes(cos._shape, half) == half
    except RuntimeError:
        ok = False
    if not ok:
        raise RuntimeError(f"{fn}: expected cos and sin of shape (T, D/2) = {tuple(half[-2:])} (or any shape that "
                           f"broadcasts to the input's (..., T, D/2) = {list(half)}) for an input of shape "
                           f"{list(shape)}, got {list(cos._shape)}")
    ok_dt = (dt, D.float32) if dt is D.float16 or dt is D.bfloat16 else (dt,)
    if cos._dtype is not sin._dtype or cos._dtype not in ok_dt:
        raise RuntimeError(f"{fn}: expected cos and sin of the input's dtype {dt} (or float32 for a "
                           f"float16/bfloat16 input), got {cos._dtype} and {sin._dtype}")
    return shape, dt


defop("_rotary_embedding(Tensor input, Tensor cos, Tensor sin, bool interleaved=False) -> Tensor",
      meta=rotary_embedding_meta)

derivative("_rotary_embedding", input="_rotary_embedding(grad, cos, -sin, interleaved)",
           **{"cos, sin": "rotary_embedding_backward(grad, input, cos, interleaved, grad_input_mask)"})

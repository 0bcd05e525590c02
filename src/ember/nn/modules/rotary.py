"""RotaryEmbedding: the cos/sin tables of rotary position embeddings and their application to q and k."""
from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...core import dtype as D
from ...ops.creation import arange
from .. import functional as F
from .module import Module

__all__ = ["RotaryEmbedding"]


class RotaryEmbedding(Module):
    """Rotary position embeddings (RoPE; Su et al., "RoFormer", 2021) for heads of size `dim`: the pairs of
    features of q and k (..., T, dim) at position t are rotated by the angles t * base^(-2i / dim), i < dim/2,
    so that q . k depends on the positions only through their difference. ember's own (torch has none).

    Args: dim, the head size (even); base, the frequency base (10000.0; Llama 3 uses 500000.0);
    max_seq_len, the positions tabulated up front (the tables grow when a call goes past them);
    interleaved, pairs (2i, 2i + 1) instead of (i, i + dim/2) (`nn.functional.rotary_embedding`).
    Buffers `cos`, `sin`: (max_seq_len, dim/2) float32, computed in float64; not in the state_dict.

    forward(q, k=None, offset=0): q (..., T, dim), and k (..., S, dim) when given, rotated for the positions
    offset, offset + 1, ... (offset: the tokens already in a KV cache); returns the rotated q, or (q, k),
    of their shapes and dtypes. Both may be strided views (e.g. of a fused qkv projection).
    For other positions (packed sequences), index the tables: `F.rotary_embedding(q, rope.cos[pos],
    rope.sin[pos])` with pos (B, 1, T) for q (B, H, T, dim).
    """

    def __init__(self, dim: int, base: float = 10000.0, max_seq_len: int = 2048, interleaved: bool = False,
                 device=None):
        super().__init__()
        if dim <= 0 or dim % 2:
            raise ValueError(f"RotaryEmbedding: dim must be a positive even number (features are rotated in "
                             f"pairs), got {dim}")
        self.dim = dim
        self.base = base
        self.interleaved = interleaved
        self._tabulate(max_seq_len, device)

    def _tabulate(self, n: int, device) -> None:
        with no_grad():
            inv_freq = self.base ** -(arange(0, self.dim, 2, dtype=D.float64) / self.dim)
            angles = arange(n, dtype=D.float64).unsqueeze(1) * inv_freq
            for name, t in (("cos", angles.cos()), ("sin", angles.sin())):
                self.register_buffer(name, t.to(device=device, dtype=D.float32), persistent=False)

    def _rotate(self, x, offset: int):
        end = offset + x.shape[-2]
        if end > self.cos.shape[0]:
            self._tabulate(max(end, 2 * self.cos.shape[0]), self.cos.device)
        # float32 tables for float16/bfloat16 and float32 inputs (the kernel computes in float32), float64's own
        dt = D.float64 if x.dtype is D.float64 else D.float32
        return F.rotary_embedding(x, self.cos[offset:end].to(dt), self.sin[offset:end].to(dt), self.interleaved)

    def forward(self, q, k=None, offset: int = 0):
        if k is None:
            return self._rotate(q, offset)
        return self._rotate(q, offset), self._rotate(k, offset)

    def extra_repr(self) -> str:
        return f"{self.dim}, base={self.base}, max_seq_len={self.cos.shape[0]}, interleaved={self.interleaved}"

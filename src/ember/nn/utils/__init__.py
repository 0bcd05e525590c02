"""ember.nn.utils: gradient clipping; `rnn`, the variable-length sequences of the recurrent layers."""
from __future__ import annotations

from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from . import rnn  # noqa: F401  (nn.utils.rnn: PackedSequence, pack_padded_sequence, ...)

__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]

"""Fused negative log-likelihood over class indices, as PyTorch's `nll_loss_forward` /
`nll_loss_backward`: `nn.functional.nll_loss` and `cross_entropy` (after `log_softmax`) make one
forward and one backward kernel of what was ten ops each way. Input (N, C) or (C,) log-probabilities,
target (N,) / () class indices; reduction 0 none, 1 mean, 2 sum. Returns (loss, total weight).
"""
from __future__ import annotations

from ..autograd.derivatives import derivative
from ..dispatch import defop

defop("nll_loss_forward(Tensor self, Tensor target, Tensor? weight, int reduction, int ignore_index) "
      "-> (Tensor, Tensor)")
defop("nll_loss_backward(Tensor grad_output, Tensor self, Tensor target, Tensor? weight, int reduction, "
      "int ignore_index, Tensor total_weight) -> Tensor")

derivative("nll_loss_forward", self="nll_loss_backward(grad, self, target, weight, reduction, ignore_index, result1)")
# the backward is linear in grad_output (and constant in self): its derivative is the forward again
derivative("nll_loss_backward", grad_output="nll_loss_forward(grad, target, weight, reduction, ignore_index)[0]")


def check_nll(self, target, weight, reduction) -> int:
    """The class count, after the checks both backends share."""
    if self.ndim != 2 or target.ndim != 1 or target._shape[0] != self._shape[0]:
        raise RuntimeError(f"nll_loss_forward: expected input (N, C) and target (N,), got {list(self._shape)} and "
                           f"{list(target._shape)}")
    C = self._shape[1]
    if weight is not None and weight._shape != (C,):
        raise RuntimeError(f"nll_loss: weight tensor should be defined either for all {C} classes or no classes "
                           f"but got weight tensor of shape: {list(weight._shape)}")
    if reduction not in (0, 1, 2):
        raise ValueError(f"nll_loss: reduction must be 0 (none), 1 (mean) or 2 (sum), got {reduction}")
    if target._dtype.category != 1:
        raise RuntimeError(f"nll_loss: expected target of an integer dtype (class indices), got {target._dtype}")
    return C

"""CUDA kernels of the fused NLL loss (`ops/loss.py`): one launch forward, one backward.

A class index outside [0, C) (and not ignore_index) is checked on the device: the next
synchronisation raises a RuntimeError naming it (`checks.py`; PyTorch uses a device-side assert).
Until then the loss counts that row as ignored."""
from __future__ import annotations

from .checks import launch_args
from .compiler import LazyKernels, next_power_of_2, pointer_arg, run
from .memory import new_tensor
from .opcodes import Reduction

BLOCK = 1024
K = LazyKernels("loss")


def _contig(t):
    return t if t.is_contiguous() else t.contiguous()


def nll_loss_forward(self, target, weight, reduction, ignore_index):
    N, C = self._shape
    x, t = _contig(self), _contig(target)
    out = new_tensor((N,) if reduction == Reduction.NONE else (), self._dtype, self.device)
    tw = new_tensor((), self._dtype, self.device)
    w = _contig(weight) if weight is not None else x
    args = [pointer_arg("x_ptr", x), pointer_arg("t_ptr", t), pointer_arg("w_ptr", w), pointer_arg("out_ptr", out),
            pointer_arg("tw_ptr", tw), ("N", N, "i64"), ("C", C, "i64"), ("ignore_index", int(ignore_index), "i64")]
    args += launch_args(self.device, "nll_loss")
    grid = (max(1, (N + BLOCK - 1) // BLOCK),) if reduction == Reduction.NONE else (1,)
    run(K.nll_fwd_kernel, grid, args, {"RED": reduction, "HAS_W": int(weight is not None), "BLOCK": BLOCK},
        self.device.index or 0)
    return out, tw


def nll_loss_backward(grad_output, self, target, weight, reduction, ignore_index, total_weight):
    N, C = self._shape
    gi = new_tensor(self._shape, self._dtype, self.device)
    if N and C:
        t, g = _contig(target), _contig(grad_output)
        w = _contig(weight) if weight is not None else g
        block_c = min(1024, max(16, next_power_of_2(C)))
        block_r = max(1, 2048 // block_c)
        args = [pointer_arg("g_ptr", g), pointer_arg("t_ptr", t), pointer_arg("w_ptr", w),
                pointer_arg("tw_ptr", total_weight), pointer_arg("gi_ptr", gi),
                ("N", N, "i64"), ("C", C, "i64"), ("ignore_index", int(ignore_index), "i64")]
        args += launch_args(self.device, "nll_loss")
        run(K.nll_bwd_kernel, ((N + block_r - 1) // block_r, (C + block_c - 1) // block_c), args,
            {"RED": reduction, "HAS_W": int(weight is not None), "BLOCK_R": block_r, "BLOCK_C": block_c},
            self.device.index or 0)
    return gi


def _register():
    from ...dispatch import OPS
    OPS["nll_loss_forward"].register("cuda")(nll_loss_forward)
    OPS["nll_loss_backward"].register("cuda")(nll_loss_backward)


_register()

"""CUDA kernels of the fused NLL loss (`ops/loss.py`): one launch forward, one backward; and of
cross-entropy from logits: two launches forward (per-row pass, then the one-program total), one
backward.

A class index outside [0, C) (and not ignore_index) is checked on the device: the next
synchronisation raises a RuntimeError naming it (`checks.py`; PyTorch uses a device-side assert).
Until then the loss counts that row as ignored."""
from __future__ import annotations

from .checks import launch_args
from .compiler import LazyKernels, next_power_of_2, pointer_arg, run
from .memory import new_tensor
from .opcodes import Compute, Reduction
from ...core import dtype as D

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


def _ce_geometry(x):
    """(BLOCK_R, BLOCK_C, column tiles, num_warps, CK) of the cross-entropy kernels for logits x (N, C)."""
    C = x._shape[1]
    block_c = min(max(16, next_power_of_2(C)), 2048)
    block_r = max(1, min(64, 2048 // block_c))
    return block_r, block_c, (C + block_c - 1) // block_c, 8 if block_c >= 2048 else 4, \
        Compute.F64 if x._dtype is D.float64 else Compute.F32


def _ce_args(x, t, weight, ignore_index, label_smoothing, nblk, ck):
    fl = "fp64" if ck == Compute.F64 else "fp32"
    return [("N", x._shape[0], "i64"), ("C", x._shape[1], "i64"), ("sr", x._stride[0], "i64"),
            ("sc", x._stride[1], "i64"), ("ignore_index", int(ignore_index), "i64"),
            ("smooth", float(label_smoothing), fl), ("nblk", nblk, "i64")] + launch_args(x.device, "cross_entropy")


def cross_entropy(self, target, weight, reduction, ignore_index, label_smoothing, dtype=None):
    N, C = self._shape
    dev = self.device
    out_dt = dtype or self._dtype
    br, bc, nblk, warps, ck = _ce_geometry(self)
    cdt = D.float64 if ck == Compute.F64 else D.float32
    t = _contig(target)
    w = _contig(weight) if weight is not None else t
    lse = new_tensor((N,), cdt, dev)
    per_row = reduction == Reduction.NONE
    loss = new_tensor((N,), out_dt if per_row else cdt, dev)
    wt = new_tensor((N,), cdt, dev)
    smooth = int(label_smoothing > 0)
    if N:
        args = [pointer_arg("x_ptr", self), pointer_arg("t_ptr", t), pointer_arg("w_ptr", w),
                pointer_arg("loss_ptr", loss), pointer_arg("wt_ptr", wt), pointer_arg("lse_ptr", lse)]
        run(K.ce_fwd_kernel, ((N + br - 1) // br,), args + _ce_args(self, t, weight, ignore_index, label_smoothing,
                                                                     nblk, ck),
            {"CK": ck, "HAS_W": int(weight is not None), "SMOOTH": smooth, "INTERP": 0, "BLOCK_R": br,
             "BLOCK_C": bc, "SC1": int(self._stride[1] == 1)}, dev.index or 0, warps)
    tw = new_tensor((), out_dt, dev)
    if per_row:
        tw.zero_()
        return loss, lse, tw
    out = new_tensor((), out_dt, dev)
    args = [pointer_arg("loss_ptr", loss), pointer_arg("wt_ptr", wt), pointer_arg("out_ptr", out),
            pointer_arg("tw_ptr", tw), ("N", N, "i64")]
    run(K.ce_total_kernel, (1,), args, {"MEAN": int(reduction == Reduction.MEAN), "CK": ck, "BLOCK": 1024},
        dev.index or 0)
    return out, lse, tw


def cross_entropy_backward(grad, self, target, weight, reduction, ignore_index, label_smoothing, lse,
                           total_weight):
    N, C = self._shape
    dev = self.device
    gi = new_tensor(self._shape, self._dtype, dev)
    if N and C:
        br, bc, nblk, warps, ck = _ce_geometry(self)
        t = _contig(target)
        w = _contig(weight) if weight is not None else t
        args = [pointer_arg("g_ptr", _contig(grad)), pointer_arg("x_ptr", self), pointer_arg("t_ptr", t),
                pointer_arg("w_ptr", w), pointer_arg("lse_ptr", _contig(lse)), pointer_arg("tw_ptr", total_weight),
                pointer_arg("gi_ptr", gi)]
        run(K.ce_bwd_kernel, ((N + br - 1) // br,), args + _ce_args(self, t, weight, ignore_index, label_smoothing,
                                                                     nblk, ck),
            {"RED": reduction, "CK": ck, "HAS_W": int(weight is not None), "SMOOTH": int(label_smoothing > 0),
             "INTERP": 0, "BLOCK_R": br, "BLOCK_C": bc, "SC1": int(self._stride[1] == 1)}, dev.index or 0, warps)
    return gi


def _register():
    from ...dispatch import OPS
    OPS["nll_loss_forward"].register("cuda")(nll_loss_forward)
    OPS["nll_loss_backward"].register("cuda")(nll_loss_backward)
    OPS["_cross_entropy"].register("cuda")(cross_entropy)
    OPS["_cross_entropy_backward"].register("cuda")(cross_entropy_backward)


_register()

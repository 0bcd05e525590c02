"""The sample-input table (`tests/samples/`) through the CUDA host code and Triton's interpreter
(`TRITON_INTERPRET=1`), on CPU tensors, against ember's CPU kernels.

For every OpInfo with `interp=True`, each selected sample runs `OPS[name].kernels["cuda"]` on the
sample's CPU tensors and `OPS[name].kernels["cpu"]` on a same-layout copy (both with the positional
arguments the entry point would pass); the two results (and an in-place op's mutated arguments)
must agree, and the meta's shape and dtype must describe the CUDA kernel's result.

The interpreter costs 5-50 ms a launch, so each op runs at most its first `CAP` samples plus every
sample with a 0-d or non-contiguous tensor argument (the layouts the host code must get right).
Samples marked "KNOWN:" (a divergence from torch, shown by tests/test_samples.py) are left out here:
whether the CUDA kernel shares the CPU's divergence cannot be told in advance. ErrorSamples are
checked by the CPU and GPU suites (they go through the entry point, which runs the meta).
On a machine with a GPU this module is skipped: tests/test_cuda_samples.py runs the compiled kernels.
"""
import os

import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_samples.py",
                allow_module_level=True)
triton = pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from samples import REGISTRY  # noqa: E402
from samples._check import check_meta, compare, describe, is_known  # noqa: E402
from samples._convert import copy_sample, kernel_args, mutated_positions  # noqa: E402

from ember.dispatch import OPS  # noqa: E402

CAP = 3


def _layout_sample(sample) -> bool:
    """A sample with a 0-d or non-contiguous tensor argument (possibly inside a list)."""
    def walk(x):
        if isinstance(x, ember.Tensor):
            return x.dim() == 0 or not x.is_contiguous()
        if isinstance(x, (list, tuple)):
            return any(walk(v) for v in x)
        return False
    return walk(sample.args) or walk(tuple(sample.kwargs.values()))


def selected(info):
    """(index, sample) pairs this suite runs: the first CAP samples and every 0-d or strided one."""
    out = []
    for i, s in enumerate(info.samples()):
        if is_known(s):
            continue
        if len(out) < CAP or _layout_sample(s):
            out.append((i, s))
    return out


def run_interp(info, op, sample):
    if sample.cuda:   # refused by the CUDA kernel by design (Sample.cuda says why)
        with pytest.raises(NotImplementedError):
            op.kernels["cuda"](*kernel_args(op, sample))
        return
    twin = copy_sample(sample)
    kargs, cargs = kernel_args(op, sample), kernel_args(op, twin)
    meta_out = op.meta(*kargs) if op.meta is not None else None
    with ember.no_grad():
        got = op.kernels["cuda"](*kargs)
        expected = op.kernels["cpu"](*cargs)
    if meta_out is not None:
        check_meta(meta_out, got)
    compare(info, got, expected)
    for i, name in mutated_positions(op):
        compare(info, kargs[i], cargs[i], path=f"the mutated argument '{name}'")


INTERP = sorted(n for n, info in REGISTRY.items() if info.interp is True)


@pytest.mark.parametrize("name", INTERP)
def test_op_samples_interp(name):
    info = REGISTRY[name]
    op = OPS[name]
    assert "cuda" in op.kernels, (f"{name} has no CUDA kernel; set its OpInfo's interp to the reason, or add "
                                  f"the kernel")
    failures = []
    for i, s in selected(info):
        try:
            run_interp(info, op, s)
        except Exception as exc:  # noqa: BLE001 - every failing sample is reported
            text = f"{type(exc).__name__}: {exc}"
            failures.append(f"{describe(i, s)}: {text[:600]}")
    assert not failures, f"{name}: {len(failures)} failing samples:\n" + "\n".join(failures)


OUT_KERNELS = sorted(n for n in INTERP if "cuda" in OPS[n].out_kernels)


@pytest.mark.parametrize("name", OUT_KERNELS)
def test_op_out_kernels_interp(name):
    """The CUDA out-kernel (`Op.register_out`) writes the CPU kernel's result into a contiguous out and
    into a strided one."""
    info = REGISTRY[name]
    op = OPS[name]
    failures = []
    for i, s in selected(info):
        if s.cuda:
            continue
        try:
            kargs, cargs = kernel_args(op, s), kernel_args(op, copy_sample(s))
            shape, dt = op.meta(*kargs)
            outs = [ember.empty(shape, dtype=dt)]
            if len(shape) >= 2:
                outs.append(ember.empty(tuple(reversed(shape)), dtype=dt).permute(*reversed(range(len(shape)))))
            with ember.no_grad():
                expected = op.kernels["cpu"](*cargs)
                for out in outs:
                    op.out_kernels["cuda"](out, *kargs)
                    compare(info, out, expected, path="out")
        except Exception as exc:  # noqa: BLE001 - every failing sample is reported
            failures.append(f"{describe(i, s)}: {type(exc).__name__}: {str(exc)[:600]}")
    assert not failures, f"{name}: {len(failures)} failing samples:\n" + "\n".join(failures)

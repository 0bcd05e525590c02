"""The sample-input table (`tests/samples/`) on the GPU, against torch CUDA (`pytest -m cuda`).

Each sample's tensors are copied to ember CUDA and to torch CUDA with their layout (sizes, strides,
storage offset); a factory op's `device` becomes 'cuda'. The results must agree (values, shapes,
dtypes; an in-place op's mutated arguments too), and the meta's shape and dtype must describe both
ember's result and torch CUDA's. ErrorSamples must raise in ember on CUDA; torch CUDA is not asked
to raise (an out-of-range index is a device-side assert there, which ends the process's CUDA
context). Samples marked "KNOWN:" (a CPU divergence from torch) are left out: whether CUDA shares it
cannot be told in advance. A sample with `cuda` set (a CUDA refusal by design) must raise NotImplementedError.
"""
import re

import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]

torch = pytest.importorskip("torch")

from samples import REGISTRY, Sample  # noqa: E402
from samples._check import check_meta, compare, failures_of  # noqa: E402
from samples._convert import cuda_args, kernel_args, mutated_positions, to_host, torch_args  # noqa: E402

from ember.dispatch import OPS  # noqa: E402


def torch_reference(info, op, sample, targs, tkwargs, memo):
    """torch CUDA's result for the sample, or torch CPU's where torch CUDA lacks the case (int64 matmul,
    mixed-dtype layer norm, ...); with the memo of the torch arguments that produced it."""
    try:
        return info.ref(*targs, **tkwargs), memo
    except (NotImplementedError, RuntimeError) as exc:
        if "not implemented for" not in str(exc) and "expected scalar type" not in str(exc):
            raise
    memo = {}
    targs, tkwargs = torch_args(op, sample, memo=memo)
    return info.ref(*targs, **tkwargs), memo


def run_cuda(info, op, sample):
    memo = {}
    if info.ref is not None:
        targs, tkwargs = torch_args(op, sample, "cuda", memo=memo)
    cpu_kargs = kernel_args(op, sample)
    args, kwargs = cuda_args(op, sample)
    kargs = kernel_args(op, Sample(args, kwargs, sample.desc))
    meta_out = op.meta(*kargs) if op.meta is not None else None
    result = op.fn(*args, **kwargs)
    if meta_out is not None:
        check_meta(meta_out, result)
    if info.ref is None:
        return
    expected, memo = torch_reference(info, op, sample, targs, tkwargs, memo)
    if meta_out is not None:
        check_meta(meta_out, expected, path="torch's result")
    compare(info, to_host(result), to_host(expected))
    for i, name in mutated_positions(op):
        compare(info, to_host(kargs[i]), to_host(memo[id(cpu_kargs[i])]), path=f"the mutated argument '{name}'")


def run_refused_cuda(op, sample):
    """A sample the CUDA kernel refuses by design (`Sample.cuda` says why): it must say so."""
    args, kwargs = cuda_args(op, sample)
    with pytest.raises(NotImplementedError):
        op.fn(*args, **kwargs)


def run_error_cuda(op, err):
    """The op refuses the input: with the CPU's exception, or, for a bad index found by a kernel, the
    RuntimeError reported at the next synchronisation (torch CUDA's device-side assert is its counterpart)."""
    args, kwargs = cuda_args(op, err)
    expected = err.exc if isinstance(err.exc, tuple) else (err.exc,)
    with pytest.raises(expected + (RuntimeError,)) as info:
        op.fn(*args, **kwargs)
        ember.cuda.synchronize()   # device-side checks report at the next synchronisation
    msg = str(info.value)
    if not (isinstance(info.value, err.exc) and re.search(err.match, msg)) and "found on the device" not in msg:
        names = " or ".join(e.__name__ for e in expected)
        raise AssertionError(f"expected {names} matching {err.match!r} (or a device-side report), got "
                             f"{type(info.value).__name__}: {msg}")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_op_samples_cuda(name):
    info = REGISTRY[name]
    op = OPS[name]
    failures = failures_of(info, lambda s: run_refused_cuda(op, s) if s.cuda else run_cuda(info, op, s),
                           lambda e: run_error_cuda(op, e))
    assert not failures, f"{name}: {len(failures)} failing samples on CUDA:\n" + "\n".join(failures)


OUT_OPS = sorted(n for n in REGISTRY if n in OPS and OPS[n].out_kind is not None)


@pytest.mark.parametrize("name", OUT_OPS)
def test_op_out_samples_cuda(name):
    """op(..., out=t) on CUDA: t is returned and holds torch CUDA's result, from an empty t and from a
    strided one (the elementwise ops' out-kernels write into either)."""
    info = REGISTRY[name]
    op = OPS[name]

    def run(sample):
        if sample.cuda:
            return
        args, kwargs = cuda_args(op, sample)
        with ember.no_grad():
            result = op.fn(*args, **kwargs)
            outs = [ember.empty(0, dtype=result.dtype, device="cuda")]
            if result.dim() >= 2:
                outs.append(ember.empty(tuple(reversed(result.shape)), dtype=result.dtype, device="cuda").permute(
                    *reversed(range(result.dim()))))
            for out in outs:
                assert op.fn(*args, out=out, **kwargs) is out
                if info.ref is not None:
                    targs, tkwargs = torch_args(op, sample, "cuda")
                    expected, _ = torch_reference(info, op, sample, targs, tkwargs, {})
                    compare(info, to_host(out), to_host(expected), path="out")
    failures = failures_of(info, run, lambda e: None)
    assert not failures, f"{name}(out=...): {len(failures)} failing samples on CUDA:\n" + "\n".join(failures)

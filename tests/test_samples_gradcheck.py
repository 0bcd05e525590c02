"""gradcheck over the sample-input table (`tests/samples/`): for each OpInfo with `grad=True`, its
samples whose floating tensors, given and returned, are all float64 (the first `CAP`, non-empty) run through
`ember.autograd.gradcheck` with those tensors as leaves that require grad.

A leaf is a copy with the sample's layout, except that an expanded tensor (a zero stride) is made
contiguous: finite differences perturb one element at a time. An argument the op writes in place is
cloned inside the checked function, so the leaf stays untouched. Samples marked "KNOWN:" are left out.
"""
import pytest
from samples import REGISTRY
from samples._check import describe, is_known
from samples._convert import copy_sample, cpu_copy, schema_signature

import ember
from ember.autograd import gradcheck
from ember.dispatch import OPS

CAP = 3


def _tensors(x):
    if isinstance(x, ember.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _tensors(v)


def _float64_sample(sample) -> bool:
    """The sample's floating tensors are float64, and one of them has elements to perturb."""
    floats = [t for t in _tensors((sample.args, tuple(sample.kwargs.values()))) if t.dtype.is_floating_point]
    return bool(floats) and all(t.dtype is ember.float64 for t in floats) and any(t.numel() for t in floats)


def _float64_results(op, sample) -> bool:
    """The op's floating results are float64 too (a cast to a narrower dtype cannot be gradchecked)."""
    twin = copy_sample(sample)   # an in-place op must not change the sample gradcheck then reads
    with ember.no_grad():
        out = op.fn(*twin.args, **twin.kwargs)
    return all(t.dtype is ember.float64 for t in _tensors(out) if t.dtype.is_floating_point)


def cases(name):
    info, op = REGISTRY[name], OPS[name]
    out = []
    for i, s in enumerate(info.samples()):
        if len(out) == CAP:
            break
        if not is_known(s) and _float64_sample(s) and _float64_results(op, s):
            out.append((i, s))
    return out


GRAD = sorted(n for n, info in REGISTRY.items() if info.grad is True)


def test_every_differentiable_op_has_a_float64_sample():
    missing = [n for n in GRAD if not cases(n)]
    assert not missing, (f"{len(missing)} OpInfos with grad=True have no non-empty sample whose floating tensors "
                         f"are float64, so gradcheck checks nothing for them: {missing}")


def _leaf(t):
    if any(st == 0 and n > 1 for st, n in zip(t.stride(), t.shape)):
        t = t.contiguous()
    return cpu_copy(t.detach()).requires_grad_(True)


def run_gradcheck(op, sample):
    bound = schema_signature(op).bind(*sample.args, **sample.kwargs)
    written = {id(bound.arguments[a.name]) for a in op.schema.mutated}
    leaves, slots = [], {}

    def mark(x):
        if isinstance(x, ember.Tensor):
            if x.dtype is ember.float64:
                if id(x) not in slots:
                    slots[id(x)] = len(leaves)
                    leaves.append(_leaf(x))
            return
        if isinstance(x, (list, tuple)):
            for v in x:
                mark(v)
    mark((sample.args, tuple(sample.kwargs.values())))

    def rebuild(x, inputs):
        if isinstance(x, ember.Tensor) and id(x) in slots:
            t = inputs[slots[id(x)]]
            return ember.clone(t) if id(x) in written else t
        if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
            return type(x)(rebuild(v, inputs) for v in x)
        return x

    def fn(*inputs):
        return op.fn(*rebuild(tuple(sample.args), inputs), **{k: rebuild(v, inputs) for k, v in sample.kwargs.items()})
    assert gradcheck(fn, tuple(leaves))


@pytest.mark.parametrize("name", GRAD)
def test_op_gradcheck(name):
    op = OPS[name]
    todo = cases(name)
    if not todo:
        pytest.fail(f"{name}: no float64 sample to gradcheck (see test_every_differentiable_op_has_a_float64_sample)")
    failures = []
    for i, s in todo:
        try:
            run_gradcheck(op, s)
        except Exception as exc:  # noqa: BLE001 - every failing sample is reported
            failures.append(f"{describe(i, s)}: {type(exc).__name__}: {str(exc)[:800]}")
    assert not failures, f"{name}: {len(failures)} failing samples:\n" + "\n".join(failures)

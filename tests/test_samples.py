"""The sample-input table (`tests/samples/`) on the CPU, against torch.

For every op: each sample's meta (shape, dtype) equals the result's, the result equals torch's
(`OpInfo.ref`) within the tolerances, an in-place op's mutated arguments equal torch's, and each
ErrorSample raises in ember (and in torch unless `torch_raises=False`). Tests are one per op, not
one per sample, and report every failing sample of the op at once.

A sample whose desc starts with "KNOWN:" is a known divergence: it runs as its own strict xfail
(`test_known_divergence`), so it must fail; once it passes the test fails and asks for the mark to
be removed. The two coverage tests fail while an op lacks samples or a meta.
"""
import pytest
from samples import REGISTRY
from samples._check import check_meta, compare, failures_of, is_known
from samples._convert import kernel_args, mutated_positions, torch_args

from ember.dispatch import OPS


def test_every_op_has_samples():
    unknown = sorted(n for n in REGISTRY if n not in OPS)
    missing = sorted(n for n in OPS if n not in REGISTRY)
    empty = sorted(n for n in OPS if n in REGISTRY and not list(REGISTRY[n].samples()))
    assert not unknown, f"{len(unknown)} OpInfos name no op of ember.dispatch.OPS: {unknown}"
    assert not missing and not empty, (
        f"{len(missing)} ops have no OpInfo in tests/samples/: {missing}; "
        f"{len(empty)} OpInfos have no Sample: {empty}")


def test_every_op_has_a_meta():
    missing = sorted(n for n, op in OPS.items() if op.meta is None)
    assert not missing, f"{len(missing)} ops have no meta (defop(..., meta=fn)): {missing}"


def run_sample(info, op, sample):
    """One sample: the meta against the result, the result and the mutated arguments against torch."""
    kargs = kernel_args(op, sample)
    memo = {}
    if info.ref is not None:
        targs, tkwargs = torch_args(op, sample, memo=memo)
    expected = op.meta(*kargs) if op.meta is not None else None
    result = op.fn(*sample.args, **sample.kwargs)
    if expected is not None:
        check_meta(expected, result)
    if info.ref is None:
        return
    compare(info, result, info.ref(*targs, **tkwargs))
    for i, name in mutated_positions(op):
        compare(info, kargs[i], memo[id(kargs[i])], path=f"the mutated argument '{name}'")


def run_error(info, op, err):
    with pytest.raises(err.exc, match=err.match):
        op.fn(*err.args, **err.kwargs)
    if err.torch_raises and info.ref is not None:
        targs, tkwargs = torch_args(op, err)
        with pytest.raises(Exception):  # noqa: B017 - torch's exception types differ from ember's at times
            info.ref(*targs, **tkwargs)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_op_samples(name):
    info = REGISTRY[name]
    op = OPS[name]
    failures = failures_of(info, lambda s: run_sample(info, op, s), lambda e: run_error(info, op, e))
    assert not failures, f"{name}: {len(failures)} failing samples:\n" + "\n".join(failures)


def _known_cases():
    cases = []
    for name in sorted(REGISTRY):
        info = REGISTRY[name]
        for kind, gen in (("sample", info.samples), ("error", info.errors)):
            for i, s in enumerate(gen() if gen else ()):
                if is_known(s):
                    mark = pytest.mark.xfail(strict=True, reason=f"{s.desc} (if this passes, the bug is fixed: "
                                                                f"remove the KNOWN mark from its desc)")
                    cases.append(pytest.param(name, kind, i, marks=mark, id=f"{name}-{kind}{i}"))
    return cases


@pytest.mark.parametrize("name,kind,index", _known_cases())
def test_known_divergence(name, kind, index):
    info = REGISTRY[name]
    op = OPS[name]
    if kind == "sample":
        run_sample(info, op, list(info.samples())[index])
    else:
        run_error(info, op, list(info.errors())[index])

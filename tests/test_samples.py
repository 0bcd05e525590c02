"""The sample-input table (`tests/samples/`) on the CPU, against torch.

For every op: each sample's meta (shape, dtype) equals the result's, the result equals torch's
(`OpInfo.ref`) within the tolerances, an in-place op's mutated arguments equal torch's, and each
ErrorSample raises in ember (and in torch unless `torch_raises=False`). Tests are one per op, not
one per sample, and report every failing sample of the op at once.

A sample whose desc starts with "KNOWN:" is a known divergence: it runs as its own strict xfail
(`test_known_divergence`), so it must fail; once it passes the test fails and asks for the mark to
be removed. The two coverage tests fail while an op lacks samples or a meta.

Every op declared with `out=` also runs each sample with an out tensor (`test_op_out_samples`): an
empty one and a strided one, whose contents must equal torch's result.
"""
import pytest
from samples import REGISTRY
from samples._check import check_meta, compare, failures_of, is_known
from samples._convert import kernel_args, mutated_positions, torch_args

import ember
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


# ---- out= -----------------------------------------------------------------------------------------

OUT_OPS = sorted(n for n in REGISTRY if n in OPS and OPS[n].out_kind is not None)


def _outs(result):
    """out tensors of result's dtype to pass: an empty one (resized silently), and one of the result's
    shape laid out in reverse dim order (strided) where the result has two dims or more."""
    outs = [ember.empty(0, dtype=result.dtype, device=result.device)]
    if result.dim() >= 2:
        rev = tuple(reversed(result.shape))
        outs.append(ember.empty(rev, dtype=result.dtype, device=result.device).permute(
            *reversed(range(result.dim()))))
    return outs


def run_out(info, op, sample):
    """op(..., out=t) returns t, holding what torch's op gives (or, without a torch counterpart, the
    meta's shape and dtype), whether t starts empty or strided."""
    with ember.no_grad():
        result = op.fn(*sample.args, **sample.kwargs)
        want = None
        if info.ref is not None:
            targs, tkwargs = torch_args(op, sample)
            want = info.ref(*targs, **tkwargs)
        for out in _outs(result):
            got = op.fn(*sample.args, out=out, **sample.kwargs)
            assert got is out, f"{op.name}(out=t) returned a new tensor, not t"
            check_meta(op.meta(*kernel_args(op, sample)), out, path="out")
            if want is not None:
                compare(info, out, want, path="out")


@pytest.mark.parametrize("name", OUT_OPS)
def test_op_out_samples(name):
    info = REGISTRY[name]
    op = OPS[name]
    failures = failures_of(info, lambda s: run_out(info, op, s), lambda e: None)
    assert not failures, f"{name}(out=...): {len(failures)} failing samples:\n" + "\n".join(failures)

"""The op table: every op is declared here once (schema, shape/dtype rule, derivative).

`ember.ops.add` is the dispatching function of op `add`; ops registered through
`ember.library` live in their namespace: `ember.ops.mylib.myop`.
"""
from __future__ import annotations

from ..dispatch import OPS
from . import elementwise, view, creation, random, reduction, linalg, indexing, shape, normalization, loss  # noqa: F401
from . import attention, optim, rotary, rnn  # noqa: F401
from . import operators  # noqa: F401  (Tensor dunders; needs the declarations above)


class _Namespace:
    def __init__(self, prefix: str):
        self._prefix = prefix

    def __getattr__(self, name: str):
        op = OPS.get(self._prefix + name)
        if op is None:
            raise AttributeError(f"no op {self._prefix + name!r} is declared")
        return op.fn

    def __dir__(self):
        return [k[len(self._prefix):] for k in OPS if k.startswith(self._prefix)]


def __getattr__(name: str):
    op = OPS.get(name)
    if op is not None:
        return op.fn
    if any(k.startswith(name + "::") for k in OPS):
        return _Namespace(name + "::")
    raise AttributeError(f"module 'ember.ops' has no op {name!r}")

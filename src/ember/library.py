"""Registering your own ops: `Library("mylib").define(schema)` and `.impl(name, "cpu")`.

    lib = ember.library.Library("mylib")
    lib.define("scale(Tensor x, float factor) -> Tensor")

    @lib.impl("scale", "cpu")
    def scale_cpu(x, factor):
        return ember.from_numpy(x.numpy() * factor)

    lib.derivative("scale", x="grad * factor")   # makes it differentiable

    ember.ops.mylib.scale(t, 2.0)

A library op goes through the same generated dispatcher as the built-in ones (argument
checks, device resolution, version bumps for `Tensor(a!)` arguments).
"""
from __future__ import annotations

import re

from .dispatch import OPS, defop

__all__ = ["Library"]

_NS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BACKENDS = ("cpu", "cuda")


class Library:
    def __init__(self, ns: str, kind: str = "DEF"):
        if not _NS.match(ns or ""):
            raise ValueError(f"Library namespace must be a Python identifier, got {ns!r}")
        if kind not in ("DEF", "FRAGMENT", "IMPL"):
            raise ValueError(f"Library kind must be 'DEF', 'FRAGMENT' or 'IMPL', got {kind!r}")
        self.ns = ns
        self.kind = kind
        self._defined: list = []

    def _qualify(self, name: str) -> str:
        return name if "::" in name else f"{self.ns}::{name}"

    def define(self, schema: str, *, meta=None, doc: str | None = None) -> str:
        """Declares `ns::name` from a schema such as "myop(Tensor x, *, int k=1) -> Tensor".

        `meta(*args)`, if given, holds the op's rules for every backend: it checks the arguments
        (raising as torch would) and returns the result's `(shape, dtype)`; the dispatcher runs it
        before the kernel, once per input signature (see `ember.dispatch.registry`)."""
        if self.kind == "IMPL":
            raise RuntimeError(f"Library({self.ns!r}, 'IMPL') cannot define ops; use kind 'DEF' or 'FRAGMENT'")
        schema = schema.strip()
        if "::" not in schema.split("(", 1)[0]:
            schema = f"{self.ns}::{schema}"
        op = defop(schema, meta=meta, doc=doc)
        self._defined.append(op.name)
        return op.name

    def impl(self, name: str, device_type: str | tuple = "cpu"):
        """Decorator registering a kernel for one or more device types ('cpu', 'cuda')."""
        qual = self._qualify(name)
        op = OPS.get(qual)
        if op is None:
            raise RuntimeError(f"impl: op {qual!r} is not defined; call Library.define first")
        types = (device_type,) if isinstance(device_type, str) else tuple(device_type)
        for t in types:
            if t not in _BACKENDS:
                raise ValueError(f"impl: unknown device type {t!r}; expected one of {_BACKENDS}")
        return op.register(*types)

    def derivative(self, name: str, **formulas):
        """Declares the backward of `name`: one formula per differentiable input, e.g.

            lib.derivative("scale", x="grad * factor")

        A formula is a Python expression over ember ops and the op's arguments (`grad` is the
        output's gradient, `result` the output), or a callable `(node, grads) -> grad`.
        """
        from .autograd.derivatives import derivative
        return derivative(self._qualify(name), **formulas)

    def _destroy(self) -> None:
        """Removes every op this library defined (tests use it to clean up)."""
        for name in self._defined:
            OPS.pop(name, None)
        self._defined.clear()

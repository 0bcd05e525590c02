"""Op schemas in the spirit of PyTorch's native_functions.yaml.

    add(Tensor self, Tensor|Scalar other, *, Scalar alpha=1) -> Tensor
    add_(Tensor(a!) self, Tensor|Scalar other, *, Scalar alpha=1) -> Tensor(a!)
    view(Tensor self, int[]... size) -> Tensor

`int[]...` makes a variadic parameter (`x.view(2, 3)` and `x.view((2, 3))` both work);
`(a!)` marks an argument the op writes to; `?` marks an optional (None-able) argument.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["Arg", "Schema", "parse_schema"]

_TYPES = {"Tensor", "Tensor|Scalar", "Scalar", "int", "float", "bool", "str", "int[]", "float[]",
          "Tensor[]", "Tensor?[]", "ScalarType", "Device", "Generator", "MemoryFormat", "Any"}
_HEAD = re.compile(r"^\s*([A-Za-z_][\w]*(?:::[A-Za-z_]\w*)?)\s*\((.*)\)\s*->\s*(.+?)\s*$")


@dataclass(frozen=True)
class Arg:
    name: str
    type: str          # base type, e.g. "Tensor", "int[]"
    optional: bool     # may be None
    mutated: bool      # written by the op, `Tensor(a!)`
    kwonly: bool
    variadic: bool     # `int[]...`
    has_default: bool
    default: object = None

    @property
    def is_tensor(self) -> bool:
        return self.type.startswith("Tensor")


@dataclass(frozen=True)
class Schema:
    name: str
    args: tuple
    returns: str

    @property
    def tensor_args(self) -> tuple:
        return tuple(a for a in self.args if a.is_tensor)

    @property
    def mutated(self) -> tuple:
        return tuple(a for a in self.args if a.mutated)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(_fmt(a) for a in self.args)}) -> {self.returns}"


def _fmt(a: Arg) -> str:
    t = a.type + ("(a!)" if a.mutated else "") + ("?" if a.optional else "") + ("..." if a.variadic else "")
    return f"{t} {a.name}" + (f"={a.default!r}" if a.has_default else "")


def _split_args(text: str) -> list:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


def parse_schema(text: str) -> Schema:
    m = _HEAD.match(text)
    if not m:
        raise ValueError(f"malformed op schema {text!r}; expected 'name(Type arg, ...) -> Return'")
    name, body, returns = m.groups()
    args, kwonly = [], False
    for part in _split_args(body):
        if part == "*":
            kwonly = True
            continue
        decl, _, default_text = part.partition("=")
        pieces = decl.split()
        if len(pieces) != 2:
            raise ValueError(f"malformed argument {part!r} in schema {text!r}; expected 'Type name[=default]'")
        type_, argname = pieces
        variadic = type_.endswith("...")
        type_ = type_.removesuffix("...")
        optional = type_.endswith("?") and not type_.endswith("?[]")
        type_ = type_.removesuffix("?") if optional else type_
        mutated = "(a!)" in type_
        type_ = type_.replace("(a!)", "")
        if type_ not in _TYPES:
            raise ValueError(f"unknown type {type_!r} for argument {argname!r} in schema {text!r}; "
                             f"known types: {sorted(_TYPES)}")
        has_default = bool(default_text.strip())
        default = None
        if has_default:
            try:
                default = ast.literal_eval(default_text.strip())
            except (ValueError, SyntaxError):
                raise ValueError(f"default {default_text.strip()!r} of {argname!r} is not a Python literal") from None
            if isinstance(default, list):
                default = tuple(default)
        args.append(Arg(argname, type_, optional, mutated, kwonly, variadic, has_default, default))
    return Schema(name, tuple(args), returns)

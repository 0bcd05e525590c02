"""`RemovableHandle`: what every `register_*_hook` returns (modules, optimizers, autograd nodes and
tensors), as `torch.utils.hooks.RemovableHandle`."""
from __future__ import annotations

import itertools
import weakref

__all__ = ["RemovableHandle", "args_from_hook"]


def _ref(d):
    """A weak reference where the dict takes one (so a handle does not keep its owner's hooks alive),
    else a strong one (a plain dict, e.g. the process-wide optimizer hooks)."""
    try:
        return weakref.ref(d)
    except TypeError:
        return lambda: d


class RemovableHandle:
    """`.remove()` unregisters the hook from its dict (and from `extra_dict`, the tables that hold
    per-hook flags); also a context manager that removes it on exit."""

    __slots__ = ("hooks_dict_ref", "extra_dict_ref", "id")
    _ids = itertools.count()

    def __init__(self, hooks_dict, *, extra_dict=None):
        self.hooks_dict_ref = _ref(hooks_dict)
        self.id = next(RemovableHandle._ids)
        if extra_dict is None:
            extra = ()
        elif isinstance(extra_dict, (list, tuple)):
            extra = tuple(extra_dict)
        else:
            extra = (extra_dict,)
        self.extra_dict_ref = tuple(_ref(d) for d in extra)

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            d = ref()
            if d is not None:
                d.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def __repr__(self) -> str:
        return f"<RemovableHandle id={self.id}>"


def args_from_hook(result, args, kwargs, hook):
    """What a pre-hook returned: None keeps `(args, kwargs)`, a pair replaces them; anything else is
    an error naming the hook (modules' forward pre-hooks with kwargs and optimizers' step pre-hooks)."""
    if result is None:
        return args, kwargs
    if not (isinstance(result, tuple) and len(result) == 2):
        raise RuntimeError(f"{hook} must return None or a tuple of (new_args, new_kwargs), but got {result!r}")
    return result

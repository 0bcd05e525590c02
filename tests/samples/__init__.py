"""The sample-input table: importing this package imports every family file `tests/samples/<family>.py`
(each registers its OpInfos) and exposes the filled `REGISTRY` (op name -> OpInfo).

Family files are found by listing this folder, so a new family needs no edit here; modules whose
name starts with `_` (`_core`, `_convert`) are the table's machinery, not families.
"""
import importlib
import pkgutil

from ._core import REGISTRY, ErrorSample, OpInfo, Sample, register

__all__ = ["REGISTRY", "ErrorSample", "OpInfo", "Sample", "register", "FAMILIES"]

FAMILIES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

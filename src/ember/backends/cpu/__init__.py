"""The CPU backend: NumPy kernels registered into the op table on import (and, on glibc, freed memory kept
for reuse: `_malloc`)."""
from ._malloc import keep_freed_memory
from . import creation, elementwise, random, reduction, scan, linalg, indexing, shape, sort  # noqa: F401
from . import normalization, loss, attention, optim, rotary, rnn  # noqa: F401

keep_freed_memory()

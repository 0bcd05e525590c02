"""The CPU backend: NumPy kernels registered into the op table on import."""
from . import creation, elementwise, random, reduction, scan, linalg, indexing, shape, sort  # noqa: F401
from . import normalization, loss, attention, optim  # noqa: F401

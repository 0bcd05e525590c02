"""The CPU backend: NumPy kernels registered into the op table on import."""
from . import creation, elementwise, random, reduction, linalg, indexing, shape, normalization, loss  # noqa: F401
from . import attention, optim  # noqa: F401

"""ember: a deep-learning engine in Python, from a PyTorch-shaped API down to GPU kernels."""
from __future__ import annotations

__version__ = "0.1.0"

from .core.dtype import (  # noqa: F401
    dtype, bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64,
    get_default_dtype, set_default_dtype, promote_types, result_type, can_cast,
)
from .core.device import device  # noqa: F401
from .core.layout import (  # noqa: F401
    memory_format, preserve_format, contiguous_format, channels_last, channels_last_3d)
from .core.storage import Storage  # noqa: F401
from ._tensor import Tensor, Size  # noqa: F401
from . import ops  # noqa: F401  (declares every op and attaches Tensor methods)
from . import backends  # noqa: F401
from .backends import cpu as _cpu_backend  # noqa: F401  (registers the CPU kernels)
from .dispatch import OPS as _OPS
from .ops.creation import (  # noqa: F401
    tensor, as_tensor, from_numpy, zeros, ones, full, empty, zeros_like, ones_like, full_like, empty_like,
    arange, linspace, eye, scalar_tensor, empty_strided,
)
from .ops.random import (  # noqa: F401
    rand, randn, randint, randperm, rand_like, randn_like, randint_like, normal, bernoulli, multinomial,
)
from .ops.reduction import max, min, aminmax, var_mean, std_mean, return_types  # noqa: F401,A004
from .ops.indexing import nonzero  # noqa: F401
from .ops.view import (  # noqa: F401
    flatten, unflatten, narrow, movedim, unbind, split, chunk, t, broadcast_to,
)
from . import autograd, library  # noqa: F401
from .autograd import no_grad, enable_grad, set_grad_enabled, inference_mode, is_grad_enabled  # noqa: F401
from . import optim  # noqa: F401
from .serialization import save, load  # noqa: F401
from .random import Generator, manual_seed, seed, initial_seed, default_generator, get_rng_state, set_rng_state  # noqa: F401

float = float32  # noqa: A001 - PyTorch's aliases
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16
uint8 = uint8

# Every op declared without a leading underscore is also `ember.<name>`, as in PyTorch.
for _name, _op in list(_OPS.items()):
    if not _name.startswith("_") and "::" not in _name and _name not in globals():
        globals()[_name] = _op.fn
del _name, _op

reshape = _OPS["reshape"].fn
swapaxes = swapdims = _OPS["transpose"].fn
moveaxis = movedim
from . import nn  # noqa: F401,E402
from . import utils, datasets  # noqa: F401,E402  (ember.utils.data, ember.datasets)
from .utils.dlpack import from_dlpack  # noqa: F401,E402  (also attaches Tensor.__dlpack__)
from .backends.cuda import tensor as _cuda_tensor, tensor_methods as _cuda_methods, elementwise as _cuda_ew  # noqa: F401,E402,E501
from .backends.cuda import reduction as _cuda_reduction, linalg as _cuda_linalg, indexing as _cuda_indexing  # noqa: F401,E402,E501
from .backends.cuda import scan as _cuda_scan, sort as _cuda_sort, random as _cuda_random  # noqa: F401,E402
from .backends.cuda import creation as _cuda_creation, shape as _cuda_shape  # noqa: F401,E402
from .backends.cuda import normalization as _cuda_norm, optim as _cuda_optim, loss as _cuda_loss  # noqa: F401,E402
from .backends.cuda import attention as _cuda_attention, rotary as _cuda_rotary, rnn as _cuda_rnn  # noqa: F401,E402
from . import cuda  # noqa: F401,E402
from . import profiler  # noqa: F401,E402
from . import distributed  # noqa: F401,E402  (mpi4py is imported when a process group starts)
from . import amp  # noqa: F401,E402
from .amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: F401,E402
from .cuda import amp as _cuda_amp  # noqa: F401,E402  (ember.cuda.amp)
from . import distributions  # noqa: F401,E402  (ember.distributions)

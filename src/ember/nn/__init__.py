"""`ember.nn`: modules, parameters, `functional` and `init`, with PyTorch's API."""
from .parameter import Parameter, Buffer  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import (  # noqa: F401
    Module, Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict, Identity, Linear, Bilinear,
    Embedding, LayerNorm, RMSNorm, GroupNorm, Dropout, ReLU, GELU, SiLU, Tanh, Sigmoid, Softmax, LogSoftmax,
    LeakyReLU, Softplus, ELU, Mish, ReLU6, Hardtanh, MultiheadAttention, Conv1d, Conv2d, TransformerEncoderLayer,
    TransformerEncoder, TransformerDecoderLayer, TransformerDecoder, Transformer, CrossEntropyLoss, NLLLoss,
    MSELoss, L1Loss, SmoothL1Loss, BCELoss, BCEWithLogitsLoss,
    Flatten, Unflatten, RNNBase, RNN, LSTM, GRU, RNNCellBase, RNNCell, LSTMCell, GRUCell, RotaryEmbedding,
)
from . import functional, init  # noqa: F401
from . import utils  # noqa: F401,E402  (clip_grad_norm_ etc.)
from . import parallel  # noqa: F401,E402  (DistributedDataParallel)

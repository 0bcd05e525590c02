"""The layer classes of `ember.nn` (re-exported there)."""
from .module import Module, RemovableHandle  # noqa: F401
from .container import Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict  # noqa: F401
from .linear import Identity, Linear, NonDynamicallyQuantizableLinear, Bilinear  # noqa: F401
from .sparse import Embedding  # noqa: F401
from .rotary import RotaryEmbedding  # noqa: F401
from .normalization import LayerNorm, RMSNorm, GroupNorm  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .activation import (  # noqa: F401
    ReLU, GELU, SiLU, Tanh, Sigmoid, Softmax, LogSoftmax, LeakyReLU, Softplus, ELU, Mish, ReLU6, Hardtanh,
    MultiheadAttention,
)
from .conv import Conv1d, Conv2d  # noqa: F401
from .transformer import (  # noqa: F401
    Transformer, TransformerEncoderLayer, TransformerEncoder, TransformerDecoderLayer, TransformerDecoder,
)
from .loss import CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, BCELoss, BCEWithLogitsLoss  # noqa: F401
from .flatten import Flatten, Unflatten  # noqa: F401
from .rnn import RNNBase, RNN, LSTM, GRU, RNNCellBase, RNNCell, LSTMCell, GRUCell  # noqa: F401

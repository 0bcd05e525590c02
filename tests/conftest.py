import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # tests/helpers.py

import torch  # noqa: E402

# torch's thread pool costs ~0.8 ms per call on tiny tensors; one thread keeps the suite fast
torch.set_num_threads(1)

"""`ember.utils.data`: datasets, samplers, collation and the DataLoader, shaped like `torch.utils.data`."""
from .collate import collate, default_collate, default_convert  # noqa: F401
from .dataloader import DataLoader  # noqa: F401
from .pin_memory import register_pin_memory  # noqa: F401  (a backend that page-locks host memory registers)
from .dataset import (  # noqa: F401
    ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split,
)
from .sampler import (  # noqa: F401
    BatchSampler, DistributedSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)
from .worker import WorkerInfo, get_worker_info  # noqa: F401

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset", "random_split",
           "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler", "DistributedSampler", "DataLoader", "default_collate", "default_convert", "collate",
           "get_worker_info", "WorkerInfo"]

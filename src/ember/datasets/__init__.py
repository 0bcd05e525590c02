"""`ember.datasets`: data sets read from local files (never downloaded) and a synthetic task.

Paths come from a `root` argument or the EMBER_DATA environment variable; a missing file raises
FileNotFoundError naming the path expected.
"""
from . import transforms  # noqa: F401
from .reversal import ReversalDataset, sequence_accuracy  # noqa: F401
from .root import data_path, data_root  # noqa: F401
from .text import BPETokenizer, CharTokenizer, TextDataset  # noqa: F401
from .vision import CIFAR10, IMG_EXTENSIONS, ImageFolder, pil_loader  # noqa: F401

__all__ = ["ReversalDataset", "sequence_accuracy", "CharTokenizer", "BPETokenizer", "TextDataset", "CIFAR10",
           "ImageFolder", "IMG_EXTENSIONS", "pil_loader", "transforms", "data_path", "data_root"]

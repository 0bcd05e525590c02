"""`ember.utils`: data loading (`ember.utils.data`), DLPack interchange (`ember.utils.dlpack`) and other
user-facing helpers."""
from . import data, dlpack  # noqa: F401

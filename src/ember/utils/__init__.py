"""`ember.utils`: data loading (`ember.utils.data`) and other user-facing helpers."""
from . import data  # noqa: F401

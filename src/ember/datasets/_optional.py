"""The optional libraries of the data sets (`tokenizers`, Pillow): imported when first needed."""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def optional_library(needed_by: str, library: str, pip_name: str):
    """Turns an ImportError of the imports in the block into one saying that `needed_by` needs the optional
    `library` and how to install it."""
    try:
        yield
    except ImportError:
        raise ImportError(f"{needed_by} needs the optional {library} library, which is not installed; "
                          f"install it with `pip install {pip_name}`") from None

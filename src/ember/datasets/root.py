"""Where data sets live: an explicit `root` argument, else the EMBER_DATA environment variable.

ember never downloads anything: a missing file is an error that names the path it expected.
"""
from __future__ import annotations

import os

__all__ = ["data_root", "data_path", "missing"]

ENV = "EMBER_DATA"


def data_root(root=None) -> str:
    """`root` if given, else `$EMBER_DATA`; a FileNotFoundError when neither is set."""
    if root is None:
        root = os.environ.get(ENV)
        if not root:
            raise FileNotFoundError(f"no data directory given: pass root=... or set the {ENV} environment variable "
                                    f"to the folder holding the data sets (ember never downloads data)")
    return os.fspath(root)


def data_path(*parts: str, root=None) -> str:
    """`os.path.join(data_root(root), *parts)`, which must exist."""
    path = os.path.join(data_root(root), *parts)
    if not os.path.exists(path):
        raise missing(path, "data file")
    return path


def missing(path: str, what: str, hint: str = "") -> FileNotFoundError:
    msg = f"{what} not found: expected {path}"
    if hint:
        msg += f" ({hint})"
    return FileNotFoundError(msg + f"; pass root=... or set {ENV}. ember never downloads data.")

"""Op table, schemas and the dispatcher."""
from .registry import OPS, Op, defop, get_op, install_autograd
from .schema import parse_schema

__all__ = ["OPS", "Op", "defop", "get_op", "install_autograd", "parse_schema"]

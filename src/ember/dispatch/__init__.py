"""Op table, schemas and the dispatcher."""
from .registry import OPS, PROFILER, Op, defop, get_op, install_autograd, set_profiling
from .schema import parse_schema

__all__ = ["OPS", "Op", "defop", "get_op", "install_autograd", "parse_schema", "PROFILER", "set_profiling"]

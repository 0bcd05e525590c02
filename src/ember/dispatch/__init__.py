"""Op table, schemas and the dispatcher."""
from .registry import OPS, PROFILER, Op, defop, get_op, install_autograd, pop_op_hook, push_op_hook
from .schema import parse_schema

__all__ = ["OPS", "Op", "defop", "get_op", "install_autograd", "parse_schema", "PROFILER", "push_op_hook", "pop_op_hook"]

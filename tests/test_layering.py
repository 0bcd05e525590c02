"""Arrows only go down: import rules between ember's layers, read from the source (ast), so that
function-local imports count too.

- No module under backends/cuda uses a private name (one with a leading underscore, or from a
  private module) of backends/cpu, and the reverse: rules both backends share are public names
  in ops/ or core/.
- The dispatcher does not import autograd (autograd hands its recorder to the dispatcher).
- ember never imports torch.
- backends/cuda/capture.py (capture state) is a leaf: it imports nothing from the CUDA backend.
- backends/cuda/launch.py does not import compiler.py (compiler is above launch).
- The Triton kernels name their op codes (backends/cuda/opcodes.py), never bare numbers.
"""
import ast
import pathlib
import re

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
ROOT = SRC / "ember"

# The one place ember imports torch: the Triton interpreter's bridge (its kernels take torch tensors),
# reached only with TRITON_INTERPRET=1 and CPU tensors, i.e. by the CI tests of the CUDA kernels.
TORCH_ALLOWED = {("ember.backends.cuda.compiler", "_torch_view")}


def _modules():
    """(dotted module name, is_package, path, parsed tree) for every module under src/ember."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out.append((".".join(parts), is_pkg, path, ast.parse(path.read_text(), str(path))))
    return out


MODULES = _modules()
NAMES = {m for m, _, _, _ in MODULES}


def _base(module, is_pkg, node):
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if not node.level:
        return node.module
    pkg = module.split(".") if is_pkg else module.split(".")[:-1]
    pkg = pkg[:len(pkg) - (node.level - 1)]
    return ".".join(pkg + ([node.module] if node.module else []))


def _imports(module, is_pkg, tree):
    """(line, imported module, imported name or None, enclosing function) for every import, nested ones too.
    `from pkg import sub` where sub is a module gives (pkg.sub, None)."""
    found = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            f = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Import):
                for a in child.names:
                    found.append((child.lineno, a.name, None, func, a.asname or a.name.split(".")[0]))
            elif isinstance(child, ast.ImportFrom):
                base = _base(module, is_pkg, child)
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    if sub in NAMES:
                        found.append((child.lineno, sub, None, func, a.asname or a.name))
                    else:
                        found.append((child.lineno, base, a.name, func, a.asname or a.name))
            visit(child, f)

    visit(tree, None)
    return found


def _private(dotted: str) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in dotted.split("."))


def _private_uses(module, is_pkg, path, tree, other):
    """Where `module` uses a private name of package `other`: imported by name, or read as an
    attribute of a module of `other` bound to a local name."""
    bad = []
    aliases = {}    # local name -> the module of `other` it is bound to
    for line, mod, name, _, local in _imports(module, is_pkg, tree):
        if mod == other or mod.startswith(other + "."):
            what = mod if name is None else f"{mod}.{name}"
            if _private(what[len(other):]):
                bad.append(f"{path.relative_to(SRC)}:{line} imports {what}")
            if name is None:
                aliases[local] = mod
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            if _private(node.attr):
                bad.append(f"{path.relative_to(SRC)}:{node.lineno} reads {aliases[node.value.id]}.{node.attr}")
    return bad


def test_backends_use_no_private_name_of_each_other():
    pairs = (("ember.backends.cuda", "ember.backends.cpu"), ("ember.backends.cpu", "ember.backends.cuda"))
    bad = []
    for mine, other in pairs:
        for module, is_pkg, path, tree in MODULES:
            if module == mine or module.startswith(mine + "."):
                bad += _private_uses(module, is_pkg, path, tree, other)
    assert not bad, "a backend uses the other backend's private names (make the rule a public name in " \
                    "ember/ops or ember/core):\n" + "\n".join(bad)


def test_dispatch_does_not_import_autograd():
    bad = [f"{path.relative_to(SRC)}:{line} imports {mod}" + (f".{name}" if name else "")
           for module, is_pkg, path, tree in MODULES if module.startswith("ember.dispatch")
           for line, mod, name, _, _ in _imports(module, is_pkg, tree)
           if mod == "ember.autograd" or mod.startswith("ember.autograd.")]
    assert not bad, "the dispatcher imports autograd (autograd installs its recorder instead):\n" + "\n".join(bad)


def test_ember_never_imports_torch():
    found = [(module, func, f"{path.relative_to(SRC)}:{line}")
             for module, is_pkg, path, tree in MODULES
             for line, mod, _, func, _ in _imports(module, is_pkg, tree)
             if mod == "torch" or mod.startswith("torch.")]
    bad = [where for module, func, where in found if (module, func) not in TORCH_ALLOWED]
    assert not bad, "ember imports torch:\n" + "\n".join(bad)
    # the allowance is still needed (else drop it)
    assert {(m, f) for m, f, _ in found} == TORCH_ALLOWED


def _imports_of(module):
    (is_pkg, tree), = [(p, t) for m, p, _, t in MODULES if m == module]
    return [(line, mod) for line, mod, _, _, _ in _imports(module, is_pkg, tree)]


def test_capture_state_is_a_leaf():
    imports = _imports_of("ember.backends.cuda.capture")
    bad = [f"line {line}: {mod}" for line, mod in imports if mod.startswith("ember.")]
    assert not bad, "backends/cuda/capture.py must import nothing from ember:\n" + "\n".join(bad)
    users = {m for m, p, _, t in MODULES for _, mod, _, _, _ in _imports(m, p, t)
             if mod == "ember.backends.cuda.capture"}
    assert {"ember.backends.cuda.graphs", "ember.backends.cuda.checks", "ember.backends.cuda.memory"} <= users


def test_launch_is_below_compiler():
    assert [mod for _, mod in _imports_of("ember.backends.cuda.compiler") if mod == "ember.backends.cuda.launch"]
    bad = [f"line {line}" for line, mod in _imports_of("ember.backends.cuda.launch")
           if mod == "ember.backends.cuda.compiler"]
    assert not bad, "backends/cuda/launch.py imports compiler.py, which imports it: " + ", ".join(bad)


# a constexpr that picks an operation or a type, compared with a bare number
_BARE_CODE = re.compile(r"\b(OP|MODE|CK|POST|MERGE|OUT|WRAP|MASK|RED|WD|DIST|KIND)\s*(==|!=|>=|<=|<|>)\s*\d")


def test_kernels_name_their_op_codes():
    """The Triton kernels compare op and type codes with `opcodes` members, never bare numbers, so
    that the host code and the kernels share one table (backends/cuda/opcodes.py)."""
    bad = []
    for path in sorted((ROOT / "backends" / "cuda" / "kernels").glob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if _BARE_CODE.search(code) and not code.lstrip().startswith(('"', "'")):
                bad.append(f"{path.name}:{n}: {line.strip()}")
    assert not bad, "bare op codes in kernels (use backends/cuda/opcodes.py):\n" + "\n".join(bad)


def test_op_code_tables_are_complete():
    """Every member of an op-code enum is distinct within its enum, and the fingerprint covers them."""
    import enum

    from ember.backends.cuda import opcodes
    enums = [v for v in vars(opcodes).values() if isinstance(v, type) and issubclass(v, enum.IntEnum)
             and v is not enum.IntEnum]
    assert len(enums) >= 10
    for e in enums:
        values = [int(m) for m in e.__members__.values()]     # aliases included
        assert len(values) == len(set(values)), f"{e.__name__} has members with the same value (aliases)"
    assert len(opcodes.FINGERPRINT) == 64


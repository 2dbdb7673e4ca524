"""The shape of model/: no import cycles, and Bragg's law written once (one NumPy function, one torch twin)."""

import ast
from pathlib import Path

MODEL = Path(__file__).resolve().parents[1] / "model"


def _module_name(path: Path) -> str:
    parts = path.relative_to(MODEL.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(MODEL.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The model modules ``name`` imports anywhere in its file (module level, inside functions,
    under TYPE_CHECKING): ``from model import x`` counts as model.x where that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_cycle_finder_sees_a_cycle_hidden_in_a_function(tmp_path):
    graph = {"model.a": {"model.b"}, "model.b": {"model.c"}, "model.c": {"model.a"}, "model.d": set()}
    assert _cycle(graph) == ["model.a", "model.b", "model.c", "model.a"]
    source = tmp_path / "model" / "b.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from model.a import g\n    from . import c\n")
    assert _imports("model.b", source, {"model.a", "model.b", "model.c"}) == {"model.a", "model.c"}


def test_model_has_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert _cycle(graph) is None, " → ".join(_cycle(graph))


def test_braggs_law_is_written_once():
    """arcsin appears in one NumPy function (model.instrument) and one torch twin (model.simulate)."""
    where = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(), str(path))
        enclosing = {}
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for inner in ast.walk(function):
                enclosing[inner] = function.name  # walked outside in: the innermost function wins
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            callee = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            if callee in ("arcsin", "asin"):
                where.append(f"{name}.{enclosing.get(call, '<module>')}")
    assert sorted(where) == ["model.instrument.bragg_theta", "model.simulate.bragg_theta_torch"]

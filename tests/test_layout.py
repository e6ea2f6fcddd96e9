"""The package's import graph has no cycle, counting imports inside functions too: a function-local import
may defer a heavy dependency, never dodge a cycle. Every folder says in its docstring what it owns."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rnnexp"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, known: set[str]) -> set[str]:
    """rnnexp modules an AST imports at run time (``if TYPE_CHECKING:`` blocks never run)."""
    found: set[str] = set()
    type_checking = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    known = set(files)
    graph = {}
    for name, path in files.items():
        targets = imported_modules(ast.parse(path.read_text(encoding="utf-8")), known)
        # Importing a.b.c runs a/__init__ and a/b/__init__ first, except those that are this module's own
        # packages: Python has started them before this module.
        own = set(parents(name))
        graph[name] = {p for target in targets for p in parents(target) if p in known} - own - {name}
    return graph


def parents(name: str) -> list[str]:
    """``rnnexp.a.b`` -> ``[rnnexp.a, rnnexp.a.b]``: what importing it runs, below the top package."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(1, len(parts))]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = "open", stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node], _ = "done", stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_folder_of_the_package_says_what_it_owns():
    folders = sorted(p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert {p.name for p in folders} >= {"data", "lifecycle", "models", "sweeps", "tasks"}
    for folder in folders:
        docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
        assert docstring and len(docstring.split()) >= 8, f"{folder.name}/__init__.py needs a docstring"


def test_the_top_level_holds_only_entry_points():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= {"__init__", "errors", "training", "run", "generate", "review", "translate", "predict"}

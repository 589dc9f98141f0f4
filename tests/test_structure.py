"""The shape of osilab/: data flows one way, with no loops, read from the source with ``ast``.

docs/architecture.md draws the stages; this test keeps the code true to the drawing. It
reads every module of osilab/ (nothing is imported or run) and fails on:

* an import loop among osilab's modules (imports inside functions count: they loop at run
  time all the same; ``if TYPE_CHECKING:`` imports do not, they never run);
* an import that runs back up the stage order (a stage may use the stages before it, never
  one after it: the design is telling you to move the shared idea down);
* an analysis stage importing the lab (the lab writes data files; analysis reads them);
* ``except ImportError`` around an import of osilab itself (our own modules are always there);
* a module over 800 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "osilab"
MAX_LINES = 800

#: Stage of each top-level part of the package: an import may go to the same or a lower stage.
STAGES = {
    "errors": 0, "layers": 0, "_progress": 0,
    "capture": 1,
    "streams": 2,
    "protocols": 3,
    "pipeline": 4,
    "balancers": 5,
    "journey": 6, "viz": 6, "lessons": 6,
    "lab": 7,
    "commands": 8, "cli": 8,
    "__init__": 9, "__main__": 9,
}  # fmt: skip
ANALYSIS = {"capture", "streams", "protocols", "pipeline", "balancers", "journey", "viz", "lessons"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ("osilab",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _part(module: str) -> str:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else "__init__"


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The osilab modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
        names = subs + ([base] if len(subs) < len(node.names) else [])
    out = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("osilab"):
            out.append(name)
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
                edges.update(t for t in _targets(module, node) if t != module)
        graph[module] = edges
    return graph


GRAPH = _graph()


def _is_package_of(a: str, b: str) -> bool:
    """Importing a submodule runs its package's __init__: that edge is not a loop of ours."""
    return b.startswith(a + ".")


def test_no_import_loops() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in GRAPH.get(node, ()):
            if _is_package_of(succ, node):
                continue
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not loops, f"import loops among osilab's modules: {loops}"


def test_no_import_runs_back_up_the_stages() -> None:
    back = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if STAGES[_part(target)] > STAGES[_part(module)]
    ]
    assert not back, "imports from a later stage (move the shared idea down):\n" + "\n".join(
        sorted(back)
    )


def test_analysis_never_imports_the_lab() -> None:
    bad = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _part(module) in ANALYSIS and _part(target) == "lab"
    ]
    assert not bad, bad


def test_no_import_guards_around_our_own_modules() -> None:
    guarded = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Try):
                continue
            catches = " ".join(ast.unparse(h.type) for h in node.handlers if h.type is not None)
            if "ImportError" not in catches and "ModuleNotFoundError" not in catches:
                continue
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, ast.Import | ast.ImportFrom) and _targets(module, sub):
                        guarded.append(f"{path.relative_to(ROOT.parent)}:{sub.lineno}")
    assert not guarded, f"except ImportError around osilab's own modules: {guarded}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_the_line_limit(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[module]} has {lines} lines (at most {MAX_LINES})"


def test_the_walker_sees_a_back_edge_and_a_loop() -> None:
    """The checks above would pass on an empty graph: show they read real imports."""
    assert "osilab.capture" in GRAPH["osilab"]
    assert any(t.startswith("osilab.pipeline") for t in GRAPH["osilab.balancers.replay"])
    fake = ast.parse("from osilab.lab import record\n")
    node = fake.body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _targets("osilab.viz", node) == ["osilab.lab.record"]

"""The project's modules import in one direction: no cycles anywhere, and each automations
module only from the layers below it (trigger model, evaluation, state, actions, service).

Imports are read from the source with `ast`, function-level ones included: an import moved into a
function still ties the two modules together, it only hides the cycle from Python's loader.
Imports under `if TYPE_CHECKING:` are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "eventfeed"

# Bottom to top. A module may import the modules of the layers below its own, and those listed
# before it in its own layer; nothing above. A new module must be placed here.
AUTOMATIONS = "eventfeed.automations"
AUTOMATION_LAYERS: list[tuple[str, list[str]]] = [
    ("rows", ["models", "exchanges", "notify", "wakeup"]),
    ("trigger model", ["triggers", "action_specs", "describe"]),
    ("evaluation", ["metrics", "core", "explain", "records"]),
    ("state", ["store", "engine", "catchup", "replay", "preview", "debugging"]),
    ("actions", ["actions"]),
    ("service", ["service"]),
    ("pages and API", ["masking", "forms", "detail", "views", "debug_views", "api", "api_debug", "consumers", "routing", "urls",
                       "templatetags.automations", "management.commands.bench_replay",
                       "management.commands.run_automations", "apps"]),
]
# The one filter, in its parts (bottom to top): each imports only those before it.
FILTER_ORDER = ["eventfeed.events.patterns", "eventfeed.events.problems", "eventfeed.events.schema",
                "eventfeed.events.models", "eventfeed.events.ingest", "eventfeed.events.filter_sql",
                "eventfeed.events.filters", "eventfeed.events.filter_parsers", "eventfeed.events.filtersets"]


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports_of(name: str, source: str, modules: set[str], *, package: bool = False) -> list[tuple[str, int]]:
    """(imported project module, line) for every import in the source, at any depth."""
    found: list[tuple[str, int]] = []

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            # `from . import core` imports the module core; `from .core import x` the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            targets = []
        for target in targets:
            module = resolve(target)
            if module is not None and module != name:
                found.append((module, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def import_graph(root: Path = ROOT) -> dict[str, list[tuple[str, int]]]:
    modules = project_modules(root)
    return {
        name: imports_of(name, path.read_text(), set(modules), package=path.name == "__init__.py")
        for name, path in modules.items()
    }


def cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph.get(v, []):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def upward_imports(graph: dict[str, list[tuple[str, int]]], order: dict[str, int]) -> list[str]:
    """Imports from a module to one at its own place in `order` or above it."""
    return [
        f"{name}:{line} imports {target}"
        for name, targets in sorted(graph.items()) if name in order
        for target, line in targets if target in order and order[target] >= order[name]
    ]


def automation_order() -> dict[str, int]:
    names = [f"{AUTOMATIONS}.{module}" for _, modules in AUTOMATION_LAYERS for module in modules]
    return {name: i for i, name in enumerate(names)}


def test_it_finds_no_import_cycle_in_the_project():
    graph = import_graph()
    found = cycles(graph)
    where = [f"{name}:{line} imports {target}" for component in found for name in component
             for target, line in graph[name] if target in component]
    assert not found, "import cycles:\n" + "\n".join(where)


def test_it_places_every_automations_module_in_a_layer():
    packages = {AUTOMATIONS, f"{AUTOMATIONS}.management", f"{AUTOMATIONS}.management.commands", f"{AUTOMATIONS}.templatetags"}
    modules = {name for name in project_modules() if name.startswith(AUTOMATIONS)} - packages
    assert modules - set(automation_order()) == set(), "add these to AUTOMATION_LAYERS"
    assert set(automation_order()) - modules == set(), "AUTOMATION_LAYERS names modules that do not exist"


def test_it_keeps_every_automations_module_importing_downward_only():
    assert upward_imports(import_graph(), automation_order()) == []


def test_it_keeps_the_filters_parts_in_order():
    assert upward_imports(import_graph(), {name: i for i, name in enumerate(FILTER_ORDER)}) == []


def test_it_sees_a_cycle_hidden_in_a_function_and_an_upward_import(tmp_path):
    """The checks above can fail: a function-level import that closes a cycle is seen."""
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def later():\n    from . import high\n    return high\n")
    (package / "high.py").write_text("from .low import later\n")
    (package / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import high\n")
    graph = import_graph(tmp_path)
    assert graph["eventfeed.low"] == [("eventfeed.high", 2)]
    assert graph["eventfeed.typed"] == []
    assert cycles(graph) == [["eventfeed.high", "eventfeed.low"]]
    assert upward_imports(graph, {"eventfeed.low": 0, "eventfeed.high": 1}) == ["eventfeed.low:2 imports eventfeed.high"]

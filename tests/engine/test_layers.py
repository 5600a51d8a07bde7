"""The engine's packages import only the packages below them, and no module imports itself through
others: every import counts, the type-only and function-local ones too (docs/configuration.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "llada_cli" / "engine"
# top to bottom; "" is the engine's own modules (errors, options, config, ...); figures stands apart
LAYERS = [
    "training", "evaluation", "interchange", "data", "runs", "sampling", "objectives", "runtime", "model", "",
]  # fmt: skip
APART = {"figures": {""}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ENGINE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each engine module (dotted, relative to engine) and the engine modules it imports."""
    found: dict[str, set[str]] = {}
    modules = {module_name(p) for p in ENGINE.rglob("*.py")}
    for path in ENGINE.rglob("*.py"):
        name = module_name(path)
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
                candidates = [f"{target}.{alias.name}".strip(".") for alias in node.names]
                targets |= {c for c in candidates if c in modules} or {target}
        found[name] = {t for t in targets if t != name}
    return found


def package(module: str) -> str:
    return module.split(".")[0] if "." in module or (ENGINE / module).is_dir() else ""


def test_packages_import_only_the_layers_below():
    wrong = []
    for module, targets in imports().items():
        here = package(module)
        allowed = APART.get(here) or set(LAYERS[LAYERS.index(here) :])
        wrong += [f"{module} -> {t}" for t in sorted(targets) if package(t) not in allowed | {here}]
    assert wrong == []


def test_no_module_imports_itself_through_others():
    graph = imports()
    cycles, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []

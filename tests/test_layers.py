"""The house's rules on imports, checked on the source: no cycles, and each layer imports only
the layers below it (docs/architecture.md, "What may import what")."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PKG = "cloudshift"

# A layer and the cloudshift packages (first name under cloudshift.) it may import besides
# itself. Everything not named here (cli/, api, demo, the kinds' list) sits on top.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "jobs": {"core"},
    "catalog": {"core"},
    "storage": {"core"},
    "transfer": {"core", "jobs", "storage"},
    "db": {"core", "jobs"},
    "cost": {"core", "jobs", "catalog", "storage", "transfer"},
    "assess": {"core", "catalog"},
    # What people and scripts see of every kind: it reads their events and results.
    "render": {"core", "jobs", "catalog", "storage", "transfer", "db", "cost", "assess"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / PKG).rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The cloudshift modules ``name`` imports anywhere in its body: lazy imports and those
    under TYPE_CHECKING too, since a cycle through them is still two modules that each need
    the other to be understood."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_pkg else anchor[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else None


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_each_layer_imports_only_what_is_below_it() -> None:
    wrong = []
    for module, imported in sorted(_graph().items()):
        layer = _layer(module)
        if layer not in ALLOWED:
            continue
        for target in sorted(imported):
            other = _layer(target)
            if other != layer and other not in ALLOWED[layer]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_checker_sees_a_cycle() -> None:
    # The rule must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

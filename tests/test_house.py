"""The generator's own house: no import cycles, a runtime that stands on its own, mypy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "codegen"
ABSOLUTE = "mf_temporal_codegen"
# the generator modules generated code and workers share with the runtime
RUNTIME_MAY_IMPORT = {"contract", "compensate", "cron"}


def _module(path: Path) -> str:
    """``render``, ``runtime.worker``, ``runtime`` (a package) or "" (the package)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    where = PACKAGE.joinpath(*module.split(".")) if module else PACKAGE
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _executed(tree: ast.AST) -> list[ast.AST]:
    """The nodes of ``tree`` but the bodies of ``if TYPE_CHECKING:`` (type-only imports)."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return found


def _imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports when it runs (also inside functions)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _executed(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - node.level + 1]
            targets = [".".join([*base, node.module])] if node.module else []
            targets += [
                ".".join([*base, a.name]) for a in node.names if not node.module
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            ABSOLUTE + "."
        ):
            targets = [node.module[len(ABSOLUTE) + 1 :]]
        else:
            continue
        for target in targets:
            # `from . import __version__` names an attribute: the package itself
            found.add(target if _exists(target) else target.rpartition(".")[0])
    return found


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import cycle per strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                group.append(item)
                if item == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]


def test_the_runtime_imports_no_generator_module():
    outside = {
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module == "runtime" or module.startswith("runtime.")
        for target in targets
        if not (target == "runtime" or target.startswith("runtime."))
        and target not in RUNTIME_MAY_IMPORT
    }
    assert outside == set()


def test_mypy_passes_on_the_package():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "codegen"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_source_is_formatted_and_linted():
    """The project's own code is black-formatted and ruff-clean, with the settings
    in pyproject.toml (flow files are left as written: tests cite their lines)."""
    for command in (
        ["black", "--check", "--quiet", "."],
        ["ruff", "check", "--quiet", "."],
    ):
        checked = subprocess.run(
            [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True
        )
        assert checked.returncode == 0, (command, checked.stdout + checked.stderr)

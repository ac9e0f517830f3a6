"""The package's shape, checked: no import cycle, modules of a readable size, configuration
resolved at the entry points only. See docs/architecture.md."""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "predelinq"
MAX_LINES = 450  # "about 400"


def _modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file for every module of the package at ``root``."""

    def name(path: Path) -> str:
        parts = path.relative_to(root.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    # Alembic revisions are loaded by Alembic, never imported
    return {name(path): path for path in sorted(root.rglob("*.py")) if "versions" not in path.parts}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of ``modules`` that ``name`` imports, anywhere in the file (a
    function-level import is still a dependency)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` depends on the module, `from module import name`
            # on the module
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycle(root: Path) -> list[str] | None:
    """A cycle in the import graph of the package at ``root``, or None."""
    modules = _modules(root)
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        return list(error.args[1])
    return None


MODULES = _modules(SRC)


def test_no_import_cycle() -> None:
    cycle = import_cycle(SRC)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_check_finds_a_cycle_through_a_bottom_of_file_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("def f():\n    return 1\n\nfrom pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("from . import a\n")
    (package / "c.py").write_text("from pkg.sub.a import f\n")
    assert import_cycle(package) is not None
    (package / "sub" / "a.py").write_text("def f():\n    return 1\n")
    assert import_cycle(package) is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it along a seam"


FALLBACKS = re.compile(r"or Settings\(\)|threads or ")


def test_settings_are_resolved_once() -> None:
    """No library code builds its own Settings or guesses a thread count: entry points build
    one Settings (which resolves ``threads``) and pass it down."""
    found = [
        f"{path.relative_to(SRC.parent)}:{number}: {line.strip()}"
        for path in MODULES.values()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if FALLBACKS.search(line)
    ]
    assert not found, "\n".join(found)

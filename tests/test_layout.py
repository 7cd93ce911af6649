"""The layout of kagura/observability/ is its architecture: imports flow one way.

docs/architecture.md draws the map. From the bottom up: errors.py and timespec.py,
then store/ (where runs are kept), analytics/ (where questions are answered),
eventstore.py (the facade: store/ plus the catalogue's methods), recording/ (where runs
are written) and render/ (how answers are shown). A module may import its own layer and
the layers below it, never one above: so the store can be read without the collector,
the catalogue without rich, and a renderer changed without touching what it shows.
Imports under `if TYPE_CHECKING:` are annotations, not dependencies, and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kagura" / "observability"

LAYERS = [
    ("base", ["kagura.observability.errors", "kagura.observability.timespec"]),
    ("store", ["kagura.observability.store"]),
    ("analytics", ["kagura.observability.analytics"]),
    ("eventstore", ["kagura.observability.eventstore"]),
    ("recording", ["kagura.observability.recording"]),
    ("render", ["kagura.observability.render"]),
]


def layer_of(module: str) -> int | None:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import outside `if TYPE_CHECKING:` blocks."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - child.level + 1] + [base]
                    )
                # `from pkg import module` imports the module when it is one.
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    if (ROOT / (candidate.replace(".", "/") + ".py")).exists() or (
                        ROOT / candidate.replace(".", "/") / "__init__.py"
                    ).exists():
                        found.append((child.lineno, candidate))
                    else:
                        found.append((child.lineno, base))
            visit(child)

    visit(tree)
    return found


def test_imports_between_the_folders_flow_one_way():
    upward = []
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        own = layer_of(name)
        if own is None:
            continue
        checked += 1
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for line, imported in runtime_imports(ast.parse(path.read_text()), package):
            target = layer_of(imported)
            if target is not None and target > own:
                upward.append(
                    f"{path.relative_to(ROOT)}:{line} ({LAYERS[own][0]}) imports "
                    f"{imported} ({LAYERS[target][0]})"
                )
            assert not imported.startswith(("kagura.cli", "kagura.synthetic")), (
                f"{path.relative_to(ROOT)}:{line}: the runtime imports {imported}"
            )
    assert checked >= 14, "the layers name no module: has the layout moved?"
    assert not upward, "imports that flow up the layers:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The walker finds imports inside functions and skips only TYPE_CHECKING blocks."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from kagura.observability.render.dashboard import Dashboard\n"
        "def f():\n"
        "    from kagura.observability.recording import collector\n"
    )
    imports = [m for _, m in runtime_imports(ast.parse(source), "kagura.observability.store")]
    assert "kagura.observability.recording.collector" in imports
    assert not any("render" in m for m in imports)
    assert layer_of("kagura.observability.recording.collector") > layer_of(
        "kagura.observability.store.tail"
    )


def test_the_old_flat_modules_are_gone():
    """One path per module: the flat names of before the layout do not import."""
    import importlib

    import pytest

    for old in ("model", "wal", "query", "collector", "dashboard", "fixtures", "sandbox"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"kagura.observability.{old}")

"""The layout holds: the import contracts in pyproject.toml, and a docstring in every room.

import-linter checks that tracker imports no model code, that training code outside the command
line sees only `tracker.interface` and `tracker.schema`, that tracker's subpackages are layered,
and that no two modules of either package import each other in a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(
    "package",
    sorted(
        str(p.parent.relative_to(ROOT))
        for top in ("tracker", "trainers")
        for p in (ROOT / top).rglob("__init__.py")
    ),
)
def test_every_package_says_what_it_owns(package):
    source = (ROOT / package / "__init__.py").read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring and len(docstring.split()) >= 5, f"{package} has no docstring"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("folder", ["tracker", "tests/tracker"])
def test_nothing_of_tracker_nor_its_tests_imports_trainers(folder):
    """The tracker's commands work with the core install: the training commands come in
    through the `newsdesk.commands` entry point, never an import."""
    importing = [
        str(path.relative_to(ROOT))
        for path in (ROOT / folder).rglob("*.py")
        if any(m == "trainers" or m.startswith("trainers.") for m in _imported_modules(path))
    ]
    assert not importing


def test_the_newsdesk_command_is_the_trackers_and_finds_the_training_commands():
    from importlib import metadata

    (script,) = [e for e in metadata.entry_points(group="console_scripts") if e.name == "newsdesk"]
    assert script.value == "tracker.cli:main"
    plugins = {e.name: e.value for e in metadata.entry_points(group="newsdesk.commands")}
    assert plugins == {"training": "trainers.cli:add_commands"}

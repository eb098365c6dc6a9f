"""The codebase's shape: a folder per stage, one module per job, each saying what it holds.

Checks anyone can run: every module is in the README's layout table (and every
row of the table is a module), every module and package has a docstring, the
test folders mirror the package's with no two test files of one name, and no
function runs over MAX_FUNCTION_LINES unless its docstring says why (a line
containing "Long because"). A module's length is not capped: it holds one job,
whatever its length (a cap had split modules along line counts, not jobs).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "deepclust"
MODULES = sorted(PACKAGE.rglob("*.py"))  # every module, each package's __init__.py included
MAX_FUNCTION_LINES = 60
# Not rows of the layout table: a package's __init__.py (its docstring says what the folder holds) and __main__.
NOT_IN_TABLE = {"__init__.py", "__main__.py"}


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_readme_layout_table_matches_the_tree():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Layout"):]
    section = section[:section.index("\n## ", 4)]
    listed = set(re.findall(r"^\| `(deepclust/[\w/]+\.py)` \|", section, flags=re.M))
    present = {_name(p) for p in MODULES if p.name not in NOT_IN_TABLE}
    assert listed == present, f"missing from the README: {present - listed}; not in the tree: {listed - present}"


def test_tests_mirror_the_package_folders_with_unique_names():
    """tests/<stage>/ for each deepclust/<stage>/ that has tests, and no two test files of one name (pytest imports
    them by name from every folder: conftest.py puts all of them on the path)."""
    tests = ROOT / "tests"
    folders = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders <= packages, f"test folders with no package of their name: {folders - packages}"
    names = [p.name for p in tests.rglob("*.py")]
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_has_a_docstring(path):
    source = path.read_text(encoding="utf-8")
    assert ast.get_docstring(ast.parse(source)), f"{_name(path)}: no module docstring saying what it holds"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_long_function_without_a_reason(path):
    long = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES and "Long because" not in (ast.get_docstring(node) or ""):
                long.append(f"{node.name} ({lines} lines)")
    assert not long, f"{_name(path)}: split into named steps, or say why in the docstring: {long}"


def test_packaging_a_user_expects():
    """A LICENSE for the code, declared in the package metadata, and the README's first install line naming a
    Keras backend extra (plain 'pip install deepclust' brings none; the error then names the same extras)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    install = text[text.index("## Install"):]
    first = re.search(r"```\n(.*?)\n", install).group(1)
    assert re.match(r'pip install "deepclust\[(tensorflow|jax|torch)\]"', first), first
    assert {"tensorflow", "jax", "torch"} <= set(project["optional-dependencies"])

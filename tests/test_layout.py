"""The codebase's shape: one module per job, each saying what it holds.

Checks anyone can run: every module is in the README's layout table (and every
row of the table is a module), has a docstring, and no function runs over
MAX_FUNCTION_LINES unless its docstring says why (a line containing "Long
because"). A module's length is not capped: it holds one job, whatever its
length (a cap had split modules along line counts, not jobs).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((ROOT / "deepclust").glob("*.py"))
MAX_FUNCTION_LINES = 60
TRIVIAL = {"__init__.py", "__main__.py"}


def test_readme_layout_table_matches_the_tree():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Layout"):]
    section = section[:section.index("\n## ", 4)]
    listed = set(re.findall(r"^\| `deepclust/(\w+\.py)` \|", section, flags=re.M))
    present = {p.name for p in MODULES} - TRIVIAL
    assert listed == present, f"missing from the README: {present - listed}; not in the tree: {listed - present}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_has_a_docstring(path):
    source = path.read_text(encoding="utf-8")
    assert ast.get_docstring(ast.parse(source)), f"{path.name}: no module docstring saying what it holds"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_long_function_without_a_reason(path):
    long = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES and "Long because" not in (ast.get_docstring(node) or ""):
                long.append(f"{node.name} ({lines} lines)")
    assert not long, f"{path.name}: split into named steps, or say why in the docstring: {long}"


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

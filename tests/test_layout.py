"""The codebase's shape: one module per job, each saying what it holds, small enough to read.

Checks anyone can run: every module is in the README's layout table (and every
row of the table is a module), has a docstring, stays under MAX_MODULE_LINES,
and no function runs over MAX_FUNCTION_LINES unless its docstring says why
(a line containing "Long because").
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((ROOT / "deepclust").glob("*.py"))
MAX_MODULE_LINES = 420
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
def test_module_has_a_docstring_and_stays_small(path):
    source = path.read_text(encoding="utf-8")
    assert ast.get_docstring(ast.parse(source)), f"{path.name}: no module docstring saying what it holds"
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: {len(source.splitlines())} lines"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_long_function_without_a_reason(path):
    long = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES and "Long because" not in (ast.get_docstring(node) or ""):
                long.append(f"{node.name} ({lines} lines)")
    assert not long, f"{path.name}: split into named steps, or say why in the docstring: {long}"

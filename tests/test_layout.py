"""The codebase's shape: a folder per stage, one module per job, each saying what it holds.

Checks anyone can run: every module is in the README's layout table (and every
row of the table is a module), every module and package has a docstring, the
test folders mirror the package's with no two test files of one name, imports go
down the stages (LAYERS) without a cycle, no module uses another's private names,
and no function runs over MAX_FUNCTION_LINES unless its docstring says why (a line
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
# The stages from the bottom up: a module imports (at its top or inside a function) only from its own
# stage or those below. The top-level helpers (paths, atomic, progress, ...) import no stage; the
# public API (deepclust/__init__.py), cli.py and __main__.py sit above them all. dsp is the bottom:
# the config holds its STFT settings object (Config.stft), so dsp names the config only in annotations.
LAYERS = ("dsp", "config", "corpus", "data", "nn", "training", "separation", "evaluation")
TOP = {"deepclust", "deepclust.cli", "deepclust.__main__"}


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


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, ast.alias, bool, int]]:
    """(module, its alias node, whether a name is taken from the module (``from M import x``), line) of each
    deepclust import of ``path``, wherever it stands, except under ``if TYPE_CHECKING:`` (annotations only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            node.body = []
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found += [(module, a, True, node.lineno) for a in node.names if module.startswith("deepclust")]
        elif isinstance(node, ast.Import):
            found += [(a.name, a, False, node.lineno) for a in node.names if a.name.startswith("deepclust")]
    return found


MODULE_NAMES = {_module(p) for p in MODULES}


def _target(module: str, alias: ast.alias, taken: bool) -> str:
    """The module an import reaches: ``from pkg import mod`` names a module, ``from mod import f`` its module."""
    return f"{module}.{alias.name}" if taken and f"{module}.{alias.name}" in MODULE_NAMES else module


def _layer(module: str) -> int:
    if module in TOP:
        return len(LAYERS)
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def test_imports_go_down_the_stages_without_a_cycle():
    upward, graph = [], {}
    for path in MODULES:
        here = _module(path)
        graph[here] = set()
        for module, alias, taken, line in _imports(path):
            target = _target(module, alias, taken)
            graph[here].add(target)
            if _layer(target) > _layer(here):
                upward.append(f"{_name(path)}:{line} imports {target}")
    assert not upward, f"imports back up a stage (LAYERS): {upward}"

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return trail + [nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
        return None

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, f"import cycles: {cycles[:3]}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_uses_another_modules_private_names(path):
    here, aliases, used = _module(path), {}, []
    for module, alias, taken, line in _imports(path):
        target = _target(module, alias, taken)
        if target == here:
            continue
        if taken and target == module and alias.name.startswith("_") and not alias.name.startswith("__"):
            used.append(f"line {line}: {module}.{alias.name}")
        elif target != module or not taken:  # a module bound to a name: its attributes are checked below
            aliases[alias.asname or alias.name.split(".")[0]] = target
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            used.append(f"line {node.lineno}: {aliases[node.value.id]}.{node.attr}")
    assert not used, f"{_name(path)} uses private names of other modules: {used}"


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

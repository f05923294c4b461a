"""The tree's layout: entry points are thin and nothing outside them imports them."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"tests", "trainers", ".venv", ".git", "runs", "build"}
MAX_TRAINER_LINES = 150


def _python_files():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in SKIP or any(p.startswith(".") for p in parts[:-1]):
            continue
        yield path


def _imports_trainers(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name == "trainers" or name.startswith("trainers."):
                yield node.lineno, name


def test_nothing_outside_tests_and_trainers_imports_trainers():
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in _python_files()
                 for line, name in _imports_trainers(ast.parse(path.read_text(), str(path)))]
    assert not offenders, "\n".join(offenders)


def test_every_trainer_is_under_150_lines():
    long = {path.name: n for path in sorted((ROOT / "trainers").glob("*.py"))
            if (n := len(path.read_text().splitlines())) >= MAX_TRAINER_LINES}
    assert not long, long


def _lint_imports():
    return Path(sys.executable).parent / "lint-imports"


@pytest.mark.skipif(not _lint_imports().exists(), reason="import-linter is not installed (dev extra)")
def test_layers_contract():
    """``pyproject.toml``'s import contract (``[tool.importlinter]``): common -> data, layers,
    losses, metrics, litert -> models -> stages -> deployment, prediction, experiments ->
    command lines; an import inside a function counts."""
    done = subprocess.run([str(_lint_imports()), "--config", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


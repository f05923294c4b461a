"""The tree's layout: entry points are thin and nothing outside them imports them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"tests", "trainers", ".venv", ".git", "runs", "build"}
MAX_TRAINER_LINES = 150
LONG_TRAINERS_IN_PROGRESS = {"individual.py", "uaf.py"}  # other engineers are shrinking these


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


# Imports of trainers.individual that the individual stage's rewrite (another engineer)
# removes; every other file must pass.
IMPORTS_BEING_REMOVED = {"bench/individual.py", "tflite/device.py"}


def _file_params():
    for path in _python_files():
        name = path.relative_to(ROOT).as_posix()
        marks = [pytest.mark.xfail(strict=False, reason="imports trainers.individual until the "
                                   "individual stage moves into pitune_tf.individual")
                 ] if name in IMPORTS_BEING_REMOVED else []
        yield pytest.param(path, id=name, marks=marks)


@pytest.mark.parametrize("path", list(_file_params()))
def test_nothing_outside_tests_and_trainers_imports_trainers(path):
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for line, name in _imports_trainers(ast.parse(path.read_text(), str(path)))]
    assert not offenders, "\n".join(offenders)


def _trainer_lengths():
    return {path.name: len(path.read_text().splitlines())
            for path in sorted((ROOT / "trainers").glob("*.py"))}


def test_trainers_other_than_those_in_progress_are_short():
    long = {name: n for name, n in _trainer_lengths().items()
            if n >= MAX_TRAINER_LINES and name not in LONG_TRAINERS_IN_PROGRESS}
    assert not long, long


@pytest.mark.xfail(strict=False, reason="trainers/individual.py and trainers/uaf.py are "
                   "still being shrunk by other engineers")
def test_every_trainer_is_under_150_lines():
    long = {name: n for name, n in _trainer_lengths().items() if n >= MAX_TRAINER_LINES}
    assert not long, long

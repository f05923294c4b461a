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


def test_public_api_type_checks(tmp_path, monkeypatch):
    """The public API passes mypy with ``pyproject.toml``'s ``[tool.mypy]`` (its files: the
    package root, ``pitune_tf.api``, the predictors and the LiteRT shim; annotations required
    and checked), and the root's type-checking imports are exactly its lazy exports."""
    mypy_api = pytest.importorskip("mypy.api", reason="mypy is not installed (dev extra)")
    import pitune_tf

    tree = ast.parse((ROOT / "pitune_tf" / "__init__.py").read_text())
    typed = {alias.name: node.module
             for block in tree.body
             if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
             for node in block.body if isinstance(node, ast.ImportFrom)
             for alias in node.names}
    assert typed == pitune_tf._EXPORTS
    monkeypatch.chdir(ROOT)  # [tool.mypy]'s files are relative to the repository root
    out, err, status = mypy_api.run(["--config-file", str(ROOT / "pyproject.toml"),
                                     "--cache-dir", str(tmp_path / "mypy_cache")])
    assert status == 0, out + err


def test_no_import_cycles():
    """No two first-party modules import each other, directly or through others (imports
    inside functions count: they hide a cycle, they do not remove it)."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (dev extra)")
    graph = grimp.build_graph("pitune_tf", "nextitnet", "tflite", "trainers")
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert not cycles, cycles


def _first_party_imports(tree):
    """``(lineno, inside a function)`` of every first-party import of a module's ``tree``."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            first_party = node.level > 0 or (node.module or "").split(".")[0] in FIRST_PARTY
        elif isinstance(node, ast.Import):
            first_party = any(a.name.split(".")[0] in FIRST_PARTY for a in node.names)
        else:
            continue
        if not first_party:
            continue
        up = node
        while up in parents and not isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
            up = parents[up]
        yield node.lineno, up in parents or isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef))


FIRST_PARTY = ("pitune_tf", "nextitnet", "tflite", "trainers")
MAX_DEFERRED_SHARE = 0.10


def test_imports_sit_at_module_top():
    """Under 10% of the library's first-party imports (pitune_tf, nextitnet, tflite) sit
    inside functions; the ones that do defer TensorFlow's load for a fast ``--help`` (see
    docs/architecture.md, "Deferred imports")."""
    deferred, total = [], 0
    for package in ("pitune_tf", "nextitnet", "tflite"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, inside in _first_party_imports(ast.parse(path.read_text(), str(path))):
                total += 1
                if inside:
                    deferred.append(f"{path.relative_to(ROOT)}:{line}")
    assert len(deferred) < MAX_DEFERRED_SHARE * total, (
        f"{len(deferred)} of {total} first-party imports inside functions:\n" + "\n".join(deferred))

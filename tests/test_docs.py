"""The docs are part of the product: the site builds strictly (a broken link or page fails),
its Python examples run, the README stays a front door, and the generated results page
carries the run's own numbers."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
NO_TEST = re.compile(r"<!--\s*no-test:\s*(?P<reason>[^>]*?)\s*-->")
FENCE = re.compile(r"^```python\n(?P<code>.*?)^```$", re.M | re.S)
EXAMPLE_TIMEOUT_S = 900


def python_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, reason)`` of each ```python block of ``path``; ``reason`` is the
    ``<!-- no-test: reason -->`` on the line before the block, else None."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NO_TEST.search(before)
        blocks.append((line, match["code"], marker["reason"] if marker else None))
    return blocks


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def runnable_examples() -> list:
    return [pytest.param(path, code, id=f"{path.relative_to(ROOT)}:{line}")
            for path in doc_pages() for line, code, reason in python_blocks(path)
            if reason is None]


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_lists_start_after_a_blank_line():
    """Python-Markdown (MkDocs) renders a list that follows a paragraph line directly as
    part of the paragraph; GitHub does not, so the README alone would not show it."""
    item = re.compile(r"^(- |\d+\. )")
    for path in doc_pages():
        in_fence, previous = False, ""
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            in_fence ^= line.startswith("```")
            if not in_fence and item.match(line) and previous.strip() and not (
                    item.match(previous) or previous.startswith(("  ", "|"))):
                pytest.fail(f"{path.relative_to(ROOT)}:{number}: a list needs a blank line before it")
            previous = line


def test_every_skipped_example_says_why():
    for path in [README, *doc_pages()]:
        for line, _, reason in python_blocks(path):
            assert reason is None or reason.strip(), f"{path.name}:{line}: no-test without a reason"
    assert runnable_examples(), "no docs example runs"


@pytest.fixture(scope="module")
def example_dirs(tmp_path_factory):
    """Runs every runnable docs example once, each in its own empty directory, in a fresh
    interpreter; returns ``{id: (directory, CompletedProcess)}``."""
    done = {}
    for param in runnable_examples():
        path, code = param.values
        cwd = tmp_path_factory.mktemp("example")
        (cwd / "example.py").write_text(code, encoding="utf-8")
        done[param.id] = cwd, subprocess.run(
            [sys.executable, "example.py"], cwd=cwd, capture_output=True, text=True,
            timeout=EXAMPLE_TIMEOUT_S, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done


@pytest.mark.parametrize("path, code", runnable_examples())
def test_docs_example_runs(path, code, example_dirs, request):
    example_id = request.node.callspec.id
    _, result = example_dirs[example_id]
    assert result.returncode == 0, f"{example_id}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def literal_block(docstring: str) -> str:
    """The first ``::`` literal block of a docstring, dedented."""
    lines = []
    for line in docstring.split("::\n", 1)[1].splitlines():
        if line.strip() and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_api_example_is_the_one_in_help_and_readme():
    """One example, shown in three places: the docs (where it runs), ``help(pitune_tf)``
    and the README."""
    import pitune_tf

    guide = DOCS / "getting-started.md"
    example = next(code for _, code, reason in python_blocks(guide) if reason is None)
    assert literal_block(pitune_tf.__doc__).strip() == example.strip()
    readme_blocks = [code for _, code, _ in python_blocks(README)]
    assert readme_blocks and all(code.strip() == example.strip() for code in readme_blocks)


def test_help_starts_with_the_guide():
    import pydoc

    import pitune_tf

    text = pydoc.render_doc(pitune_tf, renderer=pydoc.plaintext)
    head = text[:text.index("PACKAGE CONTENTS")]
    for needle in ("PITuning", "pitune_tf.train(", "pitune_tf.export(", "docs/"):
        assert needle in head
    assert "DataError" not in head


def test_package_root_exports_the_journey_without_tensorflow():
    code = ("import sys, pitune_tf\n"
            "names = ['train', 'personalize', 'export', 'NextIntentPredictor', 'UAFRecommender']\n"
            "assert all(n in pitune_tf.__all__ and n in dir(pitune_tf) for n in names)\n"
            "assert callable(pitune_tf.train) and callable(pitune_tf.personalize)\n"
            "assert callable(pitune_tf.export)\n"
            "assert 'tensorflow' not in sys.modules, 'import pitune_tf loaded TensorFlow'\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert ('python3.11 -m venv .venv && .venv/bin/pip install -q -e ".[dev]" && '
            ".venv/bin/python -m pytest -q") in text  # .ci/run runs this line
    for target in re.findall(r"\]\((?!https?://|#)([^)#]+)", text):
        assert (ROOT / target).exists(), f"README links to a missing {target}"


def _docs_results():
    spec = importlib.util.spec_from_file_location("docs_results",
                                                  ROOT / "scripts" / "docs_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_page_carries_the_runs_numbers(example_dirs, tmp_path):
    """The page generated from the API example's run shows that run's own numbers."""
    cwd, result = next(iter(example_dirs.values()))
    run = cwd / "runs" / "mine"
    if result.returncode or not (run / "metrics.json").is_file():
        pytest.fail("the docs example did not produce runs/mine")
    out = tmp_path / "page.md"
    status = _docs_results().main([str(run), "--out", str(out), "--title", "Example",
                                   "--command", "python example.py", "--date", "2026-01-02"])
    assert status == 0
    page = out.read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    device = json.loads((run / "device" / "summary.json").read_text())
    assert page.startswith("# Example\n")
    assert "finished 2026-01-02" in page and "python example.py" in page
    assert "not across machines" in page
    assert f"| student | {metrics['student']['test']['prec_w']:.4f} |" in page
    finetune = device["methods"]["finetune"]["pooled"]["prec_w"]
    assert f"| finetune | {finetune:.4f} |" in page
    assert "On-device personalization" in page and "RUN/individual/" not in page


def test_results_script_refuses_a_directory_without_a_run(tmp_path, capsys):
    assert _docs_results().main([str(tmp_path), "--out", str(tmp_path / "page.md")]) == 2
    assert "is missing metrics.json" in capsys.readouterr().err
    assert not (tmp_path / "page.md").exists()


def test_experiments_page_shows_the_index_and_copies_its_figures(tmp_path):
    """An experiments folder's index.md becomes a page under the header; the figures it shows
    are copied beside the page with the page's name in front."""
    folder = tmp_path / "ledger"
    folder.mkdir()
    (folder / "index.md").write_text("# Suite: experiments\n\n## Ledger\n\n| a |\n|---|\n| 1 |\n\n"
                                     "![Ledger](pituning_ledger.png)\n")
    (folder / "pituning_ledger.png").write_bytes(b"png")
    docs = tmp_path / "docs"
    docs.mkdir()
    status = _docs_results().main([str(folder), "--out", str(docs / "ledger.md"), "--title", "The ledger",
                                   "--command", "python -m trainers.experiments pituning_ledger",
                                   "--date", "2026-01-02"])
    assert status == 0
    page = (docs / "ledger.md").read_text()
    assert page.startswith("# The ledger\n") and "finished 2026-01-02" in page
    assert "## Ledger" in page and "# Suite: experiments" not in page
    assert "![Ledger](ledger_pituning_ledger.png)" in page
    assert (docs / "ledger_pituning_ledger.png").read_bytes() == b"png"

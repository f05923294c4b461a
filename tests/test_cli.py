"""What every command shares: --help without TensorFlow and with defaults, no TensorFlow
banners on stderr, --config as JSON / YAML / a run's own config, console scripts."""

import configparser
import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pitune_tf.common import _env
from pitune_tf.common.config import read_config_file
from pitune_tf.common.errors import UserInputError

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("trainers.population", "trainers.individual", "trainers.pipeline", "trainers.uaf",
            "pitune_tf.data", "pitune_tf.predict", "tflite.convert")


def _python(code, timeout=300):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_help_imports_no_tensorflow():
    code = (
        "import runpy, sys\n"
        f"for module in {COMMANDS!r}:\n"
        "    sys.argv = [module, '--help']\n"
        "    try:\n"
        "        runpy.run_module(module, run_name='__main__')\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, (module, exit.code)\n"
        "print('TF', sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras')))\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert "TF []" in done.stdout
    assert "(default: runs/demo)" in done.stdout  # HelpFormatter shows the defaults


def test_command_stderr_has_no_tensorflow_banners(tmp_path):
    """A command that loads TensorFlow and fails on a missing run: one error line only."""
    code = (
        "import sys\n"
        "from trainers.individual import main\n"
        f"code = main(['--run', {str(tmp_path / 'missing')!r}])\n"
        "from pitune_tf.common.keras import tf\n"
        "tf.zeros(1) + 1  # the first op initializes the devices (cuInit)\n"
        "print('tensorflow' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    done = _python(code)
    assert done.returncode == 2 and done.stdout.strip() == "True"
    assert done.stderr.splitlines() == [f"error: run directory not found: {tmp_path / 'missing'}"]


def test_filter_banners_keeps_everything_else():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see ...\n"
            "I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
            "E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
            "x.py:3: UserWarning: something the user should see\n")
    assert _env.filter_banners(text) == "x.py:3: UserWarning: something the user should see\n"


def test_config_file_json_yaml_and_run_record(tmp_path):
    (tmp_path / "c.json").write_text('{"alpha": 0.7, "split": [0.5, 0.2, 0.3]}')
    (tmp_path / "c.yaml").write_text("alpha: 0.7\nsplit: [0.5, 0.2, 0.3]\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {"alpha": 0.7}, "task": "x"}))
    expected = {"alpha": 0.7, "split": [0.5, 0.2, 0.3]}
    assert read_config_file(tmp_path / "c.json") == expected
    assert read_config_file(tmp_path / "c.yaml") == expected
    assert read_config_file(run) == read_config_file(run / "config.json") == {"alpha": 0.7}
    (tmp_path / "bad.yml").write_text("- a list\n")
    with pytest.raises(UserInputError, match="YAML mapping"):
        read_config_file(tmp_path / "bad.yml")
    with pytest.raises(UserInputError, match="without a config.json"):
        read_config_file(tmp_path)


def test_population_config_from_its_own_run_config(tmp_path):
    from pitune_tf.population import preset, resolve

    saved = preset("tiny").replace(alpha=0.3)
    (tmp_path / "config.json").write_text(json.dumps(saved.to_dict()))
    assert resolve("demo", str(tmp_path), {"seed": 5}) == saved.replace(seed=5)


def test_console_scripts_point_at_main():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    scripts = dict(line.split("=", 1) for line in
                   parser["options.entry_points"]["console_scripts"].strip().splitlines())
    scripts = {k.strip(): v.strip() for k, v in scripts.items()}
    for name in ("pitune-train", "pitune-personalize", "pitune-pipeline", "pitune-uaf",
                 "pitune-data", "pitune-convert", "pitune-predict"):
        assert name in scripts, name
    for target in scripts.values():
        module, function = target.split(":")
        if importlib.util.find_spec(module) is None:  # pitune_tf.predict: written separately
            continue
        assert function == "main" and callable(getattr(importlib.import_module(module), function))


def test_root_exports_resolve():
    import pitune_tf

    for name in pitune_tf.__all__:
        assert getattr(pitune_tf, name) is not None, name
    assert pitune_tf.read_events.__module__ == "pitune_tf.data.io"
    for package in ("pitune_tf", "nextitnet", "tflite", "trainers"):
        assert (ROOT / package / "py.typed").is_file()


def test_step_progress_lines_when_quiet_and_a_bar_on_a_terminal(capsys, monkeypatch):
    """``StepProgress``: with ``quiet`` one ``[label] ...`` line per step, as the epoch lines."""
    from pitune_tf.common.epoch_log import StepProgress

    progress = StepProgress("convert", 2, quiet=True)
    progress.begin("student.tflite")
    progress.end()
    progress.begin("student_int8.tflite")
    progress.end("done")
    assert capsys.readouterr().out.splitlines() == [
        "[convert] student.tflite (1/2) ...", "[convert] student_int8.tflite (2/2) ...",
        "[convert] done"]
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    bar = StepProgress("qat", 1)
    assert bar.bar is not None
    bar.end("epoch 1/1: loss 0.5000 (0.1 s)")
    out = capsys.readouterr().out
    assert "[qat]" in out and "1/1" in out and "(1/1) ..." not in out


def test_format_settings_one_json_line_per_field_in_declared_order():
    from dataclasses import dataclass, field

    from pitune_tf.common.settings_summary import format_settings

    @dataclass
    class Config:
        backbone: str = "random:2x64"
        epochs: int | None = None
        split: tuple = (0.6, 0.1, 0.3)
        schema: dict = field(default_factory=dict)
        jit: bool = False

    assert format_settings(Config(), notes={"epochs": "3 on the embedded data"}).splitlines() == [
        'backbone = "random:2x64"', "epochs = null  # 3 on the embedded data",
        "split = [0.6, 0.1, 0.3]", "schema = {}", "jit = false"]
    with pytest.raises(TypeError):
        format_settings(Config)

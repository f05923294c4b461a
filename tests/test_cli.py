"""What every command shares: --help without TensorFlow and with defaults, no TensorFlow
banners on stderr, --config as JSON / YAML / a run's own config, console scripts."""

import dataclasses
import importlib
import importlib.util
import json
import logging
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pitune_tf.common import environment
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
    assert done.returncode == 2 and done.stdout.splitlines()[-1] == "True"  # after the settings
    assert done.stderr.splitlines() == [f"error: run directory not found: {tmp_path / 'missing'}"]


def test_filter_banners_keeps_everything_else():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see ...\n"
            "I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
            "E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
            "x.py:3: UserWarning: something the user should see\n")
    assert environment.filter_banners(text) == "x.py:3: UserWarning: something the user should see\n"


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
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
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


# ------------------------------------------------ settings, --print-config, --quiet, presets


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny population run directory, built without training (individual_fixtures)."""
    from individual_fixtures import make_tiny_run

    return make_tiny_run(tmp_path_factory.mktemp("cli") / "run", n_users=2, with_teacher=False)


def test_print_config_resolves_preset_file_and_flags_without_tensorflow(tmp_path, tiny_run):
    (tmp_path / "c.yaml").write_text("alpha: 0.7\nseed: 1\n")
    code = (
        "import sys\n"
        "from trainers.population import main as population\n"
        "from trainers.individual import main as individual\n"
        f"assert population(['--preset', 'tiny', '--config', {str(tmp_path / 'c.yaml')!r},"
        " '--seed', '3', '--print-config']) == 0\n"
        f"assert individual(['--run', {str(tiny_run)!r}, '--lam', '0.5', '--print-config']) == 0\n"
        "print('TF', sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras')))\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "TF []" and done.stderr == ""
    assert lines[0].startswith(f"# trainers.population settings (--preset tiny < --config "
                               f"{tmp_path / 'c.yaml'} < flags)")
    assert "history = 8  # preset tiny" in lines  # preset
    assert f"alpha = 0.7  # --config {tmp_path / 'c.yaml'}" in lines  # config file
    assert "seed = 3  # command line" in lines  # the flag wins over the file
    assert "teacher_epochs = 1  # preset tiny" in lines
    assert "data = []  # none given: the embedded synthetic data 'tiny'" in lines
    from pitune_tf.population import PopulationConfig

    population = lines[1:1 + len(dataclasses.fields(PopulationConfig))]
    assert [line.split(" = ")[0] for line in population] == [
        f.name for f in dataclasses.fields(PopulationConfig)]  # every key, as declared
    assert any(line.startswith("# trainers.individual settings (defaults < flags); run ")
               for line in lines)
    assert "lam = 0.5  # command line" in lines
    assert "min_history = 0  # the run's min_history" in lines


def test_individual_split_flags_are_validated_in_one_line(capsys):
    from trainers.population import main

    for argv, message in (
        (["--individual-fraction", "1.5"], "error: individual_fraction (the share of the users "
         "held out for the individual stage) must be in [0, 1), got 1.5"),
        (["--individual-users", "-1"], "error: individual_users (how many users are held out "
         "for the individual stage) must be >= 0, got -1"),
        (["--individual-users", "2", "--individual-fraction", "0.5"],
         "error: give --individual-fraction or --individual-users, not both"),
    ):
        assert main([*argv, "--data", "events.csv", "--print-config"]) == 2
        assert capsys.readouterr().err.splitlines() == [message]
    assert main(["--data", "events.csv", "--individual-users", "3", "--print-config"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "individual_users = 3  # command line" in out
    assert "individual_fraction = 0.2  # not used: individual_users is set" in out


def test_user_split_by_count_or_share_warns_below_two_users_a_side(caplog):
    import pandas as pd

    from pitune_tf.population import PopulationConfig
    from pitune_tf.population.data_preparation import split_user_ids

    users = pd.Series([f"u{i}" for i in range(5) for _ in range(3)])
    with caplog.at_level(logging.WARNING):
        population, individual = split_user_ids(users, PopulationConfig())  # 0.2 of 5 users
    assert (len(population), len(individual)) == (4, 1)
    assert "fewer than 2 on a side" in caplog.text and "individual_fraction 0.2" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        population, individual = split_user_ids(users, PopulationConfig(individual_users=2))
    assert (len(population), len(individual)) == (3, 2) and not caplog.text
    assert set(population).isdisjoint(individual)
    with pytest.raises(UserInputError, match="individual_users 5 leaves no population user"):
        split_user_ids(users, PopulationConfig(individual_users=5))
    with pytest.raises(UserInputError, match=r"individual_users must be in \[0, 5\]"):
        split_user_ids(users, PopulationConfig(individual_users=6))


def test_each_preset_has_a_help_line_read_off_its_values(monkeypatch):
    from pitune_tf.population import population_config
    from pitune_tf.population.command_line import build_parser

    assert set(population_config.PRESET_PURPOSES) == set(population_config.PRESETS)
    text = build_parser().format_help()
    for name in population_config.PRESETS:
        assert f"\n  {population_config.describe_preset(name)}\n" in text + "\n"
    tiny = population_config.describe_preset("tiny")
    assert tiny.startswith("tiny: tests and smoke runs") and "1/1 epochs" in tiny
    assert "teacher random:1x32, student 1x32" in tiny and "history 8" in tiny
    assert "3/6 epochs (teacher/student; 30/30 with --data)" in population_config.describe_preset(
        "demo")
    monkeypatch.setitem(population_config.PRESETS, "tiny",
                        {**population_config.PRESETS["tiny"], "teacher_epochs": 2})
    assert "2/1 epochs" in population_config.describe_preset("tiny")  # cannot go stale
    from pitune_tf.individual.command_line import build_parser as individual_parser

    text = individual_parser().format_help()
    assert "presets (--preset):\n  default: our best settings" in text and "\n  paper: PITuning" in text


def test_log_lines_start_on_their_own_line(capsys):
    from tqdm import tqdm

    from pitune_tf.common import console

    handler = console.LineStartHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    record = logging.LogRecord("pitune_tf", logging.WARNING, __file__, 1, "careful", None, None)
    sys.stderr.write(" 3/10 [====>.....] - loss: 1.2")  # a Keras bar, mid-line
    console.keras_bar_open(True)
    handler.emit(record)
    assert capsys.readouterr().err == " 3/10 [====>.....] - loss: 1.2\nWARNING careful\n"
    handler.emit(record)  # the bar's line is closed: no empty line
    assert capsys.readouterr().err == "WARNING careful\n"
    with tqdm(total=2, file=sys.stderr, desc="users") as bar:
        bar.update(1)
        handler.emit(record)
        console.status("a status line")
    err, out = capsys.readouterr()[::-1]
    assert "\nWARNING careful\n" in err.replace("\r", "\n") and out == "a status line\n"


def test_quiet_silences_status_logs_and_warnings_until_the_command_returns(capsys):
    import warnings

    from pitune_tf.common import console
    from pitune_tf.common.cli import run_main

    def command(argv):
        console.set_quiet("--quiet" in argv)
        console.status("status")
        logging.getLogger("pitune_tf.x").warning("a warning")
        warnings.warn("a python warning", UserWarning, stacklevel=1)
        logging.getLogger("pitune_tf.x").error("an error")
        print("result")
        return 0

    assert run_main(command, ["--quiet"]) == 0
    assert capsys.readouterr().out == "result\n"
    assert not console.is_quiet()
    assert logging.getLogger("pitune_tf").level == logging.INFO  # restored
    with pytest.warns(UserWarning, match="a python warning"):
        assert run_main(command, []) == 0
    assert capsys.readouterr().out == "status\nresult\n"


def test_individual_quiet_prints_the_tables_only_and_never_image_lines(tiny_run, tmp_path):
    """``--quiet``: the result tables and the closing line, nothing on stderr (no bar, no
    settings, no warnings); without it the settings come first. The console never shows the
    Markdown image lines that results.md keeps."""
    argv = ["-m", "trainers.individual", "--run", str(tiny_run), "--method", "none,finetune",
            "--epochs", "1", "--out"]
    quiet = subprocess.run([sys.executable, *argv, str(tmp_path / "q"), "--quiet"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    lines = quiet.stdout.splitlines()
    assert lines[0] == "## Individual-level results (Table 2 style)"
    assert lines[-1].startswith("2 users in ") and "outputs in" in lines[-1]
    assert "![" in (tmp_path / "q" / "results.md").read_text()  # the file links its figures
    assert "![" not in quiet.stdout
    loud = subprocess.run([sys.executable, *argv, str(tmp_path / "v")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert loud.returncode == 0, loud.stderr
    first = loud.stdout.splitlines()[0]
    assert first.startswith("settings (defaults < flags; all: --print-config): methods=")
    assert "max_epochs=1 (command line)" in first
    # off a terminal no bar (a log file would fill with its carriage returns)
    assert "![" not in loud.stdout and "\r" not in loud.stderr + loud.stdout


def test_population_quiet_prints_the_table_only(tmp_path):
    """A tiny population run with ``--quiet``: the test table and the run directory line on
    stdout, nothing else (no settings, windows, epoch or keeping lines, no log lines)."""
    done = subprocess.run(
        [sys.executable, "-m", "trainers.population", "--preset", "tiny", "--max-train-windows",
         "300", "--out", str(tmp_path / "run"), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["test", "prec_w", "rec_w", "prec_m", "rec_m", "ndcg@3", "ndcg@5",
                                "acc"]
    assert lines[-1].startswith("run directory: ")
    assert not [line for line in lines if line.startswith(("settings", "windows", "[", "INFO"))]


def test_population_prints_its_settings_first(capfd, tmp_path):
    """Not quiet, the settings line comes before any work (here: a missing data file)."""
    from trainers.population import main

    assert main(["--preset", "tiny", "--data", str(tmp_path / "missing.csv"),
                 "--individual-users", "2", "--out", str(tmp_path / "run")]) == 2
    out, err = capfd.readouterr()
    first = out.splitlines()[0]
    assert first.startswith("settings (--preset tiny < flags; all: --print-config): data=[")
    assert "individual_users=2 (command line)" in first and "backbone=\"random:1x32\" (preset tiny)" in first
    assert err.splitlines()[-1].startswith("error: ")


# ------------------------------------------------ the paper profile of each stage (issue 31)


def test_population_preset_paper_prints_the_papers_values(capsys):
    """``--preset paper`` is PITuning as written (Sec. 4.1.4, Table 4, Eq. 3-7), each of our
    departures off; ``paper_small`` makes the same choices at the demo's size."""
    from trainers.population import main

    assert main(["--preset", "paper", "--print-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# trainers.population settings (--preset paper < flags)")
    for line in ("repeat_term = false", 'attention_normalize = "none"', "clipnorm = 0.0",
                 "teacher_learning_rate = 0.01", "student_learning_rate = 0.01", "alpha = 0.5",
                 "temperature = 1.0", "use_iat = true", "reconstruction = true",
                 'reconstruction_passes = "two"', 'tuning = "full"', 'backbone = "gpt2"',
                 "history = 30", "student_layers = 4", "student_width = 768",
                 "split = [0.6, 0.1, 0.3]"):
        assert f"{line}  # preset paper" in lines, line
    assert "embedding_dim = 0  # preset paper; the backbone width / 4" in lines  # 768 / 4 = 192
    assert main(["--preset", "paper_small", "--print-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line in ("repeat_term = false", 'attention_normalize = "none"', "clipnorm = 0.0",
                 "teacher_learning_rate = 0.01", "student_learning_rate = 0.01"):
        assert f"{line}  # preset paper_small" in lines, line
    assert 'backbone = "random:2x64"' in lines  # the demo's size
    assert main(["--preset", "paper", "--clipnorm", "1", "--attention-normalize", "mean",
                 "--print-config"]) == 0  # each departure has its flag
    lines = capsys.readouterr().out.splitlines()
    assert "clipnorm = 1.0  # command line" in lines
    assert 'attention_normalize = "mean"  # command line' in lines
    assert main(["--print-config"]) == 0  # our defaults keep the departures that measured
    lines = capsys.readouterr().out.splitlines()  # (clipping went back to the paper's off)
    assert {"repeat_term = true", 'attention_normalize = "mean"', "clipnorm = 0.0"} <= set(lines)


def test_individual_preset_paper_prints_the_papers_values(tmp_path, tiny_run, capsys):
    """``trainers.individual --preset paper`` is PITuning Sec. 3.3 / Algorithm 1 as written:
    Adam 0.01, no prior shift after tuning, no refit, fine-tuning always from the unlearned
    weights; resolved preset < --config < flags."""
    from trainers.individual import main

    assert main(["--run", str(tiny_run), "--preset", "paper", "--print-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# trainers.individual settings (--preset paper < flags); run ")
    for line in ("learning_rate = 0.01", "unlearn_learning_rate = 0.01", "lam = 1.0",
                 "prior_after_tuning = false", "refit = false", 'unlearn_select = "none"',
                 "unlearn_gate = false", 'holdout = "test"'):
        assert f"{line}  # preset paper" in lines, line
    (tmp_path / "c.json").write_text(json.dumps({"learning_rate": 0.001, "refit": True}))
    assert main(["--run", str(tiny_run), "--preset", "paper", "--config", str(tmp_path / "c.json"),
                 "--no-refit", "--unlearn-select", "after_finetune", "--print-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"# trainers.individual settings (--preset paper < --config "
                               f"{tmp_path / 'c.json'} < flags)")
    assert f"learning_rate = 0.001  # --config {tmp_path / 'c.json'}" in lines  # file > preset
    assert "refit = false  # command line" in lines  # flag > file
    assert 'unlearn_select = "after_finetune"  # command line' in lines
    assert "prior_after_tuning = false  # preset paper" in lines
    assert main(["--run", str(tiny_run), "--print-config"]) == 0  # the default preset: ours
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# trainers.individual settings (defaults < flags); run ")
    assert {"learning_rate = 0.0003", "unlearn_learning_rate = 0.001", "prior_after_tuning = false",
            "refit = false", 'unlearn_select = "none"'} <= set(lines)  # the rest went back

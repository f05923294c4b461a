"""Bad input, tried as a new user would: every case is one ``error:`` line and exit status 2,
found before any work starts, and nothing a user saved is lost (issue 12).

Each defect of issue 12 has a case here or in the test named beside it:

| issue 12 | where |
|---|---|
| 1 NaN rate / sample weight / lam; NaN weights never saved | ``test_tflite.py``: ``test_nan_weights_rates_and_lam_never_reach_the_weights``, ``test_bad_labels_and_rates_are_refused``, ``test_nan_weights_never_replace_a_good_file`` |
| 2 a weights file written over a directory | ``test_tflite.py::test_atomic_writes_never_delete_a_directory`` |
| 3 ``--overwrite`` with a bad ``--backbone`` or ``--dropout 5`` | ``test_population_overwrite_with_a_bad_option_keeps_the_finished_run`` (+ ``test_population.py::test_overwrite_keeps_the_finished_run_until_the_new_one_is_complete``) |
| 4 UAF resumed after ``kill -9`` | ``test_faults.py`` (every command) |
| 5 the shim's mask, labels, ids, row counts | ``test_tflite.py``: ``test_bad_float_inputs_are_refused_before_the_interpreter``, ``test_bad_labels_and_rates_are_refused``, ``test_rows_and_ids_are_checked`` |
| 6 ``--epochs 0``, ``--learning-rate nan`` | ``test_population_bad_options``, ``test_individual_bad_options`` |
| 7 two runs on one ``--out`` | ``test_a_second_run_on_a_live_run_directory_is_refused`` (+ ``test_data_io.py::test_run_lock_...``) |
| 8 ``--out`` naming a file | ``test_out_naming_a_file`` (population, individual on both backends, tflite.convert, uaf) |
| 9 broken run directory files | ``test_individual_broken_run_files`` (+ ``test_population.py::test_broken_run_files_are_one_clear_error``) |
| 10 wrongly typed config values, ``--dropout 5``, ``--batch-size 0``, ColdRec ``²`` / bad byte | ``test_population_bad_options``, ``test_uaf_bad_options``, ``test_uaf_coldrec_bad_characters`` (+ ``test_nextitnet.py::test_coldrec_lines_with_non_ascii_digits_or_bad_bytes_are_located_errors``) |
| 11 UAF leftovers: bad data, ``--train-fraction 0`` | ``test_uaf_bad_data_leaves_nothing_behind``, ``test_uaf_bad_options`` |
| mixed timestamp formats | ``test_data_io.py::test_bad_input_is_one_located_error[mixed.csv]`` |

The data layer's cases (missing column, bad timestamp, non-UTF-8, malformed CSV, empty file,
missing value, an event missing from the mapping) are ``test_data_io.py``'s
``test_bad_input_is_one_located_error``, ``test_event_missing_from_mapping`` and
``test_cli_subprocess_bad_byte_exit_2``; bad Parquet files and bad data given to the
training commands are here.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from pitune_tf.common.cli import run_main


def one_error(capsys, main, argv, *words) -> str:
    """Runs a command's ``main`` through ``run_main``: exit status 2 and one ``error:`` line
    holding ``words``. Returns the line. (Any other exception, the traceback a user would
    see, propagates out of ``run_main`` and fails the test.)"""
    code = run_main(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, err[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def fake_finished_run(out):
    """A finished population run directory as far as ``--overwrite`` is concerned."""
    out.mkdir()
    (out / "metrics.json").write_text('{"finished": true}')
    (out / "student.keras").write_text("the user's model")
    return out


# ------------------------------------------------------------------------ population


@pytest.mark.parametrize("argv, words", [
    (["--epochs", "0"], ["teacher_epochs"]),  # issue 12, defect 6
    (["--epochs", "-1"], ["teacher_epochs"]),
    (["--dropout", "5"], ["dropout"]),  # defect 10
    (["--alpha", "2"], ["alpha"]),
    (["--config", {"history": "abc"}], ["'history'", "expected int"]),  # defect 10
    (["--config", {"split": 0.5}], ["'split'", "expected list"]),
    (["--config", {"head_units": "wide"}], ["'head_units'"]),
    (["--config", "[1, 2]"], ["JSON object"]),
    (["--data", "missing.csv"], ["missing.csv"]),
    (["--backbone", "random:2"], ["random:<layers>x<width>"]),
])
def test_population_bad_options(tmp_path, capsys, argv, words):
    from trainers.population import main

    argv = list(argv)
    if "--config" in argv:
        value = argv[argv.index("--config") + 1]
        config = tmp_path / "config.json"
        config.write_text(value if isinstance(value, str) else json.dumps(value))
        argv[argv.index("--config") + 1] = config
    if "--data" in argv:
        argv[argv.index("--data") + 1] = tmp_path / "missing.csv"
    one_error(capsys, main, ["--preset", "tiny", *argv, "--out", tmp_path / "run"], *words)
    assert not (tmp_path / "run").exists()


def test_population_bad_data_file_leaves_nothing(tmp_path, capsys):
    from trainers.population import main

    events = tmp_path / "events.csv"
    events.write_text("user_id,timestamp,event,intent\nu1,2020-01-01 10:00:00,a,A\n"
                      "u1,2020-01-01 11:00:00,b,B,extra\n")
    one_error(capsys, main, ["--data", events, "--out", tmp_path / "run"], "row 2",
              "malformed CSV")
    assert listing(tmp_path) == ["events.csv"]


@pytest.mark.parametrize("argv, words", [
    (["--dropout", "5"], ["dropout"]),
    (["--backbone", "BERT_DIR"], ["'bert' model", "GPT2"]),  # fails only when the model is built
])
def test_population_overwrite_with_a_bad_option_keeps_the_finished_run(tmp_path, capsys, argv,
                                                                        words):
    """Issue 12, defect 3: the finished run is kept, no half-made directory remains."""
    from trainers.population import main

    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32,
                                                  "num_hidden_layers": 1}))
    out = fake_finished_run(tmp_path / "run")
    argv = [bert if a == "BERT_DIR" else a for a in argv]
    one_error(capsys, main, ["--preset", "tiny", "--overwrite", *argv, "--out", out], *words)
    assert (out / "student.keras").read_text() == "the user's model"
    assert listing(out) == ["metrics.json", "student.keras"]
    assert listing(tmp_path) == ["bert", "run"]  # nothing aside, no lock left


def test_a_second_run_on_a_live_run_directory_is_refused(tmp_path, capsys):
    """Issue 12, defect 7: a lock held by a live process refuses a second run, for each
    command that writes a run directory."""
    from trainers.individual import main as individual
    from trainers.population import main as population
    from trainers.uaf import main as uaf

    (tmp_path / ".run.lock").write_text(str(os.getppid()))  # a live process holds it
    one_error(capsys, population, ["--preset", "tiny", "--out", tmp_path / "run"], "in use")
    one_error(capsys, uaf, ["--preset", "tiny", "--out", tmp_path / "run"], "in use")
    assert listing(tmp_path) == [".run.lock"]
    from individual_fixtures import make_tiny_run

    run = make_tiny_run(tmp_path / "population", n_users=1, with_teacher=False)
    one_error(capsys, individual, ["--run", run, "--method", "none", "--out", tmp_path / "run"],
              "in use")
    assert listing(tmp_path) == [".run.lock", "population"]


# ------------------------------------------------------------------ individual stage


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from individual_fixtures import make_tiny_run

    return make_tiny_run(tmp_path_factory.mktemp("individual") / "run", n_users=1,
                         with_teacher=False)


@pytest.mark.parametrize("argv, words", [
    (["--learning-rate", "nan"], ["learning_rate"]),  # issue 12, defect 6
    (["--learning-rate", "-1"], ["learning_rate"]),
    (["--lam", "nan"], ["lam"]),
    (["--method", "nope"], ["nope"]),
    (["--workers", "0"], ["--workers"]),
    (["--config", "CONFIG"], ["'batch_size'", "expected int"]),
])
def test_individual_bad_options(tiny_run, tmp_path, capsys, argv, words):
    from trainers.individual import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"batch_size": "big"}))
    argv = [config if a == "CONFIG" else a for a in argv]
    one_error(capsys, main, ["--run", tiny_run, *argv, "--out", tmp_path / "out"], *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, content, words", [
    ("student.keras", "truncated", ["student.keras", "cannot be loaded"]),  # issue 12, defect 9
    ("config.json", "{not json", ["config.json", "not valid JSON"]),
    ("p_out.json", '{"intents": []}', ["p_out.json", "lacks p_out, p_pop"]),
    ("vocab.json", None, ["missing vocab.json"]),
])
def test_individual_broken_run_files(tiny_run, tmp_path, capsys, name, content, words):
    from trainers.individual import main

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    if content is None:
        (broken / name).unlink()
    else:
        (broken / name).write_text(content)
    one_error(capsys, main, ["--run", broken, "--method", "none", "--out", tmp_path / "out"],
              *words)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ --out is a file


def test_out_naming_a_file(tiny_run, tmp_path, capsys):
    """Issue 12, defect 8: every command, before any work; the file is left alone."""
    from tflite.convert import main as convert
    from trainers.individual import main as individual
    from trainers.population import main as population
    from trainers.uaf import main as uaf

    target = tmp_path / "notes.txt"
    target.write_text("mine")
    one_error(capsys, population, ["--preset", "tiny", "--out", target], "is a file")
    one_error(capsys, uaf, ["--preset", "tiny", "--out", target], "is a file")
    one_error(capsys, individual, ["--run", tiny_run, "--method", "none", "--out", target],
              "is a file")
    one_error(capsys, individual, ["--run", tiny_run, "--backend", "litert", "--model", target,
                                   "--out", target], "is a file")  # the former tflite.device
    one_error(capsys, convert, ["--run", tiny_run, "--out", target], "is a file")
    assert target.read_text() == "mine" and listing(tmp_path) == ["notes.txt"]


# ------------------------------------------------------------------------------- UAF


@pytest.mark.parametrize("argv, words", [
    (["--batch-size", "0"], ["batch_size"]),  # issue 12, defect 10
    (["--train-fraction", "0"], ["train_fraction"]),  # defect 11: before any pretraining
    (["--epochs", "0"], ["epochs"]),
    (["--config", "CONFIG"], ["'embedding_dim'", "expected int"]),
    (["--pretrained", "no/such/run"], ["--pretrained", "not found"]),
    (["--mode", "soft,nope"], ["nope"]),
])
def test_uaf_bad_options(tmp_path, capsys, argv, words):
    from trainers.uaf import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"embedding_dim": "abc"}))
    argv = [config if a == "CONFIG" else a for a in argv]
    one_error(capsys, main, ["--preset", "tiny", *argv, "--out", tmp_path / "run"], *words)
    assert listing(tmp_path) == ["config.json"]


def _coldrec(folder, n_users, extra=b""):
    """ColdRec pretrain / finetune files with ``n_users`` users (``extra``: one more line)."""
    pre = folder / "pre.csv"
    pre.write_text("".join(f"{u},{u + 1},{u + 2}\n" for u in range(1, n_users + 1)))
    fine = folder / "fine.csv"
    fine.write_bytes("".join(f"{u},{u + 1},,{u % 5 + 1}\n"
                             for u in range(1, n_users + 1)).encode() + extra)
    return pre, fine


def test_uaf_bad_data_leaves_nothing_behind(tmp_path, capsys):
    """Issue 12, defect 11: data that cannot be used (a malformed line; too few users for
    the splits) fails before ``config.json`` or anything else is written, so a rerun with
    corrected files is not refused."""
    from trainers.uaf import main

    pre, fine = _coldrec(tmp_path, 3, b"1,2,3,4\n")
    out = tmp_path / "run"
    one_error(capsys, main, ["--preset", "tiny", "--data", pre, fine, "--out", out], "row 4")
    assert not out.exists()
    pre, fine = _coldrec(tmp_path, 3)
    one_error(capsys, main, ["--preset", "tiny", "--data", pre, fine, "--out", out],
              "empty split")
    assert not out.exists() and listing(tmp_path) == ["fine.csv", "pre.csv"]


@pytest.mark.parametrize("bad", ["1,²,,4\n".encode(), b"1,2,,\xff\n"])
def test_uaf_coldrec_bad_characters(tmp_path, capsys, bad):
    """Issue 12, defect 10: a ColdRec line with a non-ASCII digit or a non-UTF-8 byte is one
    located error; with ``--skip-bad-lines`` it is skipped (``test_nextitnet.py`` checks the
    reader's count), and the run then fails only on its too-small data, cleanly."""
    from trainers.uaf import main

    pre, fine = _coldrec(tmp_path, 2, bad)
    out = tmp_path / "run"
    one_error(capsys, main, ["--preset", "tiny", "--data", pre, fine, "--out", out],
              str(fine), "row 3")
    one_error(capsys, main, ["--preset", "tiny", "--data", pre, fine, "--skip-bad-lines",
                             "--out", out], "empty split")
    assert not out.exists()


# ------------------------------------------------------------------------ data layer


def test_bad_parquet_files_are_one_error(tmp_path, capsys):
    """A file named .parquet that is not Parquet, and a Parquet table without the event
    column: one located error from the data CLI and from the population command."""
    import pandas as pd

    from pitune_tf.data.__main__ import main as data_main
    from trainers.population import main as population

    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 not really")
    one_error(capsys, data_main, ["convert", garbage, "--out", tmp_path / "o.parquet"],
              str(garbage), "not a readable Parquet file")
    one_error(capsys, population, ["--data", garbage, "--out", tmp_path / "run"],
              "not a readable Parquet file")
    partial = tmp_path / "partial.parquet"
    pd.DataFrame({"user_id": ["u"], "timestamp": ["2020-01-01 10:00"], "intent": ["A"]}
                 ).to_parquet(partial)
    one_error(capsys, data_main, ["convert", partial, "--out", tmp_path / "o.parquet"],
              "missing column", "event")
    assert listing(tmp_path) == ["garbage.parquet", "partial.parquet"]


# ------------------------------------------ issue 29: numbers in range, lists by element


def _config_argv(tmp_path, argv):
    """``argv`` with a ``{"config": {...}}`` element written to ``tmp_path/config.json``."""
    out = []
    for a in argv:
        if isinstance(a, dict):
            path = tmp_path / "config.json"
            path.write_text(json.dumps(a["config"]))
            a = path
        out.append(a)
    return out


@pytest.mark.parametrize("argv, words", [
    # family 5: every learning rate, temperature, size and seed, with the allowed range
    (["--teacher-learning-rate", "inf"], ["teacher_learning_rate", "in (0, 1]", "inf"]),
    (["--teacher-learning-rate", "1e308"], ["teacher_learning_rate", "in (0, 1]"]),
    (["--student-learning-rate", "nan"], ["student_learning_rate", "in (0, 1]"]),
    (["--student-learning-rate", "0"], ["student_learning_rate", "in (0, 1]"]),
    (["--temperature", "0"], ["temperature", "in [0.01, 100]"]),
    (["--temperature", "1e-300"], ["temperature", "in [0.01, 100]"]),
    (["--temperature", "inf"], ["temperature"]),
    (["--config", {"config": {"clipnorm": float("nan")}}], ["clipnorm", ">= 0"]),
    (["--history", "0"], ["history", "in [1, 1024]"]),
    (["--student-width", "1000000"], ["student_width", "in [4, 16384]"]),
    (["--student-layers", "1000"], ["student_layers", "in [1, 128]"]),
    (["--student-heads", "64"], ["student_heads", "in [1, 32]"]),
    (["--batch-size", "1000000000"], ["batch_size", "in [1, 65536]"]),
    (["--epochs", "10000000"], ["teacher_epochs", "in [1, 1000000]"]),
    (["--embedding-dim", "-4"], ["embedding_dim"]),
    (["--mask-rate", "1"], ["mask_rate", "in [0, 1)"]),
    (["--backbone", "random:128x16384"], ["the teacher (128 x 16384", "memory",
                                          "the backbone's size"]),
    # family 8: seeds below 0 or above 2^32 - 1
    (["--seed", "-1"], ["seed", "in [0, 4294967295]", "-1"]),
    (["--seed", "4294967296"], ["seed", "in [0, 4294967295]"]),
    # family 6: lists of the wrong element type, absurd sizes, in a config file
    (["--config", {"config": {"attention_units": [16.5, 8]}}],
     ["attention_units", "whole numbers", "element 0: 16.5"]),
    (["--config", {"config": {"attention_units": []}}], ["attention_units", "at least 1"]),
    (["--config", {"config": {"history": 10**30}}], ["history", "in [1, 1024]"]),
    (["--config", {"config": {"split": [0.6, "0.1", 0.3]}}], ["split", "element 1: '0.1'"]),
    (["--config", {"config": {"data": [1]}}], ["data", "file names"]),
    (["--config", {"config": {"head_units": 10**6}}], ["head_units", "in [1, 16384]"]),
    (["--config", {"config": {"slot_minutes": 0}}], ["slot_minutes", "in [1, 1440]"]),
])
def test_population_numbers_out_of_range_write_nothing(tmp_path, capsys, argv, words):
    """Issue 29, families 5, 6 and 8: each is one error line naming the key and its allowed
    range, before anything is written (so the corrected rerun is never refused)."""
    from trainers.population import main

    argv = _config_argv(tmp_path, argv)
    one_error(capsys, main, ["--preset", "tiny", *argv, "--out", tmp_path / "run"], *words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, words", [
    (["--learning-rate", "inf"], ["learning_rate", "in (0, 1]"]),
    (["--learning-rate", "1e308"], ["learning_rate", "in (0, 1]"]),
    (["--unlearn-learning-rate", "5"], ["unlearn_learning_rate", "in (0, 1]"]),
    (["--fp-learning-rate", "0"], ["fp_learning_rate", "in (0, 1]"]),
    (["--focal-gamma", "inf"], ["focal_gamma", ">= 0"]),
    (["--prior-pseudo-count", "nan"], ["prior_pseudo_count"]),
    (["--static-threshold", "2"], ["static_threshold", "in [0, 1)"]),
    (["--seed", "-1"], ["seed", "in [0, 4294967295]"]),  # family 8
    (["--seed", "4294967296"], ["seed", "in [0, 4294967295]"]),
    (["--batch-size", "1000000000"], ["batch_size", "in [1, 65536]"]),  # no 30 GiB first
    (["--epochs", "10000000"], ["max_epochs", "in [1, 1000000]"]),
    (["--users", "-1"], ["--users", "in [0, "]),
    (["--workers", "100000"], ["--workers", "in [1, 256]"]),
    (["--config", {"config": {"split_days": [7.5, 1, 4]}}], ["split_days", "element 0: 7.5"]),
    (["--config", {"config": {"prior_betas": [0.0, "a"]}}], ["prior_betas", "element 1"]),
    (["--config", {"config": {"fractions": [0.6, 0.1, float("nan")]}}], ["fractions"]),
])
def test_individual_numbers_out_of_range_write_nothing(tiny_run, tmp_path, capsys, argv, words):
    from trainers.individual import main

    argv = _config_argv(tmp_path, argv)
    one_error(capsys, main, ["--run", tiny_run, *argv, "--out", tmp_path / "out"], *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, words", [
    (["--learning-rate", "inf"], ["learning_rate", "in (0, 1]"]),
    (["--learning-rate", "1e308"], ["learning_rate", "in (0, 1]"]),
    (["--seed", "-1"], ["seed", "in [0, 4294967295]"]),  # family 8
    (["--seed", "4294967296"], ["seed", "in [0, 4294967295]"]),
    (["--batch-size", "1000000000"], ["batch_size", "in [1, 65536]"]),
    (["--dump-topk", "-1"], ["--dump-topk", "K >= 1"]),
    (["--config", {"config": {"temperature": 0}}], ["temperature", "in [0.01, 1000]"]),
    (["--config", {"config": {"embedding_dim": 10**6}}], ["embedding_dim", "in [1, 16384]"]),
    (["--config", {"config": {"max_len": 10**30}}], ["max_len", "in [1, 4096]"]),
    (["--config", {"config": {"block_dilations": [1.5, 2]}}],
     ["block_dilations", "element 0: 1.5"]),
    (["--config", {"config": {"topk": ["5"]}}], ["topk", "element 0: '5'"]),
    (["--config", {"config": {"fractions": [0.8, 0.1, "x"]}}], ["fractions", "element 2"]),
    (["--config", {"config": {"n_negatives": 0}}], ["n_negatives"]),
    (["--config", {"config": {"gamma": float("inf")}}], ["gamma", ">= 0"]),
])
def test_uaf_numbers_out_of_range_write_nothing(tmp_path, capsys, argv, words):
    from trainers.uaf import main

    argv = _config_argv(tmp_path, argv)
    one_error(capsys, main, ["--preset", "tiny", *argv, "--out", tmp_path / "run"], *words)
    assert not (tmp_path / "run").exists()


# ------------------------------------------ issue 29, family 8: argparse errors, one line


# each command: an int option, and the options it requires
COMMAND_OPTIONS = {
    "trainers.population": ("--batch-size", []),
    "trainers.individual": ("--batch-size", ["--run", "RUN"]),
    "trainers.uaf": ("--batch-size", []),
    "trainers.pipeline": ("--epochs", []),
    "tflite.convert": ("--batch-size", ["--run", "RUN"]),
    "pitune_tf.predict": ("--top-k", ["--run", "RUN", "--events", "EVENTS"]),
}


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
@pytest.mark.parametrize("bad", ["1e9", "--no-such-option"])
def test_argument_errors_are_one_error_line_not_the_usage(tmp_path, capsys, command, bad):
    """``--batch-size 1e9`` used to print the whole usage (37 lines) and no ``error:`` line:
    every command now prints exactly one line, ``error: ...``, and exits 2."""
    import importlib

    option, required = COMMAND_OPTIONS[command]
    required = [str(tmp_path / a) if a.isupper() else a for a in required]
    argv = [option, "1e9"] if bad == "1e9" else [bad]
    code = importlib.import_module(command).main([*required, *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "usage:" not in err, err
    assert err.startswith("error: argument " + option + ": invalid int value: '1e9'"
                          if bad == "1e9" else "error: unrecognized arguments: --no-such-option")
    assert listing(tmp_path) == []


# --------------------------------- issue 29, family 6: no run left to refuse the rerun


def test_a_crash_before_the_first_epoch_leaves_nothing_and_the_rerun_is_accepted(
        tmp_path, capsys, monkeypatch):
    """A run that fails after writing config.json and vocab.json but before any epoch was
    checkpointed removes its directory; one left behind by ``kill -9`` at that point (only
    what a starting run writes) is replaced by a rerun of another config, not refused; a
    directory holding anything else is still refused."""
    from pitune_tf.population import population_stage
    from trainers.population import main

    out = tmp_path / "run"

    def crash(*args, **kwargs):
        raise RuntimeError("a bug after config.json was written")

    monkeypatch.setattr(population_stage, "train_teacher", crash)
    with pytest.raises(RuntimeError):
        run_main(main, ["--preset", "tiny", "--out", str(out)])
    assert not out.exists()
    monkeypatch.undo()
    # what kill -9 leaves before the first epoch ends, with another config
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"history": 10**30}))
    (out / "vocab.json").write_text("{}")
    (out / "notes.txt").write_text("the user's")  # not a run's file: refused, kept
    one_error(capsys, main, ["--preset", "tiny", "--out", out], "different config")
    (out / "notes.txt").unlink()
    assert run_main(main, ["--preset", "tiny", "--quiet", "--out", str(out)]) == 0
    assert (out / "metrics.json").is_file()
    assert json.loads((out / "config.json").read_text())["history"] == 8


@pytest.mark.parametrize("file, edit, words", [
    ("config.json", {"history": 9}, ["config.json: history 9 does not match the saved "
                                     "student (6, student.keras)"]),
    ("config.json", {"student_width": 32}, ["config.json: student_width 32", "(16"]),
    ("config.json", {"history": 10**30}, ["config.json: history must be", "in [1, 1024]"]),
    ("config.json", {"attention_units": [8.5]}, ["config.json: attention_units"]),
    ("vocab.json", None, ["vocab.json: event ids", "does not match the saved student"]),
])
def test_a_run_whose_files_do_not_match_its_student_is_one_error(tiny_run, tmp_path, capsys,
                                                                 file, edit, words):
    """Issue 29, family 6: an edited config.json (another history) used to give a Keras
    shape traceback in trainers.individual; now one error naming the file."""
    from trainers.individual import main

    edited = tmp_path / "edited"
    shutil.copytree(tiny_run, edited)
    if file == "config.json":
        config = json.loads((edited / file).read_text())
        (edited / file).write_text(json.dumps({**config, **edit}))
    else:  # one event more in the vocabulary than the student's embedding has rows
        vocab = json.loads((edited / file).read_text())
        vocab["event"] = [*vocab["event"], "an event the student never saw"]
        (edited / file).write_text(json.dumps(vocab))
    one_error(capsys, main, ["--run", edited, "--method", "none", "--out", tmp_path / "out"],
              *words)
    assert not (tmp_path / "out").exists()


# ------------------------------- issue 29, family 9: each epoch's order when it starts


def test_a_million_epochs_start_at_once_with_the_same_batches(tmp_path):
    """``--epochs 1000000`` used to build every epoch's shuffle order before the first
    epoch (no epoch finished in 96 s, memory doubling). Now the first batches come at once,
    in memory and streamed, and epoch e's batches depend only on (seed, e): a run resumed
    at epoch 1 sees what an uninterrupted one saw."""
    import itertools
    import math
    import time

    from pitune_tf.common.batching import index_batches, stateless_permutation
    from pitune_tf.data import Vocabularies, encode_events, make_windows, split_windows
    from pitune_tf.data.event_stream import EventStream
    from pitune_tf.data.synthetic import generate
    from pitune_tf.data.window_stream import WindowPlan, stream_splits
    from pitune_tf.population.training_loop import epoch_dataset

    log = generate("tiny", seed=0, with_oracle=False).population
    events = EventStream(log, chunk_events=800)
    vocabs = Vocabularies.from_counts(events.counts)
    in_memory = split_windows(make_windows(encode_events(log, vocabs), history=6))[0]
    streamed = stream_splits(events, WindowPlan(vocabs, 6), group_chunks=2)[0]
    for train in (in_memory, streamed):
        steps = math.ceil(len(train) / 64)

        def labels(first_epoch, n_batches, train=train):
            ds = epoch_dataset(train, 64, 3, first_epoch, 1_000_000)
            return [y.numpy().tolist() for _, y in itertools.islice(ds, n_batches)]

        start = time.perf_counter()
        two = labels(0, 2 * steps)
        assert time.perf_counter() - start < 60
        assert two[steps:] == labels(1, steps)  # resumed at epoch 1
        assert two[:steps] != two[steps:]
    want = [in_memory.label[index].tolist() for epoch in (0, 1)
            for index, _ in index_batches(stateless_permutation(len(in_memory), 3, epoch), 64)]
    assert [y.numpy().tolist() for _, y in itertools.islice(
        epoch_dataset(in_memory, 64, 3, 0, 1_000_000), len(want))] == want


def test_uaf_networks_this_machine_cannot_hold_fail_before_anything_is_written(tmp_path,
                                                                               capsys):
    """Issue 29, family 6: sizes within their ranges whose product no machine holds (here
    petabytes of activations) are one error once the data's item counts are known, before
    config.json is written."""
    from trainers.uaf import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"embedding_dim": 16384, "max_len": 4096,
                                  "batch_size": 65536}))
    one_error(capsys, main, ["--preset", "tiny", "--config", config, "--out", tmp_path / "run"],
              "UAF (embedding_dim 16384", "more than this machine's", "lower embedding_dim")
    assert listing(tmp_path) == ["config.json"]


@pytest.mark.slow  # about 40 s on 2 CPU cores
def test_a_million_epochs_train_until_early_stopping(tmp_path):
    """Issue 29, family 9, end to end: ``--epochs 1000000`` with patience 1 runs epoch after
    epoch from the start and ends where early stopping ends it."""
    from trainers.population import main

    out = tmp_path / "run"
    assert run_main(main, ["--preset", "tiny", "--epochs", "1000000", "--patience", "1",
                           "--quiet", "--out", str(out)]) == 0
    training = json.loads((out / "metrics.json").read_text())["training"]
    for phase in ("teacher", "student"):
        assert training[phase]["stopped_early"] and 1 < training[phase]["epochs"] < 100


# ------------------------ issue 29, family 7: a value that is not an id or a name


def _events(**columns):
    """A two-row canonical event table, ``columns`` replacing its own."""
    import pandas as pd

    table = {"user_id": ["u1", "u1"], "timestamp": pd.to_datetime(["2020-01-01 08:00",
                                                                   "2020-01-01 09:00"]),
             "event": ["a", "b"], "intent": ["A", "B"], "location": ["home", "work"]}
    return pd.DataFrame({**table, **columns})


@pytest.mark.parametrize("text, words", [
    ('{"a": "A",\n "b": null}', ["row 2", "event 'b'", "got null"]),
    ('{"a": [1, 2]}', ["event 'a'", "got a list [1, 2]"]),
    ('{"a": "A",\n\n "b": {"name": "B"}}', ["row 3", "got a struct"]),
    ('{"a": true}', ["got a boolean True"]),
    ('{"a": 1.5}', ["got a number 1.5"]),
    ('{"a": ""}', ["an empty intent"]),
    ('{"": "A"}', ["an empty event name"]),
    ('{"a": "A",\n "a": "B"}', ["row 2", "two different intents ('A' and 'B')"]),
    ('[["a", "A"]]', ["JSON object"]),
])
def test_json_mapping_values_that_are_not_intents(tmp_path, capsys, text, words):
    """Issue 29, family 7: a JSON mapping's value must be an intent name (text, or a whole
    number): null (once read as the intent "None"), a list, an object, a boolean, a
    fraction, an empty name or an event given two intents is one error at its line."""
    from pitune_tf.data.__main__ import main as data_main

    events = tmp_path / "events.csv"
    events.write_text("user_id,timestamp,event\nu1,2020-01-01 08:00,a\nu1,2020-01-01 09:00,b\n")
    mapping = tmp_path / "map.json"
    mapping.write_text(text)
    one_error(capsys, data_main, ["convert", events, "--mapping", mapping, "--out",
                                  tmp_path / "o.parquet"], str(mapping), *words)
    assert not (tmp_path / "o.parquet").exists()


def test_json_mapping_whole_numbers_are_intent_names(tmp_path):
    from pitune_tf.data.io import read_mapping

    mapping = tmp_path / "map.json"
    mapping.write_text('{"a": 3, "b": "B", "b": "B"}')  # a repeated key with the same intent
    assert read_mapping(mapping) == {"a": "3", "b": "B"}


@pytest.mark.parametrize("column, values, words", [
    ("event", [[1, 2], [3]], ["row 1", "column 'event'", "got a list [1, 2]"]),  # once "[1 2]"
    ("user_id", [{"k": "v"}, {"k": "w"}], ["row 1", "column 'user_id'", "got a struct"]),
    ("intent", [True, False], ["column 'intent'", "got a boolean True"]),
    ("location", ["home", ""], ["row 2", "column 'location'", "empty value"]),
    ("event", [b"ok", b"\xff"], ["row 2", "column 'event'", "not UTF-8"]),
    ("user_id", "DATES", ["column 'user_id'", "got a date-time"]),
    ("event", ["a", None], ["row 2", "column 'event'", "missing value"]),
    ("timestamp", [True, False], ["column 'timestamp'", "expected a timestamp", "boolean"]),
    ("timestamp", [[1], [2]], ["column 'timestamp'", "expected a timestamp", "a list [1]"]),
])
def test_parquet_values_that_are_not_ids_or_names(tmp_path, capsys, column, values, words):
    """Issue 29, family 7: a Parquet column of users, events, intents or locations holding
    lists, structs, booleans, empty text, bytes that are not UTF-8 or date-times (and a
    timestamp column of booleans or lists) is one located error, not a token such as
    "[1 2]"; from the data command and from the population command."""
    import pandas as pd

    from pitune_tf.data.__main__ import main as data_main
    from trainers.population import main as population

    if values == "DATES":
        values = pd.to_datetime(["2020-01-01", "2020-01-02"])
    path = tmp_path / "events.parquet"
    _events(**{column: values}).to_parquet(path)
    one_error(capsys, data_main, ["convert", path, "--out", tmp_path / "o.parquet"], str(path),
              *words)
    if column == "event":
        one_error(capsys, population, ["--data", path, "--out", tmp_path / "run"], *words)
    assert listing(tmp_path) == ["events.parquet"]


def test_numbers_and_utf8_bytes_are_still_ids(tmp_path):
    """What stays valid: whole numbers as ids (the Parquet int column, a float column of
    whole numbers) and UTF-8 bytes (a binary column written without its string type)."""
    import pandas as pd

    from pitune_tf.data.io import read_events

    path = tmp_path / "events.parquet"
    _events(user_id=[7.0, 7.0], event=[1, 2], location=[b"home", b"caf\xc3\xa9"]).to_parquet(path)
    table = read_events(path)
    assert table["user_id"].tolist() == ["7", "7"] and table["event"].tolist() == ["1", "2"]
    assert table["location"].tolist() == ["home", "café"]
    frame = _events(event=[pd.NA, "b"])
    with pytest.raises(Exception, match="row 1, column 'event': missing value"):
        from pitune_tf.data.io import canonicalize

        canonicalize(frame)


def test_mapping_and_adapter_columns_that_are_not_names(tmp_path, capsys):
    """The same check for a Parquet mapping, the Tsinghua and Foursquare adapters' id
    columns, a CSV mapping's empty intent, UAF atomic files and ColdRec lines."""
    import pandas as pd

    from pitune_tf.data.__main__ import main as data_main
    from trainers.uaf import main as uaf

    events = tmp_path / "events.csv"
    events.write_text("user_id,timestamp,event\nu1,2020-01-01 08:00,a\nu1,2020-01-01 09:00,b\n")
    mapping = tmp_path / "map.parquet"
    pd.DataFrame({"event": ["a", "b"], "intent": [["A"], ["B"]]}).to_parquet(mapping)
    out = ["--out", tmp_path / "o.parquet"]
    one_error(capsys, data_main, ["convert", events, "--mapping", mapping, *out],
              str(mapping), "row 1", "column 'intent'", "got a list ['A']")
    csv_mapping = tmp_path / "map.csv"
    csv_mapping.write_text('event,intent\na,A\nb,""\n')
    one_error(capsys, data_main, ["convert", events, "--mapping", csv_mapping, *out],
              "row 2", "column 'intent'", "missing value")
    usage = tmp_path / "usage.parquet"
    pd.DataFrame({"user_id": ["1", "1"], "time": ["20160420080000", "20160420090000"],
                  "location": ["c1", "c2"], "app_id": [[5], [6]],
                  "app_cate_id": ["1", "2"]}).to_parquet(usage)
    one_error(capsys, data_main, ["convert", "--format", "tsinghua", usage, *out],
              str(usage), "row 1", "column 'app_id'", "got a list [5]")
    traj, pois = tmp_path / "traj.csv", tmp_path / "poi.parquet"
    traj.write_text("userID,poiID,startTime\n1,p1,1460000000\n1,p2,1460003600\n")
    pd.DataFrame({"poiID": ["p1", "p2"], "poiCat": [False, True], "poiLon": [1.0, 2.0],
                  "poiLat": [1.0, 2.0]}).to_parquet(pois)
    one_error(capsys, data_main, ["convert", "--format", "foursquare", traj, pois, *out],
              str(pois), "row 1", "column 'poiCat'", "got a boolean False")
    atomic = tmp_path / "atomic"
    atomic.mkdir()
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    (atomic / "source.inter").write_text(header + "u1\ti1\t1\nu1\n")
    (atomic / "target.inter").write_text(header + "u1\tj1\t2\n")
    one_error(capsys, uaf, ["--preset", "tiny", "--data-atomic", atomic, "--out",
                            tmp_path / "run"], "source.inter", "row 2", "empty value")
    pre, fine = _coldrec(tmp_path, 2, b"1,null,,3\n")
    one_error(capsys, uaf, ["--preset", "tiny", "--data", pre, fine, "--out", tmp_path / "run"],
              str(fine), "row 3", "non-integer item id 'null'")
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "run").exists()


# ---------------- issue 29, family 8: timestamps pandas cannot hold, operating-system errors


@pytest.mark.parametrize("stamps, words", [
    (["2020-01-01 08:00", "2300-01-01 08:00"], ["row 2", "'2300-01-01 08:00'", "outside"]),
    (["2999-12-31T23:59:59+08:00", "2020-01-01T08:00+08:00"],
     ["row 1", "'2999-12-31T23:59:59+08:00'"]),
    (["1500-01-01", "2020-01-01"], ["row 1", "'1500-01-01'", "1677-09-21 to 2262-04-11"]),
    (["20200101080000", "23000101080000"], ["row 2", "'23000101080000'", "outside"]),
    (["1000000000", "10000000000"], ["row 2", "read as unix seconds", "outside"]),
])
def test_timestamps_outside_the_dates_pandas_holds(tmp_path, capsys, stamps, words):
    """Issue 29, family 8: years 2300, 2999 and 1500 (pandas' OutOfBoundsDatetime once,
    a traceback) in each timestamp format: one error naming the row, the value and the
    range."""
    from pitune_tf.data.__main__ import main as data_main

    events = tmp_path / "events.csv"
    events.write_text("user_id,timestamp,event,intent\n" + "".join(
        f"u1,{stamp},e{i},A\n" for i, stamp in enumerate(stamps)))
    one_error(capsys, data_main, ["convert", events, "--out", tmp_path / "o.parquet"],
              str(events), "column 'timestamp'", *words)
    assert listing(tmp_path) == ["events.csv"]


def test_parquet_and_foursquare_times_outside_the_dates_pandas_holds(tmp_path, capsys):
    import pandas as pd

    from pitune_tf.data.__main__ import main as data_main
    from trainers.population import main as population

    path = tmp_path / "events.parquet"
    far = pd.Series(pd.to_datetime(["2020-01-01", "2999-01-01"]).astype("datetime64[us]"))
    _events(timestamp=far).to_parquet(path)
    one_error(capsys, population, ["--data", path, "--out", tmp_path / "run"],
              "row 2", "column 'timestamp'", "2999-01-01", "outside")
    traj, pois = tmp_path / "traj.csv", tmp_path / "poi.csv"
    traj.write_text("userID,poiID,startTime\n1,p1,1460000000\n1,p1,99999999999\n")
    pois.write_text("poiID,poiCat,poiLon,poiLat\np1,Cafe,1.0,1.0\n")
    one_error(capsys, data_main, ["convert", "--format", "foursquare", traj, pois, "--out",
                                  tmp_path / "o.parquet"], str(traj), "row 2",
              "column 'startTime'", "outside")
    assert listing(tmp_path) == ["events.parquet", "poi.csv", "traj.csv"]


def _deny_writes_under(monkeypatch, folder):
    """``os.mkdir`` and ``os.open`` (for writing) of a path under ``folder`` raise
    PermissionError, as for a user without write permission there (the tests run as root,
    whom permissions do not stop)."""
    import errno

    folder = str(folder)
    real_mkdir, real_open = os.mkdir, os.open

    def denied(path):
        return os.path.abspath(os.fspath(path)).startswith(folder + os.sep)

    def mkdir(path, *args, **kwargs):
        if denied(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if denied(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


def test_out_where_the_user_may_not_write(tiny_run, tmp_path, capsys, monkeypatch):
    """Issue 29, family 8: ``--out`` in a folder the user may not write, for every command:
    one error line naming the path and the system's reason, exit status 2, nothing written."""
    from pitune_tf.data.__main__ import main as data_main
    from tflite.convert import main as convert
    from trainers.individual import main as individual
    from trainers.population import main as population
    from trainers.uaf import main as uaf

    events = tmp_path / "events.csv"
    events.write_text("user_id,timestamp,event,intent\nu1,2020-01-01 08:00,a,A\n"
                      "u1,2020-01-01 09:00,b,B\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    _deny_writes_under(monkeypatch, locked)
    for main, argv in [
        (population, ["--preset", "tiny", "--out", locked / "run"]),
        (uaf, ["--preset", "tiny", "--out", locked / "uaf"]),
        (individual, ["--run", tiny_run, "--method", "none", "--out", locked / "ind"]),
        (convert, ["--run", tiny_run, "--out", locked / "phone"]),
        (data_main, ["convert", events, "--out", locked / "sub" / "o.parquet"]),
    ]:
        line = one_error(capsys, main, argv, str(locked), "Permission denied")
        assert "Traceback" not in line
    assert listing(locked) == []


def test_out_in_a_folder_without_write_permission(tmp_path, capsys):
    """The same with the folder's real permissions, where they apply (not to root)."""
    if os.geteuid() == 0:
        pytest.skip("root writes whatever the permissions (the monkeypatched test and the "
                    "read-only file system test cover this)")
    from pitune_tf.data.__main__ import main as data_main

    events = tmp_path / "events.csv"
    events.write_text("user_id,timestamp,event,intent\nu1,2020-01-01 08:00,a,A\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        one_error(capsys, data_main, ["convert", events, "--out", locked / "o.parquet"],
                  str(locked / "o.parquet"), "Permission denied")
    finally:
        locked.chmod(0o755)
    assert listing(locked) == []


READ_ONLY_DRIVER = """
import contextlib, io, json, sys
from pitune_tf.common.cli import run_main
from pitune_tf.data.__main__ import main as data_main
folder, events, commands = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
cases = {"data": (data_main, ["convert", events, "--out", folder + "/o.parquet"])}
if "population" in commands:
    from trainers.population import main as population
    cases["population"] = (population, ["--preset", "tiny", "--out", folder + "/run"])
for name in commands:
    main, argv = cases[name]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_main(main, argv)
    print(json.dumps([name, code, err.getvalue()]), flush=True)
"""


def _on_a_read_only_mount(tmp_path, commands):
    """Runs ``commands`` of READ_ONLY_DRIVER with their outputs in a folder bind-mounted
    read-only in a mount namespace of their own (root only); returns [(name, status, err)]."""
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("mount"):
        pytest.skip("a read-only bind mount needs root and unshare/mount")
    folder = tmp_path / "ro"
    folder.mkdir()
    events = tmp_path / "events.csv"
    events.write_text("user_id,timestamp,event,intent\nu1,2020-01-01 08:00,a,A\n")
    driver = tmp_path / "driver.py"
    driver.write_text(READ_ONLY_DRIVER)
    script = (f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}" && '
              f'exec "{sys.executable}" "{driver}" "{folder}" "{events}" {",".join(commands)}')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                          text=True, timeout=600, cwd=root,
                          env={**os.environ, "PYTHONPATH": root, "CUDA_VISIBLE_DEVICES": ""})
    if "mount" in done.stderr and not done.stdout:
        pytest.skip(f"no read-only bind mount here: {done.stderr.strip()[:200]}")
    assert listing(folder) == []
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]


def test_out_on_a_read_only_file_system(tmp_path):
    """A real operating-system error (EROFS): one line naming the output and the system's
    words, exit status 2."""
    [(name, code, err)] = _on_a_read_only_mount(tmp_path, ["data"])
    assert code == 2 and err == f"error: {tmp_path / 'ro' / 'o.parquet'}: Read-only file system\n"


@pytest.mark.slow  # a TensorFlow start in a subprocess
def test_population_on_a_read_only_file_system(tmp_path):
    [(name, code, err)] = _on_a_read_only_mount(tmp_path, ["population"])
    assert code == 2 and err.count("\n") == 1 and "Read-only file system" in err, err
    assert err.startswith(f"error: {tmp_path / 'ro'}")


def test_file_size_limit_is_one_error(tmp_path):
    """RLIMIT_FSIZE (``ulimit -f``) reached while writing: SIGXFSZ does not kill the command;
    the write fails with EFBIG, reported as one line naming the output; nothing is left."""
    import resource
    import subprocess
    import sys

    events = tmp_path / "events.csv"
    events.write_text("user_id,timestamp,event,intent\n" + "".join(
        f"u{i % 7},2020-01-01 {i % 24:02d}:{i % 60:02d}:00,event{i},intent{i % 5}\n"
        for i in range(300)))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in ("o.parquet", "o.csv"):
        done = subprocess.run(
            [sys.executable, "-m", "pitune_tf.data", "convert", str(events), "--out",
             str(tmp_path / "out" / name)], capture_output=True, text=True, timeout=300,
            cwd=root, env={**os.environ, "PYTHONPATH": root},
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000)))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
        assert lines[0].startswith(f"error: {tmp_path / 'out' / name}: ")
        assert "File too large" in lines[0]
        assert listing(tmp_path / "out") == []


def test_file_size_signal_is_ignored_by_every_command():
    import signal

    from pitune_tf.common.cli import run_main

    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        assert run_main(lambda argv: 0, []) == 0
        assert signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # CPython's own setting


def test_names_too_long_and_symbolic_link_loops(tmp_path, capsys):
    """Issue 29, family 8: a name over the system's limit and a symbolic link loop (once
    "file not found") are one error line with the system's words, for inputs and outputs."""
    from pitune_tf.data.__main__ import main as data_main
    from trainers.population import main as population
    from trainers.uaf import main as uaf

    events = tmp_path / "events.csv"
    events.write_text("user_id,timestamp,event\nu1,2020-01-01 08:00,a\n")
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    long = tmp_path / ("x" * 300 + ".parquet")
    out = ["--out", tmp_path / "o.parquet"]
    one_error(capsys, data_main, ["convert", loop, *out], str(loop),
              "Too many levels of symbolic links")
    one_error(capsys, data_main, ["convert", long, *out], "File name too long")
    one_error(capsys, data_main, ["convert", events, "--mapping", loop, *out], str(loop),
              "Too many levels of symbolic links")
    one_error(capsys, data_main, ["convert", events, "--mapping", tmp_path / "none.json", *out],
              "mapping file not found")
    one_error(capsys, data_main, ["convert", events, "--out", long], "File name too long")
    one_error(capsys, population, ["--data", loop, "--out", tmp_path / "run"],
              "Too many levels of symbolic links")
    one_error(capsys, population, ["--preset", "tiny", "--out", tmp_path / ("r" * 300)],
              "File name too long")
    one_error(capsys, uaf, ["--preset", "tiny", "--data", loop, events, "--out",
                            tmp_path / "run"], "Too many levels of symbolic links")
    one_error(capsys, uaf, ["--preset", "tiny", "--data-atomic", loop, "--out",
                            tmp_path / "run"], "Too many levels of symbolic links")
    assert listing(tmp_path) == ["events.csv", "loop.csv"]


# ------------------------------------- issue 29, family 10: one converter failure, one line


def test_converter_failure_is_one_error_line(tmp_path, capfd, monkeypatch):
    """A model the TFLite converter cannot convert (an op outside the builtin set): one
    ``error:`` line, not the converter's MLIR diagnostics (``loc(...): error: ...``), its
    second ``error:`` line and its dump of the ops; ``--verbose`` shows them."""
    from tflite_fixtures import save_flex_op_model

    from tflite.export import convert_saved_model

    save_flex_op_model(tmp_path / "sm")
    monkeypatch.delenv("PITUNE_VERBOSE", raising=False)  # restored after the --verbose run
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
    capfd.readouterr()

    def convert(argv):
        convert_saved_model(tmp_path / "sm", ["train"])

    assert run_main(convert, []) == 2
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the model needs ops outside"), err
    assert "Erfc" in lines[0]
    assert run_main(convert, ["--verbose"]) == 2
    err = capfd.readouterr().err
    assert "is neither a custom op nor a flex op" in err and "tf.Erfc(" in err


def test_other_converter_failures_are_one_line():
    from tflite.errors import ConversionError

    failure = RuntimeError("loc(\"x\"): error: 'tf.Foo' op has a bad shape\n"
                           "error: failed while converting: 'main'\nDetails:\n  dump\n")
    message = str(ConversionError(failure, "infer"))
    assert message.startswith("the TFLite converter failed (signature 'infer'): 'tf.Foo' op has")
    assert "\n" not in message and "--verbose" in message


def test_link_loops_are_not_reported_as_missing(tmp_path, capsys):
    """A run directory, config file, weights file or --pretrained run that is a symbolic
    link loop: the system's words, not "not found" (which stays for what is missing)."""
    from tflite.convert import main as convert
    from trainers.population import main as population
    from trainers.uaf import main as uaf

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    links = "Too many levels of symbolic links"
    one_error(capsys, convert, ["--run", loop], f"run directory {loop}: {links}")
    one_error(capsys, population, ["--preset", "tiny", "--config", loop, "--out",
                                   tmp_path / "run"], f"config file {loop}: {links}")
    one_error(capsys, uaf, ["--preset", "tiny", "--pretrained", loop, "--out", tmp_path / "run"],
              f"--pretrained {loop}: {links}")
    one_error(capsys, convert, ["--run", tmp_path / "missing"], "run directory not found")
    assert listing(tmp_path) == ["loop"]


def test_a_second_run_through_a_symlink_is_refused(tmp_path, capsys):
    """Issue 29, family 3: the run lock is taken on the folder's real path, so a command
    reaching a live run's folder through a symbolic link is refused like one on the folder
    itself (individual, population and UAF), and nothing is written."""
    import subprocess
    import sys

    from individual_fixtures import make_tiny_run

    from trainers.individual import main as individual
    from trainers.population import main as population
    from trainers.uaf import main as uaf

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    code = ("import sys\nfrom pitune_tf.common.run_lock import run_lock\n"
            "with run_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(real)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        run = make_tiny_run(tmp_path / "population", n_users=1, with_teacher=False)
        link = tmp_path / "link"
        one_error(capsys, individual, ["--run", run, "--method", "none", "--out", link], "in use")
        one_error(capsys, population, ["--preset", "tiny", "--out", link], "in use")
        one_error(capsys, uaf, ["--preset", "tiny", "--out", link], "in use")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert listing(real) == [] and listing(tmp_path) == ["link", "population", "real"]


@pytest.mark.parametrize("argv, words", [
    (["--batch-size", "0"], "--batch-size must be a whole number in [1, 65536], got 0"),
    (["--batch-size", "100000000"], "--batch-size must be a whole number in [1, 65536]"),
    (["--qat-epochs", "-1"], "--qat-epochs must be a whole number in [0, 1000000], got -1"),
    (["--qat-max-windows", "-3"], "--qat-max-windows must be a whole number in [0, "),
    (["--clipnorm", "nan"], "--clipnorm must be a number > 0, got nan"),
    (["--clipnorm", "0"], "--clipnorm must be a number > 0, got 0"),
])
def test_convert_numbers_out_of_range_are_one_error(tmp_path, capsys, argv, words):
    """``tflite.convert``'s numbers are range-checked before the run is read (a batch of 10^8
    windows used to reach the converter): one ``error:`` line, exit 2, nothing written."""
    from tflite.convert import main as convert

    code = convert(["--run", str(tmp_path / "run"), *argv, "--out", str(tmp_path / "phone")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: " + words) and len(err.splitlines()) == 1, err
    assert listing(tmp_path) == []

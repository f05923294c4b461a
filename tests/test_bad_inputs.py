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

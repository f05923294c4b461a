"""Reading/writing canonical event tables; each bad input is one located error, exit 2."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.cli import run_main
from pitune_tf.common.errors import DataError
from pitune_tf.data import read_events, write_events
from pitune_tf.data.__main__ import main

HEADER = "user_id,timestamp,event,intent\n"


def write(path, text, mode="w"):
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_timestamp_formats_agree(tmp_path):
    iso = write(
        tmp_path / "iso.csv", HEADER + "u1,2016-04-20T08:09:33,a,A\nu1,2016-04-20 08:10:00,b,B\n"
    )
    tsinghua = write(tmp_path / "ts.csv", HEADER + "u1,20160420080933,a,A\nu1,20160420081000,b,B\n")
    unix = write(tmp_path / "unix.csv", HEADER + "u1,1461139773,a,A\nu1,1461139800,b,B\n")
    expected = pd.to_datetime(["2016-04-20 08:09:33", "2016-04-20 08:10:00"]).astype(
        "datetime64[ns]"
    )
    for path in (iso, tsinghua, unix):
        df = read_events(path)
        assert df["timestamp"].dtype == "datetime64[ns]"
        assert df["timestamp"].tolist() == expected.tolist(), path.name


def test_read_sorts_adds_location_and_round_trips(tmp_path):
    src = write(
        tmp_path / "e.csv",
        HEADER
        + "u2,2020-01-01 10:00:00,a,A\nu1,2020-01-02 10:00:00,b,B\nu1,2020-01-01 09:00:00,c,C\n",
    )
    df = read_events(src)
    assert list(df.columns) == ["user_id", "timestamp", "event", "intent", "location"]
    assert df["user_id"].tolist() == ["u1", "u1", "u2"] and df["event"].tolist() == ["c", "b", "a"]
    assert (df["location"] == "<none>").all()
    for name in ("out.parquet", "out.csv"):
        write_events(df, tmp_path / name)
        back = read_events(tmp_path / name)
        pd.testing.assert_frame_equal(back, df, check_dtype=False)
        assert back["timestamp"].dtype == "datetime64[ns]"


def test_intent_from_mapping_files(tmp_path):
    events = write(
        tmp_path / "e.csv",
        "user_id,timestamp,event\nu1,2020-01-01 10:00:00,a\nu1,2020-01-01 11:00:00,b\n",
    )
    json_map = write(tmp_path / "m.json", json.dumps({"a": "A", "b": "B"}))
    csv_map = write(tmp_path / "m.csv", "event,intent\na,A\nb,B\n")
    for mapping in (json_map, csv_map):
        assert read_events(events, mapping=mapping)["intent"].tolist() == ["A", "B"]


@pytest.mark.parametrize(
    "name, content, row, column, words",
    [
        (
            "missing.csv",
            "user_id,timestamp,intent\nu1,2020-01-01 10:00:00,A\n",
            0,
            "event",
            "missing column",
        ),
        (
            "badtime.csv",
            HEADER + "u1,2020-01-01 10:00:00,a,A\nu1,yesterday,b,B\n",
            2,
            "timestamp",
            "unparseable",
        ),
        (
            "mixed.csv",  # unix seconds first, ISO after: the error names the mix
            HEADER + "u1,1461139773,a,A\nu1,2016-04-20 08:10:00,b,B\n",
            1,
            "timestamp",
            "mixed timestamp formats",
        ),
        ("empty.csv", "", None, None, "empty file"),
        ("header.csv", HEADER, None, None, "empty file"),
        (
            "latin1.csv",
            (HEADER + "u1,2020-01-01 10:00:00,a,A\nu1,2020-01-01 11:00:00,caf\xe9,B\n").encode(
                "latin-1"
            ),
            2,
            "event",
            "UTF-8",
        ),
        ("hole.csv", HEADER + "u1,2020-01-01 10:00:00,,A\n", 1, "event", "missing value"),
        (
            "ragged.csv",
            HEADER + "u1,2020-01-01 10:00:00,a,A\nu1,2020-01-01 11:00:00,b,B,x\n",
            2,
            None,
            "malformed CSV",
        ),
    ],
)
def test_bad_input_is_one_located_error(tmp_path, capsys, name, content, row, column, words):
    path = write(tmp_path / name, content, "wb" if isinstance(content, bytes) else "w")
    with pytest.raises(DataError) as info:
        read_events(path)
    err = info.value
    assert err.path == str(path) and err.row == row and err.column == column
    assert words in str(err)
    out = tmp_path / "out.parquet"
    assert run_main(main, ["convert", "--format", "canonical", str(path), "--out", str(out)]) == 2
    stderr = capsys.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("error: ") and str(path) in stderr[0]
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [name]


def test_event_missing_from_mapping(tmp_path, capsys):
    events = write(
        tmp_path / "e.csv",
        "user_id,timestamp,event\nu1,2020-01-01 10:00:00,a\nu1,2020-01-01 11:00:00,zz\n",
    )
    mapping = write(tmp_path / "m.json", json.dumps({"a": "A"}))
    with pytest.raises(DataError) as info:
        read_events(events, mapping=mapping)
    assert (info.value.row, info.value.column) == (2, "event")
    assert "'zz' missing from the mapping file" in str(info.value)
    out = tmp_path / "out.csv"
    argv = ["convert", str(events), "--mapping", str(mapping), "--out", str(out)]
    assert run_main(main, argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not out.exists()


def test_cli_subprocess_bad_byte_exit_2(tmp_path):
    path = write(
        tmp_path / "bad.csv",
        (HEADER + "u1,2020-01-01 10:00:00,\xff\xfe,A\n").encode("latin-1"),
        "wb",
    )
    out = tmp_path / "out.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "pitune_tf.data", "convert", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "row 1" in lines[0] and "column 'event'" in lines[0], proc.stderr
    assert not out.exists()


def test_cli_synth_then_summarize(tmp_path, capsys):
    data = tmp_path / "synth"
    assert run_main(main, ["synth", "--preset", "tiny", "--seed", "0", "--out", str(data)]) == 0
    assert sorted(p.name for p in data.iterdir()) == [
        "individual.parquet",
        "individual_oracle.parquet",
        "individual_oracle_context.parquet",
        "mapping.json",
        "population.parquet",
        "population_oracle.parquet",
        "population_oracle_context.parquet",
    ]
    population = read_events(data / "population.parquet")
    mapping = json.loads((data / "mapping.json").read_text())
    assert set(population["event"]) <= set(mapping)
    report = tmp_path / "report"
    assert run_main(main, ["summarize", str(data), "--out", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "population" in printed and "individual" in printed
    summary = json.loads((report / "summary.json").read_text())
    assert summary["population"]["events"] == len(population)
    shares = summary["intent_share"]
    assert abs(sum(r["population"] for r in shares) - 1) < 1e-4
    assert (report / "intents.png").read_bytes()[:4] == b"\x89PNG"


def test_oracle_table_joins_by_user_and_time(tmp_path):
    from pitune_tf.data.features import timestamp_seconds
    from pitune_tf.data.intent_oracle import IntentOracle, find_oracle, oracle_path

    log = write(tmp_path / "log.csv", "x\n")
    assert find_oracle(log) is None
    write(oracle_path(log, ".csv"),
          "user_id,timestamp,music,news,alien\n"
          "b,2023-06-01 08:00:01,0.2,0.8,0\n"
          "a,2023-06-01 09:00:00,0.1,0.9,0\n"
          "a,2023-06-01 08:00:00,0.6,0.3,0.1\n")
    path = find_oracle(log)
    assert path == tmp_path / "log_oracle.csv"
    oracle = IntentOracle.read(path)
    seconds = timestamp_seconds(pd.to_datetime(["2023-06-01 09:00", "2023-06-01 08:00"]))
    tokens = ["<pad>", "<unk>", "news", "music", "video"]  # alien: not the run's; video: 0
    expected = [[0, 0, 0.9, 0.1, 0], [0, 0, 0.3, 0.6, 0]]
    np.testing.assert_allclose(oracle.scores("a", seconds, tokens), expected, rtol=1e-6)
    with pytest.raises(DataError, match="no oracle row for user 'b' at 2023-06-01 09:00:00"):
        oracle.scores("b", seconds, tokens)
    with pytest.raises(DataError, match="no oracle row for user 'c'"):
        oracle.scores("c", seconds, tokens)


@pytest.mark.parametrize(
    "content, row, column",
    [
        ("user_id,timestamp,music\na,2023-06-01 08:00,0.5\na,2023-06-01 08:00,0.5\n", 2,
         "timestamp"),
        ("user_id,timestamp,music\na,2023-06-01 08:00,-0.5\n", 1, "music"),
        ("user_id,music\na,0.5\n", 0, "timestamp"),
    ],
)
def test_bad_oracle_table_is_a_located_error(tmp_path, content, row, column):
    from pitune_tf.data.intent_oracle import IntentOracle

    with pytest.raises(DataError) as error:
        IntentOracle.read(write(tmp_path / "o.csv", content))
    assert (error.value.row, error.value.column) == (row, column)


def test_run_lock_refuses_a_second_live_run_and_takes_over_a_stale_lock(tmp_path):
    import os

    from pitune_tf.common.errors import UserInputError
    from pitune_tf.common.run_lock import run_lock

    run = tmp_path / "run"
    lock = tmp_path / ".run.lock"
    lock.write_text(str(os.getppid()))  # a live process (the test runner's parent) holds it
    with pytest.raises(UserInputError, match="in use"):
        with run_lock(run):
            pass
    lock.write_text("999999999")  # a process that no longer exists: stale, taken over
    with run_lock(run) as held:
        assert held == lock and lock.read_text() == str(os.getpid())
    assert not lock.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        with run_lock(tmp_path / "file"):
            pass

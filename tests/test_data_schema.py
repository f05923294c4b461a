"""The user's own schema: column names, unix seconds / milliseconds, time zones, unmapped
events, repeats; the same options on convert, the population and the individual command; a
run's saved schema read back by prediction, the individual stage and the phone bundle."""

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.cli import run_main
from pitune_tf.common.errors import DataError, UserInputError
from pitune_tf.data import read_events
from pitune_tf.data.__main__ import main
from pitune_tf.data.adapters import read_any
from pitune_tf.data.features import slot_ids, timestamp_seconds, weekday_ids
from pitune_tf.data.schema import ReadStats, Schema, parse_columns

# 1700000000 = Tue 2023-11-14 22:13:20 UTC = Wed 2023-11-15 06:13:20 in Asia/Shanghai (UTC+8)
T0 = 1_700_000_000
COLUMNS = "user_id=uid,timestamp=ts,event=app,location=cell"


def write_log(path, unit="ms"):
    scale = 1000 if unit == "ms" else 1
    rows = [("u1", T0, "wechat", "c1"), ("u1", T0 + 60, "taobao", "c1"),
            ("u1", T0 + 70, "taobao", "c1"), ("u2", T0 + 3600, "weather", "c2"),
            ("u2", T0 + 7200, "unknownapp", "c2")]
    text = "uid,ts,app,cell\n" + "".join(f"{u},{t * scale},{e},{c}\n" for u, t, e, c in rows)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def log(tmp_path):
    mapping = tmp_path / "map.csv"
    mapping.write_text("event,intent\nwechat,social\ntaobao,shopping\nweather,weather\n")
    return write_log(tmp_path / "log.csv"), mapping


def test_parse_columns_and_bad_specs():
    assert parse_columns(COLUMNS) == {"user_id": "uid", "timestamp": "ts", "event": "app",
                                      "location": "cell"}
    for bad in ("uid", "user=uid", "user_id=", "user_id=a,user_id=b", ""):
        with pytest.raises(UserInputError, match="--columns"):
            parse_columns(bad)


def test_milliseconds_and_seconds_agree_under_other_column_names(log, tmp_path):
    path, mapping = log
    seconds = write_log(tmp_path / "seconds.csv", unit="s")
    schema = Schema(columns=parse_columns(COLUMNS), unmapped="drop")
    expected = pd.to_datetime([T0, T0 + 60, T0 + 70, T0 + 3600], unit="s").tolist()
    for file, unit in ((path, "auto"), (path, "ms"), (seconds, "auto"), (seconds, "s")):
        stats = ReadStats()
        df = read_events(file, mapping, Schema(**{**schema.__dict__, "time_unit": unit}), stats)
        assert df["timestamp"].tolist() == expected, (file.name, unit)
        assert list(df.columns) == ["user_id", "timestamp", "event", "intent", "location"]
        assert df["location"].tolist() == ["c1", "c1", "c1", "c2"]
        assert stats.time_unit == ("ms" if file == path else "s")
    with pytest.raises(DataError, match="unix seconds"):  # ms values read as seconds overflow
        read_events(path, mapping, Schema(columns=parse_columns(COLUMNS), time_unit="s"))


def test_timezone_moves_weekday_and_slot(log):
    path, mapping = log
    base = Schema(columns=parse_columns(COLUMNS), unmapped="other")
    utc = read_events(path, mapping, base)
    stats = ReadStats()
    shanghai = read_events(path, mapping, Schema(**{**base.__dict__, "timezone": "Asia/Shanghai"}),
                           stats)
    assert utc["timestamp"].iloc[0] == pd.Timestamp("2023-11-14 22:13:20")
    assert shanghai["timestamp"].iloc[0] == pd.Timestamp("2023-11-15 06:13:20")
    s_utc, s_sh = (timestamp_seconds(df["timestamp"].to_numpy()) for df in (utc, shanghai))
    assert weekday_ids(s_utc)[0] == 2 and weekday_ids(s_sh)[0] == 3  # Tue -> Wed (Mon = 1)
    assert slot_ids(s_utc)[0] == 23 and slot_ids(s_sh)[0] == 7  # 22h -> 06h, slot 1 = 0h
    assert not stats.hints  # a time zone was given: no UTC hint
    no_zone = ReadStats()
    read_events(path, mapping, base, no_zone)
    assert any("--timezone" in hint for hint in no_zone.hints)


def test_zone_aware_strings_follow_the_timezone(tmp_path):
    path = tmp_path / "iso.csv"
    path.write_text("user_id,timestamp,event,intent\nu1,2023-11-14T22:13:20+00:00,a,A\n")
    assert read_events(path)["timestamp"].iloc[0] == pd.Timestamp("2023-11-14 22:13:20")
    shanghai = read_events(path, schema=Schema(timezone="Asia/Shanghai"))
    assert shanghai["timestamp"].iloc[0] == pd.Timestamp("2023-11-15 06:13:20")
    with pytest.raises(UserInputError, match="unknown time zone"):
        Schema(timezone="Mars/Olympus")


def test_each_unmapped_choice(log):
    path, mapping = log
    columns = parse_columns(COLUMNS)
    with pytest.raises(DataError, match="'unknownapp' missing") as err:
        read_events(path, mapping, Schema(columns=columns))
    assert err.value.row == 5 and err.value.column == "app"  # the file's own column name
    dropped, stats = None, ReadStats()
    dropped = read_events(path, mapping, Schema(columns=columns, unmapped="drop"), stats)
    assert len(dropped) == 4 and "unknownapp" not in set(dropped["event"])
    assert (stats.rows_read, stats.dropped_unmapped, stats.mapped_other) == (5, 1, 0)
    stats = ReadStats()
    other = read_events(path, mapping, Schema(columns=columns, unmapped="other"), stats)
    assert other["intent"].tolist() == ["social", "shopping", "shopping", "weather", "other"]
    assert (stats.rows_read, stats.dropped_unmapped, stats.mapped_other) == (5, 0, 1)


def test_merge_gap_counts_repeats(log):
    path, mapping = log
    stats = ReadStats()
    df = read_events(path, mapping, Schema(parse_columns(COLUMNS), unmapped="other",
                                           merge_gap_s=30), stats)
    assert len(df) == 4 and stats.repeats_merged == 1  # taobao 10 s after taobao


def test_missing_named_column_is_located(log):
    path, mapping = log
    with pytest.raises(DataError, match="--columns") as err:
        read_events(path, mapping, Schema(columns={"user_id": "user"}))
    assert err.value.column == "user" and err.value.row == 0


def test_convert_prints_what_it_did(log, tmp_path, capsys):
    path, mapping = log
    out = tmp_path / "out.parquet"
    argv = ["convert", str(path), "--mapping", str(mapping), "--columns", COLUMNS,
            "--timezone", "Asia/Shanghai", "--unmapped", "other", "--merge-gap", "30",
            "--out", str(out)]
    assert run_main(main, argv) == 0
    printed = capsys.readouterr().out
    assert "rows read: 5 (timestamps as unix milliseconds)" in printed
    assert "mapped to 'other' (event not in the mapping): 1" in printed
    assert "repeats merged: 1" in printed
    assert read_events(out)["timestamp"].iloc[0] == pd.Timestamp("2023-11-15 06:13:20")


def test_bad_columns_spec_is_one_error_line(log, tmp_path, capsys):
    path, _ = log
    argv = ["convert", str(path), "--columns", "user_id=uid,ts", "--out", str(tmp_path / "x.csv")]
    assert run_main(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --columns: 'ts' is not NAME=COLUMN")
    assert not (tmp_path / "x.csv").exists()


def test_adapters_refuse_columns(shared_data, tmp_path):
    folder = shared_data / "tsinghua_app_usage_sample"
    with pytest.raises(UserInputError, match="--format canonical"):
        read_any([folder / "data_sample.csv"], "tsinghua", schema=Schema(columns={"event": "x"}))


def test_tsinghua_hint_without_merge_gap(shared_data):
    folder = shared_data / "tsinghua_app_usage_sample"
    stats = ReadStats()
    df = read_any([folder / "data_sample.csv"], "tsinghua", stats=stats)
    assert stats.time_unit == "YYYYMMDDhhmmss" and stats.rows_read == len(df)
    assert any("--merge-gap 60" in hint for hint in stats.hints)
    merged = ReadStats()
    kept = read_any([folder / "data_sample.csv"], "tsinghua", schema=Schema(merge_gap_s=60),
                    stats=merged)
    assert not merged.hints and merged.repeats_merged == len(df) - len(kept) > 0


def test_population_and_individual_take_the_same_options(log):
    from pitune_tf.data.schema import schema_from_args
    from pitune_tf.individual.command_line import build_parser as individual_parser
    from pitune_tf.population.command_line import build_parser, config_from_args
    from pitune_tf.population.data_preparation import load_data

    path, mapping = log
    flags = ["--columns", COLUMNS, "--time-unit", "ms", "--timezone", "Asia/Shanghai",
             "--unmapped", "drop"]
    config = config_from_args(build_parser().parse_args(
        ["--data", str(path), "--mapping", str(mapping), *flags]))
    assert config.data_schema == {"columns": parse_columns(COLUMNS), "time_unit": "ms",
                                  "timezone": "Asia/Shanghai", "unmapped": "drop"}
    population, _ = load_data(config.replace(individual_fraction=0.5))
    assert population["timestamp"].min() >= pd.Timestamp("2023-11-15 06:13:20")
    args = individual_parser().parse_args(["--run", "r", "--data", str(path), *flags])
    assert schema_from_args(args) == Schema.from_dict(config.data_schema)
    with pytest.raises(UserInputError, match="data_schema"):
        config.replace(data_schema={"colums": {}})



# ---------------------------------------------------------------- a run carries its schema

RAW_FLAGS = ["--columns", COLUMNS, "--time-unit", "ms", "--timezone", "Asia/Shanghai"]


@pytest.fixture(scope="module")
def schema_run(tmp_path_factory):
    """A tiny population run trained on a user's own log: ``raw.csv`` (columns uid, ts in
    unix milliseconds, app, cell; no intent: ``apps.json`` maps apps to intents) read with
    ``--columns``, ``--time-unit ms`` and ``--timezone Asia/Shanghai``; ``canonical.csv``
    holds the same events with canonical names and Shanghai wall-clock times."""
    from pitune_tf.common.atomic import write_json
    from pitune_tf.data.synthetic import generate
    from trainers.population import main as population

    folder = tmp_path_factory.mktemp("own_log")
    data = generate("tiny", seed=0)
    events = pd.concat([data.population, data.individual])
    events = events[events["user_id"].isin(sorted(events["user_id"].unique())[:6])]
    events = events.groupby("user_id").head(120)  # 6 users, 720 events
    wall = pd.to_datetime(events["timestamp"])
    unix_ms = (wall - pd.Timedelta(hours=8)).astype("datetime64[ms]").astype("int64")
    pd.DataFrame({"uid": events["user_id"], "ts": unix_ms, "app": events["event"],
                  "cell": events["location"]}).to_csv(folder / "raw.csv", index=False)
    events.drop(columns=["intent"]).to_csv(folder / "canonical.csv", index=False)
    write_json(folder / "apps.json", data.mapping)
    assert population(["--preset", "tiny", "--data", str(folder / "raw.csv"), "--mapping",
                       str(folder / "apps.json"), *RAW_FLAGS, "--out", str(folder / "run"),
                       "--quiet"]) == 0
    return folder


def test_merge_schema_overrides_field_by_field():
    """Options left out parse to nothing; one given replaces its field of the run's schema,
    --columns only the names it gives (a name given as itself reads the canonical column)."""
    from pitune_tf.data.schema import merge_schema, schema_overrides
    from pitune_tf.prediction.command_line import build_parser

    def overrides(*flags):
        return schema_overrides(build_parser().parse_args(["--run", "r", "--events", "e", *flags]))

    saved = {"columns": parse_columns(COLUMNS), "time_unit": "ms", "timezone": "Asia/Shanghai"}
    assert overrides() == {}
    assert merge_schema(saved, overrides()) == Schema.from_dict(saved)
    assert merge_schema(saved, overrides("--timezone", "UTC", "--merge-gap", "30")) == Schema(
        columns=parse_columns(COLUMNS), time_unit="ms", timezone="UTC", merge_gap_s=30.0)
    merged = merge_schema(saved, overrides("--columns", "event=pkg,location=location"))
    assert merged.columns == {"user_id": "uid", "timestamp": "ts", "event": "pkg"}
    assert merged.time_unit == "ms" and merged.timezone == "Asia/Shanghai"
    assert merge_schema(None, {"time_unit": "s"}) == Schema(time_unit="s")
    with pytest.raises(UserInputError, match="--columns"):
        overrides("--columns", "user=uid")
    with pytest.raises(SystemExit):  # predictions read no intents: --unmapped is not offered
        overrides("--unmapped", "drop")


def test_predict_reads_the_runs_schema(schema_run, capsys):
    """pitune_tf.predict on the run's own raw log needs no schema option: the same lines as
    with every option repeated, and as the canonical file (its columns named as themselves
    override the run's names; its naive times are local already)."""
    from pitune_tf.common.json_files import read_json
    from pitune_tf.predict import main as predict
    from pitune_tf.prediction import NextIntentPredictor, format_predictions

    run = schema_run / "run"
    assert read_json(run / "config.json", dict)["data_schema"] == {
        "columns": parse_columns(COLUMNS), "time_unit": "ms", "timezone": "Asia/Shanghai"}
    raw = ["--run", str(run), "--events", str(schema_run / "raw.csv")]
    assert run_main(predict, raw) == 0
    lines = capsys.readouterr().out
    assert len(lines.splitlines()) == 6
    assert run_main(predict, [*raw, *RAW_FLAGS]) == 0
    assert capsys.readouterr().out == lines
    assert run_main(predict, ["--run", str(run), "--events", str(schema_run / "canonical.csv"),
                              "--columns", "user_id=user_id,timestamp=timestamp,event=event,"
                              "location=location", "--time-unit", "auto"]) == 0
    assert capsys.readouterr().out == lines
    predictor = NextIntentPredictor.from_run(run)
    assert predictor.schema == Schema.from_dict(read_json(run / "config.json", dict)["data_schema"])
    top = predictor.predict_next(schema_run / "raw.csv")
    assert "\n".join(format_predictions(top)) == lines.strip()


def test_predict_option_overrides_just_its_field(schema_run):
    """--timezone UTC over the run's Asia/Shanghai: the same columns and milliseconds, every
    newest event 8 hours earlier on the clock."""
    from pitune_tf.prediction import NextIntentPredictor

    run = schema_run / "run"
    own = NextIntentPredictor.from_run(run)
    utc = NextIntentPredictor.from_run(run, schema={"timezone": "UTC"})
    assert utc.schema == Schema(parse_columns(COLUMNS), time_unit="ms", timezone="UTC")
    a, b = (p.next_windows(schema_run / "raw.csv") for p in (own, utc))
    assert a.user.tolist() == b.user.tolist() and len(a) == 6
    assert (a.timestamp - b.timestamp).tolist() == [8 * 3600] * 6
    assert (a.event == b.event).all() and (a.location == b.location).all()


def test_individual_data_reads_the_runs_schema_and_mapping(schema_run):
    """trainers.individual --data on the raw log: the run's schema and mapping file by
    default (the same users and windows as given explicitly); an override shifts the times."""
    import json

    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.user_data import load_users
    from pitune_tf.population import load_run

    run = load_run(schema_run / "run")
    config, raw = IndividualConfig(min_history=1), schema_run / "raw.csv"
    own, _, _ = load_users(run, raw, config=config)
    given, _, _ = load_users(run, raw, mapping=schema_run / "apps.json", config=config,
                             schema=Schema(parse_columns(COLUMNS), time_unit="ms",
                                           timezone="Asia/Shanghai"))
    utc, _, _ = load_users(run, raw, config=config, schema={"timezone": "UTC"})
    assert [u.user for u in own] == [u.user for u in given] == [u.user for u in utc]
    assert len(own) == 6
    for a, b, c in zip(own, given, utc):
        np.testing.assert_array_equal(a.event_timestamp, b.event_timestamp)
        np.testing.assert_array_equal(a.test.label, b.test.label)
        np.testing.assert_array_equal(a.event_timestamp - c.event_timestamp, 8 * 3600)
    partial = json.loads((schema_run / "apps.json").read_text())
    partial.pop(pd.read_csv(raw)["app"].iloc[0])
    (schema_run / "partial.json").write_text(json.dumps(partial))
    with pytest.raises(DataError, match="missing from the mapping file"):  # --mapping wins
        load_users(run, raw, mapping=schema_run / "partial.json", config=config)


def test_phone_bundle_records_the_schema_and_no_path(schema_run):
    """preprocessing.json carries the run's schema (source_log); student_tflite.json names the
    run by name and relative path; no bundle file holds the run's absolute path."""
    import json

    from pitune_tf.population import load_run
    from tflite.phone_bundle import bundle_contents
    from tflite.run_export import run_reference

    run = load_run(schema_run / "run")
    contents = bundle_contents(run, run.config.history, batch_size=4)
    source = json.loads(contents["preprocessing.json"])["source_log"]
    assert {k: source[k] for k in ("columns", "time_unit", "timezone", "merge_gap_s")} == {
        "columns": parse_columns(COLUMNS), "time_unit": "ms", "timezone": "Asia/Shanghai",
        "merge_gap_s": None}
    assert run_reference(schema_run / "run", schema_run / "phone") == {"run": "run",
                                                                       "run_path": "../run"}
    assert run_reference(schema_run / "run", schema_run / "run")["run_path"] == "."
    for name, text in contents.items():
        assert str(schema_run.resolve().parents[1]) not in text, name

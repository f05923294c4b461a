"""Real-data adapters on the shared samples (skipped when ../shared/data is absent)."""

import pandas as pd
import pytest

from pitune_tf.common.cli import run_main
from pitune_tf.common.errors import DataError, UserInputError
from pitune_tf.data import Vocabularies, encode_events, make_windows, read_events
from pitune_tf.data.__main__ import main as data_main
from pitune_tf.data.adapters import read_foursquare, read_tsinghua

pytestmark = pytest.mark.shared_data


def test_tsinghua_sample(shared_data):
    folder = shared_data / "tsinghua_app_usage_sample"
    df = read_tsinghua(folder / "data_sample.csv", folder / "category.csv")
    assert len(df) == 3293 and df["user_id"].nunique() == 6
    raw = pd.read_csv(folder / "data_sample.csv")
    first = raw[raw.user_id == 4].sort_values("time", kind="stable").iloc[0]
    row = df.iloc[0]
    assert row["user_id"] == "4" and row["event"] == str(first.app_id)
    assert row["location"] == str(first.location)
    assert row["timestamp"] == pd.Timestamp(str(first.time))
    assert row["intent"] == "Social Networking" and first.app_cate_id == 5
    ids_only = read_tsinghua(folder / "data_sample.csv")
    assert ids_only["intent"].iloc[0] == "5"
    windows = make_windows(encode_events(df, Vocabularies.fit(df)), history=30)
    assert len(windows) == 3293 - 6
    merged = read_tsinghua(folder / "data_sample.csv", merge_gap_s=60)
    assert len(merged) < len(df) / 3
    assert merged["timestamp"].iloc[0] == row["timestamp"]


def test_tsinghua_merge_gap(tmp_path):
    data = tmp_path / "data.csv"
    rows = [
        "4,20160420080000,1,2,5",
        "4,20160420080030,1,2,5",
        "4,20160420080130,1,2,5",
        "4,20160420080300,1,2,5",
        "4,20160420080310,1,3,5",
        "5,20160420080311,1,3,5",
    ]
    data.write_text("user_id,time,location,app_id,app_cate_id\n" + "\n".join(rows) + "\n")
    merged = read_tsinghua(data, merge_gap_s=60)
    # 08:00:30 and 08:01:30 continue the 08:00:00 session; 08:03:00 starts a new one
    assert merged["timestamp"].dt.strftime("%H:%M:%S").tolist() == [
        "08:00:00",
        "08:03:00",
        "08:03:10",
        "08:03:11",
    ]
    assert merged["event"].tolist() == ["2", "2", "3", "3"]


def test_foursquare_sample(shared_data, tmp_path):
    folder = shared_data / "foursquare_tky"
    df = read_foursquare(folder / "traj-TKY.csv", folder / "poi-TKY.csv", event="poi")
    assert len(df) == 13367 and df["user_id"].nunique() == 44 and df["intent"].nunique() == 14
    first = df.iloc[0]  # userID 1, poiID 2 (Transport) at 1333843415 = 09:03:35 in Tokyo
    assert (first["user_id"], first["event"], first["intent"]) == ("1", "2", "Transport")
    assert first["timestamp"] == pd.Timestamp("2012-04-08 09:03:35")
    assert first["location"] == "2"
    cells = read_foursquare(folder / "traj-TKY.csv", folder / "poi-TKY.csv", cell_size=0.01)
    assert cells["location"].iloc[0] == "3566_13976"  # lat 35.669687, lon 139.767254
    assert cells["location"].nunique() < df["location"].nunique()
    # default: event = the POI's category, as the paper's Mobile dataset (events = intents)
    by_category = read_foursquare(folder / "traj-TKY.csv", folder / "poi-TKY.csv")
    assert (by_category["event"] == by_category["intent"]).all()
    assert by_category["event"].nunique() == 14 and by_category.iloc[0]["location"] == "2"
    with pytest.raises(UserInputError, match="foursquare event"):
        read_foursquare(folder / "traj-TKY.csv", folder / "poi-TKY.csv", event="venue")
    for event, expected in (("category", 14), ("poi", df["event"].nunique())):
        out = tmp_path / f"{event}.parquet"
        argv = ["convert", "--format", "foursquare", str(folder / "traj-TKY.csv"),
                str(folder / "poi-TKY.csv"), "--foursquare-event", event, "--cell-size", "0.05",
                "--out", str(out)]
        assert run_main(data_main, argv) == 0
        converted = read_events(out)
        assert converted["event"].nunique() == expected and converted["location"].nunique() == 55


def test_adapter_errors_name_source_columns(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text(
        "user_id,time,location,app_id,app_cate_id\n4,20160420080933,1,2,5\n4,2016042008093,1,2,99\n"
    )
    with pytest.raises(DataError) as info:
        read_tsinghua(data)
    assert (info.value.row, info.value.column) == (2, "time")
    categories = tmp_path / "category.csv"
    categories.write_text("app_type_id,en\n5,Social\n")
    data.write_text(
        "user_id,time,location,app_id,app_cate_id\n4,20160420080933,1,2,5\n4,20160420080934,1,2,99\n"
    )
    with pytest.raises(DataError) as info:
        read_tsinghua(data, categories)
    assert (info.value.row, info.value.column) == (2, "app_cate_id")


def test_converted_file_reads_back(shared_data, tmp_path):
    from pitune_tf.common.cli import run_main
    from pitune_tf.data.__main__ import main

    folder = shared_data / "foursquare_tky"
    out = tmp_path / "tky.parquet"
    argv = [
        "convert",
        "--format",
        "foursquare",
        str(folder / "traj-TKY.csv"),
        str(folder / "poi-TKY.csv"),
        "--out",
        str(out),
    ]
    assert run_main(main, argv) == 0
    assert len(read_events(out)) == 13367

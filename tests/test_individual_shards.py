"""The individual stage across machines: ``--shard I/N`` parts merged equal one run; the
partition; bad shards and incomplete or mixed parts are one-line errors."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.cli import run_main
from pitune_tf.common.errors import UserInputError
from pitune_tf.individual.shards import load_part, parse_shard, save_part, shard_indices

sys.path.insert(0, str(Path(__file__).parent))
from individual_fixtures import make_tiny_run

METRICS = ["prec_w", "rec_w", "prec_m", "rec_m", "ndcg@3", "ndcg@5", "acc"]
TIMINGS = {"seconds", "seconds_per_user", "infer_ms", "lgbm_infer_ms"}


def test_parse_shard_and_partition():
    assert parse_shard("0/1") == (0, 1) and parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "-1/2", "1/0", "1", "a/b", "1/2/3"):
        with pytest.raises(UserInputError, match="--shard"):
            parse_shard(bad)
    assert shard_indices(5, 0, 2) == [0, 2, 4] and shard_indices(5, 1, 2) == [1, 3]
    assert shard_indices(1, 1, 2) == []  # more shards than users: an empty part
    parts = [shard_indices(7, i, 3) for i in range(3)]
    assert sorted(sum(parts, [])) == list(range(7))


def test_part_records_round_trip(tmp_path):
    records = [{"user": "u1", "n_train": 3, "n_val": 1, "n_test": 2, "static": [2],
                "dynamic": [], "forget": [2], "retain": [3, 4],
                "y_true": np.array([2, 3], np.int32), "timestamp": np.array([5, 9], np.int64),
                "oracle_scores": np.full((2, 5), 0.2),
                "methods": {"none": {"scores": np.eye(5, dtype=np.float32)[:2],
                                     "info": {"seconds": 0.5, "val_ce_curve": [1.0, float("nan")],
                                              "unlearn_kept": True}}}}]
    save_part(tmp_path / "p.npz", records, {"index": 0, "count": 1})
    meta, back = load_part(tmp_path / "p.npz")
    assert meta == {"index": 0, "count": 1}
    (a,), (b,) = records, back
    assert set(a) == set(b) and b["static"] == [2] and b["user"] == "u1"
    for key in ("y_true", "timestamp", "oracle_scores"):
        np.testing.assert_array_equal(a[key], b[key])
        assert a[key].dtype == b[key].dtype
    np.testing.assert_array_equal(b["methods"]["none"]["scores"], a["methods"]["none"]["scores"])
    info = b["methods"]["none"]["info"]
    assert info["seconds"] == 0.5 and info["unlearn_kept"] is True and np.isnan(info["val_ce_curve"][1])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserInputError, match="not a shard part"):
        load_part(tmp_path / "bad.npz")


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """One run of 3 users and its 2 shards (2 + 1 users) merged."""
    from trainers.individual import main

    run = make_tiny_run(tmp_path_factory.mktemp("run"), n_users=3, with_teacher=False)
    root = tmp_path_factory.mktemp("out")
    common = ["--run", str(run), "--method", "none,prior,pituning", "--epochs", "1",
              "--unlearn-steps", "2",
              "--quiet", "--dump-predictions"]
    assert main([*common, "--out", str(root / "one")]) == 0
    for i in range(2):
        assert main([*common, "--shard", f"{i}/2", "--out", str(root / f"part{i}")]) == 0
    assert main(["merge", str(root / "part1"), str(root / "part0"), "--out",
                 str(root / "merged")]) == 0
    return run, root


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    return value


def test_two_shards_merged_equal_one_run(sharded):
    _, root = sharded
    one, merged = root / "one", root / "merged"
    parts = [json.loads((root / f"part{i}" / "summary.json").read_text()) for i in range(2)]
    assert [p["users"] for p in parts] == [2, 1] and parts[1]["shard"] == "1/2"

    a, b = pd.read_csv(one / "per_user.csv"), pd.read_csv(merged / "per_user.csv")
    assert list(a.columns) == list(b.columns) and len(a) == 3 * 5  # none, prior, pituning, oracle, oracle_context
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"), rtol=1e-6)

    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (one, merged))
    assert s2["users"] == 3 and s2["shards"] == 2 and "shard" not in s2
    for key in ("skipped", "skipped_users", "rare_intents", "forget_sets", "config", "oracle"):
        assert s1[key] == s2[key], key
    assert set(s1["methods"]) == set(s2["methods"]) == {"none", "prior", "pituning", "oracle", "oracle_context"}
    for method in s1["methods"]:  # pooled over all users' windows, mean over users, gap_closed
        m1, m2 = _without_timings(s1["methods"][method]), _without_timings(s2["methods"][method])
        assert m1["windows"] == m2["windows"] and m1["users"] == m2["users"] == 3
        for scope in ("pooled", "mean"):
            assert m1[scope] == pytest.approx(m2[scope], rel=1e-6), (method, scope)
        assert (m1.get("gap_closed") or {}) == pytest.approx(m2.get("gap_closed") or {}, rel=1e-6)
    assert set(s1["device_models"]) == set(s2["device_models"]) == {"pituning", "oracle"}
    for method, row in s1["device_models"].items():
        assert _without_timings(row) == pytest.approx(
            _without_timings(s2["device_models"][method]), rel=1e-6)
    table2 = [(d / "results.md").read_text().split("**Long tail")[0] for d in (one, merged)]
    assert table2[0] == table2[1]  # printed to 4 digits: equal
    pd.testing.assert_frame_equal(pd.read_csv(one / "predictions.csv"),
                                  pd.read_csv(merged / "predictions.csv"), rtol=1e-6)


def test_merge_refuses_missing_duplicate_and_foreign_parts(sharded, tmp_path, capsys):
    from trainers.individual import main

    run, root = sharded
    cases = [
        ([root / "part0"], "shard(s) 1/2 missing"),
        ([root / "part0", root / "part0"], "are both shard 0/2"),
        ([root / "part0", root / "one"], "is not a shard part"),
    ]
    for parts, message in cases:
        assert run_main(main, ["merge", *map(str, parts), "--out", str(tmp_path / "m")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert run_main(main, ["--run", str(run), "--shard", "2/2", "--out", str(tmp_path / "s")]) == 2
    assert "--shard 2/2" in capsys.readouterr().err

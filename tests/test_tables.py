"""The one table writer and the one run-directory reader (``pitune_tf.common``)."""

import math

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.run_files import RunFiles
from pitune_tf.common.tables import MeanStd, cell, frame_table, markdown_table, text_table


def test_cells():
    assert cell(0.123456) == "0.1235"
    assert cell(float("nan")) == "—" and cell(None, missing="n/a") == "n/a"
    assert cell(3) == "3" and cell("x") == "x"
    assert cell(MeanStd(0.5, 0.01)) == "0.5000 ± 0.0100"
    assert cell(MeanStd(0.5, math.nan)) == "0.5000" and cell(MeanStd(None, 0.1)) == "—"


def test_markdown_table_bolds_the_best_of_a_column():
    text = markdown_table(["Model", "MRR"], [["a", 0.2], ["b", 0.3], ["c", None]], bold_best=[1])
    assert text.splitlines() == ["| Model | MRR |", "|---|---|", "| a | 0.2000 |",
                                 "| b | **0.3000** |", "| c | — |"]


def test_text_table_is_fixed_width():
    text = text_table(["test", "acc"], [["student", 0.5]], first_width=8, width=7)
    assert text.splitlines() == ["test        acc", "student  0.5000"]


def test_frame_table_joins_mean_and_std():
    frame = pd.DataFrame({"method": ["a"], "acc_mean": [0.5], "acc_std": [0.25], "n": [3]})
    assert frame_table(frame).splitlines() == ["| method | acc | n |", "|---|---|---|",
                                               "| a | 0.5000 ± 0.2500 | 3 |"]


def test_run_files_errors_name_the_folder_and_file(tmp_path):
    with pytest.raises(UserInputError, match="run directory not found"):
        RunFiles(tmp_path / "absent")
    with pytest.raises(UserInputError, match="UAF run directory .* is missing config.json"):
        RunFiles(tmp_path, required=("config.json",), what="UAF run directory")
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "list.json").write_text("[1]")
    run = RunFiles(tmp_path, required=("config.json",))
    assert run.json("config.json") == {"a": 1}
    assert run.json("missing.json", default=None) is None
    with pytest.raises(UserInputError, match="expected a JSON object"):
        run.json("list.json")
    with pytest.raises(UserInputError, match="is missing other.json .rerun."):
        run.file("other.json", hint="rerun")


def test_frame_table_shows_a_count_with_gaps_as_whole_numbers():
    """A count column read back from csv with empty cells is float: shown as 3, not 3.0000;
    a float column with fractions keeps its decimals, and a mean's column is never rounded."""
    frame = pd.DataFrame({"method": ["a", "b"], "trials": [3.0, np.nan], "value": [0.5, 2.0],
                          "score_mean": [1.0, 2.0], "score_std": [0.1, np.nan]})
    text = frame_table(frame)
    assert "| a | 3 | 0.5000 | 1.0000 ± 0.1000 |" in text and "| b | — | 2.0000 | 2.0000 |" in text

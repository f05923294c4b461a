"""``python -m trainers.uaf`` end to end on tiny configs: errors, outputs, resume."""

import json
import logging
import sys

import pytest

from nextitnet.modes import with_baselines
from nextitnet.uaf_config import PRESET_NOTES, PRESETS
from pitune_tf.common.cli import run_main
from pitune_tf.common.plotting import is_png
from trainers.uaf import main


def test_cli_bad_coldrec_line_exits_2_naming_file_and_line(tmp_path, capsys):
    pre = tmp_path / "pre.csv"
    pre.write_text("1,2,3\n4,5,6\n")
    fine = tmp_path / "fine.csv"
    fine.write_text("1,2,,7\n1,2,7\n")
    code = run_main(main, ["--data", str(pre), str(fine), "--preset", "tiny", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(fine) in err and "row 2" in err and "missing the empty field" in err


def test_cli_unknown_config_key(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"embeding_dim": 4}))
    assert run_main(main, ["--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "embeding_dim" in capsys.readouterr().err


def test_cli_config_values_checked_after_every_source(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"policy": "lstm"}))
    assert run_main(main, ["--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "policy must be nextitnet or gru" in capsys.readouterr().err
    assert run_main(main, ["--epochs", "0", "--out", str(tmp_path / "r")]) == 2
    assert run_main(main, ["--mode", "soft,nope", "--preset", "tiny", "--out", str(tmp_path / "r")]) == 2
    assert "nope" in capsys.readouterr().err


def table_rows(text) -> list[str]:
    """The model names of the rows of a printed or written markdown table."""
    return [line.split("|")[1].strip() for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| Model")]


def test_cli_tiny_quiet_end_to_end_and_resume(tmp_path, capfd, caplog, monkeypatch):
    """``--mode soft --quiet`` (on a terminal): the tables alone on stdout, nothing on stderr,
    no log record, no progress bar; the tables and files carry MostPop, Random and the
    synthetic data's oracle."""
    out = tmp_path / "run"
    argv = ["--mode", "soft", "--preset", "tiny", "--out", str(out), "--quiet"]
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # bars would be drawn
    assert run_main(main, argv) == 0
    printed, err = capfd.readouterr()
    assert err == "" and "\r" not in printed and "%|" not in printed and "step" not in printed
    assert [r.getMessage() for r in caplog.records if r.levelno < logging.ERROR] == []
    lines = [line for line in printed.splitlines() if line.strip()]
    assert all(line.startswith(("|", "**")) for line in lines), lines
    rows = ["MostPop", "Random", "UAF-Soft", "Oracle"]  # synthetic data: its oracle, the ceiling
    assert table_rows(printed) == rows * 2  # sampled, full ranking
    assert table_rows((out / "table.md").read_text()) == rows * 2
    assert list(json.loads((out / "metrics.json").read_text())) == ["mostpop", "random-items", "soft",
                                                                   "oracle"]
    metrics = json.loads((out / "metrics.json").read_text())["soft"]
    stats = metrics["gate_statistics"]
    assert metrics["utilisation"] == stats["block_on_share"]  # utilisation: share of users, gate on
    assert json.loads((out / "utilisation.json").read_text()) == {"soft": metrics["utilisation"]}
    assert {"mrr@5", "hr@5", "hr@20", "full_mrr@5", "full_hr@20"} <= set(metrics["test"])
    assert len(metrics["utilisation"]) == 2 and metrics["best_epoch"] == 1
    assert metrics["val_curves"]["mrr@5"] == metrics["val_curve"] and len(metrics["val_curves"]["hr@5"]) == 1
    for name in ("table.md", "utilisation.png", "curves.png", "pretrain/backbone.weights.h5"):
        assert (out / name).is_file()
    assert is_png(out / "curves.png") and "![curves](curves.png)" in (out / "table.md").read_text()
    assert not (out / "modes/soft/backup").exists() and not (out / "pretrain/backup").exists()
    first = (out / "modes/soft/metrics.json").read_text()
    assert main(argv) == 0  # resumes: every stage is already done
    assert (out / "modes/soft/metrics.json").read_text() == first
    vocab = json.loads((out / "source_vocab.json").read_text())
    assert vocab["reserved"] == ["<pad>", "<unk>"] and vocab["tokens"][:2] == ["<pad>", "<unk>"]
    reuse = ["--mode", "finetune-cls", "--preset", "tiny", "--pretrained", str(out), "--quiet",
             "--out", str(tmp_path / "reuse")]
    assert main(reuse) == 0
    assert not (tmp_path / "reuse/pretrain").exists()  # the backbone came from the first run


def test_cli_overwrite_replaces_a_run_of_another_config_and_keeps_it_on_failure(
        tmp_path, capsys, monkeypatch):
    """Another seed on the same --out: exit 2 without --overwrite; with it the run is replaced;
    a replacement that fails after the old run was moved aside puts the old run back."""
    import nextitnet.uaf_run

    out = tmp_path / "run"
    argv = ["--mode", "mostpop", "--preset", "tiny", "--out", str(out), "--quiet"]
    seed = lambda: json.loads((out / "config.json").read_text())["config"]["seed"]  # noqa: E731
    assert main([*argv, "--seed", "3"]) == 0 and seed() == 3
    capsys.readouterr()
    assert run_main(main, [*argv, "--seed", "4"]) == 2
    err = capsys.readouterr().err
    assert "a different config" in err and "--overwrite" in err and seed() == 3
    assert main([*argv, "--seed", "4", "--overwrite"]) == 0 and seed() == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing aside, no lock
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(*args, **kwargs):
        assert (tmp_path / ".run.replaced").is_dir() and seed() == 5  # after the swap
        raise RuntimeError("failed after the swap")

    monkeypatch.setattr(nextitnet.uaf_run, "write_reports", fail)
    try:
        main([*argv, "--seed", "5", "--overwrite"])
    except RuntimeError:
        pass
    else:
        raise AssertionError("the failing run did not fail")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_with_baselines_scores_mostpop_and_random_first_once():
    assert with_baselines(["soft"]) == ["mostpop", "random-items", "soft"]
    assert with_baselines(["hard", "mostpop", "soft"]) == ["mostpop", "random-items", "hard", "soft"]


def test_cli_output_one_labelled_line_each_and_utilisation_as_stored(tmp_path, capsys):
    """Not a terminal: one line per epoch, every log line whole (none glued to a bar), the
    baselines "scored", the two per-block gate figures named and equal to the stored ones."""
    out = tmp_path / "run"
    assert main(["--mode", "soft", "--preset", "tiny", "--epochs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "\r" not in printed and "fine-tuning mode" not in printed and "====" not in printed
    lines = printed.splitlines()
    assert lines[0] == f"UAF: mode mostpop,random-items,soft, task recommendation, out {out}"
    assert lines[1].startswith("settings (preset tiny; all of them: --print-config): embedding_dim=8, ")
    assert "epochs=2 (command line)" in lines[1] and lines[2] == "data: synthetic:tiny"
    logs = [line for line in lines[3:] if line.startswith("[")]
    assert all(line.startswith(("[pretrain] ", "[mostpop] ", "[random-items] ", "[soft] ", "[oracle] "))
               for line in logs)
    assert "[pretrain] epoch 1/1: loss " in printed and "- validation loss " in printed
    assert "[soft] epoch 2/2: loss " in printed and "- validation mrr@5 " in printed
    assert any(line.startswith("[mostpop] scored without training (1/4): test mrr@5 ") for line in logs)
    assert any(line.startswith("[random-items] scored without training (2/4): test ") for line in logs)
    assert any(line.startswith("[soft] fine-tuned (3/4): test mrr@5 ") for line in logs)
    assert any(line.startswith("[oracle] scored without training (4/4): test ") for line in logs)
    stats = json.loads((out / "modes/soft/metrics.json").read_text())["gate_statistics"]
    stored = json.loads((out / "utilisation.json").read_text())["soft"]
    rounded = lambda values: str([round(v, 3) for v in values])  # noqa: E731
    assert (f"utilisation = share of users whose gate is on (>= 0.5) {rounded(stored)} "
            "(utilisation.json, Figure 3)") in printed
    assert f"mean gate value over users {rounded(stats['block_mean'])}" in printed
    assert table_rows(printed) == ["MostPop", "Random", "UAF-Soft", "Oracle"] * 2
    assert lines[-1].startswith(f"run directory: {out}")


def test_fit_progress_one_bar_per_fit_log_lines_on_their_own(capsys, monkeypatch):
    """On a terminal: one tqdm bar for the whole fit (no Keras bar), the validation score in
    its postfix, a line said during the fit on a line of its own."""
    import numpy as np

    from nextitnet.fit_progress import FitProgress, say
    from pitune_tf.common.keras import keras

    class Scores(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_mrr@5"] = 0.25
            say("[x] a log line", "auto")

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 3)), np.zeros((8, 1)), batch_size=4, epochs=2, verbose=0,
              callbacks=[Scores(), FitProgress("x")])
    printed = capsys.readouterr().out
    assert "Epoch 1/2" not in printed and "====" not in printed  # no Keras output
    assert "[x]: 100%" in printed and "4/4" in printed and "validation mrr@5 0.2500" in printed
    assert printed.count("[x] a log line") == 2
    for start in [i for i in range(len(printed)) if printed.startswith("[x] a log line", i)]:
        assert start == 0 or printed[start - 1] in "\r\n"  # a line of its own
    say("nothing", 0)
    assert capsys.readouterr().out == ""


def test_cli_print_config_resolves_preset_file_and_flags_and_exits_0(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"loss": "bpr", "epochs": 7}))
    out = tmp_path / "run"
    argv = ["--preset", "tiny", "--config", str(cfg), "--epochs", "2", "--print-config", "--out", str(out)]
    assert run_main(main, argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"# python -m trainers.uaf: preset tiny < --config {cfg} < command line"
    assert "embedding_dim = 8  # preset tiny" in lines and "kernel_size = 3" in lines
    assert f'loss = "bpr"  # --config {cfg}' in lines and "epochs = 2  # command line" in lines
    assert "block_dilations = [1, 2]  # preset tiny" in lines
    assert lines[-1] == f"# mode mostpop,random-items,soft, task recommendation, out {out}"
    assert not out.exists()  # nothing ran


def test_cli_help_one_line_per_preset(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert set(PRESET_NOTES) == set(PRESETS)
    for name in PRESETS:
        assert sum(line.split()[:1] == [name] and line.strip().endswith(PRESET_NOTES[name])
                   for line in lines) == 1


def test_cli_preset_paper_prints_the_papers_values(capsys):
    """``--preset paper`` is UAF as written (Sec. 3, 4.3): no RL warm-up, BPR, a zero head,
    gamma 1, no entropy bonus, the exact pretraining softmax, the paper's sizes."""
    assert run_main(main, ["--preset", "paper", "--print-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# python -m trainers.uaf: preset paper < command line"
    for line in ("rl_warmup_epochs = 0", 'loss = "bpr"', 'head_bias_init = "zeros"', "gamma = 1.0",
                 "entropy_weight = 0.0", "beta = 1.0", "temperature = 10.0", 'reward_form = "paper"',
                 'representation = "last"', 'pretrain_loss = "full"', "learning_rate = 0.0001",
                 "embedding_dim = 128", "block_dilations = [1, 4, 1, 4, 1, 4, 1, 4]",
                 "kernel_size = 3", "max_len = 50", "batch_size = 256", 'policy = "nextitnet"',
                 "policy_dilations = [1, 4]", "fractions = [0.8, 0.05, 0.15]",
                 "train_fraction = 1.0"):
        assert f"{line}  # preset paper" in lines, line
    assert run_main(main, ["--preset", "paper", "--rl-warmup-epochs", "1", "--gamma", "10",
                           "--entropy-weight", "0.3", "--head-bias-init", "popularity",
                           "--pretrain-loss", "auto", "--print-config"]) == 0
    lines = capsys.readouterr().out.splitlines()  # each departure has its flag
    for line in ("rl_warmup_epochs = 1", "gamma = 10.0", "entropy_weight = 0.3",
                 'head_bias_init = "popularity"', 'pretrain_loss = "auto"'):
        assert f"{line}  # command line" in lines, line
    assert run_main(main, ["--print-config"]) == 0  # the demo keeps our defaults
    assert "gamma = 10.0" in capsys.readouterr().out.splitlines()

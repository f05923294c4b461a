"""``python -m trainers.uaf`` end to end on tiny configs: errors, outputs, resume."""

import json

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


def test_cli_tiny_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    argv = ["--mode", "soft", "--preset", "tiny", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())["soft"]
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
    import nextitnet.uaf_runner

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

    monkeypatch.setattr(nextitnet.uaf_runner, "write_reports", fail)
    try:
        main([*argv, "--seed", "5", "--overwrite"])
    except RuntimeError:
        pass
    else:
        raise AssertionError("the failing run did not fail")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]

"""Fault injection: ``kill -9`` at named points of a run, then the same command again, which
must resume to exactly the uninterrupted run's results (issue 12).

The kills are deterministic: the library calls ``pitune_tf.common.fault.fault_point`` at
named points, and a child process started with ``PITUNE_FAULT=<point>`` sends itself SIGKILL
there (no cleanup handler runs, as with a real ``kill -9``). Each command gets one case in
the default run when it is fast enough; the others are marked slow (``--runslow``).

| command | kill points (default run in bold) |
|---|---|
| ``trainers.population`` | teacher_epoch:1, teacher_checkpoint:1, teacher_best:1, student_epoch:1, write:metrics.json |
| ``trainers.uaf`` | uaf_soft_epoch:1, uaf_pretrain_epoch:1, uaf_pretrain_best:2, uaf_soft_best:1, uaf_soft_scored:1, write:metrics.json |
| ``trainers.individual`` | **user:1**, write:per_user.csv |
| any atomic write | **write:<file>**: the previous file stays whole |
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = ("seconds", "_ms")  # keys whose values are wall-clock times, not results


def run_cli(module, args, fault=None, cwd=ROOT):
    """``python -m module args`` in a child process; with ``fault`` it must die by SIGKILL at
    that point, without it it must succeed."""
    env = {k: v for k, v in os.environ.items() if k != "PITUNE_FAULT"}
    if fault:
        env["PITUNE_FAULT"] = fault
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1200)
    if fault:
        assert proc.returncode == -signal.SIGKILL, (
            f"{fault} was not reached (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_same_results(got, want, where="", rel=1e-6):
    """Equal JSON values, floats to ``rel``, keys naming wall-clock times skipped."""
    if isinstance(want, dict):
        keys = {k for k in want if not any(t in k for t in TIMING_KEYS)}
        assert keys == {k for k in got if not any(t in k for t in TIMING_KEYS)}, where
        for key in keys:
            assert_same_results(got[key], want[key], f"{where}.{key}", rel)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            assert_same_results(a, b, f"{where}[{i}]", rel)
    elif isinstance(want, float) or isinstance(got, float):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=rel,
                                                                              abs=1e-9), where
    else:
        assert got == want, where


def listing_all(folder) -> list[str]:
    """Every name under ``folder``, hidden ones included, relative to it."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def no_temporaries(folder) -> None:
    stale = [name for name in listing_all(folder) if ".tmp" in name]
    assert not stale, stale


def read_json(path):
    return json.loads(Path(path).read_text())


def kill_then_resume(module, args, out, fault):
    """The command killed at ``fault``, then run again to the end on the same ``out``."""
    run_cli(module, [*args, "--out", out], fault=fault)
    run_cli(module, [*args, "--out", out])


# ------------------------------------------------------------------------ population

POPULATION = ["--preset", "tiny", "--max-train-windows", "200", "--batch-size", "50",
              "--teacher-epochs", "2", "--student-epochs", "2"]


@pytest.fixture(scope="module")
def population_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("population") / "uninterrupted"
    run_cli("trainers.population", [*POPULATION, "--out", out])
    return out


@pytest.mark.slow  # three processes: about 55 s of CPU
@pytest.mark.parametrize("fault", [
    "teacher_epoch:1",
    "teacher_checkpoint:1",  # state.json lags the checkpoint
    "teacher_best:1",  # best weights written, best.json not
    "student_epoch:1",
    "write:metrics.json",  # the last file of the run
])
def test_population_resumes_to_the_uninterrupted_run(population_reference, tmp_path, fault):
    out = tmp_path / "run"
    kill_then_resume("trainers.population", POPULATION, out, fault)
    assert_same_results(read_json(out / "metrics.json"),
                        read_json(population_reference / "metrics.json"))
    got, want = read_json(out / "p_out.json"), read_json(population_reference / "p_out.json")
    assert got["intents"] == want["intents"]
    np.testing.assert_allclose(got["p_out"], want["p_out"], rtol=1e-6)
    assert not (out / ".checkpoints").exists()
    no_temporaries(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock, nothing aside


@pytest.mark.slow
def test_population_overwrite_killed_keeps_the_old_run_then_completes(population_reference,
                                                                       tmp_path):
    """``--overwrite`` killed while writing the new run: the old run is kept whole (moved
    aside); the same command again finishes the new run and only then drops the old one."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(population_reference, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    args = [*POPULATION, "--seed", "1", "--overwrite", "--out", out]
    run_cli("trainers.population", args, fault="write:metrics.json")
    aside = tmp_path / ".run.replaced"
    assert {p.relative_to(aside): p.read_bytes() for p in aside.rglob("*") if p.is_file()} == before
    run_cli("trainers.population", args)
    assert read_json(out / "config.json")["seed"] == 1 and not aside.exists()


# ------------------------------------------------------------------------------- UAF

UAF = ["--preset", "tiny", "--mode", "soft", "--epochs", "2", "--pretrain-epochs", "2",
       "--quiet"]


@pytest.fixture(scope="module")
def uaf_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("uaf") / "uninterrupted"
    run_cli("trainers.uaf", [*UAF, "--out", out])
    return out


@pytest.mark.slow  # three processes: about 50 s of CPU
@pytest.mark.parametrize("fault", [
    "uaf_soft_epoch:1",  # fine-tuning, after epoch 1's backup
    "uaf_pretrain_epoch:1",
    "uaf_pretrain_best:2",  # best weights, no state.json
    "uaf_soft_best:1",
    "uaf_soft_scored:1",  # state.json ahead of the backup
    "write:metrics.json",  # the mode's metrics.json
])
def test_uaf_resumes_to_the_uninterrupted_run(uaf_reference, tmp_path, fault):
    out = tmp_path / "run"
    kill_then_resume("trainers.uaf", UAF, out, fault)
    for name in ("metrics.json", "pretrain/history.json", "modes/soft/metrics.json"):
        assert_same_results(read_json(out / name), read_json(uaf_reference / name), name)
    history = read_json(out / "pretrain/history.json")
    assert len(history["loss"]) == len(history["val_loss"]) == 2  # no epoch lost to the kill
    assert len(read_json(out / "modes/soft/metrics.json")["train_losses"]["loss"]) == 2
    assert not (out / "modes/soft/backup").exists() and not (out / "pretrain/backup").exists()
    no_temporaries(out)


# ------------------------------------------------------------------ individual stage

INDIVIDUAL = ["--method", "none,pituning"]  # with the progress bar (on stderr)


@pytest.fixture(scope="module")
def individual_reference(tmp_path_factory):
    from individual_fixtures import make_tiny_run

    run = make_tiny_run(tmp_path_factory.mktemp("individual") / "run", n_users=2,
                        with_teacher=False)
    out = run.parent / "uninterrupted"
    run_cli("trainers.individual", ["--run", run, *INDIVIDUAL, "--out", out])
    return run, out


def assert_same_per_user(got_path, want_path):
    got, want = pd.read_csv(got_path), pd.read_csv(want_path)
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    for column in want.columns:
        if "seconds" in column:
            continue
        if want[column].dtype.kind in "fi":
            np.testing.assert_allclose(got[column], want[column], rtol=1e-6, err_msg=column)
        else:
            assert got[column].fillna("").tolist() == want[column].fillna("").tolist(), column


@pytest.mark.parametrize("fault", [
    "user:1",
    pytest.param("write:per_user.csv", marks=pytest.mark.slow),  # every user done
])
def test_individual_stage_resumes_to_the_uninterrupted_run(individual_reference, tmp_path,
                                                           fault):
    run, reference = individual_reference
    out = tmp_path / "out"
    run_cli("trainers.individual", ["--run", run, *INDIVIDUAL, "--out", out], fault=fault)
    done = int(fault.split(":")[1]) if fault.startswith("user:") else 2
    assert len(list((out / ".users").glob("*.pkl"))) == done  # the finished users are kept
    proc = run_cli("trainers.individual", ["--run", run, *INDIVIDUAL, "--out", out])
    assert f"{done}/2" in proc.stderr  # the progress bar starts at the users already done
    assert_same_per_user(out / "per_user.csv", reference / "per_user.csv")
    got, want = read_json(out / "summary.json"), read_json(reference / "summary.json")
    assert_same_results(got["methods"], want["methods"], "methods")
    assert got["forget_sets"] == want["forget_sets"]
    assert sorted(p.name for p in out.iterdir()) == ["gains.png", "per_user.csv", "results.md",
                                                     "summary.json"]


def test_individual_records_of_another_configuration_are_not_reused(individual_reference,
                                                                     tmp_path):
    """A killed stage rerun with other options starts over (its kept users do not leak in)."""
    from pitune_tf.individual.stage import FinishedUsers

    kept = FinishedUsers(tmp_path / ".users", {"config": 1})
    kept.save(0, {"user": "u"})
    assert FinishedUsers(tmp_path / ".users", {"config": 1}).load(0) == {"user": "u"}
    assert FinishedUsers(tmp_path / ".users", {"config": 2}).load(0) is None
    (tmp_path / ".users" / "1.pkl").write_bytes(b"truncated")  # a damaged record: recomputed
    assert FinishedUsers(tmp_path / ".users", {"config": 2}).load(1) is None


# ------------------------------------------------------------------ writes killed midway

def test_a_write_killed_midway_leaves_the_previous_file_whole(tmp_path):
    """``kill -9`` between a complete temporary file and its rename: the previous file is
    untouched (every output of the project goes through ``atomic_path``)."""
    target = tmp_path / "summary.json"
    target.write_text('{"previous": true}\n')
    code = ("from pitune_tf.common.atomic import write_json; import sys; "
            "write_json(sys.argv[1], {'new': list(range(100000))})")
    env = {**os.environ, "PITUNE_FAULT": "write:summary.json"}
    proc = subprocess.run([sys.executable, "-c", code, str(target)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert target.read_text() == '{"previous": true}\n'
    (stale,) = tmp_path.glob(".summary.json.*.tmp")  # the killed writer's complete temporary
    env.pop("PITUNE_FAULT")
    subprocess.run([sys.executable, "-c", code, str(target)], cwd=ROOT, env=env, check=True,
                   timeout=120)
    assert len(read_json(target)["new"]) == 100000
    assert listing_all(tmp_path) == ["summary.json"]  # the next write removed the temporary


@pytest.mark.slow
def test_individual_rerun_killed_while_writing_keeps_the_previous_outputs(individual_reference,
                                                                          tmp_path):
    """An individual stage rerun into a finished output directory, killed while writing its
    tables: the previous ``per_user.csv`` and ``summary.json`` stay as they were."""
    import shutil

    run, reference = individual_reference
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = {name: (out / name).read_bytes() for name in ("per_user.csv", "summary.json")}
    args = ["--run", run, "--method", "none", "--out", out]
    run_cli("trainers.individual", args, fault="write:per_user.csv")
    assert {name: (out / name).read_bytes() for name in before} == before
    run_cli("trainers.individual", args, fault="write:summary.json")
    assert (out / "summary.json").read_bytes() == before["summary.json"]

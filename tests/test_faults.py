"""Fault injection: ``kill -9`` (or a full disk) at named points of a run, then the same
command again, which must resume to exactly the uninterrupted run's results (issue 12), and
every output folder is, after the fault, either the old complete set of files or the new
complete set (issue 29).

The faults are deterministic: the library calls ``pitune_tf.common.fault.fault_point`` at
named points, and a child process started with ``PITUNE_FAULT=<point>`` sends itself SIGKILL
there (no cleanup handler runs, as with a real ``kill -9``), or with
``PITUNE_FAULT=enospc@<point>`` raises the ``OSError`` of a full disk. Every atomic write is
a point (``write:<file>``), as is the swap of an output folder (``write:<folder>``, then
``replaced:<folder>``); ``PITUNE_FAULT_TRACE`` lists the points a command reaches, so the
sweeps fault each command at every point it reaches without a list to keep up to date.
Each command gets one case in the default run; the sweeps are marked slow (``--runslow``).

| command | faults (default run in bold) |
|---|---|
| ``trainers.population`` | teacher_epoch:1, teacher_checkpoint:1, teacher_best:1, student_epoch:1, write:metrics.json; **write:run** (the finished run swapped in); kill at every point (sweep) |
| ``trainers.uaf`` | uaf_soft_epoch:1, uaf_pretrain_epoch:1, uaf_pretrain_best:2, uaf_soft_best:1, uaf_soft_scored:1, write:metrics.json; **write:table.md** of a rerun; kill at every point of a rerun (sweep) |
| ``trainers.individual`` | **user:1**, write:per_user.csv; a rerun with other methods: **write:summary.json**, **enospc@write:results.md**, kill and full disk at every point (sweep) |
| ``trainers.individual merge`` | **write:results.md**; kill at every point (sweep) |
| ``tflite.convert`` | **write:labels.txt**; kill at every point (sweep), into the run directory |
| ``output_set`` (any folder) | **kill and full disk at every point**, with and without the one-step exchange |
| any atomic write | **write:<file>**: the previous file stays whole |
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = ("seconds", "_ms")  # keys whose values are wall-clock times, not results


def run_cli(module, args, fault=None, cwd=ROOT, trace=None):
    """``python -m module args`` in a child process (``module`` ``-c``: ``args[0]`` is the
    code); with ``fault`` it must die by SIGKILL at that point (``enospc@<point>``: fail
    there with a full disk), without it it must succeed. ``trace``: the file that lists the
    fault points reached."""
    env = {k: v for k, v in os.environ.items() if k not in ("PITUNE_FAULT", "PITUNE_FAULT_TRACE")}
    if fault:
        env["PITUNE_FAULT"] = fault
    if trace:
        env["PITUNE_FAULT_TRACE"] = str(trace)
    command = ["-c"] if module == "-c" else ["-m", module]
    proc = subprocess.run([sys.executable, *command, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1200)
    if fault and fault.startswith("enospc@"):
        assert proc.returncode not in (0, -signal.SIGKILL), proc.stderr[-3000:]
        assert "No space left on device" in proc.stderr, (
            f"{fault} was not reached (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    elif fault:
        assert proc.returncode == -signal.SIGKILL, (
            f"{fault} was not reached (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def traced_points(module, args, tmp_path) -> list[str]:
    """The fault points (``name#n``) a successful run of the command reaches, in order."""
    trace = tmp_path / "points.txt"
    trace.unlink(missing_ok=True)
    run_cli(module, args, trace=trace)
    points = trace.read_text().split()
    trace.unlink()
    return points


def visible_files(folder) -> dict:
    """``{relative path: bytes}`` of the files a user sees under ``folder`` (hidden entries,
    a run's resume records, locks and temporaries, left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def assert_old_or_new(folder, old, is_new, fault) -> str:
    """``folder`` holds exactly the ``old`` files (``visible_files``) or a set that
    ``is_new(folder)`` accepts; returns ``"old"`` or ``"new"``."""
    if visible_files(folder) == old:
        return "old"
    assert is_new(folder), (f"after {fault}, {folder} is neither the old set nor the new one: "
                            f"{sorted(visible_files(folder))}")
    return "new"


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
    assert len(list((out / ".users").glob("*.npz"))) == done  # the finished users are kept
    points = traced_points("trainers.individual", ["--run", run, *INDIVIDUAL, "--out", out],
                           tmp_path)
    # only the users not done yet run again
    assert [p for p in points if p.startswith("user:")] == [f"user:{n}#1" for n in range(done + 1, 3)]
    assert_same_per_user(out / "per_user.csv", reference / "per_user.csv")
    got, want = read_json(out / "summary.json"), read_json(reference / "summary.json")
    assert_same_results(got["methods"], want["methods"], "methods")
    assert got["forget_sets"] == want["forget_sets"]
    assert sorted(p.name for p in out.iterdir()) == ["gains.png", "per_intent.csv", "per_intent.png",
                                                     "per_user.csv", "results.md", "summary.json"]


def test_individual_records_of_another_configuration_are_not_reused(tmp_path):
    """A killed stage rerun with other options starts over (its kept users do not leak in)."""
    from pitune_tf.individual.resume import FinishedUsers

    kept = FinishedUsers(tmp_path / ".users", {"config": 1})
    kept.save(0, tiny_record())
    again = FinishedUsers(tmp_path / ".users", {"config": 1}).load(0)
    assert again["user"] == "u" and again["forget"] == [2]
    np.testing.assert_array_equal(again["y_true"], [1, 2])
    np.testing.assert_array_equal(again["methods"]["none"]["scores"], np.eye(2, 3))
    assert again["methods"]["none"]["info"] == {"seconds": 0.25}
    assert FinishedUsers(tmp_path / ".users", {"config": 2}).load(0) is None
    (tmp_path / ".users" / "1.npz").write_bytes(b"truncated")  # a damaged record: recomputed
    assert FinishedUsers(tmp_path / ".users", {"config": 2}).load(1) is None


def test_individual_fingerprint_reads_the_schema_and_mapping(tmp_path):
    """Records computed with other --schema fields or another mapping file are not resumed."""
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.resume import stage_fingerprint

    for name in ("config.json", "vocab.json", "student.keras", "p_out.json", "events.csv", "map.json"):
        (tmp_path / name).write_text("{}")
    args = (tmp_path, IndividualConfig(), tmp_path / "events.csv", "keras", None, None, [])
    base = stage_fingerprint(*args)
    assert base == stage_fingerprint(*args, schema=None, mapping=None)
    assert stage_fingerprint(*args, schema={"time_slots": 12}) != base
    assert stage_fingerprint(*args, mapping=tmp_path / "map.json") != base
    assert stage_fingerprint(*args, mapping=tmp_path / "map.json")["mapping"][0] == str(tmp_path / "map.json")


def tiny_record():
    """A per-user record as ``PersonalizationEngine.run_user`` returns it, tiny."""
    return {"user": "u", "n_test": 2, "y_true": np.array([1, 2]), "forget": [2],
            "methods": {"none": {"scores": np.eye(2, 3, dtype=np.float32),
                                 "info": {"seconds": 0.25}}}}


class _RunsCode:
    """Unpickling it creates a folder: what an old pickle record could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_old_pickle_records_are_never_unpickled(tmp_path, caplog):
    """Issue 29, family 4: the per-user records are npz files of plain arrays; the pickle
    records of older versions are never loaded (loading a pickle runs code), their users
    run again, and a warning says so."""
    import pickle

    from pitune_tf.individual.resume import FinishedUsers

    marker = tmp_path / "code_ran"
    FinishedUsers(tmp_path / ".users", {"config": 1})  # the key of the run
    (tmp_path / ".users" / "0.pkl").write_bytes(pickle.dumps(_RunsCode(marker)))
    with caplog.at_level("WARNING"):
        kept = FinishedUsers(tmp_path / ".users", {"config": 1})
    assert kept.load(0) is None and not marker.exists()
    assert "pickle" in caplog.text and "0.pkl" in caplog.text
    kept.save(0, tiny_record())  # an npz without pickles: allow_pickle=False reads it
    with np.load(tmp_path / ".users" / "0.npz", allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)
    assert kept.load(0)["user"] == "u"


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


# -------------------------------------------------- output folders replaced as one set

SET_SCRIPT = """
import sys
from pitune_tf.common import atomic
from pitune_tf.common.atomic import write_text
from pitune_tf.common.output_set import output_set

if sys.argv[2] == "two-renames":  # a system without the one-step exchange
    atomic.exchange = lambda *_: False
with output_set(sys.argv[1], ("a.txt", "b.txt", "c.txt", "sub")) as new:
    write_text(new / "a.txt", "new a")
    write_text(new / "sub" / "b.txt", "new b")
    write_text(new / "c.txt", "new c")
"""
SET_NEW = {"a.txt": b"new a", "c.txt": b"new c", "sub/b.txt": b"new b", "user.txt": b"mine"}


def old_set(folder) -> dict:
    """A finished earlier set (``a.txt``, ``b.txt``, ``sub/x``) and a user's own file."""
    (folder / "sub").mkdir(parents=True)
    for name, text in {"a.txt": "old a", "b.txt": "old b", "sub/x": "old x",
                       "user.txt": "mine"}.items():
        (folder / name).write_text(text)
    return visible_files(folder)


@pytest.mark.parametrize("swap", ["exchange", "two-renames"])
def test_output_set_is_old_or_new_after_a_kill_or_a_full_disk_at_every_point(tmp_path, swap):
    """Issue 29, family 2: a set of files replaced as a whole. Killed, or out of space, at
    every point it reaches, the folder is the old set or the new one; where folders cannot
    be exchanged in one step (``two-renames``), a kill between the two renames is put back
    by the next write."""
    from pitune_tf.common.atomic import _remove_stale_temporaries

    out = tmp_path / "out"
    old = old_set(out)
    points = traced_points("-c", [SET_SCRIPT, out, swap], tmp_path)
    assert visible_files(out) == SET_NEW  # the user's file kept, b.txt and sub/x gone
    names = [p.split("#")[0] for p in points]
    swapped = ["moved_aside:out"] if swap == "two-renames" else []
    assert names[-2 - len(swapped):] == ["write:out", *swapped, "replaced:out"]
    assert "write:c.txt" in names
    for point in points:
        for fault in (point, f"enospc@{point}"):
            shutil.rmtree(out)
            old_set(out)
            run_cli("-c", [SET_SCRIPT, out, swap], fault=fault)
            if point.startswith("moved_aside:") and fault == point:  # folder not in place yet
                assert not out.exists()
                _remove_stale_temporaries(out)  # the next write of out (its writer is dead)
            state = assert_old_or_new(out, old, lambda f: visible_files(f) == SET_NEW, fault)
            assert state == ("new" if point.startswith("replaced:") else "old"), fault
            run_cli("-c", [SET_SCRIPT, out, swap])  # the same command again
            assert visible_files(out) == SET_NEW and sorted(os.listdir(tmp_path)) == ["out"]


def test_output_set_keeps_a_link_and_refuses_a_folder_another_process_writes_in(tmp_path):
    """The set replaces the folder a link names (the link stays a link; the entries kept are
    hard links, not copies); a folder where another live process holds a run lock or
    writes a temporary file is not replaced (its later writes would be lost)."""
    from pitune_tf.common.errors import UserInputError
    from pitune_tf.common.output_set import output_set

    real = tmp_path / "real"
    old_set(real)
    (tmp_path / "link").symlink_to(real)
    kept = (real / "user.txt").stat().st_ino
    with output_set(tmp_path / "link", ("a.txt", "b.txt")) as new:
        (new / "a.txt").write_text("new a")
    assert (tmp_path / "link").is_symlink() and (real / "user.txt").stat().st_ino == kept
    assert visible_files(real) == {"a.txt": b"new a", "sub/x": b"old x", "user.txt": b"mine"}
    before = visible_files(real)
    (real / "sub" / ".nested.lock").write_text(str(os.getppid()))  # a live process
    with pytest.raises(UserInputError, match="being written by another process"):
        with output_set(real, ("a.txt",)) as new:
            (new / "a.txt").write_text("newer")
    assert visible_files(real) == before and sorted(os.listdir(tmp_path)) == ["link", "real"]
    (real / "sub" / ".nested.lock").write_text("999999999")  # its process is gone: stale
    with output_set(real, ("a.txt",)) as new:
        (new / "a.txt").write_text("newer")
    assert not (real / "sub" / ".nested.lock").exists() and (real / "a.txt").read_text() == "newer"


# -------------------------------------------------------------- the run lock (family 3)

def hold_lock(directory):
    """A child process holding the run lock of ``directory`` until its stdin closes."""
    code = ("import sys\nfrom pitune_tf.common.run_lock import run_lock\n"
            "with run_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(directory)], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_the_run_lock_is_taken_on_the_real_path(tmp_path):
    """Issue 29, family 3: a run reaching a folder through a symbolic link (to the folder,
    or to a folder above it) meets the lock of a run on the folder itself."""
    from pitune_tf.common.errors import UserInputError
    from pitune_tf.common.run_lock import run_lock

    real = tmp_path / "runs" / "out"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "runs_link").symlink_to(tmp_path / "runs")
    child = hold_lock(real)
    try:
        for other in (tmp_path / "link", tmp_path / "runs_link" / "out",
                      tmp_path / "runs" / ".." / "runs" / "out"):
            with pytest.raises(UserInputError, match="in use by another run"):
                with run_lock(other):
                    pass
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    with run_lock(tmp_path / "link") as lock:  # free again: beside the real folder
        assert lock == real.parent / ".out.lock"
    assert sorted(os.listdir(tmp_path / "runs")) == ["out"]


def test_overwrite_through_a_link_moves_the_folder_aside_not_the_link(tmp_path):
    """``--overwrite`` of a run reached through a link: the run's folder waits aside and
    comes back when the new run fails; the link is never moved or replaced."""
    from pitune_tf.common.run_replacement import finish_replacement, prepare_run_dir

    real = tmp_path / "real"
    real.mkdir()
    (real / "metrics.json").write_text("{}")
    link = tmp_path / "link"
    link.symlink_to(real)
    replaced = prepare_run_dir(link, {"seed": 1}, overwrite=True)
    assert replaced == tmp_path / ".real.replaced" and link.is_symlink()
    assert sorted(os.listdir(real)) == ["config.json"]
    finish_replacement(link, replaced, succeeded=False)
    assert link.is_symlink() and sorted(os.listdir(real)) == ["metrics.json"]
    assert sorted(os.listdir(tmp_path)) == ["link", "real"]


def test_an_unfinished_run_resumes_after_the_config_gained_a_key(tmp_path):
    """A run interrupted before an upgrade that added a config key resumes when the new key
    is at its default (the value the run had without it); any other difference is refused."""
    from pitune_tf.common.errors import UserInputError
    from pitune_tf.common.run_replacement import prepare_run_dir

    (tmp_path / "config.json").write_text(json.dumps({"seed": 1}))
    defaults = {"seed": 0, "added": {}}
    assert prepare_run_dir(tmp_path, {"seed": 1, "added": {}}, overwrite=False, defaults=defaults) is None
    assert json.loads((tmp_path / "config.json").read_text()) == {"seed": 1, "added": {}}
    with pytest.raises(UserInputError, match="different config"):
        prepare_run_dir(tmp_path, {"seed": 1, "added": {"n": 2}}, overwrite=False, defaults=defaults)


# ------------------------------------------- each stage's output folder, old or new set

RERUN = ["--method", "none"]  # the individual stage rerun with other methods than INDIVIDUAL


def individual_new_set(out) -> bool:
    """``out`` holds one complete ``--method none`` set: its summary, per-user rows and
    tables agree (the old set ran none and pituning)."""
    summary = read_json(out / "summary.json")
    methods = set(pd.read_csv(out / "per_user.csv")["method"])
    table = (out / "results.md").read_text().split("| Model |")[1].split("\n\n")[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]  # Table 2, pooled
    names = set(visible_files(out))
    return (summary["config"]["methods"] == ["none"] and methods == set(summary["methods"])
            and rows == list(summary["methods"])
            and names == {"gains.png", "per_intent.csv", "per_intent.png", "per_user.csv", "results.md",
                          "summary.json"})


@pytest.mark.parametrize("fault", ["write:summary.json", "enospc@write:results.md"])
def test_individual_rerun_killed_or_out_of_space_keeps_the_old_set(individual_reference,
                                                                   tmp_path, fault):
    """Issue 29, family 2, as measured: a rerun into a finished folder with other methods,
    killed (or out of space) while writing its tables, leaves the old four files as they
    were; the same command again writes the new set, nothing left beside it."""
    run, reference = individual_reference
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    old = visible_files(out)
    args = ["--run", run, *RERUN, "--out", out]
    run_cli("trainers.individual", args, fault=fault)
    assert visible_files(out) == old
    run_cli("trainers.individual", args)
    assert individual_new_set(out)
    assert sorted(os.listdir(tmp_path)) == ["out"] and not (out / ".users").exists()


@pytest.mark.slow  # about 20 processes of 8 s
@pytest.mark.parametrize("no_space", [False, True], ids=["kill", "full-disk"])
def test_individual_rerun_faulted_at_every_point_is_old_or_new(individual_reference, tmp_path,
                                                               no_space):
    run, reference = individual_reference
    out = tmp_path / "out"
    args = ["--run", run, *RERUN, "--out", out]
    shutil.copytree(reference, out)
    old = visible_files(out)
    points = traced_points("trainers.individual", args, tmp_path)
    assert points[-1] == "replaced:out#1" and "user:2#1" in points
    for point in points:
        shutil.rmtree(out)
        shutil.copytree(reference, out)
        fault = f"enospc@{point}" if no_space else point
        run_cli("trainers.individual", args, fault=fault)
        state = assert_old_or_new(out, old, individual_new_set, fault)
        assert state == ("new" if point.startswith("replaced:") else "old"), fault


@pytest.fixture(scope="module")
def shard_parts(individual_reference):
    """The two parts of ``--shard I/2`` runs of the tiny run (in this process)."""
    from trainers.individual import main

    run, reference = individual_reference
    parts = [reference.parent / f"part{i}" for i in range(2)]
    for i, part in enumerate(parts):
        if not part.is_dir():
            assert main(["--run", str(run), *RERUN, "--shard", f"{i}/2", "--out", str(part),
                         "--quiet"]) == 0
    return parts


@pytest.mark.parametrize("fault", [
    "write:results.md",
    pytest.param("every point", marks=pytest.mark.slow),
])
def test_merge_killed_keeps_the_old_set(individual_reference, shard_parts, tmp_path, fault):
    """``trainers.individual merge`` into a folder holding an earlier run: killed at any
    point, the folder is the old set or the merged one."""
    run, reference = individual_reference
    out = tmp_path / "out"
    args = ["merge", *shard_parts, "--out", out]
    shutil.copytree(reference, out)
    old = visible_files(out)
    points = traced_points("trainers.individual", args, tmp_path) if fault == "every point" else [fault]
    for point in points:
        shutil.rmtree(out)
        shutil.copytree(reference, out)
        run_cli("trainers.individual", args, fault=point)
        state = assert_old_or_new(out, old, individual_new_set, point)
        assert state == ("new" if point.startswith("replaced:") else "old"), point
    run_cli("trainers.individual", args)
    assert individual_new_set(out) and read_json(out / "summary.json")["shards"] == 2
    assert sorted(os.listdir(tmp_path)) == ["out"]


def old_bundle(folder) -> dict:
    """An earlier conversion's files (int8 model included) and a user's own file."""
    from tflite.run_export import OUTPUT_FILES

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("student.tflite", "student_int8.tflite", "student_fp16.tflite",
                 "student_tflite.json", "labels.txt", "vocab.json", "preprocessing.json"):
        assert name in OUTPUT_FILES
        (folder / name).write_text(f"the earlier {name}")
    (folder / "notes.txt").write_text("mine")
    return visible_files(folder)


def bundle_new_set(folder, keep=("notes.txt",)) -> bool:
    """``folder`` holds one complete ``--no-quantized`` bundle (and the files ``keep``)."""
    meta = read_json(folder / "student_tflite.json")
    names = {n for n in visible_files(folder) if "/" not in n}
    bundle = {"student.tflite", "student_tflite.json", "labels.txt", "vocab.json",
              "preprocessing.json"}
    return (list(meta["files"]) == ["fp32"] and bundle <= names
            and not names & {"student_int8.tflite", "student_fp16.tflite"}
            and (folder / "student.tflite").read_bytes()[4:8] == b"TFL3"
            and (not keep or names == bundle | set(keep)))


@pytest.mark.parametrize("fault", [
    "write:labels.txt",
    pytest.param("every point", marks=pytest.mark.slow),
])
def test_convert_killed_keeps_the_old_bundle(individual_reference, tmp_path, fault):
    """Issue 29, family 2: ``tflite.convert``'s models, labels, vocabularies, preprocessing
    and ``student_tflite.json`` are one set: a conversion killed at any point leaves the
    earlier bundle (an int8 model included) or the new one, never both mixed."""
    run, _ = individual_reference
    out = tmp_path / "phone"
    args = ["--run", run, "--no-quantized", "--quiet", "--out", out]
    old = old_bundle(out)
    points = traced_points("tflite.convert", args, tmp_path) if fault == "every point" else [fault]
    for point in points:
        shutil.rmtree(out)
        old_bundle(out)
        run_cli("tflite.convert", args, fault=point)
        state = assert_old_or_new(out, old, bundle_new_set, point)
        assert state == ("new" if point.startswith("replaced:") else "old"), point
    # beside it, at most the killed conversion's unfinished folder, hidden
    assert all(name == "phone" or name.startswith(".phone.") for name in os.listdir(tmp_path))


@pytest.mark.slow
def test_convert_into_the_run_directory_is_one_set(individual_reference, tmp_path):
    """Converted into the run directory (the default ``--out``): killed before the swap, the
    run is as it was; the conversion again adds the bundle and keeps every run file."""
    run_source, _ = individual_reference
    run = tmp_path / "run"
    shutil.copytree(run_source, run)
    before = visible_files(run)
    args = ["--run", run, "--no-quantized", "--quiet"]
    run_cli("tflite.convert", args, fault="write:run")
    assert visible_files(run) == before
    run_cli("tflite.convert", args)
    after = visible_files(run)
    assert bundle_new_set(run, keep=()) and sorted(os.listdir(tmp_path)) == ["run"]
    assert {k: v for k, v in after.items() if k in before and k != "vocab.json"} == {
        k: v for k, v in before.items() if k != "vocab.json"}


UAF_RERUN = [*UAF[:UAF.index("--mode")], "--mode", "mostpop", *UAF[UAF.index("--mode") + 2:]]
UAF_REPORTS = ("metrics.json", "table.md", "utilisation.json", "utilisation.png", "curves.png")


def uaf_reports(folder) -> dict:
    return {k: v for k, v in visible_files(folder).items() if k in UAF_REPORTS}


def uaf_new_reports(folder) -> bool:
    """The run-level reports of a ``--mode mostpop`` rerun, complete and alone."""
    return (set(read_json(folder / "metrics.json")) == {"mostpop", "random-items", "oracle"}
            and set(uaf_reports(folder)) == {"metrics.json", "table.md"}
            and "UAF-Soft" not in (folder / "table.md").read_text())


@pytest.mark.parametrize("fault", [
    "write:table.md",
    pytest.param("every point", marks=pytest.mark.slow),
])
def test_uaf_rerun_killed_keeps_the_old_tables(uaf_reference, tmp_path, fault):
    """Issue 29, family 2: a UAF run resumed with other modes rewrites the run's tables
    (metrics.json, table.md, the figures) as one set."""
    out = tmp_path / "run"
    args = [*UAF_RERUN, "--out", out]
    shutil.copytree(uaf_reference, out)
    old = uaf_reports(out)
    assert set(old) == set(UAF_REPORTS)
    points = traced_points("trainers.uaf", args, tmp_path) if fault == "every point" else [fault]
    for point in points:
        shutil.rmtree(out)
        shutil.copytree(uaf_reference, out)
        run_cli("trainers.uaf", args, fault=point)
        if uaf_reports(out) != old:
            assert uaf_new_reports(out), point
            assert point.startswith("replaced:"), point


POPULATION_OUTPUTS = ("student.keras", "p_out.json", "metrics.json", "summaries/student.txt",
                      "data/individual.parquet")


def population_state(out, fault) -> str:
    """``"unfinished"`` (none of the final outputs, resumable) or ``"finished"`` (all)."""
    names = visible_files(out)
    present = [name for name in POPULATION_OUTPUTS if name in names]
    if not present:
        return "unfinished"
    assert present == list(POPULATION_OUTPUTS), f"after {fault}: only {present}"
    assert not (out / ".checkpoints").exists(), fault
    return "finished"


@pytest.mark.parametrize("fault", [
    "write:run",  # the finished run, complete, about to be swapped in
    pytest.param("every point", marks=pytest.mark.slow),  # about 45 processes of 15 s
])
def test_population_killed_is_unfinished_or_finished(tmp_path, fault):
    """Issue 29, family 2: a population run directory is unfinished (no final output,
    ``.checkpoints`` to resume from) or finished (every final output, metrics.json
    included), whatever point a kill hits."""
    out = tmp_path / "run"
    args = [*POPULATION, "--quiet", "--out", out]
    points = traced_points("trainers.population", args, tmp_path) if fault == "every point" else [fault]
    for point in points:
        shutil.rmtree(out, ignore_errors=True)
        run_cli("trainers.population", args, fault=point)
        state = population_state(out, point)
        assert state == ("finished" if point.startswith("replaced:") else "unfinished"), point
        if point == "write:run":
            assert (out / ".checkpoints").is_dir()

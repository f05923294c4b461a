"""The local multi-worker launcher (no TensorFlow: a tiny dummy module as the workers): each
worker's TF_CONFIG, the prefixed log, and a dying worker stopping every other one."""

import io
import json
import os
import textwrap
import time

import pytest

from pitune_tf.common.launcher import WorkerFailed, launch, tf_config

DUMMY = textwrap.dedent("""
    import json, os, sys, time
    config = json.loads(os.environ["TF_CONFIG"])
    index = config["task"]["index"]
    with open(f"worker{index}.json", "w") as f:
        json.dump({"pid": os.getpid(), "config": config}, f)
    print(f"hello from {index}")
    print("partial line", end="")
    mode = sys.argv[1]
    if mode == "fail" and index == 1:
        time.sleep(0.2)
        sys.exit(3)
    if mode == "fail":
        time.sleep(60)  # must be stopped by the launcher
""")


@pytest.fixture
def dummy(tmp_path):
    (tmp_path / "dummy_worker.py").write_text(DUMMY)
    return tmp_path


def _info(directory, i):
    return json.loads((directory / f"worker{i}.json").read_text())


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_tf_config_names_the_cluster_and_the_task():
    assert tf_config(["localhost:1", "localhost:2"], 1) == {
        "cluster": {"worker": ["localhost:1", "localhost:2"]}, "task": {"type": "worker", "index": 1}}


def test_workers_get_their_tf_config_and_prefixed_logs(dummy):
    out = io.StringIO()
    launch("dummy_worker", ["ok"], workers=2, cwd=dummy, out=out)
    configs = [_info(dummy, i)["config"] for i in range(2)]
    cluster = configs[0]["cluster"]["worker"]
    assert len(set(cluster)) == 2 and all(w.startswith("localhost:") for w in cluster)
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(2)]
    assert configs[1]["cluster"]["worker"] == cluster
    lines = out.getvalue().splitlines()
    assert sorted(lines) == ["[w0] hello from 0", "[w0] partial line",
                             "[w1] hello from 1", "[w1] partial line"]


def test_a_dying_worker_stops_every_worker(dummy):
    out = io.StringIO()
    start = time.monotonic()
    with pytest.raises(WorkerFailed, match=r"worker 1 of 2 exited with status 3"):
        launch("dummy_worker", ["fail"], workers=2, cwd=dummy, out=out, grace_s=2)
    assert time.monotonic() - start < 20  # not the survivor's 60 s
    assert not _alive(_info(dummy, 0)["pid"])
    assert "[w1] hello from 1" in out.getvalue()


def test_command_line_failure_is_one_error_line(dummy, capsys, monkeypatch):
    from trainers.launch import main

    monkeypatch.chdir(dummy)
    assert main(["--workers", "2", "--", "dummy_worker", "fail"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: worker 1 of 2 exited with status 3")
    assert main(["--workers", "2"]) == 2
    assert "no module to launch" in capsys.readouterr().err
    assert main(["--workers", "0", "--", "dummy_worker", "ok"]) == 2

"""The local multi-worker launcher (no TensorFlow: a tiny dummy module as the workers): each
worker's TF_CONFIG, the prefixed log, a dying worker stopping every other one, and the
workers' private network (a server listening on every interface, as TensorFlow's do, is
reachable from the other worker and not from outside)."""

import io
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pitune_tf.common import private_network
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

# a worker serving as TensorFlow's servers do (every interface, the TF_CONFIG port), that
# reaches the other worker's server on localhost and waits for the test's "release" file
SERVER = textwrap.dedent("""
    import json, os, socket, sys, time
    config = json.loads(os.environ["TF_CONFIG"])
    index = config["task"]["index"]
    ports = [int(w.rsplit(":", 1)[1]) for w in config["cluster"]["worker"]]
    server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.bind(("::", ports[index]))  # what gRPC makes of TensorFlow's 0.0.0.0:PORT
    server.listen()
    peer = ports[1 - index]
    for _ in range(200):
        try:
            socket.create_connection(("localhost", peer), timeout=1).close()
            reached = True
            break
        except OSError:
            reached = False
            time.sleep(0.05)
    with open("/proc/net/dev") as f:
        interfaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    info = {"pid": os.getpid(), "port": ports[index], "reached_peer": reached,
            "interfaces": interfaces, "netns": os.stat("/proc/self/ns/net").st_ino,
            "uid": os.getuid(), "env": os.environ.get("NCCL_SOCKET_IFNAME")}
    with open(f"server{index}.json.tmp", "w") as f:
        json.dump(info, f)
    os.replace(f"server{index}.json.tmp", f"server{index}.json")
    for _ in range(600):
        if os.path.exists("release"):
            break
        time.sleep(0.05)
""")


def _private_network_unavailable():
    """None where this system makes network namespaces, else why not."""
    try:
        probe = subprocess.run([sys.executable, "-I", private_network.SCRIPT], input="",
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return str(err)
    if probe.stdout.strip() == private_network.READY:
        return None
    return probe.stdout.strip() or probe.stderr.strip() or f"status {probe.returncode}"


UNAVAILABLE = _private_network_unavailable()
# the launcher's default where the system allows it (else the other tests still run)
NETWORK = "host" if UNAVAILABLE else "private"
needs_private_network = pytest.mark.skipif(
    UNAVAILABLE is not None, reason=f"this system makes no network namespace: {UNAVAILABLE}")


@pytest.fixture
def dummy(tmp_path):
    (tmp_path / "dummy_worker.py").write_text(DUMMY)
    (tmp_path / "server_worker.py").write_text(SERVER)
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
    launch("dummy_worker", ["ok"], workers=2, cwd=dummy, out=out, network=NETWORK)
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
        launch("dummy_worker", ["fail"], workers=2, cwd=dummy, out=out, grace_s=2,
               network=NETWORK)
    assert time.monotonic() - start < 20  # not the survivor's 60 s
    assert not _alive(_info(dummy, 0)["pid"])
    assert "[w1] hello from 1" in out.getvalue()


def test_command_line_failure_is_one_error_line(dummy, capsys, monkeypatch):
    from trainers.launch import main

    monkeypatch.chdir(dummy)
    assert main(["--workers", "2", "--network", NETWORK, "--", "dummy_worker", "fail"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: worker 1 of 2 exited with status 3")
    assert main(["--workers", "2"]) == 2
    assert "no module to launch" in capsys.readouterr().err
    assert main(["--workers", "0", "--", "dummy_worker", "ok"]) == 2


# ------------------------------------------------------------------ the private network


def _launch_in_background(directory, network, wait_s=60):
    """Starts ``launch`` of the server workers in a thread; returns (thread, errors, info):
    ``info`` once both workers wrote theirs (they then wait for the "release" file)."""
    errors = []

    def target():
        try:
            launch("server_worker", workers=2, cwd=directory, out=io.StringIO(),
                   network=network, grace_s=2)
        except Exception as err:  # noqa: BLE001  (reported by the test)
            errors.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not errors:
        if all((directory / f"server{i}.json").exists() for i in range(2)):
            return thread, errors, [json.loads((directory / f"server{i}.json").read_text())
                                    for i in range(2)]
        time.sleep(0.05)
    (directory / "release").touch()
    thread.join(10)
    raise AssertionError(f"the workers did not start: {errors}")


def _refused(port) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@needs_private_network
def test_private_network_hides_the_workers_servers(dummy):
    """Issue 29, family 1: the workers' servers listen on every interface of a network whose
    only interface is the loopback one, shared by the workers alone: each reaches the other's
    server on localhost; from this machine's network the ports are not listened on."""
    thread, errors, info = _launch_in_background(dummy, "private")
    try:
        own_netns = os.stat("/proc/self/ns/net").st_ino
        assert [i["reached_peer"] for i in info] == [True, True]
        assert [i["interfaces"] for i in info] == [["lo"], ["lo"]]
        assert info[0]["netns"] == info[1]["netns"] != own_netns
        for worker in info:
            assert worker["port"] in private_network.listening_ports(worker["pid"])
            assert worker["port"] not in private_network.listening_ports()
            assert _refused(worker["port"])
        assert [i["uid"] for i in info] == [os.getuid()] * 2  # files keep the user's owner
        assert info[0]["env"] == "lo"  # NCCL's bootstrap on the only interface
    finally:
        (dummy / "release").touch()
        thread.join(30)
    assert not thread.is_alive() and not errors


def test_host_network_is_this_machines_and_says_so(dummy, caplog):
    """``network="host"``: the servers listen on this machine's interfaces (what the private
    network prevents), and a warning says so."""
    with caplog.at_level(logging.WARNING, logger="pitune_tf.common.launcher"):
        thread, errors, info = _launch_in_background(dummy, "host")
    try:
        assert [i["netns"] for i in info] == [os.stat("/proc/self/ns/net").st_ino] * 2
        assert all(i["port"] in private_network.listening_ports() for i in info)
    finally:
        (dummy / "release").touch()
        thread.join(30)
    assert not errors
    assert "listen on every interface" in caplog.text


def test_no_private_network_is_one_error_naming_network_host(dummy, capsys, monkeypatch):
    """A system that makes no network namespace (here a holder that fails as unshare does
    without privileges): one error line naming the reason and --network host; no worker ran."""
    from pitune_tf.common import launcher
    from trainers.launch import main

    holder = dummy / "holder.py"
    holder.write_text("print('error: unshare(CLONE_NEWUSER | CLONE_NEWNET): Operation not "
                      "permitted', flush=True)\nraise SystemExit(1)\n")
    monkeypatch.setattr(launcher.private_network, "SCRIPT", str(holder))
    monkeypatch.chdir(dummy)
    assert main(["--workers", "2", "--", "dummy_worker", "ok"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot give the workers a private "
                                               "network (unshare("), err
    assert "Operation not permitted" in err[0] and "--network host" in err[0]
    assert not list(dummy.glob("worker*.json"))
    assert main(["--workers", "2", "--network", "nope", "--", "dummy_worker", "ok"]) == 2


TF_WORKER = textwrap.dedent("""
    import json, os, time
    from pitune_tf.common import environment  # noqa: F401
    import tensorflow as tf
    from pitune_tf.common import private_network
    from pitune_tf.common.distribution import barrier, make_strategy
    strategy = make_strategy("auto")
    total = strategy.reduce(tf.distribute.ReduceOp.SUM,
                            strategy.run(lambda: tf.ones([])), axis=None)
    config = json.loads(os.environ["TF_CONFIG"])
    index = config["task"]["index"]
    info = {"port": int(config["cluster"]["worker"][index].rsplit(":", 1)[1]), "sum": float(total), "listening":
            sorted(private_network.listening_ports()), "interfaces": private_network.interfaces()}
    with open(f"server{index}.json.tmp", "w") as f:
        json.dump(info, f)
    os.replace(f"server{index}.json.tmp", f"server{index}.json")
    while not os.path.exists("release"):
        time.sleep(0.05)
    barrier(strategy)
""")


@pytest.mark.slow
@needs_private_network
def test_tensorflow_servers_of_a_launched_run_are_private(dummy, monkeypatch):
    """Two MultiWorkerMirroredStrategy workers launched with the defaults: their all-reduce
    works, their TensorFlow servers listen in the private network (only ``lo``) and this
    machine's network shows none of their ports."""
    (dummy / "server_worker.py").write_text(TF_WORKER)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.setenv("PYTHONPATH", root)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    thread, errors, info = _launch_in_background(dummy, "private", wait_s=300)
    try:
        assert [i["sum"] for i in info] == [2.0, 2.0]
        assert [i["interfaces"] for i in info] == [["lo"], ["lo"]]
        for worker in info:
            assert worker["port"] in worker["listening"]  # TensorFlow's server, on "lo" only
            assert worker["port"] not in private_network.listening_ports()
            assert _refused(worker["port"])
    finally:
        (dummy / "release").touch()
        thread.join(60)
    assert not thread.is_alive() and not errors

"""A local launcher for multi-worker training: N processes of one Python module on this
machine, each with the ``TF_CONFIG`` that ``tf.distribute.MultiWorkerMirroredStrategy``
reads (the same cluster list of ``localhost`` ports, its own task index), their output
streamed line by line with a ``[wI]`` prefix, and every worker stopped as soon as one fails.

TensorFlow's servers listen on every interface, unauthenticated, whatever host the cluster
names; by default (``network="private"``) the workers run in a network namespace of their own
whose only interface is the loopback one (:mod:`pitune_tf.common.private_network`), so no
other machine can reach them. ``network="host"`` runs them on this machine's network.

On a real cluster each machine runs the module itself with its own ``TF_CONFIG`` (the
cluster's ``host:port`` list and that machine's index); this launcher is that for one
machine (tests, one many-core machine)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from pitune_tf.common import private_network
from pitune_tf.common.errors import UserInputError

logger = logging.getLogger(__name__)
NETWORKS = ("private", "host")

class WorkerFailed(UserInputError):
    """A worker exited with a non-zero status (the others have been stopped)."""


def free_ports(n) -> list:
    """``n`` distinct TCP ports free on localhost now (bound to port 0, then released)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                   for _ in range(n)]
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]


def tf_config(workers, index) -> dict:
    """The ``TF_CONFIG`` of worker ``index`` in the cluster ``workers`` (list of ``host:port``;
    worker 0 is the chief)."""
    return {"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": int(index)}}


def _stream(pipe, prefix, out, lock):
    """Copies ``pipe``'s lines to ``out`` with ``prefix``, until the worker closes it."""
    for line in iter(pipe.readline, ""):
        line = line if line.endswith("\n") else line + "\n"
        with lock:
            out.write(prefix + line)
            out.flush()
    pipe.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _status(code) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"


def _stop(procs, grace_s):
    """SIGTERM to every running worker's process group, SIGKILL after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in procs if p.poll() is None]
        for p in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, sig)
        deadline = time.monotonic() + grace_s
        while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
            time.sleep(0.05)
    for p in procs:
        p.wait()


class _NetworkHolder:
    """The holder of the workers' private network (:mod:`pitune_tf.common.private_network`):
    a small process that creates the namespace and lives until :meth:`close`; each worker
    joins it (:meth:`command`) before its Python starts."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", private_network.SCRIPT], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        line = self.proc.stdout.readline().strip()
        if line != private_network.READY:
            self.close()
            reason = line.removeprefix("error: ") or f"status {self.proc.returncode}"
            raise UserInputError(
                f"cannot give the workers a private network ({reason}): a network namespace "
                "needs root or unprivileged user namespaces; on a trusted network, --network "
                "host runs them on this machine's network, where TensorFlow's servers "
                "listen on every interface")

    def command(self, argv) -> list:
        """``argv`` run inside the private network."""
        return [sys.executable, "-I", private_network.SCRIPT, "--join", str(self.proc.pid),
                "--", *argv]

    def close(self):
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def launch(module, args=(), workers=2, env=None, cwd=None, out=None, grace_s=10.0,
           poll_s=0.05, network="private") -> None:
    """Runs ``python -m module args`` as ``workers`` processes on localhost ports with their
    ``TF_CONFIG``; returns when all exited with status 0.

    Args:
        module: str. The Python module every worker runs (e.g. ``trainers.population``).
        args: list of str. Its command-line arguments (the same for every worker).
        workers: int. Number of processes (>= 1).
        env: dict or None. Extra environment variables for the workers.
        cwd: str or None. The workers' working directory (default this one).
        out: text stream for the workers' prefixed output (default ``sys.stdout``).
        grace_s: float. Seconds a worker gets after SIGTERM before SIGKILL.
        poll_s: float. How often the workers' status is checked.
        network: str. ``private`` (the workers, and the servers TensorFlow starts in them,
            in a network of their own with only the loopback interface: unreachable from
            other machines, and unable to reach them) or ``host`` (this machine's network:
            TensorFlow's servers listen on every interface; only on a trusted network).

    Raises:
        UserInputError: ``network="private"`` where this system cannot make a network
            namespace (it names ``--network host``).
        WorkerFailed: a worker exited with a non-zero status; every other worker was stopped
            (its process group terminated) before this is raised.
    """
    if workers < 1:
        raise UserInputError(f"--workers must be >= 1, got {workers}")
    if network not in NETWORKS:
        raise UserInputError(f"--network must be one of {', '.join(NETWORKS)}, got {network!r}")
    if not module or module.startswith("-"):
        raise UserInputError("no module to launch: python -m trainers.launch --workers N -- "
                             "MODULE ARGS")
    out = out or sys.stdout
    cluster = [f"localhost:{port}" for port in free_ports(workers)]
    lock = threading.Lock()
    procs, threads = [], []
    previous = None
    if threading.current_thread() is threading.main_thread():  # a scheduler's SIGTERM too
        previous = signal.signal(signal.SIGTERM, _interrupt)
    private = None
    extra = {}
    try:
        if network == "private":
            private = _NetworkHolder()
            extra["NCCL_SOCKET_IFNAME"] = "lo"  # NCCL's bootstrap: the only interface
        else:
            logger.warning("--network host: the workers' TensorFlow servers listen on every "
                           "interface of this machine (ports %s), unauthenticated",
                           ", ".join(c.rsplit(":", 1)[1] for c in cluster))
        for i in range(workers):
            worker_env = {**extra, **os.environ, **(env or {}), "PYTHONUNBUFFERED": "1",
                          "TF_CONFIG": json.dumps(tf_config(cluster, i))}
            argv = [sys.executable, "-m", module, *args]
            proc = subprocess.Popen(private.command(argv) if private else argv, env=worker_env,
                                    cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    start_new_session=True)  # own group: stop its children too
            procs.append(proc)
        for i, proc in enumerate(procs):
            thread = threading.Thread(target=_stream, args=(proc.stdout, f"[w{i}] ", out, lock),
                                      daemon=True)
            thread.start()
            threads.append(thread)
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                _stop(procs, grace_s)
                raise WorkerFailed(f"worker {i} of {workers} {_status(code)}; the other "
                                   f"worker(s) were stopped (its log: the [w{i}] lines)")
            if all(c == 0 for c in codes):
                return
            time.sleep(poll_s)
    finally:
        _stop(procs, grace_s)
        for thread in threads:
            thread.join(timeout=5)
        if private is not None:
            private.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

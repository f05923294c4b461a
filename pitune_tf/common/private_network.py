"""A private network for local workers: a Linux network namespace whose only interface is
the loopback one, shared by every worker of a :func:`pitune_tf.common.launcher.launch`.

TensorFlow's gRPC servers (one per worker of MultiWorkerMirroredStrategy) listen on every
interface whatever host the cluster names (TensorFlow 2.21 binds ``0.0.0.0:PORT``, which
gRPC makes ``[::]:PORT``; no option changes it), unauthenticated. Workers on one machine
need only the loopback interface, so the launcher runs them in a network namespace that has
nothing else: their servers listen there, reachable by the other workers and by nothing
outside it (the workers cannot reach the network either).

This file is run as a script, never imported by the workers (it needs only the standard
library, so that a worker starts without loading the package twice)::

    python private_network.py              # the holder: creates the namespace, prints
                                           # "ready", lives until its stdin closes
    python private_network.py --join PID -- COMMAND ARGS
                                           # COMMAND in the holder PID's namespace (exec)

Without a namespace of its own a process needs ``CAP_SYS_ADMIN`` (root) or unprivileged
user namespaces (then a user namespace mapping only the caller's user and group, which the
files written keep). A system that allows neither makes the holder print ``error: REASON``
and exit 1.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
READY = "ready"
SCRIPT = os.path.abspath(__file__)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def create() -> None:
    """Moves this (single-threaded) process into a new network namespace with the loopback
    interface up: ``unshare(CLONE_NEWNET)`` with ``CAP_SYS_ADMIN``, else inside a new user
    namespace that maps only this process's user and group onto themselves."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNET) != 0:
        if ctypes.get_errno() not in (errno.EPERM, errno.EACCES):
            _check(-1, "unshare(CLONE_NEWNET)")
        uid, gid = os.geteuid(), os.getegid()
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNET),
               "unshare(CLONE_NEWUSER | CLONE_NEWNET)")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
        _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def join(pid) -> None:
    """Moves this (single-threaded) process into the user (when it has its own) and network
    namespaces of process ``pid``."""
    libc = _libc()
    own = os.stat("/proc/self/ns/user").st_ino
    for kind, flag in (("user", CLONE_NEWUSER), ("net", CLONE_NEWNET)):
        path = f"/proc/{int(pid)}/ns/{kind}"
        fd = os.open(path, os.O_RDONLY)
        try:
            if kind == "user" and os.fstat(fd).st_ino == own:
                continue  # the holder made no user namespace (it had CAP_SYS_ADMIN)
            _check(libc.setns(fd, flag), f"setns({path})")
        finally:
            os.close(fd)


def interfaces() -> list:
    """The network interfaces of this process's namespace (``/proc/net/dev``)."""
    with open("/proc/net/dev") as handle:
        return sorted(line.split(":")[0].strip() for line in handle.readlines()[2:])


def listening_ports(pid="self") -> set:
    """TCP ports listened on (IPv4 and IPv6) in the network namespace of process ``pid``."""
    ports = set()
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{name}") as handle:
                rows = handle.read().splitlines()[1:]
        except FileNotFoundError:  # no IPv6
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _main(argv) -> int:
    if argv[:1] == ["--join"] and len(argv) >= 4 and argv[2] == "--":
        try:
            join(argv[1])
        except OSError as err:
            print(f"error: cannot join the workers' private network ({err})", file=sys.stderr)
            return 2
        os.execvp(argv[3], argv[3:])
    if argv:
        print("usage: private_network.py [--join PID -- COMMAND ARGS]", file=sys.stderr)
        return 2
    try:
        create()
    except OSError as err:
        print(f"error: {err.strerror or err}", flush=True)
        return 1
    print(READY, flush=True)
    sys.stdin.read()  # until the launcher closes it (or dies)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

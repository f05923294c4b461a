"""Runs a Python module as N local workers of one tf.distribute cluster.

Each worker gets the TF_CONFIG of a cluster of N localhost ports and its own task index
(worker 0 is the chief), so ``--strategy auto`` (or ``multiworker``) of the population stage
trains with MultiWorkerMirroredStrategy. The workers' output is streamed with a ``[wI]``
prefix; if one fails, every worker is stopped and the launcher exits with one ``error:``
line and status 2.

TensorFlow's servers listen on every interface, unauthenticated: by default the workers run
in a private network (a network namespace with only the loopback interface, which Linux
gives to root or through unprivileged user namespaces), so no other machine reaches them
and they reach no other machine. ``--network host`` runs them on this machine's network
(only on a trusted network).

Commands:

    # the population stage on 2 local workers (same global batch as one worker)
    python -m trainers.launch --workers 2 -- trainers.population --preset tiny --out runs/mw
    # any module: the arguments after -- are the module and its arguments
    python -m trainers.launch --workers 4 -- trainers.population --out runs/demo4

On several machines, run the module on each with its own TF_CONFIG instead
(docs/distributed.md).
"""

import argparse
import sys

from pitune_tf.common.cli import run_main
from pitune_tf.common.launcher import NETWORKS, launch


def run(argv=None):
    """Parses ``argv`` and runs the workers; raises UserInputError (one failed: all stopped)."""
    p = argparse.ArgumentParser(prog="python -m trainers.launch",
                                description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2, help="number of local worker processes (2)")
    p.add_argument("--network", choices=NETWORKS, default="private",
                   help="private: the workers in a network of their own with only the "
                        "loopback interface (their TensorFlow servers unreachable from other "
                        "machines); host: this machine's network, where those servers listen "
                        "on every interface (private)")
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="-- MODULE ARGS: the module every worker runs and its arguments")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    launch(command[0] if command else "", command[1:], workers=args.workers,
           network=args.network)
    print(f"all {args.workers} worker(s) finished", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m trainers.launch``): the exit status."""
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())

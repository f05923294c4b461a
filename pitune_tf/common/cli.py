"""Shared command-line plumbing: one behaviour for every command.

- :func:`run_main`: user errors (argparse's too) and operating-system errors (permission,
  disk full, file too large) as one ``error:`` line on stderr with exit status 2; quiet by
  default (no TensorFlow start-up banners, deprecation warnings or third-party INFO logs),
  everything with ``--verbose``.
- :class:`HelpFormatter`: ``--help`` keeps the module docstring's layout and shows defaults.
- :func:`add_output_options`: ``--quiet`` and ``--verbose``, the same words everywhere;
  :data:`CONFIG_HELP` and :data:`OVERWRITE_HELP`: what ``--config`` and ``--overwrite`` mean;
  :func:`add_print_config_option`: ``--print-config`` (the resolved settings, then exit).
- what a command prints while it runs, and ``--quiet``: :mod:`pitune_tf.common.console`.

A command module imports TensorFlow only inside its ``main`` (after parsing), so that
``--help`` answers at once and ``--verbose`` can still change TensorFlow's log level.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import re
import signal
import sys
import threading
import traceback
import warnings
from typing import Callable

from pitune_tf.common import environment
from pitune_tf.common.console import PROJECT_LOGGERS, LineStartHandler, is_quiet, set_quiet, status
from pitune_tf.common.errors import UserInputError, os_error_message

# the project's own loggers (PROJECT_LOGGERS): INFO by default, ERROR under --quiet;
# third-party ones WARNING; --verbose: all INFO
CONFIG_HELP = ("JSON or YAML file of config keys, or a run's own config.json (or its run "
               "directory); overrides the preset, and the flags override it")
OVERWRITE_HELP = ("replace a finished run in --out (the old one is deleted only once the new "
                  "one is complete)")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written (its commands stay one per line) and each option's default
    after its help, unless the default is None / False or the help already names it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default in (None, False, argparse.SUPPRESS) or re.search(r"\bdefault\b", text)
                or isinstance(action, argparse._HelpAction) or not action.option_strings):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


QUIET_HELP = ("print only the results and errors: no settings, progress bars, epoch lines, "
              "log lines or warnings")


def add_output_options(parser: argparse.ArgumentParser, quiet_help: str | None = None,
                       results_only: bool = False) -> None:
    """``--quiet`` and ``--verbose`` (TensorFlow's own log too). A command whose ``--quiet``
    means :data:`QUIET_HELP` (``results_only``) calls
    ``pitune_tf.common.console.set_quiet(args.quiet)``."""
    if results_only:
        quiet_help = QUIET_HELP
    parser.add_argument("--quiet", action="store_true",
                        help=quiet_help or "no progress bars: one line per epoch or stage")
    parser.add_argument("--verbose", action="store_true",
                        help="also TensorFlow's native log lines, deprecation warnings and "
                             "third-party INFO logs (hidden by default)")


def add_config_options(parser: argparse.ArgumentParser, precedence: str,
                       keys: str | None = None) -> None:
    """``--config FILE`` (:data:`CONFIG_HELP`; ``keys``: where its keys are listed) and
    ``--print-config`` (:func:`add_print_config_option`)."""
    parser.add_argument("--config", help=CONFIG_HELP + (f" (keys of {keys})" if keys else ""))
    add_print_config_option(parser, precedence)


def add_print_config_option(parser: argparse.ArgumentParser, precedence: str) -> None:
    """``--print-config``: print the resolved settings (``precedence``, e.g. "preset <
    --config < flags") and exit 0 without running (nor loading TensorFlow)."""
    parser.add_argument("--print-config", action="store_true",
                        help=f"print the resolved settings ({precedence}), one `key = value` "
                        "line each, and exit without running")


def configure_output(verbose: bool) -> None:
    """Logging and warnings of a command: the project's INFO logs and every warning it
    raises; third-party WARNING logs; no deprecation warnings unless ``verbose``. Each log
    record starts on a line of its own (:class:`~pitune_tf.common.console.LineStartHandler`)."""
    environment.set_verbose(verbose)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s",
                        handlers=[LineStartHandler()])
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR if is_quiet() else logging.INFO)
    if not verbose:
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
        # TensorFlow's Python log ("WARNING:tensorflow:... is deprecated", retracing notes)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
        logging.getLogger("h5py").setLevel(logging.ERROR)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@contextlib.contextmanager
def argument_errors_as_user_errors():
    """Within the block, an argparse error (a value of the wrong type such as ``--batch-size
    1e9``, an unknown option, a missing one) raises :class:`UserInputError`, so that
    :func:`run_main` reports it as every other bad input: one ``error:`` line naming the
    option, exit status 2, not argparse's usage text and ``prog: error:`` line."""
    def error(parser, message):
        raise UserInputError(f"{message} ({parser.prog} --help lists the options)")

    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = error
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original


def ignore_file_size_signal() -> None:
    """A write past the file-size limit (``ulimit -f``, RLIMIT_FSIZE) fails with EFBIG
    ("File too large", an :class:`OSError` that :func:`run_main` reports) instead of the
    process being killed by SIGXFSZ. (CPython ignores the signal already; this keeps it so
    under an embedding that does not.) A no-op off the main thread and where there is no
    such signal."""
    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def output_option(argv) -> str | None:
    """The value of ``--out`` (or ``--out=...``) in ``argv``, or None."""
    for i, arg in enumerate(argv):
        if arg == "--out" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--out="):
            return arg.split("=", 1)[1]
    return None


def run_main(main: Callable[[list[str] | None], int | None], argv=None) -> int:
    """Runs ``main(argv)`` (``argv`` None: ``sys.argv[1:]``) with the output configured by
    :func:`configure_output` (``--verbose`` anywhere in ``argv``); a
    :class:`UserInputError` (an argparse error too: :func:`argument_errors_as_user_errors`)
    becomes ``error: ...`` on stderr and status 2, as does an operating-system error (an
    :class:`OSError`: ``error: PATH: Permission denied``, :func:`os_error_message`; the
    traceback too under ``--verbose``); Ctrl-C status 130.
    The ``--quiet`` state (:func:`~pitune_tf.common.console.set_quiet`) is restored on return.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet = is_quiet()
    configure_output("--verbose" in argv or environment.is_verbose())
    ignore_file_size_signal()
    try:
        with argument_errors_as_user_errors():
            code = main(argv)
    except UserInputError as err:
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output went to a command that stopped reading (`| head`)
        with contextlib.suppress(OSError, ValueError):  # no second error when Python exits
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # permission, disk full, file too large, name too long, ...
        if environment.is_verbose() or "--verbose" in argv:
            traceback.print_exc()
        print(f"error: {os_error_message(err, output_option(argv))}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # Path.resolve() of a link loop before Python 3.13
        loop = re.fullmatch(r"Symlink loop from '(.*)'", str(err))
        if loop is None:
            raise
        print(f"error: {loop.group(1)}: {os.strerror(errno.ELOOP)}", file=sys.stderr)
        return 2
    finally:
        set_quiet(quiet)
    return 0 if code is None else int(code)


def parse_settings(parser: argparse.ArgumentParser, argv, config_from_args: Callable,
                   settings_text: Callable):
    """What a stage's command line does first: parses ``argv``, applies ``--quiet`` and
    resolves the config (``config_from_args(args)``). With ``--print-config`` it prints the
    full settings (``settings_text(config, args, full=True)``) and returns None; otherwise
    it shows the short settings line and returns ``(args, config)``."""
    args = parser.parse_args(argv)
    set_quiet(args.quiet)
    config = config_from_args(args)
    if args.print_config:
        print(settings_text(config, args, full=True))
        return None
    status(settings_text(config, args))
    return args, config

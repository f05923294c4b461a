"""Process-wide environment for the project: import this before tensorflow.

Every entry point (``pitune_tf``, ``nextitnet``, ``trainers``, ``tflite``, ``bench``,
``scripts``) and the test suite imports this module first. It selects the Keras 2 API
from ``tf-keras`` (a ``TFGPT2Model`` inside a Keras 3 model silently does not train)
and quiets TensorFlow's start-up output.

Why ``TF_CPP_MIN_LOG_LEVEL`` alone is not enough: TensorFlow 2.21 logs through absl, and
the lines written while its shared libraries load (``WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR``, ``port.cc ... oneDNN custom
operations are on``, ``cudart_stub.cc ... Could not find cuda drivers``, once per library)
come from static initializers, before TensorFlow reads the variable. So the first
``import tensorflow`` runs with the process's standard error (file descriptor 2) sent to a
temporary file, and the captured text is written back without those known banner lines
(everything else, e.g. a Python warning or a traceback, comes back unchanged). The level is
3 by default, which also hides the ``failed call to cuInit`` error on machines without a GPU.

``PITUNE_VERBOSE=1`` in the environment, or ``--verbose`` on any command line (see
:func:`pitune_tf.common.cli.run_main`, which sets it before TensorFlow is imported), turns
all of this off: level 0 and nothing filtered.
"""

import os
import re
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

# TensorFlow's native start-up lines that say nothing actionable (see the module docstring).
BANNER_PATTERN = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|\] oneDNN custom operations are on"
    r"|cudart_stub\.cc:\d+\]"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|^To enable the following instructions: .* rebuild TensorFlow"
    r"|TF-TRT Warning"
    r"|Created TensorFlow Lite XNNPACK delegate for CPU"
)


def is_verbose() -> bool:
    """Whether the user asked for TensorFlow's full output (``PITUNE_VERBOSE``)."""
    return os.environ.get("PITUNE_VERBOSE", "") not in ("", "0")


def set_verbose(verbose: bool) -> None:
    """Selects TensorFlow's full output (``verbose``) or the quiet default for this process.

    Effective for the native log when called before TensorFlow is first imported (the
    command lines import it lazily, after parsing their options).
    """
    if verbose:
        os.environ["PITUNE_VERBOSE"] = "1"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        _uninstall_quiet_import()
    else:
        os.environ.pop("PITUNE_VERBOSE", None)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def filter_banners(text: str) -> str:
    """``text`` without the lines matching :data:`BANNER_PATTERN`."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not BANNER_PATTERN.search(line))


def quiet_native_stderr():
    """Context manager: what native code writes to standard error inside it comes out after
    it, less the banner lines (:data:`BANNER_PATTERN`; e.g. LiteRT's XNNPACK notice on the
    first call of a signature, which would otherwise land in the middle of a progress bar)."""
    return _QuietStderr()


class _QuietStderr:
    """Context manager: file descriptor 2 goes to a temporary file; on exit the captured
    text, less the banner lines, is written back to the original standard error."""

    def __enter__(self):
        import tempfile

        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, ValueError):  # no usable descriptor 2 (embedded interpreters)
            self._saved = None
            return self
        self._file = tempfile.TemporaryFile()
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return False
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        text = filter_banners(self._file.read().decode("utf-8", errors="replace"))
        self._file.close()
        if text:
            os.write(2, text.encode("utf-8"))
        return False


class _QuietLoader:
    """Wraps the ``tensorflow`` package's loader: its module runs inside :class:`_QuietStderr`."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _QuietStderr():
            self._loader.exec_module(module)

    def __getattr__(self, name):  # resource readers, get_filename, ...
        return getattr(self._loader, name)


class _QuietImportFinder:
    """A ``sys.meta_path`` finder that wraps the first ``import tensorflow``, then leaves."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        _uninstall_quiet_import()
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _uninstall_quiet_import() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietImportFinder)]


if is_verbose():
    set_verbose(True)
else:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImportFinder())

"""Test configuration: Keras 2 before tensorflow, the ``--runslow`` flag, shared data."""

# isort: off
from pitune_tf.common import environment  # noqa: F401  (Keras 2 before tensorflow)
# isort: on

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data():
    """Path to ../shared/data; skips the test when it is absent (as on a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _restore_environment():
    """Each test starts from the session's environment variables: a command run in-process
    with ``--verbose`` sets ``PITUNE_VERBOSE`` and ``TF_CPP_MIN_LOG_LEVEL=0``, which the
    next test's subprocesses would otherwise inherit (TensorFlow's banners on their stderr)."""
    import os

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _seed_everything():
    import random

    import numpy as np
    import tensorflow as tf

    random.seed(0)
    np.random.seed(0)
    tf.random.set_seed(0)
    yield

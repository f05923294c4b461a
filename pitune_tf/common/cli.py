"""Shared command-line plumbing: user errors as one line on stderr with exit status 2."""

from __future__ import annotations

import sys
from typing import Callable

from pitune_tf.common.errors import UserInputError


def run_main(main: Callable[[list[str] | None], int | None], argv=None) -> int:
    """Runs ``main(argv)``; a :class:`UserInputError` becomes ``error: ...`` and status 2."""
    try:
        code = main(argv)
    except UserInputError as err:
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)

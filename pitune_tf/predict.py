"""Next-intent predictions for users' event logs from a population run: the entry point of
``python -m pitune_tf.predict`` (``pitune-predict``). The command line, with its examples,
is :mod:`pitune_tf.prediction.command_line`; the work is done by
:class:`pitune_tf.prediction.NextIntentPredictor`.
"""

import sys

from pitune_tf.prediction.command_line import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

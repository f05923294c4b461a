"""Event-log data layer: canonical event tables, vocabularies, context features, windows
(PITuning Eq. 1), splits and real-data adapters.

Typical use::

    df = read_events("events.parquet")               # canonical table
    vocabs = Vocabularies.fit(df)                    # PAD = 0, UNK = 1
    windows = make_windows(encode_events(df, vocabs), history=30)
    train, val, test = split_windows(windows)         # 60/10/30 per user, in time order
    ds = train.to_dataset(batch_size=256, shuffle=True)

The command line ``python -m pitune_tf.data`` generates, converts and summarizes logs.
"""

from pitune_tf.common.vocabulary import Vocabulary
from pitune_tf.data.encoded_events import EncodedEvents
from pitune_tf.data.features import encode_events
from pitune_tf.data.io import read_events, write_events
from pitune_tf.data.splits import split_users, split_windows
from pitune_tf.data.vocabularies import Vocabularies
from pitune_tf.data.windows import Windows, make_next_windows, make_windows

__all__ = [
    "read_events",
    "write_events",
    "Vocabulary",
    "Vocabularies",
    "encode_events",
    "EncodedEvents",
    "Windows",
    "make_windows",
    "make_next_windows",
    "split_users",
    "split_windows",
]

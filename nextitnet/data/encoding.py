"""From token-level :class:`CrossDomainData` to padded id arrays, 80/5/15 splits and the
pretraining windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from nextitnet.data.cross_domain_data import CrossDomainData
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.vocabulary import Vocabulary
from pitune_tf.common.windowing import gather_windows

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.05, 0.15)  # train / val / test shares of the rows (UAF 4.3)
PROFILE_LABELS = ("gender", "age")  # the profile tasks of UAF 5.4, in table order
# source items: PITuning's reserved ids (pitune_tf.common.vocabulary: 0 = padding, 1 = unknown)
SOURCE_RESERVED = Vocabulary.DEFAULT_RESERVED
TARGET_RESERVED = (Vocabulary.UNK_TOKEN,)  # target items: 0 = unknown, valid targets 1 .. V


@dataclass
class EncodedTask:
    """A fine-tuning task as arrays.

    Attributes:
        source_vocab: Vocabulary of source items (0 = pad, 1 = unknown).
        output_tokens: names of the output ids (target items with "<unk>" at 0, or classes).
        task: "recommendation" or "profile:<label>".
        splits: split name -> {"source": [n, L] int32, "target": [n] int32, "user": [n] str};
            the recommendation task adds "seen": [n] int32 arrays, the target items of the
            row's user in the training split (masked from the full ranking).
        dropped: counts of instances left out.
        unseen_in_train: per evaluation split, rows whose target item never occurs in the
            (subsampled) training split (kept and scored).
    """

    source_vocab: Vocabulary
    output_tokens: list[str]
    task: str
    splits: dict[str, dict[str, np.ndarray]]
    dropped: dict[str, int] = field(default_factory=dict)
    unseen_in_train: dict[str, int] = field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        return len(self.output_tokens)

    def sizes(self) -> dict[str, int]:
        return {name: int(len(split["target"])) for name, split in self.splits.items()}


def fit_source_vocab(data: CrossDomainData) -> Vocabulary:
    """Source items of the pretraining and fine-tuning sequences, most frequent first."""
    return Vocabulary.fit(
        list(chain.from_iterable(chain(data.pretrain, data.source))), name="source item",
        reserved=SOURCE_RESERVED, order="frequency", warn=False,
    )


def encode_sequences(vocab: Vocabulary, sequences) -> tuple[np.ndarray, np.ndarray]:
    """Every sequence encoded in one call: ids [total] int32 one sequence after the other,
    and starts [n + 1] int64 (sequence s holds ids ``starts[s] .. starts[s + 1] - 1``)."""
    lengths = np.fromiter((len(s) for s in sequences), np.int64, count=len(sequences))
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return vocab.encode(list(chain.from_iterable(sequences))), starts


def last_items(vocab: Vocabulary, sequences, length) -> np.ndarray:
    """Each sequence's last ``length`` ids, left-padded with 0. [n, length] int32."""
    ids, starts = encode_sequences(vocab, sequences)
    index = np.arange(len(sequences))
    return gather_windows({"id": ids}, starts, starts[1:], length, sequence=index)["id"]


def _split_index(n, fractions, seed):
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise UserInputError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}


def _subsample_train(index, train_fraction, seed):
    if not 0.0 < train_fraction <= 1.0:
        raise UserInputError(f"--train-fraction must be in (0, 1], got {train_fraction}")
    if train_fraction < 1.0:
        keep = np.random.default_rng(seed + 1).permutation(len(index["train"]))
        index["train"] = np.sort(index["train"][keep[: max(1, int(round(train_fraction * len(keep))))]])
    return index


def encode_recommendation_task(data: CrossDomainData, max_len=50, fractions=SPLIT_FRACTIONS,
                               seed=0, train_fraction=1.0, source_vocab=None) -> EncodedTask:
    """One instance per (user, target item), split 80/5/15 at random (UAF 4.3).

    The target vocabulary covers every target item of ``data`` (all rows, so an item met
    only in val/test is still ranked and scored, never dropped). The split is drawn on all
    rows with ``seed`` first; ``train_fraction`` < 1 then keeps that share of the training
    split only (Table 5), so the val/test rows, their ids and their seen-item masks are the
    same for every ``train_fraction``. A row's "seen" items are its user's target items in
    the whole training split (before subsampling).
    """
    vocab = source_vocab or fit_source_vocab(data)
    row_user = np.repeat(np.arange(len(data.targets)), [len(t) for t in data.targets])  # [rows]
    row_item = np.array(list(chain.from_iterable(data.targets)), dtype=object)  # [rows]
    if not len(row_user):
        raise UserInputError(f"{data.name}: no target-domain interactions to fine-tune on")
    target_vocab = Vocabulary.fit(row_item, name="target item", reserved=TARGET_RESERVED,
                                  order="frequency", warn=False)
    if len(target_vocab) < 3:
        raise UserInputError(f"{data.name}: fewer than 2 distinct target items")
    row_target = target_vocab.encode(row_item).astype(np.int32)  # [rows], all >= 1
    full_index = _split_index(len(row_user), fractions, seed)
    seen = _seen_items(row_user[full_index["train"]], row_target[full_index["train"]], len(data.users))
    index = _subsample_train(dict(full_index), train_fraction, seed)
    trained = np.zeros(len(target_vocab), bool)
    trained[row_target[index["train"]]] = True
    sources = last_items(vocab, data.source, max_len)  # [users, L]
    oracle = oracle_logits(data, target_vocab) if data.target_oracle is not None else None
    splits, unseen = {}, {}
    for name in SPLITS:
        users = row_user[index[name]]
        splits[name] = {
            "source": sources[users],
            "target": row_target[index[name]],
            "user": np.array([data.users[u] for u in users], dtype=object),
            "seen": seen[users],
        }
        if name != "train":
            unseen[name] = int((~trained[splits[name]["target"]]).sum())
            if oracle is not None:  # each row's true target distribution: the ceiling's scores
                splits[name]["oracle"] = oracle[users]
    return EncodedTask(vocab, target_vocab.tokens, "recommendation", splits, unseen_in_train=unseen)


def oracle_logits(data: CrossDomainData, target_vocab: Vocabulary) -> np.ndarray:
    """[users, n_outputs] float32: log of each user's true target distribution
    (``data.target_oracle``) over the output ids; the reserved ids and items the oracle gives
    no mass to get a very low score (they are never the truth)."""
    out = np.full((len(data.users), len(target_vocab)), -1e9, np.float32)
    ids = target_vocab.encode(np.asarray(data.oracle_items, dtype=object))
    known = ids >= len(TARGET_RESERVED)  # items of the vocabulary (every observed target item)
    probs = np.asarray(data.target_oracle, np.float64)[:, known]
    out[:, ids[known]] = np.log(np.maximum(probs, 1e-30)).astype(np.float32)
    return out


def _seen_items(users, items, n_users) -> np.ndarray:
    """[n_users] object array: each user's distinct items among (users, items), int32 sorted."""
    out = np.empty(n_users, dtype=object)
    for user in range(n_users):
        out[user] = np.zeros(0, np.int32)
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    for group_users, group_items in zip(np.split(users, bounds), np.split(items, bounds)):
        if len(group_users):
            out[group_users[0]] = np.unique(group_items).astype(np.int32)
    return out


def encode_profile_task(data: CrossDomainData, label: str, max_len=50, fractions=SPLIT_FRACTIONS,
                        seed=0, train_fraction=1.0, source_vocab=None) -> EncodedTask:
    """One instance per user: source sequence -> profile class (gender, age bucket; 5.4)."""
    if label not in data.profiles:
        raise UserInputError(f"{data.name} has no profile {label!r}; available: {sorted(data.profiles) or 'none'}")
    vocab = source_vocab or fit_source_vocab(data)
    values = data.profiles[label]
    classes = sorted({v for v in values if v != "<unknown>"})
    if len(classes) < 2:
        raise UserInputError(f"profile {label!r} has fewer than two classes")
    class_id = {c: i for i, c in enumerate(classes)}
    users = np.array([u for u, v in enumerate(values) if v in class_id], np.int64)
    index = _subsample_train(_split_index(len(users), fractions, seed), train_fraction, seed)
    sources = last_items(vocab, data.source, max_len)  # [users, L]
    splits = {}
    for name in SPLITS:
        idx = users[index[name]]
        splits[name] = {
            "source": sources[idx],
            "target": np.array([class_id[values[u]] for u in idx], np.int32),
            "user": np.array([data.users[u] for u in idx], dtype=object),
        }
    return EncodedTask(vocab, classes, f"profile:{label}", splits, {"unknown_label": len(values) - len(users)})


def pretrain_windows(data: CrossDomainData, vocab: Vocabulary, max_len=50, min_items=2) -> np.ndarray:
    """Source sequences cut from the end into windows of ``max_len + 1`` ids (left-padded);
    a window feeds ``max_len`` inputs and ``max_len`` next-item targets (UAF Eq. 5).

    Per sequence, window k ends ``k * max_len`` ids before the sequence's end (where window
    k - 1's input starts), until a window reaches the first id; windows with fewer than
    ``min_items`` ids are left out. Every id but a sequence's first is a target exactly
    once. Rows: sequence by sequence, each from its end backwards. [n, max_len + 1] int32.
    """
    ids, starts = encode_sequences(vocab, data.pretrain)
    lengths = np.diff(starts)  # [n_seq]
    # windows per sequence: 1 + ceil((n - max_len - 1) / max_len), at least 1
    n_windows = 1 + np.maximum(0, -(-(lengths - max_len - 1) // max_len))  # [n_seq]
    sequence = np.repeat(np.arange(len(lengths)), n_windows)  # [m]
    k = np.arange(len(sequence)) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)  # [m]
    end = lengths[sequence] - k * max_len  # [m] exclusive end inside the sequence
    keep = end >= min_items
    if not keep.any():
        raise UserInputError(f"{data.name}: no source sequence has {min_items} items to pretrain on")
    sequence, end = sequence[keep], end[keep]
    return gather_windows({"id": ids}, starts, starts[sequence] + end, max_len + 1, sequence=sequence)["id"]

"""From token-level :class:`CrossDomainData` to padded id arrays and 80/5/15 splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nextitnet.data.cross_domain_data import CrossDomainData
from nextitnet.data.item_vocabulary import ItemVocabulary
from pitune_tf.common.errors import UserInputError

SPLITS = ("train", "val", "test")


def left_pad(ids, length) -> np.ndarray:
    """The last ``length`` ids, left-padded with 0. [length] int32."""
    out = np.zeros(length, np.int32)
    ids = np.asarray(ids, np.int32)[-length:]
    if len(ids):
        out[-len(ids):] = ids
    return out


@dataclass
class EncodedTask:
    """A fine-tuning task as arrays.

    Attributes:
        source_vocab: ItemVocabulary of source items (0 = pad, 1 = unknown).
        output_tokens: names of the output ids (target items with "<unk>" at 0, or classes).
        task: "recommendation" or "profile:<label>".
        splits: split name -> {"source": [n, L] int32, "target": [n] int32, "user": [n] str}.
        dropped: counts of instances left out (e.g. unknown targets in val/test).
    """

    source_vocab: ItemVocabulary
    output_tokens: list[str]
    task: str
    splits: dict[str, dict[str, np.ndarray]]
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def num_outputs(self) -> int:
        return len(self.output_tokens)

    def sizes(self) -> dict[str, int]:
        return {name: int(len(split["target"])) for name, split in self.splits.items()}


def fit_source_vocab(data: CrossDomainData) -> ItemVocabulary:
    return ItemVocabulary.fit(list(data.pretrain) + list(data.source))


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


def encode_recommendation_task(
    data: CrossDomainData,
    max_len=50,
    fractions=(0.8, 0.05, 0.15),
    seed=0,
    train_fraction=1.0,
    source_vocab=None,
) -> EncodedTask:
    """One instance per (user, target item), split 80/5/15 at random (UAF 4.3).

    The target vocabulary is fitted on the training split; target items unseen there map to
    the reserved id 0 and those val/test instances are dropped from evaluation (counted).
    ``train_fraction`` < 1 keeps that share of the training split (Table 5).
    """
    vocab = source_vocab or fit_source_vocab(data)
    rows = [(u, t) for u, tgts in enumerate(data.targets) for t in tgts]
    if not rows:
        raise UserInputError(f"{data.name}: no target-domain interactions to fine-tune on")
    index = _subsample_train(_split_index(len(rows), fractions, seed), train_fraction, seed)
    target_vocab = ItemVocabulary.fit([[rows[i][1] for i in index["train"]]], reserved=("<unk>",))
    if len(target_vocab) < 3:
        raise UserInputError(f"{data.name}: fewer than 2 distinct target items in the training split")
    sources = {}
    splits, dropped = {}, {}
    for name in SPLITS:
        idx = index[name]
        users = np.array([rows[i][0] for i in idx], np.int64)
        target = target_vocab.encode([rows[i][1] for i in idx])
        for u in set(users.tolist()) - set(sources):
            sources[u] = left_pad(vocab.encode(data.source[u]), max_len)
        source = np.stack([sources[u] for u in users]) if len(users) else np.zeros((0, max_len), np.int32)
        keep = target != 0 if name != "train" else np.ones(len(target), bool)
        dropped[f"{name}_unknown_target"] = int((~keep).sum())
        splits[name] = {
            "source": source[keep],
            "target": target[keep].astype(np.int32),
            "user": np.array([data.users[u] for u in users[keep]], dtype=object),
        }
    return EncodedTask(vocab, target_vocab.tokens, "recommendation", splits, dropped)


def encode_profile_task(
    data: CrossDomainData,
    label: str,
    max_len=50,
    fractions=(0.8, 0.05, 0.15),
    seed=0,
    train_fraction=1.0,
    source_vocab=None,
) -> EncodedTask:
    """One instance per user: source sequence -> profile class (gender, age bucket; 5.4)."""
    if label not in data.profiles:
        raise UserInputError(f"{data.name} has no profile {label!r}; available: {sorted(data.profiles) or 'none'}")
    vocab = source_vocab or fit_source_vocab(data)
    values = data.profiles[label]
    classes = sorted({v for v in values if v != "<unknown>"})
    if len(classes) < 2:
        raise UserInputError(f"profile {label!r} has fewer than two classes")
    class_id = {c: i for i, c in enumerate(classes)}
    users = [u for u, v in enumerate(values) if v in class_id]
    index = _subsample_train(_split_index(len(users), fractions, seed), train_fraction, seed)
    splits = {}
    for name in SPLITS:
        idx = [users[i] for i in index[name]]
        splits[name] = {
            "source": np.stack([left_pad(vocab.encode(data.source[u]), max_len) for u in idx])
            if idx else np.zeros((0, max_len), np.int32),
            "target": np.array([class_id[values[u]] for u in idx], np.int32),
            "user": np.array([data.users[u] for u in idx], dtype=object),
        }
    return EncodedTask(vocab, classes, f"profile:{label}", splits, {"unknown_label": len(values) - len(users)})


def pretrain_windows(data: CrossDomainData, vocab: ItemVocabulary, max_len=50, min_items=2) -> np.ndarray:
    """Source sequences cut from the end into windows of ``max_len + 1`` ids (left-padded);
    a window feeds ``max_len`` inputs and ``max_len`` next-item targets. [n, max_len + 1]."""
    windows = []
    for seq in data.pretrain:
        ids = vocab.encode(seq)
        end = len(ids)
        while end >= min_items:
            start = max(0, end - (max_len + 1))
            windows.append(left_pad(ids[start:end], max_len + 1))
            end = start + 1 if start > 0 else 0  # next window ends where this one's input starts
    if not windows:
        raise UserInputError(f"{data.name}: no source sequence has {min_items} items to pretrain on")
    return np.stack(windows)

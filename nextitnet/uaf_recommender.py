"""A fine-tuned mode of a UAF run reloaded from its run directory: top-k target items for
users' source-domain sequences, and the top-k file of a run's test users (``--dump-topk``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from nextitnet.baselines import SCORE_MODES, baseline_scores
from nextitnet.data.encoding import SOURCE_RESERVED, TARGET_RESERVED, EncodedTask, last_items
from nextitnet.evaluation import mask_seen_items, predict
from nextitnet.fine_tuning_stage import build_uaf_model
from nextitnet.pretraining_stage import SOURCE_VOCAB
from nextitnet.uaf_config import UAFConfig
from nextitnet.uaf_model import MODES, UAFModel
from pitune_tf.common.atomic import atomic_path, write_json
from pitune_tf.common.config import replace
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.run_files import RunFiles
from pitune_tf.common.types import PathLike
from pitune_tf.common.vocabulary import Vocabulary

TARGET_VOCAB = "target_vocab.json"  # inside a run directory (recommendation task)
TOPK_FILE = "topk.csv"  # inside RUN/modes/<mode>/
TOPK_COLUMNS = ("user_id", "rank", "item", "score")


class UAFRecommender:
    """One fine-tuned mode of a UAF run: source-domain sequences in, target items out.

    Args:
        model: :class:`nextitnet.uaf_model.UAFModel`. The fine-tuned network.
        source_vocab: Vocabulary. Source items (0 = padding, 1 = unknown).
        target_tokens: list of str. Target items by output id (id 0 = the reserved unknown
            item, never recommended).
        max_len: int. Source sequence length ``L``.

    Example:
        >>> rec = UAFRecommender.from_run("runs/uaf", mode="soft")
        >>> rec.recommend({"u1": ["s3", "s9", "s4"]}, top_k=5)   # user_id, rank, item, score
    """

    def __init__(self, model: UAFModel, source_vocab: Vocabulary, target_tokens: Iterable[str],
                 max_len: int) -> None:
        self.model = model
        self.source_vocab = source_vocab
        self.target_tokens = list(target_tokens)
        self.max_len = int(max_len)

    @classmethod
    def from_run(cls, run: PathLike, mode: str = "soft") -> UAFRecommender:
        """Reloads ``mode``'s best validation weights (``RUN/modes/<mode>/best.weights.h5``)
        with the run's ``config.json``, ``source_vocab.json`` and ``target_vocab.json``
        (read through :class:`pitune_tf.common.run_files.RunFiles`).

        Args:
            run: path of a run directory of ``python -m trainers.uaf`` (recommendation task).
            mode: str. A fine-tuned mode of ``nextitnet.uaf_model.MODES`` that the run trained.

        Raises:
            UserInputError: not a fine-tuned mode, not a UAF run directory (a file missing or
                unreadable), a profile run, or a mode the run did not train.
        """
        if mode not in MODES:
            raise UserInputError(f"{mode!r} is not a fine-tuned mode; choose one of {', '.join(MODES)}")
        files = RunFiles(run, what="UAF run directory")
        record: dict[str, Any] = files.json("config.json")
        if record.get("task", "recommendation") != "recommendation":
            raise UserInputError(f"{files.path}: a {record.get('task')} run; only recommendation "
                                 "runs recommend target items")
        config = replace(UAFConfig(), **record.get("config", {}))
        source: dict[str, Any] = files.json(SOURCE_VOCAB)
        source_vocab = Vocabulary.from_json(source.get("tokens"), name="source item",
                                            reserved=source.get("reserved", SOURCE_RESERVED))
        target_path = files.file(TARGET_VOCAB, hint="written by this version of trainers.uaf: "
                                 "run the same command again on this --out")
        target_tokens = files.json(TARGET_VOCAB).get("tokens")
        if not isinstance(target_tokens, list):
            raise UserInputError(f"{target_path}: expected a token list under \"tokens\"")
        weights = files.file(f"modes/{mode}/best.weights.h5",
                             hint=f"the run did not train mode {mode!r}")
        model = build_uaf_model(mode, config, len(source_vocab), len(target_tokens))
        try:
            model.load_weights(str(weights))
        except (ValueError, OSError) as err:
            raise UserInputError(f"{weights}: does not match the run's config ({err})") from None
        return cls(model, source_vocab, target_tokens, config.max_len)

    def encode(self, sequences: Iterable[Sequence[str]]) -> np.ndarray:
        """Each sequence's last ``max_len`` source ids, left-padded. [n, L] int32."""
        return last_items(self.source_vocab, list(sequences), self.max_len)

    def scores(self, sources: npt.ArrayLike) -> np.ndarray:
        """Logits [n, n_outputs] of encoded source sequences [n, L] (inference mode)."""
        logits: np.ndarray = predict(self.model, np.asarray(sources, np.int32))[0]
        return logits

    def recommend(self, sequences: Mapping[str, Sequence[str]], top_k: int = 10,
                  exclude: Mapping[str, Iterable[str]] | None = None) -> pd.DataFrame:
        """The ``top_k`` target items of each user.

        Args:
            sequences: dict user -> list of source-domain items (oldest first).
            top_k: int. Items per user.
            exclude: dict user -> target items not to recommend (e.g. already consumed), or None.

        Returns:
            DataFrame ``user_id, rank, item, score`` (``top_k`` rows per user, rank 1 = best).
        """
        users = list(sequences)
        scores = self.scores(self.encode([sequences[u] for u in users]))
        seen = None
        if exclude:
            index = {t: i for i, t in enumerate(self.target_tokens)}
            seen = [np.array([index[t] for t in exclude.get(u, ()) if index.get(t, 0) > 0],
                             np.int64) for u in users]
        return topk_frame(users, scores, self.target_tokens, top_k, seen)


def topk_frame(users: Sequence[str] | np.ndarray, scores: npt.ArrayLike,
               target_tokens: Sequence[str], top_k: int,
               seen: Sequence[np.ndarray] | None = None) -> pd.DataFrame:
    """``user_id, rank, item, score`` for each row of ``scores`` [n, C] (column 0, the
    reserved unknown item, never ranked; each row's ``seen`` ids [n] of int arrays left out)."""
    n_items = len(target_tokens) - len(TARGET_RESERVED)
    top_k = int(top_k)
    if not 1 <= top_k <= n_items:
        raise UserInputError(f"top-k must be in [1, {n_items}] (the target items), got {top_k}")
    ranked_scores = np.asarray(scores, np.float32)[:, 1:]  # [n, C - 1], column j = id j + 1
    if seen is not None:
        ranked_scores = mask_seen_items(ranked_scores, np.zeros(len(users), np.int64), seen)
    order = np.argsort(-ranked_scores, axis=1, kind="stable")[:, :top_k]  # [n, k]
    table = pd.DataFrame({
        "user_id": np.repeat(np.asarray(users, dtype=object), top_k),
        "rank": np.tile(np.arange(1, top_k + 1), len(users)),
        "item": np.asarray(target_tokens, dtype=object)[order + 1].ravel(),
        "score": np.take_along_axis(ranked_scores, order, axis=1).ravel().astype(np.float64),
    }, columns=list(TOPK_COLUMNS))
    return table[table["score"] > -np.inf].reset_index(drop=True)  # fewer when all were seen


def write_target_vocab(run_dir: PathLike, target_tokens: Iterable[str]) -> None:
    """``target_vocab.json``: ``{"reserved": [...], "tokens": [...]}`` (index = output id)."""
    write_json(Path(run_dir) / TARGET_VOCAB, {"reserved": list(TARGET_RESERVED),
                                              "tokens": list(target_tokens)})


def dump_topk(run_dir: PathLike, mode: str, config: UAFConfig, task: EncodedTask,
              top_k: int) -> Path:
    """Writes ``RUN/modes/<mode>/topk.csv``: the ``top_k`` target items of each test user
    (``user_id, rank, item, score``; the user's training items left out when
    ``config.mask_seen``), from the reloaded best weights or, for a baseline of
    ``SCORE_MODES``, its scores.

    Args:
        run_dir: Path. The run directory.
        mode: str. A mode the run has finished.
        config: UAFConfig.
        task: EncodedTask. The recommendation task (its test split).
        top_k: int. Items per user.
    """
    test = task.splits["test"]
    users, first = np.unique(np.asarray(test["user"], dtype=str), return_index=True)
    if mode in SCORE_MODES:
        scores = baseline_scores(mode, task.splits["train"]["target"], task.n_outputs,
                                 len(users), seed=config.seed)
    else:
        scores = UAFRecommender.from_run(run_dir, mode).scores(test["source"][first])
    seen = [test["seen"][i] for i in first] if config.mask_seen else None
    table = topk_frame(users, scores, task.output_tokens, top_k, seen)
    path = Path(run_dir) / "modes" / mode / TOPK_FILE
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


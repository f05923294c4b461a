"""The pretraining stage of a UAF run: autoregressive pretraining of the NextItNet backbone
on the source domain (UAF Eq. 5), or loading a pretrained one."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from nextitnet.data.encoding import pretrain_windows
from nextitnet.nextitnet_backbone import NextItNet
from nextitnet.pretrainer import NextItNetPretrainer
from nextitnet.training import fit_resumable, save_weights, seed_everything
from pitune_tf.common.atomic import write_json
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf

log = logging.getLogger(__name__)
BACKBONE_WEIGHTS = Path("pretrain") / "backbone.weights.h5"  # inside a run directory
SOURCE_VOCAB = "source_vocab.json"  # inside a run directory


def new_backbone(config, n_items) -> NextItNet:
    """A built, randomly initialised NextItNet of ``config``'s shape."""
    net = NextItNet(n_items, config.embedding_dim, config.block_dilations, config.kernel_size,
                    name="nextitnet")
    net.build([None, None])
    return net


def write_source_vocab(run_dir, vocab) -> None:
    """``source_vocab.json``: ``{"reserved": [...], "tokens": [...]}`` (index = id)."""
    write_json(Path(run_dir) / SOURCE_VOCAB, {"reserved": list(vocab.reserved), "tokens": vocab.to_json()})


def load_backbone(net, pretrained, vocab) -> NextItNet:
    """Loads ``pretrained`` into ``net``: a run directory (whose source vocabulary must be
    ``vocab``) or a backbone ``.weights.h5`` file."""
    source = Path(pretrained)
    if source.is_dir():
        vocab_file = source / SOURCE_VOCAB
        if vocab_file.is_file() and json.loads(vocab_file.read_text())["tokens"] != vocab.tokens:
            raise UserInputError(f"{source}: its source vocabulary differs from this data's")
        source = source / BACKBONE_WEIGHTS
    if not source.is_file():
        raise UserInputError(f"{source}: pretrained backbone weights not found")
    try:
        net.load_weights(str(source))
    except (ValueError, OSError) as err:
        raise UserInputError(f"{source}: does not match this configuration ({err})") from err
    return net


def pretrain_backbone(config, data, vocab, run_dir, pretrained=None, verbose="auto") -> NextItNet:
    """The backbone of the fine-tuning modes: loaded from ``pretrained``, or from
    ``run_dir/pretrain`` when that stage is done, or pretrained there (resumable) with the
    masked next-item loss (UAF Eq. 5) on the windows of the source sequences."""
    net = new_backbone(config, len(vocab))
    if pretrained is not None:
        return load_backbone(net, pretrained, vocab)
    weights = Path(run_dir) / BACKBONE_WEIGHTS
    if weights.is_file():
        net.load_weights(str(weights))
        log.info("pretrained backbone found in %s, skipping pretraining", weights)
        return net
    seed_everything(config.seed)
    net = new_backbone(config, len(vocab))
    windows = pretrain_windows(data, vocab, config.max_len)  # [n, L + 1]
    try:
        trainer = NextItNetPretrainer(net, config.pretrain_loss, config.pretrain_negatives,
                                      config.pretrain_sampler)
    except ValueError as err:
        raise UserInputError(f"pretraining: {err}") from err
    trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    trainer(tf.constant(windows[:1, -2:]))  # builds it: [1, 1, V] logits, not [2, L, V]
    print(f"pretraining NextItNet on {len(windows)} source windows for {config.pretrain_epochs} epochs"
          f" ({trainer.pretrain_loss} softmax over {len(vocab)} items)")
    history = fit_resumable(trainer, windows, config.batch_size, config.seed,
                            config.pretrain_epochs, weights.parent, verbose=verbose)
    save_weights(net, weights)
    write_json(weights.parent / "history.json",
               {k: [float(x) for x in v] for k, v in history.history.items()})
    return net

"""The pretraining stage of a UAF run: autoregressive pretraining of the NextItNet backbone
on the source domain (UAF Eq. 5), or loading a pretrained one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nextitnet.data.encoding import pretrain_windows
from nextitnet.fit_progress import epochs_text, say
from nextitnet.nextitnet_backbone import NextItNet
from nextitnet.pretraining_loss import NextItNetPretrainer
from nextitnet.stage_fit import fit_stage
from nextitnet.validation_monitor import ValidationMonitor
from pitune_tf.common.atomic import write_json
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.run_files import RunFiles
from pitune_tf.common.seeding import seed_everything
from pitune_tf.common.weight_stores import save_weights

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
        run = RunFiles(source, what="--pretrained run directory")
        recorded = run.json(SOURCE_VOCAB, default=None)
        if recorded is not None and recorded.get("tokens") != vocab.tokens:
            raise UserInputError(f"{source}: its source vocabulary differs from this data's")
        source = run / BACKBONE_WEIGHTS
    if not source.is_file():
        raise UserInputError(f"{source}: pretrained backbone weights not found")
    try:
        net.load_weights(str(source))
    except (ValueError, OSError) as err:
        raise UserInputError(f"{source}: does not match this configuration ({err})") from err
    return net


def split_windows(windows, share, seed):
    """(training windows, held-out windows): a seeded ``share`` of the rows held out (at least
    one when ``share`` > 0 and there are two rows or more; none when ``share`` is 0)."""
    n_held = min(len(windows) - 1, max(1, int(round(share * len(windows))))) if share > 0 else 0
    if n_held <= 0:
        return windows, windows[:0]
    order = np.random.default_rng(seed).permutation(len(windows))
    return windows[np.sort(order[n_held:])], windows[np.sort(order[:n_held])]


def held_out_loss(trainer, windows, batch_size=512) -> float:
    """The pretraining loss (``compute_losses(...)["loss"]``, inference mode) over
    ``windows``, each batch weighted by its number of real next-item targets."""
    total, weight = 0.0, 0.0
    for start in range(0, len(windows), batch_size):
        batch = windows[start:start + batch_size]
        n_targets = float(np.count_nonzero(batch[:, 1:]))
        total += float(trainer.compute_losses(tf.constant(batch), training=False)["loss"]) * n_targets
        weight += n_targets
    return total / max(weight, 1.0)


def pretrain_backbone(config, data, vocab, run_dir, pretrained=None, verbose="auto") -> NextItNet:
    """The backbone of the fine-tuning modes: loaded from ``pretrained``, or from
    ``run_dir/pretrain`` when that stage is done, or pretrained there (resumable) with the
    masked next-item loss (UAF Eq. 5) on the windows of the source sequences: at most
    ``config.pretrain_epochs`` epochs, stopped after ``config.patience`` epochs without a
    lower loss on the held-out ``config.pretrain_val_share`` of the windows, whose best epoch
    is kept (no held-out windows: every epoch, the last one kept). ``verbose``: "auto", 2 or
    0, what is printed (:mod:`nextitnet.fit_progress`)."""
    net = new_backbone(config, len(vocab))
    if pretrained is not None:
        say(f"[pretrain] skipped: backbone loaded from {pretrained}", verbose)
        return load_backbone(net, pretrained, vocab)
    weights = Path(run_dir) / BACKBONE_WEIGHTS
    if weights.is_file():
        net.load_weights(str(weights))
        say(f"[pretrain] done in an earlier run: backbone loaded from {weights}", verbose)
        return net
    seed_everything(config.seed)
    net = new_backbone(config, len(vocab))
    windows, held_out = split_windows(pretrain_windows(data, vocab, config.max_len),
                                      config.pretrain_val_share, config.seed)  # [n, L + 1]
    try:
        trainer = NextItNetPretrainer(net, config.pretrain_loss, config.pretrain_negatives,
                                      config.pretrain_sampler, jit=config.pretrain_jit)
    except ValueError as err:
        raise UserInputError(f"pretraining: {err}") from err
    trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    trainer(tf.constant(windows[:1, -2:]))  # builds it: [1, 1, V] logits, not [2, L, V]
    say(f"[pretrain] NextItNet on {len(windows)} source windows ({len(held_out)} held out), at most "
        f"{epochs_text(config.pretrain_epochs)} ({trainer.pretrain_loss} softmax over {len(vocab)} items)",
        verbose)
    if config.pretrain_epochs == 0:
        save_weights(net, weights)
        return net
    if not len(held_out):  # nothing to stop on: every epoch, the last one kept
        history = fit_stage(trainer, windows, config.batch_size, config.seed,
                            config.pretrain_epochs, weights.parent, verbose=verbose)
        save_weights(net, weights)
        write_json(weights.parent / "history.json", history)
        return net
    monitor = ValidationMonitor(net, lambda logs: {"loss": held_out_loss(trainer, held_out)}, "loss",
                                weights.parent, patience=config.patience, higher_is_better=False)
    history = fit_stage(trainer, windows, config.batch_size, config.seed, config.pretrain_epochs,
                        weights.parent, verbose=verbose, monitor=monitor)
    say(f"[pretrain] {monitor.summary()}", verbose)
    net.load_weights(str(weights.parent / "best.weights.h5"))
    save_weights(net, weights)
    write_json(weights.parent / "history.json", {
        **history, "val_loss": monitor.curve(),
        "best_epoch": monitor.state["best"]["epoch"], "stopped_epoch": monitor.state.get("stopped_epoch")})
    return net

"""Autoregressive pretraining of NextItNet on source-domain sequences (UAF 3.2.1)."""

from __future__ import annotations

from nextitnet.losses import masked_next_item_loss
from nextitnet.nextitnet_backbone import NextItNet
from pitune_tf.common.keras import tf
from pitune_tf.common.loss_model import LossModel


class NextItNetPretrainer(LossModel):
    """Trains a :class:`NextItNet` with the masked next-item loss (UAF Eq. 5).

    A batch is ``[batch, L + 1]`` item ids (left-padded with 0): inputs are the first L,
    targets the last L; padding targets (and the first real item, whose input is padding)
    are masked out of the loss. ``compute_losses`` returns ``loss`` and ``next_item_ce``
    (the same value); the :class:`LossModel` base does the training step.

    Args:
        network: NextItNet. The backbone with its softmax layer.
    """

    def __init__(self, network: NextItNet, **kwargs):
        super().__init__(**kwargs)
        self.network = network

    def call(self, items, training=False):
        hidden = self.network(items[:, :-1], training=training)  # [batch, L, k]
        return self.network.next_item_logits(hidden)  # [batch, L, V]

    def compute_losses(self, items, training):
        items = tf.cast(items, tf.int32)
        logits = self(items, training=training)
        # a target counts when it and its input are real: the first item of a sequence is
        # not predicted from padding alone
        targets = tf.where(tf.not_equal(items[:, :-1], 0), items[:, 1:], 0)  # [batch, L]
        ce = masked_next_item_loss(targets, logits)
        return {"loss": ce, "next_item_ce": ce}

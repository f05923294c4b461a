"""The pretraining loss model: autoregressive pretraining of NextItNet on source-domain
sequences with the masked next-item loss (UAF 3.2.1, Eq. 5), a
:class:`~pitune_tf.common.loss_model.LossModel`."""

from __future__ import annotations

from nextitnet.losses import full_next_item_loss, masked_next_item_loss, sampled_next_item_loss
from nextitnet.nextitnet_backbone import NextItNet
from pitune_tf.common.keras import tf
from pitune_tf.common.loss_model import LossModel

PRETRAIN_LOSSES = ("auto", "full", "sampled", "reference")
SAMPLERS = ("log_uniform", "uniform")
SAMPLED_ABOVE = 100_000  # "auto" samples the softmax above this many items


def resolve_pretrain_loss(loss, n_items) -> str:
    """``auto`` -> ``sampled`` above :data:`SAMPLED_ABOVE` items, else ``full``."""
    if loss not in PRETRAIN_LOSSES:
        raise ValueError(f"pretrain loss must be one of {PRETRAIN_LOSSES}, got {loss!r}")
    if loss == "auto":
        return "sampled" if n_items > SAMPLED_ABOVE else "full"
    return loss


class NextItNetPretrainer(LossModel):
    """Trains a :class:`NextItNet` with the masked next-item loss (UAF Eq. 5).

    A batch is ``[batch, L + 1]`` item ids (left-padded with 0): inputs are the first L,
    targets the last L; padding targets (and the first real item, whose input is padding)
    are masked out of the loss. ``compute_losses`` returns ``loss`` and ``next_item_ce``
    (the same value); the :class:`LossModel` base does the training step.

    The loss over the softmax of UAF Eq. 3:

    - ``full``: exact CE over every item, fused and chunked
      (:func:`nextitnet.losses.full_next_item_loss`): memory grows with
      ``chunk_rows * n_items``, not ``batch * L * n_items``;
    - ``sampled``: sampled softmax with ``n_sampled`` negatives shared by the batch
      (:func:`nextitnet.losses.sampled_next_item_loss`), for large vocabularies;
    - ``auto``: ``sampled`` above 100,000 items, else ``full``;
    - ``reference``: the logits ``[batch, L, V]`` and :func:`masked_next_item_loss`, the
      straightforward form (for tests and benchmarks; ``full`` equals it up to round-off).

    Args:
        network: NextItNet. The backbone with its softmax layer.
        loss: str. One of ``auto``, ``full``, ``sampled``, ``reference``.
        n_sampled: int. Sampled negatives per batch (``sampled``).
        sampler: str. ``log_uniform`` (ids most frequent first) or ``uniform``.
        chunk_rows: int. Rows of logits made at once (``full``).
        jit: bool. XLA-compiles the network (forward and backward: its many small
            element-wise ops fused around the conv matmuls) and, for ``full``, the
            element-wise part of each softmax chunk; the large softmax matmuls stay on TF's
            own CPU kernels, which are faster there than XLA's. Same values up to round-off;
            each new batch shape compiles once.
    """

    def __init__(self, network: NextItNet, loss="auto", n_sampled=1024, sampler="log_uniform",
                 chunk_rows=1024, jit=False, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.pretrain_loss = resolve_pretrain_loss(loss, network.n_items)  # compile() sets .loss
        self.n_sampled = int(n_sampled)
        self.sampler = sampler
        if self.pretrain_loss == "sampled":
            if sampler not in SAMPLERS:
                raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
            if not 0 < self.n_sampled < network.n_items:
                raise ValueError(f"n_sampled must be in 1 .. {network.n_items - 1}, got {n_sampled}")
        self.chunk_rows = int(chunk_rows)
        self.jit = bool(jit)
        self._network_xla = tf.function(self._network_call, jit_compile=True)

    def _network_call(self, items, training):
        return self.network(items, training=training)  # [batch, L, k]

    def hidden(self, items, training=False):
        """The network's hidden states for input ids ``items`` [batch, L]: [batch, L, k]."""
        return (self._network_xla if self.jit else self._network_call)(items, training)

    def call(self, items, training=False):
        return self.network.next_item_logits(self.hidden(items[:, :-1], training))  # [batch, L, V]

    def compute_losses(self, items, training):
        items = tf.cast(items, tf.int32)
        # a target counts when it and its input are real: the first item of a sequence is
        # not predicted from padding alone
        targets = tf.where(tf.not_equal(items[:, :-1], 0), items[:, 1:], 0)  # [batch, L]
        if self.pretrain_loss == "reference":
            ce = masked_next_item_loss(targets, self(items, training=training))
            return {"loss": ce, "next_item_ce": ce}
        hidden = self.hidden(items[:, :-1], training)  # [batch, L, k]
        softmax = self.network.softmax
        if self.pretrain_loss == "full":
            ce = full_next_item_loss(hidden, targets, softmax.kernel, softmax.bias, self.chunk_rows,
                                     jit=self.jit)
        else:
            ce = sampled_next_item_loss(hidden, targets, softmax.kernel, softmax.bias,
                                        self.n_sampled, self.sampler)
        return {"loss": ce, "next_item_ce": ce}

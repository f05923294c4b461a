"""UAF Eq. 6 and the paper's fine-tuning baselines (4.2) as one model with a ``mode``."""

from __future__ import annotations

from nextitnet import gates as gate_fns
from nextitnet.modes import (  # noqa: F401  (re-exported)
    BASELINE_MODES,
    MODES,
    POLICY_MODES,
    PRETRAINED_MODES,
    UAF_MODES,
)
from nextitnet.nextitnet_backbone import PAPER_BLOCK_DILATIONS, NextItNet
from nextitnet.policy_network import PolicyNetwork
from nextitnet.residual_block import ResidualBlock
from nextitnet.target_head import TargetHead
from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class UAFModel(keras.Model):
    """User-specific adaptive fine-tuning on NextItNet, or one of the baselines.

    In the UAF modes every residual block exists twice: the pretrained block ``F_l``
    (frozen) and a trainable copy ``F'_l`` initialised from it (``load_pretrained``), and
    (UAF Eq. 6) ``E_l = I_l F'_l(E_{l-1}) + (1 - I_l) F_l(E_{l-1}) + E_{l-1}``. The gate
    ``I_l(E^u)`` comes from the policy network over the source sequence:

    - ``hard``: straight-through Gumbel-softmax, tau = ``temperature`` (UAF Eq. 9-10); greedy at
      inference;
    - ``soft``: sigmoid (UAF Eq. 11-12);
    - ``rl``: a sampled action in training (the REINFORCE loss of UAF Eq. 13-15 lives in the
      learner), greedy at inference;
    - ``random``: Bernoulli(0.5), fixed per sequence by ``seed`` (5.2.1).

    Baselines (4.2) use the single backbone: ``finetune-zero`` (random init, all trained),
    ``finetune-cls`` (head only), ``finetune-last1``/``finetune-last2`` (last N blocks +
    head), ``finetune-all``, ``mtl`` (random init, trained with the source objective too)
    and ``peterrec`` (frozen backbone, trainable adapters in every block + head).

    ``call(items)`` returns ``{"logits": [batch, n_outputs], "gates": [batch, N]}``
    (gates all-zero for the baselines). The target head is UAF Eq. 7 on the last real position (or the mean over the real positions).

    Args:
        n_items: int. Source item vocabulary size (0 = pad).
        n_outputs: int. Target item vocabulary size (0 = reserved "unknown") or classes.
        mode: str. One of ``MODES``.
        embedding_dim: int. k.
        block_dilations: tuple of int. First-conv dilation of every residual block.
        kernel_size: int. Convolution width.
        policy_kind: str. "nextitnet" or "gru" (Table 4).
        policy_dim: int. Width of the policy network.
        policy_dilations: tuple of int. Blocks of the light policy NextItNet.
        temperature: float. Gumbel-softmax tau (hard mode).
        adapter_dim: int. PeterRec adapter width (peterrec mode).
        tune_embedding: bool. Whether UAF modes fine-tune the item embedding (part of the
            pretrained parameters Theta of UAF Eq. 8; the blocks F_l stay frozen).
        seed: int. Seed of the Gumbel / RL sampling and of the random policy.
        representation: str. h_n of UAF Eq. 7: "last" real position or "mean" over them.

    Example:
        >>> model = UAFModel(n_items=20, n_outputs=7, mode="soft", embedding_dim=8,
        ...                  block_dilations=(1, 2), policy_dim=8)
        >>> model(tf.constant([[0, 3, 4, 5]]))["logits"].shape
        TensorShape([1, 7])
    """

    def __init__(
        self,
        n_items,
        n_outputs,
        mode="soft",
        embedding_dim=128,
        block_dilations=PAPER_BLOCK_DILATIONS,
        kernel_size=3,
        policy_kind="nextitnet",
        policy_dim=64,
        policy_dilations=(1, 4),
        temperature=10.0,
        adapter_dim=16,
        tune_embedding=True,
        seed=0,
        representation="last",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.n_items = int(n_items)
        self.n_outputs = int(n_outputs)
        self.mode = mode
        self.embedding_dim = int(embedding_dim)
        self.block_dilations = tuple(int(d) for d in block_dilations)
        self.kernel_size = int(kernel_size)
        self.policy_kind = policy_kind
        self.policy_dim = int(policy_dim)
        self.policy_dilations = tuple(int(d) for d in policy_dilations)
        self.temperature = float(temperature)
        self.adapter_dim = int(adapter_dim)
        self.tune_embedding = bool(tune_embedding)
        self.seed = int(seed)
        self.representation = representation
        self.n_blocks = len(self.block_dilations)

        self.backbone = NextItNet(
            self.n_items,
            self.embedding_dim,
            self.block_dilations,
            self.kernel_size,
            adapter_dim=self.adapter_dim if mode == "peterrec" else 0,
            with_softmax=(mode == "mtl"),
            name="backbone",
        )
        self.tuned_blocks = (
            [
                ResidualBlock(self.embedding_dim, d, self.kernel_size, name=f"tuned_block_{i}")
                for i, d in enumerate(self.block_dilations)
            ]
            if mode in UAF_MODES
            else []
        )
        self.policy = (
            PolicyNetwork(
                self.n_items,
                self.n_blocks,
                kind=self.policy_kind,
                embedding_dim=self.policy_dim,
                block_dilations=self.policy_dilations,
                kernel_size=self.kernel_size,
                name="policy",
            )
            if mode in POLICY_MODES
            else None
        )
        self.head = TargetHead(self.n_outputs, representation=self.representation, name="target_head")
        self.rng = tf.random.Generator.from_seed(self.seed)
        self.build_all()
        self._set_trainable()

    # ----------------------------------------------------------------- construction
    def build_all(self):
        self.backbone.build([None, None])
        self(tf.zeros([1, 4], tf.int32))

    def _set_trainable(self):
        backbone, mode = self.backbone, self.mode
        if mode in ("finetune-zero", "finetune-all", "mtl"):
            return
        backbone.item_embedding.trainable = mode in UAF_MODES and self.tune_embedding
        for i, block in enumerate(backbone.blocks):
            if mode.startswith("finetune-last"):
                block.trainable = i >= self.n_blocks - int(mode[-1])
            elif mode == "peterrec":
                for name in ("conv1", "ln1", "conv2", "ln2"):
                    getattr(block, name).trainable = False
            else:  # finetune-cls and the UAF modes: F_l frozen
                block.trainable = False

    def load_pretrained(self, pretrained: NextItNet) -> None:
        """Initialises F_l, the trainable copies F'_l and (when widths match) the policy's
        embedding from a pretrained NextItNet."""
        self.backbone.copy_from(pretrained, softmax=False)
        for block, source in zip(self.tuned_blocks, pretrained.blocks):
            block.copy_from(source)
        if self.policy is not None and self.policy_dim == pretrained.embedding_dim:
            self.policy.item_embedding.set_weights(pretrained.item_embedding.get_weights())

    # ----------------------------------------------------------------- forward
    def policy_logits(self, items, training=False):
        """[batch, N, 2] (freeze, fine-tune) logits, or None without a policy network."""
        return None if self.policy is None else self.policy(items, training=training)

    def gates_for(self, items, training=False, policy_logits=None):
        """I_l(E^u) [batch, N] for this mode, or None for the baselines."""
        mode = self.mode
        if mode == "random":
            return gate_fns.hashed_bernoulli_gates(items, self.n_blocks, self.seed)
        if mode not in POLICY_MODES:
            return None
        if policy_logits is None:
            policy_logits = self.policy_logits(items, training=training)
        if mode == "soft":
            return gate_fns.soft_gates(policy_logits)
        if not training:
            return gate_fns.greedy_actions(policy_logits)
        if mode == "hard":
            return gate_fns.gumbel_softmax_gates(policy_logits, self.temperature, rng=self.rng)[0]
        return gate_fns.sample_actions(policy_logits, rng=self.rng)

    def encode(self, items, gates=None, training=False):
        """Final hidden states [batch, L, k]; UAF Eq. 6 in the UAF modes (``gates`` [batch, N])."""
        x = self.backbone.embed(items)  # E^u, [batch, L, k]
        mask = self.backbone.padding_mask(items)  # [batch, L, 1]
        for index, block in enumerate(self.backbone.blocks):
            frozen = block(x, padding_mask=mask, training=training)  # F_l(E) + E, [batch, L, k]
            if self.tuned_blocks and gates is not None:
                tuned = self.tuned_blocks[index](x, padding_mask=mask, training=training)  # F'_l(E) + E
                g = tf.cast(gates[:, index], x.dtype)[:, None, None]  # [batch, 1, 1]
                x = g * tuned + (1.0 - g) * frozen  # UAF Eq. 6 (the gates sum to one)
            else:
                x = frozen
            x = x * mask  # padding stays zero, as in NextItNet.call
        return x

    def call(self, items, training=False):
        items = tf.cast(items, tf.int32)
        gates = self.gates_for(items, training=training)
        hidden = self.encode(items, gates, training=training)  # [batch, L, k]
        logits = self.head(hidden, items)  # UAF Eq. 7, [batch, n_outputs]
        if gates is None:
            gates = tf.zeros([tf.shape(items)[0], self.n_blocks])
        return {"logits": logits, "gates": gates}

    def get_config(self):
        return {
            "name": self.name,
            "n_items": self.n_items,
            "n_outputs": self.n_outputs,
            "mode": self.mode,
            "embedding_dim": self.embedding_dim,
            "block_dilations": list(self.block_dilations),
            "kernel_size": self.kernel_size,
            "policy_kind": self.policy_kind,
            "policy_dim": self.policy_dim,
            "policy_dilations": list(self.policy_dilations),
            "temperature": self.temperature,
            "adapter_dim": self.adapter_dim,
            "tune_embedding": self.tune_embedding,
            "seed": self.seed,
            "representation": self.representation,
        }

"""PITuning's intent predictor (Figure 3a): teacher and student share this one model."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.keras import deserialize_nested, keras, tf
from pitune_tf.data.windows import STREAM_KEYS
from pitune_tf.layers import (
    ContextEmbedding,
    EventMasking,
    EventReconstructionHead,
    IntentAttention,
    IntentHead,
    RepeatMixture,
)


@keras.saving.register_keras_serializable(package="pitune")
class IntentPredictor(keras.Model):
    """Context embedding -> sequence backbone -> IAT -> MLP head (Sec. 3.2, Figure 3a).

    The teacher passes a :class:`~pitune_tf.models.gpt2_backbone.GPT2Backbone` as
    ``backbone``, the student a :class:`~pitune_tf.layers.TransformerDecoder`; everything
    else is the same code. With ``reconstruction=True`` the model also holds the weights of
    the masked-event-reconstruction task of PITuning Eq. 5, the event mask embedding (E_m,
    :class:`EventMasking`) and the reconstruction MLP, so the saved teacher keeps them; the
    task itself (masking, reconstruction loss) is
    :class:`~pitune_tf.population.PopulationTrainer`'s, which feeds the masked event
    embeddings to :meth:`forward` (``call`` never masks).

    Args:
        n_locations, n_slots, n_events, n_intents: int. Vocabulary sizes (N_L, N_T, N_E, N_I,
            reserved ids included). n_intents is the number of logits.
        embedding_dim: int. d; the backbone width must be 4d.
        sequence_length: int. L, the static window length (``history`` in the config; Keras
            models reserve the name ``history``).
        backbone: keras Layer called as ``backbone(x [batch, L, 4d], mask, training)``.
        n_weekdays: int. Weekday vocabulary size (8).
        use_iat: bool. Intent attention (PITuning Eq. 3); False feeds the last position to
            the head.
        attention_units: tuple of int. Hidden sizes of the IAT activation unit.
        attention_normalize: str. "none" (DIN) or "softmax".
        head_units: int. Hidden width of the PITuning Eq. 4 MLP.
        head_dropout: float.
        reconstruction: bool. Build E_m and the reconstruction MLP (PITuning Eq. 5).
        reconstruction_units: int. Hidden width of the reconstruction MLP.
        mask_rate: float. Fraction of history positions masked for PITuning Eq. 5.
        seed: int. Seed of the masking draws.
        event_intent: sequence of int [N_E] or None. Each event id's catalogue intent: adds
            the learned copy term :class:`RepeatMixture` (the logits become the log of a
            mixture with "repeat the newest event's intent"; None: no copy term).
        repeat_init: sequence of float [N_I] or None. The copy term's starting logits.

    Call: features dict (``location, weekday, slot, event`` int32 ``[batch, L]``, ``mask``
    float32 ``[batch, L]``) -> intent logits ``[batch, n_intents]``.

    A backbone with a ``receptive_field`` (the student's :class:`TransformerDecoder` with a
    ``span``) makes the model *streaming*: the IAT pools only the last :attr:`pool_length` =
    L - receptive_field positions, the ones whose whole receptive field lies in the window,
    with a learned recency bias per intent and position (``IntentAttention``'s ``recency``),
    so the logits of a window depend on no position's place in it, and :meth:`step`
    computes them from the newest event and a cached state at the cost of one position.
    """

    def __init__(
        self,
        n_locations,
        n_slots,
        n_events,
        n_intents,
        embedding_dim,
        sequence_length,
        backbone,
        n_weekdays=8,
        use_iat=True,
        attention_units=(80, 40),
        attention_normalize="none",
        head_units=64,
        head_dropout=0.0,
        reconstruction=False,
        reconstruction_units=64,
        mask_rate=0.15,
        seed=0,
        event_intent=None,
        repeat_init=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        width = 4 * embedding_dim
        backbone_width = getattr(backbone, "width", width)
        if backbone_width != width:
            raise ValueError(
                f"backbone width {backbone_width} must be 4 * embedding_dim = {width}"
            )
        self.n_locations = n_locations
        self.n_slots = n_slots
        self.n_events = n_events
        self.n_intents = n_intents
        self.embedding_dim = embedding_dim
        self.sequence_length = sequence_length
        self.backbone = backbone
        self.n_weekdays = n_weekdays
        self.use_iat = use_iat
        self.attention_units = tuple(attention_units)
        self.attention_normalize = attention_normalize
        self.head_units = head_units
        self.head_dropout = head_dropout
        self.reconstruction = reconstruction
        self.reconstruction_units = reconstruction_units
        self.mask_rate = mask_rate
        self.seed = seed
        self.event_intent = None if event_intent is None else [int(i) for i in event_intent]
        self.repeat_init = None if repeat_init is None else [float(w) for w in repeat_init]

        self.embedding = ContextEmbedding(
            n_locations, n_weekdays, n_slots, n_events, embedding_dim, name="context_embedding"
        )
        field = getattr(backbone, "receptive_field", None)
        self.pool_length = sequence_length if field is None else sequence_length - field
        self.attention = (
            IntentAttention(
                n_intents, attention_units, attention_normalize,
                recency=None if field is None else self.pool_length, name="intent_attention"
            )
            if use_iat
            else None
        )
        # the output heads compute in float32 under a mixed dtype policy: float32 logits
        self.head = IntentHead(n_intents, head_units, dropout=head_dropout, name="intent_head",
                               dtype="float32")
        if reconstruction:
            self.masking = EventMasking(embedding_dim, mask_rate, seed, name="event_masking")
            self.reconstruction_head = EventReconstructionHead(
                n_events, reconstruction_units, name="reconstruction_head", dtype="float32"
            )
        else:
            self.masking = None
            self.reconstruction_head = None
        self.repeat = (RepeatMixture(self.event_intent, n_intents, self.repeat_init,
                                     name="repeat_mixture", dtype="float32")
                       if self.event_intent is not None else None)
        last = np.zeros((sequence_length,), np.float32)
        last[-1] = 1.0
        self._last_position = last  # one-hot of position L-1 (left padding: the newest event)
        pooled = np.zeros((sequence_length,), np.float32)
        pooled[-self.pool_length:] = 1.0
        self._pool_mask = None if field is None else pooled  # the positions the IAT pools

    @property
    def streaming(self) -> bool:
        """Whether :meth:`step` works: the backbone has a bounded receptive field."""
        return getattr(self.backbone, "receptive_field", None) is not None

    def state_layout(self) -> dict:
        """The parts of :meth:`step`'s state, name -> shape without the batch, in the order
        they are flattened into the state vector: every block's keys and values of the last
        ``span`` events, the top-layer output H_t and the IAT scores of the last
        :attr:`pool_length` events, and the window's mask (1 for a real event)."""
        if not self.streaming:
            raise ValueError("only a streaming model (a backbone with a span) has a state")
        blocks = (self.backbone.num_layers, self.backbone.span, self.backbone.width)
        return {"keys": blocks, "values": blocks,
                "hidden": (self.pool_length, self.backbone.width),
                "scores": (self.n_intents, self.pool_length),
                "mask": (self.sequence_length,)}

    @property
    def state_size(self) -> int:
        """S, the length of :meth:`step`'s state vector."""
        return int(sum(np.prod(shape) for shape in self.state_layout().values()))

    def initial_state(self, batch_size=1) -> np.ndarray:
        """The state before any event: zeros (an all-padding window), float32 [batch, S]."""
        return np.zeros((batch_size, self.state_size), np.float32)

    def step(self, inputs, state):
        """The logits after one new event, from the state left by the events before it.

        Equal, within float round-off, to calling the model on the window of the newest L
        events, left-padded (any number of events; the window slides past L).

        Args:
            inputs: dict of ``location, weekday, slot, event`` int32 ``[batch]``, the new event.
            state: float32 ``[batch, S]`` (:meth:`initial_state` before the first event).

        Returns:
            ``(logits [batch, n_intents], state [batch, S])``.
        """
        layout = self.state_layout()
        sizes = [int(np.prod(shape)) for shape in layout.values()]
        keys, values, hidden, scores, mask = (
            tf.reshape(part, (-1,) + shape)
            for part, shape in zip(tf.split(state, sizes, axis=1), layout.values(), strict=True))
        x = self.embedding({key: tf.reshape(inputs[key], [-1, 1]) for key in STREAM_KEYS})
        x = tf.reshape(x, [-1, self.backbone.width])  # [batch, 4d]
        h, keys, values = self.backbone.step(x, keys, values, mask[:, -self.backbone.span:])
        real = tf.ones_like(mask[:, :1])  # [batch, 1]
        mask = tf.concat([mask[:, 1:], real], axis=1)  # [batch, L]
        hidden = tf.concat([hidden[:, 1:], h[:, None]], axis=1)  # [batch, P, D]
        if self.attention is not None:
            scores = tf.concat([scores[:, :, 1:], self.attention.scores(h[:, None])], axis=2)
            pooled = self.attention.pool(scores, hidden, mask[:, -self.pool_length:])
        else:
            pooled = h
        logits = self.head(pooled, training=False)
        if self.repeat is not None:
            logits = self.repeat(logits, tf.reshape(inputs["event"], [-1, 1]), real)
        state = tf.concat([tf.reshape(part, [-1, size]) for part, size in zip(
            (keys, values, hidden, scores, mask), sizes, strict=True)], axis=1)
        return logits, state

    def dummy_inputs(self, batch_size=2):
        """All-ones features of the static length (builds the model)."""
        ids = tf.ones([batch_size, self.sequence_length], tf.int32)
        features = {key: ids for key in STREAM_KEYS}
        features["mask"] = tf.ones([batch_size, self.sequence_length], tf.float32)
        return features

    def forward(self, inputs, training=None, event_embeddings=None, return_hidden=False,
                return_attention=False):
        """Everything the trainers need, as a dict.

        Keys: ``logits [batch, N_I]``; with ``return_hidden`` also ``hidden [batch, L, 4d]``
        (H_t, what the reconstruction head reads); with ``return_attention`` (IAT only)
        ``attention [batch, N_I, L]``. ``event_embeddings [batch, L, d]`` replaces the event
        field's embeddings (the masked ones of the reconstruction task).
        """
        mask = tf.cast(inputs["mask"], tf.float32)  # [batch, L]
        outputs = {}
        x = self.embedding(inputs, event_embeddings=event_embeddings)  # [batch, L, 4d]
        hidden = self.backbone(x, mask, training=training)  # [batch, L, 4d] (H_t)
        if return_hidden:
            outputs["hidden"] = hidden
        if self.attention is not None:
            pool_mask = mask if self._pool_mask is None else mask * self._pool_mask[None, :]
            pooled = self.attention(hidden, pool_mask, return_attention=return_attention)
            if return_attention:
                pooled, outputs["attention"] = pooled  # [batch, N_I, 4d], [batch, N_I, L]
        else:
            pooled = tf.reduce_sum(hidden * self._last_position[None, :, None], axis=1)
        logits = self.head(pooled, training=training)  # [batch, N_I]
        if self.repeat is not None:
            logits = self.repeat(logits, inputs["event"], mask)  # log of the mixture
        outputs["logits"] = logits
        return outputs

    def call(self, inputs, training=None):
        return self.forward(inputs, training=training)["logits"]

    def get_attention(self, inputs):
        """IAT weights w_ij (PITuning Eq. 3) ``[batch, N_I, L]``; zero at padding (Figure 6)."""
        if self.attention is None:
            raise ValueError("this model has no intent attention (use_iat=False)")
        return self.forward(inputs, training=False, return_attention=True)["attention"]

    def build_model(self):
        """Creates every weight (one call on dummy inputs; with ``reconstruction`` also the
        mask embedding and the reconstruction head, built in that order)."""
        self(self.dummy_inputs(), training=False)
        if self.reconstruction:
            inputs = self.dummy_inputs()
            self.masking(self.embedding.embed_events(inputs["event"]), inputs["mask"],
                         seed=tf.constant([0, 0], tf.int64))
            self.reconstruction_head(self.forward(inputs, training=False,
                                                  return_hidden=True)["hidden"])
        return self

    def get_build_config(self):
        return {"sequence_length": self.sequence_length}

    def build_from_config(self, config):
        self.build_model()

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update({name: getattr(self, name) for name in (
            "n_locations", "n_slots", "n_events", "n_intents", "embedding_dim",
            "sequence_length", "n_weekdays", "use_iat", "attention_normalize", "head_units",
            "head_dropout", "reconstruction", "reconstruction_units", "mask_rate", "seed",
            "event_intent", "repeat_init")})
        config.update(backbone=keras.layers.serialize(self.backbone),
                      attention_units=list(self.attention_units))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_nested(config, "backbone"))

"""Teacher and student built from a PopulationConfig and the vocabulary sizes."""

from __future__ import annotations

from pitune_tf.common.errors import UserInputError
from pitune_tf.layers import TransformerDecoder
from pitune_tf.models.gpt2_backbone import GPT2Backbone
from pitune_tf.models.gpt2_checkpoint import backbone_width, load_backbone
from pitune_tf.models.intent_predictor import IntentPredictor


def _sizes(vocab_sizes):
    try:
        return (int(vocab_sizes["location"]), int(vocab_sizes["slot"]),
                int(vocab_sizes["event"]), int(vocab_sizes["intent"]))
    except KeyError as err:
        raise ValueError(f"vocab_sizes needs key {err}") from err


def build_teacher(config, vocab_sizes, gpt2=None, event_intent=None, repeat_init=None):
    """The teacher: GPT2 backbone + PITuning layers, with every weight built.

    Args:
        config: PopulationConfig.
        vocab_sizes: dict with ``location``, ``slot``, ``event``, ``intent`` sizes.
        gpt2: an already loaded TFGPT2Model (default: ``load_backbone(config.backbone)``).
        event_intent: int array [N_E] or None. Each event id's catalogue intent: with
            ``config.repeat_term`` the copy term (:class:`pitune_tf.layers.RepeatMixture`).
        repeat_init: float array [N_I] or None. The copy term's starting logits.
    """
    if gpt2 is None:
        gpt2 = load_backbone(config.backbone, dropout=config.dropout)
    width = backbone_width(gpt2)
    d = config.embedding_dim or width // 4
    if 4 * d != width:
        raise UserInputError(
            f"the backbone is {width} wide, so 4 * embedding_dim must be {width} "
            f"(embedding_dim {config.embedding_dim} given)"
        )
    if config.history > gpt2.config.n_positions:
        raise UserInputError(
            f"history {config.history} exceeds the backbone's {gpt2.config.n_positions} positions"
        )
    n_locations, n_slots, n_events, n_intents = _sizes(vocab_sizes)
    model = IntentPredictor(
        n_locations, n_slots, n_events, n_intents,
        embedding_dim=d,
        sequence_length=config.history,
        backbone=GPT2Backbone(gpt2, tuning=config.tuning, name="gpt2_backbone"),
        reconstruction=config.reconstruction,
        reconstruction_units=config.reconstruction_units,
        mask_rate=config.mask_rate,
        name="teacher",
        **_head_options(config, event_intent, repeat_init),
    )
    return model.build_model()


def build_student(config, vocab_sizes, event_intent=None, repeat_init=None):
    """The on-device student: TransformerDecoder backbone, same embedding, IAT, head and
    (with ``config.repeat_term`` and ``event_intent``) copy term."""
    n_locations, n_slots, n_events, n_intents = _sizes(vocab_sizes)
    backbone = TransformerDecoder(
        config.student_layers, config.student_width, config.student_heads, config.history,
        span=config.resolved_student_span(), name="decoder",
    )
    model = IntentPredictor(
        n_locations, n_slots, n_events, n_intents,
        embedding_dim=config.student_width // 4,
        sequence_length=config.history,
        backbone=backbone,
        reconstruction=False,
        name="student",
        **_head_options(config, event_intent, repeat_init),
    )
    return model.build_model()


def _head_options(config, event_intent=None, repeat_init=None) -> dict:
    """The IntentPredictor options teacher and student share (IAT, PITuning Eq. 3-4; the copy
    term)."""
    options = {name: getattr(config, name) for name in (
        "use_iat", "attention_units", "attention_normalize", "head_units", "seed")}
    use = event_intent is not None and getattr(config, "repeat_term", False)
    options["event_intent"] = [int(i) for i in event_intent] if use else None
    options["repeat_init"] = [float(w) for w in repeat_init] if use and repeat_init is not None else None
    return options

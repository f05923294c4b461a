"""PITuning's Keras layers (registered as serializable under the package "pitune")."""

from pitune_tf.layers.compositional_embedding import CompositionalEmbedding
from pitune_tf.layers.context_embedding import ContextEmbedding
from pitune_tf.layers.event_masking import EventMasking
from pitune_tf.layers.event_reconstruction_head import EventReconstructionHead
from pitune_tf.layers.gradient_reversal import GradientReversal
from pitune_tf.layers.intent_attention import IntentAttention
from pitune_tf.layers.intent_head import IntentHead
from pitune_tf.layers.layer_norm import LayerNorm
from pitune_tf.layers.lora_dense import LoRADense
from pitune_tf.layers.repeat_mixture import RepeatMixture
from pitune_tf.layers.transformer_decoder import TransformerDecoder
from pitune_tf.layers.transformer_decoder_block import TransformerDecoderBlock, gelu_tanh

__all__ = [
    "CompositionalEmbedding",
    "ContextEmbedding",
    "EventMasking",
    "EventReconstructionHead",
    "GradientReversal",
    "IntentAttention",
    "IntentHead",
    "LayerNorm",
    "LoRADense",
    "RepeatMixture",
    "TransformerDecoder",
    "TransformerDecoderBlock",
    "gelu_tanh",
]

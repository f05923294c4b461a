"""The choices of two training options, which command lines list and configs check without
loading TensorFlow: the tf.distribute strategies (:mod:`pitune_tf.common.distribution`) and
the Keras dtype policies (:mod:`pitune_tf.common.precision`)."""

STRATEGIES = ("auto", "default", "mirrored", "multiworker")  # --strategy
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")  # --precision: Keras dtype policy names

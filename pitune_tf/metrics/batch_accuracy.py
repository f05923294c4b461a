"""Accuracy of one batch as a tensor, for the training logs of ``LossModel`` trainers."""

from __future__ import annotations

from pitune_tf.common.keras import tf


def batch_accuracy(labels, logits):
    """Share of rows of ``logits [batch, n]`` whose argmax (the first of equal maxima) is the
    label ``labels [batch]``; a float32 scalar."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)  # [batch]
    return tf.reduce_mean(tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32))

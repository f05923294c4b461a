"""TensorBoard scalars of every epoch without the ``tensorboard`` package."""

from __future__ import annotations

from tensorflow.core.framework import summary_pb2

from pitune_tf.common.keras import keras, tf


class ScalarLogger(keras.callbacks.Callback):
    """TensorBoard scalars of every epoch's logs (``train/<name>``, ``val/<name>``).

    Written with ``tf.summary.write``, which needs no ``tensorboard`` package (Keras'
    ``TensorBoard`` callback does, and TF 2.21 does not install it).

    Args:
        log_dir: path of the event files' directory.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = str(log_dir)
        self.writer = None

    def on_train_begin(self, logs=None):
        self.metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        with self.writer.as_default():
            for name, value in (logs or {}).items():
                tag = f"val/{name[4:]}" if name.startswith("val_") else f"train/{name}"
                tf.summary.write(tag, tf.constant(float(value)), step=epoch + 1,
                                 metadata=self.metadata)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()

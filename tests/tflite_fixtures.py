"""What more than one TFLite test builds."""

from pitune_tf.common.keras import tf


def save_flex_op_model(directory):
    """A SavedModel whose ``train`` signature needs an op outside TFLite's builtin set (the
    gradient of the exact GELU: ``Erf``); returns its directory."""

    class ExactGelu(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones([3]))

        @tf.function(input_signature=[tf.TensorSpec([2, 3], tf.float32, name="x")])
        def train(self, x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.nn.gelu(x * self.w, approximate=False))
            self.w.assign_sub(0.1 * tape.gradient(loss, self.w))
            return {"loss": loss}

    module = ExactGelu()
    tf.saved_model.save(module, str(directory),
                        signatures={"train": module.train.get_concrete_function()})
    return directory

"""The teacher's GPT2 backbone loads from every format a user keeps, to identical outputs."""

import numpy as np
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf
from pitune_tf.models import gpt2_checkpoint
from pitune_tf.models.gpt2_backbone import GPT2Backbone


def _outputs(gpt2, x, mask):
    return gpt2(input_ids=None, inputs_embeds=x, attention_mask=mask).last_hidden_state.numpy()


def _save_pytorch_safetensors(gpt2, directory):
    """A PyTorch-format checkpoint (GPT2Model names, ``format: pt``) built without torch."""
    from safetensors.numpy import save_file
    from transformers.modeling_tf_pytorch_utils import convert_tf_weight_name_to_pt_weight_name

    state = {}
    for weight in gpt2.weights:
        name, _ = convert_tf_weight_name_to_pt_weight_name(
            weight.name, tf_weight_shape=weight.shape
        )
        name = name.removeprefix("transformer.")  # GPT2Model keys: h.0.attn.c_attn.weight
        value = weight.numpy()
        state[name] = value[0] if name.endswith("bias") and value.ndim == 2 else value
    gpt2.config.save_pretrained(str(directory))
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return state


@pytest.fixture(scope="module")
def tiny_gpt2():
    keras.utils.set_random_seed(0)
    return gpt2_checkpoint.load_backbone("random:2x32")


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 32)).astype(np.float32)
    mask = np.ones((2, 6), np.float32)
    mask[0, :2] = 0
    return x, mask


def test_random_spec_shape(tiny_gpt2):
    assert gpt2_checkpoint.describe(tiny_gpt2) == {"layers": 2, "width": 32, "heads": 1,
                                                "positions": 1024}


@pytest.mark.parametrize("fmt", ["h5", "tf_safetensors", "pt_safetensors"])
def test_each_format_loads_to_identical_outputs(tiny_gpt2, inputs, tmp_path, fmt):
    x, mask = inputs
    if fmt == "h5":
        tiny_gpt2.save_pretrained(str(tmp_path))
        assert (tmp_path / "tf_model.h5").exists()
    elif fmt == "tf_safetensors":
        tiny_gpt2.save_pretrained(str(tmp_path), safe_serialization=True)
        assert (tmp_path / "model.safetensors").exists()
        assert gpt2_checkpoint._safetensors_format(tmp_path / "model.safetensors") == "tf"
    else:
        _save_pytorch_safetensors(tiny_gpt2, tmp_path)
        assert gpt2_checkpoint._safetensors_format(tmp_path / "model.safetensors") == "pt"
    loaded = gpt2_checkpoint.load_backbone(str(tmp_path))
    np.testing.assert_allclose(_outputs(loaded, x, mask), _outputs(tiny_gpt2, x, mask),
                               rtol=0, atol=0)
    for a, b in zip(loaded.weights, tiny_gpt2.weights):
        if "wte" not in a.name:  # the token table is unused (inputs_embeds)
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_pytorch_checkpoint_with_missing_weights_is_an_error(tiny_gpt2, tmp_path):
    from safetensors.numpy import save_file

    state = _save_pytorch_safetensors(tiny_gpt2, tmp_path)
    state.pop("h.1.mlp.c_fc.weight")
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserInputError, match="missing GPT2 weights"):
        gpt2_checkpoint.load_backbone(str(tmp_path))


@pytest.mark.parametrize("spec, message", [
    ("random:2", "random:<layers>x<width>"),
    ("random:0x32", "random:<layers>x<width>"),
    ("./no/such/dir", "no such checkpoint directory"),
])
def test_bad_specs_are_user_errors(spec, message):
    with pytest.raises(UserInputError, match=message):
        gpt2_checkpoint.load_backbone(spec)


def test_directory_without_weights_is_an_error(tiny_gpt2, tmp_path):
    tiny_gpt2.config.save_pretrained(str(tmp_path))
    with pytest.raises(UserInputError, match="has none of"):
        gpt2_checkpoint.load_backbone(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserInputError, match="no config.json"):
        gpt2_checkpoint.load_backbone(str(empty))


def test_unreachable_hub_name_is_an_error_not_random_weights(monkeypatch):
    import huggingface_hub.constants
    import transformers.utils.hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network waits
    monkeypatch.setattr(transformers.utils.hub, "_is_offline_mode", True)
    with pytest.raises(UserInputError, match="cannot load backbone"):
        gpt2_checkpoint.load_backbone("no-such-user/no-such-gpt2-model")


def test_partial_tuning_freezes_attention_and_mlp(inputs):
    keras.utils.set_random_seed(1)
    gpt2 = gpt2_checkpoint.load_backbone("random:1x16")
    layer = GPT2Backbone(gpt2, tuning="partial")
    trainable = {w.name for w in layer.trainable_weights}
    assert trainable and all("attn" not in n and "mlp" not in n and "wte" not in n
                             for n in trainable)
    assert any("ln_1" in n for n in trainable) and any("wpe" in n for n in trainable)
    x = tf.random.normal([2, 4, 16])
    before = {w.name: w.numpy() for w in layer.weights}
    optimizer = keras.optimizers.Adam(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, tf.ones([2, 4]), training=True) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    optimizer.apply_gradients(zip(grads, layer.trainable_weights))
    for w in layer.weights:
        changed = not np.array_equal(before[w.name], w.numpy())
        assert changed == (w.name in trainable and "ln_f" not in w.name or
                           (w.name in trainable and changed)), w.name

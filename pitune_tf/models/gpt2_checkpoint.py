"""The teacher's GPT2 backbone (Sec. 3.2.2) loaded from a checkpoint, wherever a user keeps
one (the Keras layer around it: :class:`pitune_tf.models.gpt2_backbone.GPT2Backbone`).

``load_backbone(spec)`` accepts:

- ``random:<layers>x<width>``: an untrained GPT2 of that shape (Figure 5's Transformer-L/-S,
  the demo, the tests), initialized from the global seed;
- a local Hugging Face checkpoint directory holding ``config.json`` and one of
  ``tf_model.h5``, a TF-format ``model.safetensors``, or a PyTorch-format
  ``model.safetensors`` (read with ``safetensors.numpy`` and converted with transformers'
  ``load_pytorch_state_dict_in_tf2_model``: no torch needed);
- a hub name such as ``gpt2`` (needs the network the first time).

A named backbone that cannot be loaded raises :class:`UserInputError`; nothing falls back to
random weights.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import tf  # noqa: F401  (tf-keras before transformers)

# transformers (with safetensors and huggingface_hub) is imported where a backbone is loaded:
# a student alone (prediction, export, the individual stage) never needs it.

RANDOM_PATTERN = re.compile(r"^random:(\d+)x(\d+)$")
_WEIGHT_FILES = ("tf_model.h5", "model.safetensors")


def _dropout_overrides(dropout):
    if dropout is None:
        return {}
    return {"resid_pdrop": dropout, "embd_pdrop": dropout, "attn_pdrop": dropout}


def random_config(num_layers, width, dropout=None, max_positions=1024):
    """GPT2Config for ``random:<num_layers>x<width>`` (heads: width/64, at least 1 and dividing)."""
    from transformers import GPT2Config  # deferred: teachers only (above)

    heads = max(1, width // 64)
    while width % heads:
        heads -= 1
    return GPT2Config(
        n_layer=num_layers,
        n_embd=width,
        n_head=heads,
        n_positions=max_positions,
        vocab_size=8,  # unused: the backbone runs on inputs_embeds
        **_dropout_overrides(dropout),
    )


def _safetensors_format(path: Path) -> str:
    from safetensors import safe_open  # deferred: teachers only (above)

    try:
        with safe_open(str(path), framework="numpy") as archive:
            metadata = archive.metadata() or {}
    except Exception as err:  # noqa: BLE001  (corrupt file: report it as the user's)
        raise UserInputError(f"cannot read safetensors file {path}: {err}") from err
    return metadata.get("format", "pt")


def _load_pytorch_safetensors(directory: Path, dropout=None):
    from safetensors.numpy import load_file  # deferred: teachers only (above)
    from transformers import GPT2Config, TFGPT2Model  # deferred: teachers only (above)
    from transformers.modeling_tf_pytorch_utils import (  # deferred: teachers only (above)
        load_pytorch_state_dict_in_tf2_model,
    )

    config = GPT2Config.from_pretrained(str(directory), **_dropout_overrides(dropout))
    model = TFGPT2Model(config)
    model.build_in_name_scope()
    state = load_file(str(directory / "model.safetensors"))
    # GPT2 checkpoints keep a causal-mask buffer "h.N.attn.bias" that TF does not have.
    state = {k: v for k, v in state.items() if not re.search(r"\.attn\.(masked_)?bias$", k)}
    _, info = load_pytorch_state_dict_in_tf2_model(
        model, state, allow_missing_keys=True, output_loading_info=True,
        skip_logger_warnings=True,
    )
    missing = [k for k in info["missing_keys"] if "wte" not in k]
    if missing:
        raise UserInputError(
            f"{directory / 'model.safetensors'} is missing GPT2 weights: {missing[:5]}"
        )
    return model


def _check_gpt2(config, where):
    if getattr(config, "model_type", None) != "gpt2":
        raise UserInputError(
            f"backbone {where} is a {getattr(config, 'model_type', '?')!r} model; a GPT2 is needed"
        )


def load_local(directory, dropout=None):
    """A TFGPT2Model from a local Hugging Face checkpoint directory (any of the 3 formats)."""
    from transformers import GPT2Config, TFGPT2Model  # deferred: teachers only (above)

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise UserInputError(f"backbone directory {directory} has no config.json")
    try:
        config = GPT2Config.from_pretrained(str(directory))
    except Exception as err:  # noqa: BLE001
        raise UserInputError(f"cannot read {directory / 'config.json'}: {err}") from err
    _check_gpt2(config, directory)
    overrides = _dropout_overrides(dropout)
    if (directory / "tf_model.h5").is_file():
        try:
            return TFGPT2Model.from_pretrained(str(directory), **overrides)
        except Exception as err:  # noqa: BLE001
            raise UserInputError(f"cannot load {directory / 'tf_model.h5'}: {err}") from err
    if (directory / "model.safetensors").is_file():
        if _safetensors_format(directory / "model.safetensors") == "tf":
            try:
                return TFGPT2Model.from_pretrained(
                    str(directory), use_safetensors=True, **overrides
                )
            except Exception as err:  # noqa: BLE001
                raise UserInputError(
                    f"cannot load {directory / 'model.safetensors'}: {err}"
                ) from err
        return _load_pytorch_safetensors(directory, dropout)
    raise UserInputError(
        f"backbone directory {directory} has none of {', '.join(_WEIGHT_FILES)} "
        "(sharded checkpoints are not supported)"
    )


def load_hub(name, dropout=None):
    """A TFGPT2Model from the Hugging Face hub (TF weights, else PyTorch safetensors)."""
    from transformers import TFGPT2Model  # deferred: teachers only (above)

    overrides = _dropout_overrides(dropout)
    try:
        model = TFGPT2Model.from_pretrained(name, **overrides)
    except Exception as tf_err:  # noqa: BLE001
        try:
            from huggingface_hub import snapshot_download  # deferred: teachers only (above)

            directory = snapshot_download(
                name, allow_patterns=["config.json", "model.safetensors"]
            )
            return load_local(directory, dropout)  # checks the model type itself
        except Exception as err:  # noqa: BLE001
            raise UserInputError(
                f"cannot load backbone {name!r} from the Hugging Face hub ({tf_err}; {err}). "
                "Offline? Pass a local checkpoint directory or random:<layers>x<width>."
            ) from err
    _check_gpt2(model.config, repr(name))  # a BERT name would otherwise load random weights
    return model


def load_backbone(spec: str, dropout=None):
    """The TFGPT2Model named by ``spec`` (see the module docstring), built.

    Args:
        spec: str. ``random:<layers>x<width>``, a local directory, or a hub name.
        dropout: float or None. Overrides GPT2's three dropout rates when given.
    """
    from transformers import TFGPT2Model  # deferred: teachers only (above)

    spec = str(spec)
    match = RANDOM_PATTERN.match(spec)
    if spec.startswith("random:"):
        if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
            raise UserInputError(f"bad backbone {spec!r}: expected random:<layers>x<width>, e.g. random:2x64")
        model = TFGPT2Model(random_config(int(match.group(1)), int(match.group(2)), dropout))
        model.build_in_name_scope()
        return model
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_local(path, dropout)
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise UserInputError(f"backbone {spec!r}: no such checkpoint directory")
    return load_hub(spec, dropout)


def backbone_width(model) -> int:
    """D, the hidden width of a TFGPT2Model."""
    return int(model.config.n_embd)


def describe(model) -> dict:
    """A short JSON-able description of a GPT2 backbone."""
    cfg = model.config
    return {"layers": cfg.n_layer, "width": cfg.n_embd, "heads": cfg.n_head,
            "positions": cfg.n_positions}


def save_backbone(model, directory) -> None:
    """Writes ``config.json`` + ``tf_model.h5`` (Hugging Face TF format) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory))
    json.loads((directory / "config.json").read_text())  # fail here, not at load time

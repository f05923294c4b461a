"""One interpreter API at the signature level for the student's ``.tflite`` files.

LiteRT (``ai_edge_litert``) first, ``tflite_runtime`` when installed, ``tf.lite`` last. On load
the model's signatures, input names, shapes and dtypes are checked against what
:class:`tflite.student_module.StudentModule` exports; every call validates its inputs before the
interpreter sees them, so a user mistake is a clear :class:`UserInputError`, not a crash.

Personalized weights go to a small file (``save_weights`` / ``load_weights``, format:
:mod:`pitune_tf.litert.weights_file`); a truncated, corrupt or foreign file is refused before
anything is assigned, so the model keeps its weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pitune_tf.common.environment import is_verbose, quiet_native_stderr
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.types import PathLike
from pitune_tf.common.vocabulary import N_RESERVED, RESERVED_IDS
from pitune_tf.data.windows import FEATURE_KEYS, STREAM_KEYS
from pitune_tf.litert.errors import InputSpecError, SignatureError
from pitune_tf.litert.weights_file import read_weights_file, write_weights_file

BACKENDS = ("litert", "tflite_runtime", "tf")
EXPECTED = {
    "infer": (FEATURE_KEYS, ("logits", "probabilities")),
    "train": (FEATURE_KEYS + ("label", "sample_weight", "learning_rate"), ("loss",)),
    "unlearn": (
        FEATURE_KEYS
        + ("original_logits", "retain_mask", "forget_mask", "lam", "sample_weight", "learning_rate"),
        ("loss",),
    ),
    "infer_step": (STREAM_KEYS + ("state",), ("logits", "probabilities", "state")),
    "get_weights": ((), ("weights",)),
    "set_weights": (("weights",), ("num_weights",)),
    "reset": ((), ("num_weights",)),
}
TRAINING_SIGNATURES = tuple(name for name in EXPECTED if name != "infer_step")
INFERENCE_SIGNATURES = ("infer",)

Features = Mapping[str, np.ndarray]  # FEATURE_KEYS -> [n, L] arrays (Windows.features())
# name -> (shape with -1 for a dynamic dimension, dtype) of one signature's inputs or outputs
TensorSpecs = dict[str, tuple[tuple[int, ...], np.dtype[Any]]]
Signatures = dict[str, dict[str, TensorSpecs]]  # signature -> "inputs" / "outputs" -> specs

class Runtime:
    """The student's signatures behind one API, whichever interpreter runs them.

    Args:
        model: str, Path or bytes. A ``.tflite`` file or its content.
        backend: str. ``"auto"`` (LiteRT, then tflite_runtime, then tf.lite), ``"litert"``,
            ``"tflite_runtime"`` or ``"tf"``.
        num_threads: int. Interpreter threads (1 = what a phone's background job gets).
        required: tuple of str. Signatures the model must have; ``("infer",)`` for the
            inference-only int8 / fp16 models, every signature for ``student.tflite``.

    Example:

    >>> rt = Runtime("student.tflite")
    >>> rt.infer(windows.features())["probabilities"]   # [n, n_intents]
    >>> rt.train(batch_features, labels, learning_rate=1e-3)  # pads a partial batch
    >>> rt.save_weights("me.weights"); rt.reset(); rt.load_weights("me.weights")
    """

    def __init__(self, model: PathLike | bytes | bytearray, backend: str = "auto",
                 num_threads: int = 1, required: Sequence[str] = TRAINING_SIGNATURES) -> None:
        self.backend, interpreter_cls = _interpreter_class(backend)
        self.num_threads = int(num_threads)
        self.path: Path | None = None if isinstance(model, (bytes, bytearray)) else Path(model)
        if self.path is not None and not self.path.is_file():
            raise UserInputError(f"TFLite model not found: {self.path}")
        content = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
        try:
            self.interpreter = interpreter_cls(model_content=content, num_threads=self.num_threads)
        except (ValueError, RuntimeError) as err:
            where = self.path or "model content"
            raise UserInputError(f"{where}: not a loadable TFLite model ({err})") from None
        self.signatures = self._read_signatures()
        self._check(tuple(dict.fromkeys(("infer",) + tuple(required))))
        self._runners: dict[str, Any] = {}
        infer_inputs = self.signatures["infer"]["inputs"]
        self.history = int(infer_inputs["event"][0][1])
        self.n_intents = int(self.signatures["infer"]["outputs"]["logits"][0][-1])
        self.batch_size: int | None = (
            int(self.signatures["train"]["inputs"]["label"][0][0])
            if "train" in self.signatures
            else None
        )
        self.num_weights: int | None = (
            int(self.signatures["set_weights"]["inputs"]["weights"][0][0])
            if "set_weights" in self.signatures
            else None
        )
        # a streaming student's state length (None: no infer_step)
        self.state_size: int | None = (
            int(self.signatures["infer_step"]["inputs"]["state"][0][1])
            if "infer_step" in self.signatures else None)
        # the parts a train step can be limited to, from the cheapest ("all": ``train``)
        parts = [name[len("train_"):] for name in self.signatures if name.startswith("train_")]
        self.train_parts: tuple[str, ...] = tuple(
            sorted(parts, key=lambda p: (p != "head", len(p), p))) + (
            ("all",) if "train" in self.signatures else ())

    # ---------------------------------------------------------------- signatures

    def call(self, signature: str, **inputs: npt.ArrayLike) -> dict[str, np.ndarray]:
        """Runs one signature after validating every input's name, shape and dtype."""
        if signature not in self.signatures:
            raise SignatureError(
                f"the model has no signature {signature!r} (it has: {', '.join(self.signatures)})"
            )
        spec = self.signatures[signature]["inputs"]
        missing = [name for name in spec if name not in inputs]
        extra = [name for name in inputs if name not in spec]
        if missing or extra:
            raise InputSpecError(
                f"signature {signature!r}: "
                + "; ".join(
                    part
                    for part in (
                        f"missing input(s) {', '.join(missing)}" if missing else "",
                        f"unknown input(s) {', '.join(extra)}" if extra else "",
                    )
                    if part
                )
                + f" (expects {', '.join(spec)})"
            )
        checked = {name: _check_input(signature, name, inputs[name], *spec[name]) for name in spec}
        _check_values(signature, checked)
        rows = {name: v.shape[0] for name, v in checked.items()
                if name in FEATURE_KEYS + ("label", "sample_weight", "original_logits", "state")}
        if len(set(rows.values())) > 1:
            raise InputSpecError(f"signature {signature!r}: inputs with different row counts {rows}")
        runner = self._runners.get(signature)
        first = runner is None
        if runner is None:
            runner = self._runners[signature] = self.interpreter.get_signature_runner(signature)
        try:
            if first and not is_verbose():  # the interpreter's banner lines, once
                with quiet_native_stderr():
                    outputs: dict[str, np.ndarray] = runner(**checked)
            else:
                outputs = runner(**checked)
        except RuntimeError as err:  # e.g. an id beyond the model's vocabulary (GATHER)
            raise InputSpecError(
                f"signature {signature!r}: the interpreter refused the inputs "
                f"({str(err).splitlines()[0]}); are the ids within the run's vocabularies?"
            ) from None
        return outputs

    def infer(self, features: Features, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Logits and probabilities [n, n_intents] for the windows in ``features`` (dict of
        [n, L] arrays), run ``batch_size`` windows at a time (default: all at once)."""
        n = _batch_len(features)
        step = n if batch_size is None else int(batch_size)
        if batch_size is not None and step < 1:
            raise InputSpecError(f"batch_size must be >= 1, got {batch_size}")
        if n == 0:
            empty = np.zeros((0, self.n_intents), np.float32)
            return {"logits": empty, "probabilities": empty.copy()}
        outs = [
            self.call("infer", **{k: features[k][i : i + step] for k in FEATURE_KEYS})
            for i in range(0, n, max(step, 1))
        ]
        return {key: np.concatenate([o[key] for o in outs]) for key in ("logits", "probabilities")}

    def initial_state(self, n: int = 1) -> np.ndarray:
        """The ``infer_step`` state before any event (zeros), float32 [n, state_size]."""
        return np.zeros((int(n), self._state_size()), np.float32)

    def infer_step(self, event: Mapping[str, npt.ArrayLike],
                   state: npt.ArrayLike) -> dict[str, np.ndarray]:
        """The prediction after one new event per row: ``event`` holds ``location, weekday,
        slot, event`` int32 [n], ``state`` float32 [n, state_size] (:meth:`initial_state`
        before the first event). Returns ``logits``, ``probabilities`` [n, n_intents] and the
        ``state`` to pass with the next event."""
        self._state_size()  # the signature exists
        return self.call("infer_step", **{k: event[k] for k in STREAM_KEYS}, state=state)

    def _state_size(self) -> int:
        """``state_size``, or a SignatureError naming the missing ``infer_step``."""
        if self.state_size is None:
            raise SignatureError(f"{self.path or 'this model'} has no 'infer_step' signature "
                                 "(a student trained with --student-span has)")
        return self.state_size

    def train(self, features: Features, labels: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None, learning_rate: float = 1e-3,
              part: str = "all") -> float:
        """One ``train`` step on up to ``batch_size`` windows (a short batch is padded with
        zero-weight rows); returns the loss. ``part``: ``"all"`` (the ``train`` signature)
        or a part of :attr:`train_parts` (``train_head``, ``train_top1``, ...: only that
        part's weights move)."""
        signature = "train" if part == "all" else f"train_{part}"
        if signature not in self.signatures:
            raise SignatureError(f"the model has no signature {signature!r}: it trains the parts "
                                 f"{', '.join(self.train_parts)}")
        labels = np.asarray(labels)
        if labels.size and (labels.min() < N_RESERVED or labels.max() >= self.n_intents):
            raise InputSpecError(
                f"signature {signature!r}, input 'label': intent ids are {N_RESERVED} .. "
                f"{self.n_intents - 1} ({', '.join(map(str, RESERVED_IDS))} are reserved), got {labels.min()} .. "
                f"{labels.max()}")
        batch, weight = self._pad(features, {"label": labels}, sample_weight)
        out = self.call(
            signature, **batch, sample_weight=weight, learning_rate=np.float32(learning_rate)
        )
        return float(np.asarray(out["loss"]).reshape(-1)[0])

    def unlearn(
        self,
        features: Features,
        original_logits: npt.ArrayLike,
        retain_mask: npt.ArrayLike,
        forget_mask: npt.ArrayLike,
        lam: float = 1.0,
        sample_weight: npt.ArrayLike | None = None,
        learning_rate: float = 1e-3,
    ) -> dict[str, float]:
        """One ``unlearn`` step (PITuning Eq. 11) on up to ``batch_size`` windows; returns the
        loss terms as floats."""
        batch, weight = self._pad(features, {"original_logits": original_logits}, sample_weight)
        out = self.call(
            "unlearn",
            **batch,
            retain_mask=np.asarray(retain_mask, np.float32),
            forget_mask=np.asarray(forget_mask, np.float32),
            lam=np.float32(lam),
            sample_weight=weight,
            learning_rate=np.float32(learning_rate),
        )
        return {name: float(np.asarray(value).reshape(-1)[0]) for name, value in out.items()}

    def get_weights(self) -> np.ndarray:
        """The current weights as one float32 vector [num_weights]."""
        return np.array(self.call("get_weights")["weights"], np.float32)

    def set_weights(self, weights: npt.ArrayLike) -> None:
        """Assigns a float32 vector [num_weights] (and zeroes the optimizer state)."""
        weights = np.asarray(weights)
        if weights.dtype != np.float32 or weights.shape != (self.num_weights,):
            raise InputSpecError(
                f"weights must be float32 [{self.num_weights}], got {weights.dtype} "
                f"{list(weights.shape)}"
            )
        if not np.all(np.isfinite(weights)):
            raise InputSpecError("weights contain NaN or infinite values")
        self.call("set_weights", weights=weights)

    def reset(self) -> None:
        """Back to the shipped weights; optimizer state zeroed."""
        self.call("reset")

    def save_weights(self, path: PathLike) -> None:
        """Writes the current weights to ``path`` (atomically); weights with NaN or inf are
        refused, so a diverged model never replaces a good file."""
        weights = self.get_weights()
        if not np.all(np.isfinite(weights)):
            raise InputSpecError(f"the model's weights contain NaN or infinite values: not "
                                 f"written to {path} (reset() or load_weights() a good file)")
        write_weights_file(path, weights)

    def load_weights(self, path: PathLike) -> None:
        """Reads weights written by :meth:`save_weights`; any problem with the file raises
        :class:`WeightsFileError` before anything is assigned (the model keeps its weights)."""
        if self.num_weights is None:
            raise SignatureError(f"{self.path or 'this model'} is inference-only (no "
                                 "'set_weights' signature): it cannot take a weights file")
        self.set_weights(read_weights_file(path, self.num_weights))

    # ---------------------------------------------------------------- internals

    def _pad(self, features: Features, extra: dict[str, npt.ArrayLike],
             sample_weight: npt.ArrayLike | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        n = _batch_len(features)
        b = self.batch_size
        if b is None:
            raise SignatureError(f"{self.path or 'this model'} is inference-only (no 'train' signature)")
        if not 0 < n <= b:
            raise InputSpecError(f"a training batch holds 1 to {b} windows, got {n}")
        weight = np.ones(n, np.float32) if sample_weight is None else np.asarray(sample_weight)
        arrays = {k: features[k] for k in FEATURE_KEYS} | extra | {"sample_weight": weight}
        spec = self.signatures["train"]["inputs"] | self.signatures.get("unlearn", {}).get(
            "inputs", {}
        )
        padded = {}
        for name, value in arrays.items():
            value = np.asarray(value)
            if value.ndim == 0 or value.shape[0] != n:
                raise InputSpecError(
                    f"{name}: expected {n} rows like the features, got shape {list(value.shape)}"
                )
            value = _check_dtype("train", name, value, spec[name][1])
            if n < b:
                pad = np.zeros((b - n,) + value.shape[1:], value.dtype)
                value = np.concatenate([value, pad])
            padded[name] = value
        padded["mask"] = padded["mask"].copy()
        weight = padded.pop("sample_weight")
        return padded, weight

    def _read_signatures(self) -> Signatures:
        out: Signatures = {}
        for name in self.interpreter.get_signature_list():
            runner = self.interpreter.get_signature_runner(name)
            inputs = {
                k: (tuple(int(s) for s in d["shape_signature"]), np.dtype(d["dtype"]))
                for k, d in runner.get_input_details().items()
            }
            outputs = {
                k: (tuple(int(s) for s in d["shape_signature"]), np.dtype(d["dtype"]))
                for k, d in runner.get_output_details().items()
            }
            out[name] = {"inputs": inputs, "outputs": outputs}
        return out

    def _check(self, required: Sequence[str]) -> None:
        where = self.path or "the model"
        missing = [name for name in required if name not in self.signatures]
        if missing:
            raise SignatureError(
                f"{where}: missing signature(s) {', '.join(missing)} (it has: "
                f"{', '.join(self.signatures) or 'none'}); convert it again with "
                "python -m tflite.convert"
            )
        for name in self.signatures:
            if name not in EXPECTED:
                continue
            want_in, want_out = EXPECTED[name]
            have = self.signatures[name]
            lacking = [k for k in want_in if k not in have["inputs"]]
            lacking += [f"output {k}" for k in want_out if k not in have["outputs"]]
            if lacking:
                raise SignatureError(
                    f"{where}: signature {name!r} lacks {', '.join(lacking)}"
                )
        lengths = {
            (name, k): shape[1]
            for name, sig in self.signatures.items()
            for k, (shape, _) in sig["inputs"].items()
            if k in FEATURE_KEYS and name != "infer_step"  # infer_step: one event, no window
        }
        if len(set(lengths.values())) > 1 or -1 in lengths.values():
            raise SignatureError(
                f"{where}: feature inputs must share one static window length, got {lengths}"
            )


def available_backends() -> list[str]:
    """The interpreter backends importable here, in preference order."""
    names = []
    for name in BACKENDS:
        try:
            _interpreter_class(name)
        except UserInputError:
            continue
        names.append(name)
    return names


def _interpreter_class(backend: str) -> tuple[str, Any]:
    if backend == "auto":
        for name in BACKENDS:
            try:
                return _interpreter_class(name)
            except UserInputError:
                continue
        raise UserInputError("no TFLite interpreter found (install ai-edge-litert)")
    try:  # deferred: the interpreter package of the chosen backend, whichever is installed
        if backend == "litert":
            from ai_edge_litert.interpreter import Interpreter
        elif backend == "tflite_runtime":
            from tflite_runtime.interpreter import Interpreter
        elif backend == "tf":
            from pitune_tf.common.keras import tf

            Interpreter = tf.lite.Interpreter
        else:
            raise UserInputError(f"unknown backend {backend!r}; choose auto or one of {BACKENDS}")
    except ImportError:
        raise UserInputError(f"TFLite backend {backend!r} is not installed") from None
    return backend, Interpreter


def _batch_len(features: Mapping[str, Any]) -> int:
    missing = [k for k in FEATURE_KEYS if k not in features]
    if missing:
        raise InputSpecError(f"features lack {', '.join(missing)} (need {FEATURE_KEYS})")
    return int(np.shape(features["event"])[0]) if np.ndim(features["event"]) else 0


def _check_dtype(signature: str, name: str, value: npt.ArrayLike,
                 dtype: np.dtype[Any]) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype == dtype:
        return value
    if value.ndim == 0 and value.dtype.kind in "fiu" and dtype.kind == "f":
        return value.astype(dtype)
    raise InputSpecError(
        f"signature {signature!r}, input {name!r}: dtype {value.dtype}, expected {dtype}"
    )


# Value ranges of the float inputs (inclusive); every float input must be finite.
_RANGES = {"mask": (0.0, 1.0), "retain_mask": (0.0, 1.0), "forget_mask": (0.0, 1.0),
           "sample_weight": (0.0, np.inf), "learning_rate": (0.0, np.inf), "lam": (0.0, np.inf)}


def _check_values(signature: str, inputs: Mapping[str, np.ndarray]) -> None:
    """Finite floats within their ranges, non-negative ids: each bad input named with an
    example of its bad values."""
    for name, value in inputs.items():
        if value.dtype.kind == "f":
            bad = ~np.isfinite(value)
            low, high = _RANGES.get(name, (-np.inf, np.inf))
            bad |= np.isfinite(value) & ((value < low) | (value > high))
            what = f"finite values in [{low}, {high}]"
        elif name in FEATURE_KEYS:
            bad, what = value < 0, "ids >= 0"
        else:
            continue
        if bad.any():
            raise InputSpecError(f"signature {signature!r}, input {name!r}: expected {what}, "
                                 f"got {value[bad].ravel()[0]!r}")


def _check_input(signature: str, name: str, value: npt.ArrayLike, shape: tuple[int, ...],
                 dtype: np.dtype[Any]) -> np.ndarray:
    value = _check_dtype(signature, name, value, dtype)
    ok = value.ndim == len(shape) and all(
        want == -1 or want == got for want, got in zip(shape, value.shape)
    )
    if not ok:
        want = "[" + ", ".join("any" if s == -1 else str(s) for s in shape) + "]"
        raise InputSpecError(
            f"signature {signature!r}, input {name!r}: shape {list(value.shape)}, expected {want}"
        )
    return np.ascontiguousarray(value)

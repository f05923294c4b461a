"""Next-intent predictions for users' event logs from a population run (Keras student, a
personalized weights file, or a ``.tflite`` model)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pitune_tf.common.errors import DataError, UserInputError, not_found
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.numeric import softmax
from pitune_tf.common.types import PathLike
from pitune_tf.data.encoded_events import EncodedEvents
from pitune_tf.data.features import encode_events
from pitune_tf.data.io import REQUIRED_COLUMNS, canonicalize, read_table
from pitune_tf.data.schema import Schema
from pitune_tf.data.vocabularies import Vocabularies
from pitune_tf.data.windows import (
    FEATURE_KEYS,
    STREAM_KEYS,
    Windows,
    make_next_windows,
    make_running_windows,
)
from pitune_tf.litert.runtime import Runtime
from pitune_tf.litert.weights_file import read_weights_file
from pitune_tf.population.evaluation import prior_rule
from pitune_tf.population.run_directory import Run, load_run
from tflite.student_module import assign_flat_weights, flat_weights

Events = str | Path | pd.DataFrame  # an events file (CSV / Parquet) or its table

PREDICTION_COLUMNS = ("user_id", "rank", "intent", "probability")
EVENT_PREDICTION_COLUMNS = ("user_id", "timestamp", "rank", "intent", "probability")
DECISION_RULES = ("argmax", "prior")  # how intents are ranked: by p, or by p / P_pop^tau


class NextIntentPredictor:
    """Predicts each user's next intent from the user's event log, as the phone would.

    The events are read with ``schema`` (from a run: the schema the run's own log was read
    with, ``config.json``'s ``data_schema``), encoded with the run's vocabularies and context
    features (weekday, time slot of ``slot_minutes``), and each user's window is the history
    AFTER the newest event (:func:`pitune_tf.data.windows.make_next_windows`, PITuning Eq. 1
    for the next, not yet seen, event). The network is the run's Keras student, optionally with a personalized
    weights file (the format of ``tflite.runtime.Runtime.save_weights``), or a ``.tflite``
    model run through :class:`tflite.runtime.Runtime` (any of ``tflite.convert``'s files,
    with the weights file when it has the ``set_weights`` signature).

    The intents are ranked by their probability p (``decision_rule="argmax"``), or the
    first by ``p / P_pop^tau`` and the others by p (``"prior"``: the population's intent
    shares divided out, so rare intents come first more often; the rule of metrics.json's
    ``student_prior_rule`` row,
    :func:`pitune_tf.population.evaluation.prior_rule`, with tau chosen on the population's
    validation windows). The reported probability is p either way.

    Args:
        vocabs: :class:`pitune_tf.data.Vocabularies`. The run's vocabularies.
        history: int. The window length ``L``.
        student: keras.Model or None. Features dict -> logits [n, N]; None with ``runtime``.
        runtime: :class:`tflite.runtime.Runtime` or None. Used instead of ``student``.
        batch_size: int. Windows per forward pass.
        decision_rule: str. ``"argmax"`` or ``"prior"`` (:data:`DECISION_RULES`).
        p_pop: float array [N] or None. The population's intent shares P_pop (the run's
            ``p_out.json``); needed by ``"prior"``.
        tau: float or None. The exponent of ``"prior"`` (>= 0; 0 is argmax).
        schema: :class:`pitune_tf.data.schema.Schema` or None. How event logs are read
            (column names, time unit, time zone, merge gap; an intent column is never
            needed); None: the canonical schema.

    Example:
        >>> predictor = NextIntentPredictor.from_run("runs/demo", weights="me.weights")
        >>> predictor.predict_next(events, top_k=3)   # user_id, rank, intent, probability
    """

    def __init__(self, vocabs: Vocabularies, history: int, student: keras.Model | None = None,
                 runtime: Runtime | None = None, batch_size: int = 256,
                 decision_rule: str = "argmax", p_pop: Sequence[float] | np.ndarray | None = None,
                 tau: float | None = None, schema: Schema | None = None) -> None:
        if (student is None) == (runtime is None):
            raise ValueError("give exactly one of student and runtime")
        if decision_rule not in DECISION_RULES:
            raise UserInputError(f"decision rule must be one of {', '.join(DECISION_RULES)}, "
                                 f"got {decision_rule!r}")
        if decision_rule == "prior":
            if p_pop is None or tau is None:
                raise UserInputError("the prior decision rule needs p_pop and tau")
            if len(p_pop) != len(vocabs.intent.tokens):
                raise UserInputError(f"p_pop has {len(p_pop)} shares for "
                                     f"{len(vocabs.intent.tokens)} intents")
            if not float(tau) >= 0:
                raise UserInputError(f"tau must be >= 0, got {tau}")
        self.decision_rule = decision_rule
        self.p_pop = None if p_pop is None else np.asarray(p_pop, dtype=np.float64)
        self.tau = None if tau is None else float(tau)
        self.vocabs = vocabs
        self.history = int(history)
        self.student = student
        self.runtime = runtime
        self.batch_size = int(batch_size)
        self.schema = schema if schema is not None else Schema()
        self.intents = list(vocabs.intent.tokens)  # output index -> intent label
        self.reserved = len(vocabs.intent.reserved)  # ids 0 .. reserved - 1 are never labels
        if runtime is not None:
            if runtime.history != self.history or runtime.n_intents != len(self.intents):
                raise UserInputError(
                    f"{runtime.path or 'the model'}: windows of {runtime.history} events and "
                    f"{runtime.n_intents} intents, but the run has {self.history} and "
                    f"{len(self.intents)} (a model of another run?)")

    @classmethod
    def from_run(cls, run: PathLike | Run, weights: PathLike | None = None,
                 model: PathLike | None = None, backend: str = "auto", batch_size: int = 256,
                 decision_rule: str = "argmax", tau: float | None = None,
                 schema: Schema | dict[str, Any] | None = None) -> NextIntentPredictor:
        """The predictor of a population run directory.

        Args:
            run: path of a run directory of ``python -m trainers.population`` (or a loaded
                :class:`pitune_tf.population.run_directory.Run`).
            weights: path or None. A personalized weights file (``Runtime.save_weights``).
            model: path or None. A ``.tflite`` model of this run (``python -m tflite.convert``);
                None uses the run's Keras student.
            backend: str. The TFLite interpreter (``tflite.runtime.Runtime``'s ``backend``).
            batch_size: int. Windows per forward pass.
            decision_rule: str. ``"argmax"`` or ``"prior"`` (P_pop from ``p_out.json``).
            tau: float or None. The prior rule's exponent; None: the one chosen on the
                population's validation windows (``metrics.json``, ``student_prior_rule``).
            schema: None, dict or :class:`pitune_tf.data.schema.Schema`. How event logs are
                read: the run's own log's schema (``config.json``, ``data_schema``), with the
                fields of a dict overriding it (a command line's options), or a whole Schema
                (:meth:`pitune_tf.population.run_directory.Run.log_schema`).
        """
        for name, path in (("weights", weights), ("model", model)):
            if path is not None and not Path(path).is_file():
                raise UserInputError(not_found(f"{name} file", path))
        run = run if isinstance(run, Run) else load_run(run)
        history = int(run.config.history)
        rule = {"decision_rule": decision_rule, "schema": run.log_schema(schema)}
        if decision_rule == "prior":
            rule.update(p_pop=run.p_pop, tau=run_tau(run) if tau is None else tau)
        if model is None:
            student = run.student
            if weights is not None:
                assign_flat_weights(student, read_weights_file(weights, flat_weights(student).size))
            return cls(run.vocabs, history, student=student, batch_size=batch_size, **rule)
        runtime = Runtime(model, backend=backend, required=("infer",))
        if weights is not None:
            if runtime.num_weights is None:
                raise UserInputError(f"{model}: an inference-only model cannot take a weights "
                                     "file; use the run's student.tflite")
            runtime.load_weights(weights)
        return cls(run.vocabs, history, runtime=runtime, batch_size=batch_size, **rule)

    # ---------------------------------------------------------------- inputs

    def events_table(self, events: Events, schema: Schema | None = None) -> pd.DataFrame:
        """The canonical event table of ``events``: a CSV / Parquet path or a DataFrame with
        ``user_id, timestamp, event`` and optionally ``location`` (an ``intent`` column, or
        the one ``schema`` names, is ignored: only the events and their context are model
        inputs), read with ``schema`` (:class:`pitune_tf.data.schema.Schema`; None: the
        predictor's, :attr:`schema`). A missing column is a :class:`DataError` naming it as
        the file would (``uid`` for ``user_id=uid``) and the columns the file has."""
        path: Path | None = None
        if isinstance(events, (str, Path)):
            path = Path(events)
            table = read_table(path)
        elif isinstance(events, pd.DataFrame):
            table = events.reset_index(drop=True)
        else:
            raise UserInputError(f"events must be a file path or a DataFrame, got {type(events)}")
        if len(table) == 0:
            raise UserInputError(f"{path or 'events'}: no events")
        schema = schema if schema is not None else self.schema
        # the history's intents are not model inputs: never needed, never read
        columns = {k: v for k, v in schema.columns.items() if k != "intent"}
        table = table.drop(columns=[schema.columns.get("intent", "intent")], errors="ignore")
        found = ", ".join(map(str, table.columns))
        table = dataclasses.replace(schema, columns=columns).rename(table, path)
        for column in REQUIRED_COLUMNS:
            if column not in table.columns:
                raise DataError(f"missing column (found: {found})", path, row=0,
                                column=columns.get(column, column))
        # any real intent token, for the canonical table
        table = table.drop(columns=["intent"], errors="ignore").assign(
            intent=self.intents[self.reserved] if len(self.intents) > self.reserved else "")
        try:
            return canonicalize(table, path, schema=dataclasses.replace(schema, columns={}))
        except DataError as err:  # name the file's own column
            if err.column not in columns:
                raise
            raise DataError(err.message, err.path, err.row, columns[err.column]) from None

    def next_windows(self, events: Events, schema: Schema | None = None) -> Windows:
        """One window per user, after the user's newest event (features [n_users, L])."""
        return make_next_windows(encode_events(self.events_table(events, schema), self.vocabs),
                                 self.history)

    # ---------------------------------------------------------------- predictions

    def probabilities(self, windows: Windows) -> np.ndarray:
        """Intent probabilities [n, N] of ``windows`` (softmax of the network's logits)."""
        if len(windows) == 0:
            return np.zeros((0, len(self.intents)), np.float32)
        features = windows.features()
        if self.runtime is not None:
            return self.runtime.infer(features, batch_size=self.batch_size)["probabilities"]
        assert self.student is not None  # the constructor sets exactly one of the two
        logits = [
            np.asarray(self.student({k: features[k][i:i + self.batch_size] for k in FEATURE_KEYS},
                                    training=False))
            for i in range(0, len(windows), self.batch_size)
        ]
        return softmax(np.concatenate(logits))

    @property
    def streams(self) -> bool:
        """Whether the network predicts event by event from a cached state (``infer_step``:
        a student trained with ``--student-span``)."""
        if self.runtime is not None:
            return self.runtime.state_size is not None
        return bool(getattr(self.student, "streaming", False))

    def running_probabilities(self, encoded: EncodedEvents) -> np.ndarray:
        """Intent probabilities [n_events, N] after each event of each user's log (rows in
        ``encoded``'s order), as a phone computes them while the log grows: a streaming
        network takes one event per step (``infer_step``: the users side by side, each with
        its state), any other one reads each event's window (``infer``); both give the
        numbers of :meth:`probabilities` on :func:`make_running_windows`."""
        if not self.streams:
            return self.probabilities(make_running_windows(encoded, self.history))
        step, size = self._step_function()
        starts = encoded.user_starts()
        counts = np.diff(starts)
        state = np.zeros((len(counts), size), np.float32)
        out = np.zeros((len(encoded), len(self.intents)), np.float32)
        for t in range(int(counts.max(initial=0))):
            active = np.flatnonzero(counts > t)
            for begin in range(0, len(active), self.batch_size):
                users = active[begin:begin + self.batch_size]
                rows = starts[users] + t
                event = {k: getattr(encoded, k)[rows].astype(np.int32) for k in STREAM_KEYS}
                out[rows], state[users] = step(event, state[users])
        return out

    def _step_function(self) -> tuple[Any, int]:
        """``(step, S)``: ``step(event, state) -> (probabilities, state)`` on numpy arrays,
        through ``infer_step`` or the Keras student's ``step``; S the state's length."""
        runtime = self.runtime
        if runtime is not None:
            assert runtime.state_size is not None  # self.streams

            def lite(event: dict[str, np.ndarray], state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                result = runtime.infer_step(event, state)
                return result["probabilities"], result["state"]

            return lite, runtime.state_size
        assert self.student is not None
        keras_step = tf.function(self.student.step, reduce_retracing=True)

        def step(event: dict[str, np.ndarray], state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            logits, new_state = keras_step(event, tf.constant(state))
            return softmax(np.asarray(logits)), new_state.numpy()

        return step, int(self.student.state_size)

    def decision_scores(self, probs: np.ndarray) -> np.ndarray:
        """The scores [n, N] intents are ranked by: ``probs`` (argmax), or (prior) ``probs``
        plus 1 at the intent of the best ``probs / P_pop^tau`` (one the population never has
        is never first)."""
        if self.decision_rule == "argmax":
            return probs
        scores: np.ndarray = prior_rule(probs, self.p_pop, self.tau)
        return scores

    def predict_next(self, events: Events, top_k: int = 3,
                     schema: Schema | None = None) -> pd.DataFrame:
        """Each user's ``top_k`` most probable next intents.

        Args:
            events: CSV / Parquet path or DataFrame (see :meth:`events_table`).
            top_k: int. Intents per user (1 .. the number of real intents).
            schema: :class:`pitune_tf.data.schema.Schema` or None. How to read ``events``
                (None: the predictor's, :attr:`schema`; from a run: the run's own).

        Returns:
            DataFrame ``user_id, rank, intent, probability``: ``top_k`` rows per user (users
            sorted, rank 1 = the best of :meth:`decision_scores`: the most probable with
            argmax); the reserved ids (padding, unknown) are never predicted.
        """
        top_k = self._check_top_k(top_k)
        windows = self.next_windows(events, schema)
        probs = self.probabilities(windows)  # [n_users, N]
        ranked = self._ranked(probs, top_k)  # [n_users, k] intent ids
        return pd.DataFrame({
            "user_id": np.repeat(windows.user, top_k),
            "rank": np.tile(np.arange(1, top_k + 1), len(windows)),
            "intent": np.asarray(self.intents, dtype=object)[ranked].ravel(),
            "probability": np.take_along_axis(probs, ranked, axis=1).ravel().astype(np.float64),
        }, columns=list(PREDICTION_COLUMNS))


    def predict_each_event(self, events: Events, top_k: int = 3,
                           schema: Schema | None = None) -> pd.DataFrame:
        """The ``top_k`` next intents after every event of each user's log (what the phone
        would have shown at each moment; :meth:`running_probabilities`).

        Returns:
            DataFrame ``user_id, timestamp, rank, intent, probability``: ``top_k`` rows per
            event (the event's time), events in the log's order per user; each user's last
            event's rows are :meth:`predict_next`'s.
        """
        top_k = self._check_top_k(top_k)
        encoded = encode_events(self.events_table(events, schema), self.vocabs)
        probs = self.running_probabilities(encoded)
        ranked = self._ranked(probs, top_k)
        return pd.DataFrame({
            "user_id": np.repeat(encoded.user, top_k),
            "timestamp": pd.to_datetime(np.repeat(encoded.timestamp, top_k), unit="s"),
            "rank": np.tile(np.arange(1, top_k + 1), len(encoded)),
            "intent": np.asarray(self.intents, dtype=object)[ranked].ravel(),
            "probability": np.take_along_axis(probs, ranked, axis=1).ravel().astype(np.float64),
        }, columns=list(EVENT_PREDICTION_COLUMNS))

    def _check_top_k(self, top_k: int) -> int:
        n_real = len(self.intents) - self.reserved
        if not 1 <= int(top_k) <= n_real:
            raise UserInputError(f"top_k must be in [1, {n_real}] (the run's intents), got {top_k}")
        return int(top_k)

    def _ranked(self, probs: np.ndarray, top_k: int) -> np.ndarray:
        """The ``top_k`` intent ids [n, k] of each row by :meth:`decision_scores`."""
        scores = self.decision_scores(probs)[:, self.reserved:]
        return np.argsort(-scores, axis=1, kind="stable")[:, :top_k] + self.reserved


def run_tau(run: Run) -> float:
    """The prior rule's tau of a loaded run: chosen on the population's validation windows
    for the student (``metrics.json``, ``student_prior_rule``)."""
    rule = (run.metrics or {}).get("student_prior_rule")
    if not isinstance(rule, dict) or not isinstance(rule.get("tau"), (int, float)):
        raise UserInputError(f"{run.run_dir / 'metrics.json'}: no student_prior_rule tau (a run "
                             "without validation windows, or unfinished); give a tau")
    return float(rule["tau"])


def format_predictions(predictions: pd.DataFrame) -> list[str]:
    """One line per user: ``u00150  social 0.445 | shopping 0.105 | weather 0.073``; with a
    ``timestamp`` column (:meth:`NextIntentPredictor.predict_each_event`) one per event:
    ``u00150  2024-03-04 08:10  social 0.445 | ...``."""
    lines = []
    each_event = "timestamp" in predictions.columns
    starts = np.flatnonzero(predictions["rank"].to_numpy() == 1)
    for start, end in zip(starts, list(starts[1:]) + [len(predictions)]):
        rows = predictions.iloc[start:end]
        when = f"{rows['timestamp'].iloc[0]:%Y-%m-%d %H:%M}  " if each_event else ""
        lines.append(f"{rows['user_id'].iloc[0]}  {when}" + " | ".join(
            f"{intent} {p:.3f}" for intent, p in zip(rows["intent"], rows["probability"])))
    return lines

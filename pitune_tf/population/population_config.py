"""Configuration of PITuning's population stage: a dataclass with presets, resolved with
:func:`pitune_tf.common.config.resolve_config`.

Precedence: command line > config file (``--config FILE.json``) > preset defaults. A key the
dataclass does not have is an error, in a file as on the command line.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from pitune_tf.common.config import replace, resolve_config
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.limits import (
    BATCH_SIZE_MAX,
    COUNT_MAX,
    EPOCHS_MAX,
    HISTORY_MAX,
    LAYERS_MAX,
    WIDTH_MAX,
    check_fits_in_memory,
    check_learning_rate,
    check_number,
    check_numbers,
    check_seed,
    transformer_training_bytes,
)
from pitune_tf.common.training_options import PRECISIONS
from pitune_tf.data.schema import Schema
from pitune_tf.data.synthetic_config import SyntheticConfig

TEMPERATURE_RANGE = (0.01, 100.0)  # eps of PITuning Eq. 6 (the paper: 1); logits / eps stays
#   finite in float32 across this range
RANDOM_BACKBONE = re.compile(r"^random:(\d+)x(\d+)$")  # pitune_tf.models.gpt2_checkpoint's pattern


@dataclass
class PopulationConfig:
    """Everything ``python -m trainers.population`` needs (PITuning Sec. 3.2, Appendix B, Table 4)."""

    # --- data ---
    data: list = field(default_factory=list)  # [] = embedded synthetic data; [events] or [population, individual]
    mapping: str | None = None  # event -> intent mapping file when the events have no intent column
    data_schema: dict = field(default_factory=dict)  # the log's schema (columns, time_unit,
    #   timezone, unmapped, merge_gap_s: pitune_tf.data.schema.Schema); {} = canonical
    synthetic_preset: str = "demo"  # pitune_tf.data.synthetic preset when no data is given
    synthetic: dict = field(default_factory=dict)  # overrides of that preset's SyntheticConfig
    #   (e.g. {"longtail_fraction": 0.0}: the regimes of the payoff study, each with its oracle)
    individual_fraction: float = 0.2  # one events file in `data`: the share of its users held
    #   out (seeded) for the individual stage; the rest train the population models
    individual_users: int | None = None  # one events file: hold out this many users instead
    #   of `individual_fraction` (None: use the fraction)
    history: int = 30  # L, events per window (Sec. 4.1.4)
    min_history: int = 1  # windows need at least this many real history events
    slot_minutes: int = 60  # time-slot size: 24 slots a day
    split: list = field(default_factory=lambda: [0.6, 0.1, 0.3])  # train/val/test, per user, by time
    max_train_windows: int | None = None  # 0 = all; N: a random subset; None: all with `data`,
    #   20000 on the embedded synthetic data (the quickstart's time)
    streaming: bool = False  # build the windows chunk by chunk from Parquet (a file or a
    #   directory of shards), never all in memory; validation and test stay in memory
    stream_chunk_events: int = 250_000  # events per streamed chunk (whole users)
    stream_eval_windows: int = 250_000  # streaming: validation and test each keep at most
    #   this many windows (a seeded subset; 0 = all)

    # --- teacher (Sec. 3.2.1-3.2.4) ---
    backbone: str = "random:2x64"  # hub name, local checkpoint dir, or random:<layers>x<width>
    embedding_dim: int = 0  # d; 0 = backbone width / 4 (the paper: 768 / 4 = 192)
    use_iat: bool = True  # intent attention (PITuning Eq. 3); False = last position into the head
    repeat_term: bool = True  # a learned mixture with repeating the newest event's intent (RepeatMixture; not
    #   in the paper, off in PAPER_CHOICES: without it the models lose to "repeat the last
    #   intent" on real logs)
    reconstruction: bool = True  # masked event reconstruction term of PITuning Eq. 5
    mask_rate: float = 0.15  # share of history positions masked for PITuning Eq. 5
    reconstruction_passes: str = "two"  # two: intent loss on a clean pass, L_M on a masked one
    #   (PITuning Algorithm 1); one: both from the masked pass (faster)
    tuning: str = "full"  # full | partial (OFA-style PP: GPT2 attention and MLP frozen)
    dropout: float = 0.0  # GPT2 dropout (0 keeps resumed runs bit-identical)
    attention_units: list = field(default_factory=lambda: [16, 8])  # IAT activation unit (DIN: 80, 40)
    attention_normalize: str = "mean"  # IAT pooling: none (PITuning Eq. 3's plain sum) | mean (the
    #   sum divided by the number of real positions; not in the paper, off in PAPER_CHOICES) | softmax
    head_units: int = 64  # hidden width of the PITuning Eq. 4 MLP
    reconstruction_units: int = 64  # hidden width of the reconstruction MLP
    teacher_epochs: int | None = None  # most epochs; None: 30 with `data`, 3 on the embedded data
    teacher_learning_rate: float = 2e-3

    # --- student and distillation (Sec. 3.2.5, PITuning Eq. 6-7, Appendix A) ---
    student_layers: int = 2  # decoder blocks (paper: 4)
    student_width: int = 64  # D_s (paper: 768); the student's d is D_s / 4
    student_heads: int = 2
    student_span: int | str = "none"  # none: the paper's student over the whole window. Not
    #   in PITuning: each student block attends to the span events before each position
    #   (relative positions), the IAT pools the last history - layers * span positions, and the
    #   phone's infer_step predicts from a cached state at the cost of one event; auto: the
    #   longest span that leaves the IAT two positions, (history - 2) // student_layers
    alpha: float = 0.5  # weight of the soft (KL) term, Table 4
    temperature: float = 1.0  # eps, Table 4
    student_epochs: int | None = None  # most epochs; None: 30 with `data`, 2 on the embedded data
    student_learning_rate: float = 2e-3
    patience: int = 2  # epochs without a better validation loss before a phase stops (0: never);
    #   the best validation epoch's weights are kept either way

    # --- common ---
    precision: str = "float32"  # float32 | mixed_bfloat16 | mixed_float16: the teacher's Keras
    #   dtype policy (variables, logits and losses stay float32; the student is float32)
    jit: bool = False  # XLA-compile the training steps (compile(jit_compile=True))
    batch_size: int = 128
    clipnorm: float = 0.0  # gradient norm clipping (0 = off, as in the paper; was 1.0, back to
    #   the paper's by the ledger's rule: no measurable effect on the demo data or TKY)
    seed: int = 0

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raises UserInputError for values that cannot work."""
        if self.tuning not in ("full", "partial"):
            raise UserInputError(f"tuning must be 'full' or 'partial', got {self.tuning!r}")
        if self.attention_normalize not in ("none", "mean", "softmax"):
            raise UserInputError(
                f"attention_normalize must be none, mean or softmax, got {self.attention_normalize!r}"
            )
        if self.reconstruction_passes not in ("one", "two"):
            raise UserInputError(
                f"reconstruction_passes must be one or two, got {self.reconstruction_passes!r}")
        # every number in its range (pitune_tf.common.limits), lists element by element
        for name in ("dropout", "mask_rate"):
            check_number(name, getattr(self, name), 0.0, 1.0, high_open=True)
        check_number("alpha", self.alpha, 0.0, 1.0)
        if not self.data:  # the embedded world's options: unknown keys, out-of-range values
            SyntheticConfig.from_preset(self.synthetic_preset, **self.synthetic)
        check_number("temperature", self.temperature, TEMPERATURE_RANGE[0], TEMPERATURE_RANGE[1])
        check_number("clipnorm", self.clipnorm, 0.0)
        for name in ("teacher_learning_rate", "student_learning_rate"):
            check_learning_rate(name, getattr(self, name))
        check_seed("seed", self.seed)
        check_number("history", self.history, 1, HISTORY_MAX, whole=True)
        check_number("min_history", self.min_history, 0, self.history, whole=True)
        check_number("slot_minutes", self.slot_minutes, 1, 24 * 60, whole=True)
        check_number("batch_size", self.batch_size, 1, BATCH_SIZE_MAX, whole=True)
        check_number("embedding_dim", self.embedding_dim, 0, WIDTH_MAX, whole=True)
        for name in ("head_units", "reconstruction_units"):
            check_number(name, getattr(self, name), 1, WIDTH_MAX, whole=True)
        check_numbers("attention_units", self.attention_units, 1, WIDTH_MAX, whole=True)
        check_number("student_layers", self.student_layers, 1, LAYERS_MAX, whole=True)
        check_number("student_width", self.student_width, 4, WIDTH_MAX, whole=True)
        check_number("student_heads", self.student_heads, 1, self.student_width, whole=True)
        if self.student_width % 4 or self.student_width % self.student_heads:
            raise UserInputError(
                f"student_width {self.student_width} must be divisible by 4 and by "
                f"student_heads {self.student_heads}"
            )
        if self.student_span not in (None, "auto", "none"):  # a window longer than the field
            check_number("student_span", self.student_span, 1,
                         max(1, (self.history - 1) // self.student_layers), whole=True)
            if self.student_layers * self.student_span >= self.history:
                raise UserInputError(
                    f"student_span {self.student_span} x student_layers {self.student_layers} "
                    f"must be below history {self.history}")
        for name in ("teacher_epochs", "student_epochs"):
            check_number(name, getattr(self, name), 1, EPOCHS_MAX, whole=True, allow_none=True)
        check_number("patience", self.patience, 0, EPOCHS_MAX, whole=True)
        check_number("max_train_windows", self.max_train_windows, 0, COUNT_MAX, whole=True,
                     allow_none=True)
        check_number("stream_chunk_events", self.stream_chunk_events, 1, COUNT_MAX, whole=True)
        check_number("stream_eval_windows", self.stream_eval_windows, 0, COUNT_MAX, whole=True)
        check_numbers("split", self.split, 0.0, 1.0, length=3)
        if sum(self.split) > 1.0 + 1e-9:
            raise UserInputError(f"split must be 3 non-negative fractions summing to at most 1, "
                                 f"got {self.split}")
        if not isinstance(self.data, (list, tuple)) or not all(
                isinstance(p, str) and p for p in self.data):
            raise UserInputError(f"data must be a list of file names, got {self.data!r}")
        if len(self.data) > 2:
            raise UserInputError("data takes one events file or a population/individual pair")
        if not 0.0 <= self.individual_fraction < 1.0:
            raise UserInputError("individual_fraction (the share of the users held out for the "
                                 f"individual stage) must be in [0, 1), got {self.individual_fraction}")
        if self.individual_users is not None and (
                isinstance(self.individual_users, bool) or self.individual_users < 0):
            raise UserInputError("individual_users (how many users are held out for the "
                                 f"individual stage) must be >= 0, got {self.individual_users}")
        check_number("individual_users", self.individual_users, 0, COUNT_MAX, whole=True,
                     allow_none=True)
        if self.precision not in PRECISIONS:
            raise UserInputError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.streaming and len(self.data) == 1:
            raise UserInputError(
                "streaming needs the population and the individual users' events apart: "
                "--data POPULATION INDIVIDUAL (POPULATION a Parquet file or a directory of "
                "Parquet shards)")
        if not isinstance(self.data_schema, dict):
            raise UserInputError(f"data_schema must be a JSON object, got {self.data_schema!r}")
        Schema.from_dict(self.data_schema)

    def check_memory(self):
        """A UserInputError when the teacher (a ``random:<layers>x<width>`` backbone; a hub
        or local backbone is as large as its checkpoint) or the student cannot train in this
        machine's memory (:func:`~pitune_tf.common.limits.check_fits_in_memory`): checked
        when a run starts, not when a finished run's config is read."""
        networks = [("the student", self.student_layers, self.student_width,
                     self.student_heads, "student_layers, student_width or batch_size")]
        match = RANDOM_BACKBONE.match(self.backbone)
        if match:
            layers, width = int(match[1]), int(match[2])
            check_number("the backbone's layers (random:<layers>x<width>)", layers, 1, LAYERS_MAX,
                         whole=True)
            check_number("the backbone's width (random:<layers>x<width>)", width, 1, WIDTH_MAX,
                         whole=True)
            networks.append(("the teacher", layers, width, max(1, width // 64),
                             "the backbone's size or batch_size"))
        for name, layers, width, heads, hint in networks:
            check_fits_in_memory(f"{name} ({layers} x {width}, batch {self.batch_size}, history "
                                 f"{self.history})",
                                 transformer_training_bytes(layers, width, heads, self.history,
                                                            self.batch_size),
                                 f"lower {hint}")

    def epochs(self, phase) -> int:
        """The most epochs of ``phase`` (``"teacher"`` or ``"student"``): the configured
        number, else 30 on a user's data (early stopping ends it sooner) and the demo's
        3 / 6 on the embedded synthetic data (the student is cheap to train)."""
        value = getattr(self, f"{phase}_epochs")
        if value is not None:
            return value
        return 30 if self.data else {"teacher": 3, "student": 6}[phase]

    def train_window_cap(self) -> int:
        """The training-window subsample size (0 = all windows)."""
        if self.max_train_windows is not None:
            return self.max_train_windows
        return 0 if self.data else 20000

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resolved_student_span(self) -> int | None:
        """The student's attention span (``student_span`` with ``auto`` resolved; None: the
        paper's whole-window student, ``"none"``, also what ``auto`` gives when ``history`` is
        shorter than ``student_layers + 2``)."""
        if self.student_span in (None, "none"):
            return None
        if self.student_span != "auto":
            return int(self.student_span)
        span = (self.history - 2) // self.student_layers
        return span if span >= 1 else None

    def replace(self, **changes) -> PopulationConfig:
        """A copy with ``changes``; unknown keys raise UserInputError."""
        return replace(self, **changes)


# What PITuning states (Sec. 3.2, 4.1.4, Table 4, Algorithm 1) about the models and their
# training, apart from sizes: each of our deviations (repeat_term, attention_normalize,
# clipnorm, the learning rates) turned off. The `paper` preset is these at the paper's sizes,
# `paper_small` at the demo's; PITuning Fig. 4's "Algorithm 1 as written" row applies them to
# RUN's config. What the paper leaves open: docs/reproducing.md#the-paper-profile.
PAPER_CHOICES = {
    "use_iat": True,  # Eq. 3-4
    "attention_normalize": "none",  # Eq. 3: the plain weighted sum
    "repeat_term": False,  # Eq. 4: the MLP's output is the prediction
    "reconstruction": True,  # Eq. 5
    "reconstruction_passes": "two",  # Algorithm 1, lines 2-6
    "tuning": "full",  # GPT2 tuned (PP is Table 3's variant)
    "alpha": 0.5,  # Table 4
    "temperature": 1.0,  # eps, Table 4
    "teacher_learning_rate": 0.01,  # Sec. 4.1.4: Adam, 0.01 in both stages
    "student_learning_rate": 0.01,
    "clipnorm": 0.0,  # Adam as stated, no clipping
}

# Our population options that are off in both profiles, with their "on" values
# (individual_config.OPTIONS: what the ledger's --options measures)
OPTIONS = {"clipnorm": 1.0, "student_span": "auto"}

PRESETS = {
    # A few minutes on a 2-core CPU: tiny random GPT2 teacher, tiny student.
    "demo": {},
    # trainers.pipeline's default (the quickstart: about 5 minutes for the whole journey on
    # 2 cores): the demo's networks on a 60-user, 14-day slice of its world, all windows.
    "quickstart": {
        "synthetic_preset": "quickstart",
        "max_train_windows": 0,
        "teacher_epochs": 4,
        "student_epochs": 4,
    },
    # The demo's data and networks at a budget where the student nearly fits the population:
    # 40,000 training windows, at most 6 teacher and 12 student epochs (patience 2). About 25
    # minutes on 2 CPU cores, three runs side by side. The demo's budget stops both phases
    # while they still improve (student test Prec_w 0.4586 / 0.4784 / 0.4433 for seeds 0-2,
    # 0.4887 / 0.5122 / 0.4916 here): the individual stage's quality is measured from this.
    "demo_fit": {
        "max_train_windows": 40000,
        "teacher_epochs": 6,
        "student_epochs": 12,
    },
    # Sec. 4.1.4 / Table 4: GPT2-small (12 x 768, d = 192), L = 30, student 4 x 768,
    # Adam 0.01, alpha 0.5, eps 1 (PAPER_CHOICES); the values the paper does not give
    # (widths of the MLPs, heads, batch, epochs) are listed in docs/reproducing.md.
    "paper": {
        **PAPER_CHOICES,
        "history": 30,
        "split": [0.6, 0.1, 0.3],
        "embedding_dim": 0,
        "backbone": "gpt2",
        "max_train_windows": 0,
        "batch_size": 64,
        "dropout": 0.1,
        "attention_units": [80, 40],
        "head_units": 256,
        "reconstruction_units": 256,
        "student_layers": 4,
        "student_width": 768,
        "student_heads": 12,
        "teacher_epochs": 10,
        "student_epochs": 10,
        "teacher_learning_rate": 0.01,
        "student_learning_rate": 0.01,
    },
    # The paper's choices at the demo's size (its data, networks and budget): what PITuning
    # does, runnable on a CPU in minutes; not its scale.
    "paper_small": dict(PAPER_CHOICES),
    # Tests: seconds.
    "tiny": {
        "synthetic_preset": "tiny",
        "backbone": "random:1x32",
        "attention_units": [16, 8],
        "head_units": 16,
        "reconstruction_units": 16,
        "student_layers": 1,
        "student_width": 32,
        "student_heads": 2,
        "history": 8,
        "max_train_windows": 0,
        "teacher_epochs": 1,
        "student_epochs": 1,
        "batch_size": 32,
    },
}


# What each preset is for; the rest of its line in --help is read off its values
# (describe_preset), so that it cannot go stale.
PRESET_PURPOSES = {
    "demo": "the demo world (200k synthetic events), minutes on a CPU",
    "quickstart": "trainers.pipeline's default: a small slice of the demo world, ~2 minutes",
    "demo_fit": "the demo trained until the student nearly fits, ~25 minutes on 2 CPU cores",
    "paper": "PITuning as written (Sec. 4.1.4, Table 4; GPT2-small teacher: a GPU)",
    "paper_small": "the paper's choices (no repeat term, Eq. 3's plain sum, Adam 0.01, no "
                   "clipping) at the demo's size, minutes on a CPU",
    "tiny": "tests and smoke runs, seconds (one epoch: one point per training curve)",
}
# the settings a run's first line shows (with every setting a preset, file or flag changed)
SUMMARY_FIELDS = ("data", "backbone", "student_layers", "student_width", "history",
                  "teacher_epochs", "student_epochs", "max_train_windows", "batch_size", "seed")


def describe_preset(name: str) -> str:
    """One line on preset ``name``: its purpose (:data:`PRESET_PURPOSES`), then the
    networks, epochs, history and training windows it resolves to, e.g. ``tiny: tests and
    smoke runs, ... -- teacher random:1x32, student 1x32, 1/1 epochs (teacher/student), ...``."""
    c = preset(name)
    on_data = c.replace(data=["events.csv"])  # what a None number of epochs becomes then
    epochs = f"{c.epochs('teacher')}/{c.epochs('student')} epochs (teacher/student"
    if c.teacher_epochs is None or c.student_epochs is None:
        epochs += f"; {on_data.epochs('teacher')}/{on_data.epochs('student')} with --data"
    cap = c.train_window_cap()
    windows = "all training windows" if cap == 0 else f"{cap} training windows"
    if c.max_train_windows is None:
        windows += " (all with --data)"
    synthetic = (f", synthetic data {c.synthetic_preset!r}"
                 if c.synthetic_preset != PopulationConfig.synthetic_preset else "")
    return (f"{name}: {PRESET_PURPOSES[name]} -- teacher {c.backbone}, student "
            f"{c.student_layers}x{c.student_width}, at most {epochs}), history {c.history}, "
            f"{windows}{synthetic}")


def resolution_notes(config: PopulationConfig) -> dict:
    """Key -> what its value means in a run, where the value alone does not say (a null
    number of epochs, a key that does not apply): the notes of ``--print-config``."""
    notes = {}
    on_data = bool(config.data)
    if not on_data:
        notes["data"] = f"none given: the embedded synthetic data {config.synthetic_preset!r}"
    else:
        notes["synthetic_preset"] = "not used: data is given"
    for phase in ("teacher", "student"):
        if getattr(config, f"{phase}_epochs") is None:
            notes[f"{phase}_epochs"] = f"{config.epochs(phase)}" + (
                "" if on_data else " on the embedded data, 30 with data")
    if config.max_train_windows is None:
        notes["max_train_windows"] = ("all" if on_data else
                                      f"{config.train_window_cap()} on the embedded data")
    if config.embedding_dim == 0:
        notes["embedding_dim"] = "the backbone width / 4"
    if len(config.data) != 1:
        notes["individual_fraction"] = "not used: it splits the users of one events file"
        if config.individual_users is not None:
            notes["individual_users"] = notes["individual_fraction"]
    elif config.individual_users is not None:
        notes["individual_fraction"] = "not used: individual_users is set"
    return notes


def preset(name: str) -> PopulationConfig:
    """The preset's config (``demo``, ``paper``, ``tiny``)."""
    return resolve_config(PopulationConfig, PRESETS, name)


def resolve(preset_name="demo", config_file=None, overrides=None) -> PopulationConfig:
    """preset defaults < config file < ``overrides`` (command line; None values ignored)."""
    return resolve_config(PopulationConfig, PRESETS, preset_name, config_file, overrides)

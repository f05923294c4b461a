"""Options of the individual-level stage (PITuning Section 3.3 and the Section 4 baselines)."""

from __future__ import annotations

import dataclasses
import math
import re

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.limits import (
    BATCH_SIZE_MAX,
    COUNT_MAX,
    EPOCHS_MAX,
    HISTORY_MAX,
    WIDTH_MAX,
    check_learning_rate,
    check_number,
    check_numbers,
    check_seed,
)
from pitune_tf.individual.methods import DEFAULT_METHODS, METHODS

UNLEARN_SELECT = ("after_finetune", "none")
HOLDOUTS = ("test", "validation")


@dataclasses.dataclass
class IndividualConfig:
    """Per-user tuning options. The defaults are our best settings; each departure from the
    paper is a key of its own, turned off by ``PRESETS["paper"]`` (PITuning Sec. 3.3, 4.1.4,
    Table 4, Algorithm 1; ``trainers.individual --preset paper``)."""

    methods: tuple = DEFAULT_METHODS  # pitune_tf.individual.methods
    # --- data
    fractions: tuple = (0.6, 0.1, 0.3)  # per-user chronological train / val / test (Mobile dataset)
    split_days: tuple | None = None  # (train, val, test) days per user (the Honor split, 7 1 4)
    #   instead of `fractions`
    train_days: int | None = None  # with split_days: only the last K training days (Fig. 9)
    min_history: int = 0  # a window needs this many real history events (0: the run's min_history)
    holdout: str = "test"  # "validation": the test windows are never read; the validation
    #   windows are scored as the test set and the newest training windows (as many) serve as
    #   validation: how settings (e.g. `refit`) are chosen without test rows
    # --- fine-tuning (3.3.2)
    learning_rate: float = 3e-4  # Adam (the paper's 0.01, PRESETS["paper"], overshoots on a
    #   few hundred windows; 3e-4 with 20 epochs and patience 3 beat 1e-3 with 10 and 2 on the
    #   demo users' pooled validation cross-entropy, 1.4727 vs 1.4831)
    batch_size: int = 32
    max_epochs: int = 20  # early stopping on the user's validation windows
    # fine-tuning stops after patience + 1 epochs in a row without a better validation
    # cross-entropy (the population stage and UAF stop after patience epochs)
    patience: int = 3
    refit: bool = False  # (not in the paper) after early stopping kept epoch k >= 1 on the
    #   validation windows (and the prior shift's beta was chosen there), retrain from the same
    #   start on training + validation windows for k epochs (the tuned model's P_in then counts
    #   them too). Was on by default (chosen with holdout="validation" on the 30 demo users:
    #   finetune's Prec_w 0.4720 -> 0.4760); back to the paper's off by the ledger's rule: it
    #   lowered pituning's Rec_m on the demo data (-0.039 from the paper profile) and had no
    #   measurable effect on Foursquare TKY (docs/reproducing.md#the-ledger-of-deviations)
    # --- adaptive unlearning (3.3.1)
    static_threshold: float | None = None  # Eq. 8's epsilon; None: 0.2 / N_I (see manage_intents)
    lam: float = 1.0  # lambda of Eq. 11 (Table 4)
    unlearn_steps: int = 10  # fixed number of Eq. 11 optimizer steps (bounds the negative term)
    unlearn_learning_rate: float = 1e-3  # Adam (the paper's 0.01 for both stages: PRESETS["paper"]).
    #   The first ledger measured 0.01 only where the validation choice of the start
    #   (unlearn_select="after_finetune") dropped its unlearning for every demo user; with the
    #   unlearned start always kept (Algorithm 1), 0.01 puts pituning below the shipped model
    #   on the demo data, seed 0: Prec_w 0.4039 against none 0.4104 (1e-3: 0.4631)
    unlearn_gate: bool = False  # keep the first k of the unlearning steps, k (0 = the shipped
    #   weights) chosen by the user's validation cross-entropy after each step
    min_log_prob: float = math.log(1e-3)  # floor on log q in Eq. 11's forgotten term
    train_part: str = "all"  # what fine-tuning trains (not in the paper, which trains all):
    #   "head", "top1", ... (the student's top blocks: pitune_tf.models.train_parts), "all";
    #   on the phone the train_<part> signatures, whose backward pass stops below the part;
    #   "auto": per user, before training, `train_part_rule` chooses the part and whether
    #   pituning's unlearning runs (pitune_tf.individual.train_part_rule)
    train_part_rule: str | None = None  # with train_part="auto": the rule's JSON file
    #   (trainers.experiments pituning_train_part writes one)
    unlearn_select: str = "none"  # "none": fine-tuning starts from the unlearned weights
    #   whatever it gives (Algorithm 1: one fine-tuning per user); "after_finetune" (not in the
    #   paper; was the default): fine-tune from the unlearned weights and from the shipped
    #   ones, keep the one with the lower validation cross-entropy (twice the device compute,
    #   no measurable effect on the demo data or TKY: back to the paper's by the ledger's rule)
    # --- never below the shipped model (not in the paper)
    shipped_guard: bool = False  # a tuned model (finetune, pituning, focal, oversample, mpda)
    #   replaces the shipped one only where the user's validation windows show it better:
    #   its per-window log-loss lower than the shipped model's by more than
    #   `shipped_guard_z` standard errors of the paired difference; else the user keeps the
    #   shipped model (no validation windows: the shipped model)
    shipped_guard_z: float = 1.0  # the margin of that paired test, in standard errors
    shrink_to_shipped: bool = False  # a tuned model's weights become
    #   alpha * tuned + (1 - alpha) * shipped, alpha of `shrink_alphas` with the lowest
    #   validation log-loss (0: the shipped model, 1: the tuned one; WiSE-FT's interpolation,
    #   Wortsman et al. 2022, chosen per user); one set of weights on the phone, as tuned
    shrink_alphas: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
    repeat_mix: bool = False  # a tuned model's probabilities become (1 - w) * model + w * the
    #   last event's intent (the trivial baseline), w of `repeat_mix_weights` with the lowest
    #   validation log-loss per user (not in the paper; the population model's repeat term,
    #   per user)
    repeat_mix_weights: tuple = (0.0, 0.1, 0.25, 0.5, 0.75)
    # --- prior correction (no backpropagation): logits + beta * (log P_in - log P_pop)
    prior_pseudo_count: float = 20.0  # P_in = (user's training counts + k * P_pop) / (n + k)
    prior_betas: tuple = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)  # beta chosen on the user's val CE
    prior_default_beta: float = 0.5  # beta for a user without validation windows
    prior_after_tuning: bool = False  # (not in the paper) also shift the tuned models
    #   (finetune, pituning, focal, oversample, mpda) by beta * (log P_in - log P_pop), beta
    #   chosen on validation (beta 0 included). Was on by default (pooled validation
    #   cross-entropy of finetune on the demo users 1.4727 -> 1.4697); no measurable effect on
    #   the demo data or TKY: back to the paper's by the ledger's rule
    # --- baselines
    focal_gamma: float = 2.0  # focal loss gamma (Figure 8)
    oversample_ratio: float = 0.5  # rare intents oversampled to this fraction of the top count
    lgbm_iterations: int = 2000  # Table 5 num_iterations
    lgbm_early_stopping: int = 75  # Table 5 early_stopping_round
    fp_users: int = 3  # users on which FP / PP (teacher tuned per user) run: they are expensive
    fp_learning_rate: float = 1e-4  # Adam for FP / PP
    mpda_neighbours: int = 5  # MPDA: population windows retrieved per local training window
    mpda_ratio: float = 1.0  # MPDA: at most this many retrieved windows per local training window
    # --- Table 2's other baselines (pitune_tf.individual.baselines)
    # the student's pretraining budget (PITuning Table 2 compared fairly): every population
    # training window, at most this many epochs (meta-learning: passes) with early stopping on
    # the population validation windows' cross-entropy, the best epoch kept, at the population
    # student's learning rate
    baseline_pretrain_windows: int = 0  # at most this many of those windows (0 = all)
    baseline_pretrain_epochs: int = 10  # most epochs (or, meta-learning: passes over the windows)
    baseline_pretrain_patience: int = 2  # epochs without a lower validation loss before stopping
    #   (0: never; the population stage's patience)
    baseline_pretrain_learning_rate: float | None = None  # Adam's rate (None: the run's
    #   student_learning_rate; meta-learning keeps its own inner and outer steps)
    baseline_width: int = 32  # width of their own networks (EODRec, MetaBert4Rec, CLOVER)
    lora_rank: int = 4  # LSAT / TallRec: rank r of each LoRA adapter
    lora_alpha: float = 8.0  # LSAT / TallRec: the adapter's update is scaled by alpha / r
    lsat_short_share: float = 0.3  # LSAT: the short-term adapter's share of the newest training windows
    eodrec_codebooks: int = 4  # EODRec: M codewords per event
    eodrec_codebook_size: int = 16  # EODRec: K vectors per codebook
    meta_inner_steps: int = 3  # MetaBert4Rec / CLOVER: inner SGD steps per task (Reptile)
    meta_inner_learning_rate: float = 0.05  # ... their SGD rate
    meta_step_size: float = 0.5  # ... Reptile's outer step epsilon (annealed linearly to 0)
    clover_adversary_weight: float = 0.5  # CLOVER: weight of the user-group adversary's loss
    prompt_backbone: str = "random:2x64"  # TallRec / P5 / InstructRec: random:<layers>x<width> GPT2
    # --- evaluation
    n_rare: int = 3  # Figure 8: recall of the population's rarest intents
    seed: int = 0

    def __post_init__(self):
        self.validate()

    def validate(self) -> IndividualConfig:
        self.methods = tuple(self.methods)
        self.fractions = tuple(self.fractions)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise UserInputError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
        # every number in its range (pitune_tf.common.limits), lists element by element
        check_numbers("fractions", self.fractions, 0.0, 1.0, length=3)
        if not math.isclose(sum(self.fractions), 1.0, abs_tol=1e-6):
            raise UserInputError(f"fractions must be 3 non-negative numbers summing to 1, got {self.fractions}")
        check_seed("seed", self.seed)
        check_number("shipped_guard_z", self.shipped_guard_z, 0.0, 10.0)
        check_number("batch_size", self.batch_size, 1, BATCH_SIZE_MAX, whole=True)
        check_number("min_history", self.min_history, 0, HISTORY_MAX, whole=True)
        for name in ("max_epochs", "lgbm_iterations"):
            check_number(name, getattr(self, name), 1, EPOCHS_MAX, whole=True)
        for name in ("unlearn_steps", "patience", "lgbm_early_stopping", "baseline_pretrain_epochs",
                     "baseline_pretrain_patience", "meta_inner_steps"):
            check_number(name, getattr(self, name), 0, EPOCHS_MAX, whole=True)
        for name in ("baseline_width", "lora_rank", "eodrec_codebooks", "eodrec_codebook_size",
                     "mpda_neighbours", "n_rare"):
            check_number(name, getattr(self, name), 1, WIDTH_MAX, whole=True)
        check_number("baseline_pretrain_windows", self.baseline_pretrain_windows, 0, COUNT_MAX,
                     whole=True)
        if self.baseline_pretrain_learning_rate is not None:
            check_learning_rate("baseline_pretrain_learning_rate", self.baseline_pretrain_learning_rate)
        check_number("fp_users", self.fp_users, 0, COUNT_MAX, whole=True)
        for name in ("learning_rate", "unlearn_learning_rate", "fp_learning_rate",
                     "meta_inner_learning_rate"):
            check_learning_rate(name, getattr(self, name))
        check_number("meta_step_size", self.meta_step_size, 0.0, 1.0, low_open=True)
        for name in ("mpda_ratio", "lora_alpha", "clover_adversary_weight"):
            check_number(name, getattr(self, name), 0.0, low_open=True)
        for name in ("lam", "focal_gamma", "prior_pseudo_count", "prior_default_beta"):
            check_number(name, getattr(self, name), 0.0)
        check_numbers("prior_betas", self.prior_betas, 0.0)
        check_numbers("shrink_alphas", self.shrink_alphas, 0.0, 1.0)
        check_numbers("repeat_mix_weights", self.repeat_mix_weights, 0.0, 1.0)
        check_number("oversample_ratio", self.oversample_ratio, 0.0, 1.0, low_open=True)
        check_number("lsat_short_share", self.lsat_short_share, 0.0, 1.0, low_open=True)
        check_number("static_threshold", self.static_threshold, 0.0, 1.0, high_open=True,
                     allow_none=True)
        check_number("min_log_prob", self.min_log_prob, -1e4, 0.0, high_open=True)
        if self.split_days is not None:
            check_numbers("split_days", self.split_days, 0, 36_500, whole=True, length=3)
            self.split_days = tuple(self.split_days)
        if self.train_days is not None and (
                self.split_days is None or not 1 <= self.train_days <= self.split_days[0]):
            raise UserInputError("train_days needs split_days and 1 <= train_days <= the "
                                 f"training days, got {self.train_days}")
        self.prior_betas = tuple(float(b) for b in self.prior_betas)
        self.shrink_alphas = tuple(float(a) for a in self.shrink_alphas)
        self.repeat_mix_weights = tuple(float(w) for w in self.repeat_mix_weights)
        if self.holdout not in HOLDOUTS:
            raise UserInputError(f"holdout must be one of {list(HOLDOUTS)}, got {self.holdout!r}")
        if self.train_part not in ("all", "auto") and not re.fullmatch(r"head|top[1-9][0-9]*",
                                                                       str(self.train_part)):
            raise UserInputError(f"train_part must be head, top1, top2, ..., all or auto, got "
                                 f"{self.train_part!r}")
        if (self.train_part == "auto") != (self.train_part_rule is not None):
            raise UserInputError("train_part auto needs train_part_rule (a rule's JSON file), and "
                                 "train_part_rule is only read with train_part auto")
        if self.unlearn_select not in UNLEARN_SELECT:
            raise UserInputError(f"unlearn_select must be one of {list(UNLEARN_SELECT)}, "
                                 f"got {self.unlearn_select!r}")
        return self


# What PITuning states about the individual stage (Sec. 3.3, 4.1.4, Table 4, Algorithm 1),
# each of our deviations turned off; `trainers.individual --preset paper`, and the individual
# half of PITuning Fig. 4's "Algorithm 1 as written" row. The models and their sizes come
# from the population run; what the paper leaves open: docs/reproducing.md#the-paper-profile.
PAPER_CHOICES = {
    "learning_rate": 0.01,  # Sec. 4.1.4: Adam, 0.01 in both stages
    "unlearn_learning_rate": 0.01,  # the unlearning of Eq. 11 is part of the individual stage
    "lam": 1.0,  # lambda of Eq. 11, Table 4
    "unlearn_gate": False,  # Algorithm 1: unlearn whenever F is not empty ...
    "unlearn_select": "none",  # ... then fine-tune from the unlearned weights
    "prior_after_tuning": False,  # the fine-tuned model's output is the prediction
    "refit": False,  # fine-tuned on the training windows only
    "shipped_guard": False,  # the tuned model is the prediction, whatever validation says
    "shrink_to_shipped": False,  # ... with its own weights
    "repeat_mix": False,
    "holdout": "test",
}
# Our options that are off in both profiles (not in the paper, and not our defaults: the
# ledger's rule sent most of them back), each with its "on" value: `pituning_ledger
# --options` measures each switched on from both profiles, so that one that comes to help
# (on new data, or with other defaults: options interact) shows.
OPTIONS = {"prior_after_tuning": True, "refit": True, "unlearn_select": "after_finetune",
           "shipped_guard": True, "shrink_to_shipped": True, "repeat_mix": True}
PRESETS = {
    "default": {},  # our best settings (the dataclass defaults)
    "paper": PAPER_CHOICES,
}
# one line per preset, as --help lists them
PRESET_NOTES = {
    "default": "our best settings: Adam 3e-4, the prior shift after tuning, the refit on "
               "training + validation, unlearning kept only where validation prefers it",
    "paper": "PITuning Sec. 3.3 / Algorithm 1 as written: Adam 0.01, no prior shift, no refit, "
             "fine-tuning always from the unlearned weights",
}

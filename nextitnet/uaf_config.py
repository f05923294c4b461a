"""The configuration of a UAF run (``python -m trainers.uaf``) and its presets."""

from __future__ import annotations

from dataclasses import dataclass

from pitune_tf.common import limits
from pitune_tf.common.config import resolve_config
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.settings_summary import format_settings, format_summary, setting_sources

TEMPERATURE_RANGE = (0.01, 1000.0)  # Gumbel-softmax tau of UAF Eq. 10 (ours: 10)
KERNEL_SIZE_MAX = 64  # NextItNet's convolution width (the paper: 3)
MAX_LEN_MAX = 4096  # source sequence length L and each dilation (the paper: 50)
CUTOFF_MAX = 1_000_000  # top-k cut-offs and sampled negatives


@dataclass
class UAFConfig:
    """Run configuration, resolved by ``pitune_tf.common.config.resolve_config``: a row of
    ``PRESETS``, then a JSON config file, then the command line; ``__post_init__`` checks
    every resolved value."""

    embedding_dim: int = 32  # k (128 in the paper)
    block_dilations: tuple = (1, 4, 1, 4)  # first-conv dilation per block; paper: (1, 4) * 4
    kernel_size: int = 3
    max_len: int = 20  # source sequence length L (50 in the paper)
    batch_size: int = 128  # 256 in the paper
    learning_rate: float = 1e-3  # Adam; 1e-4 in the paper
    pretrain_epochs: int = 30  # most pretraining epochs (early stopping on held-out windows)
    pretrain_val_share: float = 0.05  # share of source windows held out for pretraining's early stop
    epochs: int = 30  # most fine-tuning epochs (early stopping; the best validation epoch is kept)
    patience: int = 3  # epochs without a better validation score before stopping (0: never)
    policy: str = "nextitnet"  # policy network: nextitnet (2 blocks, dilations 1,2,4,8) or gru
    policy_dim: int = 32
    policy_dilations: tuple = (1, 4)
    temperature: float = 10.0  # Gumbel-softmax tau (UAF Eq. 10)
    gamma: float = 10.0  # UAF Eq. 13 penalty of a wrong recommendation (1 in the paper; with 1
    #   the usage term decides and UAF-RL fine-tunes no block on ML-1M, docs/measurements.md)
    beta: float = 1.0  # UAF Eq. 15 weight of the RL loss
    reward_top_k: int = 5  # "correct" = positive in the top-k (UAF Eq. 13)
    reward_protocol: str = "sampled"  # top-k among 1 + n_negatives sampled items, or "full" ranking
    reward_form: str = "paper"  # paper (UAF Eq. 13) or authors (1 - gamma (1 - share)^2 if correct)
    rl_warmup_epochs: int = 0  # epochs of main loss only before the RL term (not in the paper;
    #   was 1 with rl_warmup_gates "ones", back to the paper's by the ledger's rule: no measurable
    #   effect in either direction on the synthetic data or ML-1M, 3 seeds each)
    rl_warmup_gates: str = "greedy"  # gates of the warm-up: greedy, sampled or ones (every F'_l
    #   fine-tuned, so each is trained before the policy compares it with F_l)
    entropy_weight: float = 0.0  # UAF-RL entropy bonus on p(pi) (BlockDrop's; none in UAF; was
    #   0.3, back to the paper's by the ledger's rule: -0.131 MRR@5 from the paper profile on the
    #   synthetic data, no measurable effect from the defaults)
    adapter_dim: int = 8  # PeterRec adapter bottleneck
    tune_embedding: bool = True  # UAF modes fine-tune the item embedding (F_l stay frozen)
    representation: str = "last"  # h_n of UAF Eq. 7: last real position (paper) or mean (authors' code)
    head_bias_init: str = "popularity"  # b_n of UAF Eq. 7 at the start of fine-tuning:
    #   popularity (log(1 + training count) of each target item, W_n = 0: the model starts at
    #   MostPop; measured on ML-1M, docs/measurements.md) or zeros (the paper's random head)
    loss: str = "softmax"  # softmax over every target item (measured best on ML-1M), bpr (the
    #   paper's UAF Eq. 8) or bce (the official code's option)
    train_fraction: float = 1.0  # share of the training split used (Table 5: 0.1)
    n_negatives: int = 99  # sampled negatives for MRR@k / HR@k / NDCG@k
    topk: tuple = (5, 10, 20)  # cut-offs k of every metric; MRR@topk[0] selects the best epoch
    mask_seen: bool = True  # full ranking: mask the user's training target items (not the positive)
    fractions: tuple = (0.8, 0.05, 0.15)  # train / val / test
    synthetic: str = "demo"  # synthetic data preset when no data is given
    max_users: int | None = None  # MovieLens: random user subset for quick runs
    seed: int = 0
    pretrain_loss: str = "auto"  # full (exact CE, UAF Eq. 5; the paper preset), sampled, or
    #   auto (sampled above 100k items)
    pretrain_negatives: int = 1024  # sampled softmax: negatives shared by a batch
    pretrain_jit: bool = False  # XLA-compile the network and the softmax's element-wise part
    #   (NextItNetPretrainer(jit=True), what bench/nextitnet.py measures: 1.39x on 2 CPU threads;
    #   off by default: each new batch shape compiles once)
    pretrain_sampler: str = "log_uniform"  # sampled softmax: log_uniform (ids by frequency) or uniform

    def __post_init__(self):
        if self.policy not in ("nextitnet", "gru"):
            raise UserInputError(f"policy must be nextitnet or gru, got {self.policy!r}")
        if self.loss not in ("bpr", "bce", "softmax"):
            raise UserInputError(f"loss must be bpr, bce or softmax, got {self.loss!r}")
        if self.reward_protocol not in ("sampled", "full"):
            raise UserInputError(f"reward_protocol must be sampled or full, got {self.reward_protocol!r}")
        if self.reward_form not in ("paper", "authors"):
            raise UserInputError(f"reward_form must be paper or authors, got {self.reward_form!r}")
        if self.head_bias_init not in ("zeros", "popularity"):
            raise UserInputError(f"head_bias_init must be zeros or popularity, got {self.head_bias_init!r}")
        if self.rl_warmup_gates not in ("greedy", "sampled", "ones"):
            raise UserInputError(f"rl_warmup_gates must be greedy, sampled or ones, got {self.rl_warmup_gates!r}")
        if self.representation not in ("last", "mean"):
            raise UserInputError(f"representation must be last or mean, got {self.representation!r}")
        self.check_ranges()

    def check_ranges(self) -> None:
        """Every number in its range (:mod:`pitune_tf.common.limits`), lists element by
        element: a UserInputError naming the key and the range."""
        limits.check_learning_rate("learning_rate", self.learning_rate)
        limits.check_seed("seed", self.seed)
        limits.check_number("batch_size", self.batch_size, 1, limits.BATCH_SIZE_MAX, whole=True)
        for name in ("embedding_dim", "policy_dim", "adapter_dim"):
            limits.check_number(name, getattr(self, name), 1, limits.WIDTH_MAX, whole=True)
        limits.check_number("kernel_size", self.kernel_size, 1, KERNEL_SIZE_MAX, whole=True)
        limits.check_number("max_len", self.max_len, 1, MAX_LEN_MAX, whole=True)
        limits.check_numbers("block_dilations", self.block_dilations, 1, MAX_LEN_MAX, whole=True)
        limits.check_numbers("policy_dilations", self.policy_dilations, 1, MAX_LEN_MAX, whole=True)
        if len(self.block_dilations) > limits.LAYERS_MAX:
            raise UserInputError(f"block_dilations: at most {limits.LAYERS_MAX} blocks, got "
                                 f"{len(self.block_dilations)}")
        limits.check_number("epochs", self.epochs, 1, limits.EPOCHS_MAX, whole=True)
        for name in ("pretrain_epochs", "patience", "rl_warmup_epochs"):
            limits.check_number(name, getattr(self, name), 0, limits.EPOCHS_MAX, whole=True)
        limits.check_number("pretrain_val_share", self.pretrain_val_share, 0.0, 1.0, high_open=True)
        limits.check_number("train_fraction", self.train_fraction, 0.0, 1.0, low_open=True)
        limits.check_numbers("fractions", self.fractions, 0.0, 1.0, length=3)
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise UserInputError(f"fractions must be 3 non-negative numbers summing to 1, got "
                                 f"{list(self.fractions)}")
        limits.check_number("temperature", self.temperature, TEMPERATURE_RANGE[0], TEMPERATURE_RANGE[1])
        for name in ("gamma", "beta", "entropy_weight"):
            limits.check_number(name, getattr(self, name), 0.0)
        limits.check_numbers("topk", self.topk, 1, CUTOFF_MAX, whole=True)
        for name in ("reward_top_k", "n_negatives", "pretrain_negatives"):
            limits.check_number(name, getattr(self, name), 1, CUTOFF_MAX, whole=True)
        limits.check_number("max_users", self.max_users, 1, limits.COUNT_MAX, whole=True, allow_none=True)

    def check_memory(self, n_items, n_outputs) -> None:
        """A UserInputError when a run on ``n_items`` source items and ``n_outputs`` target
        outputs cannot train in this machine's memory (a rough lower bound: float32 item
        embedding and output head, every block's two convolutions twice (F and F'), their
        gradients and Adam's moments, and one batch's activations and output logits);
        checked once the data is read, before the run directory is written."""
        dim, blocks = self.embedding_dim, len(self.block_dilations)
        weights = (n_items + n_outputs) * dim + 2 * blocks * 2 * self.kernel_size * dim * dim
        activations = self.batch_size * (self.max_len * dim * blocks * 8 + n_outputs)
        limits.check_fits_in_memory(f"UAF (embedding_dim {dim}, {blocks} blocks, {n_items} items, "
                             f"batch {self.batch_size}, max_len {self.max_len})",
                             4 * (4 * weights + activations),
                             "lower embedding_dim, max_len or batch_size")


# What UAF states about its models and their training (Sec. 3, 4.3), apart from sizes: each of
# our deviations turned off. The `paper` preset is these at the paper's sizes; `uaf_ledger`
# switches each deviation on from here and off from the defaults (nextitnet/ledger.py).
PAPER_CHOICES = dict(
    learning_rate=1e-4,  # Sec. 4.3: Adam, 1e-4
    pretrain_loss="full",  # Eq. 5: the exact softmax over the source items
    loss="bpr",  # Eq. 8's ranking loss
    head_bias_init="zeros",  # a freshly initialized target head
    representation="last",  # h_n of Eq. 7
    gamma=1.0,  # Eq. 13's penalty
    beta=1.0,  # Eq. 15
    reward_form="paper",  # Eq. 13
    entropy_weight=0.0,  # no entropy bonus
    rl_warmup_epochs=0,  # the RL term from the first epoch ...
    rl_warmup_gates="greedy",  # ... (the warm-up's gates: no warm-up)
)

PRESETS = {
    "demo": {},
    "tiny": dict(embedding_dim=8, block_dilations=(1, 2), max_len=8, batch_size=32, pretrain_epochs=1,
                 epochs=1, policy_dim=8, policy_dilations=(1,), adapter_dim=2, synthetic="tiny"),
    # UAF as written (Sec. 3, 4.3): every value the paper states, each of our deviations off
    # (softmax loss, popularity head, gamma 10, lr 1e-3, sampled pretraining); what it leaves
    # open (epochs, early stopping, policy width, ...): docs/reproducing.md#the-paper-profile
    "paper": dict(embedding_dim=128, block_dilations=(1, 4) * 4, kernel_size=3, max_len=50,
                  batch_size=256, fractions=(0.8, 0.05, 0.15), pretrain_epochs=20, epochs=20,
                  policy="nextitnet", policy_dilations=(1, 4), policy_dim=64, adapter_dim=16,
                  temperature=10.0, train_fraction=1.0, **PAPER_CHOICES),
}
# one line per preset, as --help lists them
PRESET_NOTES = {
    "demo": "the defaults: k=32, 4 blocks, L=20, <= 30 epochs a stage (early stopping); synthetic 'demo'",
    "tiny": "a smoke test in seconds: k=8, 2 blocks, L=8, 1 epoch a stage; synthetic 'tiny'",
    "paper": "UAF as written (4.3): k=128, 8 blocks, L=50, lr 1e-4, 20 epochs, BPR loss, gamma 1, "
             "no RL warm-up",
}
# Our departures from the paper that have a flag of their own (``--loss`` is trainers.uaf's),
# each off in the paper preset (docs/reproducing.md#the-paper-profile).
DEPARTURE_FLAGS = ("head_bias_init", "gamma", "entropy_weight", "rl_warmup_epochs", "pretrain_loss")


def add_departure_arguments(parser) -> None:
    """The flags of :data:`DEPARTURE_FLAGS` (``trainers.uaf``)."""
    parser.add_argument("--head-bias-init", choices=("popularity", "zeros"),
                        help="the target head's start: popularity (default, MostPop's ranking) "
                             "or zeros (the paper's random head)")
    parser.add_argument("--gamma", type=float,
                        help="UAF-RL's penalty of a wrong recommendation, UAF Eq. 13 (default 10; "
                             "the paper's 1)")
    parser.add_argument("--entropy-weight", type=float,
                        help="UAF-RL's entropy bonus (default 0, the paper's; BlockDrop uses one)")
    parser.add_argument("--rl-warmup-epochs", type=int,
                        help="UAF-RL: epochs of the main loss alone first (default 0, the "
                             "paper's; was 1 until the ledger read no effect)")
    parser.add_argument("--pretrain-loss", choices=("auto", "full", "sampled"),
                        help="pretraining softmax: full (UAF Eq. 5, the paper preset), sampled, "
                             "or auto (default: sampled above 100k items)")


# the settings a run's first lines show (with every setting a config file or flag changed)
SUMMARY_FIELDS = ("embedding_dim", "block_dilations", "max_len", "batch_size", "learning_rate",
                  "pretrain_epochs", "epochs", "patience", "loss", "policy", "train_fraction", "seed")


def resolve_uaf_config(preset="demo", config_file=None, overrides=None) -> tuple[UAFConfig, dict]:
    """(the UAFConfig of ``preset`` < ``config_file`` < ``overrides`` (the flags; None
    values not given), {field: where it was set}) for :func:`settings_text` and
    :func:`settings_line`."""
    config = resolve_config(UAFConfig, PRESETS, preset, config_file, overrides)
    return config, setting_sources(PRESETS, preset, config_file, overrides)


def settings_text(config, sources, preset, config_file=None) -> str:
    """What ``--print-config`` prints: the precedence, then one ``key = value  # source``
    line per setting."""
    order = f"preset {preset}" + (f" < --config {config_file}" if config_file else "") + " < command line"
    return f"# python -m trainers.uaf: {order}\n" + format_settings(config, notes=sources)


def settings_line(config, sources, preset) -> str:
    """The one line on the settings a run starts with: ``SUMMARY_FIELDS`` and every setting
    a config file or flag changed."""
    changed = {k: v for k, v in sources.items() if not v.startswith("preset ")}
    return (f"settings (preset {preset}; all of them: --print-config): "
            + format_summary(config, SUMMARY_FIELDS, changed))

"""The names of UAF's run modes, apart from the networks (no TensorFlow import), so that
``python -m trainers.uaf --help`` lists them without loading TensorFlow."""

POLICY_MODES = ("hard", "soft", "rl")  # UAF's policy network (UAF Eq. 9-15)
UAF_MODES = POLICY_MODES + ("random",)
BASELINE_MODES = (
    "finetune-zero",
    "finetune-cls",
    "finetune-last1",
    "finetune-last2",
    "finetune-all",
    "mtl",
    "peterrec",
)
MODES = UAF_MODES + BASELINE_MODES  # the fine-tuning modes of UAFModel
PRETRAINED_MODES = tuple(m for m in MODES if m not in ("finetune-zero", "mtl"))
SCORE_MODES = ("mostpop", "random-items")  # computed without training, before the trained modes
RUN_MODES = SCORE_MODES + MODES  # what --mode all runs, in this order
ORACLE = "oracle"  # the data's own target distribution per user (synthetic data: known)


def with_baselines(modes, oracle=False) -> list[str]:
    """``modes`` with the baselines of ``SCORE_MODES`` first (each mode once, in the order
    given): what a run scores, so that every table carries MostPop and Random; and, with
    ``oracle`` (data whose process is known), :data:`ORACLE` last, the ceiling."""
    ordered = list(SCORE_MODES) + [m for m in modes if m not in SCORE_MODES and m != ORACLE]
    return list(dict.fromkeys(ordered)) + ([ORACLE] if oracle else [])

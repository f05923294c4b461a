"""The configuration of a UAF run (``python -m trainers.uaf``) and its presets."""

from __future__ import annotations

from dataclasses import dataclass

from pitune_tf.common.errors import UserInputError


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
    pretrain_epochs: int = 10
    epochs: int = 6  # fine-tuning epochs (best validation epoch is kept)
    policy: str = "nextitnet"  # policy network: nextitnet (2 blocks, dilations 1,2,4,8) or gru
    policy_dim: int = 32
    policy_dilations: tuple = (1, 4)
    temperature: float = 10.0  # Gumbel-softmax tau (UAF Eq. 10)
    gamma: float = 1.0  # UAF Eq. 13 penalty
    beta: float = 1.0  # UAF Eq. 15 weight of the RL loss
    reward_top_k: int = 5  # "correct" = positive in the top-k target items (UAF Eq. 13)
    adapter_dim: int = 8  # PeterRec adapter bottleneck
    tune_embedding: bool = True  # UAF modes fine-tune the item embedding (F_l stay frozen)
    loss: str = "bpr"  # bpr (UAF Eq. 8) or bce (the official code's option)
    train_fraction: float = 1.0  # share of the training split used (Table 5: 0.1)
    n_negatives: int = 99  # sampled negatives for MRR@k / HR@k
    fractions: tuple = (0.8, 0.05, 0.15)  # train / val / test
    synthetic: str = "demo"  # synthetic data preset when no data is given
    max_users: int | None = None  # MovieLens: random user subset for quick runs
    seed: int = 0
    pretrain_loss: str = "auto"  # full (exact CE), sampled, or auto (sampled above 100k items)
    pretrain_negatives: int = 1024  # sampled softmax: negatives shared by a batch
    pretrain_sampler: str = "log_uniform"  # sampled softmax: log_uniform (ids by frequency) or uniform

    def __post_init__(self):
        if self.policy not in ("nextitnet", "gru"):
            raise UserInputError(f"policy must be nextitnet or gru, got {self.policy!r}")
        if self.loss not in ("bpr", "bce"):
            raise UserInputError(f"loss must be bpr or bce, got {self.loss!r}")
        if self.epochs < 1 or self.pretrain_epochs < 0:
            raise UserInputError("epochs must be >= 1 and pretrain_epochs >= 0")
        if self.batch_size < 1:
            raise UserInputError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise UserInputError(f"train_fraction must be in (0, 1], got {self.train_fraction}")


PRESETS = {
    "demo": {},
    "tiny": dict(embedding_dim=8, block_dilations=(1, 2), max_len=8, batch_size=32, pretrain_epochs=1,
                 epochs=1, policy_dim=8, policy_dilations=(1,), adapter_dim=2, synthetic="tiny"),
    "paper": dict(embedding_dim=128, block_dilations=(1, 4) * 4, max_len=50, batch_size=256,
                  learning_rate=1e-4, pretrain_epochs=20, epochs=20, policy_dim=64, adapter_dim=16),
}

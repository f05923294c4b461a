"""Synthetic same-user cross-domain data: the embedded default of ``trainers.uaf``.

Each user has a main and a side taste among ``n_clusters`` clusters. The source sequence
is a walk over source items that mostly steps to the next item of the current cluster's
block (a sequential pattern NextItNet can learn), sometimes jumps within the main taste and
sometimes to the side taste. Target items are few (cold users): mostly popular items of
the main taste's target block, sometimes of a block picked by the pair (main, side), so
that what transfers from the source differs between users. Gender and age bucket follow
the main taste with label noise (profile prediction, 5.4).

How related a user's target behaviour is to their source behaviour is a knob: with
probability r_u a target item follows the source tastes as above, else its block is drawn
uniformly (nothing the source tells); r_u is ``p_target_related`` for every user, or, with
``related_spread`` s > 0, drawn per user uniformly in [p - s, p + s] (clipped to [0, 1]): the
heterogeneity a per-user fine-tuning policy is for. ``max_targets`` sets the target data per
user. The data carries each user's exact target distribution (``target_oracle``), the
ceiling every table can set beside the methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nextitnet.data.cross_domain_data import CrossDomainData
from pitune_tf.common.errors import UserInputError


@dataclass
class CrossDomainSyntheticConfig:
    """Parameters of :func:`generate_cross_domain` (one row of ``PRESETS`` plus overrides)."""

    n_users: int = 2000  # users with source and target data
    n_source_only_users: int = 2000  # extra source-domain users used only for pretraining
    n_source_items: int = 400
    n_target_items: int = 160  # > 100 so that 99 sampled negatives exist
    n_clusters: int = 8
    min_len: int = 15  # source sequence length range
    max_len: int = 40
    max_targets: int = 5  # target interactions per user: 1 .. max_targets (cold users)
    p_step: float = 0.6  # next source item = following item of the current block
    p_side: float = 0.15  # jump to the side taste
    p_target_side: float = 0.3  # target item from the (main, side) block
    p_target_related: float = 1.0  # r: share of target items that follow the source tastes
    related_spread: float = 0.0  # s: r_u uniform in [r - s, r + s] per user (0: every user r)
    label_noise: float = 0.1  # profile labels flipped to a random class


PRESETS = {
    "tiny": dict(n_users=120, n_source_only_users=60, n_source_items=60, n_target_items=110,
                 n_clusters=4, min_len=5, max_len=12),
    "demo": {},
    "large": dict(n_users=20000, n_source_only_users=20000, n_source_items=5000, n_target_items=1000,
                  n_clusters=32, min_len=30, max_len=100),
}


def generate_cross_domain(preset="demo", seed=0, **overrides) -> CrossDomainData:
    """Generates :class:`CrossDomainData` with ``gender`` and ``age`` profiles.

    Args:
        preset: str. "tiny" (tests), "demo" (default CLI) or "large".
        seed: int. Everything is a function of the seed.
        **overrides: fields of :class:`CrossDomainSyntheticConfig`.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; choose from {sorted(PRESETS)}")
    cfg = CrossDomainSyntheticConfig(**{**PRESETS[preset], **overrides})
    if not (0.0 <= cfg.p_target_related <= 1.0 and cfg.related_spread >= 0.0):
        raise UserInputError(f"synthetic: p_target_related must be in [0, 1] and related_spread "
                             f">= 0, got {cfg.p_target_related}, {cfg.related_spread}")
    rng = np.random.default_rng(seed)
    k = cfg.n_clusters
    s_block = cfg.n_source_items // k
    t_block = cfg.n_target_items // k
    zipf = 1.0 / np.arange(1, t_block + 1) ** 1.1
    zipf /= zipf.sum()

    def walk(main, side):
        length = int(rng.integers(cfg.min_len, cfg.max_len + 1))
        cluster, pos = main, int(rng.integers(s_block))
        seq = []
        for _ in range(length):
            seq.append(str(1 + cluster * s_block + pos))
            r = rng.random()
            if r < cfg.p_step:
                pos = (pos + 1) % s_block
            elif r < 1.0 - cfg.p_side:
                cluster, pos = main, int(rng.integers(s_block))
            else:
                cluster, pos = side, int(rng.integers(s_block))
        return seq

    users, source, targets, gender, age, pretrain, oracle = [], [], [], [], [], [], []
    for u in range(cfg.n_users + cfg.n_source_only_users):
        main, side = int(rng.integers(k)), int(rng.integers(k))
        seq = walk(main, side)
        pretrain.append(seq)
        if u >= cfg.n_users:
            continue
        related = cfg.p_target_related
        if cfg.related_spread > 0:  # (random draws only where a knob is set: the default
            #   data stays the same)
            related = float(np.clip(rng.uniform(related - cfg.related_spread,
                                                 related + cfg.related_spread), 0.0, 1.0))
        n_t = int(rng.integers(1, cfg.max_targets + 1))
        items = []
        for _ in range(n_t):
            if related < 1.0 and rng.random() >= related:
                block = int(rng.integers(k))  # unrelated to the source
            else:
                block = (main + side) % k if rng.random() < cfg.p_target_side else main
            items.append(str(1 + block * t_block + int(rng.choice(t_block, p=zipf))))
        blocks = np.full(k, (1.0 - related) / k)  # P(block) of this user's target items
        blocks[main] += related * (1.0 - cfg.p_target_side)
        blocks[(main + side) % k] += related * cfg.p_target_side
        oracle.append(np.outer(blocks, zipf).ravel())  # item 1 + b * t_block + j
        g = main % 2 if rng.random() >= cfg.label_noise else int(rng.integers(2))
        a = (main // 2) % 4 if rng.random() >= cfg.label_noise else int(rng.integers(4))
        users.append(f"u{u}")
        source.append(seq)
        targets.append(items)
        gender.append("FM"[g])
        age.append(f"age{a}")
    return CrossDomainData(
        pretrain, users, source, targets, {"gender": gender, "age": age}, name=f"synthetic:{preset}",
        target_oracle=np.asarray(oracle, np.float32),
        oracle_items=[str(1 + i) for i in range(k * t_block)],
    )

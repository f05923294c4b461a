"""Same-user cross-domain data at the token level, before encoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class CrossDomainData:
    """Source-domain sequences and target-domain interactions of the same users.

    Attributes:
        pretrain: source-domain item sequences (chronological) used for pretraining; may
            include users who have no target interactions.
        users: user names, one per fine-tuning row.
        source: per user, the source-domain item sequence (chronological).
        targets: per user, the target-domain items; each one is a fine-tuning instance
            (may be empty for users used only by a profile task).
        profiles: label name -> per-user label strings (aligned with ``users``), e.g.
            ``{"gender": [...], "age": [...]}`` for profile prediction (5.4).
        name: where the data came from.
        skipped_lines: malformed input lines skipped (ColdRec files with ``skip_bad``).
        target_genres: the genres of the target domain (MovieLens genre split).
        target_oracle: per user, the probability of each item of ``oracle_items`` being a
            target item ([users, items], the generating process; synthetic data only), or None.
        oracle_items: the target item names of ``target_oracle``'s columns.
    """

    pretrain: list[list[str]]
    users: list[str]
    source: list[list[str]]
    targets: list[list[str]]
    profiles: dict[str, list[str]] = field(default_factory=dict)
    name: str = "data"
    skipped_lines: int = 0
    target_genres: list[str] = field(default_factory=list)
    target_oracle: Any = None
    oracle_items: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not (len(self.users) == len(self.source) == len(self.targets)):
            raise ValueError("users, source and targets must have one entry per user")
        if self.target_oracle is not None and np.shape(self.target_oracle) != (
                len(self.users), len(self.oracle_items)):
            raise ValueError(f"target_oracle must be [users, oracle_items] = ({len(self.users)}, "
                             f"{len(self.oracle_items)}), got {np.shape(self.target_oracle)}")
        for label, values in self.profiles.items():
            if len(values) != len(self.users):
                raise ValueError(f"profile {label!r} has {len(values)} values for {len(self.users)} users")

    def summary(self) -> dict:
        """Counts in the spirit of the paper's Table 1."""
        return {
            "name": self.name,
            "pretrain_sequences": len(self.pretrain),
            "source_items": len({i for seq in self.pretrain for i in seq} | {i for s in self.source for i in s}),
            "users": len(self.users),
            "target_instances": sum(len(t) for t in self.targets),
            "target_items": len({i for t in self.targets for i in t}),
            "profiles": sorted(self.profiles),
            "skipped_lines": self.skipped_lines,
            "target_genres": self.target_genres,
        }

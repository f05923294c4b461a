"""ManageIntents (PITuning Eq. 8-10): which intents a user's model should forget.

Paper symbols -> arguments:
    P_out(I_i)  -> ``p_out[i]``: share of intent i among the teacher's predictions on
                   population data (``RUN/p_out.json``).
    epsilon     -> ``static_threshold`` (Eq. 8's threshold).
    P_pop, P_in -> ``p_pop[i]``, ``p_in[i]``: intent i's share of the population training
                   labels, and of this user's training labels.
    N_I         -> the number of real intents, ``len(p_out) - len(reserved)``.
    F_i, R_i    -> ``IntentSets.forget``, ``IntentSets.retain``.

The epsilon ambiguity: the paper uses the symbol epsilon twice, for the distillation
temperature of Eq. 6 (set to 1 in Table 4) and for the static threshold of Eq. 8, whose
value it never states. Read as 1, Eq. 8 would put every intent (every share is < 1) into
the static forgotten set, so the two must be different numbers: here the threshold is its
own option, ``static_threshold``; ``None`` (the default) means
``DEFAULT_STATIC_FRACTION / N_I``, i.e. a fifth of the average share.

The reserved ids (``<pad>`` = 0 and ``<unk>`` = 1) are never labels: they are never in F,
never in R, and do not count in N_I.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.vocabulary import RESERVED_IDS

# Default static threshold as a fraction of the average real-intent share 1 / N_I.
DEFAULT_STATIC_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class IntentSets:
    """The result of :func:`manage_intents` (intent ids, sorted)."""

    static: tuple  # F_sta, Eq. 8
    dynamic: tuple  # F_dyn, Eq. 9
    forget: tuple  # F = F_sta ∪ F_dyn, Eq. 10
    retain: tuple  # R = the other real intents
    n_intents: int  # len(p_out), including the reserved ids

    def forget_mask(self) -> np.ndarray:
        """float32 [n_intents], 1 on F."""
        mask = np.zeros(self.n_intents, np.float32)
        mask[list(self.forget)] = 1.0
        return mask

    def retain_mask(self) -> np.ndarray:
        """float32 [n_intents], 1 on R."""
        mask = np.zeros(self.n_intents, np.float32)
        mask[list(self.retain)] = 1.0
        return mask


def intent_shares(labels, n_intents: int) -> np.ndarray:
    """Share of each intent id among ``labels`` (float64 [n_intents]; zeros if empty)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_intents).astype(np.float64)[:n_intents]
    total = counts.sum()
    return counts / total if total > 0 else counts


def manage_intents(p_out, p_pop, p_in, static_threshold=None, reserved=RESERVED_IDS) -> IntentSets:
    """Eq. 8-10: the static, dynamic and total forgotten sets and the retained set.

    Args:
        p_out: array [n_intents]. P_out, the teacher's predicted intent shares on
            population data (renormalized over the real intents before comparing).
        p_pop: array [n_intents]. P_pop, population training label shares.
        p_in: array [n_intents]. P_in, this user's training label shares.
        static_threshold: float or None. Eq. 8's epsilon: an intent with
            ``P_out < static_threshold`` is in F_sta. None: ``0.2 / N_I``.
        reserved: ids that are never labels (pad, unk): never in F or R.

    Returns:
        IntentSets.
    """
    p_out, p_pop, p_in = (np.asarray(p, dtype=np.float64) for p in (p_out, p_pop, p_in))
    n = p_out.shape[0]
    if p_out.ndim != 1 or p_pop.shape != (n,) or p_in.shape != (n,):
        raise UserInputError(
            f"p_out, p_pop and p_in must be vectors of the same length, got shapes "
            f"{p_out.shape}, {p_pop.shape}, {p_in.shape}"
        )
    real = np.ones(n, bool)
    real[[r for r in reserved if r < n]] = False
    n_real = int(real.sum())
    if n_real == 0:
        raise UserInputError("no real intents: every intent id is reserved")
    mean_share = 1.0 / n_real
    if static_threshold is None:
        static_threshold = DEFAULT_STATIC_FRACTION * mean_share
    if not 0.0 <= static_threshold < 1.0:
        raise UserInputError(f"static_threshold must be in [0, 1), got {static_threshold}")

    def _normalized(p):
        total = p[real].sum()
        return np.where(real, p / total if total > 0 else p, 0.0)

    p_out, p_pop, p_in = _normalized(p_out), _normalized(p_pop), _normalized(p_in)
    static = real & (p_out < static_threshold)  # Eq. 8
    dynamic = real & (p_pop < mean_share) & (p_in > mean_share)  # Eq. 9
    forget = static | dynamic  # Eq. 10
    retain = real & ~forget
    ids = np.arange(n)
    return IntentSets(
        static=tuple(int(i) for i in ids[static]),
        dynamic=tuple(int(i) for i in ids[dynamic]),
        forget=tuple(int(i) for i in ids[forget]),
        retain=tuple(int(i) for i in ids[retain]),
        n_intents=n,
    )

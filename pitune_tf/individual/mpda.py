"""MPDA (Yan et al., "On-device Learning for Model Personalization with Large-scale
Cloud-coordinated Domain Adaption", KDD 2022), PITuning Table 2's second-best baseline and
the comparison of its Figures 9-10, as an individual-stage method (``mpda``).

What is kept: the device-cloud protocol of MPDA. The device describes its local samples
with its own model, the cloud retrieves the most similar samples of its population pool
(cross-user samples close to the user's domain), and the device model is adapted on the
local samples augmented with the retrieved ones.

What is adapted: (1) the sample descriptor is the shipped model's predicted intent
distribution of a window (``softmax`` of its logits, compared by cosine similarity), not
MPDA's learned embedding with its domain-discrimination objective; (2) retrieval takes,
for each local training window, its ``MPDA.neighbours`` nearest population training windows
(union, at most ``MPDA.ratio`` x the local count); (3) the model adapted is the engine's
model (the distilled student), fine-tuned with the same early stopping as every other
method, whereas the PITuning paper runs MPDA on an OFA backbone (run the suite on a
population run with ``tuning="partial"`` for that); (4) no importance re-weighting of the
retrieved samples: local and retrieved windows weigh the same.
"""

from __future__ import annotations

import numpy as np

from pitune_tf.data import Windows
from pitune_tf.individual.engine import user_seed
from pitune_tf.population.data_preparation import run_windows


class MPDA:
    """The ``mpda`` extra method of a ``PersonalizationEngine``.

    Args:
        run: the population run (``load_run``): its population training windows are the pool.
        neighbours: int. Population windows retrieved per local training window.
        ratio: float. At most ``ratio * n_train`` retrieved windows per user.
    """

    def __init__(self, run, neighbours=5, ratio=1.0):
        self.run = run
        self.neighbours = int(neighbours)
        self.ratio = float(ratio)
        self._pool = None  # (Windows, unit-norm descriptors [n_pool, N])

    def pool(self, engine):
        """The population training windows and their descriptors (computed once)."""
        if self._pool is None:
            train, _, _ = run_windows(self.run)
            self._pool = (train, _unit(engine.probs(train)))
        return self._pool

    def retrieve(self, engine, windows) -> np.ndarray:
        """Indices into the pool of the windows retrieved for local ``windows``: each local
        window's ``neighbours`` most cosine-similar pool windows, most similar first, without
        repeats, at most ``ratio * len(windows)``."""
        pool, descriptors = self.pool(engine)
        similarity = _unit(engine.probs(windows)) @ descriptors.T  # [n_local, n_pool]
        k = min(self.neighbours, len(pool))
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]  # [n_local, k]
        score = np.take_along_axis(similarity, nearest, axis=1).ravel()
        order = nearest.ravel()[np.argsort(-score, kind="stable")]
        _, first = np.unique(order, return_index=True)
        return order[np.sort(first)][: int(self.ratio * len(windows))]

    def __call__(self, engine, user, sets):
        index = self.retrieve(engine, user.train)
        pool, _ = self.pool(engine)
        augmented = Windows.concatenate([user.train, pool.take(index)])
        info = engine.fit(augmented, user.val, user_seed(engine.config.seed, user.user))
        info["mpda_retrieved"] = int(index.size)
        # the same post-hoc options as fine-tuning (the prior shift, the refit on the
        # augmented training windows + validation), as the config sets them for every method
        return engine.tuned_scores(user, info, train=augmented)


def _unit(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

"""MetaBert4Rec (Kim, Yang, Ryu, Kim, "Meta-Learning with Adaptive Weighted Loss for
Imbalanced Cold-Start Recommendation", CIKM 2023, PITuning's reference [13]; PITuning
Appendix C: "a sequential recommendation framework based on gradient-based meta-learning"),
a PITuning Table 2 baseline, as the individual-stage method ``metabert4rec``.

What is kept: gradient-based meta-learning over users (each population user a task; a
meta-learned initialization from which each user's model adapts with a few gradient steps
on the user's own data) of a bidirectional BERT4Rec encoder that predicts at a [MASK]
token appended to the user's sequence (:class:`Bert4RecNetwork`).

What is adapted: (1) first-order meta-learning, Reptile
(:func:`~pitune_tf.individual.baselines.reptile.reptile`), instead of second-order MAML-style
updates; (2) the paper's adaptive weighted loss (per-sample weights for users' imbalanced
rating distributions) is not implemented: plain cross-entropy; (3) items are the window's
events, the label the next event's intent; (4) the per-user adaptation is the engine's
fine-tuning (Adam, early stopping on the user's validation windows), not a fixed number of
SGD steps.
"""

from __future__ import annotations

from pitune_tf.individual.baselines.bert4rec_network import Bert4RecNetwork
from pitune_tf.individual.baselines.meta_baseline import MetaLearnedBaseline


class MetaBert4Rec(MetaLearnedBaseline):
    """The ``metabert4rec`` extra method (see the module docstring)."""

    def build_network(self):
        return Bert4RecNetwork(int(self.run.vocabs.sizes["event"]), self.n_intents,
                               int(self.run.config.history), width=self.config.baseline_width,
                               num_layers=2, num_heads=2, name="metabert4rec")

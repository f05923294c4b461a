"""EODRec (Xia, Yu, Wang, Yang, Nguyen, Yin, "Efficient On-Device Session-Based
Recommendation", ACM TOIS 41(4), 2023, PITuning's reference [46]), a PITuning Table 2
baseline, as the individual-stage method ``eodrec``.

What is kept: an ultra-compact on-device session model whose item (here: event) embedding
table is compressed by compositional codes: each event id is the sum of M codebook vectors
(:class:`~pitune_tf.layers.CompositionalEmbedding`, ``eodrec_codebooks`` x
``eodrec_codebook_size`` vectors instead of one row per event); trained on the cloud (the
population pool), then run and tuned on the device.

What is adapted: (1) the codes are fixed random integers (EODRec learns them with
differentiable discrete code learning, distilled from a full-table teacher, with a
self-supervised distillation loss); (2) the session encoder is one causal self-attention block
over the window's events (:class:`EODRecNetwork`), not EODRec's own encoder; (3) the label is the
next event's intent, not the next item; (4) on the device the whole model is fine-tuned on
the user's windows with the engine's early stopping (EODRec ships a trained model).
"""

from __future__ import annotations

from pitune_tf.individual.baselines.eodrec_network import EODRecNetwork
from pitune_tf.individual.baselines.population_baseline import PopulationBaseline


class EODRec(PopulationBaseline):
    """The ``eodrec`` extra method (see the module docstring)."""

    def build_network(self):
        cfg = self.config
        return EODRecNetwork(int(self.run.vocabs.sizes["event"]), self.n_intents,
                             int(self.run.config.history), width=cfg.baseline_width, num_codebooks=cfg.eodrec_codebooks,
                             codebook_size=cfg.eodrec_codebook_size, seed=cfg.seed, name="eodrec")

    def __call__(self, engine, user, sets):
        scores, info = super().__call__(engine, user, sets)
        table = self.backend().network.embedding
        info.update(eodrec_embedding_parameters=int(table.count_params()),
                    eodrec_full_table_parameters=int(table.input_dim * table.output_dim))
        return scores, info

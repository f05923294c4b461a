"""The baselines of PITuning's Table 2 beyond the ones of ``pitune_tf.individual``: LSAT,
EODRec, MetaBert4Rec, CLOVER, TallRec, P5 and InstructRec, each an extra method of the
personalization engine (Keras backend), each module's docstring saying what of the original
is kept and what is adapted. They are not in the default methods (they train their own
networks on the population first); ``--method lsat,...`` or the ``pituning_table2``
experiment runs them. Their names: ``TABLE2_BASELINES`` of ``pitune_tf.individual.methods``."""

from __future__ import annotations

from pitune_tf.individual.baselines.clover import Clover
from pitune_tf.individual.baselines.eodrec import EODRec
from pitune_tf.individual.baselines.lsat import LSAT
from pitune_tf.individual.baselines.metabert4rec import MetaBert4Rec
from pitune_tf.individual.baselines.prompt_baselines import P5, InstructRec, TallRec
from pitune_tf.individual.methods import TABLE2_BASELINES

# method name -> its class (built with (run, config))
BASELINES = {"lsat": LSAT, "eodrec": EODRec, "metabert4rec": MetaBert4Rec, "clover": Clover,
             "tallrec": TallRec, "p5": P5, "instructrec": InstructRec}


def table2_methods(run, config) -> dict:
    """``{name: method}`` of every Table 2 baseline, in ``TABLE2_BASELINES``' order (nothing
    is built or trained until a method first runs)."""
    return {name: BASELINES[name](run, config) for name in TABLE2_BASELINES}

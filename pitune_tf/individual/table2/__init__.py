"""The baselines of PITuning's Table 2 beyond the ones of ``pitune_tf.individual``: LSAT,
EODRec, MetaBert4Rec, CLOVER, TallRec, P5 and InstructRec, each an extra method of the
personalization engine (Keras backend), each module's docstring saying what of the original
is kept and what is adapted. They are not in the default methods (they train their own
networks on the population first); ``--method lsat,...`` or the ``pituning_table2``
experiment runs them."""

from __future__ import annotations


def table2_methods(run, config) -> dict:
    """``{name: method}`` of every Table 2 baseline (nothing is built or trained until a
    method first runs)."""
    from pitune_tf.individual.table2.clover import Clover
    from pitune_tf.individual.table2.eodrec import EODRec
    from pitune_tf.individual.table2.lsat import LSAT
    from pitune_tf.individual.table2.metabert4rec import MetaBert4Rec
    from pitune_tf.individual.table2.prompt_baselines import P5, InstructRec, TallRec

    return {"lsat": LSAT(run, config), "eodrec": EODRec(run, config),
            "metabert4rec": MetaBert4Rec(run, config), "clover": Clover(run, config),
            "tallrec": TallRec(run, config), "p5": P5(run, config),
            "instructrec": InstructRec(run, config)}

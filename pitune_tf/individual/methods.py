"""The one list of the individual stage's methods: each name with its kind and the backends
that run it, the default method sets, and the tables' row order. Every other list of method
names (the config's check, ``--method``, the engine, the tables, the experiment suites)
derives from :data:`REGISTRY`."""

from __future__ import annotations

import dataclasses

KERAS, LITERT = "keras", "litert"
BACKENDS = (KERAS, LITERT)  # --backend

# The kinds of method, by who computes their scores.
TRIVIAL = "trivial baseline"  # no model: the user's own intent frequencies (the engine)
ENGINE = "engine method"  # the student trained or shifted by the personalization loop
RETRIEVAL = "MPDA"  # the student fine-tuned with retrieved population windows (mpda.py)
LIGHTGBM = "LightGBM"  # trees on teacher features, PITuning Appendix E (teacher_methods.py)
TEACHER = "teacher tuned per user"  # PITuning Table 3's FP / PP (teacher_methods.py)
TABLE2 = "Table 2 baseline"  # PITuning Table 2's other baselines, each its own network (baselines/)
USER_ORACLE = "oracle"  # the log's user oracle: a row of the tables, never run


@dataclasses.dataclass(frozen=True)
class Method:
    """One individual-stage method.

    Args:
        name: str. As ``--method`` and the tables name it.
        kind: str. One of the kinds above.
        backends: tuple of str. The backends that run it.
        default_on: tuple of str. The backends that run it when no method is named.
    """

    name: str
    kind: str
    backends: tuple = (KERAS,)
    default_on: tuple = ()


ORACLE = "oracle"  # the user oracle's row, last, when the log comes with one
ORACLE_CONTEXT = "oracle_context"  # the oracle that also knows the predicted event's own
#   context (synthetic data): an upper bound, shown after ORACLE, never a gap's end

BOTH = (KERAS, LITERT)
REGISTRY = (
    Method("most_frequent", TRIVIAL, BOTH, BOTH),
    Method("last_event_intent", TRIVIAL, BOTH, BOTH),
    Method("none", ENGINE, BOTH, BOTH),
    Method("prior", ENGINE, BOTH, (KERAS,)),
    Method("finetune", ENGINE, BOTH, BOTH),
    Method("pituning", ENGINE, BOTH, BOTH),
    Method("focal", ENGINE, (KERAS,), (KERAS,)),  # the phone's model has no focal loss
    Method("oversample", ENGINE, BOTH, (KERAS,)),
    Method("mpda", RETRIEVAL),
    Method("lgbm", LIGHTGBM, (KERAS,), (KERAS,)),
    Method("fp", TEACHER),
    Method("pp", TEACHER),
    # each trains its own network on the population first: never a default method, nor in
    # `--method all` or the demo pipeline (`--method table2` runs them)
    Method("lsat", TABLE2),
    Method("eodrec", TABLE2),
    Method("metabert4rec", TABLE2),
    Method("clover", TABLE2),
    Method("tallrec", TABLE2),
    Method("p5", TABLE2),
    Method("instructrec", TABLE2),
    Method(ORACLE, USER_ORACLE, ()),
    Method(ORACLE_CONTEXT, USER_ORACLE, ()),
)
KIND = {m.name: m.kind for m in REGISTRY}


def methods_of(*kinds, order=None) -> tuple:
    """The names of the methods of ``kinds``, in ``order`` (default the registry's)."""
    return tuple(name for name in (order or KIND) if KIND[name] in kinds)


def check_methods(*names) -> tuple:
    """``names``, each a method of the registry (else a ValueError)."""
    unknown = [name for name in names if name not in KIND]
    if unknown:
        raise ValueError(f"unknown individual-stage method(s) {unknown}")
    return names


def methods_on(backend) -> tuple:
    """The methods ``backend`` runs, in the registry's order."""
    return tuple(m.name for m in REGISTRY if backend in m.backends)


def default_methods(backend) -> tuple:
    """The methods ``backend`` runs when none are named."""
    return tuple(m.name for m in REGISTRY if backend in m.default_on)


# Every method that can be run (IndividualConfig.methods, --method), in the registry's order.
METHODS = tuple(m.name for m in REGISTRY if m.kind != USER_ORACLE)
ORACLES = methods_of(USER_ORACLE)
TRIVIAL_METHODS = methods_of(TRIVIAL)  # every table carries them
ENGINE_METHODS = methods_of(TRIVIAL, ENGINE)  # the personalization loop's own, any backend
STUDENT_METHODS = methods_of(TRIVIAL, ENGINE, RETRIEVAL)  # their final model is the engine's student
TEACHER_METHODS = methods_of(LIGHTGBM, TEACHER)  # need the population teacher
PER_USER_TEACHER_METHODS = methods_of(TEACHER)  # run on the first `fp_users` users only
TABLE2_BASELINES = methods_of(TABLE2)
# Row order of every table: the registry's, with pituning after the other tuned students
# it is compared with (finetune, focal, oversample).
def _table_order() -> tuple:
    names = [m for m in METHODS if m != "pituning"]
    names.insert(names.index("oversample") + 1, "pituning")
    return tuple(names)


METHOD_ORDER = _table_order()
# IndividualConfig.methods' default (the Keras backend's) ...
DEFAULT_METHODS = default_methods(KERAS)
# ... and where a backend runs other methods when none are named, those (litert: what the
# phone runs)
BACKEND_DEFAULT_METHODS = {backend: default_methods(backend) for backend in BACKENDS
                           if default_methods(backend) != DEFAULT_METHODS}


def user_methods(config, n_users) -> list:
    """Per user, the methods it runs: ``config.methods``, the per-user teacher methods (FP /
    PP) on the first ``config.fp_users`` users only."""
    return [[m for m in config.methods if m not in PER_USER_TEACHER_METHODS or i < config.fp_users]
            for i in range(n_users)]

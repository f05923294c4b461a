"""The user's journey as three calls: ``train`` (the population stage), ``personalize`` (the
individual stage) and ``export`` (the phone bundle), exported from the package root.

Each is a thin wrapper over the library function its command line calls, with the same
defaults: :func:`pitune_tf.population.run_population` (``python -m trainers.population``),
:func:`pitune_tf.individual.stage.run_individual` (``python -m trainers.individual``) and
:func:`tflite.run_export.convert_run` (``python -m tflite.convert``). Predictions come from
:class:`pitune_tf.prediction.NextIntentPredictor` (``python -m pitune_tf.predict``).

Example::

    import pitune_tf

    metrics = pitune_tf.train("runs/mine", data="events.parquet")
    files = pitune_tf.export("runs/mine")        # student.tflite, labels.txt, vocab.json, ...
    summary = pitune_tf.personalize("runs/mine", methods=["none", "finetune", "pituning"])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitune_tf.common.config import replace, resolve_config
from pitune_tf.common.types import PathLike
from pitune_tf.data.schema import Schema
from pitune_tf.individual.individual_config import IndividualConfig
from pitune_tf.individual.methods import BACKEND_DEFAULT_METHODS
from pitune_tf.population.population_config import PopulationConfig, resolve

if TYPE_CHECKING:
    from pitune_tf.common.keras import tf

# The stages load TensorFlow: each call imports its own, so that ``import pitune_tf`` and
# ``pitune_tf.train`` (this module) stay TensorFlow-free until a call runs.


def train(out_dir: PathLike, data: str | Path | Sequence[str | Path] | None = None, *,
          preset: str = "demo", config: PopulationConfig | PathLike | None = None,
          schema: Schema | dict[str, Any] | None = None, overwrite: bool = False,
          strategy: str | tf.distribute.Strategy = "auto", **settings: Any) -> dict[str, Any]:
    """Trains the population stage (PITuning Sec. 3.2): the GPT2 teacher with IAT and masked
    reconstruction, distilled into the on-device student; writes the run directory
    ``out_dir`` and returns its ``metrics.json`` content. Running again with the
    same ``out_dir`` resumes an unfinished run.

    Args:
        out_dir: str or Path. The run directory.
        data: None, a path, or a list of one or two paths. None: the preset's embedded
            synthetic data; one events file (CSV or Parquet: ``user_id, timestamp, event,
            intent[, location]``), whose held-out users (``individual_fraction``) become the
            individual stage's; or the population's and the individual users' files.
        preset: str. A preset of :data:`pitune_tf.population.PRESETS` (``demo``,
            ``demo_fit``, ``paper``, ``tiny``).
        config: :class:`pitune_tf.population.PopulationConfig`, a JSON / YAML file of its
            keys, a run directory (its saved config), or None. Used instead of the preset.
        schema: :class:`pitune_tf.data.schema.Schema`, a dict of its fields, or None. How
            ``data`` is read (column names, time unit, time zone, unmapped events).
        overwrite: bool. Replace a finished run in ``out_dir``.
        strategy: str or ``tf.distribute.Strategy``. As for ``run_population``.
        **settings: PopulationConfig fields (``seed=1``, ``teacher_epochs=2``, ...); they
            override ``preset`` and ``config``. An unknown name raises ``UserInputError``.
    """
    from pitune_tf.population.population_stage import run_population  # deferred (above)

    overrides = dict(settings)
    if data is not None:
        overrides["data"] = [str(p) for p in ([data] if isinstance(data, str | Path) else data)]
    if schema is not None:
        overrides["data_schema"] = schema if isinstance(schema, dict) else schema.to_dict()
    if isinstance(config, PopulationConfig):
        resolved = config.replace(**overrides)
    else:
        resolved = resolve(None if config is not None else preset, config, overrides)
    return run_population(resolved, out_dir, overwrite=overwrite, strategy=strategy)


def personalize(run_dir: PathLike, methods: str | Sequence[str] | None = None, *,
                users: int = 0, backend: str = "keras", model: PathLike | None = None,
                data: PathLike | None = None, out: PathLike | None = None,
                config: IndividualConfig | PathLike | None = None, schema: Schema | None = None,
                workers: int = 1, progress: bool = True, **settings: Any) -> dict[str, Any]:
    """Personalizes the run's student for each individual user (PITuning Sec. 3.3:
    ManageIntents, unlearning, fine-tuning) and scores every method on the users' test
    windows; writes ``RUN/individual`` (``RUN/device`` on the LiteRT backend) and returns
    its ``summary.json`` content.

    Args:
        run_dir: str or Path. A finished population run (:func:`train`).
        methods: list of str, or None. Methods of
            :data:`pitune_tf.individual.methods.METHODS`; None: those of
            ``config``, else the backend's defaults (as ``python -m trainers.individual``).
        users: int. The first N users by id (0: all).
        backend: str. ``keras``, or ``litert``: through ``RUN/student.tflite``'s train /
            unlearn / infer signatures only, as on the phone (:func:`export` first).
        model: path or None. The ``.tflite`` file of the ``litert`` backend; None:
            ``RUN/student.tflite``.
        data: path or None. The individual users' events; None: ``RUN/data/individual.parquet``.
        out: path or None. The output directory (default: above).
        config: :class:`pitune_tf.IndividualConfig`, a JSON / YAML file of its
            keys, or None (the defaults).
        schema: :class:`pitune_tf.data.schema.Schema` or None. How ``data`` is read.
        workers: int. Processes the users are split among.
        progress: bool. Show progress bars.
        **settings: IndividualConfig fields (``max_epochs=5``, ``seed=1``, ...).
    """
    from pitune_tf.individual.stage import run_individual  # deferred (above)

    overrides = dict(settings)
    if methods is None and config is None:
        methods = BACKEND_DEFAULT_METHODS.get(backend)
    if methods is not None:
        overrides["methods"] = tuple([methods] if isinstance(methods, str) else methods)
    if isinstance(config, IndividualConfig):
        resolved = replace(config, **overrides)
    else:
        resolved = resolve_config(IndividualConfig, {}, None, config, overrides)
    if backend == "litert" and model is None:
        model = Path(run_dir) / "student.tflite"
    return run_individual(run_dir, resolved, out=out, data=data, n_users=users, workers=workers,
                          backend=backend, model=model, progress=progress, schema=schema)


def export(run_dir: PathLike, out_dir: PathLike | None = None,
           **options: Any) -> dict[str, Path]:
    """Writes the phone bundle of a population run: ``student.tflite`` (signatures ``infer``,
    ``train``, ``unlearn``, ``get_weights``, ``set_weights``, ``reset``; builtin ops only),
    its int8 and float16 inference files, ``labels.txt``, ``vocab.json`` and
    ``preprocessing.json``; returns the written paths by kind.

    Args:
        run_dir: str or Path. A finished population run (:func:`train`).
        out_dir: str, Path or None. Where the files go (default: ``run_dir``).
        **options: the options of :func:`tflite.run_export.convert_run` (``batch_size=32``,
            ``quantized=True``, ``qat_epochs=0``, ``quiet=False``, ...).
    """
    from tflite.run_export import convert_run  # deferred (above)

    return convert_run(run_dir, out_dir, **options)


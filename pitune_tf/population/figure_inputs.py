"""What a finished population run's figures are drawn from, rebuilt from its files (for
:func:`pitune_tf.population.plots.plot_run`, ``python -m pitune_tf.population.plots``)."""

from __future__ import annotations

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.numeric import softmax
from pitune_tf.population.data_preparation import load_data, prepare_windows
from pitune_tf.population.evaluation import predict_logits
from pitune_tf.population.run_directory import load_run
from pitune_tf.population.training_loop import TRAINING_RECORD


def figure_inputs(run_dir) -> dict:
    """The arguments of :func:`pitune_tf.population.plots.write_population_plots` for a
    finished run: the windows rebuilt from the run's config (its data files, or the
    embedded synthetic data) and both models scored again on the test windows.

    Raises:
        UserInputError: the run or its data cannot be read, or the data no longer gives the
            run's intent vocabulary.
    """
    run = load_run(run_dir)
    population, _ = load_data(run.config)
    vocabs, (_, _, test), _ = prepare_windows(run.config, population)
    if vocabs.intent.tokens != run.vocabs.intent.tokens:
        raise UserInputError(f"{run.run_dir}: the run's data no longer gives its intent vocabulary")
    training = run.files.json(TRAINING_RECORD, default=None)
    if training is None:
        training = (run.metrics or {}).get("training")
    models = {"teacher": run.teacher, "student": run.student}
    scores = {name: softmax(predict_logits(model, test, 4 * run.config.batch_size))
              for name, model in models.items()}
    return {"run_dir": run.run_dir, "training": training, "models": models, "test": test,
            "scores": scores, "tokens": run.vocabs.intent.tokens,
            "n_reserved": len(run.vocabs.intent.reserved), "batch_size": run.config.batch_size}

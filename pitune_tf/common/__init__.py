"""The layer both methods share (PITuning in ``pitune_tf``, UAF in ``nextitnet``).

- ``environment``: process environment (the Keras 2 API of tf-keras); imported before tensorflow.
- ``keras``: the one place Keras and TensorFlow are imported from.
- ``errors``, ``cli``: user errors as one ``error:`` line and exit status 2; the options and
  output every command shares (``--quiet``, ``--verbose``, help with defaults).
- ``lazy``: lazy package exports (``--help`` without TensorFlow).
- ``console``: what a command prints while it runs (status lines, log lines each on a line
  of their own, never glued to a progress bar) and what ``--quiet`` leaves: results and errors.
- ``settings_summary``: a run's resolved settings as text (its first line, ``--print-config``).
- ``epoch_log``: epoch output labelled with the model trained (``[teacher] epoch 3/30``).
- ``run_replacement``: ``--overwrite`` (the old run moved aside, back if the new one fails).
- ``atomic``: outputs written under a temporary name and renamed when complete.
- ``output_set``: an output folder's files replaced as one set (one atomic folder swap).
- ``run_lock``: one writer per run directory (locked on its real path).
- ``config``: one config resolver (preset < file < command line; unknown key is an error).
- ``loss_model``: the training-step base (``compute_losses`` -> every loss by name).
- ``batching``: one batching function for every training loop.
- ``resumable_fit``, ``epoch_checkpoint``, ``epoch_history``: the one resumable Keras ``fit``
  (per-epoch checkpoints, resume, every epoch's logs across resumes).
- ``seeding``: ``seed_everything`` (seeds and deterministic TF ops).
- ``best_epoch_rule``, ``best_epoch_callback``, ``weight_stores``: one best-epoch rule (model
  selection on a validation value, early stopping) and its resumable Keras callback, the best
  weights in a TensorFlow checkpoint or a ``.weights.h5`` file.
- ``vocabulary``: one token <-> id vocabulary (reserved ids and ordering as options) and the
  one statement of the reserved ids (``PAD_ID``, ``UNK_ID``, ``N_RESERVED``).
- ``tables``: the one table writer (Markdown and plain text; every report's tables).
- ``plotting``: what every figure shares (Agg, ``save_png``: the one PNG saver, epoch axes,
  bar and line charts, plots that never fail a run).
- ``run_files``, ``json_files``: the one run-directory reader (required files, JSON files as
  one clear error each) and reading a user's or a run's JSON file.
- ``experiment_suite``: the registry and runner of the papers' experiments (csv, png, index).
- ``divergence``: a NaN or infinite loss stops a fit with one error; the next run resumes it.
- ``limits``: the ranges of numbers a config accepts, and the memory check.
- ``types``: the public API's type aliases (``PathLike``).
- ``windowing``: left-padded windows gathered from grouped sequences, no Python loop.
- ``numeric``: numpy helpers (``softmax``).
- ``launcher``, ``distribution``, ``private_network``: local multi-worker runs (their
  TensorFlow servers in a network with only the loopback interface) and tf.distribute.
- ``training_options``: the choices of ``--strategy`` and ``--precision``, read without
  TensorFlow (``distribution``, ``precision``: their TensorFlow side).
- ``fault``: the fault-injection testing hook (``PITUNE_FAULT``: ``kill -9`` or a full disk
  at a named point; ``PITUNE_FAULT_TRACE``: the points a run reaches).
"""

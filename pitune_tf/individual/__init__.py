"""PITuning individual-level tuning (Section 3.3): ManageIntents (Eq. 8-10), adaptive
unlearning (Eq. 11), per-user fine-tuning, the Section 4 baselines and their evaluation.

Entry point: ``python -m trainers.individual --run RUN_DIR`` (see ``trainers/individual.py``).
The submodules are imported on use (``from pitune_tf.individual.unlearning import
unlearning_loss``), so ``tflite/`` can take the loss without the trainer's dependencies.

Modules:

- ``methods``: the one list of the methods (kind, backends, defaults, table order);
- ``individual_config``: ``IndividualConfig``, its presets; ``command_line``: the options;
- ``stage``: ``run_individual`` and ``merge_parts``, the stage's entry points;
- ``backends``: the engine on the Keras or the LiteRT backend (``build_engine``);
- ``user_pool``: the users run in this process or in worker processes;
- ``resume``: the per-user records of an unfinished stage and their fingerprint;
- ``shards``: ``--shard I/N``'s partition and record files;
- ``user_data``: a user's windows and events, the users of a log (``load_users``);
- ``oracle_scores``: the user oracle's scores on the users' test windows;
- ``engine``: the one personalization loop; ``keras_backend``, ``litert_backend``: its
  backends; ``tuning_loss_model``: the Keras loss model of per-user tuning;
- ``manage_intents`` (Eq. 8-10), ``unlearning`` (Eq. 11), ``focal``, ``oversampling``: the
  forgotten sets and the objectives;
- ``teacher_methods``: LightGBM (``lgbm_features``, Appendix E) and FP / PP (Table 3);
  ``mpda``: MPDA; ``baselines``: Table 2's other baselines;
- ``evaluation``: metrics over users; ``summary``: per-method statistics;
  ``report``: the Markdown tables; ``comparison``: two output directories side by side;
  ``plots``: ``gains.png``; ``outputs``: the files the stage writes.
"""

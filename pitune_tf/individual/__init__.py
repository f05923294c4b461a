"""PITuning individual-level tuning (Section 3.3): ManageIntents (Eq. 8-10), adaptive
unlearning (Eq. 11), per-user fine-tuning, the Section 4 baselines and their evaluation.

Entry point: ``python -m trainers.individual --run RUN_DIR`` (see ``trainers/individual.py``).
The submodules are imported on use (``from pitune_tf.individual.unlearning import
unlearning_loss``), so ``tflite/`` can take the loss without the trainer's dependencies.
"""

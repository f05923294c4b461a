"""The sizes of PITuning's experiment suite (``python -m trainers.experiments pituning
--preset``), apart from the suite itself so that the command's ``--help`` starts fast."""

# Sizes of a suite. users: individual users (0 = all); split_days / train_days: Fig. 9's
# protocol (the Honor split, and the training days kept); histories: Fig. 10's L values;
# population: PopulationConfig changes applied to every extra population run (the budget);
# individual: IndividualConfig changes of every individual run; clusters / cluster_users:
# Fig. 1's KMeans k and user sample; curve_epochs: Fig. 5's teacher epochs (None: RUN's);
# table_users: the individual users of the ledger's and pituning_tuned's runs (0 = all: 30 on the
# demo data); tuning_trials: Optuna trials per method of pituning_tuned.
SUITE_PRESETS = {
    "tiny": dict(users=3, split_days=(7, 1, 4), train_days=(2, 7), histories=(4, 8),
                 population=dict(teacher_epochs=1, student_epochs=1, max_train_windows=2000),
                 individual=dict(max_epochs=2, lgbm_iterations=20, baseline_pretrain_windows=1000,
                                 baseline_pretrain_epochs=1, prompt_backbone="random:1x32"),
                 clusters=3, cluster_users=200, curve_epochs=2, table_users=3,
                 tuning_trials=2),
    # demo: every individual user (30 on the demo data: tables pool at least 30 users per
    # seed); fine-tuning capped at 10 epochs, LightGBM at 300 rounds; the Table 2
    # baselines pretrain at the student's budget (the stage's default: every population
    # training window, early stopping on validation). The population variants train at
    # RUN's own budget: at 5,000 windows and 2 + 1 epochs the suite's PITuning student lost to
    # the last event's intent (test Prec_w 0.305 vs 0.339), so its ablations compared noise.
    "demo": dict(users=0, split_days=(7, 1, 4), train_days=(1, 3, 7), histories=(10, 30),
                 population={},
                 individual=dict(max_epochs=10, lgbm_iterations=300),
                 clusters=4, cluster_users=1000, curve_epochs=4, table_users=0,
                 tuning_trials=20),
    "full": dict(users=0, split_days=(7, 1, 4), train_days=(1, 3, 5, 7), histories=(10, 20, 30, 40),
                 population={}, individual={}, clusters=4, cluster_users=1000, curve_epochs=None,
                 table_users=0, tuning_trials=20),
}

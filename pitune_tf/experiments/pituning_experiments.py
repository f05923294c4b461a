"""PITuning's tables and figures as experiments of one registry (``registry``): Table 2 (the
individual-level comparison), Figure 1 (per-user intent distributions clustered), Figure 4
(ablations), Figure 5 (the pretrained LM against transformers trained from scratch), Figure 6
(IAT attention maps per intent), Figure 7 (predicted against true intent distribution,
PITuning against OFA), Figure 8 (recall of the rarest intents), Figure 9 (individual training
days) and Figure 10 (event-sequence length L); :func:`run_pituning_suite` runs them. The runs
behind them: ``pitune_tf.experiments.pituning_suite``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE

from pitune_tf.common.experiment_suite import Registry, TrivialCheck, mean_std, run_suite
from pitune_tf.common.plotting import bar_chart, line_chart, pyplot, save_png
from pitune_tf.common.run_files import RunFiles
from pitune_tf.experiments.pituning_suite import METRICS, PITuningSuite, metric_row
from pitune_tf.individual.individual_config import PRESETS as INDIVIDUAL_PRESETS
from pitune_tf.individual.methods import (
    ENGINE,
    LIGHTGBM,
    METHOD_ORDER,
    ORACLE,
    ORACLES,
    RETRIEVAL,
    TABLE2,
    TRIVIAL_METHODS,
    check_methods,
    methods_of,
)
from pitune_tf.models.gpt2_checkpoint import RANDOM_PATTERN
from pitune_tf.population.data_preparation import load_data, run_windows
from pitune_tf.population.evaluation import predict_logits
from pitune_tf.population.plots import attention_map, plot_attention_maps, shown_intents
from pitune_tf.population.population_config import PAPER_CHOICES
from pitune_tf.population.training_loop import TRAINING_RECORD

registry = Registry("PITuning (Gong et al., KDD 2024)", trivial=TrivialCheck(
    "method", TRIVIAL_METHODS, "prec_w", exempt=ORACLES,
    within=("variant", "train_days", "history")))
# Table 2's models: every method but the trivial baselines and Table 3's FP / PP, in row order
TABLE2_METHODS = methods_of(ENGINE, RETRIEVAL, LIGHTGBM, TABLE2, order=METHOD_ORDER)
PROMPT_BASELINES = check_methods("tallrec", "p5", "instructrec")  # their LM: a random GPT2
#   (no pretrained one)
SWEEP_METHODS = check_methods("none", "finetune", "pituning", "mpda")  # Figs. 9-10's models
#   (MPDA: the paper's)
LONG_TAIL_METHODS = check_methods("none", "finetune", "focal", "oversample", "pituning")  # Fig. 8
# OFA (Zhou et al., NeurIPS'23) at the population level: GPT2's attention and MLP frozen, layer
# norms, position embeddings, input (context embedding) and output layers trained; its
# output layer reads the last position (no IAT) and it has no reconstruction loss.
OFA_POPULATION = {"tuning": "partial", "use_iat": False, "reconstruction": False}


def ofa_population(run_config) -> dict:
    """The OFA population run's changes to RUN's config: :data:`OFA_POPULATION` and, stated,
    RUN's ``repeat_term`` (our copy mixture, not in OFA or PITuning: OFA gets it when RUN's
    models have it, so that the two differ only in what OFA names)."""
    return {**OFA_POPULATION, "repeat_term": bool(run_config.repeat_term)}


def ofa_label(changes) -> str:
    """The OFA row's name: ``ofa``, ``ofa (repeat term)`` when its run has the copy term."""
    return "ofa (repeat term)" if changes.get("repeat_term") else "ofa"


def _method_frame(suite: PITuningSuite, population_dir, key, methods, keys=None, keep=None, **changes):
    """Rows (method, seed, metrics) of an individual setting over every seed, with the
    extra columns ``keys``; ``keep``: the methods to keep (default all, trivial and oracle
    included)."""
    rows = []
    for seed in suite.seed_list():
        for method, summary in suite.individual(population_dir, key, seed, methods, **changes).items():
            if keep is None or method in keep:
                rows.append({**(keys or {}), "method": method, "seed": seed, **metric_row(summary)})
    return pd.DataFrame(rows)


def _bars(frame, path, suite, metrics=METRICS, label="method"):
    bar_chart(frame, label, list(metrics), path, ylabel="test score (pooled over users)")


# ----------------------------------------------------------------------------- Table 2


def _table2_plot(frame, path, suite):
    prompts = [m for m in PROMPT_BASELINES if m in set(frame["method"])]
    title = (f"{', '.join(prompts)}: word-level prompts on a random GPT2 (no pretrained LM or "
             "tokenizer reachable)" if prompts else "")
    bar_chart(frame, "method", list(METRICS), path, title=title,
              ylabel="test score (pooled over users)")


@registry.register("pituning_table2", "PITuning Table 2: individual-level comparison (pooled over users' test windows)",
                   plot=_table2_plot,
                   note="The individual stage on RUN's individual users, one run per seed; trivial "
                        "baselines and the user oracle (synthetic data) on the same test windows. "
                        "mpda: pitune_tf.individual.mpda (retrieval-augmented fine-tuning of the "
                        "student, adapted); ofa: the OFA population run's GPT2 teacher (attention and "
                        "MLP frozen, no IAT, no reconstruction, trained at the suite's budget) tuned per "
                        "user with the same frozen parts (method pp); it takes RUN's repeat_term "
                        "(the copy mixture, in neither paper), named in its row: 'ofa (repeat "
                        "term)' when on. Prec_w / Rec_w: each intent weighted by its true count "
                        "(scikit-learn's average='weighted'); PITuning Eq. 12 as printed weighs "
                        "precision by the predicted count, which reduces to accuracy. lgbm's "
                        "features (Appendix E) include the predicted event's own time (hour, "
                        "weekday, timestamp of t_i): context no sequence model gets. The other baselines "
                        "(pitune_tf.individual.baselines; each module says what is kept and adapted), "
                        "each pretrained at the student's budget (every population training window, "
                        "early stopping on the population validation windows, the student's "
                        "learning rate) and "
                        "fine-tuned per user with the same early stopping: lsat (long- and short-term "
                        "LoRA adapters on RUN's frozen GPT2 teacher, merged in weight space), eodrec "
                        "(compositional-code event table, self-attentive session model), metabert4rec "
                        "(Reptile meta-learning of a bidirectional BERT4Rec encoder), clover (Reptile "
                        "with a gradient-reversal adversary on the user's activity group), tallrec, "
                        "p5 and instructrec (their prompts as word-level text with a vocabulary built "
                        "from the run's vocabularies, on a RANDOM GPT2 of prompt_backbone: no "
                        "pretrained LM or tokenizer is reachable here; tallrec tunes LoRA adapters "
                        "only).")
def table2(suite: PITuningSuite) -> pd.DataFrame:
    frame = _method_frame(suite, suite.run_dir, "main", TABLE2_METHODS)
    changes = ofa_population(suite.run.config)
    ofa = _method_frame(suite, suite.population_run("ofa", **changes), "ofa", ("pp",), keep=("pp",),
                        fp_users=1_000_000)
    oracle = frame["method"].isin(ORACLES)  # the ceilings last
    frame = pd.concat([frame[~oracle], ofa.assign(method=ofa_label(changes)), frame[oracle]],
                      ignore_index=True)
    return mean_std(frame, ["method"], METRICS)


# ----------------------------------------------------------------------------- Fig. 8


def _rare_columns(frame):
    return [c[:-5] for c in frame.columns if c.startswith("rec[") and c.endswith("_mean")]


@registry.register("pituning_fig8", "PITuning Figure 8: recall on the population's three rarest intents",
                   plot=lambda frame, path, suite: _bars(
                       frame, path, suite, _rare_columns(frame) + ["rare_recall_mean", "rec_w", "rec_m"]),
                   note="Same runs as Table 2: focal loss and oversampling against unlearning "
                        "(pituning) and plain fine-tuning; rec_w - rec_m is the fairness gap.")
def fig8(suite: PITuningSuite) -> pd.DataFrame:
    keep = (*TRIVIAL_METHODS, *LONG_TAIL_METHODS, ORACLE)
    frame = _method_frame(suite, suite.run_dir, "main", TABLE2_METHODS, keep=keep)
    rare = [c for c in frame.columns if c.startswith("rec[")]
    return mean_std(frame, ["method"], rare + ["rare_recall_mean", "rec_w", "rec_m", "prec_m"])


# ----------------------------------------------------------------------------- Fig. 4


ALGORITHM_1 = "Algorithm 1 as written (paper profile)"
ABLATIONS = {  # label -> (population variant changes or None for the full run, method, individual changes)
    "PITuning": (None, "pituning", {}),
    "PITuning, start chosen on validation": (None, "pituning", {"unlearn_select": "after_finetune"}),
    # both stages' paper profiles on RUN's sizes: the population's PAPER_CHOICES (no repeat
    # term, Eq. 3's plain sum, Adam 0.01, no clipping) and trainers.individual --preset paper
    ALGORITHM_1: (PAPER_CHOICES, "pituning", INDIVIDUAL_PRESETS["paper"]),
    "w/o IAT": ({"use_iat": False}, "pituning", {}),
    "w/o P-ER (reconstruction)": ({"reconstruction": False}, "pituning", {}),
    "w/o I-unlearning": (None, "finetune", {}),
}
# the population run and the individual runs' key of each row that is not RUN's full run
ABLATION_RUNS = {ALGORITHM_1: ("algorithm1", "ablation_algorithm1"),
                 "w/o IAT": ("no_iat", "ablation_no_iat"),
                 "w/o P-ER (reconstruction)": ("no_reconstruction", "ablation_no_reconstruction"),
                 "PITuning, start chosen on validation": ("full", "ablation_full_select")}


@registry.register("pituning_fig4", "PITuning Figure 4: ablations (IAT, event reconstruction, unlearning)",
                   plot=lambda frame, path, suite: _bars(frame, path, suite, label="variant"),
                   note="w/o IAT and w/o P-ER are population runs of RUN's config without the "
                        "component (at the suite's budget, like the PITuning row's run); "
                        "w/o I-unlearning is fine-tuning only. 'start chosen on validation' is the "
                        "PITuning row with unlearn_select='after_finetune' alone: fine-tuning runs "
                        "from the unlearned and from the shipped weights and the one with the lower "
                        "validation cross-entropy is kept (twice the fine-tuning). 'Algorithm 1 as written' is the paper profile of both "
                        "stages at RUN's sizes: a population run of RUN's config with the paper's "
                        "choices (no repeat term, PITuning Eq. 3's plain sum, Adam 0.01, no "
                        "clipping) and the individual stage's --preset paper (Adam 0.01, no prior "
                        "shift, no refit, unlearn_select='none').")
def fig4(suite: PITuningSuite) -> pd.DataFrame:
    frames = []
    full = suite.full_run()
    for label, (changes, method, individual) in ABLATIONS.items():
        name, key = ABLATION_RUNS.get(label, ("full", "ablation_full"))
        population = full if changes is None else suite.population_run(name, **changes)
        methods = ("none", "finetune", "pituning") if changes is None and not individual else ("none", method)
        frame = _method_frame(suite, population, key, methods, keep=(method,), **individual)
        frames.append(frame.assign(variant=label))
    trivial = _method_frame(suite, full, "ablation_full", ("none", "finetune", "pituning"),
                            keep=(*TRIVIAL_METHODS, ORACLE))
    frames.append(trivial.assign(variant=trivial["method"]))
    return mean_std(pd.concat(frames, ignore_index=True), ["variant", "method"], METRICS)


# ----------------------------------------------------------------------------- Figs. 9, 10


def _sweep_plot(x_col, xlabel):
    def plot(frame, path, suite):
        line_chart(frame, x_col, "method", ["prec_w", "prec_m", "rec_m", "ndcg@3"], path, xlabel=xlabel)
    return plot


@registry.register("pituning_fig9", "PITuning Figure 9: individual training days (same validation and test days)",
                   plot=_sweep_plot("train_days", "individual training days"),
                   note="Per user, the split of the Honor dataset (train, validation, test days); "
                        "only the last K training days are used, the test days are the same for every K.")
def fig9(suite: PITuningSuite) -> pd.DataFrame:
    split_days = tuple(suite.settings["split_days"])
    frames = [_method_frame(suite, suite.run_dir, f"train_days{k}", SWEEP_METHODS, keys={"train_days": k},
                            split_days=split_days, train_days=k)
              for k in suite.settings["train_days"]]
    return mean_std(pd.concat(frames, ignore_index=True), ["train_days", "method"], METRICS)


@registry.register("pituning_fig10", "PITuning Figure 10: event-sequence length L",
                   plot=_sweep_plot("history", "event-sequence length L"),
                   note="One population run per L (RUN's config with that history, at the suite's "
                        "budget), then the individual stage on its student.")
def fig10(suite: PITuningSuite) -> pd.DataFrame:
    frames = []
    for length in suite.settings["histories"]:
        population = suite.population_run(f"history{length}", history=int(length))
        frames.append(_method_frame(suite, population, f"history{length}", SWEEP_METHODS,
                                    keys={"history": int(length)}))
    return mean_std(pd.concat(frames, ignore_index=True), ["history", "method"], METRICS)


# ----------------------------------------------------------------------------- Fig. 1


def user_intent_clusters(suite: PITuningSuite) -> dict:
    """Fig. 1's data: per-user intent distributions of (up to ``cluster_users``) population
    users, their KMeans clusters and t-SNE embedding, and the population's distribution.

    Returns:
        dict: ``intents`` (names), ``shares`` [n_users, n_intents], ``cluster`` [n_users],
        ``xy`` [n_users, 2], ``population`` [n_intents].
    """
    if "clusters" in suite._cache:
        return suite._cache["clusters"]
    population, _ = load_data(suite.run.config)
    counts = pd.crosstab(population["user_id"], population["intent"])  # [users, intents]
    rng = np.random.default_rng(suite.first_seed)
    n = min(len(counts), int(suite.settings["cluster_users"]))
    counts = counts.iloc[np.sort(rng.choice(len(counts), n, replace=False))]
    shares = counts.to_numpy(float) / counts.to_numpy(float).sum(axis=1, keepdims=True)
    k = min(int(suite.settings["clusters"]), n)
    cluster = KMeans(n_clusters=k, n_init=10, random_state=suite.first_seed).fit_predict(shares)
    xy = TSNE(n_components=2, perplexity=max(2.0, min(30.0, (n - 1) / 3)), init="pca",
              random_state=suite.first_seed).fit_transform(shares)
    totals = population["intent"].value_counts()
    suite._cache["clusters"] = out = {
        "intents": list(counts.columns), "shares": shares, "cluster": cluster, "xy": xy,
        "population": (totals.reindex(counts.columns).fillna(0) / totals.sum()).to_numpy(float)}
    return out


def plot_clusters(frame, path, suite) -> None:
    data = user_intent_clusters(suite)
    k = int(data["cluster"].max()) + 1
    plt = pyplot()
    fig = plt.figure(figsize=(4 + 3.2 * k, 3.6))
    grid = fig.add_gridspec(1, k + 1, width_ratios=[1.3] + [1] * k)
    ax = fig.add_subplot(grid[0])
    colours = plt.get_cmap("tab10")
    for c in range(k):
        ax.scatter(*data["xy"][data["cluster"] == c].T, s=8, color=colours(c), label=f"cluster {c + 1}")
    ax.set_title("t-SNE of users' intent distributions")
    ax.legend(fontsize=7)
    x = np.arange(len(data["intents"]))
    for c in range(k):
        axc = fig.add_subplot(grid[c + 1])
        axc.bar(x - 0.2, data["shares"][data["cluster"] == c].mean(axis=0), 0.4, color=colours(c),
                label=f"cluster {c + 1}")
        axc.bar(x + 0.2, data["population"], 0.4, color="grey", label="population")
        axc.set_xticks(x, [str(i + 1) for i in x], fontsize=6)
        axc.set_xlabel("intent")
        axc.legend(fontsize=7)
    save_png(fig, path)


@registry.register("pituning_fig1", "PITuning Figure 1: users' intent distributions, clustered (KMeans, t-SNE)",
                   plot=plot_clusters,
                   note="Mean intent distribution of each KMeans cluster of population users beside the "
                        "population's; l1_to_population is the L1 distance between the two.")
def fig1(suite: PITuningSuite) -> pd.DataFrame:
    data = user_intent_clusters(suite)
    rows = []
    for c in range(int(data["cluster"].max()) + 1):
        mean = data["shares"][data["cluster"] == c].mean(axis=0)
        rows.append({"group": f"cluster {c + 1}", "users": int((data["cluster"] == c).sum()),
                     "l1_to_population": float(np.abs(mean - data["population"]).sum()),
                     **dict(zip(data["intents"], mean))})
    rows.append({"group": "population", "users": len(data["cluster"]), "l1_to_population": 0.0,
                 **dict(zip(data["intents"], data["population"]))})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- Fig. 7


def predicted_distribution(population_dir, suite, model="teacher") -> tuple:
    """``(true shares, predicted shares)`` [n_intents] of argmax predictions of a population
    run's ``model`` on its population test windows."""
    run = suite.load_run(population_dir)
    _, _, test = run_windows(run)
    net = run.teacher if model == "teacher" else run.student
    predicted = predict_logits(net, test, 4 * run.config.batch_size).argmax(axis=1)
    n = run.vocabs.n_intents
    return (np.bincount(test.label, minlength=n)[:n] / len(test),
            np.bincount(predicted, minlength=n)[:n] / len(test))


@registry.register("pituning_fig7", "PITuning Figure 7: predicted against true intent distribution after population tuning",
                   plot=lambda frame, path, suite: _distribution_plot(frame, path),
                   note="Argmax predictions on the population test windows. OFA here: RUN's config with "
                        "the GPT2 attention and MLP frozen (layer norms, position embeddings, input and "
                        "output layers trained), no IAT, no reconstruction, and RUN's repeat_term "
                        "(Table 2's OFA row names it). Last row: total variation "
                        "distance to the true distribution.")
def fig7(suite: PITuningSuite) -> pd.DataFrame:
    full = suite.full_run()
    ofa = suite.population_run("ofa", **ofa_population(suite.run.config))
    true, teacher = predicted_distribution(full, suite, "teacher")
    _, student = predicted_distribution(full, suite, "student")
    _, ofa_teacher = predicted_distribution(ofa, suite, "teacher")
    tokens = list(suite.load_run(full).vocabs.intent.tokens)
    real = [i for i in range(len(tokens)) if true[i] > 0 or teacher[i] > 0 or ofa_teacher[i] > 0]
    frame = pd.DataFrame({"intent": [tokens[i] for i in real], "true": true[real],
                          "pituning_teacher": teacher[real], "pituning_student": student[real],
                          "ofa": ofa_teacher[real]})
    tv = {c: 0.5 * float(np.abs(frame[c] - frame["true"]).sum()) for c in frame.columns[1:]}
    return pd.concat([frame, pd.DataFrame([{"intent": "total variation to true", **tv}])], ignore_index=True)


def _distribution_plot(frame, path) -> None:
    frame = frame[frame["intent"] != "total variation to true"]
    columns = ["true", "pituning_teacher", "pituning_student", "ofa"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(frame)), 3.6))
    x = np.arange(len(frame))
    for i, c in enumerate(columns):
        ax.bar(x + (i - 1.5) * 0.2, frame[c], 0.2, label=c)
    ax.set_xticks(x, frame["intent"], rotation=60, fontsize=7)
    ax.set_ylabel("share of test windows")
    ax.legend(fontsize=7)
    save_png(fig, path)


# ----------------------------------------------------------------------------- Fig. 5


def phase_history(run_dir, phase="teacher") -> tuple:
    """``(history, monitor)`` of a population run's ``phase`` (``training.json``: per-epoch
    values by name, and the validation loss that selected the epoch)."""
    training = RunFiles(run_dir, what="population run").json(TRAINING_RECORD, default={})
    phase_record = training.get(phase, {})
    return phase_record.get("history", {}), phase_record.get("monitor") or "val_loss"


def fig5_runs(suite: PITuningSuite) -> dict:
    """``{label: population run}`` of Fig. 5: RUN's backbone (the pretrained GPT2 when RUN
    has one), Transformer-L (a random GPT2 of the same shape, trained from scratch) and
    Transformer-S (a random GPT2 of the student's shape), each at the suite's budget with
    ``curve_epochs`` teacher epochs. Models of the same backbone are one run with one label
    (``"GPT2 = Transformer-L (random:2x64, random init, no pretrained weights reachable)"``):
    with a random RUN backbone the GPT2 row is that random network, i.e. Transformer-L, and
    on presets whose teacher is the student's size Transformer-S is the same network too."""
    config = suite.run.config
    epochs = suite.settings.get("curve_epochs")
    budget = {"teacher_epochs": int(epochs), "student_epochs": 1} if epochs else {}
    gpt2 = suite.population_run("fig5_gpt2", **budget)
    pretrained = not RANDOM_PATTERN.match(str(config.backbone))
    if pretrained:
        shape = suite.load_run(gpt2).teacher.backbone.gpt2.config
        large = f"random:{shape.n_layer}x{shape.n_embd}"
    else:
        large = str(config.backbone)
    models = {str(config.backbone): ["GPT2"]}
    for name, spec in (("Transformer-L", large),
                       ("Transformer-S", f"random:{config.student_layers}x{config.student_width}")):
        models.setdefault(spec, []).append(name)
    runs = {}
    for spec, names in models.items():
        if spec == str(config.backbone):
            path, kind = gpt2, ("pretrained" if pretrained else
                                "random init, no pretrained weights reachable")
        else:
            path, kind = suite.population_run(f"fig5_{names[0].lower().replace('-', '_')}", **budget,
                                              embedding_dim=0, backbone=spec), "random init"
        runs[f"{' = '.join(names)} ({spec}, {kind})"] = path
    return runs


def plot_fig5(frame, path, suite) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, (metric, ylabel) in zip(axes, (("accuracy", "intent accuracy"), ("intent_loss", "intent loss"))):
        for i, (model, part) in enumerate(frame.groupby("model", sort=False)):
            colour = plt.get_cmap("tab10")(i)
            for split, style in (("train", "--"), ("val", "-")):
                column = metric if split == "train" else f"val_{metric}"
                if column in part and part[column].notna().any():
                    ax.plot(part["epoch"], part[column], style, marker="o", color=colour,
                            label=f"{model} ({split})")
        ax.set_xlabel("teacher epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", fontsize=7,
               bbox_to_anchor=(0.5, 0.0))  # below the panels: the labels are long
    if any("no pretrained weights" in m for m in frame["model"]):
        fig.suptitle("No pretrained GPT2 reachable: the 'GPT2' curve is a randomly initialized "
                     "GPT2 (the same network as Transformer-L)", fontsize=9, color="tab:red")
    save_png(fig, path)


@registry.register("pituning_fig5", "PITuning Figure 5: the pretrained LM against transformers trained from scratch",
                   plot=plot_fig5,
                   note="Teacher population tuning (RUN's config at the suite's budget, curve_epochs "
                        "teacher epochs, early stopping as usual): RUN's GPT2 backbone against "
                        "Transformer-L (a GPT2 of the same shape, random init) and Transformer-S (the "
                        "student's shape, random init); accuracy and intent loss on training and "
                        "validation windows per epoch. When RUN's backbone is random:<L>x<W> (no "
                        "pretrained weights reachable) the GPT2 row is that random network, i.e. "
                        "Transformer-L, and the figure says so; models of the same shape are one run "
                        "(on the tiny and demo presets the student is the teacher's size, so "
                        "Transformer-S is that network too).")
def fig5(suite: PITuningSuite) -> pd.DataFrame:
    rows = []
    for model, run_dir in fig5_runs(suite).items():
        history, monitor = phase_history(run_dir)
        loss = monitor.removeprefix("val_")  # the intent loss (without reconstruction)
        for i, epoch in enumerate(history.get("epoch", [])):
            row = {"model": model, "epoch": int(epoch)}
            for name, key in (("accuracy", "accuracy"), ("intent_loss", loss)):
                for prefix in ("", "val_"):
                    values = history.get(prefix + key) or []
                    row[prefix + name] = values[i] if i < len(values) else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- Fig. 6


def plot_fig6(frame, path, suite) -> None:
    positions = [c for c in frame.columns if c.startswith("pos")]
    maps, intents = {}, None
    for model, part in frame.groupby("model", sort=False):
        maps[model] = part[positions].to_numpy(float)
        intents = list(enumerate(part["intent"]))
    plot_attention_maps(maps, intents, path)


@registry.register("pituning_fig6", "PITuning Figure 6: IAT attention map per intent",
                   plot=plot_fig6,
                   note="RUN's teacher and student on RUN's population test windows (up to 4,096): "
                        "for each intent, the mean share of |w_ij| (PITuning Eq. 3) at each history "
                        "position (pos1 = oldest, posL = newest event); intents that occur in the test "
                        "windows. Empty when the run has no IAT (use_iat=false).")
def fig6(suite: PITuningSuite) -> pd.DataFrame:
    run = suite.run
    _, _, test = run_windows(run)
    tokens = list(run.vocabs.intent.tokens)
    shown = shown_intents(tokens, len(run.vocabs.intent.reserved), test.label)
    rows = []
    for model, net in (("teacher", run.teacher), ("student", run.student)):
        values = attention_map(net, test, 4 * run.config.batch_size, seed=suite.first_seed)
        if values is None:
            continue
        for i, name in shown:
            rows.append({"model": model, "intent": name,
                         **{f"pos{j + 1}": float(v) for j, v in enumerate(values[i])}})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the suite


def run_pituning_suite(run_dir, out_dir, preset="demo", seeds=3, first_seed=None, only=None, workers=1) -> dict:
    """Runs PITuning's experiments on the population run ``run_dir`` into ``out_dir``;
    returns ``{name: "ran" | "reused"}``.

    Args:
        run_dir: str or Path. A finished population run.
        out_dir: str or Path. The experiments folder.
        preset: str. A key of ``SUITE_PRESETS`` (tiny, demo, full).
        seeds: int. Seeds of each individual-level setting (mean ± std).
        first_seed: int or None. The first seed (default: the run's seed).
        only: list of experiment names or None (all).
        workers: int. Processes of the individual stage.
    """
    registry.select(only)  # unknown names fail before any work
    suite = PITuningSuite(run_dir, out_dir, preset=preset, seeds=seeds, first_seed=0, workers=workers)
    suite.first_seed = int(suite.run.config.seed) if first_seed is None else int(first_seed)
    return run_suite(registry, suite, out_dir, only)

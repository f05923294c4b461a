"""A UAF run's modes reloaded (``UAFRecommender.from_run``) and ``--dump-topk`` on the tiny
preset."""

import json

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.cli import run_main


@pytest.fixture(scope="module")
def uaf_run(tmp_path_factory):
    from trainers.uaf import main

    out = tmp_path_factory.mktemp("uaf") / "run"
    assert main(["--mode", "mostpop,soft", "--preset", "tiny", "--out", str(out), "--quiet",
                 "--dump-topk", "3"]) == 0
    return out


def _task():
    from nextitnet.data import encode_recommendation_task, fit_source_vocab, generate_cross_domain
    from nextitnet.uaf_config import PRESETS, UAFConfig
    from pitune_tf.common.config import resolve_config

    config = resolve_config(UAFConfig, PRESETS, "tiny")
    data = generate_cross_domain(config.synthetic, seed=config.seed)
    task = encode_recommendation_task(data, config.max_len, config.fractions, config.seed,
                                      config.train_fraction, fit_source_vocab(data))
    return config, data, task


def test_from_run_reproduces_the_run_test_metrics(uaf_run):
    """The reloaded best weights score the test split exactly as the run did."""
    from nextitnet.fine_tuning_stage import scorer
    from nextitnet.uaf_recommender import UAFRecommender

    config, _, task = _task()
    rec = UAFRecommender.from_run(uaf_run, mode="soft")
    assert rec.target_tokens == task.output_tokens
    test = task.splits["test"]
    score_fn, _ = scorer(config, "bpr")
    reloaded = score_fn(rec.scores(test["source"]), test)
    saved = json.loads((uaf_run / "modes" / "soft" / "metrics.json").read_text())["test"]
    for key in ("mrr@5", "hr@5", "full_mrr@5", "full_hr@20"):
        assert reloaded[key] == pytest.approx(saved[key], abs=1e-6), key
    with np.load(uaf_run / "modes" / "soft" / "test_ranks.npz") as ranks:  # the ledgers' pairs
        assert list(ranks["user"]) == [str(u) for u in test["user"]]
        mrr = np.where(ranks["ranks"] <= 5, 1.0 / ranks["ranks"], 0.0).mean()
    assert mrr == pytest.approx(saved["mrr@5"], abs=1e-6) and "ranks" not in saved


def test_dump_topk_files(uaf_run):
    from nextitnet.uaf_recommender import UAFRecommender

    config, data, task = _task()
    test = task.splits["test"]
    users = sorted(set(test["user"]))
    soft = pd.read_csv(uaf_run / "modes" / "soft" / "topk.csv", dtype={"user_id": str, "item": str})
    assert list(soft.columns) == ["user_id", "rank", "item", "score"]
    assert sorted(soft["user_id"].unique()) == users
    assert (soft.groupby("user_id")["rank"].apply(list) == pd.Series([[1, 2, 3]] * len(users),
                                                                      index=users)).all()
    assert "<unk>" not in set(soft["item"])
    # scores fall with the rank, and a user's training items are never recommended
    assert (soft.groupby("user_id")["score"].apply(lambda s: bool(np.all(np.diff(s) <= 0)))).all()
    row_of = {u: i for i, u in reversed(list(enumerate(test["user"])))}
    for user, rows in soft.groupby("user_id"):
        seen = {task.output_tokens[i] for i in test["seen"][row_of[user]]}
        assert not seen & set(rows["item"])
    # the same as recommending from the user's sequence through the reloaded model
    user = users[0]
    sequence = data.source[data.users.index(user)]
    exclude = {user: [task.output_tokens[i] for i in test["seen"][row_of[user]]]}
    again = UAFRecommender.from_run(uaf_run, "soft").recommend({user: sequence}, 3, exclude)
    assert again["item"].tolist() == soft[soft["user_id"] == user]["item"].tolist()
    np.testing.assert_allclose(again["score"], soft[soft["user_id"] == user]["score"], rtol=1e-5)
    mostpop = pd.read_csv(uaf_run / "modes" / "mostpop" / "topk.csv", dtype={"user_id": str})
    assert len(mostpop) == 3 * len(users)
    # random-items is scored (every table carries it) but not dumped: --mode did not name it
    assert (uaf_run / "modes/random-items/metrics.json").is_file()
    assert not (uaf_run / "modes/random-items/topk.csv").exists()


def test_bad_requests_are_one_error_line(uaf_run, tmp_path, capsys):
    from nextitnet.uaf_recommender import UAFRecommender
    from pitune_tf.common.errors import UserInputError
    from trainers.uaf import main

    with pytest.raises(UserInputError, match="did not train mode 'hard'"):
        UAFRecommender.from_run(uaf_run, "hard")
    with pytest.raises(UserInputError, match="not a fine-tuned mode"):
        UAFRecommender.from_run(uaf_run, "mostpop")
    with pytest.raises(UserInputError, match="UAF run directory .* is missing config.json"):
        UAFRecommender.from_run(tmp_path, "soft")
    with pytest.raises(UserInputError, match="UAF run directory not found"):
        UAFRecommender.from_run(tmp_path / "missing", "soft")
    assert run_main(main, ["--mode", "mostpop", "--preset", "tiny", "--out", str(tmp_path / "r"),
                           "--dump-topk", "-1"]) == 2
    assert run_main(main, ["--mode", "mostpop", "--preset", "tiny", "--out", str(tmp_path / "r"),
                           "--dump-topk", "100000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: --dump-topk") for line in err), err

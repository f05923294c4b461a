"""Cross-domain data for UAF: ColdRec files, RecBole atomic files, the synthetic generator,
MovieLens-1M genre split."""

from nextitnet.data.atomic_files import read_atomic
from nextitnet.data.coldrec import read_coldrec, write_coldrec
from nextitnet.data.cross_domain_data import CrossDomainData
from nextitnet.data.encoding import (
    EncodedTask,
    encode_profile_task,
    encode_recommendation_task,
    fit_source_vocab,
    pretrain_windows,
)
from nextitnet.data.movielens import build_ml1m_genre_split, find_ml1m_dir
from nextitnet.data.synthetic import generate_cross_domain

__all__ = [
    "CrossDomainData",
    "EncodedTask",
    "build_ml1m_genre_split",
    "encode_profile_task",
    "encode_recommendation_task",
    "find_ml1m_dir",
    "fit_source_vocab",
    "generate_cross_domain",
    "pretrain_windows",
    "read_atomic",
    "read_coldrec",
    "write_coldrec",
]

"""Feature selection and removal: scikit-learn selectors, CTR field rankers, the ERASE harness.

Importing this package registers every field ranker (one module each).
"""

from erasekit.features import adafs, autofield, gbdt, l1, lpfs, mrmr, optfs, permutation, quickselection, removal, sfs, shark  # noqa: F401
from erasekit.features.base import (
    FieldScores,
    RankingSelector,
    SelectionData,
    available_rankers,
    parse_ranker_list,
    parse_ranker_params,
    ranker_info,
    register_ranker,
)
from erasekit.features.gbdt import GBDTSelector
from erasekit.features.l1 import L1Selector
from erasekit.features.mrmr import MRMRSelector
from erasekit.features.optfs import OptFSParams, OptFSResult, optfs_select
from erasekit.features.permutation import PermutationSelector
from erasekit.features.quickselection import QuickSelection
from erasekit.features.removal import RemovalSelector, backward_eliminate

__all__ = [
    "FieldScores",
    "GBDTSelector",
    "L1Selector",
    "MRMRSelector",
    "OptFSParams",
    "OptFSResult",
    "PermutationSelector",
    "QuickSelection",
    "RankingSelector",
    "RemovalSelector",
    "SelectionData",
    "available_rankers",
    "backward_eliminate",
    "optfs_select",
    "parse_ranker_list",
    "parse_ranker_params",
    "ranker_info",
    "register_ranker",
]

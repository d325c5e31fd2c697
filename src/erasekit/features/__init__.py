"""Feature selection and removal: one scikit-learn selector per method, registered by name.

``base`` holds the contract (the selector base class, what a field ranker may use, the
registry) and ``gates`` the gate-based family's base and search loop. Every other module is
one method and registers itself; they are imported here automatically.
"""

import importlib
import pkgutil

from erasekit.features.base import (
    SELECTORS,
    FieldScores,
    FieldSelection,
    RankingSelector,
    SelectionData,
    available_selectors,
    parse_selector_list,
    parse_selector_params,
    rank_fields,
    register_selector,
    select_fields,
    selector_info,
)
from erasekit.features.gates import GateSelector

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "gates") and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

from erasekit.features.adafs import AdaFSSelector  # noqa: E402
from erasekit.features.autofield import AutoFieldSelector  # noqa: E402
from erasekit.features.gbdt import GBDTSelector  # noqa: E402
from erasekit.features.l1 import L1Selector  # noqa: E402
from erasekit.features.lpfs import LPFSSelector  # noqa: E402
from erasekit.features.mrmr import MRMRSelector  # noqa: E402
from erasekit.features.optfs import OptFSResult, OptFSSelector, optfs_select  # noqa: E402
from erasekit.features.permutation import PermutationSelector  # noqa: E402
from erasekit.features.quickselection import QuickSelection  # noqa: E402
from erasekit.features.removal import RemovalSelector, backward_eliminate  # noqa: E402
from erasekit.features.sfs import SFSSelector  # noqa: E402
from erasekit.features.shark import SharkSelector  # noqa: E402

__all__ = [
    "SELECTORS",
    "AdaFSSelector",
    "AutoFieldSelector",
    "FieldScores",
    "FieldSelection",
    "GBDTSelector",
    "GateSelector",
    "L1Selector",
    "LPFSSelector",
    "MRMRSelector",
    "OptFSResult",
    "OptFSSelector",
    "PermutationSelector",
    "QuickSelection",
    "RankingSelector",
    "RemovalSelector",
    "SFSSelector",
    "SelectionData",
    "SharkSelector",
    "available_selectors",
    "backward_eliminate",
    "optfs_select",
    "parse_selector_list",
    "parse_selector_params",
    "rank_fields",
    "register_selector",
    "select_fields",
    "selector_info",
]

"""Feature selection and removal: one scikit-learn selector per method, registered by name.

``base`` holds the contract (the selector base class, what a field ranker may use, the
registry) and ``gates`` the gate-based family's base and search loop. Every other module is
one method and registers itself; they are imported here automatically.
"""

from erasekit.core.registry import import_method_modules
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

import_method_modules(__name__, __path__, frozenset({"base", "gates"}))

from erasekit.features.optfs import OptFSResult, optfs_select  # noqa: E402
from erasekit.features.removal import backward_eliminate  # noqa: E402

# every selector class by name, e.g. ``from erasekit.features import GBDTSelector``
SELECTOR_CLASSES = {info.selector_type.__name__: info.selector_type for info in SELECTORS}


def __getattr__(name: str):
    if name in SELECTOR_CLASSES:
        return SELECTOR_CLASSES[name]
    raise AttributeError(f"module 'erasekit.features' has no attribute {name!r}")


__all__ = [
    "SELECTORS",
    "SELECTOR_CLASSES",
    "FieldScores",
    "FieldSelection",
    "GateSelector",
    "OptFSResult",
    "RankingSelector",
    "SelectionData",
    "available_selectors",
    "backward_eliminate",
    "optfs_select",
    "parse_selector_list",
    "parse_selector_params",
    "rank_fields",
    "register_selector",
    "select_fields",
    "selector_info",
    *sorted(SELECTOR_CLASSES),
]

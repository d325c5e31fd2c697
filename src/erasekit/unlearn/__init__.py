"""Unlearning training data: ``unlearn(task, "name", params)`` for every registered method.

Every module in this package except ``base`` is one method that registers itself with
``@register``; they are imported here automatically, so a new method is one new file.
Parameter classes are reachable by name, e.g. ``from erasekit.unlearn import SalUnParams``.
"""

from erasekit.core.registry import import_method_modules
from erasekit.unlearn.base import (
    METHODS,
    ImportanceCache,
    MethodInfo,
    SGDParams,
    Unlearned,
    UnlearningTask,
    available_methods,
    check_output_size,
    method_info,
    parse_method_list,
    parse_param_overrides,
    register,
    unlearn,
)

import_method_modules(__name__, __path__, frozenset({"base"}))

PARAMS = {info.params_type.__name__: info.params_type for info in METHODS}


def __getattr__(name: str):
    if name in PARAMS:
        return PARAMS[name]
    raise AttributeError(f"module 'erasekit.unlearn' has no attribute {name!r}")


__all__ = [
    "METHODS",
    "ImportanceCache",
    "MethodInfo",
    "SGDParams",
    "Unlearned",
    "UnlearningTask",
    "available_methods",
    "check_output_size",
    "method_info",
    "parse_method_list",
    "parse_param_overrides",
    "register",
    "unlearn",
    *sorted(PARAMS),
]

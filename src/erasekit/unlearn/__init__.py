"""Unlearning training data: ``unlearn(task, "name", params)`` for every registered method.

Importing this package registers every method module below; a new method is one new file
with a ``@register`` line plus its import here.
"""

from erasekit.unlearn import (  # noqa: F401  (imported for registration)
    boundary_shrink,
    finetune,
    gradient_ascent,
    l1_sparse,
    neggrad_plus,
    random_label,
    retrain,
    salun,
    scrub,
    sisa,
    ssd,
)
from erasekit.unlearn.base import (
    ImportanceCache,
    MethodInfo,
    Unlearned,
    UnlearningTask,
    available_methods,
    method_info,
    parse_method_list,
    parse_param_overrides,
    register,
    unlearn,
)
from erasekit.unlearn.boundary_shrink import BoundaryShrinkParams
from erasekit.unlearn.finetune import FinetuneParams
from erasekit.unlearn.gradient_ascent import GradientAscentParams
from erasekit.unlearn.l1_sparse import L1SparseParams
from erasekit.unlearn.neggrad_plus import NegGradPlusParams
from erasekit.unlearn.random_label import RandomLabelParams
from erasekit.unlearn.retrain import RetrainParams
from erasekit.unlearn.salun import SalUnParams
from erasekit.unlearn.scrub import SCRUBParams
from erasekit.unlearn.sisa import SISAParams
from erasekit.unlearn.ssd import LFSSDParams, SSDParams

__all__ = [
    "ImportanceCache",
    "MethodInfo",
    "Unlearned",
    "UnlearningTask",
    "available_methods",
    "method_info",
    "parse_method_list",
    "parse_param_overrides",
    "register",
    "unlearn",
    "BoundaryShrinkParams",
    "FinetuneParams",
    "GradientAscentParams",
    "L1SparseParams",
    "NegGradPlusParams",
    "RandomLabelParams",
    "RetrainParams",
    "SalUnParams",
    "SCRUBParams",
    "SISAParams",
    "LFSSDParams",
    "SSDParams",
]

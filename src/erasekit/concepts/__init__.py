"""Concept erasure: fit on features X and concept labels Z, get a frozen eraser.

``base`` holds the contract (fitters, frozen erasers, the registry), ``encoding`` the concept
labels, ``layers``/``sklearn`` how erasers are applied inside a model or a Pipeline. Every
other module is one method and registers itself; they are imported here automatically.
"""

from erasekit.concepts.base import (
    ERASERS,
    AffineEraser,
    ConceptEraser,
    QuadraticConceptEraser,
    available_erasers,
    eraser_fitter,
    eraser_info,
    fit_eraser,
    load_eraser,
    register_eraser,
    save_eraser,
)
from erasekit.concepts.encoding import ConceptEncoding
from erasekit.concepts.layers import collect_activations, erased_layers, find_layer, fit_layer_erasers
from erasekit.concepts.sklearn import ConceptEraserTransformer
from erasekit.core.registry import import_method_modules

import_method_modules(__name__, __path__, frozenset({"base", "encoding", "layers", "sklearn"}))

from erasekit.concepts.linear_edit import LinearEdit, LinearEditParams, LinearEditResult, edit_linear  # noqa: E402
from erasekit.concepts.tabular import FeatureRemover, load_remover, save_remover  # noqa: E402
from erasekit.concepts.token_projection import TokenProjectionParams, concept_subspace, filter_sentence  # noqa: E402

# every eraser's parameter class by name, e.g. ``from erasekit.concepts import LeaceParams``
PARAMS = {info.params_type.__name__: info.params_type for info in ERASERS}


def __getattr__(name: str):
    if name in PARAMS:
        return PARAMS[name]
    raise AttributeError(f"module 'erasekit.concepts' has no attribute {name!r}")


__all__ = [
    "ERASERS",
    "AffineEraser",
    "ConceptEncoding",
    "ConceptEraser",
    "ConceptEraserTransformer",
    "FeatureRemover",
    "LinearEdit",
    "LinearEditParams",
    "LinearEditResult",
    "QuadraticConceptEraser",
    "TokenProjectionParams",
    "available_erasers",
    "collect_activations",
    "concept_subspace",
    "edit_linear",
    "erased_layers",
    "eraser_fitter",
    "eraser_info",
    "filter_sentence",
    "find_layer",
    "fit_eraser",
    "fit_layer_erasers",
    "load_eraser",
    "load_remover",
    "register_eraser",
    "save_eraser",
    "save_remover",
    *sorted(PARAMS),
]

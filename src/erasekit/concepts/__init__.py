"""Concept erasure: fit on features X and concept labels Z, get a frozen eraser.

Importing this package registers every eraser below (one file each).
"""

from erasekit.concepts import inlp, leace, quadratic  # noqa: F401  (registration)
from erasekit.concepts.base import (
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
from erasekit.concepts.inlp import INLPParams
from erasekit.concepts.leace import LeaceParams
from erasekit.concepts.quadratic import QuadraticParams
from erasekit.concepts.sklearn import ConceptEraserTransformer

__all__ = [
    "AffineEraser",
    "ConceptEncoding",
    "ConceptEraser",
    "ConceptEraserTransformer",
    "INLPParams",
    "LeaceParams",
    "QuadraticConceptEraser",
    "QuadraticParams",
    "available_erasers",
    "eraser_fitter",
    "eraser_info",
    "fit_eraser",
    "load_eraser",
    "register_eraser",
    "save_eraser",
]
from erasekit.concepts.layers import collect_activations, erased_layers, find_layer, fit_layer_erasers  # noqa: E402

__all__ += ["collect_activations", "erased_layers", "find_layer", "fit_layer_erasers"]
from erasekit.concepts.linear_edit import LinearEdit, LinearEditParams, LinearEditResult, edit_linear  # noqa: E402

__all__ += ["LinearEdit", "LinearEditParams", "LinearEditResult", "edit_linear"]
from erasekit.concepts.tabular import FeatureRemover, Reconstruction, reconstruction_audit  # noqa: E402

__all__ += ["FeatureRemover", "Reconstruction", "reconstruction_audit"]
from erasekit.concepts.token_projection import TokenProjectionParams, concept_subspace, filter_sentence  # noqa: E402

__all__ += ["TokenProjectionParams", "concept_subspace", "filter_sentence"]

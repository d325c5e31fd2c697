"""Concept erasure in text-to-image diffusion models: one file per method, registered by name.

Every method has one verb: ``method(model, request, params) -> ErasedDiffusion`` — it takes a
:class:`~erasekit.models.diffusion_testbed.DiffusionModel` (any diffusers
``UNet2DConditionModel`` plus a text encoder that returns token states), never changes it, and
returns an edited copy of the UNet.
"""

from erasekit.core.registry import import_method_modules
from erasekit.generative.base import (
    DIFFUSION_METHODS,
    ConceptRequest,
    DiffusionMethodInfo,
    ErasedDiffusion,
    available_diffusion_methods,
    diffusion_method_info,
    erase_concepts,
    register_diffusion_method,
)

import_method_modules(__name__, __path__, frozenset({"base", "testbed_files"}))

from erasekit.generative.testbed_files import edited_testbed_files, load_edited_testbed  # noqa: E402 — after the methods

__all__ = [
    "DIFFUSION_METHODS",
    "ConceptRequest",
    "DiffusionMethodInfo",
    "ErasedDiffusion",
    "available_diffusion_methods",
    "diffusion_method_info",
    "edited_testbed_files",
    "erase_concepts",
    "load_edited_testbed",
    "register_diffusion_method",
]

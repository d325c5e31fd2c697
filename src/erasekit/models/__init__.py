"""Reference models and safe model files."""

from erasekit.models.io import SavedModel, load_model, save_model, sidecar_path
from erasekit.models.zoo import ARCHITECTURES, ModelSpec, build_model

__all__ = ["ARCHITECTURES", "ModelSpec", "SavedModel", "build_model", "load_model", "save_model", "sidecar_path"]

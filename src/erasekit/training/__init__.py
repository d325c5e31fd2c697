"""How models are trained and kept: the :class:`Recipe` shared by the original and the retrain reference,
the training loop, the fine-tuning steps that unlearning methods reuse, and safe model files
(safetensors weights plus a JSON sidecar recording the architecture, recipe and data)."""

from erasekit.training.files import SavedModel, load_model, save_model, sidecar_path
from erasekit.training.loop import Recipe, fresh_init, train

__all__ = ["Recipe", "SavedModel", "fresh_init", "load_model", "save_model", "sidecar_path", "train"]

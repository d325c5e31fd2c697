"""erasekit — remove training data, concepts and features from ML models, and prove it."""

__version__ = "0.1.0"

from erasekit.data import ArrayDataset, DataSplits, ForgetSpec, load_data  # noqa: E402
from erasekit.errors import (  # noqa: E402
    DataError,
    ErasekitError,
    ForgetSetError,
    MethodError,
    ModelError,
    OutputError,
)
from erasekit.models import build_model, load_model, save_model  # noqa: E402
from erasekit.training import Recipe, train  # noqa: E402
from erasekit.unlearn import Unlearned, UnlearningTask, available_methods  # noqa: E402

__all__ = [
    "__version__",
    "ArrayDataset",
    "DataSplits",
    "ForgetSpec",
    "load_data",
    "ErasekitError",
    "DataError",
    "ForgetSetError",
    "MethodError",
    "ModelError",
    "OutputError",
    "build_model",
    "load_model",
    "save_model",
    "Recipe",
    "train",
    "Unlearned",
    "UnlearningTask",
    "available_methods",
]

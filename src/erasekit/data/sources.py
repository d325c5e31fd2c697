"""The one ``--data`` grammar every command shares: ``KIND`` or ``KIND:ARGUMENT``.

Each command says which kinds it reads; a kind it does not read is refused with the list of
those it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from erasekit.core.errors import DataError, suggest

KINDS: dict[str, str] = {
    "digits": "digits",
    "mnist": "mnist:DIR",
    "csv": "csv:PATH",
    "parquet": "parquet:PATH",
    "criteo": "criteo:PATH",
    "libsvm": "libsvm:PATH",
    "adult": "adult:DIR",
    "synthetic": "synthetic[:ROWS]",
}
NO_ARGUMENT = ("digits",)
OPTIONAL_ARGUMENT = ("synthetic",)

CLASSIFICATION_KINDS = ("digits", "mnist", "csv", "parquet")  # train / unlearn / sisa
TABLE_KINDS = ("csv", "parquet")  # erase
FIELD_KINDS = ("csv", "parquet", "criteo", "libsvm", "adult", "synthetic")  # select


def grammar(kinds: Sequence[str]) -> str:
    """``"digits | mnist:DIR | …"`` for the help text of a command reading ``kinds``."""
    return " | ".join(KINDS[k] for k in kinds)


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value: its kind and argument (a path, or a row count for synthetic data)."""

    kind: str
    argument: str = ""

    @classmethod
    def parse(cls, text: str, accepted: Sequence[str] = tuple(KINDS)) -> DataSpec:
        kind, sep, argument = text.strip().partition(":")
        if kind not in KINDS:
            raise DataError(f"unknown data spec '{text}'{suggest(kind, accepted)}; this command reads {grammar(accepted)}")
        if kind not in accepted:
            raise DataError(f"{kind} data cannot be used here; this command reads {grammar(accepted)}")
        if kind in NO_ARGUMENT and sep:
            raise DataError(f"'{kind}' takes no argument, got '{text}'")
        if kind not in NO_ARGUMENT + OPTIONAL_ARGUMENT and not argument:
            raise DataError(f"--data '{text}' needs a path after the colon: {KINDS[kind]}")
        return cls(kind, argument)

    @property
    def path(self) -> Path:
        return Path(self.argument)

    def absolute(self) -> DataSpec:
        """The same spec with its path made absolute (later commands may run from another directory)."""
        if self.kind in NO_ARGUMENT + OPTIONAL_ARGUMENT or not self.argument:
            return self
        return DataSpec(self.kind, str(self.path.resolve()))

    def __str__(self) -> str:
        return f"{self.kind}:{self.argument}" if self.argument else self.kind

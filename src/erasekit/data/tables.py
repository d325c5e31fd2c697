"""The one table reader (CSV or Parquet, via pandas), and UCI Adult."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from erasekit.core.errors import DataError, suggest

ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
)

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: Path, categorical: Sequence[str] = (), as_text: bool = False) -> pd.DataFrame:
    """A CSV (header row) or Parquet file as a frame.

    Non-numeric columns are categorical; ``categorical`` columns are read as strings (or
    ``None`` where missing) even when they look numeric (zip codes, hashed ids). With
    ``as_text`` every CSV cell is read as written, as a string (``""`` for an empty cell),
    for callers that validate cells themselves and report line numbers.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            from erasekit.core.extras import require

            require("pyarrow", f"reading {path}")
            frame = pd.read_parquet(path)
            if as_text:
                frame = frame.astype(str)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)  # a row longer than the header
                if as_text:
                    frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False)
                else:
                    frame = pd.read_csv(path, skipinitialspace=True, index_col=False, dtype={c: str for c in categorical})
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0]
        raise DataError(f"cannot read {path}: {reason}") from None
    if frame.empty:
        raise DataError(f"{path} has no data rows; expected a header row and at least one data row")
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in categorical:
        if column not in frame.columns:
            raise DataError(f"categorical column '{column}' is not in {path}{suggest(column, frame.columns)}")
        values = frame[column]
        frame[column] = values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v))
    return frame


def load_adult(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """UCI Adult train and test frames. ``?`` becomes a missing value; test labels lose their trailing ``.``."""
    directory = Path(directory)
    frames = []
    for name, skip in (("adult.data", 0), ("adult.test", 1)):
        path = directory / name
        try:
            frame = pd.read_csv(
                path,
                header=None,
                names=list(ADULT_COLUMNS),
                sep=r",\s*",
                engine="python",
                na_values="?",
                skiprows=skip,
                skip_blank_lines=True,
            )
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
        if frame.shape[1] != len(ADULT_COLUMNS) or frame["income"].isna().any():
            raise DataError(f"{path} does not look like UCI Adult (15 columns with an income label)")
        frame["income"] = frame["income"].str.rstrip(".")
        frames.append(frame)
    return frames[0], frames[1]

"""Tables with mixed numeric and categorical columns (pandas), e.g. UCI Adult."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from erasekit.errors import DataError

ADULT_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income",
)


def load_adult(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """UCI Adult train and test frames. ``?`` becomes a missing value; test labels lose their trailing ``.``."""
    directory = Path(directory)
    frames = []
    for name, skip in (("adult.data", 0), ("adult.test", 1)):
        path = directory / name
        try:
            frame = pd.read_csv(path, header=None, names=list(ADULT_COLUMNS), sep=r",\s*", engine="python",
                                na_values="?", skiprows=skip, skip_blank_lines=True)
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
        if frame.shape[1] != len(ADULT_COLUMNS) or frame["income"].isna().any():
            raise DataError(f"{path} does not look like UCI Adult (15 columns with an income label)")
        frame["income"] = frame["income"].str.rstrip(".")
        frames.append(frame)
    return frames[0], frames[1]


def read_table(path: Path) -> pd.DataFrame:
    """A CSV with a header; non-numeric columns are categorical."""
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if frame.empty:
        raise DataError(f"{path} has no data rows")
    return frame

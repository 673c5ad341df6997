"""A numeric view of a feature frame for SHAP maskers, decoded back before the model scores it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from assurance.checks.rows import is_categorical


class Codec:
    """A numeric view of a feature frame for maskers: categories become integer codes, and are decoded
    back (with the original dtypes) before the model scores them."""

    def __init__(self, frame: pd.DataFrame, features: list[str]):
        self.features = features
        self.dtypes = frame[features].dtypes
        self.categories = {
            c: pd.Index(frame[c].dropna().unique()) for c in features if is_categorical(frame[c])
        }

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.features)))
        for j, col in enumerate(self.features):
            if col in self.categories:
                codes = self.categories[col].get_indexer(frame[col]).astype(float)
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, j] = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        return out

    def decode(self, array: np.ndarray) -> pd.DataFrame:
        data = {}
        for j, col in enumerate(self.features):
            values = array[:, j]
            if col in self.categories:
                codes = np.nan_to_num(values, nan=-1).astype(int)
                decoded = pd.Series(self.categories[col].take(np.clip(codes, 0, None)), dtype=object).where(
                    codes >= 0
                )
            else:
                decoded = pd.Series(values)
            data[col] = _restore(decoded, self.dtypes[col])
        return pd.DataFrame(data)


def _restore(values: pd.Series, dtype: Any) -> pd.Series:
    """The original dtype when the values allow it (no missing values in an integer column, say)."""
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        return values

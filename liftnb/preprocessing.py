"""Numbers rewritten before they become words: values as z-scores of the training rows."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse
from pandas.api.types import is_bool_dtype, is_complex_dtype, is_numeric_dtype
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted


class StandardisedValues(TransformerMixin, BaseEstimator):
    """Numeric columns rewritten as z-scores of the rows `fit` saw; codes, booleans and text are left as they are.

    A prompt then writes every measured feature on one scale ("x3=-0.53" rather than "x3=12669"): fewer digits for
    large numbers, and the same size means the same distance from the training mean in every column. Missing cells
    stay missing. Use it before LIFTClassifier or LIFTRegressor (e.g. `make_pipeline(StandardisedValues(),
    LIFTClassifier())`); validation data given to `fit` must be transformed by the same fitted instance."""

    def __init__(self, columns=None, max_levels: int = 10, decimals: int | None = 2):
        self.columns = columns  # the columns to rewrite; None: every numeric column but codes
        self.max_levels = max_levels  # whole-number columns with at most this many distinct training values are codes
        self.decimals = decimals  # z-scores rounded to this many decimals (None: not rounded). 2 is what a template
        # writes at its default max_precision, so prompts are the same, and z-scores near 0 are 0 rather than
        # values a template warns about because they print as 0

    def fit(self, X, y=None):
        frame = _as_frame(X)
        if not isinstance(self.max_levels, (int, np.integer)) or isinstance(self.max_levels, bool) \
                or self.max_levels < 1:
            raise ValueError(f"max_levels must be a positive integer, not {self.max_levels!r}.")
        if self.decimals is not None and (not isinstance(self.decimals, (int, np.integer))
                                          or isinstance(self.decimals, bool) or self.decimals < 0):
            raise ValueError(f"decimals must be None or a whole number >= 0, not {self.decimals!r}.")
        if self.columns is None:
            chosen = [c for c in frame.columns if _is_number(frame[c]) and not _is_code(frame[c], self.max_levels)]
        else:
            chosen = list(self.columns)
            unknown = [c for c in chosen if c not in frame.columns]
            if unknown:
                raise ValueError(f"columns {unknown} are not in the data (its columns: {list(frame.columns)}).")
            not_numbers = [c for c in chosen if not _is_number(frame[c])]
            if not_numbers:
                raise ValueError(f"columns {not_numbers} are not numeric and cannot be standardised.")
        numbers = [c for c in frame.columns if _is_number(frame[c])]
        infinite = [c for c in numbers if np.isinf(frame[c].to_numpy(dtype=float)).any()]
        if infinite:
            raise ValueError(f"columns {infinite} hold infinite values; only finite numbers or missing cells can be "
                             f"written.")
        values = frame[chosen].to_numpy(dtype=float)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.columns_ = chosen
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column with no value at all: mean NaN, stays missing
            self.mean_ = np.nanmean(values, axis=0)
            spread = np.nanstd(values, axis=0)
        self.scale_ = np.where(np.nan_to_num(spread) > 0, spread, 1.0)  # a constant column becomes 0, not NaN
        return self

    def transform(self, X):
        check_is_fitted(self, "columns_")
        frame = _as_frame(X)
        if not isinstance(X, pd.DataFrame) and frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} features, but StandardisedValues is expecting "
                             f"{self.n_features_in_} features as input.")
        if not isinstance(X, pd.DataFrame):  # an array's columns are the fitted table's, in order
            frame.columns = list(self.feature_names_in_)
        missing = [c for c in self.feature_names_in_ if c not in frame.columns]
        if missing:
            raise ValueError(f"columns {missing} were seen in fit but are not in the data to transform.")
        infinite = [c for c in self.columns_ if np.isinf(frame[c].to_numpy(dtype=float, na_value=np.nan)).any()]
        if infinite:
            raise ValueError(f"columns {infinite} hold infinite values; only finite numbers or missing cells can be "
                             f"written.")
        out = frame.copy()
        for column, mean, scale in zip(self.columns_, self.mean_, self.scale_):
            scores = (frame[column].astype(float) - mean) / scale
            out[column] = scores if self.decimals is None else scores.round(self.decimals)
        return out if isinstance(X, pd.DataFrame) else out.to_numpy()

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "columns_")
        return self.feature_names_in_.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing cell stays missing (templates write or leave it out)
        tags.input_tags.string = True  # text columns pass through unchanged
        return tags


def _as_frame(X) -> pd.DataFrame:
    """The data as a DataFrame (arrays get columns 0..n-1), checked to be a dense, non-empty 2-D table."""
    if scipy.sparse.issparse(X):
        raise TypeError("sparse input is not supported: pass a dense array or a DataFrame.")
    frame = X if isinstance(X, pd.DataFrame) else None
    if frame is None:
        array = np.asarray(X)
        if array.ndim != 2:
            raise ValueError(f"expected a 2-D table of rows and columns, got an array of shape {array.shape}. "
                             f"Reshape your data, e.g. with array.reshape(-1, 1) for a single feature.")
        frame = pd.DataFrame(array)
    if frame.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={frame.shape}) while a minimum of 1 is required.")
    if frame.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={frame.shape}) while a minimum of 1 is required.")
    complex_columns = [c for c in frame.columns if is_complex_dtype(frame[c])]
    if complex_columns:
        raise ValueError(f"Complex data not supported: columns {complex_columns} hold complex numbers.")
    return frame


def _is_number(column: pd.Series) -> bool:
    return is_numeric_dtype(column) and not is_bool_dtype(column)


def _is_code(column: pd.Series, max_levels: int) -> bool:
    """Whole numbers with few distinct values (1-3 for a region, 0/1 for a flag) are codes, not measurements; a
    fraction is always a measurement, however few its values (Margin's multiples of 1/512)."""
    values = column.dropna().to_numpy(dtype=float)
    return column.nunique() <= max_levels and bool(np.all(values == np.round(values)))

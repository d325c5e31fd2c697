"""A scikit-learn transformer around the erasers, for use inside a ``Pipeline``.

The concept never comes from ``y``: inside a ``Pipeline``, ``y`` is the main task's target,
and erasing it would erase the very thing the next step must predict. The concept comes from

- a column of ``X`` (``concept_column="gender"`` for a DataFrame, or an integer position):
  it is taken out of the features, and the remaining columns are erased; or
- metadata routing: ``pipe.fit(X, y, concept=z)`` with
  ``sklearn.set_config(enable_metadata_routing=True)`` and
  ``ConceptEraserTransformer().set_fit_request(concept=True)``; or
- an eraser fitted beforehand: ``ConceptEraserTransformer(eraser=fit_eraser(X, z))``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from erasekit.concepts.base import eraser_info, fit_eraser
from erasekit.core.errors import ConceptError


class ConceptInputError(ConceptError, ValueError):
    """Bad input to the transformer (also a ValueError, as scikit-learn expects)."""


class ConceptEraserTransformer(TransformerMixin, BaseEstimator):
    """Erase a concept with ``method`` (leace | leace_orth | inlp); see the module docstring for where the concept comes from.

    ``get_feature_names_out`` gives the kept columns' names, and ``set_output(transform="pandas")``
    returns a DataFrame. The quadratic eraser needs labels at transform time, which a
    transformer does not get, so it is refused here.
    """

    def __init__(self, method: str = "leace", params=None, eraser=None, concept_column=None):
        self.method = method
        self.params = params
        self.eraser = eraser
        self.concept_column = concept_column

    def fit(self, X, y=None, concept=None):
        """Fit the eraser on ``X``; ``y`` (the main task's target) is ignored. ``concept``: one label per row."""
        if self.eraser is None and eraser_info(self.method).needs_labels:
            raise ConceptInputError(
                "the quadratic eraser needs concept labels at transform time; use leace, leace_orth or inlp in a Pipeline"
            )
        features, column_concept = self._split(X, fitting=True)
        if self.eraser is not None:
            if concept is not None or self.concept_column is not None:
                raise ConceptInputError("give either a fitted eraser or a concept to fit one, not both")
            if features.shape[1] != self.eraser.x_dim:
                raise ConceptInputError(f"the eraser was fitted on {self.eraser.x_dim} features but X has {features.shape[1]}")
            self.eraser_ = self.eraser
            return self
        if concept is not None and column_concept is not None:
            raise ConceptInputError("give the concept either as concept_column or as fit(..., concept=z), not both")
        labels = column_concept if column_concept is not None else concept
        if labels is None:
            raise ConceptInputError(
                "no concept to erase: set concept_column='COL', pass fit(X, y, concept=z) (metadata routing), or give "
                "eraser=fit_eraser(X, z); y is the main task's target and is never used as the concept"
            )
        labels = np.asarray(labels)
        if len(features) < 2:
            raise ConceptInputError(f"X has {len(features)} sample(s); fitting an eraser needs at least two")
        if len(labels) != len(features):
            raise ConceptInputError(f"the concept has {len(labels)} labels but X has {len(features)} rows")
        try:
            self.eraser_ = fit_eraser(features, labels, self.method, self.params)
        except ConceptError as exc:
            raise ConceptInputError(str(exc)) from None
        return self

    def transform(self, X):
        check_is_fitted(self, "eraser_")
        features, _ = self._split(X, fitting=False)
        return self.eraser_(features)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "n_features_in_")
        names = getattr(self, "feature_names_in_", None)
        if input_features is not None:
            names = np.asarray(input_features, dtype=object)
            if len(names) != self.n_features_in_:
                raise ConceptInputError(
                    f"input_features has {len(names)} names but the transformer was fitted on {self.n_features_in_}"
                )
        if names is None:
            names = np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        keep = np.ones(len(names), dtype=bool)
        if self._concept_index is not None:
            keep[self._concept_index] = False
        return np.asarray(names, dtype=object)[keep]

    def _split(self, X, fitting: bool):
        """(features without the concept column as float64, the concept column or None)."""
        if self.concept_column is not None and hasattr(X, "columns"):
            if self.concept_column not in X.columns:
                raise ConceptInputError(
                    f"concept column '{self.concept_column}' is not in X (columns: {', '.join(map(str, X.columns))})"
                )
            concept = X[self.concept_column].to_numpy()
            values = validate_data(self, X, reset=fitting, dtype=None, ensure_all_finite=False)
            index = list(X.columns).index(self.concept_column)
        else:
            values = validate_data(self, X, reset=fitting, dtype="numeric", ensure_all_finite=True)
            index = None
            if self.concept_column is not None:
                if not isinstance(self.concept_column, (int, np.integer)) or not 0 <= self.concept_column < values.shape[1]:
                    raise ConceptInputError(
                        f"concept_column={self.concept_column!r} must name a DataFrame column or be a column position 0..{values.shape[1] - 1}"
                    )
                index = int(self.concept_column)
            concept = None if index is None else values[:, index]
        if fitting:
            self._concept_index = index
        features = values if index is None else np.delete(values, index, axis=1)
        if features.shape[1] == 0:
            raise ConceptInputError(
                f"X has {values.shape[1]} feature(s), only the concept column: there is nothing to erase the concept from"
            )
        try:
            features = np.asarray(features, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConceptInputError("the feature columns must be numeric; encode categorical columns first") from None
        if not np.isfinite(features).all():
            raise ConceptInputError("X contains NaN or inf; clean or impute it first")
        return features, concept

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

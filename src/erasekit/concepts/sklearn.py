"""A scikit-learn transformer around the erasers, for use inside a ``Pipeline``."""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from erasekit.concepts.base import eraser_info, fit_eraser
from erasekit.core.errors import ConceptError


class ConceptEraserTransformer(TransformerMixin, BaseEstimator):
    """Erase a concept with ``method`` (leace | leace_orth | inlp).

    ``fit(X, y)`` uses ``y`` as the *concept* labels Z. Inside a ``Pipeline`` whose ``fit``
    receives the main-task target instead, fit the eraser beforehand with
    :func:`~erasekit.concepts.fit_eraser` and wrap it: ``ConceptEraserTransformer(eraser=e)``
    (fitting is then a no-op). The quadratic eraser needs labels at transform time, which a
    transformer does not get, so it is refused here.
    """

    def __init__(self, method: str = "leace", params=None, eraser=None):
        self.method = method
        self.params = params
        self.eraser = eraser

    def fit(self, X, y=None):
        if self.eraser is not None:
            self.eraser_ = self.eraser
        else:
            if eraser_info(self.method).needs_labels:
                raise ConceptError(
                    "the quadratic eraser needs concept labels at transform time; use leace, leace_orth or inlp in a Pipeline"
                )
            if y is None:
                raise ConceptError("fit(X, y) needs the concept labels as y")
            self.eraser_ = fit_eraser(X, y, self.method, self.params)
        self.n_features_in_ = self.eraser_.x_dim
        return self

    def transform(self, X):
        check_is_fitted(self, "eraser_")
        return self.eraser_(X)

"""scikit-learn selectors: API conformance, recovery of known-relevant features, hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from erasekit.core.errors import FieldError
from erasekit.features import (
    GBDTSelector,
    L1Selector,
    MRMRSelector,
    PermutationSelector,
    QuickSelection,
    RandomForestSelector,
    RemovalSelector,
    UnivariateSelector,
)
from erasekit.features.base import ranking_from_scores
from erasekit.features.quickselection import _SparseLayer

SMALL = [
    PermutationSelector(n_repeats=2),
    GBDTSelector(n_estimators=20),
    L1Selector(n_path=5),
    MRMRSelector(),
    QuickSelection(hidden=16, epochs=2, batch_size=16),
    RemovalSelector(),
    RandomForestSelector(n_estimators=10),
    UnivariateSelector(),
    UnivariateSelector(relevance="mi"),
]


@parametrize_with_checks(SMALL)
def test_sklearn_api_conformance(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def informative():
    """6 informative columns first (logistic model, weights ±1…±2), then 14 noise columns."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 20))
    weights = np.array([2.0, -1.8, 1.6, -1.4, 1.2, -1.0])
    y = (rng.random(600) < 1 / (1 + np.exp(-X[:, :6] @ weights))).astype(int)
    return X, y


@pytest.mark.parametrize(
    "selector",
    [
        PermutationSelector(k=6),
        GBDTSelector(k=6, n_estimators=100),
        L1Selector(k=6),
        MRMRSelector(k=6),
        RemovalSelector(k=6),
        RandomForestSelector(k=6, n_estimators=100),
        UnivariateSelector(k=6),
    ],
    ids=lambda s: type(s).__name__,
)
def test_supervised_selectors_find_the_informative_columns(informative, selector):
    X, y = informative
    support = selector.fit(X, y).get_support()
    assert support.sum() == 6
    assert support[:6].sum() >= 5  # at most one noise column sneaks in
    assert selector.transform(X).shape == (600, 6)
    assert (selector.ranking_ >= 1).all() and selector.scores_.shape == (20,)


def test_quickselection_keeps_informative_pixels_without_labels():
    """On digits, QuickSelection's top pixels carry the class; its bottom pixels (the blank border) do not."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score

    X, y = load_digits(return_X_y=True)
    selector = QuickSelection(k=12, hidden=200, epochs=20, random_state=0).fit(X)  # labels never passed; the paper's lr
    order = np.argsort(selector.ranking_)
    accuracy = lambda columns: cross_val_score(LogisticRegression(max_iter=500), X[:, columns], y, cv=3).mean()  # noqa: E731
    top, bottom = accuracy(order[:12]), accuracy(order[-12:])
    assert top > 0.65 and top > bottom + 0.25


def test_selectors_work_in_a_pipeline_and_grid_search(informative):
    X, y = informative
    pipeline = make_pipeline(GBDTSelector(n_estimators=30), LogisticRegression())
    search = GridSearchCV(pipeline, {"gbdtselector__k": [2, 6]}, cv=3).fit(X, y)
    assert search.best_params_["gbdtselector__k"] == 6
    assert search.predict(X).shape == (600,)


def test_permutation_importance_is_measured_on_held_out_rows():
    """A memorising tree looks like it uses noise columns on its training rows, not on held-out rows."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] > 0).astype(int)
    flip = rng.random(400) < 0.2
    y[flip] = 1 - y[flip]  # label noise a deep tree memorises through the noise columns
    tree = DecisionTreeClassifier(random_state=0)
    selector = PermutationSelector(estimator=tree, k=1, n_repeats=5, random_state=0).fit(X, y)
    from sklearn.inspection import permutation_importance

    fitted = selector.estimator_
    on_training = permutation_importance(fitted, X, y, n_repeats=5, random_state=0).importances_mean
    assert selector.get_support()[0]
    assert (
        np.abs(selector.scores_[1:]).max() < 0.05 < on_training[1:].max()
    )  # positive control: training-row importance is inflated


def test_mrmr_skips_a_duplicate_of_an_already_chosen_column():
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    b = rng.normal(size=500)
    y = (a + 0.7 * b + 0.3 * rng.normal(size=500) > 0).astype(int)
    X = np.column_stack([a, a + 0.01 * rng.normal(size=500), b, rng.normal(size=500)])
    selector = MRMRSelector(k=2).fit(X, y)
    assert selector.ranking_[0] == 1 or selector.ranking_[1] == 1
    assert selector.get_support().tolist() in ([True, False, True, False], [False, True, True, False])
    # Relevance alone would pick both copies: the redundancy term is what prevents it.
    assert np.argsort(-selector.relevance_)[:2].tolist() in ([0, 1], [1, 0])


def test_mrmr_criterion_by_hand():
    """Second pick maximises relevance / mean |corr| with the first pick (hand-computed)."""
    X = np.array([[0, 0, 1], [1, 1, 0], [2, 2, 1], [3, 1, 0], [4, 3, 1], [5, 2, 0]], dtype=float)
    y = np.array([0, 0, 0, 1, 1, 1])
    from sklearn.feature_selection import f_classif

    relevance = f_classif(X, y)[0]
    corr = np.abs(np.corrcoef(X, rowvar=False))
    first = int(np.argmax(relevance))
    expected = [j for j in range(3) if j != first]
    second = max(expected, key=lambda j: relevance[j] / max(corr[first, j], 1e-3))
    selector = MRMRSelector(k=2, scheme="quotient").fit(X, y)
    assert selector.ranking_[first] == 1 and selector.ranking_[second] == 2
    assert np.isclose(selector.scores_[second], relevance[second] / corr[first, second])


def test_mrmr_difference_criterion_by_hand():
    """Default FCD: second pick maximises the correlation ratio η (from F) − mean |corr| with the picks so far."""
    X = np.array([[0, 0, 1], [1, 1, 0], [2, 2, 1], [3, 1, 0], [4, 3, 1], [5, 2, 0]], dtype=float)
    y = np.array([0, 0, 0, 1, 1, 1])
    from sklearn.feature_selection import f_classif

    relevance = f_classif(X, y)[0]
    corr = np.abs(np.corrcoef(X, rowvar=False))
    first = int(np.argmax(relevance))
    eta = np.sqrt(relevance / (relevance + 6 - 2))  # the correlation ratio for 2 classes and 6 rows: F(C−1)/(F(C−1)+n−C)
    criterion = {j: eta[j] - corr[first, j] for j in range(3) if j != first}
    second = max(criterion, key=lambda j: criterion[j])
    selector = MRMRSelector(k=2).fit(X, y)
    assert selector.ranking_[first] == 1 and selector.ranking_[second] == 2
    assert np.isclose(selector.scores_[second], criterion[second])


def test_supervised_selectors_beat_random_columns_on_a_wide_multiclass_table():
    """300 columns, 10 classes: each selector's 20 columns classify far better than 20 random ones."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(1200, 300, n_informative=20, n_redundant=20, n_classes=10, n_clusters_per_class=1, random_state=0)

    def accuracy(columns):
        model = LogisticRegression(max_iter=300).fit(X[:800][:, columns], y[:800])
        return model.score(X[800:][:, columns], y[800:])

    rng = np.random.default_rng(0)
    random_k = np.mean([accuracy(rng.choice(300, 20, replace=False)) for _ in range(5)])
    assert random_k < 0.3, "positive control: random columns carry little"
    for selector in (
        MRMRSelector(k=20),
        MRMRSelector(k=20, scheme="quotient"),
        GBDTSelector(k=20),
        L1Selector(k=20, n_path=8),
        RandomForestSelector(k=20, n_estimators=100),
        UnivariateSelector(k=20),
    ):
        chosen = np.flatnonzero(selector.fit(X[:800], y[:800]).get_support())
        assert accuracy(chosen) > random_k + 0.2, type(selector).__name__


def test_regression_targets_and_the_methods_that_refuse_them():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8))
    y = 3 * X[:, 2] - 2 * X[:, 5] + 0.1 * rng.normal(size=400)
    for selector in (
        MRMRSelector(k=2),
        GBDTSelector(k=2, n_estimators=50),
        L1Selector(k=2),
        PermutationSelector(k=2),
        RandomForestSelector(k=2, n_estimators=50),
        UnivariateSelector(k=2),
    ):
        selector.fit(X, y)
        assert selector.task_ == "regression" and set(np.flatnonzero(selector.get_support())) == {2, 5}, type(selector).__name__
    integral = np.round(y)  # integer-valued but continuous: say so with task=
    assert GBDTSelector(k=2, n_estimators=50, task="regression").fit(X, integral).task_ == "regression"
    from erasekit.features import OptFSSelector

    with pytest.raises(FieldError, match="cannot rank features for a regression target; methods that can: gbdt, l1"):
        OptFSSelector(k=2).fit(X, y)


def test_forest_and_univariate_keep_every_copy_of_a_relevant_column_where_mrmr_keeps_one():
    """Madelon-style: 5 informative columns, 15 linear combinations of them, 80 noise columns."""
    from sklearn.datasets import make_classification

    X, y = make_classification(800, 100, n_informative=5, n_redundant=15, shuffle=False, random_state=0)

    def relevant_in_top_20(selector):
        return int((np.flatnonzero(selector.fit(X, y).get_support()) < 20).sum())

    # positive control: mRMR's redundancy penalty skips copies, so the same count can come out low
    assert relevant_in_top_20(MRMRSelector(k=20)) <= 16
    assert relevant_in_top_20(RandomForestSelector(k=20, n_estimators=100)) >= 19
    assert relevant_in_top_20(UnivariateSelector(k=20)) >= 17


def test_univariate_scores_are_scikit_learns_f_statistic_and_forest_scores_sum_to_one(informative):
    from sklearn.feature_selection import f_classif

    X, y = informative
    assert np.allclose(UnivariateSelector().fit(X, y).scores_, f_classif(X, y)[0])
    forest = RandomForestSelector(n_estimators=30).fit(X, y)
    assert forest.scores_.sum() == pytest.approx(1.0) and len(forest.estimator_.estimators_) == 30
    assert forest.scores_[:6].min() > forest.scores_[6:].max()  # orientation: informative columns score higher
    # a column that matters only through its magnitude: F (linear) misses it, mutual information finds it
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    y = (np.abs(X[:, 3]) > 0.7).astype(int)
    assert UnivariateSelector(k=1).fit(X, y).ranking_[3] > 1
    assert UnivariateSelector(k=1, relevance="mi").fit(X, y).ranking_[3] == 1
    constant = RandomForestSelector(k=1, n_estimators=25).fit(np.ones((10, 3)), [0, 1] * 5)
    assert (constant.scores_ == 0).all()


def test_a_constant_regression_target_is_refused():
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(FieldError, match="target is constant"):
        MRMRSelector(task="regression").fit(X, np.full(50, 2.5))


def test_ranking_from_scores_orientation_ties_and_nan():
    assert ranking_from_scores(np.array([0.1, 0.9, 0.5])).tolist() == [3, 1, 2]  # highest score ranks 1
    assert ranking_from_scores(np.array([1.0, 1.0, 2.0])).tolist() == [2, 3, 1]  # ties keep column order
    assert ranking_from_scores(np.array([np.nan, 0.0, 1.0])).tolist() == [3, 2, 1]


def test_constant_column_scores_zero_and_ranks_last(informative):
    X, y = informative
    X = np.hstack([np.full((len(X), 1), 7.0), X[:, :6]])
    for selector in (GBDTSelector(k=3, n_estimators=50), MRMRSelector(k=3), L1Selector(k=3)):
        selector.fit(X, y)
        assert selector.scores_[0] == 0 and selector.ranking_[0] == 7, type(selector).__name__
    # Permutation importance of useless columns can be slightly negative, so 0 is not always last — but never selected.
    permutation = PermutationSelector(k=3).fit(X, y)
    assert permutation.scores_[0] == 0 and not permutation.get_support()[0]


def test_k_larger_than_the_number_of_features_is_an_error(informative):
    X, y = informative
    with pytest.raises(FieldError, match="k=25 but the data has only 20 features"):
        GBDTSelector(k=25).fit(X, y)


def test_one_class_target_is_an_error(informative):
    X, _ = informative
    with pytest.raises(FieldError, match="only one class"):
        MRMRSelector(k=2).fit(X, np.zeros(len(X)))


def test_feature_names_that_differ_between_fit_and_transform_are_an_error(informative):
    X, y = informative
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)])
    selector = GBDTSelector(k=3, n_estimators=20).fit(frame, y)
    assert selector.get_feature_names_out().tolist() == [f"x{i}" for i in np.flatnonzero(selector.get_support())]
    with pytest.raises(ValueError, match="feature names should match"):
        selector.transform(frame.rename(columns={"x0": "renamed"}))


def test_removal_selector_records_cost_per_k(informative):
    X, y = informative
    selector = RemovalSelector(k=15).fit(X[:, :18], y)
    assert sorted(selector.seconds_at_) == [15, 16, 17]
    assert selector.n_fits_ == 1 + 18 + 17 + 16 + 15  # start, three rounds, final scores
    assert sorted(selector.ranking_[selector.get_support()]) == list(range(1, 16))  # survivors ordered too


# ------------------------------------------------------------------ QuickSelection internals


def test_sparse_layer_gradient_equals_the_dense_masked_gradient():
    rng = np.random.default_rng(0)
    sparse = _SparseLayer(30, 20, 3.0, np.random.default_rng(0), dense=False)
    dense = _SparseLayer(30, 20, 3.0, np.random.default_rng(0), dense=True)
    x = torch.as_tensor(rng.normal(size=(8, 30)), dtype=torch.float32)
    target = torch.as_tensor(rng.normal(size=(8, 20)), dtype=torch.float32)
    for layer in (sparse, dense):
        torch.mean((layer(x) - target) ** 2).backward()
    assert torch.allclose(sparse(x), dense(x), atol=1e-5)
    dense_grad = (dense.weight.grad * dense.mask).view(-1)[torch.as_tensor(dense.flat)]
    assert torch.allclose(sparse.values.grad, dense_grad, atol=1e-6)
    assert torch.allclose(sparse.bias.grad, dense.bias.grad, atol=1e-6)


def test_sparse_layer_strength_and_evolution_by_hand():
    layer = _SparseLayer(4, 3, 1.0, np.random.default_rng(0), dense=False)
    assert layer.n_connections == 7  # ε (n_in + n_out) = 1 · 7
    values = layer.current_values()
    rows = layer.flat // 3
    assert np.allclose(layer.strength(), [np.abs(values[rows == i]).sum() for i in range(4)])
    smallest = set(layer.flat[np.argsort(np.abs(values))[:2]].tolist())
    layer.evolve(0.3, np.random.default_rng(1), None)  # drop int(0.3·7) = 2 weakest, regrow 2
    assert layer.n_connections == 7 and len(set(layer.flat.tolist())) == 7
    survivors = set(layer.flat.tolist()) - smallest
    assert len(survivors) >= 5


def test_quickselection_sparse_and_dense_agree():
    X = np.random.default_rng(0).normal(size=(300, 40))
    sparse = QuickSelection(k=5, hidden=32, epochs=3, random_state=0).fit(X)
    dense = QuickSelection(k=5, hidden=32, epochs=3, dense=True, random_state=0).fit(X)
    assert np.allclose(sparse.scores_, dense.scores_, rtol=1e-3, atol=1e-4)
    assert sparse.n_connections_ == dense.n_connections_


def test_elimination_fit_counts_by_hand():
    from erasekit.features.removal import elimination_fits

    assert elimination_fits(10, 1, None) == 1 + sum(range(2, 11)) + 1  # 56: every round tries each candidate
    # step 0.5: 10 → 5 (10 fits + 1 rescoring), 5 → 2 (5 + 1), 2 → 1 (2), survivors 1
    assert elimination_fits(10, 1, 0.5) == 1 + 11 + 6 + 2 + 1


def weighted_score(weights):
    """A validation score that is the sum of the kept features' weights: the exact order is known."""
    return lambda columns: float(sum(weights[j] for j in columns))


def test_backward_elimination_exact_and_in_steps_orders_by_weight():
    from erasekit.features.removal import backward_eliminate

    weights = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 0.5])
    expected = ranking_from_scores(weights)
    exact = backward_eliminate(10, weighted_score(weights), stop=1)
    stepped = backward_eliminate(10, weighted_score(weights), stop=1, step=0.3)
    assert exact.ranking.tolist() == expected.tolist() and exact.complete
    assert stepped.ranking.tolist() == expected.tolist() and stepped.fits < exact.fits
    assert np.allclose(exact.scores, weights)


def test_backward_elimination_out_of_time_keeps_the_result_so_far():
    import time

    from erasekit.features.removal import backward_eliminate

    weights = np.arange(40, dtype=float)

    def slow(columns):
        time.sleep(0.002)
        return weighted_score(weights)(columns)

    result = backward_eliminate(40, slow, stop=1, budget_seconds=0.2)
    assert not result.complete
    assert sorted(result.ranking.tolist()) == list(range(1, 41)), "still a full ranking"
    assert result.ranking[39] == 1 and result.ranking[0] == 40


def test_removal_selector_refuses_a_budget_it_cannot_meet_and_picks_a_step_that_fits():
    from erasekit.features import RemovalSelector

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 60))
    y = (X[:, 3] + X[:, 7] - X[:, 11] > 0).astype(int)
    with pytest.raises(FieldError, match="cannot finish within budget_seconds=0.001"):
        RemovalSelector(k=3, budget_seconds=0.001).fit(X, y)
    selector = RemovalSelector(k=3, step="auto", budget_seconds=30).fit(X, y)
    assert selector.complete_ and set(np.flatnonzero(selector.get_support())) == {3, 7, 11}
    regression = RemovalSelector(k=2, step=0.2).fit(X, 2 * X[:, 5] - X[:, 9] + 0.1 * rng.normal(size=300))
    assert regression.task_ == "regression" and set(np.flatnonzero(regression.get_support())) == {5, 9}


def test_elimination_cost_counts_narrower_fits_as_cheaper():
    from erasekit.features.removal import elimination_cost

    # n = 3 down to 1, one per round: 1 full fit + 3 fits on 2 columns + 2 fits on 1 column + 1 final survivor
    assert elimination_cost(3, 1, None) == pytest.approx(1 + 3 * 2 / 3 + 2 * 1 / 3 + 0)
    assert elimination_cost(500, 20, 0.5) < elimination_cost(500, 20, 0.1) < elimination_cost(500, 20, None)


def test_quickselection_min_max_scaling_for_pixels():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score

    X, y = load_digits(return_X_y=True)
    order = np.argsort(QuickSelection(k=12, hidden=200, epochs=20, scaling="minmax", random_state=0).fit(X).ranking_)
    accuracy = lambda columns: cross_val_score(LogisticRegression(max_iter=1000), X[:, columns], y, cv=3).mean()  # noqa: E731
    assert accuracy(order[:12]) > accuracy(order[-12:]) + 0.25
    with pytest.raises(FieldError, match="scaling"):
        QuickSelection(scaling="zscore").fit(X)

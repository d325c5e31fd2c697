"""FeatureRemover on a synthetic proxy table and on real Adult; reconstruction before/after."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from conftest import require_shared
from erasekit.audit.reconstruction import reconstruction_audit
from erasekit.concepts import FeatureRemover
from erasekit.core.errors import ConceptError, DataError
from erasekit.data.tables import load_adult


def proxy_table(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], n)
    frame = pd.DataFrame(
        {
            "group": group,
            "proxy_cat": np.where(rng.random(n) < 0.85, group, np.where(group == "a", "b", "a")),  # copies group 85 %
            "proxy_num": (group == "a") * 1.0 + rng.normal(0, 0.5, n),
            "noise": rng.normal(size=n),
        }
    )
    frame["target"] = ((frame["proxy_num"] + frame["noise"]) > 0.5).astype(int)
    return frame


def test_dropping_is_not_removal_but_leace_is():
    frame = proxy_table()
    train, test = frame.iloc[:2000], frame.iloc[2000:]
    features = train.drop(columns="target")
    remover = FeatureRemover(["group"]).fit(features)
    results = {
        (r.stage, p.probe): p for r in reconstruction_audit(features, test.drop(columns="target"), remover) for p in r.probes
    }
    assert results[("dropped", "linear")].leaks, "positive control: the proxies rebuild the dropped column"
    assert results[("dropped", "gbm")].leaks
    assert not results[("dropped+leace", "linear")].leaks
    assert results[("dropped+leace", "linear")].score < results[("dropped", "linear")].score - 0.2


def test_output_names_and_pipeline():
    frame = proxy_table()
    remover = FeatureRemover(["group"], proxies="none").fit(frame.drop(columns="target"))
    assert list(remover.get_feature_names_out()) == ["proxy_num", "noise", "proxy_cat=a", "proxy_cat=b"]
    pipe = make_pipeline(FeatureRemover(["group"]), LogisticRegression(max_iter=1000))
    pipe.fit(frame.drop(columns="target").iloc[:2000], frame["target"].iloc[:2000])
    assert pipe.score(frame.drop(columns="target").iloc[2000:], frame["target"].iloc[2000:]) > 0.6


def test_unknown_column_lists_close_names():
    frame = proxy_table()
    with pytest.raises(ConceptError, match="'grop' is not in the table.*did you mean 'group'"):
        FeatureRemover(["grop"]).fit(frame)


def test_missing_numeric_values_are_refused():
    frame = proxy_table()
    frame.loc[3, "noise"] = np.nan
    with pytest.raises(DataError, match="'noise' has missing"):
        FeatureRemover(["group"]).fit(frame)


def test_unseen_category_at_transform_time_is_all_zeros():
    frame = proxy_table()
    remover = FeatureRemover(["group"], proxies="none").fit(frame)
    unseen = frame.iloc[:2].copy()
    unseen["proxy_cat"] = "zzz"
    assert remover.transform(unseen)[:, -2:].sum() == 0


def test_adult_sex_reconstruction_drops_after_leace():
    train, test = load_adult(require_shared("adult"))
    assert (len(train), len(test)) == (32561, 16281)
    assert train["sex"].value_counts().to_dict() == {"Male": 21790, "Female": 10771}
    features = [
        "age",
        "workclass",
        "education-num",
        "marital-status",
        "occupation",
        "relationship",
        "race",
        "sex",
        "hours-per-week",
    ]
    train, test = train[features].iloc[:8000], test[features].iloc[:4000]
    remover = FeatureRemover(["sex"]).fit(train)
    results = {
        (r.stage, p.probe): p
        for r in reconstruction_audit(train, test, remover, probes=("linear",), n_boot=200)
        for p in r.probes
    }
    dropped, erased = results[("dropped", "linear")], results[("dropped+leace", "linear")]
    assert dropped.leaks and dropped.score > 0.8  # relationship (husband/wife) is a strong proxy
    assert erased.score < dropped.score - 0.1

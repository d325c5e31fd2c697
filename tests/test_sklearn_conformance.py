"""ConceptEraserTransformer takes the concept from a column or metadata routing, never from y; it passes
scikit-learn's estimator checks; a fitted FeatureRemover is saved and applied to new rows (Python and CLI)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

from erasekit.cli import main
from erasekit.concepts import ConceptEraserTransformer, FeatureRemover, fit_eraser, load_remover, save_remover
from erasekit.core.errors import ConceptError


def fair_table(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A protected column, a proxy of it, and a main target that does not depend on it."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "group": group,
            "proxy": group + rng.normal(0, 0.3, n),
            "skill": rng.normal(size=n),
            "noise": rng.normal(size=n),
        }
    )
    y = (frame["skill"] + 0.3 * rng.normal(size=n) > 0).astype(int).to_numpy()
    return frame, y


def probe_accuracy(features, labels) -> float:
    half = len(labels) // 2
    return LogisticRegression(C=1e4, max_iter=3000).fit(features[:half], labels[:half]).score(features[half:], labels[half:])


def test_in_a_pipeline_the_concept_is_erased_and_the_target_is_not():
    frame, y = fair_table()
    half = len(y) // 2
    plain = make_pipeline(LogisticRegression(max_iter=2000)).fit(frame.drop(columns="group")[:half], y[:half])
    pipe = make_pipeline(ConceptEraserTransformer(concept_column="group"), LogisticRegression(max_iter=2000))
    pipe.fit(frame[:half], y[:half])
    plain_score = plain.score(frame.drop(columns="group")[half:], y[half:])
    assert pipe.score(frame[half:], y[half:]) > plain_score - 0.02, "the main target must survive the eraser"
    erased = pipe[0].transform(frame)
    group = frame["group"].to_numpy()
    assert probe_accuracy(frame[["proxy", "skill", "noise"]].to_numpy(), group) > 0.9, "positive control: the proxy leaks"
    assert probe_accuracy(erased, group) < 0.56
    assert list(pipe[0].get_feature_names_out()) == ["proxy", "skill", "noise"]


def test_y_is_never_the_concept():
    frame, y = fair_table(400)
    with pytest.raises(ConceptError, match="y is the main task's target and is never used as the concept"):
        ConceptEraserTransformer().fit(frame.to_numpy(), y)


def test_concept_through_metadata_routing():
    frame, y = fair_table()
    features, group = frame.drop(columns="group"), frame["group"].to_numpy()
    with sklearn.config_context(enable_metadata_routing=True):
        eraser = ConceptEraserTransformer().set_fit_request(concept=True)
        pipe = make_pipeline(eraser, LogisticRegression(max_iter=2000)).fit(features, y, concept=group)
        assert pipe.score(features, y) > 0.85
        assert probe_accuracy(pipe[0].transform(features), group) < 0.56


def test_set_output_pandas_and_a_prefitted_eraser():
    frame, _ = fair_table(600)
    transformer = ConceptEraserTransformer(concept_column="group").set_output(transform="pandas").fit(frame)
    out = transformer.transform(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["proxy", "skill", "noise"]
    features = frame.drop(columns="group").to_numpy()
    frozen = ConceptEraserTransformer(eraser=fit_eraser(features, frame["group"])).fit(features)
    assert np.allclose(frozen.transform(features), transformer.transform(frame).to_numpy())


def test_transformer_input_errors():
    frame, _ = fair_table(200)
    with pytest.raises(ConceptError, match="concept column 'sex' is not in X"):
        ConceptEraserTransformer(concept_column="sex").fit(frame)
    with pytest.raises(ConceptError, match="not both"):
        ConceptEraserTransformer(concept_column="group").fit(frame, concept=frame["group"])
    with pytest.raises(ConceptError, match="quadratic"):
        ConceptEraserTransformer("quadratic", concept_column="group").fit(frame)
    with pytest.raises(ConceptError, match="column position"):
        ConceptEraserTransformer(concept_column=9).fit(frame.to_numpy())


def test_passes_scikit_learns_estimator_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(ConceptEraserTransformer(concept_column=0), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:120]) for r in results if r["status"] == "failed"]
    assert not failed
    assert sum(r["status"] == "passed" for r in results) >= 40


def test_a_saved_feature_remover_applies_to_new_rows(tmp_path):
    frame, _ = fair_table(2000)
    frame["city"] = np.where(frame["group"] == 1, "north", "south")  # a categorical proxy
    train, new = frame[:1500], frame[1500:]
    remover = FeatureRemover(["group"]).fit(train)
    save_remover(remover, tmp_path / "remover.safetensors")
    loaded = load_remover(tmp_path / "remover.safetensors")
    assert np.allclose(loaded.transform(new), remover.transform(new))
    assert list(loaded.get_feature_names_out()) == list(remover.get_feature_names_out())
    kept_before = new[["proxy", "skill", "noise"]].to_numpy()
    assert probe_accuracy(kept_before, new["group"].to_numpy()) > 0.9, "positive control: the kept columns leak the group"
    assert probe_accuracy(remover.transform(new), new["group"].to_numpy()) < 0.6
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ConceptError, match="not a safetensors file"):
        load_remover(tmp_path / "bad.safetensors")


def test_erase_writes_a_remover_and_apply_uses_it_on_new_rows(capsys, tmp_path):
    frame, y = fair_table(1200)
    frame["y"] = y
    frame[:900].to_csv(tmp_path / "train.csv", index=False)
    frame[900:].to_csv(tmp_path / "new.csv", index=False)
    code = main(["erase", "--data", f"csv:{tmp_path / 'train.csv'}", "--target", "y", "--remove", "group",
                 "--probes", "linear", "--n-boot", "200", "--out", str(tmp_path / "fit")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    fitted = pd.read_csv(tmp_path / "fit" / "erased.csv")
    code = main(["erase", "--apply", str(tmp_path / "fit" / "remover.safetensors"),
                 "--data", f"csv:{tmp_path / 'new.csv'}", "--out", str(tmp_path / "applied")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "300 rows" in out
    applied = pd.read_csv(tmp_path / "applied" / "erased.csv")
    assert list(applied.columns) == list(fitted.columns) and len(applied) == 300
    new_rows = frame[900:]
    assert (
        probe_accuracy(new_rows[["proxy", "skill", "noise"]].to_numpy(), new_rows["group"].to_numpy()) > 0.9
    )  # positive control
    assert probe_accuracy(applied.drop(columns="y").to_numpy(), new_rows["group"].to_numpy()) < 0.65
    code = main(["erase", "--apply", str(tmp_path / "fit" / "remover.safetensors"), "--out", str(tmp_path / "x")])
    assert code == 2 and "--apply needs either" in capsys.readouterr().err and not (tmp_path / "x").exists()

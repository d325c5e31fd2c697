"""`erasekit erase` on embeddings and tables; bad inputs exit 2 with one line and write nothing."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from erasekit.concepts import load_eraser

run = run_cli


@pytest.fixture
def embeddings(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 1200)
    x = rng.normal(size=(1200, 12)).astype(np.float32)
    x[:, 0] += 1.5 * z
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Z.npy", z)
    return tmp_path / "X.npy", tmp_path / "Z.npy", x, z


def test_erase_embeddings(capsys, tmp_path, embeddings):
    x_path, z_path, x, z = embeddings
    out_dir = tmp_path / "out"
    code, out, err = run(
        capsys,
        "erase",
        "--embeddings",
        x_path,
        "--concept",
        z_path,
        "--method",
        "leace",
        "--probes",
        "linear,gbm",
        "--n-boot",
        "200",
        "--out",
        out_dir,
    )
    assert code == 0, err
    report = json.loads((out_dir / "report.json").read_text())
    assert report["verdicts"] == {"original": "linear leakage", "erased": "linearly guarded"}
    erased = np.load(out_dir / "erased.npy")
    assert erased.shape == x.shape and erased.dtype == x.dtype
    assert np.allclose(load_eraser(out_dir / "eraser.safetensors")(x), erased, atol=1e-5), "same row order, same map"
    assert (out_dir / "report.html").read_text().count("data:image/png;base64,") == 1


def test_erase_table(capsys, tmp_path):
    rng = np.random.default_rng(0)
    group = rng.choice(["a", "b"], 900)
    frame = pd.DataFrame({"group": group, "proxy": (group == "a") + rng.normal(0, 0.4, 900), "other": rng.normal(size=900)})
    frame["y"] = np.where(frame["other"] + rng.normal(0, 0.5, 900) > 0, "yes", "no")
    frame.to_csv(tmp_path / "t.csv", index=False)
    code, out, err = run(
        capsys,
        "erase",
        "--data",
        f"csv:{tmp_path / 't.csv'}",
        "--target",
        "y",
        "--remove",
        "group",
        "--probes",
        "linear",
        "--n-boot",
        "200",
        "--out",
        tmp_path / "out",
    )
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdicts"]["dropped"] == "linear leakage" and report["verdicts"]["dropped+leace"] == "linearly guarded"
    assert set(report["utility"]) == {"original (all columns)", "dropped", "dropped+leace"}
    erased = pd.read_csv(tmp_path / "out" / "erased.csv")
    assert len(erased) == 900 and "group" not in " ".join(erased.columns) and list(erased["y"]) == list(frame["y"])


def bad(tmp_path, kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    z = rng.integers(0, 2, 300)
    if kind == "mismatch":
        z = z[:-3]
    if kind == "single":
        z = np.zeros(300, dtype=int)
    if kind == "nan":
        x[7, 1] = np.nan
    if kind == "few":
        x = rng.normal(size=(30, 50))
        z = rng.integers(0, 2, 30)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Z.npy", z)
    return ["--embeddings", tmp_path / "X.npy", "--concept", tmp_path / "Z.npy"]


CASES = {
    "length mismatch": ("mismatch", [], "300 samples but Z has 297"),
    "single-class concept": ("single", [], "single class"),
    "nan": ("nan", [], "NaN or inf"),
    "too few samples": ("few", [], r"at least 51 samples"),
    "unknown method": ("ok", ["--method", "leeace"], "did you mean 'leace'"),
    "unknown probe": ("ok", ["--probes", "svm"], "unknown probe svm"),
    "no concept file": ("ok", ["--concept", "{missing}"], "cannot read concept file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_embedding_input(case, capsys, tmp_path):
    kind, extra, message = CASES[case]
    args = bad(tmp_path, kind)
    extra = [str(e).format(missing=tmp_path / "none.npy") for e in extra]
    if "--concept" in extra:
        args = args[:2]
    code, _, err = run(capsys, "erase", *args, *extra, "--out", tmp_path / "out")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_bad_table_column_lists_close_names(capsys, tmp_path):
    pd.DataFrame({"sex": ["a", "b"] * 20, "age": range(40), "y": [0, 1] * 20}).to_csv(tmp_path / "t.csv", index=False)
    code, _, err = run(
        capsys, "erase", "--data", f"csv:{tmp_path / 't.csv'}", "--target", "y", "--remove", "sexx", "--out", tmp_path / "out"
    )
    assert code == 2 and "did you mean 'sex'" in err and not (tmp_path / "out").exists()


def test_one_hot_columns_are_one_categorical_concept_and_utility_loss_is_noted():
    import pandas as pd

    from erasekit.pipelines.concepts import concept_targets, erase_table, one_hot_groups

    rng = np.random.default_rng(0)
    n = 900
    sex = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "sex_Male": sex,
            "sex_Female": 1 - sex,
            "proxy": sex + 0.3 * rng.normal(size=n),  # rebuilds sex
            "noise": rng.normal(size=n),
        }
    )
    frame["income"] = np.where(frame["proxy"] + 0.2 * rng.normal(size=n) > 0.5, "high", "low")
    assert one_hot_groups(frame, ["sex_Male", "sex_Female"]) == {"sex": ["sex_Male", "sex_Female"]}
    targets = concept_targets(frame.drop(columns=["income"]), ["sex_Male", "sex_Female"])
    assert [(name, numeric) for name, _, numeric in targets] == [("sex", False)]
    report, _, _ = erase_table(frame, "income", ["sex_Male", "sex_Female"], probes=("linear",), n_boot=200)
    assert {row.target for row in report.probes} == {"sex"} and report.probes[0].result.metric == "accuracy"
    assert report.verdicts["original (all columns)"] == "linear leakage"  # positive control
    assert report.verdicts["dropped"] == "linear leakage"  # the proxy still rebuilds sex
    assert report.verdicts["dropped+leace"] == "linearly guarded"
    assert any("costs" in note and "income" in note for note in report.notes), report.notes  # LEACE removed the proxy


def test_a_probe_whose_positive_control_fails_is_not_evidence():
    from erasekit.pipelines.concepts import erase_embeddings

    rng = np.random.default_rng(1)
    z = rng.integers(0, 2, 600)
    x = rng.normal(size=(600, 6))  # no concept at all
    report, _, _ = erase_embeddings(x, z, "leace", probes=("linear",), n_boot=200)
    assert report.verdicts["erased"].startswith("not assessed")
    assert not next(r for r in report.probes if r.representation == "erased").evidence
    assert any("not used as evidence" in note for note in report.notes)

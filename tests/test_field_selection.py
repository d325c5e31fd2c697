"""Field rankers (every registered method through one contract), OptFS, the ERASE harness, its report and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import require_shared, run_cli
from erasekit.audit.features import aukc, imputed, masked, precision_at_k
from erasekit.core.errors import FieldError, MethodError
from erasekit.data.ctr import make_synthetic_ctr, prepare_table
from erasekit.features import (
    OptFSSelector,
    SelectionData,
    available_selectors,
    optfs_select,
    parse_selector_params,
    rank_fields,
    select_fields,
    selector_info,
)
from erasekit.models.ctr import CTRRecipe, evaluate, predict_logits
from erasekit.pipelines.selection import run_selection_bench
from erasekit.report import write_report

RECIPE = CTRRecipe(max_epochs=2, batch_size=128)
# Small budgets so every method runs in seconds; the defaults are exercised by the benchmark.
FAST = {
    "quickselection": "hidden=64,epochs=3",
    "removal": "k=17",  # one elimination round, then leave-one-out scores for the 17 survivors
    "optfs": "search_epochs=3",
    "autofield": "search_epochs=3",
    "adafs": "search_epochs=3,gate_lr=0.01",
    "lpfs": "search_epochs=3",
    "permutation": "n_repeats=2",
    "gbdt": "n_estimators=50",
}


def fast_params(name: str):
    pairs = [f"{name}.{pair}" for pair in FAST.get(name, "").split(",") if pair]
    return parse_selector_params(pairs).get(name)


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic_ctr(n_rows=4000, seed=0)


@pytest.fixture(scope="module")
def prepared(synthetic):
    return prepare_table(synthetic.frame, synthetic.target, seed=0)


@pytest.fixture(scope="module")
def data(prepared):
    return SelectionData(prepared.train, prepared.valid, recipe=RECIPE)


# ------------------------------------------------------------------ every ranker, one contract


@pytest.mark.parametrize("name", available_selectors())
def test_every_ranker_scores_every_field_deterministically(data, name):
    before = (data.train.codes.copy(), data.train.numeric.copy())
    first = rank_fields(data, name, fast_params(name), seed=0)
    second = rank_fields(data, name, fast_params(name), seed=0)
    assert sorted(first.ranking) == sorted(data.names) and set(first.scores) == set(data.names)
    assert all(np.isfinite(v) for v in first.scores.values())
    assert first.ranking == second.ranking and first.scores == second.scores  # same seed, same answer
    assert first.seconds > 0 and set(first.params) == set(selector_info(name).parameter_defaults())
    assert np.array_equal(before[0], data.train.codes) and np.array_equal(before[1], data.train.numeric)  # input untouched


SUPERVISED = [n for n in available_selectors() if n not in ("quickselection", "sfs")]


@pytest.mark.parametrize("name", SUPERVISED)
def test_supervised_rankers_put_relevant_fields_first(data, synthetic, name):
    ranked = rank_fields(data, name, fast_params(name), seed=0)
    top = ranked.ranking[:6]
    # 6 relevant of 18 fields: a random order gets 2 on average; the 3 proxies are noisy copies and are not counted.
    assert precision_at_k(ranked.ranking, synthetic.relevant, 6) >= 4 / 6, top


def test_ranker_registry_names_and_errors():
    assert {
        "permutation",
        "gbdt",
        "l1",
        "mrmr",
        "quickselection",
        "removal",
        "optfs",
        "autofield",
        "adafs",
        "lpfs",
        "shark",
        "sfs",
    } == set(available_selectors())
    with pytest.raises(MethodError, match="did you mean 'optfs'"):
        selector_info("optf")
    with pytest.raises(MethodError, match="has no parameter 'levle'"):
        parse_selector_params(["optfs.levle=value"])
    with pytest.raises(FieldError, match="'level' parameter of OptFSSelector must be a str among"):
        OptFSSelector(level="row").check_params()
    # checked where they are parsed, before any work: choices, ranges, finiteness
    with pytest.raises(MethodError, match="optfs.level must be one of field, value, got 'row'"):
        parse_selector_params(["optfs.level=row"])
    with pytest.raises(FieldError, match="'learning_rate' parameter of GBDTSelector must be a float in the range"):
        parse_selector_params(["gbdt.learning_rate=-1"])
    with pytest.raises(MethodError, match="gbdt.learning_rate must be a finite number, got 'nan'"):
        parse_selector_params(["gbdt.learning_rate=nan"])
    assert parse_selector_params(["removal.k=3"])["removal"].k == 3


def test_select_fields_keeps_top_k_and_refuses_k_out_of_range(data):
    selection = select_fields(data, "gbdt", 5, fast_params("gbdt"))
    assert len(selection.kept) == 5 and len(selection.removed) == len(data.names) - 5
    assert selection.kept == selection.ranking[:5]
    assert min(selection.scores[n] for n in selection.kept) >= max(selection.scores[n] for n in selection.removed)
    with pytest.raises(FieldError, match="k=19 is out of range: the table has 18 fields"):
        select_fields(data, "gbdt", 19)


# ------------------------------------------------------------------ OptFS


@pytest.mark.parametrize("level", ["field", "value"])
def test_optfs_rewinds_and_retrains_with_the_frozen_mask(data, prepared, level):
    result = optfs_select(data, OptFSSelector(level=level, search_epochs=3, lam=1e-3, gate_lr=0.05), seed=0)
    assert result.field_scores.shape == (len(data.names),)
    assert result.model is not None
    auc = evaluate(result.model, prepared.test, gate=result.model.frozen_gate).auc
    assert auc > 0.7
    if level == "field":
        closed, open_ = np.flatnonzero(~result.gate_mask), np.flatnonzero(result.gate_mask)
        assert len(closed) and len(open_)
        table, gate = prepared.test, result.model.frozen_gate
        logits = predict_logits(result.model, table, gate)
        # A field whose gate is closed has no influence on the retrained model's output ...
        assert np.allclose(logits, predict_logits(result.model, masked(table, [data.names[closed[0]]]), gate))
        # ... while the same check does see a field whose gate is open (positive control).
        assert not np.allclose(logits, predict_logits(result.model, masked(table, [data.names[j] for j in open_]), gate))


def test_optfs_gates_close_under_a_strong_penalty(data):
    """Positive control for the mask: with λ = 1e-3 some gates close; with the paper's λ = 1e-8 fewer do."""
    strong = optfs_select(data, OptFSSelector(search_epochs=3, lam=1e-3, gate_lr=0.05), seed=0, retrain=False)
    weak = optfs_select(data, OptFSSelector(search_epochs=3, gate_lr=0.05), seed=0, retrain=False)
    assert (~strong.gate_mask).sum() > (~weak.gate_mask).sum()


# ------------------------------------------------------------------ metrics by hand


def test_aukc_by_hand_and_orientation():
    assert aukc([2, 4, 8], [0.6, 0.7, 0.8]) == pytest.approx(((0.6 + 0.7) / 2 * 2 + (0.7 + 0.8) / 2 * 4) / 6)
    assert aukc([8, 2, 4], [0.8, 0.6, 0.7]) == aukc([2, 4, 8], [0.6, 0.7, 0.8])  # order of k does not matter
    assert aukc([5], [0.77]) == 0.77
    assert aukc([2, 4], [0.9, 0.9]) > aukc([2, 4], [0.6, 0.9])  # better curve, larger area


def test_precision_at_k_by_hand():
    ranking = ["a", "x", "b", "y", "c"]
    assert precision_at_k(ranking, ["a", "b", "c"], 2) == 0.5
    assert precision_at_k(ranking, ["a", "b", "c"], 5) == 1.0  # denominator min(k, |relevant|)
    assert precision_at_k(ranking, ["a", "b", "c"], 1) == 1.0


def test_mask_and_imputation_replace_only_the_named_fields(data, prepared):
    table = prepared.test
    name = data.names[0]
    masked_table = masked(table, [name])
    assert (masked_table.codes[:, 0] == 0).all() and np.array_equal(masked_table.codes[:, 1:], table.codes[:, 1:])
    filled = imputed(data, table, [name], seed=0)
    assert np.array_equal(filled.codes[:, 1:], table.codes[:, 1:]) and np.array_equal(filled.numeric, table.numeric)
    assert (filled.codes[:, 0] > 0).mean() > 0.9  # drawn from the imputer, not the blank baseline


# ------------------------------------------------------------------ harness + report


def test_harness_curves_removal_strategies_and_report(tmp_path, prepared, synthetic):
    report = run_selection_bench(
        prepared,
        ["gbdt", "sfs"],
        ks=[2, 6],
        seeds=(0,),
        params={"gbdt": fast_params("gbdt")},
        recipe=RECIPE,
        relevant=synthetic.relevant,
        removal_top=3,
        dataset="synthetic",
    )
    assert [r.selection.method for r in report.runs] == ["gbdt", "sfs"]
    for run in report.runs:
        assert [p.k for p in run.curve] == [2, 6]
        assert run.aukc == pytest.approx(np.mean([p.auc for p in run.curve]))  # two points: the trapezoid is their mean
        assert set(run.precision_at_k) == {2, 6}
    gbdt = next(r for r in report.removals if r.method == "gbdt")
    # Positive control: removing the three most important (relevant) fields hurts a retrained model.
    assert gbdt.roar_auc < gbdt.full_auc - 0.03 and gbdt.kar_auc > 0.6
    json_path, html_path = write_report(report, tmp_path)
    document = json.loads(json_path.read_text())
    assert document["schema"] == "erasekit.selection-bench/2" and len(document["runs"]) == 2
    assert document["runs"][0]["selection"]["ranking"] and "mask_auc" in document["removals"][0]
    html = html_path.read_text()
    assert "data:image/png;base64," in html and "AUKC" in html and "ROAR" in html


def test_harness_refuses_bad_k_grid(prepared):
    with pytest.raises(FieldError, match="every k must be in 1..18"):
        run_selection_bench(prepared, ["gbdt"], ks=[0, 4])
    with pytest.raises(FieldError, match="every k must be in 1..18"):
        run_selection_bench(prepared, ["gbdt"], ks=[40])


def test_prepare_table_errors(synthetic):
    frame = synthetic.frame
    with pytest.raises(FieldError, match="target column 'clik' is not in the table .*did you mean 'click'"):
        prepare_table(frame, "clik")
    with pytest.raises(FieldError, match="single class"):
        prepare_table(frame.assign(click=1), "click")
    with pytest.raises(FieldError, match="must be binary"):
        prepare_table(frame.assign(click=np.arange(len(frame)) % 3), "click")


def test_adult_fields_rank_relationship_or_marital_status_high():
    directory = require_shared("adult")
    from erasekit.data.tables import load_adult

    train, test = load_adult(directory)
    prepared = prepare_table(train.sample(8000, random_state=0), "income", test_frame=test.sample(4000, random_state=0))
    data = SelectionData(prepared.train, prepared.valid, recipe=RECIPE)
    ranking = rank_fields(data, "gbdt", fast_params("gbdt")).ranking
    assert {"relationship", "marital-status", "capital-gain", "education-num"} & set(ranking[:3])
    assert "fnlwgt" not in ranking[:4]  # a sampling weight, known to carry little about income


# ------------------------------------------------------------------ CLI


@pytest.fixture
def table_csv(tmp_path, synthetic):
    path = tmp_path / "table.csv"
    synthetic.frame.iloc[:3000].to_csv(path, index=False)
    return path


run = run_cli


def test_cli_select_writes_selection_and_reduced_table(capsys, tmp_path, table_csv):
    out = tmp_path / "sel"
    code, stdout, _ = run(
        capsys,
        "select",
        "--data",
        f"csv:{table_csv}",
        "--target",
        "click",
        "--method",
        "gbdt",
        "--k",
        "5",
        "--out",
        out,
        "--param",
        "gbdt.n_estimators=50",
    )
    assert code == 0 and "kept" in stdout and "removed" in stdout
    document = json.loads((out / "selection.json").read_text())
    assert document["schema"] == "erasekit.selection/2" and document["provenance"]["seeds"] == [0]
    selection = document["selection"]
    assert selection["method"] == "gbdt" and selection["k"] == 5 and len(selection["kept"]) == 5
    assert len(selection["removed"]) == 13 and set(selection["scores"]) == set(selection["kept"]) | set(selection["removed"])
    assert selection["seconds"] > 0
    reduced = pd.read_csv(out / "reduced.csv")
    assert list(reduced.columns) == selection["kept"] + ["click"] and len(reduced) == 3000


def test_cli_select_json_on_criteo_sample(capsys, tmp_path):
    path = require_shared("ctr_samples") / "criteo_sample.txt"
    code, stdout, _ = run(
        capsys, "select", "--data", f"criteo:{path}", "--method", "mrmr", "--k", "8", "--out", tmp_path / "c", "--json"
    )
    assert code == 0
    document = json.loads(stdout)
    assert document["target"] == "label" and len(document["selection"]["kept"]) == 8
    assert len(document["selection"]["removed"]) == 31


def test_cli_select_bench_writes_report(capsys, tmp_path):
    code, stdout, _ = run(
        capsys,
        "select",
        "bench",
        "--data",
        "synthetic:2000",
        "--methods",
        "gbdt,mrmr",
        "--ks",
        "2,4",
        "--epochs",
        "2",
        "--out",
        tmp_path / "b",
        "--param",
        "gbdt.n_estimators=30",
    )
    assert code == 0 and "AUKC" in stdout and "P@4" in stdout
    assert (tmp_path / "b" / "report.json").exists() and (tmp_path / "b" / "report.html").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "gbdx", "--k", "3"], "unknown selection method 'gbdx' (did you mean 'gbdt'?)"),
        (["--method", "gbdt", "--k", "30"], "k=30 is out of range: the table has 18 fields"),
        (["--method", "gbdt", "--k", "3", "--target", "nope"], "target column 'nope' is not in the table"),
        (["--method", "gbdt", "--k", "3", "--target", "n1"], "must be binary"),
        (["--method", "gbdt", "--k", "3", "--param", "gbdt.trees=3"], "method 'gbdt' has no parameter 'trees'"),
        (["--method", "gbdt", "--k", "3", "--categorical", "zz"], "categorical column 'zz' is not in"),
    ],
)
def test_cli_select_bad_input_exits_2_and_writes_nothing(capsys, tmp_path, table_csv, args, message):
    out = tmp_path / "never"
    full = ["select", "--data", f"csv:{table_csv}", "--out", out] + args
    if "--target" not in args:
        full += ["--target", "click"]
    code, stdout, stderr = run(capsys, *full)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not out.exists()


def test_cli_select_malformed_criteo_names_the_line(capsys, tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("1\t2\n")
    code, _, stderr = run(capsys, "select", "--data", f"criteo:{path}", "--method", "gbdt", "--k", "2", "--out", tmp_path / "o")
    assert code == 2 and "c.txt:1: expected 40 fields" in stderr and not (tmp_path / "o").exists()


def test_cli_select_one_class_target(capsys, tmp_path, synthetic):
    path = tmp_path / "one.csv"
    synthetic.frame.iloc[:500].assign(click=0).to_csv(path, index=False)
    code, _, stderr = run(
        capsys, "select", "--data", f"csv:{path}", "--target", "click", "--method", "gbdt", "--k", "2", "--out", tmp_path / "o"
    )
    assert code == 2 and "single class" in stderr and not (tmp_path / "o").exists()


def test_cli_select_without_required_options_is_a_usage_error(capsys):
    code, _, stderr = run(capsys, "select", "--method", "gbdt")
    assert code == 2 and "missing --data, --k, --out" in stderr


# ------------------------------------------------------------------ one contract: every method is a scikit-learn selector


@pytest.mark.parametrize("name", available_selectors())
def test_every_method_is_a_selector_that_fits_a_plain_matrix(synthetic, name):
    """The registered object is the selector itself: ``fit(X, y)`` on a numeric matrix (categorical columns as codes)."""
    from erasekit.models.ctr import CTRRecipe

    frame = synthetic.frame.iloc[:1500]
    X, categorical = [], []
    for j, column in enumerate(c for c in frame.columns if c != "click"):
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            X.append(pd.factorize(values)[0] + 1.0)
            categorical.append(j)
        else:
            X.append(values.to_numpy(float))
    X = np.column_stack(X)
    y = frame["click"].to_numpy()
    selector = fast_params(name) or selector_info(name).selector_type()
    selector.set_params(k=4)
    if "categorical" in selector.get_params():
        selector.set_params(categorical=tuple(categorical), recipe=CTRRecipe(max_epochs=1, batch_size=256))
    if name == "removal":
        selector.set_params(k=17)
    selector.fit(X, y)
    assert selector.scores_.shape == (X.shape[1],) and np.isfinite(selector.scores_).all()
    assert sorted(selector.ranking_) == list(range(1, X.shape[1] + 1))
    assert selector.transform(X).shape == (len(X), selector.k_)

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
        "random_forest",
        "univariate",
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


@pytest.fixture
def numeric_csv(tmp_path):
    """A plain numeric table: 18 columns, the first 4 informative, a 3-class text target."""
    from sklearn.datasets import make_classification

    X, y = make_classification(900, 18, n_informative=4, n_redundant=0, n_classes=3, shuffle=False, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(18)])
    frame["label"] = np.array(["low", "mid", "high"])[y]
    path = tmp_path / "numeric.csv"
    frame.to_csv(path, index=False)
    return path


def test_cli_select_on_a_plain_table_judges_the_columns(capsys, tmp_path, numeric_csv):
    out = tmp_path / "sel"
    code, stdout, _ = run(
        capsys, "select", "--data", f"csv:{numeric_csv}", "--target", "label", "--method", "gbdt", "--k", "4",
        "--out", out, "--param", "gbdt.n_estimators=50", "--random-draws", "3",
    )  # fmt: skip
    assert code == 0 and "multiclass, 3 classes" in stdout and "random columns (3 draws)" in stdout
    assert len(stdout.strip().splitlines()) <= 7, "a short summary; the ranking is in the files"
    document = json.loads((out / "selection.json").read_text())
    assert document["schema"] == "erasekit.table-selection/1" and document["task"] == "multiclass"
    selection = document["selection"]
    assert set(selection["kept"]) == {"x0", "x1", "x2", "x3"} and len(selection["removed"]) == 14
    assert document["at_k"]["score"] > document["random_k"]["mean"] + 0.1, "the informative columns beat random ones"
    assert document["verdict"] == "better_than_random" and "verdict: better than random" in stdout
    assert document["metric"] == "accuracy" and len(document["random_k"]["scores"]) == 3
    ranking = pd.read_csv(out / "ranking.csv")
    assert list(ranking["column"][:4].sort_values()) == ["x0", "x1", "x2", "x3"] and ranking["kept"].sum() == 4
    reduced = pd.read_csv(out / "reduced.csv")
    assert list(reduced.columns) == selection["kept"] + ["label"] and len(reduced) == 900


def test_cli_select_says_when_a_ranking_is_no_better_than_random(capsys, tmp_path):
    """A target unrelated to every column: whatever the method keeps, it must not read as evidence."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(600, 12)), columns=[f"x{i}" for i in range(12)])
    frame["label"] = rng.integers(0, 2, 600)
    frame.to_csv(tmp_path / "noise.csv", index=False)
    code, stdout, _ = run(
        capsys, "select", "--data", f"csv:{tmp_path / 'noise.csv'}", "--target", "label", "--method", "gbdt", "--k", "3",
        "--param", "gbdt.n_estimators=30", "--out", tmp_path / "o", "--json",
    )  # fmt: skip
    document = json.loads(stdout)
    assert code == 0 and document["verdict"] == "no_better_than_random", document["verdict_reason"]


def test_cli_select_regression_with_the_mlp_judge(capsys, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(600, 10)), columns=[f"f{i}" for i in range(10)])
    frame["price"] = 3 * frame["f2"] - 2 * frame["f7"] + 0.1 * rng.normal(size=600)
    frame.to_csv(tmp_path / "r.csv", index=False)
    code, stdout, _ = run(
        capsys, "select", "--data", f"csv:{tmp_path / 'r.csv'}", "--target", "price", "--method", "mrmr", "--k", "2",
        "--downstream", "mlp", "--out", tmp_path / "o", "--json",
    )  # fmt: skip
    document = json.loads(stdout)
    assert code == 0 and document["task"] == "regression" and document["metric"] == "r2"
    assert set(document["selection"]["kept"]) == {"f2", "f7"} and document["at_k"]["score"] > 0.9


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
        (["--method", "gbdt", "--k", "30"], "k=30 is out of range: the table has 18 columns besides the target"),
        (["--method", "gbdt", "--k", "0"], "Invalid value for '--k'"),
        (["--method", "gbdt", "--k", "3", "--target", "nope"], "target column 'nope' is not in the table"),
        (["--method", "gbdt", "--k", "3", "--param", "gbdt.trees=3"], "method 'gbdt' has no parameter 'trees'"),
        (["--method", "gbdt", "--k", "3", "--categorical", "zz"], "categorical column 'zz' is not in"),
        (["--method", "gbdt", "--k", "3", "--memory-budget-mb", "0.01"], "over the memory budget"),
        (["--method", "gbdt", "--k", "3", "--task", "binary"], "--task binary, but target 'label' has 3 classes"),
        (["--method", "gbdt", "--k", "3", "--task", "regression"], "--task regression needs a numeric target"),
    ],
)
def test_cli_select_bad_input_exits_2_and_writes_nothing(capsys, tmp_path, numeric_csv, args, message):
    out = tmp_path / "never"
    full = ["select", "--data", f"csv:{numeric_csv}", "--out", out] + args
    if "--target" not in args:
        full += ["--target", "label"]
    code, stdout, stderr = run(capsys, *full)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.assign(label="same"), "has a single value (same)"),
        (lambda f: f.assign(label=["solo"] + ["a", "b"] * 449 + ["a"]), "class 'solo' of target 'label' has a single row"),
        (lambda f: f.assign(x5=["text"] * len(f)), "column 'x5' is not numeric; declare it --categorical x5"),
        (lambda f: f.assign(x5=[np.nan] + [1.0] * (len(f) - 1)), "numeric column 'x5' has 1 missing values"),
    ],
)
def test_cli_select_degenerate_tables_exit_2(capsys, tmp_path, numeric_csv, change, message):
    path = tmp_path / "changed.csv"
    change(pd.read_csv(numeric_csv)).to_csv(path, index=False)
    code, _, stderr = run(
        capsys, "select", "--data", f"csv:{path}", "--target", "label", "--method", "gbdt", "--k", "3", "--out", tmp_path / "o"
    )
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "o").exists()


def test_cli_select_gate_methods_keep_the_ctr_path_and_say_they_need_a_binary_target(capsys, tmp_path, table_csv):
    code, _, stderr = run(
        capsys, "select", "--data", f"csv:{table_csv}", "--target", "n0", "--method", "optfs", "--k", "3", "--out", tmp_path / "o"
    )
    assert code == 2 and "must be binary" in stderr


def test_cli_select_malformed_criteo_names_the_line(capsys, tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("1\t2\n")
    code, _, stderr = run(capsys, "select", "--data", f"criteo:{path}", "--method", "gbdt", "--k", "2", "--out", tmp_path / "o")
    assert code == 2 and "c.txt:1: expected 40 fields" in stderr and not (tmp_path / "o").exists()


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


def test_selection_verdict_by_hand():
    from erasekit.pipelines.table_selection import judge
    from erasekit.report.selection import RandomBaseline

    draws = RandomBaseline(5, 0.5, 0.1, 3, (0.4, 0.5, 0.6))
    assert judge(0.71, draws, "accuracy")[0] == "better_than_random"  # above mean + 2 sd = 0.7 and every draw
    assert judge(0.69, draws, "accuracy")[0] == "no_better_than_random"
    tight = RandomBaseline(5, 0.5, 0.0, 3, (0.45, 0.5, 0.62))
    assert judge(0.6, tight, "accuracy")[0] == "no_better_than_random", "a random draw scored higher"

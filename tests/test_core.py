"""The foundations: no global RNG side effects, parameters checked once where parsed, outputs that appear
all at once or not at all, and optional extras that fail with an install hint."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from erasekit.core.errors import MethodError, MissingExtraError, OutputError
from erasekit.core.io import STAGING_MARK, staged_files, write_files, write_sibling_files
from erasekit.core.params import POSITIVE, Range, check_number
from erasekit.core.rng import seeded
from erasekit.data import ForgetSpec
from erasekit.training import Recipe, fresh_init, train
from erasekit.unlearn import UnlearningTask, available_methods, unlearn

# ------------------------------------------------------------------ the caller's RNG is never touched


def _rng_states():
    return torch.get_rng_state().clone(), np.random.get_state()[1].copy()


def _assert_unchanged(before):
    torch_state, numpy_state = before
    assert torch.equal(torch.get_rng_state(), torch_state), "the caller's torch RNG state changed"
    assert np.array_equal(np.random.get_state()[1], numpy_state), "the caller's numpy RNG state changed"


def test_seeded_restores_the_callers_state_and_is_reproducible():
    torch.manual_seed(123)
    before = _rng_states()
    with seeded(7):
        first = torch.rand(3)
    _assert_unchanged(before)
    with seeded(7):
        assert torch.equal(torch.rand(3), first)
    # positive control: the same check sees an ordinary global reseed
    torch.manual_seed(7)
    with pytest.raises(AssertionError, match="torch RNG state changed"):
        _assert_unchanged(before)


def test_training_and_building_leave_the_callers_rng_alone(digits, digits_spec):
    torch.manual_seed(99)
    np.random.seed(99)
    before = _rng_states()
    model = digits_spec.build(seed=3)
    train(model, digits.train, Recipe(epochs=1), seed=3)
    fresh_init(model, seed=4)
    _assert_unchanged(before)
    assert torch.equal(digits_spec.build(seed=3)[1].weight, digits_spec.build(seed=3)[1].weight)


@pytest.mark.parametrize("method", [m for m in available_methods() if m != "sisa"] + ["sisa"])
def test_every_unlearning_method_leaves_the_callers_rng_alone(trained_mlp, digits, method):
    from conftest import fast_params

    task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(3), recipe=Recipe(epochs=1), seed=0)
    torch.manual_seed(5)
    before = _rng_states()
    unlearn(task, method, fast_params(method))
    _assert_unchanged(before)


def test_selectors_and_ctr_models_leave_the_callers_rng_alone():
    from erasekit.data.ctr import make_synthetic_ctr, prepare_table
    from erasekit.features import SelectionData, rank_fields
    from erasekit.models.ctr import CTRRecipe, fresh_model

    prepared = prepare_table(make_synthetic_ctr(n_rows=600, seed=0).frame, "click", seed=0)
    data = SelectionData(prepared.train, prepared.valid, recipe=CTRRecipe(max_epochs=1, batch_size=128))
    torch.manual_seed(11)
    before = _rng_states()
    fresh_model(prepared.train.fields, data.spec, seed=2)
    for name in ("sfs", "adafs", "quickselection"):
        from erasekit.features import parse_selector_params

        params = {"adafs": ["adafs.search_epochs=1"], "quickselection": ["quickselection.hidden=8", "quickselection.epochs=1"]}
        rank_fields(data, name, parse_selector_params(params.get(name, [])).get(name), seed=1)
    _assert_unchanged(before)


# ------------------------------------------------------------------ numbers checked once, where parsed


def test_range_and_finiteness_checks_by_hand():
    check_number(1e-9, "x", POSITIVE)
    for bad, message in [(0.0, "must be > 0"), (float("inf"), "finite"), (float("nan"), "finite"), (-1, "must be > 0")]:
        with pytest.raises(MethodError, match=message):
            check_number(bad, "x", POSITIVE)
    unit = Range(0, 1, high_open=True)
    assert unit.contains(0.0) and not unit.contains(1.0) and unit.describe() == "in [0, 1)"


@pytest.mark.parametrize(
    "field, value",
    [("lr", float("inf")), ("lr", float("nan")), ("lr", 0.0), ("epochs", 0), ("weight_decay", -1.0), ("momentum", float("inf"))],
)
def test_recipe_refuses_bad_numbers(field, value):
    with pytest.raises(MethodError, match=f"Recipe.{field} must be"):
        Recipe(**{field: value})


def test_params_subclass_keeps_the_base_range():
    from erasekit.unlearn import SalUnParams

    with pytest.raises(MethodError, match=r"SalUnParams.lr must be > 0"):
        SalUnParams(lr=-0.1)  # SalUn only changes lr's default; SGDParams declares its range
    with pytest.raises(MethodError, match=r"SalUnParams.mask_ratio must be in \(0, 1\]"):
        SalUnParams(mask_ratio=0.0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "digits", "--lr", "inf"], "'inf' is not a finite number"),
        (["train", "--data", "digits", "--lr", "nan"], "'nan' is not a finite number"),
        (
            ["unlearn", "--data", "digits", "--forget", "class=3", "--methods", "finetune", "--param", "finetune.lr=inf"],
            "finetune.lr must be a finite number",
        ),
        (
            ["unlearn", "--data", "digits", "--forget", "class=3", "--methods", "finetune", "--param", "finetune.epochs=0"],
            "FinetuneParams.epochs must be ≥ 1",
        ),
        (["erase", "--embeddings", "x.npy", "--concept", "z.npy", "--test-fraction", "nan"], "'nan' is not a finite number"),
    ],
)
def test_cli_refuses_non_finite_or_out_of_range_numbers_before_any_work(capsys, tmp_path, args, message):
    out = tmp_path / "never"
    target = ["--out", out / "m.safetensors"] if args[0] == "train" else ["--out", out]
    code, _, err = run_cli(capsys, *args, *target)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


# ------------------------------------------------------------------ outputs appear all at once or not at all


def test_write_files_puts_everything_in_place(tmp_path):
    paths = write_files(tmp_path / "out", {"a.json": b"{}", "b.html": b"<p>"})
    assert [p.name for p in paths] == ["a.json", "b.html"]
    assert (tmp_path / "out" / "a.json").read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left
    # an existing folder keeps the files this command does not write
    (tmp_path / "out" / "mine.txt").write_text("keep")
    write_files(tmp_path / "out", {"a.json": b"[1]"})
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep" and (tmp_path / "out" / "a.json").read_bytes() == b"[1]"


def test_a_failure_while_staging_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), staged_files(tmp_path / "out") as staging:
        (staging / "report.json").write_text("{}")
        raise RuntimeError("disk full halfway")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_an_output_error_and_nothing_is_written(tmp_path, monkeypatch):
    real = Path.write_bytes
    calls = []

    def fill_up(self, data):
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", fill_up)
    with pytest.raises(OutputError, match="No space left on device"):
        write_files(tmp_path / "out", {"erased.npy": b"1", "eraser.safetensors": b"2", "report.json": b"3"})
    assert list(tmp_path.iterdir()) == []


def test_staging_left_by_a_killed_run_is_removed_next_time(tmp_path):
    dead = tmp_path / f".out{STAGING_MARK}999999999.abc"  # no such process
    dead.mkdir()
    (dead / "report.json").write_text("half")
    alive = tmp_path / f".out{STAGING_MARK}{os.getppid()}.abc"  # a running process: left alone
    alive.mkdir()
    write_files(tmp_path / "out", {"report.json": b"{}"})
    assert not dead.exists() and alive.exists()


def test_model_and_sidecar_are_written_together_or_not_at_all(tmp_path, monkeypatch):
    real = os.replace
    moved = []

    def fail_second(src, dst):
        moved.append(dst)
        if len(moved) == 2:
            raise OSError(errno.EIO, "I/O error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(OutputError, match="I/O error"):
        write_sibling_files({tmp_path / "m.safetensors": b"w", tmp_path / "m.json": b"{}"})
    monkeypatch.setattr(os, "replace", real)
    assert not (tmp_path / "m.json").exists()
    assert not [p for p in tmp_path.iterdir() if STAGING_MARK in p.name]


def test_cli_erase_with_a_full_disk_exits_75_and_writes_nothing(capsys, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 300)
    x = rng.normal(size=(300, 4)) + z[:, None]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "z.npy", z)
    real = Path.write_bytes

    def full(self, data):
        if self.name == "report.html":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "erased"
    code, _, err = run_cli(
        capsys,
        "erase",
        "--embeddings",
        tmp_path / "x.npy",
        "--concept",
        tmp_path / "z.npy",
        "--probes",
        "linear",
        "--n-boot",
        "100",
        "--out",
        out,
    )
    assert code == 75 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if STAGING_MARK in p.name]


def test_train_writes_model_and_sidecar(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "--data", "digits", "--epochs", "1", "--out", tmp_path / "m.safetensors")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


# ------------------------------------------------------------------ optional extras


@pytest.mark.parametrize(
    "module, extra, call",
    [
        (
            "lightgbm",
            "lightgbm",
            lambda: __import__("erasekit.features", fromlist=["GBDTSelector"]).GBDTSelector(k=1).fit(np.eye(4), [0, 1, 0, 1]),
        ),
        ("pyarrow", "parquet", lambda: __import__("erasekit.data.tables", fromlist=["read_table"]).read_table(Path("t.parquet"))),
        (
            "ray",
            "ray",
            lambda: list(
                __import__("erasekit.sisa.backends", fromlist=["_run_ray"])._run_ray(
                    [], __import__("erasekit.sisa.backends", fromlist=["Execution"]).Execution(backend="ray")
                )
            ),
        ),
        ("sqlalchemy", "ledger", lambda: __import__("importlib").reload(__import__("erasekit.ledger", fromlist=["Ledger"]))),
        (
            "psycopg",
            "postgres",
            lambda: __import__("erasekit.ledger.ledger", fromlist=["_engine"])._engine("postgresql://u@127.0.0.1/db"),
        ),
        (
            "sentence_transformers",
            "text",
            lambda: __import__("erasekit.models.text_encoder", fromlist=["load_minilm"]).load_minilm(),
        ),
    ],
)
def test_a_missing_extra_names_the_install_command(monkeypatch, module, extra, call):
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like to import
    with pytest.raises(MissingExtraError, match=rf"pip install 'erasekit\[{extra}\]'"):
        call()


def test_a_missing_extra_is_one_line_on_the_cli(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(200, 3)))
    np.save(tmp_path / "z.npy", rng.integers(0, 2, 200))
    code, _, err = run_cli(
        capsys,
        "erase",
        "--embeddings",
        tmp_path / "x.npy",
        "--concept",
        tmp_path / "z.npy",
        "--probes",
        "linear,gbm",
        "--n-boot",
        "100",
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and "pip install 'erasekit[lightgbm]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_model_error_for_a_diverging_training_run(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "train", "--data", "digits", "--epochs", "2", "--lr", "1e6", "--out", tmp_path / "m.safetensors"
    )
    assert code == 2 and "diverged" in err and not list(tmp_path.iterdir())

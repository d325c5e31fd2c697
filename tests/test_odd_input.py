"""Odd input never crashes: one-line errors of erasekit's own types, values never silently coerced (issue 15, part)."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
from safetensors.torch import save_file

from conftest import run_cli
from erasekit.concepts import fit_eraser, load_eraser, save_eraser
from erasekit.core.errors import ConceptError, ForgetSetError, ModelError
from erasekit.data import ForgetSpec
from erasekit.training import load_model


def test_fractional_forget_indices_are_refused_not_rounded():
    with pytest.raises(ForgetSetError, match="1.7 is not a whole number"):
        ForgetSpec.indices([1.7, 2.2])
    with pytest.raises(ForgetSetError, match="not a whole number"):
        ForgetSpec.indices([float("nan")])
    assert ForgetSpec.indices([1.0, 2.0]).index_list == (1, 2)
    assert ForgetSpec.indices(np.array([3, 4], dtype=np.int32)).index_list == (3, 4)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"99999999999999999999\n", "index 99999999999999999999 is out of range"),
        (b"-3\n", "index -3 is out of range"),
        (b"\xff\xfe\x00\x01", "is not a text file of integer indices"),
    ],
)
def test_odd_index_files_exit_2_with_one_line(capsys, tmp_path, content, message):
    ids = tmp_path / "ids.txt"
    ids.write_bytes(content)
    code, _, err = run_cli(
        capsys, "unlearn", "--data", "digits", "--forget", f"indices={ids}", "--methods", "ssd", "--out", tmp_path / "o"
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_text_features_are_a_concept_error_not_a_value_error():
    with pytest.raises(ConceptError, match="must hold numbers"):
        fit_eraser([["a", "b"], ["c", "d"], ["e", "f"]], [0, 1, 0])


def test_crafted_eraser_files_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 200)
    save_eraser(fit_eraser(rng.normal(size=(200, 4)) + z[:, None], z), tmp_path / "good.safetensors")
    assert load_eraser(tmp_path / "good.safetensors").x_dim == 4  # positive control
    import torch

    save_file({"proj_left": torch.zeros(4, 1)}, str(tmp_path / "no_method.safetensors"), metadata={"format": "erasekit.eraser/1"})
    with pytest.raises(ConceptError, match="is not a valid eraser file"):
        load_eraser(tmp_path / "no_method.safetensors")
    tensors = {"proj_left": torch.zeros(4, 1), "proj_right": torch.zeros(3, 4), "bias": torch.zeros(4)}
    metadata = {
        "format": "erasekit.eraser/1",
        "method": "leace",
        "concept_kind": "binary",
        "concept_classes": "[0, 1]",
        "concept_width": "2",
    }
    save_file(tensors, str(tmp_path / "shapes.safetensors"), metadata=metadata)
    with pytest.raises(ConceptError, match="inconsistent shapes"):
        load_eraser(tmp_path / "shapes.safetensors")


def _resign(sidecar_path, weights_path, **changes):
    """Edit a sidecar as an attacker would, keeping the weights hash consistent so the edit is what gets tested."""
    sidecar = json.loads(sidecar_path.read_text())
    for key, value in changes.items():
        sidecar["architecture"][key] = value
    sidecar["weights_file_sha256"] = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    sidecar_path.write_text(json.dumps(sidecar))


@pytest.fixture
def model_copy(tmp_path, model_file):
    weights, sidecar = tmp_path / "m.safetensors", tmp_path / "m.json"
    weights.write_bytes(model_file.read_bytes())
    sidecar.write_text(model_file.with_suffix(".json").read_text())
    return weights, sidecar


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"num_classes": -3}, "num_classes must be an integer in 1.."),
        ({"input_shape": None}, "input_shape must be a list of integers"),
        ({"input_shape": [1, 100000, 100000]}, "is not a plausible input"),
        ({"hidden": 64}, "does not fit architecture mlp as its sidecar describes it: size mismatch"),
        ({"architecture": "resnet"}, "unknown architecture 'resnet'"),
    ],
)
def test_edited_sidecars_are_refused_before_anything_is_allocated(model_copy, changes, message):
    weights, sidecar = model_copy
    assert load_model(weights).spec.num_classes == 10  # positive control: the untouched copy loads
    _resign(sidecar, weights, **changes)
    with pytest.raises(ModelError, match=message):
        load_model(weights)


def test_a_pickle_renamed_to_safetensors_says_so(model_copy):
    weights, sidecar = model_copy
    weights.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    _resign(sidecar, weights)
    with pytest.raises(ModelError, match="is not a safetensors file"):
        load_model(weights)


def test_a_delivered_model_folder_loads_and_an_empty_folder_is_explained(tmp_path, model_copy):
    weights, _ = model_copy
    folder = tmp_path / "delivered"
    folder.mkdir()
    with pytest.raises(ModelError, match="is a folder without model.safetensors"):
        load_model(folder)
    (folder / "model.safetensors").write_bytes(weights.read_bytes())
    (folder / "model.json").write_text(weights.with_suffix(".json").read_text())
    assert load_model(folder).spec.architecture == "mlp"


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("1.0", "a"), ("2.0", "b"), ("3.0", "a")], "class 'b' of target 'y' has a single row"),
        ([(f"{i}.5", f"{i * 0.37:.3f}") for i in range(300)], "has 300 distinct values in 300 rows: it looks like a quantity"),
    ],
)
def test_degenerate_classification_tables_are_refused(capsys, tmp_path, rows, message):
    table = tmp_path / "t.csv"
    table.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in rows))
    code, _, err = run_cli(
        capsys,
        "unlearn",
        "--data",
        f"csv:{table}",
        "--target",
        "y",
        "--forget",
        "class=0",
        "--methods",
        "ssd",
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_a_subset_smaller_than_two_per_class_is_refused(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data", "digits", "--subset", "1", "--out", tmp_path / "m.safetensors")
    assert code == 2 and "--subset must be between 20 (two per class, 10 classes)" in err
    assert not (tmp_path / "m.safetensors").exists()


@pytest.fixture(scope="module")
def small_sisa_model(tmp_path_factory):
    from erasekit.cli import main

    directory = tmp_path_factory.mktemp("sisa") / "m"
    args = [
        "sisa",
        "train",
        "--data",
        "digits",
        "--shards",
        "2",
        "--slices",
        "1",
        "--epochs",
        "1",
        "--workers",
        "1",
        "--out",
        str(directory),
    ]
    assert main(args) == 0
    return directory


def test_a_mistyped_ledger_url_on_a_read_command_creates_nothing(capsys, tmp_path, small_sisa_model):
    typo = tmp_path / "typo.sqlite"
    code, _, err = run_cli(capsys, "requests", "list", "--model-dir", small_sisa_model, "--db", f"sqlite:///{typo}")
    assert code == 2 and "no ledger database at" in err and len(err.strip().splitlines()) == 1
    assert not typo.exists(), "opening a ledger for an existing model must never create one"
    assert run_cli(capsys, "requests", "list", "--model-dir", small_sisa_model)[0] == 0  # positive control


def test_sisa_status_exits_1_when_a_checkpoint_is_corrupted(capsys, tmp_path, small_sisa_model):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small_sisa_model, copy)
    code, out, _ = run_cli(capsys, "sisa", "status", "--model-dir", copy, "--json")
    assert code == 0 and json.loads(out)["corrupted_checkpoints"] == []  # positive control: healthy → 0
    checkpoint = next(p for p in sorted(copy.rglob("*.safetensors")) if "assignment" not in p.name)
    payload = bytearray(checkpoint.read_bytes())
    payload[len(payload) // 2] ^= 0x01
    checkpoint.write_bytes(bytes(payload))
    code, out, _ = run_cli(capsys, "sisa", "status", "--model-dir", copy, "--json")
    assert code == 1 and len(json.loads(out)["corrupted_checkpoints"]) == 1
    code, out, _ = run_cli(capsys, "sisa", "status", "--model-dir", copy)
    assert code == 1 and "corrupted checkpoint" in out


def test_after_subset_an_unsampled_row_is_named_as_such_and_the_range_is_the_datas(capsys, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("1\n2\n3\n4\n5\n6\n7\n8\n")
    code, _, err = run_cli(
        capsys,
        "unlearn",
        "--data",
        "digits",
        "--subset",
        "50",
        "--forget",
        f"indices={ids}",
        "--methods",
        "ssd",
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and "is not among the 50 training rows that --subset kept (of 1437)" in err
    ids.write_text("5000\n")
    code, _, err = run_cli(
        capsys,
        "unlearn",
        "--data",
        "digits",
        "--subset",
        "50",
        "--forget",
        f"indices={ids}",
        "--methods",
        "ssd",
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and "the data has rows 0..1796" in err, "the data's range, not the subset's"


def test_bulk_requests_are_recorded_in_one_transaction_or_not_at_all(capsys, tmp_path, small_sisa_model):
    import shutil

    copy = tmp_path / "bulk"
    shutil.copytree(small_sisa_model, copy)
    good = tmp_path / "requests.txt"
    good.write_text("0 1 | GDPR #1\n# a comment line\n2, 3\n4\n")
    code, out, err = run_cli(
        capsys, "requests", "add", "--model-dir", copy, "--requests-file", good, "--reason", "batch", "--json"
    )
    assert code == 0, err
    recorded = json.loads(out)
    assert [r["example_ids"] for r in recorded] == [[0, 1], [2, 3], [4]]
    assert [r["reason"] for r in recorded] == ["GDPR #1", "batch", "batch"]
    bad = tmp_path / "bad.txt"
    bad.write_text("5 6\n999999\n")  # the second request names a row this model never trained on
    code, _, err = run_cli(capsys, "requests", "add", "--model-dir", copy, "--requests-file", bad)
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, out, _ = run_cli(capsys, "requests", "list", "--model-dir", copy, "--json")
    assert len(json.loads(out)) == 3, "nothing of the failed batch was recorded"
    code, _, err = run_cli(capsys, "requests", "add", "--model-dir", copy, "--requests-file", good, "--id", "3")
    assert code == 2 and "not both" in err


def test_a_field_longer_than_the_csv_modules_limit(capsys, tmp_path):
    import csv

    huge = "x" * (csv.field_size_limit() + 10)
    adult = tmp_path / "adult"
    adult.mkdir()
    row = "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K\n"
    rich = row.replace("<=50K", ">50K")
    (adult / "adult.data").write_text((row + rich) * 15 + row.replace("State-gov", huge))
    (adult / "adult.test").write_text("|1x3 Cross validator\n" + (row + rich).replace("50K\n", "50K.\n") * 5)
    code, _, err = run_cli(capsys, "select", "--data", f"adult:{adult}", "--method", "gbdt", "--k", "2", "--out", tmp_path / "o")
    assert code == 0, err  # read whole: the long value is one more (rare) category of workclass
    # a plain csv: table reads such a field (pandas' own parser has no such limit) and names the column
    table = tmp_path / "t.csv"
    table.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)) + f"{huge},1\n")
    code, _, err = run_cli(
        capsys, "select", "--data", f"csv:{table}", "--target", "y", "--method", "gbdt", "--k", "1", "--out", tmp_path / "o2"
    )
    assert code == 2 and "column 'x' is not numeric" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o2").exists()


def test_a_label_outside_the_declared_classes_is_refused(trained_mlp, digits):
    from erasekit.core.errors import DataError
    from erasekit.unlearn import UnlearningTask

    task = UnlearningTask.create(trained_mlp, digits.train, forget=[0, 1], num_classes=10)
    assert task.num_classes == 10  # positive control: the digits' labels are 0..9
    with pytest.raises(DataError, match=r"outside the declared 9 classes 0..8 \(e.g. 9\)"):
        UnlearningTask.create(trained_mlp, digits.train, forget=[0, 1], num_classes=9)


def test_sisa_train_checks_that_out_can_be_written_before_any_work(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, "sisa", "train", "--data", "digits", "--shards", "2", "--out", blocker / "model")
    assert code == 2 and "is not writable" in err and len(err.strip().splitlines()) == 1, err
    assert blocker.read_text() == "not a folder" and not list(tmp_path.glob(".*staging*"))


def test_an_npy_of_strings_given_as_embeddings(capsys, tmp_path):
    np.save(tmp_path / "z.npy", np.arange(50) % 2)
    np.save(tmp_path / "numbers.npy", np.random.default_rng(0).normal(size=(50, 2)))
    assert run_cli(capsys, "erase", "--embeddings", tmp_path / "numbers.npy", "--concept", tmp_path / "z.npy",
                   "--probes", "linear", "--n-boot", "100", "--out", tmp_path / "ok")[0] == 0  # positive control  # fmt: skip
    np.save(tmp_path / "s.npy", np.array([["a", "b"]] * 50))
    code, _, err = run_cli(
        capsys, "erase", "--embeddings", tmp_path / "s.npy", "--concept", tmp_path / "z.npy", "--out", tmp_path / "o"
    )
    assert code == 2 and "X must hold numbers" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
